//! Long short-term memory (Hochreiter & Schmidhuber 1997) with the forget gate of Gers,
//! Schmidhuber & Cummins 2000, read out from the last hidden state(s), with hand-derived
//! back-propagation through time.
//!
//! z_t = x_t·W_in + h_{t−1}·W_rec + b, split into gates i, f, g, o (in that order);
//! c_t = σ(f)⊙c_{t−1} + σ(i)⊙tanh(g), h_t = σ(o)⊙tanh(c_t). The cell path c_{t−1} → c_t is
//! multiplied only by the forget gate, so with a positive forget bias the error carried
//! back along it decays slowly instead of geometrically in ‖W_rec‖ — the constant error
//! carousel. `tests::bptt_matches_autodiff` holds the hand-written pass to Burn's autodiff.

use super::activation::SIGMOID_SATURATED;
use super::host::Engine;
use super::recurrent::{Readout, ReadoutGrads, as_rows, time_profile};
use super::{Backward, LayerSignals, Network, Saturation, host, init, kernels, matrix};
use crate::experiment::ModelSection;
use crate::models::ops::PortableMatrix;
use crate::rng::Stream;
use burn::tensor::{Device, Tensor};

mod fused;

/// Gate blocks in the columns of W_in, W_rec and b: input, forget, cell candidate, output.
const GATES: usize = 4;
const FORGET: usize = 1;

/// The network. Inputs arrive as rows of `steps × features` values, time-major.
#[derive(Debug, Clone)]
pub struct Lstm {
    /// `[features, 4·hidden]`.
    pub w_in: Tensor<2>,
    /// `[hidden, 4·hidden]`.
    pub w_rec: Tensor<2>,
    /// `[1, 4·hidden]`; the forget block starts at `model.forget_bias`.
    pub bias: Tensor<2>,
    pub readout: Readout,
    pub steps: usize,
    pub features: usize,
    /// The fused time-major host pass (`fused`) on the flex device, on this engine's products
    /// (its threads split each step's examples: the same bits for any count); `None` takes
    /// Burn's ops.
    pub host: Option<Engine>,
}

/// One step's gate activations and states.
struct Step {
    i: Tensor<2>,
    f: Tensor<2>,
    g: Tensor<2>,
    o: Tensor<2>,
    tanh_c: Tensor<2>,
}

/// What the forward pass keeps: the fused host-memory record on the flex device, the
/// per-step tensors elsewhere.
pub enum LstmTape {
    Host(HostTape),
    Fused(fused::FusedTape),
    Ops(OpsTape),
}

/// Burn-op path: the input, every step's gates, h_0 = 0, h_1..h_T, c_0 = 0, c_1..c_T.
pub struct OpsTape {
    x: Tensor<2>,
    steps: Vec<Step>,
    hs: Vec<Tensor<2>>,
    cs: Vec<Tensor<2>>,
    logits: Tensor<2>,
}

impl Lstm {
    /// Draws, in order, from the `init` stream: W_in (`model.init`), W_rec (four blocks,
    /// each `model.recurrent_init` scaled to `model.spectral_radius`), b (N(0, σ_b²), plus
    /// `model.forget_bias` on the forget block), W_out, b_out.
    pub fn new(
        m: &ModelSection,
        steps: usize,
        features: usize,
        output_dim: usize,
        out_steps: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = Stream::new(seed, "init");
        let h = m.width;
        let w_in = init::weights(m.init, features, GATES * h, m.sigma_w, &mut rng);
        let blocks: Vec<Vec<f32>> = (0..GATES)
            .map(|_| init::recurrent(m.recurrent_init, h, m.spectral_radius, &mut rng))
            .collect();
        // Side by side: row r of W_rec is row r of each block in turn.
        let w_rec: Vec<f32> = (0..h)
            .flat_map(|r| {
                blocks
                    .iter()
                    .flat_map(move |blk| blk[r * h..(r + 1) * h].iter().copied())
            })
            .collect();
        let mut bias = init::biases(GATES * h, m.sigma_b, &mut rng);
        for v in &mut bias[FORGET * h..(FORGET + 1) * h] {
            *v += m.forget_bias as f32;
        }
        Self {
            w_in: matrix(w_in, features, GATES * h, device),
            w_rec: matrix(w_rec, h, GATES * h, device),
            bias: matrix(bias, 1, GATES * h, device),
            readout: Readout::new(m, h, output_dim, out_steps, &mut rng, device),
            steps,
            features,
            host: None,
        }
    }

    fn hidden(&self) -> usize {
        self.w_rec.dims()[0]
    }

