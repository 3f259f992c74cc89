//! State of the Experiments screen: the files in the experiments folder, each validated.

use crate::experiment::Experiment;
use std::path::{Path, PathBuf};

/// One file of the folder: its experiment, or why it is not one.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub loaded: Result<Experiment, String>,
}

impl Entry {
    /// The file name, which is how the list names an invalid file.
    pub fn file_name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// Which half of the screen the arrow keys move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    List,
    Preview,
}

#[derive(Debug, Clone)]
pub struct ExperimentsState {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
    /// Why the folder itself could not be read, if it could not.
    pub dir_error: Option<String>,
    pub selected: usize,
    pub focus: Focus,
    pub preview_scroll: usize,
}

impl ExperimentsState {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            entries: Vec::new(),
            dir_error: None,
            selected: 0,
            focus: Focus::List,
            preview_scroll: 0,
        }
    }

    /// Replaces the entries, keeping the selection on the same file when it still exists.
    pub fn set_entries(&mut self, scanned: Result<Vec<Entry>, String>) {
        let keep = self.selected_entry().map(|e| e.path.clone());
        match scanned {
            Ok(entries) => {
                self.entries = entries;
                self.dir_error = None;
            }
            Err(e) => {
                self.entries.clear();
                self.dir_error = Some(e);
            }
        }
        self.selected = keep
            .and_then(|p| self.entries.iter().position(|e| e.path == p))
            .unwrap_or(0)
            .min(self.entries.len().saturating_sub(1));
        self.preview_scroll = 0;
    }

    pub fn selected_entry(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    pub fn move_by(&mut self, by: isize) {
        match self.focus {
            Focus::List => {
                let last = self.entries.len().saturating_sub(1);
                let next = self.selected.saturating_add_signed(by).min(last);
                if next != self.selected {
                    self.selected = next;
                    self.preview_scroll = 0;
                }
            }
            Focus::Preview => self.preview_scroll = self.preview_scroll.saturating_add_signed(by),
        }
    }
}

/// Reads every `*.toml` in `dir`, in file-name order, validating each.
pub fn scan(dir: &Path) -> Result<Vec<Entry>, String> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the folder '{}': {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let loaded = Experiment::load(&path).map_err(|e| e.to_string());
            Entry { path, loaded }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_lists_valid_and_invalid_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.toml"), "[experiment]\nname = \"b\"\n").unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            "[experiment]\nname = \"a\"\n[model]\ndepth = 0\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an experiment").unwrap();
        let entries = scan(dir.path()).unwrap();
        assert_eq!(
            entries.iter().map(Entry::file_name).collect::<Vec<_>>(),
            ["a.toml", "b.toml"]
        );
        let err = entries[0].loaded.as_ref().unwrap_err();
        assert!(
            err.ends_with("a.toml:4: model.depth = 0: must be between 1 and 500"),
            "{err}"
        );
        assert_eq!(entries[1].loaded.as_ref().unwrap().name(), "b");
    }

    #[test]
    fn a_missing_folder_is_reported_not_fatal() {
        let err = scan(Path::new("/nonexistent/experiments")).unwrap_err();
        assert!(
            err.starts_with("cannot read the folder '/nonexistent/experiments'"),
            "{err}"
        );
    }

    #[test]
    fn rescans_keep_the_selection_on_the_same_file() {
        let e = |n: &str| Entry {
            path: PathBuf::from(n),
            loaded: Err("x".into()),
        };
        let mut s = ExperimentsState::new("d".into());
        s.set_entries(Ok(vec![e("a"), e("b"), e("c")]));
        s.move_by(2);
        assert_eq!(s.selected, 2);
        s.set_entries(Ok(vec![e("0"), e("a"), e("b"), e("c")]));
        assert_eq!(s.selected_entry().unwrap().path, PathBuf::from("c"));
        s.set_entries(Ok(vec![e("a")]));
        assert_eq!(s.selected, 0);
    }
}
