//! Residual nets as ensembles of shallow nets (Veit, Wilber & Belongie 2016): the lesion study
//! and the effective paths, computed on a trained net's final weights.
//!
//! *Lesion*: delete units at test time (a residual block, or a square hidden layer of a plain
//! net, becomes the identity) — each one alone, then k at random — and score the test split.
//! A residual net of L blocks has 2^L paths from input to output and deleting a block removes
//! only the half that use its branch; a plain net has one path, and any deletion breaks it.
//! *Effective paths*: the gradient reaching the stream's start through paths that take exactly
//! k branches, sampled per k and weighted by the C(L, k) paths of that length (their Fig. 6).
//!
//! Everything runs on the portable engine and reduces on the host in a fixed order with the
//! `libm` crate's functions, so a study's records are the same bits on every machine and
//! `gradlab replay` can hold a lesion entry to EXACT.

mod score;
pub mod summary;

pub use summary::{KSummary, Summary};

use crate::data::{self, DataError, Objective};
use crate::experiment::{Experiment, ModelKind};
use crate::ledger::Entry;
use crate::models::host::Engine;
use crate::models::{Mlp, Network, Resnet, matrix};
use crate::rng::{Stream, Version};
use crate::train::{
    DeviceKind, End, Header, LesionRecord, LesionSpec, Outcome, PathsRecord, Status, TraceLine,
    TraceWriter,
};
use burn::tensor::{Device, Tensor};

/// The trace format of a lesion study.
pub const LESION_FORMAT: &str = "gradlab-lesion/1";

/// How many random draws a study makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Random lesions per k ≥ 2 (every one of them when there are fewer).
    pub draws: usize,
    /// Random paths per path length (every one of them when there are fewer).
    pub path_draws: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            draws: 10,
            path_draws: 20,
        }
    }
}

/// Why a study cannot run.
#[derive(Debug, thiserror::Error)]
pub enum LesionError {
    #[error(
        "a lesion study deletes residual blocks or hidden layers: model.kind '{0}' has neither (use an mlp or a resnet)"
    )]
    Model(&'static str),
    #[error(
        "this mlp has no hidden layer that maps the width to itself, so none can be deleted (model.depth must be at least 2)"
    )]
    NothingToDelete,
    #[error("the experiment has no test split to score lesions on (data.test_size = 0)")]
    NoTest,
    #[error("the stored weights do not read back: {0}")]
    Weights(String),
    #[error(transparent)]
    Data(#[from] DataError),
}

/// A finished study: what it ran on and its records, in trace order.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    pub spec: LesionSpec,
    /// Names of the deletable units, input side first.
    pub units: Vec<String>,
    /// `classify` or `regress`.
    pub objective: &'static str,
    /// The intact net (k = 0), each unit alone (k = 1), then k random units for k = 2..=L.
    pub lesions: Vec<LesionRecord>,
    /// Residual nets: one record per path length k = 0..=L; empty for plain nets.
    pub paths: Vec<PathsRecord>,
}

/// The net a study works on, rebuilt from its config and final weights.
enum Net {
    Resnet(Box<Resnet>),
    Mlp(Mlp),
}

impl Net {
    fn forward_lesioned(&self, x: Tensor<2>, deleted: &[bool]) -> Tensor<2> {
        match self {
            Net::Resnet(r) => r.forward_lesioned(x, deleted),
            Net::Mlp(m) => m.forward_lesioned(x, deleted),
        }
    }
}

/// Studies the net `exp` describes with the final `weights` of the entry `of`. `streams` is the
/// entry's data stream version, so the test split is the one it was trained beside.
pub fn study(
    exp: &Experiment,
    weights: &[u8],
    streams: Version,
    of: &str,
    options: Options,
) -> Result<Study, LesionError> {
    let engine = Engine {
        portable: true,
        threads: 1,
    };
    crate::rng::with_version(streams, || {
        crate::models::ops::with_engine(engine, || study_here(exp, weights, of, options))
    })
}

