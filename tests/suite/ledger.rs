//! The ledger: recording every run, tamper detection, crash safety, concurrent appends,
//! replay verdicts and audit — through the real binary and the library API.

use super::common::{copy_dir, gradlab, gradlab_std, small_experiment, write_experiment};
use gradlab::experiment::{Experiment, Overrides};
use gradlab::ledger::object;
use gradlab::ledger::store::ENTRIES;
#[cfg(feature = "fault-injection")]
use gradlab::ledger::store::{FAULT_ENV, FAULT_MARKER};
use gradlab::ledger::verify::verify_dir;
use gradlab::ledger::{self, Entry, Ledger, LedgerOptions, VerdictKind};
use gradlab::train::{self, Control, DeviceKind, Outcome, RunEnv, Status};
#[cfg(feature = "fault-injection")]
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::SystemTime;

/// The environment of in-process runs: one worker thread, as the binary's default. The
/// pool is sized once per process, so record what it really has.
fn env() -> RunEnv {
    train::init_threads(1);
    RunEnv {
        device: DeviceKind::Flex,
        threads: rayon::current_num_threads(),
        ..RunEnv::default()
    }
}

fn experiment(name: &str, extra: &str) -> Experiment {
    Experiment::parse(&small_experiment(name, extra), Path::new("t.toml")).unwrap()
}

fn train_it(exp: &Experiment) -> Outcome {
    train::train(exp, env(), &Control::new(), &mut |_| {})
}

/// A ledger in `dir` with one run per seed (10 steps, probes at 0 and 9, to keep objects small).
fn ledger_with_runs(dir: &Path, seeds: &[u64]) -> Ledger {
    let mut ledger = Ledger::open(dir).unwrap();
    for &seed in seeds {
        let exp = experiment("tiny", "[probe]\nevery = 10\n")
            .with_overrides(Overrides {
                steps: Some(10),
                seed: Some(seed),
            })
            .unwrap();
        let outcome = train_it(&exp);
        ledger
            .record_run(&exp, env(), &outcome, SystemTime::now())
            .unwrap();
    }
    ledger
}

fn entries_path(dir: &Path) -> std::path::PathBuf {
    dir.join(ENTRIES)
}

/// The seq and short hash `gradlab run` acknowledged.
fn acknowledged(stdout: &[u8]) -> (u64, String) {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("recorded entry "))
        .unwrap_or_else(|| panic!("no ack in {text}"));
    let mut parts = line.split_whitespace().skip(2);
    let seq = parts.next().unwrap().parse().unwrap();
    let hash = parts.next().unwrap().to_string();
    assert_eq!(hash.len(), 12);
    (seq, hash)
}

fn run_ok(dir: &Path, file: &Path, args: &[&str]) -> (u64, String) {
    let out = gradlab(dir)
        .arg("run")
        .arg(file)
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    acknowledged(&out)
}

