//! What a sweep found, read back from the ledger: the per-point table `gradlab sweep` ends
//! with, and the two-axis grid (`grid_summary`) behind the heatmap figure and the TUI's
//! sweep screen, with the mean-field depth scale ξ(σ_w) to draw over it.
//!
//! Both read entries by config hash, not by tag alone, so a point recorded earlier by a plain
//! `gradlab run --set …` (which the sweep then skipped) still counts. When a config was run
//! more than once (`--rerun`), its latest entry stands for it.

use super::grid::Axis;
use super::run::{AXES_TAG, Plan, SWEEP_TAG};
use crate::experiment::{Experiment, ModelKind};
use crate::ledger::{Entry, Ledger};
use crate::train::Status;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Why a sweep's grid cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("no entries are tagged 'sweep:{id}' in this ledger{known}")]
    UnknownSweep { id: String, known: String },
    #[error(
        "sweep {id} has {count} ax{}: the grid needs exactly two (e.g. --set model.sigma_w=… --set model.depth=…)",
        if *count == 1 { "is" } else { "es" }
    )]
    NotTwoAxes { id: String, count: usize },
    #[error("sweep {id}: '{field}' = {value} is not a number, so it cannot be a grid axis")]
    NotNumeric {
        id: String,
        field: String,
        value: String,
    },
    #[error("sweep {id}: entry {seq} has no field '{field}' in its config")]
    MissingField { id: String, seq: u64, field: String },
    #[error("sweep {id}: entry {seq}'s config no longer parses: {message}")]
    Config {
        id: String,
        seq: u64,
        message: String,
    },
}

/// Means over the seeds of one grid point (each seed's latest entry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// Seeds planned (or seen, for a grid read from the ledger alone).
    pub seeds: usize,
    /// Seeds with an entry.
    pub runs: usize,
    pub completed: usize,
    pub diverged: usize,
    pub interrupted: usize,
    pub failed: usize,
    /// Arithmetic means over the runs that have the number (a diverged run has no loss).
    pub train_loss: Option<f64>,
    pub test_loss: Option<f64>,
    pub train_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    /// Mean of log10(‖δ^1‖/‖δ^L‖) (first hidden layer over the output layer) at the first
    /// probe (initialisation) and at the last: the log of the geometric mean ratio.
    pub log10_ratio_init: Option<f64>,
    pub log10_ratio_end: Option<f64>,
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// log10(‖δ^1‖/‖δ^L‖) of an entry, at the first (`init`) or last probe.
pub fn log10_delta_ratio(e: &Entry, init: bool) -> Option<f64> {
    let pick = |l: &crate::ledger::LayerProfile| if init { l.delta_first } else { l.delta_last };
    let (first, last) = (pick(e.layers.first()?)?, pick(e.layers.last()?)?);
    let r = (first / last).log10();
    (first > 0.0 && last > 0.0 && r.is_finite()).then_some(r)
}

impl Cell {
    /// Aggregates the entries of one grid point (one per seed at most).
    pub fn of(entries: &[&Entry], seeds: usize) -> Cell {
        let count = |s: Status| entries.iter().filter(|e| e.status == s).count();
        Cell {
            seeds,
            runs: entries.len(),
            completed: count(Status::Completed),
            diverged: count(Status::Diverged),
            interrupted: count(Status::Interrupted),
            failed: count(Status::Failed),
            train_loss: mean(entries.iter().map(|e| e.metrics.train_loss)),
            test_loss: mean(entries.iter().map(|e| e.metrics.test_loss)),
            train_accuracy: mean(entries.iter().map(|e| e.metrics.train_accuracy)),
            test_accuracy: mean(entries.iter().map(|e| e.metrics.test_accuracy)),
            log10_ratio_init: mean(entries.iter().map(|e| log10_delta_ratio(e, true))),
            log10_ratio_end: mean(entries.iter().map(|e| log10_delta_ratio(e, false))),
        }
    }

