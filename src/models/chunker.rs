//! Schmidhuber's history compressor (1992), the two-level chunker: a tanh RNN (the
//! automatizer, `low`) learns to predict its next input; a second tanh RNN (the chunker,
//! `high`) sees only the inputs the first failed to predict, each with its time t/T, and is
//! read out at the end. Where the low level predicts, the high level's state is carried
//! unchanged, so a lag of T steps is as many steps for it as there were surprises.
//!
//! Both levels learn together by back-propagation through time: the low one from its own
//! prediction loss alone, the high one from the task's loss. Whether an input is passed up is
//! a hard decision (the low level's most likely next symbol against the one that came), so no
//! gradient crosses between the levels — as in the paper, where the chunker only receives
//! inputs. `tests::bptt_matches_autodiff` holds both hand-derived passes to Burn's autodiff.

use super::activation::TANH_SATURATED;
use super::recurrent::{Readout, as_rows, time_profile};
use super::{
    Backward, LayerSignals, LevelSignals, Network, Saturation, host, init, kernels, matrix,
};
use crate::experiment::ModelSection;
use crate::models::ops::{self, PortableMatrix, PortableOps};
use crate::rng::Stream;
use burn::tensor::{Device, Tensor};

/// One level: h_t = tanh(x̃_t·W_in + h_{t−1}·W_rec + b).
#[derive(Debug, Clone)]
pub struct Level {
    pub w_in: Tensor<2>,
    pub w_rec: Tensor<2>,
    pub bias: Tensor<2>,
}

impl Level {
    fn new(m: &ModelSection, inputs: usize, rng: &mut Stream, device: &Device) -> Self {
        let h = m.width;
        let w_in = init::weights(m.init, inputs, h, m.sigma_w, rng);
        let w_rec = init::recurrent(m.recurrent_init, h, m.spectral_radius, rng);
        let bias = init::biases(h, m.sigma_b, rng);
        Self {
            w_in: matrix(w_in, inputs, h, device),
            w_rec: matrix(w_rec, h, h, device),
            bias: matrix(bias, 1, h, device),
        }
    }
}

/// The network. Inputs arrive as rows of `steps × features` one-hot symbols, time-major.
#[derive(Debug, Clone)]
pub struct Chunker {
    pub low: Level,
    /// The low level's prediction of the next symbol: `[hidden, features]`.
    pub predict_w: Tensor<2>,
    pub predict_b: Tensor<2>,
    /// Reads `features + 1` inputs: the symbol and its time t/T.
    pub high: Level,
    pub readout: Readout,
    /// The collapsed compressor: ĥ_t = h^low_t·W + b, the lower level's reproduction of the
    /// upper level's state h^high_t (`model.collapse`); `None` otherwise.
    pub collapse: Option<(Tensor<2>, Tensor<2>)>,
    pub steps: usize,
    pub features: usize,
}

/// What the forward pass keeps.
pub struct ChunkerTape {
    x_rows: Tensor<2>,
    /// The high level's inputs `[b·T, features + 1]`.
    xt_rows: Tensor<2>,
    /// h^low_0 = 0, h^low_1 … h^low_T.
    low: Vec<Tensor<2>>,
    /// The low level's next-symbol logits after steps 1..T−1, `[b·(T−1), features]`.
    predicted: Tensor<2>,
    /// 1 where step t's input was passed up, per step `[b, hidden]` (broadcast over units).
    passed: Vec<Tensor<2>>,
    /// Inputs passed up, summed over the batch.
    passed_count: f32,
    /// h^high_0 = 0, h^high_1 … h^high_T.
    high: Vec<Tensor<2>>,
    /// The high level's candidate state z_t = tanh(·) at every step.
    z: Vec<Tensor<2>>,
    logits: Tensor<2>,
}

/// `rows` with the last `n` of each example's `t_len` steps kept: `[b·n, width]`.
fn steps_of(rows: &[Tensor<2>], b: usize, width: usize) -> Tensor<2> {
    as_rows(rows.to_vec(), b, width)
}

