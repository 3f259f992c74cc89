//! The x86-64 vector kernels of the portable product: the same sum as `product::micro`, with
//! the tile's columns in registers. Multiply and add are separate instructions (`mul_ps`, then
//! `add_ps`): the definition. Indexed loops over the tile's rows keep each accumulator a named
//! register.
#![allow(clippy::needless_range_loop)]

use super::{Panel, Rows};
use std::arch::x86_64::*;

/// A 8 × 32 tile in 16 zmm registers.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512(kc: usize, a: &Rows<'_, 8>, b: Panel<'_>, acc: &mut [[f32; 32]; 8]) {
    a.check(kc);
    b.check(kc, 32);
    let (b, b_rs) = (b.data, b.rs);
    let (data, cs) = (a.data.as_ptr(), a.cs);
    // SAFETY: the two `check`s proved every lhs and rhs element read is inside its slice,
    // and `acc` is whole; unaligned forms are used throughout.
    unsafe {
        let mut c = [[_mm512_setzero_ps(); 2]; 8];
        for i in 0..8 {
            c[i][0] = _mm512_loadu_ps(acc[i].as_ptr());
            c[i][1] = _mm512_loadu_ps(acc[i].as_ptr().add(16));
        }
        for p in 0..kc {
            let b0 = _mm512_loadu_ps(b.as_ptr().add(p * b_rs));
            let b1 = _mm512_loadu_ps(b.as_ptr().add(p * b_rs + 16));
            for i in 0..8 {
                let ai = _mm512_set1_ps(*data.add(a.offs[i] + p * cs));
                c[i][0] = _mm512_add_ps(c[i][0], _mm512_mul_ps(ai, b0));
                c[i][1] = _mm512_add_ps(c[i][1], _mm512_mul_ps(ai, b1));
            }
        }
        for i in 0..8 {
            _mm512_storeu_ps(acc[i].as_mut_ptr(), c[i][0]);
            _mm512_storeu_ps(acc[i].as_mut_ptr().add(16), c[i][1]);
        }
    }
}

/// A 6 × 16 tile in 12 ymm registers.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn avx2(kc: usize, a: &Rows<'_, 6>, b: Panel<'_>, acc: &mut [[f32; 16]; 6]) {
    a.check(kc);
    b.check(kc, 16);
    let (b, b_rs) = (b.data, b.rs);
    let (data, cs) = (a.data.as_ptr(), a.cs);
    // SAFETY: as in `avx512`.
    unsafe {
        let mut c = [[_mm256_setzero_ps(); 2]; 6];
        for i in 0..6 {
            c[i][0] = _mm256_loadu_ps(acc[i].as_ptr());
            c[i][1] = _mm256_loadu_ps(acc[i].as_ptr().add(8));
        }
        for p in 0..kc {
            let b0 = _mm256_loadu_ps(b.as_ptr().add(p * b_rs));
            let b1 = _mm256_loadu_ps(b.as_ptr().add(p * b_rs + 8));
            for i in 0..6 {
                let ai = _mm256_set1_ps(*data.add(a.offs[i] + p * cs));
                c[i][0] = _mm256_add_ps(c[i][0], _mm256_mul_ps(ai, b0));
                c[i][1] = _mm256_add_ps(c[i][1], _mm256_mul_ps(ai, b1));
            }
        }
        for i in 0..6 {
            _mm256_storeu_ps(acc[i].as_mut_ptr(), c[i][0]);
            _mm256_storeu_ps(acc[i].as_mut_ptr().add(8), c[i][1]);
        }
    }
}
