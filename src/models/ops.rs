//! The tensor ops whose bits on Burn's CPU backend depend on the CPU — products (the `gemm`
//! crate picks kernels and FMA by instruction set), full sums (eight accumulators of the
//! vector width), row reductions, and exp/log/erf (the system's libm) — each routed through
//! the portable engine (`crate::engine`) while a run on it is in progress on this thread.
//!
//! The models write `a.pmatmul(b)`, `t.psum()`, …: on every other engine, and on tensors that
//! are not in host memory, these are Burn's own ops, so `cpu`, `flex` and GPU runs keep their
//! bits. The rest of Burn's ops the models use (+, −, ×, ÷, √, abs, comparisons, moves) are
//! rounded exactly by IEEE 754 element by element, whatever the vector width.

use super::host::{self, Engine};
use crate::engine::{self, View};
use burn::tensor::{Tensor, activation};
use std::cell::Cell;

thread_local! {
    static PORTABLE: Cell<Option<Engine>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's tensor ops on `engine` when it is the portable one.
pub fn with_engine<R>(engine: Engine, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Engine>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PORTABLE.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PORTABLE.with(|p| p.replace(engine.portable.then_some(engine))));
    f()
}

/// The portable engine, if this thread's run is on it and `t` is in host memory.
fn portable<const D: usize>(t: &Tensor<D>) -> Option<Engine> {
    PORTABLE
        .with(Cell::get)
        .filter(|_| host::is_host(&t.device()))
}

/// Whether `t`'s ops take the portable engine (a portable run, a host tensor).
pub fn on_portable<const D: usize>(t: &Tensor<D>) -> bool {
    portable(t).is_some()
}

fn map<const D: usize>(t: Tensor<D>, f: impl Fn(f32) -> f32) -> Tensor<D> {
    let (device, dims) = (t.device(), t.dims());
    let mut v = host::to_vec(t);
    engine::lanes::simd(
        #[inline(always)]
        || v.iter_mut().for_each(|x| *x = f(*x)),
    );
    host::tensor(v, dims, &device)
}

/// Burn's ops, or the portable engine's during a portable run.
pub trait PortableOps: Sized {
    /// e^x element-wise.
    fn pexp(self) -> Self;
    /// ln x element-wise.
    fn plog(self) -> Self;
    /// erf x element-wise.
    fn perf(self) -> Self;
    /// Σ of every element, as a 1-element tensor.
    fn psum(self) -> Tensor<1>;
}

impl<const D: usize> PortableOps for Tensor<D> {
    fn pexp(self) -> Self {
        match portable(&self) {
            Some(_) => map(self, engine::math::exp_f32),
            None => self.exp(),
        }
    }

    fn plog(self) -> Self {
        match portable(&self) {
            Some(_) => map(self, engine::math::ln_f32),
            None => self.log(),
        }
    }

    fn perf(self) -> Self {
        match portable(&self) {
            Some(_) => map(self, engine::math::erf_f32),
            None => self.erf(),
        }
    }

    fn psum(self) -> Tensor<1> {
        match portable(&self) {
            Some(_) => {
                let device = self.device();
                let total = engine::sum::sum(&host::to_vec(self));
                host::tensor(vec![total as f32], [1], &device)
            }
            None => self.sum(),
        }
    }
}

/// Matrix ops on 2-D tensors.
pub trait PortableMatrix: Sized {
    /// The matrix product.
    fn pmatmul(self, rhs: Self) -> Self;
    /// selfᵀ·rhs, without materialising the transpose on the portable engine.
    fn pmatmul_tn(self, rhs: Self) -> Self;
    /// self·rhsᵀ, likewise.
    fn pmatmul_nt(self, rhs: Self) -> Self;
    /// Σ along `dim`, kept as a dimension of size 1.
    fn psum_dim(self, dim: usize) -> Self;
    /// The mean along `dim`, kept as a dimension of size 1.
    fn pmean_dim(self, dim: usize) -> Self;
}

impl PortableMatrix for Tensor<2> {
    fn pmatmul(self, rhs: Self) -> Self {
        match portable(&self) {
            Some(engine) => product(engine, self, false, rhs, false),
            None => self.matmul(rhs),
        }
    }

    fn pmatmul_tn(self, rhs: Self) -> Self {
        match portable(&self) {
            Some(engine) => product(engine, self, true, rhs, false),
            None => self.transpose().matmul(rhs),
        }
    }

    fn pmatmul_nt(self, rhs: Self) -> Self {
        match portable(&self) {
            Some(engine) => product(engine, self, false, rhs, true),
            None => self.matmul(rhs.transpose()),
        }
    }

