//! Data sets, generated from the seed or read from files in the repository; never downloaded.
//!
//! Every task yields a `Dataset` with a train/test split held on the host as `f32` rows;
//! the trainer copies each batch to the device. Sets that are finite (parity, digits) cap
//! the requested sizes at what exists: the test split takes at most half, the train split
//! what is left.

pub mod bars;
mod digits;
mod generated;
pub mod idx;
pub mod sequence;

use crate::experiment::{DataSection, Task};
use crate::rng::Stream;

/// A data problem the lab cannot build.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("MNIST folder '{path}': {message}")]
    Mnist { path: String, message: String },
    #[error("shipped digits data is damaged: {0}")]
    Digits(String),
}

/// What the network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Softmax cross-entropy over `classes` labels.
    Classify { classes: usize },
    /// Mean squared error onto `dim` real targets.
    Regress { dim: usize },
    /// `positions` independent softmax choices over `classes` labels per example (the
    /// recalled symbols of copy-memory); `positions` labels per row.
    ClassifyEach { positions: usize, classes: usize },
}

impl Objective {
    pub fn output_dim(self) -> usize {
        match self {
            Objective::Classify { classes } => classes,
            Objective::Regress { dim } => dim,
            Objective::ClassifyEach { positions, classes } => positions * classes,
        }
    }

    /// Labels (or predictions scored) per example.
    pub fn positions(self) -> usize {
        match self {
            Objective::ClassifyEach { positions, .. } => positions,
            _ => 1,
        }
    }
}

/// One split: `n` rows of `input_dim` inputs and their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub n: usize,
    pub x: Vec<f32>,
    /// Class labels for classification (one per row; `positions` per row for `ClassifyEach`).
    pub labels: Vec<u32>,
    /// Real targets for regression (`dim` per row).
    pub targets: Vec<f32>,
}

impl Split {
    fn empty() -> Self {
        Split {
            n: 0,
            x: Vec::new(),
            labels: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Rows `idx` gathered into a new split (a batch).
    pub fn gather(&self, idx: &[usize], input_dim: usize, target_dim: usize) -> Split {
        let mut out = Split::empty();
        out.n = idx.len();
        out.x.reserve(idx.len() * input_dim);
        let per = self.labels.len().checked_div(self.n).unwrap_or(0);
        for &i in idx {
            out.x
                .extend_from_slice(&self.x[i * input_dim..(i + 1) * input_dim]);
            out.labels
                .extend_from_slice(&self.labels[i * per..(i + 1) * per]);
            if !self.targets.is_empty() {
                out.targets
                    .extend_from_slice(&self.targets[i * target_dim..(i + 1) * target_dim]);
            }
        }
        out
    }
}

/// A task's train and test splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Inputs per row: `seq_len` steps of `input_dim / seq_len` features, time-major.
    pub input_dim: usize,
    /// Time steps per example; 1 for static data.
    pub seq_len: usize,
    pub objective: Objective,
    pub train: Split,
    pub test: Split,
}

/// Builds the data set named by `[data]`, deterministic from `seed`.
pub fn build(section: &DataSection, seed: u64) -> Result<Dataset, DataError> {
    let mut rng = Stream::new(seed, "data");
    let mut ds = match section.task {
        Task::Spirals => generated::spirals(section, &mut rng),
        Task::Parity => generated::parity(section, &mut rng),
        Task::Teacher => generated::teacher(section, &mut rng),
        Task::Digits => digits::load(section, &mut rng)?,
        Task::Mnist => idx::load_mnist(section)?,
        Task::Adding => sequence::adding(section, &mut rng),
        Task::TemporalOrder => sequence::temporal_order(section, &mut rng),
        Task::CopyMemory => sequence::copy_memory(section, &mut rng),
        Task::KeyRecall => sequence::key_recall(section, &mut rng),
        Task::BarsStripes => bars::bars_stripes(section, &mut rng),
    };
    if section.binarize {
        for v in ds.train.x.iter_mut().chain(ds.test.x.iter_mut()) {
            *v = if *v > 0.5 { 1.0 } else { 0.0 };
        }
    }
    Ok(ds)
}

/// Splits labelled rows into train and test after a seeded shuffle, capping the sizes at
/// what exists (test at most half).
fn split_rows(
    rows: Vec<(Vec<f32>, u32)>,
    train_size: usize,
    test_size: usize,
    rng: &mut Stream,
) -> (Split, Split) {
    let mut rows = rows;
    rng.shuffle(&mut rows);
    let test_n = test_size.min(rows.len() / 2);
    let train_n = train_size.min(rows.len() - test_n);
    let to_split = |range: std::ops::Range<usize>| {
        let mut s = Split::empty();
        s.n = range.len();
        for (x, y) in &rows[range] {
            s.x.extend_from_slice(x);
            s.labels.push(*y);
        }
        s
    };
    let test = to_split(0..test_n);
    let train = to_split(test_n..test_n + train_n);
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(task: Task) -> DataSection {
        DataSection {
            task,
            train_size: 200,
            test_size: 50,
            ..DataSection::default()
        }
    }

    #[test]
    fn every_generated_task_is_deterministic_and_sized() {
        for task in [
            Task::Spirals,
            Task::Parity,
            Task::Teacher,
            Task::Digits,
            Task::Adding,
            Task::TemporalOrder,
            Task::CopyMemory,
            Task::BarsStripes,
            Task::KeyRecall,
        ] {
            let a = build(&section(task), 3).unwrap();
            let b = build(&section(task), 3).unwrap();
            let c = build(&section(task), 4).unwrap();
            assert_eq!(a, b, "{task:?}");
            assert_ne!(a.train.x, c.train.x, "{task:?} ignores the seed");
            assert_eq!(a.train.n, 200, "{task:?}");
            assert_eq!(a.test.n, 50, "{task:?}");
            assert_eq!(a.train.x.len(), 200 * a.input_dim);
            assert_eq!(
                a.train.labels.len() + a.train.targets.len(),
                200 * a.objective.positions()
            );
            assert_eq!(a.input_dim % a.seq_len, 0);
            assert!(a.train.x.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn parity_labels_are_parities() {
        let d = build(&section(Task::Parity), 1).unwrap();
        for (row, &label) in d.train.x.chunks(d.input_dim).zip(&d.train.labels) {
            let ones = row.iter().filter(|&&v| v > 0.0).count();
            assert_eq!(ones as u32 % 2, label);
        }
    }

    #[test]
    fn finite_sets_cap_their_sizes() {
        let mut s = section(Task::Parity);
        s.bits = 4;
        let d = build(&s, 0).unwrap();
        assert_eq!(d.test.n, 8);
        assert_eq!(d.train.n, 8);
    }
}
