//! The help overlay: every key, and the regime thresholds with their symbols.

use super::{centered, panel};
use crate::tui::regime::{EXPLODING_ABOVE, Regime, VANISHING_BELOW};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

pub fn render(theme: &Theme, area: Rect, buf: &mut Buffer) {
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
    let lines = vec![
        head("Run screen"),
        Line::from(k(
            "space",
            "pause / resume          s   stop (the run is still recorded)",
        )),
        Line::from(k("g", "switch every panel between ‖δ‖ and ‖∂L/∂W‖")),
        Line::from(k(
            "tab, S-tab",
            "move between panels     z, enter   zoom the panel",
        )),
        Line::from(k(
            "↑↓ PgUp PgDn",
            "scroll the layers of the focused panel (Home, End)",
        )),
        Line::from(k("esc", "back to the experiments once the run has ended")),
        Line::from(k(
            "q, ctrl-c",
            "quit (q asks while a run is going; ctrl-c stops it)",
        )),
        head("Experiments screen"),
        Line::from(k(
            "↑↓ enter",
            "select, run        e  edit in $EDITOR    r  rescan",
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
        Line::styled(
            "  NO_COLOR=1 turns colour off; symbols keep every meaning.",
            theme.dim(),
        ),
    ];
    let popup = centered(area, 80.min(area.width), lines.len() as u16 + 2);
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(panel(theme, " Help · ? or esc closes ", true))
        .render(popup, buf);
}
