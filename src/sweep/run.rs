//! Running a sweep: the grid's points on `jobs` worker threads, every finished point
//! recorded in the ledger, points already recorded skipped.
//!
//! Each worker owns a one-thread rayon pool and trains inside it, so every point runs with
//! exactly one backend thread — the recorded, replayable setting — however many jobs run
//! side by side, and the results do not depend on `jobs`. Workers only train; they send each
//! outcome over one channel to the calling thread, which is the only one writing the ledger
//! (other processes may append too: appends are locked).

use super::grid::{Axis, GridError, Point, expand, sweep_id};
use crate::experiment::Experiment;
use crate::ledger::{Entry, Extra, Ledger, LedgerError};
use crate::train::{self, Control, Outcome, RunEnv, Status};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::SystemTime;

/// Tag prefix naming a sweep on each of its entries: `sweep:<id>`.
pub const SWEEP_TAG: &str = "sweep:";
/// Tag prefix listing a sweep's axes in command-line order: `sweep-axes:<field>,<field>`.
pub const AXES_TAG: &str = "sweep-axes:";

/// Why a sweep cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Grid(#[from] GridError),
    #[error("a sweep needs at least one --set field=values")]
    NoAxes,
    #[error("--set '{field}' is given twice: give each field once, with all its values")]
    DuplicateAxis { field: String },
    #[error("--jobs 0: give at least 1 worker")]
    NoJobs,
    #[error("a finished point cannot be recorded: {0}")]
    Ledger(#[from] LedgerError),
}

/// A grid point's settings: `(field, value)` per axis, in axis order.
pub type Settings = Vec<(String, String)>;

/// A sweep ready to run: its id, axes, seeds and every point, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub axes: Vec<Axis>,
    pub seeds: u64,
    pub points: Vec<Point>,
}

impl Plan {
    /// Expands the grid; every point is validated before anything runs.
    pub fn new(
        base: &Experiment,
        axes: Vec<Axis>,
        seeds: u64,
        steps: Option<usize>,
    ) -> Result<Plan, SweepError> {
        if axes.is_empty() {
            return Err(SweepError::NoAxes);
        }
        for (i, a) in axes.iter().enumerate() {
            if axes[..i].iter().any(|b| b.field == a.field) {
                return Err(SweepError::DuplicateAxis {
                    field: a.field.clone(),
                });
            }
        }
        let seeds = seeds.max(1);
        let points = expand(base, &axes, seeds, steps)?;
        Ok(Plan {
            id: sweep_id(base, &axes, seeds),
            axes,
            seeds,
            points,
        })
    }

    /// The tags every entry of this sweep carries.
    pub fn tags(&self) -> Vec<String> {
        let fields: Vec<&str> = self.axes.iter().map(|a| a.field.as_str()).collect();
        vec![
            format!("{SWEEP_TAG}{}", self.id),
            format!("{AXES_TAG}{}", fields.join(",")),
        ]
    }

    /// Grid points (distinct settings), each with its seeds' point indices, in grid order.
    pub fn cells(&self) -> Vec<(Settings, Vec<usize>)> {
        let mut out: Vec<(Settings, Vec<usize>)> = Vec::new();
        for (i, p) in self.points.iter().enumerate() {
            match out.last_mut() {
                Some((settings, idx)) if *settings == p.settings => idx.push(i),
                _ => out.push((p.settings.clone(), vec![i])),
            }
        }
        out
    }
}

/// Whether the ledger already holds a finished run of this config: completed or diverged
/// (a divergence is a deterministic result, not an accident). Interrupted and failed runs
/// are run again.
pub fn is_done<'a>(entries: &'a [Entry], config_hash: &str) -> Option<&'a Entry> {
    entries.iter().rev().find(|e| {
        e.config_hash.0 == config_hash && matches!(e.status, Status::Completed | Status::Diverged)
    })
}

/// How to run a sweep.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Worker threads, each training one point at a time.
    pub jobs: usize,
    /// Run points that are already in the ledger.
    pub rerun: bool,
}

/// What happened to one point, as it happens.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Already in the ledger: this entry.
    Skipped { index: usize, entry: &'a Entry },
    /// Trained and recorded.
    Recorded {
        index: usize,
        entry: &'a Entry,
        outcome: &'a Outcome,
    },
}

/// What a sweep did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Points trained and recorded now.
    pub ran: usize,
    /// Points skipped as already recorded.
    pub skipped: usize,
    /// Points not started because the sweep was stopped.
    pub not_started: usize,
    /// Wall-clock seconds of the whole sweep.
    pub wall_s: f64,
}

/// Runs every point of `plan` not yet in `ledger` (all of them with `rerun`), on
/// `options.jobs` workers, recording each as it finishes. Stopping `control` interrupts the
/// running points (they are recorded as interrupted) and starts no more.
pub fn run(
    ledger: &mut Ledger,
    plan: &Plan,
    options: Options,
    control: &Arc<Control>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, SweepError> {
    if options.jobs == 0 {
        return Err(SweepError::NoJobs);
    }
    let clock = std::time::Instant::now();
    let mut report = Report::default();
    let mut todo = Vec::new();
    for (index, point) in plan.points.iter().enumerate() {
        match is_done(ledger.entries(), &point.experiment.hash().0) {
            Some(entry) if !options.rerun => {
                report.skipped += 1;
                progress(Progress::Skipped { index, entry });
            }
            _ => todo.push(index),
        }
    }
    let env = RunEnv {
        threads: 1,
        ..RunEnv::default()
    };
    let tags = plan.tags();
    let next = AtomicUsize::new(0);
    let mut failure = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, SystemTime, Outcome)>();
        for _ in 0..options.jobs.min(todo.len()) {
            let tx = tx.clone();
            let (todo, next, points) = (&todo, &next, &plan.points);
            scope.spawn(move || {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("the OS can start a worker thread");
                loop {
                    if control.stop_requested() {
                        break;
                    }
                    let Some(&index) = todo.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let started = SystemTime::now();
                    let point: &Point = &points[index];
                    let outcome =
                        pool.install(|| train::train(&point.experiment, env, control, &mut |_| {}));
                    // The recorder is gone only after a ledger error: stop quietly.
                    if tx.send((index, started, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (index, started, outcome) in rx {
            let extra = Extra {
                tags: tags.clone(),
                ..Extra::default()
            };
            let exp = &plan.points[index].experiment;
            match ledger.record(exp, env, &outcome, started, extra) {
                Ok(entry) => {
                    report.ran += 1;
                    progress(Progress::Recorded {
                        index,
                        entry: &entry,
                        outcome: &outcome,
                    });
                }
                Err(e) => {
                    // Nothing more can be recorded: stop the workers rather than waste runs.
                    control.stop();
                    failure = Some(e);
                    break;
                }
            }
        }
    });
    if let Some(e) = failure {
        return Err(e.into());
    }
    report.not_started = todo.len() - report.ran;
    report.wall_s = clock.elapsed().as_secs_f64();
    Ok(report)
}
