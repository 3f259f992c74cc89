//! Long-time-lag sequence tasks (Hochreiter & Schmidhuber 1997), each example a row of
//! `seq_len × features` inputs, time-major within the row, so batching stays row-based.
//!
//! Lengths are fixed at `seq_len` (the 1997 paper draws them from [T, T + T/10]) so that a
//! batch is one rectangular tensor; everything else follows the paper's definitions.

use super::{Dataset, Objective, Split};
use crate::experiment::DataSection;
use crate::rng::Stream;

/// Features per step of the adding problem: (value, marker).
pub const ADDING_FEATURES: usize = 2;
/// Symbols of the temporal-order problem: a, b, c, d (distractors), X, Y (relevant), E, B.
pub const ORDER_SYMBOLS: usize = 8;
/// Copy-memory alphabet: 8 data symbols, then blank and delimiter.
pub const COPY_CLASSES: usize = 8;
const COPY_BLANK: usize = 8;
const COPY_DELIMITER: usize = 9;
/// Features per step of copy-memory (one-hot over data symbols, blank, delimiter).
pub const COPY_FEATURES: usize = 10;

fn one_hot(row: &mut [f32], t: usize, width: usize, symbol: usize) {
    row[t * width + symbol] = 1.0;
}

/// Experiment 4 (the adding problem). Every step is a pair (value in [−1, 1], marker). One
/// of the first ten pairs and one of the first T/2 − 1 still unmarked pairs carry marker 1;
/// the first and last pairs carry −1 unless marked; all others 0. A marked first pair has
/// its value set to 0, as in the paper. Target 0.5 + (X1 + X2)/4, error only at the end.
pub fn adding(s: &DataSection, rng: &mut Stream) -> Dataset {
    let t_len = s.seq_len;
    let half = t_len / 2 - 1; // validation keeps seq_len ≥ 10, so half ≥ 4
    let example = |rng: &mut Stream| {
        let mut row = vec![0f32; t_len * ADDING_FEATURES];
        for t in 0..t_len {
            row[t * ADDING_FEATURES] = rng.uniform_in(-1.0, 1.0) as f32;
        }
        let first = rng.below(10.min(half));
        let mut second = rng.below(half - 1);
        if second >= first {
            second += 1; // uniform over the unmarked ones
        }
        row[1] = -1.0;
        row[(t_len - 1) * ADDING_FEATURES + 1] = -1.0;
        let mut sum = 0.0f32;
        for m in [first, second] {
            if m == 0 {
                row[0] = 0.0;
            }
            row[m * ADDING_FEATURES + 1] = 1.0;
            sum += row[m * ADDING_FEATURES];
        }
        (row, vec![0.5 + sum / 4.0])
    };
    let mut take = |n: usize| {
        let mut split = Split {
            n,
            x: Vec::with_capacity(n * t_len * 2),
            labels: Vec::new(),
            targets: Vec::new(),
        };
        for _ in 0..n {
            let (x, y) = example(rng);
            split.x.extend(x);
            split.targets.extend(y);
        }
        split
    };
    let train = take(s.train_size);
    let test = take(s.test_size);
    Dataset {
        input_dim: t_len * ADDING_FEATURES,
        seq_len: t_len,
        objective: Objective::Regress { dim: 1 },
        train,
        test,
    }
}

/// Experiment 6a (temporal order). Starts with E, ends with B, distractors a–d elsewhere
/// except at t1 ∈ [T/10, T/5] and t2 ∈ [T/2, 6T/10] (the paper's 10–20 and 50–60 for
/// T = 100), which hold X or Y. Classes: XX, XY, YX, YY.
pub fn temporal_order(s: &DataSection, rng: &mut Stream) -> Dataset {
    let t_len = s.seq_len;
    let (x_sym, e_sym, b_sym) = (4, 6, 7);
    let span = |lo: usize, hi: usize, rng: &mut Stream| lo + rng.below(hi - lo + 1);
    let mut take = |n: usize| {
        let mut split = Split {
            n,
            x: Vec::with_capacity(n * t_len * ORDER_SYMBOLS),
            labels: Vec::new(),
            targets: Vec::new(),
        };
        for _ in 0..n {
            let mut row = vec![0f32; t_len * ORDER_SYMBOLS];
            let t1 = span((t_len / 10).max(1), t_len / 5, rng);
            let t2 = span(t_len / 2, 6 * t_len / 10, rng);
            let (a, b) = (rng.below(2), rng.below(2));
            for t in 0..t_len {
                let symbol = match t {
                    0 => e_sym,
                    t if t == t_len - 1 => b_sym,
                    t if t == t1 => x_sym + a,
                    t if t == t2 => x_sym + b,
                    _ => rng.below(4),
                };
                one_hot(&mut row, t, ORDER_SYMBOLS, symbol);
            }
            split.x.extend(row);
            split.labels.push((2 * a + b) as u32);
        }
        split
    };
    let train = take(s.train_size);
    let test = take(s.test_size);
    Dataset {
        input_dim: t_len * ORDER_SYMBOLS,
        seq_len: t_len,
        objective: Objective::Classify { classes: 4 },
        train,
        test,
    }
}

