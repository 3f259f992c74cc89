//! The portable matrix product: `dst ← dst·[accumulate] + lhs·rhs` with every output element
//! summed over k in one fixed order, whatever the CPU or the thread count.
//!
//! The definition each element follows, and the only one: `c = 0` (or the destination's value
//! when accumulating), then `c = c + a[i][p]·b[p][j]` for p = 0, 1, …, k − 1, a rounded
//! multiply then a rounded add (Rust never fuses them). Blocking over k stores the running
//! sum and reloads it, which continues the same sum exactly. The register tile (rows × lanes)
//! is chosen per CPU — 4×8 on baseline x86-64, 6×16 with AVX2, 8×32 with AVX-512 — which only
//! decides how many independent elements advance together. Threads split the output's rows.

use super::lanes::Width;

/// A strided matrix operand: element (r, c) sits at `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// Row-major with `cols` columns, starting at `data[0]`.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }

    #[inline(always)]
    fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.rs + c * self.cs]
    }
}

/// Largest index a `rows × cols` matrix with strides (rs, cs) touches, plus one.
pub fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// Panics (naming `what`) unless an `m × n` dst with row stride `dst_rs`, an `m × k` lhs and
/// a `k × n` rhs lie inside their slices: every index a product touches is then in bounds.
pub fn check_operands(
    what: &str,
    (m, n, k): (usize, usize, usize),
    dst: &[f32],
    dst_rs: usize,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    assert!(
        extent(m, n, dst_rs, 1) <= dst.len(),
        "{what}: dst out of bounds"
    );
    assert!(
        extent(m, k, lhs.rs, lhs.cs) <= lhs.data.len(),
        "{what}: lhs out of bounds"
    );
    assert!(
        extent(k, n, rhs.rs, rhs.cs) <= rhs.data.len(),
        "{what}: rhs out of bounds"
    );
}

/// Depth of one k block and width of one column block: a packed block of the rhs (256 KiB)
/// stays in L2 while every row band of the lhs runs over it.
const KC: usize = 256;
const NC: usize = 256;
/// Products smaller than this many multiply-adds stay on one thread.
const PARALLEL_MNK: usize = 96 * 96 * 96;

/// dst = (accumulate ? dst : 0) + lhs·rhs for an `m × k` lhs and a `k × n` rhs; `dst` is
/// `m × n` with row stride `dst_rs` and unit column stride. Up to `threads` threads of the
/// current Rayon pool share the rows; the bits are the same for any count.
pub fn product(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
    threads: usize,
) {
    product_on(
        Width::detect(),
        (m, n, k),
        dst,
        dst_rs,
        accumulate,
        lhs,
        rhs,
        threads,
    )
}

/// [`product`] with the register tile of `width` (which must be available on this CPU).
#[allow(clippy::too_many_arguments)]
pub fn product_on(
    width: Width,
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
    threads: usize,
) {
    check_operands("product", (m, n, k), dst, dst_rs, lhs, rhs);
    assert!(n <= dst_rs || m <= 1, "product: rows of dst overlap");
    if m == 0 || n == 0 {
        return;
    }
    let parts = if threads > 1 && m * n * k >= PARALLEL_MNK {
        threads.min(m.div_ceil(8))
    } else {
        1
    };
    if parts <= 1 {
        return rows_on(
            width,
            Job {
                m,
                n,
                k,
                dst,
                dst_rs,
                accumulate,
                lhs,
                rhs,
            },
        );
    }
    // Row blocks of whole multiples of 8 (every tile height divides it), one per thread.
    let per = m.div_ceil(parts).div_ceil(8) * 8;
    let mut rest = &mut dst[..];
    let mut blocks = Vec::with_capacity(parts);
    let mut r0 = 0;
    while r0 < m {
        let rows = per.min(m - r0);
        let (mine, later) = if r0 + rows < m {
            rest.split_at_mut(rows * dst_rs)
        } else {
            (rest, &mut [][..])
        };
        blocks.push((r0, rows, mine));
        rest = later;
        r0 += rows;
    }
    rayon::scope(|s| {
        for (r0, rows, out) in blocks {
            let lhs = View {
                data: &lhs.data[r0 * lhs.rs..],
                ..lhs
            };
            let job = Job {
                m: rows,
                n,
                k,
                dst: out,
                dst_rs,
                accumulate,
                lhs,
                rhs,
            };
            s.spawn(move |_| rows_on(width, job));
        }
    });
}

