//! Sweeps, job lines and ledger merges through the real binary: points recorded and tagged,
//! skipped when recorded, rerun on request, identical under any --jobs; emitted lines run as
//! they are and merge back; merges verify first, refuse tampering and are idempotent.

use super::common::{gradlab, small_experiment, write_experiment};
use gradlab::ledger::store::ENTRIES;
use gradlab::ledger::verify::verify_dir;
use gradlab::ledger::{Entry, Ledger};
use gradlab::sweep::{Metric, grid_summary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The sweep's grid: 2 depths × 2 σ_w × 2 seeds = 8 runs of 10 steps.
const GRID: [&str; 4] = ["--set", "model.depth=2,4", "--set", "model.sigma_w=0.7,0.9"];

fn experiment_file(dir: &Path) -> PathBuf {
    write_experiment(
        dir,
        "tiny",
        &small_experiment("tiny", "[probe]\ntest_every = 5\n"),
    )
}

/// Runs `gradlab sweep` over GRID with `extra` arguments; returns (stdout, stderr).
fn sweep(dir: &Path, ledger: &Path, file: &Path, extra: &[&str]) -> (String, String) {
    let out = gradlab(dir)
        .arg("--ledger")
        .arg(ledger)
        .arg("sweep")
        .arg(file)
        .args(GRID)
        .args(["--seeds", "2", "--steps", "10"])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .clone();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The sweep id from the line `sweep <id>: …` of the output.
fn sweep_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("sweep "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no sweep line in {stdout}"))
        .to_string()
}

fn entries(ledger: &Path) -> Vec<Entry> {
    Ledger::open(ledger).unwrap().entries().to_vec()
}

/// config hash → (trace hash, weights hash) of every entry.
fn results(ledger: &Path) -> BTreeMap<String, (String, String)> {
    entries(ledger)
        .into_iter()
        .map(|e| (e.config_hash.0, (e.trace.hash, e.weights.hash)))
        .collect()
}

#[test]
fn a_sweep_records_every_point_tagged_skips_them_next_time_and_reruns_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path());
    let ledger = dir.path().join("ledger");
    let (stdout, stderr) = sweep(dir.path(), &ledger, &file, &[]);
    let id = sweep_id(&stdout);
    assert!(
        stderr.contains("4 grid point(s) × 2 seed(s) = 8 run(s)"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("completed, loss").count(), 8, "{stderr}");
    let first = entries(&ledger);
    assert_eq!(first.len(), 8);
    let tag = format!("sweep:{id}");
    for e in &first {
        assert!(e.tags.contains(&tag), "entry {} tags {:?}", e.seq, e.tags);
        assert!(
            e.tags
                .contains(&"sweep-axes:model.depth,model.sigma_w".to_string())
        );
        assert_eq!(e.metrics.steps_done, 10);
    }
    let hashes: std::collections::HashSet<_> =
        first.iter().map(|e| e.config_hash.0.clone()).collect();
    assert_eq!(hashes.len(), 8, "every point and seed is its own config");
    // The table: a header and one row per grid point, each with both seeds.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("2 completed"))
        .collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    assert!(rows.iter().all(|r| r.contains("2/2")), "{stdout}");
    assert!(
        stdout.contains("8 run, 0 already in the ledger"),
        "{stdout}"
    );

    let (stdout, stderr) = sweep(dir.path(), &ledger, &file, &[]);
    assert_eq!(sweep_id(&stdout), id, "the same grid is the same sweep");
    assert!(
        stdout.contains("0 run, 8 already in the ledger"),
        "{stdout}"
    );
    assert_eq!(stderr.matches("skipped").count(), 8, "{stderr}");
    assert_eq!(entries(&ledger).len(), 8, "nothing was run again");

    let (stdout, _) = sweep(dir.path(), &ledger, &file, &["--rerun", "--jobs", "2"]);
    assert!(
        stdout.contains("8 run, 0 already in the ledger"),
        "{stdout}"
    );
    let all = entries(&ledger);
    assert_eq!(all.len(), 16);
    // Reruns reproduce their points bit for bit.
    for again in &all[8..] {
        let before = first
            .iter()
            .find(|e| e.config_hash == again.config_hash)
            .unwrap();
        assert_eq!(before.trace.hash, again.trace.hash);
        assert_eq!(before.weights.hash, again.weights.hash);
    }
    assert!(verify_dir(&ledger, None).ok());

    // The grid the TUI and `plot --sweep` read: σ_w across, depth down, ξ over it.
    let grid = grid_summary(&Ledger::open(&ledger).unwrap(), &id).unwrap();
    assert_eq!(
        (grid.x_field.as_str(), grid.y_field.as_str()),
        ("model.sigma_w", "model.depth")
    );
    assert_eq!(
        (grid.xs.clone(), grid.ys.clone()),
        (vec![0.7, 0.9], vec![2.0, 4.0])
    );
    for row in &grid.cells {
        for c in row {
            assert_eq!((c.runs, c.seeds, c.completed), (2, 2, 1 + 1));
        }
    }
    let loss = grid.metric(Metric::Loss);
    assert!(
        loss.iter().flatten().all(|v| v.is_finite() && *v > 0.0),
        "{loss:?}"
    );
    // Deeper nets in the ordered phase lose more of δ: log10 δ¹/δᴸ at init is lower at depth 4.
    let delta = grid.metric(Metric::DeltaInit);
    assert!(delta[1][0] < delta[0][0], "{delta:?}");
    let xi = grid.xi_curve.expect("σ_w × depth of an MLP has a ξ curve");
    // tanh, σ_b = 0: χ* = σ_w² below the edge of chaos, so ξ = −1/ln σ_w² rises toward σ_w = 1.
    let (s0, x0) = xi[0];
    assert!(
        (s0 - 0.7).abs() < 1e-12 && (x0 - (-1.0 / (0.49f64).ln())).abs() < 1e-2,
        "{:?}",
        xi[0]
    );
    assert!(
        xi.windows(2).all(|w| w[1].1 > w[0].1),
        "ξ grows toward the edge of chaos"
    );
}

#[test]
fn two_jobs_give_the_same_traces_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path());
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    sweep(dir.path(), &one, &file, &["--jobs", "1"]);
    sweep(dir.path(), &two, &file, &["--jobs", "2"]);
    let (a, b) = (results(&one), results(&two));
    assert_eq!(a.len(), 8);
    assert_eq!(
        a, b,
        "config → trace and weights hashes do not depend on --jobs"
    );
    // Every point ran on one backend thread, as recorded.
    assert!(entries(&two).iter().all(|e| e.execution.threads == 1));
}

