//! The Diff screen: two ledger entries side by side — what differs in their configs and
//! environments, their metrics with the change from A to B, and both ‖δ‖ profiles drawn
//! on one log scale so their bars compare directly.

use super::ledger::mini_chart;
use super::widgets::Decades;
use super::{footer, num, panel, put, sci, title_bar};
use crate::ledger::Entry;
use crate::ledger::render::config_differences;
use crate::tui::app::{App, ProbeAt};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

/// Width of the metrics panel: name, A, B and B − A columns.
const METRICS_W: u16 = 42;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let lg = &app.ledger;
    let [top, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    footer(
        theme,
        &[
            ("f", "first/last probe"),
            ("esc", "ledger"),
            ("?", "help"),
            ("q", "quit"),
        ],
        app.flash.as_deref(),
        foot,
        buf,
    );
    let pair = lg
        .diff
        .and_then(|(a, b)| Some((lg.by_seq(a)?, lg.by_seq(b)?)));
    let Some((a, b)) = pair else {
        title_bar(theme, vec![Span::raw("│ Diff")], vec![], top, buf);
        Paragraph::new("The entries to diff are no longer in the ledger: esc goes back.")
            .block(panel(theme, " Diff ", false))
            .render(body, buf);
        return;
    };
    title_bar(
        theme,
        vec![Span::raw(format!(
            "│ Diff │ A #{} {}  vs  B #{} {}",
            a.seq, a.experiment, b.seq, b.experiment
        ))],
        vec![Span::raw(format!(" ‖δ‖ at the {} ", lg.at.name()))],
        top,
        buf,
    );
    let differences = differences(a, b);
    let cfg_w = body.width.saturating_sub(METRICS_W + 2);
    let cfg_rows: usize = differences.iter().map(|d| diff_rows(d, cfg_w)).sum();
    let upper_h = (cfg_rows.max(8) as u16 + 2).min(body.height / 2);
    let [upper, lower] =
        Layout::vertical([Constraint::Length(upper_h), Constraint::Fill(1)]).areas(body);
    let [cfg, met] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(METRICS_W)]).areas(upper);
    config_panel(theme, &differences, cfg, buf);
    metrics_panel(theme, a, b, lg.at, met, buf);
    profiles(theme, a, b, lg.at, lower, buf);
}

/// Config keys, then environment fields, whose values differ: (key, A, B).
fn differences(a: &Entry, b: &Entry) -> Vec<(String, String, String)> {
    let mut out = config_differences(&a.config, &b.config);
    for (f, x, y) in a.code.differences(&b.code) {
        out.push((format!("code.{f}"), x, y));
    }
    let (fa, fb) = (a.host.features_text(), b.host.features_text());
    let env = [
        ("backend", &a.execution.backend, &b.execution.backend),
        ("host.cpu", &a.host.cpu, &b.host.cpu),
        ("host.cpu_features", &fa, &fb),
        ("host.os", &a.host.os, &b.host.os),
    ];
    for (k, x, y) in env {
        if x != y {
            out.push((k.to_string(), x.clone(), y.clone()));
        }
    }
    if a.execution.threads != b.execution.threads {
        out.push((
            "threads".into(),
            a.execution.threads.to_string(),
            b.execution.threads.to_string(),
        ));
    }
    out
}

/// Width of the key column: the longest key, at most half the panel.
fn key_width(diffs: &[(String, String, String)], width: u16) -> u16 {
    diffs
        .iter()
        .map(|d| d.0.chars().count())
        .max()
        .unwrap_or(0)
        .min(width as usize / 2) as u16
}

/// Rows one difference takes at `width`: `key A → B` on one, or B under A on a second.
fn diff_rows((k, x, y): &(String, String, String), width: u16) -> usize {
    let one = k.chars().count().max(1) + 1 + x.chars().count() + 3 + y.chars().count();
    if one <= width as usize { 1 } else { 2 }
}

fn config_panel(theme: &Theme, diffs: &[(String, String, String)], area: Rect, buf: &mut Buffer) {
    let block = panel(theme, " Config and environment · A → B ", false);
    let inner = block.inner(area);
    block.render(area, buf);
    if diffs.is_empty() {
        put(
            buf,
            inner.x,
            inner.y,
            "identical configs and environments",
            inner.width,
            theme.dim(),
        );
        return;
    }
    let key_w = key_width(diffs, inner.width);
    let x0 = inner.x + key_w + 1;
    let value_w = inner.right().saturating_sub(x0);
    let mut row = inner.y;
    for (i, d) in diffs.iter().enumerate() {
        let rows = diff_rows(d, key_w + 1 + value_w) as u16;
        // Keep the last row for "… more" unless this is the last difference.
        let room = inner.bottom().saturating_sub(row);
        if rows > room || (i + 1 < diffs.len() && rows == room) {
            put(
                buf,
                inner.x,
                row.min(inner.bottom().saturating_sub(1)),
                &format!(
                    "… {} more: gradlab ledger diff lists them all",
                    diffs.len() - i
                ),
                inner.width,
                theme.dim(),
            );
            return;
        }
        let (k, x, y) = d;
        put(buf, inner.x, row, k, key_w, theme.dim());
        let arrow = |y: &str| {
            vec![
                Span::styled(" → ", theme.dim()),
                Span::styled(y.to_string(), theme.bold()),
            ]
        };
        if rows == 1 {
            let mut spans = vec![Span::raw(x.clone())];
            spans.extend(arrow(y));
            Line::from(spans).render(Rect::new(x0, row, value_w, 1), buf);
        } else {
            put(buf, x0, row, x, value_w, Style::default());
            Line::from(arrow(y)).render(
                Rect::new(x0.saturating_sub(1), row + 1, value_w + 1, 1),
                buf,
            );
        }
        row += rows;
    }
}

