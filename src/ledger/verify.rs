//! `ledger verify`: every hash recomputed, the chain walked, every object opened, every
//! claim an entry makes about its trace rederived; problems named by line and entry.

use super::entry::{Entry, GENESIS, LEDGER_FORMAT, ObjectRef, TraceSummary, hex_hash};
use super::store::{self, ObjectError};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// One thing wrong, located at a line of `entries.jsonl` (line n holds entry n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line; None for a problem with the ledger as a whole (a missing head).
    pub line: Option<usize>,
    /// The entry's experiment, when its line could be read.
    pub experiment: Option<String>,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.experiment) {
            (Some(l), Some(x)) => write!(f, "entry {l} ({x}, line {l}): {}", self.what),
            (Some(l), None) => write!(f, "entry {l} (line {l}): {}", self.what),
            (None, _) => write!(f, "ledger: {}", self.what),
        }
    }
}

/// The result of `verify`.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Complete lines read.
    pub entries: usize,
    /// Distinct objects opened and checked.
    pub objects: usize,
    /// The last entry's hash, when it could be read.
    pub head: Option<String>,
    /// In line order; a whole-ledger problem last.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
    /// The first bad entry's problem.
    pub fn first(&self) -> Option<&Problem> {
        self.problems.first()
    }
    /// The line (= entry number) of the first bad entry.
    pub fn first_bad_line(&self) -> Option<usize> {
        self.problems.iter().find_map(|p| p.line)
    }
}

/// Verifies the ledger in `dir`; with `head`, also that the ledger still contains the
/// entry with that hash (a published head), so truncation or rewritten history is caught.
pub fn verify_dir(dir: &Path, head: Option<&str>) -> VerifyReport {
    let mut report = VerifyReport::default();
    let _lock = store::read_lock(dir);
    let bytes = match store::read_entries(dir) {
        Ok(b) => b,
        Err(e) => {
            report.problems.push(Problem {
                line: None,
                experiment: None,
                what: format!("cannot read the entries file: {e}"),
            });
            return report;
        }
    };
    let scan = store::scan(&bytes);
    report.entries = scan.lines.len();
    let mut prev = GENESIS.to_string();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut objects: HashMap<(String, Option<String>), Result<Vec<u8>, String>> = HashMap::new();
    for (i, line) in scan.lines.iter().enumerate() {
        let n = i + 1;
        let entry = match Entry::from_line(line) {
            Ok(e) => e,
            Err(e) => {
                report.problems.push(Problem {
                    line: Some(n),
                    experiment: None,
                    what: e.to_string(),
                });
                // The chain continues from whatever hash the line claims, so one bad line
                // does not hide a second, independent problem further on.
                prev = super::entry::split_line(line).map_or(prev, |(_, h)| h.to_string());
                continue;
            }
        };
        let mut whats: Vec<String> = Vec::new();
        if entry.format != LEDGER_FORMAT {
            whats.push(format!(
                "format is '{}', expected '{LEDGER_FORMAT}'",
                entry.format
            ));
        }
        if entry.seq != n as u64 {
            whats.push(format!(
                "seq is {} but it is line {n}: an entry was deleted, inserted or moved",
                entry.seq
            ));
        }
        if entry.prev != prev {
            whats.push(format!(
                "prev is {} but the previous line's hash is {prev}: the chain is broken (an entry was deleted, inserted, moved or rewritten)",
                entry.prev
            ));
        }
        let config_hash = hex_hash(entry.config.as_bytes());
        if config_hash != entry.config_hash.0 {
            whats.push(format!(
                "the embedded config hashes to {config_hash}, the entry claims {}",
                entry.config_hash
            ));
        }
        for (what, stamp) in [("started", &entry.started), ("ended", &entry.ended)] {
            if super::time::parse(stamp).is_none() {
                whats.push(format!("{what} '{stamp}' is not a UTC RFC 3339 stamp"));
            }
        }
        match (&entry.kind, &entry.replay_of, &entry.verdict) {
            (super::EntryKind::Run, None, None) => {}
            (super::EntryKind::Replay, Some(of), Some(_)) => {
                if !seen.contains(of) {
                    whats.push(format!("replay_of {of} is not an earlier entry"));
                }
            }
            _ => whats.push(
                "kind, replay_of and verdict disagree (a replay has both, a run neither)".into(),
            ),
        }
        if entry.trace.file_hash.is_none() {
            whats.push("the trace object is not recorded as stored".into());
        }
        let mut trace = None;
        for (which, obj) in [("trace", &entry.trace), ("weights", &entry.weights)] {
            let Some(file_hash) = &obj.file_hash else {
                continue;
            };
            let result = objects
                .entry((obj.hash.clone(), Some(file_hash.clone())))
                .or_insert_with(|| check(dir, obj, file_hash).map_err(|e| e.to_string()));
            match result {
                Ok(bytes) if which == "trace" => trace = Some(bytes.clone()),
                Ok(_) => {}
                Err(e) => whats.push(format!("{which} object: {e}")),
            }
        }
        if let Some(trace) = trace {
            whats.extend(claims(&entry, &trace));
        }
        whats.extend(origin_problems(&entry));
        for what in whats {
            report.problems.push(Problem {
                line: Some(n),
                experiment: Some(entry.experiment.clone()),
                what,
            });
        }
        prev = entry.hash.clone();
        // A replay merged from elsewhere names its original by the hash the source knew.
        seen.extend(entry.lineage());
    }
    if let Some(torn) = &scan.torn {
        report.problems.push(Problem {
            line: Some(scan.lines.len() + 1),
            experiment: None,
            what: format!(
                "torn tail: {} bytes without a newline (an interrupted append); `gradlab ledger repair` moves them aside",
                torn.len()
            ),
        });
    }
    report.objects = objects.len();
    report.head = scan
        .lines
        .last()
        .and_then(|l| super::entry::split_line(l))
        .map(|(_, h)| h.to_string());
    if let Some(published) = head {
        let published = published.trim().to_ascii_lowercase();
        if published.len() < 12 || !published.chars().all(|c| c.is_ascii_hexdigit()) {
            report.problems.push(Problem {
                line: None,
                experiment: None,
                what: format!("'{published}' is not a head hash (give at least 12 hex digits, as `gradlab ledger head` prints)"),
            });
        } else if !seen.iter().any(|h| h.starts_with(&published)) {
            report.problems.push(Problem {
                line: None,
                experiment: None,
                what: format!(
                    "the published head {published} is not in the ledger: entries were removed from the end or history was rewritten"
                ),
            });
        }
    }
    report
}

