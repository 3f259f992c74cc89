//! The batches a run trains on: its data on the device, sampled without replacement within
//! an epoch from the run's own `batches` stream (or the whole training set every step).

use super::runner::Ctx;
use crate::data::{Dataset, Objective, Split};
use crate::rng::Stream;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A batch on the device.
#[derive(Clone)]
pub(super) struct Batch {
    pub(super) x: Tensor<2>,
    /// One-hot labels (classification) or targets (regression), `[n, out]`.
    pub(super) y: Tensor<2>,
    /// Class labels for accuracy (`n · positions` of them).
    pub(super) labels: Option<Tensor<1, Int>>,
    pub(super) n: usize,
}

pub(super) fn to_device(split: &Split, ds: &Dataset, device: &Device) -> Batch {
    let out = ds.objective.output_dim();
    let x = Tensor::from_data(
        TensorData::new(split.x.clone(), [split.n, ds.input_dim]),
        device,
    );
    let (y, labels) = match ds.objective {
        Objective::Classify { classes } | Objective::ClassifyEach { classes, .. } => {
            // Row i's position k is one-hot at column k·classes + label.
            let mut onehot = vec![0f32; split.n * out];
            for (i, &l) in split.labels.iter().enumerate() {
                onehot[i * classes + l as usize] = 1.0;
            }
            let labels: Vec<i64> = split.labels.iter().map(|&l| l as i64).collect();
            let count = labels.len();
            (
                Tensor::from_data(TensorData::new(onehot, [split.n, out]), device),
                Some(Tensor::from_data(TensorData::new(labels, [count]), device)),
            )
        }
        Objective::Regress { dim } => (
            Tensor::from_data(
                TensorData::new(split.targets.clone(), [split.n, dim]),
                device,
            ),
            None,
        ),
    };
    debug_assert_eq!(y.dims()[1], out);
    Batch {
        x,
        y,
        labels,
        n: split.n,
    }
}

/// Samples batches without replacement within an epoch; a batch at least the training set's
/// size is the whole set every step.
pub(super) struct Batcher {
    order: Vec<usize>,
    pos: usize,
    size: usize,
    rng: Stream,
}

impl Batcher {
    pub(super) fn new(n: usize, size: usize, seed: u64) -> Self {
        Self::named(n, size, seed, "batches")
    }
    /// A batcher drawing from its own named stream (pretraining shuffles independently).
    pub(super) fn named(n: usize, size: usize, seed: u64, stream: &str) -> Self {
        let mut b = Self {
            order: (0..n).collect(),
            pos: n,
            size: size.min(n),
            rng: Stream::new(seed, stream),
        };
        if b.size == n {
            b.pos = 0;
        }
        b
    }
    pub(super) fn full(&self) -> bool {
        self.size == self.order.len()
    }
    pub(super) fn next(&mut self) -> &[usize] {
        if self.pos + self.size > self.order.len() {
            self.rng.shuffle(&mut self.order);
            self.pos = 0;
        }
        let s = &self.order[self.pos..self.pos + self.size];
        self.pos += self.size;
        s
    }
}

/// The training batches of a run: the whole set every step, or shuffled minibatches.
pub(super) struct Batches {
    batcher: Batcher,
    full: Option<Batch>,
}

impl Batches {
    pub(super) fn new(ctx: &Ctx, size: usize) -> Self {
        let batcher = Batcher::new(ctx.ds.train.n, size, ctx.exp.seed());
        let full = batcher
            .full()
            .then(|| to_device(&ctx.ds.train, ctx.ds, ctx.device));
        Self { batcher, full }
    }

    pub(super) fn next(&mut self, ctx: &Ctx) -> Batch {
        match &self.full {
            Some(b) => b.clone(),
            None => {
                let ds = ctx.ds;
                let idx = self.batcher.next().to_vec();
                to_device(
                    &ds.train
                        .gather(&idx, ds.input_dim, ds.objective.output_dim()),
                    ds,
                    ctx.device,
                )
            }
        }
    }
}
