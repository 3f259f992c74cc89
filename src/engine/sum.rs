//! Reductions with a fixed shape: 16 f32 lanes over blocks of `BLOCK` elements, each block's
//! lanes added into an f64 total in lane order. One vectorised pass with a relative error
//! near 1e-7 (an f32 running sum over 65k squares would drift by ~1e-4), and since the lanes
//! and blocks are fixed — not the CPU's vector width — the bits are the same on every CPU.

use super::lanes::simd;

pub const LANES: usize = 16;
pub const BLOCK: usize = 1024;

/// Adds 16 lanes into f64, in lane order.
#[inline(always)]
pub fn flush(lanes: &mut [f32; LANES]) -> f64 {
    let s = lanes.iter().map(|&x| x as f64).sum();
    *lanes = [0.0; LANES];
    s
}

/// Σx, blocked.
pub fn sum(v: &[f32]) -> f64 {
    simd(
        #[inline(always)]
        || blocked(v, |x| x),
    )
}

/// Σx², blocked.
pub fn sum_sq(v: &[f32]) -> f64 {
    simd(
        #[inline(always)]
        || blocked(v, |x| x * x),
    )
}

/// Σ term(x) in the fixed shape of the module doc.
#[inline(always)]
fn blocked(v: &[f32], term: impl Fn(f32) -> f32) -> f64 {
    let mut total = 0.0;
    let mut lanes = [0f32; LANES];
    for block in v.chunks(BLOCK) {
        let chunks = block.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for k in 0..LANES {
                lanes[k] += term(c[k]);
            }
        }
        for (k, &x) in rest.iter().enumerate() {
            lanes[k] += term(x);
        }
        total += flush(&mut lanes);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_sum_of_squares_is_close_to_the_exact_one() {
        let v: Vec<f32> = (0..5000).map(|i| (i % 97) as f32 * 0.01 - 0.4).collect();
        let exact: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
        assert!((sum_sq(&v) - exact).abs() < 1e-6 * exact);
        assert_eq!(sum_sq(&[]), 0.0);
        let exact: f64 = v.iter().map(|&x| x as f64).sum();
        assert!((sum(&v) - exact).abs() < 1e-6 * v.len() as f64);
    }
}
