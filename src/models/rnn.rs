//! A vanilla tanh recurrent net, h_t = tanh(x_t·W_in + h_{t−1}·W_rec + b), read out from the
//! last hidden state(s), with hand-derived back-propagation through time.
//!
//! BPTT by hand is a few matrix products per step and yields ∂L/∂h_t at every step as a
//! by-product — the vanishing through time (Hochreiter 1991; Bengio et al. 1994) this lab
//! plots. `tests::bptt_matches_autodiff` holds it to Burn's autodiff with zero leaves added
//! at every pre-activation and hidden state.

use super::activation::TANH_SATURATED;
use super::recurrent::{Readout, as_rows, time_profile};
use super::{Backward, LayerSignals, Network, Saturation, init, kernels, matrix};
use crate::experiment::ModelSection;
use crate::models::ops::{self, PortableMatrix};
use crate::rng::Stream;
use burn::tensor::{Device, Tensor};

/// The network. Inputs arrive as rows of `steps × features` values, time-major.
#[derive(Debug, Clone)]
pub struct Rnn {
    /// `[features, hidden]`.
    pub w_in: Tensor<2>,
    /// `[hidden, hidden]`: the matrix whose spectral radius decides vanishing or exploding.
    pub w_rec: Tensor<2>,
    /// `[1, hidden]`.
    pub bias: Tensor<2>,
    pub readout: Readout,
    pub steps: usize,
    pub features: usize,
}

/// What the forward pass keeps: the input and every hidden state h_0 = 0, h_1, …, h_T.
pub struct RnnTape {
    x: Tensor<2>,
    hs: Vec<Tensor<2>>,
    logits: Tensor<2>,
}

impl Rnn {
    /// Builds the net for `steps` steps of `features` inputs and `output_dim` outputs in all
    /// (`out_steps` read-outs of `output_dim / out_steps` each). Draws, in order, from the
    /// `init` stream: W_in (`model.init`), W_rec (`model.recurrent_init` scaled to
    /// `model.spectral_radius`), b, W_out, b_out.
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
        let w_in = init::weights(m.init, features, h, m.sigma_w, &mut rng);
        let w_rec = init::recurrent(m.recurrent_init, h, m.spectral_radius, &mut rng);
        let bias = init::biases(h, m.sigma_b, &mut rng);
        Self {
            w_in: matrix(w_in, features, h, device),
            w_rec: matrix(w_rec, h, h, device),
            bias: matrix(bias, 1, h, device),
            readout: Readout::new(m, h, output_dim, out_steps, &mut rng, device),
            steps,
            features,
        }
    }

    fn hidden(&self) -> usize {
        self.w_rec.dims()[0]
    }

    /// Hidden states h_0..h_T and the logits `[batch, out_steps · outputs]`.
    fn run(&self, x: &Tensor<2>) -> (Vec<Tensor<2>>, Tensor<2>) {
        let [b, _] = x.dims();
        let (t_len, h) = (self.steps, self.hidden());
        // All input projections in one product; bias folded in once.
        let xw = x
            .clone()
            .reshape([b * t_len, self.features])
            .pmatmul(self.w_in.clone())
            .add(self.bias.clone())
            .reshape([b, t_len * h]);
        let mut hs = Vec::with_capacity(t_len + 1);
        hs.push(Tensor::zeros([b, h], &x.device()));
        let w_rec = ops::Operand::new(self.w_rec.clone());
        for t in 0..t_len {
            crate::cancel::checkpoint();
            let mut a = xw.clone().narrow(1, t * h, h);
            if t > 0 {
                a = a.add(w_rec.times(hs[t].clone()));
            }
            hs.push(kernels::tanh(a));
        }
        let logits = self.readout.forward(&hs, b);
        (hs, logits)
    }
}

impl Network for Rnn {
    type Tape = RnnTape;

    fn layer_names(&self) -> Vec<String> {
        vec!["rnn".into(), "out".into()]
    }

