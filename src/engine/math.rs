//! Element-wise functions from +, −, ×, ÷ and bit operations only, so their bits do not
//! depend on the CPU or on the system's libm.
//!
//! tanh is the rational approximation Eigen and XLA use on CPU (a degree-13/6 odd rational on
//! [−7.9053, 7.9053], clamped outside, where tanh rounds to ±1 in f32), branch-free so the
//! compiler vectorises it; sigmoid is ½ + ½·tanh(x/2). The f64 functions (the data and init
//! path, the losses' log-sum-exp) and erf are the `libm` crate's: a pure-Rust port of musl,
//! the same code on every target, where `f64::ln` and friends call the system's libm, which
//! on x86-64 picks FMA or non-FMA code by CPU (glibc's `ifunc` variants) and rounds
//! differently in the last bit now and then.

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

#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    0.5 + 0.5 * tanh_f32(0.5 * x)
}

/// e^x.
#[inline]
pub fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// ln x.
#[inline]
pub fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// ln(1 + x), accurate near 0.
#[inline]
pub fn ln_1p(x: f64) -> f64 {
    libm::log1p(x)
}

#[inline]
pub fn sin(x: f64) -> f64 {
    libm::sin(x)
}

#[inline]
pub fn cos(x: f64) -> f64 {
    libm::cos(x)
}

/// The error function in f32.
#[inline]
pub fn erf_f32(x: f32) -> f32 {
    libm::erff(x)
}

/// e^x in f32.
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    libm::expf(x)
}

/// ln x in f32.
#[inline]
pub fn ln_f32(x: f32) -> f32 {
    libm::logf(x)
}

/// GELU, x·Φ(x) = ½x(1 + erf(x/√2)), as Burn's `gelu` defines it.
#[inline]
pub fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU's derivative Φ(x) + x·φ(x), taken from the pre-activation.
#[inline]
pub fn gelu_derivative_f32(x: f32) -> f32 {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2));
    cdf + x * FRAC_1_SQRT_2PI * exp_f32(-0.5 * x * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_functions_agree_with_the_system_to_an_ulp() {
        let mut x = 1e-6f64;
        while x < 50.0 {
            let ulp = |a: f64, b: f64| ((a - b) / b.abs().max(1e-300)).abs();
            assert!(
                ulp(ln(x), x.ln()) < 3e-16 || (ln(x) - x.ln()).abs() < 1e-300,
                "ln {x}"
            );
            assert!(ulp(exp(-x), (-x).exp()) < 3e-16, "exp {x}");
            assert!((sin(x) - x.sin()).abs() < 3e-16, "sin {x}");
            assert!((cos(x) - x.cos()).abs() < 3e-16, "cos {x}");
            x *= 1.37;
        }
    }

    #[test]
    fn gelu_and_its_derivative() {
        assert_eq!(gelu_f32(0.0), 0.0);
        assert!((gelu_f32(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_f32(-3.0) - -0.004_049_9).abs() < 1e-6);
        // The derivative against a central difference in f64.
        for i in -40..=40 {
            let x = i as f32 / 8.0;
            let h = 1e-3f64;
            let g = |x: f64| 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
            let want = (g(x as f64 + h) - g(x as f64 - h)) / (2.0 * h);
            assert!(
                (gelu_derivative_f32(x) as f64 - want).abs() < 1e-5,
                "x = {x}"
            );
        }
    }
}
