//! Property tests (proptest) of the two readers that take input the lab did not write: the
//! experiment parser and the ledger reader. Mutated inputs must never panic, every refusal
//! must name the file, and the ledger reader must name exactly the line a change is in. Run
//! briefly in `make test` (`PROPTEST_CASES` raises the count).

use super::common::root;
use gradlab::experiment::Experiment;
use gradlab::ledger::verify::verify_dir;
use gradlab::ledger::{Ledger, store::ENTRIES};
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The repository's experiment files, as text.
fn experiments() -> &'static [(String, String)] {
    static FILES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut v: Vec<(String, String)> = std::fs::read_dir(root().join("experiments"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        v.sort();
        v
    })
}

/// Pieces a mutation splices in: TOML syntax, keys and values the parser must judge.
const TOKENS: &[&str] = &[
    "=",
    "[",
    "]",
    "[[",
    "\"",
    "'",
    "\n",
    "#",
    ".",
    ",",
    "{",
    "}",
    "-",
    "+",
    "e",
    "0",
    "-1",
    "1e308",
    "nan",
    "inf",
    "9223372036854775807",
    "18446744073709551615",
    "true",
    "\"\"",
    "depth = ",
    "width = 0",
    "[model]",
    "[train]",
    "[data]",
    "steps = ",
    "seed = ",
    "kind = ",
    "activation = \"x\"",
    "task = \"lstm\"",
    "\u{0}",
    "\u{feff}",
    "é",
    "\r\n",
    "   ",
];

/// One edit of a text: delete a range, insert a token, or replace a range with one.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    Replace(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Insert(a, t)),
        (any::<usize>(), 1..12usize, 0..TOKENS.len()).prop_map(|(a, n, t)| Edit::Replace(a, n, t)),
    ]
}

/// Applies edits to bytes (positions wrap around the length).
fn apply(mut b: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = b.len().max(1);
        match *e {
            Edit::Delete(a, n) => {
                let a = a % len;
                let end = (a + n).min(b.len());
                b.drain(a.min(end)..end);
            }
            Edit::Insert(a, t) => {
                let a = a % (b.len() + 1);
                b.splice(a..a, TOKENS[t].bytes());
            }
            Edit::Replace(a, n, t) => {
                let a = a % len;
                let end = (a + n).min(b.len());
                b.splice(a.min(end)..end, TOKENS[t].bytes());
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(cases(512))]

    /// A mutated experiment file is accepted — and then its canonical form is a fixed point
    /// (it parses to the same config and hash) — or refused with a message that names the file.
    #[test]
    fn a_mutated_experiment_is_parsed_or_refused_by_name(
        file in 0..64usize,
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let (name, text) = &experiments()[file % experiments().len()];
        let bytes = apply(text.clone().into_bytes(), &edits);
        let path = Path::new("mutated").join(name);
        let dir = tempfile::tempdir().unwrap();
        let on_disk = dir.path().join(name);
        std::fs::write(&on_disk, &bytes).unwrap();
        // Through the file reader (size bound, UTF-8 check) and the parser.
        match Experiment::load(&on_disk) {
            Ok(exp) => {
                let again = Experiment::parse(exp.canonical(), &path)
                    .unwrap_or_else(|e| panic!("the canonical form of an accepted file is refused: {e}"));
                prop_assert_eq!(again.canonical(), exp.canonical());
                prop_assert_eq!(again.hash(), exp.hash());
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(&on_disk.display().to_string()), "{}", msg);
                prop_assert!(msg.len() < 4096, "an echoed value is cut: {} bytes", msg.len());
            }
        }
    }
}

/// A small real ledger (two runs), made once per test process.
fn ledger_bytes() -> &'static (tempfile::TempDir, Vec<u8>) {
    static BASE: OnceLock<(tempfile::TempDir, Vec<u8>)> = OnceLock::new();
    BASE.get_or_init(|| {
        use gradlab::experiment::Overrides;
        use gradlab::train::{self, Control, DeviceKind, RunEnv};
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        for seed in [1, 2] {
            let exp = Experiment::parse(
                &super::common::small_experiment("prop", "[probe]\nevery = 10\n"),
                Path::new("p.toml"),
            )
            .unwrap()
            .with_overrides(Overrides {
                steps: Some(10),
                seed: Some(seed),
            })
            .unwrap();
            let env = RunEnv {
                device: DeviceKind::Portable,
                ..RunEnv::default()
            };
            let outcome = train::train(&exp, env, &Control::new(), &mut |_| {});
            ledger
                .record_run(&exp, env, &outcome, std::time::SystemTime::now())
                .unwrap();
        }
        let bytes = std::fs::read(dir.path().join(ENTRIES)).unwrap();
        (dir, bytes)
    })
}

/// 1-based line of byte `at` (a newline belongs to the line it ends).
fn line_of(bytes: &[u8], at: usize) -> usize {
    bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any mutation of the entries file: opening and verifying never panic; verify names as
    /// the first bad entry the line of the first changed byte — unless whole lines were cut
    /// off the end, which leaves a valid, shorter chain (what a published head is for).
    #[test]
    fn a_mutated_ledger_is_caught_at_the_line_it_changed(
        edits in proptest::collection::vec(edit(), 1..4),
        flips in proptest::collection::vec((any::<usize>(), 1..=255u8), 0..3),
    ) {
        let (base, original) = ledger_bytes();
        let mut bytes = apply(original.clone(), &edits);
        for (at, mask) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= mask;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("objects")).unwrap();
        super::common::copy_dir(&base.path().join("objects"), &dir.path().join("objects"));
        std::fs::write(dir.path().join(ENTRIES), &bytes).unwrap();
        let report = verify_dir(dir.path(), None);
        let opened = Ledger::open(dir.path()).map(|_| ());
        let first_change = original.iter().zip(&bytes).position(|(a, b)| a != b)
            .or_else(|| (original.len() != bytes.len()).then(|| original.len().min(bytes.len())));
        match first_change {
            None => prop_assert!(report.ok() && opened.is_ok()),
            Some(at) => {
                let cut_at_a_line = bytes.len() < original.len()
                    && original.starts_with(&bytes)
                    && (bytes.is_empty() || bytes.ends_with(b"\n"));
                if cut_at_a_line {
                    prop_assert!(report.ok(), "{:?}", report.problems);
                } else {
                    prop_assert_eq!(report.first_bad_line(), Some(line_of(original, at)),
                        "{:?}", report.problems);
                    // Opening checks every hash and parse (verify also the chain, the objects
                    // and the claims): a line that breaks those stops it, naming that line.
                    if let Err(e) = &opened {
                        let e = e.to_string();
                        prop_assert!(e.contains("line"), "{}", e);
                    }
                }
            }
        }
    }
}
