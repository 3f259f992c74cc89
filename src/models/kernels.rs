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

const CLAMP: f32 = 7.905_311;
// Eigen's published coefficients, kept digit for digit so they can be checked against it.
#[allow(clippy::excessive_precision)]
const ALPHA: [f32; 7] = [
    4.893_524_6e-3,
    6.372_619_3e-4,
    1.485_722_4e-5,
    5.122_297e-8,
    -8.604_671_5e-11,
    2.000_187_9e-13,
    -2.760_768_5e-16,
];
#[allow(clippy::excessive_precision)]
const BETA: [f32; 4] = [
    4.893_525_2e-3,
    2.268_434_6e-3,
    1.185_347_1e-4,
    1.198_258_4e-6,
];

/// tanh(x) to within 3.5e-7 absolute (≈3 ulp of 1; see the test).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = ALPHA[6];
    for &a in ALPHA[..6].iter().rev() {
        p = p * x2 + a;
    }
    let p = p * x;
    let q = ((BETA[3] * x2 + BETA[2]) * x2 + BETA[1]) * x2 + BETA[0];
    p / q
}

/// Runs `f` compiled for AVX2 where the CPU has it: twice the lanes of baseline x86-64
/// (SSE2) for the element-wise loops inlined into it. FMA is not enabled and nothing is
/// reordered, so every lane rounds exactly as the scalar code would: same bits either way.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    0.5 + 0.5 * tanh_f32(0.5 * x)
}

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
