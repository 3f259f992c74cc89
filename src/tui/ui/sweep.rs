//! The Sweep screen's heatmap: one metric over a two-axis sweep (for example final loss or
//! log10 ‖δ¹‖/‖δᴸ‖ over σ_w × depth — the trainability phase diagram), with the mean-field
//! depth scale ξ marked over it.
//!
//! Depth (y) grows upwards, as phase diagrams are drawn. Each cell is a run of shade glyphs
//! in the heat colour, so the picture survives NO_COLOR; cells with no finite value (every
//! seed diverged, or not run) show `×`. The ξ marker `◆` sits in each column at the row
//! nearest ξ(σ_w): nets deeper than it should not pass δ through.

use super::{footer, num, panel, put, title_bar};
use crate::sweep::{Metric, SweepGrid};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Widget, Wrap};

/// The whole Sweep screen.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let [top, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    footer(
        theme,
        &[
            ("m", "metric"),
            ("esc", "ledger"),
            ("?", "help"),
            ("q", "quit"),
        ],
        app.flash.as_deref(),
        foot,
        buf,
    );
    let Some(view) = &app.sweep else {
        title_bar(theme, vec![Span::raw("│ Sweep")], vec![], top, buf);
        return;
    };
    title_bar(
        theme,
        vec![Span::raw(format!("│ Sweep {}", view.id))],
        vec![],
        top,
        buf,
    );
    match &view.grid {
        Ok(grid) => {
            let block = panel(theme, format!(" {} ", view.metric.label()), true);
            let inner = block.inner(body);
            block.render(body, buf);
            Heatmap {
                grid,
                metric: view.metric,
                theme,
            }
            .render(inner, buf);
        }
        Err(why) => Paragraph::new(format!("This sweep cannot be drawn as a grid: {why}"))
            .wrap(Wrap { trim: true })
            .block(panel(theme, " Sweep ", true))
            .render(body, buf),
    }
}

/// The heatmap of `metric` over `grid`.
pub struct Heatmap<'a> {
    pub grid: &'a SweepGrid,
    pub metric: Metric,
    pub theme: &'a Theme,
}

/// Formats an axis value compactly (`0.75`, `20`).
fn tick(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e6 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// |ξ| at `x`, interpolated along the curve's sampled points (None off the curve or at the
/// edge of chaos, where ξ is infinite and the curve has a gap).
fn xi_at(curve: &[(f64, f64)], x: f64) -> Option<f64> {
    curve
        .windows(2)
        .find(|w| w[0].0 <= x && x <= w[1].0)
        .map(|w| {
            let f = if w[1].0 > w[0].0 {
                (x - w[0].0) / (w[1].0 - w[0].0)
            } else {
                0.0
            };
            w[0].1 + f * (w[1].1 - w[0].1)
        })
        .filter(|v| v.is_finite())
}

impl Widget for Heatmap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let g = self.grid;
        let values = g.metric(self.metric);
        let (nx, ny) = (g.xs.len(), g.ys.len());
        if nx == 0 || ny == 0 || area.height < 4 || area.width < 12 {
            put(
                buf,
                area.x,
                area.y,
                "no grid to draw",
                area.width,
                self.theme.dim(),
            );
            return;
        }
        let label_w = g.ys.iter().map(|y| tick(*y).len()).max().unwrap_or(1) as u16 + 1;
        // Two rows at the bottom for the x ticks and the axis name, one at the top for the range.
        let rows_avail = area.height.saturating_sub(3);
        let cell_h = (rows_avail / ny as u16).max(1);
        let cell_w = ((area.width.saturating_sub(label_w)) / nx as u16).clamp(1, 8);
        let finite: Vec<f64> = values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let range = if finite.is_empty() {
            format!("{} · no finite values", self.metric.label())
        } else {
            format!(
                "{} · {} (low) … {} (high)",
                self.metric.label(),
                num(lo, 3),
                num(hi, 3)
            )
        };
        put(buf, area.x, area.y, &range, area.width, self.theme.bold());
        let top = area.y + 1;
        let shown_rows = ((rows_avail / cell_h) as usize).min(ny);
        for r in 0..shown_rows {
            // Row 0 of the grid (smallest y) is drawn at the bottom.
            let y_screen = top + (shown_rows - 1 - r) as u16 * cell_h;
            let label = tick(g.ys[r]);
            put(
                buf,
                area.x,
                y_screen,
                &format!("{label:>w$}", w = (label_w - 1) as usize),
                label_w,
                self.theme.dim(),
            );
            for c in 0..nx {
                let x_screen = area.x + label_w + c as u16 * cell_w;
                if x_screen + cell_w > area.x + area.width {
                    break;
                }
                let v = values
                    .get(r)
                    .and_then(|row| row.get(c))
                    .copied()
                    .unwrap_or(f64::NAN);
                let (glyph, style) = if v.is_finite() {
                    self.theme.heat((v - lo) / span)
                } else {
                    ('×', self.theme.error())
                };
                let text: String = std::iter::repeat_n(glyph, cell_w as usize).collect();
                for dy in 0..cell_h {
                    put(buf, x_screen, y_screen + dy, &text, cell_w, style);
                }
            }
        }
        if let Some(curve) = &g.xi_curve {
            for (c, &x) in g.xs.iter().enumerate() {
                let Some(xi) = xi_at(curve, x) else { continue };
                // The row whose depth is nearest ξ, if ξ falls inside the swept depths.
                if xi < g.ys[0] || xi > g.ys[shown_rows - 1] {
                    continue;
                }
                let r = (0..shown_rows)
                    .min_by(|&a, &b| (g.ys[a] - xi).abs().total_cmp(&(g.ys[b] - xi).abs()))
                    .expect("at least one row");
                let y_screen = top + (shown_rows - 1 - r) as u16 * cell_h;
                let x_screen = area.x + label_w + c as u16 * cell_w + cell_w / 2;
                if x_screen < area.x + area.width {
                    put(buf, x_screen, y_screen, "◆", 1, self.theme.bold());
                }
            }
        }
        // x ticks under the grid: every column that has room for its label.
        let axis_y = top + shown_rows as u16 * cell_h;
        let mut next_free = area.x + label_w;
        for (c, &x) in g.xs.iter().enumerate() {
            let x_screen = area.x + label_w + c as u16 * cell_w;
            let t = tick(x);
            if x_screen >= next_free && x_screen + (t.len() as u16) <= area.x + area.width {
                put(buf, x_screen, axis_y, &t, t.len() as u16, self.theme.dim());
                next_free = x_screen + t.len() as u16 + 1;
            }
        }
        let names = format!(
            "x: {}   y: {}{}",
            g.x_field,
            g.y_field,
            if g.xi_curve.is_some() {
                "   ◆ mean-field depth scale ξ"
            } else {
                ""
            }
        );
        put(
            buf,
            area.x,
            axis_y + 1,
            &names,
            area.width,
            self.theme.dim(),
        );
    }
}