impl Chunker {
    /// Draws, in order, from the `init` stream: the low level (W_in, W_rec, b), its predictor
    /// (W, b), the high level (W_in, W_rec, b), W_out, b_out; last, when collapsing, the
    /// lower level's reproduction of the upper state (W, b) — so the rest draws the same.
    pub fn new(
        m: &ModelSection,
        steps: usize,
        features: usize,
        output_dim: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = Stream::new(seed, "init");
        let h = m.width;
        let low = Level::new(m, features, &mut rng, device);
        let predict_w = init::weights(m.init, h, features, m.sigma_w, &mut rng);
        let predict_b = init::biases(features, m.sigma_b, &mut rng);
        let high = Level::new(m, features + 1, &mut rng, device);
        let readout = Readout::new(m, h, output_dim, 1, &mut rng, device);
        let collapse = m.collapse.then(|| {
            let w = init::weights(m.init, h, h, m.sigma_w, &mut rng);
            let b = init::biases(h, m.sigma_b, &mut rng);
            (matrix(w, h, h, device), matrix(b, 1, h, device))
        });
        Self {
            low,
            predict_w: matrix(predict_w, h, features, device),
            predict_b: matrix(predict_b, 1, features, device),
            high,
            readout,
            collapse,
            steps,
            features,
        }
    }

    fn hidden(&self) -> usize {
        self.low.w_rec.dims()[0]
    }

    fn run(&self, x: &Tensor<2>) -> ChunkerTape {
        let [b, _] = x.dims();
        let (t_len, h, f) = (self.steps, self.hidden(), self.features);
        let device = x.device();
        let x_rows = x.clone().reshape([b * t_len, f]);
        // The low level reads every input.
        let low = unroll(&self.low, x_rows.clone(), b, t_len, h, None);
        // Its guesses of steps 2..T from the states after steps 1..T−1.
        let before_last = steps_of(&low[1..t_len], b, h);
        let predicted = before_last
            .pmatmul(self.predict_w.clone())
            .add(self.predict_b.clone());
        // Passed up: the first input always (nothing predicts it), then every input whose
        // symbol is not the low level's most likely one (the first of equal logits).
        let guess = host::to_vec(predicted.clone());
        let xs = host::to_vec(x.clone());
        let mut mask = vec![0f32; b * t_len];
        for e in 0..b {
            mask[e * t_len] = 1.0;
            for t in 1..t_len {
                let row = &guess[(e * (t_len - 1) + t - 1) * f..][..f];
                let came = &xs[(e * t_len + t) * f..][..f];
                mask[e * t_len + t] = f32::from(argmax(row) != argmax(came));
            }
        }
        let passed_count = mask.iter().sum();
        let mask = host::tensor(mask, [b, t_len], &device);
        let passed: Vec<Tensor<2>> = (0..t_len)
            .map(|t| mask.clone().narrow(1, t, 1).repeat_dim(1, h))
            .collect();
        // The high level reads each input with its time, and moves only where it was passed up.
        let times: Vec<f32> = (0..b)
            .flat_map(|_| (0..t_len).map(|t| (t + 1) as f32 / t_len as f32))
            .collect();
        let xt_rows = Tensor::cat(
            vec![x_rows.clone(), host::tensor(times, [b * t_len, 1], &device)],
            1,
        );
        let mut z = Vec::with_capacity(t_len);
        let high = unroll(
            &self.high,
            xt_rows.clone(),
            b,
            t_len,
            h,
            Some((&passed, &mut z)),
        );
        let logits = self.readout.forward(&high, b);
        ChunkerTape {
            x_rows,
            xt_rows,
            low,
            predicted,
            passed,
            passed_count,
            high,
            z,
            logits,
        }
    }

