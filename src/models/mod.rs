//! Networks the lab trains, each built deterministically from the config seed, and the one
//! trait the training loop drives them through.
//!
//! A network exposes its parameters as one flat list of 2-D tensors (biases as `[1, d]`)
//! in a canonical order, a forward pass that keeps a tape, and a backward pass that returns
//! the gradient of every parameter plus, for every probed layer, the back-propagated error
//! δ = ∂L/∂z and the layer's output. How δ is obtained is the network's business: by a
//! hand-derived pass (the MLP) or by Burn's autodiff with a zero leaf added at each
//! pre-activation.

pub mod activation;
pub mod chunker;
pub mod grid;
pub(crate) mod host;
pub mod init;
pub mod kernels;
pub mod lstm;
pub mod mlp;
pub mod ops;
pub mod rbm;
pub mod recurrent;
pub mod resnet;
pub mod rnn;

pub use chunker::Chunker;
pub use grid::GridNet;
pub use lstm::Lstm;
pub use mlp::Mlp;
pub use resnet::Resnet;
pub use rnn::Rnn;

use crate::experiment::Activation;
use burn::tensor::{Device, Tensor, TensorData};

/// What the backward pass reveals about one probed layer.
pub struct LayerSignals {
    /// ∂L/∂z at the layer's pre-activation, `[batch, units]`.
    pub delta: Tensor<2>,
    /// The layer's output (after its activation; logits for the output layer).
    pub output: Tensor<2>,
    /// How to count saturated or dead units, when the activation has such a notion.
    pub saturated: Option<Saturation>,
    /// Index in `params()` of the layer's weight matrix.
    pub weight: usize,
    /// Index in `params()` of the layer's bias, if any.
    pub bias: Option<usize>,
    /// Residual nets: ∂L/∂h on the skip path (the residual stream) where this layer's block
    /// ends; `None` for layers not on a skip path.
    pub skip: Option<Tensor<2>>,
    /// ‖δ‖², when the network's own pass already summed it (the `cpu` engine's host paths);
    /// the probes then skip their pass over `delta`.
    pub delta_sq: Option<f64>,
}

/// What a layer's saturation is measured from. Lazy on purpose: the probes only need it
/// on probe steps, and a mask costs several passes over the layer's output.
pub enum Saturation {
    /// A ready mask, 1.0 where a unit is saturated or dead.
    Mask(Tensor<2>),
    /// The layer applies `activation` to `z` (the `output` of `LayerSignals` is φ(z)).
    Of {
        activation: Activation,
        z: Tensor<2>,
    },
    /// Already counted by the network's own pass (host paths).
    Count(f64),
}

impl Saturation {
    /// The 0/1 mask as a tensor (the device-side path); `None` for a ready count.
    pub fn mask(&self, output: &Tensor<2>) -> Option<Tensor<2>> {
        match self {
            Saturation::Mask(m) => Some(m.clone()),
            Saturation::Of { activation: act, z } => activation::saturated(*act, z, output),
            Saturation::Count(_) => None,
        }
    }
}

/// Result of one backward pass.
pub struct Backward {
    /// ∂L/∂θ for every parameter, aligned with `params()`.
    pub grads: Vec<Tensor<2>>,
    /// Input side first, one per name in `layer_names()`.
    pub layers: Vec<LayerSignals>,
    /// For recurrent nets: ‖∂L/∂h_t‖² for t = 1..T, in order, as 1-D tensors whose
    /// concatenation has T elements; empty for other nets.
    pub time: Vec<Tensor<1>>,
    /// The history compressor's own signals; `None` for other nets.
    pub levels: Option<LevelSignals>,
}

/// What the history compressor's backward pass adds: how much its lower level passes up and
/// how well it predicts. Its upper level's ‖∂L/∂h_t‖² is [`Backward::time`].
pub struct LevelSignals {
    /// Inputs passed up (not predicted by the lower level), summed over the batch: `[1]`.
    pub passed: Tensor<1>,
    /// The lower level's loss at predicting each next input (mean cross-entropy): `[1]`.
    pub predict_loss: Tensor<1>,
    /// ‖∂L_predict/∂h^low_t‖² for t = 1..T: the lower level's error through time, `[T]`.
    pub low_time: Tensor<1>,
    /// The collapsed compressor: the lower level's error at reproducing the upper state
    /// (mean squared), and the examples whose answer it reproduces, `[1]` each.
    pub collapse: Option<(Tensor<1>, Tensor<1>)>,
}

/// A network the training loop can drive.
/// `Send`: a step may run on a worker thread (see `train::runner::drive_with`).
pub trait Network: Send {
    /// What `forward_tape` keeps for `backward`.
    type Tape;
    /// Probed layer labels, input side first.
    fn layer_names(&self) -> Vec<String>;
    /// Parameter names, aligned with `params()` (used for the canonical weights bytes).
    fn param_names(&self) -> Vec<String>;
    /// Every parameter, in canonical order.
    fn params(&self) -> Vec<Tensor<2>>;
    /// Replaces every parameter (same order and shapes as `params()`).
    fn set_params(&mut self, params: Vec<Tensor<2>>);
    /// Output logits, keeping nothing (evaluation).
    fn forward(&self, x: Tensor<2>) -> Tensor<2>;
    /// Output logits and the tape for `backward`.
    fn forward_tape(&self, x: Tensor<2>) -> (Tensor<2>, Self::Tape);
    /// Back-propagates `delta_out` = ∂L/∂logits.
    fn backward(&self, tape: Self::Tape, delta_out: Tensor<2>) -> Backward;
}

/// Every parameter with its name and shape, as `f32` values, in canonical order.
pub fn named_parameters<N: Network>(net: &N) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    net.param_names()
        .into_iter()
        .zip(net.params())
        .map(|(name, p)| {
            let shape = p.dims().to_vec();
            (
                name,
                shape,
                p.into_data()
                    .try_to_vec::<f32>()
                    .expect("parameters are f32"),
            )
        })
        .collect()
}

/// A row-major `[rows, cols]` matrix on `device`.
pub fn matrix(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}
