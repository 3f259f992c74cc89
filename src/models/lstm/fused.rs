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
//! Every whole-sequence buffer is fully written before it is read, so they come from the
//! recycled buffers of earlier steps (`host::overwritten`) instead of fresh zeroed memory.
//!
//! Summation orders differ from the flex path, so results differ in the last bits; the
//! `cpu` engine is recorded as such. `tests::time_major_path_matches_the_flex_host_path`
//! holds the two together.

use super::{FORGET, GATES, HostGrads, Lstm, cell_backward};
use crate::engine::sum::sum_sq as fast_sum_sq;
use crate::models::activation::SIGMOID_SATURATED;
use crate::models::host::{self, Engine, View};
use crate::models::{Backward, Saturation, kernels};
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
        let engine = self.host.expect("the fused pass runs on a host engine");
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

        let mut gates = host::overwritten(t_len * step_g);
        let mut cs = host::overwritten(t_len * step_h);
        let mut tanh_cs = host::overwritten(t_len * step_h);
        let mut hs = host::overwritten(t_len * step_h);
        let zeros = vec![0f32; h];
        let shared = FwdShared {
            engine,
            bias: &bias,
            w_in: &w_in,
            w_rec_p: &w_rec_p,
            zeros: &zeros,
            h,
            d,
            wp,
        };
        let mut saturated = 0usize;
        for t in 0..t_len {
            crate::cancel::checkpoint();
            let (hs_done, hs_now) = hs.split_at_mut(t * step_h);
            let (cs_done, cs_now) = cs.split_at_mut(t * step_h);
            let block = FwdBlock {
                h_prev: (t > 0).then(|| &hs_done[(t - 1) * step_h..]),
                z_rec: &mut z_rec,
                x: &x[t * b * d..(t + 1) * b * d],
                c_prev: (t > 0).then(|| &cs_done[(t - 1) * step_h..]),
                z: &mut gates[t * step_g..(t + 1) * step_g],
                c: cs_now,
                tc: &mut tanh_cs[t * step_h..(t + 1) * step_h],
                h_out: hs_now,
            };
            saturated += forward_block(&shared, block, b, engine.threads);
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
        let engine = self.host.expect("the fused pass runs on a host engine");
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
        let (t_len, h, d) = (self.steps, self.hidden(), self.features);
        let w4 = GATES * h;
        let b = hs.len() / (t_len * h);
        let (step_g, step_h) = (b * w4, b * h);
        let k = self.readout.out_steps;
        let read = self.readout.backward_rows(read_rows, delta_out.clone(), b);
        let dh_read = host::to_vec(read.dh.clone());
        // W_recᵀ row-major once, so the per-step product packs contiguous rows.
        let w_rec_t = host::to_vec(self.w_rec.clone().transpose());

        let mut dz = host::overwritten(t_len * step_g);
        let mut dh = vec![0f32; step_h];
        let mut carry = vec![0f32; step_h];
        let mut time = vec![0f32; t_len];
        let mut g_bias = vec![0f32; w4];
        let mut g_w_in = vec![0f32; d * w4];
        let mut delta_sq = 0.0;
        let zeros = vec![0f32; h];
        let shared = BwdShared {
            engine,
            w_rec_t: &w_rec_t,
            zeros: &zeros,
            h,
            read_rs: k * h,
        };
        for t in (0..t_len).rev() {
            crate::cancel::checkpoint();
            let (dz_now, dz_later) = dz.split_at_mut((t + 1) * step_g);
            let block = BwdBlock {
                dz_next: (t + 1 < t_len).then(|| &dz_later[..step_g]),
                read: (t + k >= t_len).then(|| &dh_read[(t + k - t_len) * h..]),
                dh: &mut dh,
                z: &gates[t * step_g..(t + 1) * step_g],
                c_prev: (t > 0).then(|| &cs[(t - 1) * step_h..t * step_h]),
                tc: &tanh_cs[t * step_h..(t + 1) * step_h],
                carry: &mut carry,
                dz: &mut dz_now[t * step_g..],
            };
            backward_block(&shared, block, b, engine.threads);
            time[t] = fast_sum_sq(&dh) as f32;
            let dz_t = &dz_now[t * step_g..];
            // In example order, whatever the thread count: the bits do not depend on it.
            kernels::simd(
                #[inline(always)]
                || {
                    for e in 0..b {
                        let row = &dz_t[e * w4..(e + 1) * w4];
                        accumulate(&mut g_bias, &mut g_w_in, row, &x[(t * b + e) * d..][..d]);
                    }
                },
            );
            delta_sq += fast_sum_sq(dz_t);
        }
        // ∂L/∂W_rec = Σ_{t≥2} h_{t−1}ᵀ·∂L/∂z_t: steps 1..T−1 of hs against 2..T of dz, one
        // product over every example and step (time-major rows line up).
        let mut g_w_rec = vec![0f32; h * w4];
        engine.product1(
            (h, w4, (t_len - 1) * b),
            &mut g_w_rec,
            w4,
            false,
            View::transposed(&hs[..(t_len - 1) * step_h], h),
            View::rows(&dz[step_g..], w4),
        );
        for spent in [gates, cs, tanh_cs] {
            host::recycle(spent);
        }
        self.host_backward(
            HostGrads {
                g_w_in,
                g_w_rec,
                g_bias,
                read,
                dz,
                hs,
                saturated: Saturation::Count(saturated),
                delta_sq: Some(delta_sq),
                time,
            },
            delta_out,
            logits,
        )
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

/// What every block of examples shares in a forward step.
struct FwdShared<'a> {
    bias: &'a [f32],
    w_in: &'a [f32],
    /// W_rec padded to `wp` columns.
    w_rec_p: &'a [f32],
    zeros: &'a [f32],
    h: usize,
    d: usize,
    wp: usize,
    engine: Engine,
}

