//! State of the Run screen: what the probes said so far, kept bounded, plus view settings.
//!
//! Everything here is updated per event in O(layers) and holds at most a fixed number of
//! points whatever the run's length, so a million-step run costs the UI what a short one does.

use crate::experiment::Experiment;
use crate::train::{self, End, Header, LayerProbe, PretrainProbe, Probe};
use crate::tui::regime::Regime;
use std::collections::VecDeque;

/// Probes kept for the sparklines (the most recent ones).
pub const RECENT: usize = 256;
/// Heatmap columns kept before neighbouring columns are merged (halving the resolution).
pub const HISTORY_COLUMNS: usize = 1024;
/// Points kept per chart series before every other one is dropped.
pub const SERIES_POINTS: usize = 2048;
/// Probes the steps-per-second estimate looks back over.
const RATE_WINDOW: usize = 64;

/// Which norm every gradient panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// ‖δ‖ = ‖∂L/∂z‖: the back-propagated error.
    Delta,
    /// ‖∂L/∂W‖: what the optimiser sees.
    GradW,
}

impl Metric {
    pub fn of(self, l: &LayerProbe) -> f64 {
        match self {
            Metric::Delta => l.delta,
            Metric::GradW => l.grad_w,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Metric::Delta => "‖δ‖",
            Metric::GradW => "‖∂L/∂W‖",
        }
    }
    pub fn toggled(self) -> Self {
        match self {
            Metric::Delta => Metric::GradW,
            Metric::GradW => Metric::Delta,
        }
    }
    fn index(self) -> usize {
        match self {
            Metric::Delta => 0,
            Metric::GradW => 1,
        }
    }
}

/// The panels of the Run screen, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Layers,
    Profile,
    Heatmap,
    Loss,
    Saturation,
}

impl Panel {
    pub const ALL: [Panel; 5] = [
        Panel::Layers,
        Panel::Profile,
        Panel::Heatmap,
        Panel::Loss,
        Panel::Saturation,
    ];
    fn index(self) -> usize {
        Panel::ALL
            .iter()
            .position(|p| *p == self)
            .expect("ALL lists every panel")
    }
    /// Panels with one row per layer scroll.
    pub fn scrolls(self) -> bool {
        matches!(self, Panel::Layers | Panel::Heatmap | Panel::Saturation)
    }
}

/// Where the run is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Spawned; no header yet (building the data set and the model).
    Starting,
    Running,
    Paused,
    /// Stop requested; the trainer stops at its next step.
    Stopping,
    Ended(End),
}

impl Phase {
    /// The trainer thread is still going.
    pub fn active(&self) -> bool {
        !matches!(self, Phase::Ended(_))
    }
}

/// log10 of a norm; −∞ for zero, NaN stays NaN.
pub fn log10(v: f64) -> f32 {
    v.log10() as f32
}

/// A chart series thinned to at most `SERIES_POINTS` points by keeping every `stride`-th.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub points: Vec<(f64, f64)>,
    stride: usize,
    seen: usize,
}

