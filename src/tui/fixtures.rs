//! Deterministic experiments and training-event streams for the TUI's unit and snapshot tests.

use super::app::{App, Entry};
use super::event::Event;
use super::theme::{ColorMode, Theme};
use crate::experiment::Experiment;
use crate::train::{self, End, Header, LayerProbe, Probe, Status, TestMetrics};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::{Path, PathBuf};

/// How the synthetic gradient norms vary with depth.
#[derive(Debug, Clone, Copy)]
pub enum Profile {
    /// δ shrinks ~2.8× per layer towards the input (tanh with tiny weights).
    Vanishing,
    /// δ grows 2× per layer towards the input (linear with σ_w = 2).
    Exploding,
}

pub fn experiment(name: &str, depth: usize, steps: usize) -> Experiment {
    let src = format!(
        "[experiment]\nname = \"{name}\"\ndescription = \"{depth} tanh layers, naive init: the first layers' δ vanishes\"\nseed = 1\n\n[model]\ndepth = {depth}\nactivation = \"tanh\"\ninit = \"naive\"\nsigma_w = 0.05\n\n[train]\nsteps = {steps}\nlearning_rate = 0.1\n"
    );
    Experiment::parse(&src, Path::new("experiments/fixture.toml"))
        .expect("the fixture experiment is valid")
}

pub fn header(exp: &Experiment) -> Header {
    let depth = exp.spec().model.depth;
    let mut layers: Vec<String> = (1..=depth).map(|i| format!("h{i}")).collect();
    layers.push("out".into());
    Header {
        format: train::TraceFormat::default().name().into(),
        experiment: exp.name().into(),
        config_hash: exp.hash().0.clone(),
        seed: exp.seed(),
        model: "mlp".into(),
        objective: "classify".into(),
        steps: exp.spec().train.steps,
        backend: "flex".into(),
        device: "flex".into(),
        threads: Some(1),
        layers,
        search: None,
        lesion: None,
    }
}

/// The probe of `step` for a net of `layers` layers (output last): smooth, wobbling, exact.
pub fn probe(step: usize, layers: usize, profile: Profile) -> Probe {
    let t = step as f64;
    let out = layers - 1;
    let layer = |l: usize| {
        let from_out = (out - l) as f64;
        let wobble = 1.0 + 0.4 * (0.7 * t + l as f64).sin();
        let delta = match profile {
            Profile::Vanishing => 0.05 * 10f64.powf(-0.45 * from_out * (1.0 + t / 2000.0)) * wobble,
            Profile::Exploding => 0.05 * 2f64.powf(from_out) * wobble,
        };
        LayerProbe {
            delta,
            grad_w: delta * 0.6,
            grad_b: delta * 0.1,
            weight: 3.0,
            update_ratio: 1e-3,
            act_mean: 0.01 * l as f64,
            act_std: 0.5,
            saturation: if l == out {
                0.0
            } else {
                0.9 * (1.0 - l as f64 / out as f64)
            },
            skip_delta: None,
        }
    };
    Probe {
        step,
        loss: 0.7 * (-t / 300.0).exp() + 0.1 + 0.02 * (t * 0.9).sin(),
        accuracy: Some(0.5 + 0.4 * (1.0 - (-t / 200.0).exp())),
        layers: (0..layers).map(layer).collect(),
        time: Vec::new(),
        fitness: None,
        levels: None,
        test: step.is_multiple_of(50).then(|| TestMetrics {
            loss: 0.72 * (-t / 320.0).exp() + 0.12,
            accuracy: Some(0.5 + 0.35 * (1.0 - (-t / 220.0).exp())),
        }),
    }
}

/// `Started` then `probes` probes of steps 0.. at 40 steps per second of trainer time.
pub fn stream(exp: &Experiment, probes: usize, profile: Profile) -> Vec<Event> {
    let h = header(exp);
    let n = h.layers.len();
    let mut events = vec![Event::Train(train::Event::Started(h))];
    events.extend((0..probes).map(|s| {
        Event::Train(train::Event::Probe {
            probe: probe(s, n, profile),
            wall_s: s as f64 / 40.0,
        })
    }));
    events
}

