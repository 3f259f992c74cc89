//! The append-only, hash-chained ledger of runs: record, verify, replay, audit.
//!
//! Every run ends as one entry (a line of `entries.jsonl`) that embeds its canonical config,
//! seeds, code identity and environment, summarises its result, and names its trace and
//! final weights by blake3; those bytes are stored beside it as compressed, content-addressed
//! objects. Each entry holds the previous entry's hash, so altering, deleting or reordering
//! any entry breaks the chain; publishing the head hash pins the whole history.
//! `ledger/README.md` specifies the format for independent verifiers.
//!
//! - [`entry`]: the entry type, its line form and hash rule, the trace summary it claims.
//! - [`store`]: files, the lock, durable appends, the object store, repair.
//! - [`verify`]: every check, with the first bad entry named.
//! - [`replay`]: rerun an entry and compare; audit a seeded sample.
//! - [`merge`]: fold ledgers made elsewhere into this one, each entry keeping its own hash.
//! - [`render`] and [`export`]: text for the command line, traces as CSV or JSON Lines.
//! - [`environment`] and [`time`]: code identity, host, UTC stamps.

pub mod compare;
pub mod entry;
pub mod environment;
pub mod export;
pub mod lesion;
mod lines;
pub mod merge;
pub mod object;
pub mod render;
pub mod replay;
pub mod row;
pub mod store;
pub mod time;
pub mod verify;

pub use entry::{
    Agreement, Difference, Entry, EntryKind, LayerProfile, Metrics, ObjectRef, Origin, Verdict,
    VerdictKind,
};
pub use merge::{MergeError, MergeReport, merge};
pub use replay::{AuditItem, AuditReport, ReplayOptions, ReplayReport, audit, replay, replay_with};
pub use verify::{Problem, VerifyReport};

use crate::experiment::{ConfigError, Experiment};
use crate::train::{Outcome, RunEnv, TraceLine};
use entry::{Execution, GENESIS, LEDGER_FORMAT, LineError, Seeds, TraceSummary};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Weights objects larger than this many (uncompressed) bytes are not stored by default;
/// their hash always is.
pub const DEFAULT_WEIGHTS_CAP: u64 = 256 * 1024;

/// Everything that can go wrong reading or writing a ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "ledger {path}: line {line} is torn ({bytes} bytes without a newline: an append was interrupted); \
         run `gradlab ledger repair` to move it aside"
    )]
    TornTail {
        path: PathBuf,
        line: usize,
        bytes: usize,
    },
    #[error(
        "ledger {path}: line {line} (entry {line}): {source}; run `gradlab ledger verify` for a full report"
    )]
    BadEntry {
        path: PathBuf,
        line: usize,
        #[source]
        source: LineError,
    },
    #[error(
        "no entry '{id}': the ledger has {count} entries (give a seq number 1..={count} or a hash prefix)"
    )]
    NotFound { id: String, count: usize },
    #[error("'{id}' matches entries {matches}: give more hex digits")]
    Ambiguous { id: String, matches: String },
    #[error("entry {seq}: {source}")]
    Object {
        seq: u64,
        #[source]
        source: object::ObjectError,
    },
    #[error(
        "entry {seq}: the weights object is not stored (it was over the size cap when recorded)"
    )]
    WeightsNotStored { seq: u64 },
    #[error("entry {seq}: the stored trace cannot be read: {message}")]
    Trace { seq: u64, message: String },
    #[error("entry {seq}: the embedded config no longer parses: {source}")]
    Config {
        seq: u64,
        #[source]
        source: ConfigError,
    },
    #[error("entry {seq}: backend '{backend}' is unknown to this build")]
    Backend { seq: u64, backend: String },
    #[error(
        "entry {seq}: seeds.version {version} is unknown to this build (it knows 1 and 2): \
         replay it with a newer gradlab"
    )]
    Streams { seq: u64, version: u32 },
    #[error("entry {seq}: no lesion study: {message}")]
    Lesion { seq: u64, message: String },
}

/// Settings of a ledger writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerOptions {
    /// Largest weights object stored, in uncompressed bytes.
    pub weights_cap: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            weights_cap: DEFAULT_WEIGHTS_CAP,
        }
    }
}

/// What a new entry is, beyond the run itself.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// For a replay: the original's hash and the verdict.
    pub replay: Option<(String, Verdict)>,
    /// For a lesion study: the hash of the trained entry it studied.
    pub lesion_of: Option<String>,
    pub tags: Vec<String>,
}

