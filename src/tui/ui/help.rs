//! The help overlay: every key of the screen it is opened on, the regime thresholds with
//! their symbols, and what the theory line is.

use super::{centered, panel};
use crate::tui::app::Screen;
use crate::tui::regime::{EXPLODING_ABOVE, Regime, VANISHING_BELOW};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

pub fn render(theme: &Theme, screen: Screen, area: Rect, buf: &mut Buffer) {
    let lines = if screen.of_ledger() {
        ledger_page(theme)
    } else {
        run_page(theme)
    };
    let popup = centered(area, 80.min(area.width), lines.len() as u16 + 2);
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(panel(theme, " Help · ? or esc closes ", true))
        .render(popup, buf);
}

/// The Ledger, Diff and Compare screens' keys, and the theory line.
fn ledger_page(theme: &Theme) -> Vec<Line<'static>> {
    let k = |key: &'static str, what: &'static str| {
        Line::from(vec![
            Span::styled(format!("  {key:<13}"), theme.bold()),
            Span::raw(what),
        ])
    };
    let head = |t: &'static str| Line::styled(t, theme.focus());
    vec![
        head("Ledger screen: every recorded run, newest first"),
        k("↑↓ PgUp PgDn", "select an entry (Home, End)"),
        k(
            "r",
            "replay it: rerun its config, compare bit for bit, record",
        ),
        k("s", "stop the replay (a stopped replay is not recorded)"),
        k("m", "mark or unmark it (the mark is its symbol in Compare)"),
        k("d", "diff the marked entry with the selected one"),
        k("c", "compare the marked entries' profiles on one chart"),
        k("w", "its sweep as a heatmap (m cycles the metric there)"),
        k(
            "v",
            "verify the whole ledger: hashes, chain, objects, claims",
        ),
        k("x", "export its trace as CSV into the current folder"),
        k("esc", "back to the screen you came from"),
        head("Diff and Compare screens"),
        k(
            "f",
            "profiles at the first probe (initialisation) or the last",
        ),
        k("n", "Compare: ‖δ‖/‖δ^out‖ or ‖δ‖ itself"),
        k("t", "Compare: the theory line on or off"),
        k("esc", "back to the ledger       q, ctrl-c   quit"),
        head("Theory line (MLP entries)"),
        Line::from("  Mean-field signal propagation (Poole et al. 2016, Schoenholz et al."),
        Line::from("  2017) predicts ‖δ^l‖/‖δ^out‖ at initialisation from the activation,"),
        Line::from("  init, σ_w, σ_b, widths and depth. Compare draws it as · dots; the Run"),
        Line::from("  screen's profile as ━ marks, scaled to the measured output layer."),
    ]
}

/// The Run and Experiments screens' keys, the regimes and the panels.
fn run_page(theme: &Theme) -> Vec<Line<'static>> {
    let k = |key: &'static str, what: &'static str| {
        vec![
            Span::styled(format!("  {key:<13}"), theme.bold()),
            Span::raw(what),
        ]
    };
    let head = |t: &'static str| Line::styled(t, theme.focus());
    let regime = |r: Regime, rule: String| {
        Line::from(vec![
            Span::raw("  "),
            Span::styled(format!("{} {:<10}", r.symbol(), r.name()), theme.regime(r)),
            Span::raw(rule),
        ])
    };
    vec![
        head("Run screen"),
        Line::from(k(
            "space",
            "pause / resume          s   stop (the run is still recorded)",
        )),
        Line::from(k(
            "g",
            "switch every panel between ‖δ‖ and ‖∂L/∂W‖   i  DBN samples",
        )),
        Line::from(k(
            "tab, S-tab",
            "move between panels     z, enter   zoom the panel",
        )),
        Line::from(k(
            "↑↓ PgUp PgDn",
            "scroll the layers of the focused panel (Home, End)",
        )),
        Line::from(k(
            "esc",
            "back to the experiments once the run has ended     l  ledger",
        )),
        Line::from(k(
            "d",
            "finished mlp/resnet: lesion study (delete blocks at test time)",
        )),
        Line::from(k(
            "q, ctrl-c",
            "quit (q asks while a run is going; ctrl-c stops it)",
        )),
        head("Experiments screen"),
        Line::from(k(
            "↑↓ enter",
            "select, run   e  edit in $EDITOR   r  rescan   l  ledger",
        )),
        head("Regimes: a layer's norm ÷ the output layer's norm"),
        regime(Regime::Vanishing, format!("below {VANISHING_BELOW:e}")),
        regime(
            Regime::Healthy,
            format!("from {VANISHING_BELOW:e} to {EXPLODING_ABOVE:e}"),
        ),
        regime(
            Regime::Exploding,
            format!("above {EXPLODING_ABOVE:e}   (┈ lines in the profile)"),
        ),
        head("Panels"),
        Line::from("  ‖δ‖ = ‖∂L/∂z‖, the error sent back to a layer; ‖∂L/∂W‖ its weight gradient."),
        Line::from("  Sparklines: log10 norm over recent probes, each row on its own scale."),
        Line::from("  Heatmap: ·░▒▓█ from low to high log10 norm, one scale for the map."),
        Line::from("  Saturation: share of units saturated (tanh, sigmoid) or dead (ReLU)."),
        Line::from("  Profile: ━ = mean-field ‖δ‖ predicted at init (MLPs), scaled to the output."),
        Line::styled(
            "  NO_COLOR=1 turns colour off; symbols keep every meaning.",
            theme.dim(),
        ),
    ]
}
