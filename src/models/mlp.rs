//! The deep MLP: dense layers with a hand-derived backward pass that yields δ = ∂L/∂z at
//! every layer as a by-product, plus its Burn `Module` form for autodiff cross-checks.
//!
//! Why by hand: δ at each pre-activation is the quantity this lab exists to show, and the
//! chain rule for dense layers is three matrix products per layer. Autodiff would need a
//! zero "probe" leaf added at every layer to expose δ; the hand-written pass gets it free and
//! skips the graph bookkeeping. `tests::backward_matches_autodiff` holds it to Burn's
//! autodiff at every layer.

use super::{activation, init};
use crate::experiment::{Activation, ModelSection};
use crate::rng::Stream;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

/// One dense layer: z = h·W + b with W stored `[fan_in, fan_out]`.
#[derive(Debug, Clone)]
pub struct Dense {
    pub weight: Tensor<2>,
    pub bias: Tensor<1>,
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

/// Gradients of one backward pass, input side first.
pub struct Grads {
    /// ∂L/∂z at every layer's pre-activation.
    pub deltas: Vec<Tensor<2>>,
    pub weights: Vec<Tensor<2>>,
    pub biases: Vec<Tensor<1>>,
}

/// The same network as a Burn module (burn-nn `Linear` layers), for autodiff and export.
#[derive(Module, Debug)]
pub struct MlpModule {
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// Builds and initialises the network from the model section, deterministic from `seed`.
    pub fn new(m: &ModelSection, input_dim: usize, output_dim: usize, seed: u64, device: &Device) -> Self {
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
                    bias: Tensor::from_data(TensorData::new(bias, [w[1]]), device),
                }
            })
            .collect();
        Self {
            layers,
            activation: m.activation,
            slope: m.leaky_slope,
        }
    }

    /// Layer labels, input side first: `h1`..`hN`, then `out`.
    pub fn layer_names(&self) -> Vec<String> {
        let n = self.layers.len();
        (0..n)
            .map(|i| if i + 1 == n { "out".to_string() } else { format!("h{}", i + 1) })
            .collect()
    }

    fn dense(layer: &Dense, h: Tensor<2>) -> Tensor<2> {
        burn::tensor::module::linear(h, layer.weight.clone(), Some(layer.bias.clone()))
    }

    /// Output logits, keeping nothing (evaluation).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let z = Self::dense(layer, h);
            if i == last { z } else { activation::forward(self.activation, self.slope, z) }
        })
    }

    /// Output logits and the tape for `backward`.
    pub fn forward_tape(&self, x: Tensor<2>) -> (Tensor<2>, Tape) {
        let last = self.layers.len() - 1;
        let mut tape = Tape {
            inputs: Vec::with_capacity(self.layers.len()),
            zs: Vec::with_capacity(self.layers.len()),
        };
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            let z = Self::dense(layer, h.clone());
            tape.inputs.push(h);
            h = if i == last { z.clone() } else { activation::forward(self.activation, self.slope, z.clone()) };
            tape.zs.push(z);
        }
        (h, tape)
    }

    /// Back-propagates `delta_out` = ∂L/∂logits through the network.
    pub fn backward(&self, tape: &Tape, delta_out: Tensor<2>) -> Grads {
        let n = self.layers.len();
        let mut deltas = Vec::with_capacity(n);
        let mut weights = Vec::with_capacity(n);
        let mut biases = Vec::with_capacity(n);
        let mut delta = delta_out;
        for l in (0..n).rev() {
            let input = &tape.inputs[l];
            weights.push(input.clone().transpose().matmul(delta.clone()));
            let [_, d_out] = delta.dims();
            biases.push(delta.clone().sum_dim(0).reshape([d_out]));
            let next = (l > 0).then(|| {
                let g_h = delta.clone().matmul(self.layers[l].weight.clone().transpose());
                // input of layer l is the output of layer l−1's activation
                match activation::derivative(self.activation, self.slope, &tape.zs[l - 1], input) {
                    Some(d) => g_h.mul(d),
                    None => g_h,
                }
            });
            deltas.push(delta);
            match next {
                Some(d) => delta = d,
                None => break,
            }
        }
        deltas.reverse();
        weights.reverse();
        biases.reverse();
        Grads { deltas, weights, biases }
    }

    /// The parameters as a Burn module of `Linear` layers.
    pub fn to_module(&self) -> MlpModule {
        MlpModule {
            layers: self
                .layers
                .iter()
                .map(|l| Linear {
                    weight: Param::from_tensor(l.weight.clone()),
                    bias: Some(Param::from_tensor(l.bias.clone())),
                })
                .collect(),
        }
    }

    /// Every parameter with its path, in the canonical order weights are hashed and stored:
    /// layer by layer, weight (`[fan_in, fan_out]`, row-major) then bias.
    pub fn named_parameters(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for (name, l) in self.layer_names().into_iter().zip(&self.layers) {
            let to_vec = |t: &Tensor<2>| t.to_data().try_to_vec::<f32>().expect("weights are f32");
            out.push((format!("{name}.weight"), l.weight.dims().to_vec(), to_vec(&l.weight)));
            out.push((
                format!("{name}.bias"),
                l.bias.dims().to_vec(),
                l.bias.to_data().try_to_vec::<f32>().expect("biases are f32"),
            ));
        }
        out
    }
}

