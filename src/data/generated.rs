//! Generated tasks: two spirals, n-bit parity and teacher–student regression.

use super::{Dataset, Objective, Split, split_rows};
use crate::experiment::DataSection;
use crate::rng::Stream;

/// Two interleaved spirals (Lang & Witbrock 1988), points on arms of `turns` turns, class =
/// arm, Gaussian noise of std `noise`.
pub fn spirals(s: &DataSection, rng: &mut Stream) -> Dataset {
    let total = s.train_size + s.test_size;
    let rows = (0..total)
        .map(|i| {
            let class = (i % 2) as u32;
            let t = rng.uniform().sqrt(); // even density along the arm
            let angle = s.turns * std::f64::consts::TAU * t + class as f64 * std::f64::consts::PI;
            let v = rng.version();
            let x = t * v.cos(angle) + s.noise * rng.normal();
            let y = t * v.sin(angle) + s.noise * rng.normal();
            (vec![x as f32, y as f32], class)
        })
        .collect();
    let (train, test) = split_rows(rows, s.train_size, s.test_size, rng);
    Dataset {
        input_dim: 2,
        seq_len: 1,
        objective: Objective::Classify { classes: 2 },
        train,
        test,
    }
}

/// All or a sample of the 2^bits patterns of ±1 inputs, labelled with their parity.
pub fn parity(s: &DataSection, rng: &mut Stream) -> Dataset {
    let total = 1usize << s.bits;
    let wanted = (s.train_size + s.test_size).min(total);
    // Distinct patterns: a partial Fisher–Yates over the pattern indices.
    let mut codes: Vec<usize> = (0..total).collect();
    for i in 0..wanted {
        let j = i + rng.below(total - i);
        codes.swap(i, j);
    }
    let rows = codes[..wanted]
        .iter()
        .map(|&code| {
            let x = (0..s.bits)
                .map(|b| if code >> b & 1 == 1 { 1.0 } else { -1.0 })
                .collect();
            (x, code.count_ones() % 2)
        })
        .collect();
    let (train, test) = split_rows(rows, s.train_size, s.test_size, rng);
    Dataset {
        input_dim: s.bits,
        seq_len: 1,
        objective: Objective::Classify { classes: 2 },
        train,
        test,
    }
}

/// Regression onto a random deep tanh teacher with N(0, 1/fan_in) weights; targets are
/// standardised to unit variance so the loss scale does not depend on the teacher's depth.
pub fn teacher(s: &DataSection, rng: &mut Stream) -> Dataset {
    let mut dims = vec![s.input_dim];
    dims.extend(std::iter::repeat_n(s.teacher_width, s.teacher_depth));
    dims.push(s.output_dim);
    let layers: Vec<Vec<f64>> = dims
        .windows(2)
        .map(|w| {
            let scale = (1.0 / w[0] as f64).sqrt();
            (0..w[0] * w[1]).map(|_| scale * rng.normal()).collect()
        })
        .collect();
    let total = s.train_size + s.test_size;
    let xs: Vec<Vec<f64>> = (0..total)
        .map(|_| (0..s.input_dim).map(|_| rng.normal()).collect())
        .collect();
    let mut ys: Vec<Vec<f64>> = xs
        .iter()
        .map(|x| {
            let mut h = x.clone();
            for (l, w) in layers.iter().enumerate() {
                let (din, dout) = (dims[l], dims[l + 1]);
                let mut z = vec![0.0; dout];
                for i in 0..din {
                    for (j, zj) in z.iter_mut().enumerate() {
                        *zj += h[i] * w[i * dout + j];
                    }
                }
                let last = l + 1 == layers.len();
                h = if last {
                    z
                } else {
                    z.into_iter().map(f64::tanh).collect()
                };
            }
            h
        })
        .collect();
    let all: Vec<f64> = ys.iter().flatten().copied().collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let sd = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64)
        .sqrt()
        .max(1e-12);
    for y in &mut ys {
        for v in y.iter_mut() {
            *v = (*v - mean) / sd;
        }
    }
    let to_split = |range: std::ops::Range<usize>| Split {
        n: range.len(),
        x: xs[range.clone()]
            .iter()
            .flatten()
            .map(|&v| v as f32)
            .collect(),
        labels: Vec::new(),
        targets: ys[range].iter().flatten().map(|&v| v as f32).collect(),
    };
    Dataset {
        input_dim: s.input_dim,
        seq_len: 1,
        objective: Objective::Regress { dim: s.output_dim },
        train: to_split(0..s.train_size),
        test: to_split(s.train_size..total),
    }
}
