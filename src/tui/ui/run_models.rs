//! The Run screen's views for the model zoo: gradient through time (recurrent nets), fitness
//! of a gradient-free search, and a deep belief net's pretraining curves and samples.

use super::run::waiting;
use super::widgets::{Decades, decade, depth_bars, mean_log, row_of};
use super::{num, panel, put, sci};
use crate::tui::app::RunState;
use crate::tui::app::run::{Series, log10};
use crate::tui::regime::Regime;
use crate::tui::theme::{ColorMode, Theme};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Widget};

/// The header's phase note for a deep belief net: "pretrain RBM 2/3 (784→500)" or "finetune".
pub fn phase_note(run: &RunState) -> Option<String> {
    let p = run.dbn.as_ref()?.phase.as_ref()?;
    Some(match (p.rbm, p.of) {
        (Some(k), Some(n)) => {
            let shape = match (p.visible, p.hidden) {
                (Some(v), Some(h)) => format!(" ({v}→{h})"),
                _ => String::new(),
            };
            format!("pretrain RBM {k}/{n}{shape}")
        }
        _ if p.phase == "finetune" => "fine-tuning".into(),
        _ => p.phase.clone(),
    })
}

/// ‖∂L/∂h_t‖ by time step (see [`time_panel`]); the history compressor's two levels one
/// above the other: the upper level's error from the task, which crosses only the steps
/// passed up to it, and the lower level's from predicting its next input.
pub fn through_time(
    run: &RunState,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
    focused: bool,
    theory: Option<&[f64]>,
) {
    let Some(levels) = run.latest.as_ref().and_then(|p| p.levels.as_ref()) else {
        return time_panel(
            run,
            run.through_time(),
            "",
            theme,
            area,
            buf,
            focused,
            theory,
        );
    };
    // Short titles, the point first: the panels are a third of the screen wide.
    let high = format!(
        "high: {}/{} passed up",
        num(levels.passed_up, 1),
        levels.steps
    );
    // Too low for two profiles: the upper level's, which carries the task's lag.
    if area.height < 14 {
        return time_panel(
            run,
            run.through_time(),
            &high,
            theme,
            area,
            buf,
            focused,
            None,
        );
    }
    let [upper, lower] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(area);
    time_panel(
        run,
        run.through_time(),
        &high,
        theme,
        upper,
        buf,
        focused,
        None,
    );
    let low = match levels.collapsed_agreement {
        Some(a) => format!(
            "low: loss {} · answer {:.0}%",
            num(levels.predict_loss, 3),
            100.0 * a
        ),
        None => format!("low: predicts, loss {}", num(levels.predict_loss, 3)),
    };
    time_panel(run, &levels.low_time, &low, theme, lower, buf, false, None);
}

