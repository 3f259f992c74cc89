//! Binary restricted Boltzmann machines trained with contrastive divergence, and the deep
//! belief net they stack into (Hinton, Osindero & Teh 2006; Hinton 2010's practical guide).
//!
//! An RBM's weights and hidden biases are exactly a sigmoid layer's, so a stack pretrained
//! greedily is unrolled into the deep sigmoid `Mlp` by copying them. Every Bernoulli draw
//! uses the lab's own seeded stream (uniforms made on the host and compared on the device),
//! never the backend's RNG, so pretraining replays exactly.

use super::matrix;
use crate::models::ops::{self, PortableMatrix, PortableOps};
use crate::rng::Stream;
use burn::tensor::{Device, Tensor};
use ops::sigmoid;

/// Exact log-likelihoods are computed by enumerating 2ⁿ states of the smaller layer while
/// n is at most this (65 536 states: milliseconds on the host).
pub const ENUMERABLE_UNITS: usize = 16;

/// One binary RBM: p(v, h) ∝ exp(vᵀ·b + hᵀ·c + vᵀ·W·h).
#[derive(Debug, Clone)]
pub struct Rbm {
    /// `[visible, hidden]` — the same layout as a dense layer's weight.
    pub weight: Tensor<2>,
    /// `[1, hidden]` (c) — becomes the unrolled layer's bias.
    pub hidden_bias: Tensor<2>,
    /// `[1, visible]` (b) — used only generatively.
    pub visible_bias: Tensor<2>,
}

/// CD-k hyperparameters of one update.
#[derive(Debug, Clone, Copy)]
pub struct CdConfig {
    pub k: usize,
    pub learning_rate: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub persistent: bool,
}

/// Optimiser state of one RBM: momentum buffers and, for persistent CD, the chains.
#[derive(Default)]
pub struct CdState {
    velocity: Option<[Tensor<2>; 3]>,
    chains: Option<Tensor<2>>,
}

/// 1.0 with probability p, elementwise, from the lab's stream.
pub fn bernoulli(p: Tensor<2>, rng: &mut Stream) -> Tensor<2> {
    let [rows, cols] = p.dims();
    let u: Vec<f32> = (0..rows * cols).map(|_| rng.uniform() as f32).collect();
    matrix(u, rows, cols, &p.device()).lower(p).float()
}

impl Rbm {
    /// An RBM around an existing layer's weight and bias, with zero visible biases.
    pub fn from_layer(weight: Tensor<2>, hidden_bias: Tensor<2>) -> Self {
        let [visible, _] = weight.dims();
        let visible_bias = Tensor::zeros([1, visible], &weight.device());
        Self {
            weight,
            hidden_bias,
            visible_bias,
        }
    }

