//! `make bench`: steps per second of the lab's real training loop on the peer workloads, for
//! both engines (`cpu`, the default fused path, and `flex`, the op-by-op reference), with
//! the probe overhead of each, all measured in one process. Python-free; `make bench-peers`
//! puts PyTorch and JAX beside these numbers.
//!
//! Each figure is `gradlab bench-step`'s measurement (`gradlab::bench::measure`): one fixed
//! batch, repetitions cut at probe boundaries, the median reported.

use gradlab::bench;
use gradlab::train::{self, DeviceKind, RunEnv};

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

fn main() {
    let reps: usize = std::env::var("GRADLAB_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let threads: usize = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    train::init_threads(threads);
    let engines = [DeviceKind::Cpu, DeviceKind::Flex];
    let mut rate = std::collections::HashMap::new();
    println!("steps/s, {threads} thread(s), median of {reps} repetitions");
    println!(
        "{:<58} {:>8} {:>8} {:>9}",
        "workload", "cpu", "flex", "cpu/flex"
    );
    for (name, label) in WORKLOADS {
        let exp = bench::workload(name).expect("every peer workload is built in");
        let r: Vec<f64> = engines
            .iter()
            .map(|&device| {
                let rec = bench::measure(name, &exp, RunEnv { device, threads }, reps, 0.6);
                rec["steps_per_s_median"].as_f64().unwrap_or(f64::NAN)
            })
            .collect();
        println!(
            "{label:<58} {:>8.1} {:>8.1} {:>8.2}×",
            r[0],
            r[1],
            r[0] / r[1]
        );
        rate.insert(name, r);
    }
    for w in ["w1", "w2"] {
        let (on, off) = (&rate[w], &rate[format!("{w}_noprobe").as_str()]);
        println!(
            "{} probe overhead: cpu {:+.1}%, flex {:+.1}% of a step",
            w.to_uppercase(),
            100.0 * (off[0] / on[0] - 1.0),
            100.0 * (off[1] / on[1] - 1.0)
        );
    }
}
