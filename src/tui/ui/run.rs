//! The Run screen: header, per-layer rows with sparklines, the gradient-vs-depth profile,
//! the layer × time heatmap, loss/accuracy charts and saturation — reflowed by size.

use super::run_models;
use super::widgets::{Decades, decade, mean_log, row_of, sparkline, vbar};
use super::{duration, footer, num, panel, put, sci, steps, title_bar, wrapped_height};
use crate::train::Status;
use crate::tui::app::run::{Series, log10};
use crate::tui::app::{App, Metric, Panel, Phase, RunState};
use crate::tui::regime::{EXPLODING_ABOVE, Regime, VANISHING_BELOW};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget, Wrap};

/// At most this many lines for the end-of-run banner (a long error wraps into it).
const BANNER_MAX: u16 = 5;

pub fn render(app: &App, run: &RunState, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let banner = banner_lines(run, theme);
    let banner_h = wrapped_height(&banner, area.width).min(BANNER_MAX);
    let [top, stats, body, banner_area, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(banner_h),
        Constraint::Length(1),
    ])
    .areas(area);
    header(run, theme, top, buf);
    stats_line(run, theme, stats, buf);
    let with_sat_column = !app.panels().contains(&Panel::Saturation);
    // A gradient-free search has no layers to probe: its fitness takes the whole body.
    let panels = if run.search.is_some() {
        run_models::search(run, theme, body, buf);
        Vec::new()
    } else {
        layout(app, run, body)
    };
    // Recurrent nets have two layers but T time steps: the profile shows time instead.
    let recurrent = !run.through_time().is_empty();
    let grid = matches!(run.model.as_str(), "mdlstm" | "rnn2d");
    // A deep belief net's panel takes the heatmap's place while pretraining (no gradient
    // probes then) and whenever its samples are shown.
    let dbn_panel = run
        .dbn
        .as_ref()
        .is_some_and(|d| d.pretraining().is_some() || run.view.samples);
    for (p, rect) in panels {
        let focused = p == run.view.focus;
        match p {
            Panel::Layers => layers(run, theme, rect, buf, focused, with_sat_column),
            // A grid net's `time` is its four scans' maps over the image.
            Panel::Profile if grid => run_models::grid(run, theme, rect, buf, focused),
            Panel::Profile if recurrent => run_models::through_time(
                run,
                theme,
                rect,
                buf,
                focused,
                app.theory.through_time(&run.config_hash),
            ),
            Panel::Heatmap if dbn_panel => run_models::dbn(run, theme, rect, buf, focused),
            // The lesion study of the finished run takes the heatmap's place while shown.
            Panel::Heatmap if run.lesion.is_some() => super::lesion::render(
                run.lesion.as_ref().expect("checked"),
                theme,
                rect,
                buf,
                focused,
            ),
            Panel::Profile => profile(
                run,
                theme,
                rect,
                buf,
                focused,
                app.theory.ready(&run.config_hash),
            ),
            Panel::Heatmap => heatmap(run, theme, rect, buf, focused),
            Panel::Loss => loss(run, theme, rect, buf, focused, !with_sat_column),
            Panel::Saturation => saturation(run, theme, rect, buf, focused),
        }
    }
    Paragraph::new(banner)
        .wrap(Wrap { trim: false })
        .render(banner_area, buf);
    let keys: &[(&str, &str)] = if run.phase.active() {
        &[
            ("space", "pause"),
            ("s", "stop"),
            ("l", "ledger"),
            ("g", "δ/∂W"),
            ("tab", "panel"),
            ("z", "zoom"),
            ("↑↓", "scroll"),
            ("?", "help"),
            ("q", "quit"),
        ]
    } else {
        &[
            ("esc", "experiments"),
            ("l", "ledger"),
            ("g", "δ/∂W"),
            ("tab", "panel"),
            ("z", "zoom"),
            ("↑↓", "scroll"),
            ("?", "help"),
            ("q", "quit"),
        ]
    };
    // A finished mlp or resnet run can be lesioned: say so beside the ledger key.
    let mut keys = keys.to_vec();
    if !run.phase.active() && run.entry.is_some() && matches!(run.model.as_str(), "mlp" | "resnet")
    {
        keys.insert(2, ("d", "lesion"));
    }
    footer(theme, &keys, app.flash.as_deref(), foot, buf);
}

