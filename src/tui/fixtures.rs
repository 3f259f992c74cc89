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
        format: train::TRACE_FORMAT.into(),
        experiment: exp.name().into(),
        config_hash: exp.hash().0.clone(),
        seed: exp.seed(),
        model: "mlp".into(),
        objective: "classify".into(),
        steps: exp.spec().train.steps,
        backend: "flex".into(),
        device: "flex".into(),
        threads: 1,
        layers,
        search: None,
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
