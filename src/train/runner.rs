//! The training loop: batches, forward, hand-derived backward, clipping, update, probes.
//!
//! Every step reads back from the device once: the loss and Σ‖g‖² (to detect divergence),
//! and on probe steps the per-layer statistics too, all concatenated into one tensor.

pub(super) use super::batch::{Batch, Batcher, Batches, to_device};
use super::events::*;
use super::probe;
use super::step::{Stepper, TensorStep};
use super::trace::TraceWriter;
use super::{Control, DeviceKind, Outcome, RunEnv, TrainError, weights_bytes};
use crate::cancel;
use crate::data::{self, Dataset, Objective};
use crate::experiment::{Experiment, ModelKind, ProbeSection};
use crate::models::grid::{Cell, square_side};
use crate::models::ops::PortableOps;
use crate::models::ops::log_softmax;
use crate::models::{Chunker, GridNet, Lstm, Mlp, Network, Resnet, Rnn, named_parameters};
use burn::tensor::{Device, Tensor};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// Runs `exp` to its end on the calling thread, sending events to `sink`.
/// A training step allocates and frees the same multi-megabyte buffers every step (an LSTM
/// tape is several 1.6 MB sequences). glibc serves blocks that large with fresh `mmap`s and
/// returns them on free, so every step paid page faults and page clearing for them (~12% of
/// an LSTM step in `perf`). Raising the mmap and trim thresholds keeps freed blocks in the
/// heap for reuse. Allocation sizes and values are unchanged, so results are too.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only adjusts glibc's allocator parameters.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            }
        });
    }
}

thread_local! {
    /// How many [`train`] calls on this thread are inside their `catch_unwind`.
    static CATCHING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether a panic raised on the calling thread now will be caught and reported as a failed
/// run instead of ending the program: inside [`train`] on any thread (a UI run, a replay, a
/// sweep point), or on a rayon worker, whose panics rayon hands to the caller that waits on
/// it. A panic hook uses this to leave such panics alone.
pub fn panics_are_caught() -> bool {
    CATCHING.with(|c| c.get() > 0) || rayon::current_thread_index().is_some()
}

/// Marks the calling thread as catching for as long as it lives (also when unwinding).
struct Catching;

impl Catching {
    fn enter() -> Catching {
        CATCHING.with(|c| c.set(c.get() + 1));
        Catching
    }
}

impl Drop for Catching {
    fn drop(&mut self) {
        CATCHING.with(|c| c.set(c.get() - 1));
    }
}

pub fn train(
    exp: &Experiment,
    env: RunEnv,
    control: &Control,
    sink: &mut dyn FnMut(Event),
) -> Outcome {
    on_this_run(env, || train_in(exp, env, control, sink))
}

/// Runs `f` with the run's per-thread settings — the portable engine's tensor ops and the
/// stream version — on whichever thread it runs (the training thread, or the pool worker a
/// step runs on).
fn on_this_run<R>(env: RunEnv, f: impl FnOnce() -> R) -> R {
    let engine = env.device.host_engine(env.threads);
    crate::rng::with_version(env.streams, || crate::models::ops::with_engine(engine, f))
}

fn train_in(
    exp: &Experiment,
    env: RunEnv,
    control: &Control,
    sink: &mut dyn FnMut(Event),
) -> Outcome {
    keep_freed_memory();
    let start = Instant::now();
    let mut trace = TraceWriter::new();
    let mut header = None;
    let catching = Catching::enter();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut rec = Record {
            sink: &mut *sink,
            trace: &mut trace,
            header: &mut header,
            start,
        };
        run(exp, env, control, &mut rec)
    }));
    drop(catching);
    let (end, weights) = match result {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => (failed(e.to_string()), Vec::new()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "training panicked".into());
            (failed(message), Vec::new())
        }
    };
    let header = header.unwrap_or_else(|| header_for(exp, env, Vec::new(), "unknown"));
    if trace.is_empty() {
        trace.push(&TraceLine::Header(header.clone()));
    }
    trace.push(&TraceLine::End(end.clone()));
    let wall_s = start.elapsed().as_secs_f64();
    sink(Event::Finished {
        end: end.clone(),
        wall_s,
    });
    Outcome {
        header,
        end,
        trace: trace.finish(),
        weights,
        wall_s,
    }
}

fn failed(message: String) -> End {
    End {
        status: Status::Failed,
        steps_done: 0,
        diverged_at: None,
        error: Some(message),
    }
}

