//! The Ledger screen: the entries as a table (newest first), the selected entry's details
//! with its ‖δ‖ profile at the first and the last probe, and what replay, verify and
//! export last said, in place above the footer.

use super::compare::GLYPHS;
use super::widgets::{Decades, decade, depth_bars};
use super::{footer, num, panel, put, title_bar, wrapped_height};
use crate::ledger::render as text;
use crate::ledger::{Entry, EntryKind, LayerProfile, Verdict, VerdictKind};
use crate::train::Status;
use crate::tui::app::{App, ExportStatus, LedgerState, Load, ProbeAt, ReplayStatus, VerifyStatus};
use crate::tui::regime::Regime;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

/// At most this many lines for the replay, verify and export notes together.
const ACTIVITY_MAX: u16 = 5;
/// Width from which the table spells times and hashes out in full.
const WIDE: u16 = 120;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let lg = &app.ledger;
    let activity = activity(lg, theme, area.width);
    let act_h = if activity.is_empty() {
        0
    } else {
        wrapped_height(&activity, area.width).min(ACTIVITY_MAX)
    };
    let [top, body, act, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(act_h),
        Constraint::Length(1),
    ])
    .areas(area);
    title(lg, theme, top, buf);
    match (&lg.load, lg.selected_entry()) {
        (Load::Off, _) => note(
            theme,
            " Ledger ",
            vec![Line::from(
                "This session keeps no ledger (--no-ledger): its runs are not recorded.",
            )],
            body,
            buf,
        ),
        (Load::Failed(e), _) => damaged(theme, e, body, buf),
        (_, None) => {
            let msg = if lg.load == Load::Ready {
                format!(
                    "No entries yet in {}/: every run started here or with `gradlab run` is recorded.",
                    lg.dir
                        .as_deref()
                        .unwrap_or(std::path::Path::new("ledger"))
                        .display()
                )
            } else {
                "reading the ledger…".into()
            };
            note(
                theme,
                " Ledger ",
                vec![Line::styled(msg, theme.dim())],
                body,
                buf,
            );
        }
        (_, Some(entry)) => {
            let wide = area.width >= WIDE;
            // A short ledger's table takes only its rows; the details get the rest.
            let table_h = if wide {
                (lg.entries.len() as u16 + 3).clamp(5, body.height * 9 / 20)
            } else {
                body.height.saturating_sub(12).max(5)
            };
            let [t, d] =
                Layout::vertical([Constraint::Length(table_h), Constraint::Min(0)]).areas(body);
            table(lg, theme, t, buf, wide);
            details(lg, entry, theme, d, buf, wide);
        }
    }
    Paragraph::new(activity)
        .wrap(Wrap { trim: false })
        .render(act, buf);
    footer(
        theme,
        &[
            ("r", "replay"),
            ("m", "mark"),
            ("d", "diff"),
            ("c", "compare"),
            ("w", "sweep"),
            ("v", "verify"),
            ("x", "export"),
            ("esc", "back"),
            ("↑↓", "select"),
            ("?", "help"),
            ("q", "quit"),
        ],
        app.flash.as_deref(),
        foot,
        buf,
    );
}

fn title(lg: &LedgerState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let dir = lg
        .dir
        .as_ref()
        .map_or("no ledger".into(), |d| format!("{}/", d.display()));
    let n = lg.entries.len();
    let mut left = format!("│ Ledger │ {dir}");
    if matches!(lg.load, Load::Ready | Load::Reading) {
        left += &format!(" │ {n} entr{}", if n == 1 { "y" } else { "ies" });
    }
    let mut right = String::new();
    if lg.load == Load::Reading {
        right += " reading…";
    }
    if !lg.marked.is_empty() {
        right += &format!(" {} marked", lg.marked.len());
    }
    if !right.is_empty() {
        right.push(' ');
    }
    title_bar(
        theme,
        vec![Span::raw(left)],
        vec![Span::raw(right)],
        area,
        buf,
    );
}

fn note(theme: &Theme, title: &str, lines: Vec<Line>, area: Rect, buf: &mut Buffer) {
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(panel(theme, title.to_string(), false))
        .render(area, buf);
}

