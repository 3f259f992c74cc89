//! Drawing: `impl Widget for &App`, so state is read-only while a frame is drawn. Each
//! screen has a file; `widgets` holds the small custom widgets (log sparklines, log bars,
//! heat cells) that ratatui does not have in a log scale.

pub mod compare;
mod diff;
mod experiments;
mod help;
mod ledger;
mod lesion;
mod run;
mod run_models;
pub mod sweep;
pub mod widgets;

#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod tests;

use super::app::{App, MIN_SIZE, Overlay, Screen};
use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget, Wrap};

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
            too_small(area, buf);
            return;
        }
        match self.screen {
            Screen::Experiments => experiments::render(self, area, buf),
            Screen::Run => match &self.run {
                Some(run) => run::render(self, run, area, buf),
                None => experiments::render(self, area, buf),
            },
            Screen::Ledger => ledger::render(self, area, buf),
            Screen::Diff => diff::render(self, area, buf),
            Screen::Compare => compare::render(self, area, buf),
            Screen::Sweep => sweep::render(self, area, buf),
        }
        match self.overlay {
            Some(Overlay::Help) => help::render(&self.theme, self.screen, area, buf),
            Some(Overlay::ConfirmQuit) => confirm_quit(
                &self.theme,
                if self.run_active() { "run" } else { "replay" },
                area,
                buf,
            ),
            None => {}
        }
    }
}

fn too_small(area: Rect, buf: &mut Buffer) {
    let text = Text::from(vec![
        Line::from(format!(
            "Terminal too small: {}×{}",
            area.width, area.height
        )),
        Line::from(format!(
            "gradlab needs at least {}×{}.",
            MIN_SIZE.0, MIN_SIZE.1
        )),
        Line::from("Enlarge the window, or press q to quit."),
    ]);
    let height = text.height() as u16;
    let [middle] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    Paragraph::new(text)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .render(middle, buf);
}

/// "Quit?" while a run (recorded either way) or a replay (recorded only if it ends) goes on.
fn confirm_quit(theme: &Theme, what: &str, area: Rect, buf: &mut Buffer) {
    let lines = vec![
        Line::from(format!("A {what} is still going.")),
        Line::from(if what == "run" {
            "Stop it and quit? It is recorded either way."
        } else {
            "Stop it and quit? A stopped replay is not recorded."
        }),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", theme.bold()),
            Span::raw(" stop and quit    "),
            Span::styled("n", theme.bold()),
            Span::raw(" keep watching"),
        ]),
    ];
    let popup = centered(area, 52, lines.len() as u16 + 2);
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .alignment(Alignment::Center)
        .block(
            Block::bordered()
                .border_type(BorderType::Double)
                .border_style(theme.warn())
                .title(" Quit? "),
        )
        .render(popup, buf);
}

/// A `width`×`height` rectangle centred in `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

/// A bordered panel whose border and title show whether it has the focus.
pub fn panel<'a>(theme: &Theme, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    let block = Block::bordered().title(title);
    if focused {
        block
            .border_type(BorderType::Thick)
            .border_style(theme.focus())
    } else {
        block.border_style(theme.border())
    }
}

/// The title bar: the program, the screen, and what is on it; `right` is right-aligned.
pub fn title_bar(
    theme: &Theme,
    left: Vec<Span<'_>>,
    right: Vec<Span<'_>>,
    area: Rect,
    buf: &mut Buffer,
) {
    buf.set_style(area, theme.bar());
    let mut spans = vec![Span::styled(
        " gradlab ",
        theme.bar().add_modifier(ratatui::style::Modifier::BOLD),
    )];
    spans.extend(left);
    let left = Line::from(spans).style(theme.bar());
    let right = Line::from(right).style(theme.bar());
    let (lw, rw) = (left.width() as u16, right.width() as u16);
    left.render(area, buf);
    // The right-hand note is a nicety: it goes where it fits, never over the left.
    if lw + rw <= area.width {
        right.render(
            Rect {
                x: area.right() - rw,
                width: rw,
                ..area
            },
            buf,
        );
    }
}

/// The footer: key hints as `key description` pairs, or a flash note instead. Hints that
/// do not fit are left out, in order, except the last two (help and quit), which always
/// show: the help overlay lists every key.
pub fn footer(
    theme: &Theme,
    keys: &[(&str, &str)],
    flash: Option<&str>,
    area: Rect,
    buf: &mut Buffer,
) {
    let line = match flash {
        Some(note) => Line::from(Span::styled(format!(" {note}"), theme.warn())),
        None => {
            let width = |(k, what): &(&str, &str)| k.chars().count() + what.chars().count() + 3;
            let tail = keys.len().saturating_sub(2);
            let reserved = keys[tail..]
                .iter()
                .map(width)
                .sum::<usize>()
                .saturating_sub(2);
            let mut used = 1;
            let mut spans = vec![Span::raw(" ")];
            for (i, pair) in keys.iter().enumerate() {
                if i < tail && used + width(pair) + reserved > area.width as usize {
                    continue;
                }
                used += width(pair);
                spans.push(Span::styled(pair.0, theme.bold()));
                spans.push(Span::styled(format!(" {}  ", pair.1), theme.dim()));
            }
            Line::from(spans)
        }
    };
    line.render(area, buf);
}

/// Rows `lines` take when wrapped at `width` (an upper bound: wrapping is by character).
pub fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let w = width.max(1) as usize;
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(w) as u16)
        .sum()
}

/// A norm in short scientific notation ("3.1e-9"), the way the panels print values.
pub fn sci(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.is_finite() {
        format!("{v:.1e}")
    } else {
        format!("{v}")
    }
}

/// A loss-like number: fixed with `decimals` places in the usual range, scientific outside
/// it, so a diverging loss of 3.6e13 does not push everything off the line.
pub fn num(v: f64, decimals: usize) -> String {
    if v == 0.0 {
        "0".into()
    } else if !v.is_finite() {
        format!("{v}")
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        format!("{v:.2e}")
    } else {
        format!("{v:.decimals$}")
    }
}

/// "1 step", "400 steps".
pub fn steps(n: usize) -> String {
    if n == 1 {
        "1 step".into()
    } else {
        format!("{n} steps")
    }
}

/// Seconds as "42s", "3m07s" or "2h05m".
pub fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "—".into();
    }
    let s = s.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Writes `text` clipped to `width` cells at (x, y).
pub fn put(buf: &mut Buffer, x: u16, y: u16, text: &str, width: u16, style: Style) {
    if width > 0 {
        buf.set_stringn(x, y, text, width as usize, style);
    }
}