    fn param_names(&self) -> Vec<String> {
        [
            "rnn.w_in",
            "rnn.w_rec",
            "rnn.bias",
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
            params.try_into().expect("an rnn has five parameters");
        (self.w_in, self.w_rec, self.bias) = (w_in, w_rec, bias);
        (self.readout.weight, self.readout.bias) = (w_out, b_out);
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.run(&x).1
    }

    fn forward_tape(&self, x: Tensor<2>) -> (Tensor<2>, RnnTape) {
        let (hs, logits) = self.run(&x);
        (logits.clone(), RnnTape { x, hs, logits })
    }

    /// From the read-out back through time: ∂L/∂h_t = (read-out error at t) + ∂L/∂a_{t+1}·W_recᵀ,
    /// ∂L/∂a_t = ∂L/∂h_t ⊙ (1 − h_t²); the weight gradients sum over steps, done as one
    /// product each over all steps at once.
    fn backward(&self, tape: RnnTape, delta_out: Tensor<2>) -> Backward {
        let RnnTape { x, hs, logits } = tape;
        let [b, _] = x.dims();
        let (t_len, h) = (self.steps, self.hidden());
        let read = self.readout.backward(&hs, delta_out.clone(), b);

        let w_rec_t = ops::Operand::transposed(self.w_rec.clone());
        let mut das: Vec<Tensor<2>> = Vec::with_capacity(t_len);
        let mut dhs: Vec<Tensor<2>> = Vec::with_capacity(t_len);
        for t in (1..=t_len).rev() {
            crate::cancel::checkpoint();
            let through_time = das.last().map(|da: &Tensor<2>| w_rec_t.times(da.clone()));
            let dh = read.error_at(t, t_len, through_time);
            let da = dh.clone().mul(hs[t].clone().square().neg().add_scalar(1.0));
            dhs.push(dh);
            das.push(da);
        }
        das.reverse();
        dhs.reverse();
        let da_rows = as_rows(das, b, h);
        let x_rows = x.reshape([b * t_len, self.features]);
        let g_w_in = x_rows.pmatmul_tn(da_rows.clone());
        let g_w_rec = as_rows(hs[..t_len].to_vec(), b, h).pmatmul_tn(da_rows.clone());
        let g_bias = da_rows.clone().psum_dim(0);
        let outputs = as_rows(hs[1..].to_vec(), b, h);
        let saturated = outputs.clone().abs().greater_elem(TANH_SATURATED).float();
        Backward {
            grads: vec![g_w_in, g_w_rec, g_bias, read.weight, read.bias],
            layers: vec![
                LayerSignals {
                    delta: da_rows,
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
            time: vec![time_profile(dhs, b, h)],
            levels: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::experiment::{Init, RecurrentInit};
    use burn::tensor::TensorData;

    /// Copies `t` onto `ad` as a leaf that records gradients.
    pub(crate) fn leaf(t: &Tensor<2>, ad: &Device) -> Tensor<2> {
        Tensor::<2>::from_data(t.to_data(), ad).require_grad()
    }

    pub(crate) fn close(a: Tensor<2>, b: Tensor<2>, what: &str) {
        let a = a.into_data().try_to_vec::<f32>().unwrap();
        let b = b.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 + 1e-4 * y.abs(), "{what}: {x} vs {y}");
        }
    }

    /// Holds a hand-derived BPTT pass `ours` to autodiff's `grads`: ∂L/∂(pre-activation) at
    /// every step (`width` columns per step, read from the zero leaves `pre`), ‖∂L/∂h_t‖² of
    /// the time profile (zero leaves `hs`), and every parameter `p` named `names`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_bptt(
        ours: &Backward,
        grads: &burn::tensor::Gradients,
        b: usize,
        t_len: usize,
        width: usize,
        pre: &[Tensor<2>],
        hs: &[Tensor<2>],
        p: &[Tensor<2>],
        names: &[String],
    ) {
        let dz = ours.layers[0].delta.clone().reshape([b, t_len * width]);
        for (t, leaf) in pre.iter().enumerate() {
            close(
                dz.clone().narrow(1, t * width, width),
                leaf.grad(grads).unwrap(),
                &format!("dz {t}"),
            );
        }
        let times = ours.time[0]
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (t, leaf) in hs.iter().enumerate() {
            let want = leaf
                .grad(grads)
                .unwrap()
                .square()
                .sum()
                .into_scalar::<f32>();
            assert!(
                (times[t] - want).abs() <= 1e-5 + 1e-4 * want,
                "|dh_{t}|²: {} vs {want}",
                times[t]
            );
        }
        for (i, name) in names.iter().enumerate() {
            close(ours.grads[i].clone(), p[i].grad(grads).unwrap(), name);
        }
    }

    pub(crate) fn random(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
        let mut rng = Stream::new(seed, "x");
        Tensor::from_data(
            TensorData::new(
                (0..rows * cols).map(|_| rng.normal() as f32).collect(),
                [rows, cols],
            ),
            device,
        )
    }

    /// Hand-derived BPTT agrees with autodiff: ∂L/∂a_t and ∂L/∂h_t at every step (zero
    /// leaves added to each), and every parameter's gradient, for one and several read-outs.
    #[test]
    fn bptt_matches_autodiff() {
        for (out_steps, kind) in [(1, RecurrentInit::Orthogonal), (3, RecurrentInit::Gaussian)] {
            let device = Device::flex();
            let m = ModelSection {
                width: 6,
                init: Init::XavierNormal,
                sigma_b: 0.3,
                recurrent_init: kind,
                spectral_radius: 1.4,
                ..ModelSection::default()
            };
            let (b, t_len, d, c) = (4, 7, 3, 2);
            let rnn = Rnn::new(&m, t_len, d, c * out_steps, out_steps, 5, &device);
            let x = random(b, t_len * d, 1, &device);
            let cotangent = random(b, c * out_steps, 2, &device);
            let (_, tape) = rnn.forward_tape(x.clone());
            let ours = rnn.backward(tape, cotangent.clone());

            let ad = device.clone().autodiff();
            let p: Vec<Tensor<2>> = rnn.params().iter().map(|t| leaf(t, &ad)).collect();
            let xa = Tensor::<2>::from_data(x.to_data(), &ad);
            let a_leaves: Vec<Tensor<2>> = (0..t_len)
                .map(|_| Tensor::zeros([b, 6], &ad).require_grad())
                .collect();
            let h_leaves: Vec<Tensor<2>> = (0..t_len)
                .map(|_| Tensor::zeros([b, 6], &ad).require_grad())
                .collect();
            let mut h = Tensor::<2>::zeros([b, 6], &ad);
            let mut read = Vec::new();
            for t in 0..t_len {
                let xt = xa.clone().narrow(1, t * d, d);
                let a = xt.matmul(p[0].clone())
                    + h.matmul(p[1].clone())
                    + p[2].clone()
                    + a_leaves[t].clone();
                h = a.tanh() + h_leaves[t].clone();
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
                6,
                &a_leaves,
                &h_leaves,
                &p,
                &rnn.param_names(),
            );
        }
    }

    #[test]
    fn orthogonal_recurrence_has_exactly_the_radius() {
        let device = Device::flex();
        let m = ModelSection {
            width: 8,
            spectral_radius: 0.7,
            ..ModelSection::default()
        };
        let rnn = Rnn::new(&m, 10, 2, 1, 1, 3, &device);
        // ρ·Q is ρ times orthogonal: ‖v·W‖ = ρ‖v‖ for every v.
        let v = random(5, 8, 4, &device);
        let ratio = v
            .clone()
            .matmul(rnn.w_rec.clone())
            .square()
            .sum()
            .sqrt()
            .into_scalar::<f32>()
            / v.square().sum().sqrt().into_scalar::<f32>();
        assert!((ratio - 0.7).abs() < 1e-5, "{ratio}");
    }
}