    fn psum_dim(self, dim: usize) -> Self {
        if portable(&self).is_none() {
            return self.sum_dim(dim);
        }
        let (device, [rows, cols]) = (self.device(), self.dims());
        let v = host::to_vec(self);
        match dim {
            // Down the columns: each sums its rows in order, in f32 (independent lanes).
            0 => {
                let mut out = vec![0f32; cols];
                for row in v.chunks_exact(cols.max(1)) {
                    out.iter_mut().zip(row).for_each(|(o, &x)| *o += x);
                }
                host::tensor(out, [1, cols], &device)
            }
            _ => {
                let out = v
                    .chunks_exact(cols.max(1))
                    .map(|row| engine::sum::sum(row) as f32)
                    .collect::<Vec<_>>();
                let out = if cols == 0 { vec![0.0; rows] } else { out };
                host::tensor(out, [rows, 1], &device)
            }
        }
    }

    fn pmean_dim(self, dim: usize) -> Self {
        if portable(&self).is_none() {
            return self.mean_dim(dim);
        }
        let n = self.dims()[dim] as f32;
        self.psum_dim(dim).div_scalar(n)
    }
}

/// e^x on host f64 values: the portable engine's during a portable run, else the system's.
pub fn exp_f64(x: f64) -> f64 {
    match PORTABLE.with(Cell::get) {
        Some(e) => e.exp(x),
        None => x.exp(),
    }
}

/// ln x, as [`exp_f64`].
pub fn ln_f64(x: f64) -> f64 {
    match PORTABLE.with(Cell::get) {
        Some(e) => e.ln(x),
        None => x.ln(),
    }
}

/// ln(1 + x), as [`exp_f64`].
pub fn ln_1p_f64(x: f64) -> f64 {
    match PORTABLE.with(Cell::get) {
        Some(_) => engine::math::ln_1p(x),
        None => x.ln_1p(),
    }
}

/// σ(x) element-wise (the portable engine's is ½ + ½·tanh(x/2), `engine::math`).
pub fn sigmoid(t: Tensor<2>) -> Tensor<2> {
    match portable(&t) {
        Some(_) => map(t, engine::math::sigmoid_f32),
        None => activation::sigmoid(t),
    }
}

/// tanh(x) element-wise.
pub fn tanh(t: Tensor<2>) -> Tensor<2> {
    match portable(&t) {
        Some(_) => map(t, engine::math::tanh_f32),
        None => t.tanh(),
    }
}

/// GELU(x) = x·Φ(x) element-wise.
pub fn gelu(t: Tensor<2>) -> Tensor<2> {
    match portable(&t) {
        Some(_) => map(t, engine::math::gelu_f32),
        None => activation::gelu(t),
    }
}

/// softplus(x) = ln(1 + eˣ) element-wise (Burn's: x itself above 20).
pub fn softplus(t: Tensor<2>) -> Tensor<2> {
    match portable(&t) {
        Some(_) => map(t, |x| {
            if x > 20.0 {
                x
            } else {
                libm::log1pf(engine::math::exp_f32(x))
            }
        }),
        None => activation::softplus(t, 1.0),
    }
}

/// A right-hand operand of many products — a recurrent weight, used at every time step —
/// whose host copy the portable engine makes once instead of once per product.
pub struct Operand {
    tensor: Tensor<2>,
    /// (values, rows, cols) of `tensor` in host memory, on the portable engine.
    host: Option<(Vec<f32>, usize, usize)>,
    engine: Option<Engine>,
    transposed: bool,
}

impl Operand {
    /// `w` as the right-hand operand (`x·w`).
    pub fn new(w: Tensor<2>) -> Self {
        Self::with(w, false)
    }

    /// `w` transposed as the right-hand operand (`x·wᵀ`), without materialising wᵀ.
    pub fn transposed(w: Tensor<2>) -> Self {
        Self::with(w, true)
    }

    fn with(w: Tensor<2>, transposed: bool) -> Self {
        let engine = portable(&w);
        let host = engine.map(|_| {
            let [r, c] = w.dims();
            (host::to_vec(w.clone()), r, c)
        });
        Self {
            tensor: w,
            host,
            engine,
            transposed,
        }
    }

    /// x·w (or x·wᵀ).
    pub fn times(&self, x: Tensor<2>) -> Tensor<2> {
        let (Some(engine), Some((w, rows, cols))) = (self.engine, &self.host) else {
            return if self.transposed {
                x.matmul(self.tensor.clone().transpose())
            } else {
                x.matmul(self.tensor.clone())
            };
        };
        let [m, k] = x.dims();
        let (k2, n) = if self.transposed {
            (*cols, *rows)
        } else {
            (*rows, *cols)
        };
        assert_eq!(k, k2, "Operand::times: inner dimensions differ");
        let device = x.device();
        let xv = host::to_vec(x);
        let rhs = if self.transposed {
            View::transposed(w, *cols)
        } else {
            View::rows(w, n)
        };
        let mut out = host::overwritten(m * n);
        engine.product((m, n, k), &mut out, n, false, View::rows(&xv, k), rhs);
        host::tensor(out, [m, n], &device)
    }
}

