//! The `cpu` engine's MLP step: forward, loss, backward, clipping, update and every probe
//! sum over host buffers, with the `gemm` kernels flex itself calls for the products.
//!
//! Why: on Burn's CPU backend a step of a deep MLP is a few dozen tensor ops per layer, and
//! each allocates (flex copies every fresh buffer once more to align it), dispatches and
//! walks memory on its own. Here a layer is two or three products and one fused pass per
//! direction; the weights are updated in place right after their gradient is formed, while
//! it is still in cache; the probes' sums ride on passes that happen anyway. The results
//! differ from the `flex` path in the last bits (different summation orders), so this is a
//! separate engine, recorded as `cpu` in the ledger; `flex` keeps replaying old entries.
//! `tests::matches_the_tensor_step` holds the two paths together.

mod kernels;
mod loss;
mod optim;

use super::probe::{self, LayerSums};
use super::runner::{Batch, evaluate};
use super::step::{LayerStats, StepStats, Stepper};
use super::weights_bytes;
use super::{TestMetrics, TrainError};
use crate::data::Objective;
use crate::experiment::{Activation, TrainSection};
use crate::models::activation::GELU_SATURATED_Z;
use crate::models::host::{self, Engine, View};
use crate::models::mlp::Dense;
use crate::models::{Mlp, Network, named_parameters};
use optim::{Clip, HostOptim, UpdateSums};

/// Whether `mlp` can take the fused step on `engine`: every activation on the portable
/// engine; all but GELU on `cpu` (whose GELU entries were made by the tensor step and must
/// keep replaying there).
pub fn supports(mlp: &Mlp, engine: Engine) -> bool {
    kernels::supported(mlp.activation) || engine.portable
}

/// An MLP trained by the fused host step.
pub struct FusedMlp {
    net: Mlp,
    optim: HostOptim,
    objective: Objective,
    clip: (crate::experiment::Clip, f64),
    engine: Engine,
}

/// One layer's parameters as host buffers during a step.
struct HostDense {
    w: Vec<f32>,
    b: Vec<f32>,
    fan_in: usize,
    fan_out: usize,
}

impl FusedMlp {
    pub fn new(net: Mlp, train: &TrainSection, objective: Objective, engine: Engine) -> Self {
        Self {
            optim: HostOptim::new(train, 2 * net.layers.len()),
            net,
            objective,
            clip: (train.clip, train.clip_threshold),
            engine,
        }
    }

    /// Moves the parameters out of their tensors (no copy: the tensors are not shared).
    fn take_layers(&mut self) -> Vec<HostDense> {
        std::mem::take(&mut self.net.layers)
            .into_iter()
            .map(|d| {
                let [fan_in, fan_out] = d.weight.dims();
                HostDense {
                    w: host::to_vec(d.weight),
                    b: host::to_vec(d.bias),
                    fan_in,
                    fan_out,
                }
            })
            .collect()
    }

    fn put_layers(&mut self, layers: Vec<HostDense>) {
        let device = burn::tensor::Device::flex();
        self.net.layers = layers
            .into_iter()
            .map(|l| Dense {
                weight: host::tensor(l.w, [l.fan_in, l.fan_out], &device),
                bias: host::tensor(l.b, [1, l.fan_out], &device),
            })
            .collect();
    }
}

/// φ(input·W + b) for `n` rows (no activation on the output layer: `act` is `None`), and
/// for GELU the pre-activation too (its derivative and saturation are read from z, not h).
fn layer_forward(
    engine: Engine,
    layer: &HostDense,
    input: &[f32],
    n: usize,
    act: Option<Activation>,
    slope: f32,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (fi, fo) = (layer.fan_in, layer.fan_out);
    let mut z = host::overwritten(n * fo);
    engine.product(
        (n, fo, fi),
        &mut z,
        fo,
        false,
        View::rows(input, fi),
        View::rows(&layer.w, fo),
    );
    if act == Some(Activation::Gelu) {
        kernels::bias_activation(&mut z, &layer.b, None, slope);
        let mut pre = host::overwritten(z.len());
        pre.copy_from_slice(&z);
        kernels::gelu(&mut z);
        return (z, Some(pre));
    }
    kernels::bias_activation(&mut z, &layer.b, act, slope);
    (z, None)
}