/// One product's operands, as the tiled loop takes them (`m × k` lhs, `k × n` rhs).
struct Job<'a, 'd> {
    m: usize,
    n: usize,
    k: usize,
    dst: &'d mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: View<'a>,
    rhs: View<'a>,
}

fn rows_on(width: Width, job: Job<'_, '_>) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512(job: Job<'_, '_>) {
            // SAFETY (of the kernel): this function only runs where AVX-512F is available.
            let micro = |kc, a: &Rows<'_, 8>, b: Panel<'_>, acc: &mut [[f32; 32]; 8]| unsafe {
                kernels::avx512(kc, a, b, acc)
            };
            tiles::<8, 32>(micro, job)
        }
        #[target_feature(enable = "avx2")]
        fn avx2(job: Job<'_, '_>) {
            // SAFETY (of the kernel): this function only runs where AVX2 is available.
            let micro = |kc, a: &Rows<'_, 6>, b: Panel<'_>, acc: &mut [[f32; 16]; 6]| unsafe {
                kernels::avx2(kc, a, b, acc)
            };
            tiles::<6, 16>(micro, job)
        }
        match width {
            Width::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
                // SAFETY: the CPU has AVX-512F (checked in the guard).
                return unsafe { avx512(job) };
            }
            Width::Avx2 if std::arch::is_x86_feature_detected!("avx2") => {
                // SAFETY: the CPU has AVX2 (checked in the guard).
                return unsafe { avx2(job) };
            }
            _ => {}
        }
    }
    let _ = width;
    tiles::<4, 8>(micro::<4, 8>, job)
}

/// Row bands up to which a row-major rhs is read in place rather than packed.
const IN_PLACE_ROWS: usize = 48;

/// The rhs of one kernel call: row p of the panel starts at `data[p·rs]` (NR values).
#[derive(Clone, Copy)]
pub struct Panel<'a> {
    data: &'a [f32],
    rs: usize,
}

impl Panel<'_> {
    /// Checks once that kc rows of `nr` values are inside `data`.
    #[inline(always)]
    fn check(&self, kc: usize, nr: usize) {
        assert!(
            (kc - 1) * self.rs + nr <= self.data.len(),
            "product: rhs panel out of bounds"
        );
    }
}

/// `MR` rows of the lhs in one k block: element (i, p) sits at `data[offs[i] + p·cs]`. Rows
/// past the matrix's end repeat its last row (their results are never stored), so a kernel
/// reads the operand in place, without packing it.
pub struct Rows<'a, const MR: usize> {
    data: &'a [f32],
    offs: [usize; MR],
    cs: usize,
}

impl<const MR: usize> Rows<'_, MR> {
    /// Checks once that every (i, p < kc) is inside `data`, so kernels may skip the checks.
    #[inline(always)]
    fn check(&self, kc: usize) {
        let last = self.offs.iter().max().copied().unwrap_or(0) + (kc - 1) * self.cs;
        assert!(last < self.data.len(), "product: lhs rows out of bounds");
    }
}