/// A ledger that cannot be read: what is wrong and what to do, never a crash.
fn damaged(theme: &Theme, error: &str, area: Rect, buf: &mut Buffer) {
    let lines = vec![
        Line::styled("✗ The ledger cannot be read.", theme.error()),
        Line::from(""),
        Line::from(error.to_string()),
        Line::from(""),
        Line::styled(
            "v verifies every entry and names the first bad one. Runs are not recorded until \
             it is repaired: `gradlab ledger repair` moves a torn last line aside.",
            theme.dim(),
        ),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(panel(theme, " Ledger · damaged ", true).border_style(theme.error()))
        .render(area, buf);
}

/// The style of a run status, as on the Run screen.
fn status_style(s: Status, theme: &Theme) -> Style {
    match s {
        Status::Completed => theme.ok(),
        Status::Interrupted => theme.warn(),
        Status::Diverged | Status::Failed => theme.error(),
    }
}

fn verdict_style(v: &Verdict, theme: &Theme) -> Style {
    match v.result {
        VerdictKind::Exact => theme.ok(),
        VerdictKind::Close => theme.warn(),
        VerdictKind::Diverged => theme.error(),
    }
}

/// The seq of the entry whose hash is `hash`, as "#3" (or the hash's start if it is gone).
fn seq_of(lg: &LedgerState, hash: &str) -> String {
    lg.entries.iter().find(|e| e.hash == hash).map_or_else(
        || hash[..8.min(hash.len())].to_string(),
        |e| format!("#{}", e.seq),
    )
}

/// "2025-05-14 12:03:44" from the RFC 3339 stamp; "05-14 12:03" when `short`.
fn when(stamp: &str, short: bool) -> String {
    let s = stamp.trim_end_matches('Z').replacen('T', " ", 1);
    match (short, s.get(5..16)) {
        (true, Some(mmdd_hhmm)) => mmdd_hhmm.to_string(),
        _ => s,
    }
}

/// The mark of an entry: its symbol on the Compare screen, in its colour; `+` for marks
/// past the symbols there are (Compare draws the first ones only).
pub fn mark<'a>(lg: &LedgerState, seq: u64, theme: &Theme) -> Span<'a> {
    match lg.marked.iter().position(|&s| s == seq) {
        Some(i) if i < GLYPHS.len() => Span::styled(GLYPHS[i], theme.series(i)),
        Some(_) => Span::styled("+", theme.dim()),
        None => Span::raw(" "),
    }
}

fn table(lg: &LedgerState, theme: &Theme, area: Rect, buf: &mut Buffer, wide: bool) {
    let block = panel(theme, " Entries · newest first ", true);
    // Rows are built for the visible window only: a ledger of thousands of entries costs
    // a frame what a short one does.
    let visible = area.height.saturating_sub(3).max(1) as usize;
    let first = lg.selected.saturating_sub(visible - 1);
    let seq_w = lg
        .entries
        .last()
        .map_or(1, |e| e.seq.to_string().len())
        .max(3);
    // Names as wide as the longest (within reason), the spare width at the end of the row.
    let name_w = lg
        .entries
        .iter()
        .map(|e| e.experiment.chars().count())
        .max()
        .unwrap_or(10)
        .clamp(10, 32) as u16;
    let rows = (first..(first + visible).min(lg.entries.len())).filter_map(|r| {
        let e = lg.row(r)?;
        let status = Span::styled(e.status.name(), status_style(e.status, theme));
        let replay = match (&e.kind, &e.replay_of, &e.verdict) {
            (EntryKind::Replay, Some(of), Some(v)) => Some((seq_of(lg, of), v)),
            _ => None,
        };
        // A lesion study names the run it studied in place of a kind and a loss.
        let lesion = e.lesion_of.as_ref().map(|of| seq_of(lg, of));
        let config = e.config_hash.short();
        let loss = format!(
            "{:>8}",
            e.metrics.train_loss.map_or("—".into(), |l| num(l, 4))
        );
        let mut cells = vec![
            Cell::from(mark(lg, e.seq, theme)),
            Cell::from(format!("{:>seq_w$}", e.seq)),
            Cell::from(when(&e.started, !wide)),
            Cell::from(e.experiment.clone()),
            Cell::from(
                if wide {
                    config
                } else {
                    &config[..8.min(config.len())]
                }
                .to_string(),
            ),
        ];
        if wide {
            let kind = match replay {
                Some((of, v)) => Span::styled(
                    format!("replay of {of}: {}", text::verdict_word(v)),
                    verdict_style(v, theme),
                ),
                None => match &lesion {
                    Some(of) => Span::styled(format!("lesion of {of}"), theme.dim()),
                    None => Span::styled("run", theme.dim()),
                },
            };
            cells.extend([Cell::from(status), Cell::from(loss), Cell::from(kind)]);
        } else {
            // Narrow: a replay's verdict stands in for its status (the details have both).
            let result = match replay {
                Some((of, v)) => Span::styled(
                    format!("↺ {of} {}", text::verdict_word(v)),
                    verdict_style(v, theme),
                ),
                None => match &lesion {
                    Some(of) => Span::styled(format!("✂ {of}"), theme.dim()),
                    None => status,
                },
            };
            cells.extend([Cell::from(result), Cell::from(loss)]);
        }
        Some(Row::new(cells))
    });
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(seq_w as u16),
        Constraint::Length(if wide { 19 } else { 11 }),
        if wide {
            Constraint::Length(name_w)
        } else {
            Constraint::Fill(1)
        },
        Constraint::Length(if wide { 12 } else { 8 }),
    ];
    let mut header = vec![
        String::new(),
        format!("{:>seq_w$}", "seq"),
        if wide { "started (UTC)" } else { "started" }.to_string(),
        "experiment".into(),
        "config".into(),
    ];
    if wide {
        widths.extend([
            Constraint::Length(11),
            Constraint::Length(8),
            Constraint::Fill(1),
        ]);
        header.extend(["status", "    loss", "kind"].map(String::from));
    } else {
        widths.extend([Constraint::Length(14), Constraint::Length(8)]);
        header.extend(["status", "    loss"].map(String::from));
    }
    let t = Table::new(rows, widths)
        .header(Row::new(header).style(theme.dim()))
        .block(block)
        .column_spacing(1)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(Some(lg.selected - first));
    StatefulWidget::render(t, area, buf, &mut state);
}