impl Series {
    pub fn push(&mut self, x: f64, y: f64) {
        self.stride = self.stride.max(1);
        if self.seen.is_multiple_of(self.stride) {
            self.points.push((x, y));
            if self.points.len() >= SERIES_POINTS {
                let mut i = 0;
                self.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }
    pub fn last(&self) -> Option<(f64, f64)> {
        self.points.last().copied()
    }
}

/// The layer × time history behind the heatmap: whole run, bounded by merging neighbours.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Columns, each the mean log10 norm per layer and metric over `stride` probes.
    cols: Vec<Vec<[f32; 2]>>,
    pending: Vec<[f64; 2]>,
    pending_n: usize,
    stride: usize,
}

impl History {
    fn push(&mut self, logs: &[[f32; 2]]) {
        self.stride = self.stride.max(1);
        if self.pending.len() != logs.len() {
            self.pending = vec![[0.0; 2]; logs.len()];
            self.pending_n = 0;
        }
        for (p, l) in self.pending.iter_mut().zip(logs) {
            p[0] += l[0] as f64;
            p[1] += l[1] as f64;
        }
        self.pending_n += 1;
        if self.pending_n == self.stride {
            let n = self.pending_n as f64;
            self.cols.push(
                self.pending
                    .iter()
                    .map(|p| [(p[0] / n) as f32, (p[1] / n) as f32])
                    .collect(),
            );
            self.pending.iter_mut().for_each(|p| *p = [0.0; 2]);
            self.pending_n = 0;
            if self.cols.len() >= HISTORY_COLUMNS {
                self.cols = self
                    .cols
                    .chunks(2)
                    .map(|pair| {
                        (0..pair[0].len())
                            .map(|l| {
                                let k = pair.len() as f32;
                                let m = |i: usize| pair.iter().map(|c| c[l][i]).sum::<f32>() / k;
                                [m(0), m(1)]
                            })
                            .collect()
                    })
                    .collect();
                self.stride *= 2;
            }
        }
    }

    /// Number of columns, counting a partly filled last one.
    pub fn len(&self) -> usize {
        self.cols.len() + usize::from(self.pending_n > 0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The log10 norm of `layer` in column `col`.
    pub fn get(&self, col: usize, layer: usize, metric: Metric) -> f32 {
        let i = metric.index();
        match self.cols.get(col) {
            Some(c) => c[layer][i],
            None => (self.pending[layer][i] / self.pending_n as f64) as f32,
        }
    }
}

/// How the UI views the run (changed by keys only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub metric: Metric,
    pub focus: Panel,
    /// The focused panel fills the body.
    pub zoom: bool,
    /// First layer row shown, per panel.
    scroll: [usize; 5],
    /// `i`: the deep belief net's samples replace the phase panel.
    pub samples: bool,
}

impl Default for View {
    fn default() -> Self {
        Self {
            metric: Metric::Delta,
            focus: Panel::Layers,
            zoom: false,
            scroll: [0; 5],
            samples: false,
        }
    }
}

impl View {
    pub fn scroll(&self, p: Panel) -> usize {
        self.scroll[p.index()]
    }
    /// Moves the focused panel's first row by `by`, kept within `0..layers`; drawing keeps
    /// the last page full.
    pub fn scroll_by(&mut self, by: isize, layers: usize) {
        if !self.focus.scrolls() {
            return;
        }
        let s = &mut self.scroll[self.focus.index()];
        *s = s.saturating_add_signed(by).min(layers.saturating_sub(1));
    }
}

/// One RBM's pretraining curves, over its CD updates.
#[derive(Debug, Clone, Default)]
pub struct RbmCurves {
    pub recon_error: Series,
    pub free_energy_gap: Series,
    pub log_likelihood: Series,
    pub test_log_likelihood: Series,
    /// The latest probe, for the panel's title figures.
    pub latest: Option<PretrainProbe>,
}

/// What a deep belief net's run adds: its phase, the pretraining curves, its samples.
#[derive(Debug, Clone, Default)]
pub struct Dbn {
    /// The phase now (the header shows it); `None` before the first `Phase` event.
    pub phase: Option<train::Phase>,
    /// Per RBM (index 0 = RBM 1, the one on the data).
    pub rbms: Vec<RbmCurves>,
    /// The latest samples: (width, height, images).
    pub samples: Option<(usize, usize, Vec<Vec<f32>>)>,
}

impl Dbn {
    fn rbm(&mut self, rbm: usize) -> &mut RbmCurves {
        // RBMs count from 1; a 0 (never sent) is kept apart rather than underflowing.
        let i = rbm.saturating_sub(1);
        if self.rbms.len() <= i {
            self.rbms.resize_with(i + 1, RbmCurves::default);
        }
        &mut self.rbms[i]
    }

