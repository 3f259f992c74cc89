//! The element-wise passes of the fused MLP step, written as fixed-width loops the compiler
//! vectorises: bias + activation, activation derivative, column sums, the parameter update,
//! and the probes' sums.
//!
//! Sums accumulate in 16 f32 lanes over blocks of `BLOCK` elements, and each block's lanes
//! are added into an f64 total: one vectorised pass, with a relative error near 1e-7 (an
//! f32 running sum over 65k squares would drift by ~1e-4; an f64 one does not vectorise on
//! baseline x86-64). Lanes and blocks are fixed, so the bits do not depend on the CPU.

use crate::experiment::Activation;
use crate::models::activation::{SIGMOID_SATURATED, TANH_SATURATED};
use crate::models::kernels::{sigmoid_f32, tanh_f32};

const LANES: usize = 16;
const BLOCK: usize = 1024;

/// Adds 16 lanes into f64, in lane order.
#[inline(always)]
fn flush(lanes: &mut [f32; LANES]) -> f64 {
    let s = lanes.iter().map(|&x| x as f64).sum();
    *lanes = [0.0; LANES];
    s
}

/// Σx².
pub fn sum_sq(v: &[f32]) -> f64 {
    let mut total = 0.0;
    let mut lanes = [0f32; LANES];
    for block in v.chunks(BLOCK) {
        let chunks = block.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for k in 0..LANES {
                lanes[k] += c[k] * c[k];
            }
        }
        for (k, &x) in rest.iter().enumerate() {
            lanes[k] += x * x;
        }
        total += flush(&mut lanes);
    }
    total
}

/// Σh, Σh² and the number of saturated (or dead) units of a layer output.
pub fn output_sums(h: &[f32], act: Option<Activation>) -> (f64, f64, f64) {
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
}

/// The activations the fused step computes itself (GELU needs erf: it takes the tensor path).
pub fn supported(act: Activation) -> bool {
    !matches!(act, Activation::Gelu)
}

/// z ← φ(z + b) row by row, in place (`z` is `[rows, b.len()]`).
pub fn bias_activation(z: &mut [f32], bias: &[f32], act: Option<Activation>, slope: f32) {
    macro_rules! rows {
        ($f:expr) => {
            for row in z.chunks_exact_mut(bias.len()) {
                for (x, &b) in row.iter_mut().zip(bias) {
                    *x = $f(*x + b);
                }
            }
        };
    }
    match act {
        Some(Activation::Tanh) => rows!(tanh_f32),
        Some(Activation::Sigmoid) => rows!(sigmoid_f32),
        // Comparisons written so NaN passes through (divergence must stay visible).
        Some(Activation::Relu) => rows!(|x: f32| if x <= 0.0 { 0.0 } else { x }),
        Some(Activation::LeakyRelu) => rows!(|x: f32| if x <= 0.0 { slope * x } else { x }),
        Some(Activation::Gelu) => unreachable!("GELU MLPs take the tensor path"),
        Some(Activation::Linear) | None => rows!(|x: f32| x),
    }
}

/// g ← g ⊙ φ′, with φ′ taken from the layer's output h = φ(z).
pub fn mul_derivative(g: &mut [f32], h: &[f32], act: Activation, slope: f32) {
    macro_rules! each {
        ($f:expr) => {
            for (x, &h) in g.iter_mut().zip(h) {
                *x *= $f(h);
            }
        };
    }
    match act {
        Activation::Tanh => each!(|h: f32| 1.0 - h * h),
        Activation::Sigmoid => each!(|h: f32| h * (1.0 - h)),
        Activation::Relu => each!(|h: f32| if h > 0.0 { 1.0 } else { 0.0 }),
        Activation::LeakyRelu => each!(|h: f32| if h > 0.0 { 1.0 } else { slope }),
        Activation::Gelu => unreachable!("GELU MLPs take the tensor path"),
        Activation::Linear => {}
    }
}

/// Σ over rows of a `[rows, cols]` matrix, summed in row order.
pub fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; cols];
    for row in m.chunks_exact(cols) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o += x;
        }
    }
    out
}

