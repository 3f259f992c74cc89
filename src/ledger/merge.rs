//! `gradlab ledger merge`: fold ledgers made elsewhere (cluster jobs, other machines) into
//! this one, each entry keeping its own hash and saying where it came from.
//!
//! Every source is verified in full — every line, the chain, every object, every claim —
//! before anything is written; one problem anywhere refuses the whole merge. A foreign entry
//! cannot simply be appended: its `seq` and `prev` belong to its own chain. So it is appended
//! as a *merged entry* that repeats every field of the original, takes this ledger's `seq`
//! and `prev`, and embeds the original line verbatim in `origin` (with the source folder, its
//! head, the original seq and hash). `ledger verify` checks this chain as usual and, for a
//! merged entry, that the embedded line still hashes to the original hash and agrees with
//! the entry field by field. Entries already here — by their own hash or, through merges of
//! merges, by any hash in their lineage — are skipped, so merging twice adds nothing.

use super::entry::{Entry, Origin, hex_hash};
use super::object;
use super::store::{self, ENTRIES};
use super::verify::verify_dir;
use super::{Ledger, LedgerError, time};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How many of a source's problems the refusal quotes (verify lists them all).
const QUOTED_PROBLEMS: usize = 5;

/// Why a merge was refused or could not finish.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("'{dir}' is not a ledger folder (it has no {ENTRIES}); nothing was merged")]
    NotALedger { dir: PathBuf },
    #[error(
        "'{dir}' does not verify, so nothing was merged:\n{problems}\n(`gradlab --ledger {dir} ledger verify` lists every problem)"
    )]
    Unverified { dir: PathBuf, problems: String },
    #[error(
        "'{dir}' changed while it was being merged ({what}); nothing was appended, run the merge again"
    )]
    Changed { dir: PathBuf, what: String },
    #[error("'{dir}': {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What a merge did with one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSummary {
    /// The source folder, absolute.
    pub dir: PathBuf,
    /// Its head hash (None for an empty ledger).
    pub head: Option<String>,
    /// Entries it holds, all verified.
    pub entries: usize,
    /// Entries appended here.
    pub added: usize,
    /// Entries already here (or earlier in this merge), skipped.
    pub present: usize,
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeReport {
    pub sources: Vec<SourceSummary>,
    /// The merged entries appended, in order.
    pub added: Vec<Entry>,
}

/// A verified source: its folder, head, and each entry with its line verbatim.
struct Source {
    dir: PathBuf,
    head: Option<String>,
    entries: Vec<(Entry, String)>,
}

