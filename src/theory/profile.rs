//! One prediction per gradient-trained model kind, as rows named as the trace names them
//! (layers, or time steps for recurrent nets), beside the measurement at initialisation:
//! what `gradlab theory` prints as a table or as one JSON object.

use super::{TheoryError, recurrent, residual};
use crate::experiment::{Experiment, ModelKind, Overrides};
use crate::train::{self, Control, RunEnv};
use serde::Serialize;

/// Across layers (‖δ^l‖/‖δ^out‖) or through time (‖∂L/∂h_t‖/‖∂L/∂h_ref‖).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Axis {
    Layers,
    Time,
}

/// One row: a trace layer or a time step.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    /// Pre-activation variance the theory gives there.
    pub q: Option<f64>,
    pub predicted: Option<f64>,
    /// Geometric mean over the seeds of the measured ratio at step 0.
    pub measured: Option<f64>,
    /// A second predicted column: the skip path's ‖∂L/∂h‖/‖δ^out‖ (residual nets) or the
    /// LSTM's cell-path factor alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub also: Option<f64>,
    /// Why there is no prediction here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A model's predicted profile and what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub experiment: String,
    pub model: String,
    /// The theory's name and paper.
    pub theory: String,
    pub axis: Axis,
    /// What the ratio columns are.
    pub quantity: String,
    /// What `also` is, when rows carry it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub also: Option<String>,
    /// Headline numbers: χ*, ξ, growth, bounds — name and value.
    pub figures: Vec<(String, f64)>,
    /// Plain statements: the regime, where the assumptions fail.
    pub notes: Vec<String>,
    /// Seeds the measurement averages.
    pub seeds: u64,
    pub rows: Vec<Row>,
}