/// Where each panel goes: the focused one alone when zoomed; five panels on a wide
/// terminal; otherwise layers on the left and three panels stacked on the right.
fn layout(app: &App, run: &RunState, body: Rect) -> Vec<(Panel, Rect)> {
    if run.view.zoom {
        return vec![(run.view.focus, body)];
    }
    if app.panels().contains(&Panel::Saturation) {
        let [upper, lower] =
            Layout::vertical([Constraint::Percentage(58), Constraint::Fill(1)]).areas(body);
        let [l, p, s] = Layout::horizontal([
            Constraint::Percentage(40),
            Constraint::Percentage(30),
            Constraint::Fill(1),
        ])
        .areas(upper);
        let [h, c] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Fill(1)]).areas(lower);
        vec![
            (Panel::Layers, l),
            (Panel::Profile, p),
            (Panel::Saturation, s),
            (Panel::Heatmap, h),
            (Panel::Loss, c),
        ]
    } else {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Fill(1)]).areas(body);
        let [p, h, c] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(right);
        vec![
            (Panel::Layers, left),
            (Panel::Profile, p),
            (Panel::Heatmap, h),
            (Panel::Loss, c),
        ]
    }
}

fn status(phase: &Phase, theme: &Theme) -> (String, Style) {
    match phase {
        Phase::Starting => ("… starting".into(), theme.dim()),
        Phase::Running => ("▶ running".into(), theme.ok()),
        Phase::Paused => ("‖ paused".into(), theme.warn()),
        Phase::Stopping => ("■ stopping".into(), theme.warn()),
        Phase::Ended(end) => match end.status {
            Status::Completed => ("✓ completed".into(), theme.ok()),
            Status::Interrupted => ("■ interrupted".into(), theme.warn()),
            Status::Diverged => ("▲ diverged".into(), theme.error()),
            Status::Failed => ("✗ failed".into(), theme.error()),
        },
    }
}

fn header(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let bold = theme.bar().add_modifier(ratatui::style::Modifier::BOLD);
    let (text, _) = status(&run.phase, theme);
    title_bar(
        theme,
        vec![
            Span::raw("│ Run │ "),
            Span::styled(run.name.clone(), bold),
            Span::raw(format!(" │ config {}", run.hash_short)),
            Span::raw(run_models::phase_note(run).map_or(String::new(), |p| format!(" │ {p}"))),
        ],
        vec![Span::styled(format!(" {text} "), bold)],
        area,
        buf,
    );
}

fn stats_line(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let done = run.steps_done();
    let frac = if run.total > 0 {
        done as f64 / run.total as f64
    } else {
        0.0
    };
    let sep = || Span::styled(" │ ", theme.dim());
    let mut spans = vec![
        Span::raw(" step "),
        Span::styled(format!("{done}/{}", run.total), theme.bold()),
    ];
    if area.width >= 100 {
        let w = 16usize;
        let full = ((frac * w as f64).round() as usize).min(w);
        spans.push(Span::raw(" "));
        spans.push(Span::styled("━".repeat(full), theme.ok()));
        spans.push(Span::styled("─".repeat(w - full), theme.dim()));
    }
    spans.push(Span::raw(format!(" {:.0}%", 100.0 * frac)));
    spans.push(sep());
    let rate = run.steps_per_s().map_or("—".into(), |r| format!("{r:.1}"));
    spans.push(Span::raw(format!("{rate} steps/s")));
    if run.phase.active() {
        spans.push(sep());
        spans.push(Span::raw(format!(
            "ETA {}",
            run.eta_s().map_or("—".into(), duration)
        )));
    }
    if let Some(p) = &run.latest {
        spans.push(sep());
        spans.push(Span::raw(format!("loss {}", num(p.loss, 4))));
        if let Some(a) = p.accuracy {
            spans.push(sep());
            spans.push(Span::raw(format!("acc {:.1}%", 100.0 * a)));
        }
    }
    spans.push(sep());
    spans.push(Span::styled(run.view.metric.label(), theme.focus()));
    Line::from(spans).render(area, buf);
}

