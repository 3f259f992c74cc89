//! Application state and its one pure transition, `App::update(event) -> Option<Effect>`.
//!
//! `update` never does I/O: what needs the outside world (starting a run, the editor,
//! reading the folder, recording, reading or replaying the ledger) comes back as an
//! `Effect` for the runtime to carry out, which keeps every key, every training event and
//! every job report unit-testable.

pub mod experiments;
pub mod ledger;
pub mod run;
pub mod sweep;
pub mod theory;

pub use experiments::{Entry, ExperimentsState, Focus};
pub use ledger::{ExportStatus, LedgerState, Load, ProbeAt, ReplayStatus, VerifyStatus};
pub use run::{LesionView, Metric, Panel, Phase, RunState};
pub use theory::Theory;

use super::event::{Event, Job};
use super::theme::Theme;
use crate::experiment::Experiment;
use crate::train;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Experiments,
    Run,
    /// The ledger's entries, the selected one's details, replay, verify, export.
    Ledger,
    /// Two entries side by side (from the Ledger screen).
    Diff,
    /// The marked entries' gradient-vs-depth profiles on one chart.
    Compare,
    /// A sweep's grid as a heatmap (from the Ledger screen, on an entry of the sweep).
    Sweep,
}

impl Screen {
    /// The Ledger screen and the screens opened from it.
    pub fn of_ledger(self) -> bool {
        matches!(
            self,
            Screen::Ledger | Screen::Diff | Screen::Compare | Screen::Sweep
        )
    }
}

/// A box drawn over the screen that takes the keys while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// `q` while a run or a replay is active.
    ConfirmQuit,
}

/// Work `update` asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Train the experiment of this entry of the Experiments screen.
    Start(usize),
    /// Open this file in `$EDITOR`, then rescan.
    Edit(PathBuf),
    /// Read the experiments folder again.
    Rescan,
    Pause(bool),
    Stop,
    /// The run ended: join the trainer and record its outcome.
    Record,
    /// Read the ledger's entries (again).
    LoadLedger,
    /// Verify the whole ledger.
    Verify,
    /// Replay the entry with this seq and record the replay.
    Replay(u64),
    /// Stop the replay in progress (it is then not recorded).
    StopReplay,
    /// Write the trace of the entry with this seq as CSV.
    Export(u64),
    /// Read the grid of the sweep with this id from the ledger.
    LoadSweep(String),
    /// Compute the mean-field δ profiles of these (config hash, canonical config).
    Predict(Vec<(String, String)>),
    /// Run the lesion study of the entry with this seq and record it.
    Lesion(u64),
}

/// Smallest terminal the screens are laid out for.
pub const MIN_SIZE: (u16, u16) = (80, 24);
/// From this size on, the Run screen shows saturation as its own panel.
pub const WIDE: (u16, u16) = (120, 36);
/// Rows moved by PgUp and PgDn.
const PAGE: isize = 10;

#[derive(Debug, Clone)]
pub struct App {
    pub screen: Screen,
    pub experiments: ExperimentsState,
    pub run: Option<RunState>,
    pub ledger: LedgerState,
    /// Predicted δ profiles by config hash, for the Run and Compare screens.
    pub theory: Theory,
    pub overlay: Option<Overlay>,
    pub theme: Theme,
    /// Terminal size, from the last resize.
    pub size: (u16, u16),
    /// A one-line note for the footer, cleared by the next key.
    pub flash: Option<String>,
    /// The sweep on the Sweep screen.
    pub sweep: Option<sweep::SweepView>,
    quit_after_run: bool,
    quit: bool,
}