/// w ← w − u with u = g·scale, in one pass. Returns (Σg², Σw_before², Σu²); the last two
/// only when `PROBE` (zero otherwise), the first only when `GRAD` (the caller may know it).
pub fn apply<const GRAD: bool, const PROBE: bool>(
    w: &mut [f32],
    g: &[f32],
    scale: f32,
) -> (f64, f64, f64) {
    debug_assert_eq!(w.len(), g.len());
    let (mut gs, mut ws, mut us) = (0.0, 0.0, 0.0);
    let (mut lg, mut lw, mut lu) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
    for (wb, gb) in w.chunks_mut(BLOCK).zip(g.chunks(BLOCK)) {
        let mut wc = wb.chunks_exact_mut(LANES);
        let mut gc = gb.chunks_exact(LANES);
        for (wv, gv) in (&mut wc).zip(&mut gc) {
            for k in 0..LANES {
                let u = gv[k] * scale;
                if GRAD {
                    lg[k] += gv[k] * gv[k];
                }
                if PROBE {
                    lw[k] += wv[k] * wv[k];
                    lu[k] += u * u;
                }
                wv[k] -= u;
            }
        }
        for (k, (wv, &gv)) in wc
            .into_remainder()
            .iter_mut()
            .zip(gc.remainder())
            .enumerate()
        {
            let u = gv * scale;
            if GRAD {
                lg[k] += gv * gv;
            }
            if PROBE {
                lw[k] += *wv * *wv;
                lu[k] += u * u;
            }
            *wv -= u;
        }
        gs += flush(&mut lg);
        ws += flush(&mut lw);
        us += flush(&mut lu);
    }
    (gs, ws, us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_sq(v: &[f32]) -> f64 {
        v.iter().map(|&x| x as f64 * x as f64).sum()
    }

    #[test]
    fn blocked_sums_match_f64_to_1e7() {
        // 65 541 values: many blocks plus a ragged tail.
        let v: Vec<f32> = (0..65_541)
            .map(|i| ((i as f32) * 0.013).sin() * 3.0)
            .collect();
        let (a, b) = (sum_sq(&v), exact_sq(&v));
        assert!(((a - b) / b).abs() < 1e-6, "{a} vs {b}");
        let (s, q, n) = output_sums(&v, Some(Activation::Relu));
        let s_exact: f64 = v.iter().map(|&x| x as f64).sum();
        assert!((s - s_exact).abs() < 1e-5 * v.len() as f64);
        assert!(((q - b) / b).abs() < 1e-6);
        assert_eq!(n, v.iter().filter(|&&x| x <= 0.0).count() as f64);
        assert_eq!(sum_sq(&[3.0, 4.0]), 25.0);
    }

    #[test]
    fn apply_updates_and_sums() {
        let mut w: Vec<f32> = (0..100).map(|i| i as f32 * 0.1).collect();
        let before = w.clone();
        let g: Vec<f32> = (0..100).map(|i| 1.0 - i as f32 * 0.02).collect();
        let (gs, ws, us) = apply::<true, true>(&mut w, &g, 0.5);
        for i in 0..100 {
            assert_eq!(w[i], before[i] - g[i] * 0.5);
        }
        assert!((gs - exact_sq(&g)).abs() < 1e-4);
        assert!((ws - exact_sq(&before)).abs() < 1e-3);
        assert!((us - exact_sq(&g) * 0.25).abs() < 1e-4);
        let (gs, ws, us) = apply::<false, false>(&mut w, &g, 0.5);
        assert_eq!((gs, ws, us), (0.0, 0.0, 0.0));
    }

    #[test]
    fn activations_keep_nan_visible() {
        for act in [Activation::Relu, Activation::LeakyRelu, Activation::Tanh] {
            let mut z = vec![f32::NAN, -1.0];
            bias_activation(&mut z, &[0.0, 0.0], Some(act), 0.1);
            assert!(z[0].is_nan(), "{act:?}");
        }
        assert_eq!(column_sums(&[1.0, 2.0, 3.0, 4.0], 2), vec![4.0, 6.0]);
    }
}
