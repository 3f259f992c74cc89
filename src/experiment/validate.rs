//! Range checks of a parsed spec: the one place that decides what values are allowed.

use super::spec::{Activation, ModelKind, Optimizer, ResidualScale, Spec, Task};

/// The largest seed: TOML's largest integer, `i64::MAX`.
pub const MAX_SEED: u64 = i64::MAX as u64;

/// One value outside what is allowed.
#[derive(Debug)]
pub struct Violation {
    pub field: String,
    pub value: String,
    pub allowed: String,
}

fn int_range(field: &str, v: usize, lo: usize, hi: usize) -> Result<(), Violation> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Violation {
            field: field.into(),
            value: v.to_string(),
            allowed: format!("must be between {lo} and {hi}"),
        })
    }
}

/// A float as the user would write it: `1e308`, not its 309 digits.
fn show(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-6..1e16).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `lo < v <= hi` when `open_low`, else `lo <= v <= hi`; NaN and infinities never pass.
fn float_range(field: &str, v: f64, lo: f64, hi: f64, open_low: bool) -> Result<(), Violation> {
    let ok = v.is_finite() && if open_low { v > lo } else { v >= lo } && v <= hi;
    if ok {
        Ok(())
    } else {
        let low = if open_low { "greater than" } else { "at least" };
        Err(Violation {
            field: field.into(),
            value: show(v),
            allowed: format!("must be {low} {lo} and at most {hi}"),
        })
    }
}

fn below_one(field: &str, v: f64) -> Result<(), Violation> {
    if v.is_finite() && (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(Violation {
            field: field.into(),
            value: show(v),
            allowed: "must be at least 0 and below 1".into(),
        })
    }
}

