//! Two verifiers, one verdict: `tools/ledger-verify.py` (Python, written from
//! `ledger/README.md` alone) and `gradlab ledger verify` must agree — ok or not, and the same
//! bad entries — on the repository's ledger and on every kind of tampering the ledger tests
//! use: flipped bytes, damaged or missing objects, lines deleted, moved or torn, truncation and
//! rewritten history against a published head, and resealed forgeries of claims, fields,
//! stamps, replays and merged entries' origins.
//!
//! The Python verifier needs the `blake3` package: `make test` runs `.ci/ensure-python` first,
//! which makes `tools/.venv`; `GRADLAB_PYTHON` names another interpreter.

use super::common::{copy_dir, gradlab_std, root, small_experiment, write_experiment};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one verifier said about one ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Said {
    ok: bool,
    entries: u64,
    head: Option<String>,
    /// The lines with a problem (the first bad entry is the first of them).
    bad_lines: BTreeSet<u64>,
    /// Whether there was a problem with the ledger as a whole (a published head not found).
    whole: bool,
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("GRADLAB_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join("tools/.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `bash .ci/ensure-python` (`make test` does) or set GRADLAB_PYTHON",
        venv.display()
    );
    venv
}

/// Reads `--json` output and checks the exit status agrees with it.
fn said(who: &str, out: std::process::Output) -> (Said, serde_json::Value) {
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{who} printed no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let ok = v["ok"].as_bool().unwrap();
    let code = out.status.code();
    assert_eq!(
        code,
        Some(if ok { 0 } else { 1 }),
        "{who}'s exit status: {text}"
    );
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(ok, problems.is_empty(), "{who}: {text}");
    let s = Said {
        ok,
        entries: v["entries"].as_u64().unwrap(),
        head: v["head"].as_str().map(str::to_string),
        bad_lines: problems.iter().filter_map(|p| p["line"].as_u64()).collect(),
        whole: problems.iter().any(|p| p["line"].is_null()),
    };
    (s, v)
}

/// Both verifiers on `ledger` (with `head`); a disagreement is added to `disagreements`.
/// Returns what `gradlab` said.
fn both(case: &str, ledger: &Path, head: Option<&str>, disagreements: &mut Vec<String>) -> Said {
    let mut rust = gradlab_std();
    rust.args(["ledger", "verify", "--json"])
        .env("GRADLAB_LEDGER", ledger);
    let mut py = Command::new(python());
    py.arg(root().join("tools/ledger-verify.py"))
        .args(["--json", "--ledger"])
        .arg(ledger);
    if let Some(h) = head {
        rust.args(["--head", h]);
        py.args(["--head", h]);
    }
    let (r, rv) = said("gradlab", rust.output().unwrap());
    let (p, pv) = said("ledger-verify.py", py.output().unwrap());
    if r != p {
        disagreements.push(format!(
            "{case}: the verifiers disagree\n gradlab: {rv}\n python: {pv}"
        ));
    }
    r
}

// ---- editing lines as a forger would: change the text, reseal, re-chain -------------------

fn body_of(line: &str) -> String {
    format!("{}}}", &line[..line.len() - 75])
}

fn seal(body: &str) -> String {
    let h = blake3::hash(body.as_bytes()).to_hex();
    format!("{},\"hash\":\"{h}\"}}", &body[..body.len() - 1])
}

fn hash_of(line: &str) -> &str {
    &line[line.len() - 66..line.len() - 2]
}

/// Line `i` edited by `edit` (on its body) and resealed, every later line re-chained to it:
/// every hash in the ledger checks out, so only the deeper checks can catch it.
fn forge(lines: &[String], i: usize, edit: impl Fn(&str) -> String) -> Vec<String> {
    let mut out = lines.to_vec();
    let edited = edit(&body_of(&out[i]));
    assert_ne!(
        edited,
        body_of(&out[i]),
        "the edit of line {} changed nothing",
        i + 1
    );
    out[i] = seal(&edited);
    for k in i + 1..out.len() {
        let body = body_of(&out[k]);
        // A body ends with `"prev":"<64 digits>"}`.
        let rechained = format!("{}{}\"}}", &body[..body.len() - 66], hash_of(&out[k - 1]));
        out[k] = seal(&rechained);
    }
    out
}

