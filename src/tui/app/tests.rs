//! Unit tests of `App::update`: keys and training events in, state and effects out.

use super::*;
use crate::train::Status;
use crate::tui::fixtures::{self, Profile, ch, ctrl_c, finished, key};
use crate::tui::theme::ColorMode;

const SMALL: (u16, u16) = (80, 24);
const LARGE: (u16, u16) = (160, 48);

fn run(app: &App) -> &RunState {
    app.run.as_ref().expect("a run is shown")
}

#[test]
fn training_events_fill_the_run_state_and_the_end_asks_to_record() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 0, Profile::Vanishing);
    assert_eq!(run(&app).phase, Phase::Running);
    assert_eq!(run(&app).layers.len(), 21);
    let exp = fixtures::experiment("tanh-naive-20", 20, 400);
    for e in fixtures::stream(&exp, 120, Profile::Vanishing)
        .into_iter()
        .skip(1)
    {
        assert_eq!(app.update(e), None);
    }
    assert_eq!(run(&app).steps_done(), 120);
    let rate = run(&app).steps_per_s().expect("two probes give a rate");
    assert!((rate - 40.0).abs() < 1e-9, "{rate}");
    assert_eq!(
        app.update(finished(Status::Completed, 400, None)),
        Some(Effect::Record)
    );
    assert!(matches!(run(&app).phase, Phase::Ended(_)));
    assert!(!app.run_active());
    app.recorded(Ok("recorded as #1".into()));
    assert_eq!(run(&app).recorded, Some(Ok("recorded as #1".into())));
    assert!(!app.should_quit());
}

#[test]
fn space_pauses_and_resumes() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    assert_eq!(app.update(ch(' ')), Some(Effect::Pause(true)));
    assert_eq!(run(&app).phase, Phase::Paused);
    assert_eq!(
        run(&app).steps_per_s(),
        None,
        "a pause restarts the rate window"
    );
    assert_eq!(app.update(ch(' ')), Some(Effect::Pause(false)));
    assert_eq!(run(&app).phase, Phase::Running);
}

#[test]
fn s_stops_once() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    assert_eq!(app.update(ch('s')), Some(Effect::Stop));
    assert_eq!(run(&app).phase, Phase::Stopping);
    assert_eq!(app.update(ch('s')), None);
    assert_eq!(app.update(ch(' ')), None, "a stopping run cannot be paused");
}

#[test]
fn q_asks_first_while_a_run_is_active_and_quits_after_recording() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    assert_eq!(app.update(ch('q')), None);
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit));
    assert_eq!(app.update(ch('n')), None);
    assert_eq!(app.overlay, None);
    assert!(!app.should_quit());
    app.update(ch('q'));
    assert_eq!(app.update(ch('y')), Some(Effect::Stop));
    assert!(!app.should_quit(), "the run must end and be recorded first");
    assert_eq!(
        app.update(finished(Status::Interrupted, 5, None)),
        Some(Effect::Record)
    );
    app.recorded(Ok("ok".into()));
    assert!(app.should_quit());
}

#[test]
fn q_after_the_run_ended_quits_at_once() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    app.update(finished(Status::Completed, 400, None));
    app.recorded(Ok("ok".into()));
    app.update(ch('q'));
    assert!(app.should_quit());
}

#[test]
fn ctrl_c_stops_the_run_and_quits_without_asking() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    assert_eq!(app.update(ctrl_c()), Some(Effect::Stop));
    assert_eq!(app.overlay, None);
    assert_eq!(
        app.update(ctrl_c()),
        None,
        "a second Ctrl-C waits for the same stop"
    );
    app.update(finished(Status::Interrupted, 5, None));
    app.recorded(Err("disk full".into()));
    assert!(
        app.should_quit(),
        "a failed recording must not keep the user in"
    );

    let mut idle = fixtures::browsing(SMALL, ColorMode::Ansi16);
    assert_eq!(idle.update(ctrl_c()), None);
    assert!(idle.should_quit());
}

#[test]
fn g_switches_every_panel_between_delta_and_weight_gradient() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    assert_eq!(run(&app).view.metric, Metric::Delta);
    app.update(ch('g'));
    assert_eq!(run(&app).view.metric, Metric::GradW);
    app.update(ch('g'));
    assert_eq!(run(&app).view.metric, Metric::Delta);
}

