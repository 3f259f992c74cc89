//! Small log-scale drawing primitives: a one-row sparkline, vertical bars by depth, and the
//! scale that maps log10 norms to heat levels.

use crate::tui::theme::EIGHTHS;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

/// The smallest span, in decades, a sparkline is scaled to: a row that wobbles by 10 %
/// should look almost flat, not fill its height.
const MIN_SPAN: f32 = 1.0;

/// Draws `values` (log10 norms, oldest first) as one row of eighth blocks from `x`,
/// scaled to the row's own range (at least `MIN_SPAN` decades).
pub fn sparkline(buf: &mut Buffer, x: u16, y: u16, width: u16, values: &[f32], style: Style) {
    let shown = &values[values.len().saturating_sub(width as usize)..];
    let finite = shown.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = widen(lo, hi);
    for (i, &v) in shown.iter().enumerate() {
        let c = if v.is_finite() {
            let level = ((v - lo) / (hi - lo) * 7.0).round() as usize + 1;
            EIGHTHS[level.clamp(1, 8)]
        } else if v == f32::NEG_INFINITY {
            '_' // an exact zero
        } else {
            '!'
        };
        buf[(x + i as u16, y)].set_char(c).set_style(style);
    }
}

/// Widens [lo, hi] around its middle to at least `MIN_SPAN`.
fn widen(lo: f32, hi: f32) -> (f32, f32) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, MIN_SPAN);
    }
    if hi - lo >= MIN_SPAN {
        return (lo, hi);
    }
    let mid = (lo + hi) / 2.0;
    (mid - MIN_SPAN / 2.0, mid + MIN_SPAN / 2.0)
}

/// A log10 range rounded out to whole decades, at least one decade wide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decades {
    pub lo: f64,
    pub hi: f64,
}

impl Decades {
    /// The whole decades around every finite value, or `None` when there is none.
    pub fn around(logs: impl IntoIterator<Item = f64>) -> Option<Self> {
        let (lo, hi) = logs
            .into_iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            return None;
        }
        let (lo, mut hi) = (lo.floor(), hi.ceil());
        if hi <= lo {
            hi = lo + 1.0;
        }
        Some(Self { lo, hi })
    }

    /// Where `log` lies in the range, 0 at `lo` and 1 at `hi`.
    pub fn level(&self, log: f64) -> f64 {
        ((log - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }
}

/// "1e-3" for a log10 of −3.
pub fn decade(log: f64) -> String {
    format!("1e{}", log as i64)
}

/// One vertical bar from the bottom of `area`, `level` (0..1) of its height, `width` cells
/// wide at column `x`. A finite value always shows at least one eighth.
pub fn vbar(buf: &mut Buffer, area: Rect, x: u16, width: u16, level: f64, style: Style) {
    let eighths = (level.clamp(0.0, 1.0) * area.height as f64 * 8.0)
        .round()
        .max(1.0) as usize;
    for row in 0..area.height as usize {
        let fill = eighths.saturating_sub(row * 8).min(8);
        if fill == 0 {
            break;
        }
        let y = area.bottom() - 1 - row as u16;
        for dx in 0..width {
            buf[(x + dx, y)].set_char(EIGHTHS[fill]).set_style(style);
        }
    }
}

/// Where one bar of a depth profile goes: `layers` are the layers it stands for (several
/// when they do not all fit one column each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub x: u16,
    pub width: u16,
    pub layers: std::ops::Range<usize>,
}

/// Lays `n` layers out as bars across `area`: one bar per layer (or groups of layers when
/// they do not fit), equal widths with a gap once there is room for one, centred.
pub fn columns(n: usize, area: Rect) -> Vec<Column> {
    let w = area.width as usize;
    if n == 0 || w == 0 {
        return Vec::new();
    }
    let count = n.min(w);
    let slot = (w / count) as u16;
    let width = if slot >= 2 { slot - 1 } else { slot };
    let left = area.x + (area.width - slot * count as u16) / 2;
    (0..count)
        .map(|c| {
            let a = c * n / count;
            let b = ((c + 1) * n / count).max(a + 1);
            Column {
                x: left + c as u16 * slot,
                width,
                layers: a..b,
            }
        })
        .collect()
}

/// The mean of the finite values of `logs` over `range`.
pub fn mean_log(logs: &[f64], range: std::ops::Range<usize>) -> Option<f64> {
    let group: Vec<f64> = logs[range]
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    (!group.is_empty()).then(|| group.iter().sum::<f64>() / group.len() as f64)
}