pub fn finished(status: Status, steps_done: usize, error: Option<&str>) -> Event {
    Event::Train(train::Event::Finished {
        end: End {
            status,
            steps_done,
            diverged_at: None,
            error: error.map(str::to_string),
        },
        wall_s: steps_done as f64 / 40.0,
    })
}

pub fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ch(c: char) -> Event {
    key(KeyCode::Char(c))
}

pub fn ctrl_c() -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
}

/// An app on the Run screen of a 20-hidden-layer net after `probes` probes.
pub fn running(size: (u16, u16), mode: ColorMode, probes: usize, profile: Profile) -> App {
    let exp = experiment("tanh-naive-20", 20, 400);
    let mut app = App::new(Theme::new(mode), PathBuf::from("experiments"), size);
    app.run_started(&exp);
    for e in stream(&exp, probes, profile) {
        app.update(e);
    }
    app
}

/// The Experiments screen's entries: three valid files and one invalid.
pub fn entries() -> Vec<Entry> {
    let valid = |file: &str, src: &str| Entry {
        path: PathBuf::from(format!("experiments/{file}")),
        loaded: Ok(Experiment::parse(src, Path::new(file)).expect("fixture is valid")),
    };
    let bad = "[experiment]\nname = \"broken\"\n\n[model]\ndepth = 0\n";
    vec![
        valid(
            "relu-he-30.toml",
            "[experiment]\nname = \"relu-he-30\"\ndescription = \"30 ReLU layers with He init: variance preserved, δ flat across depth\"\n[data]\ntask = \"digits\"\n[model]\ndepth = 30\nactivation = \"relu\"\ninit = \"he\"\n",
        ),
        Entry {
            path: PathBuf::from("experiments/broken.toml"),
            loaded: Err(Experiment::parse(bad, Path::new("experiments/broken.toml"))
                .unwrap_err()
                .to_string()),
        },
        valid(
            "tanh-naive-20.toml",
            "[experiment]\nname = \"tanh-naive-20\"\ndescription = \"20 tanh layers, fixed small weights N(0, 0.05²): the first layers' δ vanishes\"\nseed = 1\n[model]\ndepth = 20\ninit = \"naive\"\nsigma_w = 0.05\n[train]\nsteps = 400\nlearning_rate = 0.1\n",
        ),
        valid(
            "shallow-baseline.toml",
            "[experiment]\nname = \"shallow-baseline\"\ndescription = \"Two tanh layers on spirals: no depth, no vanishing\"\n[model]\ndepth = 2\n",
        ),
    ]
}

/// An app on the Experiments screen listing `entries()`.
pub fn browsing(size: (u16, u16), mode: ColorMode) -> App {
    let mut app = App::new(Theme::new(mode), PathBuf::from("experiments"), size);
    app.experiments.set_entries(Ok(entries()));
    app
}

/// A small, fast MLP on spirals: `depth` layers of 16 units, 10 steps, one probe per step.
pub fn tiny(name: &str, model: &str) -> Experiment {
    let src = format!(
        "[experiment]\nname = \"{name}\"\nseed = 7\n\n[data]\ntask = \"spirals\"\ntrain_size = 64\ntest_size = 32\n\n[model]\ndepth = 12\nwidth = 16\n{model}\n\n[train]\nsteps = 10\nbatch_size = 32\nlearning_rate = 0.05\n\n[probe]\nevery = 1\ntest_every = 5\n"
    );
    Experiment::parse(&src, Path::new("tiny.toml")).expect("the tiny experiment is valid")
}

/// The three nets of the ledger fixture: δ vanishing, nearly flat, exploding with depth.
pub fn tiny_experiments() -> [Experiment; 3] {
    [
        tiny(
            "tanh-naive-12",
            "activation = \"tanh\"\ninit = \"naive\"\nsigma_w = 0.05",
        ),
        tiny(
            "tanh-xavier-12",
            "activation = \"tanh\"\ninit = \"xavier-normal\"",
        ),
        tiny(
            "linear-wide-12",
            "activation = \"linear\"\ninit = \"naive\"\nsigma_w = 0.5",
        ),
    ]
}