#[test]
fn tab_cycles_the_panels_laid_out_at_this_size() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    let mut seen = vec![run(&app).view.focus];
    for _ in 0..4 {
        app.update(key(KeyCode::Tab));
        seen.push(run(&app).view.focus);
    }
    assert_eq!(
        seen,
        [
            Panel::Layers,
            Panel::Profile,
            Panel::Heatmap,
            Panel::Loss,
            Panel::Layers
        ]
    );
    app.update(key(KeyCode::BackTab));
    assert_eq!(run(&app).view.focus, Panel::Loss);

    app.update(Event::Resize(LARGE.0, LARGE.1));
    app.update(key(KeyCode::Tab));
    assert_eq!(
        run(&app).view.focus,
        Panel::Saturation,
        "wide layouts add the saturation panel"
    );
    app.update(Event::Resize(SMALL.0, SMALL.1));
    assert_eq!(
        run(&app).view.focus,
        Panel::Layers,
        "a panel that left the layout loses focus"
    );
}

#[test]
fn arrows_scroll_the_focused_panel_within_the_layers() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    app.update(key(KeyCode::PageDown));
    app.update(key(KeyCode::Down));
    assert_eq!(run(&app).view.scroll(Panel::Layers), 11);
    app.update(key(KeyCode::End));
    assert_eq!(run(&app).view.scroll(Panel::Layers), 20);
    app.update(key(KeyCode::Up));
    assert_eq!(run(&app).view.scroll(Panel::Layers), 19);
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Tab)); // heatmap scrolls on its own
    app.update(key(KeyCode::Down));
    assert_eq!(run(&app).view.scroll(Panel::Heatmap), 1);
    assert_eq!(run(&app).view.scroll(Panel::Layers), 19);
}

#[test]
fn help_opens_and_takes_the_keys_until_closed() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    app.update(ch('?'));
    assert_eq!(app.overlay, Some(Overlay::Help));
    assert_eq!(
        app.update(ch('s')),
        None,
        "keys do not reach the run under the help"
    );
    assert_eq!(run(&app).phase, Phase::Running);
    app.update(key(KeyCode::Esc));
    assert_eq!(app.overlay, None);
}

#[test]
fn esc_returns_to_the_experiments_only_once_the_run_is_recorded() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    app.update(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Run);
    assert!(app.flash.is_some());
    app.update(finished(Status::Completed, 400, None));
    app.update(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Run, "not before the recorder answered");
    app.recorded(Ok("ok".into()));
    assert_eq!(app.update(key(KeyCode::Esc)), Some(Effect::Rescan));
    assert_eq!(app.screen, Screen::Experiments);
    assert!(app.run.is_none());
}

#[test]
fn experiments_keys_select_run_edit_and_rescan() {
    let mut app = fixtures::browsing(SMALL, ColorMode::Ansi16);
    assert_eq!(app.update(key(KeyCode::Enter)), Some(Effect::Start(0)));
    app.update(ch('j'));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        None,
        "an invalid file does not run"
    );
    assert_eq!(
        app.flash.as_deref(),
        Some("'broken.toml' is not valid: press e to fix it")
    );
    assert_eq!(
        app.update(ch('e')),
        Some(Effect::Edit("experiments/broken.toml".into()))
    );
    assert_eq!(app.flash, None);
    assert_eq!(app.update(ch('r')), Some(Effect::Rescan));
    app.update(key(KeyCode::End));
    assert_eq!(app.experiments.selected, 3);
    app.update(key(KeyCode::Tab));
    app.update(ch('j'));
    assert_eq!(
        app.experiments.selected, 3,
        "with the preview focused the arrows scroll it"
    );
    assert_eq!(app.experiments.preview_scroll, 1);
    app.update(ch('q'));
    assert!(app.should_quit());
}

#[test]
fn z_zooms_the_focused_panel_and_esc_unzooms() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 5, Profile::Vanishing);
    app.update(ch('z'));
    assert!(run(&app).view.zoom);
    app.update(key(KeyCode::Esc));
    assert!(!run(&app).view.zoom);
}

#[test]
fn recurrent_probes_keep_the_gradient_through_time_and_its_ratio() {
    let app = fixtures::recurrent(SMALL, ColorMode::Ansi16, 3);
    let r = run(&app);
    assert_eq!(r.through_time().len(), 50);
    let want = fixtures::recurrent_probe(2, 50);
    assert_eq!(r.time_ratio(), Some(want.time[0] / want.time[49]));
    assert!(
        r.time_ratio().unwrap() < 1e-3,
        "the first step's error vanished"
    );
    // Other nets have no time profile.
    let mlp = fixtures::running(SMALL, ColorMode::Ansi16, 3, Profile::Vanishing);
    assert!(run(&mlp).through_time().is_empty());
    assert_eq!(run(&mlp).time_ratio(), None);
}

