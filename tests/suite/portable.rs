//! The portable engine's promise through the real binary: runs recorded here replay EXACT
//! under emulated CPUs of other kinds — qemu-user's Nehalem (SSE4.2 only: no AVX, no FMA),
//! Haswell (AVX2 + FMA) and `max` — and with another thread count.
//!
//! The cases cover every model kind (MLP, ResNet with and without layer norm, RNN, LSTM, the
//! history compressor, MD-LSTM and the 2-D RNN, DBN with CD-k pretraining, an RBM with its
//! exact log-likelihood), every activation, optimiser and clipping mode, both gradient-free searches, the three objectives (softmax, per-position
//! softmax, MSE), probes and test-split evaluation, shapes with ragged edges in every tile
//! dimension, products large enough to be split among threads, and lesion studies (`gradlab
//! lesion`) of a plain and two residual nets. qemu-user is
//! required on x86-64 (`.ci/run` installs it; `apt-get install qemu-user`).

use super::common::{copy_dir, gradlab, write_experiment};
use std::path::Path;
use std::process::Command;

/// (name, [data], [model], [train]) of each case; 12–20 steps, probes every 3, test every 4.
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "tanh-sgd",
        "task = \"spirals\"\ntrain_size = 96\ntest_size = 40",
        "depth = 5\nwidth = 37\nactivation = \"tanh\"",
        "optimizer = \"sgd\"\nlearning_rate = 0.2\nbatch_size = 48",
    ),
    (
        "sigmoid-momentum-norm-clip",
        "task = \"digits\"\ntrain_size = 140\ntest_size = 30",
        "depth = 4\nwidth = 33\nactivation = \"sigmoid\"",
        "optimizer = \"momentum\"\nlearning_rate = 0.5\nbatch_size = 70\nclip = \"global-norm\"\nclip_threshold = 0.05",
    ),
    (
        "relu-adam-value-clip",
        "task = \"parity\"\ntrain_size = 64\ntest_size = 32",
        "depth = 6\nwidth = 19\nactivation = \"relu\"\ninit = \"he\"",
        "optimizer = \"adam\"\nlearning_rate = 0.01\nbatch_size = 32\nclip = \"value\"\nclip_threshold = 0.01",
    ),
    (
        "leaky-rmsprop-regression",
        "task = \"teacher\"\ntrain_size = 80\ntest_size = 20",
        "depth = 3\nwidth = 41\nactivation = \"leaky-relu\"",
        "optimizer = \"rmsprop\"\nlearning_rate = 0.003\nbatch_size = 40",
    ),
    (
        "gelu-adam",
        "task = \"digits\"\ntrain_size = 50\ntest_size = 25",
        "depth = 4\nwidth = 27\nactivation = \"gelu\"",
        "optimizer = \"adam\"\nlearning_rate = 0.003\nbatch_size = 25",
    ),
    (
        "linear-rprop",
        "task = \"spirals\"\ntrain_size = 64\ntest_size = 16",
        "depth = 4\nwidth = 9\nactivation = \"linear\"",
        "optimizer = \"rprop\"\nbatch_size = 64",
    ),
    (
        "genetic-tanh",
        "task = \"spirals\"\ntrain_size = 64\ntest_size = 32",
        "depth = 3\nwidth = 12\nactivation = \"tanh\"",
        "optimizer = \"genetic\"\nbatch_size = 64\n[search]\npopulation = 12\nelite = 3",
    ),
    (
        "random-search-sigmoid",
        "task = \"teacher\"\ntrain_size = 40\ntest_size = 20",
        "depth = 2\nwidth = 10\nactivation = \"sigmoid\"",
        "optimizer = \"random-search\"\nbatch_size = 40\n[search]\npopulation = 8",
    ),
    (
        "rnn-adam-norm-clip",
        "task = \"adding\"\nseq_len = 12\ntrain_size = 64\ntest_size = 32",
        "kind = \"rnn\"\nwidth = 20\nrecurrent_init = \"orthogonal\"\nspectral_radius = 0.9",
        "optimizer = \"adam\"\nlearning_rate = 0.01\nbatch_size = 32\nclip = \"global-norm\"\nclip_threshold = 1.0",
    ),
    (
        "rnn-copy-memory",
        "task = \"copy-memory\"\nseq_len = 10\ncopy_length = 2\ntrain_size = 40\ntest_size = 20",
        "kind = \"rnn\"\nwidth = 14",
        "optimizer = \"sgd\"\nlearning_rate = 0.1\nbatch_size = 20",
    ),
    (
        "lstm-adding",
        "task = \"adding\"\nseq_len = 10\ntrain_size = 48\ntest_size = 24",
        "kind = \"lstm\"\nwidth = 18\nforget_bias = 2.0",
        "optimizer = \"adam\"\nlearning_rate = 0.01\nbatch_size = 24",
    ),
    (
        "lstm-temporal-order",
        "task = \"temporal-order\"\nseq_len = 12\ntrain_size = 40\ntest_size = 20",
        "kind = \"lstm\"\nwidth = 11",
        "optimizer = \"rmsprop\"\nlearning_rate = 0.003\nbatch_size = 20\nclip = \"value\"\nclip_threshold = 0.1",
    ),
    (
        "chunker-key-recall",
        "task = \"key-recall\"\nseq_len = 12\ntrain_size = 40\ntest_size = 20",
        "kind = \"chunker\"\nwidth = 9\nspectral_radius = 0.8",
        "optimizer = \"adam\"\nlearning_rate = 0.01\nbatch_size = 20",
    ),
    (
        "mdlstm-bars",
        "task = \"bars-stripes\"\nsize = 3\ntrain_size = 30\ntest_size = 12",
        "kind = \"mdlstm\"\nwidth = 5\nforget_bias = 1.5",
        "optimizer = \"rmsprop\"\nlearning_rate = 0.01\nbatch_size = 15",
    ),
    (
        "rnn2d-digits",
        "task = \"digits\"\ntrain_size = 30\ntest_size = 10",
        "kind = \"rnn2d\"\nwidth = 6\nspectral_radius = 0.5",
        "optimizer = \"sgd\"\nlearning_rate = 0.1\nbatch_size = 15",
    ),
    (
        "resnet-layer-norm",
        "task = \"spirals\"\ntrain_size = 64\ntest_size = 32",
        "kind = \"resnet\"\ndepth = 6\nwidth = 21\nblock_layers = 2\nlayer_norm = true\nactivation = \"relu\"",
        "optimizer = \"momentum\"\nlearning_rate = 0.05\nbatch_size = 32",
    ),
    (
        "resnet-tanh",
        "task = \"digits\"\ntrain_size = 50\ntest_size = 20",
        "kind = \"resnet\"\ndepth = 4\nwidth = 16\nactivation = \"tanh\"\nresidual_scale = \"inv-sqrt-depth\"",
        "optimizer = \"sgd\"\nlearning_rate = 0.1\nbatch_size = 25",
    ),
    (
        "dbn-digits",
        "task = \"digits\"\nbinarize = true\ntrain_size = 60\ntest_size = 20",
        "kind = \"dbn\"\ndepth = 2\nwidth = 24\nactivation = \"sigmoid\"",
        "optimizer = \"sgd\"\nlearning_rate = 0.1\nbatch_size = 20\n[dbn]\npretrain_steps = 9\ncd_k = 2\nbatch_size = 20\nsamples = 4",
    ),
    (
        "rbm-bars-stripes",
        "task = \"bars-stripes\"\nsize = 3\ntrain_size = 60\ntest_size = 20",
        "kind = \"dbn\"\ndepth = 1\nwidth = 6\nactivation = \"sigmoid\"",
        "optimizer = \"adam\"\nlearning_rate = 0.01\nbatch_size = 20\n[dbn]\npretrain_steps = 12\ncd_k = 3\nbatch_size = 20\nsamples = 4",
    ),
    (
        "random-search-rnn",
        "task = \"adding\"\nseq_len = 10\ntrain_size = 20\ntest_size = 10",
        "kind = \"rnn\"\nwidth = 8",
        "optimizer = \"random-search\"\nbatch_size = 20\n[search]\npopulation = 6\nelite = 2",
    ),
    (
        "wide-tanh-threaded",
        "task = \"digits\"\ntrain_size = 128\ntest_size = 16",
        "depth = 3\nwidth = 100\nactivation = \"tanh\"",
        "optimizer = \"sgd\"\nlearning_rate = 0.1\nbatch_size = 128",
    ),
];