/// Copy memory (after Hochreiter & Schmidhuber 1997 and Arjovsky et al. 2016): K data
/// symbols from 8, blanks, a delimiter at step T − K − 1, then K blank steps during which
/// the net must reproduce the K symbols in order. Loss only over those K outputs.
pub fn copy_memory(s: &DataSection, rng: &mut Stream) -> Dataset {
    let (t_len, k) = (s.seq_len, s.copy_length);
    let mut take = |n: usize| {
        let mut split = Split {
            n,
            x: Vec::with_capacity(n * t_len * COPY_FEATURES),
            labels: Vec::new(),
            targets: Vec::new(),
        };
        for _ in 0..n {
            let mut row = vec![0f32; t_len * COPY_FEATURES];
            for t in 0..t_len {
                let symbol = if t < k {
                    let v = rng.below(COPY_CLASSES);
                    split.labels.push(v as u32);
                    v
                } else if t == t_len - k - 1 {
                    COPY_DELIMITER
                } else {
                    COPY_BLANK
                };
                one_hot(&mut row, t, COPY_FEATURES, symbol);
            }
            split.x.extend(row);
        }
        split
    };
    let train = take(s.train_size);
    let test = take(s.test_size);
    Dataset {
        input_dim: t_len * COPY_FEATURES,
        seq_len: t_len,
        objective: Objective::ClassifyEach {
            positions: k,
            classes: COPY_CLASSES,
        },
        train,
        test,
    }
}

/// Key symbols of key-recall (the classes).
pub const KEY_SYMBOLS: usize = 4;
/// Filler symbols of key-recall, shown in a fixed cycle.
const FILLER_SYMBOLS: usize = 4;
/// Features per step of key-recall: one-hot over keys, fillers and the query.
pub const KEY_FEATURES: usize = KEY_SYMBOLS + FILLER_SYMBOLS + 1;

