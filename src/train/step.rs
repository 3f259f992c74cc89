//! One optimisation step behind one trait: the op-by-op tensor step any `Network` takes,
//! and (in `fused`) the MLP's fused host step. The training loop only sees `StepStats`.

use super::optim::{self, Optim};
use super::probe::{self, LayerSums};
use super::runner::{Batch, evaluate, loss_and_delta};
use super::{TestMetrics, TrainError, weights_bytes};
use crate::data::Objective;
use crate::experiment::TrainSection;
use crate::models::ops::PortableOps;
use crate::models::{Network, named_parameters};
use burn::tensor::{Device, Tensor};

/// What one step reports: always the loss and Σ‖g‖² (divergence is judged from them); on
/// probe steps also the correct count and every layer's statistics.
pub struct StepStats {
    pub loss: f64,
    /// Σ‖∂L/∂θ‖² over every parameter, before clipping.
    pub grad_sq: f64,
    /// Correct predictions in the batch (classification, probe steps).
    pub correct: Option<f64>,
    /// Input side first (probe steps; empty otherwise).
    pub layers: Vec<LayerStats>,
    /// ‖∂L/∂h_t‖² for t = 1..T (recurrent nets, probe steps).
    pub time: Vec<f64>,
    /// The history compressor (probe steps).
    pub levels: Option<LevelStats>,
}

/// The history compressor's own numbers on a probe step.
pub struct LevelStats {
    /// Inputs passed up, summed over the batch.
    pub passed: f64,
    pub predict_loss: f64,
    /// The lower level's ‖∂L/∂h_t‖² per step.
    pub low_time: Vec<f64>,
    /// Collapsing: the error at reproducing the upper state, and the examples (of the batch)
    /// whose answer the reproduction gives.
    pub collapse: Option<(f64, f64)>,
}

/// One layer's squared norms and sums on a probe step.
pub struct LayerStats {
    pub grad_w_sq: f64,
    pub grad_b_sq: f64,
    /// ‖∂L/∂h_skip‖² where a residual block ends.
    pub skip_sq: Option<f64>,
    pub sums: LayerSums,
    /// Elements of the layer's output (batch × units), the denominator of its means.
    pub numel: f64,
}

/// A trainer the loop drives one step at a time.
pub trait Stepper {
    /// Probed layer labels, input side first.
    fn layer_names(&self) -> Vec<String>;
    /// Forward, backward, clip and update on `batch`; the probes' sums when `probing`.
    fn step(&mut self, batch: &Batch, probing: bool) -> Result<StepStats, TrainError>;
    /// Loss and accuracy of the current parameters on `batch`, without training.
    fn evaluate(&self, batch: &Batch) -> Result<TestMetrics, TrainError>;
    /// The current parameters in the canonical weights layout.
    fn weights(&self) -> Vec<u8>;
}

/// Any `Network` stepped with Burn tensor ops (any device). On the CPU device the probe
/// sums are taken from host memory (blocked sums on the `cpu` engine, f64 ones on `flex`);
/// elsewhere they stay on the device and the whole step reads back once.
pub struct TensorStep<N: Network> {
    net: N,
    params: Vec<Tensor<2>>,
    optim: Optim,
    objective: Objective,
    clip: (crate::experiment::Clip, f64),
    /// Stands in for statistics a layer lacks (no bias, no saturation notion).
    zero: Tensor<1>,
    on_host: bool,
    /// The `cpu` engine: blocked probe sums (`probe::fast_host_sums`).
    fast_sums: bool,
}

impl<N: Network> TensorStep<N> {
    pub fn new(
        net: N,
        train: &TrainSection,
        objective: Objective,
        device: &Device,
        fast_sums: bool,
    ) -> Self {
        let params = net.params();
        Self {
            optim: Optim::new(train, params.len()),
            net,
            params,
            objective,
            clip: (train.clip, train.clip_threshold),
            zero: Tensor::zeros([1], device),
            on_host: *device == Device::flex(),
            fast_sums,
        }
    }
}

#[cfg(test)]
impl<N: Network> TensorStep<N> {
    pub fn net(&self) -> &N {
        &self.net
    }
}

impl<N: Network> Stepper for TensorStep<N> {
    fn layer_names(&self) -> Vec<String> {
        self.net.layer_names()
    }

