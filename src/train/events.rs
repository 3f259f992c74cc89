//! What the training thread reports: the one event enum, and the trace records it carries.
//!
//! The trace records (`Header`, `Probe`, `End`) are also the JSON Lines trace format, so
//! their field names and order are a public, stable contract documented in the README.

use serde::{Deserialize, Serialize};

/// The trace format a run writes (its header's `format`), and what a probe step's test
/// metrics describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceFormat {
    /// `gradlab-trace/1`: the test metrics of a probe step were taken after its update, the
    /// rest of the record before it (entries made before format 2; their replays still do).
    V1,
    /// `gradlab-trace/2`: every field of a probe step's record, test metrics included,
    /// describes the weights before that step's update.
    #[default]
    V2,
}

impl TraceFormat {
    /// The header's `format` value.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::V1 => "gradlab-trace/1",
            TraceFormat::V2 => "gradlab-trace/2",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [TraceFormat::V1, TraceFormat::V2]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// First trace line: what ran, where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub experiment: String,
    pub config_hash: String,
    pub seed: u64,
    pub model: String,
    /// `classify` or `regress`.
    pub objective: String,
    pub steps: usize,
    pub backend: String,
    pub device: String,
    /// Worker threads, on engines whose trace records them; absent on `portable`, whose
    /// numbers do not depend on the count (the ledger entry's `execution.threads` keeps it),
    /// so a rerun on any count gives the same trace bytes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub threads: Option<usize>,
    /// Layer labels, input side first (empty for gradient-free trainers: nothing to probe).
    pub layers: Vec<String>,
    /// Gradient-free trainer (`genetic`, `random-search`): probes carry `fitness`, no layers.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub search: Option<String>,
    /// A lesion study's trace (`gradlab lesion`; format `gradlab-lesion/1`): what was studied
    /// and how. `layers` then names the units that can be deleted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lesion: Option<LesionSpec>,
}

/// What a lesion study was run on, and with how many draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LesionSpec {
    /// The hash of the trained entry whose final weights were studied.
    pub of: String,
    /// Random lesions drawn per number of deleted units k ≥ 2.
    pub draws: usize,
    /// Random paths sampled per path length (residual nets).
    pub path_draws: usize,
    /// Test examples every lesion is scored on.
    pub examples: usize,
    /// Classes of a classification task (chance is 1 − 1/classes); absent for regression.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub classes: Option<usize>,
}

/// One lesion of a trained net: the units in `deleted` replaced by the identity, scored on
/// the test split (Veit, Wilber & Belongie 2016, Fig. 3 and 5). `k = 0` is the intact net.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LesionRecord {
    pub k: usize,
    pub deleted: Vec<String>,
    /// Test error: the share misclassified, or the mean squared error for regression.
    pub error: f64,
    /// Test loss (cross-entropy or mean squared error).
    pub loss: f64,
}

/// The gradient reaching the residual stream's start through paths of length `k`, those
/// that take k residual branches and skip the rest (Veit et al. 2016, Fig. 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathsRecord {
    pub k: usize,
    /// How many such paths there are: C(L, k).
    pub paths: f64,
    /// Paths sampled (all of them when there are fewer).
    pub draws: usize,
    /// Mean over the sampled paths of the mean over examples of ‖∂L/∂h_0‖ along one path.
    pub mean: f64,
    /// paths × mean over the same for every k: the share of the total gradient magnitude
    /// that paths of this length carry.
    pub share: f64,
}

/// Statistics of one layer at one probe step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LayerProbe {
    /// ‖δ‖ = ‖∂L/∂z‖ over the batch: the back-propagated error at the pre-activation.
    pub delta: f64,
    /// ‖∂L/∂W‖ (Frobenius).
    pub grad_w: f64,
    /// ‖∂L/∂b‖.
    pub grad_b: f64,
    /// ‖W‖ before this step's update.
    pub weight: f64,
    /// ‖ΔW‖ / ‖W‖ of this step's update.
    pub update_ratio: f64,
    /// Mean and standard deviation of the layer's output (after its activation; logits for
    /// the output layer) over batch and units.
    pub act_mean: f64,
    pub act_std: f64,
    /// Fraction of outputs saturated (tanh |h| > 0.97, sigmoid outside [0.03, 0.97]) or dead
    /// (relu-family z ≤ 0, gelu z < −2.5); 0 for linear layers.
    pub saturation: f64,
    /// Residual nets: ‖∂L/∂h‖ on the skip path (the residual stream) where this layer's
    /// block ends; absent for layers off the skip path and for other nets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skip_delta: Option<f64>,
}

