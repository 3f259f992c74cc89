//! Mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017): how fast δ
//! *should* vanish or explode, layer by layer, for a deep MLP at initialisation.
//!
//! With weights of variance σ²/N_in and biases of variance σ_b², a wide network's
//! pre-activation variance follows q^l = σ_l²·E[φ(√q^{l−1} z)²] + σ_b² (z ~ N(0, 1)), and the
//! squared error signal shrinks or grows by χ_l = σ_{l+1}²·E[φ′(√q^l z)²] per layer, so
//! ‖δ^l‖/‖δ^{l+1}‖ ≈ √χ_l. σ_l² here is the *effective* scale N_in·Var(W_ij) of layer l,
//! which each init scheme sets differently (see `effective_sigma2`). At the fixed point q*
//! of the variance map, ξ = −1/ln χ* is the depth over which δ changes by a factor e.

pub mod profile;
pub mod recurrent;
pub mod residual;

use crate::experiment::{Activation, Experiment, Init, ModelSection};

/// Why a prediction or measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TheoryError {
    /// The seeds' configs (the experiment with `--seed` moved on) do not validate.
    #[error(transparent)]
    Config(#[from] crate::experiment::ConfigError),
    /// The experiment's data set could not be built.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A measuring run ended before its first probe (it failed or was stopped).
    #[error("the run ended without a probe: {end}")]
    NoProbe { end: String },
    /// The theory's rows are not the trace's layers (a bug, reported rather than printed).
    #[error("the theory's rows ({rows}) are not the trace's layers ({trace})")]
    Misaligned { trace: String, rows: String },
}

/// Gauss–Hermite nodes and weights for ∫ e^{−x²} f(x) dx, by Newton's method on the
/// orthonormal Hermite recurrence (Numerical Recipes' `gauher`).
pub fn gauss_hermite(n: usize) -> Vec<(f64, f64)> {
    let pim4 = std::f64::consts::PI.powf(-0.25);
    let m = n.div_ceil(2);
    let mut out = vec![(0.0, 0.0); n];
    let mut z = 0.0f64;
    for i in 0..m {
        z = match i {
            0 => (2.0 * n as f64 + 1.0).sqrt() - 1.85575 * (2.0 * n as f64 + 1.0).powf(-1.0 / 6.0),
            1 => z - 1.14 * (n as f64).powf(0.426) / z,
            2 => 1.86 * z - 0.86 * out[0].0,
            3 => 1.91 * z - 0.91 * out[1].0,
            _ => 2.0 * z - out[i - 2].0,
        };
        let mut pp = 0.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (pim4, 0.0);
            for j in 0..n {
                let p3 = p2;
                p2 = p1;
                p1 = z * (2.0 / (j as f64 + 1.0)).sqrt() * p2
                    - (j as f64 / (j as f64 + 1.0)).sqrt() * p3;
            }
            pp = (2.0 * n as f64).sqrt() * p2;
            let dz = p1 / pp;
            z -= dz;
            if dz.abs() < 1e-14 {
                break;
            }
        }
        let w = 2.0 / (pp * pp);
        out[i] = (z, w);
        out[n - 1 - i] = (-z, w);
    }
    out
}

/// E[f(z)] for z ~ N(0, 1).
pub struct Gaussian {
    nodes: Vec<(f64, f64)>,
}

impl Default for Gaussian {
    fn default() -> Self {
        // 100 nodes integrate tanh/sigmoid/gelu expectations to ~1e-12 for q up to ~1e3;
        // `tests::quadrature_matches_closed_forms` checks it.
        Self {
            nodes: gauss_hermite(100),
        }
    }
}

impl Gaussian {
    pub fn expect(&self, f: impl Fn(f64) -> f64) -> f64 {
        let s = std::f64::consts::SQRT_2;
        self.nodes.iter().map(|&(x, w)| w * f(s * x)).sum::<f64>() / std::f64::consts::PI.sqrt()
    }
}