#[test]
fn run_set_changes_the_recorded_config_and_rejects_unknown_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path());
    gradlab(dir.path())
        .arg("run")
        .arg(&file)
        .args([
            "--headless",
            "--steps",
            "3",
            "--set",
            "model.depth=3",
            "--set",
            "model.activation=relu",
            "--tag",
            "mine",
        ])
        .assert()
        .success();
    let e = &entries(&dir.path().join("ledger"))[0];
    assert!(
        e.config.contains("depth = 3") && e.config.contains("activation = \"relu\""),
        "{}",
        e.config
    );
    assert_eq!(e.layers.len(), 4, "3 hidden layers and the output");
    assert_eq!(e.tags, ["mine"]);
    let out = gradlab(dir.path())
        .arg("run")
        .arg(&file)
        .args(["--headless", "--set", "model.dept=3"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'dept' is not a field of [model]"), "{err}");
    assert_eq!(
        entries(&dir.path().join("ledger")).len(),
        1,
        "nothing recorded for a bad --set"
    );
}

/// Writes the job lines for GRID and returns them with the sweep id and the jobs folder.
fn emit(dir: &Path, file: &Path) -> (Vec<String>, String, PathBuf) {
    let out = gradlab(dir)
        .arg("sweep")
        .arg(file)
        .args(GRID)
        .args(["--seeds", "2", "--steps", "10", "--emit-jobs", "jobs.txt"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = stdout
        .split("(sweep ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    let lines: Vec<String> = std::fs::read_to_string(dir.join("jobs.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (lines, id.clone(), dir.join(format!("sweep-{id}")))
}

/// Runs one emitted line through the shell, from another folder, as a cluster node would.
fn run_line(line: &str) {
    let elsewhere = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(elsewhere.path())
        .env_remove("GRADLAB_LEDGER")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{line}");
}

fn merge(dir: &Path, sources: &[PathBuf]) -> assert_cmd::assert::Assert {
    gradlab(dir)
        .args(["ledger", "merge"])
        .args(sources)
        .assert()
}

#[test]
fn emitted_lines_run_as_is_and_their_ledgers_merge_back_into_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path());
    let (lines, id, jobs) = emit(dir.path(), &file);
    assert_eq!(lines.len(), 8, "one line per point and seed");
    assert!(
        !dir.path().join("ledger").exists(),
        "--emit-jobs runs nothing"
    );
    assert!(
        lines[0].contains(
            " --set model.depth=2 --set model.sigma_w=0.7 --seed 3 --steps 10 --headless"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[7].ends_with(&format!("--ledger {}", jobs.join("point-8").display())),
        "{}",
        lines[7]
    );
    run_line(&lines[0]);
    run_line(&lines[5]);
    let sources = [jobs.join("point-1"), jobs.join("point-6")];
    let originals: Vec<Entry> = sources.iter().flat_map(|s| entries(s)).collect();
    assert_eq!(originals.len(), 2);

    let stdout = String::from_utf8(
        merge(dir.path(), &sources)
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(stdout.contains("merged 2 entries"), "{stdout}");
    let ledger = dir.path().join("ledger");
    let report = verify_dir(&ledger, None);
    assert!(report.ok(), "{:?}", report.problems);
    let merged = entries(&ledger);
    for (m, o) in merged.iter().zip(&originals) {
        let origin = m
            .origin
            .as_ref()
            .expect("a merged entry records its origin");
        assert_eq!(origin.hash, o.hash, "the original hash is kept");
        assert_eq!(
            (origin.seq, origin.source_head.as_str()),
            (1, o.hash.as_str())
        );
        assert_eq!(m.trace, o.trace);
        assert_eq!(m.config_hash, o.config_hash);
        assert!(m.tags.contains(&format!("sweep:{id}")));
    }
    // Found by its original hash too.
    let shown = gradlab(dir.path())
        .args(["ledger", "show", &originals[1].hash[..12]])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&shown.get_output().stdout).contains("merged"));

    // The sweep finds the merged points recorded and runs only the other six.
    let (stdout, stderr) = sweep(dir.path(), &ledger, &file, &["--jobs", "2"]);
    assert_eq!(
        sweep_id(&stdout),
        id,
        "job lines and the sweep agree on its id"
    );
    assert!(
        stdout.contains("6 run, 2 already in the ledger"),
        "{stdout}\n{stderr}"
    );
    let grid = grid_summary(&Ledger::open(&ledger).unwrap(), &id).unwrap();
    assert!(grid.cells.iter().flatten().all(|c| c.runs == 2));
}

/// Two one-entry ledgers made by `gradlab run`, in `dir/a` and `dir/b`.
fn two_sources(dir: &Path) -> [PathBuf; 2] {
    let file = experiment_file(dir);
    let sources = [dir.join("a"), dir.join("b")];
    for (s, seed) in sources.iter().zip(["1", "2"]) {
        gradlab(dir)
            .arg("--ledger")
            .arg(s)
            .arg("run")
            .arg(&file)
            .args(["--headless", "--steps", "5", "--seed", seed])
            .assert()
            .success();
    }
    sources
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(snapshot(&p));
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_tampered_source_refuses_the_whole_merge_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let [a, b] = two_sources(dir.path());
    let target = dir.path().join("ledger");
    // The target already has an entry, so "nothing written" is checked on a live ledger.
    merge(dir.path(), std::slice::from_ref(&a)).success();
    let before = snapshot(&target);
    assert!(!before.is_empty());

    // A byte of an entry line (inside the metrics) …
    let entries_file = b.join(ENTRIES);
    let text = std::fs::read_to_string(&entries_file).unwrap();
    let at = text.find("\"train_loss\":").unwrap() + "\"train_loss\":".len() + 3;
    let pristine = std::fs::read(&entries_file).unwrap();
    flip(&entries_file, at);
    let out = merge(dir.path(), &[a.clone(), b.clone()])
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not verify, so nothing was merged") && err.contains("hash mismatch"),
        "{err}"
    );
    assert_eq!(snapshot(&target), before, "not a byte written");
    std::fs::write(&entries_file, pristine).unwrap();

    // … or a byte of an object file.
    let object = snapshot(&b.join("objects")).into_keys().next().unwrap();
    flip(&object, 40);
    let out = merge(dir.path(), std::slice::from_ref(&b))
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not verify") && err.contains("object"),
        "{err}"
    );
    assert_eq!(snapshot(&target), before, "not a byte written");

    // Not a ledger at all.
    let out = merge(dir.path(), &[dir.path().join("nowhere")])
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a ledger folder"));
}

