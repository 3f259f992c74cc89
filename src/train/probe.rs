//! Per-layer probe statistics: the sums behind a `LayerProbe`, on the device or on the host.
//!
//! Each layer needs ‖δ‖², ‖W‖², ‖ΔW‖², Σh, Σh² and a saturation count. As tensor ops that is
//! about a dozen passes (and allocations) per layer; on Burn's CPU backend the tensors
//! already live in host memory, so one fused pass per tensor over borrowed buffers does the
//! same work several times faster. GPU backends keep the device-side path, where every sum
//! stays on the device and the step reads everything back in one transfer.

use crate::experiment::Activation;
use crate::models::activation::{GELU_SATURATED_Z, SIGMOID_SATURATED, TANH_SATURATED};
use crate::models::kernels::simd;
use crate::models::ops::PortableOps;
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
        Saturation::Count(n) => n,
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

// The `cpu` engine's sums. They accumulate in 16 f32 lanes over blocks of `BLOCK` elements,
// and each block's lanes are added into an f64 total: one vectorised pass with a relative
// error near 1e-7 (an f32 running sum over 65k squares would drift by ~1e-4; the f64 lanes
// above do not vectorise on baseline x86-64). Lanes and blocks are fixed, so the bits do not
// depend on the CPU. The `flex` engine keeps the f64 sums above, so its traces never change.

pub(crate) use crate::engine::sum::{BLOCK, LANES, flush, sum_sq as fast_sum_sq};

/// Σh, Σh² and the number of saturated (or dead) units of a layer output.
pub fn fast_output_sums(h: &[f32], act: Option<Activation>) -> (f64, f64, f64) {
    match act {
        Some(Activation::Tanh) => sums_counting(h, |x| x.abs() > TANH_SATURATED as f32),
        Some(Activation::Sigmoid) => sums_counting(h, |x| {
            x < SIGMOID_SATURATED as f32 || x > 1.0 - SIGMOID_SATURATED as f32
        }),
        // h ≤ 0 exactly where z ≤ 0, for ReLU and for a positive leaky slope.
        Some(Activation::Relu | Activation::LeakyRelu) => sums_counting(h, |x| x <= 0.0),
        _ => {
            let (s, q, _) = sums_counting(h, |_| false);
            (s, q, 0.0)
        }
    }
}

#[inline(always)]
fn sums_counting(h: &[f32], saturated: impl Fn(f32) -> bool) -> (f64, f64, f64) {
    simd(
        #[inline(always)]
        || {
            let (mut s, mut q, mut n) = (0.0, 0.0, 0.0);
            let (mut ls, mut lq, mut ln) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
            for block in h.chunks(BLOCK) {
                let chunks = block.chunks_exact(LANES);
                let rest = chunks.remainder();
                for c in chunks {
                    for k in 0..LANES {
                        let x = c[k];
                        ls[k] += x;
                        lq[k] += x * x;
                        ln[k] += if saturated(x) { 1.0 } else { 0.0 };
                    }
                }
                for (k, &x) in rest.iter().enumerate() {
                    ls[k] += x;
                    lq[k] += x * x;
                    ln[k] += if saturated(x) { 1.0 } else { 0.0 };
                }
                s += flush(&mut ls);
                q += flush(&mut lq);
                n += flush(&mut ln);
            }
            (s, q, n)
        },
    )
}

/// `host_sums` with the blocked sums (the `cpu` engine).
pub fn fast_host_sums(
    layer: LayerSignals,
    weight_before: Tensor<2>,
    update: Tensor<2>,
) -> LayerSums {
    let out = host(layer.output);
    // Tanh and sigmoid saturation is counted from the output in the pass that sums it.
    let (from_output, other) = match layer.saturated {
        Some(Saturation::Of {
            activation: a @ (Activation::Tanh | Activation::Sigmoid),
            ..
        }) => (Some(a), None),
        other => (None, other),
    };
    let (out_sum, out_sq, counted) = fast_output_sums(&out, from_output);
    let delta = host(layer.delta);
    let sums = LayerSums {
        delta_sq: layer.delta_sq.unwrap_or_else(|| fast_sum_sq(&delta)),
        weight_sq: fast_sum_sq(&host(weight_before)),
        update_sq: fast_sum_sq(&host(update)),
        out_sum,
        out_sq,
        saturated: other.map_or(counted, |s| saturated_count(s, &out)),
    };
    // The host paths' next step can reuse these buffers (`models::host::overwritten`).
    crate::models::host::recycle(delta);
    crate::models::host::recycle(out);
    sums
}

/// The same sums as 1-element device tensors, in `LayerSums` field order (GPU backends).
pub fn device_sums(
    layer: &LayerSignals,
    weight_before: &Tensor<2>,
    update: &Tensor<2>,
    zero: &Tensor<1>,
) -> [Tensor<1>; 6] {
    [
        layer.delta.clone().square().psum(),
        weight_before.clone().square().psum(),
        update.clone().square().psum(),
        layer.output.clone().psum(),
        layer.output.clone().square().psum(),
        match &layer.saturated {
            Some(Saturation::Count(n)) => zero.clone().add_scalar(*n),
            other => other
                .as_ref()
                .and_then(|s| s.mask(&layer.output))
                .map_or_else(|| zero.clone(), |m| m.psum()),
        },
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
                delta_sq: None,
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

    fn exact_sq(v: &[f32]) -> f64 {
        v.iter().map(|&x| x as f64 * x as f64).sum()
    }

    #[test]
    fn blocked_sums_match_f64_to_1e7() {
        // 65 541 values: many blocks plus a ragged tail.
        let v: Vec<f32> = (0..65_541)
            .map(|i| ((i as f32) * 0.013).sin() * 3.0)
            .collect();
        let (a, b) = (fast_sum_sq(&v), exact_sq(&v));
        assert!(((a - b) / b).abs() < 1e-6, "{a} vs {b}");
        let (s, q, n) = fast_output_sums(&v, Some(Activation::Relu));
        let s_exact: f64 = v.iter().map(|&x| x as f64).sum();
        assert!((s - s_exact).abs() < 1e-5 * v.len() as f64);
        assert!(((q - b) / b).abs() < 1e-6);
        assert_eq!(n, v.iter().filter(|&&x| x <= 0.0).count() as f64);
        assert_eq!(fast_sum_sq(&[3.0, 4.0]), 25.0);
    }

    #[test]
    fn sums_handle_remainders() {
        let v = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(sum_sq(&v), 55.0);
        assert_eq!(sum_and_sq(&v), (15.0, 55.0));
    }
}