fn phi(act: Activation, slope: f64, x: f64) -> f64 {
    match act {
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu => {
            if x > 0.0 {
                x
            } else {
                slope * x
            }
        }
        Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::Linear => x,
    }
}

fn dphi(act: Activation, slope: f64, x: f64) -> f64 {
    match act {
        Activation::Tanh => 1.0 - x.tanh().powi(2),
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        }
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu => {
            if x > 0.0 {
                1.0
            } else {
                slope
            }
        }
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
            cdf + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
        }
        Activation::Linear => 1.0,
    }
}

/// The error function: its Taylor series below 3, the continued fraction of erfc above;
/// accurate to ~1e-15 (`tests::erf_is_accurate`).
pub fn erf(x: f64) -> f64 {
    // Series for |x| < 3, complementary continued fraction beyond.
    let ax = x.abs();
    let r = if ax < 3.0 {
        let mut term = ax;
        let mut sum = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // Lentz continued fraction for erfc.
        let mut f = ax;
        let mut c = ax;
        let mut d = 0.0;
        for k in 1..200 {
            let a = k as f64 / 2.0;
            d = ax + a * d;
            d = if d == 0.0 { 1e-300 } else { 1.0 / d };
            c = ax + a / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - (-ax * ax).exp() / (f * std::f64::consts::PI.sqrt())
    };
    if x < 0.0 { -r } else { r }
}

/// E[φ(√q z)²] and E[φ′(√q z)²], in closed form where one exists (the ReLU family, linear).
pub fn moments(g: &Gaussian, act: Activation, slope: f64, q: f64) -> (f64, f64) {
    match act {
        Activation::Relu => (q / 2.0, 0.5),
        Activation::LeakyRelu => (q * (1.0 + slope * slope) / 2.0, (1.0 + slope * slope) / 2.0),
        Activation::Linear => (q, 1.0),
        _ => {
            let s = q.max(0.0).sqrt();
            (
                g.expect(|z| phi(act, slope, s * z).powi(2)),
                g.expect(|z| dphi(act, slope, s * z).powi(2)),
            )
        }
    }
}

/// N_in·Var(W_ij) of a layer with the given fans under `init` scaled by σ_w.
pub fn effective_sigma2(init: Init, sigma_w: f64, fan_in: usize, fan_out: usize) -> f64 {
    let (fi, fo) = (fan_in as f64, fan_out as f64);
    let s2 = sigma_w * sigma_w;
    match init {
        Init::Naive => s2 * fi,
        Init::NaiveUniform => s2 * fi / 3.0,
        Init::XavierUniform | Init::XavierNormal => s2 * 2.0 * fi / (fi + fo),
        Init::He => 2.0 * s2,
        // Orthonormal columns (fan_in ≥ fan_out) have unit norm: Var = 1/fan_in; orthonormal
        // rows spread 1 over fan_out entries per row: Var = 1/fan_out.
        Init::Orthogonal => s2 * fi / fi.max(fo),
    }
}

/// The prediction for one network at initialisation.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Pre-activation variance q^l of each hidden layer.
    pub q: Vec<f64>,
    /// χ_l linking hidden layer l's δ to the next layer's.
    pub chi: Vec<f64>,
    /// Predicted ‖δ^l‖/‖δ^out‖ for every layer (hidden layers, then the output = 1).
    pub delta_ratio: Vec<f64>,
    /// χ and ξ at the fixed point of the (square, hidden) variance map, when it converges.
    pub chi_star: f64,
    pub xi: f64,
}

impl Prediction {
    /// Where the net sits relative to the edge of chaos χ* = 1.
    pub fn regime(&self) -> &'static str {
        if (self.chi_star - 1.0).abs() < 0.02 {
            "edge of chaos (χ* ≈ 1): δ neither vanishes nor explodes"
        } else if self.chi_star < 1.0 {
            "ordered phase (χ* < 1): δ vanishes toward the input"
        } else {
            "chaotic phase (χ* > 1): δ explodes toward the input"
        }
    }
}

