//! `make bench`: training steps per second of the lab's real training loop, probes on vs off.
//!
//! Workload W1 of the peer benchmarks: MLP 64 → 20 × (256, tanh) → 10, batch 128, softmax
//! cross-entropy, plain SGD, on the 8×8 digits (64 inputs, 10 classes). "Probes on" reads
//! every layer's δ, ∂L/∂W, ∂L/∂b, ‖W‖, update ratio and activation statistics every step;
//! "probes off" probes only the first and last step. Both run in the same process,
//! interleaved, and the median of several repetitions is reported with the overhead.

use gradlab::experiment::Experiment;
use gradlab::train::{self, Control, RunEnv};
use std::path::Path;

const W1: &str = r#"
[experiment]
name = "bench-w1"
seed = 1
[data]
task = "digits"
train_size = 1280
test_size = 0
[model]
depth = 20
width = 256
activation = "tanh"
init = "xavier-uniform"
[train]
optimizer = "sgd"
learning_rate = 0.01
batch_size = 128
steps = 60
[probe]
test_every = 0
"#;

fn steps_per_s(exp: &Experiment, threads: usize) -> f64 {
    let out = train::train(
        exp,
        RunEnv {
            threads,
            ..RunEnv::default()
        },
        &Control::new(),
        &mut |_| {},
    );
    out.steps_per_s()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let reps: usize = std::env::var("GRADLAB_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let threads: usize = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    train::init_threads(threads);
    let on = Experiment::parse(W1, Path::new("bench-w1")).expect("bench config is valid");
    let off = Experiment::parse(
        &W1.replace("test_every = 0", "test_every = 0\nevery = 1000000"),
        Path::new("bench-w1"),
    )
    .expect("bench config is valid");
    // Warm-up: first-touch allocation and page faults.
    steps_per_s(&on, threads);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        a.push(steps_per_s(&on, threads));
        b.push(steps_per_s(&off, threads));
    }
    let (on_s, off_s) = (median(a.clone()), median(b.clone()));
    println!("W1 MLP 64→20×256 tanh→10, batch 128, {threads} thread(s), median of {reps}, steps/s");
    println!(
        "  probes every step : {on_s:7.1}   (min {:.1}, max {:.1})",
        a.iter().cloned().fold(f64::MAX, f64::min),
        a.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "  probes off        : {off_s:7.1}   (min {:.1}, max {:.1})",
        b.iter().cloned().fold(f64::MAX, f64::min),
        b.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "  probe overhead    : {:+.1}% of a step",
        100.0 * (off_s / on_s - 1.0)
    );
}