#[test]
fn merging_is_idempotent_even_through_merges_of_merges_and_every_merged_entry_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let [a, b] = two_sources(dir.path());
    let (middle, top) = (dir.path().join("middle"), dir.path().join("top"));
    let merge_into = |target: &Path, sources: &[PathBuf]| {
        let out = gradlab(dir.path())
            .arg("--ledger")
            .arg(target)
            .args(["ledger", "merge"])
            .args(sources)
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(merge_into(&middle, &[a.clone(), b.clone()]).contains("merged 2 entries"));
    let once = std::fs::read(middle.join(ENTRIES)).unwrap();
    let again = merge_into(&middle, &[a.clone(), b.clone()]);
    assert!(
        again.contains("merged 0 entries") && again.contains("0 added, 1 already here"),
        "{again}"
    );
    assert_eq!(
        std::fs::read(middle.join(ENTRIES)).unwrap(),
        once,
        "the second merge adds nothing"
    );
    // A ledger merged into itself adds nothing either.
    assert!(merge_into(&middle, std::slice::from_ref(&middle)).contains("merged 0 entries"));

    // top gets a's entry twice over: directly, and inside middle's merged entries.
    assert!(merge_into(&top, std::slice::from_ref(&a)).contains("merged 1 entries"));
    assert!(merge_into(&top, std::slice::from_ref(&middle)).contains("merged 1 entries"));
    let top_entries = entries(&top);
    assert_eq!(top_entries.len(), 2);
    let nested = &top_entries[1];
    let lineage = nested.lineage();
    assert_eq!(lineage.len(), 3, "its own hash, middle's, b's");
    assert_eq!(lineage[2], entries(&b)[0].hash);
    for ledger in [&middle, &top] {
        let report = verify_dir(ledger, None);
        assert!(report.ok(), "{:?}", report.problems);
    }
}

