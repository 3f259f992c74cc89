//! One ledger entry: its fields, its line form, and how its own hash is computed.
//!
//! An entry is one line of `entries.jsonl`: compact JSON whose fields appear in the order
//! declared here, `hash` always last. The hash covers the line's bytes with that last field
//! taken out (see [`split_line`]), so checking it needs no JSON canonicalisation at all.

use super::environment::{CodeIdentity, Host};
use crate::experiment::ConfigHash;
use crate::train::Status;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version tag written in every entry.
pub const LEDGER_FORMAT: &str = "gradlab-ledger/1";

/// The `prev` of the first entry: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A training run.
    Run,
    /// A rerun of an earlier entry (`replay_of`) with its verdict.
    Replay,
    /// A lesion study (`gradlab lesion`) of an earlier run's final weights (`lesion_of`).
    Lesion,
}

/// The outcome of comparing a replay with the entry it reran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Trace and weights hashes both equal.
    Exact,
    /// Not every byte, but reproduced: the first difference is at rounding level and the
    /// run's conclusions hold (see `replay::CLOSE_FIRST` and `replay::conclusions_hold`).
    Close,
    Diverged,
}

/// A replay's verdict, with the first difference when it is not EXACT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub result: VerdictKind,
    pub first: Option<Difference>,
    /// How far the two traces agree, probe by probe (replays recorded since CLOSE exists;
    /// absent on EXACT and on older entries).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agreement: Option<Box<Agreement>>,
}

/// How far a replay's trace agrees with the original's, from the first probe on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// The last probe step up to which every probe record is byte-identical (none: the first
    /// probe differs).
    pub identical_to: Option<usize>,
    /// The last probe step up to which every number is within 1e-6 relative.
    pub within_1e6_to: Option<usize>,
    /// The last probe step up to which every number is within 1 % relative.
    pub within_1pct_to: Option<usize>,
    /// The relative size of the first difference, |a − b| / max(|a|, |b|).
    pub first_relative: Option<f64>,
    /// The recorded conclusions side by side: `status`, `diverged_at`, `train_loss`,
    /// `test_loss`, `test_accuracy` (original, replay), as JSON text.
    pub conclusions: Vec<(String, String, String)>,
}

/// The first place two runs differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Difference {
    /// The probe step; null for a difference in the trace header or end record, or in the
    /// final weights only.
    pub step: Option<usize>,
    /// What differs: a probe field (`loss`, `update_ratio`, `test.loss`, …), `header.<field>`,
    /// `end.<field>`, `record` (one trace ended earlier) or `weights.<parameter>`.
    pub quantity: String,
    /// The layer label, for per-layer quantities.
    pub layer: Option<String>,
    /// Both values as JSON text (`null` for a non-finite number, `absent` for a missing one).
    pub original: String,
    pub replayed: String,
}

/// Every seed of a run. All the lab's randomness flows from `experiment`: each consumer
/// draws from ChaCha8 keyed by blake3("gradlab-rng-v1" ‖ seed as u64 LE ‖ stream name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seeds {
    pub experiment: u64,
    /// The seed given to the Burn backend (`device.seed`); the lab draws nothing from it.
    pub backend: u64,
    /// Names of the derived streams.
    pub streams: Vec<String>,
    /// How the data and init path computes its f64 functions (`rng::Version`): 2 is the
    /// `libm` crate, the same on every machine; absent (entries before it) is the system's.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<u32>,
}

impl Seeds {
    /// The recorded stream version, if this build knows it.
    pub fn streams_version(&self) -> Option<crate::rng::Version> {
        crate::rng::Version::from_number(self.version.unwrap_or(1))
    }
}

/// Where a run executed (from the trace header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    pub backend: String,
    pub device: String,
    pub threads: usize,
}