fn verify_cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = gradlab(dir)
        .args(["ledger", "verify"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn show_json(dir: &Path, id: &str) -> serde_json::Value {
    let out = gradlab(dir)
        .args(["ledger", "show", id, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn a_run_is_recorded_and_its_claims_can_be_checked() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "small", &small_experiment("small", ""));
    let (seq, short) = run_ok(dir.path(), &file, &[]);
    assert_eq!(seq, 1);
    let ledger = Ledger::open(dir.path().join("ledger")).unwrap();
    let e = &ledger.entries()[0];
    assert_eq!(
        (e.seq, e.short_hash(), e.experiment.as_str(), e.status),
        (1, short.as_str(), "small", Status::Completed)
    );
    assert_eq!(e.prev, ledger::entry::GENESIS);
    assert_eq!(
        e.config.as_str(),
        Experiment::load(&file).unwrap().canonical()
    );
    assert_eq!(e.metrics.steps_done, 30);
    assert_eq!(e.layers.len(), 5);
    assert_eq!(e.code.cargo_lock_hash.len(), 64);
    assert!(e.weights.file_hash.is_some(), "small weights are stored");

    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(ok, "{text}");
    let head = gradlab(dir.path())
        .args(["ledger", "head"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(head).unwrap().trim(), e.hash);

    let list = gradlab(dir.path())
        .args(["ledger", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let list = String::from_utf8(list).unwrap();
    assert!(
        list.contains(e.config_hash.short()) && list.contains("completed"),
        "{list}"
    );

    // Show by seq and by hash prefix name the same entry.
    assert_eq!(show_json(dir.path(), "1")["hash"], e.hash.as_str());
    assert_eq!(show_json(dir.path(), &e.hash[..8])["seq"], 1);

    // The JSON export is the trace itself: its blake3 is the recorded trace hash.
    let json = gradlab(dir.path())
        .args(["ledger", "export", "1", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(blake3::hash(&json).to_hex().as_str(), e.trace.hash);
    let csv_path = dir.path().join("t.csv");
    gradlab(dir.path())
        .args(["ledger", "export", "1", "--format", "csv", "--out"])
        .arg(&csv_path)
        .assert()
        .success();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().count(), 1 + e.metrics.probes * e.layers.len());
    assert!(csv.starts_with("step,loss,accuracy,test_loss,test_accuracy,layer_index,layer,delta"));
}

#[test]
fn every_ending_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let diverging = write_experiment(
        dir.path(),
        "boom",
        &small_experiment("boom", "").replace(
            "width = 16",
            "width = 16\nactivation = \"linear\"\nsigma_w = 8.0",
        ),
    );
    run_ok(dir.path(), &diverging, &[]);
    let failing = write_experiment(
        dir.path(),
        "nodata",
        "[experiment]\nname = \"nodata\"\n[data]\ntask = \"mnist\"\npath = \"no-such-folder\"\n[train]\nsteps = 5\n",
    );
    let out = gradlab(dir.path())
        .arg("run")
        .arg(&failing)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(acknowledged(&out).0, 2);

    let mut ledger = Ledger::open(dir.path().join("ledger")).unwrap();
    let exp = experiment("stopped", "");
    let control = Control::new();
    control.stop();
    let outcome = train::train(&exp, env(), &control, &mut |_| {});
    ledger
        .record_run(&exp, env(), &outcome, SystemTime::now())
        .unwrap();

    let e = ledger.entries();
    assert_eq!((e[0].status, e[0].diverged_at), (Status::Diverged, Some(2)));
    assert_eq!(e[1].status, Status::Failed);
    assert!(
        e[1].error
            .as_deref()
            .unwrap_or_default()
            .contains("no-such-folder"),
        "{:?}",
        e[1].error
    );
    assert_eq!(e[2].status, Status::Interrupted);
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(ok, "{text}");
    // A diverged run and a failed one are results like any other: they replay exactly.
    for id in ["1", "2"] {
        let out = gradlab(dir.path())
            .args(["replay", id, "--no-ledger"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert!(String::from_utf8_lossy(&out).starts_with("EXACT"));
    }
}

#[test]
fn a_bad_config_or_no_ledger_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_experiment(
        dir.path(),
        "bad",
        &small_experiment("bad", "lerning_rate = 0.1\n"),
    );
    gradlab(dir.path()).arg("run").arg(&bad).assert().code(2);
    let good = write_experiment(dir.path(), "good", &small_experiment("good", ""));
    let out = gradlab(dir.path())
        .arg("run")
        .arg(&good)
        .arg("--no-ledger")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(!String::from_utf8_lossy(&out).contains("recorded entry"));
    assert!(!dir.path().join("ledger").exists());
}

/// Which line (1-based) byte `at` of the entries file belongs to; a newline belongs to the
/// line it ends.
fn line_of(bytes: &[u8], at: usize) -> usize {
    bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1
}

#[test]
fn flipping_any_byte_of_the_entries_is_detected_and_the_entry_named() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_runs(dir.path(), &[1, 2]);
    assert!(ledger.verify().ok(), "{:?}", ledger.verify().problems);
    let path = entries_path(dir.path());
    let original = std::fs::read(&path).unwrap();
    for at in 0..original.len() {
        // Every byte gets its low bit flipped; every seventh also all its bits.
        let masks: &[u8] = if at % 7 == 0 { &[0x01, 0xff] } else { &[0x01] };
        for &mask in masks {
            let mut bytes = original.clone();
            bytes[at] ^= mask;
            std::fs::write(&path, &bytes).unwrap();
            let report = verify_dir(dir.path(), None);
            assert_eq!(
                report.first_bad_line(),
                Some(line_of(&original, at)),
                "byte {at} ^ {mask:#x} ({:?}): {:?}",
                original[at] as char,
                report.problems
            );
        }
    }
    std::fs::write(&path, &original).unwrap();
    assert!(verify_dir(dir.path(), None).ok());
}

#[test]
fn flipping_any_byte_of_an_object_is_detected_and_the_entry_named() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_runs(dir.path(), &[1, 2]);
    let second = &ledger.entries()[1];
    for obj in [&second.trace, &second.weights] {
        assert!(
            ledger.entries()[0].trace.hash != obj.hash
                && ledger.entries()[0].weights.hash != obj.hash
        );
        let path = object::object_path(dir.path(), &obj.hash);
        let original = std::fs::read(&path).unwrap();
        for at in 0..original.len() {
            for mask in [0x01u8, 0xff] {
                let mut bytes = original.clone();
                bytes[at] ^= mask;
                std::fs::write(&path, &bytes).unwrap();
                let report = verify_dir(dir.path(), None);
                assert_eq!(
                    report.first_bad_line(),
                    Some(2),
                    "{} byte {at} ^ {mask:#x}: {:?}",
                    path.display(),
                    report.problems
                );
            }
        }
        std::fs::remove_file(&path).unwrap();
        let report = verify_dir(dir.path(), None);
        assert!(
            report.first().unwrap().to_string().contains("missing"),
            "{:?}",
            report.problems
        );
        std::fs::write(&path, &original).unwrap();
    }
    assert!(verify_dir(dir.path(), None).ok());
}

fn write_lines(path: &Path, lines: &[&[u8]]) {
    let mut bytes = Vec::new();
    for l in lines {
        bytes.extend_from_slice(l);
        bytes.push(b'\n');
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn deleting_or_reordering_an_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    ledger_with_runs(dir.path(), &[1, 2, 3, 4]);
    let path = entries_path(dir.path());
    let original = std::fs::read(&path).unwrap();
    let lines: Vec<&[u8]> = original
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let cases: [(&str, Vec<&[u8]>, usize); 4] = [
        ("delete the first", vec![lines[1], lines[2], lines[3]], 1),
        ("delete a middle one", vec![lines[0], lines[2], lines[3]], 2),
        ("swap two", vec![lines[0], lines[2], lines[1], lines[3]], 2),
        (
            "move the last to the front",
            vec![lines[3], lines[0], lines[1], lines[2]],
            1,
        ),
    ];
    for (what, order, first_bad) in cases {
        write_lines(&path, &order);
        let report = verify_dir(dir.path(), None);
        assert_eq!(
            report.first_bad_line(),
            Some(first_bad),
            "{what}: {:?}",
            report.problems
        );
    }
    std::fs::write(&path, &original).unwrap();
    assert!(verify_dir(dir.path(), None).ok());
}

#[test]
fn truncation_and_rewritten_history_are_caught_against_a_published_head() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "small", &small_experiment("small", ""));
    for seed in ["1", "2"] {
        run_ok(dir.path(), &file, &["--seed", seed, "--steps", "5"]);
    }
    let head = gradlab(dir.path())
        .args(["ledger", "head"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let head = String::from_utf8(head).unwrap().trim().to_string();
    // A ledger that grew after the head was published still extends it.
    run_ok(dir.path(), &file, &["--seed", "3", "--steps", "5"]);
    let (ok, text) = verify_cli(dir.path(), &["--head", &head]);
    assert!(ok, "{text}");

    let path = dir.path().join("ledger").join(ENTRIES);
    let original = std::fs::read(&path).unwrap();
    let lines: Vec<&[u8]> = original
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    // Cutting entries off the end leaves a valid, shorter chain…
    write_lines(&path, &lines[..1]);
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(ok, "{text}");
    // …which only the published head exposes.
    let (ok, text) = verify_cli(dir.path(), &["--head", &head]);
    assert!(!ok && text.contains("not in the ledger"), "{text}");

    // Rewriting history consistently: change entry 2's (uncheckable) wall time, reseal it and
    // re-chain entry 3. Every hash checks out; the published head does not.
    let mut forged: Vec<Entry> = lines.iter().map(|l| Entry::from_line(l).unwrap()).collect();
    forged[1].metrics.wall_s += 1.0;
    forged[1].seal();
    forged[2].prev = forged[1].hash.clone();
    forged[2].seal();
    // Entry 1 keeps its bytes: a line's hash covers its exact bytes, and re-serialising a
    // parsed entry need not reproduce them (JSON float parsing is not always exact).
    let (two, three) = (forged[1].to_line(), forged[2].to_line());
    write_lines(&path, &[lines[0], two.as_bytes(), three.as_bytes()]);
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(ok, "a consistent forgery passes without a head: {text}");
    let (ok, text) = verify_cli(dir.path(), &["--head", &head]);
    assert!(!ok && text.contains("not in the ledger"), "{text}");
}

#[test]
fn an_entry_whose_claims_contradict_its_trace_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_runs(dir.path(), &[1, 2]);
    let path = entries_path(dir.path());
    let mut forged: Vec<Entry> = ledger.entries().to_vec();
    // Claim a better loss and reseal: the hashes are fine, the trace says otherwise.
    forged[0].metrics.train_loss = Some(0.01);
    forged[0].seal();
    forged[1].prev = forged[0].hash.clone();
    forged[1].seal();
    let lines: Vec<String> = forged.iter().map(Entry::to_line).collect();
    write_lines(
        &path,
        &lines.iter().map(|l| l.as_bytes()).collect::<Vec<_>>(),
    );
    let report = verify_dir(dir.path(), None);
    assert_eq!(report.first_bad_line(), Some(1), "{:?}", report.problems);
    assert!(
        report.first().unwrap().what.contains("metrics"),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_shared_object_is_opened_once_but_every_entry_s_length_is_checked() {
    // The same run twice: both entries name the same trace and weights objects, which
    // verify opens once. The second entry's recorded lengths must still be checked.
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_runs(dir.path(), &[1, 1]);
    let entries = ledger.entries().to_vec();
    assert_eq!(
        entries[0].trace, entries[1].trace,
        "one trace object for both"
    );
    for which in ["trace", "weights"] {
        let mut forged = entries.clone();
        match which {
            "trace" => forged[1].trace.bytes += 1,
            _ => forged[1].weights.bytes -= 1,
        }
        forged[1].seal();
        let lines: Vec<String> = forged.iter().map(Entry::to_line).collect();
        write_lines(
            &entries_path(dir.path()),
            &[entries_line(dir.path(), 0).as_slice(), lines[1].as_bytes()],
        );
        let report = verify_dir(dir.path(), None);
        assert_eq!(
            report.first_bad_line(),
            Some(2),
            "{which}: {:?}",
            report.problems
        );
        let what = &report.first().unwrap().what;
        assert!(what.contains(which) && what.contains("bytes"), "{what}");
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    }
}

/// Line `i` (0-based) of the entries file as it is on disk.
fn entries_line(dir: &Path, i: usize) -> Vec<u8> {
    std::fs::read(entries_path(dir))
        .unwrap()
        .split(|&b| b == b'\n')
        .nth(i)
        .unwrap()
        .to_vec()
}

#[test]
fn concurrent_appends_keep_every_entry_and_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_experiment(dir.path(), "small", &small_experiment("small", ""));
    // Seeds 1 and 2 appear twice: equal runs also race to store the same objects.
    let seeds = ["1", "2", "3", "4", "1", "2"];
    let children: Vec<_> = seeds
        .iter()
        .map(|seed| {
            gradlab_std()
                .current_dir(dir.path())
                .env("GRADLAB_LEDGER", dir.path().join("ledger"))
                .args(["run", "small.toml", "--seed", seed])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut acks: Vec<(u64, String)> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            acknowledged(&out.stdout)
        })
        .collect();
    acks.sort();
    assert_eq!(
        acks.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    let ledger = Ledger::open(dir.path().join("ledger")).unwrap();
    for (seq, short) in &acks {
        assert_eq!(ledger.entries()[*seq as usize - 1].short_hash(), short);
    }
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(ok, "{text}");
}

#[test]
fn a_torn_tail_is_reported_blocks_appends_and_only_repair_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "small", &small_experiment("small", ""));
    let acked: Vec<_> = ["1", "2"]
        .iter()
        .map(|s| run_ok(dir.path(), &file, &["--seed", s, "--steps", "5"]))
        .collect();
    let path = dir.path().join("ledger").join(ENTRIES);
    let torn = b"{\"format\":\"gradlab-ledger/1\",\"seq\":3,\"ki";
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(torn);
    std::fs::write(&path, &bytes).unwrap();

    let out = gradlab(dir.path())
        .args(["ledger", "list"])
        .assert()
        .code(74)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&out);
    assert!(
        err.contains("line 3 is torn") && err.contains("gradlab ledger repair"),
        "{err}"
    );
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(
        !ok && text.contains("entry 3 (line 3): torn tail"),
        "{text}"
    );
    // A new run is not recorded on top of a torn tail, and the file is left as it was.
    gradlab(dir.path())
        .arg("run")
        .arg(&file)
        .args(["--steps", "5"])
        .assert()
        .code(74);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    let out = gradlab(dir.path())
        .args(["ledger", "repair"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&out).contains(&format!("torn tail of {} bytes", torn.len())));
    assert_eq!(
        std::fs::read(dir.path().join("ledger").join("entries.jsonl.torn-1")).unwrap(),
        torn
    );
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(ok, "{text}");
    let ledger = Ledger::open(dir.path().join("ledger")).unwrap();
    let kept: Vec<_> = ledger
        .entries()
        .iter()
        .map(|e| (e.seq, e.short_hash().to_string()))
        .collect();
    assert_eq!(kept, acked);
    assert_eq!(run_ok(dir.path(), &file, &["--steps", "5"]).0, 3);
}

/// Needs the `fault-injection` build (`make test`); the other build has the test below.
#[cfg(feature = "fault-injection")]
#[test]
fn sigkill_mid_append_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "small", &small_experiment("small", ""));
    let acked: Vec<_> = ["1", "2"]
        .iter()
        .map(|s| run_ok(dir.path(), &file, &["--seed", s, "--steps", "5"]))
        .collect();
    let path = dir.path().join("ledger").join(ENTRIES);
    let before = std::fs::read(&path).unwrap();

    let spawn = |fault: bool| {
        let mut cmd = gradlab_std();
        cmd.current_dir(dir.path())
            .env("GRADLAB_LEDGER", dir.path().join("ledger"))
            .args(["run", "small.toml", "--seed", "3", "--steps", "5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if fault {
            cmd.env(FAULT_ENV, "torn-append");
        }
        cmd.spawn().unwrap()
    };
    let mut victim = spawn(true);
    let stderr = victim.stderr.take().unwrap();
    let mut seen = false;
    for line in BufReader::new(stderr).lines() {
        if line.unwrap().contains(FAULT_MARKER) {
            seen = true;
            break;
        }
    }
    assert!(seen, "the appender reached the middle of its append");
    // Another appender now waits on the lock the victim holds.
    let waiting = spawn(false);
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    // Whether it got the lock before or after the kill, it must refuse the torn tail.
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(74),
        "a damaged ledger, not bad input: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("torn"));

    let after = std::fs::read(&path).unwrap();
    assert!(
        after.starts_with(&before) && after.len() > before.len(),
        "half a line was left behind"
    );
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(!ok && text.contains("torn tail"), "{text}");
    gradlab(dir.path())
        .args(["ledger", "repair"])
        .assert()
        .success();
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(ok, "{text}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let ledger = Ledger::open(dir.path().join("ledger")).unwrap();
    let kept: Vec<_> = ledger
        .entries()
        .iter()
        .map(|e| (e.seq, e.short_hash().to_string()))
        .collect();
    assert_eq!(kept, acked);
}

#[test]
fn replaying_a_fresh_entry_is_exact_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "small", &small_experiment("small", ""));
    let (_, short) = run_ok(dir.path(), &file, &[]);
    let out = gradlab(dir.path())
        .args(["replay", &short])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("EXACT: entry 1 (small)"), "{text}");
    assert_eq!(acknowledged(&out).0, 2);
    let original = show_json(dir.path(), "1");
    let replay = show_json(dir.path(), "2");
    assert_eq!(replay["kind"], "replay");
    assert_eq!(replay["replay_of"], original["hash"]);
    assert_eq!(replay["verdict"]["result"], "exact");
    assert_eq!(replay["trace"]["hash"], original["trace"]["hash"]);
    assert_eq!(replay["weights"]["hash"], original["weights"]["hash"]);
    let (ok, text) = verify_cli(dir.path(), &[]);
    assert!(ok, "{text}");
    let list = gradlab(dir.path())
        .args(["ledger", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&list).contains("replay of 1: EXACT"));
}

/// A ledger whose entry 1 embeds `recorded` but holds the trace `ran` produced.
fn mismatched_ledger(dir: &Path, ran: &Experiment, recorded: &Experiment) -> Ledger {
    let outcome = train_it(ran);
    let mut ledger = Ledger::open(dir).unwrap();
    ledger
        .record_run(recorded, env(), &outcome, SystemTime::now())
        .unwrap();
    ledger
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("'{s}' is a number"))
}