#[test]
fn search_probes_fill_the_fitness_series() {
    let app = fixtures::searching(SMALL, ColorMode::Ansi16, 5);
    let r = run(&app);
    assert_eq!(r.search.as_deref(), Some("genetic"));
    assert!(r.layers.is_empty());
    assert_eq!(r.fitness_best.points.len(), 5);
    assert_eq!(r.fitness_mean.points.len(), 5);
    let f = fixtures::search_probe(4).fitness.unwrap();
    assert_eq!(r.fitness_best.last(), Some((4.0, f.best)));
    assert_eq!(r.fitness_mean.last(), Some((4.0, f.mean)));
}

#[test]
fn dbn_events_set_the_phase_and_fill_each_rbm_curves() {
    let mut app = fixtures::pretraining(SMALL, ColorMode::Ansi16);
    let r = run(&app);
    let d = r.dbn.as_ref().expect("a DBN run");
    assert_eq!(d.pretraining(), Some(2));
    assert_eq!(d.rbms.len(), 2);
    assert_eq!(d.rbms[0].recon_error.points.len(), 20);
    assert_eq!(d.rbms[1].recon_error.points.len(), 12);
    assert_eq!(d.rbms[1].log_likelihood.points.len(), 12);
    assert_eq!(d.rbms[1].latest.as_ref().map(|p| p.step), Some(110));
    assert_eq!(
        d.samples.as_ref().map(|s| (s.0, s.1, s.2.len())),
        Some((4, 4, 8))
    );
    // No gradient probe yet: pretraining moves no step of the fine-tuning count.
    assert_eq!(r.steps_done(), 0);
    assert!(!r.view.samples);
    app.update(ch('i'));
    assert!(run(&app).view.samples);
    app.update(fixtures::finetune());
    let d = run(&app).dbn.as_ref().unwrap();
    assert_eq!(d.pretraining(), None);
    assert_eq!(d.phase.as_ref().map(|p| p.phase.as_str()), Some("finetune"));
    app.update(ch('i'));
    assert!(!run(&app).view.samples);
}

/// `d` asks for the lesion study only of a finished, recorded mlp or resnet run; a second `d`
/// hides it, and a study of another entry (an older job) is not shown.
#[test]
fn d_lesions_the_finished_recorded_run_and_hides_it_again() {
    use crate::tui::app::{Effect, LesionView};
    use crate::tui::event::{Event, Job};
    let mut app = fixtures::running((80, 24), ColorMode::Ansi16, 10, Profile::Vanishing);
    app.ledger = crate::tui::app::LedgerState::at("ledger".into());
    assert_eq!(app.update(ch('d')), None, "not while training");
    assert!(app.flash.as_deref().unwrap().contains("finished run"));
    app.update(finished(Status::Completed, 400, None));
    app.recorded(Err("disk full".into()));
    assert_eq!(app.update(ch('d')), None, "an unrecorded run has no entry");
    assert!(app.flash.as_deref().unwrap().contains("not recorded"));
    app.run.as_mut().unwrap().entry = Some(7);
    assert_eq!(app.update(ch('d')), Some(Effect::Lesion(7)));
    assert_eq!(app.update(ch('d')), None, "once at a time");
    assert!(app.flash.as_deref().unwrap().contains("still running"));
    app.update(Event::Job(Job::Lesioned {
        seq: 6,
        result: Err("old".into()),
    }));
    assert_eq!(
        run(&app).lesion,
        Some(LesionView::Running { seq: 7 }),
        "another entry's study"
    );
    app.update(Event::Job(Job::Lesioned {
        seq: 7,
        result: Ok(fixtures::lesioned(false)),
    }));
    assert!(matches!(run(&app).lesion, Some(LesionView::Done(Ok(_)))));
    assert_eq!(app.update(ch('d')), None);
    assert_eq!(run(&app).lesion, None, "d hides it");

    let mut rnn = fixtures::recurrent((80, 24), ColorMode::Ansi16, 3);
    rnn.ledger = crate::tui::app::LedgerState::at("ledger".into());
    rnn.update(finished(Status::Completed, 400, None));
    rnn.run.as_mut().unwrap().entry = Some(2);
    assert_eq!(rnn.update(ch('d')), None);
    assert!(rnn.flash.as_deref().unwrap().contains("mlp or a resnet"));
}
