//! The portable engine's arithmetic: products, element-wise functions and reductions whose
//! every bit is a function of their inputs alone — not of the CPU, its vector width, FMA, the
//! thread count or the system's libm.
//!
//! Why it can promise that: Rust never contracts `a * b + c` into a fused multiply-add, and
//! IEEE 754 rounds each +, −, ×, ÷ and √ exactly; so a value computed by one fixed sequence of
//! those operations has the same bits on every machine. Everything here is written so:
//! - [`product`]: every output element is one sum over k in increasing order, started from 0
//!   (or from the destination), a multiply then an add per term. Vector lanes only ever hold
//!   different output elements, and threads only ever own different rows, so the lane width
//!   (SSE2, AVX2, AVX-512, NEON) and the thread count choose the speed, never the bits.
//! - [`math`]: tanh, sigmoid, exp, ln, erf, sin, cos from the operations above (the f64 ones
//!   through the `libm` crate, a pure-Rust port of musl, instead of the system's libm, which
//!   picks FMA or non-FMA code by CPU).
//! - [`sum`]: reductions with a fixed number of partial sums in a fixed order.
//!
//! A leaf module: it depends on nothing else in the lab.

pub mod lanes;
pub mod math;
pub mod product;
pub mod sum;

pub use product::{View, product};