#[test]
fn replaying_a_changed_learning_rate_diverges_at_step_0_in_the_first_update() {
    let dir = tempfile::tempdir().unwrap();
    let ran = experiment("small", "");
    let recorded = Experiment::parse(
        &small_experiment("small", "").replace("learning_rate = 0.1", "learning_rate = 0.2"),
        Path::new("t.toml"),
    )
    .unwrap();
    let ledger = mismatched_ledger(dir.path(), &ran, &recorded);
    // The entry's claims no longer match its trace: verify says so.
    let report = ledger.verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.line == Some(1) && p.what.contains("config_hash")),
        "{:?}",
        report.problems
    );

    let mut progressed = 0;
    let r = ledger::replay(&ledger, "1", &mut |step, total| {
        assert!(step <= total);
        progressed = step;
    })
    .unwrap();
    assert_eq!(progressed, 30);
    assert_eq!(r.verdict.result, VerdictKind::Diverged);
    let d = r.verdict.first.clone().unwrap();
    // Step 0's loss and gradients are taken before any update; the first number the
    // learning rate touches is the first layer's update ratio ‖ΔW‖/‖W‖, twice as large.
    assert_eq!(
        (d.step, d.quantity.as_str(), d.layer.as_deref()),
        (Some(0), "update_ratio", Some("h1")),
        "{d:?}"
    );
    let ratio = num(&d.replayed) / num(&d.original);
    assert!((ratio - 2.0).abs() < 1e-4, "{ratio}");
    assert!(
        r.header_differences
            .iter()
            .any(|h| h.quantity == "header.config_hash")
    );

    // Through the binary: the verdict, exit status 1, and a replay entry holding it.
    let out = gradlab(dir.path())
        .env("GRADLAB_LEDGER", dir.path())
        .args(["replay", "1"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with(
            "DIVERGED from entry 1 (small) at step 0: update_ratio of layer h1: original "
        ),
        "{text}"
    );
    let v = Ledger::open(dir.path()).unwrap().entries()[1]
        .verdict
        .clone()
        .unwrap();
    assert_eq!(
        (v.result, v.first.unwrap().step),
        (VerdictKind::Diverged, Some(0))
    );
}

