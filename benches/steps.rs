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
    // `GRADLAB_BENCH_REPS=0 make bench`: the ledger figures alone.
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
    if rounds > 0 {
        report_steps(threads, rounds, &rate);
    }
    ledger_speed();
}

fn report_steps(threads: usize, rounds: usize, rate: &[Vec<Vec<f64>>]) {
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
}

/// `ledger verify` and `ledger list` on ledgers of `GRADLAB_BENCH_ENTRIES` entries (default
/// 20,000; the aim: verify ≥ 20,000 entries/s, list under 0.2 s), two kinds: one tiny
/// run recorded again and again (each append fsynced, as always: that measures recording too),
/// and the repository's own run entries repeated, resealed and re-chained — real entries of
/// 3–10 KB each, naming real traces (some 100 MB for 20,000). Both as the CLI runs them, on
/// every core; `GRADLAB_BENCH_ENTRIES=0` skips them.
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
    println!(
        "ledger: record {:.0} entries/s (each append fsynced)",
        n as f64 / record_s
    );
    read_speed("tiny runs", &dir, n);
    let _ = std::fs::remove_dir_all(&dir);

    repeat_repository_ledger(&dir, n);
    read_speed("the repository's runs, repeated", &dir, n);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Times `ledger verify` and the open behind `ledger list` on the ledger in `dir`.
fn read_speed(what: &str, dir: &Path, n: usize) {
    let bytes = std::fs::metadata(dir.join(ledger::store::ENTRIES)).map_or(0, |m| m.len());
    let start = Instant::now();
    let report = ledger::verify::verify_dir(dir, None);
    let verify_s = start.elapsed().as_secs_f64();
    assert!(
        report.problems.is_empty(),
        "the bench ledger verifies: {:?}",
        report.first()
    );
    // `ledger list` reads rows (every hash checked, only the shown fields built) and renders.
    let start = Instant::now();
    let rows = ledger::row::read_rows(dir).expect("reads");
    let seqs = ledger::row::seq_by_hash(&rows);
    let table = ledger::render::list(&rows.iter().collect::<Vec<_>>(), &seqs);
    let list_s = start.elapsed().as_secs_f64();
    assert_eq!(table.lines().count(), n + 1);
    // Every command that needs whole entries opens the ledger in full.
    let start = Instant::now();
    let opened = Ledger::open(dir).expect("reopens").entries().len();
    let open_s = start.elapsed().as_secs_f64();
    assert_eq!(opened, n);
    println!(
        "ledger of {n} entries, {what} ({:.0} MB, {} objects, {} cores): verify {:.0} entries/s ({verify_s:.2} s), \
         list {list_s:.3} s, open in full {open_s:.3} s",
        bytes as f64 / 1e6,
        report.objects,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        n as f64 / verify_s
    );
}

/// Writes into `dir` a ledger of `n` entries: the repository's run entries (not merged) over
/// and over, each with its seq and prev set and its hash resealed, and the repository's objects.
fn repeat_repository_ledger(dir: &Path, n: usize) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger");
    let text = std::fs::read_to_string(repo.join(ledger::store::ENTRIES))
        .expect("the repository's ledger");
    let runs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"run\"") && !l.contains("\"origin\":"))
        .collect();
    copy_tree(&repo.join("objects"), &dir.join("objects"));
    let mut out = String::with_capacity(text.len() / runs.len() * n + n);
    let mut prev = ledger::entry::GENESIS.to_string();
    for i in 0..n {
        let line = runs[i % runs.len()];
        // `{"format":"gradlab-ledger/1","seq":N,` … `"prev":"<64>"` then the 75-byte hash field.
        let body = &line[..line.len() - 75];
        let after_seq = body.find(",\"kind\"").expect("seq precedes kind");
        let head = "{\"format\":\"gradlab-ledger/1\",\"seq\":";
        let body = format!(
            "{head}{}{}{prev}\"}}",
            i + 1,
            &body[after_seq..body.len() - 65]
        );
        let hash = blake3::hash(body.as_bytes()).to_hex().to_string();
        out.push_str(&body[..body.len() - 1]);
        out.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
        prev = hash;
    }
    std::fs::write(dir.join(ledger::store::ENTRIES), out).expect("the bench ledger is written");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a bench folder");
    for e in std::fs::read_dir(from).expect("the repository's objects") {
        let e = e.expect("a folder entry");
        let target = to.join(e.file_name());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect("an object copied");
        }
    }
}