    /// The RBM pretraining now, if the run is pretraining.
    pub fn pretraining(&self) -> Option<usize> {
        self.phase
            .as_ref()
            .filter(|p| p.phase == "pretrain")
            .and_then(|p| p.rbm)
    }
}

/// Everything the Run screen knows.
#[derive(Debug, Clone)]
pub struct RunState {
    pub name: String,
    /// The full config hash: the key of the run's theory line.
    pub config_hash: String,
    pub hash_short: String,
    pub total: usize,
    pub classify: bool,
    pub layers: Vec<String>,
    pub phase: Phase,
    pub latest: Option<Probe>,
    /// Per recent probe, per layer: [log10 ‖δ‖, log10 ‖∂L/∂W‖].
    recent: VecDeque<Vec<[f32; 2]>>,
    pub history: History,
    pub loss: Series,
    pub test_loss: Series,
    pub accuracy: Series,
    pub test_accuracy: Series,
    /// Gradient-free search: the trainer's name (from the header); fitness replaces gradients.
    pub search: Option<String>,
    /// Per generation: the best and the mean loss of the population.
    pub fitness_best: Series,
    pub fitness_mean: Series,
    /// Deep belief nets only (created by the first phase, pretraining or samples event).
    pub dbn: Option<Dbn>,
    /// (step, trainer wall seconds) of recent probes.
    rate: VecDeque<(usize, f64)>,
    /// Trainer seconds at the latest event.
    pub wall_s: f64,
    /// The recorder's answer, once the run has ended and been recorded.
    pub recorded: Option<Result<String, String>>,
    /// The ledger entry the run was recorded as.
    pub entry: Option<u64>,
    /// The model kind, from the header (`mlp`, `resnet`, …).
    pub model: String,
    /// The lesion study of the recorded run (`d`), once asked for.
    pub lesion: Option<LesionView>,
    pub view: View,
}

/// The Run screen's lesion study.
#[derive(Debug, Clone, PartialEq)]
pub enum LesionView {
    /// Computing it on entry `seq`.
    Running {
        seq: u64,
    },
    Done(Result<crate::tui::event::Lesioned, String>),
}

impl RunState {
    pub fn new(exp: &Experiment) -> Self {
        Self {
            name: exp.name().to_string(),
            config_hash: exp.hash().0.clone(),
            hash_short: exp.hash().short().to_string(),
            total: exp.spec().train.steps,
            classify: true,
            layers: Vec::new(),
            phase: Phase::Starting,
            latest: None,
            recent: VecDeque::with_capacity(RECENT),
            history: History::default(),
            loss: Series::default(),
            test_loss: Series::default(),
            accuracy: Series::default(),
            test_accuracy: Series::default(),
            search: None,
            fitness_best: Series::default(),
            fitness_mean: Series::default(),
            dbn: None,
            rate: VecDeque::with_capacity(RATE_WINDOW),
            wall_s: 0.0,
            recorded: None,
            entry: None,
            model: exp.spec().model.kind.name().to_string(),
            lesion: None,
            view: View::default(),
        }
    }

    pub fn started(&mut self, h: &Header) {
        self.layers = h.layers.clone();
        self.total = h.steps;
        self.classify = h.objective == "classify";
        self.search = h.search.clone();
        self.model = h.model.clone();
        if self.phase == Phase::Starting {
            self.phase = Phase::Running;
        }
    }

    pub fn probe(&mut self, p: Probe, wall_s: f64) {
        if self.layers.len() != p.layers.len() {
            // A header always comes first; this only guards the invariant the panels index by.
            self.layers = (0..p.layers.len()).map(|i| format!("l{i}")).collect();
        }
        let logs: Vec<[f32; 2]> = p
            .layers
            .iter()
            .map(|l| [log10(l.delta), log10(l.grad_w)])
            .collect();
        self.history.push(&logs);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(logs);
        let x = p.step as f64;
        self.loss.push(x, p.loss);
        if let Some(a) = p.accuracy {
            self.accuracy.push(x, a);
        }
        if let Some(f) = p.fitness {
            self.fitness_best.push(x, f.best);
            self.fitness_mean.push(x, f.mean);
        }
        if let Some(t) = p.test {
            self.test_loss.push(x, t.loss);
            if let Some(a) = t.accuracy {
                self.test_accuracy.push(x, a);
            }
        }
        if self.rate.len() == RATE_WINDOW {
            self.rate.pop_front();
        }
        self.rate.push_back((p.step, wall_s));
        self.wall_s = wall_s;
        self.latest = Some(p);
    }

