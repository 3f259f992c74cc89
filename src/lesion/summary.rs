//! A study's records summarised per number of deleted units and per path length — what the
//! table, the figure and the Run screen show — from a study or from a stored lesion trace.

use crate::train::{LesionRecord, PathsRecord, TraceLine};

/// The errors of every lesion of `k` units.
#[derive(Debug, Clone, PartialEq)]
pub struct KSummary {
    pub k: usize,
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// What a lesion study found.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The intact net's test error.
    pub intact: f64,
    /// Each unit deleted alone: (name, test error), input side first.
    pub singles: Vec<(String, f64)>,
    /// k = 1 (the singles), 2, …, L.
    pub by_k: Vec<KSummary>,
    /// Residual nets: the path-length distribution (empty for plain nets).
    pub paths: Vec<PathsRecord>,
}

impl Summary {
    pub fn new(lesions: &[LesionRecord], paths: &[PathsRecord]) -> Summary {
        let intact = lesions
            .iter()
            .find(|r| r.k == 0)
            .map_or(f64::NAN, |r| r.error);
        let singles = lesions
            .iter()
            .filter(|r| r.k == 1)
            .map(|r| (r.deleted.join("+"), r.error))
            .collect();
        let top = lesions.iter().map(|r| r.k).max().unwrap_or(0);
        let by_k = (1..=top)
            .filter_map(|k| {
                let errors: Vec<f64> = lesions
                    .iter()
                    .filter(|r| r.k == k)
                    .map(|r| r.error)
                    .collect();
                (!errors.is_empty()).then(|| KSummary {
                    k,
                    count: errors.len(),
                    mean: errors.iter().sum::<f64>() / errors.len() as f64,
                    min: errors.iter().copied().fold(f64::INFINITY, f64::min),
                    max: errors.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                })
            })
            .collect();
        Summary {
            intact,
            singles,
            by_k,
            paths: paths.to_vec(),
        }
    }

    /// From a lesion trace's records (others are ignored).
    pub fn from_trace(lines: &[TraceLine]) -> Summary {
        let lesions: Vec<LesionRecord> = lines
            .iter()
            .filter_map(|l| match l {
                TraceLine::Lesion(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        let paths: Vec<PathsRecord> = lines
            .iter()
            .filter_map(|l| match l {
                TraceLine::Paths(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        Summary::new(&lesions, &paths)
    }

    /// The mean error of single lesions.
    pub fn single_mean(&self) -> f64 {
        self.by_k.first().map_or(f64::NAN, |s| s.mean)
    }

    /// The path length that carries the largest share of the gradient, and the length below
    /// which half of it lies.
    pub fn paths_peak(&self) -> Option<(usize, usize)> {
        let peak = self
            .paths
            .iter()
            .max_by(|a, b| a.share.total_cmp(&b.share))?
            .k;
        let mut acc = 0.0;
        let median = self
            .paths
            .iter()
            .find(|p| {
                acc += p.share;
                acc >= 0.5
            })
            .map_or(peak, |p| p.k);
        Some((peak, median))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(deleted: &[&str], error: f64) -> LesionRecord {
        LesionRecord {
            k: deleted.len(),
            deleted: deleted.iter().map(|s| s.to_string()).collect(),
            error,
            loss: 0.0,
        }
    }

    #[test]
    fn summaries_per_k_and_the_path_peak() {
        let lesions = [
            rec(&[], 0.1),
            rec(&["b1"], 0.2),
            rec(&["b2"], 0.4),
            rec(&["b1", "b2"], 0.8),
        ];
        let paths: Vec<PathsRecord> = [0.1, 0.6, 0.3]
            .iter()
            .enumerate()
            .map(|(k, &share)| PathsRecord {
                k,
                paths: 1.0,
                draws: 1,
                mean: share,
                share,
            })
            .collect();
        let s = Summary::new(&lesions, &paths);
        assert_eq!(s.intact, 0.1);
        assert_eq!(s.singles, [("b1".into(), 0.2), ("b2".into(), 0.4)]);
        assert_eq!(s.by_k.len(), 2);
        assert!((s.single_mean() - 0.3).abs() < 1e-12);
        assert_eq!((s.by_k[0].min, s.by_k[0].max), (0.2, 0.4));
        assert_eq!(s.by_k[1].count, 1);
        assert_eq!(s.paths_peak(), Some((1, 1)));
    }
}
