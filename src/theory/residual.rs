//! Mean-field theory of the residual net h ← h + α·F(h) (Yang & Schoenholz 2017, "Mean
//! field residual networks: on the edge of chaos"), layer by layer at initialisation.
//!
//! Forward, per unit: the stream's second moment p and mean μ. A branch layer sees
//! q = σ²·p + σ_b² (σ² = N·Var(W); with layer norm its input has unit second moment, so
//! q = σ² + σ_b²). A one-layer branch φ(z) adds α²E[φ²] + 2αμE[φ] to p and αE[φ] to μ — the
//! cross term is the paper's: the branch's pre-activation is independent of the unit it is
//! added to, but both have a mean for ReLU-like φ; a two-layer branch ends linear, so it adds
//! α²(σ²E[φ²] + σ_b²) and no mean.
//!
//! Backward, with the usual gradient-independence assumption: the skip path passes ∂L/∂h
//! unchanged and the branch adds an independent term, so per block
//! E‖∂L/∂h_{l−1}‖² = E‖∂L/∂h_l‖²·(1 + α²χ_l) with χ_l = σ²E[φ′²] (one layer) or σ⁴E[φ′²]
//! (two) — growth, never vanishing: polynomial in depth at the edge, exponential in L·α²
//! otherwise, which α = 1/√L tames to a constant. Through layer norm the branch's term is
//! divided by the stream's variance across units (the norm's Jacobian is 1/σ_h times a
//! projection that removes two of N directions); this part is ours, not the paper's, which
//! treats nets without normalisation.

use super::{Gaussian, dphi, effective_sigma2, phi};
use crate::experiment::ModelSection;

/// Added to the variance in the model's layer norm (as `models::resnet`).
const LN_EPS: f64 = 1e-5;

/// The predicted profile, one value per trace layer (`in`, each branch layer, `out`).
#[derive(Debug, Clone)]
pub struct ResidualPrediction {
    /// Pre-activation variance of each dense layer (the read-out's last).
    pub q: Vec<f64>,
    /// ‖δ‖/‖δ^out‖ per dense layer (= 1 for `out`).
    pub delta_ratio: Vec<f64>,
    /// ‖∂L/∂h_l‖/‖δ^out‖ on the skip path at the end of each block l = 1..L.
    pub skip_ratio: Vec<f64>,
    /// E‖∂L/∂h_0‖²/E‖∂L/∂h_L‖²: the squared growth of the error across all blocks.
    pub growth: f64,
}

