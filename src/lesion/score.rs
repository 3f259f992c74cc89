//! Scores and errors of a study, reduced on the host in a fixed order with the `libm`
//! crate's functions: the same bits on every machine, whatever the engine's vector width.

use crate::data::{Objective, Split};
use crate::models::host;
use burn::tensor::Tensor;

/// (test error, test loss) of `logits` on `test`: the share misclassified and the mean
/// cross-entropy, or the mean squared error twice over for regression.
pub(super) fn score(objective: Objective, logits: Tensor<2>, test: &Split) -> (f64, f64) {
    let [n, width] = logits.dims();
    let v = host::to_vec(logits);
    match objective {
        Objective::Regress { .. } => {
            let sq: f64 = v
                .iter()
                .zip(&test.targets)
                .map(|(&p, &t)| (p as f64 - t as f64).powi(2))
                .sum();
            let mse = sq / v.len() as f64;
            (mse, mse)
        }
        Objective::Classify { classes } | Objective::ClassifyEach { classes, .. } => {
            let rows = n * width / classes;
            let (mut wrong, mut loss) = (0usize, 0.0f64);
            for (row, &label) in v.chunks_exact(classes).zip(&test.labels) {
                let (lse, best) = log_sum_exp(row);
                wrong += usize::from(best != label as usize);
                loss += lse - row[label as usize] as f64;
            }
            (wrong as f64 / rows as f64, loss / rows as f64)
        }
    }
}

/// ln Σ e^{x_i} (shifted by the maximum) and the index of the maximum (the first, on ties).
fn log_sum_exp(row: &[f32]) -> (f64, usize) {
    let (best, max) = row
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bm), (i, &x)| {
            if x > bm { (i, x) } else { (bi, bm) }
        });
    let sum: f64 = row.iter().map(|&x| libm::exp(x as f64 - max as f64)).sum();
    (max as f64 + libm::log(sum), best)
}

/// ∂ℓ/∂logits of each example's own loss (not divided by the batch): softmax − one-hot per
/// choice, or 2(ŷ − y)/dim for regression.
pub(super) fn per_example_delta(
    objective: Objective,
    logits: Tensor<2>,
    test: &Split,
) -> Tensor<2> {
    let (device, [n, width]) = (logits.device(), logits.dims());
    let v = host::to_vec(logits);
    let out: Vec<f32> = match objective {
        Objective::Regress { dim } => v
            .iter()
            .zip(&test.targets)
            .map(|(&p, &t)| (2.0 * (p as f64 - t as f64) / dim as f64) as f32)
            .collect(),
        Objective::Classify { classes } | Objective::ClassifyEach { classes, .. } => v
            .chunks_exact(classes)
            .zip(&test.labels)
            .flat_map(|(row, &label)| {
                let (lse, _) = log_sum_exp(row);
                row.iter().enumerate().map(move |(i, &x)| {
                    let p = libm::exp(x as f64 - lse);
                    (p - f64::from(u8::from(i == label as usize))) as f32
                })
            })
            .collect(),
    };
    host::tensor(out, [n, width], &device)
}

/// The mean over rows of each row's Euclidean norm.
pub(super) fn mean_row_norm(t: Tensor<2>) -> f64 {
    let [n, width] = t.dims();
    let v = host::to_vec(t);
    let sum: f64 = v
        .chunks_exact(width)
        .map(|row| {
            row.iter()
                .map(|&x| (x as f64) * (x as f64))
                .sum::<f64>()
                .sqrt()
        })
        .sum();
    sum / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn errors_losses_and_deltas_of_a_known_batch() {
        let device = Device::flex();
        let test = Split {
            n: 2,
            x: Vec::new(),
            labels: vec![0, 1],
            targets: Vec::new(),
        };
        // Row 1 right with margin ln 3 (p = 3/4), row 2 wrong with equal logits... then a tie
        // goes to the first class, so it counts as wrong.
        let logits = || crate::models::matrix(vec![(3.0f32).ln(), 0.0, 0.0, 0.0], 2, 2, &device);
        let (error, loss) = score(Objective::Classify { classes: 2 }, logits(), &test);
        assert_eq!(error, 0.5);
        let want = (-(0.75f64).ln() + (2.0f64).ln()) / 2.0;
        assert!((loss - want).abs() < 1e-7, "{loss} vs {want}");
        let d = host::to_vec(per_example_delta(
            Objective::Classify { classes: 2 },
            logits(),
            &test,
        ));
        let want = [-0.25, 0.25, 0.5, -0.5];
        for (a, b) in d.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{d:?}");
        }
        let norms = crate::models::matrix(vec![3.0, 4.0, 0.0, 1.0], 2, 2, &device);
        assert_eq!(mean_row_norm(norms), 3.0);
    }
}
