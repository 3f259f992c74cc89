//! Snapshots of the Ledger, Diff and Compare screens and of the Run screen's theory line,
//! fed a real ledger built in a temp folder (machine-dependent fields masked by
//! `fixtures::ledger_entries`), plus buffer checks of what a snapshot cannot see.

use crate::ledger::VerifyReport;
use crate::tui::app::{App, Screen};
use crate::tui::event::{Event, Exported, Job, Replayed};
use crate::tui::fixtures::{self, Profile, ch, key};
use crate::tui::theme::ColorMode;
use crate::tui::ui::compare::GLYPHS;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;

const SMALL: (u16, u16) = (80, 24);
const LARGE: (u16, u16) = (160, 48);

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1))
        .expect("the test backend never fails");
    t.draw(|f| f.render_widget(app, f.area()))
        .expect("the test backend never fails");
    t
}

fn rows(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

/// The rows of the Compare screen's chart panel when `entries` are compared: below the
/// title bar, above the legend (a line per entry and two borders) and the footer.
fn chart_rows(text: &[String], entries: usize) -> impl Iterator<Item = &String> {
    text.iter().take(text.len() - entries - 3).skip(1)
}

fn job(j: Job) -> Event {
    Event::Job(j)
}

/// Selects the row of entry `seq` (the table is newest first).
fn select(app: &mut App, seq: u64) {
    app.update(key(KeyCode::Home));
    while app.ledger.selected_entry().map(|e| e.seq) != Some(seq) {
        app.update(ch('j'));
    }
}

/// Marks the entries `seqs`, in that order.
fn mark(app: &mut App, seqs: &[u64]) {
    for &s in seqs {
        select(app, s);
        app.update(ch('m'));
    }
}

/// A replay of entry 1 that ended EXACT and was recorded as entry 6 (the reread that
/// follows is answered with the same entries), and a clean verify.
fn with_results(app: &mut App) {
    app.update(job(Job::Replayed {
        seq: 1,
        result: Ok(Replayed {
            verdict: crate::ledger::Verdict {
                result: crate::ledger::VerdictKind::Exact,
                first: None,
                agreement: None,
            },
            warnings: Vec::new(),
            recorded: Some((6, "0123456789ab".into())),
            stopped: false,
        }),
    }));
    app.update(job(Job::Loaded(Ok(fixtures::ledger_entries()))));
    app.update(job(Job::Verified(VerifyReport {
        entries: 5,
        objects: 10,
        head: None,
        problems: Vec::new(),
    })));
}

#[test]
fn ledger_screen() {
    for (w, h) in [SMALL, LARGE] {
        let mut app = fixtures::ledger_app((w, h), ColorMode::Ansi16);
        mark(&mut app, &[1, 3]);
        select(&mut app, 1);
        with_results(&mut app);
        insta::assert_snapshot!(format!("ledger_{w}x{h}"), draw(&app).backend());
    }
}

#[test]
fn ledger_screen_while_replaying_after_an_export_and_a_replay_with_warnings() {
    let mut app = fixtures::ledger_app(SMALL, ColorMode::Ansi16);
    select(&mut app, 5);
    app.update(job(Job::Replayed {
        seq: 4,
        result: Ok(Replayed {
            verdict: crate::ledger::Verdict {
                result: crate::ledger::VerdictKind::Exact,
                first: None,
                agreement: None,
            },
            warnings: vec![
                "code identity differs: git_commit was '0123456789abcdef0123456789abcdef01234567', this build has 'fedcba9876543210fedcba9876543210fedcba98'".into(),
                "host differs".into(),
            ],
            recorded: Some((6, "0123456789ab".into())),
            stopped: false,
        }),
    }));
    app.update(job(Job::Loaded(Ok(fixtures::ledger_entries()))));
    // One line per warning note, cut to the width, however long the warning.
    insta::assert_snapshot!("ledger_replay_warnings_80x24", draw(&app).backend());
    app.update(ch('r'));
    app.update(job(Job::ReplayProgress {
        seq: 5,
        step: 4,
        total: 10,
    }));
    app.update(ch('x'));
    app.update(job(Job::Exported {
        seq: 5,
        result: Ok(Exported {
            path: "/home/lab/tanh-xavier-12-entry-5.csv".into(),
            rows: 130,
        }),
    }));
    insta::assert_snapshot!("ledger_replaying_80x24", draw(&app).backend());
}

#[test]
fn a_damaged_ledger_shows_what_is_wrong_instead_of_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    fixtures::write_ledger(&ledger_dir);
    let entries = ledger_dir.join("entries.jsonl");
    let mut bytes = std::fs::read(&entries).unwrap();
    bytes.extend_from_slice(b"{\"format\":\"gradlab-ledger/1\",\"seq\":6,");
    std::fs::write(&entries, bytes).unwrap();

    let at = crate::tui::jobs::LedgerAt::new(&ledger_dir, Default::default());
    let loaded = at
        .open()
        .map(|l| l.entries().to_vec())
        .map_err(|e| e.to_string());
    let error = loaded.as_ref().expect_err("a torn tail cannot be opened");
    assert!(error.contains("torn"), "{error}");
    let report = crate::ledger::verify::verify_dir(&ledger_dir, None);
    assert_eq!(report.first_bad_line(), Some(6));

    let mut app = fixtures::ledger_app(SMALL, ColorMode::Ansi16);
    let temp = dir.path().display().to_string();
    app.update(job(Job::Loaded(
        loaded.map_err(|e| e.replace(&temp, "/home/lab")),
    )));
    app.update(ch('v'));
    app.update(job(Job::Verified(report)));
    insta::assert_snapshot!("ledger_damaged_80x24", draw(&app).backend());
    // Every key still works on a damaged ledger, none panics.
    for c in ['r', 'm', 'd', 'c', 'x', 'j', 'k'] {
        app.update(ch(c));
        draw(&app);
    }
    assert_eq!(app.screen, Screen::Ledger);
}

