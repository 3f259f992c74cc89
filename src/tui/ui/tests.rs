//! Whole-screen snapshots on `TestBackend` fed synthetic events (gitui's approach), and
//! buffer checks of what the snapshots cannot see: the colour of each regime.

use crate::train::Status;
use crate::tui::app::{App, Panel};
use crate::tui::fixtures::{self, Profile, ch, finished, key};
use crate::tui::regime::Regime;
use crate::tui::theme::{ColorMode, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;
use ratatui::style::Color;

const SMALL: (u16, u16) = (80, 24);
const LARGE: (u16, u16) = (160, 48);

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1))
        .expect("the test backend never fails");
    t.draw(|f| f.render_widget(app, f.area()))
        .expect("the test backend never fails");
    t
}

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

/// The cell holding the regime symbol of `label`'s row in the layers panel.
fn regime_cell(buf: &Buffer, label: &str) -> (String, Color) {
    let y = (0..buf.area.height)
        .find(|&y| {
            (1..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .starts_with(&format!("{label} "))
        })
        .unwrap_or_else(|| panic!("no row for {label}"));
    let x = (0..40)
        .rev()
        .find(|&x| ["▼", "●", "▲", "?"].contains(&buf[(x, y)].symbol()))
        .unwrap_or_else(|| panic!("no regime symbol on the {label} row: {}", row(buf, y)));
    (buf[(x, y)].symbol().to_string(), buf[(x, y)].fg)
}

fn ended(size: (u16, u16)) -> App {
    let mut app = fixtures::running(size, ColorMode::Ansi16, 400, Profile::Vanishing);
    app.update(finished(Status::Completed, 400, None));
    app.recorded(Ok("not recorded (ledger not built yet)".into()));
    app
}

#[test]
fn experiments_screen() {
    for (w, h) in [SMALL, LARGE] {
        let app = fixtures::browsing((w, h), ColorMode::Ansi16);
        insta::assert_snapshot!(format!("experiments_{w}x{h}"), draw(&app).backend());
    }
}

#[test]
fn experiments_screen_shows_an_invalid_file_with_its_error() {
    let mut app = fixtures::browsing(SMALL, ColorMode::Ansi16);
    app.update(ch('j'));
    app.update(key(KeyCode::Enter));
    insta::assert_snapshot!("experiments_invalid_80x24", draw(&app).backend());
}

#[test]
fn run_screen_shows_the_lesion_study_of_the_finished_run() {
    for (w, h) in [SMALL, LARGE] {
        let app = fixtures::lesion_app((w, h), ColorMode::Ansi16, false);
        let t = draw(&app);
        let text: String = (0..h).map(|y| row(t.backend().buffer(), y)).collect();
        assert!(text.contains("Lesion study · entry 8"), "{text}");
        assert!(text.contains("peak k=4"), "{text}");
        insta::assert_snapshot!(format!("run_lesion_{w}x{h}"), t.backend());
    }
    let plain = fixtures::lesion_app(LARGE, ColorMode::Ansi16, true);
    let t = draw(&plain);
    let text: String = (0..LARGE.1).map(|y| row(t.backend().buffer(), y)).collect();
    assert!(text.contains("one layer deleted 0.937"), "{text}");
    assert!(
        !text.contains("path length"),
        "a plain net has one path: {text}"
    );
    insta::assert_snapshot!("run_lesion_plain_160x48", t.backend());
}

#[test]
fn run_screen_shows_both_levels_of_the_history_compressor() {
    for (w, h) in [SMALL, LARGE] {
        let app = fixtures::compressor((w, h), ColorMode::Ansi16, 30);
        let t = draw(&app);
        let text: String = (0..h).map(|y| row(t.backend().buffer(), y)).collect();
        assert!(text.contains("high: 2.8/50 passed up"), "{text}");
        if h >= 48 {
            assert!(text.contains("low: predicts"), "{text}");
        }
        insta::assert_snapshot!(format!("run_compressor_{w}x{h}"), t.backend());
    }
}

#[test]
fn run_screen_draws_a_grid_nets_error_over_the_image() {
    for (w, h) in [SMALL, LARGE] {
        let app = fixtures::grid_net((w, h), ColorMode::Ansi16, 12);
        let t = draw(&app);
        let text: String = (0..h).map(|y| row(t.backend().buffer(), y)).collect();
        // Each scan's far corner is 0.6^14 = 7.8e-4 of its read-out corner.
        assert!(text.contains("‖∂L/∂h‖ · far/near 7.8e-4"), "{text}");
        insta::assert_snapshot!(format!("run_grid_{w}x{h}"), t.backend());
    }
}

/// Before the first probe every model's Run screen draws (a grid net's map, the compressor's
/// levels and a recurrent profile are still empty: drawing them once indexed an empty map).
#[test]
fn run_screens_draw_before_the_first_probe() {
    for app in [
        fixtures::grid_net(SMALL, ColorMode::Ansi16, 0),
        fixtures::compressor(SMALL, ColorMode::Ansi16, 0),
        fixtures::recurrent(SMALL, ColorMode::Ansi16, 0),
    ] {
        let t = draw(&app);
        let text: String = (0..SMALL.1).map(|y| row(t.backend().buffer(), y)).collect();
        assert!(text.contains("waiting for the first probe"), "{text}");
    }
}

#[test]
fn run_screen_while_training() {
    for (w, h) in [SMALL, LARGE] {
        let app = fixtures::running((w, h), ColorMode::Ansi16, 120, Profile::Vanishing);
        insta::assert_snapshot!(format!("run_{w}x{h}"), draw(&app).backend());
    }
}

#[test]
fn run_screen_after_the_run_ended_and_was_recorded() {
    for (w, h) in [SMALL, LARGE] {
        insta::assert_snapshot!(format!("run_ended_{w}x{h}"), draw(&ended((w, h))).backend());
    }
}

#[test]
fn run_screen_shows_a_failed_runs_error() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 0, Profile::Vanishing);
    app.update(finished(Status::Failed, 0, Some("data.path: cannot open 'mnist/train-images-idx3-ubyte': No such file or directory (os error 2)")));
    app.recorded(Ok("not recorded (ledger not built yet)".into()));
    insta::assert_snapshot!("run_failed_80x24", draw(&app).backend());
}

