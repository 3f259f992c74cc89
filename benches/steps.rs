//! `make bench`: steps per second of the lab's real training loop on the peer workloads, for
//! every CPU engine (`portable`, the default; `cpu`, the fused path over the `gemm` crate;
//! `flex`, the op-by-op reference), with the probe overhead of each, all measured in one process. Python-free; `make bench-peers`
//! puts PyTorch and JAX beside these numbers.
//!
//! Each figure is `gradlab bench-step`'s measurement (`gradlab::bench::measure`): one fixed
//! batch, repetitions cut at probe boundaries; rounds interleave every workload and engine
//! and the median round is reported (`GRADLAB_BENCH_REPS` rounds, default 5).

use gradlab::bench;
use gradlab::experiment::Experiment;
use gradlab::ledger::{self, Ledger};
use gradlab::train::Control;
use gradlab::train::{self, DeviceKind, RunEnv};
use std::path::Path;
use std::time::Instant;

const WORKLOADS: [(&str, &str); 6] = [
    (
        "w1",
        "W1 MLP 64→20×256 tanh→10, batch 128, probes every step",
    ),
    ("w1_noprobe", "W1 without probes"),
    ("w2", "W2 MLP 64→100×64 tanh→10, batch 128, probes"),
    ("w2_noprobe", "W2 without probes"),
    ("lstm", "LSTM H 128, T 100, batch 32, probes"),
    ("rnn", "tanh RNN, same shapes, probes"),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let rounds: usize = std::env::var("GRADLAB_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let threads: usize = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    train::init_threads(threads);
    let engines = [DeviceKind::Portable, DeviceKind::Cpu, DeviceKind::Flex];
    let exps: Vec<_> = WORKLOADS
        .iter()
        .map(|(name, _)| bench::workload(name).expect("every peer workload is built in"))
        .collect();
    // rate[w][e]: one figure per round. Rounds interleave every workload and engine, so a
    // slow minute on this shared machine hits them all alike.
    let mut rate = vec![vec![Vec::new(); engines.len()]; WORKLOADS.len()];
    for _ in 0..rounds {
        for (w, (name, _)) in WORKLOADS.iter().enumerate() {
            for (e, &device) in engines.iter().enumerate() {
                let rec = bench::measure(
                    name,
                    &exps[w],
                    RunEnv {
                        device,
                        threads,
                        ..RunEnv::default()
                    },
                    1,
                    0.5,
                );
                rate[w][e].push(rec["steps_per_s_median"].as_f64().unwrap_or(f64::NAN));
            }
        }
    }
    println!("steps/s, {threads} thread(s), median of {rounds} interleaved rounds");
    println!(
        "{:<58} {:>8} {:>8} {:>8} {:>13}",
        "workload", "portable", "cpu", "flex", "portable/cpu"
    );
    for (w, (_, label)) in WORKLOADS.iter().enumerate() {
        let [p, c, f] = [0, 1, 2].map(|e| median(rate[w][e].clone()));
        println!("{label:<58} {p:>8.1} {c:>8.1} {f:>8.1} {:>12.2}×", p / c);
    }
    // Overhead from the rounds' own pairs (probes on and off measured back to back).
    for (on, off, label) in [(0, 1, "W1"), (2, 3, "W2")] {
        let overhead = |e: usize| {
            let pairs = rate[on][e].iter().zip(&rate[off][e]);
            100.0 * (median(pairs.map(|(a, b)| b / a).collect()) - 1.0)
        };
        println!(
            "{label} probe overhead: portable {:+.1}%, cpu {:+.1}%, flex {:+.1}% of a step",
            overhead(0),
            overhead(1),
            overhead(2)
        );
    }
    ledger_speed();
}

/// `ledger verify` and `ledger list` on a ledger of `GRADLAB_BENCH_ENTRIES` entries (default
/// 20,000; the aim: verify ≥ 20,000 entries/s, list under 0.2 s). The entries are one
/// tiny run recorded again and again (each append is fsynced, as always).
fn ledger_speed() {
    let n: usize = std::env::var("GRADLAB_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    if n == 0 {
        return;
    }
    let dir = std::env::temp_dir().join(format!("gradlab-bench-ledger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let body = "[experiment]\nname = \"tiny\"\nseed = 1\n[data]\ntask = \"spirals\"\ntrain_size = 16\ntest_size = 0\n\
                [model]\ndepth = 2\nwidth = 4\n[train]\nsteps = 3\nbatch_size = 16\n";
    let exp = Experiment::parse(body, Path::new("tiny.toml")).expect("a valid config");
    let env = RunEnv::default();
    let outcome = train::train(&exp, env, &Control::new(), &mut |_| {});
    let mut l = Ledger::open(&dir).expect("a new ledger");
    let start = Instant::now();
    for _ in 0..n {
        l.record_run(&exp, env, &outcome, std::time::SystemTime::now())
            .expect("the bench ledger takes the entry");
    }
    let record_s = start.elapsed().as_secs_f64();
    // As the CLI runs them: on a pool of every core (this process's global pool was sized for
    // the training rounds above).
    let pool = rayon::ThreadPoolBuilder::new()
        .build()
        .expect("a thread pool");
    let start = Instant::now();
    let report = pool.install(|| ledger::verify::verify_dir(&dir, None));
    let verify_s = start.elapsed().as_secs_f64();
    assert!(report.problems.is_empty(), "the bench ledger verifies");
    let start = Instant::now();
    let listed = pool.install(|| Ledger::open(&dir).expect("reopens").entries().len());
    let list_s = start.elapsed().as_secs_f64();
    println!(
        "ledger of {n} entries ({} threads): record {:.0} entries/s, verify {:.0} entries/s ({verify_s:.2} s), \
         open + read for list {list_s:.3} s ({listed} entries)",
        pool.current_num_threads(),
        n as f64 / record_s,
        n as f64 / verify_s
    );
    let _ = std::fs::remove_dir_all(&dir);
}