/// Summary metrics, from the last probe (and the last probe with test metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Steps whose update was applied.
    pub steps_done: usize,
    /// `train.steps` of the config.
    pub steps_planned: usize,
    /// Number of probe records in the trace.
    pub probes: usize,
    /// The step of the last probe.
    pub last_step: Option<usize>,
    /// Wall-clock seconds of training (the only field not checkable against the trace).
    pub wall_s: f64,
    /// Numbers are null when absent or non-finite.
    pub train_loss: Option<f64>,
    pub train_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
}

/// One layer's gradient profile: ‖δ‖ and ‖∂L/∂W‖ at the first and the last probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerProfile {
    pub name: String,
    pub delta_first: Option<f64>,
    pub delta_last: Option<f64>,
    pub grad_w_first: Option<f64>,
    pub grad_w_last: Option<f64>,
}

/// A content-addressed object an entry refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// blake3 of the uncompressed bytes; also the object's file name.
    pub hash: String,
    /// Length of the uncompressed bytes.
    pub bytes: u64,
    /// blake3 of the compressed file `objects/<hash[..2]>/<hash>.gz` as it was when this
    /// entry was written; null when the object is not stored (weights over the size cap).
    pub file_hash: Option<String>,
}

/// Where a merged entry came from (`gradlab ledger merge`). The original line is kept byte for
/// byte, so its own hash can still be checked; every other field of the merged entry repeats
/// the original's (see `ledger/README.md`, "Merged entries").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The source ledger folder, as an absolute path on the merging machine.
    pub source: String,
    /// The source's head hash when it was merged.
    pub source_head: String,
    /// The entry's seq in the source.
    pub seq: u64,
    /// The original entry's own hash.
    pub hash: String,
    /// When it was merged (UTC, RFC 3339).
    pub merged: String,
    /// The original line, verbatim (without its newline).
    pub line: String,
}

/// One ledger entry. Field order is the order on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub format: String,
    /// 1, 2, 3, … in file order.
    pub seq: u64,
    pub kind: EntryKind,
    /// For a replay: the hash of the entry it reran.
    pub replay_of: Option<String>,
    /// For a replay: the verdict.
    pub verdict: Option<Verdict>,
    /// For a lesion study: the hash of the trained entry it studied. Absent (not null) on
    /// other entries, so entries written before lesion studies existed keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesion_of: Option<String>,
    /// Free labels (a sweep name, `audit`, …).
    pub tags: Vec<String>,
    /// UTC, RFC 3339, whole seconds.
    pub started: String,
    pub ended: String,
    pub experiment: String,
    pub config_hash: ConfigHash,
    /// The canonical config, in full.
    pub config: String,
    pub seeds: Seeds,
    pub code: CodeIdentity,
    pub execution: Execution,
    pub host: Host,
    pub status: Status,
    pub diverged_at: Option<usize>,
    pub error: Option<String>,
    pub metrics: Metrics,
    /// Input side first.
    pub layers: Vec<LayerProfile>,
    /// The JSON Lines trace; always stored.
    pub trace: ObjectRef,
    /// The final weights in the canonical layout; stored when under the size cap.
    pub weights: ObjectRef,
    /// Only on merged entries: where the entry came from. Absent (not null) otherwise, so
    /// entries written before merging existed keep their exact bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// blake3 of this entry's line without this field (see [`split_line`]).
    pub hash: String,
}

/// The bytes that close every line: `,"hash":"` + 64 hex digits + `"}`.
const HASH_FIELD_PREFIX: &[u8] = b",\"hash\":\"";
const HASH_SUFFIX_LEN: usize = HASH_FIELD_PREFIX.len() + 64 + 2;

/// Splits an entry line (without its newline) into the hashed body and the claimed hash.
///
/// The line must end with `,"hash":"H"}` where H is 64 lowercase hex digits; the body is
/// the line with those 75 bytes removed and `}` put back. The entry's hash is blake3(body).
pub fn split_line(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    let (head, claimed) = hash_field(line)?;
    let mut body = head.to_vec();
    body.push(b'}');
    Some((body, claimed))
}

