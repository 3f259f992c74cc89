//! Mean-field theory through time for the recurrent nets at initialisation: ‖∂L/∂h_t‖ /
//! ‖∂L/∂h_T‖ for t = 1..T.
//!
//! Vanilla RNN, h_t = tanh(x_t·W_in + h_{t−1}·W_rec + b): the feed-forward recursion run over
//! time with the recurrent weights (Chen, Pennington & Schoenholz 2018, "Dynamical isometry
//! and a mean field theory of RNNs"). The pre-activation variance is
//! q_t = ρ²·E[tanh²(√q_{t−1} z)] + σ_in²·E[x_t²] + σ_b², where ρ² = N·Var(W_rec) (a Gaussian
//! W_rec of spectral radius ρ; an orthogonal one scaled by ρ has W W^T = ρ²I, the same factor
//! exactly), and back through time E‖∂L/∂h_{t−1}‖² = ρ²·E[tanh′²(√q_t z)]·E‖∂L/∂h_t‖². With
//! an orthogonal W_rec and |tanh′| ≤ 1 there is also a bound that needs no mean field:
//! ‖∂L/∂h_1‖/‖∂L/∂h_T‖ ≤ ρ^{T−1}.
//!
//! LSTM (gates i, f, g, o; Hochreiter & Schmidhuber 1997, the forget gate of Gers et al.
//! 2000), our derivation. Forward, the mean-field moments: every gate's pre-activation has
//! variance q_t = σ_in²E[x_t²] + ρ²E[h_{t−1}²] + σ_b² (the forget gate's mean is the forget
//! bias), E[c_t²] = E[f²]E[c_{t−1}²] + E[i²]E[g²], E[h_t²] = E[o²]E[tanh²(c_t)] (c_t taken
//! Gaussian). Backward, the mean-field average over independent weights fails: the cell path
//! and the recurrent path reuse one W_g and add coherently, so the backward pass is solved per
//! eigenmode of W_g (see `predict_lstm`).

use super::{Gaussian, effective_sigma2};
use crate::experiment::ModelSection;

/// One prediction through time.
#[derive(Debug, Clone)]
pub struct TimePrediction {
    /// Pre-activation variance q_t, t = 1..T (of every gate, for an LSTM).
    pub q: Vec<f64>,
    /// ‖∂L/∂h_t‖/‖∂L/∂h_T‖, t = 1..T (relative to `relative_to` instead when several steps
    /// are read out; `None` at and after the first read step but the reference itself).
    pub ratio: Vec<Option<f64>>,
    /// The 1-based step the ratios are relative to: T, or the first read-out step.
    pub relative_to: usize,
    /// LSTMs: the cell path's factor alone, Π_{s>t} E[σ(f_s)] (1 at `relative_to`).
    pub cell_path: Option<Vec<f64>>,
    /// The per-step factor of E‖∂L/∂h‖² at the last step's statistics (RNN: χ_T), or the
    /// cell path's E[f_T²] (LSTM).
    pub chi_last: f64,
    /// RNNs with an orthogonal W_rec: the bound ρ^{T−1} on ‖∂L/∂h_1‖/‖∂L/∂h_T‖.
    pub orthogonal_bound: Option<f64>,
    /// LSTMs: the per-step factor of the most persistent mode, f̄ + ō·tanh′(c)·ī·tanh′(z_g)·ρ,
    /// at the last step's statistics (above 1: the error grows back through time).
    pub coherent_peak: Option<f64>,
}

/// E[x_t²] averaged over examples and features, t = 1..T, of time-major rows.
pub fn input_q_per_step(x: &[f32], steps: usize, features: usize) -> Vec<f64> {
    let row = steps * features;
    let n = x.len().checked_div(row).unwrap_or(0);
    let mut out = vec![0.0; steps];
    if n == 0 || features == 0 {
        return out;
    }
    for r in x.chunks_exact(row) {
        for (t, step) in r.chunks_exact(features).enumerate() {
            out[t] += step.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        }
    }
    out.iter().map(|s| s / (n * features) as f64).collect()
}