#[test]
fn replaying_fewer_recorded_steps_diverges_where_the_runs_part() {
    let dir = tempfile::tempdir().unwrap();
    let ran = experiment("small", "");
    let recorded = ran
        .clone()
        .with_overrides(Overrides {
            steps: Some(20),
            seed: None,
        })
        .unwrap();
    let ledger = mismatched_ledger(dir.path(), &ran, &recorded);
    let r = ledger::replay(&ledger, "1", &mut |_, _| {}).unwrap();
    let d = r.verdict.first.unwrap();
    // Steps 0–18 match bit for bit; at step 19, the shorter run's last, it also evaluates
    // the test set, which the 30-step run did not.
    assert_eq!(
        (d.step, d.quantity.as_str(), d.original.as_str()),
        (Some(19), "test", "absent"),
        "{d:?}"
    );
}

#[test]
fn replay_warns_when_the_environment_differs() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = ledger_with_runs(dir.path(), &[1]);
    let mut forged = ledger.entries()[0].clone();
    forged.code.rustc = "rustc 0.0.0 (elsewhere)".into();
    forged.seal();
    std::fs::write(entries_path(dir.path()), format!("{}\n", forged.to_line())).unwrap();
    ledger = Ledger::open(dir.path()).unwrap();
    let plan = ledger::replay::plan(&ledger, "1", &Default::default()).unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("rustc") && w.contains("elsewhere")),
        "{:?}",
        plan.warnings
    );
    let r = ledger::replay(&ledger, "1", &mut |_, _| {}).unwrap();
    assert_eq!(
        r.verdict.result,
        VerdictKind::Exact,
        "the numbers do not depend on the recorded rustc"
    );
}

