//! Per-layer probe statistics: the sums behind a `LayerProbe`, on the device or on the host.
//!
//! Each layer needs ‖δ‖², ‖W‖², ‖ΔW‖², Σh, Σh² and a saturation count. As tensor ops that is
//! about a dozen passes (and allocations) per layer; on Burn's CPU backend the tensors
//! already live in host memory, so one fused pass per tensor over borrowed buffers does the
//! same work several times faster. GPU backends keep the device-side path, where every sum
//! stays on the device and the step reads everything back in one transfer.

use crate::experiment::Activation;
use crate::models::activation::{GELU_SATURATED_Z, SIGMOID_SATURATED, TANH_SATURATED};
use crate::models::{LayerSignals, Saturation};
use burn::tensor::Tensor;

/// Sums of one layer, in `LayerProbe` order after the two gradient norms:
/// [‖W‖², ‖ΔW‖², Σh, Σh², saturated count], plus ‖δ‖² first.
pub struct LayerSums {
    pub delta_sq: f64,
    pub weight_sq: f64,
    pub update_sq: f64,
    pub out_sum: f64,
    pub out_sq: f64,
    pub saturated: f64,
}

fn host(t: Tensor<2>) -> Vec<f32> {
    // Zero-copy when the buffer is not shared (flex unwraps a unique Arc): callers hand
    // over their tensors rather than clones.
    t.into_data()
        .try_into_vec::<f32>()
        .expect("probed tensors are f32")
}

/// Σx² with four f64 lanes: f32 accumulation over 65k terms would lose ~1e-4 relative.
fn sum_sq(v: &[f32]) -> f64 {
    let mut acc = [0f64; 4];
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            acc[k] += c[k] as f64 * c[k] as f64;
        }
    }
    acc.iter().sum::<f64>() + rest.iter().map(|&x| x as f64 * x as f64).sum::<f64>()
}

/// Σx and Σx² in one pass.
fn sum_and_sq(v: &[f32]) -> (f64, f64) {
    let (mut s, mut q) = ([0f64; 4], [0f64; 4]);
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            let x = c[k] as f64;
            s[k] += x;
            q[k] += x * x;
        }
    }
    let (rs, rq) = rest.iter().fold((0.0, 0.0), |(a, b), &x| {
        (a + x as f64, b + x as f64 * x as f64)
    });
    (s.iter().sum::<f64>() + rs, q.iter().sum::<f64>() + rq)
}

fn count(v: &[f32], pred: impl Fn(f32) -> bool) -> f64 {
    v.iter().filter(|&&x| pred(x)).count() as f64
}

/// The saturation count of a layer, from its output (tanh, sigmoid) or pre-activation.
fn saturated_count(sat: Saturation, output: &[f32]) -> f64 {
    match sat {
        Saturation::Mask(m) => host(m).iter().map(|&x| x as f64).sum(),
        Saturation::Of { activation, z } => match activation {
            Activation::Tanh => count(output, |h| h.abs() > TANH_SATURATED as f32),
            Activation::Sigmoid => count(output, |h| {
                h < SIGMOID_SATURATED as f32 || h > 1.0 - SIGMOID_SATURATED as f32
            }),
            Activation::Relu | Activation::LeakyRelu => count(&host(z), |z| z <= 0.0),
            Activation::Gelu => count(&host(z), |z| z < GELU_SATURATED_Z as f32),
            Activation::Linear => 0.0,
        },
    }
}

/// The sums of one layer computed on the host (CPU backend).
pub fn host_sums(layer: LayerSignals, weight_before: Tensor<2>, update: Tensor<2>) -> LayerSums {
    let out = host(layer.output);
    let (out_sum, out_sq) = sum_and_sq(&out);
    LayerSums {
        delta_sq: sum_sq(&host(layer.delta)),
        weight_sq: sum_sq(&host(weight_before)),
        update_sq: sum_sq(&host(update)),
        out_sum,
        out_sq,
        saturated: layer.saturated.map_or(0.0, |s| saturated_count(s, &out)),
    }
}

/// The same sums as 1-element device tensors, in `LayerSums` field order (GPU backends).
pub fn device_sums(
    layer: &LayerSignals,
    weight_before: &Tensor<2>,
    update: &Tensor<2>,
    zero: &Tensor<1>,
) -> [Tensor<1>; 6] {
    [
        layer.delta.clone().square().sum(),
        weight_before.clone().square().sum(),
        update.clone().square().sum(),
        layer.output.clone().sum(),
        layer.output.clone().square().sum(),
        layer
            .saturated
            .as_ref()
            .and_then(|s| s.mask(&layer.output))
            .map_or_else(|| zero.clone(), |m| m.sum()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    /// The host path and the device path compute the same statistics for every activation.
    #[test]
    fn host_and_device_sums_agree() {
        let z: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) / 3.0).collect();
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Gelu,
            Activation::Linear,
        ] {
            let zt = t(z.clone(), [1, 37]);
            let output = crate::models::activation::forward(act, 0.01, zt.clone());
            let layer = || LayerSignals {
                delta: t(z.iter().map(|x| x * 0.1).collect(), [1, 37]),
                output: output.clone(),
                saturated: Some(Saturation::Of {
                    activation: act,
                    z: zt.clone(),
                }),
                weight: 0,
                bias: None,
                skip: None,
            };
            let w = t(vec![1.0, -2.0, 3.0, 0.5], [2, 2]);
            let u = t(vec![0.1, 0.0, -0.2, 0.0], [2, 2]);
            let h = host_sums(layer(), w.clone(), u.clone());
            let zero = Tensor::<1>::zeros([1], &Device::flex());
            let d: Vec<f64> = device_sums(&layer(), &w, &u, &zero)
                .into_iter()
                .map(|x| x.into_scalar::<f32>() as f64)
                .collect();
            let hv = [
                h.delta_sq,
                h.weight_sq,
                h.update_sq,
                h.out_sum,
                h.out_sq,
                h.saturated,
            ];
            for (k, (a, b)) in hv.iter().zip(&d).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{act:?} sum {k}: host {a} device {b}"
                );
            }
            assert!(
                h.saturated > 0.0 || act == Activation::Linear,
                "{act:?} saturates somewhere on [-6, 6]"
            );
        }
    }

    #[test]
    fn sums_handle_remainders() {
        let v = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(sum_sq(&v), 55.0);
        assert_eq!(sum_and_sq(&v), (15.0, 55.0));
    }
}
