//! Host-memory building blocks for fused cells on the flex (CPU) device: a bounds-checked
//! wrapper over the `gemm` crate (the kernels flex itself calls) and tensor ↔ `Vec` moves.
//!
//! A fused cell keeps whole-sequence buffers in host memory and hands `gemm` strided views
//! of them (one time step of an example-major `[B, T, W]` buffer is `B` rows with row stride
//! `T·W`), so no narrow, cat or transpose copies are made. The products run single-threaded
//! (`Parallelism::None`): every output element is then summed in one fixed order, so the
//! bits do not depend on the thread count.

use burn::tensor::{Device, Tensor, TensorData};

/// Whether `device` keeps tensors in host memory, where the fused paths apply.
pub(crate) fn is_host(device: &Device) -> bool {
    *device == Device::flex()
}

/// A tensor's values, row-major (a uniquely owned flex buffer moves without a copy).
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("tensors here are f32")
}

/// `values` as a tensor of `shape` on `device`.
pub(crate) fn tensor<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Large host buffers kept for reuse: a step of the fused paths allocates the same
/// multi-megabyte buffers every time, and fresh ones cost a page-clearing memset each
/// (~6 % of an LSTM step). Only lengths some caller has asked `overwritten` for are kept
/// (anything else would only pin memory glibc could have reused), and never more than a
/// few steps' worth.
struct Spare {
    buffers: Vec<Vec<f32>>,
    wanted: Vec<usize>,
}
static SPARE: std::sync::Mutex<Spare> = std::sync::Mutex::new(Spare {
    buffers: Vec::new(),
    wanted: Vec::new(),
});
/// At most this many buffers (a deep MLP recycles one per layer)…
const SPARE_MAX: usize = 256;
/// …of at least 128 KiB each (smaller ones are cheap to allocate)…
const SPARE_MIN_LEN: usize = 1 << 15;
/// …and 256 MiB in all.
const SPARE_MAX_VALUES: usize = 1 << 26;

/// A buffer of `len` values whose contents are unspecified: the caller writes every element
/// before reading any (a recycled buffer holds an earlier step's values).
pub(crate) fn overwritten(len: usize) -> Vec<f32> {
    let reused = SPARE.lock().ok().and_then(|mut spare| {
        if len >= SPARE_MIN_LEN && !spare.wanted.contains(&len) && spare.wanted.len() < 64 {
            spare.wanted.push(len);
        }
        let i = spare.buffers.iter().position(|v| v.len() == len)?;
        Some(spare.buffers.swap_remove(i))
    });
    reused.unwrap_or_else(|| vec![0.0; len])
}

/// Hands a buffer back for `overwritten` to reuse (dropped if no caller wants its length).
pub(crate) fn recycle(v: Vec<f32>) {
    if v.len() >= SPARE_MIN_LEN
        && let Ok(mut spare) = SPARE.lock()
        && spare.wanted.contains(&v.len())
        && spare.buffers.len() < SPARE_MAX
        && spare.buffers.iter().map(Vec::len).sum::<usize>() + v.len() <= SPARE_MAX_VALUES
    {
        spare.buffers.push(v);
    }
}

pub(crate) use crate::engine::View;
use crate::engine::product::check_operands;

/// The arithmetic a fused host path runs on: which products and which f64 functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engine {
    /// The portable engine (`crate::engine`): the same bits on every CPU. Otherwise the `cpu`
    /// engine: the `gemm` crate's kernels (chosen by CPU) and the system's libm.
    pub portable: bool,
    /// Threads a product may split among (same bits for any count, on either engine).
    pub threads: usize,
}

impl Engine {
    /// dst = (accumulate ? dst : 0) + lhs·rhs on this engine (see [`gemm`]).
    pub(crate) fn product(
        self,
        mnk: (usize, usize, usize),
        dst: &mut [f32],
        dst_rs: usize,
        accumulate: bool,
        lhs: View<'_>,
        rhs: View<'_>,
    ) {
        if self.portable {
            crate::engine::product(mnk, dst, dst_rs, accumulate, lhs, rhs, self.threads)
        } else {
            gemm_threads(mnk, dst, dst_rs, accumulate, lhs, rhs, self.threads)
        }
    }