impl App {
    pub fn new(theme: Theme, experiments_dir: PathBuf, size: (u16, u16)) -> Self {
        Self {
            screen: Screen::Experiments,
            experiments: ExperimentsState::new(experiments_dir),
            run: None,
            ledger: LedgerState::default(),
            theory: Theory::default(),
            overlay: None,
            theme,
            size,
            flash: None,
            sweep: None,
            quit_after_run: false,
            quit: false,
        }
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// A run's trainer is still going.
    pub fn run_active(&self) -> bool {
        self.run.as_ref().is_some_and(|r| r.phase.active())
    }

    /// The runtime spawned `exp`: show its Run screen, and ask for its theory line.
    pub fn run_started(&mut self, exp: &Experiment) -> Option<Effect> {
        self.run = Some(RunState::new(exp));
        self.screen = Screen::Run;
        self.overlay = None;
        self.predict([(exp.hash().0.clone(), exp.canonical().to_string())])
    }

    /// The runtime recorded the ended run (or failed to); quits if a quit was waiting on it,
    /// and rereads the ledger when its entries are on screen.
    pub fn recorded(&mut self, result: Result<String, String>) -> Option<Effect> {
        let ok = result.is_ok();
        if let Some(run) = &mut self.run {
            run.recorded = Some(result);
        }
        if self.quit_after_run {
            self.quit = true;
        }
        (ok && self.screen.of_ledger())
            .then(|| self.reload())
            .flatten()
    }

    /// The predictions still to compute among `configs` (config hash, canonical config).
    fn predict(&mut self, configs: impl IntoIterator<Item = (String, String)>) -> Option<Effect> {
        let wanted: Vec<(String, String)> = configs
            .into_iter()
            .filter(|(hash, _)| self.theory.request(hash))
            .collect();
        (!wanted.is_empty()).then_some(Effect::Predict(wanted))
    }

    /// `q`: asks first while a run or a replay is going, else quits.
    fn ask_or_quit(&mut self) -> Option<Effect> {
        if self.run_active() || self.ledger.replay_running() {
            self.overlay = Some(Overlay::ConfirmQuit);
        } else {
            self.quit = true;
        }
        None
    }

    /// Ctrl-C, a confirmed `q`, SIGINT or SIGTERM: stop the run (it is still recorded), then quit.
    pub fn interrupt(&mut self) -> Option<Effect> {
        self.overlay = None;
        match &mut self.run {
            Some(run) if run.phase.active() => {
                self.quit_after_run = true;
                if run.phase == Phase::Stopping {
                    None
                } else {
                    run.phase = Phase::Stopping;
                    Some(Effect::Stop)
                }
            }
            _ => {
                self.quit = true;
                None
            }
        }
    }

    /// The panels the Run screen lays out at the current size, in Tab order.
    pub fn panels(&self) -> &'static [Panel] {
        if self.size.0 >= WIDE.0 && self.size.1 >= WIDE.1 {
            &Panel::ALL
        } else {
            // Saturation becomes a column of the layers panel.
            &Panel::ALL[..4]
        }
    }

    pub fn update(&mut self, event: Event) -> Option<Effect> {
        match event {
            Event::Key(key) => {
                self.flash = None;
                self.key(key)
            }
            Event::Resize(w, h) => {
                self.size = (w, h);
                let panels = self.panels();
                if let Some(run) = &mut self.run
                    && !panels.contains(&run.view.focus)
                {
                    run.view.focus = Panel::Layers;
                }
                None
            }
            Event::Tick => None,
            Event::Train(e) => self.train(e),
            Event::Job(j) => self.job(j),
        }
    }

    fn job(&mut self, j: Job) -> Option<Effect> {
        let lg = &mut self.ledger;
        match j {
            Job::Loaded(result) => lg.loaded(result),
            Job::Verified(report) => lg.verify = Some(VerifyStatus::Done(report)),
            Job::ReplayProgress { seq, step, total } => {
                if let Some(ReplayStatus::Running {
                    seq: s,
                    step: at,
                    total: of,
                    ..
                }) = &mut lg.replay
                    && *s == seq
                {
                    (*at, *of) = (step, total);
                }
            }
            Job::Replayed { seq, result } => {
                let recorded = matches!(&result, Ok(r) if r.recorded.is_some());
                lg.replay = Some(ReplayStatus::Done { seq, result });
                // The replay entry is in the ledger now: show it.
                if recorded {
                    return self.reload();
                }
            }
            Job::Exported { seq, result } => lg.export = Some(ExportStatus::Done { seq, result }),
            Job::Lesioned { seq, result } => {
                let recorded = matches!(&result, Ok(r) if r.recorded.is_some());
                if let Some(run) = &mut self.run
                    && run.entry == Some(seq)
                {
                    run.lesion = Some(LesionView::Done(result));
                }
                if recorded && self.screen.of_ledger() {
                    return self.reload();
                }
            }
            Job::Predicted {
                config_hash,
                profile,
            } => self.theory.set(config_hash, profile),
        }
        None
    }

