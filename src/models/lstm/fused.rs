//! The `cpu` engine's LSTM pass. Same cell and the same BPTT as the flex host path, laid
//! out for memory traffic rather than for the flex path's summation order:
//!
//! - buffers are time-major, `[T, B, ·]`, so a step's rows are one contiguous block;
//! - the input projection x_t·W_in and the bias are added in the cell pass (the flex path
//!   runs a k = features product over the whole sequence first, then reads it all back);
//! - ∂L/∂W_in, ∂L/∂b, ‖∂L/∂h_t‖² and ‖δ‖² accumulate in the backward cell pass, and the
//!   forget-gate saturation is counted in the forward one, instead of in passes of their own;
//! - ∂L/∂W_rec is one product over all steps and examples.
//!
//! Summation orders differ from the flex path, so results differ in the last bits; the
//! `cpu` engine is recorded as such. `tests::time_major_path_matches_the_flex_host_path`
//! holds the two together.

use super::{FORGET, GATES, Lstm, cell_backward, cell_forward};
use crate::models::activation::SIGMOID_SATURATED;
use crate::models::host::{self, View};
use crate::models::{Backward, LayerSignals, Saturation, kernels};
use crate::train::probe::fast_sum_sq;
use burn::tensor::Tensor;

/// What the time-major forward pass keeps.
pub struct FusedTape {
    /// Inputs `[T, B, features]`.
    x: Vec<f32>,
    /// Gate activations i, f, g, o, `[T, B, 4H]`.
    gates: Vec<f32>,
    /// c_t, tanh c_t and h_t, `[T, B, H]`.
    cs: Vec<f32>,
    tanh_cs: Vec<f32>,
    hs: Vec<f32>,
    /// Forget gates outside [0.03, 0.97].
    saturated: f64,
    /// The read-out rows, example-major `[B·out_steps, H]` as in the flex path.
    read_rows: Tensor<2>,
    pub(super) logits: Tensor<2>,
}

impl Lstm {
    pub(super) fn run_fused(&self, x: Tensor<2>) -> FusedTape {
        let device = x.device();
        let [b, _] = x.dims();
        let (t_len, h, d) = (self.steps, self.hidden(), self.features);
        let w4 = GATES * h;
        let (step_g, step_h) = (b * w4, b * h);
        // Rows arrive example-major (`[B, T·features]`); reorder them once, 6k values.
        let x_em = host::to_vec(x);
        let mut x = vec![0f32; t_len * b * d];
        for e in 0..b {
            for t in 0..t_len {
                x[(t * b + e) * d..][..d].copy_from_slice(&x_em[(e * t_len + t) * d..][..d]);
            }
        }
        let w_in = host::to_vec(self.w_in.clone());
        let bias = host::to_vec(self.bias.clone());
        // W_rec with zero columns up to a multiple of gemm's micro-kernel width: without
        // them the last columns of every step's product take gemm's slow edge kernel (on
        // 4H = 512: 85 GFLOP/s unpadded, 95 padded, measured on one core here).
        let wp = w4.next_multiple_of(GEMM_NR);
        let w_rec = host::to_vec(self.w_rec.clone());
        let mut w_rec_p = vec![0f32; h * wp];
        for (dst, src) in w_rec_p.chunks_exact_mut(wp).zip(w_rec.chunks_exact(w4)) {
            dst[..w4].copy_from_slice(src);
        }
        let mut z_rec = vec![0f32; b * wp];

        let mut gates = vec![0f32; t_len * step_g];
        let mut cs = vec![0f32; t_len * step_h];
        let mut tanh_cs = vec![0f32; t_len * step_h];
        let mut hs = vec![0f32; t_len * step_h];
        let zeros = vec![0f32; h];
        let (lo, hi) = (SIGMOID_SATURATED as f32, (1.0 - SIGMOID_SATURATED) as f32);
        let mut saturated = 0usize;
        for t in 0..t_len {
            let z_t = &mut gates[t * step_g..(t + 1) * step_g];
            let (hs_done, hs_now) = hs.split_at_mut(t * step_h);
            if t > 0 {
                let h_prev = View::rows(&hs_done[(t - 1) * step_h..], h);
                let w = View::rows(&w_rec_p, wp);
                host::gemm((b, wp, h), &mut z_rec, wp, false, h_prev, w);
            }
            let z_rec = &z_rec;
            let (cs_done, cs_now) = cs.split_at_mut(t * step_h);
            let tc_now = &mut tanh_cs[t * step_h..(t + 1) * step_h];
            saturated += kernels::simd(
                #[inline(always)]
                || {
                    let mut count = 0usize;
                    for e in 0..b {
                        let z = &mut z_t[e * w4..(e + 1) * w4];
                        let rec = (t > 0).then(|| &z_rec[e * wp..e * wp + w4]);
                        pre_activation(z, rec, &bias, &x[(t * b + e) * d..][..d], &w_in);
                        let (ifg, o) = z.split_at_mut(3 * h);
                        let (i_f, g) = ifg.split_at_mut(2 * h);
                        i_f.iter_mut().for_each(|v| *v = kernels::sigmoid_f32(*v));
                        g.iter_mut().for_each(|v| *v = kernels::tanh_f32(*v));
                        o.iter_mut().for_each(|v| *v = kernels::sigmoid_f32(*v));
                        let (i, f) = i_f.split_at(h);
                        count += f.iter().filter(|&&v| v < lo || v > hi).count();
                        let c_prev = if t > 0 {
                            &cs_done[(t - 1) * step_h + e * h..][..h]
                        } else {
                            &zeros[..]
                        };
                        let at = e * h..(e + 1) * h;
                        cell_forward(
                            [i, f, g, o],
                            c_prev,
                            &mut cs_now[at.clone()],
                            &mut tc_now[at.clone()],
                            &mut hs_now[at],
                        );
                    }
                    count
                },
            );
        }
        debug_assert_eq!(FORGET, 1, "the forget block is the second");
        let k = self.readout.out_steps;
        let mut read = Vec::with_capacity(b * k * h);
        for e in 0..b {
            for t in t_len - k..t_len {
                read.extend_from_slice(&hs[t * step_h + e * h..][..h]);
            }
        }
        let read_rows = host::tensor(read, [b * k, h], &device);
        let logits = self.readout.forward_rows(read_rows.clone(), b);
        FusedTape {
            x,
            gates,
            cs,
            tanh_cs,
            hs,
            saturated: saturated as f64,
            read_rows,
            logits,
        }
    }