pub(super) fn header_for(
    exp: &Experiment,
    env: RunEnv,
    layers: Vec<String>,
    objective: &str,
) -> Header {
    Header {
        format: env.trace.name().into(),
        experiment: exp.name().into(),
        config_hash: exp.hash().0.clone(),
        seed: exp.seed(),
        model: exp.spec().model.kind.name().into(),
        objective: objective.into(),
        steps: exp.spec().train.steps,
        backend: env.device.name().into(),
        device: env.device.name().into(),
        threads: (env.device != DeviceKind::Portable).then_some(env.threads),
        layers,
        search: None,
        lesion: None,
    }
}

/// The objective's name in the trace header.
pub(super) fn objective_name(obj: Objective) -> &'static str {
    match obj {
        Objective::Classify { .. } | Objective::ClassifyEach { .. } => "classify",
        Objective::Regress { .. } => "regress",
    }
}

/// Loss (a 1-element tensor), ∂L/∂logits, and the number of correct predictions.
pub(super) fn loss_and_delta(
    obj: Objective,
    logits: Tensor<2>,
    b: &Batch,
) -> (Tensor<1>, Tensor<2>, Option<Tensor<1>>) {
    let n = b.n as f64;
    match obj {
        Objective::Classify { .. } => {
            let logp = log_softmax(logits);
            let loss = logp.clone().mul(b.y.clone()).psum().mul_scalar(-1.0 / n);
            let delta = logp.clone().pexp().sub(b.y.clone()).div_scalar(n);
            let correct = b.labels.as_ref().map(|l| {
                logp.argmax(1)
                    .reshape([b.n])
                    .equal(l.clone())
                    .float()
                    .psum()
            });
            (loss, delta, correct)
        }
        Objective::Regress { dim } => {
            let m = n * dim as f64;
            let diff = logits.sub(b.y.clone());
            (
                diff.clone().square().psum().div_scalar(m),
                diff.mul_scalar(2.0 / m),
                None,
            )
        }
        Objective::ClassifyEach { positions, classes } => {
            // A softmax per position; the loss is the mean over examples and positions.
            let m = (b.n * positions) as f64;
            let rows = logits.reshape([b.n * positions, classes]);
            let y = b.y.clone().reshape([b.n * positions, classes]);
            let logp = log_softmax(rows);
            let loss = logp.clone().mul(y.clone()).psum().mul_scalar(-1.0 / m);
            let delta = logp
                .clone()
                .pexp()
                .sub(y)
                .div_scalar(m)
                .reshape([b.n, positions * classes]);
            let correct = b.labels.as_ref().map(|l| {
                logp.argmax(1)
                    .reshape([b.n * positions])
                    .equal(l.clone())
                    .float()
                    .psum()
            });
            (loss, delta, correct)
        }
    }
}

/// What a run writes as it goes, kept outside `run` so a panic cannot lose it.
pub(super) struct Record<'a> {
    pub(super) sink: &'a mut dyn FnMut(Event),
    pub(super) trace: &'a mut TraceWriter,
    pub(super) header: &'a mut Option<Header>,
    pub(super) start: Instant,
}

impl Record<'_> {
    /// Writes the header line and announces the run.
    pub(super) fn start(&mut self, header: Header) {
        self.trace.push(&TraceLine::Header(header.clone()));
        *self.header = Some(header.clone());
        (self.sink)(Event::Started(header));
    }

    /// Records a probe in the trace and the outcome, and sends it.
    pub(super) fn probe(&mut self, probe: Probe) {
        self.trace.push(&TraceLine::Probe(probe.clone()));
        (self.sink)(Event::Probe {
            probe,
            wall_s: self.start.elapsed().as_secs_f64(),
        });
    }

    /// Appends a line to the trace.
    pub(super) fn line(&mut self, line: &TraceLine) {
        self.trace.push(line);
    }

    pub(super) fn wall_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