/// The line before its hash field (the body less its closing `}`) and the claimed hash.
fn hash_field(line: &[u8]) -> Option<(&[u8], &str)> {
    let cut = line.len().checked_sub(HASH_SUFFIX_LEN)?;
    let (head, tail) = line.split_at(cut);
    let hex = tail.strip_prefix(HASH_FIELD_PREFIX)?.strip_suffix(b"\"}")?;
    if !head.starts_with(b"{") || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some((
        head,
        std::str::from_utf8(hex).expect("checked to be ASCII hex"),
    ))
}

/// The hash a line claims, when its hash field is well formed.
pub fn claimed_hash(line: &[u8]) -> Option<&str> {
    hash_field(line).map(|(_, h)| h)
}

/// A line (without its newline) read as `T` once its own hash is checked: an entry, or the
/// row `ledger list` reads of one.
pub fn read_line<T: serde::de::DeserializeOwned>(line: &[u8]) -> Result<T, LineError> {
    let (computed, claimed) = line_hash(line).ok_or(LineError::NoHashField)?;
    if computed != claimed {
        return Err(LineError::HashMismatch {
            claimed: claimed.to_string(),
            computed,
        });
    }
    serde_json::from_slice(line).map_err(|e| LineError::Json(e.to_string()))
}

/// blake3 of a line's body and the hash the line claims (None: no well-formed hash field);
/// the body is hashed in place, never copied.
pub fn line_hash(line: &[u8]) -> Option<(String, &str)> {
    let (head, claimed) = hash_field(line)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(head);
    hasher.update(b"}");
    Some((hasher.finalize().to_hex().to_string(), claimed))
}

/// blake3 of bytes as 64 lowercase hex digits.
pub fn hex_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

impl Entry {
    /// Computes and sets `hash` from every other field.
    pub fn seal(&mut self) {
        self.hash = GENESIS.to_string();
        let line = serde_json::to_string(self).expect("an entry always serializes");
        let (body, _) = split_line(line.as_bytes()).expect("`hash` is the last field of an entry");
        self.hash = hex_hash(&body);
    }

    /// The line as written to `entries.jsonl`, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an entry always serializes")
    }

    /// Parses one line (without its newline), checking its own hash.
    pub fn from_line(line: &[u8]) -> Result<Entry, LineError> {
        read_line(line)
    }

    /// The first 12 hex digits of the hash.
    pub fn short_hash(&self) -> &str {
        &self.hash[..12.min(self.hash.len())]
    }

    /// Every hash this entry is known by: its own, then its original's when it was merged, and
    /// so on through merges of merges. Two entries describe the same record when their
    /// lineages meet, which is how merging stays idempotent.
    pub fn lineage(&self) -> Vec<String> {
        lineage_of(&self.hash, self.origin.as_ref())
    }

    /// Start time as seconds since the epoch (None if the stamp is malformed).
    pub fn started_unix(&self) -> Option<i64> {
        super::time::parse(&self.started)
    }
}

/// Every hash a record is known by: `own`, then its origin's hash, then — while the embedded
/// line is a valid entry with an origin of its own — that one's, and so on down.
pub fn lineage_of(own: &str, origin: Option<&Origin>) -> Vec<String> {
    let mut out = vec![own.to_string()];
    let mut origin = origin.cloned();
    while let Some(o) = origin {
        out.push(o.hash);
        origin = Entry::from_line(o.line.as_bytes())
            .ok()
            .and_then(|e| e.origin);
    }
    out
}

/// Why a line is not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("the line does not end with a well-formed `\"hash\"` field")]
    NoHashField,
    #[error("not a valid entry: {0}")]
    Json(String),
    #[error(
        "hash mismatch: the line hashes to {computed}, it claims {claimed} (the entry was altered)"
    )]
    HashMismatch { claimed: String, computed: String },
}