/// ‖∂L/∂h_t‖ by time step, t = 1 on the left, on a log scale like the depth profile; the
/// title carries h_1/h_T, the share of the last step's error that reaches the first.
#[allow(clippy::too_many_arguments)]
fn time_panel(
    run: &RunState,
    time: &[f64],
    what: &str,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
    focused: bool,
    theory: Option<&[f64]>,
) {
    let ratio = match (time.first(), time.last()) {
        (Some(&a), Some(&b)) if b > 0.0 => sci(a / b),
        _ => "—".into(),
    };
    // The theory's ‖∂L/∂h_t‖/‖∂L/∂h_ref‖ (at initialisation), anchored at the measured
    // value of the reference step — the last step it predicts.
    let predicted: Option<Vec<f64>> = theory.filter(|r| r.len() == time.len()).and_then(|r| {
        let at = r.iter().rposition(|v| v.is_finite())?;
        let anchor = time[at].log10();
        anchor
            .is_finite()
            .then(|| r.iter().map(|v| v.log10() + anchor).collect())
    });
    let mut block = panel(
        theme,
        if what.is_empty() {
            format!(" ‖∂L/∂h_t‖ vs t · log10 · h1/hT {ratio} ")
        } else {
            format!(" {what} · h1/hT {ratio} ")
        },
        focused,
    );
    if predicted.is_some() {
        block = block.title_bottom(Line::styled(" ━ theory ", theme.theory()).right_aligned());
    }
    let inner = block.inner(area);
    block.render(area, buf);
    let logs: Vec<f64> = time.iter().map(|&v| log10(v) as f64).collect();
    let Some(d) =
        Decades::around(logs.iter().copied()).filter(|_| inner.height >= 3 && inner.width >= 12)
    else {
        waiting(run, theme, inner, buf);
        return;
    };
    let axis = 6;
    let plot = Rect {
        x: inner.x + axis,
        width: inner.width - axis,
        height: inner.height - 1,
        ..inner
    };
    put(buf, inner.x, plot.y, &decade(d.hi), axis - 1, theme.dim());
    let lo_y = plot.bottom() - 1;
    put(buf, inner.x, lo_y, &decade(d.lo), axis - 1, theme.dim());
    // Each step is coloured by its regime against the last step, as layers are against the
    // output layer: the last step's error is what every earlier one is a share of.
    let last = time.last().copied().unwrap_or(0.0);
    let cols = depth_bars(buf, plot, &logs, d, |r| {
        let rs: Vec<Regime> = time[r].iter().map(|&v| Regime::classify(v, last)).collect();
        theme.regime(worst(&rs))
    });
    // The prediction over the bars, one mark per bar at its predicted height.
    if let Some(p) = &predicted {
        for c in &cols {
            if let Some(mean) = mean_log(p, c.layers.clone()).filter(|m| *m > d.lo && *m < d.hi) {
                let y = row_of(plot, d.level(mean));
                for dx in 0..c.width {
                    buf[(c.x + dx, y)].set_char('━').set_style(theme.theory());
                }
            }
        }
    }
    let y = inner.bottom() - 1;
    let (Some(a), Some(b)) = (cols.first(), cols.last()) else {
        return;
    };
    let end = format!("t={}", time.len());
    let end_x = (b.x + b.width)
        .saturating_sub(end.chars().count() as u16)
        .max(a.x);
    put(buf, a.x, y, "t=1", 3, theme.dim());
    put(buf, end_x, y, &end, inner.right() - end_x, theme.dim());
    let mid = "time →";
    if end_x > a.x + 4 + 8 {
        put(buf, a.x + (end_x - a.x) / 2 - 3, y, mid, 6, theme.dim());
    }
}

/// A grid net's ‖∂L/∂h_{i,j}‖ over the image (the four scans together), as shades from the
/// map's smallest to its largest on a log scale, two cells per pixel; the title gives each
/// scan's far corner over its read-out corner, geometric mean.
pub fn grid(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let time = run.through_time();
    let geo = crate::models::grid::far_over_near(time).map_or("—".into(), |(_, g)| sci(g));
    let block = panel(theme, format!(" ‖∂L/∂h‖ · far/near {geo} "), focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(map) = crate::models::grid::pixel_map(time) else {
        waiting(run, theme, inner, buf);
        return;
    };
    let Some(side) = crate::models::grid::square_side(map.len()) else {
        return;
    };
    let logs: Vec<f64> = map.iter().map(|&v| log10(v) as f64).collect();
    let lo = logs
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = logs
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-9);
    let (w, h) = (2 * side as u16, side as u16);
    if inner.width < w || inner.height < 2 {
        return;
    }
    let x0 = inner.x + (inner.width - w) / 2;
    // A panel lower than the image shows every (side/rows)-th row, top and bottom kept.
    let rows = h.min(inner.height - 1);
    for r in 0..rows {
        let image_row = if rows > 1 {
            r as usize * (side - 1) / (rows as usize - 1)
        } else {
            0
        };
        for c in 0..side as u16 {
            let (glyph, style) = theme.heat((logs[image_row * side + c as usize] - lo) / span);
            for dx in 0..2 {
                buf[(x0 + 2 * c + dx, inner.y + r)]
                    .set_char(glyph)
                    .set_style(style);
            }
        }
    }
    let legend = format!("{} ·░▒▓█ {}", decade(lo), decade(hi));
    put(
        buf,
        inner.x + 1,
        inner.y + rows,
        &legend,
        inner.width.saturating_sub(2),
        theme.dim(),
    );
}