#[cfg(test)]
mod tests_support {
    use crate::sweep::{Metric, SweepGrid};
    use std::collections::BTreeMap;

    /// A 3 × 2 grid with one diverged cell and a ξ curve crossing it.
    pub fn grid() -> SweepGrid {
        let loss = vec![vec![0.1, 0.2, f64::NAN], vec![0.3, 0.4, 0.7]];
        let mut values = BTreeMap::new();
        for m in Metric::ALL {
            values.insert(m, loss.clone());
        }
        SweepGrid {
            id: "abc".into(),
            x_field: "model.sigma_w".into(),
            y_field: "model.depth".into(),
            xs: vec![0.5, 1.0, 1.5],
            ys: vec![5.0, 10.0],
            cells: Vec::new(),
            values,
            xi_curve: Some(vec![(0.5, 4.0), (1.0, 9.0), (1.5, 30.0)]),
            edge_curve: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::grid;
    use super::*;
    use crate::tui::theme::{ColorMode, Theme};

    fn text(buf: &Buffer) -> Vec<String> {
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn draws_cells_ticks_divergence_and_xi() {
        let theme = Theme::new(ColorMode::None);
        let g = grid();
        let mut buf = Buffer::empty(Rect::new(0, 0, 40, 8));
        Heatmap {
            grid: &g,
            metric: Metric::Loss,
            theme: &theme,
        }
        .render(buf.area, &mut buf);
        let lines = text(&buf);
        assert!(lines[0].contains("final training loss"), "{lines:#?}");
        // Depth 10 is drawn above depth 5.
        let row10 = lines
            .iter()
            .position(|l| l.trim_start().starts_with("10"))
            .unwrap();
        let row5 = lines
            .iter()
            .position(|l| l.trim_start().starts_with("5 "))
            .unwrap();
        assert!(row10 < row5, "{lines:#?}");
        assert!(
            lines[row5].contains('×'),
            "a diverged cell is marked: {lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains('◆')),
            "ξ is marked: {lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("0.5") && l.contains("1.5")),
            "x ticks: {lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("x: model.sigma_w")),
            "{lines:#?}"
        );
    }

    #[test]
    fn tiny_areas_never_panic() {
        let theme = Theme::new(ColorMode::None);
        let g = grid();
        for (w, h) in [(0, 0), (5, 2), (12, 4), (13, 5), (200, 60)] {
            let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
            Heatmap {
                grid: &g,
                metric: Metric::DeltaInit,
                theme: &theme,
            }
            .render(buf.area, &mut buf);
        }
    }
}

#[cfg(test)]
mod screen_tests {
    use super::tests_support::grid;
    use crate::tui::app::sweep::SweepView;
    use crate::tui::app::{App, Screen};
    use crate::tui::theme::{ColorMode, Theme};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::{KeyCode, KeyEvent};

    fn screen(app: &App) -> String {
        let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
        t.draw(|f| f.render_widget(app, f.area())).unwrap();
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    /// The Sweep screen opens on a loaded grid, `m` walks the metrics, `esc` goes back, and
    /// a grid that could not be built says why.
    #[test]
    fn sweep_screen_shows_the_grid_and_cycles_metrics() {
        for size in [(80, 24), (160, 48)] {
            let mut app = App::new(Theme::new(ColorMode::None), "experiments".into(), size);
            app.sweep_loaded(SweepView::new("abc".into(), Ok(grid())));
            assert_eq!(app.screen, Screen::Sweep);
            let first = screen(&app);
            assert!(
                first.contains("Sweep abc") && first.contains("final training loss"),
                "{first}"
            );
            insta::assert_snapshot!(format!("sweep_{}x{}", size.0, size.1), first);
            app.update(crate::tui::event::Event::Key(KeyEvent::from(
                KeyCode::Char('m'),
            )));
            let second = screen(&app);
            assert_ne!(first, second, "m changes the metric");
            app.update(crate::tui::event::Event::Key(KeyEvent::from(KeyCode::Esc)));
            assert_eq!(app.screen, Screen::Ledger);
        }
        let mut app = App::new(Theme::new(ColorMode::None), "experiments".into(), (80, 24));
        app.sweep_loaded(SweepView::new("one".into(), Err("a one-axis sweep".into())));
        assert!(screen(&app).contains("a one-axis sweep"));
    }
}
