//! `gradlab bench-step`: the lab's real training loop timed with the peer benchmarks'
//! protocol (`benches/peers/benchlib.py`), printing the same JSON records.
//!
//! The workloads are ordinary experiment configs run through `train::train` — the same
//! code path as `gradlab run`, probes included — on one fixed batch, like the peer scripts.
//! Repetitions are cut at probe boundaries: a run of (1 + reps)·n steps probes at every
//! multiple of n (or every step with probes on); the first n steps are the warm-up.

use crate::experiment::Experiment;
use crate::train::{self, Control, Event, RunEnv};
use std::path::Path;

/// A peer workload as an experiment; `None` when this build has no model for it.
pub fn workload(name: &str) -> Option<Experiment> {
    let (body, probes) = match name {
        "w1" | "w1_noprobe" => (mlp(20, 256), name == "w1"),
        "w2" | "w2_noprobe" => (mlp(100, 64), name == "w2"),
        "lstm" | "rnn" => (recurrent(name), true),
        _ => return None,
    };
    let body = if probes {
        body
    } else {
        body.replace("[probe]\n", "[probe]\nevery = 1000000\n")
    };
    Experiment::parse(&body, Path::new(name)).ok()
}

/// MLP 64 → depth × (width, tanh) → 10, batch 128 = the whole (fixed) training set,
/// weights N(0, 1/fan_in) (He with σ_w = 1/√2), biases 0, SGD lr 0.01 — as the peers.
fn mlp(depth: usize, width: usize) -> String {
    format!(
        "[experiment]\nname = \"bench\"\nseed = 0\n[data]\ntask = \"digits\"\ntrain_size = 128\ntest_size = 0\n\
         [model]\ndepth = {depth}\nwidth = {width}\nactivation = \"tanh\"\ninit = \"he\"\nsigma_w = 0.7071067811865476\n\
         [train]\noptimizer = \"sgd\"\nlearning_rate = 0.01\nbatch_size = 128\nsteps = 10\n[probe]\ntest_every = 0\n"
    )
}

/// Recurrent net, input 2 (the adding problem's value and marker), hidden 128, T = 100,
/// batch 32 = the fixed training set, linear read-out of the last state, MSE, SGD lr 0.01;
/// input weights N(0, 1/fan_in), recurrent N(0, 1/H) (Gaussian, radius 1), biases 0 and
/// forget bias 0 — as the peers. Per-time-step and per-layer probes stay on, as in the lab.
fn recurrent(kind: &str) -> String {
    format!(
        "[experiment]\nname = \"bench\"\nseed = 0\n[data]\ntask = \"adding\"\nseq_len = 100\ntrain_size = 32\ntest_size = 0\n\
         [model]\nkind = \"{kind}\"\nwidth = 128\ninit = \"he\"\nsigma_w = 0.7071067811865476\n\
         recurrent_init = \"gaussian\"\nspectral_radius = 1.0\nforget_bias = 0.0\n\
         [train]\noptimizer = \"sgd\"\nlearning_rate = 0.01\nbatch_size = 32\nsteps = 10\n[probe]\ntest_every = 0\n"
    )
}

/// Busy seconds of the whole machine (from /proc/stat) and of this process (getrusage).
fn cpu_seconds() -> (f64, f64) {
    let hz = 100.0; // USER_HZ is 100 on Linux for /proc/stat
    let busy = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let v: Vec<f64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() >= 8).then(|| (v[..8].iter().sum::<f64>() - v[3] - v[4]) / hz)
        })
        .unwrap_or(f64::NAN);
    // SAFETY: getrusage writes into the zeroed struct we own.
    let own = unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut r);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
        t(r.ru_utime) + t(r.ru_stime)
    };
    (busy, own)
}