/// Mean of x² over each example's `dim` inputs.
pub fn example_q(x: &[f32], dim: usize) -> Vec<f64> {
    if dim == 0 {
        return Vec::new();
    }
    x.chunks_exact(dim)
        .map(|r| r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / dim as f64)
        .collect()
}

/// Mean of x² over the training inputs: the q of the data fed to the first layer.
pub fn input_q(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64
}

/// Predicts the δ profile of an MLP of `model` on inputs with mean square `input_q`
/// (E[x_i²] averaged over input dimensions).
pub fn predict(
    model: &ModelSection,
    input_dim: usize,
    output_dim: usize,
    input_q: f64,
) -> Prediction {
    let g = Gaussian::default();
    let (act, slope) = (model.activation, model.leaky_slope);
    let sb2 = model.sigma_b * model.sigma_b;
    let mut dims = vec![input_dim];
    dims.extend(std::iter::repeat_n(model.width, model.depth));
    dims.push(output_dim);
    let s2: Vec<f64> = dims
        .windows(2)
        .map(|w| effective_sigma2(model.init, model.sigma_w, w[0], w[1]))
        .collect();

    let mut q = Vec::with_capacity(model.depth);
    let mut prev = s2[0] * input_q + sb2;
    q.push(prev);
    for s2_l in &s2[1..model.depth] {
        prev = s2_l * moments(&g, act, slope, prev).0 + sb2;
        q.push(prev);
    }
    let chi: Vec<f64> = (0..model.depth)
        .map(|l| s2[l + 1] * moments(&g, act, slope, q[l]).1)
        .collect();
    let mut delta_ratio = vec![1.0; model.depth + 1];
    for l in (0..model.depth).rev() {
        delta_ratio[l] = delta_ratio[l + 1] * chi[l].sqrt();
    }

    // Fixed point of the hidden-to-hidden map (width → width).
    let s2_hidden = effective_sigma2(model.init, model.sigma_w, model.width, model.width);
    let mut qs = q.last().copied().unwrap_or(1.0);
    for _ in 0..2000 {
        let next = s2_hidden * moments(&g, act, slope, qs).0 + sb2;
        if (next - qs).abs() <= 1e-12 * qs.abs().max(1e-12) || !next.is_finite() {
            qs = next;
            break;
        }
        qs = next;
    }
    let chi_star = s2_hidden * moments(&g, act, slope, qs).1;
    let xi = if chi_star > 0.0 && chi_star != 1.0 {
        -1.0 / chi_star.ln()
    } else {
        f64::INFINITY
    };
    Prediction {
        q,
        chi,
        delta_ratio,
        chi_star,
        xi,
    }
}

/// The infinitely deep, infinitely wide net of Schoenholz et al. 2017 (weights of variance
/// σ_w²/N, biases of variance σ_b²): the fixed point q* of the length map, χ* = σ_w²·E[φ′²] at
/// it, and the depth scale ξ = −1/ln χ* over which ‖δ‖ vanishes or grows.
pub fn phase(act: Activation, slope: f64, sigma_w2: f64, sigma_b2: f64) -> (f64, f64, f64) {
    let g = Gaussian::default();
    let mut q = 1.0;
    for _ in 0..5000 {
        let next = sigma_w2 * moments(&g, act, slope, q).0 + sigma_b2;
        let done = (next - q).abs() <= 1e-13 * q.abs().max(1e-13);
        q = next;
        if done || !q.is_finite() {
            break;
        }
    }
    let chi = sigma_w2 * moments(&g, act, slope, q).1;
    let xi = if chi > 0.0 && chi != 1.0 {
        -1.0 / chi.ln()
    } else {
        f64::INFINITY
    };
    (q, chi, xi)
}