/// Loss (and accuracy, for classification) on the held-out split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    pub loss: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accuracy: Option<f64>,
}

/// One probe step. `step` counts from 0 (the gradient at initialisation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub step: usize,
    /// Training loss on this step's batch.
    pub loss: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accuracy: Option<f64>,
    pub layers: Vec<LayerProbe>,
    /// Recurrent nets: ‖∂L/∂h_t‖ for t = 1..T (the vanishing through time); absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub time: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test: Option<TestMetrics>,
    /// Gradient-free trainers: the generation's losses on this step's batch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fitness: Option<Fitness>,
    /// The history compressor: what its lower level passes up and how well it predicts
    /// (`time` is then its upper level's ‖∂L/∂h_t‖).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub levels: Option<Levels>,
}

/// The history compressor's two levels at one probe step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    /// Inputs the lower level failed to predict and passed up, per sequence (mean over the
    /// batch), of `steps`.
    pub passed_up: f64,
    pub steps: usize,
    /// The lower level's loss at predicting each next input (mean cross-entropy, nats).
    pub predict_loss: f64,
    /// ‖∂L_predict/∂h^low_t‖ for t = 1..T: the lower level's own error through time.
    pub low_time: Vec<f64>,
    /// The collapsed compressor (`model.collapse`): the lower level's mean squared error at
    /// reproducing the upper level's state, and the share of the batch whose answer, read
    /// from that reproduction at the last step, is the upper level's own.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub collapse_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub collapsed_agreement: Option<f64>,
}

/// Losses of one generation of a gradient-free search (lower is fitter).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fitness {
    /// The best candidate's loss (the one `loss` and `accuracy` describe).
    pub best: f64,
    /// Mean loss over the population (non-finite losses count as `null` and are left out).
    pub mean: f64,
}

/// A phase of a run with several (deep belief nets: pretraining each RBM, then fine-tuning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `pretrain` or `finetune`.
    pub phase: String,
    /// Pretraining: which RBM (1 = the one on the data), of how many.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rbm: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub of: Option<usize>,
    /// Pretraining: visible and hidden units of this RBM.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub visible: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hidden: Option<usize>,
    /// Updates this phase will run.
    pub steps: usize,
}

/// One probe of an RBM during greedy pretraining. `step` counts this RBM's CD updates from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainProbe {
    pub rbm: usize,
    pub step: usize,
    /// Mean squared error of a one-step mean-field reconstruction of this step's batch.
    pub recon_error: f64,
    /// Mean free energy of the test inputs minus that of the training inputs (both mapped
    /// up to this RBM's visible layer); grows when the RBM overfits (Hinton 2010, §6).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub free_energy_gap: Option<f64>,
    /// Exact mean log-likelihood (nats) of the training inputs, by enumerating the smaller
    /// layer's 2ⁿ states; only while n ≤ 20.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_likelihood: Option<f64>,
    /// The same on the test inputs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_log_likelihood: Option<f64>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Completed,
    /// A loss or gradient became NaN or infinite.
    Diverged,
    /// Stopped by the user (or a signal) before the last step.
    Interrupted,
    /// An internal error ended the run.
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Diverged => "diverged",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
        }
    }
}

/// Last trace line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct End {
    pub status: Status,
    /// Steps whose update was applied.
    pub steps_done: usize,
    /// The step whose loss or gradient was first non-finite.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diverged_at: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// One line of a trace file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceLine {
    Header(Header),
    Probe(Probe),
    End(End),
    Phase(Phase),
    Pretrain(PretrainProbe),
    Lesion(LesionRecord),
    Paths(PathsRecord),
}

/// What the training thread sends. Wall-clock figures ride beside the trace records, never
/// inside them, so traces stay byte-identical across reruns.
#[derive(Debug, Clone)]
pub enum Event {
    Started(Header),
    Probe {
        probe: Probe,
        /// Seconds since the first step began.
        wall_s: f64,
    },
    /// The run has ended; the full outcome comes from the thread's join handle.
    Finished {
        end: End,
        wall_s: f64,
    },
    /// A new phase begins (also a trace line).
    Phase(Phase),
    /// An RBM probe during pretraining (also a trace line).
    Pretrain {
        probe: PretrainProbe,
        wall_s: f64,
    },
    /// Images drawn by an ancestral pass down a pretrained deep belief net: `images` of
    /// `height × width` values in [0, 1], row-major. Not part of the trace.
    Samples {
        width: usize,
        height: usize,
        images: Vec<Vec<f32>>,
    },
}
