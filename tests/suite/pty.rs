//! The real binary in a real pseudo-terminal (portable-pty + vt100): the Run screen comes
//! up, its sparklines move, `q` asks and `y` quits, and the terminal is left as it was found.

use super::common;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROWS: u16 = 30;
const COLS: u16 = 100;
/// A guard against hanging forever, not a speed requirement: every wait ends as soon as
/// the screen shows what it waits for.
const DEADLINE: Duration = Duration::from_secs(180);

type Screen = Arc<Mutex<vt100::Parser>>;

fn contents(screen: &Screen) -> String {
    screen.lock().unwrap().screen().contents()
}

fn wait_for(screen: &Screen, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = contents(screen);
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

/// The sparkline glyphs of the layer rows (`h1 …`), in screen order.
fn sparklines(text: &str) -> String {
    text.lines()
        .filter(|l| l.trim_start_matches(['│', '┃']).starts_with('h'))
        .flat_map(|l| l.chars().filter(|c| ('▁'..='█').contains(c)))
        .collect()
}

#[test]
fn run_screen_in_a_real_terminal_moves_quits_on_q_and_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let file = common::write_experiment(dir.path(), "pty", &common::small_experiment("pty", ""));
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("the OS can open a pseudo-terminal");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_gradlab"));
    // Far more steps than it can do before we quit, so the run is live whenever we look.
    cmd.args(["run", file.to_str().unwrap(), "--steps", "5000000"]);
    cmd.cwd(dir.path());
    cmd.env("GRADLAB_LEDGER", dir.path().join("ledger"));
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    let mut child = pair.slave.spawn_command(cmd).expect("the binary starts");
    drop(pair.slave);

    let screen: Screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
    let mut reader = pair.master.try_clone_reader().unwrap();
    let sink = Arc::clone(&screen);
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        // Ends with EOF or EIO once the child has exited and closed the terminal.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            sink.lock().unwrap().process(&buf[..n]);
        }
    });
    let mut keys = pair.master.take_writer().unwrap();

    let first = wait_for(&screen, "the run screen with its layer rows", |s| {
        s.contains("▶ running") && s.contains("config ") && sparklines(s).chars().count() >= 20
    });
    assert!(
        screen.lock().unwrap().screen().alternate_screen(),
        "the UI draws on the alternate screen"
    );
    assert!(first.contains("pty") && first.contains("Layers"), "{first}");
    let before = sparklines(&first);
    wait_for(&screen, "the sparklines to change", |s| {
        sparklines(s) != before && s.contains("▶ running")
    });

    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    wait_for(&screen, "the quit question", |s| {
        s.contains("Stop it and quit?")
    });
    keys.write_all(b"y").unwrap();
    keys.flush().unwrap();

    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "gradlab did not exit after q, y:\n{}",
            contents(&screen)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(keys);
    reading.join().unwrap();

    let parser = screen.lock().unwrap();
    let restored = parser.screen();
    let text = restored.contents();
    assert!(
        !restored.alternate_screen(),
        "the alternate screen was left:\n{text}"
    );
    assert!(!restored.hide_cursor(), "the cursor is visible again");
    assert!(
        text.contains("pty: interrupted after"),
        "the summary follows the UI:\n{text}"
    );
    assert!(
        text.contains("not recorded (ledger not built yet)"),
        "{text}"
    );
    assert_eq!(
        status.exit_code(),
        130,
        "a run stopped by the user exits like an interrupted one"
    );
}
