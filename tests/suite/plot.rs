//! `gradlab plot` through the real binary: every figure kind, as SVG and PNG, from a real
//! ledger (a sweep plus one entry with a per-time-step profile); bad requests fail clearly
//! and write no file.

use super::common::{gradlab, small_experiment, write_experiment};
use gradlab::experiment::Experiment;
use gradlab::ledger::Ledger;
use gradlab::train::{self, Control, RunEnv, TraceLine};
use std::path::Path;
use std::time::SystemTime;

/// A ledger in `dir/ledger`: a 2 × 2 sweep (σ_w × depth, one seed) as entries 1–4, then
/// entry 5, a run whose probes carry a per-time-step profile. Returns the sweep id.
///
/// This branch has no recurrent model yet, so entry 5 is a real MLP run whose probes are
/// given the `time` field a recurrent net's probes carry (a decaying ‖∂L/∂h_t‖), then
/// recorded through the ledger like any run: the trace format is what the figure reads.
fn ledger(dir: &Path) -> String {
    let file = write_experiment(dir, "tiny", &small_experiment("tiny", ""));
    let out = gradlab(dir)
        .arg("sweep")
        .arg(&file)
        .args([
            "--set",
            "model.sigma_w=0.7,0.9",
            "--set",
            "model.depth=2,4",
            "--steps",
            "12",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sweep "))
        .and_then(|l| l.split(':').next())
        .unwrap()
        .to_string();

    let exp = Experiment::load(&file).unwrap();
    train::init_threads(1);
    let env = RunEnv {
        threads: rayon::current_num_threads(),
        ..RunEnv::default()
    };
    let mut outcome = train::train(&exp, env, &Control::new(), &mut |_| {});
    let mut probes = outcome.probes();
    for (k, p) in probes.iter_mut().enumerate() {
        p.time = (1..=12)
            .map(|t| 0.8f64.powi(12 - t) * (1.0 + 0.01 * k as f64))
            .collect();
    }
    let mut trace = Vec::new();
    let records = std::iter::once(TraceLine::Header(outcome.header.clone()))
        .chain(probes.into_iter().map(TraceLine::Probe))
        .chain([TraceLine::End(outcome.end.clone())]);
    for r in records {
        serde_json::to_writer(&mut trace, &r).unwrap();
        trace.push(b'\n');
    }
    outcome.trace = train::Trace::from_bytes(trace);
    let mut ledger = Ledger::open(dir.join("ledger")).unwrap();
    let e = ledger
        .record_run(&exp, env, &outcome, SystemTime::now())
        .unwrap();
    assert_eq!(e.seq, 5);
    assert!(ledger.verify().ok(), "{:?}", ledger.verify().problems);
    id
}

fn plot(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    gradlab(dir).arg("plot").args(args).assert()
}

/// Checks a written figure: a complete SVG with `lines` polylines (or more) and the given
/// texts, or a 900 × 600 PNG with enough detail not to be blank.
fn check(path: &Path, lines: usize, texts: &[&str]) {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().unwrap() == "svg" {
        let svg = String::from_utf8(bytes).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{}",
            path.display()
        );
        let drawn = svg.matches("<polyline").count() + svg.matches("<path").count();
        assert!(
            drawn >= lines,
            "{}: {drawn} lines, expected ≥ {lines}",
            path.display()
        );
        for t in texts {
            assert!(svg.contains(t), "{}: no '{t}'", path.display());
        }
    } else {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let (w, h) = (
            u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
            u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
        );
        assert_eq!((w, h), (900, 600));
        // A blank 900 × 600 PNG compresses to a few kB; text, lines and cells do not.
        assert!(
            bytes.len() > 15_000,
            "{}: only {} bytes",
            path.display(),
            bytes.len()
        );
    }
}

#[test]
fn every_kind_renders_a_valid_svg_and_png_from_a_real_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let id = ledger(dir.path());
    for ext in ["svg", "png"] {
        let out = |name: &str| format!("{name}.{ext}");
        plot(dir.path(), &["1", "4", "--theory", "--out", &out("depth")]).success();
        // 2 measured + 2 theory lines; legend names the differing fields.
        check(
            &dir.path().join(out("depth")),
            4,
            &["depth=2", "theory: depth=4", "at initialisation"],
        );
        plot(
            dir.path(),
            &[
                "1",
                "2",
                "--quantity",
                "grad-w",
                "--at",
                "end",
                "--out",
                &out("gradw"),
            ],
        )
        .success();
        check(
            &dir.path().join(out("gradw")),
            2,
            &["‖∂L/∂W‖ at the last probe"],
        );
        plot(
            dir.path(),
            &["4", "--kind", "layers", "--out", &out("layers")],
        )
        .success();
        check(&dir.path().join(out("layers")), 5, &["h1", "h4", "out"]);
        plot(
            dir.path(),
            &["1", "3", "--kind", "loss", "--out", &out("loss")],
        )
        .success();
        check(&dir.path().join(out("loss")), 4, &["train", "test"]);
        plot(dir.path(), &["5", "--kind", "time", "--out", &out("time")]).success();
        check(
            &dir.path().join(out("time")),
            2,
            &["step 0", "step 29", "time step t"],
        );
        let stdout = plot(
            dir.path(),
            &[
                "--sweep",
                &id,
                "--metric",
                "delta-init",
                "--out",
                &out("sweep"),
            ],
        )
        .success()
        .get_output()
        .stdout
        .clone();
        assert!(String::from_utf8_lossy(&stdout).contains("(sweep figure)"));
        // The trainable depth 6ξ is drawn over the grid (ξ ≈ 1.4 at σ_w = 0.7, 4.7 at 0.9).
        check(
            &dir.path().join(out("sweep")),
            1,
            &["σ_w", "depth (hidden layers)", "white: 6ξ"],
        );
        if ext == "svg" {
            let svg = std::fs::read_to_string(dir.path().join(out("sweep"))).unwrap();
            assert!(
                svg.matches("<rect").count() >= 4 + 64,
                "4 cells and the colour bar"
            );
        }
    }
}