/// The end-of-run (or stopping) note: status, speed, error, and how the run was recorded.
fn banner_lines<'a>(run: &RunState, theme: &Theme) -> Vec<Line<'a>> {
    let end = match &run.phase {
        Phase::Stopping => return vec![Line::styled(" stopping at the next step…", theme.warn())],
        Phase::Ended(end) => end,
        _ => return Vec::new(),
    };
    let (text, style) = status(&run.phase, theme);
    let mut first = vec![
        Span::styled(format!(" {text}"), style),
        Span::raw(format!(
            " after {} in {}",
            steps(end.steps_done),
            duration(run.wall_s)
        )),
    ];
    if let Some(rate) = run.steps_per_s() {
        first.push(Span::raw(format!(", {rate:.1} steps/s")));
    }
    if let Some(at) = end.diverged_at {
        first.push(Span::raw(format!(
            " — loss or gradient non-finite at step {at}"
        )));
    }
    let mut lines = vec![Line::from(first)];
    if let Some(e) = &end.error {
        lines.push(Line::from(vec![
            Span::styled(" error: ", theme.error()),
            Span::raw(e.clone()),
        ]));
    }
    lines.push(match &run.recorded {
        None => Line::styled(" recording…", theme.dim()),
        Some(Ok(m)) => Line::from(vec![Span::raw(" "), Span::styled(m.clone(), theme.ok())]),
        Some(Err(e)) => Line::from(vec![
            Span::styled(" not recorded: ", theme.error()),
            Span::raw(e.clone()),
        ]),
    });
    lines
}

pub(super) fn waiting(run: &RunState, theme: &Theme, inner: Rect, buf: &mut Buffer) {
    let note = match &run.phase {
        Phase::Ended(_) => "no probe was taken",
        _ => "waiting for the first probe…",
    };
    put(buf, inner.x, inner.y, note, inner.width, theme.dim());
}

fn label_width(run: &RunState) -> u16 {
    run.layers
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(3)
        .clamp(3, 6) as u16
}

/// First row shown and how many, for `rows` rows of `n` layers.
fn window(run: &RunState, p: Panel, rows: u16, n: usize) -> (usize, usize) {
    let rows = rows as usize;
    let first = run.view.scroll(p).min(n.saturating_sub(rows));
    (first, rows.min(n - first))
}

/// "1–19/21" when the layers do not all fit.
fn scroll_note<'a>(first: usize, shown: usize, n: usize, theme: &Theme) -> Option<Line<'a>> {
    (shown < n).then(|| {
        Line::styled(
            format!(" {}–{}/{n} ↕ ", first + 1, first + shown),
            theme.dim(),
        )
        .right_aligned()
    })
}

