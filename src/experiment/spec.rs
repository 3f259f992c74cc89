//! The serde mirror of an experiment file: sections, fields, defaults and allowed values.
//!
//! Every field has a default, so a file names only what it changes. Unknown keys are
//! errors (`deny_unknown_fields`) so a mistyped `lerning_rate` never falls back silently.
//! The ranges enforced in `validate.rs` are documented beside each field here and in
//! `experiments/README.md`.

use serde::{Deserialize, Serialize};

/// A whole experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub experiment: ExperimentSection,
    #[serde(default)]
    pub data: DataSection,
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub train: TrainSection,
    #[serde(default)]
    pub probe: ProbeSection,
}

/// `[experiment]`: identity and the one seed every random draw flows from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    /// Required; 1..=64 characters of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// One line shown in the experiments screen; default empty.
    #[serde(default)]
    pub description: String,
    /// Seed of data generation, initialisation and batch order; default 0.
    #[serde(default)]
    pub seed: u64,
}

/// Which data set to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Two interleaved spirals in the plane, 2 classes.
    Spirals,
    /// n-bit parity of ±1 inputs, 2 classes.
    Parity,
    /// Regression onto the output of a random deep tanh "teacher" net.
    Teacher,
    /// The real 8×8 handwritten digits shipped in `data/digits.csv.gz`, 10 classes.
    Digits,
    /// MNIST IDX files from the local folder `data.path`.
    Mnist,
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Default `spirals`.
    pub task: Task,
    /// Training examples, 1..=1_000_000; default 1024 (parity and digits cap it at what exists).
    pub train_size: usize,
    /// Held-out examples, 0..=1_000_000; default 512.
    pub test_size: usize,
    /// Spirals: Gaussian noise added to each point, 0..=1; default 0.05.
    pub noise: f64,
    /// Spirals: turns of each arm, 0.25..=5; default 1.5.
    pub turns: f64,
    /// Parity: number of bits, 2..=20; default 8.
    pub bits: usize,
    /// Teacher: input dimension 1..=1024, default 16.
    pub input_dim: usize,
    /// Teacher: output dimension 1..=256, default 1.
    pub output_dim: usize,
    /// Teacher: hidden layers of the teacher net 1..=50, default 3.
    pub teacher_depth: usize,
    /// Teacher: width of the teacher net 1..=1024, default 32.
    pub teacher_width: usize,
    /// MNIST: folder with the IDX files; required for `mnist`, empty otherwise.
    pub path: String,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            task: Task::Spirals,
            train_size: 1024,
            test_size: 512,
            noise: 0.05,
            turns: 1.5,
            bits: 8,
            input_dim: 16,
            output_dim: 1,
            teacher_depth: 3,
            teacher_width: 32,
            path: String::new(),
        }
    }
}

/// The network family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A plain deep multilayer perceptron.
    Mlp,
}

/// Element-wise non-linearity of the hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Tanh,
    Sigmoid,
    Relu,
    LeakyRelu,
    Gelu,
    Linear,
}

/// Weight initialisation scheme; every scheme is multiplied by `sigma_w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// N(0, σ_w²): a fixed scale that ignores the fan-in, as in the 1990s.
    Naive,
    /// U(−σ_w, σ_w): the other fixed-scale habit of the 1990s.
    NaiveUniform,
    /// Glorot & Bengio 2010, U(−a, a) with a = σ_w·√(6/(fan_in+fan_out)).
    XavierUniform,
    /// Glorot & Bengio 2010, N(0, σ_w²·2/(fan_in+fan_out)).
    XavierNormal,
    /// He et al. 2015, N(0, σ_w²·2/fan_in).
    He,
    /// Saxe et al. 2014: a random orthogonal matrix times σ_w.
    Orthogonal,
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Default `mlp`.
    pub kind: ModelKind,
    /// Hidden layers, 1..=500; default 20.
    pub depth: usize,
    /// Units per hidden layer, 1..=4096; default 64.
    pub width: usize,
    /// Default `tanh`.
    pub activation: Activation,
    /// Default `xavier-normal`.
    pub init: Init,
    /// Weight scale σ_w, > 0 and ≤ 100; default 1.
    pub sigma_w: f64,
    /// Bias scale σ_b (biases drawn from N(0, σ_b²)), 0..=100; default 0.
    pub sigma_b: f64,
    /// Slope of leaky-relu for negative inputs, 0..=1; default 0.01.
    pub leaky_slope: f64,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            kind: ModelKind::Mlp,
            depth: 20,
            width: 64,
            activation: Activation::Tanh,
            init: Init::XavierNormal,
            sigma_w: 1.0,
            sigma_b: 0.0,
            leaky_slope: 0.01,
        }
    }
}

/// Gradient-based optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// w ← w − η·g.
    Sgd,
    /// Heavy ball: v ← μ·v + g, w ← w − η·v.
    Momentum,
    /// Kingma & Ba 2015 with bias correction.
    Adam,
}

/// Gradient clipping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clip {
    None,
    /// Pascanu et al. 2013: rescale all gradients together so their global norm ≤ threshold.
    GlobalNorm,
    /// Clamp every gradient element into [−threshold, threshold].
    Value,
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Default `sgd`.
    pub optimizer: Optimizer,
    /// η, > 0 and ≤ 100; default 0.01.
    pub learning_rate: f64,
    /// μ for `momentum`, 0..1; default 0.9.
    pub momentum: f64,
    /// Adam β₁, 0..1; default 0.9.
    pub beta1: f64,
    /// Adam β₂, 0..1; default 0.999.
    pub beta2: f64,
    /// Adam ε, > 0 and ≤ 1; default 1e-8.
    pub epsilon: f64,
    /// Examples per step, 1..=65536; default 64 (a batch ≥ the training set is full-batch).
    pub batch_size: usize,
    /// Optimisation steps, 1..=10_000_000; default 500.
    pub steps: usize,
    /// Default `none`.
    pub clip: Clip,
    /// Clipping threshold, > 0; default 1.
    pub clip_threshold: f64,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            optimizer: Optimizer::Sgd,
            learning_rate: 0.01,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            batch_size: 64,
            steps: 500,
            clip: Clip::None,
            clip_threshold: 1.0,
        }
    }
}

/// `[probe]`: how often the per-layer statistics are taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSection {
    /// Probe every N steps (the first and last step are always probed), 1..=1_000_000; default 1.
    pub every: usize,
    /// Evaluate the test set every N steps (and at the last step), 0 = only at the end; default 50.
    pub test_every: usize,
}

impl Default for ProbeSection {
    fn default() -> Self {
        Self {
            every: 1,
            test_every: 50,
        }
    }
}

impl Activation {
    /// The name used in files and on screen.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Gelu => "gelu",
            Activation::Linear => "linear",
        }
    }
}

impl Init {
    /// The name used in files and on screen.
    pub fn name(self) -> &'static str {
        match self {
            Init::Naive => "naive",
            Init::NaiveUniform => "naive-uniform",
            Init::XavierUniform => "xavier-uniform",
            Init::XavierNormal => "xavier-normal",
            Init::He => "he",
            Init::Orthogonal => "orthogonal",
        }
    }
}

impl Task {
    /// The name used in files and on screen.
    pub fn name(self) -> &'static str {
        match self {
            Task::Spirals => "spirals",
            Task::Parity => "parity",
            Task::Teacher => "teacher",
            Task::Digits => "digits",
            Task::Mnist => "mnist",
        }
    }
}

impl ModelKind {
    /// The name used in files and on screen.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
        }
    }
}
