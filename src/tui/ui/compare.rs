//! The Compare screen: the marked entries' gradient-vs-depth profiles overlaid on one log
//! chart with a legend — the figure papers draw — optionally under the mean-field
//! prediction for each MLP entry.
//!
//! Each entry is a braille line in its colour with its own symbol at every layer, so the
//! entries stay apart without colour (NO_COLOR); the theory is a dotted line of `·`.

use super::widgets::{Decades, decade};
use super::{footer, num, panel, put, sci, title_bar};
use crate::ledger::Entry;
use crate::tui::app::theory::Line as Prediction;
use crate::tui::app::{App, ProbeAt};
use crate::tui::regime::{EXPLODING_ABOVE, VANISHING_BELOW};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

/// The symbol of the i-th compared (marked) entry; at most this many are drawn.
pub const GLYPHS: [&str; 8] = ["●", "■", "▲", "◆", "✚", "○", "□", "△"];
/// The dots of the theory line.
const THEORY_DOT: char = '·';

/// What the chart knows of one entry.
struct Series<'a> {
    /// Position among the marked entries: its symbol and colour.
    index: usize,
    entry: &'a Entry,
    /// log10 of the plotted value per layer (NaN where absent).
    logs: Vec<f64>,
    /// log10 of the predicted value per layer, when drawn.
    theory: Option<Vec<f64>>,
    /// What the legend says about the theory.
    theory_note: Option<String>,
}

