//! `ledger export`: a stored trace as JSON Lines (verbatim) or as one CSV row per probe
//! step and layer.

use serde_json::Value;
use std::fmt::Write as _;
use std::io::{self, Write};

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

/// Why an export did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The stored trace is missing or damaged (nothing was written), or not a trace.
    #[error(transparent)]
    Ledger(#[from] super::LedgerError),
    /// Writing the output failed.
    #[error("writing the export: {0}")]
    Write(#[source] io::Error),
}

/// Streams `entry`'s stored trace to `out` in the given format, returning the rows written
/// (JSON: lines; CSV: data rows). The object is checked in a first pass, so a damaged trace
/// writes nothing; the second pass converts as it decompresses: a 100 MB trace is never held.
pub fn export_entry(
    ledger: &super::Ledger,
    entry: &super::Entry,
    format: Format,
    out: &mut dyn Write,
) -> Result<usize, ExportError> {
    use super::{LedgerError, object};
    let object_error = |source| LedgerError::Object {
        seq: entry.seq,
        source,
    };
    object::check_object(ledger.dir(), &entry.trace.hash).map_err(object_error)?;
    let mut sink = Export::new(format, out);
    object::read_object_into(ledger.dir(), &entry.trace.hash, &mut |chunk| {
        sink.feed(chunk)
    })
    .map_err(object_error)?;
    sink.finish().map_err(|e| match e {
        Failed::Write(e) => ExportError::Write(e),
        Failed::Trace(message) => LedgerError::Trace {
            seq: entry.seq,
            message,
        }
        .into(),
    })
}

/// The trace in the given format, in memory (tests and small traces).
pub fn export(trace: &[u8], format: Format) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut sink = Export::new(format, &mut out);
    sink.feed(trace);
    sink.finish().map_err(|e| match e {
        Failed::Write(e) => e.to_string(),
        Failed::Trace(m) => m,
    })?;
    Ok(out)
}

enum Failed {
    Write(io::Error),
    Trace(String),
}

/// The converter, fed the trace's bytes in any chunks; the first failure stops it.
struct Export<'a> {
    format: Format,
    out: io::BufWriter<&'a mut dyn Write>,
    split: super::lines::Lines,
    line: usize,
    names: Vec<String>,
    rows: usize,
    row: String,
    failed: Option<Failed>,
}

impl<'a> Export<'a> {
    fn new(format: Format, out: &'a mut dyn Write) -> Self {
        let mut e = Self {
            format,
            out: io::BufWriter::with_capacity(1 << 16, out),
            split: Default::default(),
            line: 0,
            names: Vec::new(),
            rows: 0,
            row: String::new(),
            failed: None,
        };
        if format == Format::Csv {
            let head = CSV_COLUMNS.join(",") + "\n";
            e.write(head.as_bytes());
        }
        e
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.failed.is_none()
            && let Err(e) = self.out.write_all(bytes)
        {
            self.failed = Some(Failed::Write(e));
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.format == Format::Json {
            self.rows += memchr::memchr_iter(b'\n', chunk).count();
            self.write(chunk);
            return;
        }
        let mut split = std::mem::take(&mut self.split);
        split.feed(chunk, &mut |l| self.record(l));
        self.split = split;
    }

    /// One record at a time: a trace of 100 MB is never a tree of JSON values.
    fn record(&mut self, line: &[u8]) {
        let n = self.line;
        self.line += 1;
        if line.is_empty() || self.failed.is_some() {
            return;
        }
        let record: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                self.failed = Some(Failed::Trace(format!("trace line {}: {e}", n + 1)));
                return;
            }
        };
        match record.get("type").and_then(Value::as_str) {
            Some("header") if n == 0 => self.names = super::entry::layer_names(&record),
            Some("probe") => {
                let mut row = std::mem::take(&mut self.row);
                row.clear();
                self.rows += probe_rows(&record, &self.names, &mut row);
                self.write(row.as_bytes());
                self.row = row;
            }
            _ => {}
        }
    }

    fn finish(mut self) -> Result<usize, Failed> {
        if self.format == Format::Csv {
            let mut split = std::mem::take(&mut self.split);
            split.finish(&mut |l| self.record(l));
        }
        if let Some(f) = self.failed {
            return Err(f);
        }
        self.out.flush().map_err(Failed::Write)?;
        Ok(self.rows)
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

/// The rows of one probe record: one per layer, the step's columns repeated. Returns how
/// many.
fn probe_rows(p: &Value, names: &[String], out: &mut String) -> usize {
    let test = p.get("test");
    let step_cells = [
        cell(p.get("step")),
        cell(p.get("loss")),
        cell(p.get("accuracy")),
        cell(test.and_then(|t| t.get("loss"))),
        cell(test.and_then(|t| t.get("accuracy"))),
    ]
    .join(",");
    let mut rows = 0;
    for (i, layer) in p
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        rows += 1;
        let name = names.get(i).cloned().unwrap_or_default();
        let _ = write!(out, "{step_cells},{i},{}", quote(&name));
        for col in &CSV_COLUMNS[7..] {
            let _ = write!(out, ",{}", cell(layer.get(*col)));
        }
        out.push('\n');
    }
    rows
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