/// Checks every field of `spec`, returning the first violation in file order.
pub fn check(spec: &Spec) -> Result<(), Violation> {
    let e = &spec.experiment;
    let name_ok = !e.name.is_empty()
        && e.name.len() <= 64
        && e.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !name_ok {
        return Err(Violation {
            field: "experiment.name".into(),
            value: format!("'{}'", e.name),
            allowed: "must be 1 to 64 characters of letters, digits, '_', '-' and '.'".into(),
        });
    }
    // TOML integers are signed 64-bit, and the canonical config embeds the seed as one: a
    // seed above that could be run but never written down, so it is refused everywhere.
    if e.seed > MAX_SEED {
        return Err(Violation {
            field: "experiment.seed".into(),
            value: e.seed.to_string(),
            allowed: format!("must be between 0 and {MAX_SEED} (2^63 − 1, TOML's largest integer)"),
        });
    }
    if e.description.contains('\n') {
        return Err(Violation {
            field: "experiment.description".into(),
            value: "(several lines)".into(),
            allowed: "must be one line".into(),
        });
    }

    let d = &spec.data;
    int_range("data.train_size", d.train_size, 1, 1_000_000)?;
    int_range("data.test_size", d.test_size, 0, 1_000_000)?;
    float_range("data.noise", d.noise, 0.0, 1.0, false)?;
    float_range("data.turns", d.turns, 0.25, 5.0, false)?;
    int_range("data.bits", d.bits, 2, 20)?;
    int_range("data.input_dim", d.input_dim, 1, 1024)?;
    int_range("data.output_dim", d.output_dim, 1, 256)?;
    int_range("data.teacher_depth", d.teacher_depth, 1, 50)?;
    int_range("data.teacher_width", d.teacher_width, 1, 1024)?;
    match (d.task, d.path.is_empty()) {
        (Task::Mnist, true) => {
            return Err(Violation {
                field: "data.path".into(),
                value: "''".into(),
                allowed: "must name a local folder holding the MNIST IDX files for task 'mnist'"
                    .into(),
            });
        }
        (Task::Mnist, false) | (_, true) => {}
        (task, false) => {
            return Err(Violation {
                field: "data.path".into(),
                value: format!("'{}'", d.path),
                allowed: format!("is only used by task 'mnist', not '{}'", task.name()),
            });
        }
    }

    int_range("data.seq_len", d.seq_len, 10, 1000)?;
    int_range("data.copy_length", d.copy_length, 1, 100)?;
    if d.task == Task::CopyMemory && 2 * d.copy_length + 1 > d.seq_len {
        return Err(Violation {
            field: "data.copy_length".into(),
            value: d.copy_length.to_string(),
            allowed: format!(
                "must leave room for the symbols, a delimiter and the recall: 2·copy_length + 1 ≤ seq_len ({})",
                d.seq_len
            ),
        });
    }
    int_range("data.size", d.size, 2, 8)?;
    if d.binarize && !matches!(d.task, Task::Digits | Task::Mnist) {
        return Err(Violation {
            field: "data.binarize".into(),
            value: "true".into(),
            allowed: format!(
                "is only used by tasks 'digits' and 'mnist', not '{}'",
                d.task.name()
            ),
        });
    }

    let m = &spec.model;
    if m.kind.is_recurrent() && !d.task.is_sequence() {
        return Err(Violation {
            field: "model.kind".into(),
            value: format!("'{}'", m.kind.name()),
            allowed: format!(
                "reads sequences: use data.task 'adding', 'temporal-order', 'copy-memory' or 'key-recall', not '{}'",
                d.task.name()
            ),
        });
    }
    if m.kind.is_grid() && !matches!(d.task, Task::Digits | Task::BarsStripes | Task::Mnist) {
        return Err(Violation {
            field: "model.kind".into(),
            value: format!("'{}'", m.kind.name()),
            allowed: format!(
                "scans an image's pixel grid: use data.task 'digits', 'bars-stripes' or 'mnist', not '{}'",
                d.task.name()
            ),
        });
    }
    if m.kind.is_grid() && spec.train.optimizer.gradient_free() {
        return Err(Violation {
            field: "train.optimizer".into(),
            value: format!("'{}'", spec.train.optimizer.name()),
            allowed: format!(
                "must use gradients for model '{}': 'sgd', 'momentum', 'adam', 'rmsprop' or 'rprop'",
                m.kind.name()
            ),
        });
    }
    if m.collapse && m.kind != ModelKind::Chunker {
        return Err(Violation {
            field: "model.collapse".into(),
            value: "true".into(),
            allowed: format!(
                "is only used by model.kind 'chunker', not '{}'",
                m.kind.name()
            ),
        });
    }
    if m.kind == ModelKind::Chunker {
        if !matches!(d.task, Task::KeyRecall | Task::TemporalOrder) {
            return Err(Violation {
                field: "model.kind".into(),
                value: "'chunker'".into(),
                allowed: format!(
                    "predicts its next input symbol and answers at the end: use data.task \
                     'key-recall' or 'temporal-order' (one-hot symbols, one answer), not '{}'",
                    d.task.name()
                ),
            });
        }
        if spec.train.optimizer.gradient_free() {
            return Err(Violation {
                field: "train.optimizer".into(),
                value: format!("'{}'", spec.train.optimizer.name()),
                allowed: "must use gradients for model 'chunker' (its lower level learns to \
                          predict by back-propagation): 'sgd', 'momentum', 'adam', 'rmsprop' or 'rprop'"
                    .into(),
            });
        }
    }
    if m.kind == ModelKind::Dbn {
        let binary = d.task == Task::BarsStripes || d.binarize;
        if !binary {
            return Err(Violation {
                field: "model.kind".into(),
                value: "'dbn'".into(),
                allowed: "needs binary data: data.task 'bars-stripes', or 'digits' / 'mnist' with data.binarize = true"
                    .into(),
            });
        }
        if spec.train.optimizer.gradient_free() {
            return Err(Violation {
                field: "train.optimizer".into(),
                value: format!("'{}'", spec.train.optimizer.name()),
                allowed:
                    "must use gradients for model 'dbn' (it is fine-tuned by back-propagation): \
                          'sgd', 'momentum', 'adam', 'rmsprop' or 'rprop'"
                        .into(),
            });
        }
        if m.activation != Activation::Sigmoid {
            return Err(Violation {
                field: "model.activation".into(),
                value: format!("'{}'", m.activation.name()),
                allowed: "must be 'sigmoid' for model 'dbn' (RBM units are logistic)".into(),
            });
        }
    }
    int_range("model.depth", m.depth, 1, 500)?;
    int_range("model.width", m.width, 1, 4096)?;
    float_range("model.sigma_w", m.sigma_w, 0.0, 100.0, true)?;
    float_range("model.sigma_b", m.sigma_b, 0.0, 100.0, false)?;
    float_range("model.leaky_slope", m.leaky_slope, 0.0, 1.0, false)?;
    int_range("model.block_layers", m.block_layers, 1, 2)?;
    if let ResidualScale::Value(a) = m.residual_scale {
        float_range("model.residual_scale", a, 0.0, 100.0, true)?;
    }
    float_range("model.spectral_radius", m.spectral_radius, 0.0, 100.0, true)?;
    float_range("model.forget_bias", m.forget_bias, -100.0, 100.0, false)?;

    let t = &spec.train;
    float_range("train.learning_rate", t.learning_rate, 0.0, 100.0, true)?;
    below_one("train.momentum", t.momentum)?;
    below_one("train.beta1", t.beta1)?;
    below_one("train.beta2", t.beta2)?;
    float_range("train.epsilon", t.epsilon, 0.0, 1.0, true)?;
    int_range("train.batch_size", t.batch_size, 1, 65_536)?;
    int_range("train.steps", t.steps, 1, 10_000_000)?;
    float_range("train.clip_threshold", t.clip_threshold, 0.0, 1e6, true)?;
    below_one("train.rmsprop_decay", t.rmsprop_decay)?;
    float_range("train.rprop_eta_plus", t.rprop_eta_plus, 1.0, 10.0, true)?;
    if !(t.rprop_eta_minus > 0.0 && t.rprop_eta_minus < 1.0) {
        return Err(Violation {
            field: "train.rprop_eta_minus".into(),
            value: format!("{}", t.rprop_eta_minus),
            allowed: "must be greater than 0 and below 1".into(),
        });
    }
    float_range("train.rprop_delta0", t.rprop_delta0, 0.0, 100.0, true)?;
    float_range(
        "train.rprop_delta_max",
        t.rprop_delta_max,
        t.rprop_delta0,
        1e6,
        false,
    )?;
    float_range(
        "train.rprop_delta_min",
        t.rprop_delta_min,
        0.0,
        t.rprop_delta0,
        true,
    )?;
    if t.optimizer == Optimizer::Rprop && t.batch_size < d.train_size {
        return Err(Violation {
            field: "train.batch_size".into(),
            value: t.batch_size.to_string(),
            allowed: format!(
                "must be at least data.train_size ({}) for 'rprop': its sign rule needs full-batch gradients",
                d.train_size
            ),
        });
    }

    let s = &spec.search;
    int_range("search.population", s.population, 2, 10_000)?;
    // Only the genetic algorithm keeps an elite: its default (5) must not fail a random search
    // or a gradient run whose population is small.
    if t.optimizer == Optimizer::Genetic {
        int_range("search.elite", s.elite, 1, s.population - 1)?;
    } else {
        int_range("search.elite", s.elite, 1, 10_000)?;
    }
    float_range("search.mutation_scale", s.mutation_scale, 0.0, 100.0, true)?;

    let b = &spec.dbn;
    int_range("dbn.pretrain_steps", b.pretrain_steps, 0, 10_000_000)?;
    int_range("dbn.cd_k", b.cd_k, 1, 1000)?;
    float_range("dbn.learning_rate", b.learning_rate, 0.0, 100.0, true)?;
    below_one("dbn.momentum", b.momentum)?;
    float_range("dbn.weight_decay", b.weight_decay, 0.0, 1.0, false)?;
    int_range("dbn.batch_size", b.batch_size, 1, 65_536)?;
    int_range("dbn.samples", b.samples, 0, 256)?;

    let p = &spec.probe;
    int_range("probe.every", p.every, 1, 1_000_000)?;
    int_range("probe.test_every", p.test_every, 0, 10_000_000)?;
    Ok(())
}