/// One forward step over a block of examples: the same rows of every buffer.
struct FwdBlock<'a> {
    /// h_{t−1}, `[rows, H]`; `None` at t = 1.
    h_prev: Option<&'a [f32]>,
    /// Scratch for h_{t−1}·W_rec, `[rows, wp]`.
    z_rec: &'a mut [f32],
    /// x_t, `[rows, features]`.
    x: &'a [f32],
    /// c_{t−1}, `[rows, H]`; `None` at t = 1.
    c_prev: Option<&'a [f32]>,
    /// Gate activations of step t, `[rows, 4H]`.
    z: &'a mut [f32],
    c: &'a mut [f32],
    tc: &'a mut [f32],
    h_out: &'a mut [f32],
}

impl<'a> FwdBlock<'a> {
    /// The first `rows` examples and the rest.
    fn split(self, s: &FwdShared, rows: usize) -> (Self, Self) {
        let (h, w4) = (s.h, GATES * s.h);
        let (z_rec_a, z_rec_b) = self.z_rec.split_at_mut(rows * s.wp);
        let (x_a, x_b) = self.x.split_at(rows * s.d);
        let (z_a, z_b) = self.z.split_at_mut(rows * w4);
        let (c_a, c_b) = self.c.split_at_mut(rows * h);
        let (tc_a, tc_b) = self.tc.split_at_mut(rows * h);
        let (h_a, h_b) = self.h_out.split_at_mut(rows * h);
        let hp = self.h_prev.map(|v| v.split_at(rows * h));
        let cp = self.c_prev.map(|v| v.split_at(rows * h));
        (
            Self {
                h_prev: hp.map(|p| p.0),
                z_rec: z_rec_a,
                x: x_a,
                c_prev: cp.map(|p| p.0),
                z: z_a,
                c: c_a,
                tc: tc_a,
                h_out: h_a,
            },
            Self {
                h_prev: hp.map(|p| p.1),
                z_rec: z_rec_b,
                x: x_b,
                c_prev: cp.map(|p| p.1),
                z: z_b,
                c: c_b,
                tc: tc_b,
                h_out: h_b,
            },
        )
    }
}