fn tanh_moments(g: &Gaussian, mean: f64, q: f64) -> (f64, f64) {
    let s = q.max(0.0).sqrt();
    (
        g.expect(|z| (mean + s * z).tanh().powi(2)),
        g.expect(|z| (1.0 - (mean + s * z).tanh().powi(2)).powi(2)),
    )
}

/// (E[σ], E[σ²]) of a sigmoid gate with pre-activation N(mean, q).
fn sigmoid_moments(g: &Gaussian, mean: f64, q: f64) -> (f64, f64) {
    let s = q.max(0.0).sqrt();
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    (
        g.expect(|z| sig(mean + s * z)),
        g.expect(|z| sig(mean + s * z).powi(2)),
    )
}

/// The ratios from squared norms `gsq` (index t − 1), relative to step `reference`.
fn ratios(gsq: &[f64], reference: usize) -> Vec<Option<f64>> {
    let r = gsq[reference - 1];
    gsq.iter()
        .enumerate()
        .map(|(i, g)| (i < reference).then(|| (g / r).sqrt()))
        .collect()
}

/// The vanilla tanh RNN of `m` over `x_q` (E[x_t²] per step) with `features` inputs per step,
/// read out at the last `reads` steps.
pub fn predict_rnn(m: &ModelSection, x_q: &[f64], features: usize, reads: usize) -> TimePrediction {
    let g = Gaussian::default();
    let t_len = x_q.len();
    let rho2 = m.spectral_radius * m.spectral_radius;
    let s2_in = effective_sigma2(m.init, m.sigma_w, features, m.width);
    let sb2 = m.sigma_b * m.sigma_b;
    let mut q = Vec::with_capacity(t_len);
    let mut h2 = 0.0; // E[h_0²]
    for &xq in x_q {
        let qt = rho2 * h2 + s2_in * xq + sb2;
        h2 = tanh_moments(&g, 0.0, qt).0;
        q.push(qt);
    }
    let reference = t_len + 1 - reads.clamp(1, t_len.max(1));
    // Back from the reference step: only the recurrent path reaches earlier steps.
    let mut gsq = vec![0.0; t_len];
    if t_len > 0 {
        gsq[reference - 1] = 1.0;
        for t in (1..reference).rev() {
            // ∂L/∂h_t = W_rec^T (tanh′(z_{t+1}) ⊙ ∂L/∂h_{t+1}); q index t is step t + 1.
            gsq[t - 1] = rho2 * tanh_moments(&g, 0.0, q[t]).1 * gsq[t];
        }
    }
    let chi_last = q
        .last()
        .map_or(0.0, |&qt| rho2 * tanh_moments(&g, 0.0, qt).1);
    TimePrediction {
        ratio: if t_len > 0 {
            ratios(&gsq, reference)
        } else {
            Vec::new()
        },
        relative_to: reference,
        cell_path: None,
        chi_last,
        orthogonal_bound: (m.recurrent_init == crate::experiment::RecurrentInit::Orthogonal
            && t_len > 0)
            .then(|| m.spectral_radius.powi(t_len as i32 - 1)),
        coherent_peak: None,
        q,
    }
}