fn study_here(
    exp: &Experiment,
    weights: &[u8],
    of: &str,
    options: Options,
) -> Result<Study, LesionError> {
    let spec = exp.spec();
    let m = &spec.model;
    let ds = data::build(&spec.data, exp.seed())?;
    if ds.test.n == 0 {
        return Err(LesionError::NoTest);
    }
    let device = Device::flex();
    let (input, out) = (ds.input_dim, ds.objective.output_dim());
    let params = crate::train::parse_weights(weights).map_err(LesionError::Weights)?;
    // Unit index in the deletion mask → its name. A resnet deletes blocks, an mlp layers.
    let (net, units): (Net, Vec<(usize, String)>) = match m.kind {
        ModelKind::Resnet => {
            let mut r = Resnet::new(m, input, out, exp.seed(), &device);
            load(&mut r, params, &device)?;
            let units = (0..r.blocks.len()).map(|i| (i, format!("b{}", i + 1)));
            (Net::Resnet(Box::new(r)), units.collect())
        }
        ModelKind::Mlp => {
            let mut p = Mlp::new(m, input, out, exp.seed(), &device);
            load(&mut p, params, &device)?;
            let names = p.layer_names();
            let units = (0..p.layers.len())
                .filter(|&i| p.lesionable(i))
                .map(|i| (i, names[i].clone()))
                .collect::<Vec<_>>();
            if units.is_empty() {
                return Err(LesionError::NothingToDelete);
            }
            (Net::Mlp(p), units)
        }
        other => return Err(LesionError::Model(other.name())),
    };
    let test = &ds.test;
    let x = matrix(test.x.clone(), test.n, input, &device);
    let mask_len = match &net {
        Net::Resnet(r) => r.blocks.len(),
        Net::Mlp(p) => p.layers.len(),
    };
    let lesion = |chosen: &[usize]| -> LesionRecord {
        crate::cancel::checkpoint();
        let mut mask = vec![false; mask_len];
        for &u in chosen {
            mask[units[u].0] = true;
        }
        let logits = net.forward_lesioned(x.clone(), &mask);
        let (error, loss) = score::score(ds.objective, logits, test);
        LesionRecord {
            k: chosen.len(),
            deleted: chosen.iter().map(|&u| units[u].1.clone()).collect(),
            error,
            loss,
        }
    };
    let n_units = units.len();
    let mut rng = Stream::new(exp.seed(), "lesion");
    let mut lesions = vec![lesion(&[])];
    lesions.extend((0..n_units).map(|u| lesion(&[u])));
    for k in 2..=n_units {
        for chosen in subsets(n_units, k, options.draws, &mut rng) {
            lesions.push(lesion(&chosen));
        }
    }
    let paths = match &net {
        Net::Resnet(r) => {
            effective_paths(r, &x, ds.objective, test, options.path_draws, exp.seed())
        }
        Net::Mlp(_) => Vec::new(),
    };
    Ok(Study {
        spec: LesionSpec {
            of: of.to_string(),
            draws: options.draws,
            path_draws: options.path_draws,
            examples: test.n,
            classes: match ds.objective {
                Objective::Classify { classes } => Some(classes),
                _ => None,
            },
        },
        units: units.into_iter().map(|(_, name)| name).collect(),
        objective: match ds.objective {
            Objective::Regress { .. } => "regress",
            _ => "classify",
        },
        lesions,
        paths,
    })
}

impl Study {
    /// The study as a finished outcome of the trained entry `parent` ran for: a
    /// `gradlab-lesion/1` trace (header, lesions, paths, end) and the weights it studied,
    /// ready for the ledger.
    pub fn outcome(
        &self,
        exp: &Experiment,
        parent: &Entry,
        weights: Vec<u8>,
        wall_s: f64,
    ) -> Outcome {
        let header = Header {
            format: LESION_FORMAT.into(),
            experiment: exp.name().into(),
            config_hash: exp.hash().0.clone(),
            seed: exp.seed(),
            model: exp.spec().model.kind.name().into(),
            objective: self.objective.into(),
            steps: parent.metrics.steps_planned,
            backend: DeviceKind::Portable.name().into(),
            device: DeviceKind::Portable.name().into(),
            threads: None,
            layers: self.units.clone(),
            search: None,
            lesion: Some(self.spec.clone()),
        };
        let end = End {
            status: Status::Completed,
            steps_done: parent.metrics.steps_done,
            diverged_at: None,
            error: None,
        };
        let mut trace = TraceWriter::new();
        trace.push(&TraceLine::Header(header.clone()));
        for r in &self.lesions {
            trace.push(&TraceLine::Lesion(r.clone()));
        }
        for p in &self.paths {
            trace.push(&TraceLine::Paths(p.clone()));
        }
        trace.push(&TraceLine::End(end.clone()));
        Outcome {
            header,
            end,
            trace: trace.finish(),
            weights,
            wall_s,
        }
    }