/// Splits a step's examples among `threads` workers (halving recursively); each block
/// runs its own rows of the recurrent product and then its cell passes. Returns the
/// number of saturated forget gates (an exact count, whatever the split).
fn forward_block(s: &FwdShared, blk: FwdBlock, rows: usize, threads: usize) -> usize {
    if threads > 1 && rows > 1 {
        let half = rows / 2;
        let (a, b) = blk.split(s, half);
        let (na, nb) = rayon::join(
            || forward_block(s, a, half, threads / 2),
            || forward_block(s, b, rows - half, threads - threads / 2),
        );
        return na + nb;
    }
    let FwdBlock {
        h_prev,
        z_rec,
        x,
        c_prev,
        z,
        c,
        tc,
        h_out,
    } = blk;
    let (h, d, wp, w4) = (s.h, s.d, s.wp, GATES * s.h);
    if let Some(hp) = h_prev {
        let w = View::rows(s.w_rec_p, wp);
        s.engine
            .product1((rows, wp, h), z_rec, wp, false, View::rows(hp, h), w);
    }
    let (lo, hi) = (SIGMOID_SATURATED as f32, (1.0 - SIGMOID_SATURATED) as f32);
    kernels::simd(
        #[inline(always)]
        || {
            let mut count = 0usize;
            for e in 0..rows {
                let z = &mut z[e * w4..(e + 1) * w4];
                let rec = h_prev.is_some().then(|| &z_rec[e * wp..e * wp + w4]);
                pre_activation(z, rec, s.bias, &x[e * d..(e + 1) * d], s.w_in);
                let at = e * h..(e + 1) * h;
                count += gates_and_cell(
                    z,
                    c_prev.map_or(s.zeros, |c| &c[at.clone()]),
                    &mut c[at.clone()],
                    &mut tc[at.clone()],
                    &mut h_out[at],
                    (lo, hi),
                );
            }
            count
        },
    )
}

/// What every block of examples shares in a backward step.
struct BwdShared<'a> {
    /// W_recᵀ, row-major `[4H, H]`.
    w_rec_t: &'a [f32],
    zeros: &'a [f32],
    h: usize,
    /// Row stride of the read-out error (`out_steps · H`).
    read_rs: usize,
    engine: Engine,
}

/// One backward step over a block of examples.
struct BwdBlock<'a> {
    /// ∂L/∂z_{t+1}, `[rows, 4H]`; `None` at the last step.
    dz_next: Option<&'a [f32]>,
    /// The read-out's error at this step, row stride `read_rs`, if it reads this step.
    read: Option<&'a [f32]>,
    /// ∂L/∂h_t, `[rows, H]`, written here.
    dh: &'a mut [f32],
    /// Gate activations of step t, `[rows, 4H]`.
    z: &'a [f32],
    c_prev: Option<&'a [f32]>,
    tc: &'a [f32],
    /// ∂L/∂c carried from step t+1 to t.
    carry: &'a mut [f32],
    /// ∂L/∂z_t, `[rows, 4H]`, written here.
    dz: &'a mut [f32],
}

impl<'a> BwdBlock<'a> {
    fn split(self, s: &BwdShared, rows: usize) -> (Self, Self) {
        let (h, w4) = (s.h, GATES * s.h);
        let dn = self.dz_next.map(|v| v.split_at(rows * w4));
        let rd = self
            .read
            .map(|v| v.split_at((rows * s.read_rs).min(v.len())));
        let (dh_a, dh_b) = self.dh.split_at_mut(rows * h);
        let (z_a, z_b) = self.z.split_at(rows * w4);
        let cp = self.c_prev.map(|v| v.split_at(rows * h));
        let (tc_a, tc_b) = self.tc.split_at(rows * h);
        let (ca_a, ca_b) = self.carry.split_at_mut(rows * h);
        let (dz_a, dz_b) = self.dz.split_at_mut(rows * w4);
        (
            Self {
                dz_next: dn.map(|p| p.0),
                read: rd.map(|p| p.0),
                dh: dh_a,
                z: z_a,
                c_prev: cp.map(|p| p.0),
                tc: tc_a,
                carry: ca_a,
                dz: dz_a,
            },
            Self {
                dz_next: dn.map(|p| p.1),
                read: rd.map(|p| p.1),
                dh: dh_b,
                z: z_b,
                c_prev: cp.map(|p| p.1),
                tc: tc_b,
                carry: ca_b,
                dz: dz_b,
            },
        )
    }
}

