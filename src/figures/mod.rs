//! Figures from the ledger: what each `gradlab plot --kind` draws, built as [`plot::Figure`]
//! data from entries (their summaries and stored traces) and sweeps.
//!
//! [`plot::Figure`]: crate::plot::Figure

mod lesion;
mod zoo;

use crate::experiment::Experiment;
use crate::ledger::{Entry, Ledger, LedgerError};
use crate::plot::{Figure, Series};
use crate::sweep::run::SWEEP_TAG;
use crate::sweep::summary::sweep_ids;
use crate::sweep::{Metric, SummaryError, grid_summary};
use crate::theory;
use crate::train::{Probe, TraceLine};
use std::collections::BTreeMap;

/// What to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Gradient against depth, one line per entry (log scale), optionally with the theory.
    Depth,
    /// One entry's per-layer gradient over training (up to 8 layers, evenly spaced).
    Layers,
    /// Training and test loss over training, per entry.
    Loss,
    /// A recurrent net's gradient per time step, at the first and last probe.
    Time,
    /// A sweep's grid as a heatmap (`--sweep ID`), with ξ over σ_w × depth.
    Sweep,
    /// Test error against the number of blocks (layers) deleted, per lesion study (a lesion
    /// entry, or a run: its latest study), with chance dashed.
    Lesion,
    /// A residual net's gradient by path length: the share carried by paths through k
    /// branches, per lesion study.
    Paths,
    /// The history compressor: inputs its lower level passed up to the higher one (of T)
    /// over training, per entry.
    Levels,
    /// A grid net's (`mdlstm`, `rnn2d`) ‖∂L/∂h_{i,j}‖ over the image, one entry, at the first
    /// probe or (`--at end`) the last.
    Grid,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Depth => "depth",
            Kind::Layers => "layers",
            Kind::Loss => "loss",
            Kind::Time => "time",
            Kind::Sweep => "sweep",
            Kind::Lesion => "lesion",
            Kind::Paths => "paths",
            Kind::Levels => "levels",
            Kind::Grid => "grid",
        }
    }
}

/// Which gradient a depth or layers figure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Quantity {
    /// ‖δ‖ = ‖∂L/∂z‖, the back-propagated error at each layer's pre-activation.
    Delta,
    /// ‖∂L/∂W‖, the weight gradient.
    GradW,
}

impl Quantity {
    pub fn symbol(self) -> &'static str {
        match self {
            Quantity::Delta => "‖δ‖",
            Quantity::GradW => "‖∂L/∂W‖",
        }
    }
    fn of(self, l: &crate::train::LayerProbe) -> f64 {
        match self {
            Quantity::Delta => l.delta,
            Quantity::GradW => l.grad_w,
        }
    }
}

/// Which probe a depth profile is taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum At {
    /// The first probe: the gradient at initialisation.
    Init,
    /// The last probe.
    End,
}

/// A figure request, as given on the command line (options left out are None).
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    pub ids: Vec<String>,
    pub theory: bool,
    pub quantity: Option<Quantity>,
    pub at: Option<At>,
    pub sweep: Option<String>,
    pub metric: Option<Metric>,
}

/// A figure that cannot be made from what was asked for.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Sweep(#[from] SummaryError),
    #[error(
        "--kind {kind} needs at least one entry ID (a seq number or hash prefix; see `gradlab ledger list`)"
    )]
    NoIds { kind: &'static str },
    #[error("--kind layers and --kind grid draw one entry: give one ID, not {count}")]
    OneOnly { count: usize },
    #[error("--kind sweep draws the sweep named by --sweep; leave out the entry IDs ({ids})")]
    IdsWithSweep { ids: String },
    #[error("--kind sweep needs --sweep ID, the id `gradlab sweep` printed{known}")]
    NoSweep { known: String },
    #[error("--{option} does not apply to --kind {kind}")]
    Unused {
        option: &'static str,
        kind: &'static str,
    },
    #[error(
        "entry {seq} ({experiment}) has no per-time-step gradient: --kind time needs a recurrent net's entry"
    )]
    NotRecurrent { seq: u64, experiment: String },
    #[error("--theory: entry {seq} ({experiment}): {why}")]
    TheoryNone {
        seq: u64,
        experiment: String,
        why: String,
    },
    #[error("--theory predicts ‖δ‖ at initialisation: use it with --quantity delta and --at init")]
    TheoryScope,
    #[error("--theory: entry {seq}'s config or data cannot be rebuilt here: {message}")]
    TheoryInput { seq: u64, message: String },
    #[error(
        "entry {seq} ({experiment}) is not a history compressor: --kind levels needs a model.kind = \"chunker\" entry"
    )]
    NotChunker { seq: u64, experiment: String },
    #[error(
        "entry {seq} ({experiment}) is not a grid net: --kind grid needs a model.kind = \"mdlstm\" or \"rnn2d\" entry"
    )]
    NotGrid { seq: u64, experiment: String },
    #[error("entry {seq} ({experiment}) has no lesion study: run `gradlab lesion {seq}` first")]
    NoLesion { seq: u64, experiment: String },
    #[error(
        "entry {seq} ({experiment}) is a plain net: it has one path, so no path lengths (--kind paths needs a resnet's study)"
    )]
    NoPaths { seq: u64, experiment: String },
    #[error("entry {seq} ({experiment}) has no probes ({status} before its first step)")]
    NoProbes {
        seq: u64,
        experiment: String,
        status: &'static str,
    },
}

