//! Greedy layer-wise pretraining of a deep belief net (Hinton, Osindero & Teh 2006): each
//! hidden layer of the sigmoid MLP is first trained as an RBM on the layer below's
//! activations, then the stack is handed to the ordinary loop for fine-tuning.
//!
//! The RBMs start from the very weights `Mlp::new` draws for the same config, so a DBN with
//! `dbn.pretrain_steps = 0` is exactly the randomly initialised MLP: the comparison between
//! pretrained and random init changes nothing else.

use super::TrainError;
use super::events::*;
use super::runner::{Batcher, Ctx, Record, header_for, objective_name, schedule};
use crate::models::rbm::{CdConfig, CdState, Dbn, Rbm};
use crate::models::{Mlp, Network, matrix};
use crate::rng::Stream;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Gibbs steps in the top RBM before the ancestral pass that draws the sample images.
pub const SAMPLE_GIBBS_STEPS: usize = 200;
/// Rows of each split used for the free-energy gap.
const GAP_ROWS: usize = 512;

fn rows_of(t: &Tensor<2>, idx: &[usize], device: &Device) -> Tensor<2> {
    let idx: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    let len = idx.len();
    t.clone().select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(idx, [len]), device),
    )
}

/// Pretrains the DBN of `exp` and returns the unrolled sigmoid net, and whether a stop was
/// requested (the net then holds what was pretrained so far).
pub(super) fn pretrain(ctx: &Ctx, rec: &mut Record) -> Result<(Mlp, bool), TrainError> {
    let Ctx {
        exp,
        env,
        ds,
        device,
        ..
    } = *ctx;
    let spec = exp.spec();
    let d = &spec.dbn;
    let seed = exp.seed();
    let mut mlp = Mlp::new(
        &spec.model,
        ds.input_dim,
        ds.objective.output_dim(),
        seed,
        device,
    );
    rec.start(header_for(
        exp,
        env,
        mlp.layer_names(),
        objective_name(ds.objective),
    ));
    let depth = mlp.layers.len() - 1;
    let cfg = CdConfig {
        k: d.cd_k,
        learning_rate: d.learning_rate,
        momentum: d.momentum,
        weight_decay: d.weight_decay,
        persistent: d.persistent,
    };
    if d.pretrain_steps > 0 {
        let mut rng = Stream::new(seed, "cd");
        let mut batcher = Batcher::named(ds.train.n, d.batch_size, seed, "pretrain-batches");
        let mut train_up = matrix(ds.train.x.clone(), ds.train.n, ds.input_dim, device);
        let mut test_up =
            (ds.test.n > 0).then(|| matrix(ds.test.x.clone(), ds.test.n, ds.input_dim, device));
        let gap_n = ds.test.n.min(ds.train.n).min(GAP_ROWS);
        let mut rbms = Vec::with_capacity(depth);
        for l in 0..depth {
            let mut rbm = Rbm::from_layer(mlp.layers[l].weight.clone(), mlp.layers[l].bias.clone());
            let phase = Phase {
                phase: "pretrain".into(),
                rbm: Some(l + 1),
                of: Some(depth),
                visible: Some(rbm.visible()),
                hidden: Some(rbm.hidden()),
                steps: d.pretrain_steps,
            };
            rec.line(&TraceLine::Phase(phase.clone()));
            (rec.sink)(Event::Phase(phase));
            let gap_train = rows_of(&train_up, &(0..gap_n).collect::<Vec<_>>(), device);
            let gap_test = test_up
                .as_ref()
                .map(|t| rows_of(t, &(0..gap_n).collect::<Vec<_>>(), device));
            let mut state = CdState::default();
            for step in 0..d.pretrain_steps {
                if ctx.stopped() {
                    return Ok((mlp, true));
                }
                let batch = rows_of(&train_up, batcher.next(), device);
                let (probing, evaluating) = schedule(step, d.pretrain_steps, &spec.probe);
                // Probes describe the RBM before this step's update, as in the main loop.
                let probe = if probing {
                    let mut scalars = vec![rbm.reconstruction_error(batch.clone())];
                    if let (true, Some(test)) = (evaluating && gap_n > 0, &gap_test) {
                        scalars.push(
                            rbm.mean_free_energy(test.clone())
                                .sub(rbm.mean_free_energy(gap_train.clone())),
                        );
                    }
                    let v = Tensor::cat(scalars, 0)
                        .into_data()
                        .try_to_vec::<f32>()
                        .map_err(TrainError::readback("the pretraining probe"))?;
                    // Only the first RBM sees binary data, where a likelihood is defined.
                    let exact = evaluating && l == 0;
                    Some(PretrainProbe {
                        rbm: l + 1,
                        step,
                        recon_error: v[0] as f64,
                        free_energy_gap: v.get(1).map(|&g| g as f64),
                        log_likelihood: exact.then(|| rbm.log_likelihood(&ds.train.x)).flatten(),
                        test_log_likelihood: (exact && ds.test.n > 0)
                            .then(|| rbm.log_likelihood(&ds.test.x))
                            .flatten(),
                    })
                } else {
                    None
                };
                rbm.cd_update(batch, cfg, &mut state, &mut rng);
                if let Some(probe) = probe {
                    rec.line(&TraceLine::Pretrain(probe.clone()));
                    let wall_s = rec.wall_s();
                    (rec.sink)(Event::Pretrain { probe, wall_s });
                }
            }
            // The next RBM learns from this one's hidden probabilities (Hinton & Salakhutdinov 2006).
            train_up = rbm.hidden_probs(train_up);
            test_up = test_up.map(|t| rbm.hidden_probs(t));
            mlp.layers[l].weight = rbm.weight.clone();
            mlp.layers[l].bias = rbm.hidden_bias.clone();
            rbms.push(rbm);
        }
        if d.samples > 0 {
            let images = Dbn { rbms }.samples(
                d.samples,
                SAMPLE_GIBBS_STEPS,
                &mut Stream::new(seed, "samples"),
                device,
            );
            let side = (ds.input_dim as f64).sqrt().round() as usize;
            let (width, height) = if side * side == ds.input_dim {
                (side, side)
            } else {
                (ds.input_dim, 1)
            };
            (rec.sink)(Event::Samples {
                width,
                height,
                images,
            });
        }
    }
    let phase = Phase {
        phase: "finetune".into(),
        rbm: None,
        of: None,
        visible: None,
        hidden: None,
        steps: spec.train.steps,
    };
    rec.line(&TraceLine::Phase(phase.clone()));
    (rec.sink)(Event::Phase(phase));
    Ok((mlp, false))
}