thread_local! {
    /// The packed rhs panel, reused by every product on this thread.
    static B_PACK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The blocked loop with an `MR × NR` register tile: per k block and NC-column block, the rhs
/// is packed into NR-column panels (zero-padded) and every MR-row band of the lhs runs the
/// kernel over each panel in turn.
#[inline(always)]
fn tiles<const MR: usize, const NR: usize>(
    micro: impl Fn(usize, &Rows<'_, MR>, Panel<'_>, &mut [[f32; NR]; MR]),
    job: Job<'_, '_>,
) {
    let Job {
        m,
        n,
        k,
        dst,
        dst_rs,
        accumulate,
        lhs,
        rhs,
    } = job;
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_rs..r * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    B_PACK.with(|cell| {
        let mut b_pack = cell.borrow_mut();
        if b_pack.len() < NC * KC {
            b_pack.resize(NC * KC, 0.0);
        }
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let load = accumulate || p0 > 0;
            for jc in (0..n).step_by(NC) {
                let nc = NC.min(n - jc);
                let panels = nc.div_ceil(NR);
                // Panel q holds columns jc + q·NR.., laid out [p][NR], zero-padded — unless
                // few row bands would use it: then whole panels of a row-major rhs are read in
                // place (packing would cost as much as the product).
                let in_place = |j0: usize| rhs.cs == 1 && m <= IN_PLACE_ROWS && j0 + NR <= n;
                for q in 0..panels {
                    let j0 = jc + q * NR;
                    if !in_place(j0) {
                        pack_panel::<NR>(
                            &mut b_pack[q * NR * kc..(q + 1) * NR * kc],
                            rhs,
                            p0,
                            kc,
                            j0,
                            n,
                        );
                    }
                }
                // Each MR-row band of the lhs runs over every panel while it is in L1.
                for i0 in (0..m).step_by(MR) {
                    let mr = MR.min(m - i0);
                    let rows = Rows {
                        data: lhs.data,
                        offs: std::array::from_fn(|i| (i0 + i).min(m - 1) * lhs.rs + p0 * lhs.cs),
                        cs: lhs.cs,
                    };
                    for q in 0..panels {
                        let j0 = jc + q * NR;
                        let nr = NR.min(n - j0);
                        let b = if in_place(j0) {
                            Panel {
                                data: &rhs.data[p0 * rhs.rs + j0..],
                                rs: rhs.rs,
                            }
                        } else {
                            Panel {
                                data: &b_pack[q * NR * kc..(q + 1) * NR * kc],
                                rs: NR,
                            }
                        };
                        let mut acc = [[0f32; NR]; MR];
                        let full = nr == NR;
                        if load {
                            for (i, row) in acc.iter_mut().enumerate().take(mr) {
                                let at = (i0 + i) * dst_rs + j0;
                                if full {
                                    *row = dst[at..at + NR].try_into().expect("NR");
                                } else {
                                    row[..nr].copy_from_slice(&dst[at..at + nr]);
                                }
                            }
                        }
                        micro(kc, &rows, b, &mut acc);
                        for (i, row) in acc.iter().enumerate().take(mr) {
                            let at = (i0 + i) * dst_rs + j0;
                            if full {
                                let out: &mut [f32; NR] =
                                    (&mut dst[at..at + NR]).try_into().expect("NR");
                                *out = *row;
                            } else {
                                dst[at..at + nr].copy_from_slice(&row[..nr]);
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Packs rows p0..p0 + kc, columns j0..j0 + NR of `rhs` (zero past column `n`) as [p][NR].
#[inline(always)]
fn pack_panel<const NR: usize>(
    b: &mut [f32],
    rhs: View<'_>,
    p0: usize,
    kc: usize,
    j0: usize,
    n: usize,
) {
    let nr = NR.min(n - j0);
    if rhs.cs == 1 && nr == NR {
        // Whole rows as fixed-size copies: vector moves, not `memmove` calls.
        for p in 0..kc {
            let start = (p0 + p) * rhs.rs + j0;
            let src: &[f32; NR] = rhs.data[start..start + NR].try_into().expect("NR");
            let row: &mut [f32; NR] = (&mut b[p * NR..(p + 1) * NR]).try_into().expect("NR");
            *row = *src;
        }
    } else if rhs.cs == 1 {
        for p in 0..kc {
            let row = &mut b[p * NR..(p + 1) * NR];
            let start = (p0 + p) * rhs.rs + j0;
            row[..nr].copy_from_slice(&rhs.data[start..start + nr]);
            row[nr..].fill(0.0);
        }
    } else if rhs.rs == 1 {
        // A transposed row-major matrix: each column's k values are contiguous.
        for j in 0..NR {
            if j < nr {
                let start = (j0 + j) * rhs.cs + p0;
                for (p, &x) in rhs.data[start..start + kc].iter().enumerate() {
                    b[p * NR + j] = x;
                }
            } else {
                (0..kc).for_each(|p| b[p * NR + j] = 0.0);
            }
        }
    } else {
        for j in 0..NR {
            for p in 0..kc {
                b[p * NR + j] = if j < nr { rhs.at(p0 + p, j0 + j) } else { 0.0 };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod kernels;

/// acc[i][j] ← acc[i][j] + a(i, p)·b[p][j] for p in 0..kc, in that order.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn micro<const MR: usize, const NR: usize>(
    kc: usize,
    a: &Rows<'_, MR>,
    b: Panel<'_>,
    acc: &mut [[f32; NR]; MR],
) {
    a.check(kc);
    b.check(kc, NR);
    let mut c = *acc;
    for p in 0..kc {
        // A fixed-size row: no bounds checks inside, so the j loop becomes vector lanes.
        let bp: &[f32; NR] = b.data[p * b.rs..p * b.rs + NR]
            .try_into()
            .expect("NR values");
        for i in 0..MR {
            let ai = a.data[a.offs[i] + p * a.cs];
            for j in 0..NR {
                c[i][j] += ai * bp[j];
            }
        }
    }
    *acc = c;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, salt: u32) -> Vec<f32> {
        // A cheap deterministic spread of signs and magnitudes (no libm).
        (0..len as u32)
            .map(|i| {
                let h = (i.wrapping_mul(2_654_435_761) ^ salt).wrapping_mul(40_503);
                (h >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    /// The definition, one element at a time.
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        init: &[f32],
        a: View,
        b: View,
        rs: usize,
    ) -> Vec<f32> {
        let mut out = init.to_vec();
        for i in 0..m {
            for j in 0..n {
                let mut c = init[i * rs + j];
                for p in 0..k {
                    c = std::hint::black_box(c + a.at(i, p) * b.at(p, j));
                }
                out[i * rs + j] = c;
            }
        }
        out
    }

    /// Every tile and thread count gives the definition's bits, on shapes with edges in every
    /// dimension, strided and transposed operands, more than one k block, and accumulation.
    #[test]
    fn every_width_and_thread_count_gives_the_definitions_bits() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for &(m, n, k) in &[
            (1, 1, 1),
            (5, 7, 3),
            (13, 37, 300),
            (33, 65, 520),
            (100, 100, 100),
        ] {
            let a_t = data(m * k, 1); // stored [k, m]: lhs is its transpose
            let b = data(k * (n + 3), 2); // rows of n + 3 values
            let lhs = View::transposed(&a_t, m);
            let rhs = View {
                data: &b,
                rs: n + 3,
                cs: 1,
            };
            let rs = n + 2;
            for accumulate in [false, true] {
                let init = if accumulate {
                    data(m * rs, 3)
                } else {
                    vec![0.0; m * rs]
                };
                let want = reference(m, n, k, &init, lhs, rhs, rs);
                for width in Width::available() {
                    for threads in [1, 3] {
                        let mut got = init.clone();
                        pool.install(|| {
                            product_on(
                                width,
                                (m, n, k),
                                &mut got,
                                rs,
                                accumulate,
                                lhs,
                                rhs,
                                threads,
                            )
                        });
                        let same = got
                            .iter()
                            .zip(&want)
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(
                            same,
                            "{m}×{n}×{k} {width:?} threads {threads} acc {accumulate}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn empty_depth_clears_or_keeps() {
        let mut d = vec![5.0f32; 6];
        product(
            (2, 3, 0),
            &mut d,
            3,
            true,
            View::rows(&[], 0),
            View::rows(&[], 3),
            1,
        );
        assert_eq!(d, vec![5.0; 6]);
        product(
            (2, 3, 0),
            &mut d,
            3,
            false,
            View::rows(&[], 0),
            View::rows(&[], 3),
            1,
        );
        assert_eq!(d, vec![0.0; 6]);
    }

    /// NaN and infinities propagate to their own elements only (zero padding must not leak).
    #[test]
    fn non_finite_values_stay_in_their_elements() {
        let (m, n, k) = (3, 5, 2);
        let mut a = vec![1.0f32; m * k];
        a[0] = f32::NAN;
        let mut b = vec![1.0f32; k * n];
        b[4] = f32::INFINITY;
        let mut d = vec![0f32; m * n];
        product(
            (m, n, k),
            &mut d,
            n,
            false,
            View::rows(&a, k),
            View::rows(&b, n),
            1,
        );
        assert!(d[..n].iter().all(|x| x.is_nan()), "{d:?}");
        assert_eq!(d[n + 4], f32::INFINITY);
        assert_eq!(d[n], 2.0);
    }
}
