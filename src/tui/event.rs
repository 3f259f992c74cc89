//! The one UI event enum and the threads that feed its one channel: terminal input (with a
//! periodic tick), a forwarder from the training thread's receiver, and the background
//! jobs of [`super::jobs`] (ledger reads, verify, replay, export, theory).
//!
//! Every producer stops when `send` fails, i.e. when the UI has gone (bottom's habit).

use crate::ledger::{Entry, Verdict, VerifyReport};
use crate::train;
use ratatui::crossterm::event::{self as ct, KeyEvent, KeyEventKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Everything the UI reacts to.
// Nearly every event on the channel is a training event, so boxing it would add an
// allocation per probe to save space on the rare key.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Resize(u16, u16),
    /// Periodic wake-up (signals are checked, the screen may redraw).
    Tick,
    Train(train::Event),
    /// A background job's progress or result.
    Job(Job),
}

/// What the background jobs report. Each job sends its result once, as its last event.
#[derive(Debug, Clone)]
pub enum Job {
    /// The ledger's entries in file order, or why they cannot be read.
    Loaded(Result<Vec<Entry>, String>),
    Verified(VerifyReport),
    /// The replay of entry `seq` has done `step` of `total` steps.
    ReplayProgress {
        seq: u64,
        step: usize,
        total: usize,
    },
    Replayed {
        seq: u64,
        result: Result<Replayed, String>,
    },
    /// Entry `seq`'s trace was written as CSV to a file.
    Exported {
        seq: u64,
        result: Result<Exported, String>,
    },
    /// The lesion study of entry `seq` (from the Run screen), recorded or not.
    Lesioned {
        seq: u64,
        result: Result<Lesioned, String>,
    },
    /// The mean-field profile of the config with this hash: `Ok(None)` for a search (no
    /// gradient to predict).
    Predicted {
        config_hash: String,
        profile: Result<Option<Predicted>, String>,
    },
}

/// A config's predicted profile at initialisation (`gradlab theory`'s).
#[derive(Debug, Clone, PartialEq)]
pub enum Predicted {
    /// ‖δ^l‖/‖δ^out‖ per trace layer.
    Layers(Vec<f64>),
    /// ‖∂L/∂h_t‖/‖∂L/∂h_ref‖ per time step (NaN where none is predicted).
    Time(Vec<f64>),
}

/// The end of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub verdict: Verdict,
    /// Why the rerun may differ from the record for reasons other than the record (another
    /// build, host or thread count).
    pub warnings: Vec<String>,
    /// The replay entry appended: (seq, short hash); `None` when stopped before the end.
    pub recorded: Option<(u64, String)>,
    /// The user stopped it: compared as far as it got, not recorded.
    pub stopped: bool,
}

/// A finished lesion study, as the Run screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lesioned {
    pub summary: crate::lesion::Summary,
    /// `block` (a residual net) or `layer` (a plain one).
    pub unit: &'static str,
    /// 1 − 1/classes, for classification.
    pub chance: Option<f64>,
    /// The lesion entry appended: (seq, short hash).
    pub recorded: Option<(u64, String)>,
}

/// A written export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub path: std::path::PathBuf,
    /// CSV rows written, without the header.
    pub rows: usize,
}

/// How long the input thread blocks in `poll`: bounds how late it notices `stop`.
const POLL: Duration = Duration::from_millis(50);
/// Interval of `Event::Tick`.
pub const TICK: Duration = Duration::from_millis(250);

/// The terminal reader thread. It can be stopped and joined, which the editor needs: while
/// `$EDITOR` owns the terminal nothing else may read its keys.
pub struct Input {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Input {
    pub fn spawn(tx: Sender<Event>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("gradlab-input".into())
            .spawn(move || read_input(&tx, &flag))
            .expect("the OS can start the input thread");
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops reading and waits for the thread (at most one `POLL`).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Input {
    /// Stops the thread without waiting: after a hang-up crossterm can spin on the dead
    /// terminal instead of returning from `poll`, and the process is about to exit anyway.
    pub fn abandon(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take();
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_input(tx: &Sender<Event>, stop: &AtomicBool) {
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let event = match ct::poll(POLL) {
            Ok(true) => match ct::read() {
                // Release and repeat reports (kitty protocol, Windows) would double every key.
                Ok(ct::Event::Key(k)) if k.kind == KeyEventKind::Press => Some(Event::Key(k)),
                Ok(ct::Event::Resize(w, h)) => Some(Event::Resize(w, h)),
                Ok(_) => None,
                Err(_) => return,
            },
            Ok(false) => None,
            Err(_) => return,
        };
        if let Some(e) = event
            && tx.send(e).is_err()
        {
            return;
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if tx.send(Event::Tick).is_err() {
                return;
            }
        }
    }
}

/// Moves the training thread's events onto the UI channel. It never blocks the trainer: the
/// trainer's channel is unbounded and this thread only moves messages.
pub fn forward(rx: Receiver<train::Event>, tx: Sender<Event>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("gradlab-forward".into())
        .spawn(move || {
            for e in rx {
                if tx.send(Event::Train(e)).is_err() {
                    return;
                }
            }
        })
        .expect("the OS can start the forwarder thread")
}
