//! Background jobs of the Ledger and Compare screens, and the theory line: read the ledger,
//! verify it, replay an entry, export a trace, predict a δ profile.
//!
//! Each job runs on a thread of its own and reports on the UI's one channel (bottom's
//! habit), so the UI never waits on the disk or on a rerun. A job stops when `send` fails:
//! the UI has gone. The work itself is in plain functions (`replay_entry`, `export_csv`,
//! `predicted_profile`) that tests call directly.

use super::event::{Event, Exported, Job, Lesioned, Predicted, Replayed};
use crate::experiment::Experiment;
use crate::ledger::replay::{self as rp, ReplayOptions};
use crate::ledger::{Entry, Ledger, LedgerError, LedgerOptions, export};
use crate::train::{Control, TrainError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

/// Why a job failed; shown, as text, in the screen that asked for it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The replay cannot run here (a device this build lacks).
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("the replay finished but cannot be recorded: {0}")]
    Record(LedgerError),
    #[error("the lesion study finished but cannot be recorded: {0}")]
    LesionRecord(LedgerError),
    #[error("cannot write '{}': {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::experiment::ConfigError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Theory(#[from] crate::theory::TheoryError),
}

/// Where the session's ledger is and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerAt {
    pub dir: PathBuf,
    pub options: LedgerOptions,
}

impl LedgerAt {
    pub fn new(dir: impl Into<PathBuf>, options: LedgerOptions) -> Self {
        Self {
            dir: dir.into(),
            options,
        }
    }

    pub fn open(&self) -> Result<Ledger, LedgerError> {
        Ledger::open_with(&self.dir, self.options)
    }
}

/// Replay progress is reported at most this many times per replay: the UI shows a bar,
/// and a million-step rerun should not send a million messages to draw it.
const PROGRESS_STEPS: usize = 200;

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("gradlab-{name}"))
        .spawn(work)
        .expect("the OS can start a job thread")
}

/// Reads the entries.
pub fn load(at: &LedgerAt, tx: Sender<Event>) {
    let at = at.clone();
    spawn("ledger-load", move || {
        let entries = at
            .open()
            .map(|l| l.entries().to_vec())
            .map_err(|e| e.to_string());
        let _ = tx.send(Event::Job(Job::Loaded(entries)));
    });
}

/// Checks every hash, the chain, every object and every claim.
pub fn verify(at: &LedgerAt, tx: Sender<Event>) {
    let dir = at.dir.clone();
    spawn("ledger-verify", move || {
        let report = crate::ledger::verify::verify_dir(&dir, None);
        let _ = tx.send(Event::Job(Job::Verified(report)));
    });
}

/// Reruns entry `seq` and records the replay; `control` stops it early (then nothing is
/// recorded). Joined on quit, so the process never exits in the middle of an append.
pub fn replay(at: &LedgerAt, seq: u64, control: Arc<Control>, tx: Sender<Event>) -> JoinHandle<()> {
    let at = at.clone();
    spawn("replay", move || {
        let mut last = None;
        let result = replay_entry(&at, seq, &control, &mut |step, total| {
            let tick = step * PROGRESS_STEPS / total.max(1);
            if last != Some(tick) {
                last = Some(tick);
                let progress = Job::ReplayProgress { seq, step, total };
                if tx.send(Event::Job(progress)).is_err() {
                    control.stop();
                }
            }
        })
        .map_err(|e| e.to_string());
        let _ = tx.send(Event::Job(Job::Replayed { seq, result }));
    })
}

/// Runs the lesion study of entry `seq` (default draws) and records it. Joined on quit, like
/// a replay, so the process never exits in the middle of the append.
pub fn lesion(at: &LedgerAt, seq: u64, tx: Sender<Event>) -> JoinHandle<()> {
    let at = at.clone();
    spawn("lesion", move || {
        let result = lesion_entry(&at, seq).map_err(|e| e.to_string());
        let _ = tx.send(Event::Job(Job::Lesioned { seq, result }));
    })
}

/// [`lesion`]'s work, on the calling thread.
pub fn lesion_entry(at: &LedgerAt, seq: u64) -> Result<Lesioned, JobError> {
    let mut ledger = at.open()?;
    let report = crate::ledger::lesion::lesion(
        &ledger,
        &seq.to_string(),
        crate::lesion::Options::default(),
    )?;
    let e = ledger
        .record_lesion(&report, Vec::new())
        .map_err(JobError::LesionRecord)?;
    Ok(Lesioned {
        summary: report.study.summary(),
        unit: if report.study.paths.is_empty() {
            "layer"
        } else {
            "block"
        },
        chance: report.study.spec.classes.map(|c| 1.0 - 1.0 / c as f64),
        recorded: Some((e.seq, e.short_hash().to_string())),
    })
}

