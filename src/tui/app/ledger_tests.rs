//! Unit tests of `App::update` on the Ledger, Diff and Compare screens: keys and job
//! reports in, state and effects out.

use super::*;
use crate::ledger::{Verdict, VerdictKind, VerifyReport};
use crate::tui::event::{Exported, Replayed};
use crate::tui::fixtures::{self, Profile, ch, key};
use crate::tui::theme::ColorMode;

const SMALL: (u16, u16) = (80, 24);

fn ledger_app() -> App {
    fixtures::ledger_app(SMALL, ColorMode::Ansi16)
}

fn select(app: &mut App, seq: u64) {
    app.update(key(KeyCode::Home));
    while app.ledger.selected_entry().map(|e| e.seq) != Some(seq) {
        assert!(
            app.ledger.selected + 1 < app.ledger.entries.len(),
            "no entry {seq}"
        );
        app.update(ch('j'));
    }
}

fn replayed(seq: u64, recorded: Option<u64>, stopped: bool) -> Event {
    Event::Job(Job::Replayed {
        seq,
        result: Ok(Replayed {
            verdict: Verdict {
                result: VerdictKind::Exact,
                first: None,
                agreement: None,
            },
            warnings: Vec::new(),
            recorded: recorded.map(|s| (s, "abcdef012345".into())),
            stopped,
        }),
    })
}

#[test]
fn l_opens_the_ledger_from_both_screens_and_esc_goes_back() {
    let mut app = fixtures::browsing(SMALL, ColorMode::Ansi16);
    app.ledger = LedgerState::at("ledger".into());
    assert_eq!(app.update(ch('l')), Some(Effect::LoadLedger));
    assert_eq!(
        (app.screen, &app.ledger.load),
        (Screen::Ledger, &Load::Reading)
    );
    app.update(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Experiments);

    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    app.ledger = LedgerState::at("ledger".into());
    assert_eq!(app.update(ch('l')), Some(Effect::LoadLedger));
    assert!(app.run_active(), "the run goes on behind the ledger");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Run);
}

#[test]
fn without_a_ledger_the_screen_opens_but_asks_for_nothing() {
    let mut app = fixtures::browsing(SMALL, ColorMode::Ansi16);
    assert_eq!(app.update(ch('l')), None);
    assert_eq!((app.screen, &app.ledger.load), (Screen::Ledger, &Load::Off));
    for c in ['r', 'v', 'x', 'm'] {
        assert_eq!(app.update(ch(c)), None, "{c}");
        assert!(
            app.flash
                .as_deref()
                .is_some_and(|f| f.contains("--no-ledger")),
            "{c}"
        );
    }
}

#[test]
fn entries_show_newest_first_and_a_reload_keeps_the_selection() {
    let mut app = ledger_app();
    assert_eq!(app.ledger.selected_entry().map(|e| e.seq), Some(5));
    select(&mut app, 3);
    app.update(ch('m'));
    // The ledger grew by one entry (a replay recorded elsewhere) and lost none.
    let mut more = fixtures::ledger_entries();
    let mut sixth = more[4].clone();
    sixth.seq = 6;
    more.push(sixth);
    app.update(Event::Job(Job::Loaded(Ok(more))));
    assert_eq!(app.ledger.selected_entry().map(|e| e.seq), Some(3));
    assert_eq!(app.ledger.selected, 3, "row 0 is entry 6 now");
    // A shorter ledger drops the marks of entries that are gone.
    app.update(Event::Job(Job::Loaded(Ok(
        fixtures::ledger_entries()[..2].to_vec()
    ))));
    assert!(app.ledger.marked.is_empty());
    assert!(app.ledger.selected < 2);
}

#[test]
fn m_marks_and_unmarks_in_order() {
    let mut app = ledger_app();
    select(&mut app, 2);
    app.update(ch('m'));
    select(&mut app, 4);
    app.update(ch('m'));
    assert_eq!(app.ledger.marked, vec![2, 4]);
    select(&mut app, 2);
    app.update(ch('m'));
    assert_eq!(app.ledger.marked, vec![4]);
}