/// The prediction for `exp` with its rows named and no measurement yet; `None` when the
/// model propagates no gradient (see [`super::not_covered`]).
pub fn predict(exp: &Experiment) -> Result<Option<Profile>, TheoryError> {
    if super::not_covered(exp).is_some() {
        return Ok(None);
    }
    let spec = exp.spec();
    let m = &spec.model;
    let ds = crate::data::build(&spec.data, exp.seed())?;
    let (input, out) = (ds.input_dim, ds.objective.output_dim());
    let base = |theory: &str, axis, quantity: &str| Profile {
        experiment: exp.name().to_string(),
        model: m.kind.name().to_string(),
        theory: theory.into(),
        axis,
        quantity: quantity.into(),
        also: None,
        figures: Vec::new(),
        notes: Vec::new(),
        seeds: 0,
        rows: Vec::new(),
    };
    let row = |name: String, q: Option<f64>, predicted: Option<f64>| Row {
        name,
        q,
        predicted,
        measured: None,
        also: None,
        reason: None,
    };
    let profile = match m.kind {
        ModelKind::Chunker | ModelKind::Mdlstm | ModelKind::Rnn2d => return Ok(None),
        ModelKind::Mlp | ModelKind::Dbn => {
            let p = super::predict(m, input, out, super::input_q(&ds.train.x));
            let mut prof = base(
                "mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017)",
                Axis::Layers,
                "‖δ^l‖/‖δ^out‖",
            );
            prof.figures = vec![("chi_star".into(), p.chi_star), ("xi".into(), p.xi.abs())];
            prof.notes.push(p.regime().to_string());
            if m.kind == ModelKind::Dbn {
                prof.notes.push(
                    "a deep belief net: the prediction is for its weights at random \
                     initialisation; the measurement is at the first fine-tuning step, after \
                     pretraining, whose weights are no longer the independent Gaussians the \
                     theory assumes"
                        .into(),
                );
            }
            prof.rows = (1..=m.depth)
                .map(|i| format!("h{i}"))
                .chain(["out".to_string()])
                .enumerate()
                .map(|(i, name)| row(name, p.q.get(i).copied(), Some(p.delta_ratio[i])))
                .collect();
            prof
        }
        ModelKind::Resnet => {
            let p = residual::predict(m, input, out, &super::example_q(&ds.train.x, input));
            let mut prof = base(
                "mean-field residual networks (Yang & Schoenholz 2017)",
                Axis::Layers,
                "‖δ^l‖/‖δ^out‖",
            );
            prof.also = Some("skip path ‖∂L/∂h_l‖/‖δ^out‖ at the block's end".into());
            let alpha = m.residual_scale.alpha(m.depth);
            prof.figures = vec![
                ("alpha".into(), alpha),
                ("growth_across_blocks".into(), p.growth.sqrt()),
            ];
            prof.notes.push(format!(
                "α = {alpha:.4}: the skip path passes δ back unchanged and each block adds to \
                 it, so δ grows toward the input by {:.3e} across the {} blocks instead of \
                 vanishing",
                p.growth.sqrt(),
                m.depth
            ));
            if m.layer_norm {
                prof.notes.push(
                    "with layer norm: the branch input is taken to have unit second moment \
                     and the backward pass through the norm to divide by the stream's \
                     variance; the paper treats nets without normalisation, so this part is \
                     our extension of it"
                        .into(),
                );
            }
            let mut names = vec!["in".to_string()];
            for l in 1..=m.depth {
                if m.block_layers == 1 {
                    names.push(format!("b{l}"));
                } else {
                    names.extend((1..=m.block_layers).map(|j| format!("b{l}.{j}")));
                }
            }
            names.push("out".into());
            prof.rows = names
                .into_iter()
                .enumerate()
                .map(|(i, name)| {
                    let mut r = row(name, p.q.get(i).copied(), Some(p.delta_ratio[i]));
                    // The block's last layer ends it: its skip value sits on that row.
                    let block_end =
                        i >= 1 && i % m.block_layers == 0 && i / m.block_layers <= m.depth;
                    if block_end && i + 1 < p.delta_ratio.len() {
                        r.also = p.skip_ratio.get(i / m.block_layers - 1).copied();
                    }
                    r
                })
                .collect();
            prof
        }
        ModelKind::Rnn | ModelKind::Lstm => {
            let (steps, features) = (ds.seq_len, ds.input_dim / ds.seq_len.max(1));
            let reads = ds.objective.positions();
            let xq = recurrent::input_q_per_step(&ds.train.x, steps, features);
            let lstm = m.kind == ModelKind::Lstm;
            let p = if lstm {
                recurrent::predict_lstm(m, &xq, features, reads)
            } else {
                recurrent::predict_rnn(m, &xq, features, reads)
            };
            let t_ref = p.relative_to;
            let mut prof = if lstm {
                let mut prof = base(
                    "LSTM through time at initialisation: mean-field gate statistics (the \
                     forget gate's from its bias and the gate variance), the backward pass per \
                     eigenmode of the recurrent weights",
                    Axis::Time,
                    &format!("‖∂L/∂h_t‖/‖∂L/∂h_{t_ref}‖"),
                );
                prof.also = Some(format!(
                    "the cell path alone: Π E[σ(f_s)] over s = t+1..{t_ref}"
                ));
                prof.figures = vec![("forget_gate_e_f2".into(), p.chi_last)];
                prof.notes.push(format!(
                    "forget bias {}: the cell path alone keeps {:.3} of the squared error per step",
                    m.forget_bias, p.chi_last
                ));
                if let Some(peak) = p.coherent_peak {
                    prof.figures.push(("coherent_peak".into(), peak));
                    prof.notes.push(format!(
                        "but the cell path and the recurrent path reuse W_g and add coherently: \
                         its most persistent mode changes ‖∂L/∂h‖ by {peak:.3} per step back \
                         ({})",
                        if peak > 1.0 { "growth" } else { "decay" }
                    ));
                }
                prof
            } else {
                let mut prof = base(
                    "mean-field RNN through time (Chen, Pennington & Schoenholz 2018)",
                    Axis::Time,
                    &format!("‖∂L/∂h_t‖/‖∂L/∂h_{t_ref}‖"),
                );
                prof.figures = vec![("chi_last".into(), p.chi_last)];
                match p.orthogonal_bound {
                    Some(b) => {
                        prof.figures.push(("orthogonal_bound".into(), b));
                        prof.notes.push(format!(
                            "orthogonal W_rec of radius {}: ‖∂L/∂h_1‖/‖∂L/∂h_{steps}‖ ≤ ρ^{} = {b:.3e} \
                             whatever the inputs (|tanh′| ≤ 1)",
                            m.spectral_radius,
                            steps.saturating_sub(1)
                        ));
                    }
                    None => prof.notes.push(
                        "Gaussian W_rec: its largest singular value exceeds its spectral radius \
                         (≈ 2ρ for a wide matrix), so no bound as simple as ρ^(T−1) holds"
                            .into(),
                    ),
                }
                prof
            };
            if reads > 1 {
                prof.notes.push(format!(
                    "the last {reads} steps are read out, each adding its own error: the ratios \
                     are relative to step {t_ref}, the first read, and not predicted after it"
                ));
            }
            prof.rows = (1..=steps)
                .map(|t| {
                    let mut r = row(format!("t{t}"), p.q.get(t - 1).copied(), p.ratio[t - 1]);
                    if r.predicted.is_none() {
                        r.reason = Some("a read-out step adds its own error here".into());
                    }
                    r.also = p
                        .cell_path
                        .as_ref()
                        .and_then(|c| c.get(t - 1).copied())
                        .filter(|c| c.is_finite());
                    r
                })
                .collect();
            prof
        }
    };
    Ok(Some(profile))
}

