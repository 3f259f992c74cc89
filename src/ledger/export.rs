//! `ledger export`: a stored trace as JSON Lines (verbatim) or as one CSV row per probe
//! step and layer.

use serde_json::Value;
use std::fmt::Write as _;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The trace's JSON Lines, byte for byte (its blake3 is the entry's trace hash).
    Json,
    /// One row per probe step and layer, step-level columns repeated.
    Csv,
}

/// The columns of the CSV export, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "step",
    "loss",
    "accuracy",
    "test_loss",
    "test_accuracy",
    "layer_index",
    "layer",
    "delta",
    "grad_w",
    "grad_b",
    "weight",
    "update_ratio",
    "act_mean",
    "act_std",
    "saturation",
];

/// The trace in the given format.
pub fn export(trace: &[u8], format: Format) -> Result<Vec<u8>, String> {
    match format {
        Format::Json => Ok(trace.to_vec()),
        Format::Csv => csv(trace).map(String::into_bytes),
    }
}

/// A number as its JSON spelling; empty when absent or null (non-finite).
fn cell(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => quote(s),
        _ => String::new(),
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One record at a time: a trace of 100 MB is never a 100 MB tree of JSON values (the rows
/// are most of what is held, and they are the output).
fn csv(trace: &[u8]) -> Result<String, String> {
    let mut names: Vec<String> = Vec::new();
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for (n, line) in trace.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let record: Value =
            serde_json::from_slice(line).map_err(|e| format!("trace line {}: {e}", n + 1))?;
        match record.get("type").and_then(Value::as_str) {
            Some("header") if n == 0 => names = super::entry::layer_names(&record),
            Some("probe") => probe_rows(&record, &names, &mut out),
            _ => {}
        }
    }
    Ok(out)
}

/// The rows of one probe record: one per layer, the step's columns repeated.
fn probe_rows(p: &Value, names: &[String], out: &mut String) {
    let test = p.get("test");
    let step_cells = [
        cell(p.get("step")),
        cell(p.get("loss")),
        cell(p.get("accuracy")),
        cell(test.and_then(|t| t.get("loss"))),
        cell(test.and_then(|t| t.get("accuracy"))),
    ]
    .join(",");
    for (i, layer) in p
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = names.get(i).cloned().unwrap_or_default();
        let _ = write!(out, "{step_cells},{i},{}", quote(&name));
        for col in &CSV_COLUMNS[7..] {
            let _ = write!(out, ",{}", cell(layer.get(*col)));
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_one_row_per_step_and_layer() {
        let trace = concat!(
            r#"{"type":"header","layers":["h1","out"]}"#,
            "\n",
            r#"{"type":"probe","step":0,"loss":1.5,"layers":[{"delta":1.0,"grad_w":2.0},{"delta":null,"grad_w":4.0}],"test":{"loss":0.5}}"#,
            "\n",
            r#"{"type":"end","status":"completed","steps_done":1}"#,
            "\n"
        );
        let out = String::from_utf8(export(trace.as_bytes(), Format::Csv).unwrap()).unwrap();
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].split(',').count(), CSV_COLUMNS.len());
        assert_eq!(rows[1], "0,1.5,,0.5,,0,h1,1.0,2.0,,,,,,");
        assert_eq!(rows[2], "0,1.5,,0.5,,1,out,,4.0,,,,,,");
        assert_eq!(
            export(trace.as_bytes(), Format::Json).unwrap(),
            trace.as_bytes()
        );
    }
}
