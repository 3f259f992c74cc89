//! Entering and leaving the terminal UI so the terminal is never left broken: on quit, on
//! error (drop of `Session`), on panic (a hook restores before the message prints), while
//! `$EDITOR` runs, and on SIGINT/SIGTERM (a flag the event loop turns into stop-and-quit).

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use std::io::{self, Stdout, stdout};
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// True while the terminal is in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

fn enter() -> io::Result<()> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    execute!(stdout(), EnterAlternateScreen, Hide)
}

/// Leaves raw mode and the alternate screen and shows the cursor; safe to call twice.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let raw = disable_raw_mode();
    let screen = execute!(stdout(), LeaveAlternateScreen, Show);
    raw.and(screen)
}

/// Chains a panic hook that restores the terminal first, so the panic message lands on the
/// normal screen where it can be read.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Training catches its own panics (on whatever thread it runs: a run, a replay
            // job, a pool worker) and reports them as a failed run on screen, so they must
            // neither tear the UI down nor print over it.
            if crate::train::panics_are_caught() {
                return;
            }
            let _ = restore();
            previous(info);
        }));
    });
}

/// The terminal UI's hold on the terminal; dropping it restores the terminal.
pub struct Session {
    pub terminal: Term,
    /// Set by SIGINT or SIGTERM.
    pub signalled: Arc<AtomicBool>,
    /// Set by SIGHUP: the terminal is gone (an SSH connection dropped).
    pub hung_up: Arc<AtomicBool>,
    signal_ids: Vec<signal_hook::SigId>,
}

impl Session {
    pub fn start() -> io::Result<Self> {
        install_panic_hook();
        let signalled = Arc::new(AtomicBool::new(false));
        let mut signal_ids = Vec::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_ids.push(signal_hook::flag::register(sig, Arc::clone(&signalled))?);
        }
        let hung_up = Arc::new(AtomicBool::new(false));
        signal_ids.push(signal_hook::flag::register(
            signal_hook::consts::SIGHUP,
            Arc::clone(&hung_up),
        )?);
        enter()?;
        let terminal = match Terminal::new(CrosstermBackend::new(stdout())) {
            Ok(t) => t,
            Err(e) => {
                let _ = restore();
                return Err(e);
            }
        };
        Ok(Self {
            terminal,
            signalled,
            hung_up,
            signal_ids,
        })
    }

    /// Hands the terminal to another program (the editor) and takes it back afterwards.
    pub fn suspended<T>(&mut self, f: impl FnOnce() -> T) -> io::Result<T> {
        restore()?;
        let out = f();
        enter()?;
        // The other program drew on the screen: forget what ratatui thinks is there.
        self.terminal.clear()?;
        Ok(out)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = restore();
        for id in self.signal_ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