fn worst(rs: &[Regime]) -> Regime {
    for r in [Regime::Exploding, Regime::Vanishing, Regime::Healthy] {
        if rs.contains(&r) {
            return r;
        }
    }
    Regime::Unknown
}

/// The y range of some series, padded a little; (0, 1) when there is nothing finite.
fn y_range<'a>(series: impl IntoIterator<Item = &'a Series>) -> (f64, f64) {
    let (lo, hi) = series
        .into_iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.01).max(1e-9);
    (lo - pad, hi + pad)
}

/// A line chart of `series` over 0..=x_max with the y range printed on the axis.
fn lines(series: &[(&Series, Style)], x_max: f64, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let (lo, hi) = y_range(series.iter().map(|s| s.0));
    let datasets = series
        .iter()
        .map(|(s, style)| {
            Dataset::default()
                .data(&s.points)
                .style(*style)
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
        })
        .collect();
    Chart::new(datasets)
        .x_axis(Axis::default().bounds([0.0, x_max.max(1.0)]))
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels([num(lo, 2), num(hi, 2)])
                .style(theme.dim()),
        )
        .render(area, buf);
}

/// A gradient-free search fills the body: a plain note that there is nothing to probe, then
/// the best and mean loss of each generation.
pub fn search(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let name = run.search.as_deref().unwrap_or("search");
    let [note, chart] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    Line::from(vec![
        Span::styled(" gradient-free search: no gradients to probe", theme.warn()),
        Span::styled(
            format!(" · {name} keeps the fittest; fitness = loss on the batch, lower is fitter"),
            theme.dim(),
        ),
    ])
    .render(note, buf);
    let last = |s: &Series| s.last().map_or("—".into(), |p| num(p.1, 4));
    let title = format!(
        " Fitness per generation · best {} · mean {} ",
        last(&run.fitness_best),
        last(&run.fitness_mean)
    );
    let block = panel(theme, title, true).title_bottom(
        Line::from(vec![
            Span::styled(" ⣀ best", theme.train_series()),
            Span::styled(" ⣀ mean ", theme.test_series()),
        ])
        .right_aligned(),
    );
    let inner = block.inner(chart);
    block.render(chart, buf);
    if run.fitness_best.points.is_empty() || inner.height < 2 || inner.width < 10 {
        waiting(run, theme, inner, buf);
        return;
    }
    let x_max = run.total.saturating_sub(1) as f64;
    lines(
        &[
            (&run.fitness_mean, theme.test_series()),
            (&run.fitness_best, theme.train_series()),
        ],
        x_max,
        theme,
        inner,
        buf,
    );
}

/// A deep belief net's panel: its samples when `i` is on, else the pretraining curves of
/// the RBM now pretraining (or the last one).
pub fn dbn(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    if run.view.samples {
        samples(run, theme, area, buf, focused);
    } else {
        pretraining(run, theme, area, buf, focused);
    }
}