/// Writes entry `seq`'s trace as CSV into `out_dir`.
pub fn export(at: &LedgerAt, seq: u64, out_dir: PathBuf, tx: Sender<Event>) {
    let at = at.clone();
    spawn("export", move || {
        let result = at
            .open()
            .map_err(JobError::from)
            .and_then(|ledger| {
                let entry = ledger.find(&seq.to_string())?;
                export_csv(&ledger, entry, &out_dir)
            })
            .map_err(|e| e.to_string());
        let _ = tx.send(Event::Job(Job::Exported { seq, result }));
    });
}

/// Predicts the δ profile of each `(config hash, canonical config)`.
pub fn predict(configs: Vec<(String, String)>, tx: Sender<Event>) {
    spawn("theory", move || {
        for (config_hash, config) in configs {
            let profile = predicted_profile(&config).map_err(|e| e.to_string());
            if tx
                .send(Event::Job(Job::Predicted {
                    config_hash,
                    profile,
                }))
                .is_err()
            {
                return;
            }
        }
    });
}

/// Replays entry `seq` of the ledger at `at` and appends the replay entry, unless
/// `control` stopped it first. `progress(step, total)` follows the rerun.
pub fn replay_entry(
    at: &LedgerAt,
    seq: u64,
    control: &Arc<Control>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Replayed, JobError> {
    let mut ledger = at.open()?;
    let plan = rp::plan(&ledger, &seq.to_string(), &ReplayOptions::default())?;
    plan.env.device.device()?;
    let report = rp::run_plan(&ledger, plan, Some(Arc::clone(control)), progress)?;
    let stopped = control.stop_requested();
    // A stopped rerun differs from its original only because it was cut short: recording
    // it as DIVERGED would put a false verdict in the ledger.
    let recorded = if stopped {
        None
    } else {
        let e = ledger
            .record_replay(&report, Vec::new())
            .map_err(JobError::Record)?;
        Some((e.seq, e.short_hash().to_string()))
    };
    Ok(Replayed {
        verdict: report.verdict,
        warnings: report.warnings,
        recorded,
        stopped,
    })
}

/// A file name made of the experiment's name and the entry's seq, safe on every system.
pub fn export_file_name(entry: &Entry) -> String {
    let name: String = entry
        .experiment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}-entry-{}.csv", entry.seq)
}

/// Writes `entry`'s trace as CSV (one row per probe step and layer) into `out_dir`. An
/// existing file of the same name is replaced: an entry's trace never changes, so it holds
/// the same bytes.
pub fn export_csv(ledger: &Ledger, entry: &Entry, out_dir: &Path) -> Result<Exported, JobError> {
    // Checked before the file is made: a damaged trace leaves nothing behind.
    ledger.check_trace(entry)?;
    let path = out_dir.join(export_file_name(entry));
    let write_error = |source| JobError::Write {
        path: path.clone(),
        source,
    };
    let mut f = std::fs::File::create(&path).map_err(write_error)?;
    let rows = match export::export_entry(ledger, entry, export::Format::Csv, &mut f) {
        Ok(rows) => rows,
        Err(export::ExportError::Ledger(e)) => return Err(e.into()),
        Err(export::ExportError::Write(e)) => return Err(write_error(e)),
    };
    Ok(Exported { path, rows })
}