/// The σ_w² at which χ* first reaches 1 for this σ_b² (the order–chaos line): the first
/// crossing on a scan of σ_w² up to 20 in steps of 0.05, then bisection. None when χ* stays
/// below 1 there. (The scan, not one bisection over a wide bracket: far into the chaotic phase
/// χ* of a bounded φ falls again as q* grows, so a bracket's ends can both be below 1.)
pub fn critical_sigma_w2(act: Activation, slope: f64, sigma_b2: f64) -> Option<f64> {
    let chi = |s: f64| phase(act, slope, s, sigma_b2).1;
    let above = (1..=400)
        .map(|k| k as f64 * 0.05)
        .find(|&s| chi(s) >= 1.0)?;
    let (mut lo, mut hi) = ((above - 0.05).max(0.0), above);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if chi(mid) < 1.0 { lo = mid } else { hi = mid }
    }
    Some(0.5 * (lo + hi))
}

/// `gradlab theory FILE --grid sigma_w=… --grid sigma_b=…`: χ* over the (σ_w, σ_b) plane for
/// the file's activation, a row per σ_b (`·` ordered, `#` chaotic, `|` within 2 % of the
/// edge), each with the σ_w² of the order–chaos line, and the trainable depth ≈ 6ξ at the
/// file's own (σ_w, σ_b) — the depth a sweep's trainability heatmap should show dying.
pub fn phase_diagram(exp: &Experiment, sigma_w: &[f64], sigma_b: &[f64]) -> String {
    use std::fmt::Write as _;
    let m = &exp.spec().model;
    let (act, slope) = (m.activation, m.leaky_slope);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} nets in the mean-field limit (Schoenholz et al. 2017, weights N(0, σ_w²/N), biases N(0, σ_b²))",
        exp.name(),
        act.name()
    );
    let _ = writeln!(
        s,
        "σ_w from {} to {} across; · ordered (χ* < 1, δ vanishes), # chaotic (χ* > 1, δ explodes), | the edge (|χ* − 1| < 2 %)",
        sigma_w.first().copied().unwrap_or(0.0),
        sigma_w.last().copied().unwrap_or(0.0)
    );
    for &b in sigma_b {
        let row: String = sigma_w
            .iter()
            .map(|&w| {
                let chi = phase(act, slope, w * w, b * b).1;
                if (chi - 1.0).abs() < 0.02 {
                    '|'
                } else if chi < 1.0 {
                    '·'
                } else {
                    '#'
                }
            })
            .collect();
        let edge = critical_sigma_w2(act, slope, b * b).map_or("none".into(), |c| {
            format!("σ_w² = {c:.3} (σ_w = {:.3})", c.sqrt())
        });
        let _ = writeln!(
            s,
            "σ_b = {b:<6.3} σ_b² = {:<7.4} {row}  edge at {edge}",
            b * b
        );
    }
    // The plane's σ_w² is N·Var(W): the file's init scheme sets it (naive N(0, σ_w²) at
    // width N is σ_w²·N there, Xavier σ_w², He 2σ_w²).
    let s2 = effective_sigma2(m.init, m.sigma_w, m.width, m.width);
    let (_, chi, xi) = phase(act, slope, s2, m.sigma_b * m.sigma_b);
    let _ = writeln!(
        s,
        "this file ({} init, σ_w = {} at width {}: σ_w² = {s2:.4} on this plane; σ_b = {}): χ* = {chi:.4}, ξ = {:.1} layers, trainable to depth ≈ 6ξ = {:.0}",
        m.init.name(),
        m.sigma_w,
        m.width,
        m.sigma_b,
        xi.abs(),
        6.0 * xi.abs()
    );
    s
}