fn layers(
    run: &RunState,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
    focused: bool,
    with_sat: bool,
) {
    let metric = run.view.metric;
    let mut block = panel(
        theme,
        format!(" Layers · log10 {} ", metric.label()),
        focused,
    );
    let inner = block.inner(area);
    let n = run.layers.len();
    if run.latest.is_none() || n == 0 || inner.height < 2 {
        block.render(area, buf);
        waiting(run, theme, inner, buf);
        return;
    }
    let (first, shown) = window(run, Panel::Layers, inner.height - 1, n);
    if let Some(note) = scroll_note(first, shown, n, theme) {
        block = block.title(note);
    }
    block.render(area, buf);

    let now = run.current(metric);
    let regimes = run.regimes(metric);
    let out = now.last().copied().unwrap_or(0.0);
    let lw = label_width(run);
    let wide = !with_sat && inner.width >= 60;
    let fixed = lw + 1 + 1 + 7 + 2 + if with_sat { 5 } else { 0 } + if wide { 18 } else { 0 };
    let spark_w = inner.width.saturating_sub(fixed);
    let (x0, y0) = (inner.x, inner.y);
    let dim = theme.dim();
    put(buf, x0 + lw + 1, y0, "recent probes →", spark_w, dim);
    let mut x = x0 + lw + 1 + spark_w + 1;
    put(buf, x + 4, y0, "now", 3, dim);
    x += 7 + 2;
    if wide {
        put(buf, x + 2, y0, "/ out", 6, dim);
    }
    if with_sat {
        put(buf, x + 1, y0, "sat", 4, dim);
    }
    for (row, l) in (first..first + shown).enumerate() {
        let y = y0 + 1 + row as u16;
        let style = theme.regime(regimes[l]);
        put(buf, x0, y, &run.layers[l], lw, Style::default());
        sparkline(
            buf,
            x0 + lw + 1,
            y,
            spark_w,
            &run.recent(l, metric, spark_w as usize),
            style,
        );
        let mut x = x0 + lw + 1 + spark_w + 1;
        put(
            buf,
            x,
            y,
            &format!("{:>7}", sci(now[l])),
            7,
            Style::default(),
        );
        x += 8;
        put(buf, x, y, regimes[l].symbol(), 1, style);
        x += 2;
        if wide {
            let ratio = if out > 0.0 {
                sci(now[l] / out)
            } else {
                "—".into()
            };
            put(buf, x, y, &format!("{ratio:>7} "), 8, dim);
            put(buf, x + 8, y, regimes[l].name(), 10, style);
        }
        if with_sat {
            let sat = run.latest.as_ref().map_or(0.0, |p| p.layers[l].saturation);
            let text = if l + 1 == n {
                "   —".to_string()
            } else {
                format!("{:>3.0}%", 100.0 * sat)
            };
            put(buf, x, y, &text, 4, sat_style(sat, theme));
        }
    }
}

fn sat_style(sat: f64, theme: &Theme) -> Style {
    if sat >= 0.5 {
        theme.error()
    } else if sat >= 0.1 {
        theme.warn()
    } else {
        theme.ok()
    }
}

/// The regime of a group of layers drawn as one bar: any extreme wins over healthy.
fn worst(rs: &[Regime]) -> Regime {
    for r in [Regime::Exploding, Regime::Vanishing, Regime::Healthy] {
        if rs.contains(&r) {
            return r;
        }
    }
    Regime::Unknown
}

/// The predicted log10 ‖δ‖ per layer: the mean-field ratios anchored at the measured
/// output layer. Only for ‖δ‖ (the theory says nothing of ‖∂L/∂W‖) and a matching depth.
fn theory_logs(ratios: Option<&[f64]>, metric: Metric, now: &[f64]) -> Option<Vec<f64>> {
    let ratios = ratios.filter(|r| metric == Metric::Delta && r.len() == now.len())?;
    let out = now.last().copied().filter(|v| v.is_finite() && *v > 0.0)?;
    Some(ratios.iter().map(|r| (r * out).log10()).collect())
}