/// The layer names of a trace header (`layers`; a non-string name is `""`, none is empty).
pub fn layer_names(header: &Value) -> Vec<String> {
    header
        .get("layers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|n| n.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// What an entry claims about its trace, derived from the trace records alone; `verify`
/// recomputes it from the stored trace and compares.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub experiment: String,
    pub config_hash: String,
    pub seed: Option<u64>,
    pub execution: Execution,
    /// Whether the header records the thread count (the portable engine's does not: its
    /// numbers do not depend on it); when not, `execution.threads` is 0.
    pub threads_traced: bool,
    pub steps_planned: usize,
    pub status: Option<Status>,
    pub steps_done: usize,
    pub diverged_at: Option<usize>,
    pub error: Option<String>,
    pub metrics: Metrics,
    pub layers: Vec<LayerProfile>,
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().map(|n| n as usize)
}

impl TraceSummary {
    /// Summarises trace records given as JSON values (parsed from the trace bytes, or
    /// `serde_json::to_value` of the records). `wall_s` is set to 0: it is not in the trace.
    pub fn from_values(lines: &[Value]) -> Result<TraceSummary, String> {
        let kind = |v: &Value| v.get("type").and_then(Value::as_str).map(str::to_string);
        let header = lines
            .first()
            .filter(|h| kind(h).as_deref() == Some("header"))
            .ok_or("the trace does not start with a header record")?;
        let end = lines
            .last()
            .filter(|e| kind(e).as_deref() == Some("end"))
            .ok_or("the trace does not end with an end record")?;
        let probes: Vec<&Value> = lines
            .iter()
            .filter(|l| kind(l).as_deref() == Some("probe"))
            .collect();
        // Deep belief nets also write `phase` and `pretrain` records between the two ends,
        // lesion studies `lesion` and `paths` records.
        let extra = lines
            .iter()
            .filter(|l| {
                matches!(
                    kind(l).as_deref(),
                    Some("phase" | "pretrain" | "lesion" | "paths")
                )
            })
            .count();
        if probes.len() + extra + 2 != lines.len() {
            return Err(
                "the trace holds records other than one header, probes, phases, pretraining, lesion or paths records and one end"
                    .into(),
            );
        }
        let text = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let names = layer_names(header);
        let last = probes.last();
        let last_test = probes
            .iter()
            .rev()
            .find_map(|p| p.get("test").filter(|t| !t.is_null()));
        let num = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_f64);
        let layer_num = |p: Option<&&Value>, i: usize, k: &str| {
            p.and_then(|p| p.get("layers"))
                .and_then(|l| l.get(i))
                .and_then(|l| l.get(k))
                .and_then(Value::as_f64)
        };
        let first = probes.first();
        let layers = if probes.is_empty() {
            Vec::new()
        } else {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| LayerProfile {
                    name: name.clone(),
                    delta_first: layer_num(first, i, "delta"),
                    delta_last: layer_num(last, i, "delta"),
                    grad_w_first: layer_num(first, i, "grad_w"),
                    grad_w_last: layer_num(last, i, "grad_w"),
                })
                .collect()
        };
        let status = end
            .get("status")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok());
        Ok(TraceSummary {
            experiment: text(header, "experiment"),
            config_hash: text(header, "config_hash"),
            seed: header.get("seed").and_then(Value::as_u64),
            execution: Execution {
                backend: text(header, "backend"),
                device: text(header, "device"),
                threads: header.get("threads").and_then(as_usize).unwrap_or_default(),
            },
            threads_traced: header.get("threads").is_some(),
            steps_planned: header.get("steps").and_then(as_usize).unwrap_or_default(),
            status,
            steps_done: end.get("steps_done").and_then(as_usize).unwrap_or_default(),
            diverged_at: end.get("diverged_at").and_then(as_usize),
            error: end.get("error").and_then(Value::as_str).map(str::to_string),
            metrics: Metrics {
                steps_done: end.get("steps_done").and_then(as_usize).unwrap_or_default(),
                steps_planned: header.get("steps").and_then(as_usize).unwrap_or_default(),
                probes: probes.len(),
                last_step: last.and_then(|p| p.get("step")).and_then(as_usize),
                wall_s: 0.0,
                train_loss: num(last.copied(), "loss"),
                train_accuracy: num(last.copied(), "accuracy"),
                test_loss: num(last_test, "loss"),
                test_accuracy: num(last_test, "accuracy"),
            },
            layers,
        })
    }

    /// Parses trace bytes (JSON Lines), then summarises them (see [`SummaryBuilder`]).
    pub fn from_trace_bytes(trace: &[u8]) -> Result<TraceSummary, String> {
        let mut b = SummaryBuilder::default();
        b.feed(trace);
        b.finish()
    }
}