#[test]
fn a_merged_entry_that_no_longer_matches_its_original_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let [a, _] = two_sources(dir.path());
    let target = dir.path().join("ledger");
    merge(dir.path(), &[a]).success();
    // Rewrite the merged entry's host and reseal it, as a forger rewriting history would
    // (its own hash and the chain are then fine; only the embedded original disagrees).
    let mut e = entries(&target).remove(0);
    e.host.cpu = "a faster machine".into();
    e.seal();
    std::fs::write(target.join(ENTRIES), format!("{}\n", e.to_line())).unwrap();
    let report = verify_dir(&target, None);
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("differs from the original it embeds in host")),
        "{problems:?}"
    );
    // And an embedded line that was itself altered no longer hashes to the original hash.
    let mut e = entries(&dir.path().join("a")).remove(0);
    let original_line = e.to_line();
    e.origin = Some(gradlab::ledger::Origin {
        source: "x".into(),
        source_head: e.hash.clone(),
        seq: 1,
        hash: e.hash.clone(),
        merged: e.started.clone(),
        line: original_line.replacen("\"tiny\"", "\"tinx\"", 1),
    });
    e.prev = gradlab::ledger::entry::GENESIS.into();
    e.seal();
    std::fs::write(target.join(ENTRIES), format!("{}\n", e.to_line())).unwrap();
    let report = verify_dir(&target, None);
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        problems.iter().any(|p| p
            .contains("origin: the embedded original line is not a valid entry: hash mismatch")),
        "{problems:?}"
    );
}