fn profile(
    run: &RunState,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
    focused: bool,
    theory: Option<&[f64]>,
) {
    let metric = run.view.metric;
    let now = run.current(metric);
    let predicted = theory_logs(theory, metric, &now);
    let mut block = panel(
        theme,
        format!(" {} vs depth · log10 ", metric.label()),
        focused,
    );
    if predicted.is_some() {
        block = block.title_bottom(Line::styled(" ━ theory ", theme.theory()).right_aligned());
    }
    let inner = block.inner(area);
    block.render(area, buf);
    let logs: Vec<f64> = now.iter().map(|&v| log10(v) as f64).collect();
    let all = logs.iter().chain(predicted.iter().flatten()).copied();
    let Some(d) = Decades::around(all).filter(|_| inner.height >= 3 && inner.width >= 12) else {
        waiting(run, theme, inner, buf);
        return;
    };
    let regimes = run.regimes(metric);
    let axis = 6;
    let plot = Rect {
        x: inner.x + axis,
        width: inner.width - axis,
        height: inner.height - 1,
        ..inner
    };
    put(buf, inner.x, plot.y, &decade(d.hi), axis - 1, theme.dim());
    put(
        buf,
        inner.x,
        plot.bottom() - 1,
        &decade(d.lo),
        axis - 1,
        theme.dim(),
    );

    // The regime thresholds relative to the output layer, as dotted lines behind the bars.
    if let Some(&out) = logs.last().filter(|v| v.is_finite()) {
        for t in [out + VANISHING_BELOW.log10(), out + EXPLODING_ABOVE.log10()] {
            if t > d.lo && t < d.hi {
                let y = plot.bottom()
                    - 1
                    - ((d.level(t) * plot.height as f64) as u16).min(plot.height - 1);
                for x in plot.left()..plot.right() {
                    buf[(x, y)].set_char('┈').set_style(theme.dim());
                }
            }
        }
    }

    let n = logs.len();
    let w = plot.width as usize;
    // One bar per layer, or layers grouped when they do not fit; equal bars with a gap
    // once there is room for one, the whole row centred.
    let columns = n.min(w);
    let slot = (w / columns) as u16;
    let bar_w = if slot >= 2 { slot - 1 } else { slot };
    let left = plot.x + (plot.width - slot * columns as u16) / 2;
    let x_of = |c: usize| left + c as u16 * slot;
    for c in 0..columns {
        let (a, b) = (
            c * n / columns,
            ((c + 1) * n / columns).max(c * n / columns + 1),
        );
        let group: Vec<f64> = logs[a..b]
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if group.is_empty() {
            continue;
        }
        let mean = group.iter().sum::<f64>() / group.len() as f64;
        vbar(
            buf,
            plot,
            x_of(c),
            bar_w,
            d.level(mean),
            theme.regime(worst(&regimes[a..b])),
        );
    }
    // The prediction over the bars: one mark per bar at its predicted height.
    if let Some(p) = &predicted {
        for c in 0..columns {
            let (a, b) = (
                c * n / columns,
                ((c + 1) * n / columns).max(c * n / columns + 1),
            );
            if let Some(mean) = mean_log(p, a..b) {
                let y = row_of(plot, d.level(mean));
                for dx in 0..bar_w {
                    buf[(x_of(c) + dx, y)]
                        .set_char('━')
                        .set_style(theme.theory());
                }
            }
        }
    }
    // Residual nets: ‖∂L/∂h‖ on the skip path as a ◆ over each bar, so the stream that
    // bypasses the blocks can be told from the error inside them.
    let skips: Vec<f64> = run.latest.as_ref().map_or_else(Vec::new, |p| {
        p.layers
            .iter()
            .map(|l| l.skip_delta.map_or(f64::NAN, |v| log10(v) as f64))
            .collect()
    });
    if metric == Metric::Delta && skips.len() == n && skips.iter().any(|v| v.is_finite()) {
        for c in 0..columns {
            let (a, b) = (
                c * n / columns,
                ((c + 1) * n / columns).max(c * n / columns + 1),
            );
            if let Some(mean) = mean_log(&skips, a..b).filter(|m| *m > d.lo && *m < d.hi) {
                let y = row_of(plot, d.level(mean));
                buf[(x_of(c) + bar_w / 2, y)]
                    .set_char('◆')
                    .set_style(theme.theory());
            }
        }
    }
    let y = inner.bottom() - 1;
    put(
        buf,
        left,
        y,
        &run.layers[0],
        plot.right() - left,
        theme.dim(),
    );
    let end = run.layers.last().map_or("", String::as_str);
    let last_bar_end = x_of(columns - 1) + bar_w;
    let end_x = last_bar_end
        .saturating_sub(end.chars().count() as u16)
        .max(plot.x);
    put(buf, end_x, y, end, inner.right() - end_x, theme.dim());
    // "input → output" between the two end labels, when it fits with a space either side.
    let mid = "input → output";
    let len = mid.chars().count() as u16;
    let from = left + run.layers[0].chars().count() as u16 + 1;
    if end_x > from + len {
        put(
            buf,
            from + (end_x - 1 - from - len) / 2,
            y,
            mid,
            len,
            theme.dim(),
        );
    }
}