/// What a trace line is kept as while a summary is built.
enum Slot {
    /// Parsed in full: the first line, the first probe.
    Full(Value),
    /// Only its `type` and `test`.
    Peek(Option<Value>, Option<Value>),
}

/// A trace summary built from the trace's bytes as they stream past, in any chunks. Only
/// what the summary reads is built as JSON values — the header, the end, the first and last
/// probes in full, and every record's `type` and `test` — the rest of each record (a probe's
/// per-layer arrays, most of a trace's bytes) is checked as JSON but never turned into a
/// tree, and the bytes are never all held: `verify` summarises every trace of the ledger,
/// and a run's trace may be 100 MB.
#[derive(Default)]
pub struct SummaryBuilder {
    /// The line being assembled across chunks.
    split: super::lines::Lines,
    /// Lines seen, empty ones included (line numbers count them).
    lines: usize,
    slots: Vec<Slot>,
    first_probe: bool,
    /// The latest probe line: (slot, bytes).
    last_probe: Option<(usize, Vec<u8>)>,
    /// The latest line: (slot, bytes).
    last_line: Option<(usize, Vec<u8>)>,
    error: Option<String>,
}

impl SummaryBuilder {
    /// Takes the next bytes of the trace.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut split = std::mem::take(&mut self.split);
        split.feed(chunk, &mut |l| self.line(l));
        self.split = split;
    }

    fn line(&mut self, l: &[u8]) {
        use serde_json::value::RawValue;
        let i = self.lines;
        self.lines += 1;
        if l.is_empty() || self.error.is_some() {
            return;
        }
        let at = || format!("trace line {}", i + 1);
        // A key given twice: the last one counts, as in a full parse.
        let peek = (|| -> Result<(Option<Value>, Option<Value>), String> {
            let top: std::collections::HashMap<String, &RawValue> =
                serde_json::from_slice(l).map_err(|e| format!("{}: {e}", at()))?;
            let value = |k: &str| -> Result<Option<Value>, String> {
                top.get(k)
                    .map(|raw| {
                        serde_json::from_str(raw.get()).map_err(|e| format!("{}: {e}", at()))
                    })
                    .transpose()
            };
            Ok((value("type")?, value("test")?))
        })();
        let (kind, test) = match peek {
            Ok(p) => p,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let k = self.slots.len();
        let probe = kind.as_ref().and_then(Value::as_str) == Some("probe");
        let slot = if k == 0 || (probe && !self.first_probe) {
            match serde_json::from_slice(l) {
                Ok(v) => Slot::Full(v),
                Err(e) => {
                    self.error = Some(format!("{}: {e}", at()));
                    return;
                }
            }
        } else {
            Slot::Peek(kind, test)
        };
        self.first_probe |= probe;
        self.slots.push(slot);
        let keep = |kept: &mut Option<(usize, Vec<u8>)>| {
            let (slot, bytes) = kept.get_or_insert_with(|| (k, Vec::new()));
            *slot = k;
            bytes.clear();
            bytes.extend_from_slice(l);
        };
        if probe {
            keep(&mut self.last_probe);
        }
        keep(&mut self.last_line);
    }

    /// The summary of everything fed (a last line without a newline counts).
    pub fn finish(mut self) -> Result<TraceSummary, String> {
        let mut split = std::mem::take(&mut self.split);
        split.finish(&mut |l| self.line(l));
        if let Some(e) = self.error {
            return Err(e);
        }
        for (k, bytes) in [self.last_probe, self.last_line].into_iter().flatten() {
            if let Slot::Peek(..) = self.slots[k] {
                // Valid JSON already (peeked above).
                let v = serde_json::from_slice(&bytes).map_err(|e| format!("trace: {e}"))?;
                self.slots[k] = Slot::Full(v);
            }
        }
        let values: Vec<Value> = self
            .slots
            .into_iter()
            .map(|s| match s {
                Slot::Full(v) => v,
                Slot::Peek(kind, test) => {
                    let mut m = serde_json::Map::new();
                    m.extend(kind.map(|v| ("type".to_string(), v)));
                    m.extend(test.map(|v| ("test".to_string(), v)));
                    Value::Object(m)
                }
            })
            .collect();
        TraceSummary::from_values(&values)
    }
}