    /// A deep belief net enters a phase (pretraining RBM k, then fine-tuning).
    pub fn phase(&mut self, p: train::Phase) {
        self.dbn.get_or_insert_with(Dbn::default).phase = Some(p);
    }

    /// One RBM probe: O(1), the series thin themselves like the loss does.
    pub fn pretrain(&mut self, p: PretrainProbe, wall_s: f64) {
        let c = self.dbn.get_or_insert_with(Dbn::default).rbm(p.rbm);
        let x = p.step as f64;
        c.recon_error.push(x, p.recon_error);
        if let Some(g) = p.free_energy_gap {
            c.free_energy_gap.push(x, g);
        }
        if let Some(l) = p.log_likelihood {
            c.log_likelihood.push(x, l);
        }
        if let Some(l) = p.test_log_likelihood {
            c.test_log_likelihood.push(x, l);
        }
        c.latest = Some(p);
        self.wall_s = wall_s;
    }

    /// Samples replace the previous ones (only the latest are drawn).
    pub fn samples(&mut self, width: usize, height: usize, images: Vec<Vec<f32>>) {
        self.dbn.get_or_insert_with(Dbn::default).samples = Some((width, height, images));
    }

    /// Recurrent nets: the latest ‖∂L/∂h_t‖ for t = 1..T (empty for other nets).
    pub fn through_time(&self) -> &[f64] {
        self.latest.as_ref().map_or(&[], |p| &p.time)
    }

    /// ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖: how much of the last step's error reaches the first step.
    pub fn time_ratio(&self) -> Option<f64> {
        let t = self.through_time();
        let (first, last) = (*t.first()?, *t.last()?);
        (last > 0.0).then(|| first / last)
    }

    pub fn finished(&mut self, end: End, wall_s: f64) {
        self.wall_s = wall_s;
        self.phase = Phase::Ended(end);
    }

    /// A pause breaks the rate window: the gap would read as a slow step.
    pub fn reset_rate(&mut self) {
        self.rate.clear();
    }

    /// Steps completed so far.
    pub fn steps_done(&self) -> usize {
        match &self.phase {
            Phase::Ended(end) => end.steps_done,
            _ => self.latest.as_ref().map_or(0, |p| p.step + 1),
        }
    }

    /// Steps per second: over the whole run once it ended, else over the recent probes
    /// (trainer time, so the figure never depends on when the UI drew).
    pub fn steps_per_s(&self) -> Option<f64> {
        if let Phase::Ended(end) = &self.phase {
            return (self.wall_s > 0.0).then(|| end.steps_done as f64 / self.wall_s);
        }
        let (&(s0, t0), &(s1, t1)) = (self.rate.front()?, self.rate.back()?);
        (s1 > s0 && t1 > t0).then(|| (s1 - s0) as f64 / (t1 - t0))
    }

    /// Seconds left at the current rate.
    pub fn eta_s(&self) -> Option<f64> {
        if !self.phase.active() {
            return None;
        }
        Some(self.total.saturating_sub(self.steps_done()) as f64 / self.steps_per_s()?)
    }

    /// The current norm of each layer under `metric`.
    pub fn current(&self, metric: Metric) -> Vec<f64> {
        self.latest.as_ref().map_or_else(Vec::new, |p| {
            p.layers.iter().map(|l| metric.of(l)).collect()
        })
    }