/// An opened ledger folder and the entries it held when opened (or last appended to).
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    entries: Vec<Entry>,
    options: LedgerOptions,
}

impl Ledger {
    /// Opens the ledger in `dir` (a folder that does not exist yet is an empty ledger).
    /// Fails on a torn tail or a line that is not a valid, self-consistent entry; chain
    /// and objects are checked by [`Ledger::verify`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Ledger, LedgerError> {
        Self::open_with(dir, LedgerOptions::default())
    }

    pub fn open_with(dir: impl AsRef<Path>, options: LedgerOptions) -> Result<Ledger, LedgerError> {
        let dir = dir.as_ref().to_path_buf();
        let _lock = store::read_lock(&dir);
        let bytes = store::read_entries(&dir).map_err(|source| LedgerError::Io {
            dir: dir.clone(),
            source,
        })?;
        let entries = parse_all(&dir, &bytes)?;
        Ok(Ledger {
            dir,
            entries,
            options,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> LedgerOptions {
        self.options
    }

    /// The entries in file order (seq 1 first).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The last entry, whose hash is the ledger's head.
    pub fn head(&self) -> Option<&Entry> {
        self.entries.last()
    }

    /// Finds an entry by seq number (up to 7 decimal digits) or by a unique prefix of at
    /// least 4 hex digits of its hash (an all-digit prefix needs 8 or more). A merged entry
    /// is also found by its original hash, the one its source ledger knew it by.
    pub fn find(&self, id: &str) -> Result<&Entry, LedgerError> {
        let not_found = || LedgerError::NotFound {
            id: id.to_string(),
            count: self.entries.len(),
        };
        if !id.is_empty() && id.len() < 8 && id.chars().all(|c| c.is_ascii_digit()) {
            let seq = id.parse::<u64>().map_err(|_| not_found())?;
            return self
                .entries
                .iter()
                .find(|e| e.seq == seq)
                .ok_or_else(not_found);
        }
        let id_lower = id.to_ascii_lowercase();
        if id_lower.len() < 4 || !id_lower.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let matches: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.lineage().iter().any(|h| h.starts_with(&id_lower)))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(not_found()),
            many => Err(LedgerError::Ambiguous {
                id: id.to_string(),
                matches: many
                    .iter()
                    .map(|e| e.seq.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Records a finished run (any status). Returns once the entry is durable on disk.
    pub fn record_run(
        &mut self,
        exp: &Experiment,
        env: RunEnv,
        outcome: &Outcome,
        started: SystemTime,
    ) -> Result<Entry, LedgerError> {
        self.record(exp, env, outcome, started, Extra::default())
    }

    /// Records a replay with its verdict, linked to the entry it reran.
    pub fn record_replay(
        &mut self,
        report: &ReplayReport,
        tags: Vec<String>,
    ) -> Result<Entry, LedgerError> {
        let extra = Extra {
            replay: Some((report.original.hash.clone(), report.verdict.clone())),
            lesion_of: None,
            tags,
        };
        self.record(
            &report.experiment,
            report.env,
            &report.outcome,
            report.started,
            extra,
        )
    }

    /// Records a run with the extra fields of a replay or tags.
    pub fn record(
        &mut self,
        exp: &Experiment,
        env: RunEnv,
        outcome: &Outcome,
        started: SystemTime,
        extra: Extra,
    ) -> Result<Entry, LedgerError> {
        let io = |source| LedgerError::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut entry = self.draft(exp, env, outcome, started, extra)?;
        store::ensure_dir(&self.dir).map_err(io)?;
        // Objects first: once the entry line is durable, everything it names is too.
        // Streamed from the run's spool: a long trace is never all in memory here either.
        let trace_file =
            object::put_stream(&self.dir, outcome.trace.hash(), &mut outcome.trace.reader())
                .map_err(io)?;
        entry.trace = ObjectRef {
            hash: outcome.trace.hash().to_string(),
            bytes: outcome.trace.len(),
            file_hash: Some(trace_file),
        };
        let weights_hash = entry::hex_hash(&outcome.weights);
        let weights_file = if outcome.weights.len() as u64 <= self.options.weights_cap {
            Some(
                object::put_object(&self.dir, &outcome.weights)
                    .map_err(io)?
                    .1,
            )
        } else {
            None
        };
        entry.weights = ObjectRef {
            hash: weights_hash,
            bytes: outcome.weights.len() as u64,
            file_hash: weights_file,
        };

        let mut written = self.append(vec![entry], false)?;
        Ok(written.pop().expect("one entry was appended"))
    }

    /// Appends finished drafts (objects already stored) under the exclusive lock, giving each
    /// its seq, prev and hash, in one write and one fsync. With `skip_known`, a draft whose
    /// lineage meets an entry already in the file (or one appended before it in this call)
    /// is dropped, decided under the lock so concurrent merges cannot duplicate an entry.
    pub(crate) fn append(
        &mut self,
        drafts: Vec<Entry>,
        skip_known: bool,
    ) -> Result<Vec<Entry>, LedgerError> {
        let io = |source| LedgerError::Io {
            dir: self.dir.clone(),
            source,
        };
        store::ensure_dir(&self.dir).map_err(io)?;
        let _lock = store::lock(&self.dir, true).map_err(io)?;
        // Read only the end of the file when it is the end this ledger already knows (no one
        // else appended since): an append then costs the same at 20 entries or 20,000.
        let tail = store::read_tail(&self.dir).map_err(io)?;
        let known_end = match (&tail.last, self.entries.last()) {
            (None, None) => true,
            (Some(line), Some(mine)) => {
                Entry::from_line(line).is_ok_and(|e| e.hash == mine.hash && e.seq == mine.seq)
            }
            _ => false,
        };
        // Otherwise (another writer, a torn tail, a merge that must see every lineage) the
        // whole file is read again, and `current` replaces what this ledger knew.
        let current = if !skip_known && tail.torn.is_none() && known_end {
            None
        } else {
            Some(self.read_current()?)
        };
        let entries = current.as_ref().unwrap_or(&self.entries);
        let (mut seq, mut prev) = entries
            .last()
            .map_or((0, GENESIS.to_string()), |e| (e.seq, e.hash.clone()));
        let mut known: std::collections::HashSet<String> = if skip_known {
            entries.iter().flat_map(Entry::lineage).collect()
        } else {
            Default::default()
        };
        let mut written = Vec::new();
        let mut out = Vec::new();
        for mut entry in drafts {
            if skip_known {
                let lineage = entry.lineage();
                if lineage.iter().any(|h| known.contains(h)) {
                    continue;
                }
                known.extend(lineage);
            }
            seq += 1;
            entry.seq = seq;
            entry.prev = prev;
            entry.seal();
            prev = entry.hash.clone();
            out.extend_from_slice(entry.to_line().as_bytes());
            out.push(b'\n');
            written.push(entry);
        }
        if !written.is_empty() {
            // `append_line` adds the final newline itself.
            out.pop();
            store::append_line(&self.dir, &out).map_err(io)?;
        }
        if let Some(current) = current {
            self.entries = current;
        }
        self.entries.extend(written.iter().cloned());
        Ok(written)
    }

    /// Every entry in the file as it is now (the caller holds the lock): refuses a torn tail
    /// and an unreadable last entry, naming the line.
    fn read_current(&self) -> Result<Vec<Entry>, LedgerError> {
        let io = |source| LedgerError::Io {
            dir: self.dir.clone(),
            source,
        };
        let bytes = store::read_entries(&self.dir).map_err(io)?;
        let scan = store::scan(&bytes);
        let path = self.dir.join(store::ENTRIES);
        if let Some(torn) = &scan.torn {
            return Err(LedgerError::TornTail {
                path,
                line: scan.lines.len() + 1,
                bytes: torn.len(),
            });
        }
        if let Some(last) = scan.lines.last() {
            Entry::from_line(last).map_err(|source| LedgerError::BadEntry {
                path,
                line: scan.lines.len(),
                source,
            })?;
        }
        Ok(scan
            .lines
            .iter()
            .filter_map(|l| Entry::from_line(l).ok())
            .collect())
    }

    /// The entry for a run, without seq, chain, objects or hash.
    fn draft(
        &self,
        exp: &Experiment,
        env: RunEnv,
        outcome: &Outcome,
        started: SystemTime,
        extra: Extra,
    ) -> Result<Entry, LedgerError> {
        let summary =
            summarize(outcome).map_err(|message| LedgerError::Trace { seq: 0, message })?;
        let (replay_of, verdict) = extra
            .replay
            .map_or((None, None), |(of, v)| (Some(of), Some(v)));
        let end = &outcome.end;
        let mut metrics = summary.metrics;
        metrics.wall_s = (outcome.wall_s * 1000.0).round() / 1000.0;
        Ok(Entry {
            format: LEDGER_FORMAT.into(),
            seq: 0,
            kind: match (&replay_of, &extra.lesion_of) {
                (Some(_), _) => EntryKind::Replay,
                (None, Some(_)) => EntryKind::Lesion,
                (None, None) => EntryKind::Run,
            },
            replay_of,
            verdict,
            lesion_of: extra.lesion_of,
            tags: extra.tags,
            started: time::rfc3339(started),
            ended: time::rfc3339(SystemTime::now()),
            experiment: exp.name().to_string(),
            config_hash: exp.hash().clone(),
            config: exp.canonical().to_string(),
            seeds: Seeds {
                experiment: exp.seed(),
                backend: exp.seed(),
                streams: if outcome.header.lesion.is_some() {
                    vec!["data", "init", "lesion", "paths"]
                } else {
                    vec!["data", "init", "batches"]
                }
                .into_iter()
                .map(String::from)
                .collect(),
                version: (env.streams != crate::rng::Version::V1).then(|| env.streams.number()),
            },
            code: environment::code_identity(),
            // What ran, as the trace header says (`portable` may have handed a run to `cpu`).
            execution: Execution {
                backend: outcome.header.backend.clone(),
                device: outcome.header.device.clone(),
                threads: outcome.header.threads.unwrap_or(env.threads),
            },
            host: environment::host(),
            status: end.status,
            diverged_at: end.diverged_at,
            error: end.error.clone(),
            metrics,
            layers: summary.layers,
            trace: ObjectRef {
                hash: String::new(),
                bytes: 0,
                file_hash: None,
            },
            weights: ObjectRef {
                hash: String::new(),
                bytes: 0,
                file_hash: None,
            },
            origin: None,
            prev: String::new(),
            hash: String::new(),
        })
    }

    /// Recomputes every hash, checks the chain, every object and every claim.
    pub fn verify(&self) -> VerifyReport {
        verify::verify_dir(&self.dir, None)
    }

    /// Checks the entry's trace object (one gzip member whose content has the recorded hash)
    /// as it streams, holding none of it.
    pub fn check_trace(&self, entry: &Entry) -> Result<(), LedgerError> {
        object::check_object(&self.dir, &entry.trace.hash)
            .map(|_| ())
            .map_err(|source| LedgerError::Object {
                seq: entry.seq,
                source,
            })
    }

    /// The entry's trace bytes, checked against its hash.
    pub fn load_trace_bytes(&self, entry: &Entry) -> Result<Vec<u8>, LedgerError> {
        object::read_object(&self.dir, &entry.trace.hash)
            .map(|(bytes, _)| bytes)
            .map_err(|source| LedgerError::Object {
                seq: entry.seq,
                source,
            })
    }

    /// The entry's trace records.
    pub fn load_trace(&self, entry: &Entry) -> Result<Vec<TraceLine>, LedgerError> {
        let bytes = self.load_trace_bytes(entry)?;
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_slice(l).map_err(|e| LedgerError::Trace {
                    seq: entry.seq,
                    message: format!("line {}: {e}", i + 1),
                })
            })
            .collect()
    }

    /// The entry's final weights (canonical layout), checked against its hash.
    pub fn load_weights(&self, entry: &Entry) -> Result<Vec<u8>, LedgerError> {
        if entry.weights.file_hash.is_none() {
            return Err(LedgerError::WeightsNotStored { seq: entry.seq });
        }
        object::read_object(&self.dir, &entry.weights.hash)
            .map(|(bytes, _)| bytes)
            .map_err(|source| LedgerError::Object {
                seq: entry.seq,
                source,
            })
    }
}

/// Cuts a torn tail off the ledger in `dir`, keeping the bytes in a side file.
pub fn repair(dir: &Path) -> Result<store::Repair, LedgerError> {
    store::repair(dir).map_err(|source| LedgerError::Io {
        dir: dir.to_path_buf(),
        source,
    })
}

/// The trace summary of an outcome, read from its trace's bytes as they stream (so the
/// numbers written in the entry are the trace's own spellings, as `verify` rederives them).
pub(crate) fn summarize(outcome: &Outcome) -> Result<TraceSummary, String> {
    let mut builder = entry::SummaryBuilder::default();
    std::io::copy(&mut outcome.trace.reader(), &mut builder)
        .map_err(|e| format!("reading the run's trace back: {e}"))?;
    builder.finish()
}

/// Parses every line strictly: a torn tail or an invalid line is an error.
fn parse_all(dir: &Path, bytes: &[u8]) -> Result<Vec<Entry>, LedgerError> {
    parse_lines(dir, bytes, Entry::from_line)
}

/// Every line of the entries file's `bytes` read by `parse` (which checks its hash), on
/// every core; a torn tail or a bad line is an error naming the line.
pub(crate) fn parse_lines<T: Send>(
    dir: &Path,
    bytes: &[u8],
    parse: fn(&[u8]) -> Result<T, LineError>,
) -> Result<Vec<T>, LedgerError> {
    let scan = store::scan(bytes);
    let path = dir.join(store::ENTRIES);
    if let Some(torn) = &scan.torn {
        return Err(LedgerError::TornTail {
            path,
            line: scan.lines.len() + 1,
            bytes: torn.len(),
        });
    }
    // Hashing and parsing are independent per line: on every core (a 20,000-entry ledger of
    // real runs is some 100 MB).
    use rayon::prelude::*;
    store::on_every_core(|| {
        scan.lines
            .par_iter()
            .enumerate()
            .map(|(i, l)| {
                parse(l).map_err(|source| LedgerError::BadEntry {
                    path: path.clone(),
                    line: i + 1,
                    source,
                })
            })
            .collect()
    })
}

/// Which entries `ledger list` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub experiment: Option<String>,
    pub status: Option<crate::train::Status>,
    /// Entries started at or after this many seconds since the epoch.
    pub since: Option<i64>,
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        self.matches_fields(&e.experiment, e.status, &e.started)
    }

    pub fn matches_row(&self, r: &row::Row) -> bool {
        self.matches_fields(&r.experiment, r.status, &r.started)
    }

    fn matches_fields(
        &self,
        experiment: &str,
        status: crate::train::Status,
        started: &str,
    ) -> bool {
        self.experiment.as_ref().is_none_or(|x| experiment == x)
            && self.status.is_none_or(|s| status == s)
            && self
                .since
                .is_none_or(|t| time::parse(started).is_some_and(|s| s >= t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_is_summarised_as_its_trace_bytes_are() {
        // Probes every 5 steps, test metrics every 10: the middle probes, some with test
        // metrics, are read only for their kind and test.
        let exp = Experiment::parse(
            "[experiment]\nname = \"s\"\nseed = 2\n[data]\ntask = \"spirals\"\ntrain_size = 64\n\
             test_size = 32\n[model]\ndepth = 3\nwidth = 8\n[train]\nsteps = 23\nbatch_size = 16\n\
             [probe]\nevery = 5\ntest_every = 10\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let outcome = crate::train::train(
            &exp,
            RunEnv::default(),
            &crate::train::Control::new(),
            &mut |_| {},
        );
        let probes = outcome.probes();
        assert!(probes.len() > 3);
        let middle = &probes[1..probes.len() - 1];
        assert!(middle.iter().any(|p| p.test.is_some()));
        // Every record in full, as the summary was made before.
        let mut full =
            vec![serde_json::to_value(TraceLine::Header(outcome.header.clone())).unwrap()];
        for p in &probes {
            full.push(serde_json::to_value(TraceLine::Probe(p.clone())).unwrap());
        }
        full.push(serde_json::to_value(TraceLine::End(outcome.end.clone())).unwrap());
        let expected = TraceSummary::from_values(&full).unwrap();
        // Parsed back from the trace's text, every number is the one written (serde_json's
        // `float_roundtrip`: its default parser is not correctly rounded).
        assert_eq!(summarize(&outcome).unwrap(), expected);
        assert!(expected.metrics.test_loss.is_some());
        // Fed in odd chunks, the same.
        let bytes = outcome.trace.bytes().unwrap();
        let mut b = entry::SummaryBuilder::default();
        for chunk in bytes.chunks(977) {
            b.feed(chunk);
        }
        assert_eq!(b.finish().unwrap(), expected);
    }
}