/// Writes a real ledger into `dir` through the library: the three tiny runs (entries 1–3)
/// and replays of entries 1 and 2 (entries 4 and 5).
pub fn write_ledger(dir: &Path) -> crate::ledger::Ledger {
    use crate::ledger::{Ledger, replay};
    use crate::train::{Control, RunEnv};
    let mut ledger = Ledger::open(dir).expect("a new folder is an empty ledger");
    for exp in tiny_experiments() {
        let outcome = train::train(&exp, RunEnv::default(), &Control::new(), &mut |_| {});
        ledger
            .record_run(&exp, RunEnv::default(), &outcome, std::time::UNIX_EPOCH)
            .expect("the temp ledger takes the entry");
    }
    for id in ["1", "2"] {
        let report = replay::replay(&ledger, id, &mut |_, _| {}).expect("the entry replays");
        ledger
            .record_replay(&report, Vec::new())
            .expect("the temp ledger takes the replay");
    }
    ledger
}

/// A fake 64-digit hash, the same on every machine.
fn fake_hash(what: &str) -> String {
    blake3::hash(what.as_bytes()).to_hex().to_string()
}

/// The entries of [`write_ledger`], built once per test process, with everything that
/// differs between machines and runs replaced by fixed values: times, code identity, host,
/// wall time and hashes (entry hashes cover all of those; config hashes are masked too, so
/// a change to the canonical form elsewhere does not move every snapshot). Entry 5, a real
/// EXACT replay, is given a DIVERGED verdict so both verdicts are on screen.
pub fn ledger_entries() -> Vec<crate::ledger::Entry> {
    use crate::ledger::{Difference, Verdict, VerdictKind};
    static ENTRIES: std::sync::OnceLock<Vec<crate::ledger::Entry>> = std::sync::OnceLock::new();
    ENTRIES
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temp folder");
            let mut entries = write_ledger(dir.path()).entries().to_vec();
            let renamed: std::collections::HashMap<String, String> = entries
                .iter()
                .map(|e| (e.hash.clone(), fake_hash(&format!("entry {}", e.seq))))
                .collect();
            let mut configs: Vec<String> = Vec::new();
            for e in &mut entries {
                let i = configs
                    .iter()
                    .position(|c| *c == e.config_hash.0)
                    .unwrap_or_else(|| {
                        configs.push(e.config_hash.0.clone());
                        configs.len() - 1
                    });
                e.config_hash.0 = fake_hash(&format!("config {i}"));
                e.started = format!("2025-05-{:02}T09:{:02}:00Z", 10 + e.seq, 5 * e.seq);
                e.ended = format!("2025-05-{:02}T09:{:02}:03Z", 10 + e.seq, 5 * e.seq);
                e.metrics.wall_s = 0.5 + e.seq as f64 / 4.0;
                e.code.git_commit = Some(fake_hash("commit"));
                e.code.git_dirty = Some(false);
                e.code.git_diff_hash = None;
                e.code.cargo_lock_hash = fake_hash("Cargo.lock");
                e.code.rustc = "rustc 1.95.0 (fixture)".into();
                e.code.burn = "0.22.1".into();
                e.code.crate_version = "0.1.0".into();
                e.code.target = "x86_64-unknown-linux-gnu".into();
                e.code.profile = "release".into();
                e.host.os = "linux".into();
                e.host.arch = "x86_64".into();
                e.host.cpu = "Fixture CPU @ 3.0GHz".into();
                // Not this machine's: snapshots must not depend on the CPU drawing them.
                e.host.cpu_features =
                    Some(["sse4.2", "avx", "avx2", "fma"].map(String::from).into());
                e.hash = renamed[&e.hash].clone();
                e.prev = renamed
                    .get(&e.prev)
                    .cloned()
                    .unwrap_or_else(|| e.prev.clone());
                e.replay_of = e.replay_of.as_ref().map(|h| renamed[h].clone());
                e.trace.hash = fake_hash(&format!("trace {}", e.seq));
                e.weights.hash = fake_hash(&format!("weights {}", e.seq));
            }
            entries[4].verdict = Some(Verdict {
                result: VerdictKind::Diverged,
                first: Some(Difference {
                    step: Some(3),
                    quantity: "loss".into(),
                    layer: None,
                    original: "0.6931".into(),
                    replayed: "0.6932".into(),
                }),
                agreement: None,
            });
            entries
        })
        .clone()
}

