//! Element-wise kernels the CPU backend computes slowly: tanh and sigmoid.
//!
//! Burn's `flex` backend evaluates tanh element by element through libm, which took about
//! half of a 20-layer tanh training step. Here tanh is the rational approximation Eigen and
//! XLA use on CPU (a degree-13/6 odd rational on [−7.9053, 7.9053], clamped outside, where
//! tanh rounds to ±1 in f32), written as a branch-free loop the compiler vectorises; sigmoid
//! is ½ + ½·tanh(x/2). Both are deterministic (no data-dependent branches or reductions).
//! Only tensors on the flex device take this path: the data is already in host memory, and
//! a uniquely owned buffer is borrowed without a copy. Other devices use Burn's own ops.

use burn::tensor::{Device, Tensor, TensorData, activation};

pub use crate::engine::lanes::simd;
pub use crate::engine::math::{sigmoid_f32, tanh_f32};

fn on_host(t: &Tensor<2>) -> bool {
    t.device() == Device::flex()
}

fn map(t: Tensor<2>, f: impl Fn(f32) -> f32) -> Tensor<2> {
    let device = t.device();
    let dims = t.dims();
    let mut v = t
        .into_data()
        .try_into_vec::<f32>()
        .expect("activations are f32");
    simd(
        #[inline(always)]
        || {
            for x in v.iter_mut() {
                *x = f(*x);
            }
        },
    );
    Tensor::from_data(TensorData::new(v, dims), &device)
}

pub fn tanh(t: Tensor<2>) -> Tensor<2> {
    if on_host(&t) {
        map(t, tanh_f32)
    } else {
        t.tanh()
    }
}

pub fn sigmoid(t: Tensor<2>) -> Tensor<2> {
    if on_host(&t) {
        map(t, sigmoid_f32)
    } else {
        activation::sigmoid(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_and_sigmoid_are_accurate_everywhere() {
        let (mut worst_t, mut worst_s) = (0f64, 0f64);
        let mut x = -20.0f32;
        while x <= 20.0 {
            worst_t = worst_t.max((tanh_f32(x) as f64 - (x as f64).tanh()).abs());
            worst_s =
                worst_s.max((sigmoid_f32(x) as f64 - 1.0 / (1.0 + (-(x as f64)).exp())).abs());
            x += 1.0 / 1024.0;
        }
        // Measured: tanh 3.45e-7 (at x = −6.52, ≈3 ulp of 1), sigmoid below that: the
        // approximation's own error, not rounding noise. A wrong coefficient gives ≫ 1e-6.
        assert!(worst_t < 5e-7, "tanh error {worst_t:e}");
        assert!(worst_s < 5e-7, "sigmoid error {worst_s:e}");
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(-100.0), -1.0);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
    }

    /// The AVX2 build of a loop rounds exactly as the baseline one: same bits.
    #[test]
    fn simd_loops_give_the_scalar_bits() {
        let xs: Vec<f32> = (0..4099).map(|i| (i as f32 - 2049.0) / 97.0).collect();
        let mut wide = xs.clone();
        simd(
            #[inline(always)]
            || {
                for x in wide.iter_mut() {
                    *x = tanh_f32(*x) + sigmoid_f32(*x) * 0.5;
                }
            },
        );
        for (x, w) in xs.iter().zip(&wide) {
            // One value at a time, through an opaque call: no vectorisation.
            let one = std::hint::black_box(tanh_f32(std::hint::black_box(*x)))
                + std::hint::black_box(sigmoid_f32(*x)) * 0.5;
            assert_eq!(one.to_bits(), w.to_bits(), "x = {x}");
        }
    }

    #[test]
    fn tensor_kernels_match_burn() {
        let device = Device::flex();
        let v: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) / 4.0).collect();
        let t = Tensor::<2>::from_data(TensorData::new(v, [8, 8]), &device);
        let ours = tanh(t.clone()).into_data().try_into_vec::<f32>().unwrap();
        let burn = t.clone().tanh().into_data().try_into_vec::<f32>().unwrap();
        for (a, b) in ours.iter().zip(&burn) {
            assert!((a - b).abs() < 5e-7, "{a} vs {b}");
        }
        let ours = sigmoid(t.clone())
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let burn = activation::sigmoid(t)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for (a, b) in ours.iter().zip(&burn) {
            assert!((a - b).abs() < 5e-7, "{a} vs {b}");
        }
    }
}