/// Scores an MLP's flat parameter vectors on host buffers: the gradient-free search's fitness
/// (and test metrics) on the portable engine, with the step's own forward and loss.
pub struct HostScorer {
    engine: Engine,
    act: Activation,
    slope: f32,
    objective: Objective,
    /// (fan_in, fan_out) of each layer; the flat vector holds W then b for each.
    layers: Vec<(usize, usize)>,
}

impl HostScorer {
    /// For `mlp` (its shapes and activation; its values are not read).
    pub fn new(mlp: &Mlp, objective: Objective, engine: Engine) -> Self {
        Self {
            engine,
            act: mlp.activation,
            slope: mlp.slope as f32,
            objective,
            layers: mlp
                .layers
                .iter()
                .map(|d| {
                    let [fi, fo] = d.weight.dims();
                    (fi, fo)
                })
                .collect(),
        }
    }

    /// The loss and the correct count (classification) of parameters `flat` on `batch`.
    pub fn score(&self, flat: &[f32], batch: &Batch) -> (f64, Option<f64>) {
        let mut at = 0;
        let mut h = host::to_vec(batch.x.clone());
        let depth = self.layers.len();
        for (l, &(fi, fo)) in self.layers.iter().enumerate() {
            let layer = HostDense {
                w: flat[at..at + fi * fo].to_vec(),
                b: flat[at + fi * fo..at + fi * fo + fo].to_vec(),
                fan_in: fi,
                fan_out: fo,
            };
            at += fi * fo + fo;
            let hidden = (l + 1 < depth).then_some(self.act);
            let (z, pre) = layer_forward(self.engine, &layer, &h, batch.n, hidden, self.slope);
            pre.into_iter().for_each(host::recycle);
            host::recycle(std::mem::replace(&mut h, z));
        }
        let y = host::to_vec(batch.y.clone());
        let out = loss::loss_and_delta(self.engine, self.objective, &h, &y, batch.n);
        host::recycle(h);
        (out.loss, out.correct)
    }

    /// Test-split metrics of parameters `flat`.
    pub fn metrics(&self, flat: &[f32], batch: &Batch) -> TestMetrics {
        let (loss, correct) = self.score(flat, batch);
        TestMetrics {
            loss,
            accuracy: correct.map(|c| c / (batch.n * self.objective.positions()) as f64),
        }
    }
}

impl Stepper for FusedMlp {
    fn layer_names(&self) -> Vec<String> {
        self.net.layer_names()
    }