#[test]
fn d_diffs_the_marked_entry_with_the_selected_one() {
    let mut app = ledger_app();
    select(&mut app, 3);
    assert_eq!(app.update(ch('d')), None);
    assert_eq!(app.screen, Screen::Ledger);
    assert!(
        app.flash
            .as_deref()
            .is_some_and(|f| f.starts_with("mark an entry"))
    );
    app.update(ch('m'));
    app.update(ch('d'));
    assert!(
        app.flash
            .as_deref()
            .is_some_and(|f| f.contains("select another"))
    );
    select(&mut app, 1);
    app.update(ch('d'));
    assert_eq!((app.screen, app.ledger.diff), (Screen::Diff, Some((3, 1))));
    assert_eq!(app.ledger.at, ProbeAt::First);
    app.update(ch('f'));
    assert_eq!(app.ledger.at, ProbeAt::Last);
    app.update(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Ledger);
}

#[test]
fn c_compares_the_marked_entries_and_asks_for_their_theory_once() {
    let mut app = ledger_app();
    assert_eq!(app.update(ch('c')), None);
    assert!(
        app.flash
            .as_deref()
            .is_some_and(|f| f.starts_with("mark entries"))
    );
    for s in [1, 4, 2] {
        select(&mut app, s);
        app.update(ch('m'));
    }
    let Some(Effect::Predict(configs)) = app.update(ch('c')) else {
        panic!("entering Compare asks for the theory lines");
    };
    // Entry 4 replays entry 1: one config, computed once.
    let entries = fixtures::ledger_entries();
    let want: Vec<String> = [0, 1]
        .iter()
        .map(|&i| entries[i].config_hash.0.clone())
        .collect();
    assert_eq!(
        configs.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
        want
    );
    assert_eq!(configs[0].1, entries[0].config);
    assert_eq!(
        (app.screen, &app.ledger.compare.seqs),
        (Screen::Compare, &vec![1, 4, 2])
    );
    app.update(key(KeyCode::Esc));
    assert_eq!(app.update(ch('c')), None, "already asked for");
    assert_eq!(app.update(ch('t')), None);
    assert!(!app.ledger.compare.theory);
    assert_eq!(app.update(ch('t')), None);
    app.update(ch('n'));
    assert!(!app.ledger.compare.normalised);
    let hash = want[0].clone();
    app.update(Event::Job(Job::Predicted {
        config_hash: hash.clone(),
        profile: Ok(Some(crate::tui::event::Predicted::Layers(vec![0.5, 1.0]))),
    }));
    assert_eq!(app.theory.ready(&hash), Some(&[0.5, 1.0][..]));
}

#[test]
fn r_replays_reports_progress_and_the_verdict_then_rereads_the_ledger() {
    let mut app = ledger_app();
    select(&mut app, 2);
    assert_eq!(app.update(ch('r')), Some(Effect::Replay(2)));
    let running = |step| ReplayStatus::Running {
        seq: 2,
        step,
        total: 10,
        stopping: false,
    };
    assert_eq!(app.ledger.replay, Some(running(0)));
    assert_eq!(app.update(ch('r')), None, "one replay at a time");
    assert!(app.flash.is_some());
    app.update(Event::Job(Job::ReplayProgress {
        seq: 2,
        step: 7,
        total: 10,
    }));
    assert_eq!(app.ledger.replay, Some(running(7)));
    // A late report of another replay does not move this one.
    app.update(Event::Job(Job::ReplayProgress {
        seq: 1,
        step: 9,
        total: 10,
    }));
    assert_eq!(app.ledger.replay, Some(running(7)));
    assert_eq!(
        app.update(replayed(2, Some(6), false)),
        Some(Effect::LoadLedger)
    );
    assert!(matches!(
        &app.ledger.replay,
        Some(ReplayStatus::Done { seq: 2, result: Ok(r) }) if r.recorded == Some((6, "abcdef012345".into()))
    ));
    assert_eq!(app.ledger.load, Load::Reading);
    assert_eq!(
        app.update(ch('r')),
        Some(Effect::Replay(2)),
        "a new replay may start"
    );
}

