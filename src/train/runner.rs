//! The training loop: batches, forward, hand-derived backward, clipping, update, probes.
//!
//! Every step reads back from the device once: the loss and Σ‖g‖² (to detect divergence),
//! and on probe steps the per-layer statistics too, all concatenated into one tensor.

use super::events::*;
use super::optim::{self, Optim};
use super::probe;
use super::{weights_bytes, Control, Outcome, RunEnv};
use crate::data::{self, Dataset, Objective, Split};
use crate::experiment::{Experiment, ModelKind};
use crate::models::{named_parameters, Mlp, Network};
use crate::rng::Stream;
use burn::tensor::{activation::log_softmax, Device, Int, Tensor, TensorData};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;


/// Runs `exp` to its end on the calling thread, sending events to `sink`.
pub fn train(exp: &Experiment, env: RunEnv, control: &Control, sink: &mut dyn FnMut(Event)) -> Outcome {
    let start = Instant::now();
    let mut trace = Vec::new();
    let mut probes = Vec::new();
    let mut header = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut rec = Record { sink: &mut *sink, trace: &mut trace, probes: &mut probes, header: &mut header, start };
        run(exp, env, control, &mut rec)
    }));
    let (end, weights) = match result {
        Ok(Ok(done)) => done,
        Ok(Err(message)) => (failed(message), Vec::new()),
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
        push_line(&mut trace, &TraceLine::Header(header.clone()));
    }
    push_line(&mut trace, &TraceLine::End(end.clone()));
    let wall_s = start.elapsed().as_secs_f64();
    sink(Event::Finished { end: end.clone(), wall_s });
    Outcome { header, end, probes, trace, weights, wall_s }
}

fn failed(message: String) -> End {
    End { status: Status::Failed, steps_done: 0, diverged_at: None, error: Some(message) }
}

fn push_line(trace: &mut Vec<u8>, line: &TraceLine) {
    serde_json::to_writer(&mut *trace, line).expect("trace records always serialize");
    trace.push(b'\n');
}

fn header_for(exp: &Experiment, env: RunEnv, layers: Vec<String>, objective: &str) -> Header {
    Header {
        format: TRACE_FORMAT.into(),
        experiment: exp.name().into(),
        config_hash: exp.hash().0.clone(),
        seed: exp.seed(),
        model: exp.spec().model.kind.name().into(),
        objective: objective.into(),
        steps: exp.spec().train.steps,
        backend: env.device.name().into(),
        device: env.device.name().into(),
        threads: env.threads,
        layers,
    }
}

/// A batch on the device.
struct Batch {
    x: Tensor<2>,
    /// One-hot labels (classification) or targets (regression), `[n, out]`.
    y: Tensor<2>,
    /// Class labels for accuracy.
    labels: Option<Tensor<1, Int>>,
    n: usize,
}

fn to_device(split: &Split, ds: &Dataset, device: &Device) -> Batch {
    let out = ds.objective.output_dim();
    let x = Tensor::from_data(TensorData::new(split.x.clone(), [split.n, ds.input_dim]), device);
    let (y, labels) = match ds.objective {
        Objective::Classify { classes } => {
            let mut onehot = vec![0f32; split.n * classes];
            for (i, &l) in split.labels.iter().enumerate() {
                onehot[i * classes + l as usize] = 1.0;
            }
            let labels: Vec<i64> = split.labels.iter().map(|&l| l as i64).collect();
            (
                Tensor::from_data(TensorData::new(onehot, [split.n, classes]), device),
                Some(Tensor::from_data(TensorData::new(labels, [split.n]), device)),
            )
        }
        Objective::Regress { dim } => {
            (Tensor::from_data(TensorData::new(split.targets.clone(), [split.n, dim]), device), None)
        }
    };
    debug_assert_eq!(y.dims()[1], out);
    Batch { x, y, labels, n: split.n }
}

/// Loss (a 1-element tensor), ∂L/∂logits, and the number of correct predictions.
fn loss_and_delta(obj: Objective, logits: Tensor<2>, b: &Batch) -> (Tensor<1>, Tensor<2>, Option<Tensor<1>>) {
    let n = b.n as f64;
    match obj {
        Objective::Classify { .. } => {
            let logp = log_softmax(logits, 1);
            let loss = logp.clone().mul(b.y.clone()).sum().mul_scalar(-1.0 / n);
            let delta = logp.clone().exp().sub(b.y.clone()).div_scalar(n);
            let correct = b
                .labels
                .as_ref()
                .map(|l| logp.argmax(1).reshape([b.n]).equal(l.clone()).float().sum());
            (loss, delta, correct)
        }
        Objective::Regress { dim } => {
            let m = n * dim as f64;
            let diff = logits.sub(b.y.clone());
            (diff.clone().square().sum().div_scalar(m), diff.mul_scalar(2.0 / m), None)
        }
    }
}