    fn run(&self, x: &Tensor<2>) -> (Vec<Step>, Vec<Tensor<2>>, Vec<Tensor<2>>, Tensor<2>) {
        let [b, _] = x.dims();
        let (t_len, h) = (self.steps, self.hidden());
        let xw = x
            .clone()
            .reshape([b * t_len, self.features])
            .pmatmul(self.w_in.clone())
            .add(self.bias.clone())
            .reshape([b, t_len * GATES * h]);
        let zero = Tensor::<2>::zeros([b, h], &x.device());
        let (mut hs, mut cs) = (vec![zero.clone()], vec![zero]);
        let mut steps = Vec::with_capacity(t_len);
        for t in 0..t_len {
            crate::cancel::checkpoint();
            let mut z = xw.clone().narrow(1, t * GATES * h, GATES * h);
            if t > 0 {
                z = z.add(hs[t].clone().pmatmul(self.w_rec.clone()));
            }
            let s = kernels::sigmoid(z.clone());
            let (i, f, o) = (
                s.clone().narrow(1, 0, h),
                s.clone().narrow(1, h, h),
                s.narrow(1, 3 * h, h),
            );
            let g = kernels::tanh(z.narrow(1, 2 * h, h));
            let c = if t > 0 {
                f.clone().mul(cs[t].clone()).add(i.clone().mul(g.clone()))
            } else {
                i.clone().mul(g.clone())
            };
            let tanh_c = kernels::tanh(c.clone());
            hs.push(o.clone().mul(tanh_c.clone()));
            cs.push(c);
            steps.push(Step { i, f, g, o, tanh_c });
        }
        let logits = self.readout.forward(&hs, b);
        (steps, hs, cs, logits)
    }
}

/// σ′ from σ's output.
fn dsigmoid(s: &Tensor<2>) -> Tensor<2> {
    s.clone().mul(s.clone().neg().add_scalar(1.0))
}

impl Network for Lstm {
    type Tape = LstmTape;

    fn layer_names(&self) -> Vec<String> {
        vec!["lstm".into(), "out".into()]
    }

    fn param_names(&self) -> Vec<String> {
        [
            "lstm.w_in",
            "lstm.w_rec",
            "lstm.bias",
            "out.weight",
            "out.bias",
        ]
        .map(String::from)
        .to_vec()
    }

    fn params(&self) -> Vec<Tensor<2>> {
        vec![
            self.w_in.clone(),
            self.w_rec.clone(),
            self.bias.clone(),
            self.readout.weight.clone(),
            self.readout.bias.clone(),
        ]
    }

    fn set_params(&mut self, params: Vec<Tensor<2>>) {
        let [w_in, w_rec, bias, w_out, b_out]: [Tensor<2>; 5] =
            params.try_into().expect("an lstm has five parameters");
        (self.w_in, self.w_rec, self.bias) = (w_in, w_rec, bias);
        (self.readout.weight, self.readout.bias) = (w_out, b_out);
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_tape(x).0
    }

    fn forward_tape(&self, x: Tensor<2>) -> (Tensor<2>, LstmTape) {
        if self.host.is_some() && host::is_host(&x.device()) {
            let tape = self.run_fused(x);
            (tape.logits.clone(), LstmTape::Fused(tape))
        } else if host::is_host(&x.device()) {
            let tape = self.run_host(x);
            (tape.logits.clone(), LstmTape::Host(tape))
        } else {
            let (steps, hs, cs, logits) = self.run(&x);
            let tape = OpsTape {
                x,
                steps,
                hs,
                cs,
                logits: logits.clone(),
            };
            (logits, LstmTape::Ops(tape))
        }
    }

    fn backward(&self, tape: LstmTape, delta_out: Tensor<2>) -> Backward {
        match tape {
            LstmTape::Host(tape) => self.backward_host(tape, delta_out),
            LstmTape::Fused(tape) => self.backward_fused(tape, delta_out),
            LstmTape::Ops(tape) => self.backward_ops(tape, delta_out),
        }
    }
}

