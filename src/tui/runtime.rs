//! The event loop: one channel in, effects out, at most one frame per `FRAME`.
//!
//! Following yazi, every queued event is applied before a frame is drawn, so a burst of
//! probes costs one draw, and drawing never holds up the trainer or a replay (which only
//! ever send into an unbounded channel).

use super::app::{App, Effect};
use super::event::{self, Event, Input};
use super::jobs::{self, LedgerAt};
use super::terminal::Session;
use super::theme::Theme;
use crate::experiment::Experiment;
use crate::train::{self, Control, Outcome, RunEnv, Status};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Shortest interval between two frames (≈ 30 frames per second).
pub const FRAME: Duration = Duration::from_millis(33);

/// Records a finished run (the ledger, wired in by the caller) and says how, for the screen.
pub type Recorder<'a> = &'a mut dyn FnMut(&Experiment, &Outcome) -> Result<Recorded>;

/// What the recorder did with a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// For the screen: "recorded entry 12 abc123… in ledger/entries.jsonl".
    pub line: String,
    /// The entry's seq, when the run went into a ledger.
    pub seq: Option<u64>,
}

/// Records `outcome` and splits the answer into the screen's line and the entry's seq.
fn record(
    recorder: Recorder,
    exp: &Experiment,
    outcome: &Outcome,
) -> (Result<String, String>, Option<u64>) {
    match recorder(exp, outcome) {
        Ok(r) => (Ok(r.line), r.seq),
        Err(e) => (Err(format!("{e:#}")), None),
    }
}

/// Where the UI opens.
pub enum Start {
    /// The Experiments screen over this folder.
    Browse(PathBuf),
    /// Straight to the Run screen of this experiment; the folder is where Esc leads after.
    Run {
        experiment: Box<Experiment>,
        dir: PathBuf,
    },
}

/// How the last run of the session ended, for a line on the normal screen after the UI.
#[derive(Debug, Clone)]
pub struct Finished {
    pub status: Status,
    /// E.g. "tanh-naive-20: completed after 400 steps in 8.1 s, 49.4 steps/s; recorded as …".
    pub summary: String,
}

/// How the session ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The last run's ending, if a run was started.
    pub last: Option<Finished>,
    /// SIGINT, SIGTERM or SIGHUP ended the session (the process exits 130, as headless).
    pub signalled: bool,
}

/// A run in progress: how to steer it and where its outcome will come from.
struct Active {
    experiment: Experiment,
    control: Arc<Control>,
    handle: Option<JoinHandle<Outcome>>,
}

/// What the loop carries between effects: the run, the replay, and where things go.
struct Jobs {
    env: RunEnv,
    tx: Sender<Event>,
    ledger: Option<LedgerAt>,
    active: Option<Active>,
    /// The replay in progress, joined on quit so no append is cut short.
    replay: Option<(Arc<Control>, JoinHandle<()>)>,
    /// The lesion study in progress, joined on quit for the same reason.
    lesion: Option<JoinHandle<()>>,
    last: Option<Finished>,
}