/// Log10 values by depth as vertical bars in `area` on the scale `d`; a bar standing for
/// several layers shows their mean. `style` colours a bar by the layers it stands for.
/// Returns the columns used, so callers can draw over them.
pub fn depth_bars(
    buf: &mut Buffer,
    area: Rect,
    logs: &[f64],
    d: Decades,
    style: impl Fn(std::ops::Range<usize>) -> Style,
) -> Vec<Column> {
    let cols = columns(logs.len(), area);
    for c in &cols {
        if let Some(mean) = mean_log(logs, c.layers.clone()) {
            vbar(
                buf,
                area,
                c.x,
                c.width,
                d.level(mean),
                style(c.layers.clone()),
            );
        }
    }
    cols
}

/// The row of `area` holding the top of a [`vbar`] of `level` (0..1): a mark drawn there
/// caps a bar of the same level exactly.
pub fn row_of(area: Rect, level: f64) -> u16 {
    let h = area.height.max(1);
    let eighths = (level.clamp(0.0, 1.0) * h as f64 * 8.0).round().max(1.0) as u16;
    area.bottom() - 1 - ((eighths - 1) / 8).min(h - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(buf: &Buffer, y: u16) -> String {
        (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
    }

    #[test]
    fn sparkline_shows_the_newest_values_on_their_own_scale() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 6, 1));
        sparkline(
            &mut buf,
            0,
            0,
            4,
            &[-9.0, -8.0, -6.0, -4.0, -2.0],
            Style::default(),
        );
        assert_eq!(row(&buf, 0), "▁▃▆█  ");
    }

    #[test]
    fn sparkline_of_a_nearly_constant_row_stays_flat() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 1));
        sparkline(&mut buf, 0, 0, 3, &[-3.0, -3.01, -2.99], Style::default());
        assert_eq!(row(&buf, 0), "▅▄▅");
    }

    #[test]
    fn sparkline_marks_zero_and_overflow() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 1));
        sparkline(
            &mut buf,
            0,
            0,
            3,
            &[f32::NEG_INFINITY, -1.0, f32::NAN],
            Style::default(),
        );
        assert_eq!(row(&buf, 0), "_▅!");
    }

    #[test]
    fn decades_round_out_and_level_maps_into_them() {
        let d = Decades::around([-8.3, -1.2, f64::NEG_INFINITY]).unwrap();
        assert_eq!(d, Decades { lo: -9.0, hi: -1.0 });
        assert_eq!(d.level(-5.0), 0.5);
        assert_eq!(
            Decades::around([2.0]).unwrap(),
            Decades { lo: 2.0, hi: 3.0 }
        );
        assert_eq!(Decades::around([f64::NAN]), None);
        assert_eq!(decade(-9.0), "1e-9");
    }

    #[test]
    fn columns_fit_one_bar_per_layer_or_group_them() {
        let area = Rect::new(10, 0, 20, 4);
        let c = columns(4, area);
        assert_eq!(c.len(), 4);
        assert_eq!((c[0].x, c[0].width, c[0].layers.clone()), (10, 4, 0..1));
        assert_eq!(c[3].x, 25);
        let c = columns(50, area);
        assert_eq!(c.len(), 20, "one column each at most");
        assert_eq!(c.iter().map(|c| c.layers.len()).sum::<usize>(), 50);
        assert!(c.iter().all(|c| c.width == 1));
        assert!(columns(0, area).is_empty());
    }

    #[test]
    fn row_of_is_the_top_row_of_a_bar_of_that_level() {
        let area = Rect::new(0, 2, 1, 4);
        assert_eq!(row_of(area, 0.0), 5);
        assert_eq!(row_of(area, 0.3), 4);
        assert_eq!(
            row_of(area, 0.5),
            4,
            "a bar of exactly two rows tops out on the second"
        );
        assert_eq!(row_of(area, 1.0), 2);
        for level in [0.1, 0.25, 0.5, 0.77, 1.0] {
            let mut buf = Buffer::empty(Rect::new(0, 0, 1, 6));
            vbar(&mut buf, area, 0, 1, level, Style::default());
            let top = (2..6).find(|&y| buf[(0, y)].symbol() != " ").unwrap();
            assert_eq!(row_of(area, level), top, "level {level}");
        }
    }

    #[test]
    fn vbar_fills_from_the_bottom_in_eighths() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 3));
        vbar(&mut buf, Rect::new(0, 0, 2, 3), 0, 1, 0.5, Style::default()); // 12 of 24 eighths
        vbar(&mut buf, Rect::new(0, 0, 2, 3), 1, 1, 0.0, Style::default());
        assert_eq!(
            [row(&buf, 0), row(&buf, 1), row(&buf, 2)],
            ["  ", "▄ ", "█▁"]
        );
    }
}
