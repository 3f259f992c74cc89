//! Sweep grids: `--set field=v1,v2,…` or `--set field=start:stop:step`, crossed, times seeds.

use crate::experiment::{ConfigError, Experiment, Overrides};

/// One swept field and its values, as written on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub field: String,
    pub values: Vec<String>,
}

/// A malformed `--set`.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error(
        "--set '{0}': expected field=values, e.g. model.depth=5,10,20 or model.sigma_w=0.5:3.0:0.25"
    )]
    Syntax(String),
    #[error("--set '{0}': a range start:stop:step needs numbers with step > 0 and stop ≥ start")]
    Range(String),
    #[error("--set '{0}': a range of more than 10000 values")]
    TooMany(String),
    #[error(
        "--set experiment.seed=… with --seeds {0}: each point would run its seed and the next {1}, \
         which the seed axis runs again — give the seeds as an axis or as --seeds N, not both"
    )]
    SeedAxisAndSeeds(u64, u64),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Prints a range value without binary noise (0.30000000000000004 → 0.3).
fn tidy(v: f64) -> String {
    let r = (v * 1e9).round() / 1e9;
    if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

/// Parses one `--set` argument.
pub fn parse_axis(arg: &str) -> Result<Axis, GridError> {
    let (field, spec) = arg
        .split_once('=')
        .ok_or_else(|| GridError::Syntax(arg.into()))?;
    let (field, spec) = (field.trim(), spec.trim());
    if field.is_empty() || spec.is_empty() {
        return Err(GridError::Syntax(arg.into()));
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let values = if parts.len() == 3 {
        let nums: Vec<f64> = parts
            .iter()
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| GridError::Range(arg.into()))?;
        let (start, stop, step) = (nums[0], nums[1], nums[2]);
        if step.is_nan() || step <= 0.0 || stop < start || !start.is_finite() || !stop.is_finite() {
            return Err(GridError::Range(arg.into()));
        }
        let n = ((stop - start) / step + 1e-9).floor() as usize + 1;
        if n > 10_000 {
            return Err(GridError::TooMany(arg.into()));
        }
        let all_int =
            nums.iter().all(|v| v.fract() == 0.0) && !parts.iter().any(|p| p.contains('.'));
        (0..n)
            .map(|i| {
                let v = start + i as f64 * step;
                if all_int {
                    format!("{}", v as i64)
                } else {
                    tidy(v)
                }
            })
            .collect()
    } else if parts.len() == 1 {
        spec.split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    } else {
        return Err(GridError::Syntax(arg.into()));
    };
    Ok(Axis {
        field: field.to_string(),
        values,
    })
}

/// One grid point: its settings, seed and the resulting validated experiment.
#[derive(Debug, Clone)]
pub struct Point {
    pub settings: Vec<(String, String)>,
    pub seed: u64,
    pub experiment: Experiment,
}

/// The cartesian product of the axes (first axis slowest), each with `seeds` consecutive
/// seeds from the base experiment's. Every point is validated before anything runs.
pub fn expand(
    base: &Experiment,
    axes: &[Axis],
    seeds: u64,
    steps: Option<usize>,
) -> Result<Vec<Point>, GridError> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((axis.field.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    if seeds > 1 && axes.iter().any(|a| a.field == "experiment.seed") {
        return Err(GridError::SeedAxisAndSeeds(seeds, seeds - 1));
    }
    let mut points = Vec::with_capacity(combos.len() * seeds as usize);
    for settings in combos {
        let configured = base.with_settings(&settings)?;
        for k in 0..seeds.max(1) {
            // From the point's own seed: a seed axis (`--set experiment.seed=5,6`) sets it.
            let seed = configured.seed().wrapping_add(k);
            let experiment = configured.clone().with_overrides(Overrides {
                steps,
                seed: Some(seed),
            })?;
            points.push(Point {
                settings: settings.clone(),
                seed,
                experiment,
            });
        }
    }
    Ok(points)
}

/// A sweep's identity: blake3 of the base config hash, the axes and the seed count.
pub fn sweep_id(base: &Experiment, axes: &[Axis], seeds: u64) -> String {
    let mut h = blake3::Hasher::new();
    h.update(base.hash().0.as_bytes());
    for a in axes {
        h.update(a.field.as_bytes());
        h.update(b"=");
        h.update(a.values.join(",").as_bytes());
        h.update(b";");
    }
    h.update(&seeds.to_le_bytes());
    h.finalize().to_hex()[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn lists_and_ranges_parse() {
        assert_eq!(
            parse_axis("model.depth=5,10,20,40").unwrap().values,
            ["5", "10", "20", "40"]
        );
        assert_eq!(
            parse_axis("model.sigma_w=0.5:3.0:0.25").unwrap().values,
            [
                "0.5", "0.75", "1.0", "1.25", "1.5", "1.75", "2.0", "2.25", "2.5", "2.75", "3.0"
            ]
        );
        assert_eq!(
            parse_axis("model.depth=10:40:10").unwrap().values,
            ["10", "20", "30", "40"]
        );
        assert_eq!(
            parse_axis("model.sigma_w=0.1:0.3:0.1").unwrap().values,
            ["0.1", "0.2", "0.3"]
        );
        assert!(matches!(
            parse_axis("model.depth"),
            Err(GridError::Syntax(_))
        ));
        assert!(matches!(
            parse_axis("model.depth=3:1:1"),
            Err(GridError::Range(_))
        ));
        assert!(matches!(
            parse_axis("model.depth=1:2:0"),
            Err(GridError::Range(_))
        ));
    }

    #[test]
    fn a_seed_axis_sets_each_points_seed_and_does_not_mix_with_seeds() {
        let base = Experiment::parse(
            "[experiment]\nname = \"s\"\nseed = 1\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let axis = [parse_axis("experiment.seed=5,6").unwrap()];
        let points = expand(&base, &axis, 1, None).unwrap();
        let seeds: Vec<u64> = points.iter().map(|p| p.seed).collect();
        assert_eq!(seeds, [5, 6]);
        let run: Vec<u64> = points.iter().map(|p| p.experiment.seed()).collect();
        assert_eq!(run, [5, 6], "the runs use the axis' seeds, not the base's");
        let both = expand(&base, &axis, 2, None).unwrap_err();
        assert!(both.to_string().contains("--seeds"), "{both}");
    }

    #[test]
    fn expansion_crosses_axes_and_seeds() {
        let base = Experiment::parse(
            "[experiment]\nname = \"s\"\nseed = 10\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let axes = [
            parse_axis("model.depth=2,3").unwrap(),
            parse_axis("model.sigma_w=1:2:1").unwrap(),
        ];
        let points = expand(&base, &axes, 2, Some(5)).unwrap();
        assert_eq!(points.len(), 8);
        assert_eq!(
            points[0].settings,
            [
                ("model.depth".to_string(), "2".to_string()),
                ("model.sigma_w".to_string(), "1".to_string())
            ]
        );
        assert_eq!((points[0].seed, points[1].seed), (10, 11));
        assert_eq!(points[7].experiment.spec().model.depth, 3);
        assert_eq!(points[7].experiment.spec().model.sigma_w, 2.0);
        assert_eq!(points[7].experiment.spec().train.steps, 5);
        let hashes: std::collections::HashSet<_> =
            points.iter().map(|p| p.experiment.hash().clone()).collect();
        assert_eq!(hashes.len(), 8, "every point is a distinct config");
        let bad = expand(&base, &[parse_axis("model.depth=0").unwrap()], 1, None).unwrap_err();
        assert!(
            bad.to_string().contains("must be between 1 and 500"),
            "{bad}"
        );
        assert_ne!(sweep_id(&base, &axes, 2), sweep_id(&base, &axes, 3));
    }
}