/// Runs the UI until the user quits. Returns how the last run ended, if any ran. `ledger`
/// is where the Ledger screen reads, replays and verifies (`None` with `--no-ledger`).
pub fn run(
    start: Start,
    env: RunEnv,
    ledger: Option<LedgerAt>,
    recorder: Recorder,
) -> Result<Ended> {
    let mut session = Session::start().context("starting the terminal UI")?;
    let size = session
        .terminal
        .size()
        .context("reading the terminal size")?;
    let (tx, rx) = mpsc::channel();
    let mut input = Input::spawn(tx.clone());

    let (dir, first) = match start {
        Start::Browse(dir) => (dir, None),
        Start::Run { experiment, dir } => (dir, Some(*experiment)),
    };
    let mut app = App::new(Theme::detect(), dir, (size.width, size.height));
    if let Some(at) = &ledger {
        app.ledger = super::app::LedgerState::at(at.dir.clone());
    }
    app.experiments
        .set_entries(super::app::experiments::scan(&app.experiments.dir));
    let mut jobs = Jobs {
        env,
        tx: tx.clone(),
        ledger,
        active: None,
        replay: None,
        lesion: None,
        last: None,
    };
    if let Some(exp) = first {
        start_run(&mut app, exp, &mut jobs);
    }

    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    let mut signalled = false;
    loop {
        if session.hung_up.load(Ordering::SeqCst) {
            input.abandon();
            return Ok(Ended {
                last: hang_up(&mut jobs, recorder),
                signalled: true,
            });
        }
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            let drawn = session.terminal.draw(|f| f.render_widget(&app, f.area()));
            if let Err(e) = drawn {
                // A terminal that cannot be written to is gone (EIO after a dropped link):
                // the run still gets recorded, then the error is reported.
                input.abandon();
                hang_up(&mut jobs, recorder);
                return Err(e).context("drawing");
            }
            last_draw = Some(Instant::now());
            dirty = false;
        }
        // Sleep until the next event, or until a pending frame is due.
        let wait = match (dirty, last_draw) {
            (true, Some(t)) => FRAME.saturating_sub(t.elapsed()),
            _ => event::TICK,
        };
        let first_event = match rx.recv_timeout(wait) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for e in first_event
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            dirty |= !matches!(e, Event::Tick);
            if let Some(effect) = app.update(e) {
                dirty = true;
                apply(
                    effect,
                    &mut app,
                    &mut jobs,
                    &mut session,
                    &mut input,
                    recorder,
                )?;
            }
        }
        if session.signalled.swap(false, Ordering::SeqCst) {
            signalled = true;
            dirty = true;
            if let Some(effect) = app.interrupt() {
                apply(
                    effect,
                    &mut app,
                    &mut jobs,
                    &mut session,
                    &mut input,
                    recorder,
                )?;
            }
        }
        if app.should_quit() {
            break;
        }
    }
    input.stop();
    // A replay stops at its next step; waiting for it means the process never exits in
    // the middle of an append to the ledger.
    if let Some((control, handle)) = jobs.replay.take() {
        control.stop();
        let _ = handle.join();
    }
    if let Some(handle) = jobs.lesion.take() {
        let _ = handle.join();
    }
    drop(session);
    Ok(Ended {
        last: jobs.last,
        signalled,
    })
}

/// The terminal is gone: stop the run and the replay, record the run, show nothing.
fn hang_up(jobs: &mut Jobs, recorder: Recorder) -> Option<Finished> {
    if let Some((control, handle)) = jobs.replay.take() {
        control.stop();
        let _ = handle.join();
    }
    if let Some(handle) = jobs.lesion.take() {
        let _ = handle.join();
    }
    if let Some(mut a) = jobs.active.take() {
        a.control.stop();
        if let Some(Ok(outcome)) = a.handle.take().map(|h| h.join()) {
            let (recorded, _) = record(recorder, &a.experiment, &outcome);
            jobs.last = Some(finished(&outcome, &recorded));
        }
    }
    jobs.last.take()
}

fn start_run(app: &mut App, exp: Experiment, jobs: &mut Jobs) {
    let control = Control::new();
    let (train_rx, handle) = train::spawn(exp.clone(), jobs.env, Arc::clone(&control));
    event::forward(train_rx, jobs.tx.clone());
    if let Some(Effect::Predict(configs)) = app.run_started(&exp) {
        jobs::predict(configs, jobs.tx.clone());
    }
    jobs.active = Some(Active {
        experiment: exp,
        control,
        handle: Some(handle),
    });
}

