//! Seeded, version-stable randomness: every random draw in the lab flows from the config seed.
//!
//! ChaCha8 is specified by its algorithm, not by a crate version, so ledger entries replay
//! after dependency upgrades; each consumer (data, init, batches) gets its own named stream
//! so adding draws to one never shifts another. Normals use Box–Muller, written here for the
//! same reason: `rand_distr`'s samplers are free to change between releases.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random stream derived from the experiment seed and a stream name.
pub struct Stream {
    rng: ChaCha8Rng,
    spare: Option<f64>,
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
        }
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
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
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