fn run(
    exp: &Experiment,
    env: RunEnv,
    control: &Control,
    rec: &mut Record,
) -> Result<(End, Vec<u8>), TrainError> {
    let spec = exp.spec();
    let device = env.device.device()?;
    device.seed(exp.seed()); // the lab draws nothing from the backend, but keep it pinned
    let ds = data::build(&spec.data, exp.seed())?;
    let ctx = Ctx {
        exp,
        env,
        control,
        ds: &ds,
        device: &device,
    };
    let m = &spec.model;
    let (input, out) = (ds.input_dim, ds.objective.output_dim());
    let (steps, features) = (ds.seq_len, ds.input_dim / ds.seq_len);
    let reads = ds.objective.positions();
    match m.kind {
        ModelKind::Mlp => {
            let make = |s| Mlp::new(m, input, out, s, &device);
            if !spec.train.optimizer.gradient_free() {
                let Some(mlp) = build(&ctx, || make(exp.seed())) else {
                    return Ok((stopped_before_the_first_step(), Vec::new()));
                };
                drive_mlp(mlp, &ctx, rec)
            } else if env.device == DeviceKind::Portable {
                // The portable engine scores candidates with the fused step's own forward.
                let engine = env.device.host_engine(env.threads);
                let scorer = super::fused::HostScorer::new(&make(exp.seed()), ds.objective, engine);
                super::search::search(&make, &ctx, rec, Some(&scorer))
            } else {
                super::search::search(&make, &ctx, rec, None)
            }
        }
        ModelKind::Resnet => fit(|s| Resnet::new(m, input, out, s, &device), &ctx, rec),
        ModelKind::Rnn => fit(
            |s| Rnn::new(m, steps, features, out, reads, s, &device),
            &ctx,
            rec,
        ),
        ModelKind::Lstm => fit(
            |s| Lstm {
                host: env
                    .device
                    .fused()
                    .then(|| env.device.host_engine(env.threads)),
                ..Lstm::new(m, steps, features, out, reads, s, &device)
            },
            &ctx,
            rec,
        ),
        ModelKind::Mdlstm | ModelKind::Rnn2d => {
            let cell = if m.kind == ModelKind::Mdlstm {
                Cell::Lstm
            } else {
                Cell::Tanh
            };
            let side = square_side(input).ok_or_else(|| TrainError::Shape {
                what: format!(
                    "{} needs a square image; {input} pixels are not one",
                    m.kind.name()
                ),
            })?;
            fit(
                |s| GridNet::new(m, cell, (side, side), 1, out, s, &device),
                &ctx,
                rec,
            )
        }
        ModelKind::Chunker => fit(
            |s| Chunker::new(m, steps, features, out, s, &device),
            &ctx,
            rec,
        ),
        ModelKind::Dbn => {
            let (net, stopped) = super::pretrain::pretrain(&ctx, rec)?;
            if stopped {
                let end = End {
                    status: Status::Interrupted,
                    steps_done: 0,
                    diverged_at: None,
                    error: None,
                };
                return Ok((end, weights_bytes(&named_parameters(&net))));
            }
            drive_mlp(net, &ctx, rec)
        }
    }
}

/// What every phase of a run reads: the experiment, where it runs, its data, its controls.
pub(super) struct Ctx<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) env: RunEnv,
    pub(super) control: &'a Control,
    pub(super) ds: &'a Dataset,
    pub(super) device: &'a Device,
}

impl Ctx<'_> {
    /// Waits while paused; true once a stop is requested. Every phase checks it every step.
    pub(super) fn stopped(&self) -> bool {
        while self.control.is_paused() && !self.control.stop_requested() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.control.stop_requested()
    }
}

/// Whether step `step` of `steps` is probed, and whether it also evaluates (the test split;
/// an RBM's free-energy gap and likelihood): the first and last step always, then every
/// `probe.every` and `probe.test_every` steps.
pub(super) fn schedule(step: usize, steps: usize, probe: &ProbeSection) -> (bool, bool) {
    let last = step + 1 == steps;
    // Test metrics ride on a probe record, so a test step is always probed too.
    let evaluating = last || (probe.test_every > 0 && step.is_multiple_of(probe.test_every));
    let probing = evaluating || step.is_multiple_of(probe.every);
    (probing, evaluating)
}

/// Trains the network `make(seed)` builds (any kind but the MLP, which has its own fused
/// step): by gradient descent with Burn's ops, or by a gradient-free search that may build
/// more candidates from other seeds.
fn fit<N: Network>(
    make: impl Fn(u64) -> N,
    ctx: &Ctx,
    rec: &mut Record,
) -> Result<(End, Vec<u8>), TrainError> {
    if ctx.exp.spec().train.optimizer.gradient_free() {
        super::search::search(&make, ctx, rec, None)
    } else {
        let (t, objective) = (&ctx.exp.spec().train, ctx.ds.objective);
        let fast = ctx.env.device.fused();
        let Some(net) = build(ctx, || make(ctx.exp.seed())) else {
            return Ok((stopped_before_the_first_step(), Vec::new()));
        };
        let step = TensorStep::new(net, t, objective, ctx.device, fast);
        drive_with(step, ctx, rec)
    }
}

