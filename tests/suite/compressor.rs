//! Schmidhuber's history compressor (1992) through the real binary: on key recall at T = 100
//! its lower level learns the filler, so its upper level receives ~3 of the 100 inputs and its
//! error reaches the key undiminished, where a plain RNN of the same width vanishes; its trace
//! records what is passed up, its entries replay EXACT, `plot` draws both levels.

use super::common::{gradlab, root, write_experiment};
use serde_json::Value;
use std::path::Path;

/// Trains `file` with `seed` (recorded in `dir/ledger`) and returns its trace's records.
fn trace(dir: &Path, file: &Path, seed: u64) -> Vec<Value> {
    let out = dir.join(format!("trace-{seed}.jsonl"));
    gradlab(dir)
        .args(["run", file.to_str().unwrap(), "--headless", "--seed"])
        .arg(seed.to_string())
        .args(["--trace", out.to_str().unwrap()])
        .assert()
        .success();
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn probes(t: &[Value]) -> Vec<&Value> {
    t.iter().filter(|r| r["type"] == "probe").collect()
}

/// ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ of a probe (the upper level's, for the compressor).
fn ratio(p: &Value) -> f64 {
    let t = p["time"].as_array().unwrap();
    t[0].as_f64().unwrap() / t[t.len() - 1].as_f64().unwrap()
}

fn accuracy(t: &[Value]) -> f64 {
    probes(t).last().unwrap()["test"]["accuracy"]
        .as_f64()
        .unwrap()
}

/// Measured on seeds 1–5 (`gradlab run experiments/FILE --headless --seed S --trace …`):
/// chunker test accuracy 1.0 from step 200 on; inputs passed up 76–99.9 of 100 at step 0,
/// 2.66–2.84 at the end; its upper level's ‖∂L/∂h_1‖/‖∂L/∂h_100‖ 8.5e-16–3.8e-11 at step 0
/// (it sees every input, a plain RNN), 1.1–1.2 at the end. The plain RNN: test accuracy
/// 0.21–0.32 (chance 0.25), the same ratio 7e-12–4e-9 at the end. (The LSTM with forget bias
/// 2 learns seeds 1 and 2 and stays at chance on 3–5 within 800 steps: not asserted.)
#[test]
fn the_compressor_bridges_a_lag_the_plain_rnn_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = root().join("experiments");
    for seed in 1..=3 {
        let c = trace(dir.path(), &experiments.join("chunker-key-100.toml"), seed);
        let r = trace(dir.path(), &experiments.join("rnn-key-100.toml"), seed);
        let (first, last) = (probes(&c)[0], *probes(&c).last().unwrap());
        let passed = |p: &Value| p["levels"]["passed_up"].as_f64().unwrap();
        let ctx = format!(
            "seed {seed}: chunker accuracy {}, passed {} → {}, ratio {:e} → {:e}; rnn accuracy {}, ratio {:e}",
            accuracy(&c),
            passed(first),
            passed(last),
            ratio(first),
            ratio(last),
            accuracy(&r),
            ratio(probes(&r).last().unwrap())
        );
        assert_eq!(last["levels"]["steps"], 100, "{ctx}");
        assert!(accuracy(&c) > 0.95, "{ctx}");
        assert!(passed(first) > 50.0 && passed(last) < 5.0, "{ctx}");
        assert!(ratio(first) < 1e-6 && ratio(last) > 0.1, "{ctx}");
        assert!(accuracy(&r) < 0.45, "{ctx}");
        assert!(ratio(probes(&r).last().unwrap()) < 1e-6, "{ctx}");
        let low = last["levels"]["low_time"].as_array().unwrap();
        assert_eq!(low.len(), 100, "the lower level's profile: {ctx}");
        assert!(
            last["levels"]["predict_loss"].as_f64().unwrap() < 0.3,
            "{ctx}"
        );
    }
}

const SMALL: &str = "[experiment]\nname = \"small-chunker\"\nseed = 4\n[data]\ntask = \"key-recall\"\n\
    seq_len = 12\ntrain_size = 64\ntest_size = 32\n[model]\nkind = \"chunker\"\nwidth = 8\n\
    [train]\noptimizer = \"adam\"\nlearning_rate = 0.01\nbatch_size = 32\nsteps = 20\n\
    [probe]\nevery = 5\n";

/// A compressor entry replays EXACT; `plot --kind levels` and `--kind time` draw it, and
/// `--kind levels` refuses another model's entry (a task it cannot read is an invalid
/// fixture: `tests/fixtures/invalid/chunker-on-copy-memory.toml`).
#[test]
fn a_compressor_entry_replays_exact_and_is_plotted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write_experiment(d, "small-chunker", SMALL);
    trace(d, &file, 4);
    let replay = gradlab(d).args(["replay", "1"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&replay.stdout).contains("EXACT: entry 1 "),
        "{replay:?}"
    );
    for kind in ["levels", "time"] {
        gradlab(d)
            .args(["plot", "1", "--kind", kind, "--out", "f.svg"])
            .assert()
            .success();
        let svg = std::fs::read_to_string(d.join("f.svg")).unwrap();
        assert!(svg.contains("small-chunker"), "{kind}");
        if kind == "time" {
            assert!(
                svg.contains("low level") && svg.contains("high level"),
                "{kind}"
            );
        }
    }
    // Entry 2 is the replay; entry 3 a plain RNN on the same task.
    let rnn = write_experiment(d, "rnn", &SMALL.replace("\"chunker\"", "\"rnn\""));
    trace(d, &rnn, 4);
    let out = gradlab(d)
        .args(["plot", "3", "--kind", "levels", "--out", "g.svg"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not a history compressor"),
        "{err}"
    );
    assert!(!d.join("g.svg").exists());
}

/// The collapsed compressor (`model.collapse`): its lower level learns to reproduce the upper
/// level's state, so the answer read from that reproduction becomes the upper level's own.
/// Measured on seeds 1–5: the share of the batch where it is, averaged over the second half
/// of training, 0.54–0.85 (at step 0: 0–0.44; chance 0.25), the upper level still at test
/// accuracy 1.0.
#[test]
fn the_collapsed_lower_level_learns_to_give_the_upper_levels_answer() {
    let dir = tempfile::tempdir().unwrap();
    let file = root().join("experiments/chunker-collapse-key-100.toml");
    for seed in 1..=3 {
        let t = trace(dir.path(), &file, seed);
        let agreement: Vec<f64> = probes(&t)
            .iter()
            .map(|p| p["levels"]["collapsed_agreement"].as_f64().unwrap())
            .collect();
        let late = &agreement[agreement.len() / 2..];
        let mean = late.iter().sum::<f64>() / late.len() as f64;
        assert!(mean > 0.4, "seed {seed}: {agreement:?}");
        assert!(accuracy(&t) > 0.95, "seed {seed}");
    }
}