/// Records every case natively (on `threads`) in `dir/ledger`, then a lesion study of the
/// plain and the residual nets' (the study computes on the portable engine whatever ran the
/// net); returns (seq, name) of each entry.
fn record(dir: &Path, threads: u16) -> Vec<(u64, String)> {
    let mut runs: Vec<(u64, String)> = CASES
        .iter()
        .enumerate()
        .map(|(i, (name, data, model, train))| {
            let body = format!(
                "[experiment]\nname = \"{name}\"\nseed = {}\n[data]\n{data}\n[model]\n{model}\n\
                 [train]\nsteps = 16\n{train}\n[probe]\nevery = 3\ntest_every = 4\n",
                11 + i
            );
            let file = write_experiment(dir, name, &body);
            gradlab(dir)
                .args(["run", file.to_str().unwrap(), "--headless"])
                .args(["--threads", &threads.to_string()])
                .assert()
                .success();
            let entries = std::fs::read_to_string(dir.join("ledger/entries.jsonl")).unwrap();
            let last: serde_json::Value =
                serde_json::from_str(entries.lines().last().unwrap()).unwrap();
            assert_eq!(
                last["execution"]["backend"], "portable",
                "{name} ran on the portable engine (no fallback)"
            );
            assert_eq!(last["seeds"]["version"], 2, "{name}: the libm data path");
            (last["seq"].as_u64().unwrap(), name.to_string())
        })
        .collect();
    let studied: Vec<(u64, String)> = runs
        .iter()
        .filter(|(_, name)| {
            ["tanh-sgd", "resnet-layer-norm", "resnet-tanh"].contains(&name.as_str())
        })
        .cloned()
        .collect();
    for (seq, name) in studied {
        let out = gradlab(dir)
            .args([
                "lesion",
                &seq.to_string(),
                "--draws",
                "3",
                "--path-draws",
                "4",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "lesion of {name}: {out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        runs.push((
            v["recorded"]["seq"].as_u64().unwrap(),
            format!("lesion of {name}"),
        ));
    }
    runs
}