/// Samples batches without replacement within an epoch; a batch at least the training set's
/// size is the whole set every step.
struct Batcher {
    order: Vec<usize>,
    pos: usize,
    size: usize,
    rng: Stream,
}

impl Batcher {
    fn new(n: usize, size: usize, seed: u64) -> Self {
        let mut b = Self { order: (0..n).collect(), pos: n, size: size.min(n), rng: Stream::new(seed, "batches") };
        if b.size == n {
            b.pos = 0;
        }
        b
    }
    fn full(&self) -> bool {
        self.size == self.order.len()
    }
    fn next(&mut self) -> &[usize] {
        if self.pos + self.size > self.order.len() {
            self.rng.shuffle(&mut self.order);
            self.pos = 0;
        }
        let s = &self.order[self.pos..self.pos + self.size];
        self.pos += self.size;
        s
    }
}

/// What a run writes as it goes, kept outside `run` so a panic cannot lose it.
struct Record<'a> {
    sink: &'a mut dyn FnMut(Event),
    trace: &'a mut Vec<u8>,
    probes: &'a mut Vec<Probe>,
    header: &'a mut Option<Header>,
    start: Instant,
}

fn run(exp: &Experiment, env: RunEnv, control: &Control, rec: &mut Record) -> Result<(End, Vec<u8>), String> {
    let spec = exp.spec();
    let device = env.device.device()?;
    device.seed(exp.seed()); // the lab draws nothing from the backend, but keep it pinned
    let ds = data::build(&spec.data, exp.seed()).map_err(|e| e.to_string())?;
    match spec.model.kind {
        ModelKind::Mlp => {
            let net = Mlp::new(&spec.model, ds.input_dim, ds.objective.output_dim(), exp.seed(), &device);
            drive(net, exp, env, control, &ds, &device, rec)
        }
    }
}