/// One workload's timing, as a JSON record in benchlib's format.
pub fn measure(
    name: &str,
    exp: &Experiment,
    env: RunEnv,
    reps: usize,
    target_s: f64,
) -> serde_json::Value {
    let threads = env.threads;
    // Calibrate n so a repetition lasts about target_s.
    let probe = exp
        .clone()
        .with_overrides(crate::experiment::Overrides {
            steps: Some(8),
            seed: None,
        })
        .expect("valid");
    let t = train::train(&probe, env, &Control::new(), &mut |_| {});
    let per_step = t.wall_s / 8.0;
    let n = ((target_s / per_step.max(1e-6)) as usize).max(3);
    let probes_on = exp.spec().probe.every == 1;
    let every = if probes_on { 1 } else { n };
    let timed = exp
        .with_settings(&[("probe.every".into(), every.to_string())])
        .and_then(|e| {
            e.with_overrides(crate::experiment::Overrides {
                steps: Some((reps + 1) * n + 1),
                seed: None,
            })
        })
        .expect("valid");
    let mut marks: Vec<(f64, f64, f64)> = Vec::new();
    let start = std::time::Instant::now();
    train::train(&timed, env, &Control::new(), &mut |e| {
        if let Event::Probe { probe, .. } = e
            && probe.step % n == 0
            && probe.step >= n
        {
            let (busy, own) = cpu_seconds();
            marks.push((start.elapsed().as_secs_f64(), busy, own));
        }
    });
    let (mut rates, mut foreign, mut own) = (Vec::new(), Vec::new(), Vec::new());
    for w in marks.windows(2) {
        let wall = w[1].0 - w[0].0;
        rates.push(n as f64 / wall);
        let own_s = w[1].2 - w[0].2;
        foreign.push((((w[1].1 - w[0].1) - own_s) / wall).max(0.0));
        own.push(own_s / wall);
    }
    let med = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let m = med(&rates);
    let round = |v: f64| (v * 100.0).round() / 100.0;
    serde_json::json!({
        "framework": format!("gradlab-{}", env!("CARGO_PKG_VERSION")),
        "workload": name,
        "threads": threads,
        "mode": env.device.name(),
        "probes": probes_on,
        "steps_per_rep": n,
        "reps": rates.len(),
        "steps_per_s_median": round(m),
        "steps_per_s_min": round(rates.iter().cloned().fold(f64::INFINITY, f64::min)),
        "steps_per_s_max": round(rates.iter().cloned().fold(0.0, f64::max)),
        "ms_per_step": (1000.0 / m * 1000.0).round() / 1000.0,
        "foreign_cpu_max": round(foreign.iter().cloned().fold(0.0, f64::max)),
        "foreign_cpu_median": round(med(&foreign)),
        "own_cpu_cores": round(med(&own)),
    })
}

/// The shapes `sgemm` times: the workloads' own (W1's 128×256·256×256, W2's 128×64·64×64)
/// and two square ones, as `bench_sgemm.py` times them for numpy, PyTorch and JAX.
pub const SGEMM_SHAPES: [(usize, usize, usize); 4] = [
    (1024, 1024, 1024),
    (256, 256, 256),
    (128, 256, 256),
    (128, 64, 64),
];

/// GFLOP/s of C = A·B (`m × k` by `k × n`) on one engine's products: the portable engine's
/// kernel or the `gemm` crate's (the `cpu` engine), median of `reps` timed rounds of ~0.3 s.
pub fn sgemm(
    portable: bool,
    (m, k, n): (usize, usize, usize),
    threads: usize,
    reps: usize,
) -> serde_json::Value {
    use crate::engine::View;
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5)
        .collect();
    let mut c = vec![0f32; m * n];
    let engine = crate::models::host::Engine { portable, threads };
    let mut once = || {
        engine.product(
            (m, n, k),
            &mut c,
            n,
            false,
            View::rows(&a, k),
            View::rows(&b, n),
        );
    };
    let flop = 2.0 * (m * n * k) as f64;
    let per_round = ((0.3e9 * 50.0 / flop) as usize).clamp(1, 100_000);
    once();
    let mut rates: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..per_round {
                once();
            }
            flop * per_round as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    serde_json::json!({
        "bench": "sgemm",
        "lib": if portable { "gradlab-portable" } else { "gemm-crate" },
        "threads": threads,
        "m_k_n": [m, k, n],
        "gflops_median": (rates[rates.len() / 2] * 10.0).round() / 10.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_the_peer_shapes() {
        let w1 = workload("w1").unwrap();
        assert_eq!((w1.spec().model.depth, w1.spec().model.width), (20, 256));
        assert_eq!(w1.spec().probe.every, 1);
        let w2 = workload("w2_noprobe").unwrap();
        assert_eq!((w2.spec().model.depth, w2.spec().model.width), (100, 64));
        assert!(w2.spec().probe.every > 1000);
        assert!(workload("nope").is_none());
        for kind in ["lstm", "rnn"] {
            let r = workload(kind).unwrap();
            assert_eq!(
                (
                    r.spec().model.width,
                    r.spec().data.seq_len,
                    r.spec().train.batch_size
                ),
                (128, 100, 32)
            );
        }
    }

    #[test]
    fn measure_reports_reps() {
        let small = workload("w2")
            .unwrap()
            .with_settings(&[("model.depth".into(), "2".into())])
            .unwrap();
        let rec = measure("w2", &small, RunEnv::default(), 3, 0.02);
        assert_eq!(rec["reps"], 3);
        assert!(rec["steps_per_s_median"].as_f64().unwrap() > 0.0);
        assert_eq!(rec["probes"], true);
        assert_eq!(rec["mode"], "portable");
    }
}
