//! The training loop: batches, forward, hand-derived backward, clipping, update, probes.
//!
//! Every step reads back from the device once: the loss and Σ‖g‖² (to detect divergence),
//! and on probe steps the per-layer statistics too, all concatenated into one tensor.

use super::events::*;
use super::optim::{self, Optim};
use super::{weights_bytes, Control, Outcome, RunEnv};
use crate::data::{self, Dataset, Objective, Split};
use crate::experiment::Experiment;
use crate::models::{activation, Mlp};
use crate::rng::Stream;
use burn::tensor::{activation::log_softmax, Device, Int, Tensor, TensorData};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Scalars read back per layer on a probe step.
const PER_LAYER: usize = 8;

/// Runs `exp` to its end on the calling thread, sending events to `sink`.
pub fn train(exp: &Experiment, env: RunEnv, control: &Control, sink: &mut dyn FnMut(Event)) -> Outcome {
    let start = Instant::now();
    let mut trace = Vec::new();
    let mut probes = Vec::new();
    let mut header = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        run(exp, env, control, sink, &mut trace, &mut probes, &mut header, start)
    }));
    let (end, weights) = match result {
        Ok(Ok(done)) => done,
        Ok(Err(message)) => (failed(message, probes.len()), Vec::new()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "training panicked".into());
            (failed(message, probes.len()), Vec::new())
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

fn failed(message: String, _steps: usize) -> End {
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

#[allow(clippy::too_many_arguments)]
fn run(
    exp: &Experiment,
    env: RunEnv,
    control: &Control,
    sink: &mut dyn FnMut(Event),
    trace: &mut Vec<u8>,
    probes: &mut Vec<Probe>,
    header_out: &mut Option<Header>,
    start: Instant,
) -> Result<(End, Vec<u8>), String> {
    let spec = exp.spec();
    let device = env.device.device()?;
    device.seed(exp.seed()); // the lab draws nothing from the backend, but keep it pinned
    let ds = data::build(&spec.data, exp.seed()).map_err(|e| e.to_string())?;
    let mut mlp = Mlp::new(&spec.model, ds.input_dim, ds.objective.output_dim(), exp.seed(), &device);
    let n_layers = mlp.layers.len();
    let objective = match ds.objective {
        Objective::Classify { .. } => "classify",
        Objective::Regress { .. } => "regress",
    };
    let header = header_for(exp, env, mlp.layer_names(), objective);
    push_line(trace, &TraceLine::Header(header.clone()));
    *header_out = Some(header.clone());
    sink(Event::Started(header));

    let t = &spec.train;
    let mut optim = Optim::new(t, 2 * n_layers);
    let mut batcher = Batcher::new(ds.train.n, t.batch_size, exp.seed());
    let full_batch = batcher.full().then(|| to_device(&ds.train, &ds, &device));
    let test_batch = (ds.test.n > 0).then(|| to_device(&ds.test, &ds, &device));
    let steps = t.steps;
    let (out_dim, classify) = (ds.objective.output_dim(), matches!(ds.objective, Objective::Classify { .. }));
    let _ = out_dim;

    for step in 0..steps {
        while control.is_paused() && !control.stop_requested() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if control.stop_requested() {
            return Ok((End { status: Status::Interrupted, steps_done: step, diverged_at: None, error: None }, final_weights(&mlp)));
        }
        let last = step + 1 == steps;
        let probing = step % spec.probe.every == 0 || last;
        let testing = test_batch.is_some()
            && (last || (spec.probe.test_every > 0 && step % spec.probe.test_every == 0))
            && probing;

        let sampled;
        let batch = match &full_batch {
            Some(b) => b,
            None => {
                let idx = batcher.next().to_vec();
                sampled = to_device(&ds.train.gather(&idx, ds.input_dim, out_dim), &ds, &device);
                &sampled
            }
        };
        let (logits, tape) = mlp.forward_tape(batch.x.clone());
        let (loss, delta_out, correct) = loss_and_delta(ds.objective, logits.clone(), batch);
        let grads = mlp.backward(&tape, delta_out);

        // Parameters and gradients as one flat list: w0, b0, w1, b1, … (biases as [1, d]).
        let mut flat_g: Vec<Tensor<2>> = Vec::with_capacity(2 * n_layers);
        for (gw, gb) in grads.weights.iter().zip(&grads.biases) {
            flat_g.push(gw.clone());
            flat_g.push(gb.clone().unsqueeze());
        }
        let sq: Vec<Tensor<1>> = flat_g.iter().map(|g| g.clone().square().sum()).collect();
        let total_sq = Tensor::cat(sq.clone(), 0).sum();
        optim::clip(&mut flat_g, &total_sq, t.clip, t.clip_threshold);
        let old_w: Vec<Tensor<2>> = mlp.layers.iter().map(|l| l.weight.clone()).collect();
        let mut flat_p: Vec<Tensor<2>> = Vec::with_capacity(2 * n_layers);
        for l in &mlp.layers {
            flat_p.push(l.weight.clone());
            flat_p.push(l.bias.clone().unsqueeze());
        }
        optim.step(&mut flat_p, flat_g);
        for (l, pair) in mlp.layers.iter_mut().zip(flat_p.chunks(2)) {
            l.weight = pair[0].clone();
            let d = pair[1].dims()[1];
            l.bias = pair[1].clone().reshape([d]);
        }

        // One read-back: loss, Σ‖g‖², [correct], then the per-layer scalars.
        let mut scalars = vec![loss, total_sq];
        if probing {
            if let Some(c) = correct {
                scalars.push(c);
            }
            for l in 0..n_layers {
                let out = if l + 1 == n_layers { tape.zs[l].clone() } else { tape.inputs[l + 1].clone() };
                let numel = out.dims()[0] * out.dims()[1];
                let sat = if l + 1 == n_layers {
                    None
                } else {
                    activation::saturated(mlp.activation, &tape.zs[l], &out)
                };
                scalars.push(grads.deltas[l].clone().square().sum());
                scalars.push(sq[2 * l].clone());
                scalars.push(sq[2 * l + 1].clone());
                scalars.push(old_w[l].clone().square().sum());
                scalars.push(mlp.layers[l].weight.clone().sub(old_w[l].clone()).square().sum());
                scalars.push(out.clone().sum().div_scalar(numel as f64));
                scalars.push(out.square().sum().div_scalar(numel as f64));
                scalars.push(match sat {
                    Some(mask) => mask.sum().div_scalar(numel as f64),
                    None => Tensor::zeros([1], &device),
                });
            }
        }
        let values = Tensor::cat(scalars, 0).into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        let (loss_v, gsq) = (values[0] as f64, values[1] as f64);
        if !loss_v.is_finite() || !gsq.is_finite() {
            return Ok((
                End { status: Status::Diverged, steps_done: step, diverged_at: Some(step), error: None },
                final_weights(&mlp),
            ));
        }
        if probing {
            let mut rest = &values[2..];
            let accuracy = if classify {
                let c = rest[0] as f64;
                rest = &rest[1..];
                Some(c / batch.n as f64)
            } else {
                None
            };
            let layers = rest
                .chunks(PER_LAYER)
                .map(|v| {
                    let v: Vec<f64> = v.iter().map(|&x| x as f64).collect();
                    let weight = v[3].sqrt();
                    LayerProbe {
                        delta: v[0].sqrt(),
                        grad_w: v[1].sqrt(),
                        grad_b: v[2].sqrt(),
                        weight,
                        update_ratio: if weight > 0.0 { v[4].sqrt() / weight } else { 0.0 },
                        act_mean: v[5],
                        act_std: (v[6] - v[5] * v[5]).max(0.0).sqrt(),
                        saturation: v[7],
                    }
                })
                .collect();
            let test = if testing { test_batch.as_ref().map(|b| evaluate(&mlp, ds.objective, b)).transpose()? } else { None };
            let probe = Probe { step, loss: loss_v, accuracy, layers, test };
            push_line(trace, &TraceLine::Probe(probe.clone()));
            probes.push(probe.clone());
            sink(Event::Probe { probe, wall_s: start.elapsed().as_secs_f64() });
        }
    }
    Ok((End { status: Status::Completed, steps_done: steps, diverged_at: None, error: None }, final_weights(&mlp)))
}

fn evaluate(mlp: &Mlp, obj: Objective, b: &Batch) -> Result<TestMetrics, String> {
    let (loss, _, correct) = loss_and_delta(obj, mlp.forward(b.x.clone()), b);
    let mut parts = vec![loss];
    parts.extend(correct);
    let v = Tensor::cat(parts, 0).into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
    Ok(TestMetrics { loss: v[0] as f64, accuracy: v.get(1).map(|&c| c as f64 / b.n as f64) })
}

fn final_weights(mlp: &Mlp) -> Vec<u8> {
    weights_bytes(&mlp.named_parameters())
}