fn heatmap(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let metric = run.view.metric;
    let h = &run.history;
    let n = run.layers.len();
    let mut block = panel(
        theme,
        format!(" Heatmap · log10 {} ", metric.label()),
        focused,
    );
    let inner = block.inner(area);
    let lw = label_width(run);
    let cells = inner.width.saturating_sub(lw + 1) as usize;
    let all = (0..h.len()).flat_map(|c| (0..n).map(move |l| h.get(c, l, metric) as f64));
    let scale = if n > 0 && !h.is_empty() && cells > 0 {
        Decades::around(all)
    } else {
        None
    };
    let Some(d) = scale else {
        block.render(area, buf);
        waiting(run, theme, inner, buf);
        return;
    };
    let (first, shown) = window(run, Panel::Heatmap, inner.height, n);
    if let Some(note) = scroll_note(first, shown, n, theme) {
        block = block.title(note);
    }
    let last_step = run.latest.as_ref().map_or(0, |p| p.step);
    let mut legend = vec![Span::raw(format!(" {} ", decade(d.lo)))];
    for i in 0..5 {
        let (g, s) = theme.heat((i as f64 + 0.5) / 5.0);
        legend.push(Span::styled(g.to_string(), s));
    }
    legend.push(Span::raw(format!(
        " {} · steps 0–{last_step} ",
        decade(d.hi)
    )));
    block.title_bottom(Line::from(legend)).render(area, buf);

    let cols = h.len();
    let used = cols.min(cells);
    for (row, l) in (first..first + shown).enumerate() {
        let y = inner.y + row as u16;
        put(buf, inner.x, y, &run.layers[l], lw, Style::default());
        for j in 0..used {
            let (a, b) = (
                j * cols / used,
                ((j + 1) * cols / used).max(j * cols / used + 1),
            );
            let vals: Vec<f64> = (a..b)
                .map(|c| h.get(c, l, metric) as f64)
                .filter(|v| v.is_finite())
                .collect();
            let x = inner.x + lw + 1 + j as u16;
            if vals.is_empty() {
                continue;
            }
            let (g, s) = theme.heat(d.level(vals.iter().sum::<f64>() / vals.len() as f64));
            buf[(x, y)].set_char(g).set_style(s);
        }
    }
}

fn chart<'a>(
    series: &'a [(&'a Series, Style, Marker, GraphType)],
    x_max: f64,
    y: (f64, f64),
    labels: [String; 2],
    theme: &Theme,
) -> Chart<'a> {
    let datasets = series
        .iter()
        .map(|(s, style, marker, kind)| {
            Dataset::default()
                .data(&s.points)
                .style(*style)
                .marker(*marker)
                .graph_type(*kind)
        })
        .collect();
    Chart::new(datasets)
        .x_axis(Axis::default().bounds([0.0, x_max]))
        .y_axis(
            Axis::default()
                .bounds([y.0, y.1])
                .labels(labels.to_vec())
                .style(theme.dim()),
        )
}