/// `gradlab theory`'s prediction at initialisation for a canonical config: across layers
/// for MLPs, DBNs and residual nets, through time for recurrent nets; `None` for searches.
pub fn predicted_profile(config: &str) -> Result<Option<Predicted>, JobError> {
    use crate::theory::profile::Axis;
    let exp = Experiment::from_canonical(config)?;
    let p = crate::theory::profile::predict(&exp)?;
    Ok(p.map(|p| {
        let ratios = p
            .rows
            .iter()
            .map(|r| r.predicted.unwrap_or(f64::NAN))
            .collect();
        match p.axis {
            Axis::Layers => Predicted::Layers(ratios),
            Axis::Time => Predicted::Time(ratios),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::VerdictKind;
    use crate::tui::fixtures;
    use std::sync::mpsc;

    fn ledger() -> (tempfile::TempDir, LedgerAt) {
        let dir = tempfile::tempdir().unwrap();
        fixtures::write_ledger(&dir.path().join("ledger"));
        let at = LedgerAt::new(dir.path().join("ledger"), LedgerOptions::default());
        (dir, at)
    }

    #[test]
    fn a_replay_job_reports_progress_then_an_exact_verdict_and_records_it() {
        let (_dir, at) = ledger();
        let (tx, rx) = mpsc::channel();
        let handle = replay(&at, 1, Control::new(), tx.clone());
        load(&at, tx);
        let mut steps = Vec::new();
        let mut verdict = None;
        let mut loaded = None;
        // Both jobs end by sending their result; the senders then drop and the loop ends.
        for e in rx {
            match e {
                Event::Job(Job::ReplayProgress {
                    seq: 1,
                    step,
                    total,
                }) => steps.push((step, total)),
                Event::Job(Job::Replayed { seq: 1, result }) => verdict = Some(result),
                Event::Job(Job::Loaded(entries)) => loaded = Some(entries),
                other => panic!("unexpected {other:?}"),
            }
        }
        handle.join().unwrap();
        let r = verdict
            .expect("the verdict comes")
            .expect("the replay runs");
        assert_eq!(r.verdict.result, VerdictKind::Exact, "{:?}", r.verdict);
        assert!(!r.stopped);
        assert_eq!(r.recorded.as_ref().map(|x| x.0), Some(6));
        assert_eq!(steps.last(), Some(&(10, 10)), "{steps:?}");
        assert!(steps.windows(2).all(|w| w[0].0 < w[1].0), "{steps:?}");
        assert!(loaded.expect("the entries come").is_ok());
        let entries = at.open().unwrap().entries().to_vec();
        assert_eq!(entries.len(), 6);
        assert_eq!(
            entries[5].replay_of.as_deref(),
            Some(entries[0].hash.as_str())
        );
    }

    #[test]
    fn a_stopped_replay_is_not_recorded() {
        let (_dir, at) = ledger();
        let control = Control::new();
        control.stop();
        let r = replay_entry(&at, 1, &control, &mut |_, _| {}).unwrap();
        assert!(r.stopped);
        assert_eq!(r.recorded, None);
        assert_eq!(at.open().unwrap().entries().len(), 5);
        let missing = replay_entry(&at, 9, &Control::new(), &mut |_, _| {});
        let missing = missing.unwrap_err();
        assert!(matches!(
            missing,
            JobError::Ledger(LedgerError::NotFound { .. })
        ));
        assert!(missing.to_string().starts_with("no entry '9'"));
    }

    #[test]
    fn export_writes_one_csv_row_per_probe_and_layer() {
        let (dir, at) = ledger();
        let ledger = at.open().unwrap();
        let entry = &ledger.entries()[0];
        let x = export_csv(&ledger, entry, dir.path()).unwrap();
        assert_eq!(x.path, dir.path().join("tanh-naive-12-entry-1.csv"));
        assert_eq!(x.rows, entry.metrics.probes * entry.layers.len());
        let text = std::fs::read_to_string(&x.path).unwrap();
        assert_eq!(text.lines().count(), x.rows + 1);
        assert!(text.starts_with("step,loss,"));
        let mut odd = entry.clone();
        odd.experiment = "a/b c".into();
        assert_eq!(export_file_name(&odd), "a_b_c-entry-1.csv");
        let gone = export_csv(&ledger, entry, &dir.path().join("no/such/folder"));
        let gone = gone.unwrap_err();
        assert!(matches!(gone, JobError::Write { .. }));
        assert!(gone.to_string().starts_with("cannot write"));
    }

    #[test]
    fn the_predicted_profile_vanishes_for_small_tanh_weights() {
        let [naive, xavier, _] = fixtures::tiny_experiments();
        let Some(Predicted::Layers(p)) = predicted_profile(naive.canonical()).unwrap() else {
            panic!("an MLP is predicted across layers")
        };
        assert_eq!(p.len(), 13, "12 hidden layers and the output");
        assert_eq!(p[12], 1.0);
        assert!(p[0] < 1e-6, "{p:?}");
        assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
        let Some(Predicted::Layers(q)) = predicted_profile(xavier.canonical()).unwrap() else {
            panic!("an MLP is predicted across layers")
        };
        assert!(q[0] > 1e-2, "{q:?}");
        assert!(predicted_profile("[model]\ndepth = 0\n").is_err());
    }
}
