//! The element-wise passes of the fused MLP step, written as fixed-width loops the compiler
//! vectorises: bias + activation, activation derivative, column sums, and the parameter
//! update with the probes' sums (in `probe`'s blocked form) taken on the way.

use crate::engine::math::{gelu_derivative_f32, gelu_f32};
use crate::experiment::Activation;
use crate::models::kernels::{sigmoid_f32, simd, tanh_f32};
use crate::train::probe::{BLOCK, LANES, flush};

/// The activations every engine's fused step computes (GELU, through the portable engine's
/// erf, only on that engine).
pub fn supported(act: Activation) -> bool {
    !matches!(act, Activation::Gelu)
}

/// h ← GELU(h), in place.
pub fn gelu(h: &mut [f32]) {
    simd(
        #[inline(always)]
        || h.iter_mut().for_each(|x| *x = gelu_f32(*x)),
    )
}

/// g ← g ⊙ GELU′(z).
pub fn mul_gelu_derivative(g: &mut [f32], z: &[f32]) {
    simd(
        #[inline(always)]
        || {
            for (x, &z) in g.iter_mut().zip(z) {
                *x *= gelu_derivative_f32(z);
            }
        },
    )
}

/// How many values are below `limit` (as an f64 count).
pub fn count_below(v: &[f32], limit: f32) -> f64 {
    v.iter().filter(|&&x| x < limit).count() as f64
}

/// z ← φ(z + b) row by row, in place (`z` is `[rows, b.len()]`).
pub fn bias_activation(z: &mut [f32], bias: &[f32], act: Option<Activation>, slope: f32) {
    simd(
        #[inline(always)]
        || {
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
        },
    )
}

/// g ← g ⊙ φ′, with φ′ taken from the layer's output h = φ(z).
pub fn mul_derivative(g: &mut [f32], h: &[f32], act: Activation, slope: f32) {
    simd(
        #[inline(always)]
        || {
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
        },
    )
}

/// Σ over rows of a `[rows, cols]` matrix, summed in row order.
pub fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    simd(
        #[inline(always)]
        || {
            let mut out = vec![0f32; cols];
            for row in m.chunks_exact(cols) {
                for (o, &x) in out.iter_mut().zip(row) {
                    *o += x;
                }
            }
            out
        },
    )
}

/// w ← w − u with u = g·scale, in one pass. Returns (Σg², Σw_before², Σu²); the last two
/// only when `PROBE` (zero otherwise), the first only when `GRAD` (the caller may know it).
pub fn apply<const GRAD: bool, const PROBE: bool>(
    w: &mut [f32],
    g: &[f32],
    scale: f32,
) -> (f64, f64, f64) {
    simd(
        #[inline(always)]
        || {
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
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_sq(v: &[f32]) -> f64 {
        v.iter().map(|&x| x as f64 * x as f64).sum()
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