/// ‖δ‖ of the first layer over the output layer's, at probe `at`.
fn in_out(e: &Entry, at: ProbeAt) -> Option<f64> {
    let first = at.delta(e.layers.first()?)?;
    let out = at.delta(e.layers.last()?)?;
    (out > 0.0).then(|| first / out)
}

fn metrics_panel(theme: &Theme, a: &Entry, b: &Entry, at: ProbeAt, area: Rect, buf: &mut Buffer) {
    let block = panel(theme, " Metrics ", false);
    let inner = block.inner(area);
    block.render(area, buf);
    let (ma, mb) = (&a.metrics, &b.metrics);
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| num(v, 4));
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1}%", 100.0 * v));
    let delta = |x: Option<f64>, y: Option<f64>, f: &dyn Fn(f64) -> String| {
        x.zip(y).map_or("—".to_string(), |(x, y)| f(y - x))
    };
    let signed = |d: f64| {
        if d > 0.0 {
            format!("+{}", num(d, 4))
        } else {
            num(d, 4)
        }
    };
    let signed_pct = |d: f64| format!("{:+.1}%", 100.0 * d);
    let (ra, rb) = (in_out(a, at), in_out(b, at));
    let rows: Vec<[String; 4]> = vec![
        [
            "".into(),
            format!("A #{}", a.seq),
            format!("B #{}", b.seq),
            "B − A".into(),
        ],
        [
            "steps".into(),
            ma.steps_done.to_string(),
            mb.steps_done.to_string(),
            format!("{:+}", mb.steps_done as i64 - ma.steps_done as i64),
        ],
        [
            "train loss".into(),
            opt(ma.train_loss),
            opt(mb.train_loss),
            delta(ma.train_loss, mb.train_loss, &signed),
        ],
        [
            "train acc".into(),
            pct(ma.train_accuracy),
            pct(mb.train_accuracy),
            delta(ma.train_accuracy, mb.train_accuracy, &signed_pct),
        ],
        [
            "test loss".into(),
            opt(ma.test_loss),
            opt(mb.test_loss),
            delta(ma.test_loss, mb.test_loss, &signed),
        ],
        [
            "test acc".into(),
            pct(ma.test_accuracy),
            pct(mb.test_accuracy),
            delta(ma.test_accuracy, mb.test_accuracy, &signed_pct),
        ],
        [
            "δ in/out".into(),
            ra.map_or("—".into(), sci),
            rb.map_or("—".into(), sci),
            // Ratios span decades: the change is a factor, not a difference.
            ra.zip(rb)
                .filter(|(x, _)| *x > 0.0)
                .map_or("—".into(), |(x, y)| format!("×{}", sci(y / x))),
        ],
        [
            "wall s".into(),
            format!("{:.1}", ma.wall_s),
            format!("{:.1}", mb.wall_s),
            format!("{:+.1}", mb.wall_s - ma.wall_s),
        ],
    ];
    for (i, r) in rows.iter().enumerate().take(inner.height as usize) {
        let y = inner.y + i as u16;
        let style = if i == 0 {
            theme.dim()
        } else {
            Default::default()
        };
        put(buf, inner.x, y, &r[0], 10, theme.dim());
        put(
            buf,
            inner.x + 10,
            y,
            &format!("{:>9} {:>9} {:>9}", r[1], r[2], r[3]),
            inner.width.saturating_sub(10),
            style,
        );
    }
}

/// Both profiles at probe `at`, side by side on one scale.
fn profiles(theme: &Theme, a: &Entry, b: &Entry, at: ProbeAt, area: Rect, buf: &mut Buffer) {
    let logs = |e: &Entry| -> Vec<f64> {
        e.layers
            .iter()
            .map(|l| at.delta(l).map_or(f64::NAN, f64::log10))
            .collect()
    };
    let (la, lb) = (logs(a), logs(b));
    let halves = Layout::horizontal([Constraint::Ratio(1, 2); 2]).split(area);
    let d = Decades::around(la.iter().chain(&lb).copied());
    for ((tag, e, logs), half) in [("A", a, &la), ("B", b, &lb)]
        .into_iter()
        .zip(halves.iter())
    {
        let block = panel(
            theme,
            format!(" {tag} #{} {} · {} ", e.seq, e.experiment, at.name()),
            false,
        );
        let inner = block.inner(*half);
        block.render(*half, buf);
        let Some(d) = d else {
            put(
                buf,
                inner.x,
                inner.y,
                "no ‖δ‖ recorded",
                inner.width,
                theme.dim(),
            );
            continue;
        };
        let caption = format!(
            "‖δ‖ log10 · {} layers · in/out {}",
            e.layers.len(),
            in_out(e, at).map_or("—".into(), sci)
        );
        put(buf, inner.x, inner.y, &caption, inner.width, theme.dim());
        let tail = "input → output";
        let tw = tail.chars().count() as u16;
        if inner.width > caption.chars().count() as u16 + tw + 2 {
            put(buf, inner.right() - tw, inner.y, tail, tw, theme.dim());
        }
        let out = logs.last().copied().unwrap_or(f64::NAN);
        mini_chart(theme, logs, out, d, inner, buf);
    }
}