/// Opens one object and checks file hash, content hash and length.
fn check(dir: &Path, obj: &ObjectRef, file_hash: &str) -> Result<Vec<u8>, ObjectError> {
    let path = store::object_path(dir, &obj.hash);
    if obj.hash.len() != 64 || !obj.hash.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(ObjectError::ContentHash {
            path,
            expected: obj.hash.clone(),
            found: "(not a hash)".into(),
        });
    }
    let (content, found) = store::read_object(dir, &obj.hash)?;
    if found != file_hash {
        return Err(ObjectError::FileHash {
            path,
            expected: file_hash.into(),
            found,
        });
    }
    if content.len() as u64 != obj.bytes {
        return Err(ObjectError::Length {
            path,
            expected: obj.bytes,
            found: content.len() as u64,
        });
    }
    Ok(content)
}

/// What the entry claims that the stored trace contradicts.
fn claims(entry: &Entry, trace: &[u8]) -> Vec<String> {
    let s = match TraceSummary::from_trace_bytes(trace) {
        Ok(s) => s,
        Err(e) => return vec![format!("the stored trace is not a valid trace: {e}")],
    };
    let mut out = Vec::new();
    let mut eq = |field: &str, claimed: Value, traced: Value| {
        if !same(&claimed, &traced) {
            out.push(format!(
                "{field} is {claimed} in the entry but {traced} in its trace"
            ));
        }
    };
    eq("experiment", j(&entry.experiment), j(&s.experiment));
    eq("config_hash", j(&entry.config_hash.0), j(&s.config_hash));
    eq(
        "seeds.experiment",
        j(&Some(entry.seeds.experiment)),
        j(&s.seed),
    );
    let mut traced = s.execution.clone();
    if !s.threads_traced {
        traced.threads = entry.execution.threads;
    }
    eq("execution", j(&entry.execution), j(&traced));
    eq("status", j(&Some(entry.status)), j(&s.status));
    eq("diverged_at", j(&entry.diverged_at), j(&s.diverged_at));
    eq("error", j(&entry.error), j(&s.error));
    let mut m = entry.metrics.clone();
    m.wall_s = 0.0;
    eq("metrics", j(&m), j(&s.metrics));
    eq("layers", j(&entry.layers), j(&s.layers));
    out
}