    pub fn visible(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn hidden(&self) -> usize {
        self.weight.dims()[1]
    }

    /// p(h = 1 | v) = σ(v·W + c).
    pub fn hidden_probs(&self, v: Tensor<2>) -> Tensor<2> {
        sigmoid(v.pmatmul(self.weight.clone()).add(self.hidden_bias.clone()))
    }

    /// p(v = 1 | h) = σ(h·Wᵀ + b).
    pub fn visible_probs(&self, h: Tensor<2>) -> Tensor<2> {
        sigmoid(
            h.pmatmul_nt(self.weight.clone())
                .add(self.visible_bias.clone()),
        )
    }

    /// Mean free energy F(v) = −v·b − Σ_j softplus(c_j + (v·W)_j) over the rows of `v`.
    pub fn mean_free_energy(&self, v: Tensor<2>) -> Tensor<1> {
        let [rows, _] = v.dims();
        let visible_term = v.clone().mul(self.visible_bias.clone()).psum();
        let hidden_term =
            ops::softplus(v.pmatmul(self.weight.clone()).add(self.hidden_bias.clone())).psum();
        visible_term.add(hidden_term).neg().div_scalar(rows as f64)
    }

    /// Mean squared error of the one-step mean-field reconstruction p(v | p(h | v)).
    pub fn reconstruction_error(&self, v: Tensor<2>) -> Tensor<1> {
        let recon = self.visible_probs(self.hidden_probs(v.clone()));
        let [rows, cols] = v.dims();
        recon
            .sub(v)
            .square()
            .psum()
            .div_scalar((rows * cols) as f64)
    }

    /// One CD-k (or persistent CD-k) update on the batch `v0`: the positive statistics from
    /// the data, the negative ones after k alternating Gibbs steps (binary samples), then
    /// momentum SGD with L2 weight decay on W (Hinton 2010, §§ 3, 9, 10).
    pub fn cd_update(
        &mut self,
        v0: Tensor<2>,
        cfg: CdConfig,
        state: &mut CdState,
        rng: &mut Stream,
    ) {
        let [rows, _] = v0.dims();
        let ph0 = self.hidden_probs(v0.clone());
        let mut h = match state.chains.take() {
            Some(chains) if cfg.persistent && chains.dims()[0] == rows => chains,
            _ => bernoulli(ph0.clone(), rng),
        };
        let mut v = v0.clone();
        let mut ph = ph0.clone();
        for _ in 0..cfg.k {
            v = bernoulli(self.visible_probs(h), rng);
            ph = self.hidden_probs(v.clone());
            h = bernoulli(ph.clone(), rng);
        }
        if cfg.persistent {
            state.chains = Some(h);
        }
        let n = rows as f64;
        let d_w = v0
            .clone()
            .pmatmul_tn(ph0.clone())
            .sub(v.clone().pmatmul_tn(ph.clone()))
            .div_scalar(n);
        let d_w = d_w.sub(self.weight.clone().mul_scalar(cfg.weight_decay));
        let d_b = v0.sub(v).psum_dim(0).div_scalar(n);
        let d_c = ph0.sub(ph).psum_dim(0).div_scalar(n);
        let steps = [d_w, d_b, d_c].map(|d| d.mul_scalar(cfg.learning_rate));
        let velocity = match state.velocity.take() {
            Some(old) => {
                let [a, b, c] = old;
                let [x, y, z] = steps;
                [
                    a.mul_scalar(cfg.momentum).add(x),
                    b.mul_scalar(cfg.momentum).add(y),
                    c.mul_scalar(cfg.momentum).add(z),
                ]
            }
            None => steps,
        };
        self.weight = self.weight.clone().add(velocity[0].clone());
        self.visible_bias = self.visible_bias.clone().add(velocity[1].clone());
        self.hidden_bias = self.hidden_bias.clone().add(velocity[2].clone());
        state.velocity = Some(velocity);
    }

    /// The parameters on the host in f64: (W row-major, b, c).
    fn host(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let read = |t: &Tensor<2>| -> Vec<f64> {
            t.to_data()
                .try_to_vec::<f32>()
                .expect("rbm parameters are f32")
                .into_iter()
                .map(f64::from)
                .collect()
        };
        (
            read(&self.weight),
            read(&self.visible_bias),
            read(&self.hidden_bias),
        )
    }

    /// log Z by enumerating the smaller layer's states, in f64 on the host; `None` when that
    /// layer has more than `ENUMERABLE_UNITS` units.
    pub fn log_partition(&self) -> Option<f64> {
        let (nv, nh) = (self.visible(), self.hidden());
        if nv.min(nh) > ENUMERABLE_UNITS {
            return None;
        }
        let (w, b, c) = self.host();
        // Summing out the larger layer analytically leaves a sum over the smaller one:
        // over v: Σ_v exp(v·b + Σ_j softplus(c_j + (vW)_j)); over h symmetrically.
        let (n, m, own_bias, other_bias) = if nv <= nh {
            (nv, nh, &b, &c)
        } else {
            (nh, nv, &c, &b)
        };
        let weight = |i: usize, j: usize| {
            if nv <= nh {
                w[i * nh + j]
            } else {
                w[j * nh + i]
            }
        };
        let mut terms = Vec::with_capacity(1 << n);
        let mut acc = vec![0.0; m];
        for state in 0u32..(1u32 << n) {
            acc.copy_from_slice(other_bias);
            let mut linear = 0.0;
            for (i, bias) in own_bias.iter().enumerate() {
                if state >> i & 1 == 1 {
                    linear += bias;
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a += weight(i, j);
                    }
                }
            }
            terms.push(linear + acc.iter().map(|&x| softplus64(x)).sum::<f64>());
        }
        Some(log_sum_exp(&terms))
    }

    /// Exact mean log-likelihood of the binary rows `x` (`[n, visible]`, row-major), or
    /// `None` when the partition function is not enumerable.
    pub fn log_likelihood(&self, x: &[f32]) -> Option<f64> {
        let log_z = self.log_partition()?;
        let (w, b, c) = self.host();
        let (nv, nh) = (self.visible(), self.hidden());
        let rows = x.len() / nv;
        let mut total = 0.0;
        for v in x.chunks(nv) {
            let mut neg_f: f64 = v.iter().zip(&b).map(|(&vi, bi)| vi as f64 * bi).sum();
            for (j, &cj) in c.iter().enumerate() {
                let a = cj
                    + v.iter()
                        .enumerate()
                        .map(|(i, &vi)| vi as f64 * w[i * nh + j])
                        .sum::<f64>();
                neg_f += softplus64(a);
            }
            total += neg_f - log_z;
        }
        Some(total / rows.max(1) as f64)
    }
}