/// `--set experiment.seed=5,6` is an axis like any other: each point runs and records its own
/// seed (it was labelled 5 and 6 but ran the base's seed twice); with `--seeds 2` as well the
/// seeds would overlap, and the sweep is refused before anything runs.
#[test]
fn a_seed_axis_runs_each_points_seed() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path());
    let seed_axis = |ledger: &Path, seeds: &str| {
        gradlab(dir.path())
            .arg("--ledger")
            .arg(ledger)
            .arg("sweep")
            .arg(&file)
            .args([
                "--set",
                "experiment.seed=5,6",
                "--seeds",
                seeds,
                "--steps",
                "5",
            ])
            .assert()
            .get_output()
            .clone()
    };
    let ledger = dir.path().join("seeds-ledger");
    assert!(seed_axis(&ledger, "1").status.success());
    let e = entries(&ledger);
    let seeds: Vec<u64> = e.iter().map(|e| e.seeds.experiment).collect();
    assert_eq!(seeds, [5, 6]);
    assert_ne!(e[0].trace.hash, e[1].trace.hash, "two seeds, two runs");
    let refused = dir.path().join("refused");
    let out = seed_axis(&refused, "2");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seeds"));
    assert!(!refused.exists(), "nothing ran, nothing was written");
}

/// A σ_w × σ_b sweep of an MLP carries the theory's order–chaos line (Schoenholz et al. 2017,
/// Fig. 1) in the config's own σ_w, and `plot --sweep` draws its trainability heatmap over it.
#[test]
fn a_sigma_w_by_sigma_b_sweep_is_drawn_over_the_theory_s_edge() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    let file = experiment_file(dir.path());
    let out = gradlab(dir.path())
        .arg("--ledger")
        .arg(&ledger)
        .arg("sweep")
        .arg(&file)
        .args([
            "--set",
            "model.sigma_w=0.8,1.6",
            "--set",
            "model.sigma_b=0,0.5",
        ])
        .args(["--steps", "3"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let id = sweep_id(&String::from_utf8(out).unwrap());
    let grid = grid_summary(&Ledger::open(&ledger).unwrap(), &id).unwrap();
    assert_eq!(
        (grid.x_field.as_str(), grid.y_field.as_str()),
        ("model.sigma_w", "model.sigma_b")
    );
    assert!(grid.xi_curve.is_none());
    let edge = grid.edge_curve.expect("σ_w × σ_b of an MLP has the edge");
    // tanh with Xavier at equal fans: N·Var(W) = σ_w², so σ_b = 0 puts the edge at σ_w ≈ 1
    // and it moves right as σ_b grows (σ_w² = 1.76 at σ_b² = 0.05, the paper's figure).
    let (w0, b0) = edge[0];
    assert!(b0 == 0.0 && (w0 - 1.0).abs() < 5e-3, "{:?}", edge[0]);
    assert!(edge.windows(2).all(|p| p[1].0 >= p[0].0), "{edge:?}");
    let at = |b: f64| {
        edge.iter()
            .min_by(|p, q| (p.1 - b).abs().total_cmp(&(q.1 - b).abs()))
            .unwrap()
    };
    let near = at(0.05f64.sqrt());
    assert!((near.0 * near.0 - 1.76).abs() < 0.05, "{near:?}");
    gradlab(dir.path())
        .arg("--ledger")
        .arg(&ledger)
        .args(["plot", "--sweep", &id, "--out", "plane.svg"])
        .assert()
        .success();
    let svg = std::fs::read_to_string(dir.path().join("plane.svg")).unwrap();
    assert!(svg.contains("χ* = 1"), "the edge is drawn and named");
}