/// Builds the requested figure from `ledger`.
pub fn build(ledger: &Ledger, req: &Request) -> Result<Figure, FigureError> {
    let kind = req.kind.name();
    let unused = |option| FigureError::Unused { option, kind };
    if req.kind != Kind::Sweep {
        if req.sweep.is_some() {
            return Err(unused("sweep"));
        }
        if req.metric.is_some() {
            return Err(unused("metric"));
        }
    }
    if !matches!(req.kind, Kind::Depth | Kind::Layers) && req.quantity.is_some() {
        return Err(unused("quantity"));
    }
    if !matches!(req.kind, Kind::Depth | Kind::Time) && req.theory {
        return Err(unused("theory"));
    }
    if !matches!(req.kind, Kind::Depth | Kind::Grid) && req.at.is_some() {
        return Err(unused("at"));
    }
    if req.kind == Kind::Sweep {
        return sweep(ledger, req);
    }
    if req.ids.is_empty() {
        return Err(FigureError::NoIds { kind });
    }
    let entries = req
        .ids
        .iter()
        .map(|id| ledger.find(id))
        .collect::<Result<Vec<&Entry>, _>>()?;
    let labels = labels(&entries);
    let quantity = req.quantity.unwrap_or(Quantity::Delta);
    match req.kind {
        Kind::Depth => depth(
            &entries,
            &labels,
            quantity,
            req.at.unwrap_or(At::Init),
            req.theory,
        ),
        Kind::Layers => {
            if entries.len() != 1 {
                return Err(FigureError::OneOnly {
                    count: entries.len(),
                });
            }
            layers(ledger, entries[0], &labels[0], quantity)
        }
        Kind::Loss => loss(ledger, &entries, &labels),
        Kind::Time => time(ledger, &entries, &labels, req.theory),
        Kind::Lesion => lesion::lesion(ledger, &entries, &labels),
        Kind::Paths => lesion::paths(ledger, &entries, &labels),
        Kind::Levels => zoo::levels(ledger, &entries, &labels),
        Kind::Grid => {
            if entries.len() != 1 {
                return Err(FigureError::OneOnly {
                    count: entries.len(),
                });
            }
            zoo::grid(ledger, entries[0], req.at.unwrap_or(At::Init))
        }
        Kind::Sweep => unreachable!("handled above"),
    }
}

/// A config flattened to `section.key → value` text.
fn flat_config(config: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(toml::Value::Table(sections)) = toml::from_str::<toml::Value>(config) {
        for (section, table) in sections {
            if let toml::Value::Table(t) = table {
                for (k, v) in t {
                    out.insert(format!("{section}.{k}"), v.to_string());
                }
            }
        }
    }
    out
}