fn pretraining(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let Some(dbn) = run.dbn.as_ref() else {
        return;
    };
    let k = dbn.pretraining().unwrap_or(dbn.rbms.len()).max(1);
    let Some(c) = dbn.rbms.get(k - 1) else {
        let block = panel(theme, format!(" Pretraining RBM {k} "), focused);
        let inner = block.inner(area);
        block.render(area, buf);
        put(
            buf,
            inner.x,
            inner.y,
            "waiting for the first RBM probe…",
            inner.width,
            theme.dim(),
        );
        return;
    };
    let mut title = format!(" Pretraining RBM {k}");
    if let Some(p) = &c.latest {
        title += &format!(" · update {} · recon {}", p.step, num(p.recon_error, 4));
        if let Some(g) = p.free_energy_gap {
            title += &format!(" · ΔF {}", num(g, 3));
        }
        if let Some(l) = p.log_likelihood {
            title += &format!(" · log p {}", num(l, 2));
        }
    }
    title.push(' ');
    let block = panel(theme, title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    // One chart per measure that the RBM reports, stacked; the log-likelihood only exists
    // while the smaller layer is small enough to enumerate.
    let mut charts: Vec<(&str, Vec<(&Series, Style)>)> =
        vec![("recon error", vec![(&c.recon_error, theme.train_series())])];
    if !c.free_energy_gap.points.is_empty() {
        charts.push((
            "free energy test − train",
            vec![(&c.free_energy_gap, theme.warn())],
        ));
    }
    if !c.log_likelihood.points.is_empty() {
        charts.push((
            "log-likelihood (nats) ⣀ train ⣀ test",
            vec![
                (&c.test_log_likelihood, theme.test_series()),
                (&c.log_likelihood, theme.train_series()),
            ],
        ));
    }
    let steps = dbn
        .phase
        .as_ref()
        .filter(|p| p.rbm == Some(k))
        .map_or(0, |p| p.steps);
    let x_max = c
        .recon_error
        .last()
        .map_or(0.0, |p| p.0)
        .max(steps.saturating_sub(1) as f64);
    let rows = Layout::vertical(vec![Constraint::Fill(1); charts.len()]).split(inner);
    for ((label, series), r) in charts.iter().zip(rows.iter()) {
        if r.height < 2 {
            continue;
        }
        let [head, plot] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(*r);
        put(buf, head.x, head.y, label, head.width, theme.dim());
        lines(series, x_max, theme, plot, buf);
    }
}

/// A grey level in [0, 1] as a colour the terminal has (four greys on 16 colours).
fn grey(mode: ColorMode, v: f32) -> Color {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    match mode {
        ColorMode::TrueColor => {
            let g = (v * 255.0).round() as u8;
            Color::Rgb(g, g, g)
        }
        ColorMode::Ansi256 => Color::Indexed(232 + (v * 23.0).round() as u8),
        _ => [Color::Black, Color::DarkGray, Color::Gray, Color::White]
            [((v * 3.0).round() as usize).min(3)],
    }
}

/// Shades for NO_COLOR, darkest first: one cell stands for the mean of its two pixels.
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

/// The model's samples as small images, two pixel rows per text row: `▀` with the upper
/// pixel as foreground and the lower as background, or shades under NO_COLOR.
fn samples(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let s = run.dbn.as_ref().and_then(|d| d.samples.as_ref());
    let title = match s {
        Some((w, h, images)) => format!(" Samples · {} of {w}×{h} · i hides ", images.len()),
        None => " Samples · i hides ".into(),
    };
    let block = panel(theme, title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some((w, h, images)) = s.filter(|(w, h, _)| *w > 0 && *h > 0) else {
        let note = "no samples yet: the net samples once pretraining ends";
        put(buf, inner.x, inner.y, note, inner.width, theme.dim());
        return;
    };
    let (w, h) = (*w, *h);
    let cell_w = w as u16 + 1;
    let cell_h = h.div_ceil(2) as u16 + 1;
    let per_row = (inner.width / cell_w).max(1) as usize;
    let mono = theme.mode == ColorMode::None;
    for (i, img) in images.iter().enumerate() {
        let (col, row) = ((i % per_row) as u16, (i / per_row) as u16);
        let (x0, y0) = (inner.x + col * cell_w, inner.y + row * cell_h);
        if y0 + cell_h - 1 > inner.bottom() || x0 + w as u16 > inner.right() {
            continue;
        }
        let px = |x: usize, y: usize| img.get(y * w + x).copied().unwrap_or(0.0);
        for ty in 0..h.div_ceil(2) {
            for x in 0..w {
                let top = px(x, 2 * ty);
                let bottom = if 2 * ty + 1 < h {
                    px(x, 2 * ty + 1)
                } else {
                    0.0
                };
                let cell = &mut buf[(x0 + x as u16, y0 + ty as u16)];
                if mono {
                    let m = ((top + bottom) / 2.0).clamp(0.0, 1.0);
                    let shade = SHADES[((m * 4.0).round() as usize).min(4)];
                    cell.set_char(shade).set_style(Style::default());
                } else {
                    cell.set_char('▀').set_style(
                        Style::default()
                            .fg(grey(theme.mode, top))
                            .bg(grey(theme.mode, bottom)),
                    );
                }
            }
        }
    }
}
