//! State of the Ledger, Diff and Compare screens: the entries as last read, the selection,
//! the marks, the views' settings, and what the background jobs (replay, verify, export)
//! last reported. Everything here changes by keys and job events only.

use super::Screen;
use crate::ledger::{Entry, LayerProfile, VerifyReport};
use crate::tui::event::{Exported, Replayed};
use std::path::PathBuf;

/// Where the entries on screen come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    /// The session has no ledger (`--no-ledger`).
    Off,
    /// Not read yet in this session.
    Unread,
    /// A read is under way (the previous entries, if any, stay on screen meanwhile).
    Reading,
    Ready,
    /// The ledger cannot be read (a torn tail, an altered line, …): the reason.
    Failed(String),
}

/// Which probe a profile is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAt {
    /// The first probe: the network at initialisation, where the theory applies.
    First,
    /// The last probe: after training.
    Last,
}

impl ProbeAt {
    pub fn toggled(self) -> Self {
        match self {
            ProbeAt::First => ProbeAt::Last,
            ProbeAt::Last => ProbeAt::First,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ProbeAt::First => "first probe",
            ProbeAt::Last => "last probe",
        }
    }
    /// ‖δ‖ of a layer at this probe.
    pub fn delta(self, l: &LayerProfile) -> Option<f64> {
        match self {
            ProbeAt::First => l.delta_first,
            ProbeAt::Last => l.delta_last,
        }
    }
}

/// The replay started from this screen.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayStatus {
    Running {
        seq: u64,
        step: usize,
        total: usize,
        /// `s` was pressed: the rerun ends at its next step.
        stopping: bool,
    },
    Done {
        seq: u64,
        result: Result<Replayed, String>,
    },
}

#[derive(Debug, Clone)]
pub enum VerifyStatus {
    Running,
    Done(VerifyReport),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExportStatus {
    Running(u64),
    Done {
        seq: u64,
        result: Result<Exported, String>,
    },
}

/// How the Compare screen draws the marked entries' profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareView {
    /// The entries compared, in the order they were marked.
    pub seqs: Vec<u64>,
    /// ‖δ^l‖/‖δ^out‖ (true) or ‖δ^l‖ itself.
    pub normalised: bool,
    /// The mean-field prediction drawn under each MLP entry.
    pub theory: bool,
}

impl Default for CompareView {
    fn default() -> Self {
        Self {
            seqs: Vec::new(),
            normalised: true,
            theory: true,
        }
    }
}

/// Everything the Ledger, Diff and Compare screens know.
#[derive(Debug, Clone)]
pub struct LedgerState {
    /// The ledger folder (`None` without a ledger).
    pub dir: Option<PathBuf>,
    pub load: Load,
    /// In file order, seq 1 first; the table shows them newest first.
    pub entries: Vec<Entry>,
    /// Row of the table (0 = newest entry).
    pub selected: usize,
    /// Seqs of the marked entries, in the order they were marked.
    pub marked: Vec<u64>,
    pub replay: Option<ReplayStatus>,
    pub verify: Option<VerifyStatus>,
    pub export: Option<ExportStatus>,
    /// The probe the profiles of the Diff and Compare screens come from.
    pub at: ProbeAt,
    /// The Diff screen's entries: (the marked one, the selected one).
    pub diff: Option<(u64, u64)>,
    pub compare: CompareView,
    /// Where Esc leads from the Ledger screen.
    pub back: Screen,
}

impl Default for LedgerState {
    fn default() -> Self {
        Self {
            dir: None,
            load: Load::Off,
            entries: Vec::new(),
            selected: 0,
            marked: Vec::new(),
            replay: None,
            verify: None,
            export: None,
            at: ProbeAt::First,
            diff: None,
            compare: CompareView::default(),
            back: Screen::Experiments,
        }
    }
}

impl LedgerState {
    /// A ledger in `dir`, not read yet.
    pub fn at(dir: PathBuf) -> Self {
        Self {
            dir: Some(dir),
            load: Load::Unread,
            ..Self::default()
        }
    }

    /// The entry on table row `row` (newest first).
    pub fn row(&self, row: usize) -> Option<&Entry> {
        let n = self.entries.len();
        (row < n).then(|| &self.entries[n - 1 - row])
    }

    pub fn selected_entry(&self) -> Option<&Entry> {
        self.row(self.selected)
    }

    pub fn by_seq(&self, seq: u64) -> Option<&Entry> {
        // Line n holds seq n in a sound ledger; search in case it is not.
        match self.entries.get((seq as usize).wrapping_sub(1)) {
            Some(e) if e.seq == seq => Some(e),
            _ => self.entries.iter().find(|e| e.seq == seq),
        }
    }

    pub fn is_marked(&self, seq: u64) -> bool {
        self.marked.contains(&seq)
    }

    pub fn replay_running(&self) -> bool {
        matches!(self.replay, Some(ReplayStatus::Running { .. }))
    }

    /// New entries from the ledger: the selection stays on the same entry, marks of
    /// entries that are gone are dropped.
    pub fn loaded(&mut self, result: Result<Vec<Entry>, String>) {
        let keep = self.selected_entry().map(|e| e.seq);
        match result {
            Ok(entries) => {
                self.entries = entries;
                self.load = Load::Ready;
            }
            Err(e) => {
                self.entries.clear();
                self.load = Load::Failed(e);
            }
        }
        let n = self.entries.len();
        self.selected = keep
            .and_then(|seq| self.entries.iter().position(|e| e.seq == seq))
            .map_or(0, |i| n - 1 - i);
        let entries = &self.entries;
        self.marked.retain(|s| entries.iter().any(|e| e.seq == *s));
    }

    pub fn move_by(&mut self, by: isize) {
        let last = self.entries.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(by).min(last);
    }

    /// Marks the selected entry, or unmarks it.
    pub fn toggle_mark(&mut self) -> Option<bool> {
        let seq = self.selected_entry()?.seq;
        if let Some(i) = self.marked.iter().position(|&s| s == seq) {
            self.marked.remove(i);
            Some(false)
        } else {
            self.marked.push(seq);
            Some(true)
        }
    }

    /// The pair the Diff screen shows: the most recently marked entry other than the
    /// selected one, and the selected one; or what the user has to do first.
    pub fn diff_pair(&self) -> Result<(u64, u64), &'static str> {
        let b = self
            .selected_entry()
            .ok_or("the ledger has no entries to diff")?
            .seq;
        match self.marked.iter().rev().find(|&&s| s != b) {
            Some(&a) => Ok((a, b)),
            None if self.marked.is_empty() => {
                Err("mark an entry with m, select another, then press d to diff them")
            }
            None => Err("select another entry to diff with the marked one"),
        }
    }
}