impl std::io::Write for SummaryBuilder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_hashed_in_place_as_its_body_would_be() {
        let line = br#"{"a":1,"b":"x","hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
        let (body, claimed) = split_line(line).unwrap();
        assert_eq!(line_hash(line).unwrap(), (hex_hash(&body), claimed));
        assert_eq!(claimed_hash(line), Some(claimed));
        assert_eq!(line_hash(b"{}"), None);
    }

    #[test]
    fn split_line_takes_out_exactly_the_hash_field() {
        let h = "ab".repeat(32);
        let line = format!("{{\"a\":1,\"hash\":\"{h}\"}}");
        let (body, claimed) = split_line(line.as_bytes()).unwrap();
        assert_eq!(body, b"{\"a\":1}");
        assert_eq!(claimed, h);
        assert!(split_line(b"{\"a\":1}").is_none());
        let upper = line.replace("ab", "AB");
        assert!(
            split_line(upper.as_bytes()).is_none(),
            "uppercase hex is not canonical"
        );
    }

    #[test]
    fn summary_reads_first_and_last_probe() {
        let lines: Vec<Value> = [
            r#"{"type":"header","format":"gradlab-trace/1","experiment":"x","config_hash":"c","seed":3,"model":"mlp","objective":"classify","steps":2,"backend":"flex","device":"flex","threads":1,"layers":["h1","out"]}"#,
            r#"{"type":"probe","step":0,"loss":1.5,"accuracy":0.5,"layers":[{"delta":1.0,"grad_w":2.0},{"delta":3.0,"grad_w":4.0}],"test":{"loss":1.25,"accuracy":0.25}}"#,
            r#"{"type":"probe","step":1,"loss":0.5,"accuracy":0.75,"layers":[{"delta":null,"grad_w":6.0},{"delta":7.0,"grad_w":8.0}]}"#,
            r#"{"type":"end","status":"completed","steps_done":2}"#,
        ]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
        let s = TraceSummary::from_values(&lines).unwrap();
        let bytes: String = lines.iter().map(|v| format!("{v}\n")).collect();
        assert_eq!(
            TraceSummary::from_trace_bytes(bytes.as_bytes()).unwrap(),
            s,
            "the partial parse reads what the full one does"
        );
        let mut middle = lines.clone();
        middle.insert(2, middle[1].clone());
        let bytes: String = middle.iter().map(|v| format!("{v}\n")).collect();
        assert_eq!(
            TraceSummary::from_trace_bytes(bytes.as_bytes()).unwrap(),
            TraceSummary::from_values(&middle).unwrap(),
            "a probe between the first and the last"
        );
        assert!(TraceSummary::from_trace_bytes(b"{\"type\":\"header\"}\n[1,\n").is_err());
        assert_eq!(s.status, Some(Status::Completed));
        assert_eq!(s.metrics.train_loss, Some(0.5));
        assert_eq!(
            s.metrics.test_loss,
            Some(1.25),
            "the last probe that has test metrics"
        );
        assert_eq!(s.metrics.last_step, Some(1));
        assert_eq!(s.layers[0].delta_first, Some(1.0));
        assert_eq!(
            s.layers[0].delta_last, None,
            "non-finite numbers are null in the trace"
        );
        assert_eq!(s.layers[1].grad_w_last, Some(8.0));
        assert!(TraceSummary::from_values(&lines[1..]).is_err());
    }
}