    /// Status counts in words: `3 completed`, `2 completed, 1 diverged`, `1 missing`.
    pub fn status_text(&self) -> String {
        let parts: Vec<String> = [
            (self.completed, "completed"),
            (self.diverged, "diverged"),
            (self.interrupted, "interrupted"),
            (self.failed, "failed"),
            (self.seeds.saturating_sub(self.runs), "missing"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
        parts.join(", ")
    }
}

/// The entry standing for each config hash: the latest finished one (completed or diverged),
/// else the latest of any status — an interrupted rerun does not hide a finished result.
fn latest_by_config(entries: &[Entry]) -> BTreeMap<&str, &Entry> {
    let finished = |e: &Entry| matches!(e.status, Status::Completed | Status::Diverged);
    let mut out: BTreeMap<&str, &Entry> = BTreeMap::new();
    for e in entries {
        let slot = out.entry(e.config_hash.0.as_str()).or_insert(e);
        if finished(e) || !finished(slot) {
            *slot = e;
        }
    }
    out
}

/// One row of the sweep's table: a grid point and its seeds' means.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub settings: Vec<(String, String)>,
    pub cell: Cell,
}

/// The table's rows, one per grid point in grid order, from the ledger's entries.
pub fn rows(entries: &[Entry], plan: &Plan) -> Vec<Row> {
    let latest = latest_by_config(entries);
    plan.cells()
        .into_iter()
        .map(|(settings, idx)| {
            let found: Vec<&Entry> = idx
                .iter()
                .filter_map(|&i| {
                    latest
                        .get(plan.points[i].experiment.hash().0.as_str())
                        .copied()
                })
                .collect();
            Row {
                settings,
                cell: Cell::of(&found, idx.len()),
            }
        })
        .collect()
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v != 0.0 && !(1e-3..1e4).contains(&v.abs()) => format!("{v:.2e}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn ratio(log10: Option<f64>) -> String {
    log10.map_or("-".into(), |l| format!("{:.2e}", 10f64.powf(l)))
}

/// The table `gradlab sweep` prints: settings, seeds, mean final train/test loss and
/// accuracy, geometric-mean ‖δ^1‖/‖δ^L‖ at init and at the end, status counts.
pub fn table(rows: &[Row], axes: &[Axis]) -> String {
    let short = |f: &str| f.rsplit('.').next().unwrap_or(f).to_string();
    let widths: Vec<usize> = axes
        .iter()
        .enumerate()
        .map(|(i, a)| {
            rows.iter()
                .map(|r| r.settings.get(i).map_or(0, |s| s.1.len()))
                .chain([short(&a.field).len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for (a, w) in axes.iter().zip(&widths) {
        let _ = write!(s, "{:>w$}  ", short(&a.field));
    }
    let _ = writeln!(
        s,
        "{:>5}  {:>10}  {:>10}  {:>8}  {:>8}  {:>12}  {:>12}  status",
        "seeds", "train loss", "test loss", "acc", "test acc", "δ1/δL init", "δ1/δL end"
    );
    for r in rows {
        for ((_, v), w) in r.settings.iter().zip(&widths) {
            let _ = write!(s, "{v:>w$}  ");
        }
        let c = &r.cell;
        let _ = writeln!(
            s,
            "{:>5}  {:>10}  {:>10}  {:>8}  {:>8}  {:>12}  {:>12}  {}",
            format!("{}/{}", c.runs, c.seeds),
            num(c.train_loss),
            num(c.test_loss),
            num(c.train_accuracy),
            num(c.test_accuracy),
            ratio(c.log10_ratio_init),
            ratio(c.log10_ratio_end),
            c.status_text()
        );
    }
    s
}

/// A quantity a sweep's grid can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Metric {
    /// Final training loss (mean over seeds).
    Loss,
    /// Final test loss.
    TestLoss,
    /// Final training accuracy.
    Accuracy,
    /// Final test accuracy.
    TestAccuracy,
    /// log10 ‖δ^1‖/‖δ^L‖ at initialisation.
    DeltaInit,
    /// log10 ‖δ^1‖/‖δ^L‖ at the last probe.
    DeltaEnd,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::Loss,
        Metric::TestLoss,
        Metric::Accuracy,
        Metric::TestAccuracy,
        Metric::DeltaInit,
        Metric::DeltaEnd,
    ];

    /// A title for figures and screens.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Loss => "final training loss",
            Metric::TestLoss => "final test loss",
            Metric::Accuracy => "final training accuracy",
            Metric::TestAccuracy => "final test accuracy",
            Metric::DeltaInit => "log10 ‖δ¹‖/‖δᴸ‖ at init",
            Metric::DeltaEnd => "log10 ‖δ¹‖/‖δᴸ‖ at the end",
        }
    }

    /// The cell's value; NaN when no run has it (drawn as "no value").
    pub fn of(self, c: &Cell) -> f64 {
        match self {
            Metric::Loss => c.train_loss,
            Metric::TestLoss => c.test_loss,
            Metric::Accuracy => c.train_accuracy,
            Metric::TestAccuracy => c.test_accuracy,
            Metric::DeltaInit => c.log10_ratio_init,
            Metric::DeltaEnd => c.log10_ratio_end,
        }
        .unwrap_or(f64::NAN)
    }
}

/// A two-axis sweep read back from the ledger: `cells[row][col]` with rows along `ys` and
/// columns along `xs` (both ascending); `values` holds every metric in the same layout.
#[derive(Debug, Clone)]
pub struct SweepGrid {
    pub id: String,
    /// The swept fields: depth goes on y when it is one of them (the phase diagram's
    /// layout), otherwise x is the first `--set` and y the second.
    pub x_field: String,
    pub y_field: String,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub cells: Vec<Vec<Cell>>,
    pub values: BTreeMap<Metric, Vec<Vec<f64>>>,
    /// For σ_w × depth sweeps of MLPs: the mean-field depth scale |ξ| = 1/|ln χ*| as
    /// (σ_w, ξ) points, finely sampled over the σ_w range (∞ at the edge of chaos is left
    /// out). Networks much deeper than ξ do not pass δ through (Schoenholz et al. 2017).
    pub xi_curve: Option<Vec<(f64, f64)>>,
    /// For σ_w × σ_b sweeps of MLPs: the theory's order–chaos line χ* = 1 (Schoenholz et al.
    /// 2017, Fig. 1) as (σ_w, σ_b) points in the config's own σ_w (the init sets how it maps to
    /// N·Var(W)), finely sampled over the σ_b range — the theory's phase diagram under the
    /// sweep's trainability heatmap.
    pub edge_curve: Option<Vec<(f64, f64)>>,
}

impl SweepGrid {
    /// One metric's values, `[row][col]`.
    pub fn metric(&self, m: Metric) -> &Vec<Vec<f64>> {
        self.values.get(&m).expect("every metric is filled in")
    }
}

/// Every sweep id tagged in the ledger, in order of first appearance.
pub fn sweep_ids(entries: &[Entry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in entries.iter().flat_map(|e| &e.tags) {
        if let Some(id) = t.strip_prefix(SWEEP_TAG)
            && !out.iter().any(|x| x == id)
        {
            out.push(id.to_string());
        }
    }
    out
}

/// A config field by dotted path, as TOML text and as a number when it is one.
fn field(config: &toml::Value, path: &str) -> Option<(String, Option<f64>)> {
    let (section, key) = path.split_once('.')?;
    let v = config.get(section)?.get(key)?;
    let n = match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    };
    Some((v.to_string(), n))
}

/// Reads a two-axis sweep from the ledger by its id (the `sweep:<id>` tag).
///
/// The grid is every combination of the axis values and seeds found on the tagged entries;
/// each combination's config is rebuilt from a tagged entry's and looked up by hash, so a
/// point recorded without the tag (run before the sweep, which then skipped it) is found too.
pub fn grid_summary(ledger: &Ledger, sweep_id: &str) -> Result<SweepGrid, SummaryError> {
    let id = sweep_id.trim_start_matches(SWEEP_TAG).to_string();
    let tag = format!("{SWEEP_TAG}{id}");
    let tagged: Vec<&Entry> = ledger
        .entries()
        .iter()
        .filter(|e| e.tags.contains(&tag))
        .collect();
    let Some(template) = tagged.last() else {
        let ids = sweep_ids(ledger.entries());
        return Err(SummaryError::UnknownSweep {
            id,
            known: if ids.is_empty() {
                " (it has no sweeps)".into()
            } else {
                format!(" (its sweeps: {})", ids.join(", "))
            },
        });
    };
    let axes: Vec<String> = template
        .tags
        .iter()
        .find_map(|t| t.strip_prefix(AXES_TAG))
        .map(|a| a.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    if axes.len() != 2 {
        return Err(SummaryError::NotTwoAxes {
            id,
            count: axes.len(),
        });
    }
    let (x_field, y_field) = if axes[0] == "model.depth" {
        (axes[1].clone(), axes[0].clone())
    } else {
        (axes[0].clone(), axes[1].clone())
    };

    // Axis values (number → TOML spelling) and seeds seen on the tagged entries.
    let mut xs: BTreeMap<u64, (f64, String)> = BTreeMap::new();
    let mut ys: BTreeMap<u64, (f64, String)> = BTreeMap::new();
    let mut seeds: Vec<u64> = Vec::new();
    let key = |v: f64| {
        // Orders f64s as integers (axis values are finite); -0.0 and 0.0 are one value.
        let b = (v + 0.0).to_bits();
        if v < 0.0 { !b } else { b | (1 << 63) }
    };
    for e in &tagged {
        let config: toml::Value =
            toml::from_str(&e.config).map_err(|err| SummaryError::Config {
                id: id.clone(),
                seq: e.seq,
                message: err.to_string(),
            })?;
        for (f, into) in [(&x_field, &mut xs), (&y_field, &mut ys)] {
            let (text, n) = field(&config, f).ok_or_else(|| SummaryError::MissingField {
                id: id.clone(),
                seq: e.seq,
                field: f.clone(),
            })?;
            let n = n.ok_or_else(|| SummaryError::NotNumeric {
                id: id.clone(),
                field: f.clone(),
                value: text.clone(),
            })?;
            into.insert(key(n), (n, text));
        }
        if !seeds.contains(&e.seeds.experiment) {
            seeds.push(e.seeds.experiment);
        }
    }
    seeds.sort_unstable();

    let base =
        Experiment::from_canonical(&template.config).map_err(|err| SummaryError::Config {
            id: id.clone(),
            seq: template.seq,
            message: err.to_string(),
        })?;
    let latest = latest_by_config(ledger.entries());
    let mut cells = Vec::with_capacity(ys.len());
    for (_, y_text) in ys.values() {
        let mut row = Vec::with_capacity(xs.len());
        for (_, x_text) in xs.values() {
            let found: Vec<&Entry> = seeds
                .iter()
                .filter_map(|s| {
                    let settings = [
                        (x_field.clone(), x_text.clone()),
                        (y_field.clone(), y_text.clone()),
                        ("experiment.seed".to_string(), s.to_string()),
                    ];
                    // A combination the validator rejects was never run: an empty cell.
                    let exp = base.with_settings(&settings).ok()?;
                    latest.get(exp.hash().0.as_str()).copied()
                })
                .collect();
            row.push(Cell::of(&found, seeds.len()));
        }
        cells.push(row);
    }
    let values = Metric::ALL
        .iter()
        .map(|&m| {
            let grid = cells
                .iter()
                .map(|row| row.iter().map(|c| m.of(c)).collect())
                .collect();
            (m, grid)
        })
        .collect();
    let xs: Vec<f64> = xs.values().map(|v| v.0).collect();
    let ys: Vec<f64> = ys.values().map(|v| v.0).collect();
    let xi_curve = (x_field == "model.sigma_w" && y_field == "model.depth")
        .then(|| xi_curve(&base, &xs))
        .flatten();
    let edge_curve = (x_field == "model.sigma_w" && y_field == "model.sigma_b")
        .then(|| edge_curve(&base, &ys))
        .flatten();
    Ok(SweepGrid {
        id,
        x_field,
        y_field,
        xs,
        ys,
        cells,
        values,
        xi_curve,
        edge_curve,
    })
}

/// The order–chaos line over the σ_b range, 200 samples, in the config's σ_w; None unless an
/// MLP (the plane is the plain net's).
fn edge_curve(base: &Experiment, sigma_bs: &[f64]) -> Option<Vec<(f64, f64)>> {
    let m = &base.spec().model;
    if !matches!(m.kind, ModelKind::Mlp) {
        return None;
    }
    let (lo, hi) = (*sigma_bs.first()?, *sigma_bs.last()?);
    // N·Var(W) is σ_w² times this for every init scheme (at the hidden layers' equal fans).
    let per_unit = crate::theory::effective_sigma2(m.init, 1.0, m.width, m.width);
    let n = 200;
    Some(
        (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .filter_map(|b| {
                crate::theory::critical_sigma_w2(m.activation, m.leaky_slope, b * b)
                    .map(|c| ((c / per_unit).sqrt(), b))
            })
            .collect(),
    )
}

/// |ξ(σ_w)| of the base experiment's MLP over the σ_w range, 200 samples; None when the
/// model is not an MLP or its data cannot be built here (the input statistics set q¹).
fn xi_curve(base: &Experiment, sigma_ws: &[f64]) -> Option<Vec<(f64, f64)>> {
    let spec = base.spec();
    if !matches!(spec.model.kind, ModelKind::Mlp) {
        return None;
    }
    let (lo, hi) = (*sigma_ws.first()?, *sigma_ws.last()?);
    let data = crate::data::build(&spec.data, base.seed()).ok()?;
    let q = crate::theory::input_q(&data.train.x);
    let n = 200;
    let points = (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .filter_map(|s| {
            let mut model = spec.model.clone();
            model.sigma_w = s;
            let p = crate::theory::predict(&model, data.input_dim, data.objective.output_dim(), q);
            let xi = p.xi.abs();
            xi.is_finite().then_some((s, xi))
        })
        .collect();
    Some(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_reads_its_cell_field_and_nan_when_absent() {
        let c = Cell {
            train_loss: Some(0.5),
            log10_ratio_init: Some(-3.0),
            ..Cell::default()
        };
        assert_eq!(Metric::Loss.of(&c), 0.5);
        assert_eq!(Metric::DeltaInit.of(&c), -3.0);
        assert!(Metric::TestLoss.of(&c).is_nan());
    }

    #[test]
    fn status_text_counts_missing_seeds() {
        let c = Cell {
            seeds: 3,
            runs: 2,
            completed: 1,
            diverged: 1,
            ..Cell::default()
        };
        assert_eq!(c.status_text(), "1 completed, 1 diverged, 1 missing");
    }

    #[test]
    fn an_interrupted_rerun_does_not_hide_a_finished_result() {
        use crate::train::{self, Control, RunEnv};
        let dir = tempfile::tempdir().unwrap();
        let exp = Experiment::parse(
            "[experiment]\nname = \"x\"\n[data]\ntrain_size = 64\ntest_size = 0\n[model]\ndepth = 2\nwidth = 4\n[train]\nsteps = 2\n",
            std::path::Path::new("x.toml"),
        )
        .unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        let done = train::train(&exp, RunEnv::default(), &Control::new(), &mut |_| {});
        let mut stopped = train::train(&exp, RunEnv::default(), &Control::new(), &mut |_| {});
        stopped.end.status = Status::Interrupted;
        let now = std::time::SystemTime::now();
        ledger
            .record_run(&exp, RunEnv::default(), &stopped, now)
            .unwrap();
        let first = latest_by_config(ledger.entries())[exp.hash().0.as_str()].seq;
        assert_eq!(
            first, 1,
            "an unfinished entry stands in when it is all there is"
        );
        ledger
            .record_run(&exp, RunEnv::default(), &done, now)
            .unwrap();
        ledger
            .record_run(&exp, RunEnv::default(), &stopped, now)
            .unwrap();
        let pick = latest_by_config(ledger.entries())[exp.hash().0.as_str()];
        assert_eq!((pick.seq, pick.status), (2, Status::Completed));
    }

    #[test]
    fn means_skip_missing_and_non_finite_values() {
        assert_eq!(
            mean([Some(1.0), None, Some(3.0), Some(f64::NAN)].into_iter()),
            Some(2.0)
        );
        assert_eq!(mean([None, None].into_iter()), None);
    }
}