/// Legend labels that tell the entries apart: the experiment name when names differ, and
/// the config fields whose values differ between the entries (`depth=20, sigma_w=0.5`);
/// the entry's seq when the configs are the same.
fn labels(entries: &[&Entry]) -> Vec<String> {
    let configs: Vec<BTreeMap<String, String>> =
        entries.iter().map(|e| flat_config(&e.config)).collect();
    let names_differ = entries
        .iter()
        .any(|e| e.experiment != entries[0].experiment);
    let mut keys: Vec<&String> = configs
        .iter()
        .flat_map(|c| c.keys())
        .filter(|k| !matches!(k.as_str(), "experiment.name" | "experiment.description"))
        .filter(|k| configs.iter().any(|c| c.get(*k) != configs[0].get(*k)))
        .collect();
    keys.sort();
    keys.dedup();
    // Three fields keep a legend line short; more would not tell a reader more.
    keys.truncate(3);
    entries
        .iter()
        .zip(&configs)
        .map(|(e, c)| {
            let fields: Vec<String> = keys
                .iter()
                .map(|k| {
                    let short = k.rsplit('.').next().unwrap_or(k);
                    format!(
                        "{short}={}",
                        c.get(*k).map_or("-", String::as_str).trim_matches('"')
                    )
                })
                .collect();
            match (names_differ, fields.is_empty()) {
                (_, true) if entries.len() > 1 && !names_differ => {
                    format!("{} #{}", e.experiment, e.seq)
                }
                (_, true) => e.experiment.clone(),
                (false, false) => fields.join(", "),
                (true, false) => format!("{}, {}", e.experiment, fields.join(", ")),
            }
        })
        .collect()
}

fn no_probes(e: &Entry) -> FigureError {
    FigureError::NoProbes {
        seq: e.seq,
        experiment: e.experiment.clone(),
        status: e.status.name(),
    }
}

fn probes(ledger: &Ledger, e: &Entry) -> Result<Vec<Probe>, FigureError> {
    let probes: Vec<Probe> = ledger
        .load_trace(e)?
        .into_iter()
        .filter_map(|l| match l {
            TraceLine::Probe(p) => Some(p),
            _ => None,
        })
        .collect();
    if probes.is_empty() {
        return Err(no_probes(e));
    }
    Ok(probes)
}

fn depth(
    entries: &[&Entry],
    labels: &[String],
    quantity: Quantity,
    at: At,
    theory: bool,
) -> Result<Figure, FigureError> {
    if theory && (quantity != Quantity::Delta || at != At::Init) {
        return Err(FigureError::TheoryScope);
    }
    let mut series = Vec::new();
    let mut predicted = Vec::new();
    for (e, label) in entries.iter().zip(labels) {
        if e.layers.is_empty() {
            return Err(no_probes(e));
        }
        let value = |l: &crate::ledger::LayerProfile| match (quantity, at) {
            (Quantity::Delta, At::Init) => l.delta_first,
            (Quantity::Delta, At::End) => l.delta_last,
            (Quantity::GradW, At::Init) => l.grad_w_first,
            (Quantity::GradW, At::End) => l.grad_w_last,
        };
        let points = e
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| value(l).map(|v| ((i + 1) as f64, v)))
            .collect();
        series.push(Series {
            label: label.clone(),
            points,
        });
        if theory {
            predicted.push(prediction(e, label)?);
        }
    }
    let when = match at {
        At::Init => "at initialisation",
        At::End => "at the last probe",
    };
    Ok(Figure::DepthProfile {
        quantity: format!("{} {when}", quantity.symbol()),
        series,
        theory: predicted,
    })
}

/// The theory's profile of an entry's config (`gradlab theory`'s prediction), on `axis`.
fn theory_of(
    e: &Entry,
    axis: theory::profile::Axis,
) -> Result<theory::profile::Profile, FigureError> {
    let none = |why: String| FigureError::TheoryNone {
        seq: e.seq,
        experiment: e.experiment.clone(),
        why,
    };
    let exp = Experiment::from_canonical(&e.config).map_err(|err| FigureError::TheoryInput {
        seq: e.seq,
        message: err.to_string(),
    })?;
    let p = theory::profile::predict(&exp)
        .map_err(|err| FigureError::TheoryInput {
            seq: e.seq,
            message: err.to_string(),
        })?
        .ok_or_else(|| none(theory::not_covered(&exp).unwrap_or_default()))?;
    if p.axis != axis {
        return Err(none(match p.axis {
            theory::profile::Axis::Time => {
                "a recurrent net's prediction is through time: draw it with --kind time --theory"
                    .into()
            }
            theory::profile::Axis::Layers => {
                "its prediction is across layers: draw it with --kind depth --theory".into()
            }
        }));
    }
    Ok(p)
}