    /// The low level's loss at predicting steps 2..T and ∂L/∂(its logits).
    fn predict_loss(&self, tape: &ChunkerTape, b: usize) -> (Tensor<1>, Tensor<2>) {
        let (t_len, f) = (self.steps, self.features);
        let n = (b * (t_len - 1)) as f64;
        let target = as_rows(
            (1..t_len)
                .map(|t| {
                    tape.x_rows
                        .clone()
                        .reshape([b, t_len * f])
                        .narrow(1, t * f, f)
                })
                .collect(),
            b,
            f,
        );
        let logp = ops::log_softmax(tape.predicted.clone());
        let loss = logp.clone().mul(target.clone()).psum().mul_scalar(-1.0 / n);
        (loss, logp.pexp().sub(target).div_scalar(n))
    }
}

/// The collapsed compressor's part of a backward pass.
struct CollapseGrads {
    /// Mean squared error of ĥ_t against h^high_t over every step, example and unit: `[1]`.
    loss: Tensor<1>,
    g_w: Tensor<2>,
    g_b: Tensor<2>,
    /// ∂L_collapse/∂h^low_t for t = 1..T, `[b, T·hidden]`.
    d_low: Tensor<2>,
    /// Examples whose answer read from ĥ_T through the read-out is the upper level's own.
    agree: f32,
}

impl Chunker {
    /// ĥ_t = h^low_t·W + b against the upper state h^high_t (a target: no gradient reaches the
    /// upper level), and how often the read-out of ĥ_T gives the upper level's answer.
    fn collapse_back(&self, tape: &ChunkerTape, b: usize) -> Option<CollapseGrads> {
        let (w, bias) = self.collapse.as_ref()?;
        let (t_len, h) = (self.steps, self.hidden());
        let low = steps_of(&tape.low[1..], b, h);
        let target = steps_of(&tape.high[1..], b, h);
        let reproduced = low.clone().pmatmul(w.clone()).add(bias.clone());
        let n = (b * t_len) as f64;
        let diff = reproduced.clone().sub(target);
        let loss = diff.clone().square().psum().div_scalar(n);
        let d = diff.mul_scalar(2.0 / n);
        let last = reproduced
            .reshape([b, t_len * h])
            .narrow(1, (t_len - 1) * h, h);
        let answers = host::to_vec(self.readout.forward_rows(last, b));
        let own = host::to_vec(tape.logits.clone());
        let classes = own.len() / b;
        let agree = answers
            .chunks_exact(classes)
            .zip(own.chunks_exact(classes))
            .filter(|(a, o)| argmax(a) == argmax(o))
            .count() as f32;
        Some(CollapseGrads {
            loss,
            g_w: low.pmatmul_tn(d.clone()),
            g_b: d.clone().psum_dim(0),
            d_low: d.pmatmul_nt(w.clone()).reshape([b, t_len * h]),
            agree,
        })
    }
}

/// The index of the largest value (the first of equal ones).
fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv { (i, x) } else { (bi, bv) }
        })
        .0
}

/// States h_0 = 0 … h_T of `level` over input rows `[b·T, inputs]`. With `gate` (the
/// passed-up masks and where to keep z_t): h_t = h_{t−1} + m_t ⊙ (z_t − h_{t−1}).
fn unroll(
    level: &Level,
    rows: Tensor<2>,
    b: usize,
    t_len: usize,
    h: usize,
    mut gate: Option<(&[Tensor<2>], &mut Vec<Tensor<2>>)>,
) -> Vec<Tensor<2>> {
    let xw = rows
        .pmatmul(level.w_in.clone())
        .add(level.bias.clone())
        .reshape([b, t_len * h]);
    let mut hs = Vec::with_capacity(t_len + 1);
    hs.push(Tensor::zeros([b, h], &xw.device()));
    let w_rec = ops::Operand::new(level.w_rec.clone());
    for t in 0..t_len {
        crate::cancel::checkpoint();
        let mut a = xw.clone().narrow(1, t * h, h);
        if t > 0 {
            a = a.add(w_rec.times(hs[t].clone()));
        }
        let z = kernels::tanh(a);
        let next = match &mut gate {
            Some((masks, kept)) => {
                kept.push(z.clone());
                hs[t]
                    .clone()
                    .add(masks[t].clone().mul(z.sub(hs[t].clone())))
            }
            None => z,
        };
        hs.push(next);
    }
    hs
}