fn loss(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool, roomy: bool) {
    let last = |s: &Series| s.last().map(|p| p.1);
    let split = roomy && run.classify && area.height >= 12;
    let mut title = String::from(" Loss");
    match (last(&run.loss), last(&run.test_loss)) {
        (Some(a), Some(t)) if roomy => {
            title += &format!(" · train {} · test {}", num(a, 4), num(t, 4))
        }
        (Some(a), Some(t)) => title += &format!(" {}/{}", num(a, 3), num(t, 3)),
        (Some(a), None) => title += &format!(" {}", num(a, 4)),
        _ => {}
    }
    if !split && let Some(a) = last(&run.accuracy) {
        title += &format!(" · acc {:.0}%", 100.0 * a);
        if let Some(t) = last(&run.test_accuracy) {
            title += &format!("/{:.0}%", 100.0 * t);
        }
    }
    title.push(' ');
    let block = panel(theme, title, focused).title_bottom(
        Line::from(vec![
            Span::styled(" ⣀ train", theme.train_series()),
            Span::styled(" • test ", theme.test_series()),
        ])
        .right_aligned(),
    );
    let inner = block.inner(area);
    block.render(area, buf);
    if run.loss.points.is_empty() || inner.height < 2 || inner.width < 10 {
        waiting(run, theme, inner, buf);
        return;
    }
    let x_max = (run.total.saturating_sub(1)).max(1) as f64;
    let (loss_area, acc_area) = if split {
        let [a, b] =
            Layout::vertical([Constraint::Percentage(60), Constraint::Fill(1)]).areas(inner);
        (a, Some(b))
    } else {
        (inner, None)
    };
    // The y range hugs the data: a loss going from 0.69 to 0.68 should still show a slope.
    let ys = run
        .loss
        .points
        .iter()
        .chain(&run.test_loss.points)
        .map(|p| p.1);
    let (lo, hi) = ys
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.01).max(1e-9);
        // A loss is never negative: keep 0 as the floor rather than pad below it.
        (
            if lo >= 0.0 {
                (lo - pad).max(0.0)
            } else {
                lo - pad
            },
            hi + pad,
        )
    } else {
        (0.0, 1.0)
    };
    // Held-out points first, so the training line is drawn over them.
    let series = [
        (
            &run.test_loss,
            theme.test_series(),
            Marker::Dot,
            GraphType::Scatter,
        ),
        (
            &run.loss,
            theme.train_series(),
            Marker::Braille,
            GraphType::Line,
        ),
    ];
    chart(&series, x_max, (lo, hi), [num(lo, 2), num(hi, 2)], theme).render(loss_area, buf);
    if let Some(acc_area) = acc_area {
        let acc = [
            (
                &run.test_accuracy,
                theme.test_series(),
                Marker::Dot,
                GraphType::Scatter,
            ),
            (
                &run.accuracy,
                theme.train_series(),
                Marker::Braille,
                GraphType::Line,
            ),
        ];
        let a =
            last(&run.accuracy).map_or(String::new(), |a| format!(" accuracy {:.1}%", 100.0 * a));
        let t = last(&run.test_accuracy)
            .map_or(String::new(), |t| format!(" · test {:.1}%", 100.0 * t));
        let [head, plot] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(acc_area);
        put(
            buf,
            head.x,
            head.y,
            &format!("{a}{t}"),
            head.width,
            theme.dim(),
        );
        chart(&acc, x_max, (0.0, 1.0), ["0%".into(), "100%".into()], theme).render(plot, buf);
    }
}

fn saturation(run: &RunState, theme: &Theme, area: Rect, buf: &mut Buffer, focused: bool) {
    let mut block = panel(theme, " Saturation ", focused);
    let inner = block.inner(area);
    let n = run.layers.len();
    let Some(p) = run.latest.as_ref().filter(|_| n > 0 && inner.height >= 2) else {
        block.render(area, buf);
        waiting(run, theme, inner, buf);
        return;
    };
    let (first, shown) = window(run, Panel::Saturation, inner.height - 1, n);
    if let Some(note) = scroll_note(first, shown, n, theme) {
        block = block.title(note);
    }
    block.render(area, buf);
    let lw = label_width(run);
    let stats_w = 17u16;
    let bar_w = inner.width.saturating_sub(lw + 1 + 5 + stats_w);
    let dim = theme.dim();
    put(buf, inner.x + lw + 1, inner.y, "share of units", bar_w, dim);
    put(
        buf,
        inner.x + lw + 1 + bar_w + 5,
        inner.y,
        " act mean   std",
        stats_w,
        dim,
    );
    for (row, l) in (first..first + shown).enumerate() {
        let y = inner.y + 1 + row as u16;
        let lp = &p.layers[l];
        put(buf, inner.x, y, &run.layers[l], lw, Style::default());
        let x = inner.x + lw + 1;
        if l + 1 == n {
            put(buf, x, y, "logits: no activation", bar_w + 5, dim);
        } else {
            let full = ((lp.saturation.clamp(0.0, 1.0) * bar_w as f64).round() as u16).min(bar_w);
            let style = sat_style(lp.saturation, theme);
            put(buf, x, y, &"█".repeat(full as usize), bar_w, style);
            put(
                buf,
                x + full,
                y,
                &"░".repeat((bar_w - full) as usize),
                bar_w - full,
                dim,
            );
            put(
                buf,
                x + bar_w,
                y,
                &format!("{:>4.0}%", 100.0 * lp.saturation),
                5,
                style,
            );
        }
        put(
            buf,
            x + bar_w + 5,
            y,
            &format!(" {:>+8.3} {:>6.3}", lp.act_mean, lp.act_std),
            stats_w,
            Style::default(),
        );
    }
}
