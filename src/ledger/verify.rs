//! `ledger verify`: every hash recomputed, the chain walked, every object opened, every
//! claim an entry makes about its trace rederived; problems named by line and entry.

use super::entry::{
    Entry, GENESIS, LEDGER_FORMAT, Metrics, SummaryBuilder, TraceSummary, hex_hash,
};
use super::object::{self, ObjectError};
use super::store;
use rayon::prelude::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

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
    /// The report as `ledger verify --json` prints it.
    pub fn to_json(&self) -> Value {
        let problems: Vec<Value> = self
            .problems
            .iter()
            .map(
                |p| serde_json::json!({"line": p.line, "experiment": p.experiment, "what": p.what}),
            )
            .collect();
        serde_json::json!({
            "ok": self.ok(),
            "entries": self.entries,
            "objects": self.objects,
            "head": self.head,
            "problems": problems,
        })
    }

    /// The line (= entry number) of the first bad entry.
    pub fn first_bad_line(&self) -> Option<usize> {
        self.problems.iter().find_map(|p| p.line)
    }
}

/// Lines verified together: each batch is parsed, its objects opened and its claims checked
/// on every core, then walked in order for the chain. Bounded, so memory stays flat however
/// long the ledger is.
const BATCH: usize = 2048;

/// One line's checks that need no other line: its hash, its parse, and the checks of its own
/// fields, in the order they are reported.
struct Parsed {
    /// The hash the line claims (the chain goes on from it even when the line is bad).
    claimed: Option<String>,
    entry: Result<Entry, String>,
    /// A wrong `format` (reported before the chain's checks).
    format: Option<String>,
    /// `config_hash`, `started`, `ended` (reported after them).
    own: Vec<String>,
    /// The merged entry's origin checks (reported last).
    origin: Vec<String>,
}

impl Parsed {
    fn of(line: &[u8]) -> Parsed {
        let claimed = super::entry::claimed_hash(line).map(str::to_string);
        let entry = match Entry::from_line(line) {
            Ok(e) => e,
            Err(e) => {
                return Parsed {
                    claimed,
                    entry: Err(e.to_string()),
                    format: None,
                    own: Vec::new(),
                    origin: Vec::new(),
                };
            }
        };
        let format = (entry.format != LEDGER_FORMAT)
            .then(|| format!("format is '{}', expected '{LEDGER_FORMAT}'", entry.format));
        let mut own = Vec::new();
        let config_hash = hex_hash(entry.config.as_bytes());
        if config_hash != entry.config_hash.0 {
            own.push(format!(
                "the embedded config hashes to {config_hash}, the entry claims {}",
                entry.config_hash
            ));
        }
        for (what, stamp) in [("started", &entry.started), ("ended", &entry.ended)] {
            if super::time::parse_stamp(stamp).is_none() {
                own.push(format!("{what} '{stamp}' is not a UTC RFC 3339 stamp"));
            }
        }
        let origin = origin_problems(&entry);
        Parsed {
            claimed,
            entry: Ok(entry),
            format,
            own,
            origin,
        }
    }
}

/// An object as checked once for every entry that names it.
struct Opened {
    /// Its uncompressed length (each entry's `bytes` is compared with it).
    len: u64,
    /// The trace summary, for an object some entry names as its trace.
    summary: Option<Arc<Result<TraceSummary, String>>>,
}

/// Which object a reference names, as checked: (content hash, file hash).
type ObjectKey = (String, String);

/// Verifies the ledger in `dir`; with `head`, also that the ledger still contains the
/// entry with that hash (a published head), so truncation or rewritten history is caught.
pub fn verify_dir(dir: &Path, head: Option<&str>) -> VerifyReport {
    store::on_every_core(|| verify_on_this_pool(dir, head))
}