#[test]
fn run_screen_of_an_exploding_net_showing_weight_gradients() {
    let mut app = fixtures::running(LARGE, ColorMode::Ansi16, 60, Profile::Exploding);
    app.update(ch('g'));
    insta::assert_snapshot!("run_exploding_gradw_160x48", draw(&app).backend());
}

#[test]
fn run_screen_paused_scrolled_and_zoomed() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 120, Profile::Vanishing);
    app.update(ch(' '));
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::PageDown));
    app.update(ch('z'));
    assert_eq!(app.run.as_ref().unwrap().view.focus, Panel::Heatmap);
    insta::assert_snapshot!("run_paused_heatmap_zoomed_80x24", draw(&app).backend());
}

#[test]
fn help_and_quit_confirmation_overlays() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 120, Profile::Vanishing);
    app.update(ch('?'));
    insta::assert_snapshot!("help_80x24", draw(&app).backend());
    app.update(key(KeyCode::Esc));
    app.update(ch('q'));
    insta::assert_snapshot!("confirm_quit_80x24", draw(&app).backend());
}

#[test]
fn a_terminal_below_80x24_gets_a_note_and_no_panic() {
    let app = fixtures::running((60, 20), ColorMode::Ansi16, 120, Profile::Vanishing);
    insta::assert_snapshot!("too_small_60x20", draw(&app).backend());
    for (w, h) in [(1, 1), (79, 24), (80, 23), (0, 0)] {
        let mut app = fixtures::running((w, h), ColorMode::None, 10, Profile::Exploding);
        draw(&app);
        app.update(ch('?'));
        draw(&app);
    }
}