/// Replays `seq` with `prefix` (an emulator command line, or nothing) and `extra` arguments;
/// it must be EXACT and see no reason to differ.
fn replays_exact(dir: &Path, prefix: &[String], seq: u64, name: &str, extra: &[&str]) {
    let bin = env!("CARGO_BIN_EXE_gradlab");
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin);
            c
        }
        // No prefix: where the entries were made — under the suite's runner when one is set
        // (`make test-cpus`), as `gradlab(dir)` records them.
        None => {
            let argv = super::common::gradlab_argv();
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    let out = cmd
        .current_dir(dir)
        .args(["replay", &seq.to_string(), "--ledger", "ledger"])
        .args(extra)
        .output()
        .expect("the replay starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains(&format!("EXACT: entry {seq} ")),
        "{name} under {prefix:?} {extra:?}: {text}"
    );
    assert!(!text.contains("machine differs"), "{text}");
}

/// The qemu-user command for `cpu`, or a failure that says how to get it.
#[cfg(target_arch = "x86_64")]
fn qemu(cpu: &str) -> Vec<String> {
    let program = std::env::var("QEMU").unwrap_or_else(|_| "qemu-x86_64".into());
    let found = Command::new(&program).arg("-version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "'{program}' is missing: the cross-CPU tests need qemu-user (apt-get install qemu-user; \
         .ci/run installs it)"
    );
    vec![program, "-cpu".into(), cpu.into()]
}

