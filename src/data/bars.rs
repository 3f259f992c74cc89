//! Bars and stripes (MacKay 2003): binary n×n images small enough that an RBM's exact
//! log-likelihood can be computed by enumerating its states.

use super::{Dataset, Objective, Split};
use crate::experiment::DataSection;
use crate::rng::Stream;

/// One image: pick bars (vertical, label 0) or stripes (horizontal, label 1) with equal
/// probability, then switch each of the n lines on with probability ½. The all-off and
/// all-on images arise from both, so the label is ambiguous for them (as in the original).
fn image(n: usize, rng: &mut Stream) -> (Vec<f32>, u32) {
    let stripes = rng.below(2) == 1;
    let lines: Vec<bool> = (0..n).map(|_| rng.below(2) == 1).collect();
    let x = (0..n * n)
        .map(|i| {
            let (row, col) = (i / n, i % n);
            let on = if stripes { lines[row] } else { lines[col] };
            if on { 1.0 } else { 0.0 }
        })
        .collect();
    (x, stripes as u32)
}

/// Train and test splits drawn independently from the bars-and-stripes distribution.
pub fn bars_stripes(s: &DataSection, rng: &mut Stream) -> Dataset {
    let n = s.size;
    let mut take = |count: usize| {
        let mut split = Split {
            n: count,
            x: Vec::with_capacity(count * n * n),
            labels: Vec::new(),
            targets: Vec::new(),
        };
        for _ in 0..count {
            let (x, y) = image(n, rng);
            split.x.extend(x);
            split.labels.push(y);
        }
        split
    };
    let train = take(s.train_size);
    let test = take(s.test_size);
    Dataset {
        input_dim: n * n,
        seq_len: 1,
        objective: Objective::Classify { classes: 2 },
        train,
        test,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Task;

    #[test]
    fn images_are_bars_or_stripes_and_cover_all_patterns() {
        let s = DataSection {
            task: Task::BarsStripes,
            size: 3,
            train_size: 2000,
            test_size: 0,
            ..DataSection::default()
        };
        let d = bars_stripes(&s, &mut Stream::new(0, "t"));
        let mut distinct = std::collections::BTreeSet::new();
        for (x, &y) in d.train.x.chunks(9).zip(&d.train.labels) {
            let px = |r: usize, c: usize| x[r * 3 + c];
            let rows_const = (0..3).all(|r| (0..3).all(|c| px(r, c) == px(r, 0)));
            let cols_const = (0..3).all(|c| (0..3).all(|r| px(r, c) == px(0, c)));
            assert!(
                if y == 1 { rows_const } else { cols_const },
                "{x:?} label {y}"
            );
            distinct.insert(x.iter().map(|&v| v as u8).collect::<Vec<_>>());
        }
        // 2·2³ − 2 distinct images for n = 3.
        assert_eq!(distinct.len(), 14);
    }
}