/// A level's weight gradients from its per-step ∂L/∂a_t and its inputs and states.
fn level_grads(
    rows: Tensor<2>,
    hs: &[Tensor<2>],
    das: Vec<Tensor<2>>,
    b: usize,
    h: usize,
) -> (Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>) {
    let t_len = das.len();
    let da_rows = as_rows(das, b, h);
    let g_in = rows.pmatmul_tn(da_rows.clone());
    let g_rec = steps_of(&hs[..t_len], b, h).pmatmul_tn(da_rows.clone());
    let g_b = da_rows.clone().psum_dim(0);
    (g_in, g_rec, g_b, da_rows)
}

impl Network for Chunker {
    type Tape = ChunkerTape;

    fn layer_names(&self) -> Vec<String> {
        vec!["low".into(), "high".into(), "out".into()]
    }

    fn param_names(&self) -> Vec<String> {
        [
            "low.w_in",
            "low.w_rec",
            "low.bias",
            "low.predict_w",
            "low.predict_b",
            "high.w_in",
            "high.w_rec",
            "high.bias",
            "out.weight",
            "out.bias",
            "low.collapse_w",
            "low.collapse_b",
        ]
        .map(String::from)
        .into_iter()
        .take(if self.collapse.is_some() { 12 } else { 10 })
        .collect()
    }

    fn params(&self) -> Vec<Tensor<2>> {
        vec![
            self.low.w_in.clone(),
            self.low.w_rec.clone(),
            self.low.bias.clone(),
            self.predict_w.clone(),
            self.predict_b.clone(),
            self.high.w_in.clone(),
            self.high.w_rec.clone(),
            self.high.bias.clone(),
            self.readout.weight.clone(),
            self.readout.bias.clone(),
        ]
        .into_iter()
        .chain(
            self.collapse
                .iter()
                .flat_map(|(w, b)| [w.clone(), b.clone()]),
        )
        .collect()
    }

    fn set_params(&mut self, mut params: Vec<Tensor<2>>) {
        if self.collapse.is_some() {
            let b = params
                .pop()
                .expect("a collapsing chunker has twelve parameters");
            let w = params
                .pop()
                .expect("a collapsing chunker has twelve parameters");
            self.collapse = Some((w, b));
        }
        let [li, lr, lb, pw, pb, hi, hr, hb, ow, ob]: [Tensor<2>; 10] =
            params.try_into().expect("a chunker has ten parameters");
        self.low = Level {
            w_in: li,
            w_rec: lr,
            bias: lb,
        };
        (self.predict_w, self.predict_b) = (pw, pb);
        self.high = Level {
            w_in: hi,
            w_rec: hr,
            bias: hb,
        };
        (self.readout.weight, self.readout.bias) = (ow, ob);
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.run(&x).logits
    }

    fn forward_tape(&self, x: Tensor<2>) -> (Tensor<2>, ChunkerTape) {
        let tape = self.run(&x);
        (tape.logits.clone(), tape)
    }

