//! The objectives on host buffers: loss, ∂L/∂logits and the correct count in one pass over
//! the logits (the same formulas as `runner::loss_and_delta`).

use crate::data::Objective;
use crate::models::host::Engine;

/// What the loss pass returns.
pub struct LossOut {
    pub loss: f64,
    /// ∂L/∂logits, `[n, out]`.
    pub delta: Vec<f32>,
    /// Rows (or positions) whose arg-max is the labelled class; classification only.
    pub correct: Option<f64>,
}

/// Loss of `logits` (`[n, out]`) against `y` (one-hot labels or regression targets).
pub fn loss_and_delta(
    engine: Engine,
    obj: Objective,
    logits: &[f32],
    y: &[f32],
    n: usize,
) -> LossOut {
    debug_assert_eq!(logits.len(), y.len());
    match obj {
        Objective::Classify { classes } => softmax_ce(engine, logits, y, classes, n),
        Objective::ClassifyEach { positions, classes } => {
            softmax_ce(engine, logits, y, classes, n * positions)
        }
        Objective::Regress { dim } => {
            let m = (n * dim) as f64;
            let k = (2.0 / m) as f32;
            let mut loss = 0.0;
            let delta = logits
                .iter()
                .zip(y)
                .map(|(&z, &t)| {
                    let d = z - t;
                    loss += d as f64 * d as f64;
                    d * k
                })
                .collect();
            LossOut {
                loss: loss / m,
                delta,
                correct: None,
            }
        }
    }
}

/// Mean softmax cross-entropy over `rows` independent choices of `classes`, with log-sum-exp
/// taken in f64 after subtracting each row's maximum.
fn softmax_ce(engine: Engine, logits: &[f32], y: &[f32], classes: usize, rows: usize) -> LossOut {
    let m = rows as f64;
    let mut loss = 0.0;
    let mut correct = 0.0;
    let mut delta = vec![0f32; logits.len()];
    for ((z, t), d) in logits
        .chunks_exact(classes)
        .zip(y.chunks_exact(classes))
        .zip(delta.chunks_exact_mut(classes))
    {
        // The first maximum wins ties; NaN logits make the loss NaN below.
        let (arg, max) = z
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(ai, am), (i, &v)| {
                if v > am { (i, v) } else { (ai, am) }
            });
        let lse = max as f64
            + engine.ln(z
                .iter()
                .map(|&v| engine.exp(v as f64 - max as f64))
                .sum::<f64>());
        for k in 0..classes {
            let logp = z[k] as f64 - lse;
            loss -= t[k] as f64 * logp;
            d[k] = ((engine.exp(logp) - t[k] as f64) / m) as f32;
        }
        if t[arg] > 0.5 {
            correct += 1.0;
        }
    }
    LossOut {
        loss: loss / m,
        delta,
        correct: Some(correct),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: Engine = Engine {
        portable: true,
        threads: 1,
    };

    #[test]
    fn cross_entropy_by_hand() {
        // Two rows of two classes: logits (0, ln 3) with label 1, (0, 0) with label 0.
        let z = [0.0, 3f32.ln(), 0.0, 0.0];
        let y = [0.0, 1.0, 1.0, 0.0];
        let out = loss_and_delta(E, Objective::Classify { classes: 2 }, &z, &y, 2);
        let want = (-(0.75f64).ln() - (0.5f64).ln()) / 2.0;
        assert!((out.loss - want).abs() < 1e-7, "{} vs {want}", out.loss);
        let want_d = [0.125, -0.125, -0.25, 0.25];
        for (a, b) in out.delta.iter().zip(want_d) {
            assert!((a - b).abs() < 1e-7, "{a} vs {b}");
        }
        // Row 1 predicts class 1 (right); row 2 ties and takes class 0 (right).
        assert_eq!(out.correct, Some(2.0));
    }

    #[test]
    fn mse_and_nan() {
        let out = loss_and_delta(
            E,
            Objective::Regress { dim: 1 },
            &[1.0, 3.0],
            &[0.0, 1.0],
            2,
        );
        assert_eq!(out.loss, 2.5);
        assert_eq!(out.delta, vec![1.0, 2.0]);
        let bad = loss_and_delta(
            E,
            Objective::Classify { classes: 2 },
            &[f32::NAN, 0.0],
            &[1.0, 0.0],
            1,
        );
        assert!(bad.loss.is_nan());
    }
}