/// Why `gradlab theory` has no prediction for `exp`, if it has none: only a gradient-free
/// search, which propagates no gradient. Every gradient-trained kind has its theory
/// ([`profile::predict`]).
pub fn not_covered(exp: &Experiment) -> Option<String> {
    let spec = exp.spec();
    if spec.model.kind.is_grid() {
        return Some(format!(
            "a {} scans the pixel grid in four directions: the lab has no mean-field theory of \
             its 2-D recursion (the trace measures ‖∂L/∂h‖ per pixel)",
            spec.model.kind.name()
        ));
    }
    if spec.model.kind == crate::experiment::ModelKind::Chunker {
        return Some(
            "the history compressor's upper level sees only the inputs its lower level fails \
             to predict, so its depth in time is learned, not set at initialisation: there is \
             no mean-field profile to predict (the trace measures it)"
                .into(),
        );
    }
    spec.train.optimizer.gradient_free().then(|| {
        format!(
            "a {} search propagates no gradient, so there is no ‖δ‖ profile to predict or measure",
            spec.train.optimizer.name()
        )
    })
}

/// The `gradlab theory` table: predicted vs measured, row by row as the trace names them.
pub fn report(exp: &Experiment, seeds: u64) -> Result<String, TheoryError> {
    let Some(mut p) = profile::predict(exp)? else {
        let why = not_covered(exp).unwrap_or_default();
        return Ok(format!("{}: {why}\n", exp.name()));
    };
    profile::measure(exp, seeds, &mut p)?;
    let m = &exp.spec().model;
    let shape = match m.kind {
        crate::experiment::ModelKind::Rnn | crate::experiment::ModelKind::Lstm => {
            format!(
                "{} of width {} over {} steps",
                m.kind.name(),
                m.width,
                p.rows.len()
            )
        }
        crate::experiment::ModelKind::Resnet => format!(
            "{} blocks of {} layer(s) of {} {}, layer norm {}",
            m.depth,
            m.block_layers,
            m.width,
            m.activation.name(),
            if m.layer_norm { "on" } else { "off" }
        ),
        _ => format!("{} layers of {} {}", m.depth, m.width, m.activation.name()),
    };
    let mut heading = format!(
        "{}: {shape}, init {} σ_w = {} σ_b = {}",
        exp.name(),
        m.init.name(),
        m.sigma_w,
        m.sigma_b
    );
    if let [(c, chi), (x, xi)] = &p.figures[..]
        && c == "chi_star"
        && x == "xi"
    {
        let xi = if xi.is_finite() {
            format!("{xi:.1} layers")
        } else {
            "∞".into()
        };
        heading += &format!("\nχ* = {chi:.4}, depth scale ξ = {xi}");
    }
    Ok(profile::render(&p, &heading))
}