    /// The regime of each layer now, judged on `metric` against the output layer.
    pub fn regimes(&self, metric: Metric) -> Vec<Regime> {
        let now = self.current(metric);
        let out = now.last().copied().unwrap_or(0.0);
        now.iter().map(|&v| Regime::classify(v, out)).collect()
    }

    /// The last `n` recent log10 norms of `layer`, oldest first.
    pub fn recent(&self, layer: usize, metric: Metric, n: usize) -> Vec<f32> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent
            .iter()
            .skip(skip)
            .map(|p| p[layer][metric.index()])
            .collect()
    }

    pub fn probes_seen(&self) -> usize {
        self.loss.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{Status, TestMetrics};

    fn exp() -> Experiment {
        Experiment::parse(
            "[experiment]\nname = \"t\"\n[train]\nsteps = 100000\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    fn probe(step: usize, layers: usize) -> Probe {
        Probe {
            step,
            loss: 1.0 / (1.0 + step as f64),
            accuracy: Some(0.5),
            layers: (0..layers)
                .map(|l| LayerProbe {
                    delta: 10f64.powi(2 * l as i32 - 10),
                    grad_w: 1.0,
                    ..Default::default()
                })
                .collect(),
            time: Vec::new(),
            fitness: None,
            levels: None,
            test: step.is_multiple_of(10).then_some(TestMetrics {
                loss: 0.9,
                accuracy: Some(0.4),
            }),
        }
    }

    #[test]
    fn history_and_series_stay_bounded_on_long_runs() {
        let mut r = RunState::new(&exp());
        for s in 0..20_000 {
            r.probe(probe(s, 3), s as f64 * 0.01);
        }
        assert!(r.history.len() <= HISTORY_COLUMNS, "{}", r.history.len());
        assert!(r.history.len() >= HISTORY_COLUMNS / 2);
        assert!(r.loss.points.len() < SERIES_POINTS);
        assert_eq!(r.recent(0, Metric::Delta, 10_000).len(), RECENT);
        // Merged columns keep the mean log: layer 0 is 1e-10 throughout.
        assert!((r.history.get(0, 0, Metric::Delta) + 10.0).abs() < 1e-5);
        assert_eq!(r.loss.points[0].0, 0.0);
        assert!(r.loss.last().unwrap().0 > 19_000.0);
    }

    #[test]
    fn rate_and_eta_come_from_trainer_time() {
        let mut r = RunState::new(&exp());
        r.probe(probe(0, 2), 0.0);
        assert_eq!(r.steps_per_s(), None);
        r.probe(probe(100, 2), 2.0);
        assert_eq!(r.steps_per_s(), Some(50.0));
        assert_eq!(r.eta_s(), Some((100_000.0 - 101.0) / 50.0));
        r.reset_rate();
        assert_eq!(r.steps_per_s(), None);
        r.finished(
            End {
                status: Status::Interrupted,
                steps_done: 150,
                diverged_at: None,
                error: None,
            },
            3.0,
        );
        assert_eq!(r.steps_per_s(), Some(50.0));
        assert_eq!(r.eta_s(), None);
        assert_eq!(r.steps_done(), 150);
    }

    #[test]
    fn regimes_are_judged_against_the_output_layer() {
        let mut r = RunState::new(&exp());
        r.probe(probe(0, 6), 0.0); // δ = 1e-10, 1e-8, … 1
        use Regime::*;
        assert_eq!(
            r.regimes(Metric::Delta),
            vec![Vanishing, Vanishing, Vanishing, Vanishing, Healthy, Healthy]
        );
        assert_eq!(r.regimes(Metric::GradW), vec![Healthy; 6]);
    }

    #[test]
    fn view_scroll_stays_within_the_layers() {
        let mut v = View::default();
        v.scroll_by(-3, 20);
        assert_eq!(v.scroll(Panel::Layers), 0);
        v.scroll_by(100, 20);
        assert_eq!(v.scroll(Panel::Layers), 19);
        v.focus = Panel::Loss;
        v.scroll_by(5, 20);
        assert_eq!(v.scroll(Panel::Loss), 0);
    }
}
