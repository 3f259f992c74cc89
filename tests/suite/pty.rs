//! The real binary in a real pseudo-terminal (portable-pty + vt100): the Run screen comes
//! up, its sparklines move, and every way out — `q` then `y`, Ctrl-C, SIGTERM — stops the
//! run, prints its summary and leaves the terminal as it was found.

use super::common;
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ROWS: u16 = 30;
const COLS: u16 = 100;
/// A guard against hanging forever, not a speed requirement: every wait ends as soon as
/// the screen shows what it waits for.
const DEADLINE: Duration = Duration::from_secs(180);

/// `gradlab run` of a small experiment in a 100×30 pseudo-terminal, its output parsed by vt100.
struct Session {
    _dir: tempfile::TempDir,
    screen: Arc<Mutex<vt100::Parser>>,
    keys: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    reading: Option<JoinHandle<()>>,
    _master: Box<dyn MasterPty + Send>,
}

impl Session {
    fn start(name: &str) -> Self {
        Self::start_in(name, false)
    }

    /// `browse`: a bare `gradlab` on the Experiments screen over `experiments/`, which
    /// holds the one experiment; else `gradlab run` of it.
    fn start_in(name: &str, browse: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let folder = if browse {
            dir.path().join("experiments")
        } else {
            dir.path().to_path_buf()
        };
        std::fs::create_dir_all(&folder).unwrap();
        // Far more steps than it can do before we quit, so the run is live whenever we look.
        let body = common::small_experiment(name, "").replace("steps = 30", "steps = 5000000");
        let file = common::write_experiment(&folder, name, &body);
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("the OS can open a pseudo-terminal");
        let argv = common::gradlab_argv();
        let mut cmd = CommandBuilder::new(&argv[0]);
        cmd.args(&argv[1..]);
        if !browse {
            cmd.args(["run", file.to_str().unwrap()]);
        }
        cmd.cwd(dir.path());
        cmd.env("GRADLAB_LEDGER", dir.path().join("ledger"));
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        let child = pair.slave.spawn_command(cmd).expect("the binary starts");
        drop(pair.slave);

        let screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let mut reader = pair.master.try_clone_reader().unwrap();
        let sink = Arc::clone(&screen);
        let reading = std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            // Ends with EOF or EIO once the child has exited and closed the terminal.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().process(&buf[..n]);
            }
        });
        let keys = pair.master.take_writer().unwrap();
        Self {
            _dir: dir,
            screen,
            keys,
            child,
            reading: Some(reading),
            _master: pair.master,
        }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.contents();
            if ok(&text) {
                return text;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; the screen shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the Run screen of a live run with its layer rows drawn.
    fn wait_running(&self) -> String {
        let text = self.wait_for("the run screen with its layer rows", |s| {
            s.contains("▶ running") && s.contains("config ") && sparklines(s).chars().count() >= 20
        });
        assert!(
            self.screen.lock().unwrap().screen().alternate_screen(),
            "the UI draws on the alternate screen"
        );
        text
    }

    fn press(&mut self, keys: &[u8]) {
        self.keys.write_all(keys).unwrap();
        self.keys.flush().unwrap();
    }

    /// Waits for the exit; returns its code, the screen the terminal was left with and the
    /// ledger's entries file.
    fn exit(mut self) -> (u32, vt100::Screen, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "gradlab did not exit:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        self.reading.take().unwrap().join().unwrap();
        let screen = self.screen.lock().unwrap().screen().clone();
        let entries = std::fs::read_to_string(self._dir.path().join("ledger/entries.jsonl"))
            .unwrap_or_default();
        (status.exit_code(), screen, entries)
    }
}

/// The sparkline glyphs of the layer rows (`h1 …`), in screen order.
fn sparklines(text: &str) -> String {
    text.lines()
        .filter(|l| l.trim_start_matches(['│', '┃']).starts_with('h'))
        .flat_map(|l| l.chars().filter(|c| ('▁'..='█').contains(c)))
        .collect()
}