/// The JSON value that follows the first `"key":` in `text`, as a byte range.
fn value_range(text: &str, key: &str) -> std::ops::Range<usize> {
    let pat = format!("\"{key}\":");
    let start = text
        .find(&pat)
        .unwrap_or_else(|| panic!("no {pat} in {text}"))
        + pat.len();
    let b = text.as_bytes();
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for (i, &c) in b.iter().enumerate().skip(start) {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => {
                    in_str = false;
                    if depth == 0 {
                        return start..i + 1;
                    }
                }
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return start..i + 1;
                }
            }
            b',' | b'}' | b']' if depth == 0 => return start..i,
            _ => {}
        }
    }
    panic!("unterminated value of {key}")
}

/// `text` with the value of the first `"key":` replaced by `json`.
fn set(text: &str, key: &str, json: &str) -> String {
    let r = value_range(text, key);
    format!("{}{json}{}", &text[..r.start], &text[r.end..])
}

fn get<'a>(text: &'a str, key: &str) -> &'a str {
    &text[value_range(text, key)]
}

fn read_lines(ledger: &Path) -> Vec<String> {
    std::fs::read_to_string(ledger.join("entries.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(ledger: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(ledger.join("entries.jsonl"), text).unwrap();
}

/// A fresh copy of `base` under `scratch`, for one case.
fn copy_of(base: &Path, scratch: &Path, case: usize) -> PathBuf {
    let dir = scratch.join(format!("case-{case}"));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(base, &dir);
    dir
}

fn gradlab_ok(ledger: &Path, args: &[&str]) -> String {
    let out = gradlab_std()
        .args(args)
        .env("GRADLAB_LEDGER", ledger)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gradlab {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ledger every case tampers with: one run of its own, then (merged from a second ledger)
/// a run, a replay of it, a second run, a run that diverges and a deep belief net whose trace
/// holds pretraining records — merged entries, a merged replay naming its original by the
/// source's hash, every ending and every kind of trace record.
fn base_ledger(dir: &Path) -> PathBuf {
    let small = write_experiment(
        dir,
        "small",
        &small_experiment("small", "[probe]\nevery = 10\n"),
    );
    let boom = write_experiment(
        dir,
        "boom",
        &small_experiment("boom", "").replace(
            "width = 16",
            "width = 16\nactivation = \"linear\"\nsigma_w = 8.0",
        ),
    );
    let dbn = std::fs::read_to_string(root().join("experiments/rbm-bars-stripes-cd1.toml"))
        .unwrap()
        .replace("pretrain_steps = 3000", "pretrain_steps = 20")
        .replace("steps = 300", "steps = 4")
        .replace("train_size = 1000", "train_size = 64")
        .replace("test_size = 200", "test_size = 32");
    let dbn = write_experiment(dir, "dbn", &dbn);
    let source = dir.join("source");
    let p = |f: &Path| f.to_str().unwrap().to_string();
    gradlab_ok(&source, &["run", &p(&small), "--headless", "--steps", "12"]);
    gradlab_ok(&source, &["replay", "1"]);
    gradlab_ok(
        &source,
        &[
            "run",
            &p(&small),
            "--headless",
            "--steps",
            "12",
            "--seed",
            "5",
        ],
    );
    gradlab_ok(&source, &["run", &p(&boom), "--headless"]);
    gradlab_ok(&source, &["run", &p(&dbn), "--headless"]);
    let base = dir.join("base");
    gradlab_ok(
        &base,
        &[
            "run",
            &p(&small),
            "--headless",
            "--steps",
            "3",
            "--seed",
            "9",
        ],
    );
    gradlab_ok(&base, &["ledger", "merge", source.to_str().unwrap()]);
    base
}

#[test]
fn both_verifiers_agree_on_the_repository_ledger_and_on_every_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("cases");

    // The repository's own ledger, as shipped.
    let mut disagreements = Vec::new();
    let repo = root().join("ledger");
    let said = both("the repository's ledger", &repo, None, &mut disagreements);
    assert!(said.ok && said.entries > 40, "{said:?}");
    let head = said.head.clone().unwrap();
    assert!(
        both(
            "the repository's ledger and its head",
            &repo,
            Some(&head),
            &mut disagreements
        )
        .ok
    );

    let base = base_ledger(tmp.path());
    let lines = read_lines(&base);
    assert_eq!(lines.len(), 6, "one run and five merged entries");
    let said = both("the base ledger", &base, None, &mut disagreements);
    assert!(said.ok, "{said:?}");
    let head = said.head.clone().unwrap();
    let (run, merged_replay, diverged, dbn) = (0, 2, 4, 5);
    assert!(get(&lines[merged_replay], "kind") == "\"replay\"" && lines[1].contains("\"origin\":"));
    assert_eq!(get(&lines[diverged], "status"), "\"diverged\"");
    let mut n = 0;
    let mut case = |name: &str, dir: &Path, head: Option<&str>| -> Said {
        n += 1;
        both(&format!("case {n}: {name}"), dir, head, &mut disagreements)
    };

    // Heads: a 12-digit prefix extends; too short or unknown does not.
    assert!(case("head prefix", &base, Some(&head[..12])).ok);
    let s = case("a head too short", &base, Some(&head[..8]));
    assert!(!s.ok && s.whole);
    let s = case("an unknown head", &base, Some(&"ab".repeat(32)));
    assert!(!s.ok && s.whole);

    // Flipped bytes of the entries file: the line they are in is named, by both.
    let bytes = std::fs::read(base.join("entries.jsonl")).unwrap();
    let mut positions: BTreeSet<usize> = (0..bytes.len()).step_by(bytes.len() / 40).collect();
    let mut at = 0;
    for l in &lines {
        positions.extend([
            at,
            at + 1,
            at + l.len() - 40,
            at + l.len() - 1,
            at + l.len(),
        ]);
        at += l.len() + 1;
    }
    for (k, &pos) in positions.iter().filter(|&&p| p < bytes.len()).enumerate() {
        let dir = copy_of(&base, &scratch, k);
        let mut b = bytes.clone();
        b[pos] ^= if k % 3 == 0 { 0xff } else { 0x01 };
        std::fs::write(dir.join("entries.jsonl"), &b).unwrap();
        let s = case(&format!("byte {pos} flipped"), &dir, None);
        assert!(!s.ok);
    }

    // Objects: a flipped byte anywhere (gzip header, data, CRC, length), truncated, empty,
    // missing — the entries naming the object are bad.
    let trace = get(&body_of(&lines[run]), "trace").to_string();
    let trace_hash = get(&trace, "hash").trim_matches('"').to_string();
    let object = |dir: &Path| {
        dir.join("objects")
            .join(&trace_hash[..2])
            .join(format!("{trace_hash}.gz"))
    };
    let gz = std::fs::read(object(&base)).unwrap();
    let mut damage: Vec<(String, Vec<u8>)> =
        [0, 3, 4, 9, 10, gz.len() / 2, gz.len() - 8, gz.len() - 1]
            .iter()
            .map(|&i| {
                let mut g = gz.clone();
                g[i] ^= 0x01;
                (format!("object byte {i} flipped"), g)
            })
            .collect();
    damage.push(("object truncated".into(), gz[..gz.len() / 2].to_vec()));
    damage.push(("object emptied".into(), Vec::new()));
    let mut trailing = gz.clone();
    trailing.extend_from_slice(b"\0\0\0\0");
    damage.push(("object with bytes after its gzip member".into(), trailing));
    for (what, g) in damage {
        let dir = copy_of(&base, &scratch, 100);
        std::fs::write(object(&dir), g).unwrap();
        let s = case(&what, &dir, None);
        assert!(!s.ok && s.bad_lines.contains(&1), "{what}: {s:?}");
    }
    let dir = copy_of(&base, &scratch, 101);
    std::fs::remove_file(object(&dir)).unwrap();
    assert!(!case("object missing", &dir, None).ok);
    // A second gzip member (or bytes) after the first, the entry's file hash forged to match:
    // an object is exactly one member.
    for (what, extra) in [
        ("a second gzip member", gz.clone()),
        ("zero bytes", vec![0u8; 4]),
    ] {
        let dir = copy_of(&base, &scratch, 102);
        let mut g = gz.clone();
        g.extend_from_slice(&extra);
        std::fs::write(object(&dir), &g).unwrap();
        let file_hash = blake3::hash(&g).to_hex().to_string();
        write_lines(
            &dir,
            &forge(&lines, run, |b| {
                let t = set(get(b, "trace"), "file_hash", &format!("\"{file_hash}\""));
                set(b, "trace", &t)
            }),
        );
        let s = case(
            &format!("{what} after the object's, its file hash resealed"),
            &dir,
            None,
        );
        assert_eq!(s.bad_lines.first(), Some(&1), "{what}: {s:?}");
    }
    // A folder without an entries file is an empty ledger, to both.
    let dir = scratch.join("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let s = case("a ledger folder without entries", &dir, None);
    assert!(s.ok && s.entries == 0 && s.head.is_none(), "{s:?}");

    // Whole lines: deleted, moved, repeated, empty, torn.
    let l = |i: usize| lines[i].clone();
    let reorderings: Vec<(&str, Vec<String>)> = vec![
        ("the first deleted", lines[1..].to_vec()),
        ("a middle one deleted", [&lines[..2], &lines[3..]].concat()),
        ("two swapped", vec![l(0), l(2), l(1), l(3), l(4), l(5)]),
        (
            "the last moved to the front",
            vec![l(5), l(0), l(1), l(2), l(3), l(4)],
        ),
        (
            "one repeated",
            vec![l(0), l(1), l(1), l(2), l(3), l(4), l(5)],
        ),
        (
            "an empty line",
            vec![l(0), String::new(), l(1), l(2), l(3), l(4), l(5)],
        ),
    ];
    for (what, order) in reorderings {
        let dir = copy_of(&base, &scratch, 200);
        write_lines(&dir, &order);
        assert!(!case(what, &dir, None).ok, "{what}");
    }
    let dir = copy_of(&base, &scratch, 201);
    let mut torn = std::fs::read(base.join("entries.jsonl")).unwrap();
    torn.extend_from_slice(&lines[1].as_bytes()[..100]);
    std::fs::write(dir.join("entries.jsonl"), torn).unwrap();
    let s = case("a torn tail", &dir, None);
    assert_eq!(s.bad_lines, BTreeSet::from([7]));

    // Truncation and consistently rewritten history: valid chains, caught by the head only.
    let dir = copy_of(&base, &scratch, 300);
    write_lines(&dir, &lines[..4]);
    assert!(case("the last two cut off", &dir, None).ok);
    assert!(!case("the last two cut off, against the head", &dir, Some(&head)).ok);
    let dir = copy_of(&base, &scratch, 301);
    write_lines(&dir, &forge(&lines, run, |b| set(b, "wall_s", "999.5")));
    assert!(case("history rewritten (wall time)", &dir, None).ok);
    assert!(!case("history rewritten, against the head", &dir, Some(&head)).ok);

    // Resealed forgeries: every hash checks out; the named line must not.
    type Edit = Box<dyn Fn(&str) -> String>;
    let fields: Vec<(&str, usize, Edit, bool)> = vec![
        (
            "a better train loss claimed",
            run,
            Box::new(|b| set(b, "train_loss", "0.01")),
            false,
        ),
        (
            "a better test accuracy",
            run,
            Box::new(|b| set(b, "test_accuracy", "0.99")),
            false,
        ),
        (
            "a layer's first gradient",
            run,
            Box::new(|b| set(b, "delta_first", "1.5")),
            false,
        ),
        (
            "completed claimed for a diverged run",
            diverged,
            Box::new(|b| set(b, "status", "\"completed\"")),
            false,
        ),
        (
            "no divergence claimed",
            diverged,
            Box::new(|b| set(b, "diverged_at", "null")),
            false,
        ),
        // A portable trace leaves the thread count out (its bits do not depend on it).
        (
            "another thread count",
            run,
            Box::new(|b| {
                set(
                    b,
                    "execution",
                    "{\"backend\":\"portable\",\"device\":\"portable\",\"threads\":7}",
                )
            }),
            true,
        ),
        (
            "another backend",
            run,
            Box::new(|b| {
                set(
                    b,
                    "execution",
                    "{\"backend\":\"flex\",\"device\":\"flex\",\"threads\":1}",
                )
            }),
            false,
        ),
        (
            "another experiment name",
            run,
            Box::new(|b| set(b, "experiment", "\"other\"")),
            false,
        ),
        (
            "an error claimed",
            run,
            Box::new(|b| set(b, "error", "\"boom\"")),
            false,
        ),
        (
            "fewer steps",
            run,
            Box::new(|b| set(b, "steps_done", "2")),
            false,
        ),
        (
            "more probes",
            dbn,
            Box::new(|b| set(b, "probes", "99")),
            false,
        ),
        (
            "another seed",
            run,
            Box::new(|b| {
                set(
                    b,
                    "seeds",
                    "{\"experiment\":4,\"backend\":4,\"streams\":[\"data\",\"init\",\"batches\"],\"version\":2}",
                )
            }),
            false,
        ),
        (
            "an unknown field",
            run,
            Box::new(|b| b.replacen("{\"format\"", "{\"extra\":1,\"format\"", 1)),
            false,
        ),
        (
            "a field given twice",
            run,
            Box::new(|b| b.replacen(",\"kind\"", ",\"seq\":1,\"kind\"", 1)),
            false,
        ),
        (
            "seq as a float",
            run,
            Box::new(|b| set(b, "seq", "1.0")),
            false,
        ),
        (
            "a nullable field left out",
            run,
            Box::new(|b| b.replacen(",\"error\":null", "", 1)),
            true,
        ),
        (
            "a required field left out",
            run,
            Box::new(|b| b.replacen(",\"tags\":[]", "", 1)),
            false,
        ),
        (
            "a tag added",
            run,
            Box::new(|b| set(b, "tags", "[\"mine\"]")),
            true,
        ),
        (
            "origin: null on a run (null reads as absent)",
            run,
            Box::new(|b| b.replacen(",\"prev\":", ",\"origin\":null,\"prev\":", 1)),
            true,
        ),
        (
            "wall_s null",
            run,
            Box::new(|b| set(b, "wall_s", "null")),
            false,
        ),
        (
            "a bare date as the merge time",
            1,
            Box::new(|b| {
                let o = get(b, "origin").to_string();
                set(b, "origin", &set(&o, "merged", "\"2025-01-31\""))
            }),
            false,
        ),
        (
            "another format",
            run,
            Box::new(|b| set(b, "format", "\"gradlab-ledger/2\"")),
            false,
        ),
        (
            "a bare date as the start",
            run,
            Box::new(|b| set(b, "started", "\"2025-01-31\"")),
            false,
        ),
        (
            "hour 24",
            run,
            Box::new(|b| set(b, "ended", "\"2025-01-31T24:00:00Z\"")),
            false,
        ),
        (
            "February 30",
            run,
            Box::new(|b| set(b, "ended", "\"2025-02-30T10:00:00Z\"")),
            false,
        ),
        (
            "the config edited",
            run,
            Box::new(|b| b.replacen("learning_rate = 0.1", "learning_rate = 0.2", 1)),
            false,
        ),
        (
            "a run with a verdict",
            run,
            Box::new(|b| set(b, "verdict", "{\"result\":\"exact\",\"first\":null}")),
            false,
        ),
        (
            "a replay of nothing earlier",
            merged_replay,
            Box::new(|b| set(b, "replay_of", &format!("\"{}\"", "cd".repeat(32)))),
            false,
        ),
        (
            "a replay without its verdict",
            merged_replay,
            Box::new(|b| set(b, "verdict", "null")),
            false,
        ),
        (
            "an unknown verdict",
            merged_replay,
            Box::new(|b| set(b, "result", "\"nearly\"")),
            false,
        ),
        (
            "the trace not stored",
            run,
            Box::new(|b| {
                let t = set(get(b, "trace"), "file_hash", "null");
                set(b, "trace", &t)
            }),
            false,
        ),
        (
            "the weights not stored",
            run,
            Box::new(|b| {
                let w = set(get(b, "weights"), "file_hash", "null");
                set(b, "weights", &w)
            }),
            true,
        ),
        (
            "a trace length off by one",
            run,
            Box::new(|b| {
                let t = get(b, "trace").to_string();
                let n: u64 = get(&t, "bytes").parse().unwrap();
                set(b, "trace", &set(&t, "bytes", &(n + 1).to_string()))
            }),
            false,
        ),
        (
            "the origin's seq",
            1,
            Box::new(|b| {
                let o = get(b, "origin").to_string();
                set(b, "origin", &set(&o, "seq", "9"))
            }),
            false,
        ),
        (
            "the origin's merge time",
            1,
            Box::new(|b| {
                let o = get(b, "origin").to_string();
                set(b, "origin", &set(&o, "merged", "\"yesterday\""))
            }),
            false,
        ),
        (
            "the embedded original altered",
            1,
            Box::new(|b| {
                let o = get(b, "origin").to_string();
                let line = get(&o, "line").to_string();
                set(
                    b,
                    "origin",
                    &set(&o, "line", &line.replacen("small", "smell", 1)),
                )
            }),
            false,
        ),
        (
            "the merged entry's tags differ from the original's",
            1,
            Box::new(|b| set(b, "tags", "[\"mine\"]")),
            false,
        ),
        (
            "the merged entry's weights not stored, the original's stored",
            1,
            Box::new(|b| {
                let w = set(get(b, "weights"), "file_hash", "null");
                set(b, "weights", &w)
            }),
            false,
        ),
    ];
    for (what, i, edit, still_ok) in fields {
        let dir = copy_of(&base, &scratch, 400);
        write_lines(&dir, &forge(&lines, i, edit));
        let s = case(what, &dir, None);
        if still_ok {
            assert!(s.ok, "{what}: {s:?}");
        } else {
            assert_eq!(s.bad_lines.first(), Some(&(i as u64 + 1)), "{what}: {s:?}");
        }
    }
    assert!(n > 100, "{n} cases");
    assert!(
        disagreements.is_empty(),
        "{} of {n} cases:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// Lesion entries (`gradlab lesion`): both verifiers accept a ledger with a study and the
/// replay of one, and both refuse the same resealed forgeries of its kind and link.
#[test]
fn both_verifiers_agree_on_lesion_entries_and_their_forgeries() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("cases");
    let resnet = small_experiment("small-resnet", "").replace(
        "depth = 4\nwidth = 16",
        "kind = \"resnet\"\ndepth = 3\nwidth = 8",
    );
    let file = write_experiment(tmp.path(), "small-resnet", &resnet);
    let base = tmp.path().join("base");
    gradlab_ok(&base, &["run", file.to_str().unwrap(), "--headless"]);
    gradlab_ok(&base, &["lesion", "1", "--draws", "2", "--path-draws", "2"]);
    gradlab_ok(&base, &["replay", "2"]);
    let lines = read_lines(&base);
    assert_eq!(get(&lines[1], "kind"), "\"lesion\"");
    let mut disagreements = Vec::new();
    assert!(
        both(
            "a ledger with a lesion study",
            &base,
            None,
            &mut disagreements
        )
        .ok
    );
    let unknown = format!("\"{}\"", "ab".repeat(32));
    let forgeries: Vec<(&str, Vec<String>)> = vec![
        (
            "lesion_of names no earlier entry",
            forge(&lines, 1, |b| set(b, "lesion_of", &unknown)),
        ),
        (
            "a lesion entry called a run",
            forge(&lines, 1, |b| set(b, "kind", "\"run\"")),
        ),
        (
            "a run that claims to be a lesion study",
            forge(&lines, 0, |b| set(b, "kind", "\"lesion\"")),
        ),
    ];
    for (k, (what, forged)) in forgeries.into_iter().enumerate() {
        let dir = copy_of(&base, &scratch, k);
        write_lines(&dir, &forged);
        let s = both(what, &dir, None, &mut disagreements);
        assert!(!s.ok, "{what}: {s:?}");
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