/// An app on the Ledger screen (opened from the Experiments screen) showing
/// [`ledger_entries`].
pub fn ledger_app(size: (u16, u16), mode: ColorMode) -> App {
    let mut app = browsing(size, mode);
    app.ledger = super::app::LedgerState::at(PathBuf::from("ledger"));
    app.update(ch('l'));
    app.update(Event::Job(super::event::Job::Loaded(Ok(ledger_entries()))));
    app
}

/// The mean-field profiles of the fixture entries' configs, as the theory job reports them.
pub fn predictions(app: &App) -> Vec<Event> {
    let mut seen = Vec::new();
    app.ledger
        .entries
        .iter()
        .filter(|e| {
            let new = !seen.contains(&e.config_hash.0);
            seen.push(e.config_hash.0.clone());
            new
        })
        .map(|e| {
            Event::Job(super::event::Job::Predicted {
                config_hash: e.config_hash.0.clone(),
                profile: super::jobs::predicted_profile(&e.config).map_err(|e| e.to_string()),
            })
        })
        .collect()
}

/// An app on the Run screen after `events` (an experiment of `steps` steps, 80 updates per
/// second of trainer time).
fn fed(size: (u16, u16), mode: ColorMode, name: &str, events: Vec<train::Event>) -> App {
    let exp = experiment(name, 2, 400);
    let mut app = App::new(Theme::new(mode), PathBuf::from("experiments"), size);
    app.run_started(&exp);
    for e in events {
        app.update(Event::Train(e));
    }
    app
}

/// A recurrent net's probe: two "layers" and ‖∂L/∂h_t‖ shrinking ~1.25× per step back
/// from t = T, more so as training goes on.
pub fn recurrent_probe(step: usize, steps_t: usize) -> Probe {
    let mut p = probe(step, 2, Profile::Vanishing);
    let t = step as f64;
    p.time = (1..=steps_t)
        .map(|k| {
            let back = (steps_t - k) as f64;
            0.02 * 10f64.powf(-0.1 * back * (1.0 + t / 1000.0)) * (1.0 + 0.2 * (k as f64).sin())
        })
        .collect();
    p
}

/// An RNN on the adding problem (T = 50) after `probes` probes.
pub fn recurrent(size: (u16, u16), mode: ColorMode, probes: usize) -> App {
    let exp = experiment("rnn-adding-50", 2, 400);
    let mut h = header(&exp);
    h.model = "rnn".into();
    h.objective = "regress".into();
    h.layers = vec!["rnn".into(), "out".into()];
    let mut events = vec![train::Event::Started(h)];
    events.extend((0..probes).map(|s| train::Event::Probe {
        probe: recurrent_probe(s, 50),
        wall_s: s as f64 / 80.0,
    }));
    fed(size, mode, "rnn-adding-50", events)
}

/// A generation of a gradient-free search: no layers, the population's fitness.
pub fn search_probe(step: usize) -> Probe {
    let t = step as f64;
    let best = 0.6 * (-t / 150.0).exp() + 0.15;
    Probe {
        step,
        loss: best,
        accuracy: Some(0.5 + 0.3 * (1.0 - (-t / 150.0).exp())),
        layers: Vec::new(),
        time: Vec::new(),
        test: None,
        fitness: Some(train::Fitness {
            best,
            mean: best + 0.3 + 0.05 * (0.8 * t).sin(),
        }),
        levels: None,
    }
}

/// A genetic search after `probes` generations.
pub fn searching(size: (u16, u16), mode: ColorMode, probes: usize) -> App {
    let exp = experiment("genetic-tanh-6", 2, 400);
    let mut h = header(&exp);
    h.layers = Vec::new();
    h.search = Some("genetic".into());
    let mut events = vec![train::Event::Started(h)];
    events.extend((0..probes).map(|s| train::Event::Probe {
        probe: search_probe(s),
        wall_s: s as f64 / 80.0,
    }));
    fed(size, mode, "genetic-tanh-6", events)
}