impl MlpModule {
    /// The forward pass in plain Burn ops (autodiff-capable).
    pub fn forward(&self, x: Tensor<2>, act: Activation, slope: f64) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let z = layer.forward(h);
            if i == last { z } else { activation::forward(act, slope, z) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Init;

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
            let ours = mlp.backward(&tape, c.clone());

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
                .map(|l| Tensor::from_data(l.bias.as_ref().unwrap().val().into_data(), &ad).require_grad())
                .collect();
            let leaves: Vec<Tensor<2>> = (0..weights.len())
                .map(|l| Tensor::zeros([5, weights[l].dims()[1]], &ad).require_grad())
                .collect();
            let mut h = Tensor::<2>::from_data(TensorData::new(xs, [5, 3]), &ad);
            for l in 0..weights.len() {
                let z = burn::tensor::module::linear(h, weights[l].clone(), Some(biases[l].clone()))
                    + leaves[l].clone();
                h = if l + 1 == weights.len() { z } else { activation::forward(act, m.leaky_slope, z) };
            }
            let c_ad = Tensor::<2>::from_data(TensorData::new(cs, [5, 2]), &ad);
            let grads = (h * c_ad).sum().backward();
            let close = |a: Tensor<2>, b: Tensor<2>, what: &str| {
                let a = a.into_data().try_to_vec::<f32>().unwrap();
                let b = b.into_data().try_to_vec::<f32>().unwrap();
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 1e-5 + 1e-4 * y.abs(), "{act:?} {what}: {x} vs {y}");
                }
            };
            for l in 0..weights.len() {
                close(ours.deltas[l].clone(), leaves[l].grad(&grads).unwrap(), &format!("delta {l}"));
                close(ours.weights[l].clone(), weights[l].grad(&grads).unwrap(), &format!("grad_w {l}"));
                close(
                    ours.biases[l].clone().unsqueeze(),
                    biases[l].grad(&grads).unwrap().unsqueeze(),
                    &format!("grad_b {l}"),
                );
            }
        }
    }

    #[test]
    fn module_form_computes_the_same_function() {
        let device = Device::flex();
        let mlp = Mlp::new(&ModelSection { depth: 3, width: 5, ..ModelSection::default() }, 2, 3, 1, &device);
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 0.1], [2, 2]), &device);
        let a = mlp.forward(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let b = mlp.to_module().forward(x, mlp.activation, mlp.slope).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a, b);
        assert_eq!(mlp.layer_names(), ["h1", "h2", "h3", "out"]);
    }
}