#[test]
fn diff_screen() {
    for (w, h) in [SMALL, LARGE] {
        let mut app = fixtures::ledger_app((w, h), ColorMode::Ansi16);
        mark(&mut app, &[1]);
        select(&mut app, 3);
        app.update(ch('d'));
        assert_eq!(app.screen, Screen::Diff);
        insta::assert_snapshot!(format!("diff_{w}x{h}"), draw(&app).backend());
    }
}

fn comparing(size: (u16, u16), mode: ColorMode, seqs: &[u64]) -> App {
    let mut app = fixtures::ledger_app(size, mode);
    mark(&mut app, seqs);
    app.update(ch('c'));
    assert_eq!(app.screen, Screen::Compare);
    for e in fixtures::predictions(&app) {
        app.update(e);
    }
    app
}

#[test]
fn compare_screen() {
    for (w, h) in [SMALL, LARGE] {
        let app = comparing((w, h), ColorMode::Ansi16, &[1, 2, 3]);
        insta::assert_snapshot!(format!("compare_{w}x{h}"), draw(&app).backend());
    }
}

#[test]
fn compare_screen_raw_norms_at_the_last_probe_without_theory() {
    let mut app = comparing(SMALL, ColorMode::Ansi16, &[1, 2, 3]);
    app.update(ch('n'));
    app.update(ch('f'));
    app.update(ch('t'));
    insta::assert_snapshot!("compare_raw_last_80x24", draw(&app).backend());
}

#[test]
fn compare_draws_one_legend_line_per_marked_entry() {
    for marked in [&[2][..], &[1, 3], &[3, 1, 2]] {
        let app = comparing(SMALL, ColorMode::None, marked);
        let text = rows(draw(&app).backend().buffer());
        for (i, seq) in marked.iter().enumerate() {
            let label = format!("{} #{seq} ", GLYPHS[i]);
            let n = text.iter().filter(|r| r.contains(&label)).count();
            assert_eq!(
                n,
                1,
                "one legend line for entry {seq} ({label}):\n{}",
                text.join("\n")
            );
        }
        let legend = text
            .iter()
            .filter(|r| GLYPHS.iter().any(|g| r.contains(&format!("{g} #"))))
            .count();
        assert_eq!(legend, marked.len(), "{}", text.join("\n"));
        // Each entry's symbol marks its layers on the chart, colour or not (a few may hide
        // under another entry's: all normalised profiles meet at the output layer).
        for g in &GLYPHS[..marked.len()] {
            let on_chart: usize = chart_rows(&text, marked.len())
                .map(|r| r.matches(g).count())
                .sum();
            assert!(
                on_chart >= 8,
                "{g} drawn {on_chart} times:\n{}",
                text.join("\n")
            );
        }
    }
}

#[test]
fn the_compare_theory_line_follows_the_t_key() {
    let dots = |app: &App| -> usize {
        chart_rows(&rows(draw(app).backend().buffer()), 1)
            .map(|r| r.matches('·').count())
            .sum()
    };
    let mut app = comparing(SMALL, ColorMode::None, &[1]);
    let with = dots(&app);
    app.update(ch('t'));
    let without = dots(&app);
    assert!(
        with > without + 20,
        "theory dots: {with} with, {without} without"
    );
}

#[test]
fn help_on_the_ledger_screen_lists_its_keys() {
    let mut app = fixtures::ledger_app(SMALL, ColorMode::Ansi16);
    app.update(ch('?'));
    insta::assert_snapshot!("help_ledger_80x24", draw(&app).backend());
}

