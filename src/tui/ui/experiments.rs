//! The Experiments screen: the folder's files as a table, and the selected one's canonical
//! config and hash (or its error) in a preview.

use super::{footer, panel, title_bar};
use crate::tui::app::{App, Focus};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = &app.theme;
    let ex = &app.experiments;
    let [top, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let invalid = ex.entries.iter().filter(|e| e.loaded.is_err()).count();
    let mut count = format!(
        " │ {} file{}",
        ex.entries.len(),
        if ex.entries.len() == 1 { "" } else { "s" }
    );
    if invalid > 0 {
        count += &format!(", {invalid} invalid");
    }
    title_bar(
        theme,
        vec![Span::raw(format!(
            "│ Experiments │ {}/{count}",
            ex.dir.display()
        ))],
        vec![Span::raw(" enter runs the selected file ")],
        top,
        buf,
    );
    let wide = area.width >= 120;
    let (list, preview) = if wide {
        let [l, p] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Fill(1)]).areas(body);
        (l, p)
    } else {
        let list_h = (ex.entries.len() as u16 + 3).clamp(5, body.height / 2);
        let [l, p] =
            Layout::vertical([Constraint::Length(list_h), Constraint::Fill(1)]).areas(body);
        (l, p)
    };
    table(app, theme, list, buf);
    preview_panel(app, theme, preview, buf);
    footer(
        theme,
        &[
            ("↑↓", "select"),
            ("enter", "run"),
            ("l", "ledger"),
            ("e", "edit"),
            ("r", "rescan"),
            ("tab", "preview"),
            ("?", "help"),
            ("q", "quit"),
        ],
        app.flash.as_deref(),
        foot,
        buf,
    );
}

fn table(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let ex = &app.experiments;
    let block = panel(theme, " Experiment files ", ex.focus == Focus::List);
    if ex.entries.is_empty() {
        let note = match &ex.dir_error {
            Some(e) => e.clone(),
            None => format!("no *.toml files in {}/", ex.dir.display()),
        };
        Paragraph::new(note)
            .style(theme.dim())
            .wrap(Wrap { trim: true })
            .block(block)
            .render(area, buf);
        return;
    }
    let name_w = ex
        .entries
        .iter()
        .map(|e| match &e.loaded {
            Ok(x) => x.name().chars().count(),
            Err(_) => e.file_name().chars().count(),
        })
        .max()
        .unwrap_or(4)
        .clamp(4, 24) as u16;
    let rows = ex.entries.iter().map(|e| match &e.loaded {
        Ok(x) => {
            let s = x.spec();
            Row::new(vec![
                Cell::from(x.name().to_string()),
                Cell::from(s.model.kind.name()),
                Cell::from(s.data.task.name()),
                Cell::from(format!("{:>5}", s.model.depth)),
                Cell::from(s.model.activation.name()),
                Cell::from(s.model.init.name()),
                Cell::from(Span::styled(s.experiment.description.clone(), theme.dim())),
            ])
        }
        Err(err) => Row::new(vec![
            Cell::from(e.file_name()),
            Cell::from(Span::styled("✗", theme.error())),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(Span::styled(short_error(&e.path, err), theme.error())),
        ]),
    });
    let widths = [
        Constraint::Length(name_w),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(10),
        Constraint::Length(13),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "name",
        "kind",
        "task",
        "depth",
        "activation",
        "init",
        "description",
    ])
    .style(theme.dim());
    let t = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(Some(ex.selected));
    StatefulWidget::render(t, area, buf, &mut state);
}

fn preview_panel(app: &App, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let ex = &app.experiments;
    let focused = ex.focus == Focus::Preview;
    let Some(entry) = ex.selected_entry() else {
        panel(theme, " Preview ", focused).render(area, buf);
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    let title = match &entry.loaded {
        Ok(x) => {
            if !x.spec().experiment.description.is_empty() {
                lines.push(Line::from(x.spec().experiment.description.clone()));
                lines.push(Line::from(""));
            }
            lines.push(Line::styled("config hash", theme.dim()));
            lines.push(Line::styled(x.hash().0.clone(), theme.bold()));
            lines.push(Line::styled(
                "canonical config (what is hashed and recorded):",
                theme.dim(),
            ));
            for l in x.canonical().lines() {
                lines.push(if l.starts_with('[') {
                    Line::styled(l.to_string(), theme.focus())
                } else {
                    Line::from(l.to_string())
                });
            }
            format!(" {} · config {} ", entry.file_name(), x.hash().short())
        }
        Err(e) => {
            lines.push(Line::styled("✗ not a valid experiment", theme.error()));
            // TOML errors can span lines; each becomes a line of its own.
            lines.extend(e.lines().map(|l| Line::from(l.to_string())));
            lines.push(Line::from(""));
            lines.push(Line::styled(
                "e opens it in $EDITOR; it is checked again when the editor exits.",
                theme.dim(),
            ));
            format!(" {} ", entry.file_name())
        }
    };
    Paragraph::new(Text::from(lines))
        .wrap(Wrap { trim: false })
        .scroll((ex.preview_scroll.min(u16::MAX as usize) as u16, 0))
        .block(panel(theme, title, focused))
        .render(area, buf);
}

/// An error without the path the row already names: "line 5: model.depth = 0: …".
fn short_error(path: &std::path::Path, err: &str) -> String {
    let one_line = err.lines().collect::<Vec<_>>().join("; ");
    let rest = one_line
        .strip_prefix(&format!("{}:", path.display()))
        .unwrap_or(&one_line);
    match rest.split_once(':') {
        Some((line, tail)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
            format!(
                "line {line}:{}",
                tail.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':')
            )
        }
        _ => rest.trim_start().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::short_error;
    use std::path::Path;

    #[test]
    fn errors_in_the_table_drop_the_path_but_keep_the_line() {
        let p = Path::new("experiments/a.toml");
        assert_eq!(
            short_error(
                p,
                "experiments/a.toml:5: model.depth = 0: must be between 1 and 500"
            ),
            "line 5: model.depth = 0: must be between 1 and 500"
        );
        assert_eq!(
            short_error(p, "experiments/a.toml:4:1: unknown field `x`"),
            "line 4: unknown field `x`"
        );
        assert_eq!(
            short_error(p, "experiments/a.toml: cannot read: denied"),
            "cannot read: denied"
        );
        assert_eq!(
            short_error(
                p,
                "experiments/a.toml:20:1: invalid table header\nduplicate key `train`"
            ),
            "line 20: invalid table header; duplicate key `train`"
        );
    }
}
