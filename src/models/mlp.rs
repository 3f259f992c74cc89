//! The deep MLP: dense layers with a hand-derived backward pass that yields δ = ∂L/∂z at
//! every layer as a by-product, plus its Burn `Module` form for autodiff cross-checks.
//!
//! Why by hand: δ at each pre-activation is the quantity this lab exists to show, and the
//! chain rule for dense layers is three matrix products per layer. Autodiff would need a
//! zero "probe" leaf added at every layer to expose δ; the hand-written pass gets it free and
//! skips the graph bookkeeping. `tests::backward_matches_autodiff` holds it to Burn's
//! autodiff at every layer.

use super::{Backward, LayerSignals, Network, Saturation, activation, init};
use crate::experiment::{Activation, ModelSection};
use crate::models::ops::PortableMatrix;
use crate::rng::Stream;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

/// One dense layer: z = h·W + b with W stored `[fan_in, fan_out]` and b as `[1, fan_out]`.
#[derive(Debug, Clone)]
pub struct Dense {
    pub weight: Tensor<2>,
    pub bias: Tensor<2>,
}

/// A deep MLP: `depth` hidden layers of `width` units, then a linear output layer.
#[derive(Debug, Clone)]
pub struct Mlp {
    pub layers: Vec<Dense>,
    pub activation: Activation,
    pub slope: f64,
}

/// What the forward pass keeps for the backward pass.
pub struct Tape {
    /// Input of each layer (the data, then each hidden output).
    pub inputs: Vec<Tensor<2>>,
    /// Pre-activation of each layer (the last is the output logits).
    pub zs: Vec<Tensor<2>>,
}

/// The same network as a Burn module (burn-nn `Linear` layers), for autodiff and export.
#[derive(Module, Debug)]
pub struct MlpModule {
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// Builds and initialises the network from the model section, deterministic from `seed`.
    pub fn new(
        m: &ModelSection,
        input_dim: usize,
        output_dim: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = Stream::new(seed, "init");
        let mut dims = vec![input_dim];
        dims.extend(std::iter::repeat_n(m.width, m.depth));
        dims.push(output_dim);
        let layers = dims
            .windows(2)
            .map(|w| {
                let weight = init::weights(m.init, w[0], w[1], m.sigma_w, &mut rng);
                let bias = init::biases(w[1], m.sigma_b, &mut rng);
                Dense {
                    weight: Tensor::from_data(TensorData::new(weight, [w[0], w[1]]), device),
                    bias: Tensor::from_data(TensorData::new(bias, [1, w[1]]), device),
                }
            })
            .collect();
        Self {
            layers,
            activation: m.activation,
            slope: m.leaky_slope,
        }
    }

    fn dense(layer: &Dense, h: Tensor<2>) -> Tensor<2> {
        h.pmatmul(layer.weight.clone()).add(layer.bias.clone())
    }

    /// Output logits with the hidden layers marked in `deleted` replaced by the identity (only
    /// a square layer can be: `lesionable` says which), as in the lesion study of Veit, Wilber &
    /// Belongie (2016): a plain net has one path, and deleting any layer breaks it.
    pub fn forward_lesioned(&self, x: Tensor<2>, deleted: &[bool]) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            if deleted.get(i).copied().unwrap_or(false) {
                return h;
            }
            let z = Self::dense(layer, h);
            if i == last {
                z
            } else {
                activation::forward_fast(self.activation, self.slope, z)
            }
        })
    }

    /// Whether layer `i` (0-based) is a hidden layer after the first that maps the width to
    /// itself, so that deleting it leaves a net that still computes (the first reads the data,
    /// the last is the read-out).
    pub fn lesionable(&self, i: usize) -> bool {
        let [fan_in, fan_out] = self.layers[i].weight.dims();
        i > 0 && i + 1 < self.layers.len() && fan_in == fan_out
    }

    /// The parameters as a Burn module of `Linear` layers.
    pub fn to_module(&self) -> MlpModule {
        MlpModule {
            layers: self
                .layers
                .iter()
                .map(|l| Linear {
                    weight: Param::from_tensor(l.weight.clone()),
                    bias: Some(Param::from_tensor(l.bias.clone().squeeze_dim(0))),
                })
                .collect(),
        }
    }
}

