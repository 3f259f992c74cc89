//! A residual MLP (He et al. 2016): an input projection to the width, then blocks
//! h ← h + α·F(h), then a linear read-out, with a hand-derived backward pass.
//!
//! F is `φ(u·W + b)` (one layer) or `φ(u·W₁ + b₁)·W₂ + b₂` (two layers), where u is h or its
//! layer norm. The skip path passes ∂L/∂h back unchanged, so the error reaching the first
//! block is the output's plus a sum of branch terms rather than a product of Jacobians; the
//! probes show it as `skip_delta` at every block. α = 1/√L keeps the stream's variance from
//! growing with depth. `tests::backward_matches_autodiff` holds the hand-written pass to
//! Burn's autodiff at every layer and every block boundary.

use super::mlp::Dense;
use super::{Backward, LayerSignals, Network, Saturation, activation, init, matrix};
use crate::experiment::{Activation, ModelSection};
use crate::models::ops::PortableMatrix;
use crate::rng::Stream;
use burn::tensor::{Device, Tensor};

/// Added to the variance in layer norm.
const LN_EPS: f64 = 1e-5;

/// The network.
#[derive(Debug, Clone)]
pub struct Resnet {
    /// Input projection to the width, followed by the activation.
    pub stem: Dense,
    /// One or two dense layers per residual branch.
    pub blocks: Vec<Vec<Dense>>,
    pub out: Dense,
    pub activation: Activation,
    pub slope: f64,
    /// α in h ← h + α·F(h).
    pub alpha: f64,
    pub layer_norm: bool,
}

/// One block's forward values.
struct BlockTape {
    /// The branch input: h, or its layer norm.
    u: Tensor<2>,
    /// 1/√(var + ε) per example when layer norm is on.
    inv_std: Option<Tensor<2>>,
    z1: Tensor<2>,
    a1: Tensor<2>,
    /// Second layer's output (two-layer blocks).
    z2: Option<Tensor<2>>,
}

/// What the forward pass keeps.
pub struct ResnetTape {
    x: Tensor<2>,
    z0: Tensor<2>,
    /// The residual stream: h_0 (the stem's output) .. h_L.
    streams: Vec<Tensor<2>>,
    blocks: Vec<BlockTape>,
    logits: Tensor<2>,
}

fn dense(
    rng: &mut Stream,
    m: &ModelSection,
    fan_in: usize,
    fan_out: usize,
    device: &Device,
) -> Dense {
    let w = init::weights(m.init, fan_in, fan_out, m.sigma_w, rng);
    let b = init::biases(fan_out, m.sigma_b, rng);
    Dense {
        weight: matrix(w, fan_in, fan_out, device),
        bias: matrix(b, 1, fan_out, device),
    }
}

fn apply(layer: &Dense, h: Tensor<2>) -> Tensor<2> {
    h.pmatmul(layer.weight.clone()).add(layer.bias.clone())
}

impl Resnet {
    /// `model.depth` blocks of `model.block_layers` layers at `model.width`; every layer drawn
    /// by `model.init` from the `init` stream, input side first.
    pub fn new(
        m: &ModelSection,
        input_dim: usize,
        output_dim: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = Stream::new(seed, "init");
        let w = m.width;
        let stem = dense(&mut rng, m, input_dim, w, device);
        let blocks = (0..m.depth)
            .map(|_| {
                (0..m.block_layers)
                    .map(|_| dense(&mut rng, m, w, w, device))
                    .collect()
            })
            .collect();
        let out = dense(&mut rng, m, w, output_dim, device);
        Self {
            stem,
            blocks,
            out,
            activation: m.activation,
            slope: m.leaky_slope,
            alpha: m.residual_scale.alpha(m.depth),
            layer_norm: m.layer_norm,
        }
    }

    fn act(&self, z: Tensor<2>) -> Tensor<2> {
        activation::forward(self.activation, self.slope, z)
    }

    fn run(&self, x: Tensor<2>) -> ResnetTape {
        self.run_without(x, &[])
    }

