//! Seeded, version-stable randomness: every random draw in the lab flows from the config seed.
//!
//! ChaCha8 is specified by its algorithm, not by a crate version, so ledger entries replay
//! after dependency upgrades; each consumer (data, init, batches) gets its own named stream
//! so adding draws to one never shifts another. Normals use Box–Muller, written here for the
//! same reason: `rand_distr`'s samplers are free to change between releases.
//!
//! The f64 functions of the path (Box–Muller's ln, sin and cos; the spirals' angles) are
//! versioned: [`Version::V1`] calls the system's libm, whose last bit varies by CPU (glibc
//! picks FMA or non-FMA code at load time), and is what every entry before the portable engine
//! used; [`Version::V2`], the default, uses `engine::math` (the `libm` crate), the same bits
//! on every machine. A run sets its version once, on its own thread ([`with_version`]); the
//! ledger records it (`seeds.version`), so an old entry rebuilds its old data and weights.

use crate::engine::math;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::Cell;

/// Which f64 functions the data and init path computes with (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// The system's libm (entries recorded before `seeds.version` existed).
    V1,
    /// `engine::math`: the same bits on every machine.
    #[default]
    V2,
}

impl Version {
    /// The number the ledger records (`seeds.version`; absent means 1).
    pub fn number(self) -> u32 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }

    /// The version a recorded number names, if this build knows it.
    pub fn from_number(n: u32) -> Option<Self> {
        [Version::V1, Version::V2]
            .into_iter()
            .find(|v| v.number() == n)
    }

    pub fn ln(self, x: f64) -> f64 {
        match self {
            Version::V1 => x.ln(),
            Version::V2 => math::ln(x),
        }
    }

    pub fn sin(self, x: f64) -> f64 {
        match self {
            Version::V1 => x.sin(),
            Version::V2 => math::sin(x),
        }
    }

    pub fn cos(self, x: f64) -> f64 {
        match self {
            Version::V1 => x.cos(),
            Version::V2 => math::cos(x),
        }
    }
}

thread_local! {
    static VERSION: Cell<Version> = const { Cell::new(Version::V2) };
}

/// Runs `f` with streams created on this thread using `version` (restored afterwards).
pub fn with_version<R>(version: Version, f: impl FnOnce() -> R) -> R {
    struct Restore(Version);
    impl Drop for Restore {
        fn drop(&mut self) {
            VERSION.with(|v| v.set(self.0));
        }
    }
    let _restore = Restore(VERSION.with(|v| v.replace(version)));
    f()
}

/// A random stream derived from the experiment seed and a stream name.
pub struct Stream {
    rng: ChaCha8Rng,
    spare: Option<f64>,
    version: Version,
}

impl Stream {
    pub fn new(seed: u64, name: &str) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"gradlab-rng-v1");
        hasher.update(&seed.to_le_bytes());
        hasher.update(name.as_bytes());
        Self {
            rng: ChaCha8Rng::from_seed(*hasher.finalize().as_bytes()),
            spare: None,
            version: VERSION.with(Cell::get),
        }
    }

    /// The f64 functions this stream's draws (and their consumers) compute with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// 64 random bits (seeds for derived streams).
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal by Box–Muller.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln never sees 0
        let u2 = self.uniform();
        let v = self.version;
        let r = (-2.0 * v.ln(u1)).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare = Some(r * v.sin(theta));
        r * v.cos(theta)
    }

    /// Uniform integer in [0, n) without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n as u64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<f64> = (0..4).map(|_| Stream::new(7, "x").uniform()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Stream::new(7, "x").uniform(), Stream::new(7, "y").uniform());
        assert_ne!(Stream::new(7, "x").uniform(), Stream::new(8, "x").uniform());
    }

    #[test]
    fn normals_have_unit_variance() {
        let mut s = Stream::new(1, "n");
        let xs: Vec<f64> = (0..20_000).map(|_| s.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