/// The mean-field ‖δ^l‖/‖δ^out‖ of an entry (MLP, DBN, residual net), scaled to its measured
/// ‖δ^out‖ at initialisation, so prediction and measurement meet at the output layer.
fn prediction(e: &Entry, label: &str) -> Result<Series, FigureError> {
    let p = theory_of(e, theory::profile::Axis::Layers)?;
    let out = e
        .layers
        .last()
        .and_then(|l| l.delta_first)
        .ok_or_else(|| no_probes(e))?;
    Ok(Series {
        label: format!("theory: {label}"),
        points: p
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.predicted.map(|v| ((i + 1) as f64, v * out)))
            .collect(),
    })
}

/// Up to `n` indices of `0..len`, evenly spaced, first and last included.
fn spread(len: usize, n: usize) -> Vec<usize> {
    if len <= n {
        return (0..len).collect();
    }
    let mut out: Vec<usize> = (0..n)
        .map(|k| ((k * (len - 1)) as f64 / (n - 1) as f64).round() as usize)
        .collect();
    out.dedup();
    out
}

fn layers(
    ledger: &Ledger,
    e: &Entry,
    label: &str,
    quantity: Quantity,
) -> Result<Figure, FigureError> {
    let probes = probes(ledger, e)?;
    let names: Vec<String> = e.layers.iter().map(|l| l.name.clone()).collect();
    // Eight lines stay readable (and within the colour-blind-safe palette).
    let series = spread(names.len(), 8)
        .into_iter()
        .map(|i| Series {
            label: names[i].clone(),
            points: probes
                .iter()
                .filter_map(|p| p.layers.get(i).map(|l| (p.step as f64, quantity.of(l))))
                .collect(),
        })
        .collect();
    Ok(Figure::OverTraining {
        title: format!("{} per layer over training: {label}", quantity.symbol()),
        quantity: quantity.symbol().to_string(),
        series,
    })
}

fn loss(ledger: &Ledger, entries: &[&Entry], labels: &[String]) -> Result<Figure, FigureError> {
    let mut series = Vec::new();
    for (e, label) in entries.iter().zip(labels) {
        let probes = probes(ledger, e)?;
        let name = |split: &str| {
            if entries.len() == 1 {
                split.to_string()
            } else {
                format!("{label} {split}")
            }
        };
        series.push(Series {
            label: name("train"),
            points: probes.iter().map(|p| (p.step as f64, p.loss)).collect(),
        });
        let test: Vec<(f64, f64)> = probes
            .iter()
            .filter_map(|p| p.test.map(|t| (p.step as f64, t.loss)))
            .collect();
        if !test.is_empty() {
            series.push(Series {
                label: name("test"),
                points: test,
            });
        }
    }
    // A log axis once the loss spans more than two decades (regression tasks often do).
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .collect();
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().copied().fold(0.0, f64::max);
    let title = if entries.len() == 1 {
        format!("loss: {}", labels[0])
    } else {
        "loss".to_string()
    };
    Ok(Figure::Loss {
        title,
        series,
        log_y: lo > 0.0 && hi / lo > 100.0,
    })
}

fn time(
    ledger: &Ledger,
    entries: &[&Entry],
    labels: &[String],
    theory: bool,
) -> Result<Figure, FigureError> {
    let mut series = Vec::new();
    for (e, label) in entries.iter().zip(labels) {
        let probes = probes(ledger, e)?;
        // A grid net's `time` is its scans' maps over the image (`--kind grid`), not time.
        let grid = matches!(
            flat_config(&e.config).get("model.kind").map(String::as_str),
            Some("\"mdlstm\"" | "\"rnn2d\"")
        );
        let with_time: Vec<&Probe> = probes
            .iter()
            .filter(|p| !p.time.is_empty() && !grid)
            .collect();
        let (Some(first), Some(last)) = (with_time.first(), with_time.last()) else {
            return Err(FigureError::NotRecurrent {
                seq: e.seq,
                experiment: e.experiment.clone(),
            });
        };
        if theory {
            // Scaled to the first probe's measured ‖∂L/∂h‖ at the reference step.
            let p = theory_of(e, theory::profile::Axis::Time)?;
            let reference = p
                .rows
                .iter()
                .rposition(|r| r.predicted.is_some())
                .unwrap_or(0);
            let scale = first.time.get(reference).copied().unwrap_or(1.0);
            series.push(Series {
                label: format!("theory: {label}, at initialisation"),
                points: p
                    .rows
                    .iter()
                    .enumerate()
                    .filter_map(|(t, r)| r.predicted.map(|v| ((t + 1) as f64, v * scale)))
                    .collect(),
            });
        }
        let mut picks = vec![*first];
        if last.step != first.step {
            picks.push(*last);
        }
        let along = |v: &[f64]| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .map(|(t, v)| ((t + 1) as f64, *v))
                .collect()
        };
        for p in picks {
            // The history compressor: the higher level's error, then the lower level's own.
            let (high, low) = match &p.levels {
                Some(l) => (", high level", Some(&l.low_time)),
                None => ("", None),
            };
            series.push(Series {
                label: format!("{label}{high}, step {}", p.step),
                points: along(&p.time),
            });
            if let Some(low) = low {
                series.push(Series {
                    label: format!("{label}, low level, step {}", p.step),
                    points: along(low),
                });
            }
        }
    }
    Ok(Figure::TimeProfile { series })
}

