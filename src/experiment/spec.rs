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
    /// Gradient-free trainers (`train.optimizer = "genetic" | "random-search"`).
    #[serde(default)]
    pub search: SearchSection,
    /// Greedy RBM pretraining of `model.kind = "dbn"`.
    #[serde(default)]
    pub dbn: DbnSection,
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
    /// Hochreiter & Schmidhuber 1997, experiment 4: pairs (value, marker); regress
    /// 0.5 + (X1 + X2)/4 from the two marked values at the end of the sequence.
    Adding,
    /// Hochreiter & Schmidhuber 1997, experiment 6a: classify the order of the two relevant
    /// symbols (X or Y) hidden among distractors, 4 classes.
    TemporalOrder,
    /// Recall `copy_length` symbols shown at the start, after a long blank stretch, one
    /// 8-way choice per recalled symbol.
    CopyMemory,
    /// MacKay's bars and stripes on a `size`×`size` grid, labelled bars (0) or stripes (1).
    BarsStripes,
    /// A key at t = 0, a long predictable filler, a query at the end whose answer is the key
    /// (for the history compressor, Schmidhuber 1992), 4 classes.
    KeyRecall,
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
    /// Sequence tasks: time steps T, 10..=1000; default 50.
    pub seq_len: usize,
    /// Copy-memory: symbols to recall, 1..=100 with 2·copy_length + 1 ≤ seq_len; default 10.
    pub copy_length: usize,
    /// Bars and stripes: side n of the n×n grid, 2..=8; default 4.
    pub size: usize,
    /// Digits and MNIST: threshold pixels at ½ into 0/1; default false.
    pub binarize: bool,
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
            seq_len: 50,
            copy_length: 10,
            size: 4,
            binarize: false,
        }
    }
}

/// The network family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A plain deep multilayer perceptron.
    Mlp,
    /// Residual blocks h ← h + α·F(h) after an input projection (He et al. 2016).
    Resnet,
    /// A vanilla tanh recurrent net read out at the end of the sequence.
    Rnn,
    /// Long short-term memory with a forget gate (Hochreiter & Schmidhuber 1997; Gers et al. 2000).
    Lstm,
    /// A deep belief net: RBMs pretrained greedily with CD-k, then unrolled into a deep
    /// sigmoid MLP and fine-tuned (Hinton, Osindero & Teh 2006).
    Dbn,
    /// Schmidhuber's history compressor (1992): a tanh RNN that learns to predict its next
    /// input, under a second one that sees only the inputs the first failed to predict (with
    /// their time) and answers at the end.
    Chunker,
    /// Multi-dimensional LSTM (Graves, Fernández & Schmidhuber 2007) on an image: cells on the
    /// pixel grid with one forget gate per dimension, four scans from the four corners.
    Mdlstm,
    /// The 2-D tanh RNN of the same shape as `mdlstm`.
    Rnn2d,
}

/// The factor α of a residual block h ← h + α·F(h).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResidualScale {
    /// α = 1.
    One,
    /// α = 1/√(blocks).
    InvSqrtDepth,
    /// A given α.
    Value(f64),
}

/// How the recurrent matrix of `rnn` and `lstm` is drawn before scaling to
/// `model.spectral_radius`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecurrentInit {
    /// A random orthogonal matrix: every eigenvalue has modulus exactly the radius.
    Orthogonal,
    /// N(0, radius²/width): spectral radius ≈ the radius (circular law), spread singular values.
    Gaussian,
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
    /// Resnet: linear layers per residual branch F, 1 or 2; default 2.
    pub block_layers: usize,
    /// Resnet: α in h ← h + α·F(h): `"one"`, `"inv-sqrt-depth"` or a number in (0, 100]; default `"one"`.
    pub residual_scale: ResidualScale,
    /// Resnet: normalise each branch's input (layer norm without gain or bias); default false.
    pub layer_norm: bool,
    /// Rnn, lstm: how the recurrent matrix is drawn; default `orthogonal`.
    pub recurrent_init: RecurrentInit,
    /// Rnn, lstm: spectral radius of the recurrent matrix (each gate's block for lstm),
    /// (0, 100]; default 1.
    pub spectral_radius: f64,
    /// Lstm: initial bias of the forget gate, −100..=100; default 1.
    pub forget_bias: f64,
    /// Chunker: the collapsed history compressor — the lower level also learns to reproduce
    /// the upper level's state (Schmidhuber 1992); default false. Left out of the canonical
    /// form when false, so every config written before it keeps its hash.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub collapse: bool,
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
            block_layers: 2,
            residual_scale: ResidualScale::One,
            layer_norm: false,
            recurrent_init: RecurrentInit::Orthogonal,
            spectral_radius: 1.0,
            forget_bias: 1.0,
            collapse: false,
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
    /// iRprop− (Igel & Hüsken 2000): per-weight step sizes driven by gradient signs; full batch.
    Rprop,
    /// Tieleman & Hinton 2012: v ← ρ·v + (1−ρ)·g², w ← w − η·g/(√v + ε).
    Rmsprop,
    /// No gradients: a mutation-only genetic algorithm with truncation selection and elitism.
    Genetic,
    /// No gradients: weight guessing — every candidate drawn afresh from the initialisation.
    RandomSearch,
}

impl Optimizer {
    /// Whether this trainer uses no gradients at all.
    pub fn gradient_free(self) -> bool {
        matches!(self, Optimizer::Genetic | Optimizer::RandomSearch)
    }