fn details(lg: &LedgerState, e: &Entry, theme: &Theme, area: Rect, buf: &mut Buffer, wide: bool) {
    let block = panel(
        theme,
        format!(" Entry {} · {} ", e.seq, e.short_hash()),
        false,
    );
    let inner = block.inner(area);
    block.render(area, buf);
    let text_w = if wide {
        inner.width / 2
    } else {
        44.min(inner.width)
    };
    let [left, _, right] = Layout::horizontal([
        Constraint::Length(text_w),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(inner);
    Paragraph::new(facts(lg, e, theme, wide)).render(left, buf);
    profiles(theme, &e.layers, right, buf);
}

/// The entry's facts, one per line, label first.
fn facts<'a>(lg: &LedgerState, e: &Entry, theme: &Theme, wide: bool) -> Vec<Line<'a>> {
    let dim = theme.dim();
    let row = |k: &str, v: Vec<Span<'a>>| {
        let mut spans = vec![Span::styled(format!("{k:<8}"), dim)];
        spans.extend(v);
        Line::from(spans)
    };
    let plain = |k: &str, v: String| row(k, vec![Span::raw(v)]);
    let mut status = vec![
        Span::styled(e.experiment.clone(), theme.bold()),
        Span::raw(" · "),
        Span::styled(e.status.name(), status_style(e.status, theme)),
    ];
    if let Some(at) = e.diverged_at {
        status.push(Span::raw(format!(" at step {at}")));
    }
    let m = &e.metrics;
    let pct = |v: Option<f64>| v.map_or("—".into(), |a| format!("{:.1}%", 100.0 * a));
    let loss = |v: Option<f64>| v.map_or("—".into(), |l| num(l, 4));
    let c = &e.code;
    let commit = match (&c.git_commit, c.git_dirty) {
        (Some(h), Some(true)) => format!("{} + changes", &h[..10.min(h.len())]),
        (Some(h), _) => h[..10.min(h.len())].to_string(),
        (None, _) => "no git checkout".into(),
    };
    // "rustc 1.95.0 (hash date)": the version is what tells two builds apart at a glance.
    let rustc = c.rustc.split_whitespace().nth(1).unwrap_or(&c.rustc);
    let config = &e.config_hash.0;
    let mut lines = vec![
        row("", status),
        plain(
            "config",
            if wide {
                config.clone()
            } else {
                format!("{}…", &config[..24.min(config.len())])
            },
        ),
        plain(
            "started",
            format!("{} UTC · {:.1} s", when(&e.started, false), m.wall_s),
        ),
        plain(
            "steps",
            format!(
                "{}/{} · {} probe{}",
                m.steps_done,
                m.steps_planned,
                m.probes,
                if m.probes == 1 { "" } else { "s" }
            ),
        ),
        plain(
            "loss",
            format!("train {} · test {}", loss(m.train_loss), loss(m.test_loss)),
        ),
        plain(
            "acc",
            format!(
                "train {} · test {}",
                pct(m.train_accuracy),
                pct(m.test_accuracy)
            ),
        ),
        plain(
            "code",
            format!("gradlab {} · {commit} · {}", c.crate_version, c.profile),
        ),
        plain(
            "build",
            format!("rustc {rustc} · burn {} · {}", c.burn, c.target),
        ),
        plain(
            "env",
            format!(
                "{} · {} thread{} · {} {} · {}",
                e.execution.backend,
                e.execution.threads,
                if e.execution.threads == 1 { "" } else { "s" },
                e.host.os,
                e.host.arch,
                e.host.cpu
            ),
        ),
    ];
    if let Some(err) = &e.error {
        lines.push(row("error", vec![Span::styled(err.clone(), theme.error())]));
    }
    if let Some(of) = &e.lesion_of {
        lines.push(row(
            "lesion",
            vec![Span::raw(format!(
                "a lesion study of {} (`gradlab lesion`; `plot --kind lesion`)",
                seq_of(lg, of)
            ))],
        ));
    }
    // The verdict in place: a replay's own, or every replay of this run.
    match (&e.replay_of, &e.verdict) {
        (Some(of), Some(v)) => lines.push(row(
            "replay",
            vec![Span::styled(
                format!("of {}: {}", seq_of(lg, of), text::verdict(v)),
                verdict_style(v, theme),
            )],
        )),
        _ => {
            let replays: Vec<Span> = lg
                .entries
                .iter()
                .filter(|r| r.replay_of.as_deref() == Some(e.hash.as_str()))
                .filter_map(|r| {
                    let v = r.verdict.as_ref()?;
                    Some(Span::styled(
                        format!("#{} {}  ", r.seq, text::verdict_word(v)),
                        verdict_style(v, theme),
                    ))
                })
                .collect();
            if !replays.is_empty() {
                lines.push(row("replays", replays));
            }
        }
    }
    if !e.tags.is_empty() {
        lines.push(plain("tags", e.tags.join(", ")));
    }
    lines
}

/// ‖δ‖ by depth at the first probe over the same at the last, on one log scale, each bar
/// in its regime's colour.
pub fn profiles(theme: &Theme, layers: &[LayerProfile], area: Rect, buf: &mut Buffer) {
    let at = [ProbeAt::First, ProbeAt::Last];
    let logs: Vec<Vec<f64>> = at
        .iter()
        .map(|p| {
            layers
                .iter()
                .map(|l| p.delta(l).map_or(f64::NAN, f64::log10))
                .collect()
        })
        .collect();
    let Some(d) = Decades::around(logs.iter().flatten().copied()).filter(|_| area.height >= 6)
    else {
        put(
            buf,
            area.x,
            area.y,
            "no ‖δ‖ recorded",
            area.width,
            theme.dim(),
        );
        return;
    };
    let halves = Layout::vertical([Constraint::Ratio(1, 2); 2]).split(area);
    for ((p, logs), half) in at.iter().zip(&logs).zip(halves.iter()) {
        let out = logs.last().copied().unwrap_or(f64::NAN);
        let head = format!("‖δ‖ at the {} · log10", p.name());
        put(buf, half.x, half.y, &head, half.width, theme.dim());
        let tail = "input → output";
        let tw = tail.chars().count() as u16;
        if half.width > head.chars().count() as u16 + tw + 2 {
            put(buf, half.right() - tw, half.y, tail, tw, theme.dim());
        }
        mini_chart(theme, logs, out, d, *half, buf);
    }
}

/// One small log bar chart under a title row: decade labels on the left, bars coloured by
/// regime against `out` (the output layer's log10).
pub fn mini_chart(theme: &Theme, logs: &[f64], out: f64, d: Decades, area: Rect, buf: &mut Buffer) {
    let axis = 6;
    if area.height < 3 || area.width <= axis + 2 {
        return;
    }
    let plot = Rect {
        x: area.x + axis,
        y: area.y + 1,
        width: area.width - axis,
        height: area.height - 1,
    };
    put(buf, area.x, plot.y, &decade(d.hi), axis - 1, theme.dim());
    put(
        buf,
        area.x,
        plot.bottom() - 1,
        &decade(d.lo),
        axis - 1,
        theme.dim(),
    );
    let out = 10f64.powf(out);
    depth_bars(buf, plot, logs, d, |range| {
        let worst = range
            .filter(|&l| logs[l].is_finite())
            .map(|l| Regime::classify(10f64.powf(logs[l]), out))
            .max_by_key(|r| match r {
                Regime::Exploding => 3,
                Regime::Vanishing => 2,
                Regime::Healthy => 1,
                Regime::Unknown => 0,
            })
            .unwrap_or(Regime::Unknown);
        theme.regime(worst)
    });
}

/// `text` cut to `width` characters, with `…` where it was cut.
fn fit(text: &str, width: u16) -> String {
    let width = width as usize;
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The notes of the replay, verify and export jobs, one or more lines each. A replay's
/// warnings (hashes of builds, CPU names) get one line: the CLI's `replay` prints them all.
fn activity<'a>(lg: &LedgerState, theme: &Theme, width: u16) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let name = |seq: u64| {
        lg.by_seq(seq)
            .map_or(format!("#{seq}"), |e| format!("#{seq} {}", e.experiment))
    };
    match &lg.replay {
        None => {}
        Some(ReplayStatus::Running {
            seq,
            step,
            total,
            stopping,
        }) => {
            let frac = if *total > 0 {
                (*step as f64 / *total as f64).min(1.0)
            } else {
                0.0
            };
            let w = 16;
            let full = (frac * w as f64).round() as usize;
            lines.push(Line::from(vec![
                Span::styled(format!(" ↺ replaying {} ", name(*seq)), theme.bold()),
                Span::styled("━".repeat(full), theme.ok()),
                Span::styled("─".repeat(w - full), theme.dim()),
                Span::raw(format!(" {step}/{total} steps · ")),
                if *stopping {
                    Span::styled("stopping…", theme.warn())
                } else {
                    Span::styled("s stops it", theme.dim())
                },
            ]));
        }
        Some(ReplayStatus::Done { seq, result }) => match result {
            Ok(r) if r.stopped => lines.push(Line::styled(
                format!(
                    " ↺ replay of {} stopped before the end: not recorded",
                    name(*seq)
                ),
                theme.warn(),
            )),
            Ok(r) => {
                let mut spans = vec![
                    Span::raw(format!(" ↺ replay of {}: ", name(*seq))),
                    Span::styled(text::verdict(&r.verdict), verdict_style(&r.verdict, theme)),
                ];
                if let Some((s, h)) = &r.recorded {
                    spans.push(Span::raw(format!(" — recorded as entry #{s} {h}")));
                }
                lines.push(Line::from(spans));
                if let Some(w) = r.warnings.first() {
                    let more = match r.warnings.len() {
                        1 => String::new(),
                        n => format!(" (+{} more)", n - 1),
                    };
                    let w = fit(
                        &format!("   warning: {w}"),
                        width.saturating_sub(more.len() as u16),
                    );
                    lines.push(Line::styled(format!("{w}{more}"), theme.warn()));
                }
            }
            Err(e) => lines.push(Line::from(vec![
                Span::styled(
                    format!(" ↺ replay of {} failed: ", name(*seq)),
                    theme.error(),
                ),
                Span::raw(e.clone()),
            ])),
        },
    }
    match &lg.verify {
        None => {}
        Some(VerifyStatus::Running) => lines.push(Line::styled(
            " verifying every entry and object…",
            theme.dim(),
        )),
        Some(VerifyStatus::Done(r)) if r.ok() => lines.push(Line::styled(
            format!(
                " ✓ verified: {} entr{}, {} object{}, every hash recomputed, chain intact",
                r.entries,
                if r.entries == 1 { "y" } else { "ies" },
                r.objects,
                if r.objects == 1 { "" } else { "s" }
            ),
            theme.ok(),
        )),
        Some(VerifyStatus::Done(r)) => {
            let first = r.first().map_or(String::new(), |p| format!("; first: {p}"));
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" ✗ verify FAILED: {} problem(s)", r.problems.len()),
                    theme.error(),
                ),
                Span::raw(first),
            ]));
        }
    }
    match &lg.export {
        None => {}
        Some(ExportStatus::Running(seq)) => lines.push(Line::styled(
            format!(" exporting the trace of {}…", name(*seq)),
            theme.dim(),
        )),
        Some(ExportStatus::Done { seq, result: Ok(x) }) => lines.push(Line::styled(
            format!(
                " exported the trace of {} ({} rows) to {}",
                name(*seq),
                x.rows,
                x.path.display()
            ),
            theme.ok(),
        )),
        Some(ExportStatus::Done {
            seq,
            result: Err(e),
        }) => lines.push(Line::from(vec![
            Span::styled(format!(" export of {} failed: ", name(*seq)), theme.error()),
            Span::raw(e.clone()),
        ])),
    }
    lines
}