/// Fills `profile`'s measured column: the geometric mean over `seeds` runs (the file's seed
/// and the next ones) of the ratio at the step-0 probe, where the weights are the drawn ones.
pub fn measure(exp: &Experiment, seeds: u64, profile: &mut Profile) -> Result<(), TheoryError> {
    let mut sum_log = vec![0.0; profile.rows.len()];
    let reference = match profile.axis {
        Axis::Layers => profile.rows.len(),
        Axis::Time => profile
            .rows
            .iter()
            .rposition(|r| r.predicted.is_some())
            .map_or(profile.rows.len(), |i| i + 1),
    };
    for k in 0..seeds {
        let one = exp.clone().with_overrides(Overrides {
            steps: Some(1),
            seed: Some(exp.seed().wrapping_add(k)),
        })?;
        let out = train::train(&one, RunEnv::default(), &Control::new(), &mut |_| {});
        let probe = out
            .trace
            .first_probe()
            .ok_or_else(|| TheoryError::NoProbe {
                end: format!("{:?}", out.end),
            })?;
        let values: Vec<f64> = match profile.axis {
            Axis::Layers => {
                // The trace's own layer names must be the rows': a misaligned table is the
                // bug this module was written to end.
                let names: Vec<&str> = out.header.layers.iter().map(String::as_str).collect();
                let rows: Vec<&str> = profile.rows.iter().map(|r| r.name.as_str()).collect();
                if names != rows {
                    return Err(TheoryError::Misaligned {
                        trace: names.join(","),
                        rows: rows.join(","),
                    });
                }
                probe.layers.iter().map(|l| l.delta).collect()
            }
            Axis::Time => probe.time.clone(),
        };
        let r = values.get(reference - 1).copied().unwrap_or(f64::NAN);
        for (s, v) in sum_log.iter_mut().zip(&values) {
            *s += (v / r).ln();
        }
    }
    profile.seeds = seeds;
    for (row, s) in profile.rows.iter_mut().zip(sum_log) {
        row.measured = (seeds > 0).then(|| (s / seeds as f64).exp());
    }
    Ok(())
}

/// The text table.
pub fn render(p: &Profile, heading: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{heading}");
    let _ = writeln!(s, "theory: {}", p.theory);
    for n in &p.notes {
        let _ = writeln!(s, "{n}");
    }
    let _ = writeln!(
        s,
        "{} at initialisation (measured: geometric mean over {} seed(s))",
        p.quantity, p.seeds
    );
    if let Some(also) = &p.also {
        let _ = writeln!(s, "also: {also}");
    }
    let sci = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3e}"));
    let _ = writeln!(
        s,
        "{:<6} {:>10} {:>12} {:>12} {:>12}{}",
        if p.axis == Axis::Time {
            "step"
        } else {
            "layer"
        },
        "q",
        "predicted",
        "measured",
        "meas/pred",
        if p.also.is_some() {
            "         also"
        } else {
            ""
        }
    );
    for r in &p.rows {
        let ratio = match (r.measured, r.predicted) {
            (Some(m), Some(pr)) if pr != 0.0 => format!("{:.3}", m / pr),
            _ => "-".into(),
        };
        let _ = write!(
            s,
            "{:<6} {:>10} {:>12} {:>12} {:>12}",
            r.name,
            sci(r.q),
            sci(r.predicted),
            sci(r.measured),
            ratio
        );
        if p.also.is_some() {
            let _ = write!(s, " {:>12}", sci(r.also));
        }
        s.push('\n');
    }
    s
}