/// The LSTM of `m` over `x_q` (E[x_t²] per step), as [`predict_rnn`].
pub fn predict_lstm(
    m: &ModelSection,
    x_q: &[f64],
    features: usize,
    reads: usize,
) -> TimePrediction {
    let g = Gaussian::default();
    let t_len = x_q.len();
    let rho2 = m.spectral_radius * m.spectral_radius;
    // W_in is one [features, 4·width] matrix: its fans are those.
    let s2_in = effective_sigma2(m.init, m.sigma_w, features, 4 * m.width);
    let sb2 = m.sigma_b * m.sigma_b;
    let bf = m.forget_bias;

    // Forward, per step: gate variance, the gates' moments, E[c²] before and after.
    struct Stat {
        q: f64,
        /// E[σ(f)], E[σ(f)²].
        f1: f64,
        f2: f64,
        o1: f64,
        i1: f64,
        /// E[tanh′(z_g)], E[tanh′(c_t)].
        dtanh_g1: f64,
        dtanh_c1: f64,
    }
    let mut stats = Vec::with_capacity(t_len);
    let (mut h2, mut c2) = (0.0, 0.0);
    for &xq in x_q {
        let q = s2_in * xq + rho2 * h2 + sb2;
        let (i1, i2) = sigmoid_moments(&g, 0.0, q);
        let (f1, f2) = sigmoid_moments(&g, bf, q);
        let (o1, o2) = sigmoid_moments(&g, 0.0, q);
        let (g2, dtanh_g1) = (
            tanh_moments(&g, 0.0, q).0,
            g.expect(|z| 1.0 - (q.sqrt() * z).tanh().powi(2)),
        );
        c2 = f2 * c2 + i2 * g2;
        let dtanh_c1 = g.expect(|z| 1.0 - (c2.sqrt() * z).tanh().powi(2));
        h2 = o2 * tanh_moments(&g, 0.0, c2).0;
        stats.push(Stat {
            q,
            f1,
            f2,
            o1,
            i1,
            dtanh_g1,
            dtanh_c1,
        });
    }
    let reference = t_len + 1 - reads.clamp(1, t_len.max(1));
    // Back through time, per eigenmode of the candidate gate's recurrent block W_g. At
    // initialisation the states are small and every gate is near its mean, so one step back is
    // ∂L/∂c_t = f̄_{t+1}·∂L/∂c_{t+1} + ō·tanh′(c_t)·∂L/∂h_t and ∂L/∂h_{t−1} = W_g^T(ī·tanh′(z_g)
    // ·∂L/∂c_t): a polynomial in the one normal matrix W_g (orthogonal × ρ), so it acts on each
    // eigenvector alone, with eigenvalue ρe^{iθ}. The cell path and the recurrent path then
    // add *coherently*: where the mean-field average over independent weights gives
    // f̄² + (āρ)² per step, a mode at θ ≈ 0 gets (f̄ + āρ)² — above 1 for lstm-adding-50's
    // forget bias 2 and ρ = 0.8, which is why ‖∂L/∂h_t‖ *grows* back through time there. The
    // gates i, f, o reach h through their own blocks with zero-mean factors (g, c, tanh c) and
    // are left out: second order in the small states at initialisation.
    let mut gh = vec![0.0; t_len];
    let mut cell = vec![1.0; t_len];
    if t_len > 0 {
        // Split the product of steps into powers of W_g: for a wide W_g, orthogonal (Haar)
        // or Gaussian alike, distinct powers are orthogonal and ‖W_g^j v‖² → ρ^{2j}‖v‖², so
        // E‖∂L/∂h_t‖² = Σ_j e_j²ρ^{2j} with e_j the paths through j recurrent steps — which is
        // the average over λ = ρe^{iθ}, θ uniform, of the scalar recursion: computed so.
        let rho = m.spectral_radius;
        const ANGLES: usize = 720;
        let weight = 1.0 / ANGLES as f64;
        for k in 0..ANGLES {
            // Conjugate pairs give the same power: the half circle suffices.
            let theta = std::f64::consts::PI * (k as f64 + 0.5) / ANGLES as f64;
            {
                let (lr, li) = (rho * theta.cos(), -rho * theta.sin()); // conj(λ)
                let (mut hr, mut hi) = (1.0, 0.0); // ∂L/∂h_t in this mode
                let (mut cr, mut ci) = (0.0, 0.0); // ∂L/∂c_{t+1}
                let mut f_next = 0.0;
                gh[reference - 1] += weight;
                for t in (1..=reference).rev() {
                    let s = &stats[t - 1];
                    let kappa = s.o1 * s.dtanh_c1;
                    let (gcr, gci) = (kappa * hr + f_next * cr, kappa * hi + f_next * ci);
                    if t > 1 {
                        let a = s.i1 * s.dtanh_g1;
                        hr = a * (lr * gcr - li * gci);
                        hi = a * (lr * gci + li * gcr);
                        gh[t - 2] += (hr * hr + hi * hi) * weight;
                    }
                    (cr, ci, f_next) = (gcr, gci, s.f1);
                }
            }
        }
        for t in (1..reference).rev() {
            cell[t - 1] = cell[t] * stats[t].f1;
        }
    }
    TimePrediction {
        q: stats.iter().map(|s| s.q).collect(),
        ratio: if t_len > 0 {
            ratios(&gh, reference)
        } else {
            Vec::new()
        },
        relative_to: reference,
        cell_path: Some(
            cell.iter()
                .enumerate()
                .map(|(i, &c)| if i < reference { c } else { f64::NAN })
                .collect(),
        ),
        chi_last: stats.last().map_or(0.0, |s| s.f2),
        coherent_peak: stats
            .last()
            .map(|s| s.f1 + s.o1 * s.dtanh_c1 * s.i1 * s.dtanh_g1 * m.spectral_radius),
        orthogonal_bound: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{ModelKind, RecurrentInit};

    fn rnn(radius: f64) -> ModelSection {
        ModelSection {
            kind: ModelKind::Rnn,
            width: 32,
            recurrent_init: RecurrentInit::Orthogonal,
            spectral_radius: radius,
            ..ModelSection::default()
        }
    }

    /// With no input and no bias the state stays at 0: tanh′ = 1 and each step back
    /// multiplies ‖∂L/∂h‖ by exactly ρ, the orthogonal bound with equality.
    #[test]
    fn a_silent_rnn_decays_by_the_radius_per_step() {
        let p = predict_rnn(&rnn(0.8), &[0.0; 10], 2, 1);
        let first = p.ratio[0].unwrap();
        assert!((first - 0.8f64.powi(9)).abs() < 1e-12, "{first}");
        assert!((first - p.orthogonal_bound.unwrap()).abs() < 1e-12);
        assert_eq!(p.ratio[9], Some(1.0));
    }

    /// Inputs push tanh into saturation: the decay is faster than ρ per step, never slower.
    #[test]
    fn driven_rnns_fall_below_the_bound() {
        let p = predict_rnn(&rnn(0.95), &[1.0; 20], 2, 1);
        let first = p.ratio[0].unwrap();
        assert!(first < p.orthogonal_bound.unwrap(), "{first}");
        // Several read-out steps: the ratios are relative to the first of them.
        let p = predict_rnn(&rnn(0.95), &[1.0; 20], 2, 5);
        assert_eq!(p.relative_to, 16);
        assert_eq!(p.ratio[15], Some(1.0));
        assert!(p.ratio[16].is_none());
    }

    /// A large forget bias holds the cell path near 1 per step (σ(b_f) → 1).
    #[test]
    fn the_forget_bias_sets_the_cell_path() {
        let mut m = rnn(0.8);
        m.kind = ModelKind::Lstm;
        // Π σ(b_f) over 29 steps: 0.9933^29 = 0.82 at b_f = 5, 0.5^29 at 0.
        for (bf, lo, hi) in [(5.0, 0.75, 0.9), (0.0, 0.0, 1e-6)] {
            m.forget_bias = bf;
            let p = predict_lstm(&m, &[0.5; 30], 2, 1);
            let cell = p.cell_path.as_ref().unwrap()[0];
            assert!((lo..=hi).contains(&cell), "b_f {bf}: {cell}");
        }
    }
}