impl Lstm {
    /// Per step, from the last: ∂L/∂h_t = (read-out error) + ∂L/∂z_{t+1}·W_recᵀ;
    /// ∂L/∂c_t = ∂L/∂h_t ⊙ o ⊙ (1 − tanh² c_t) + ∂L/∂c_{t+1} ⊙ f_{t+1}; then the gates.
    fn backward_ops(&self, tape: OpsTape, delta_out: Tensor<2>) -> Backward {
        let OpsTape {
            x,
            steps,
            hs,
            cs,
            logits,
        } = tape;
        let [b, _] = x.dims();
        let (t_len, h) = (self.steps, self.hidden());
        let read = self.readout.backward(&hs, delta_out.clone(), b);
        let w_rec_t = self.w_rec.clone().transpose();

        let mut dzs: Vec<Tensor<2>> = Vec::with_capacity(t_len);
        let mut dhs: Vec<Tensor<2>> = Vec::with_capacity(t_len);
        let mut dc_carry: Option<Tensor<2>> = None;
        for t in (1..=t_len).rev() {
            crate::cancel::checkpoint();
            let s = &steps[t - 1];
            let through_time = dzs
                .last()
                .map(|dz: &Tensor<2>| dz.clone().pmatmul(w_rec_t.clone()));
            let dh = read.error_at(t, t_len, through_time);
            let mut dc = dh
                .clone()
                .mul(s.o.clone())
                .mul(s.tanh_c.clone().square().neg().add_scalar(1.0));
            if let Some(carry) = dc_carry.take() {
                dc = dc.add(carry);
            }
            let dz_i = dc.clone().mul(s.g.clone()).mul(dsigmoid(&s.i));
            let dz_f = dc.clone().mul(cs[t - 1].clone()).mul(dsigmoid(&s.f));
            let dz_g = dc
                .clone()
                .mul(s.i.clone())
                .mul(s.g.clone().square().neg().add_scalar(1.0));
            let dz_o = dh.clone().mul(s.tanh_c.clone()).mul(dsigmoid(&s.o));
            dc_carry = Some(dc.mul(s.f.clone()));
            dzs.push(Tensor::cat(vec![dz_i, dz_f, dz_g, dz_o], 1));
            dhs.push(dh);
        }
        dzs.reverse();
        dhs.reverse();
        let dz_rows = as_rows(dzs, b, GATES * h);
        let x_rows = x.reshape([b * t_len, self.features]);
        let g_w_in = x_rows.pmatmul_tn(dz_rows.clone());
        let g_w_rec = as_rows(hs[..t_len].to_vec(), b, h).pmatmul_tn(dz_rows.clone());
        let g_bias = dz_rows.clone().psum_dim(0);
        let time = time_profile(dhs, b, h);
        let outputs = as_rows(hs[1..].to_vec(), b, h);
        // Forget gates near 0 (forgetting) or 1 (holding) count as saturated.
        let forget = as_rows(steps.iter().map(|s| s.f.clone()).collect(), b, h);
        let saturated = forget
            .clone()
            .lower_elem(SIGMOID_SATURATED)
            .float()
            .add(forget.greater_elem(1.0 - SIGMOID_SATURATED).float());
        Backward {
            grads: vec![g_w_in, g_w_rec, g_bias, read.weight, read.bias],
            layers: vec![
                LayerSignals {
                    delta: dz_rows,
                    output: outputs,
                    saturated: Some(Saturation::Mask(saturated)),
                    weight: 1,
                    bias: Some(2),
                    skip: None,
                    delta_sq: None,
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
            time: vec![time],
            levels: None,
        }
    }
}

/// c_t = f⊙c_{t−1} + i⊙g, tanh c_t and h_t = o⊙tanh c_t for one example at one step.
/// A function of its own so its slices arrive as non-aliasing arguments (kept as scoped
/// metadata when inlined): in the caller's own loop the compiler could not rule out overlap
/// among a dozen streams and left the loop scalar.
#[inline(always)]
fn cell_forward(
    [i, f, g, o]: [&[f32]; 4],
    c_prev: &[f32],
    c: &mut [f32],
    tanh_c: &mut [f32],
    h_t: &mut [f32],
) {
    let n = c.len();
    // Equal, visible lengths let the compiler drop bounds checks and vectorise.
    let (i, f, g, o, c_prev) = (&i[..n], &f[..n], &g[..n], &o[..n], &c_prev[..n]);
    let (tanh_c, h_t) = (&mut tanh_c[..n], &mut h_t[..n]);
    for j in 0..n {
        c[j] = f[j] * c_prev[j] + i[j] * g[j];
    }
    for j in 0..n {
        let tc = kernels::tanh_f32(c[j]);
        tanh_c[j] = tc;
        h_t[j] = o[j] * tc;
    }
}

/// The four gate deltas and the carried ∂L/∂c for one example at one step (non-aliasing
/// arguments for the same reason as `cell_forward`).
#[inline(always)]
fn cell_backward(
    [i, f, g, o]: [&[f32]; 4],
    c_prev: &[f32],
    tanh_c: &[f32],
    dh: &[f32],
    carry: &mut [f32],
    [dz_i, dz_f, dz_g, dz_o]: [&mut [f32]; 4],
) {
    let n = carry.len();
    let (i, f, g, o, c_prev) = (&i[..n], &f[..n], &g[..n], &o[..n], &c_prev[..n]);
    let (tc, dh) = (&tanh_c[..n], &dh[..n]);
    let (dz_i, dz_f, dz_g, dz_o) = (
        &mut dz_i[..n],
        &mut dz_f[..n],
        &mut dz_g[..n],
        &mut dz_o[..n],
    );
    for j in 0..n {
        let dc = dh[j] * o[j] * (1.0 - tc[j] * tc[j]) + carry[j];
        dz_i[j] = dc * g[j] * (i[j] * (1.0 - i[j]));
        dz_f[j] = dc * c_prev[j] * (f[j] * (1.0 - f[j]));
        dz_g[j] = dc * i[j] * (1.0 - g[j] * g[j]);
        dz_o[j] = dh[j] * tc[j] * (o[j] * (1.0 - o[j]));
        carry[j] = dc * f[j];
    }
}

/// Fused path (flex device): whole-sequence host buffers, example-major `[B, T, ·]` — the
/// row order of the probes' `[B·T, ·]` tensors, so they are built without reordering.
pub struct HostTape {
    /// The input rows `[B·T, features]`.
    x: Vec<f32>,
    /// Gate activations i, f, g, o per step, `[B, T, 4H]`.
    gates: Vec<f32>,
    /// c_1..c_T, `[B, T, H]`.
    cs: Vec<f32>,
    /// tanh c_1..c_T, `[B, T, H]`.
    tanh_cs: Vec<f32>,
    /// h_1..h_T, `[B, T, H]`.
    hs: Vec<f32>,
    /// The read-out rows (the last `out_steps` hidden states), `[B·out_steps, H]`.
    read_rows: Tensor<2>,
    logits: Tensor<2>,
}

impl Lstm {
    /// Forward on host buffers: one product for x·W_in over the whole sequence, then per
    /// step one product h_{t−1}·W_rec added in place into that step's gate rows and one pass
    /// that turns the four pre-activations into i, f, g, o, c_t, tanh c_t and h_t.
    fn run_host(&self, x: Tensor<2>) -> HostTape {
        let device = x.device();
        let [b, _] = x.dims();
        let (t_len, h, d) = (self.steps, self.hidden(), self.features);
        let w4 = GATES * h;
        let x = host::to_vec(x);
        let w_in = host::to_vec(self.w_in.clone());
        let w_rec = host::to_vec(self.w_rec.clone());
        let bias = host::to_vec(self.bias.clone());
        let rows = b * t_len;

        let mut gates: Vec<f32> = Vec::with_capacity(rows * w4);
        for _ in 0..rows {
            gates.extend_from_slice(&bias);
        }
        host::gemm(
            (rows, w4, d),
            &mut gates,
            w4,
            true,
            host::View::rows(&x, d),
            host::View::rows(&w_in, w4),
        );
        let mut cs = vec![0f32; rows * h];
        let mut tanh_cs = vec![0f32; rows * h];
        let mut hs = vec![0f32; rows * h];
        let (row_g, row_h) = (t_len * w4, t_len * h);
        let zeros = vec![0f32; h];
        for t in 0..t_len {
            crate::cancel::checkpoint();
            if t > 0 {
                host::gemm(
                    (b, w4, h),
                    &mut gates[t * w4..],
                    row_g,
                    true,
                    host::View {
                        data: &hs[(t - 1) * h..],
                        rs: row_h,
                        cs: 1,
                    },
                    host::View::rows(&w_rec, w4),
                );
            }
            kernels::simd(
                #[inline(always)]
                || {
                    for e in 0..b {
                        let z = &mut gates[e * row_g + t * w4..][..w4];
                        let (ifg, o) = z.split_at_mut(3 * h);
                        let (i_f, g) = ifg.split_at_mut(2 * h);
                        i_f.iter_mut().for_each(|v| *v = kernels::sigmoid_f32(*v));
                        g.iter_mut().for_each(|v| *v = kernels::tanh_f32(*v));
                        o.iter_mut().for_each(|v| *v = kernels::sigmoid_f32(*v));
                        let (i, f) = i_f.split_at(h);
                        let at = e * row_h + t * h;
                        let (before, now) = cs.split_at_mut(at);
                        let c_prev = if t > 0 {
                            &before[at - h..at]
                        } else {
                            &zeros[..]
                        };
                        cell_forward(
                            [i, f, g, o],
                            c_prev,
                            &mut now[..h],
                            &mut tanh_cs[at..at + h],
                            &mut hs[at..at + h],
                        );
                    }
                },
            );
        }
        let k = self.readout.out_steps;
        let read: Vec<f32> = (0..b)
            .flat_map(|e| {
                hs[e * row_h + (t_len - k) * h..(e + 1) * row_h]
                    .iter()
                    .copied()
            })
            .collect();
        let read_rows = host::tensor(read, [b * k, h], &device);
        let logits = self.readout.forward_rows(read_rows.clone(), b);
        HostTape {
            x,
            gates,
            cs,
            tanh_cs,
            hs,
            read_rows,
            logits,
        }
    }

    /// BPTT on host buffers: per step (from the last) one product ∂L/∂z_{t+1}·W_recᵀ for
    /// ∂L/∂h_t and one pass writing the four gate deltas straight into the `[B, T, 4H]`
    /// buffer; then the weight gradients as products over the whole sequence.
    fn backward_host(&self, tape: HostTape, delta_out: Tensor<2>) -> Backward {
        let HostTape {
            x,
            gates,
            cs,
            tanh_cs,
            hs,
            read_rows,
            logits,
        } = tape;
        let device = logits.device();
        let (t_len, h, d) = (self.steps, self.hidden(), self.features);
        let w4 = GATES * h;
        let b = hs.len() / (t_len * h);
        let rows = b * t_len;
        let (row_g, row_h) = (t_len * w4, t_len * h);
        let k = self.readout.out_steps;
        let read = self.readout.backward_rows(read_rows, delta_out.clone(), b);
        let dh_read = host::to_vec(read.dh.clone());
        // W_recᵀ row-major once, so the per-step product packs contiguous rows.
        let w_rec_t = host::to_vec(self.w_rec.clone().transpose());

        let mut dz = vec![0f32; rows * w4];
        let mut dh = vec![0f32; b * h];
        let mut dc_carry = vec![0f32; b * h];
        let mut time = vec![0f32; t_len];
        let zeros = vec![0f32; h];
        for t in (0..t_len).rev() {
            crate::cancel::checkpoint();
            if t + 1 < t_len {
                let (_, later) = dz.split_at((t + 1) * w4);
                host::gemm(
                    (b, h, w4),
                    &mut dh,
                    h,
                    false,
                    host::View {
                        data: later,
                        rs: row_g,
                        cs: 1,
                    },
                    host::View::rows(&w_rec_t, h),
                );
            }
            if t + k >= t_len {
                let slot = t + k - t_len;
                for e in 0..b {
                    let src = &dh_read[e * k * h + slot * h..][..h];
                    dh[e * h..(e + 1) * h]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(a, r)| *a += r);
                }
            }
            time[t] = dh.iter().map(|v| v * v).sum();
            kernels::simd(
                #[inline(always)]
                || {
                    for e in 0..b {
                        let at = e * row_h + t * h;
                        let z = &gates[e * row_g + t * w4..][..w4];
                        let (i, rest) = z.split_at(h);
                        let (f, rest) = rest.split_at(h);
                        let (g, o) = rest.split_at(h);
                        let dzr = &mut dz[e * row_g + t * w4..][..w4];
                        let (dz_i, rest) = dzr.split_at_mut(h);
                        let (dz_f, rest) = rest.split_at_mut(h);
                        let (dz_g, dz_o) = rest.split_at_mut(h);
                        let c_prev = if t > 0 { &cs[at - h..at] } else { &zeros[..] };
                        cell_backward(
                            [i, f, g, o],
                            c_prev,
                            &tanh_cs[at..at + h],
                            &dh[e * h..(e + 1) * h],
                            &mut dc_carry[e * h..(e + 1) * h],
                            [dz_i, dz_f, dz_g, dz_o],
                        );
                    }
                },
            );
        }

        // ∂L/∂W_in = Σ x_tᵀ·∂L/∂z_t over all rows at once.
        let mut g_w_in = vec![0f32; d * w4];
        host::gemm(
            (d, w4, rows),
            &mut g_w_in,
            w4,
            false,
            host::View::transposed(&x, d),
            host::View::rows(&dz, w4),
        );
        // ∂L/∂W_rec = Σ_{t≥2} h_{t−1}ᵀ·∂L/∂z_t: per example, h_1..h_{T−1} against steps 2..T.
        let mut g_w_rec = vec![0f32; h * w4];
        for e in 0..b {
            host::gemm(
                (h, w4, t_len - 1),
                &mut g_w_rec,
                w4,
                e > 0,
                host::View::transposed(&hs[e * row_h..(e + 1) * row_h], h),
                host::View::rows(&dz[e * row_g + w4..(e + 1) * row_g], w4),
            );
        }
        let mut g_bias = vec![0f32; w4];
        for r in dz.chunks_exact(w4) {
            g_bias.iter_mut().zip(r).for_each(|(a, v)| *a += v);
        }
        // Forget gates near 0 (forgetting) or 1 (holding) count as saturated.
        let (lo, hi) = (SIGMOID_SATURATED as f32, (1.0 - SIGMOID_SATURATED) as f32);
        let mut saturated: Vec<f32> = Vec::with_capacity(rows * h);
        for z in gates.chunks_exact(w4) {
            let forget = &z[FORGET * h..(FORGET + 1) * h];
            saturated.extend(
                forget
                    .iter()
                    .map(|&f| f32::from(u8::from(f < lo || f > hi))),
            );
        }
        let saturated = Saturation::Mask(host::tensor(saturated, [rows, h], &device));
        self.host_backward(
            HostGrads {
                g_w_in,
                g_w_rec,
                g_bias,
                read,
                dz,
                hs,
                saturated,
                delta_sq: None,
                time,
            },
            delta_out,
            logits,
        )
    }
}

/// What a host pass's BPTT produced, in host buffers (`dz` and `hs` as `[rows, ·]`).
struct HostGrads {
    g_w_in: Vec<f32>,
    g_w_rec: Vec<f32>,
    g_bias: Vec<f32>,
    read: ReadoutGrads,
    dz: Vec<f32>,
    hs: Vec<f32>,
    saturated: Saturation,
    delta_sq: Option<f64>,
    time: Vec<f32>,
}

impl Lstm {
    /// The `Backward` of a host pass: parameter gradients in `param_names` order, the lstm
    /// layer's and the read-out's signals, and the through-time profile.
    fn host_backward(&self, g: HostGrads, delta_out: Tensor<2>, logits: Tensor<2>) -> Backward {
        let device = logits.device();
        let (h, d, w4) = (self.hidden(), self.features, GATES * self.hidden());
        let rows = g.hs.len() / h;
        Backward {
            grads: vec![
                host::tensor(g.g_w_in, [d, w4], &device),
                host::tensor(g.g_w_rec, [h, w4], &device),
                host::tensor(g.g_bias, [1, w4], &device),
                g.read.weight,
                g.read.bias,
            ],
            layers: vec![
                LayerSignals {
                    delta: host::tensor(g.dz, [rows, w4], &device),
                    output: host::tensor(g.hs, [rows, h], &device),
                    saturated: Some(g.saturated),
                    weight: 1,
                    bias: Some(2),
                    skip: None,
                    delta_sq: g.delta_sq,
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
            time: vec![host::tensor(g.time, [self.steps], &device)],
            levels: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{Init, RecurrentInit};
    use crate::models::rnn::tests::{check_bptt, close, leaf, random};
    use burn::tensor::activation::sigmoid;

    /// Hand-derived BPTT agrees with autodiff: ∂L/∂z_t (all four gates) and ∂L/∂h_t at every
    /// step via zero leaves, and every parameter's gradient.
    #[test]
    fn bptt_matches_autodiff() {
        for (out_steps, kind) in [(1, RecurrentInit::Orthogonal), (2, RecurrentInit::Gaussian)] {
            let device = Device::flex();
            let hsz = 5;
            let m = ModelSection {
                width: hsz,
                init: Init::XavierNormal,
                sigma_b: 0.3,
                recurrent_init: kind,
                spectral_radius: 1.2,
                forget_bias: 0.7,
                ..ModelSection::default()
            };
            let (b, t_len, d, c) = (3, 6, 2, 3);
            let lstm = Lstm::new(&m, t_len, d, c * out_steps, out_steps, 8, &device);
            let x = random(b, t_len * d, 1, &device);
            let cotangent = random(b, c * out_steps, 2, &device);
            let (_, tape) = lstm.forward_tape(x.clone());
            let ours = lstm.backward(tape, cotangent.clone());

            let ad = device.clone().autodiff();
            let p: Vec<Tensor<2>> = lstm.params().iter().map(|t| leaf(t, &ad)).collect();
            let xa = Tensor::<2>::from_data(x.to_data(), &ad);
            let z_leaves: Vec<Tensor<2>> = (0..t_len)
                .map(|_| Tensor::zeros([b, GATES * hsz], &ad).require_grad())
                .collect();
            let h_leaves: Vec<Tensor<2>> = (0..t_len)
                .map(|_| Tensor::zeros([b, hsz], &ad).require_grad())
                .collect();
            let mut h = Tensor::<2>::zeros([b, hsz], &ad);
            let mut c_state = Tensor::<2>::zeros([b, hsz], &ad);
            let mut read = Vec::new();
            for t in 0..t_len {
                let z = xa.clone().narrow(1, t * d, d).matmul(p[0].clone())
                    + h.matmul(p[1].clone())
                    + p[2].clone()
                    + z_leaves[t].clone();
                let gate = |j: usize| z.clone().narrow(1, j * hsz, hsz);
                let (i, f, g, o) = (
                    sigmoid(gate(0)),
                    sigmoid(gate(1)),
                    gate(2).tanh(),
                    sigmoid(gate(3)),
                );
                c_state = f * c_state + i * g;
                h = o * c_state.clone().tanh() + h_leaves[t].clone();
                if t + out_steps >= t_len {
                    read.push(h.clone().matmul(p[3].clone()) + p[4].clone());
                }
            }
            let logits = Tensor::cat(read, 1);
            let grads = (logits * Tensor::<2>::from_data(cotangent.to_data(), &ad))
                .sum()
                .backward();

            check_bptt(
                &ours,
                &grads,
                b,
                t_len,
                GATES * hsz,
                &z_leaves,
                &h_leaves,
                &p,
                &lstm.param_names(),
            );
        }
    }

    /// The fused host path and the Burn-op path (what non-flex devices run) agree on the
    /// logits, every gradient, every probed signal and the time profile; and the host path
    /// repeats itself bit for bit.
    #[test]
    fn fused_host_path_matches_burn_ops() {
        let device = Device::flex();
        let m = ModelSection {
            width: 16,
            forget_bias: 1.0,
            ..ModelSection::default()
        };
        let (b, t_len, d, out_steps) = (4, 9, 3, 2);
        let lstm = Lstm::new(&m, t_len, d, 2 * out_steps, out_steps, 5, &device);
        let x = random(b, t_len * d, 3, &device).mul_scalar(2.0);
        let cot = random(b, 2 * out_steps, 4, &device);
        let host = |lstm: &Lstm| {
            let (logits, tape) = lstm.forward_tape(x.clone());
            assert!(matches!(tape, LstmTape::Host(_)));
            (logits, lstm.backward(tape, cot.clone()))
        };
        let (logits, ours) = host(&lstm);
        let (steps, hs, cs, ops_logits) = lstm.run(&x);
        let tape = OpsTape {
            x: x.clone(),
            steps,
            hs,
            cs,
            logits: ops_logits.clone(),
        };
        let want = lstm.backward_ops(tape, cot.clone());
        close(logits.clone(), ops_logits, "logits");
        for (i, name) in lstm.param_names().iter().enumerate() {
            close(ours.grads[i].clone(), want.grads[i].clone(), name);
        }
        close(
            ours.layers[0].delta.clone(),
            want.layers[0].delta.clone(),
            "delta",
        );
        close(
            ours.layers[0].output.clone(),
            want.layers[0].output.clone(),
            "output",
        );
        let mask = |bw: &Backward| match &bw.layers[0].saturated {
            Some(Saturation::Mask(m)) => m.clone().into_data().try_to_vec::<f32>().unwrap(),
            _ => panic!("the lstm layer carries a forget-gate mask"),
        };
        assert_eq!(mask(&ours), mask(&want));
        close(
            ours.time[0].clone().reshape([1, t_len]),
            want.time[0].clone().reshape([1, t_len]),
            "time",
        );
        let (again, twice) = host(&lstm);
        let bytes = |t: Tensor<2>| t.into_data().as_bytes().to_vec();
        assert_eq!(bytes(logits), bytes(again));
        for (a, b) in ours.grads.iter().zip(&twice.grads) {
            assert_eq!(bytes(a.clone()), bytes(b.clone()));
        }
    }

    /// The `cpu` engine's time-major pass computes what the flex host pass does: logits,
    /// every gradient, the through-time profile, and the probes' δ², output and saturation
    /// sums (its rows come in another order, so those are compared as sums).
    #[test]
    fn time_major_path_matches_the_flex_host_path() {
        let device = Device::flex();
        let m = ModelSection {
            width: 16,
            forget_bias: 1.0,
            ..ModelSection::default()
        };
        let (b, t_len, d, out_steps) = (4, 9, 3, 2);
        let flex = Lstm::new(&m, t_len, d, 2 * out_steps, out_steps, 5, &device);
        let cpu = Lstm {
            host: Some(Engine {
                portable: false,
                threads: 1,
            }),
            ..flex.clone()
        };
        // Large inputs drive some forget gates into saturation.
        let x = random(b, t_len * d, 3, &device).mul_scalar(4.0);
        let cot = random(b, 2 * out_steps, 4, &device);
        let pass = |lstm: &Lstm| {
            let (logits, tape) = lstm.forward_tape(x.clone());
            (logits, lstm.backward(tape, cot.clone()))
        };
        let (logits, ours) = pass(&cpu);
        let (want_logits, want) = pass(&flex);
        close(logits, want_logits, "logits");
        for (i, name) in cpu.param_names().iter().enumerate() {
            close(ours.grads[i].clone(), want.grads[i].clone(), name);
        }
        close(
            ours.time[0].clone().reshape([1, t_len]),
            want.time[0].clone().reshape([1, t_len]),
            "time",
        );
        let sq = |t: &Tensor<2>| t.clone().square().sum().into_scalar::<f32>() as f64;
        let (a, w) = (&ours.layers[0], &want.layers[0]);
        let delta_sq = a.delta_sq.expect("the cpu pass sums δ² itself");
        assert!((delta_sq - sq(&w.delta)).abs() <= 1e-5 * sq(&w.delta), "δ²");
        assert!(
            (sq(&a.output) - sq(&w.output)).abs() <= 1e-5 * sq(&w.output),
            "h²"
        );
        let count = match (&a.saturated, &w.saturated) {
            (Some(Saturation::Count(n)), Some(Saturation::Mask(m))) => {
                assert_eq!(*n, m.clone().sum().into_scalar::<f32>() as f64);
                *n
            }
            _ => panic!("cpu counts, flex masks"),
        };
        assert!(count > 0.0, "the test saturates some forget gates");
    }

    /// Every pass through time stops at its next time step once the run's stop flag is set
    /// (`crate::cancel`): both LSTM paths and the RNN, forward and backward.
    #[test]
    fn passes_through_time_stop_at_a_set_flag() {
        use crate::cancel::within;
        use crate::models::Rnn;
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let device = Device::flex();
        let m = ModelSection {
            width: 8,
            ..ModelSection::default()
        };
        let (b, t_len, d) = (3, 12, 2);
        let flex = Lstm::new(&m, t_len, d, 2, 1, 5, &device);
        let cpu = Lstm {
            host: Some(Engine {
                portable: false,
                threads: 1,
            }),
            ..flex.clone()
        };
        let rnn = Rnn::new(&m, t_len, d, 2, 1, 5, &device);
        let x = random(b, t_len * d, 3, &device);
        let cot = random(b, 2, 4, &device);
        let (go, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(true)),
        );
        for lstm in [&flex, &cpu] {
            assert!(within(&stop, || lstm.forward_tape(x.clone())).is_none());
            let (_, tape) = within(&go, || lstm.forward_tape(x.clone())).unwrap();
            assert!(within(&stop, || lstm.backward(tape, cot.clone())).is_none());
        }
        assert!(within(&stop, || rnn.forward_tape(x.clone())).is_none());
        let (_, tape) = within(&go, || rnn.forward_tape(x.clone())).unwrap();
        assert!(within(&stop, || rnn.backward(tape, cot.clone())).is_none());
        assert!(within(&go, || rnn.forward_tape(x.clone())).is_some());
    }

    /// The time-major pass splits each step's examples among workers; the bits do not
    /// depend on how many.
    #[test]
    fn time_major_path_gives_the_same_bits_on_two_threads() {
        let device = Device::flex();
        let m = ModelSection {
            width: 16,
            ..ModelSection::default()
        };
        let (b, t_len, d) = (5, 7, 2);
        let one = Lstm {
            host: Some(Engine {
                portable: false,
                threads: 1,
            }),
            ..Lstm::new(&m, t_len, d, 1, 1, 9, &device)
        };
        let two = Lstm {
            host: Some(Engine {
                portable: false,
                threads: 2,
            }),
            ..one.clone()
        };
        let x = random(b, t_len * d, 3, &device);
        let cot = random(b, 1, 4, &device);
        let bits = |lstm: &Lstm| {
            let (logits, tape) = lstm.forward_tape(x.clone());
            let back = lstm.backward(tape, cot.clone());
            let bytes = |t: Tensor<2>| t.into_data().as_bytes().to_vec();
            let mut all = bytes(logits);
            for g in back.grads {
                all.extend(bytes(g));
            }
            all.extend(bytes(back.time[0].clone().reshape([1, t_len])));
            all.extend(back.layers[0].delta_sq.unwrap().to_le_bytes());
            all
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert_eq!(bits(&one), pool.install(|| bits(&two)));
    }

    #[test]
    fn forget_bias_sits_on_the_forget_block() {
        let device = Device::flex();
        let m = ModelSection {
            width: 3,
            forget_bias: 2.5,
            ..ModelSection::default()
        };
        let lstm = Lstm::new(&m, 10, 2, 1, 1, 1, &device);
        let b = lstm.bias.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(
            b,
            [0.0, 0.0, 0.0, 2.5, 2.5, 2.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
    }
}