    /// High level, from the read-out back: with h_t = h_{t−1} + m_t(z_t − h_{t−1}),
    /// ∂L/∂a_t = m_t ⊙ ∂L/∂h_t ⊙ (1 − z_t²) and ∂L/∂h_{t−1} = (1 − m_t) ⊙ ∂L/∂h_t + ∂L/∂a_t·W_recᵀ.
    /// Low level: its prediction loss's error at each state, back through time as in the RNN.
    fn backward(&self, tape: ChunkerTape, delta_out: Tensor<2>) -> Backward {
        let [b, _] = tape.x_rows.dims();
        let b = b / self.steps;
        let (t_len, h) = (self.steps, self.hidden());
        let read = self.readout.backward(&tape.high, delta_out.clone(), b);

        let high_rec_t = ops::Operand::transposed(self.high.w_rec.clone());
        let mut g = read.error_at(t_len, t_len, None);
        let mut das = Vec::with_capacity(t_len);
        let mut dhs = Vec::with_capacity(t_len);
        for t in (0..t_len).rev() {
            crate::cancel::checkpoint();
            let m = &tape.passed[t];
            let dz = m.clone().mul(g.clone());
            let da = dz.mul(tape.z[t].clone().square().neg().add_scalar(1.0));
            dhs.push(g.clone());
            g = g
                .clone()
                .sub(m.clone().mul(g))
                .add(high_rec_t.times(da.clone()));
            das.push(da);
        }
        das.reverse();
        dhs.reverse();
        let (g_hi, g_hr, g_hb, high_da) = level_grads(tape.xt_rows.clone(), &tape.high, das, b, h);
        let high_time = time_profile(dhs, b, h);

        let collapse = self.collapse_back(&tape, b);
        let (predict_loss, d_pred) = self.predict_loss(&tape, b);
        let before_last = steps_of(&tape.low[1..t_len], b, h);
        let g_pw = before_last.pmatmul_tn(d_pred.clone());
        let g_pb = d_pred.clone().psum_dim(0);
        let d_states = d_pred
            .pmatmul_nt(self.predict_w.clone())
            .reshape([b, (t_len - 1) * h]);
        let low_rec_t = ops::Operand::transposed(self.low.w_rec.clone());
        let mut das: Vec<Tensor<2>> = Vec::with_capacity(t_len);
        let mut dhs = Vec::with_capacity(t_len);
        for t in (1..=t_len).rev() {
            let through = das.last().map(|da: &Tensor<2>| low_rec_t.times(da.clone()));
            let own = (t < t_len).then(|| d_states.clone().narrow(1, (t - 1) * h, h));
            let reproduce = collapse
                .as_ref()
                .map(|c| c.d_low.clone().narrow(1, (t - 1) * h, h));
            let dh = [through, own, reproduce]
                .into_iter()
                .flatten()
                .reduce(|a, o| a.add(o))
                .unwrap_or_else(|| Tensor::zeros([b, h], &tape.logits.device()));
            let da = dh
                .clone()
                .mul(tape.low[t].clone().square().neg().add_scalar(1.0));
            dhs.push(dh);
            das.push(da);
        }
        das.reverse();
        dhs.reverse();
        let (g_li, g_lr, g_lb, low_da) = level_grads(tape.x_rows, &tape.low, das, b, h);
        let low_time = time_profile(dhs, b, h);

        let saturated = |hs: &[Tensor<2>]| {
            steps_of(&hs[1..], b, h)
                .abs()
                .greater_elem(TANH_SATURATED)
                .float()
        };
        let low_out = steps_of(&tape.low[1..], b, h);
        let high_out = steps_of(&tape.high[1..], b, h);
        let device = tape.logits.device();
        let mut grads = vec![
            g_li,
            g_lr,
            g_lb,
            g_pw,
            g_pb,
            g_hi,
            g_hr,
            g_hb,
            read.weight,
            read.bias,
        ];
        let collapsed = collapse.map(|c| {
            grads.extend([c.g_w, c.g_b]);
            (c.loss, host::tensor(vec![c.agree], [1], &device))
        });
        Backward {
            grads,
            layers: vec![
                LayerSignals {
                    delta: low_da,
                    saturated: Some(Saturation::Mask(saturated(&tape.low))),
                    output: low_out,
                    weight: 1,
                    bias: Some(2),
                    skip: None,
                    delta_sq: None,
                },
                LayerSignals {
                    delta: high_da,
                    saturated: Some(Saturation::Mask(saturated(&tape.high))),
                    output: high_out,
                    weight: 6,
                    bias: Some(7),
                    skip: None,
                    delta_sq: None,
                },
                LayerSignals {
                    delta: delta_out,
                    output: tape.logits,
                    saturated: None,
                    weight: 8,
                    bias: Some(9),
                    skip: None,
                    delta_sq: None,
                },
            ],
            time: vec![high_time],
            levels: Some(LevelSignals {
                passed: host::tensor(vec![tape.passed_count], [1], &device),
                predict_loss,
                low_time,
                collapse: collapsed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{DataSection, Task};
    use crate::models::rnn::tests::{check_bptt, leaf};

    fn net_and_data(t_len: usize, b: usize, collapse: bool) -> (Chunker, Tensor<2>) {
        let device = Device::flex();
        let m = ModelSection {
            width: 5,
            sigma_b: 0.3,
            spectral_radius: 1.2,
            collapse,
            ..ModelSection::default()
        };
        let f = crate::data::sequence::KEY_FEATURES;
        let net = Chunker::new(&m, t_len, f, 4, 7, &device);
        let s = DataSection {
            task: Task::KeyRecall,
            seq_len: t_len,
            train_size: b,
            test_size: 0,
            ..DataSection::default()
        };
        let ds = crate::data::sequence::key_recall(&s, &mut Stream::new(1, "x"));
        (net, matrix(ds.train.x, b, t_len * f, &device))
    }

    /// Both hand-derived passes agree with autodiff: the high level through its gated
    /// recursion (zero leaves at each pre-activation and state; the masks as constants, as
    /// they are), the low level through its prediction loss (and, collapsing, its error at
    /// reproducing the upper state, a constant target), every parameter's gradient.
    #[test]
    fn bptt_matches_autodiff() {
        for collapse in [false, true] {
            bptt_matches_autodiff_with(collapse);
        }
    }

    fn bptt_matches_autodiff_with(collapse: bool) {
        let (b, t_len) = (3, 11);
        let (net, x) = net_and_data(t_len, b, collapse);
        let f = net.features;
        let h = 5;
        let cot = crate::models::rnn::tests::random(b, 4, 2, &x.device());
        let (_, tape) = net.forward_tape(x.clone());
        let masks: Vec<Tensor<2>> = tape.passed.clone();
        let ours = net.backward(tape, cot.clone());

        let ad = x.device().autodiff();
        let p: Vec<Tensor<2>> = net.params().iter().map(|t| leaf(t, &ad)).collect();
        let xa = Tensor::<2>::from_data(x.to_data(), &ad);
        let zeros = || -> Vec<Tensor<2>> {
            (0..t_len)
                .map(|_| Tensor::zeros([b, h], &ad).require_grad())
                .collect()
        };
        let (low_a, low_h, high_a, high_h) = (zeros(), zeros(), zeros(), zeros());
        let (mut hl, mut hh) = (
            Tensor::<2>::zeros([b, h], &ad),
            Tensor::<2>::zeros([b, h], &ad),
        );
        let mut predict_loss = Tensor::<1>::zeros([1], &ad);
        let mut collapse_loss = Tensor::<1>::zeros([1], &ad);
        let n = (b * (t_len - 1)) as f64;
        for t in 0..t_len {
            let xt = xa.clone().narrow(1, t * f, f);
            let a =
                xt.clone().matmul(p[0].clone()) + hl.clone().matmul(p[1].clone()) + p[2].clone();
            hl = (a + low_a[t].clone()).tanh() + low_h[t].clone();
            if t + 1 < t_len {
                let next = xa.clone().narrow(1, (t + 1) * f, f);
                let logits = hl.clone().matmul(p[3].clone()) + p[4].clone();
                let logp = burn::tensor::activation::log_softmax(logits, 1);
                predict_loss = predict_loss + (logp * next).sum().mul_scalar(-1.0 / n);
            }
            let time = Tensor::<2>::full([b, 1], (t + 1) as f32 / t_len as f32, &ad);
            let xt = Tensor::cat(vec![xt, time], 1);
            let a = xt.matmul(p[5].clone()) + hh.clone().matmul(p[6].clone()) + p[7].clone();
            let z = (a + high_a[t].clone()).tanh();
            let m = Tensor::<2>::from_data(masks[t].to_data(), &ad);
            hh = hh.clone() + m * (z - hh) + high_h[t].clone();
            if collapse {
                let target = Tensor::<2>::from_data(hh.to_data(), &ad);
                let reproduced = hl.clone().matmul(p[10].clone()) + p[11].clone();
                collapse_loss = collapse_loss
                    + (reproduced - target)
                        .square()
                        .sum()
                        .div_scalar((b * t_len) as f64);
            }
        }
        let logits = hh.matmul(p[8].clone()) + p[9].clone();
        let task = (logits * Tensor::<2>::from_data(cot.to_data(), &ad)).sum();
        // The last low state predicts nothing: kept in the graph at weight 0, so its leaves
        // have a (zero) gradient to compare.
        let unused = hl.sum().mul_scalar(0.0);
        let grads = (task + predict_loss.clone().sum() + unused + collapse_loss.sum()).backward();

        // The high level and its read-out: layer 1, the time profile, parameters 5..10.
        let high = Backward {
            grads: ours.grads[5..].to_vec(),
            layers: vec![LayerSignals {
                delta: ours.layers[1].delta.clone(),
                output: ours.layers[1].output.clone(),
                saturated: None,
                weight: 0,
                bias: None,
                skip: None,
                delta_sq: None,
            }],
            time: ours.time.clone(),
            levels: None,
        };
        check_bptt(
            &high,
            &grads,
            b,
            t_len,
            h,
            &high_a,
            &high_h,
            &p[5..],
            &net.param_names()[5..],
        );
        // The low level: its pre-activations, states and parameters 0..5.
        let levels = ours.levels.as_ref().unwrap();
        let low = Backward {
            grads: ours.grads[..5].to_vec(),
            layers: vec![LayerSignals {
                delta: ours.layers[0].delta.clone(),
                output: ours.layers[0].output.clone(),
                saturated: None,
                weight: 0,
                bias: None,
                skip: None,
                delta_sq: None,
            }],
            time: vec![levels.low_time.clone()],
            levels: None,
        };
        check_bptt(
            &low,
            &grads,
            b,
            t_len,
            h,
            &low_a,
            &low_h,
            &p[..5],
            &net.param_names()[..5],
        );
        let (a, want) = (
            levels.predict_loss.clone().into_scalar::<f32>(),
            predict_loss.into_scalar::<f32>(),
        );
        assert!(
            (a - want).abs() <= 1e-5 * want.abs(),
            "prediction loss {a} vs {want}"
        );
    }

    /// Untrained, the low level predicts little, so most inputs are passed up; every
    /// example passes up its first input; an input the low level does predict is not.
    #[test]
    fn the_first_input_and_every_surprise_are_passed_up() {
        let (b, t_len) = (6, 12);
        let (net, x) = net_and_data(t_len, b, false);
        let tape = net.run(&x);
        let m: Vec<Vec<f32>> = tape
            .passed
            .iter()
            .map(|t| host::to_vec(t.clone().narrow(1, 0, 1)))
            .collect();
        assert!((0..b).all(|e| m[0][e] == 1.0));
        let total: f32 = m.iter().flatten().sum();
        assert_eq!(total, tape.passed_count);
        assert!(total >= b as f32 && total <= (b * t_len) as f32);
        // A state carried unchanged where nothing was passed up.
        for (t, step) in m.iter().enumerate().skip(1) {
            for (e, &passed) in step.iter().enumerate() {
                if passed == 0.0 {
                    let before = host::to_vec(tape.high[t].clone().narrow(0, e, 1));
                    let after = host::to_vec(tape.high[t + 1].clone().narrow(0, e, 1));
                    assert_eq!(before, after, "example {e} step {t}");
                }
            }
        }
    }
}