    pub(super) fn backward_fused(&self, tape: FusedTape, delta_out: Tensor<2>) -> Backward {
        let FusedTape {
            x,
            gates,
            cs,
            tanh_cs,
            hs,
            saturated,
            read_rows,
            logits,
        } = tape;
        let device = logits.device();
        let (t_len, h, d) = (self.steps, self.hidden(), self.features);
        let w4 = GATES * h;
        let b = hs.len() / (t_len * h);
        let (step_g, step_h) = (b * w4, b * h);
        let k = self.readout.out_steps;
        let read = self.readout.backward_rows(read_rows, delta_out.clone(), b);
        let dh_read = host::to_vec(read.dh.clone());
        // W_recᵀ row-major once, so the per-step product packs contiguous rows.
        let w_rec_t = host::to_vec(self.w_rec.clone().transpose());

        let mut dz = vec![0f32; t_len * step_g];
        let mut dh = vec![0f32; step_h];
        let mut carry = vec![0f32; step_h];
        let mut time = vec![0f32; t_len];
        let mut g_bias = vec![0f32; w4];
        let mut g_w_in = vec![0f32; d * w4];
        let mut delta_sq = 0.0;
        let zeros = vec![0f32; h];
        for t in (0..t_len).rev() {
            let (dz_now, dz_later) = dz.split_at_mut((t + 1) * step_g);
            if t + 1 < t_len {
                let next = View::rows(&dz_later[..step_g], w4);
                host::gemm((b, h, w4), &mut dh, h, false, next, View::rows(&w_rec_t, h));
            }
            if t + k >= t_len {
                let slot = t + k - t_len;
                for e in 0..b {
                    let src = &dh_read[(e * k + slot) * h..][..h];
                    dh[e * h..(e + 1) * h]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(a, r)| *a += r);
                }
            }
            time[t] = fast_sum_sq(&dh) as f32;
            let dz_t = &mut dz_now[t * step_g..];
            let z_t = &gates[t * step_g..(t + 1) * step_g];
            kernels::simd(
                #[inline(always)]
                || {
                    for e in 0..b {
                        let z = &z_t[e * w4..(e + 1) * w4];
                        let (i, rest) = z.split_at(h);
                        let (f, rest) = rest.split_at(h);
                        let (g, o) = rest.split_at(h);
                        let row = &mut dz_t[e * w4..(e + 1) * w4];
                        let (dz_i, rest) = row.split_at_mut(h);
                        let (dz_f, rest) = rest.split_at_mut(h);
                        let (dz_g, dz_o) = rest.split_at_mut(h);
                        let at = t * step_h + e * h;
                        let c_prev = if t > 0 {
                            &cs[at - step_h..at - step_h + h]
                        } else {
                            &zeros
                        };
                        cell_backward(
                            [i, f, g, o],
                            c_prev,
                            &tanh_cs[at..at + h],
                            &dh[e * h..(e + 1) * h],
                            &mut carry[e * h..(e + 1) * h],
                            [dz_i, dz_f, dz_g, dz_o],
                        );
                        accumulate(&mut g_bias, &mut g_w_in, row, &x[(t * b + e) * d..][..d]);
                    }
                },
            );
            delta_sq += fast_sum_sq(&dz_t[..step_g]);
        }
        // ∂L/∂W_rec = Σ_{t≥2} h_{t−1}ᵀ·∂L/∂z_t: steps 1..T−1 of hs against 2..T of dz, one
        // product over every example and step (time-major rows line up).
        let mut g_w_rec = vec![0f32; h * w4];
        host::gemm(
            (h, w4, (t_len - 1) * b),
            &mut g_w_rec,
            w4,
            false,
            View::transposed(&hs[..(t_len - 1) * step_h], h),
            View::rows(&dz[step_g..], w4),
        );
        let rows = t_len * b;
        Backward {
            grads: vec![
                host::tensor(g_w_in, [d, w4], &device),
                host::tensor(g_w_rec, [h, w4], &device),
                host::tensor(g_bias, [1, w4], &device),
                read.weight,
                read.bias,
            ],
            layers: vec![
                LayerSignals {
                    delta: host::tensor(dz, [rows, w4], &device),
                    output: host::tensor(hs, [rows, h], &device),
                    saturated: Some(Saturation::Count(saturated)),
                    weight: 1,
                    bias: Some(2),
                    skip: None,
                    delta_sq: Some(delta_sq),
                },
                LayerSignals {
                    delta: delta_out,
                    output: logits,
                    saturated: None,
                    weight: 3,
                    bias: Some(4),
                    skip: None,
                    delta_sq: None,
                },
            ],
            time: vec![host::tensor(time, [t_len], &device)],
        }
    }
}