    /// The name used in files and on screen.
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Momentum => "momentum",
            Optimizer::Adam => "adam",
            Optimizer::Rprop => "rprop",
            Optimizer::Rmsprop => "rmsprop",
            Optimizer::Genetic => "genetic",
            Optimizer::RandomSearch => "random-search",
        }
    }
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
    /// RMSProp decay ρ, 0..1; default 0.9.
    pub rmsprop_decay: f64,
    /// iRprop− step growth η⁺ when the gradient keeps its sign, (1, 10]; default 1.2.
    pub rprop_eta_plus: f64,
    /// iRprop− step shrink η⁻ when the sign flips, (0, 1); default 0.5.
    pub rprop_eta_minus: f64,
    /// iRprop− initial step Δ₀, (0, 100]; default 0.1.
    pub rprop_delta0: f64,
    /// iRprop− largest step Δmax, ≥ Δ₀; default 50.
    pub rprop_delta_max: f64,
    /// iRprop− smallest step Δmin, (0, Δ₀]; default 1e-6.
    pub rprop_delta_min: f64,
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
            rmsprop_decay: 0.9,
            rprop_eta_plus: 1.2,
            rprop_eta_minus: 0.5,
            rprop_delta0: 0.1,
            rprop_delta_max: 50.0,
            rprop_delta_min: 1e-6,
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

/// `[search]`: the gradient-free trainers; one generation per `train.steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSection {
    /// Candidates evaluated per generation, 2..=10_000; default 50.
    pub population: usize,
    /// Genetic: the best candidates kept unchanged and used as parents, 1..population; default 5.
    pub elite: usize,
    /// Genetic: standard deviation of the Gaussian noise added to every weight of a child,
    /// (0, 100]; default 0.05.
    pub mutation_scale: f64,
}

impl Default for SearchSection {
    fn default() -> Self {
        Self {
            population: 50,
            elite: 5,
            mutation_scale: 0.05,
        }
    }
}

/// `[dbn]`: greedy layer-wise pretraining of `model.kind = "dbn"` before fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbnSection {
    /// CD updates per RBM, 0..=10_000_000 (0 = no pretraining); default 500.
    pub pretrain_steps: usize,
    /// Gibbs steps k of CD-k, 1..=1000; default 1.
    pub cd_k: usize,
    /// Persistent CD (Tieleman 2008): negative chains carry over between updates; default false.
    pub persistent: bool,
    /// RBM learning rate, (0, 100]; default 0.1.
    pub learning_rate: f64,
    /// RBM momentum, 0..1; default 0.5.
    pub momentum: f64,
    /// RBM L2 weight decay, 0..=1; default 0.0002.
    pub weight_decay: f64,
    /// RBM minibatch size, 1..=65536; default 32.
    pub batch_size: usize,
    /// Images drawn by an ancestral pass after pretraining, 0..=256; default 16.
    pub samples: usize,
}

impl Default for DbnSection {
    fn default() -> Self {
        Self {
            pretrain_steps: 500,
            cd_k: 1,
            persistent: false,
            learning_rate: 0.1,
            momentum: 0.5,
            weight_decay: 0.0002,
            batch_size: 32,
            samples: 16,
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
            Task::Adding => "adding",
            Task::TemporalOrder => "temporal-order",
            Task::CopyMemory => "copy-memory",
            Task::BarsStripes => "bars-stripes",
            Task::KeyRecall => "key-recall",
        }
    }

    /// Whether each example is a sequence of `data.seq_len` steps.
    pub fn is_sequence(self) -> bool {
        matches!(
            self,
            Task::Adding | Task::TemporalOrder | Task::CopyMemory | Task::KeyRecall
        )
    }
}

impl ModelKind {
    /// The name used in files and on screen.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Resnet => "resnet",
            ModelKind::Rnn => "rnn",
            ModelKind::Lstm => "lstm",
            ModelKind::Dbn => "dbn",
            ModelKind::Chunker => "chunker",
            ModelKind::Mdlstm => "mdlstm",
            ModelKind::Rnn2d => "rnn2d",
        }
    }

    /// Whether the network scans an image's pixel grid (`mdlstm`, `rnn2d`).
    pub fn is_grid(self) -> bool {
        matches!(self, ModelKind::Mdlstm | ModelKind::Rnn2d)
    }

    /// Whether the network reads its input one time step at a time.
    pub fn is_recurrent(self) -> bool {
        matches!(self, ModelKind::Rnn | ModelKind::Lstm | ModelKind::Chunker)
    }
}

impl ResidualScale {
    /// α for a net of `blocks` residual blocks.
    pub fn alpha(self, blocks: usize) -> f64 {
        match self {
            ResidualScale::One => 1.0,
            ResidualScale::InvSqrtDepth => 1.0 / (blocks.max(1) as f64).sqrt(),
            ResidualScale::Value(v) => v,
        }
    }
}

/// In files: `"one"`, `"inv-sqrt-depth"` or a number.
impl Serialize for ResidualScale {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ResidualScale::One => s.serialize_str("one"),
            ResidualScale::InvSqrtDepth => s.serialize_str("inv-sqrt-depth"),
            ResidualScale::Value(v) => s.serialize_f64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for ResidualScale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ResidualScale;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("'one', 'inv-sqrt-depth' or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ResidualScale, E> {
                match v {
                    "one" => Ok(ResidualScale::One),
                    "inv-sqrt-depth" => Ok(ResidualScale::InvSqrtDepth),
                    other => Err(E::custom(format!(
                        "unknown residual scale '{other}': expected 'one', 'inv-sqrt-depth' or a number"
                    ))),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ResidualScale, E> {
                Ok(ResidualScale::Value(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ResidualScale, E> {
                Ok(ResidualScale::Value(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ResidualScale, E> {
                Ok(ResidualScale::Value(v as f64))
            }
        }
        d.deserialize_any(Visitor)
    }
}
