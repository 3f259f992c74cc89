//! What `ledger list` reads of each entry: its hash checked and its fields named as always,
//! but only the listed ones built — a 20,000-entry ledger is listed without building 20,000
//! configs, code identities and layer profiles it would not show.

use super::entry::{EntryKind, LineError, Origin, VerdictKind, lineage_of, read_line};
use super::{LedgerError, store};
use crate::experiment::ConfigHash;
use crate::train::Status;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::HashMap;
use std::path::Path;

/// One entry as a row of `ledger list`. Every field of an entry is named, so a line with an
/// unknown or a missing field is refused here too; the ones a row does not show are skipped
/// unbuilt ([`IgnoredAny`]). `ledger verify` checks the rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the skipped fields are named to be refused when missing, never read
pub struct Row {
    format: IgnoredAny,
    pub seq: u64,
    pub kind: EntryKind,
    pub replay_of: Option<String>,
    pub verdict: Option<RowVerdict>,
    #[serde(default)]
    pub lesion_of: Option<String>,
    tags: IgnoredAny,
    pub started: String,
    ended: IgnoredAny,
    pub experiment: String,
    pub config_hash: ConfigHash,
    config: IgnoredAny,
    seeds: IgnoredAny,
    code: IgnoredAny,
    execution: IgnoredAny,
    host: IgnoredAny,
    pub status: Status,
    diverged_at: IgnoredAny,
    error: IgnoredAny,
    pub metrics: RowMetrics,
    layers: IgnoredAny,
    trace: IgnoredAny,
    weights: IgnoredAny,
    #[serde(default)]
    pub origin: Option<Origin>,
    prev: IgnoredAny,
    pub hash: String,
}

/// The verdict's result word.
#[derive(Debug, Clone, Deserialize)]
pub struct RowVerdict {
    pub result: VerdictKind,
}

/// The final training loss.
#[derive(Debug, Clone, Deserialize)]
pub struct RowMetrics {
    pub train_loss: Option<f64>,
}

impl Row {
    /// Checks the line's hash, then reads the row.
    pub fn from_line(line: &[u8]) -> Result<Row, LineError> {
        read_line(line)
    }

    /// Every hash the entry is known by (as [`super::Entry::lineage`]).
    pub fn lineage(&self) -> Vec<String> {
        lineage_of(&self.hash, self.origin.as_ref())
    }
}

/// Every entry of the ledger in `dir` as a row, read on every core; refuses a torn tail and
/// a bad line as opening the ledger does.
pub fn read_rows(dir: &Path) -> Result<Vec<Row>, LedgerError> {
    let _lock = store::read_lock(dir);
    let bytes = store::read_entries(dir).map_err(|source| LedgerError::Io {
        dir: dir.to_path_buf(),
        source,
    })?;
    super::parse_lines(dir, &bytes, Row::from_line)
}

/// The seq of every hash an entry is known by (its own first, then merged lineages), to
/// name a replay's original in one lookup.
pub fn seq_by_hash(rows: &[Row]) -> HashMap<String, u64> {
    let mut map = HashMap::with_capacity(rows.len());
    for r in rows.iter().filter(|r| r.origin.is_some()) {
        for h in r.lineage() {
            map.entry(h).or_insert(r.seq);
        }
    }
    // Own hashes win over lineages, as `ledger show` finds them.
    for r in rows {
        map.insert(r.hash.clone(), r.seq);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Entry;

    #[test]
    fn a_row_reads_what_the_entry_says_and_refuses_what_it_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = crate::tui::fixtures::write_ledger(dir.path());
        let rows = read_rows(dir.path()).unwrap();
        assert_eq!(rows.len(), ledger.entries().len());
        for (r, e) in rows.iter().zip(ledger.entries()) {
            assert_eq!(
                (r.seq, &r.hash, &r.experiment),
                (e.seq, &e.hash, &e.experiment)
            );
            assert_eq!(
                (r.kind, r.status, &r.started),
                (e.kind, e.status, &e.started)
            );
            assert_eq!(r.metrics.train_loss, e.metrics.train_loss);
            assert_eq!(r.replay_of, e.replay_of);
            assert_eq!(
                r.verdict.as_ref().map(|v| v.result),
                e.verdict.as_ref().map(|v| v.result)
            );
        }
        let seqs = seq_by_hash(&rows);
        assert_eq!(seqs[&ledger.entries()[1].hash], 2);
        // A line sealed with an unknown field, or without a required one, is no row.
        let mut e: Entry = ledger.entries()[0].clone();
        e.seal();
        let line = e.to_line();
        let reseal = |body: String| {
            let body = format!("{}}}", &body[..body.len() - 75]);
            let h = blake3::hash(body.as_bytes()).to_hex();
            format!("{},\"hash\":\"{h}\"}}", &body[..body.len() - 1])
        };
        assert!(Row::from_line(line.as_bytes()).is_ok());
        let unknown = reseal(line.replacen("{\"format\"", "{\"extra\":1,\"format\"", 1));
        assert!(matches!(
            Row::from_line(unknown.as_bytes()),
            Err(LineError::Json(_))
        ));
        let missing = reseal(line.replacen(",\"tags\":[]", "", 1));
        assert!(matches!(
            Row::from_line(missing.as_bytes()),
            Err(LineError::Json(_))
        ));
        let mut altered = line.clone().into_bytes();
        altered[20] ^= 1;
        assert!(matches!(
            Row::from_line(&altered),
            Err(LineError::HashMismatch { .. })
        ));
    }
}