    fn step(&mut self, batch: &Batch, probing: bool) -> Result<StepStats, TrainError> {
        let (net, zero, on_host) = (&mut self.net, &self.zero, self.on_host);
        let (logits, tape) = net.forward_tape(batch.x.clone());
        let (loss, delta_out, correct) = loss_and_delta(self.objective, logits, batch);
        let back = net.backward(tape, delta_out);
        let mut grads = back.grads;
        let sq: Vec<Tensor<1>> = grads.iter().map(|g| g.clone().square().psum()).collect();
        let total_sq = Tensor::cat(sq.clone(), 0).psum();
        optim::clip(&mut grads, &total_sq, self.clip.0, self.clip.1);
        let weights_before: Vec<Tensor<2>> = if probing {
            back.layers
                .iter()
                .map(|l| self.params[l.weight].clone())
                .collect()
        } else {
            Vec::new()
        };
        let updates = self.optim.step(&mut self.params, grads, probing);
        net.set_params(self.params.clone());

        // One read-back: loss, Σ‖g‖², [correct], ‖∂L/∂W‖² and ‖∂L/∂b‖² per layer, the other
        // per-layer sums when they are computed on the device, then ‖∂L/∂h_t‖².
        let mut scalars = vec![loss, total_sq];
        if probing {
            scalars.extend(correct);
            for layer in &back.layers {
                scalars.push(sq[layer.weight].clone());
                scalars.push(layer.bias.map_or_else(|| zero.clone(), |b| sq[b].clone()));
                scalars.extend(layer.skip.as_ref().map(|g| g.clone().square().psum()));
            }
            if !on_host {
                for (layer, w_before) in back.layers.iter().zip(&weights_before) {
                    scalars.extend(probe::device_sums(
                        layer,
                        w_before,
                        &updates[layer.weight],
                        zero,
                    ));
                }
            }
            scalars.extend(back.time.iter().cloned());
            if let Some(l) = &back.levels {
                scalars.extend([l.passed.clone(), l.predict_loss.clone(), l.low_time.clone()]);
                if let Some((loss, agree)) = &l.collapse {
                    scalars.extend([loss.clone(), agree.clone()]);
                }
            }
        }
        let values = Tensor::cat(scalars, 0)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(TrainError::readback("the step's statistics"))?;
        let mut stats = StepStats {
            loss: values[0] as f64,
            grad_sq: values[1] as f64,
            correct: None,
            layers: Vec::new(),
            time: Vec::new(),
            levels: None,
        };
        if !probing || !stats.loss.is_finite() || !stats.grad_sq.is_finite() {
            return Ok(stats);
        }
        let mut rest = &values[2..];
        if !matches!(self.objective, Objective::Regress { .. }) {
            stats.correct = Some(rest[0] as f64);
            rest = &rest[1..];
        }
        // Per layer ‖∂L/∂W‖², ‖∂L/∂b‖² and, on a skip path, ‖∂L/∂h_skip‖².
        let mut grads_sq = Vec::with_capacity(back.layers.len());
        for layer in &back.layers {
            let skip = layer.skip.is_some().then(|| rest[2] as f64);
            grads_sq.push((rest[0] as f64, rest[1] as f64, skip));
            rest = &rest[if skip.is_some() { 3 } else { 2 }..];
        }
        let (device_part, time) = rest.split_at(if on_host { 0 } else { 6 * back.layers.len() });
        // The layers are consumed here so the host path can take their buffers without a
        // copy (flex hands over a uniquely owned buffer).
        let mut updates: Vec<Option<Tensor<2>>> = updates.into_iter().map(Some).collect();
        stats.layers = back
            .layers
            .into_iter()
            .zip(weights_before)
            .enumerate()
            .map(|(i, (l, w_before))| {
                let [rows, cols] = l.output.dims();
                let sums = if on_host {
                    let update = updates[l.weight].take().expect("one update per weight");
                    if self.fast_sums {
                        probe::fast_host_sums(l, w_before, update)
                    } else {
                        probe::host_sums(l, w_before, update)
                    }
                } else {
                    let d = &device_part[6 * i..6 * i + 6];
                    LayerSums {
                        delta_sq: d[0] as f64,
                        weight_sq: d[1] as f64,
                        update_sq: d[2] as f64,
                        out_sum: d[3] as f64,
                        out_sq: d[4] as f64,
                        saturated: d[5] as f64,
                    }
                };
                let (grad_w_sq, grad_b_sq, skip_sq) = grads_sq[i];
                LayerStats {
                    grad_w_sq,
                    grad_b_sq,
                    skip_sq,
                    sums,
                    numel: (rows * cols) as f64,
                }
            })
            .collect();
        let (time, levels) = match &back.levels {
            Some(l) => {
                // The time profile has as many values as the lower level's, T each, around
                // 2 scalars (4 when collapsing).
                let extra = if l.collapse.is_some() { 4 } else { 2 };
                let t_len = (time.len() - extra) / 2;
                let (time, rest) = time.split_at(t_len);
                let low = &rest[2..2 + t_len];
                let collapse = l.collapse.as_ref().map(|_| {
                    let c = &rest[2 + t_len..];
                    (c[0] as f64, c[1] as f64)
                });
                let stats = LevelStats {
                    passed: rest[0] as f64,
                    predict_loss: rest[1] as f64,
                    low_time: low.iter().map(|&v| v as f64).collect(),
                    collapse,
                };
                (time, Some(stats))
            }
            None => (time, None),
        };
        stats.time = time.iter().map(|&v| v as f64).collect();
        stats.levels = levels;
        Ok(stats)
    }

    fn evaluate(&self, batch: &Batch) -> Result<TestMetrics, TrainError> {
        evaluate(&self.net, self.objective, batch)
    }

    fn weights(&self) -> Vec<u8> {
        weights_bytes(&named_parameters(&self.net))
    }
}