#[test]
fn every_size_from_the_minimum_up_draws_without_panicking() {
    let mut app = fixtures::running(SMALL, ColorMode::TrueColor, 30, Profile::Vanishing);
    for w in (80..=200).step_by(7) {
        for h in (24..=60).step_by(5) {
            app.update(crate::tui::event::Event::Resize(w, h));
            for zoom in [false, true] {
                app.run.as_mut().unwrap().view.zoom = zoom;
                draw(&app);
            }
        }
    }
}

#[test]
fn regimes_are_coloured_and_marked_with_a_symbol() {
    let theme = Theme::new(ColorMode::Ansi16);
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 120, Profile::Vanishing);
    assert_eq!(
        regime_cell(draw(&app).backend().buffer(), "h1"),
        ("▼".into(), Color::Blue)
    );
    app.update(key(KeyCode::End)); // the output layer is below the first page at 80×24
    assert_eq!(
        regime_cell(draw(&app).backend().buffer(), "out"),
        ("●".into(), Color::Green)
    );
    assert_eq!(theme.regime(Regime::Vanishing).fg, Some(Color::Blue));

    let app = fixtures::running(SMALL, ColorMode::Ansi16, 120, Profile::Exploding);
    let t = draw(&app);
    assert_eq!(
        regime_cell(t.backend().buffer(), "h1"),
        ("▲".into(), Color::Red)
    );
}

#[test]
fn no_color_keeps_every_symbol_and_drops_every_colour() {
    let colour = fixtures::running(SMALL, ColorMode::Ansi16, 120, Profile::Vanishing);
    let plain = fixtures::running(SMALL, ColorMode::None, 120, Profile::Vanishing);
    let (a, b) = (draw(&colour), draw(&plain));
    let (a, b) = (a.backend().buffer(), b.backend().buffer());
    for y in 0..a.area.height {
        assert_eq!(
            row(a, y),
            row(b, y),
            "the text of row {y} must not depend on colour"
        );
        for x in 0..a.area.width {
            assert_eq!(
                b[(x, y)].fg,
                Color::Reset,
                "({x}, {y}) is coloured under NO_COLOR"
            );
            assert_eq!(
                b[(x, y)].bg,
                Color::Reset,
                "({x}, {y}) is coloured under NO_COLOR"
            );
        }
    }
    assert_eq!(regime_cell(b, "h1").0, "▼");
}

#[test]
fn each_colour_depth_draws_the_same_text() {
    let base = fixtures::running(LARGE, ColorMode::Ansi16, 120, Profile::Vanishing);
    let base = draw(&base);
    for mode in [ColorMode::Ansi256, ColorMode::TrueColor] {
        let app = fixtures::running(LARGE, mode, 120, Profile::Vanishing);
        let t = draw(&app);
        let fg = t
            .backend()
            .buffer()
            .content()
            .iter()
            .filter(|c| c.fg != Color::Reset)
            .map(|c| c.fg);
        let matches_mode = |c: Color| match mode {
            ColorMode::Ansi256 => matches!(c, Color::Indexed(_)),
            _ => matches!(c, Color::Rgb(..)),
        };
        assert!(
            fg.clone().count() > 100 && fg.clone().all(matches_mode),
            "{mode:?} uses only its own palette"
        );
        for y in 0..LARGE.1 {
            assert_eq!(
                row(t.backend().buffer(), y),
                row(base.backend().buffer(), y)
            );
        }
    }
}

#[test]
fn sparklines_move_as_probes_arrive() {
    let mut app = fixtures::running(SMALL, ColorMode::Ansi16, 40, Profile::Vanishing);
    let before = row(draw(&app).backend().buffer(), 5);
    let exp = fixtures::experiment("tanh-naive-20", 20, 400);
    for e in fixtures::stream(&exp, 47, Profile::Vanishing)
        .into_iter()
        .skip(41)
    {
        app.update(e);
    }
    let after = row(draw(&app).backend().buffer(), 5);
    assert_ne!(before, after);
}