/// Predicts the δ profile of the residual net `m` on inputs whose per-example mean squares
/// (E[x_i²] over an example's dimensions) are `example_q`.
pub fn predict(
    m: &ModelSection,
    input_dim: usize,
    output_dim: usize,
    example_q: &[f64],
) -> ResidualPrediction {
    let input_q = example_q.iter().sum::<f64>() / example_q.len().max(1) as f64;
    let g = Gaussian::default();
    let (act, slope) = (m.activation, m.leaky_slope);
    let alpha = m.residual_scale.alpha(m.depth);
    let sb2 = m.sigma_b * m.sigma_b;
    let w = m.width;
    let s2_stem = effective_sigma2(m.init, m.sigma_w, input_dim, w);
    let s2 = effective_sigma2(m.init, m.sigma_w, w, w);
    let s2_out = effective_sigma2(m.init, m.sigma_w, w, output_dim);
    let mean = |q: f64| g.expect(|z| phi(act, slope, q.max(0.0).sqrt() * z));
    let sq = |q: f64| g.expect(|z| phi(act, slope, q.max(0.0).sqrt() * z).powi(2));
    let dsq = |q: f64| g.expect(|z| dphi(act, slope, q.max(0.0).sqrt() * z).powi(2));

    // Forward: the stem, then per block the branch layers' q and the stream's p, μ before it.
    let q0 = s2_stem * input_q + sb2;
    let (mut p, mut mu) = (sq(q0), mean(q0));
    let mut q = vec![q0];
    // Per block: (q of each branch layer, p and μ of the stream entering the block).
    let mut blocks: Vec<(Vec<f64>, f64, f64)> = Vec::with_capacity(m.depth);
    for _ in 0..m.depth {
        let u2 = if m.layer_norm {
            let var = (p - mu * mu).max(0.0);
            var / (var + LN_EPS)
        } else {
            p
        };
        let q1 = s2 * u2 + sb2;
        let (p_in, mu_in) = (p, mu);
        if m.block_layers == 1 {
            let (m1, m2) = (mean(q1), sq(q1));
            // With layer norm the branch input has zero mean per example, but the branch
            // output's mean E[φ] still adds to the stream's.
            p += alpha * alpha * m2 + 2.0 * alpha * mu * m1;
            mu += alpha * m1;
            blocks.push((vec![q1], p_in, mu_in));
        } else {
            let q2 = s2 * sq(q1) + sb2;
            p += alpha * alpha * q2;
            blocks.push((vec![q1, q2], p_in, mu_in));
        }
        q.extend(&blocks.last().expect("pushed").0);
    }
    q.push(s2_out * p + sb2);

    // Backward, in squared norms relative to ‖δ^out‖² = 1.
    let mut gsq = s2_out; // E‖∂L/∂h_L‖²
    let g_last = gsq;
    let mut skip = vec![0.0; m.depth];
    let mut branch: Vec<Vec<f64>> = vec![Vec::new(); m.depth];
    // The first block's norm divides each example by the stem output's spread *for that
    // example*: with few input dimensions (spirals have 2) that spread varies from example to
    // example, and the mean of 1/v is not 1/(mean v). Later streams are dominated by
    // normalised branches, whose spread is the same for every example.
    let first_norm = {
        let inv: f64 = example_q
            .iter()
            .map(|&x| {
                let q = s2_stem * x + sb2;
                1.0 / ((sq(q) - mean(q).powi(2)).max(0.0) + LN_EPS)
            })
            .sum();
        inv / example_q.len().max(1) as f64
    };
    for l in (0..m.depth).rev() {
        skip[l] = gsq;
        let (qs, p_in, mu_in) = &blocks[l];
        let norm = match (m.layer_norm, l) {
            (false, _) => 1.0,
            (true, 0) if !example_q.is_empty() => first_norm,
            (true, _) => 1.0 / ((p_in - mu_in * mu_in).max(0.0) + LN_EPS),
        };
        let into_input = if m.block_layers == 1 {
            let d = alpha * alpha * dsq(qs[0]) * gsq;
            branch[l] = vec![d];
            s2 * d
        } else {
            let d2 = alpha * alpha * gsq;
            let d1 = dsq(qs[0]) * s2 * d2;
            branch[l] = vec![d1, d2];
            s2 * d1
        };
        gsq += norm * into_input;
    }
    let d_in = dsq(q0) * gsq;
    let delta_sq: Vec<f64> = std::iter::once(d_in)
        .chain(branch.into_iter().flatten())
        .chain(std::iter::once(1.0))
        .collect();
    ResidualPrediction {
        q,
        delta_ratio: delta_sq.iter().map(|d| d.sqrt()).collect(),
        skip_ratio: skip.iter().map(|s| s.sqrt()).collect(),
        growth: gsq / g_last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{Activation, Init, ResidualScale};

    fn net(depth: usize, scale: ResidualScale, act: Activation) -> ModelSection {
        ModelSection {
            kind: crate::experiment::ModelKind::Resnet,
            depth,
            width: 64,
            activation: act,
            init: Init::XavierNormal,
            residual_scale: scale,
            block_layers: 1,
            ..ModelSection::default()
        }
    }

    /// Linear branches, σ² = 1, σ_b = 0: each block multiplies E‖∂L/∂h‖² by exactly
    /// 1 + α², so L blocks give (1 + α²)^L — (1 + 1/L)^L → e with α = 1/√L.
    #[test]
    fn linear_blocks_grow_the_error_by_one_plus_alpha_squared() {
        for (scale, alpha2) in [
            (ResidualScale::One, 1.0),
            (ResidualScale::InvSqrtDepth, 0.1),
        ] {
            let p = predict(&net(10, scale, Activation::Linear), 64, 64, &[1.0]);
            let want = (1.0f64 + alpha2).powi(10);
            assert!(
                (p.growth / want - 1.0).abs() < 1e-9,
                "{} vs {want}",
                p.growth
            );
            assert_eq!(p.delta_ratio.len(), 12);
            assert_eq!(*p.delta_ratio.last().unwrap(), 1.0);
        }
    }

    /// ReLU at α = 1 (E[φ′²] = 1/2, σ² = 1): growth 1.5 per block; the stream's second
    /// moment grows too (by the cross term, faster than the branch alone).
    #[test]
    fn relu_blocks_grow_by_three_halves() {
        let p = predict(
            &net(20, ResidualScale::One, Activation::Relu),
            64,
            64,
            &[1.0],
        );
        let want = 1.5f64.powi(20);
        // ReLU's kink limits the quadrature to ~1e-3 per expectation.
        assert!(
            (p.growth / want - 1.0).abs() < 0.05,
            "{} vs {want}",
            p.growth
        );
        assert!(p.q[1..21].windows(2).all(|w| w[1] > w[0]), "{:?}", p.q);
    }

    /// Layer norm fixes the branch input's scale: q of every branch layer is the same.
    #[test]
    fn layer_norm_fixes_the_branch_input() {
        let mut m = net(8, ResidualScale::One, Activation::Tanh);
        m.layer_norm = true;
        let p = predict(&m, 64, 64, &[1.0]);
        let branch = &p.q[1..9];
        assert!(
            branch.iter().all(|q| (q - branch[0]).abs() < 1e-3),
            "{branch:?}"
        );
    }
}