fn softplus64(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        ops::ln_1p_f64(ops::exp_f64(x))
    }
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + ops::ln_f64(v.iter().map(|x| ops::exp_f64(x - max)).sum::<f64>())
}

/// A stack of RBMs, data side first; rbm l+1's visible layer is rbm l's hidden layer.
#[derive(Debug, Clone)]
pub struct Dbn {
    pub rbms: Vec<Rbm>,
}

impl Dbn {
    /// Draws `n` samples by an ancestral pass: `gibbs` alternating Gibbs steps in the top
    /// RBM from random binary states, then one top-down pass through the directed layers
    /// below, sampling each layer and returning the visible probabilities (the images).
    pub fn samples(
        &self,
        n: usize,
        gibbs: usize,
        rng: &mut Stream,
        device: &Device,
    ) -> Vec<Vec<f32>> {
        let Some(top) = self.rbms.last() else {
            return Vec::new();
        };
        if n == 0 {
            return Vec::new();
        }
        let start = matrix(vec![0.5; n * top.hidden()], n, top.hidden(), device);
        let mut h = bernoulli(start, rng);
        let mut v = top.visible_probs(h.clone());
        for _ in 0..gibbs {
            let vs = bernoulli(v, rng);
            h = bernoulli(top.hidden_probs(vs), rng);
            v = top.visible_probs(h.clone());
        }
        for rbm in self.rbms.iter().rev().skip(1) {
            v = rbm.visible_probs(bernoulli(v, rng));
        }
        let width = self.rbms[0].visible();
        v.into_data()
            .try_to_vec::<f32>()
            .expect("samples are f32")
            .chunks(width)
            .map(<[f32]>::to_vec)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rbm(nv: usize, nh: usize, seed: u64) -> Rbm {
        let device = Device::flex();
        let mut rng = Stream::new(seed, "t");
        let mut draw = |n: usize| {
            (0..n)
                .map(|_| rng.normal() as f32 * 0.7)
                .collect::<Vec<f32>>()
        };
        Rbm {
            weight: matrix(draw(nv * nh), nv, nh, &device),
            visible_bias: matrix(draw(nv), 1, nv, &device),
            hidden_bias: matrix(draw(nh), 1, nh, &device),
        }
    }

    /// Brute force over every (v, h) pair of a 3×4 RBM: log Z and log p(v) agree with the
    /// enumeration over one layer, whichever layer is smaller.
    #[test]
    fn exact_likelihood_matches_brute_force() {
        for (nv, nh) in [(3, 4), (4, 3)] {
            let r = rbm(nv, nh, 1);
            let (w, b, c) = r.host();
            let energy = |v: u32, h: u32| {
                let bit = |s: u32, i: usize| (s >> i & 1) as f64;
                let mut e = 0.0;
                for i in 0..nv {
                    e += bit(v, i) * b[i];
                    for j in 0..nh {
                        e += bit(v, i) * bit(h, j) * w[i * nh + j];
                    }
                }
                for (j, cj) in c.iter().enumerate() {
                    e += bit(h, j) * cj;
                }
                e
            };
            let all: Vec<f64> = (0..1u32 << nv)
                .flat_map(|v| (0..1u32 << nh).map(move |h| (v, h)))
                .map(|(v, h)| energy(v, h))
                .collect();
            let log_z = log_sum_exp(&all);
            assert!(
                (r.log_partition().unwrap() - log_z).abs() < 1e-9,
                "{nv}x{nh}"
            );
            let v = 0b101u32;
            let marginal: Vec<f64> = (0..1u32 << nh).map(|h| energy(v, h)).collect();
            let want = log_sum_exp(&marginal) - log_z;
            let x: Vec<f32> = (0..nv).map(|i| (v >> i & 1) as f32).collect();
            assert!((r.log_likelihood(&x).unwrap() - want).abs() < 1e-9);
        }
    }

    /// The free energy on the device agrees with the host computation behind the likelihood.
    #[test]
    fn free_energy_matches_the_likelihood() {
        let r = rbm(5, 3, 2);
        let x = vec![1.0, 0.0, 1.0, 1.0, 0.0];
        let f = r
            .mean_free_energy(matrix(x.clone(), 1, 5, &Device::flex()))
            .into_scalar::<f32>() as f64;
        let ll = r.log_likelihood(&x).unwrap();
        assert!(
            (-f - r.log_partition().unwrap() - ll).abs() < 1e-4,
            "{f} {ll}"
        );
    }
}