/// `gradlab theory --json`: the same as one JSON object (a gradient-free search: the
/// statement, no rows).
pub fn report_json(exp: &Experiment, seeds: u64) -> Result<serde_json::Value, TheoryError> {
    let Some(mut p) = profile::predict(exp)? else {
        return Ok(serde_json::json!({
            "experiment": exp.name(),
            "model": exp.spec().model.kind.name(),
            "theory": null,
            "reason": not_covered(exp),
            "rows": [],
        }));
    };
    profile::measure(exp, seeds, &mut p)?;
    let mut v = serde_json::to_value(&p).expect("a profile serializes");
    // Figures as an object, non-finite numbers as null (JSON has no ∞).
    let figures: serde_json::Map<String, serde_json::Value> = p
        .figures
        .iter()
        .map(|(k, x)| (k.clone(), serde_json::json!(x.is_finite().then_some(*x))))
        .collect();
    v["figures"] = figures.into();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadrature_matches_closed_forms() {
        let g = Gaussian::default();
        assert!((g.expect(|_| 1.0) - 1.0).abs() < 1e-12);
        assert!((g.expect(|z| z * z) - 1.0).abs() < 1e-12);
        assert!((g.expect(|z| z.powi(4)) - 3.0).abs() < 1e-10);
        // E[cos z] = e^{−1/2}
        assert!((g.expect(f64::cos) - (-0.5f64).exp()).abs() < 1e-12);
        // ReLU by quadrature (a kink: only ~1e-3 accurate) agrees with its closed form q/2.
        let relu_q = g.expect(|z| (3.0f64.sqrt() * z).max(0.0).powi(2));
        assert!((relu_q - 1.5).abs() < 2e-2, "{relu_q}");
        // tanh′(0)² = 1: at tiny q, E[tanh′²] → 1, and χ = σ_w² (linear regime).
        let (_, d) = moments(&g, Activation::Tanh, 0.0, 1e-10);
        assert!((d - 1.0).abs() < 1e-8);
    }

    #[test]
    fn erf_is_accurate() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.5, 0.999_999_256_901_627_7),
        ] {
            assert!((erf(x) - want).abs() < 1e-14, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() < 1e-14);
        }
    }

    #[test]
    fn relu_and_linear_follow_closed_forms() {
        let he = ModelSection {
            depth: 10,
            width: 100,
            activation: Activation::Relu,
            init: Init::He,
            ..ModelSection::default()
        };
        let p = predict(&he, 100, 100, 1.0);
        // He init: σ² = 2, χ = σ²/2 = 1 at every layer: the edge of chaos.
        assert!(p.chi.iter().all(|c| (c - 1.0).abs() < 1e-12), "{:?}", p.chi);
        assert!((p.chi_star - 1.0).abs() < 1e-12);
        let lin = ModelSection {
            depth: 5,
            width: 10,
            activation: Activation::Linear,
            init: Init::Naive,
            sigma_w: 0.5,
            ..ModelSection::default()
        };
        let p = predict(&lin, 10, 10, 1.0);
        // Linear, naive N(0, 0.25) with 10 inputs: χ = 10·0.25 = 2.5 per layer.
        assert!(
            (p.delta_ratio[0] - 2.5f64.powf(2.5)).abs() < 1e-9,
            "{:?}",
            p.delta_ratio
        );
    }

    #[test]
    fn the_order_chaos_line_is_schoenholz_s() {
        // Schoenholz et al. 2017, Fig. 1: for tanh at σ_b² = 0.05 the edge is at σ_w² ≈ 1.76.
        let c = critical_sigma_w2(Activation::Tanh, 0.0, 0.05).unwrap();
        assert!((c - 1.76).abs() < 0.02, "{c}");
        // σ_b = 0: q* = 0 and χ* = σ_w²·tanh′(0)² — the edge is σ_w² = 1. At the edge q* → 0
        // only algebraically, so the iterated fixed point stops a little above 0 and the
        // computed edge a little above 1.
        let c0 = critical_sigma_w2(Activation::Tanh, 0.0, 0.0).unwrap();
        assert!((c0 - 1.0).abs() < 5e-3, "{c0}");
        // The line moves to larger σ_w² as σ_b grows.
        let c1 = critical_sigma_w2(Activation::Tanh, 0.0, 0.2).unwrap();
        assert!(c1 > c, "{c1} vs {c}");
        // Either side of it: ordered below, chaotic above.
        assert!(phase(Activation::Tanh, 0.0, c * 0.9, 0.05).1 < 1.0);
        assert!(phase(Activation::Tanh, 0.0, c * 1.1, 0.05).1 > 1.0);
    }

    #[test]
    fn tanh_phases() {
        let m = |sigma_w: f64| ModelSection {
            depth: 20,
            width: 64,
            init: Init::XavierNormal,
            sigma_w,
            ..ModelSection::default()
        };
        assert!(predict(&m(0.5), 64, 64, 1.0).chi_star < 1.0);
        assert!(predict(&m(3.0), 64, 64, 1.0).chi_star > 1.0);
        // σ_b = 0, tanh: the edge of chaos is σ_w = 1 (χ* = σ_w²·tanh′(0)² with q* = 0).
        let edge = predict(&m(1.0), 64, 64, 1.0);
        assert!((edge.chi_star - 1.0).abs() < 1e-3, "{}", edge.chi_star);
    }
}