/// ∂L/∂h_t = ∂L/∂z_{t+1}·W_recᵀ (+ the read-out's error), then the gate deltas, for a
/// block of examples split among `threads` workers like `forward_block`.
fn backward_block(s: &BwdShared, blk: BwdBlock, rows: usize, threads: usize) {
    if threads > 1 && rows > 1 {
        let half = rows / 2;
        let (a, b) = blk.split(s, half);
        rayon::join(
            || backward_block(s, a, half, threads / 2),
            || backward_block(s, b, rows - half, threads - threads / 2),
        );
        return;
    }
    let BwdBlock {
        dz_next,
        read,
        dh,
        z,
        c_prev,
        tc,
        carry,
        dz,
    } = blk;
    let (h, w4) = (s.h, GATES * s.h);
    if let Some(next) = dz_next {
        let w = View::rows(s.w_rec_t, h);
        s.engine
            .product1((rows, h, w4), dh, h, false, View::rows(next, w4), w);
    }
    if let Some(read) = read {
        for e in 0..rows {
            let src = &read[e * s.read_rs..][..h];
            dh[e * h..(e + 1) * h]
                .iter_mut()
                .zip(src)
                .for_each(|(a, r)| *a += r);
        }
    }
    kernels::simd(
        #[inline(always)]
        || {
            for e in 0..rows {
                let zr = &z[e * w4..(e + 1) * w4];
                let (i, rest) = zr.split_at(h);
                let (f, rest) = rest.split_at(h);
                let (g, o) = rest.split_at(h);
                let row = &mut dz[e * w4..(e + 1) * w4];
                let (dz_i, rest) = row.split_at_mut(h);
                let (dz_f, rest) = rest.split_at_mut(h);
                let (dz_g, dz_o) = rest.split_at_mut(h);
                let at = e * h..(e + 1) * h;
                cell_backward(
                    [i, f, g, o],
                    c_prev.map_or(s.zeros, |c| &c[at.clone()]),
                    &tc[at.clone()],
                    &dh[at.clone()],
                    &mut carry[at],
                    [dz_i, dz_f, dz_g, dz_o],
                );
            }
        },
    );
}

/// One example at one step, in one pass: the four gate activations from their
/// pre-activations (in place), c_t = f⊙c_{t−1} + i⊙g, tanh c_t and h_t = o⊙tanh c_t —
/// the arithmetic of the flex path's `cell_forward`, with its passes fused. Returns how many
/// forget gates lie outside [lo, hi].
#[inline(always)]
fn gates_and_cell(
    z: &mut [f32],
    c_prev: &[f32],
    c: &mut [f32],
    tanh_c: &mut [f32],
    h_t: &mut [f32],
    (lo, hi): (f32, f32),
) -> usize {
    let n = c.len();
    let (zi, rest) = z.split_at_mut(n);
    let (zf, rest) = rest.split_at_mut(n);
    let (zg, zo) = rest.split_at_mut(n);
    let (zi, zf, zg, zo) = (&mut zi[..n], &mut zf[..n], &mut zg[..n], &mut zo[..n]);
    let (c_prev, tanh_c, h_t) = (&c_prev[..n], &mut tanh_c[..n], &mut h_t[..n]);
    let mut count = 0u32;
    for j in 0..n {
        let i = kernels::sigmoid_f32(zi[j]);
        let f = kernels::sigmoid_f32(zf[j]);
        let g = kernels::tanh_f32(zg[j]);
        let o = kernels::sigmoid_f32(zo[j]);
        (zi[j], zf[j], zg[j], zo[j]) = (i, f, g, o);
        count += u32::from(f < lo || f > hi);
        let cj = f * c_prev[j] + i * g;
        c[j] = cj;
        let tc = kernels::tanh_f32(cj);
        tanh_c[j] = tc;
        h_t[j] = o * tc;
    }
    count as usize
}
