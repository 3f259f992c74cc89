//! What the tanh RNN and the LSTM share: inputs as time-major rows, the dense read-out of
//! the last hidden state(s), and the bookkeeping of back-propagation through time.

use super::{init, matrix};
use crate::experiment::ModelSection;
use crate::models::ops::{self, PortableMatrix, PortableOps};
use crate::rng::Stream;
use burn::tensor::{Device, Tensor};

/// Per-step tensors `[b, width]` (t = 1..T) as rows `[b·T, width]`, example-major — the
/// same row order as an input row of T steps reshaped to `[b·T, features]`.
pub(crate) fn as_rows(steps: Vec<Tensor<2>>, b: usize, width: usize) -> Tensor<2> {
    let t_len = steps.len();
    Tensor::cat(steps, 1).reshape([b * t_len, width])
}

/// The dense read-out `h_t·W_out + b_out` of the last `out_steps` hidden states.
#[derive(Debug, Clone)]
pub struct Readout {
    /// `[hidden, outputs per step]`.
    pub weight: Tensor<2>,
    /// `[1, outputs per step]`.
    pub bias: Tensor<2>,
    /// 1, or the recall window of copy-memory.
    pub out_steps: usize,
}

/// The read-out's part of a backward pass.
pub(crate) struct ReadoutGrads {
    pub(crate) weight: Tensor<2>,
    pub(crate) bias: Tensor<2>,
    /// ∂L/∂h_t from the read-out for the last `out_steps` steps, `[b, out_steps · hidden]`.
    pub(crate) dh: Tensor<2>,
    hidden: usize,
    out_steps: usize,
}

impl Readout {
    /// `output_dim` outputs in all, `output_dim / out_steps` per read-out step; draws W_out
    /// (`model.init`), then b_out, from `rng`.
    pub(crate) fn new(
        m: &ModelSection,
        hidden: usize,
        output_dim: usize,
        out_steps: usize,
        rng: &mut Stream,
        device: &Device,
    ) -> Self {
        let per_step = output_dim / out_steps;
        let weight = init::weights(m.init, hidden, per_step, m.sigma_w, rng);
        let bias = init::biases(per_step, m.sigma_b, rng);
        Self {
            weight: matrix(weight, hidden, per_step, device),
            bias: matrix(bias, 1, per_step, device),
            out_steps,
        }
    }

    /// The last `out_steps` of `hs` (h_0..h_T) as rows `[b · out_steps, hidden]`.
    fn rows(&self, hs: &[Tensor<2>], b: usize) -> Tensor<2> {
        let hidden = self.weight.dims()[0];
        as_rows(hs[hs.len() - self.out_steps..].to_vec(), b, hidden)
    }

    /// Logits `[b, out_steps · outputs]`: step k's outputs in columns k·outputs.. .
    pub(crate) fn forward(&self, hs: &[Tensor<2>], b: usize) -> Tensor<2> {
        self.forward_rows(self.rows(hs, b), b)
    }

    /// [`Readout::forward`] from the read-out rows `[b · out_steps, hidden]` themselves.
    pub(crate) fn forward_rows(&self, rows: Tensor<2>, b: usize) -> Tensor<2> {
        let per_step = self.weight.dims()[1];
        rows.pmatmul(self.weight.clone())
            .add(self.bias.clone())
            .reshape([b, self.out_steps * per_step])
    }

    pub(crate) fn backward(
        &self,
        hs: &[Tensor<2>],
        delta_out: Tensor<2>,
        b: usize,
    ) -> ReadoutGrads {
        self.backward_rows(self.rows(hs, b), delta_out, b)
    }

    /// [`Readout::backward`] from the read-out rows `[b · out_steps, hidden]` themselves.
    pub(crate) fn backward_rows(
        &self,
        rows: Tensor<2>,
        delta_out: Tensor<2>,
        b: usize,
    ) -> ReadoutGrads {
        let (hidden, per_step) = (self.weight.dims()[0], self.weight.dims()[1]);
        let d = delta_out.reshape([b * self.out_steps, per_step]);
        ReadoutGrads {
            weight: rows.pmatmul_tn(d.clone()),
            bias: d.clone().psum_dim(0),
            dh: d
                .pmatmul_nt(self.weight.clone())
                .reshape([b, self.out_steps * hidden]),
            hidden,
            out_steps: self.out_steps,
        }
    }
}

impl ReadoutGrads {
    /// ∂L/∂h_t at step t (1-based) of T: the read-out's error, if t is read out, plus the
    /// error arriving back through time from step t + 1.
    pub(crate) fn error_at(
        &self,
        t: usize,
        t_len: usize,
        through_time: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let (h, k) = (self.hidden, self.out_steps);
        let read = (t + k > t_len).then(|| self.dh.clone().narrow(1, (t + k - t_len - 1) * h, h));
        [through_time, read]
            .into_iter()
            .flatten()
            .reduce(|a, r| a.add(r))
            .expect("the last step is read out and every earlier one receives error through time")
    }
}

/// ‖∂L/∂h_t‖² for t = 1..T from the per-step errors `[b, hidden]`, as one `[T]` tensor.
pub(crate) fn time_profile(dhs: Vec<Tensor<2>>, b: usize, hidden: usize) -> Tensor<1> {
    if dhs.first().is_some_and(ops::on_portable) {
        // One fixed-shape sum per time step (the 3-D reductions below are Burn's own).
        let per_step: Vec<Tensor<1>> = dhs.into_iter().map(|d| d.square().psum()).collect();
        return Tensor::cat(per_step, 0);
    }
    let t_len = dhs.len();
    Tensor::cat(dhs, 1)
        .reshape([b, t_len, hidden])
        .square()
        .sum_dim(2)
        .sum_dim(0)
        .reshape([t_len])
}