#[test]
fn bad_plot_requests_fail_with_a_clear_message_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path());
    let cases: [(&[&str], &str); 10] = [
        (&["99"], "no entry '99'"),
        (
            &["1", "--kind", "time"],
            "has no per-time-step gradient: --kind time needs a recurrent net's entry",
        ),
        (&["1", "2", "--kind", "layers"], "give one ID, not 2"),
        (&["--kind", "loss"], "needs at least one entry ID"),
        (
            &["1", "--theory", "--quantity", "grad-w"],
            "--theory predicts ‖δ‖ at initialisation",
        ),
        (
            &["1", "--kind", "loss", "--theory"],
            "--theory does not apply to --kind loss",
        ),
        (&["--sweep", "nope"], "no entries are tagged 'sweep:nope'"),
        (&["--kind", "sweep"], "needs --sweep ID"),
        (
            &["1", "--kind", "sweep", "--sweep", "x"],
            "leave out the entry IDs",
        ),
        (
            &["1", "--metric", "loss"],
            "--metric does not apply to --kind depth",
        ),
    ];
    for (args, message) in cases {
        let out = plot(dir.path(), &[args, &["--out", "f.svg"]].concat())
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!dir.path().join("f.svg").exists(), "{args:?} wrote a file");
    }
    let out = plot(dir.path(), &["1", "--out", "f.pdf"])
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("must end in .svg or .png"));
}

/// `--theory` draws `gradlab theory`'s prediction for every gradient-trained kind: across
/// layers for a residual net (`--kind depth`), through time for a recurrent one (`--kind
/// time`), and names the other kind when asked for the wrong one.
#[test]
fn theory_lines_cover_residual_and_recurrent_entries() {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path());
    let rnn = write_experiment(
        dir.path(),
        "rnn",
        "[experiment]\nname = \"rnn\"\nseed = 1\n[data]\ntask = \"adding\"\nseq_len = 12\n\
         train_size = 64\ntest_size = 16\n[model]\nkind = \"rnn\"\nwidth = 16\n\
         [train]\nsteps = 3\nbatch_size = 16\n",
    );
    let res = write_experiment(
        dir.path(),
        "res",
        &small_experiment("res", "").replace(
            "[model]\n",
            "[model]\nkind = \"resnet\"\nblock_layers = 1\n",
        ),
    );
    for file in [&res, &rnn] {
        gradlab(dir.path())
            .args(["run", "--headless", "--steps", "3"])
            .arg(file)
            .assert()
            .success();
    }
    plot(dir.path(), &["6", "--theory", "--out", "r.svg"]).success();
    check(&dir.path().join("r.svg"), 2, &["theory: "]);
    plot(
        dir.path(),
        &["7", "--kind", "time", "--theory", "--out", "t.svg"],
    )
    .success();
    check(
        &dir.path().join("t.svg"),
        3,
        &["theory: ", "at initialisation"],
    );
    let out = plot(dir.path(), &["7", "--theory", "--out", "x.svg"])
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--kind time --theory"), "{err}");
    assert!(!dir.path().join("x.svg").exists());
}