#[test]
fn audit_replays_a_seeded_sample() {
    let dir = tempfile::tempdir().unwrap();
    ledger_with_runs(dir.path(), &[1, 2, 3, 4]);
    let audit = |extra: &[&str]| {
        let out = gradlab(dir.path())
            .env("GRADLAB_LEDGER", dir.path())
            .args(["ledger", "audit", "--sample", "2", "--seed", "7"])
            .args(extra)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    let a = audit(&["--no-record"]);
    assert!(
        a.contains("2 of 4 run entries") && a.contains("2 of 2 EXACT, 0 CLOSE, 0 DIVERGED"),
        "{a}"
    );
    assert_eq!(
        a,
        audit(&["--no-record"]),
        "the same seed draws the same sample"
    );
    assert_eq!(Ledger::open(dir.path()).unwrap().entries().len(), 4);
    let b = audit(&[]);
    assert!(b.contains("replay entry 5"), "{b}");
    let ledger = Ledger::open(dir.path()).unwrap();
    assert!(
        ledger.entries()[4..]
            .iter()
            .all(|e| e.tags == ["audit"] && e.replay_of.is_some())
    );
    let drawn = ledger::replay::audit_sample(ledger.entries(), 2, 7);
    assert_eq!(
        drawn,
        ledger::replay::audit_sample(&ledger.entries()[..4], 2, 7),
        "replays are not drawn"
    );
    assert!(ledger.verify().ok());
}

#[test]
fn weights_over_the_cap_are_hashed_but_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "small", &small_experiment("small", ""));
    let out = gradlab(dir.path())
        .env("GRADLAB_WEIGHTS_CAP", "0")
        .arg("run")
        .arg(&file)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    acknowledged(&out);
    let ledger = Ledger::open(dir.path().join("ledger")).unwrap();
    let e = &ledger.entries()[0];
    assert!(e.weights.file_hash.is_none() && e.weights.bytes > 0);
    assert!(!object::object_path(&dir.path().join("ledger"), &e.weights.hash).exists());
    assert!(ledger.verify().ok());
    let out = gradlab(dir.path())
        .args(["replay", "1"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&out).starts_with("EXACT"));

    let capped = Ledger::open_with(
        dir.path().join("other"),
        LedgerOptions {
            weights_cap: 1 << 20,
        },
    )
    .unwrap();
    assert_eq!(capped.options().weights_cap, 1 << 20);
}

