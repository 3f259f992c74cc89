//! Training without gradients: a genetic algorithm and random weight guessing over every
//! weight of the network, one generation per step, reporting fitness instead of gradients.
//!
//! Genetic: mutation-only with truncation selection and elitism (as in Such et al. 2017):
//! the `elite` best candidates survive unchanged and each other slot is filled by a copy of
//! a uniformly chosen elite plus N(0, mutation_scale²) noise on every weight. Random
//! search: the best candidate so far is kept and every other slot is a fresh draw from the
//! initialisation — the weight guessing that Hochreiter & Schmidhuber (1996) showed solves
//! some long-time-lag problems faster than 1990s gradient methods. Every draw comes from the
//! `search` stream of the config seed.

use super::events::*;
use super::fused::HostScorer;
use super::runner::{
    Batches, Ctx, Record, evaluate, header_for, loss_and_delta, objective_name, schedule, to_device,
};
use super::{TrainError, weights_bytes};
use crate::experiment::Optimizer;
use crate::models::{Network, matrix, named_parameters};
use crate::rng::Stream;
use burn::tensor::{Device, Tensor};

fn flatten<N: Network>(net: &N) -> Vec<f32> {
    named_parameters(net)
        .into_iter()
        .flat_map(|(_, _, v)| v)
        .collect()
}

fn unflatten(flat: &[f32], shapes: &[[usize; 2]], device: &Device) -> Vec<Tensor<2>> {
    let mut at = 0;
    shapes
        .iter()
        .map(|&[r, c]| {
            let t = matrix(flat[at..at + r * c].to_vec(), r, c, device);
            at += r * c;
            t
        })
        .collect()
}

/// Runs the search of `exp` over networks built by `make(seed)`.
pub(super) fn search<N: Network>(
    make: &dyn Fn(u64) -> N,
    ctx: &Ctx,
    rec: &mut Record,
    scorer: Option<&HostScorer>,
) -> Result<(End, Vec<u8>), TrainError> {
    let Ctx {
        exp,
        env,
        ds,
        device,
        ..
    } = *ctx;
    let spec = exp.spec();
    let (s, t) = (&spec.search, &spec.train);
    let mut header = header_for(exp, env, Vec::new(), objective_name(ds.objective));
    header.search = Some(t.optimizer.name().into());
    rec.start(header);

    let mut net = make(exp.seed());
    let shapes: Vec<[usize; 2]> = net.params().iter().map(|p| p.dims()).collect();
    let mut rng = Stream::new(exp.seed(), "search");
    // The seed's own network first (the one gradient descent would start from), then
    // networks drawn from fresh seeds.
    let mut population = vec![flatten(&net)];
    while population.len() < s.population {
        population.push(flatten(&make(rng.next_u64())));
    }
    let mut batches = Batches::new(ctx, t.batch_size);
    let test_batch = (ds.test.n > 0).then(|| to_device(&ds.test, ds, device));
    let classify = !matches!(ds.objective, crate::data::Objective::Regress { .. });
    let mut best = 0;

    for step in 0..t.steps {
        if ctx.stopped() {
            net.set_params(unflatten(&population[best], &shapes, device));
            let end = End {
                status: Status::Interrupted,
                steps_done: step,
                diverged_at: None,
                error: None,
            };
            return Ok((end, weights_bytes(&named_parameters(&net))));
        }
        let batch = batches.next(ctx);
        // Every candidate's loss (and correct count) in one read-back.
        // (loss, correct count) of every candidate.
        let scores: Vec<(f64, Option<f64>)> = match scorer {
            Some(host) => population.iter().map(|c| host.score(c, &batch)).collect(),
            None => {
                let mut scalars = Vec::with_capacity(2 * population.len());
                for candidate in &population {
                    net.set_params(unflatten(candidate, &shapes, device));
                    let (loss, _, correct) =
                        loss_and_delta(ds.objective, net.forward(batch.x.clone()), &batch);
                    scalars.push(loss);
                    scalars.extend(correct);
                }
                let values = Tensor::cat(scalars, 0)
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(TrainError::readback("the candidates' scores"))?;
                let per = if classify { 2 } else { 1 };
                values
                    .chunks(per)
                    .map(|v| (v[0] as f64, v.get(1).map(|&c| c as f64)))
                    .collect()
            }
        };
        let losses: Vec<f64> = scores.iter().map(|s| s.0).collect();
        let key = |l: f64| if l.is_finite() { l } else { f64::INFINITY };
        let mut order: Vec<usize> = (0..population.len()).collect();
        order.sort_by(|&a, &b| key(losses[a]).total_cmp(&key(losses[b])).then(a.cmp(&b)));
        best = order[0];
        if !losses[best].is_finite() {
            let end = End {
                status: Status::Diverged,
                steps_done: step,
                diverged_at: Some(step),
                error: None,
            };
            return Ok((end, weights_bytes(&named_parameters(&net))));
        }
        let finite: Vec<f64> = losses.iter().copied().filter(|l| l.is_finite()).collect();
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        let (probing, testing) = schedule(step, t.steps, &spec.probe);
        if probing {
            net.set_params(unflatten(&population[best], &shapes, device));
            let test = match (&test_batch, testing, scorer) {
                (Some(b), true, Some(host)) => Some(host.metrics(&population[best], b)),
                (Some(b), true, None) => Some(evaluate(&net, ds.objective, b)?),
                _ => None,
            };
            let accuracy = scores[best]
                .1
                .filter(|_| classify)
                .map(|c| c / (batch.n * ds.objective.positions()) as f64);
            rec.probe(Probe {
                step,
                loss: losses[best],
                accuracy,
                layers: Vec::new(),
                time: Vec::new(),
                test,
                fitness: Some(Fitness {
                    best: losses[best],
                    mean,
                }),
                levels: None,
            });
        }
        if step + 1 == t.steps {
            break;
        }
        population = match t.optimizer {
            Optimizer::Genetic => {
                let elite: Vec<Vec<f32>> = order[..s.elite]
                    .iter()
                    .map(|&i| population[i].clone())
                    .collect();
                let mut next = elite.clone();
                while next.len() < s.population {
                    let parent = &elite[rng.below(s.elite)];
                    next.push(
                        parent
                            .iter()
                            .map(|&w| w + (s.mutation_scale * rng.normal()) as f32)
                            .collect(),
                    );
                }
                next
            }
            _ => {
                let mut next = vec![population[best].clone()];
                while next.len() < s.population {
                    next.push(flatten(&make(rng.next_u64())));
                }
                next
            }
        };
        best = 0;
    }
    net.set_params(unflatten(&population[best], &shapes, device));
    let end = End {
        status: Status::Completed,
        steps_done: t.steps,
        diverged_at: None,
        error: None,
    };
    Ok((end, weights_bytes(&named_parameters(&net))))
}