fn apply(
    effect: Effect,
    app: &mut App,
    jobs: &mut Jobs,
    session: &mut Session,
    input: &mut Input,
    recorder: Recorder,
) -> Result<()> {
    let tx = jobs.tx.clone();
    match effect {
        Effect::Start(i) => {
            let exp = app
                .experiments
                .entries
                .get(i)
                .and_then(|e| e.loaded.as_ref().ok())
                .cloned();
            if let (Some(exp), None) = (exp, jobs.active.as_ref()) {
                start_run(app, exp, jobs);
            }
        }
        Effect::Pause(p) => {
            if let Some(a) = &jobs.active {
                a.control.set_paused(p);
            }
        }
        Effect::Stop => {
            if let Some(a) = &jobs.active {
                a.control.stop();
            }
        }
        Effect::Record => {
            if let Some(mut a) = jobs.active.take() {
                let outcome = a.handle.take().expect("a run is joined once").join();
                let (result, seq) = match outcome {
                    Ok(outcome) => {
                        let (recorded, seq) = record(recorder, &a.experiment, &outcome);
                        jobs.last = Some(finished(&outcome, &recorded));
                        (recorded, seq)
                    }
                    Err(_) => (
                        Err("the training thread died without an outcome".into()),
                        None,
                    ),
                };
                if let Some(run) = &mut app.run {
                    run.entry = seq;
                }
                let next = app.recorded(result);
                // Whatever the trainer printed while dying is under our frame: redraw all.
                session.terminal.clear()?;
                if let Some(next) = next {
                    apply(next, app, jobs, session, input, recorder)?;
                }
            }
        }
        Effect::Rescan => app
            .experiments
            .set_entries(super::app::experiments::scan(&app.experiments.dir)),
        Effect::Edit(path) => {
            input.stop();
            let edited = session.suspended(|| edit(&path))?;
            *input = Input::spawn(tx.clone());
            if let Err(e) = edited {
                app.flash = Some(e);
            }
            app.experiments
                .set_entries(super::app::experiments::scan(&app.experiments.dir));
        }
        // `update` only asks for ledger work when the session has a ledger.
        Effect::LoadLedger => {
            if let Some(at) = &jobs.ledger {
                jobs::load(at, tx);
            }
        }
        Effect::LoadSweep(id) => {
            // Reading entries and rebuilding a few configs is quick: no job thread needed.
            let grid = match &jobs.ledger {
                Some(at) => crate::ledger::Ledger::open(&at.dir)
                    .map_err(|e| e.to_string())
                    .and_then(|l| crate::sweep::grid_summary(&l, &id).map_err(|e| e.to_string())),
                None => Err("this session keeps no ledger (--no-ledger)".into()),
            };
            app.sweep_loaded(super::app::sweep::SweepView::new(id, grid));
        }
        Effect::Verify => {
            if let Some(at) = &jobs.ledger {
                jobs::verify(at, tx);
            }
        }
        Effect::Replay(seq) => {
            if let Some(at) = &jobs.ledger {
                // The previous replay has reported its end (update allows one at a time).
                if let Some((_, done)) = jobs.replay.take() {
                    let _ = done.join();
                }
                let control = Control::new();
                let handle = jobs::replay(at, seq, Arc::clone(&control), tx);
                jobs.replay = Some((control, handle));
            }
        }
        Effect::StopReplay => {
            if let Some((control, _)) = &jobs.replay {
                control.stop();
            }
        }
        Effect::Export(seq) => {
            if let Some(at) = &jobs.ledger {
                // Next to where the user started gradlab; the ledger's parent if that is gone.
                let out = std::env::current_dir().unwrap_or_else(|_| {
                    at.dir
                        .parent()
                        .map_or_else(|| PathBuf::from("."), PathBuf::from)
                });
                jobs::export(at, seq, out, tx);
            }
        }
        Effect::Predict(configs) => jobs::predict(configs, tx),
        Effect::Lesion(seq) => {
            if let Some(at) = &jobs.ledger {
                jobs.lesion = Some(jobs::lesion(at, seq, tx));
            }
        }
    }
    Ok(())
}

/// Runs `$VISUAL` or `$EDITOR` (default `vi`) on `path`, waiting for it.
fn edit(path: &std::path::Path) -> Result<(), String> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".into());
    // `EDITOR="code --wait"` is common: the first word is the program, the rest its flags.
    let mut words = editor.split_whitespace();
    let program = words.next().unwrap_or("vi");
    match std::process::Command::new(program)
        .args(words)
        .arg(path)
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("'{editor}' exited with {s}")),
        Err(e) => Err(format!(
            "cannot start the editor '{editor}': {e} (set $EDITOR)"
        )),
    }
}

/// How a run ended, with the line printed after the UI closes.
pub fn finished(outcome: &Outcome, recorded: &Result<String, String>) -> Finished {
    let end = &outcome.end;
    let mut s = format!(
        "{}: {} after {} steps in {:.1} s, {:.1} steps/s",
        outcome.header.experiment,
        end.status.name(),
        end.steps_done,
        outcome.wall_s,
        outcome.steps_per_s()
    );
    if let Some(e) = &end.error {
        s += &format!(" ({e})");
    }
    match recorded {
        Ok(m) => s += &format!("; {m}"),
        Err(e) => s += &format!("; not recorded: {e}"),
    }
    Finished {
        status: end.status,
        summary: s,
    }
}