#[test]
fn list_filters_and_diff_compare() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_experiment(dir.path(), "alpha", &small_experiment("alpha", ""));
    let b = write_experiment(
        dir.path(),
        "beta",
        &small_experiment("beta", "").replace("learning_rate = 0.1", "learning_rate = 0.05"),
    );
    run_ok(dir.path(), &a, &["--steps", "5"]);
    run_ok(dir.path(), &b, &["--steps", "5"]);
    let list = |args: &[&str]| {
        let out = gradlab(dir.path())
            .args(["ledger", "list", "--json"])
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(list(&[]), vec![1, 2]);
    assert_eq!(list(&["--experiment", "beta"]), vec![2]);
    assert_eq!(list(&["--status", "completed"]), vec![1, 2]);
    assert_eq!(list(&["--status", "diverged"]), Vec::<u64>::new());
    assert_eq!(list(&["--since", "2000-01-01"]), vec![1, 2]);
    assert_eq!(list(&["--since", "2999-01-01"]), Vec::<u64>::new());
    gradlab(dir.path())
        .args(["ledger", "list", "--since", "yesterday"])
        .assert()
        .code(2);

    let out = gradlab(dir.path())
        .args(["ledger", "diff", "1", "2"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("experiment.name") && text.contains("\"alpha\" → \"beta\""),
        "{text}"
    );
    assert!(
        text.contains("train.learning_rate") && text.contains("0.1 → 0.05"),
        "{text}"
    );
    assert!(
        text.contains("train loss") && text.lines().any(|l| l.starts_with("h1 ")),
        "{text}"
    );

    gradlab(dir.path())
        .args(["ledger", "show", "9"])
        .assert()
        .code(2);
}

/// Every model kind's trace passes `verify` (deep belief nets add `phase` and `pretrain`
/// records) and replays EXACT through the real binary.
#[test]
fn every_model_kind_verifies_and_replays_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "rbm-bars-stripes-cd1",
        "dbn-digits",
        "lstm-adding-50",
        "resnet-relu-50",
        "genetic-tanh-6",
    ] {
        let file = root.join(format!("experiments/{name}.toml"));
        let (seq, _) = run_ok(dir.path(), &file, &["--headless", "--steps", "4"]);
        let (ok, text) = verify_cli(dir.path(), &[]);
        assert!(ok, "{name}: {text}");
        let out = gradlab(dir.path())
            .args(["replay", &seq.to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("EXACT"),
            "{name}: {stdout}"
        );
    }
}