/// op(a)·op(b) on the portable engine, op = transpose where asked: both operands are read
/// in place from their row-major buffers (a transposed view costs no copy).
fn product(engine: Engine, a: Tensor<2>, a_t: bool, b: Tensor<2>, b_t: bool) -> Tensor<2> {
    let (da, db) = (a.dims(), b.dims());
    let (m, k) = if a_t { (da[1], da[0]) } else { (da[0], da[1]) };
    let (k2, n) = if b_t { (db[1], db[0]) } else { (db[0], db[1]) };
    assert_eq!(k, k2, "pmatmul: inner dimensions differ");
    let device = a.device();
    let (av, bv) = (host::to_vec(a), host::to_vec(b));
    let lhs = if a_t {
        View::transposed(&av, m)
    } else {
        View::rows(&av, k)
    };
    let rhs = if b_t {
        View::transposed(&bv, k)
    } else {
        View::rows(&bv, n)
    };
    let mut out = host::overwritten(m * n);
    engine.product((m, n, k), &mut out, n, false, lhs, rhs);
    host::tensor(out, [m, n], &device)
}

/// log-softmax along dim 1 (rows), with log-sum-exp in f64 on the portable engine.
pub fn log_softmax(t: Tensor<2>) -> Tensor<2> {
    if portable(&t).is_none() {
        return activation::log_softmax(t, 1);
    }
    let (device, [rows, cols]) = (t.device(), t.dims());
    let mut v = host::to_vec(t);
    for row in v.chunks_exact_mut(cols.max(1)) {
        let max = row
            .iter()
            .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
        let lse = max as f64
            + engine::math::ln(
                row.iter()
                    .map(|&x| engine::math::exp(x as f64 - max as f64))
                    .sum::<f64>(),
            );
        row.iter_mut().for_each(|x| *x = (*x as f64 - lse) as f32);
    }
    host::tensor(v, [rows, cols], &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    /// On the portable engine every op agrees with Burn's to rounding; off it, it is Burn's.
    #[test]
    fn portable_ops_agree_with_burns() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
        let b: Vec<f32> = (0..56).map(|i| (i as f32 * 0.11).cos()).collect();
        let on = Engine {
            portable: true,
            threads: 1,
        };
        let close = |x: Vec<f32>, y: Vec<f32>, what: &str| {
            assert_eq!(x.len(), y.len(), "{what}");
            for (p, q) in x.iter().zip(&y) {
                assert!(
                    p == q || (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                    "{what}: {p} vs {q}"
                );
            }
        };
        let burn = (
            vals(t(a.clone(), [5, 7]).matmul(t(b.clone(), [7, 8]))),
            vals(t(a.clone(), [5, 7]).sum()),
            vals(t(a.clone(), [5, 7]).sum_dim(0)),
            vals(t(a.clone(), [5, 7]).mean_dim(1)),
            vals(t(a.clone(), [5, 7]).exp()),
            vals(t(a.clone(), [5, 7]).abs().log()),
            vals(t(a.clone(), [5, 7]).erf()),
            vals(activation::log_softmax(t(a.clone(), [5, 7]), 1)),
        );
        with_engine(on, || {
            close(
                vals(t(a.clone(), [5, 7]).pmatmul(t(b.clone(), [7, 8]))),
                burn.0.clone(),
                "matmul",
            );
            close(vals(t(a.clone(), [5, 7]).psum()), burn.1.clone(), "sum");
            close(
                vals(t(a.clone(), [5, 7]).psum_dim(0)),
                burn.2.clone(),
                "sum_dim",
            );
            close(
                vals(t(a.clone(), [5, 7]).pmean_dim(1)),
                burn.3.clone(),
                "mean_dim",
            );
            close(vals(t(a.clone(), [5, 7]).pexp()), burn.4.clone(), "exp");
            close(
                vals(t(a.clone(), [5, 7]).abs().plog()),
                burn.5.clone(),
                "log",
            );
            close(vals(t(a.clone(), [5, 7]).perf()), burn.6.clone(), "erf");
            close(
                vals(log_softmax(t(a.clone(), [5, 7]))),
                burn.7.clone(),
                "log_softmax",
            );
        });
        let (at, bt) = (t(a.clone(), [7, 5]), t(b.clone(), [8, 7]));
        let burn_tn = vals(at.clone().transpose().matmul(t(b[..56].to_vec(), [7, 8])));
        let burn_nt = vals(t(a.clone(), [5, 7]).matmul(bt.clone().transpose()));
        with_engine(on, || {
            close(
                vals(at.clone().pmatmul_tn(t(b[..56].to_vec(), [7, 8]))),
                burn_tn.clone(),
                "tn",
            );
            close(
                vals(t(a.clone(), [5, 7]).pmatmul_nt(bt.clone())),
                burn_nt.clone(),
                "nt",
            );
        });
        with_engine(on, || {
            let w = Operand::transposed(bt.clone());
            close(
                vals(w.times(t(a.clone(), [5, 7]))),
                burn_nt.clone(),
                "operand",
            );
        });
        // Off the portable engine: Burn's own bits.
        let off = vals(t(a.clone(), [5, 7]).pmatmul(t(b.clone(), [7, 8])));
        assert_eq!(off, burn.0);
        assert_eq!(vals(t(a, [5, 7]).psum()), burn.1);
    }
}