/// Builds the network within the run's stop flag: initialising a wide matrix orthogonally
/// takes seconds (Gram–Schmidt over 2048 columns: some 15), and SIGTERM must not wait for it
/// (`models::init` checks the flag once per column). `None`: stopped before it was built.
fn build<N>(ctx: &Ctx, make: impl FnOnce() -> N) -> Option<N> {
    cancel::within(&ctx.control.stop_flag(), make)
}

/// The end of a run stopped before its network existed: no step, no weights.
fn stopped_before_the_first_step() -> End {
    End {
        status: Status::Interrupted,
        steps_done: 0,
        diverged_at: None,
        error: None,
    }
}

/// Gradient descent on an MLP (or a pretrained DBN, unrolled into one): the fused host step on
/// the `portable` and `cpu` engines, Burn's tensor ops elsewhere.
pub(super) fn drive_mlp(
    mlp: Mlp,
    ctx: &Ctx,
    rec: &mut Record,
) -> Result<(End, Vec<u8>), TrainError> {
    let (t, objective) = (&ctx.exp.spec().train, ctx.ds.objective);
    let engine = ctx.env.device.host_engine(ctx.env.threads);
    if ctx.env.device.fused() && super::fused::supports(&mlp, engine) {
        // Moved, not cloned: the fused step updates the weights in place only if it owns them.
        drive_with(
            super::fused::FusedMlp::new(mlp, t, objective, engine),
            ctx,
            rec,
        )
    } else {
        let fast = ctx.env.device.fused();
        drive_with(
            TensorStep::new(mlp, t, objective, ctx.device, fast),
            ctx,
            rec,
        )
    }
}

/// The step loop: schedule, step, divergence check, probe records, test evaluation.
fn drive_with(
    mut stepper: impl Stepper + Send,
    ctx: &Ctx,
    rec: &mut Record,
) -> Result<(End, Vec<u8>), TrainError> {
    let Ctx {
        exp,
        env,
        ds,
        device,
        ..
    } = *ctx;
    let spec = exp.spec();
    if rec.header.is_none() {
        rec.start(header_for(
            exp,
            env,
            stepper.layer_names(),
            objective_name(ds.objective),
        ));
    }
    let mut batches = Batches::new(ctx, spec.train.batch_size);
    let test_batch = (ds.test.n > 0).then(|| to_device(&ds.test, ds, device));
    let steps = spec.train.steps;
    let positions = ds.objective.positions();
    // With several threads each step runs on a worker of a pool of that size, so the step's
    // own thread is one of the workers its parallel products use. Run from outside, it sat
    // beside `threads` workers spinning between products on the same cores (measured: W1 at
    // 2 threads fell from 89 to 56 steps/s). One thread needs no pool.
    let pool = (env.threads > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(env.threads)
                .build()
                .ok()
        })
        .flatten();

    let interrupted = |steps_done| End {
        status: Status::Interrupted,
        steps_done,
        diverged_at: None,
        error: None,
    };
    for step in 0..steps {
        if ctx.stopped() {
            return Ok((interrupted(step), stepper.weights()));
        }
        let (probing, evaluating) = schedule(step, steps, &spec.probe);
        let batch = batches.next(ctx);
        // A probe step's record describes one state of the network, the weights before its
        // update: the test metrics too (trace format 2; format 1 took them after the update,
        // and replays of its entries still do).
        let test_before = match (&test_batch, evaluating, env.trace) {
            (Some(b), true, TraceFormat::V2) => Some(stepper.evaluate(b)?),
            _ => None,
        };
        // Within the stop flag: a long recurrent step is abandoned at its next time step
        // (see `crate::cancel`) and the network is as the last finished step left it.
        let flag = ctx.control.stop_flag();
        let stepped = match &pool {
            Some(pool) => pool.install(|| {
                on_this_run(env, || {
                    cancel::within(&flag, || stepper.step(&batch, probing))
                })
            }),
            None => cancel::within(&flag, || stepper.step(&batch, probing)),
        };
        let Some(stats) = stepped else {
            return Ok((interrupted(step), stepper.weights()));
        };
        let stats = stats?;
        if !stats.loss.is_finite() || !stats.grad_sq.is_finite() {
            let end = End {
                status: Status::Diverged,
                steps_done: step,
                diverged_at: Some(step),
                error: None,
            };
            return Ok((end, stepper.weights()));
        }
        if probing {
            let layers = stats
                .layers
                .iter()
                .map(|l| {
                    let mut p = layer_probe(l.grad_w_sq, l.grad_b_sq, &l.sums, l.numel);
                    p.skip_delta = l.skip_sq.map(f64::sqrt);
                    p
                })
                .collect();
            let test = match (&test_batch, evaluating, env.trace) {
                (Some(b), true, TraceFormat::V1) => Some(stepper.evaluate(b)?),
                _ => test_before,
            };
            rec.probe(Probe {
                step,
                loss: stats.loss,
                accuracy: stats.correct.map(|c| c / (batch.n * positions) as f64),
                layers,
                time: stats.time.iter().map(|&v| v.sqrt()).collect(),
                test,
                fitness: None,
                levels: stats.levels.as_ref().map(|l| Levels {
                    passed_up: l.passed / batch.n as f64,
                    steps: l.low_time.len(),
                    predict_loss: l.predict_loss,
                    low_time: l.low_time.iter().map(|v| v.sqrt()).collect(),
                    collapse_loss: l.collapse.map(|c| c.0),
                    collapsed_agreement: l.collapse.map(|c| c.1 / batch.n as f64),
                }),
            });
        }
    }
    let end = End {
        status: Status::Completed,
        steps_done: steps,
        diverged_at: None,
        error: None,
    };
    Ok((end, stepper.weights()))
}