/// What is wrong with a merged entry's origin: the embedded original line must hash to the
/// hash it claims (and be a valid entry), and the merged entry must repeat every field of it
/// but `seq`, `prev`, `hash`, `origin` and the objects' `file_hash` (those describe this
/// ledger's copy; a `file_hash` is null exactly when the original's is). Merges of merges
/// are checked all the way down.
pub fn origin_problems(entry: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    let mut outer = entry.clone();
    let mut depth = 0;
    while let Some(origin) = outer.origin.clone() {
        depth += 1;
        let what = if depth == 1 {
            "origin".to_string()
        } else {
            format!("origin (merge level {depth})")
        };
        let original = match Entry::from_line(origin.line.as_bytes()) {
            Ok(e) => e,
            Err(e) => {
                out.push(format!(
                    "{what}: the embedded original line is not a valid entry: {e}"
                ));
                break;
            }
        };
        if original.hash != origin.hash {
            out.push(format!(
                "{what}: hash is {} but the embedded original line hashes to {}",
                origin.hash, original.hash
            ));
        }
        if original.seq != origin.seq {
            out.push(format!(
                "{what}: seq is {} but the embedded original says {}",
                origin.seq, original.seq
            ));
        }
        if super::time::parse(&origin.merged).is_none() {
            out.push(format!(
                "{what}: merged '{}' is not a UTC RFC 3339 stamp",
                origin.merged
            ));
        }
        let (a, b) = (copied_fields(&outer), copied_fields(&original));
        if !same(&a, &b) {
            let fields: Vec<String> = match (&a, &b) {
                (Value::Object(x), Value::Object(y)) => x
                    .iter()
                    .filter(|(k, v)| y.get(*k).is_none_or(|w| !same(v, w)))
                    .map(|(k, _)| k.clone())
                    .collect(),
                _ => Vec::new(),
            };
            out.push(format!(
                "{what}: the merged entry differs from the original it embeds in {}",
                fields.join(", ")
            ));
        }
        for (which, mine, theirs) in [
            ("trace", &outer.trace, &original.trace),
            ("weights", &outer.weights, &original.weights),
        ] {
            if mine.file_hash.is_some() != theirs.file_hash.is_some() {
                out.push(format!(
                    "{what}: the {which} object is stored here but not in the original, or the other way round"
                ));
            }
        }
        outer = original;
    }
    out
}

/// The fields a merged entry repeats from its original, as JSON.
fn copied_fields(e: &Entry) -> Value {
    let mut v = j(e);
    if let Value::Object(m) = &mut v {
        for k in ["seq", "prev", "hash", "origin"] {
            m.remove(k);
        }
        for obj in ["trace", "weights"] {
            if let Some(Value::Object(o)) = m.get_mut(obj) {
                o.remove("file_hash");
            }
        }
    }
    v
}

/// A value as JSON, for comparing and quoting claims.
fn j<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| Value::String(format!("<{e}>")))
}

/// Equal JSON values, floating-point numbers to within 4 ulp: the same decimal text can
/// parse to neighbouring doubles under a JSON parser that is not correctly rounded
/// (serde_json's default is not), so bit equality would report phantom changes.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_to_a_few_ulp_and_no_further() {
        let x = 0.11940194222857008_f64;
        let next = f64::from_bits(x.to_bits() + 1);
        assert!(same(&j(&x), &j(&next)));
        assert!(!same(&j(&x), &j(&(x * (1.0 + 1e-12)))));
        assert!(!same(&j(&Some(x)), &j(&None::<f64>)));
        assert!(same(&j(&vec![1u64, 2]), &j(&vec![1u64, 2])));
        assert!(!same(&j(&vec![1u64, 2]), &j(&vec![1u64, 3])));
    }
}