impl Network for Mlp {
    type Tape = Tape;

    /// `h1`..`hN`, then `out`.
    fn layer_names(&self) -> Vec<String> {
        let n = self.layers.len();
        (0..n)
            .map(|i| {
                if i + 1 == n {
                    "out".to_string()
                } else {
                    format!("h{}", i + 1)
                }
            })
            .collect()
    }

    /// `<layer>.weight` (`[fan_in, fan_out]`, row-major), then `<layer>.bias` (`[1, fan_out]`).
    fn param_names(&self) -> Vec<String> {
        self.layer_names()
            .into_iter()
            .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
            .collect()
    }

    fn params(&self) -> Vec<Tensor<2>> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight.clone(), l.bias.clone()])
            .collect()
    }

    fn set_params(&mut self, params: Vec<Tensor<2>>) {
        debug_assert_eq!(params.len(), 2 * self.layers.len());
        let mut it = params.into_iter();
        for layer in &mut self.layers {
            layer.weight = it.next().expect("a weight per layer");
            layer.bias = it.next().expect("a bias per layer");
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let z = Self::dense(layer, h);
            if i == last {
                z
            } else {
                activation::forward_fast(self.activation, self.slope, z)
            }
        })
    }

    fn forward_tape(&self, x: Tensor<2>) -> (Tensor<2>, Tape) {
        let last = self.layers.len() - 1;
        let mut tape = Tape {
            inputs: Vec::with_capacity(self.layers.len()),
            zs: Vec::with_capacity(self.layers.len()),
        };
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            let z = Self::dense(layer, h.clone());
            tape.inputs.push(h);
            h = if i == last {
                z.clone()
            } else {
                activation::forward_fast(self.activation, self.slope, z.clone())
            };
            tape.zs.push(z);
        }
        (h, tape)
    }

    /// δ_L = ∂L/∂logits; then per layer ∂L/∂W = h_inᵀ·δ, ∂L/∂b = Σ_batch δ, and
    /// δ_{l−1} = (δ_l·W_lᵀ) ⊙ φ′(z_{l−1}).
    fn backward(&self, tape: Tape, delta_out: Tensor<2>) -> Backward {
        let n = self.layers.len();
        let mut grads = vec![None; 2 * n];
        let mut layers = Vec::with_capacity(n);
        let mut delta = delta_out;
        let Tape { inputs, zs } = tape;
        let mut outputs: Vec<Tensor<2>> = inputs[1..].to_vec();
        outputs.push(zs[n - 1].clone());
        for l in (0..n).rev() {
            let input = &inputs[l];
            grads[2 * l] = Some(input.clone().pmatmul_tn(delta.clone()));
            grads[2 * l + 1] = Some(delta.clone().psum_dim(0));
            let next = (l > 0).then(|| {
                let g_h = delta.clone().pmatmul_nt(self.layers[l].weight.clone());
                // The input of layer l is the output of layer l−1's activation.
                match activation::derivative(self.activation, self.slope, &zs[l - 1], input) {
                    Some(d) => g_h.mul(d),
                    None => g_h,
                }
            });
            let output = outputs.pop().expect("one output per layer");
            let saturated = (l + 1 < n).then(|| Saturation::Of {
                activation: self.activation,
                z: zs[l].clone(),
            });
            layers.push(LayerSignals {
                delta: delta.clone(),
                output,
                saturated,
                weight: 2 * l,
                bias: Some(2 * l + 1),
                skip: None,
                delta_sq: None,
            });
            if let Some(d) = next {
                delta = d;
            }
        }
        layers.reverse();
        Backward {
            grads: grads
                .into_iter()
                .map(|g| g.expect("every parameter has a gradient"))
                .collect(),
            layers,
            time: Vec::new(),
            levels: None,
        }
    }
}

