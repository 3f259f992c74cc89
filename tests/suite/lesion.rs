//! The lesion study (Veit, Wilber & Belongie 2016) through the real binary: its effect on the
//! shipped experiment pair over seeds, its ledger entry (listed, verified, replayed EXACT), the
//! weights it retrains when they were not stored, its refusals, and its figures.

use super::common::{gradlab, root, write_experiment};
use serde_json::Value;
use std::path::Path;

/// Runs `file` (repository experiment or a path) with `seed` and returns its entry's seq.
fn train(dir: &Path, file: &Path, seed: u64, envs: &[(&str, &str)]) -> u64 {
    let mut cmd = gradlab(dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.args(["run", file.to_str().unwrap(), "--headless", "--seed"])
        .arg(seed.to_string())
        .assert()
        .success();
    last_seq(dir)
}

fn last_seq(dir: &Path) -> u64 {
    let entries = std::fs::read_to_string(dir.join("ledger/entries.jsonl")).unwrap();
    let last: Value = serde_json::from_str(entries.lines().last().unwrap()).unwrap();
    last["seq"].as_u64().unwrap()
}

fn lesion(dir: &Path, seq: u64, extra: &[&str]) -> Value {
    let out = gradlab(dir)
        .args(["lesion", &seq.to_string(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Measured on seeds 1–5 (`gradlab lesion ID --json` after each run of the shipped pair):
/// intact test error 0.026–0.052 (resnet) and 0.054–0.076 (plain); one residual block deleted
/// 0.078–0.12 on average (worst block 0.17–0.40), two 0.15–0.27, all sixteen 0.81–0.91, rising
/// smoothly between; one plain layer deleted 0.88–0.90 on average, never below 0.71 — chance is
/// 0.9. The gradient peaks at paths through 4–5 of the 16 branches and paths of more than 8
/// carry 1.6–2.6 % of it. The thresholds below leave each of these a wide margin.
#[test]
fn deleting_a_layer_breaks_a_plain_net_and_a_residual_net_degrades_smoothly() {
    let dir = tempfile::tempdir().unwrap();
    let resnet = root().join("experiments/lesion-resnet-digits.toml");
    let plain = root().join("experiments/lesion-plain-digits.toml");
    for seed in 1..=3 {
        let r = lesion(dir.path(), train(dir.path(), &resnet, seed, &[]), &[]);
        let p = lesion(dir.path(), train(dir.path(), &plain, seed, &[]), &[]);
        let ctx = format!("seed {seed}: resnet {r}\nplain {p}");
        assert!(f(&r["intact"]) < 0.1 && f(&p["intact"]) < 0.12, "{ctx}");
        assert_eq!(r["units"].as_array().unwrap().len(), 16, "{ctx}");
        assert_eq!(p["units"][0], "h2", "the first layer reads the data: {ctx}");
        let by_k = |v: &Value, k: usize| f(&v["by_k"][k - 1]["mean"]);
        // Plain: any one layer gone and the net is near chance.
        for s in p["singles"].as_array().unwrap() {
            assert!(f(&s["error"]) > 0.5, "{ctx}");
        }
        assert!(by_k(&p, 1) > 0.8, "{ctx}");
        // Residual: one block costs a few points, and the error climbs with k, not at once.
        assert!(
            by_k(&r, 1) < 0.2 && by_k(&r, 1) < f(&r["intact"]) + 0.15,
            "{ctx}"
        );
        assert!(by_k(&r, 2) < 0.4, "{ctx}");
        assert!(by_k(&r, 16) > by_k(&r, 1) + 0.3, "{ctx}");
        assert!(
            by_k(&r, 8) > by_k(&r, 2) && by_k(&r, 8) < by_k(&r, 16) + 0.05,
            "{ctx}"
        );
        // Effective paths: short ones carry the gradient.
        let peak = r["paths_peak"].as_u64().unwrap();
        assert!((3..=6).contains(&peak), "{ctx}");
        let long: f64 = r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["k"].as_u64().unwrap() > 8)
            .map(|q| f(&q["share"]))
            .sum();
        assert!(long < 0.1, "{ctx}");
        let total: f64 = r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| f(&q["share"]))
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{ctx}");
        assert_eq!(
            p["paths"],
            Value::Array(Vec::new()),
            "a plain net has one path"
        );
    }
}

const SMALL_RESNET: &str = "[experiment]\nname = \"small-resnet\"\nseed = 2\n[data]\ntask = \"spirals\"\n\
    train_size = 64\ntest_size = 40\n[model]\nkind = \"resnet\"\ndepth = 5\nwidth = 12\n\
    activation = \"relu\"\n[train]\nsteps = 30\nbatch_size = 32\nlearning_rate = 0.1\n";

/// A study is its own entry, tied to the run: listed and shown as such, verified, replayed
/// EXACT (the replay recomputes it from the run's stored weights), and — when the weights
/// were over the size cap — computed from weights trained again, with the same numbers.
#[test]
fn a_lesion_entry_is_listed_verified_and_replays_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write_experiment(d, "small-resnet", SMALL_RESNET);
    let run = train(d, &file, 2, &[]);
    let study = lesion(d, run, &["--draws", "4", "--path-draws", "5"]);
    let seq = study["recorded"]["seq"].as_u64().unwrap();
    assert_eq!(seq, run + 1);
    let list = gradlab(d).args(["ledger", "list"]).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains(&format!("lesion of {run}")), "{list}");
    let show = gradlab(d)
        .args(["ledger", "show", &seq.to_string()])
        .output()
        .unwrap();
    let show = String::from_utf8(show.stdout).unwrap();
    assert!(
        show.contains(&format!("lesion study of entry {run}")),
        "{show}"
    );
    gradlab(d).args(["ledger", "verify"]).assert().success();
    let replay = gradlab(d)
        .args(["replay", &seq.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success() && text.contains(&format!("EXACT: entry {seq} ")),
        "{text}{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    gradlab(d).args(["ledger", "verify"]).assert().success();

    // The same run with its weights over a 10-byte cap: not stored, trained again, same study.
    let other = tempfile::tempdir().unwrap();
    let file = write_experiment(other.path(), "small-resnet", SMALL_RESNET);
    let capped = train(other.path(), &file, 2, &[("GRADLAB_WEIGHTS_CAP", "10")]);
    let again = lesion(other.path(), capped, &["--draws", "4", "--path-draws", "5"]);
    for field in ["intact", "singles", "by_k", "paths"] {
        assert_eq!(again[field], study[field], "{field}");
    }
    // --no-ledger records nothing.
    let before = last_seq(other.path());
    lesion(other.path(), capped, &["--no-ledger"]);
    assert_eq!(last_seq(other.path()), before);
}

/// What a study cannot be made of says so and exits 2, recording nothing.
#[test]
fn a_lesion_study_refuses_what_it_cannot_study() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rnn = write_experiment(
        d,
        "rnn",
        "[experiment]\nname = \"rnn\"\n[data]\ntask = \"adding\"\nseq_len = 10\ntrain_size = 16\n\
         test_size = 8\n[model]\nkind = \"rnn\"\nwidth = 4\n[train]\nsteps = 2\nbatch_size = 8\n",
    );
    let rnn = train(d, &rnn, 1, &[]);
    let file = write_experiment(d, "small-resnet", SMALL_RESNET);
    let run = train(d, &file, 2, &[]);
    let study = lesion(d, run, &["--draws", "2", "--path-draws", "2"])["recorded"]["seq"]
        .as_u64()
        .unwrap();
    for (id, says) in [
        (rnn.to_string(), "model.kind 'rnn'"),
        (study.to_string(), "a lesion study itself"),
        ("99".to_string(), "99"),
    ] {
        let out = gradlab(d).args(["lesion", &id]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{id}: {err}");
        assert!(err.contains(says), "{id}: {err}");
    }
    assert_eq!(last_seq(d), study, "nothing recorded");
}

/// `plot --kind lesion` takes a run (its latest study) or a study; `--kind paths` refuses a
/// plain net's, and a run without a study names the command that makes one.
#[test]
fn lesion_figures_are_drawn_from_studies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write_experiment(d, "small-resnet", SMALL_RESNET);
    let run = train(d, &file, 2, &[]);
    let plot = |ids: &[String], kind: &str, out: &str| {
        gradlab(d)
            .args(["plot", "--kind", kind, "--out", out])
            .args(ids)
            .output()
            .unwrap()
    };
    let none = plot(&[run.to_string()], "lesion", "a.svg");
    assert!(String::from_utf8_lossy(&none.stderr).contains(&format!("gradlab lesion {run}")));
    let study = lesion(d, run, &["--draws", "2", "--path-draws", "2"])["recorded"]["seq"]
        .as_u64()
        .unwrap();
    for (ids, kind) in [
        (vec![run.to_string()], "lesion"),
        (vec![study.to_string(), run.to_string()], "lesion"),
        (vec![run.to_string()], "paths"),
    ] {
        let out = plot(&ids, kind, "f.svg");
        assert!(out.status.success(), "{kind} {ids:?}: {out:?}");
        let svg = std::fs::read_to_string(d.join("f.svg")).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("small-resnet"),
            "{kind}"
        );
    }
    let mlp = write_experiment(
        d,
        "small-mlp",
        &SMALL_RESNET
            .replace("small-resnet", "small-mlp")
            .replace("kind = \"resnet\"\n", ""),
    );
    let mlp = train(d, &mlp, 2, &[]);
    lesion(d, mlp, &["--draws", "2"]);
    let out = plot(&[mlp.to_string()], "paths", "p.svg");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plain net"),
        "{out:?}"
    );
}
