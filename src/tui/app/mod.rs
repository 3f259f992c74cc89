//! Application state and its one pure transition, `App::update(event) -> Option<Effect>`.
//!
//! `update` never does I/O: what needs the outside world (starting a run, the editor,
//! reading the folder, recording) comes back as an `Effect` for the runtime to carry out,
//! which keeps every key and every training event unit-testable.

pub mod experiments;
pub mod run;

pub use experiments::{Entry, ExperimentsState, Focus};
pub use run::{Metric, Panel, Phase, RunState};

use super::event::Event;
use super::theme::Theme;
use crate::experiment::Experiment;
use crate::train;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;

/// The screens. The ledger and compare screens join here in phase 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Experiments,
    Run,
}

/// A box drawn over the screen that takes the keys while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// `q` while a run is active.
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
    pub overlay: Option<Overlay>,
    pub theme: Theme,
    /// Terminal size, from the last resize.
    pub size: (u16, u16),
    /// A one-line note for the footer, cleared by the next key.
    pub flash: Option<String>,
    quit_after_run: bool,
    quit: bool,
}

impl App {
    pub fn new(theme: Theme, experiments_dir: PathBuf, size: (u16, u16)) -> Self {
        Self {
            screen: Screen::Experiments,
            experiments: ExperimentsState::new(experiments_dir),
            run: None,
            overlay: None,
            theme,
            size,
            flash: None,
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

    /// The runtime spawned `exp`: show its Run screen.
    pub fn run_started(&mut self, exp: &Experiment) {
        self.run = Some(RunState::new(exp));
        self.screen = Screen::Run;
        self.overlay = None;
    }

    /// The runtime recorded the ended run (or failed to); quits if a quit was waiting on it.
    pub fn recorded(&mut self, result: Result<String, String>) {
        if let Some(run) = &mut self.run {
            run.recorded = Some(result);
        }
        if self.quit_after_run {
            self.quit = true;
        }
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
        }
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
            // DBN pretraining phases and samples are shown by the run screen's phase panel.
            train::Event::Phase(_) | train::Event::Pretrain { .. } | train::Event::Samples { .. } => {}
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
        }
    }

    fn experiments_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let ex = &mut self.experiments;
        match key.code {
            KeyCode::Char('q') => self.quit = true,
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

    fn run_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let panels = self.panels();
        let Some(run) = self.run.as_mut() else {
            self.screen = Screen::Experiments;
            return None;
        };
        let layers = run.layers.len();
        match key.code {
            KeyCode::Char('q') => {
                if run.phase.active() {
                    self.overlay = Some(Overlay::ConfirmQuit);
                } else {
                    self.quit = true;
                }
            }
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
mod tests;