fn verify_on_this_pool(dir: &Path, head: Option<&str>) -> VerifyReport {
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
    let mut seen: HashSet<String> = HashSet::new();
    let mut objects: HashMap<ObjectKey, Result<Opened, String>> = HashMap::new();
    for (batch_no, batch) in scan.lines.chunks(BATCH).enumerate() {
        let parsed: Vec<Parsed> = batch.par_iter().map(|l| Parsed::of(l)).collect();
        open_objects(dir, &parsed, &mut objects);
        let found: Vec<Vec<String>> = parsed
            .par_iter()
            .map(|p| {
                p.entry
                    .as_ref()
                    .map_or_else(|_| Vec::new(), |e| object_problems(dir, e, &objects))
            })
            .collect();
        for (i, (p, found)) in parsed.into_iter().zip(found).enumerate() {
            let n = batch_no * BATCH + i + 1;
            let entry = match p.entry {
                Ok(e) => e,
                Err(what) => {
                    report.problems.push(Problem {
                        line: Some(n),
                        experiment: None,
                        what,
                    });
                    // The chain continues from whatever hash the line claims, so one bad line
                    // does not hide a second, independent problem further on.
                    prev = p.claimed.unwrap_or(prev);
                    continue;
                }
            };
            let mut whats: Vec<String> = p.format.into_iter().collect();
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
            whats.extend(p.own);
            match (
                &entry.kind,
                &entry.replay_of,
                &entry.verdict,
                &entry.lesion_of,
            ) {
                (super::EntryKind::Run, None, None, None) => {}
                (super::EntryKind::Replay, Some(of), Some(_), None) => {
                    if !seen.contains(of) {
                        whats.push(format!("replay_of {of} is not an earlier entry"));
                    }
                }
                (super::EntryKind::Lesion, None, None, Some(of)) => {
                    if !seen.contains(of) {
                        whats.push(format!("lesion_of {of} is not an earlier entry"));
                    }
                }
                _ => whats.push(
                    "kind, replay_of, verdict and lesion_of disagree (a replay has replay_of and \
                     a verdict, a lesion study lesion_of, a run none of them)"
                        .into(),
                ),
            }
            whats.extend(found);
            whats.extend(p.origin);
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
    }
    if let Some(torn) = scan.torn {
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
        .and_then(|l| super::entry::claimed_hash(l))
        .map(str::to_string);
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

/// Opens, in parallel, every object the batch names that no earlier batch opened: each
/// distinct (hash, file hash) once, its trace summary derived once however many entries
/// share it.
fn open_objects(
    dir: &Path,
    parsed: &[Parsed],
    objects: &mut HashMap<ObjectKey, Result<Opened, String>>,
) {
    let mut todo: HashMap<ObjectKey, bool> = HashMap::new();
    for e in parsed.iter().filter_map(|p| p.entry.as_ref().ok()) {
        for (obj, is_trace) in [(&e.trace, true), (&e.weights, false)] {
            let Some(file_hash) = &obj.file_hash else {
                continue;
            };
            let key = (obj.hash.clone(), file_hash.clone());
            let known = objects.get(&key).is_some_and(|o| {
                o.as_ref()
                    .map_or(true, |o| o.summary.is_some() || !is_trace)
            });
            if !known {
                *todo.entry(key).or_default() |= is_trace;
            }
        }
    }
    let opened: Vec<(ObjectKey, Result<Opened, String>)> = todo
        .into_par_iter()
        .map(|(key, is_trace)| {
            let result = open(dir, &key.0, &key.1, is_trace).map(|(len, summary)| Opened {
                len,
                summary: summary.map(Arc::new),
            });
            (key, result.map_err(|e| e.to_string()))
        })
        .collect();
    objects.extend(opened);
}

/// What is wrong with an entry's objects and, when its trace is sound, its claims.
fn object_problems(
    dir: &Path,
    entry: &Entry,
    objects: &HashMap<ObjectKey, Result<Opened, String>>,
) -> Vec<String> {
    let mut whats = Vec::new();
    if entry.trace.file_hash.is_none() {
        whats.push("the trace object is not recorded as stored".into());
    }
    let mut summary = None;
    for (which, obj) in [("trace", &entry.trace), ("weights", &entry.weights)] {
        let Some(file_hash) = &obj.file_hash else {
            continue;
        };
        let path = || object::object_path(dir, &obj.hash);
        match objects.get(&(obj.hash.clone(), file_hash.clone())) {
            Some(Ok(o)) if o.len != obj.bytes => {
                let e = ObjectError::Length {
                    path: path(),
                    expected: obj.bytes,
                    found: o.len,
                };
                whats.push(format!("{which} object: {e}"));
            }
            Some(Ok(o)) => {
                if which == "trace" {
                    summary = o.summary.clone();
                }
            }
            Some(Err(e)) => whats.push(format!("{which} object: {e}")),
            None => unreachable!("open_objects opened every object the batch names"),
        }
    }
    if let Some(summary) = summary {
        whats.extend(claims(entry, &summary));
    }
    whats
}

/// Streams one object, checking that it is one gzip member, its content hash and its file
/// hash, in that order (the README's wording order for `gradlab`); returns its length and, for a trace, its summary (built as the bytes
/// pass: a 100 MB trace is never held).
fn open(
    dir: &Path,
    hash: &str,
    file_hash: &str,
    is_trace: bool,
) -> Result<(u64, Option<Result<TraceSummary, String>>), ObjectError> {
    let path = object::object_path(dir, hash);
    if hash.len() != 64 || !hash.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(ObjectError::ContentHash {
            path,
            expected: hash.to_string(),
            found: "(not a hash)".into(),
        });
    }
    let mut builder = is_trace.then(SummaryBuilder::default);
    let s = object::stream_object(dir, hash, &mut |chunk| {
        if let Some(b) = &mut builder {
            b.feed(chunk);
        }
    })?;
    if let Some(message) = s.corrupt {
        return Err(ObjectError::Corrupt { path, message });
    }
    if s.content_hash != hash {
        return Err(ObjectError::ContentHash {
            path,
            expected: hash.into(),
            found: s.content_hash,
        });
    }
    if s.file_hash != file_hash {
        return Err(ObjectError::FileHash {
            path,
            expected: file_hash.into(),
            found: s.file_hash,
        });
    }
    Ok((s.len, builder.map(SummaryBuilder::finish)))
}

/// What the entry claims that the stored trace contradicts. Compared field by field as the
/// JSON values would be by [`same`] (numbers to 4 ulp, everything else exactly), but on the
/// typed values: a 20,000-entry ledger is not turned into 20,000 JSON trees to compare.
fn claims(entry: &Entry, summary: &Result<TraceSummary, String>) -> Vec<String> {
    let s = match summary {
        Ok(s) => s,
        Err(e) => return vec![format!("the stored trace is not a valid trace: {e}")],
    };
    let mut out = Vec::new();
    let mut eq = |field: &str, agree: bool, claimed: Value, traced: &dyn Fn() -> Value| {
        if !agree {
            out.push(format!(
                "{field} is {claimed} in the entry but {} in its trace",
                traced()
            ));
        }
    };
    let e = entry;
    eq(
        "experiment",
        e.experiment == s.experiment,
        j(&e.experiment),
        &|| j(&s.experiment),
    );
    eq(
        "config_hash",
        e.config_hash.0 == s.config_hash,
        j(&e.config_hash),
        &|| j(&s.config_hash),
    );
    eq(
        "seeds.experiment",
        Some(e.seeds.experiment) == s.seed,
        j(&e.seeds.experiment),
        &|| j(&s.seed),
    );
    let mut traced = s.execution.clone();
    if !s.threads_traced {
        traced.threads = e.execution.threads;
    }
    eq("execution", e.execution == traced, j(&e.execution), &|| {
        j(&traced)
    });
    eq("status", Some(e.status) == s.status, j(&e.status), &|| {
        j(&s.status)
    });
    eq(
        "diverged_at",
        e.diverged_at == s.diverged_at,
        j(&e.diverged_at),
        &|| j(&s.diverged_at),
    );
    eq("error", e.error == s.error, j(&e.error), &|| j(&s.error));
    let mut m = e.metrics.clone();
    m.wall_s = 0.0;
    eq("metrics", metrics_agree(&m, &s.metrics), j(&m), &|| {
        j(&s.metrics)
    });
    let layers = e.layers.len() == s.layers.len()
        && e.layers.iter().zip(&s.layers).all(|(a, b)| {
            a.name == b.name
                && near(a.delta_first, b.delta_first)
                && near(a.delta_last, b.delta_last)
                && near(a.grad_w_first, b.grad_w_first)
                && near(a.grad_w_last, b.grad_w_last)
        });
    eq("layers", layers, j(&e.layers), &|| j(&s.layers));
    out
}

/// Metrics equal as [`same`] would find their JSON (`wall_s` included; the caller zeroes it).
fn metrics_agree(a: &Metrics, b: &Metrics) -> bool {
    a.steps_done == b.steps_done
        && a.steps_planned == b.steps_planned
        && a.probes == b.probes
        && a.last_step == b.last_step
        && near(Some(a.wall_s), Some(b.wall_s))
        && near(a.train_loss, b.train_loss)
        && near(a.train_accuracy, b.train_accuracy)
        && near(a.test_loss, b.test_loss)
        && near(a.test_accuracy, b.test_accuracy)
}

/// Two optional numbers equal to within 4 ulp (see [`same`]).
fn near(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()),
        (None, None) => true,
        _ => false,
    }
}

/// What is wrong with a merged entry's origin: the embedded original line must hash to the
/// hash it claims (and be a valid entry), and the merged entry must repeat every field of it
/// but `seq`, `prev`, `hash`, `origin` and the objects' `file_hash` (those describe this
/// ledger's copy; a `file_hash` is null exactly when the original's is). Merges of merges
/// are checked all the way down.
pub fn origin_problems(entry: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    if entry.origin.is_none() {
        return out;
    }
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
        if super::time::parse_stamp(&origin.merged).is_none() {
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
                (Some(x), Some(y)) => near(Some(x), Some(y)),
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