    /// The same product on one thread (inside work already split among threads).
    pub(crate) fn product1(
        self,
        mnk: (usize, usize, usize),
        dst: &mut [f32],
        dst_rs: usize,
        accumulate: bool,
        lhs: View<'_>,
        rhs: View<'_>,
    ) {
        Engine { threads: 1, ..self }.product(mnk, dst, dst_rs, accumulate, lhs, rhs)
    }

    pub(crate) fn exp(self, x: f64) -> f64 {
        if self.portable {
            crate::engine::math::exp(x)
        } else {
            x.exp()
        }
    }

    pub(crate) fn ln(self, x: f64) -> f64 {
        if self.portable {
            crate::engine::math::ln(x)
        } else {
            x.ln()
        }
    }
}

/// dst = (accumulate ? dst : 0) + lhs·rhs for an `m × k` lhs and a `k × n` rhs; `dst` is
/// `m × n` with row stride `dst_rs` and unit column stride. Single-threaded.
pub(crate) fn gemm(
    mnk: (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    gemm_threads(mnk, dst, dst_rs, accumulate, lhs, rhs, 1);
}

/// Products smaller than this many multiply-adds stay on one thread (flex's own cut-off).
const PARALLEL_MNK: usize = 192 * 192 * 192;

/// `gemm` on up to `threads` threads of the current pool when the product is large enough:
/// the output's columns are split among them. Every element is still summed over k in the
/// same order, so the bits do not depend on `threads` (tested in `train::fused`).
pub(crate) fn gemm_threads(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
    threads: usize,
) {
    check_operands("gemm", (m, n, k), dst, dst_rs, lhs, rhs);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_rs..r * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    let parts = if threads > 1 && m * n * k >= PARALLEL_MNK {
        threads.min(n)
    } else {
        1
    };
    let out = SendPtr(dst.as_mut_ptr());
    // Column blocks of the output, one per thread. gemm's own Rayon mode split these sizes
    // less evenly (measured 134–166 vs 181 GFLOP/s on two cores for 128×256×256).
    let block = |p: usize| {
        let (c0, c1) = (p * n / parts, (p + 1) * n / parts);
        // SAFETY: the asserts above keep every index gemm reads or writes inside the slices;
        // `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`; blocks write
        // disjoint columns of `dst`.
        unsafe {
            gemm::gemm(
                m,
                c1 - c0,
                k,
                out.at(c0),
                1,
                dst_rs as isize,
                accumulate,
                lhs.data.as_ptr(),
                lhs.cs as isize,
                lhs.rs as isize,
                rhs.data.as_ptr().add(c0 * rhs.cs),
                rhs.cs as isize,
                rhs.rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    if parts == 1 {
        block(0);
    } else {
        rayon::scope(|s| {
            for p in 1..parts {
                s.spawn(move |_| block(p));
            }
            block(0);
        });
    }
}

/// The output pointer, shared by the threads that write disjoint column blocks.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: every user writes a disjoint set of elements (see `gemm_threads`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The element `offset` places on.
    ///
    /// # Safety
    /// `offset` must stay inside the allocation the pointer came from.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strided and transposed operands and accumulation agree with a plain triple loop.
    #[test]
    fn gemm_matches_a_naive_product() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k * 2).map(|i| (i as f32 * 0.37).sin()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
        // lhs: rows of `a` two apart (row stride 2k); rhs: the transpose of `bt` ([n, k]).
        let lhs = View {
            data: &a,
            rs: 2 * k,
            cs: 1,
        };
        let rhs = View::transposed(&bt, k);
        let mut dst = vec![1.0f32; m * (n + 2)];
        gemm((m, n, k), &mut dst, n + 2, true, lhs, rhs);
        for r in 0..m {
            for c in 0..n {
                let want: f32 = 1.0
                    + (0..k)
                        .map(|j| a[r * 2 * k + j] * bt[c * k + j])
                        .sum::<f32>();
                assert!((dst[r * (n + 2) + c] - want).abs() < 1e-5, "({r}, {c})");
            }
            // Padding columns beyond n stay untouched.
            assert_eq!(dst[r * (n + 2) + n], 1.0);
        }
        gemm((m, n, k), &mut dst, n + 2, false, lhs, rhs);
        let want: f32 = (0..k).map(|j| a[j] * bt[j]).sum();
        assert!((dst[0] - want).abs() < 1e-5);
    }
}