/// Columns of gemm's f32 micro-kernel tile on x86-64 (AVX2 + FMA: 16 rows × 6 columns).
const GEMM_NR: usize = 6;

/// z ← h_{t−1}·W_rec (`rec`, absent at t = 1) + b + x·W_in for one example's gate row.
#[inline(always)]
fn pre_activation(z: &mut [f32], rec: Option<&[f32]>, bias: &[f32], x: &[f32], w_in: &[f32]) {
    let n = z.len();
    match rec {
        Some(r) => {
            for ((zj, &rj), &bj) in z.iter_mut().zip(&r[..n]).zip(&bias[..n]) {
                *zj = rj + bj;
            }
        }
        None => z.copy_from_slice(&bias[..n]),
    }
    for (f, &xf) in x.iter().enumerate() {
        for (zj, &wj) in z.iter_mut().zip(&w_in[f * n..(f + 1) * n]) {
            *zj += xf * wj;
        }
    }
}

/// ∂L/∂b += δ and ∂L/∂W_in += xᵀ·δ for one example's gate-delta row.
#[inline(always)]
fn accumulate(g_bias: &mut [f32], g_w_in: &mut [f32], dz: &[f32], x: &[f32]) {
    let n = dz.len();
    for (a, &v) in g_bias[..n].iter_mut().zip(dz) {
        *a += v;
    }
    for (f, &xf) in x.iter().enumerate() {
        for (a, &v) in g_w_in[f * n..(f + 1) * n].iter_mut().zip(dz) {
            *a += xf * v;
        }
    }
}