#[test]
fn run_screen_draws_the_theory_line_over_the_measured_profile() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 120, Profile::Vanishing);
    let exp = fixtures::experiment("tanh-naive-20", 20, 400);
    let before = rows(draw(&app).backend().buffer());
    app.update(job(Job::Predicted {
        config_hash: exp.hash().0.clone(),
        profile: crate::tui::jobs::predicted_profile(exp.canonical()).map_err(|e| e.to_string()),
    }));
    insta::assert_snapshot!("run_theory_80x24", draw(&app).backend());
    let after = rows(draw(&app).backend().buffer());
    let marks = |t: &[String]| t.iter().map(|r| r.matches('━').count()).sum::<usize>();
    assert!(marks(&after) > marks(&before), "the theory adds ━ marks");
    // The theory says nothing of ‖∂L/∂W‖: switching to it removes the line.
    app.update(ch('g'));
    let gradw = rows(draw(&app).backend().buffer());
    assert!(!gradw.iter().any(|r| r.contains("━ theory")));
}

/// A recurrent net's theory is through time: its marks sit on the time panel's bars, anchored
/// at the last step, and the layer prediction slot stays empty.
#[test]
fn run_screen_draws_the_theory_through_time_for_a_recurrent_net() {
    let mut app = fixtures::recurrent((100, 30), ColorMode::Ansi16, 40);
    let hash = app.run.as_ref().unwrap().config_hash.clone();
    let before = rows(draw(&app).backend().buffer());
    // Vanishing 1.1× per step back from t = 50, as a mean-field RNN would predict.
    let ratios: Vec<f64> = (1..=50).map(|t| 1.1f64.powi(t - 50)).collect();
    app.update(job(Job::Predicted {
        config_hash: hash.clone(),
        profile: Ok(Some(crate::tui::event::Predicted::Time(ratios))),
    }));
    assert!(app.theory.ready(&hash).is_none(), "not a layer profile");
    insta::assert_snapshot!("run_theory_through_time_100x30", draw(&app).backend());
    let after = rows(draw(&app).backend().buffer());
    let marks = |t: &[String]| t.iter().map(|r| r.matches('━').count()).sum::<usize>();
    assert!(marks(&after) > marks(&before), "the theory adds ━ marks");
    assert!(after.iter().any(|r| r.contains("━ theory")));
}

#[test]
fn every_ledger_screen_draws_at_every_size_without_panicking() {
    let mut app = comparing(SMALL, ColorMode::TrueColor, &[1, 2, 3, 4, 5]);
    for screen in [Screen::Ledger, Screen::Diff, Screen::Compare] {
        app.screen = screen;
        app.ledger.diff = Some((1, 3));
        for w in (80..=200).step_by(9) {
            for h in (24..=60).step_by(6) {
                app.update(Event::Resize(w, h));
                draw(&app);
            }
        }
        for (w, h) in [(1, 1), (79, 24), (0, 0)] {
            app.update(Event::Resize(w, h));
            draw(&app);
        }
    }
}

#[test]
fn no_color_leaves_the_ledger_screens_uncoloured_and_their_symbols_intact() {
    let mut app = comparing(SMALL, ColorMode::None, &[1, 2, 3]);
    app.ledger.diff = Some((1, 3));
    for screen in [Screen::Ledger, Screen::Diff, Screen::Compare] {
        app.screen = screen;
        let t = draw(&app);
        let buf = t.backend().buffer();
        for c in buf.content() {
            assert_eq!(
                (c.fg, c.bg),
                (ratatui::style::Color::Reset, ratatui::style::Color::Reset),
                "{screen:?} is coloured under NO_COLOR at {:?}",
                c.symbol()
            );
        }
        let text = rows(buf).join("\n");
        let want = match screen {
            Screen::Ledger => vec!["●", "■", "▲"],
            Screen::Diff => vec!["→", "B − A"],
            _ => GLYPHS[..3].to_vec(),
        };
        for w in want {
            assert!(text.contains(w), "{screen:?} lacks {w}:\n{text}");
        }
    }
}

/// A lesion entry names the run it studied in the list (wide and narrow) and in its details.
#[test]
fn a_lesion_entry_names_the_run_it_studied() {
    let mut entries = fixtures::ledger_entries();
    let studied = entries[0].hash.clone();
    let last = entries.last_mut().unwrap();
    last.kind = crate::ledger::EntryKind::Lesion;
    (last.replay_of, last.verdict) = (None, None);
    last.lesion_of = Some(studied);
    let seq = last.seq;
    for (size, says) in [(LARGE, "lesion of #1"), (SMALL, "✂ #1")] {
        let mut app = fixtures::ledger_app(size, ColorMode::Ansi16);
        app.update(job(Job::Loaded(Ok(entries.clone()))));
        select(&mut app, seq);
        let text = rows(draw(&app).backend().buffer()).join("\n");
        assert!(text.contains(says), "{text}");
        if size == LARGE {
            assert!(text.contains("a lesion study of #1"), "{text}");
        }
    }
}