    /// The forward pass with the blocks marked in `deleted` taken out (h ← h: the block is the
    /// identity); an empty or short mask deletes nothing past its end.
    fn run_without(&self, x: Tensor<2>, deleted: &[bool]) -> ResnetTape {
        let z0 = apply(&self.stem, x.clone());
        let mut h = self.act(z0.clone());
        let mut streams = vec![h.clone()];
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, layers) in self.blocks.iter().enumerate() {
            if deleted.get(i).copied().unwrap_or(false) {
                streams.push(h.clone());
                continue;
            }
            let (u, inv_std) = if self.layer_norm {
                let centred = h.clone().sub(h.clone().pmean_dim(1));
                let inv = centred
                    .clone()
                    .square()
                    .pmean_dim(1)
                    .add_scalar(LN_EPS)
                    .sqrt()
                    .recip();
                (centred.mul(inv.clone()), Some(inv))
            } else {
                (h.clone(), None)
            };
            let z1 = apply(&layers[0], u.clone());
            let a1 = self.act(z1.clone());
            let z2 = layers.get(1).map(|l2| apply(l2, a1.clone()));
            let branch = z2.clone().unwrap_or_else(|| a1.clone());
            h = h.add(branch.mul_scalar(self.alpha));
            streams.push(h.clone());
            blocks.push(BlockTape {
                u,
                inv_std,
                z1,
                a1,
                z2,
            });
        }
        let logits = apply(&self.out, h);
        ResnetTape {
            x,
            z0,
            streams,
            blocks,
            logits,
        }
    }

    /// φ′(z)·g (g itself for a linear activation).
    fn through_act(&self, g: Tensor<2>, z: &Tensor<2>, h: &Tensor<2>) -> Tensor<2> {
        match activation::derivative(self.activation, self.slope, z, h) {
            Some(d) => g.mul(d),
            None => g,
        }
    }

    /// Output logits with the blocks marked in `deleted` replaced by the identity: the lesion
    /// study of Veit, Wilber & Belongie (2016), where a residual net loses one path in two per
    /// deleted block and a plain net loses every path.
    pub fn forward_lesioned(&self, x: Tensor<2>, deleted: &[bool]) -> Tensor<2> {
        self.run_without(x, deleted).logits
    }

    /// ∂L/∂h_0 (the stream after the stem) carried by the paths that take the branch of exactly
    /// the blocks marked in `through` and the skip of every other: one of the 2^L terms the
    /// full backward pass adds up (Veit et al. 2016, §4.2), with every Jacobian taken at the
    /// whole net's forward state, as in their Fig. 6. `tape` is from [`Network::forward_tape`].
    pub fn path_gradient(
        &self,
        tape: &ResnetTape,
        delta_out: Tensor<2>,
        through: &[bool],
    ) -> Tensor<2> {
        let mut g = delta_out.pmatmul_nt(self.out.weight.clone());
        for (i, (layers, bt)) in self.blocks.iter().zip(&tape.blocks).enumerate().rev() {
            if through[i] {
                g = self.branch_back(layers, bt, g.mul_scalar(self.alpha)).1;
            }
        }
        g
    }

    /// Back through one block's branch from `d_branch` = ∂L/∂F(u): (∂L/∂z₁, ∂L/∂h by way of
    /// the branch), through the second layer when there is one and through layer norm.
    fn branch_back(
        &self,
        layers: &[Dense],
        bt: &BlockTape,
        d_branch: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let d_a1 = match layers.get(1) {
            Some(l2) => d_branch.pmatmul_nt(l2.weight.clone()),
            None => d_branch,
        };
        let dz1 = self.through_act(d_a1, &bt.z1, &bt.a1);
        let du = dz1.clone().pmatmul_nt(layers[0].weight.clone());
        let dh = match &bt.inv_std {
            // d/dh of (h − μ)/σ̂: (du − mean(du) − u·mean(du ⊙ u)) / σ̂, per example.
            Some(inv) => {
                let mean_du = du.clone().pmean_dim(1);
                let mean_du_u = du.clone().mul(bt.u.clone()).pmean_dim(1);
                du.sub(mean_du)
                    .sub(bt.u.clone().mul(mean_du_u))
                    .mul(inv.clone())
            }
            None => du,
        };
        (dz1, dh)
    }

    fn dense_layers(&self) -> Vec<&Dense> {
        std::iter::once(&self.stem)
            .chain(self.blocks.iter().flatten())
            .chain(std::iter::once(&self.out))
            .collect()
    }
}

impl Network for Resnet {
    type Tape = ResnetTape;

    /// `in`, then `b1`..`bL` (one-layer blocks) or `b1.1`, `b1.2`, … (two-layer blocks), then `out`.
    fn layer_names(&self) -> Vec<String> {
        let mut names = vec!["in".to_string()];
        for (l, layers) in self.blocks.iter().enumerate() {
            if layers.len() == 1 {
                names.push(format!("b{}", l + 1));
            } else {
                names.extend((1..=layers.len()).map(|j| format!("b{}.{j}", l + 1)));
            }
        }
        names.push("out".into());
        names
    }