/// The pretraining phase of RBM `rbm` of 2.
pub fn pretrain_phase(rbm: usize) -> train::Phase {
    train::Phase {
        phase: "pretrain".into(),
        rbm: Some(rbm),
        of: Some(2),
        visible: Some(if rbm == 1 { 16 } else { 12 }),
        hidden: Some(if rbm == 1 { 12 } else { 8 }),
        steps: 200,
    }
}

/// RBM `rbm`'s probe at update `step`: falling error, a slowly opening free-energy gap.
pub fn pretrain_probe(rbm: usize, step: usize) -> train::PretrainProbe {
    let t = step as f64;
    train::PretrainProbe {
        rbm,
        step,
        recon_error: 0.25 * (-t / 60.0).exp() + 0.03 + 0.005 * (t * 0.7).sin(),
        free_energy_gap: Some(0.002 * t),
        log_likelihood: Some(-11.0 + 4.0 * (1.0 - (-t / 80.0).exp())),
        test_log_likelihood: Some(-11.2 + 3.6 * (1.0 - (-t / 80.0).exp())),
    }
}

/// Eight 4×4 bars-and-stripes images: bars, stripes and their mixtures, exact.
pub fn sample_images() -> Vec<Vec<f32>> {
    (0..8u32)
        .map(|i| {
            (0..16u32)
                .map(|p| {
                    let (x, y) = (p % 4, p / 4);
                    let on = if i % 2 == 0 {
                        (x + i / 2) % 2
                    } else {
                        (y + i / 2) % 2
                    };
                    on as f32 * (0.6 + 0.05 * i as f32) + (1 - on) as f32 * 0.1
                })
                .collect()
        })
        .collect()
}

/// A deep belief net pretraining its second RBM (the first done), its samples in hand.
pub fn pretraining(size: (u16, u16), mode: ColorMode) -> App {
    let exp = experiment("dbn-bars-stripes", 2, 400);
    let mut h = header(&exp);
    h.model = "dbn".into();
    h.layers = vec!["h1".into(), "h2".into(), "out".into()];
    let mut events = vec![
        train::Event::Started(h),
        train::Event::Phase(pretrain_phase(1)),
    ];
    events.extend((0..200).step_by(10).map(|s| train::Event::Pretrain {
        probe: pretrain_probe(1, s),
        wall_s: s as f64 / 80.0,
    }));
    events.push(train::Event::Phase(pretrain_phase(2)));
    events.extend((0..120).step_by(10).map(|s| train::Event::Pretrain {
        probe: pretrain_probe(2, s),
        wall_s: 2.5 + s as f64 / 80.0,
    }));
    events.push(train::Event::Samples {
        width: 4,
        height: 4,
        images: sample_images(),
    });
    fed(size, mode, "dbn-bars-stripes", events)
}

/// The fine-tuning phase that follows pretraining.
pub fn finetune() -> Event {
    Event::Train(train::Event::Phase(train::Phase {
        phase: "finetune".into(),
        rbm: None,
        of: None,
        visible: None,
        hidden: None,
        steps: 400,
    }))
}

/// A lesion study of a 16-block residual net as the job reports it: error rising smoothly with
/// the blocks deleted, the gradient peaking at paths of 4 branches.
pub fn lesioned(plain: bool) -> super::event::Lesioned {
    use crate::train::{LesionRecord, PathsRecord};
    let blocks = 16;
    let unit = if plain { "h" } else { "b" };
    let rise = |k: usize| {
        if plain {
            if k == 0 {
                0.06
            } else {
                0.89 + 0.001 * k as f64
            }
        } else {
            0.03 + 0.05 * k as f64
        }
    };
    let mut lesions = vec![LesionRecord {
        k: 0,
        deleted: Vec::new(),
        error: rise(0),
        loss: 0.1,
    }];
    for k in 1..=blocks {
        let draws = if k == 1 { blocks } else { 3 };
        for d in 0..draws {
            lesions.push(LesionRecord {
                k,
                deleted: vec![format!("{unit}{}", (k + d) % blocks + 1)],
                error: (rise(k) + 0.01 * d as f64).min(0.95),
                loss: 0.5,
            });
        }
    }
    let paths: Vec<PathsRecord> = if plain {
        Vec::new()
    } else {
        (0..=blocks)
            .map(|k| {
                let share = (-(k as f64 - 4.0).powi(2) / 5.0).exp() / 3.96;
                PathsRecord {
                    k,
                    paths: crate::lesion::choose(blocks, k),
                    draws: 20,
                    mean: share,
                    share,
                }
            })
            .collect()
    };
    super::event::Lesioned {
        summary: crate::lesion::Summary::new(&lesions, &paths),
        unit: if plain { "layer" } else { "block" },
        chance: Some(0.9),
        recorded: Some((8, "0e8c95ee3332".into())),
    }
}