/// Copies a ledger folder (entries and objects) so a test can append to it.
/// The repository's own ledger holds entries 1–21 recorded on the `flex` engine before the
/// fused `cpu` engine existed, 22–42 on `cpu`, all on one machine and before entries
/// recorded their CPU features, and 43–63 on the portable engine. Replaying them elsewhere is the ledger's real use, so this
/// holds on any machine: every entry verifies; each sampled replay runs to its end with the
/// original's outcome and is recorded; a replay that is not EXACT says, before and with its
/// verdict, that the recording machine differed and how. EXACT is demanded only where these
/// engines promise it: when the binary finds no machine difference. (The binary's own view
/// counts, not this process's: under `GRADLAB_TEST_RUNNER` it runs on an emulated CPU.)
#[test]
fn the_repository_ledgers_entries_replay_on_any_machine() {
    let repo = super::common::root();
    let (ok, report) = verify_cli(&repo, &[]);
    assert!(ok, "{report}");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo.join("ledger"), &dir.path().join("ledger"));
    let original = Ledger::open(dir.path().join("ledger")).unwrap();
    let shipped = original.entries().len() as u64;
    // flex: rprop-sigmoid-10, sgd-tanh-6, shallow-baseline (MLPs), lstm-adding-50;
    // cpu: lstm-adding-50, sgd-tanh-6, linear-exploding-20 (diverges at step 0);
    // portable: sgd-tanh-6, lstm-adding-50, linear-exploding-20, rnn-exploding (diverges at
    // step 30), resnet-relu-50, rbm-bars-stripes-cd1 (pretraining, exact log-likelihood).
    let seqs = [15u64, 17, 18, 4, 25, 38, 24, 59, 46, 45, 56, 53, 49];
    for (i, seq) in seqs.iter().enumerate() {
        let out = gradlab(dir.path())
            .args(["replay", &seq.to_string()])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let text = format!("{stdout}{stderr}");
        let warned = stderr.contains("warning: machine differs");
        let entry = &original.entries()[*seq as usize - 1];
        if entry.execution.backend == "portable" {
            // No machine is a reason to differ: EXACT on whatever runs the suite.
            assert!(
                out.status.success() && stdout.contains(&format!("EXACT: entry {seq} ")),
                "portable entry {seq} ({}) is not EXACT here: {text}",
                entry.experiment
            );
        }
        match out.status.code() {
            Some(0) => assert!(stdout.contains(&format!("EXACT: entry {seq} ")), "{text}"),
            // Reproduced to rounding on a machine that takes other kernel paths.
            Some(3) => {
                assert!(
                    warned,
                    "entry {seq} is CLOSE on its own kind of machine: {text}"
                );
                assert!(
                    stdout.contains(&format!("CLOSE: entry {seq} "))
                        && stdout.contains("agreement:"),
                    "{text}"
                );
            }
            Some(1) => {
                assert!(
                    warned,
                    "entry {seq} DIVERGED on a machine that takes its kernel paths: {text}"
                );
                assert!(
                    stdout.contains(&format!("DIVERGED from entry {seq} "))
                        && stdout.contains("the recording machine was different"),
                    "{text}"
                );
            }
            other => panic!("entry {seq}: the replay did not finish ({other:?}): {text}"),
        }
        // Recorded, run to its end, with the original's outcome.
        let ledger = Ledger::open(dir.path().join("ledger")).unwrap();
        let replay = &ledger.entries()[(shipped as usize) + i];
        let orig = &ledger.entries()[*seq as usize - 1];
        assert_eq!(replay.replay_of.as_deref(), Some(orig.hash.as_str()));
        assert_eq!(
            (replay.status, replay.metrics.steps_done, replay.diverged_at),
            (orig.status, orig.metrics.steps_done, orig.diverged_at),
            "entry {seq}: {text}"
        );
        assert!(
            replay.host.cpu_features.is_some(),
            "new entries record them"
        );
    }
    let (ok, report) = verify_cli(dir.path(), &[]);
    assert!(ok, "{report}");
}