#[cfg(target_arch = "x86_64")]
fn under(cpu: &str) {
    let dir = tempfile::tempdir().unwrap();
    let runs = record(dir.path(), 1);
    let prefix = qemu(cpu);
    for (seq, name) in runs {
        replays_exact(dir.path(), &prefix, seq, &name, &[]);
    }
}

/// The repository's own portable entries, recorded on another machine, replay EXACT under an
/// SSE-only and an AVX2 + FMA CPU (the two that end soonest: they diverge at steps 1 and 30).
#[cfg(target_arch = "x86_64")]
#[test]
fn the_repository_portable_entries_replay_exact_under_emulation() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    copy_dir(&super::common::root().join("ledger"), &ledger);
    let entries = std::fs::read_to_string(ledger.join("entries.jsonl")).unwrap();
    let wanted: Vec<(u64, String)> = entries
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| {
            e["execution"]["backend"] == "portable"
                && ["linear-exploding-20", "rnn-exploding"]
                    .contains(&e["experiment"].as_str().unwrap())
        })
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["experiment"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        wanted.len(),
        2,
        "the repository ledger has both portable entries"
    );
    for cpu in [
        "Nehalem",
        "Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm",
    ] {
        for (seq, name) in &wanted {
            replays_exact(dir.path(), &qemu(cpu), *seq, name, &["--no-ledger"]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn portable_runs_replay_exact_on_an_sse_only_cpu() {
    under("Nehalem");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn portable_runs_replay_exact_on_an_avx2_fma_cpu() {
    // Without the system features qemu's TCG cannot emulate (it would warn about each).
    under("Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn portable_runs_replay_exact_on_qemus_max_cpu() {
    under("max");
}

/// Recorded on two threads, replayed on one and on three (the widest case splits its
/// products among them), natively.
#[test]
fn portable_runs_replay_exact_with_other_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    for (seq, name) in record(dir.path(), 2) {
        for threads in ["1", "3"] {
            replays_exact(dir.path(), &[], seq, &name, &["--threads", threads]);
        }
    }
}

/// The engines the portable one replaced as the default keep their promise on the machine that
/// records with them: an MLP (fused step), an LSTM (time-major pass) and a DBN made here on
/// `cpu` and on `flex` replay EXACT here, on their own engine.
#[test]
fn cpu_and_flex_entries_made_by_this_build_replay_exact_here() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for device in ["cpu", "flex"] {
        for &(name, data, model, train) in CASES
            .iter()
            .filter(|c| ["tanh-sgd", "lstm-adding", "dbn-digits"].contains(&c.0))
        {
            let body = format!(
                "[experiment]\nname = \"{name}\"\nseed = 5\n[data]\n{data}\n[model]\n{model}\n\
                 [train]\nsteps = 12\n{train}\n[probe]\nevery = 3\ntest_every = 4\n"
            );
            let file = write_experiment(dir.path(), &format!("{name}-{device}"), &body);
            gradlab(dir.path())
                .args([
                    "run",
                    file.to_str().unwrap(),
                    "--headless",
                    "--device",
                    device,
                ])
                .assert()
                .success();
            runs.push((runs.len() as u64 + 1, name, device));
        }
    }
    let entries = std::fs::read_to_string(dir.path().join("ledger/entries.jsonl")).unwrap();
    for ((seq, name, device), line) in runs.iter().zip(entries.lines()) {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["execution"]["backend"], *device, "{name}");
        replays_exact(dir.path(), &[], *seq, name, &[]);
    }
}