/// A finished, recorded run (entry 7) with its lesion study on screen.
pub fn lesion_app(size: (u16, u16), mode: ColorMode, plain: bool) -> App {
    let mut app = running(size, mode, 400, Profile::Vanishing);
    app.ledger = super::app::LedgerState::at(PathBuf::from("ledger"));
    app.update(finished(crate::train::Status::Completed, 400, None));
    app.recorded(Ok(
        "recorded entry 7 1f2e3d4c5b6a in ledger/entries.jsonl".into()
    ));
    app.run.as_mut().expect("running").entry = Some(7);
    assert_eq!(app.update(ch('d')), Some(super::app::Effect::Lesion(7)));
    app.update(Event::Job(super::event::Job::Lesioned {
        seq: 7,
        result: Ok(lesioned(plain)),
    }));
    app
}

/// A history compressor on key recall (T = 50) after `probes` probes: its lower level learns
/// to predict within the first probes, so fewer and fewer inputs are passed up.
pub fn compressor(size: (u16, u16), mode: ColorMode, probes: usize) -> App {
    let exp = experiment("chunker-key-50", 2, 400);
    let mut h = header(&exp);
    h.model = "chunker".into();
    h.layers = vec!["low".into(), "high".into(), "out".into()];
    let mut events = vec![train::Event::Started(h)];
    events.extend((0..probes).map(|s| {
        let mut p = recurrent_probe(s, 50);
        p.layers.push(p.layers[1]);
        let learnt = (s as f64 / 10.0).min(1.0);
        // Once the filler is predicted, the upper level's error is carried across it intact.
        if learnt >= 1.0 {
            p.time = (1..=50)
                .map(|k| 0.02 * (1.0 + 0.1 * (k as f64).cos()))
                .collect();
        }
        p.levels = Some(train::Levels {
            passed_up: 50.0 - 47.2 * learnt,
            steps: 50,
            predict_loss: 2.2 - 2.1 * learnt,
            low_time: (1..=50)
                .map(|k| 0.01 * (1.0 + 0.3 * (k as f64 / 3.0).sin()))
                .collect(),
            collapse_loss: None,
            collapsed_agreement: None,
        });
        train::Event::Probe {
            probe: p,
            wall_s: s as f64 / 80.0,
        }
    }));
    fed(size, mode, "chunker-key-50", events)
}

/// An MD-LSTM on the 8×8 digits after `probes` probes: each scan's error largest at its
/// read-out corner and falling off across the image towards the opposite one.
pub fn grid_net(size: (u16, u16), mode: ColorMode, probes: usize) -> App {
    let exp = experiment("mdlstm-digits", 2, 400);
    let mut h = header(&exp);
    h.model = "mdlstm".into();
    h.layers = vec![
        "s1".into(),
        "s2".into(),
        "s3".into(),
        "s4".into(),
        "out".into(),
    ];
    let mut events = vec![train::Event::Started(h)];
    events.extend((0..probes).map(|s| {
        let mut p = probe(s, 5, Profile::Vanishing);
        p.time = (0..4)
            .flat_map(|scan| {
                (0..64i32).map(move |px| {
                    let (r, c) = (px / 8, px % 8);
                    let r = if scan & 1 == 1 { r } else { 7 - r };
                    let c = if scan & 2 == 2 { c } else { 7 - c };
                    0.05 * 0.6f64.powi(r + c)
                })
            })
            .collect();
        train::Event::Probe {
            probe: p,
            wall_s: s as f64 / 40.0,
        }
    }));
    fed(size, mode, "mdlstm-digits", events)
}
