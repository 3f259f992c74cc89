//! Hidden-layer non-linearities: forward, derivative for the hand-written backward pass, and
//! the saturation measure each one has.

use super::kernels;
use crate::experiment::Activation;
use crate::models::ops::{self, PortableOps};
use burn::tensor::{Tensor, activation};

/// Threshold of |tanh| counted as saturated.
pub const TANH_SATURATED: f64 = 0.97;
/// Sigmoid outputs outside [0.03, 0.97] count as saturated.
pub const SIGMOID_SATURATED: f64 = 0.03;
/// GELU counts as saturated where z < −2.5, where |GELU′(z)| < 0.04.
pub const GELU_SATURATED_Z: f64 = -2.5;

/// φ(z) for the lab's own passes: tanh and sigmoid through the vectorised kernels.
pub fn forward_fast(act: Activation, slope: f64, z: Tensor<2>) -> Tensor<2> {
    match act {
        Activation::Tanh => kernels::tanh(z),
        Activation::Sigmoid => kernels::sigmoid(z),
        _ => forward(act, slope, z),
    }
}

/// φ(z) in Burn's ops (autodiff-capable; used by the Burn-module form and cross-checks), or
/// the portable engine's during a portable run.
pub fn forward(act: Activation, slope: f64, z: Tensor<2>) -> Tensor<2> {
    if ops::on_portable(&z) {
        match act {
            Activation::Tanh => return ops::tanh(z),
            Activation::Sigmoid => return ops::sigmoid(z),
            Activation::Gelu => return ops::gelu(z),
            // ReLU, leaky ReLU and the identity are exact in Burn's ops.
            _ => {}
        }
    }
    match act {
        Activation::Tanh => z.tanh(),
        Activation::Sigmoid => activation::sigmoid(z),
        Activation::Relu => activation::relu(z),
        Activation::LeakyRelu => activation::leaky_relu(z, slope),
        Activation::Gelu => activation::gelu(z),
        Activation::Linear => z,
    }
}

/// φ′(z), from the output h = φ(z) where that is cheaper (tanh, sigmoid).
pub fn derivative(act: Activation, slope: f64, z: &Tensor<2>, h: &Tensor<2>) -> Option<Tensor<2>> {
    Some(match act {
        Activation::Tanh => h.clone().square().neg().add_scalar(1.0),
        Activation::Sigmoid => h.clone().mul(h.clone().neg().add_scalar(1.0)),
        Activation::Relu => z.clone().greater_elem(0.0).float(),
        Activation::LeakyRelu => {
            let pos = z.clone().greater_elem(0.0).float();
            pos.mul_scalar(1.0 - slope).add_scalar(slope)
        }
        Activation::Gelu => {
            // d/dz [z·Φ(z)] = Φ(z) + z·ϕ(z)
            let cdf = z
                .clone()
                .div_scalar(std::f64::consts::SQRT_2)
                .perf()
                .add_scalar(1.0)
                .mul_scalar(0.5);
            let pdf = z
                .clone()
                .square()
                .mul_scalar(-0.5)
                .pexp()
                .mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt());
            cdf.add(z.clone().mul(pdf))
        }
        Activation::Linear => return None,
    })
}

/// Element mask (1.0 = saturated or dead) whose mean is the layer's saturation fraction.
pub fn saturated(act: Activation, z: &Tensor<2>, h: &Tensor<2>) -> Option<Tensor<2>> {
    Some(match act {
        Activation::Tanh => h.clone().abs().greater_elem(TANH_SATURATED).float(),
        Activation::Sigmoid => {
            let lo = h.clone().lower_elem(SIGMOID_SATURATED).float();
            let hi = h.clone().greater_elem(1.0 - SIGMOID_SATURATED).float();
            lo.add(hi)
        }
        // A ReLU unit is dead for an example when it passes no gradient.
        Activation::Relu | Activation::LeakyRelu => z.clone().lower_equal_elem(0.0).float(),
        Activation::Gelu => z.clone().lower_elem(GELU_SATURATED_Z).float(),
        Activation::Linear => return None,
    })
}