/// CLOSE tells rounding from a real difference. A `flex` entry replayed on the `cpu` engine
/// (the same step, summed in other orders) is CLOSE, with the agreement band and the
/// conclusions side by side, exit 3, recorded with its agreement; a rerun with the learning
/// rate edited is DIVERGED at the first update (step 0's `update_ratio`), by exactly the
/// edit's relative size.
#[test]
fn replay_verdicts_tell_rounding_from_a_changed_setting() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_experiment(
        dir.path(),
        "close",
        &small_experiment("close", "optimizer = \"sgd\"\n"),
    );
    gradlab(dir.path())
        .args(["run", "--headless", "--device", "flex"])
        .arg(&f)
        .assert()
        .success();
    let out = gradlab(dir.path())
        .args(["replay", "1", "--device", "cpu"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("CLOSE: entry 1 (close) reproduced to rounding"),
        "{text}"
    );
    assert!(text.contains("agreement: bit-identical to"), "{text}");
    assert!(
        text.contains("conclusions (original vs replay): status completed"),
        "{text}"
    );
    let ledger = Ledger::open(dir.path().join("ledger")).unwrap();
    let verdict = ledger.entries()[1].verdict.clone().unwrap();
    assert_eq!(verdict.result, VerdictKind::Close);
    let agreement = verdict
        .agreement
        .expect("a CLOSE verdict records its agreement");
    assert!(agreement.first_relative.unwrap() <= ledger::replay::CLOSE_FIRST);
    assert!(agreement.within_1pct_to.is_some());

    // The same entry against a rerun with its learning rate edited (0.1 → 0.12): the ledger
    // refuses an altered line, so the rerun is compared with the stored trace directly.
    let original = ledger.entries()[0].clone();
    let trace = ledger.load_trace_bytes(&original).unwrap();
    let weights = ledger.load_weights(&original).ok();
    let body = std::fs::read_to_string(&f).unwrap();
    assert!(body.contains("learning_rate = 0.1\n"), "{body}");
    let edited = Experiment::parse(
        &body.replace("learning_rate = 0.1\n", "learning_rate = 0.12\n"),
        Path::new("edited.toml"),
    )
    .unwrap();
    let env = RunEnv {
        device: DeviceKind::Flex,
        ..RunEnv::default()
    };
    let rerun = train::train(&edited, env, &Control::new(), &mut |_| {});
    let (verdict, _) = ledger::replay::compare(
        &original,
        &trace,
        weights.as_deref(),
        &rerun,
        &rerun.trace.bytes().unwrap(),
    );
    assert_eq!(verdict.result, VerdictKind::Diverged, "{verdict:?}");
    // Step 0's gradients are the same; its update is 1.2× as long: ‖ΔW‖/‖W‖ of the first
    // layer is the first number to differ, by 0.2 / 1.2 relative.
    let first = verdict.first.as_ref().unwrap();
    assert_eq!(
        (first.step, first.quantity.as_str(), first.layer.as_deref()),
        (Some(0), "update_ratio", Some("h1")),
        "{verdict:?}"
    );
    let agreement = verdict.agreement.unwrap();
    assert_eq!(agreement.identical_to, None);
    assert!(
        (agreement.first_relative.unwrap() - 0.2 / 1.2).abs() < 1e-3,
        "{agreement:?}"
    );
}

/// `ledger audit --format json|markdown`: the same sample, its verdicts and counts, in a form
/// a script or a paper's supplement can take; the exit status stays 0 when all reproduce.
#[test]
fn audit_reports_as_json_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a1", "a2"] {
        let f = write_experiment(dir.path(), name, &small_experiment(name, ""));
        gradlab(dir.path())
            .args(["run", "--headless", "--steps", "6"])
            .arg(&f)
            .assert()
            .success();
    }
    let json = gradlab(dir.path())
        .args([
            "ledger",
            "audit",
            "--sample",
            "2",
            "--no-record",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["counts"]["exact"], 2, "{v}");
    assert_eq!(v["counts"]["diverged"], 0);
    let items = v["items"].as_array().unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| i["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(items.iter().all(|i| i["verdict"]["result"] == "exact"));
    let md = gradlab(dir.path())
        .args([
            "ledger",
            "audit",
            "--sample",
            "2",
            "--no-record",
            "--format",
            "markdown",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let md = String::from_utf8(md).unwrap();
    assert!(md.contains("2 EXACT, 0 CLOSE, 0 DIVERGED"), "{md}");
    assert!(md.contains("| entry | experiment | verdict |"), "{md}");
    assert!(md.contains("| 1 | a1 | EXACT |"), "{md}");
}