/// Verifies every source, then appends each of their entries not yet here as a merged entry
/// (objects copied first). Nothing is written unless every source verifies.
pub fn merge(ledger: &mut Ledger, sources: &[PathBuf]) -> Result<MergeReport, MergeError> {
    let loaded = sources
        .iter()
        .map(|dir| load(dir))
        .collect::<Result<Vec<_>, _>>()?;

    let mut known: HashSet<String> = ledger.entries().iter().flat_map(Entry::lineage).collect();
    let mut summaries = Vec::new();
    let mut planned: Vec<(usize, &Entry, &str)> = Vec::new();
    for (i, src) in loaded.iter().enumerate() {
        for (entry, line) in &src.entries {
            let lineage = entry.lineage();
            if lineage.iter().any(|h| known.contains(h)) {
                continue;
            }
            known.extend(lineage);
            planned.push((i, entry, line));
        }
        // Counted once the append has decided, under its lock, what is new.
        summaries.push(SourceSummary {
            dir: src.dir.clone(),
            head: src.head.clone(),
            entries: src.entries.len(),
            added: 0,
            present: 0,
        });
    }

    let here = ledger.dir().to_path_buf();
    let io_here = |source| MergeError::Io {
        dir: here.clone(),
        source,
    };
    if !planned.is_empty() {
        store::ensure_dir(&here).map_err(io_here)?;
    }
    let merged = time::rfc3339(SystemTime::now());
    let mut drafts = Vec::with_capacity(planned.len());
    for (i, original, line) in planned {
        let src = &loaded[i];
        let mut draft = original.clone();
        // Objects first: once a merged entry is durable, everything it names is here too.
        for obj in [&mut draft.trace, &mut draft.weights] {
            let Some(file_hash) = &obj.file_hash else {
                continue;
            };
            let path = object::object_path(&src.dir, &obj.hash);
            let gz = std::fs::read(&path).map_err(|source| MergeError::Io {
                dir: src.dir.clone(),
                source,
            })?;
            if &hex_hash(&gz) != file_hash {
                return Err(MergeError::Changed {
                    dir: src.dir.clone(),
                    what: format!("{} no longer has the verified bytes", path.display()),
                });
            }
            obj.file_hash = Some(object::put_compressed(&here, &obj.hash, &gz).map_err(io_here)?);
        }
        draft.origin = Some(Origin {
            source: src.dir.display().to_string(),
            source_head: src.head.clone().unwrap_or_default(),
            seq: original.seq,
            hash: original.hash.clone(),
            merged: merged.clone(),
            line: line.to_string(),
        });
        drafts.push(draft);
    }
    // Decided again under the append lock, so a concurrent merge cannot duplicate an entry.
    let added = ledger.append(drafts, true)?;
    for e in &added {
        let source = e.origin.as_ref().map(|o| o.source.as_str());
        if let Some(s) = summaries
            .iter_mut()
            .find(|s| Some(s.dir.display().to_string().as_str()) == source)
        {
            s.added += 1;
        }
    }
    for s in &mut summaries {
        s.present = s.entries - s.added;
    }
    Ok(MergeReport {
        sources: summaries,
        added,
    })
}

/// Verifies one source and reads exactly the entries that verified.
fn load(dir: &Path) -> Result<Source, MergeError> {
    let io = |source| MergeError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    if !dir.join(ENTRIES).is_file() {
        return Err(MergeError::NotALedger {
            dir: dir.to_path_buf(),
        });
    }
    // Canonical, so the origin names the folder the same way wherever merge was run from.
    let dir = dir.canonicalize().map_err(io)?;
    let report = verify_dir(&dir, None);
    if !report.ok() {
        let mut problems: Vec<String> = report
            .problems
            .iter()
            .take(QUOTED_PROBLEMS)
            .map(|p| format!("  {p}"))
            .collect();
        if report.problems.len() > QUOTED_PROBLEMS {
            problems.push(format!(
                "  … and {} more",
                report.problems.len() - QUOTED_PROBLEMS
            ));
        }
        return Err(MergeError::Unverified {
            dir,
            problems: problems.join("\n"),
        });
    }
    let bytes = {
        let _lock = store::read_lock(&dir);
        store::read_entries(&dir).map_err(|source| MergeError::Io {
            dir: dir.clone(),
            source,
        })?
    };
    // Appends after the verification are left for the next merge; a rewrite is refused.
    let scan = store::scan(&bytes);
    let lines = &scan.lines[..report.entries.min(scan.lines.len())];
    let changed = |what: &str| MergeError::Changed {
        dir: dir.clone(),
        what: what.to_string(),
    };
    if lines.len() != report.entries {
        return Err(changed("entries were removed"));
    }
    let mut entries = Vec::with_capacity(lines.len());
    for line in lines {
        let entry = Entry::from_line(line).map_err(|e| changed(&e.to_string()))?;
        let text = String::from_utf8(line.to_vec()).map_err(|e| changed(&e.to_string()))?;
        entries.push((entry, text));
    }
    let head = entries.last().map(|(e, _)| e.hash.clone());
    if head != report.head {
        return Err(changed("its head is not the one verified"));
    }
    Ok(Source { dir, head, entries })
}
