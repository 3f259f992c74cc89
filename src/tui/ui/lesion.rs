//! The Run screen's lesion study (`d` on a finished mlp or resnet run): test error against
//! the number of deleted blocks (layers), and for residual nets the gradient by path length —
//! Veit, Wilber & Belongie (2016), Fig. 5 and 6, for the run just trained.

use super::widgets::{columns, vbar};
use super::{num, panel, put};
use crate::tui::app::LesionView;
use crate::tui::event::Lesioned;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Widget};

pub fn render(view: &LesionView, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let (title, text, style) = match view {
        LesionView::Running { seq } => (
            format!(" Lesion study · entry {seq} "),
            "deleting each unit at test time, then k at random…",
            theme.dim(),
        ),
        LesionView::Done(Err(e)) => (" Lesion study ".to_string(), e.as_str(), theme.error()),
        LesionView::Done(Ok(l)) => return done(l, theme, area, buf, focused),
    };
    let block = panel(theme, title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    put(
        buf,
        inner.x + 1,
        inner.y,
        text,
        inner.width.saturating_sub(2),
        style,
    );
}

fn done(l: &Lesioned, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let s = &l.summary;
    let mut title = String::from(" Lesion study");
    if let Some((seq, _)) = &l.recorded {
        title += &format!(" · entry {seq}");
    }
    title += " · d hides ";
    let block = panel(theme, title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 3 || inner.width < 20 {
        return;
    }
    let worst = s
        .singles
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(u, e)| format!(" (worst {u} {})", num(*e, 3)))
        .unwrap_or_default();
    let wide = inner.width >= 70;
    let one = if wide {
        format!(" · one {} deleted ", l.unit)
    } else {
        format!(" · −1 {} ", l.unit)
    };
    let mut spans = vec![
        Span::styled("intact ", theme.dim()),
        Span::raw(num(s.intact, 3)),
        Span::styled(one, theme.dim()),
        Span::raw(num(s.single_mean(), 3)),
    ];
    if wide {
        spans.push(Span::raw(worst));
    }
    if let Some(c) = l.chance {
        spans.push(Span::styled(
            format!(" · chance {}", num(c, 2)),
            theme.dim(),
        ));
    }
    put_line(buf, inner, Line::from(spans));
    let mut body = Rect {
        y: inner.y + 1,
        height: inner.height - 1,
        ..inner
    };
    // Too narrow for two charts side by side: the paths' peak as a line, the errors below.
    let narrow = inner.width < 60;
    if narrow && let Some((peak, median)) = s.paths_peak() {
        let of = s.paths.len() - 1;
        let text = format!("gradient by path length: peak k={peak}, half ≤ {median} of {of}");
        put_line(buf, body, Line::styled(text, theme.dim()));
        body.y += 1;
        body.height -= 1;
    }
    if s.paths.is_empty() || narrow {
        errors(l, theme, body, buf);
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(body);
    errors(l, theme, left, buf);
    paths(l, theme, right, buf);
}

fn put_line(buf: &mut Buffer, area: Rect, line: Line) {
    let mut x = area.x + 1;
    let end = area.right().saturating_sub(1);
    for span in line.spans {
        if x >= end {
            break;
        }
        put(buf, x, area.y, &span.content, end - x, span.style);
        x += span.content.chars().count() as u16;
    }
}

/// Mean test error per k, with chance as a flat line.
fn errors(l: &Lesioned, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let s = &l.summary;
    let mut mean = vec![(0.0, s.intact)];
    mean.extend(s.by_k.iter().map(|k| (k.k as f64, k.mean)));
    let top = mean.last().map_or(1.0, |p| p.0).max(1.0);
    let chance: Vec<(f64, f64)> = l
        .chance
        .map(|c| vec![(0.0, c), (top, c)])
        .unwrap_or_default();
    let hi = mean
        .iter()
        .map(|p| p.1)
        .chain(l.chance)
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut datasets = vec![
        Dataset::default()
            .data(&mean)
            .style(theme.series(0))
            .marker(Marker::Braille)
            .graph_type(GraphType::Line),
    ];
    if !chance.is_empty() {
        datasets.push(
            Dataset::default()
                .data(&chance)
                .style(theme.dim())
                .marker(Marker::Dot)
                .graph_type(GraphType::Line),
        );
    }
    Chart::new(datasets)
        .x_axis(
            Axis::default()
                .title(format!("{}s deleted k", l.unit))
                .bounds([0.0, top])
                .labels(vec!["0".to_string(), format!("{top:.0}")])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, hi * 1.05])
                .labels(vec!["0".to_string(), num(hi, 2)])
                .style(theme.dim()),
        )
        .render(area, buf);
}

/// One bar per path length: the share of ‖∂L/∂h_0‖ that paths through k branches carry.
fn paths(l: &Lesioned, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let s = &l.summary;
    if area.height < 3 || area.width < 6 {
        return;
    }
    let label = match s.paths_peak() {
        Some((peak, median)) => format!(
            "by path length: peak k={peak}, half ≤ {median} of {}",
            s.paths.len() - 1
        ),
        None => "gradient by path length".into(),
    };
    put(
        buf,
        area.x + 1,
        area.y,
        &label,
        area.width.saturating_sub(2),
        theme.dim(),
    );
    let bars = Rect {
        x: area.x + 1,
        y: area.y + 1,
        width: area.width.saturating_sub(2),
        height: area.height - 2,
    };
    let max = s
        .paths
        .iter()
        .map(|p| p.share)
        .fold(0.0, f64::max)
        .max(1e-12);
    for c in columns(s.paths.len(), bars) {
        let share = s.paths[c.layers.clone()]
            .iter()
            .map(|p| p.share)
            .fold(0.0, f64::max);
        vbar(buf, bars, c.x, c.width, share / max, theme.bar());
    }
    let axis = format!(
        "k=0{:>w$}",
        format!("{}", s.paths.len() - 1),
        w = bars.width.saturating_sub(3) as usize
    );
    put(
        buf,
        bars.x,
        area.bottom() - 1,
        &axis,
        bars.width,
        theme.dim(),
    );
}