/// The terminal is back to normal, the run's summary follows the UI, and the run was
/// recorded in the ledger as interrupted.
fn assert_restored((code, screen, entries): (u32, vt100::Screen, String), name: &str) {
    let text = screen.contents();
    let screen = &screen;
    assert!(
        !screen.alternate_screen(),
        "the alternate screen was left:\n{text}"
    );
    assert!(!screen.hide_cursor(), "the cursor is visible again");
    assert!(
        text.contains(&format!("{name}: interrupted after")),
        "the summary follows the UI:\n{text}"
    );
    assert!(text.contains("recorded entry 1 "), "{text}");
    let lines: Vec<&str> = entries.lines().collect();
    assert_eq!(lines.len(), 1, "one ledger entry: {entries}");
    assert!(
        lines[0].contains(&format!("\"experiment\":\"{name}\""))
            && lines[0].contains("\"status\":\"interrupted\""),
        "{}",
        lines[0]
    );
    assert_eq!(
        code, 130,
        "a run stopped by the user exits like an interrupted one"
    );
}

#[test]
fn run_screen_in_a_real_terminal_moves_quits_on_q_and_restores_the_terminal() {
    let mut s = Session::start("pty-q");
    let first = s.wait_running();
    assert!(
        first.contains("pty-q") && first.contains("Layers"),
        "{first}"
    );
    let before = sparklines(&first);
    s.wait_for("the sparklines to change", |t| {
        sparklines(t) != before && t.contains("▶ running")
    });
    s.press(b"q");
    s.wait_for("the quit question", |t| t.contains("Stop it and quit?"));
    s.press(b"y");
    assert_restored(s.exit(), "pty-q");
}

#[test]
fn ctrl_c_in_raw_mode_stops_the_run_and_restores_the_terminal() {
    let mut s = Session::start("pty-ctrl-c");
    s.wait_running();
    s.press(&[0x03]);
    assert_restored(s.exit(), "pty-ctrl-c");
}

#[test]
fn sigterm_stops_the_run_and_restores_the_terminal() {
    let s = Session::start("pty-sigterm");
    s.wait_running();
    let pid = s.child.process_id().expect("the child has a pid") as libc::pid_t;
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_restored(s.exit(), "pty-sigterm");
}

#[test]
fn the_ledger_screen_shows_the_recorded_run_and_verifies_it_in_a_real_terminal() {
    let mut s = Session::start("pty-ledger");
    s.wait_running();
    s.press(b"l");
    s.wait_for("the empty ledger", |t| {
        t.contains("│ Ledger │") && t.contains("No entries yet")
    });
    s.press(b"\x1b");
    s.wait_running();
    s.press(b"s");
    s.wait_for("the run recorded", |t| t.contains("recorded entry 1 "));
    s.press(b"l");
    s.wait_for("the entry in the table", |t| {
        t.contains("1 entry") && t.contains("pty-ledger") && t.contains("interrupted")
    });
    s.press(b"v");
    s.wait_for("the verify result", |t| t.contains("✓ verified: 1 entry,"));
    s.press(b"q");
    assert_restored(s.exit(), "pty-ledger");
}

/// A dropped SSH connection sends SIGHUP: the run is stopped and still recorded.
#[test]
fn sighup_stops_the_run_and_records_it() {
    let s = Session::start("pty-sighup");
    s.wait_running();
    let pid = s.child.process_id().expect("the child has a pid") as libc::pid_t;
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    assert_restored(s.exit(), "pty-sighup");
}

/// A session opened on the Experiments screen ends by a signal as a headless run does:
/// exit 130, the run it started recorded as interrupted.
#[test]
fn sigterm_in_a_browsing_session_exits_130_and_records_the_run() {
    let mut s = Session::start_in("pty-browse", true);
    s.wait_for("the experiments screen", |t| t.contains("pty-browse"));
    s.press(b"\r");
    s.wait_running();
    let pid = s.child.process_id().expect("the child has a pid") as libc::pid_t;
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (code, screen, entries) = s.exit();
    assert!(!screen.alternate_screen(), "{}", screen.contents());
    assert!(entries.contains("\"status\":\"interrupted\""), "{entries}");
    assert_eq!(code, 130, "{}", screen.contents());
}