/// The entries' series at probe `at`, normalised or not, with their theory lines.
fn series<'a>(app: &'a App) -> Vec<Series<'a>> {
    let lg = &app.ledger;
    let view = &lg.compare;
    view.seqs
        .iter()
        .enumerate()
        .take(GLYPHS.len())
        .filter_map(|(index, &seq)| {
            let entry = lg.by_seq(seq)?;
            let values: Vec<Option<f64>> = entry.layers.iter().map(|l| lg.at.delta(l)).collect();
            let out = values
                .last()
                .copied()
                .flatten()
                .filter(|v| *v > 0.0 && v.is_finite());
            let scale = if view.normalised { out } else { Some(1.0) };
            let logs = values
                .iter()
                .map(|v| match (v, scale) {
                    (Some(v), Some(s)) => (v / s).log10(),
                    _ => f64::NAN,
                })
                .collect();
            let (theory, theory_note) = if !view.theory {
                (None, None)
            } else {
                match app.theory.get(&entry.config_hash.0) {
                    Some(Prediction::Ready(ratios)) if ratios.len() == values.len() => {
                        // The prediction is a ratio to the output layer: anchored at the
                        // measured output norm when the chart shows raw norms.
                        let anchor = if view.normalised { Some(1.0) } else { out };
                        match anchor {
                            Some(a) => {
                                let logs: Vec<f64> =
                                    ratios.iter().map(|r| (r * a).log10()).collect();
                                let note = format!("theory in/out {}", sci(ratios[0]));
                                (Some(logs), Some(note))
                            }
                            None => (
                                None,
                                Some("theory: no output-layer ‖δ‖ to anchor it".into()),
                            ),
                        }
                    }
                    Some(Prediction::Ready(_)) => (
                        None,
                        Some("theory: layer count differs from the entry".into()),
                    ),
                    Some(Prediction::ThroughTime(_)) => (
                        None,
                        Some("theory: through time (Run screen, plot --kind time)".into()),
                    ),
                    Some(Prediction::NotCovered) => {
                        (None, Some("theory: none (no gradient to predict)".into()))
                    }
                    Some(Prediction::Failed(e)) => (None, Some(format!("theory failed: {e}"))),
                    Some(Prediction::Pending) | None => (None, Some("theory: computing…".into())),
                }
            };
            Some(Series {
                index,
                entry,
                logs,
                theory,
                theory_note,
            })
        })
        .collect()
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let lg = &app.ledger;
    let view = &lg.compare;
    let all = series(app);
    let hidden = view.seqs.len().saturating_sub(GLYPHS.len());
    let legend_h = all.len() as u16 + u16::from(hidden > 0) + 2;
    let [top, chart_area, legend_area, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(legend_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let what = if view.normalised {
        "‖δ‖/‖δ^out‖"
    } else {
        "‖δ‖"
    };
    title_bar(
        theme,
        vec![Span::raw(format!(
            "│ Compare │ {} entr{} │ {what} at the {}",
            all.len(),
            if all.len() == 1 { "y" } else { "ies" },
            lg.at.name()
        ))],
        vec![],
        top,
        buf,
    );
    chart(app, &all, chart_area, buf);
    legend(theme, &all, hidden, legend_area, buf);
    footer(
        theme,
        &[
            ("f", "first/last probe"),
            ("n", "normalise"),
            ("t", "theory"),
            ("esc", "ledger"),
            ("?", "help"),
            ("q", "quit"),
        ],
        app.flash.as_deref(),
        foot,
        buf,
    );
}

/// Dots of a braille canvas (2×4 per cell) with the style of the last line through each
/// cell: enough to draw polylines whose cells match the symbols drawn over them.
struct Braille {
    area: Rect,
    bits: Vec<u8>,
    styles: Vec<Style>,
}

impl Braille {
    fn new(area: Rect) -> Self {
        let n = area.width as usize * area.height as usize;
        Self {
            area,
            bits: vec![0; n],
            styles: vec![Style::default(); n],
        }
    }

    fn dot(&mut self, x: i64, y: i64, style: Style) {
        let (w, h) = (self.area.width as i64, self.area.height as i64);
        if x < 0 || y < 0 || x >= 2 * w || y >= 4 * h {
            return;
        }
        const BITS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
        let i = (y / 4 * w + x / 2) as usize;
        self.bits[i] |= BITS[(x % 2) as usize][(y % 4) as usize];
        self.styles[i] = style;
    }

    /// Bresenham's line between two dots.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), style: Style) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.dot(x, y, style);
            if x == x1 && y == y1 {
                return;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn render(&self, buf: &mut Buffer) {
        let w = self.area.width as usize;
        for (i, &b) in self.bits.iter().enumerate() {
            if b != 0 {
                let (x, y) = (self.area.x + (i % w) as u16, self.area.y + (i / w) as u16);
                let c = char::from_u32(0x2800 + b as u32).expect("braille is U+2800..=U+28FF");
                buf[(x, y)].set_char(c).set_style(self.styles[i]);
            }
        }
    }
}

fn chart(app: &App, all: &[Series], area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let view = &app.ledger.compare;
    let what = if view.normalised {
        "‖δ‖/‖δ^out‖"
    } else {
        "‖δ‖"
    };
    let mut block = panel(
        theme,
        format!(" {what} by depth · log10 · {} ", app.ledger.at.name()),
        true,
    );
    if view.theory {
        let note = if app.ledger.at == ProbeAt::First {
            " ⣀ measured  · theory "
        } else {
            " ⣀ measured  · theory (at initialisation) "
        };
        block = block.title_bottom(Line::styled(note, theme.dim()).right_aligned());
    }
    let inner = block.inner(area);
    block.render(area, buf);
    let logs = all
        .iter()
        .flat_map(|s| s.logs.iter().chain(s.theory.iter().flatten()).copied());
    let depth = all.iter().map(|s| s.logs.len()).max().unwrap_or(0);
    let axis = 6u16;
    let scale = Decades::around(logs).filter(|_| depth > 0);
    let Some(d) = scale.filter(|_| inner.height >= 4 && inner.width > axis + 4) else {
        put(
            buf,
            inner.x,
            inner.y,
            "no ‖δ‖ recorded in the marked entries",
            inner.width,
            theme.dim(),
        );
        return;
    };
    let plot = Rect {
        x: inner.x + axis,
        width: inner.width - axis - 1,
        height: inner.height - 1,
        ..inner
    };
    let (dots_w, dots_h) = (2 * plot.width as i64, 4 * plot.height as i64);
    // Layer l of a net of `depth` layers, and a log10 value, as braille dots.
    let dot_x = |l: f64| {
        if depth < 2 {
            dots_w / 2
        } else {
            (l * (dots_w - 1) as f64 / (depth - 1) as f64).round() as i64
        }
    };
    let dot_y = |v: f64| ((d.hi - v) * (dots_h - 1) as f64 / (d.hi - d.lo)).round() as i64;
    let cell = |(x, y): (i64, i64)| (plot.x + (x / 2) as u16, plot.y + (y / 4) as u16);

    // Decade labels, as many as fit with a row between them, and the regime thresholds
    // (as on the Run screen) when the values are ratios to the output layer.
    let mut last_row = None;
    for k in (d.lo as i64..=d.hi as i64).rev() {
        let row = cell((0, dot_y(k as f64))).1;
        if last_row.is_none_or(|r: u16| row >= r + 2) {
            put(buf, inner.x, row, &decade(k as f64), axis - 1, theme.dim());
            last_row = Some(row);
        }
    }
    if view.normalised {
        for t in [VANISHING_BELOW.log10(), 0.0, EXPLODING_ABOVE.log10()] {
            if t > d.lo && t < d.hi {
                let row = cell((0, dot_y(t))).1;
                for x in plot.left()..plot.right() {
                    buf[(x, row)].set_char('┈').set_style(theme.dim());
                }
            }
        }
    }

    // Theory dots first, the measured lines over them, the symbols on top.
    for s in all {
        let Some(theory) = &s.theory else { continue };
        let n = theory.len();
        let style = theme.series(s.index);
        for cx in 0..plot.width as i64 {
            // The fractional layer under this column's middle, within this net's depth.
            let l = if depth < 2 {
                0.0
            } else {
                (2 * cx) as f64 * (depth - 1) as f64 / (dots_w - 1) as f64
            };
            if l > (n - 1) as f64 + 1e-9 {
                break;
            }
            let (i, f) = (l.floor() as usize, l.fract());
            let v = match theory.get(i + 1) {
                Some(next) => theory[i] * (1.0 - f) + next * f,
                None => theory[i],
            };
            if v.is_finite() && v >= d.lo && v <= d.hi {
                let (x, y) = cell((2 * cx, dot_y(v)));
                buf[(x, y)].set_char(THEORY_DOT).set_style(style);
            }
        }
    }
    let mut braille = Braille::new(plot);
    for s in all {
        let pts: Vec<Option<(i64, i64)>> = s
            .logs
            .iter()
            .enumerate()
            .map(|(l, v)| v.is_finite().then(|| (dot_x(l as f64), dot_y(*v))))
            .collect();
        for w in pts.windows(2) {
            if let [Some(a), Some(b)] = w {
                braille.line(*a, *b, theme.series(s.index));
            }
        }
    }
    braille.render(buf);
    for s in all {
        for (l, v) in s.logs.iter().enumerate() {
            if v.is_finite() {
                let (x, y) = cell((dot_x(l as f64), dot_y(*v)));
                buf[(x, y)]
                    .set_symbol(GLYPHS[s.index])
                    .set_style(theme.series(s.index));
            }
        }
    }

    // The depth axis: first and last layer, and which way is which.
    let y = inner.bottom() - 1;
    put(buf, plot.x, y, "layer 1", plot.width, theme.dim());
    let end = format!("{depth}");
    let end_x = plot.right().saturating_sub(end.chars().count() as u16);
    put(buf, end_x, y, &end, plot.right() - end_x, theme.dim());
    let mid = "input → output";
    let len = mid.chars().count() as u16;
    if plot.width > len + 20 {
        put(
            buf,
            plot.x + (plot.width - len) / 2,
            y,
            mid,
            len,
            theme.dim(),
        );
    }
}

/// One line per compared entry: its symbol, seq and name, the measured ratio of the first
/// layer to the output layer, the theory's, its status, final loss and config. Parts that
/// do not fit whole are left out, never cut.
fn legend(theme: &Theme, all: &[Series], hidden: usize, area: Rect, buf: &mut Buffer) {
    let width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = all
        .iter()
        .map(|s| {
            let e = s.entry;
            let first = s.logs.first().copied().unwrap_or(f64::NAN);
            let last = s.logs.last().copied().unwrap_or(f64::NAN);
            let ratio = if (first - last).is_finite() {
                sci(10f64.powf(first - last))
            } else {
                "—".into()
            };
            let mut parts = vec![(format!("in/out {ratio}"), Style::default())];
            if let Some(note) = &s.theory_note {
                parts.push((note.clone(), theme.dim()));
            }
            parts.push((e.status.name().to_string(), Style::default()));
            parts.push((
                format!(
                    "loss {}",
                    e.metrics.train_loss.map_or("—".into(), |l| num(l, 4))
                ),
                Style::default(),
            ));
            parts.push((format!("config {}", e.config_hash.short()), theme.dim()));
            let head = format!("{} #{} {}", GLYPHS[s.index], e.seq, e.experiment);
            let mut used = head.chars().count();
            let mut spans = vec![Span::styled(head, theme.series(s.index))];
            for (text, style) in parts {
                let w = text.chars().count() + 3;
                if used + w <= width {
                    used += w;
                    spans.push(Span::styled(" · ", theme.dim()));
                    spans.push(Span::styled(text, style));
                }
            }
            Line::from(spans)
        })
        .collect();
    if hidden > 0 {
        lines.push(Line::styled(
            format!(
                "+{hidden} more marked: the chart shows the first {}",
                GLYPHS.len()
            ),
            theme.dim(),
        ));
    }
    Paragraph::new(lines)
        .block(panel(theme, " Legend ", false))
        .render(area, buf);
}