    fn param_names(&self) -> Vec<String> {
        self.layer_names()
            .into_iter()
            .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
            .collect()
    }

    fn params(&self) -> Vec<Tensor<2>> {
        self.dense_layers()
            .into_iter()
            .flat_map(|l| [l.weight.clone(), l.bias.clone()])
            .collect()
    }

    fn set_params(&mut self, params: Vec<Tensor<2>>) {
        let mut it = params.into_iter();
        let mut next = |layer: &mut Dense| {
            layer.weight = it.next().expect("a weight per layer");
            layer.bias = it.next().expect("a bias per layer");
        };
        next(&mut self.stem);
        for layer in self.blocks.iter_mut().flatten() {
            next(layer);
        }
        next(&mut self.out);
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.run(x).logits
    }

    fn forward_tape(&self, x: Tensor<2>) -> (Tensor<2>, ResnetTape) {
        let tape = self.run(x);
        (tape.logits.clone(), tape)
    }

    /// g_L = δ_out·W_outᵀ; per block from the last: the branch gets α·g, its layers are
    /// back-propagated as in the MLP (and through layer norm), and g_{l−1} = g_l + (branch
    /// term) — the skip path adds, never multiplies.
    fn backward(&self, tape: ResnetTape, delta_out: Tensor<2>) -> Backward {
        let ResnetTape {
            x,
            z0,
            streams,
            blocks,
            logits,
        } = tape;
        let n_layers = self.dense_layers().len();
        let mut grads: Vec<Option<Tensor<2>>> = vec![None; 2 * n_layers];
        let mut signals: Vec<LayerSignals> = Vec::with_capacity(n_layers);
        let last_stream = streams
            .last()
            .expect("the stream starts at the stem")
            .clone();
        grads[2 * n_layers - 2] = Some(last_stream.pmatmul_tn(delta_out.clone()));
        grads[2 * n_layers - 1] = Some(delta_out.clone().psum_dim(0));
        signals.push(LayerSignals {
            delta: delta_out.clone(),
            output: logits,
            saturated: None,
            weight: 2 * n_layers - 2,
            bias: Some(2 * n_layers - 1),
            skip: None,
            delta_sq: None,
        });
        let mut g = delta_out.pmatmul_nt(self.out.weight.clone());
        // Parameter index of the first layer of each block.
        let mut index = 2 * n_layers - 2;
        for (layers, bt) in self.blocks.iter().zip(blocks).rev() {
            index -= 2 * layers.len();
            let skip = g.clone();
            let d_branch = g.clone().mul_scalar(self.alpha);
            if let (Some(z2), Some(_)) = (&bt.z2, layers.get(1)) {
                grads[index + 2] = Some(bt.a1.clone().pmatmul_tn(d_branch.clone()));
                grads[index + 3] = Some(d_branch.clone().psum_dim(0));
                signals.push(LayerSignals {
                    delta: d_branch.clone(),
                    output: z2.clone(),
                    saturated: None,
                    weight: index + 2,
                    bias: Some(index + 3),
                    skip: Some(skip.clone()),
                    delta_sq: None,
                });
            }
            let (dz1, dh_branch) = self.branch_back(layers, &bt, d_branch);
            grads[index] = Some(bt.u.clone().pmatmul_tn(dz1.clone()));
            grads[index + 1] = Some(dz1.clone().psum_dim(0));
            signals.push(LayerSignals {
                delta: dz1,
                saturated: Some(Saturation::Of {
                    activation: self.activation,
                    z: bt.z1.clone(),
                }),
                output: bt.a1,
                weight: index,
                bias: Some(index + 1),
                skip: (layers.len() == 1).then_some(skip),
                delta_sq: None,
            });
            g = g.add(dh_branch);
        }
        let h0 = streams
            .into_iter()
            .next()
            .expect("the stream starts at the stem");
        let dz0 = self.through_act(g.clone(), &z0, &h0);
        grads[0] = Some(x.pmatmul_tn(dz0.clone()));
        grads[1] = Some(dz0.clone().psum_dim(0));
        signals.push(LayerSignals {
            delta: dz0,
            saturated: Some(Saturation::Of {
                activation: self.activation,
                z: z0.clone(),
            }),
            output: h0,
            weight: 0,
            bias: Some(1),
            skip: Some(g),
            delta_sq: None,
        });
        signals.reverse();
        Backward {
            grads: grads
                .into_iter()
                .map(|g| g.expect("every parameter has a gradient"))
                .collect(),
            layers: signals,
            time: Vec::new(),
            levels: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{Init, ResidualScale};
    use crate::models::rnn::tests::{close, leaf, random};

    /// The hand-written pass agrees with autodiff for one- and two-layer blocks, with and
    /// without layer norm: δ at every layer, ∂L/∂h on the skip path after every block (zero
    /// leaves added to each), and every parameter's gradient.
    #[test]
    fn backward_matches_autodiff() {
        for (block_layers, layer_norm, act) in [
            (1, false, Activation::Tanh),
            (2, true, Activation::Relu),
            (2, false, Activation::Gelu),
            (1, true, Activation::Sigmoid),
        ] {
            let device = Device::flex();
            let m = ModelSection {
                depth: 3,
                width: 6,
                block_layers,
                layer_norm,
                activation: act,
                init: Init::XavierNormal,
                sigma_b: 0.2,
                residual_scale: ResidualScale::Value(0.7),
                ..ModelSection::default()
            };
            let net = Resnet::new(&m, 4, 3, 2, &device);
            let b = 5;
            let x = random(b, 4, 1, &device);
            let cot = random(b, 3, 2, &device);
            let (_, tape) = net.forward_tape(x.clone());
            let ours = net.backward(tape, cot.clone());

            let ad = device.clone().autodiff();
            let p: Vec<Tensor<2>> = net.params().iter().map(|t| leaf(t, &ad)).collect();
            let n_layers = p.len() / 2;
            let z_leaves: Vec<Tensor<2>> = (0..n_layers)
                .map(|l| Tensor::zeros([b, p[2 * l].dims()[1]], &ad).require_grad())
                .collect();
            let h_leaves: Vec<Tensor<2>> = (0..=3)
                .map(|_| Tensor::zeros([b, 6], &ad).require_grad())
                .collect();
            let lin = |h: Tensor<2>, l: usize| {
                h.matmul(p[2 * l].clone()) + p[2 * l + 1].clone() + z_leaves[l].clone()
            };
            let phi = |z: Tensor<2>| activation::forward(act, m.leaky_slope, z);
            let mut h = phi(lin(Tensor::from_data(x.to_data(), &ad), 0)) + h_leaves[0].clone();
            let mut l = 1;
            for blk in 0..3 {
                let u = if layer_norm {
                    let c = h.clone() - h.clone().mean_dim(1);
                    c.clone() / (c.square().mean_dim(1) + LN_EPS).sqrt()
                } else {
                    h.clone()
                };
                let mut f = phi(lin(u, l));
                l += 1;
                if block_layers == 2 {
                    f = lin(f, l);
                    l += 1;
                }
                h = h + f * 0.7 + h_leaves[blk + 1].clone();
            }
            let logits = lin(h, l);
            let grads = (logits * Tensor::<2>::from_data(cot.to_data(), &ad))
                .sum()
                .backward();

            let names = net.layer_names();
            for (i, sig) in ours.layers.iter().enumerate() {
                close(
                    sig.delta.clone(),
                    z_leaves[i].grad(&grads).unwrap(),
                    &format!("{act:?} δ {}", names[i]),
                );
            }
            let skips: Vec<&Tensor<2>> =
                ours.layers.iter().filter_map(|s| s.skip.as_ref()).collect();
            assert_eq!(
                skips.len(),
                4,
                "the stem and every block report the skip path"
            );
            for (blk, s) in skips.iter().enumerate() {
                close(
                    (*s).clone(),
                    h_leaves[blk].grad(&grads).unwrap(),
                    &format!("{act:?} skip {blk}"),
                );
            }
            for (i, name) in net.param_names().iter().enumerate() {
                close(ours.grads[i].clone(), p[i].grad(&grads).unwrap(), name);
            }
        }
    }

    #[test]
    fn names_and_alpha() {
        let device = Device::flex();
        let m = ModelSection {
            depth: 4,
            width: 3,
            residual_scale: ResidualScale::InvSqrtDepth,
            ..ModelSection::default()
        };
        let net = Resnet::new(&m, 2, 2, 0, &device);
        assert_eq!(net.alpha, 0.5);
        assert_eq!(
            net.layer_names(),
            [
                "in", "b1.1", "b1.2", "b2.1", "b2.2", "b3.1", "b3.2", "b4.1", "b4.2", "out"
            ]
        );
        assert_eq!(net.params().len(), 20);
    }
}
