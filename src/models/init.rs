//! Weight initialisation from the lab's own seeded stream (never the backend's RNG, whose
//! lazy, order-dependent draws would make weights depend on which layer is touched first).

use crate::experiment::{Init, RecurrentInit};
use crate::rng::Stream;

/// Draws a `[fan_in, fan_out]` weight matrix (row-major) for `init`, scaled by `sigma_w`.
pub fn weights(
    init: Init,
    fan_in: usize,
    fan_out: usize,
    sigma_w: f64,
    rng: &mut Stream,
) -> Vec<f32> {
    let n = fan_in * fan_out;
    let (fi, fo) = (fan_in as f64, fan_out as f64);
    let v: Vec<f64> = match init {
        Init::Naive => (0..n).map(|_| sigma_w * rng.normal()).collect(),
        Init::NaiveUniform => (0..n).map(|_| rng.uniform_in(-sigma_w, sigma_w)).collect(),
        Init::XavierUniform => {
            let a = sigma_w * (6.0 / (fi + fo)).sqrt();
            (0..n).map(|_| rng.uniform_in(-a, a)).collect()
        }
        Init::XavierNormal => {
            let sd = sigma_w * (2.0 / (fi + fo)).sqrt();
            (0..n).map(|_| sd * rng.normal()).collect()
        }
        Init::He => {
            let sd = sigma_w * (2.0 / fi).sqrt();
            (0..n).map(|_| sd * rng.normal()).collect()
        }
        Init::Orthogonal => orthogonal(fan_in, fan_out, rng)
            .into_iter()
            .map(|x| sigma_w * x)
            .collect(),
    };
    v.into_iter().map(|x| x as f32).collect()
}

/// Biases from N(0, σ_b²); exactly zero when σ_b = 0 (no draws, so σ_b = 0 and the weights
/// stay what they would be without biases).
pub fn biases(n: usize, sigma_b: f64, rng: &mut Stream) -> Vec<f32> {
    if sigma_b == 0.0 {
        return vec![0.0; n];
    }
    (0..n).map(|_| (sigma_b * rng.normal()) as f32).collect()
}

/// An `n × n` recurrent matrix with spectral radius `radius`: exactly for `orthogonal` (all
/// eigenvalues of an orthogonal matrix have modulus 1), approximately for `gaussian`, whose
/// N(0, radius²/n) entries put the eigenvalues in a disc of that radius as n grows.
pub fn recurrent(kind: RecurrentInit, n: usize, radius: f64, rng: &mut Stream) -> Vec<f32> {
    let v: Vec<f64> = match kind {
        RecurrentInit::Orthogonal => orthogonal(n, n, rng)
            .into_iter()
            .map(|x| radius * x)
            .collect(),
        RecurrentInit::Gaussian => {
            let sd = radius / (n as f64).sqrt();
            (0..n * n).map(|_| sd * rng.normal()).collect()
        }
    };
    v.into_iter().map(|x| x as f32).collect()
}

/// A `rows × cols` matrix with orthonormal rows or columns (whichever are fewer), from
/// modified Gram–Schmidt on a Gaussian matrix with the sign fix of Mezzadri 2007, in f64.
pub fn orthogonal(rows: usize, cols: usize, rng: &mut Stream) -> Vec<f64> {
    // Orthonormalise the k = min(rows, cols) longer vectors of length m = max(rows, cols).
    let (k, m, transpose) = if rows >= cols {
        (cols, rows, true)
    } else {
        (rows, cols, false)
    };
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(k);
    while basis.len() < k {
        // O(k² m): seconds for a wide recurrent matrix, so a stop request is honoured here
        // (only while a run builds its network; see `crate::cancel`).
        crate::cancel::checkpoint();
        let mut v: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
        for b in &basis {
            let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-8 {
            basis.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut out = vec![0.0; rows * cols];
    for (i, b) in basis.iter().enumerate() {
        for (j, &x) in b.iter().enumerate() {
            if transpose {
                out[j * cols + i] = x; // basis vectors are columns
            } else {
                out[i * cols + j] = x; // basis vectors are rows
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variance(v: &[f32]) -> f64 {
        v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / v.len() as f64
    }

    #[test]
    fn scales_match_their_definitions() {
        let mut rng = Stream::new(0, "t");
        let (fi, fo) = (200, 100);
        let cases = [
            (Init::Naive, 0.25),
            (Init::NaiveUniform, 0.25 / 3.0),
            (Init::XavierUniform, 0.25 * 2.0 / 300.0),
            (Init::XavierNormal, 0.25 * 2.0 / 300.0),
            (Init::He, 0.25 * 2.0 / 200.0),
            (Init::Orthogonal, 0.25 / 200.0),
        ];
        for (init, want) in cases {
            let got = variance(&weights(init, fi, fo, 0.5, &mut rng));
            assert!((got / want - 1.0).abs() < 0.05, "{init:?}: {got} vs {want}");
        }
    }

    #[test]
    fn orthogonal_is_orthonormal_both_ways() {
        let mut rng = Stream::new(1, "t");
        for (r, c) in [(5, 3), (3, 5), (4, 4)] {
            let q = orthogonal(r, c, &mut rng);
            let k = r.min(c);
            for a in 0..k {
                for b in 0..k {
                    let dot: f64 = if r >= c {
                        (0..r).map(|i| q[i * c + a] * q[i * c + b]).sum()
                    } else {
                        (0..c).map(|j| q[a * c + j] * q[b * c + j]).sum()
                    };
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-10, "({r},{c}) {a},{b}: {dot}");
                }
            }
        }
    }
}