    fn step(&mut self, batch: &Batch, probing: bool) -> Result<StepStats, TrainError> {
        let n = batch.n;
        let (act, slope) = (self.net.activation, self.net.slope as f32);
        let engine = self.engine;
        let mut layers = self.take_layers();
        let depth = layers.len();

        // Forward: acts[l] is the input of layer l (the batch, then each hidden output).
        // pres[l]: layer l's pre-activation, kept for GELU only.
        let mut acts: Vec<Vec<f32>> = Vec::with_capacity(depth);
        let mut pres: Vec<Option<Vec<f32>>> = Vec::with_capacity(depth);
        acts.push(host::to_vec(batch.x.clone()));
        let mut logits = Vec::new();
        for (l, layer) in layers.iter().enumerate() {
            let (z, pre) = layer_forward(
                engine,
                layer,
                &acts[l],
                n,
                (l + 1 < depth).then_some(act),
                slope,
            );
            pres.push(pre);
            if l + 1 < depth {
                acts.push(z);
            } else {
                logits = z;
            }
        }

        let y = host::to_vec(batch.y.clone());
        let out = loss::loss_and_delta(engine, self.objective, &logits, &y, n);

        // Backward, updating each layer as soon as its gradients exist — unless global-norm
        // clipping needs every gradient's norm first.
        self.optim.begin();
        let (clip_kind, threshold) = self.clip;
        let deferred = matches!(clip_kind, crate::experiment::Clip::GlobalNorm);
        let immediate = match clip_kind {
            crate::experiment::Clip::Value => Clip::Value(threshold as f32),
            _ => Clip::None,
        };
        let mut kept: Vec<(Vec<f32>, Vec<f32>, f64, f64)> = Vec::new();
        let mut sums = vec![(UpdateSums::default(), UpdateSums::default()); depth];
        let mut stats: Vec<Option<LayerStats>> = (0..depth).map(|_| None).collect();
        let mut delta = out.delta;
        for l in (0..depth).rev() {
            let (fi, fo) = (layers[l].fan_in, layers[l].fan_out);
            let mut gw = host::overwritten(fi * fo);
            let input_t = View::transposed(&acts[l], fi);
            engine.product(
                (fi, fo, n),
                &mut gw,
                fo,
                false,
                input_t,
                View::rows(&delta, fo),
            );
            let mut gb = kernels::column_sums(&delta, fo);
            let next = (l > 0).then(|| {
                let mut g = host::overwritten(n * fi);
                let w_t = View::transposed(&layers[l].w, fo);
                engine.product((n, fi, fo), &mut g, fi, false, View::rows(&delta, fo), w_t);
                match &pres[l - 1] {
                    Some(z) => kernels::mul_gelu_derivative(&mut g, z),
                    None => kernels::mul_derivative(&mut g, &acts[l], act, slope),
                }
                g
            });
            if probing {
                let output = if l + 1 < depth { &acts[l + 1] } else { &logits };
                let hidden = l + 1 < depth;
                let (out_sum, out_sq, mut saturated) =
                    probe::fast_output_sums(output, hidden.then_some(act));
                if let Some(z) = &pres[l] {
                    saturated = kernels::count_below(z, GELU_SATURATED_Z as f32);
                }
                stats[l] = Some(LayerStats {
                    grad_w_sq: 0.0,
                    grad_b_sq: 0.0,
                    skip_sq: None,
                    sums: LayerSums {
                        delta_sq: probe::fast_sum_sq(&delta),
                        weight_sq: 0.0,
                        update_sq: 0.0,
                        out_sum,
                        out_sq,
                        saturated,
                    },
                    numel: output.len() as f64,
                });
            }
            if deferred {
                let (sw, sb) = (probe::fast_sum_sq(&gw), probe::fast_sum_sq(&gb));
                kept.push((gw, gb, sw, sb));
            } else {
                let layer = &mut layers[l];
                let o = &mut self.optim;
                sums[l] = (
                    o.update(2 * l, &mut layer.w, &mut gw, None, immediate, probing),
                    o.update(2 * l + 1, &mut layer.b, &mut gb, None, immediate, probing),
                );
                host::recycle(gw);
            }
            if let Some(g) = next {
                host::recycle(std::mem::replace(&mut delta, g));
            }
        }
        if deferred {
            // g ← g · min(1, c / ‖g‖) over all parameters, as `train::optim::clip`.
            let total: f64 = kept.iter().map(|k| k.2 + k.3).sum();
            let scale = (threshold / total.sqrt().max(1e-30)).min(1.0) as f32;
            let clip = if scale < 1.0 {
                Clip::Scale(scale)
            } else {
                Clip::None
            };
            // `kept` runs output side first.
            for (l, (mut gw, mut gb, sw, sb)) in (0..depth).rev().zip(kept) {
                let layer = &mut layers[l];
                let o = &mut self.optim;
                sums[l] = (
                    o.update(2 * l, &mut layer.w, &mut gw, Some(sw), clip, probing),
                    o.update(2 * l + 1, &mut layer.b, &mut gb, Some(sb), clip, probing),
                );
                host::recycle(gw);
            }
        }
        // Every buffer of this step is spent; the next step overwrites them.
        acts.into_iter()
            .chain(pres.into_iter().flatten())
            .chain([delta])
            .for_each(host::recycle);
        self.put_layers(layers);

        let grad_sq = sums.iter().map(|(w, b)| w.grad_sq + b.grad_sq).sum();
        let layers = if probing {
            stats
                .into_iter()
                .zip(&sums)
                .map(|(s, (w, b))| {
                    let mut s = s.expect("every layer is probed");
                    s.grad_w_sq = w.grad_sq;
                    s.grad_b_sq = b.grad_sq;
                    s.sums.weight_sq = w.weight_sq;
                    s.sums.update_sq = w.update_sq;
                    s
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(StepStats {
            loss: out.loss,
            grad_sq,
            correct: if probing { out.correct } else { None },
            layers,
            time: Vec::new(),
            levels: None,
        })
    }

    fn evaluate(&self, batch: &Batch) -> Result<TestMetrics, TrainError> {
        if !self.engine.portable {
            // The `cpu` engine evaluates with Burn's ops, as it always has (its traces keep
            // their bits); the portable engine never leaves its own arithmetic.
            return evaluate(&self.net, self.objective, batch);
        }
        let flat: Vec<f32> = named_parameters(&self.net)
            .into_iter()
            .flat_map(|(_, _, v)| v)
            .collect();
        Ok(HostScorer::new(&self.net, self.objective, self.engine).metrics(&flat, batch))
    }

    fn weights(&self) -> Vec<u8> {
        weights_bytes(&named_parameters(&self.net))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use crate::experiment::Experiment;
    use crate::train::runner::to_device;
    use crate::train::step::TensorStep;
    use burn::tensor::Device;
    use std::path::Path;

    /// An MLP experiment on `task` with `extra` lines appended to `[model]`/`[train]`.
    fn exp(task: &str, model: &str, train: &str) -> Experiment {
        let batch = if train.contains("batch_size") {
            ""
        } else {
            "batch_size = 32\n"
        };
        let body = format!(
            "[experiment]\nname = \"t\"\nseed = 3\n[data]\ntask = \"{task}\"\ntrain_size = 96\ntest_size = 0\n\
             [model]\ndepth = 4\nwidth = 24\n{model}\n[train]\n{batch}steps = 4\n{train}\n"
        );
        Experiment::parse(&body, Path::new("t.toml")).expect("valid test config")
    }

    fn close(a: f64, b: f64, what: &str) {
        assert!(
            (a - b).abs() <= 2e-5 * (a.abs() + b.abs()) + 1e-9,
            "{what}: fused {a} vs tensor {b}"
        );
    }

    /// Steps the same network both ways on the same batches, on both engines; every reported
    /// statistic and every final weight must agree to float rounding.
    fn agree(e: &Experiment) {
        for portable in [false, true] {
            agree_on(
                e,
                Engine {
                    portable,
                    threads: 1,
                },
            );
        }
    }

    fn agree_on(e: &Experiment, engine: Engine) {
        let s = e.spec();
        let device = Device::flex();
        let ds = data::build(&s.data, e.seed()).unwrap();
        let make = || {
            Mlp::new(
                &s.model,
                ds.input_dim,
                ds.objective.output_dim(),
                7,
                &device,
            )
        };
        let mut fused = FusedMlp::new(make(), &s.train, ds.objective, engine);
        let mut tensor = TensorStep::new(make(), &s.train, ds.objective, &device, false);
        let split = ds.train.gather(
            &(0..32).collect::<Vec<_>>(),
            ds.input_dim,
            ds.objective.output_dim(),
        );
        let batch = to_device(&split, &ds, &device);
        for step in 0..s.train.steps {
            let probing = step != 1; // one unprobed step in between
            let (a, b) = (
                fused.step(&batch, probing).unwrap(),
                tensor.step(&batch, probing).unwrap(),
            );
            close(a.loss, b.loss, "loss");
            close(a.grad_sq, b.grad_sq, "Σ‖g‖²");
            assert_eq!(a.correct, b.correct, "correct");
            assert_eq!(a.layers.len(), if probing { b.layers.len() } else { 0 });
            for (i, (x, y)) in a.layers.iter().zip(&b.layers).enumerate() {
                let w = |q: &str| format!("step {step} layer {i} {q}");
                close(x.grad_w_sq, y.grad_w_sq, &w("‖∂W‖²"));
                close(x.grad_b_sq, y.grad_b_sq, &w("‖∂b‖²"));
                close(x.sums.delta_sq, y.sums.delta_sq, &w("‖δ‖²"));
                close(x.sums.weight_sq, y.sums.weight_sq, &w("‖W‖²"));
                close(x.sums.update_sq, y.sums.update_sq, &w("‖ΔW‖²"));
                close(x.sums.out_sq, y.sums.out_sq, &w("Σh²"));
                // Σh cancels: compare against the scale of its terms, √(n·Σh²).
                let scale = (x.numel * y.sums.out_sq).sqrt();
                assert!(
                    (x.sums.out_sum - y.sums.out_sum).abs() <= 2e-5 * scale,
                    "{}: {} vs {} (scale {scale})",
                    w("Σh"),
                    x.sums.out_sum,
                    y.sums.out_sum
                );
                assert_eq!(x.sums.saturated, y.sums.saturated, "{}", w("saturated"));
                assert_eq!(x.numel, y.numel);
            }
        }
        let (wa, wb) = (
            named_parameters(&fused.net),
            named_parameters(&tensor_net(&tensor)),
        );
        for ((name, _, a), (_, _, b)) in wa.iter().zip(&wb) {
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{name}: {x} vs {y}"
                );
            }
        }
    }

    fn tensor_net(t: &TensorStep<Mlp>) -> Mlp {
        t.net().clone()
    }

    #[test]
    fn matches_the_tensor_step() {
        agree(&exp(
            "spirals",
            "activation = \"tanh\"",
            "optimizer = \"sgd\"\nlearning_rate = 0.1",
        ));
        agree(&exp(
            "spirals",
            "activation = \"sigmoid\"",
            "optimizer = \"momentum\"\nclip = \"global-norm\"\nclip_threshold = 0.01",
        ));
        agree(&exp(
            "digits",
            "activation = \"relu\"\ninit = \"he\"",
            "optimizer = \"adam\"\nlearning_rate = 0.001\nclip = \"value\"\nclip_threshold = 0.001",
        ));
        agree(&exp(
            "spirals",
            "activation = \"leaky-relu\"",
            "optimizer = \"rmsprop\"\nlearning_rate = 0.001",
        ));
        agree(&exp(
            "parity",
            "activation = \"linear\"",
            "optimizer = \"rprop\"\nbatch_size = 96",
        ));
        agree(&exp(
            "teacher",
            "activation = \"tanh\"",
            "optimizer = \"sgd\"",
        ));
        // GELU is fused on the portable engine only (`cpu` keeps the tensor step for it).
        let gelu = exp(
            "digits",
            "activation = \"gelu\"",
            "optimizer = \"adam\"\nlearning_rate = 0.003",
        );
        agree_on(
            &gelu,
            Engine {
                portable: true,
                threads: 1,
            },
        );
    }

    /// The host scorer (search fitness, test metrics) agrees with the tensor path's evaluation.
    #[test]
    fn host_scores_match_the_tensor_evaluation() {
        for (task, act) in [("digits", "relu"), ("teacher", "gelu"), ("spirals", "tanh")] {
            let e = exp(task, &format!("activation = \"{act}\""), "");
            let s = e.spec();
            let device = Device::flex();
            let ds = data::build(&s.data, e.seed()).unwrap();
            let net = Mlp::new(
                &s.model,
                ds.input_dim,
                ds.objective.output_dim(),
                5,
                &device,
            );
            let batch = to_device(&ds.train, &ds, &device);
            let engine = Engine {
                portable: true,
                threads: 1,
            };
            let flat: Vec<f32> = named_parameters(&net)
                .into_iter()
                .flat_map(|(_, _, v)| v)
                .collect();
            let host = HostScorer::new(&net, ds.objective, engine).metrics(&flat, &batch);
            let tensor = evaluate(&net, ds.objective, &batch).unwrap();
            close(host.loss, tensor.loss, &format!("{task} {act} loss"));
            assert_eq!(host.accuracy, tensor.accuracy, "{task} {act}");
        }
    }

    /// The same run twice, and on two threads, gives the same bits (products large enough
    /// for gemm to split them across threads).
    #[test]
    fn bit_identical_across_runs_and_threads() {
        let e = exp("digits", "activation = \"tanh\"", "")
            .with_settings(&[
                ("data.train_size".into(), "128".into()),
                ("train.batch_size".into(), "128".into()),
                ("model.depth".into(), "2".into()),
                ("model.width".into(), "256".into()),
            ])
            .unwrap();
        let s = e.spec();
        let device = Device::flex();
        let ds = data::build(&s.data, e.seed()).unwrap();
        let batch = to_device(&ds.train, &ds, &device);
        let run = |portable, threads| {
            let net = Mlp::new(
                &s.model,
                ds.input_dim,
                ds.objective.output_dim(),
                1,
                &device,
            );
            let mut f = FusedMlp::new(net, &s.train, ds.objective, Engine { portable, threads });
            let losses: Vec<u64> = (0..3)
                .map(|_| f.step(&batch, true).unwrap().loss.to_bits())
                .collect();
            (losses, f.weights())
        };
        for portable in [false, true] {
            let one = run(portable, 1);
            assert_eq!(one, run(portable, 1));
            // A pool of its own: the global one is sized once per process (replay tests check it).
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            assert_eq!(one, pool.install(|| run(portable, 2)));
        }
    }
}