#[test]
fn run_screen_of_a_recurrent_net_shows_the_gradient_through_time() {
    for (w, h) in [SMALL, LARGE] {
        let app = fixtures::recurrent((w, h), ColorMode::Ansi16, 120);
        let t = draw(&app);
        let text = format!("{:?}", t.backend());
        assert!(text.contains("‖∂L/∂h_t‖ vs t"), "{text}");
        assert!(text.contains("h1/hT"), "{text}");
        insta::assert_snapshot!(format!("run_recurrent_{w}x{h}"), t.backend());
    }
}

#[test]
fn run_screen_of_a_search_says_there_are_no_gradients() {
    for (w, h) in [SMALL, LARGE] {
        let app = fixtures::searching((w, h), ColorMode::Ansi16, 150);
        let t = draw(&app);
        let text = format!("{:?}", t.backend());
        assert!(
            text.contains("gradient-free search: no gradients to probe"),
            "{text}"
        );
        assert!(text.contains("Fitness per generation"), "{text}");
        insta::assert_snapshot!(format!("run_search_{w}x{h}"), t.backend());
    }
}

#[test]
fn run_screen_of_a_dbn_shows_its_phase_curves_and_samples() {
    for (w, h) in [SMALL, LARGE] {
        let mut app = fixtures::pretraining((w, h), ColorMode::Ansi16);
        let curves = format!("{:?}", draw(&app).backend());
        assert!(curves.contains("pretrain RBM 2/2"), "{curves}");
        assert!(curves.contains("Pretraining RBM 2"), "{curves}");
        insta::assert_snapshot!(format!("run_dbn_pretraining_{w}x{h}"), draw(&app).backend());
        app.update(ch('i'));
        let t = draw(&app);
        assert!(format!("{:?}", t.backend()).contains("Samples · 8 of 4×4"));
        insta::assert_snapshot!(format!("run_dbn_samples_{w}x{h}"), t.backend());
    }
}

#[test]
fn samples_are_half_blocks_in_colour_and_shades_without() {
    let find = |app: &App, glyphs: &[&str]| {
        let t = draw(app);
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
            .filter(|&(x, y)| glyphs.contains(&buf[(x, y)].symbol()))
            .map(|(x, y)| (buf[(x, y)].fg, buf[(x, y)].bg))
            .collect::<Vec<_>>()
    };
    let mut app = fixtures::pretraining(LARGE, ColorMode::Ansi16);
    app.update(ch('i'));
    let cells = find(&app, &["▀"]);
    // 8 images of 4 pixels × 2 text rows.
    assert_eq!(cells.len(), 8 * 4 * 2);
    assert!(
        cells.iter().any(|c| c.0 != c.1),
        "top and bottom pixels differ"
    );
    let mut mono = fixtures::pretraining(LARGE, ColorMode::None);
    mono.update(ch('i'));
    assert!(find(&mono, &["▀"]).is_empty());
    assert!(!find(&mono, &["░", "▒", "▓"]).is_empty());
}

#[test]
fn residual_runs_mark_the_skip_path_on_the_profile() {
    let mut app = fixtures::running(LARGE, ColorMode::Ansi16, 10, Profile::Vanishing);
    let has_marker = |app: &App| format!("{:?}", draw(app).backend()).contains('◆');
    assert!(!has_marker(&app));
    let mut p = fixtures::probe(10, 21, Profile::Vanishing);
    for l in p.layers.iter_mut().step_by(2) {
        l.skip_delta = Some(l.delta * 2.0);
    }
    app.update(crate::tui::event::Event::Train(
        crate::train::Event::Probe {
            probe: p,
            wall_s: 1.0,
        },
    ));
    assert!(has_marker(&app));
}