/// A long time lag in a mostly predictable sequence, for the history compressor (Schmidhuber
/// 1992): a key (one of 4) at t = 0, then filler symbols in the fixed cycle a b c d a … from
/// a random phase, then the query at t = T − 1, whose answer is the key. Only the key, the
/// first filler (its phase) and the query cannot be predicted from what came before.
pub fn key_recall(s: &DataSection, rng: &mut Stream) -> Dataset {
    let t_len = s.seq_len;
    let mut take = |n: usize| {
        let mut split = Split {
            n,
            x: Vec::with_capacity(n * t_len * KEY_FEATURES),
            labels: Vec::new(),
            targets: Vec::new(),
        };
        for _ in 0..n {
            let mut row = vec![0f32; t_len * KEY_FEATURES];
            let key = rng.below(KEY_SYMBOLS);
            let phase = rng.below(FILLER_SYMBOLS);
            for t in 0..t_len {
                let symbol = match t {
                    0 => key,
                    t if t == t_len - 1 => KEY_FEATURES - 1,
                    t => KEY_SYMBOLS + (phase + t - 1) % FILLER_SYMBOLS,
                };
                one_hot(&mut row, t, KEY_FEATURES, symbol);
            }
            split.x.extend(row);
            split.labels.push(key as u32);
        }
        split
    };
    let train = take(s.train_size);
    let test = take(s.test_size);
    Dataset {
        input_dim: t_len * KEY_FEATURES,
        seq_len: t_len,
        objective: Objective::Classify {
            classes: KEY_SYMBOLS,
        },
        train,
        test,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Task;

    /// Key, a filler cycle from a random phase, the query; the label is the key.
    #[test]
    fn key_recall_examples_follow_the_definition() {
        let d = key_recall(&section(Task::KeyRecall), &mut Stream::new(2, "t"));
        let symbol = |row: &[f32], t: usize| {
            let step = &row[t * KEY_FEATURES..(t + 1) * KEY_FEATURES];
            assert_eq!(step.iter().sum::<f32>(), 1.0, "one-hot");
            step.iter().position(|&v| v == 1.0).unwrap()
        };
        let mut phases = std::collections::BTreeSet::new();
        for (row, &y) in d.train.x.chunks(d.input_dim).zip(&d.train.labels) {
            assert_eq!(symbol(row, 0), y as usize);
            assert_eq!(symbol(row, 39), KEY_FEATURES - 1);
            phases.insert(symbol(row, 1));
            for t in 2..39 {
                let (a, b) = (
                    symbol(row, t - 1) - KEY_SYMBOLS,
                    symbol(row, t) - KEY_SYMBOLS,
                );
                assert_eq!(b, (a + 1) % FILLER_SYMBOLS, "the filler cycles");
            }
        }
        assert_eq!(phases.len(), FILLER_SYMBOLS, "every phase occurs");
    }

    fn section(task: Task) -> DataSection {
        DataSection {
            task,
            train_size: 300,
            test_size: 10,
            seq_len: 40,
            ..DataSection::default()
        }
    }

    /// Every adding example follows the 1997 definition: two markers of 1 at the allowed
    /// places, −1 at both ends unless marked, and the target from the two marked values.
    #[test]
    fn adding_examples_follow_the_definition() {
        let d = adding(&section(Task::Adding), &mut Stream::new(1, "t"));
        let mut first_positions = std::collections::BTreeSet::new();
        for (row, &y) in d.train.x.chunks(d.input_dim).zip(&d.train.targets) {
            let marks: Vec<usize> = (0..40).filter(|&t| row[2 * t + 1] == 1.0).collect();
            assert_eq!(marks.len(), 2, "{row:?}");
            assert!(
                marks[0] < 19 && marks[1] < 19,
                "both within the first T/2 − 1: {marks:?}"
            );
            assert!(
                marks.iter().any(|&m| m < 10),
                "one among the first ten: {marks:?}"
            );
            first_positions.insert(marks[0]);
            for t in [0, 39] {
                if !marks.contains(&t) {
                    assert_eq!(row[2 * t + 1], -1.0);
                }
            }
            let others = (0..40).filter(|t| !marks.contains(t) && *t != 0 && *t != 39);
            assert!(others.clone().all(|t| row[2 * t + 1] == 0.0));
            assert!(row.iter().step_by(2).all(|v| (-1.0..=1.0).contains(v)));
            let sum: f32 = marks.iter().map(|&m| row[2 * m]).sum();
            assert!((y - (0.5 + sum / 4.0)).abs() < 1e-6);
            if marks[0] == 0 {
                assert_eq!(row[0], 0.0, "a marked first pair has value 0");
            }
        }
        assert!(
            first_positions.len() >= 8,
            "marker positions vary: {first_positions:?}"
        );
    }

    #[test]
    fn temporal_order_labels_follow_the_relevant_symbols() {
        let d = temporal_order(&section(Task::TemporalOrder), &mut Stream::new(2, "t"));
        let mut seen = [0; 4];
        for (row, &y) in d.train.x.chunks(d.input_dim).zip(&d.train.labels) {
            let sym = |t: usize| (0..8).find(|&s| row[t * 8 + s] == 1.0).unwrap();
            assert_eq!(row.iter().sum::<f32>(), 40.0, "one symbol per step");
            assert_eq!((sym(0), sym(39)), (6, 7));
            let relevant: Vec<(usize, usize)> = (0..40)
                .map(|t| (t, sym(t)))
                .filter(|&(_, s)| s == 4 || s == 5)
                .collect();
            assert_eq!(relevant.len(), 2);
            assert!(
                (4..=8).contains(&relevant[0].0) && (20..=24).contains(&relevant[1].0),
                "{relevant:?}"
            );
            assert_eq!(y as usize, 2 * (relevant[0].1 - 4) + (relevant[1].1 - 4));
            seen[y as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 40), "{seen:?}");
    }

    #[test]
    fn copy_memory_labels_are_the_first_symbols() {
        let mut s = section(Task::CopyMemory);
        s.copy_length = 5;
        let d = copy_memory(&s, &mut Stream::new(3, "t"));
        assert_eq!(d.objective.output_dim(), 5 * COPY_CLASSES);
        assert_eq!(d.train.labels.len(), 300 * 5);
        for (row, labels) in d.train.x.chunks(d.input_dim).zip(d.train.labels.chunks(5)) {
            let sym = |t: usize| (0..10).find(|&s| row[t * 10 + s] == 1.0).unwrap();
            for (t, &l) in labels.iter().enumerate() {
                assert_eq!(sym(t), l as usize);
            }
            assert_eq!(sym(40 - 5 - 1), COPY_DELIMITER);
            assert!((5..34).chain(35..40).all(|t| sym(t) == COPY_BLANK));
        }
    }
}