/// A readable axis name for a config field.
fn axis_label(field: &str) -> String {
    match field {
        "model.sigma_w" => "σ_w".into(),
        "model.sigma_b" => "σ_b".into(),
        "model.depth" => "depth (hidden layers)".into(),
        "model.width" => "width".into(),
        "train.learning_rate" => "learning rate".into(),
        other => other.into(),
    }
}

fn sweep(ledger: &Ledger, req: &Request) -> Result<Figure, FigureError> {
    if !req.ids.is_empty() {
        return Err(FigureError::IdsWithSweep {
            ids: req.ids.join(" "),
        });
    }
    let Some(id) = &req.sweep else {
        let ids = sweep_ids(ledger.entries());
        return Err(FigureError::NoSweep {
            known: if ids.is_empty() {
                " (this ledger has no sweeps)".into()
            } else {
                format!(" (this ledger's: {})", ids.join(", "))
            },
        });
    };
    let grid = grid_summary(ledger, id.trim_start_matches(SWEEP_TAG))?;
    let metric = req.metric.unwrap_or(Metric::Loss);
    Ok(Figure::Heatmap {
        title: metric.label().to_string(),
        x_label: axis_label(&grid.x_field),
        y_label: axis_label(&grid.y_field),
        values: grid.metric(metric).clone(),
        // Schoenholz et al. 2017: over σ_w × depth, nets train to depth ≈ 6ξ and no deeper
        // (Fig. 5); over σ_w × σ_b, the order–chaos line of the theory's plane (Fig. 1).
        overlay: grid
            .xi_curve
            .clone()
            .map(|points| Series {
                label: "6ξ: the trainable depth (Schoenholz et al. 2017)".into(),
                points: points.into_iter().map(|(x, xi)| (x, 6.0 * xi)).collect(),
            })
            .or_else(|| {
                grid.edge_curve.clone().map(|points| Series {
                    label: "the theory's edge χ* = 1".into(),
                    points,
                })
            }),
        xs: grid.xs,
        ys: grid.ys,
    })
}

/// The theory's own phase diagram (Schoenholz et al. 2017, Fig. 1): log10 χ* over the
/// (σ_w, σ_b) plane for `exp`'s activation, with the order–chaos line χ* = 1 drawn over it.
pub fn phase_plane(exp: &Experiment, sigma_w: &[f64], sigma_b: &[f64]) -> Figure {
    let m = &exp.spec().model;
    let (act, slope) = (m.activation, m.leaky_slope);
    let values = sigma_b
        .iter()
        .map(|&b| {
            sigma_w
                .iter()
                .map(|&w| theory::phase(act, slope, w * w, b * b).1.log10())
                .collect()
        })
        .collect();
    let edge: Vec<(f64, f64)> = sigma_b
        .iter()
        .filter_map(|&b| theory::critical_sigma_w2(act, slope, b * b).map(|c| (c.sqrt(), b)))
        .collect();
    Figure::Heatmap {
        title: format!("log10 χ*, {}: ordered < 0 < chaotic", act.name()),
        x_label: "σ_w".into(),
        y_label: "σ_b".into(),
        xs: sigma_w.to_vec(),
        ys: sigma_b.to_vec(),
        values,
        overlay: (!edge.is_empty()).then(|| Series {
            label: "the edge χ* = 1".into(),
            points: edge,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_first_and_last() {
        assert_eq!(spread(3, 8), vec![0, 1, 2]);
        assert_eq!(spread(21, 8), vec![0, 3, 6, 9, 11, 14, 17, 20]);
    }
}
