//! How much memory a config needs at the least, so one that can never fit is refused
//! before it trains (and before it is recorded as an out-of-memory abort).
//!
//! The estimate counts only what is certain from the config alone: the hidden-to-hidden
//! weights (input and output layers depend on the data and are left out), their gradients
//! and optimiser state, a search's population, and the activations the backward pass keeps
//! for one batch. It is a lower bound, so it never refuses a config that would fit.

use super::spec::{ModelKind, Optimizer, Spec};

/// A lower bound on a run's memory, in bytes, by what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Parameters, their gradients and the optimiser's state (or a search's population).
    pub parameters: u64,
    /// The activations kept for the backward pass of one batch.
    pub activations: u64,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.parameters.saturating_add(self.activations)
    }
}

const F32: u64 = 4;

/// The lower bound for `spec`.
pub fn estimate(spec: &Spec) -> Estimate {
    let m = &spec.model;
    let (w, depth) = (m.width as u64, m.depth as u64);
    let batch = spec.train.batch_size as u64;
    let steps_in_time = spec.data.seq_len.max(1) as u64;
    // Hidden-to-hidden weights, and the values per example the backward pass keeps.
    let (weights, kept_per_example) = match m.kind {
        ModelKind::Mlp | ModelKind::Dbn | ModelKind::Resnet => {
            (depth.saturating_sub(1) * w * w, 2 * depth * w)
        }
        // h_t and the pre-activation at every time step.
        ModelKind::Rnn => (w * w, 2 * steps_in_time * w),
        // Four gates, the cell and its tanh at every time step.
        ModelKind::Lstm => (4 * w * w, 6 * steps_in_time * w),
        // Two levels of h_t and pre-activations, and the upper level's z_t.
        ModelKind::Chunker => (2 * w * w, 5 * steps_in_time * w),
        // Four scans of two recurrent matrices (five gate blocks each for the MD-LSTM), and
        // per pixel and scan the states and gates.
        ModelKind::Mdlstm => (40 * w * w, 4 * 8 * spec.data.input_dim.max(64) as u64 * w),
        ModelKind::Rnn2d => (8 * w * w, 4 * 2 * spec.data.input_dim.max(64) as u64 * w),
    };
    // Copies of every weight alive at once: itself, its gradient, the optimiser's slots;
    // a search holds its whole population instead.
    let copies = match spec.train.optimizer {
        Optimizer::Sgd => 2,
        Optimizer::Momentum | Optimizer::Rmsprop => 3,
        Optimizer::Adam | Optimizer::Rprop => 4,
        Optimizer::Genetic | Optimizer::RandomSearch => 1 + spec.search.population as u64,
    };
    let gradient_free = matches!(
        spec.train.optimizer,
        Optimizer::Genetic | Optimizer::RandomSearch
    );
    Estimate {
        parameters: weights.saturating_mul(copies).saturating_mul(F32),
        activations: if gradient_free {
            0
        } else {
            batch.saturating_mul(kept_per_example).saturating_mul(F32)
        },
    }
}

/// This machine's memory (`MemTotal` in `/proc/meminfo`), or None where it cannot be read.
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Bytes in GiB with one decimal, for messages.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(model: &str, train: &str) -> Spec {
        let text = format!("[experiment]\nname = \"m\"\n[model]\n{model}\n[train]\n{train}\n");
        crate::experiment::Experiment::parse(&text, std::path::Path::new("m.toml"))
            .expect("valid")
            .spec()
            .clone()
    }

    #[test]
    fn the_bound_counts_hidden_weights_copies_and_the_tape() {
        let e = estimate(&spec(
            "depth = 3\nwidth = 10",
            "optimizer = \"adam\"\nbatch_size = 5",
        ));
        // 2 hidden 10×10 matrices, 4 copies each; 5 examples × 2 × 3 × 10 values.
        assert_eq!(e.parameters, 2 * 100 * 4 * 4);
        assert_eq!(e.activations, 5 * 2 * 3 * 10 * 4);
        // The case: depth 500 × width 4096 needs far more than a 23 GiB machine.
        let big = estimate(&spec("depth = 500\nwidth = 4096", ""));
        assert!(big.total() > 60 << 30, "{}", gib(big.total()));
        let shipped = estimate(&spec("depth = 20\nwidth = 64", ""));
        assert!(shipped.total() < 10 << 20);
    }

    #[test]
    fn machine_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(machine_memory().is_some_and(|m| m > 1 << 26));
        }
    }
}