/// The gradient-descent loop over any `Network`.
fn drive<N: Network>(
    mut net: N,
    exp: &Experiment,
    env: RunEnv,
    control: &Control,
    ds: &Dataset,
    device: &Device,
    rec: &mut Record,
) -> Result<(End, Vec<u8>), String> {
    let spec = exp.spec();
    let objective = match ds.objective {
        Objective::Classify { .. } => "classify",
        Objective::Regress { .. } => "regress",
    };
    let header = header_for(exp, env, net.layer_names(), objective);
    push_line(rec.trace, &TraceLine::Header(header.clone()));
    *rec.header = Some(header.clone());
    (rec.sink)(Event::Started(header));

    let t = &spec.train;
    let mut params = net.params();
    let mut optim = Optim::new(t, params.len());
    let mut batcher = Batcher::new(ds.train.n, t.batch_size, exp.seed());
    let full_batch = batcher.full().then(|| to_device(&ds.train, ds, device));
    let test_batch = (ds.test.n > 0).then(|| to_device(&ds.test, ds, device));
    let steps = t.steps;
    let out_dim = ds.objective.output_dim();
    let classify = matches!(ds.objective, Objective::Classify { .. });
    // Stands in for statistics a layer lacks (no bias, no saturation notion).
    let zero: Tensor<1> = Tensor::zeros([1], device);
    // On the CPU backend the probes sum host memory directly (see `probe`).
    let on_host = *device == Device::flex();

    for step in 0..steps {
        while control.is_paused() && !control.stop_requested() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if control.stop_requested() {
            let end = End { status: Status::Interrupted, steps_done: step, diverged_at: None, error: None };
            return Ok((end, weights_bytes(&named_parameters(&net))));
        }
        let last = step + 1 == steps;
        let probing = step % spec.probe.every == 0 || last;
        let testing = probing
            && test_batch.is_some()
            && (last || (spec.probe.test_every > 0 && step % spec.probe.test_every == 0));

        let sampled;
        let batch = match &full_batch {
            Some(b) => b,
            None => {
                let idx = batcher.next().to_vec();
                sampled = to_device(&ds.train.gather(&idx, ds.input_dim, out_dim), ds, device);
                &sampled
            }
        };
        let (logits, tape) = net.forward_tape(batch.x.clone());
        let (loss, delta_out, correct) = loss_and_delta(ds.objective, logits, batch);
        let back = net.backward(tape, delta_out);
        let mut grads = back.grads;
        let sq: Vec<Tensor<1>> = grads.iter().map(|g| g.clone().square().sum()).collect();
        let total_sq = Tensor::cat(sq.clone(), 0).sum();
        optim::clip(&mut grads, &total_sq, t.clip, t.clip_threshold);
        let weights_before: Vec<Tensor<2>> = if probing {
            back.layers.iter().map(|l| params[l.weight].clone()).collect()
        } else {
            Vec::new()
        };
        let updates = optim.step(&mut params, grads, probing);
        net.set_params(params.clone());

        // One read-back: loss, Σ‖g‖², [correct], ‖∂L/∂W‖² and ‖∂L/∂b‖² per layer, the other
        // per-layer sums when they are computed on the device, then ‖∂L/∂h_t‖².
        let mut scalars = vec![loss, total_sq];
        if probing {
            scalars.extend(correct);
            for layer in &back.layers {
                scalars.push(sq[layer.weight].clone());
                scalars.push(layer.bias.map_or_else(|| zero.clone(), |b| sq[b].clone()));
            }
            if !on_host {
                for (layer, w_before) in back.layers.iter().zip(&weights_before) {
                    scalars.extend(probe::device_sums(layer, w_before, &updates[layer.weight], &zero));
                }
            }
            scalars.extend(back.time.iter().cloned());
        }
        let values = Tensor::cat(scalars, 0).into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        let (loss_v, gsq) = (values[0] as f64, values[1] as f64);
        if !loss_v.is_finite() || !gsq.is_finite() {
            let end = End { status: Status::Diverged, steps_done: step, diverged_at: Some(step), error: None };
            return Ok((end, weights_bytes(&named_parameters(&net))));
        }
        if probing {
            let mut rest = &values[2..];
            let accuracy = classify.then(|| {
                let c = rest[0] as f64;
                rest = &rest[1..];
                c / batch.n as f64
            });
            let n_layers = back.layers.len();
            let (grad_sq, rest) = rest.split_at(2 * n_layers);
            let (device, time) = rest.split_at(if on_host { 0 } else { 6 * n_layers });
            let layers = back
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let sums = if on_host {
                        probe::host_sums(l, &weights_before[i], &updates[l.weight])
                    } else {
                        let d = &device[6 * i..6 * i + 6];
                        probe::LayerSums {
                            delta_sq: d[0] as f64,
                            weight_sq: d[1] as f64,
                            update_sq: d[2] as f64,
                            out_sum: d[3] as f64,
                            out_sq: d[4] as f64,
                            saturated: d[5] as f64,
                        }
                    };
                    let [rows, cols] = l.output.dims();
                    layer_probe(grad_sq[2 * i] as f64, grad_sq[2 * i + 1] as f64, &sums, (rows * cols) as f64)
                })
                .collect();
            let time = time.iter().map(|&v| (v as f64).sqrt()).collect();
            let test = if testing {
                test_batch.as_ref().map(|b| evaluate(&net, ds.objective, b)).transpose()?
            } else {
                None
            };
            let probe = Probe { step, loss: loss_v, accuracy, layers, time, test };
            push_line(rec.trace, &TraceLine::Probe(probe.clone()));
            rec.probes.push(probe.clone());
            (rec.sink)(Event::Probe { probe, wall_s: rec.start.elapsed().as_secs_f64() });
        }
    }
    let end = End { status: Status::Completed, steps_done: steps, diverged_at: None, error: None };
    Ok((end, weights_bytes(&named_parameters(&net))))
}

/// One layer's probe record from its squared gradient norms and sums over `numel` outputs.
fn layer_probe(grad_w_sq: f64, grad_b_sq: f64, s: &probe::LayerSums, numel: f64) -> LayerProbe {
    let weight = s.weight_sq.sqrt();
    let mean = s.out_sum / numel;
    LayerProbe {
        delta: s.delta_sq.sqrt(),
        grad_w: grad_w_sq.sqrt(),
        grad_b: grad_b_sq.sqrt(),
        weight,
        update_ratio: if weight > 0.0 { s.update_sq.sqrt() / weight } else { 0.0 },
        act_mean: mean,
        act_std: (s.out_sq / numel - mean * mean).max(0.0).sqrt(),
        saturation: s.saturated / numel,
    }
}

fn evaluate<N: Network>(net: &N, obj: Objective, b: &Batch) -> Result<TestMetrics, String> {
    let (loss, _, correct) = loss_and_delta(obj, net.forward(b.x.clone()), b);
    let mut parts = vec![loss];
    parts.extend(correct);
    let v = Tensor::cat(parts, 0).into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
    Ok(TestMetrics { loss: v[0] as f64, accuracy: v.get(1).map(|&c| c as f64 / b.n as f64) })
}