/// One layer's probe record from its squared gradient norms and sums over `numel` outputs
/// (a residual layer's `skip_delta` is added by the caller).
fn layer_probe(grad_w_sq: f64, grad_b_sq: f64, s: &probe::LayerSums, numel: f64) -> LayerProbe {
    let weight = s.weight_sq.sqrt();
    let mean = s.out_sum / numel;
    LayerProbe {
        delta: s.delta_sq.sqrt(),
        grad_w: grad_w_sq.sqrt(),
        grad_b: grad_b_sq.sqrt(),
        weight,
        update_ratio: if weight > 0.0 {
            s.update_sq.sqrt() / weight
        } else {
            0.0
        },
        act_mean: mean,
        act_std: (s.out_sq / numel - mean * mean).max(0.0).sqrt(),
        saturation: s.saturated / numel,
        skip_delta: None,
    }
}

pub(super) fn evaluate<N: Network>(
    net: &N,
    obj: Objective,
    b: &Batch,
) -> Result<TestMetrics, TrainError> {
    let (loss, _, correct) = loss_and_delta(obj, net.forward(b.x.clone()), b);
    let mut parts = vec![loss];
    parts.extend(correct);
    let v = Tensor::cat(parts, 0)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(TrainError::readback("the test metrics"))?;
    Ok(TestMetrics {
        loss: v[0] as f64,
        accuracy: v.get(1).map(|&c| c as f64 / (b.n * obj.positions()) as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The TUI's panic hook leaves alone exactly the panics that training catches: on the
    /// thread inside `train` (whatever its name) and on pool workers, not elsewhere.
    #[test]
    fn panics_inside_training_and_on_workers_are_known_to_be_caught() {
        assert!(
            !panics_are_caught(),
            "a plain thread's panics end the program"
        );
        let exp = Experiment::parse(
            "[experiment]\nname = \"t\"\nseed = 1\n[data]\ntask = \"spirals\"\ntrain_size = 32\n\
             test_size = 0\n[model]\ndepth = 2\nwidth = 4\n[train]\nsteps = 2\nbatch_size = 8\n",
            Path::new("t.toml"),
        )
        .expect("valid test config");
        let mut seen = Vec::new();
        let thread = std::thread::Builder::new()
            .name("not-the-train-thread".into())
            .spawn(move || {
                train(&exp, RunEnv::default(), &Control::new(), &mut |_| {
                    seen.push(panics_are_caught())
                });
                (seen, panics_are_caught())
            })
            .unwrap();
        let (seen, after) = thread.join().unwrap();
        // Every event sent while stepping; `Finished` follows once the catch is over.
        let (last, stepping) = seen.split_last().expect("events were sent");
        assert!(
            !stepping.is_empty() && stepping.iter().all(|&c| c),
            "{seen:?}"
        );
        assert!(!last, "{seen:?}");
        assert!(!after, "only while training");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert!(
            pool.install(panics_are_caught),
            "rayon hands worker panics on"
        );
    }
}