    /// Rereads the ledger, if the session has one.
    fn reload(&mut self) -> Option<Effect> {
        if self.ledger.load == Load::Off {
            return None;
        }
        self.ledger.load = Load::Reading;
        Some(Effect::LoadLedger)
    }

    /// `l`: the Ledger screen, with fresh entries; Esc comes back here.
    fn open_ledger(&mut self) -> Option<Effect> {
        self.ledger.back = self.screen;
        self.screen = Screen::Ledger;
        self.reload()
    }

    fn train(&mut self, e: train::Event) -> Option<Effect> {
        let run = self.run.as_mut()?;
        match e {
            train::Event::Started(h) => run.started(&h),
            train::Event::Probe { probe, wall_s } => run.probe(probe, wall_s),
            train::Event::Finished { end, wall_s } => {
                run.finished(end, wall_s);
                return Some(Effect::Record);
            }
            train::Event::Phase(p) => run.phase(p),
            train::Event::Pretrain { probe, wall_s } => run.pretrain(probe, wall_s),
            train::Event::Samples {
                width,
                height,
                images,
            } => run.samples(width, height, images),
        }
        None
    }

    fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        // In raw mode Ctrl-C is a key, not a signal.
        if key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c')) {
            return self.interrupt();
        }
        match self.overlay {
            Some(Overlay::Help) => {
                if matches!(
                    key.code,
                    KeyCode::Char('?' | 'q') | KeyCode::Esc | KeyCode::Enter
                ) {
                    self.overlay = None;
                }
                return None;
            }
            Some(Overlay::ConfirmQuit) => {
                match key.code {
                    KeyCode::Char('y' | 'Y' | 'q') | KeyCode::Enter => return self.interrupt(),
                    KeyCode::Char('n' | 'N') | KeyCode::Esc => self.overlay = None,
                    _ => {}
                }
                return None;
            }
            None => {}
        }
        if key.code == KeyCode::Char('?') {
            self.overlay = Some(Overlay::Help);
            return None;
        }
        match self.screen {
            Screen::Experiments => self.experiments_key(key),
            Screen::Run => self.run_key(key),
            Screen::Ledger => self.ledger_key(key),
            Screen::Diff => self.diff_key(key),
            Screen::Compare => self.compare_key(key),
            Screen::Sweep => self.sweep_key(key),
        }
    }

    fn ledger_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let no_ledger = self.ledger.load == Load::Off;
        let lg = &mut self.ledger;
        let selected = lg
            .selected_entry()
            .map(|e| (e.seq, e.metrics.steps_planned));
        let needs_entry = matches!(key.code, KeyCode::Char('m' | 'd' | 'c' | 'r' | 'x'));
        if needs_entry && selected.is_none() {
            self.flash = Some(if no_ledger {
                "this session keeps no ledger (--no-ledger)".into()
            } else {
                "the ledger has no entries: every run recorded appears here".into()
            });
            return None;
        }
        match key.code {
            KeyCode::Char('q') => return self.ask_or_quit(),
            KeyCode::Esc => self.screen = lg.back,
            KeyCode::Up | KeyCode::Char('k') => lg.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => lg.move_by(1),
            KeyCode::PageUp => lg.move_by(-PAGE),
            KeyCode::PageDown => lg.move_by(PAGE),
            KeyCode::Home => lg.move_by(isize::MIN / 2),
            KeyCode::End => lg.move_by(isize::MAX / 2),
            KeyCode::Char('m') => {
                lg.toggle_mark();
            }
            KeyCode::Char('d') => match lg.diff_pair() {
                Ok(pair) => {
                    lg.diff = Some(pair);
                    self.screen = Screen::Diff;
                }
                Err(why) => self.flash = Some(why.into()),
            },
            KeyCode::Char('c') => return self.open_compare(),
            KeyCode::Char('w') => {
                match lg.selected_entry().and_then(|e| sweep::sweep_of(&e.tags)) {
                    Some(id) => return Some(Effect::LoadSweep(id)),
                    None => {
                        self.flash = Some(
                            "the selected entry is not a sweep point (gradlab sweep tags them)"
                                .into(),
                        )
                    }
                }
            }
            KeyCode::Char('r') => {
                let (seq, total) = selected.expect("checked above");
                if lg.replay_running() {
                    self.flash = Some("a replay is already running: s stops it".into());
                } else {
                    lg.replay = Some(ReplayStatus::Running {
                        seq,
                        step: 0,
                        total,
                        stopping: false,
                    });
                    return Some(Effect::Replay(seq));
                }
            }
            KeyCode::Char('s') => match &mut lg.replay {
                Some(ReplayStatus::Running { stopping, .. }) if !*stopping => {
                    *stopping = true;
                    return Some(Effect::StopReplay);
                }
                _ => self.flash = Some("no replay is running".into()),
            },
            KeyCode::Char('v') => {
                if no_ledger {
                    self.flash = Some("this session keeps no ledger (--no-ledger)".into());
                } else if !matches!(lg.verify, Some(VerifyStatus::Running)) {
                    lg.verify = Some(VerifyStatus::Running);
                    return Some(Effect::Verify);
                }
            }
            KeyCode::Char('x') => {
                let (seq, _) = selected.expect("checked above");
                lg.export = Some(ExportStatus::Running(seq));
                return Some(Effect::Export(seq));
            }
            _ => {}
        }
        None
    }

    /// `c`: the marked entries on the Compare screen.
    fn open_compare(&mut self) -> Option<Effect> {
        if self.ledger.marked.is_empty() {
            self.flash =
                Some("mark entries with m (two or more), then press c to compare them".into());
            return None;
        }
        self.ledger.compare.seqs = self.ledger.marked.clone();
        self.screen = Screen::Compare;
        self.compare_predictions()
    }

    /// The theory lines the Compare screen needs, when it shows them.
    fn compare_predictions(&mut self) -> Option<Effect> {
        if !self.ledger.compare.theory {
            return None;
        }
        let lg = &self.ledger;
        let configs: Vec<(String, String)> = lg
            .compare
            .seqs
            .iter()
            .filter_map(|&s| lg.by_seq(s))
            .map(|e| (e.config_hash.0.clone(), e.config.clone()))
            .collect();
        self.predict(configs)
    }

    /// The runtime read the sweep's grid from the ledger.
    pub fn sweep_loaded(&mut self, view: sweep::SweepView) {
        self.sweep = Some(view);
        self.screen = Screen::Sweep;
    }

    fn sweep_key(&mut self, key: KeyEvent) -> Option<Effect> {
        match key.code {
            KeyCode::Char('q') => return self.ask_or_quit(),
            KeyCode::Esc => self.screen = Screen::Ledger,
            KeyCode::Char('m') => {
                if let Some(v) = &mut self.sweep {
                    v.next_metric();
                }
            }
            _ => {}
        }
        None
    }

    fn diff_key(&mut self, key: KeyEvent) -> Option<Effect> {
        match key.code {
            KeyCode::Char('q') => return self.ask_or_quit(),
            KeyCode::Esc => self.screen = Screen::Ledger,
            KeyCode::Char('f') => self.ledger.at = self.ledger.at.toggled(),
            _ => {}
        }
        None
    }

    fn compare_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let view = &mut self.ledger.compare;
        match key.code {
            KeyCode::Char('q') => return self.ask_or_quit(),
            KeyCode::Esc => self.screen = Screen::Ledger,
            KeyCode::Char('f') => self.ledger.at = self.ledger.at.toggled(),
            KeyCode::Char('n') => view.normalised = !view.normalised,
            KeyCode::Char('t') => {
                view.theory = !view.theory;
                return self.compare_predictions();
            }
            _ => {}
        }
        None
    }

    fn experiments_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let ex = &mut self.experiments;
        match key.code {
            KeyCode::Char('q') => return self.ask_or_quit(),
            KeyCode::Char('l') => return self.open_ledger(),
            KeyCode::Up | KeyCode::Char('k') => ex.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => ex.move_by(1),
            KeyCode::PageUp => ex.move_by(-PAGE),
            KeyCode::PageDown => ex.move_by(PAGE),
            KeyCode::Home => ex.move_by(isize::MIN / 2),
            KeyCode::End => ex.move_by(isize::MAX / 2),
            KeyCode::Tab | KeyCode::BackTab => {
                ex.focus = match ex.focus {
                    Focus::List => Focus::Preview,
                    Focus::Preview => Focus::List,
                }
            }
            KeyCode::Char('r') => return Some(Effect::Rescan),
            KeyCode::Char('e') => return ex.selected_entry().map(|e| Effect::Edit(e.path.clone())),
            KeyCode::Enter => match ex.selected_entry() {
                Some(Entry { loaded: Ok(_), .. }) => return Some(Effect::Start(ex.selected)),
                Some(e) => {
                    self.flash = Some(format!(
                        "'{}' is not valid: press e to fix it",
                        e.file_name()
                    ))
                }
                None => {}
            },
            _ => {}
        }
        None
    }

    /// `d` on a finished run: its lesion study (Veit et al. 2016), or `d` again to hide it.
    fn lesion_key(&mut self) -> Option<Effect> {
        let has_ledger = self.ledger.load != Load::Off;
        let run = self.run.as_mut()?;
        let refuse = match run.lesion {
            Some(LesionView::Running { .. }) => Some("the lesion study is still running"),
            Some(LesionView::Done(_)) => {
                run.lesion = None;
                return None;
            }
            None if run.phase.active() => Some("a lesion study needs the finished run: s stops it"),
            None if !matches!(run.model.as_str(), "mlp" | "resnet") => {
                Some("a lesion study deletes residual blocks or hidden layers: an mlp or a resnet")
            }
            None if !has_ledger || run.entry.is_none() => {
                Some("a lesion study reads the run's ledger entry: this run was not recorded")
            }
            None => None,
        };
        if let Some(why) = refuse {
            self.flash = Some(why.into());
            return None;
        }
        let seq = run.entry?;
        run.lesion = Some(LesionView::Running { seq });
        Some(Effect::Lesion(seq))
    }

    fn run_key(&mut self, key: KeyEvent) -> Option<Effect> {
        match key.code {
            KeyCode::Char('l') => return self.open_ledger(),
            KeyCode::Char('q') => return self.ask_or_quit(),
            _ => {}
        }
        let panels = self.panels();
        let Some(run) = self.run.as_mut() else {
            self.screen = Screen::Experiments;
            return None;
        };
        let layers = run.layers.len();
        match key.code {
            KeyCode::Char(' ') | KeyCode::Char('p') => match run.phase {
                Phase::Running => {
                    run.phase = Phase::Paused;
                    run.reset_rate();
                    return Some(Effect::Pause(true));
                }
                Phase::Paused => {
                    run.phase = Phase::Running;
                    return Some(Effect::Pause(false));
                }
                _ => {}
            },
            KeyCode::Char('s') => {
                if matches!(run.phase, Phase::Starting | Phase::Running | Phase::Paused) {
                    run.phase = Phase::Stopping;
                    return Some(Effect::Stop);
                }
            }
            KeyCode::Char('g') => run.view.metric = run.view.metric.toggled(),
            KeyCode::Char('d') => return self.lesion_key(),
            KeyCode::Tab | KeyCode::BackTab => {
                let i = panels
                    .iter()
                    .position(|p| *p == run.view.focus)
                    .unwrap_or(0);
                let n = panels.len();
                let next = if key.code == KeyCode::Tab {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                run.view.focus = panels[next];
            }
            KeyCode::Char('z') | KeyCode::Enter => run.view.zoom = !run.view.zoom,
            KeyCode::Char('i') => run.view.samples = !run.view.samples,
            KeyCode::Up | KeyCode::Char('k') => run.view.scroll_by(-1, layers),
            KeyCode::Down | KeyCode::Char('j') => run.view.scroll_by(1, layers),
            KeyCode::PageUp => run.view.scroll_by(-PAGE, layers),
            KeyCode::PageDown => run.view.scroll_by(PAGE, layers),
            KeyCode::Home => run.view.scroll_by(isize::MIN / 2, layers),
            KeyCode::End => run.view.scroll_by(isize::MAX / 2, layers),
            KeyCode::Esc => {
                if run.view.zoom {
                    run.view.zoom = false;
                } else if run.phase.active() {
                    self.flash = Some("the run is still going: s stops it, q quits".into());
                } else if run.recorded.is_some() {
                    self.run = None;
                    self.screen = Screen::Experiments;
                    return Some(Effect::Rescan);
                }
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod tests;