impl MlpModule {
    /// The forward pass in plain Burn ops (autodiff-capable).
    pub fn forward(&self, x: Tensor<2>, act: Activation, slope: f64) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let z = layer.forward(h);
            if i == last {
                z
            } else {
                activation::forward(act, slope, z)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Init;
    use crate::models::Network;

    /// The hand-written backward pass agrees with Burn's autodiff at every layer, for every
    /// activation: δ via a zero leaf added to each pre-activation, ∂L/∂W via the parameters.
    #[test]
    fn backward_matches_autodiff() {
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Gelu,
            Activation::Linear,
        ] {
            let device = Device::flex();
            let m = ModelSection {
                depth: 4,
                width: 7,
                activation: act,
                init: Init::XavierNormal,
                sigma_w: 1.3,
                sigma_b: 0.2,
                ..ModelSection::default()
            };
            let mlp = Mlp::new(&m, 3, 2, 5, &device);
            let mut rng = Stream::new(9, "x");
            let xs: Vec<f32> = (0..5 * 3).map(|_| rng.normal() as f32).collect();
            let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [5, 3]), &device);
            // L = Σ logits ⊙ c for a fixed c, so ∂L/∂logits = c.
            let cs: Vec<f32> = (0..5 * 2).map(|_| rng.normal() as f32).collect();
            let c = Tensor::<2>::from_data(TensorData::new(cs.clone(), [5, 2]), &device);
            let (_, tape) = mlp.forward_tape(x.clone());
            let ours = mlp.backward(tape, c.clone());

            let ad = device.clone().autodiff();
            let module = mlp.to_module();
            let weights: Vec<Tensor<2>> = module
                .layers
                .iter()
                .map(|l| Tensor::from_data(l.weight.val().into_data(), &ad).require_grad())
                .collect();
            let biases: Vec<Tensor<1>> = module
                .layers
                .iter()
                .map(|l| {
                    Tensor::from_data(l.bias.as_ref().unwrap().val().into_data(), &ad)
                        .require_grad()
                })
                .collect();
            let leaves: Vec<Tensor<2>> = (0..weights.len())
                .map(|l| Tensor::zeros([5, weights[l].dims()[1]], &ad).require_grad())
                .collect();
            let mut h = Tensor::<2>::from_data(TensorData::new(xs, [5, 3]), &ad);
            for l in 0..weights.len() {
                let z =
                    burn::tensor::module::linear(h, weights[l].clone(), Some(biases[l].clone()))
                        + leaves[l].clone();
                h = if l + 1 == weights.len() {
                    z
                } else {
                    activation::forward(act, m.leaky_slope, z)
                };
            }
            let c_ad = Tensor::<2>::from_data(TensorData::new(cs, [5, 2]), &ad);
            let grads = (h * c_ad).sum().backward();
            let close = |a: Tensor<2>, b: Tensor<2>, what: &str| {
                let a = a.into_data().try_to_vec::<f32>().unwrap();
                let b = b.into_data().try_to_vec::<f32>().unwrap();
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        (x - y).abs() <= 1e-5 + 1e-4 * y.abs(),
                        "{act:?} {what}: {x} vs {y}"
                    );
                }
            };
            for l in 0..weights.len() {
                let layer = &ours.layers[l];
                close(
                    layer.delta.clone(),
                    leaves[l].grad(&grads).unwrap(),
                    &format!("delta {l}"),
                );
                close(
                    ours.grads[layer.weight].clone(),
                    weights[l].grad(&grads).unwrap(),
                    &format!("grad_w {l}"),
                );
                close(
                    ours.grads[layer.bias.unwrap()].clone(),
                    biases[l].grad(&grads).unwrap().unsqueeze(),
                    &format!("grad_b {l}"),
                );
            }
        }
    }

    #[test]
    fn module_form_computes_the_same_function() {
        let device = Device::flex();
        let mlp = Mlp::new(
            &ModelSection {
                depth: 3,
                width: 5,
                ..ModelSection::default()
            },
            2,
            3,
            1,
            &device,
        );
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![0.5f32, -1.0, 2.0, 0.1], [2, 2]),
            &device,
        );
        let a = mlp
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let b = mlp
            .to_module()
            .forward(x, mlp.activation, mlp.slope)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // The lab's tanh kernel and Burn's agree to 5e-7 per element (models::kernels).
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        assert_eq!(mlp.layer_names(), ["h1", "h2", "h3", "out"]);
    }
}