    pub fn summary(&self) -> Summary {
        Summary::new(&self.lesions, &self.paths)
    }
}

/// Puts the stored parameters into a freshly built net of the same config, checking that
/// every name and shape is the one this build gives it.
fn load<N: Network>(
    net: &mut N,
    params: Vec<crate::train::NamedParam>,
    device: &Device,
) -> Result<(), LesionError> {
    let names = net.param_names();
    let built = net.params();
    if params.len() != names.len() {
        return Err(LesionError::Weights(format!(
            "{} parameters stored, the config builds {}",
            params.len(),
            names.len()
        )));
    }
    let mut tensors = Vec::with_capacity(params.len());
    for ((name, shape, values), (want, t)) in params.into_iter().zip(names.iter().zip(&built)) {
        if &name != want || shape != t.dims() {
            return Err(LesionError::Weights(format!(
                "stored '{name}' {shape:?}, the config builds '{want}' {:?}",
                t.dims()
            )));
        }
        tensors.push(matrix(values, shape[0], shape[1], device));
    }
    net.set_params(tensors);
    Ok(())
}

/// C(n, k) as a float (exact up to 2^53, which covers n ≤ 56 for every k).
pub fn choose(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

/// Sets of `k` of `n` units, each sorted: all of them when there are at most `draws`, in
/// lexicographic order, else `draws` drawn at random (possibly repeating).
fn subsets(n: usize, k: usize, draws: usize, rng: &mut Stream) -> Vec<Vec<usize>> {
    if choose(n, k) <= draws as f64 {
        let mut all = Vec::new();
        let mut c: Vec<usize> = (0..k).collect();
        loop {
            all.push(c.clone());
            // The next combination: bump the last index that can move, reset those after it.
            let Some(i) = (0..k).rev().find(|&i| c[i] < n - k + i) else {
                return all;
            };
            c[i] += 1;
            for j in i + 1..k {
                c[j] = c[j - 1] + 1;
            }
        }
    }
    (0..draws)
        .map(|_| {
            let mut order: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut order);
            let mut chosen = order[..k].to_vec();
            chosen.sort_unstable();
            chosen
        })
        .collect()
}

/// Veit et al.'s Fig. 6: for each path length k, the mean over sampled paths of the gradient
/// one path carries to h_0, times the C(L, k) paths of that length, as shares of the total.
fn effective_paths(
    net: &Resnet,
    x: &Tensor<2>,
    objective: Objective,
    test: &data::Split,
    draws: usize,
    seed: u64,
) -> Vec<PathsRecord> {
    let blocks = net.blocks.len();
    let (logits, tape) = net.forward_tape(x.clone());
    let delta = score::per_example_delta(objective, logits, test);
    let mut rng = Stream::new(seed, "paths");
    let mut out: Vec<PathsRecord> = (0..=blocks)
        .map(|k| {
            let sets = subsets(blocks, k, draws, &mut rng);
            let sum: f64 = sets
                .iter()
                .map(|chosen| {
                    crate::cancel::checkpoint();
                    let mut through = vec![false; blocks];
                    for &b in chosen {
                        through[b] = true;
                    }
                    score::mean_row_norm(net.path_gradient(&tape, delta.clone(), &through))
                })
                .sum();
            PathsRecord {
                k,
                paths: choose(blocks, k),
                draws: sets.len(),
                mean: sum / sets.len() as f64,
                share: 0.0,
            }
        })
        .collect();
    let total: f64 = out.iter().map(|p| p.paths * p.mean).sum();
    for p in &mut out {
        p.share = if total > 0.0 {
            p.paths * p.mean / total
        } else {
            0.0
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_enumerate_when_few_and_draw_when_many() {
        let mut rng = Stream::new(1, "t");
        assert_eq!(
            subsets(4, 2, 10, &mut rng),
            [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
        );
        assert_eq!(subsets(5, 5, 3, &mut rng), [[0, 1, 2, 3, 4]]);
        let drawn = subsets(10, 3, 4, &mut rng);
        assert_eq!(drawn.len(), 4);
        for s in &drawn {
            assert!(s.windows(2).all(|w| w[0] < w[1]) && s.iter().all(|&u| u < 10));
        }
        assert_eq!(choose(54, 27), 1_946_939_425_648_112.0);
        assert_eq!(choose(6, 0), 1.0);
    }
}