#[test]
fn s_stops_a_replay_once_and_a_stopped_replay_rereads_nothing() {
    let mut app = ledger_app();
    assert_eq!(app.update(ch('s')), None);
    assert_eq!(app.flash.as_deref(), Some("no replay is running"));
    assert_eq!(app.update(ch('r')), Some(Effect::Replay(5)));
    assert_eq!(app.update(ch('s')), Some(Effect::StopReplay));
    assert!(matches!(
        app.ledger.replay,
        Some(ReplayStatus::Running { stopping: true, .. })
    ));
    assert_eq!(app.update(ch('s')), None);
    assert_eq!(app.update(replayed(5, None, true)), None);
    assert_eq!(app.ledger.load, Load::Ready);
    app.update(Event::Job(Job::Replayed {
        seq: 5,
        result: Err("entry 5: the stored trace cannot be read".into()),
    }));
    assert!(matches!(
        &app.ledger.replay,
        Some(ReplayStatus::Done { result: Err(_), .. })
    ));
}

#[test]
fn q_during_a_replay_asks_first_then_quits() {
    let mut app = ledger_app();
    app.update(ch('r'));
    assert_eq!(app.update(ch('q')), None);
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit));
    assert_eq!(
        app.update(ch('y')),
        None,
        "the runtime stops and joins the replay"
    );
    assert!(app.should_quit());
}

#[test]
fn v_verifies_once_at_a_time_and_keeps_the_report() {
    let mut app = ledger_app();
    assert_eq!(app.update(ch('v')), Some(Effect::Verify));
    assert!(matches!(app.ledger.verify, Some(VerifyStatus::Running)));
    assert_eq!(app.update(ch('v')), None);
    let report = VerifyReport {
        entries: 5,
        objects: 9,
        head: None,
        problems: vec![crate::ledger::Problem {
            line: Some(4),
            experiment: Some("tanh-naive-12".into()),
            what: "hash mismatch".into(),
        }],
    };
    app.update(Event::Job(Job::Verified(report)));
    let Some(VerifyStatus::Done(r)) = &app.ledger.verify else {
        panic!("the report is kept");
    };
    assert_eq!(r.first_bad_line(), Some(4));
    assert_eq!(app.update(ch('v')), Some(Effect::Verify), "verify again");
}

#[test]
fn x_exports_the_selected_entry() {
    let mut app = ledger_app();
    select(&mut app, 3);
    assert_eq!(app.update(ch('x')), Some(Effect::Export(3)));
    assert_eq!(app.ledger.export, Some(ExportStatus::Running(3)));
    let done = Exported {
        path: "out.csv".into(),
        rows: 12,
    };
    app.update(Event::Job(Job::Exported {
        seq: 3,
        result: Ok(done.clone()),
    }));
    assert_eq!(
        app.ledger.export,
        Some(ExportStatus::Done {
            seq: 3,
            result: Ok(done)
        })
    );
}

#[test]
fn a_run_recorded_while_the_ledger_is_on_screen_rereads_it() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    app.ledger = LedgerState::at("ledger".into());
    app.update(ch('l'));
    app.update(Event::Job(Job::Loaded(Ok(fixtures::ledger_entries()))));
    app.update(fixtures::finished(
        crate::train::Status::Completed,
        400,
        None,
    ));
    assert_eq!(app.recorded(Ok("entry 6".into())), Some(Effect::LoadLedger));
    app.update(key(KeyCode::Esc));
    assert_eq!(
        app.recorded(Ok("entry 7".into())),
        None,
        "not on screen: no read"
    );
}

#[test]
fn a_started_run_asks_for_its_theory_line_once() {
    let exp = fixtures::experiment("tanh-naive-20", 20, 400);
    let mut app = fixtures::browsing(SMALL, ColorMode::Ansi16);
    assert_eq!(
        app.run_started(&exp),
        Some(Effect::Predict(vec![(
            exp.hash().0.clone(),
            exp.canonical().to_string()
        )]))
    );
    assert_eq!(
        app.run_started(&exp),
        None,
        "the same config is not computed twice"
    );
    assert_eq!(app.theory.get(&exp.hash().0), Some(&theory::Line::Pending));
}
