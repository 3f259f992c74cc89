//! The optimisers of `train::optim` over host buffers: each turns the gradient into the
//! step direction in place, and `kernels::apply` then takes the step (w ← w − scale·u)
//! while summing what the probes need. Same rules and constants as the tensor versions,
//! with every scalar in f32.

use super::kernels;
use crate::experiment::{Optimizer, TrainSection};

/// Per-parameter optimiser state: the first and second moment buffers (or, for Rprop, the
/// previous gradient and the step sizes).
pub struct HostOptim {
    kind: Optimizer,
    cfg: TrainSection,
    step: i32,
    first: Vec<Option<Vec<f32>>>,
    second: Vec<Option<Vec<f32>>>,
}

/// What one parameter's update measured: Σg² (before clipping), Σw² before the step, Σu².
#[derive(Default, Clone, Copy)]
pub struct UpdateSums {
    pub grad_sq: f64,
    pub weight_sq: f64,
    pub update_sq: f64,
}

impl HostOptim {
    pub fn new(train: &TrainSection, n_params: usize) -> Self {
        Self {
            kind: train.optimizer,
            cfg: train.clone(),
            step: 0,
            first: vec![None; n_params],
            second: vec![None; n_params],
        }
    }

    /// Starts a step (Adam's bias correction counts steps).
    pub fn begin(&mut self) {
        self.step += 1;
    }

    /// Updates parameter `i` (`w`) from its gradient `g`, which it overwrites. `grad_sq` is
    /// Σg² when the caller already has it; `clip` rescales (global norm) or clamps (value)
    /// the gradient first.
    pub fn update(
        &mut self,
        i: usize,
        w: &mut [f32],
        g: &mut [f32],
        grad_sq: Option<f64>,
        clip: Clip,
        probing: bool,
    ) -> UpdateSums {
        // Plain SGD without clipping: one pass does it all.
        if matches!(self.kind, Optimizer::Sgd) && matches!(clip, Clip::None) && grad_sq.is_none() {
            let lr = self.cfg.learning_rate as f32;
            let (grad_sq, weight_sq, update_sq) = if probing {
                kernels::apply::<true, true>(w, g, lr)
            } else {
                kernels::apply::<true, false>(w, g, lr)
            };
            return UpdateSums {
                grad_sq,
                weight_sq,
                update_sq,
            };
        }
        let grad_sq = grad_sq.unwrap_or_else(|| crate::train::probe::fast_sum_sq(g));
        match clip {
            Clip::None => {}
            Clip::Scale(s) => g.iter_mut().for_each(|x| *x *= s),
            Clip::Value(c) => g.iter_mut().for_each(|x| *x = x.clamp(-c, c)),
        }
        let scale = self.direction(i, g);
        let (_, weight_sq, update_sq) = if probing {
            kernels::apply::<false, true>(w, g, scale)
        } else {
            kernels::apply::<false, false>(w, g, scale)
        };
        UpdateSums {
            grad_sq,
            weight_sq,
            update_sq,
        }
    }

    /// g ← the step direction; returns the factor the step is scaled by.
    fn direction(&mut self, i: usize, g: &mut [f32]) -> f32 {
        let c = &self.cfg;
        let lr = c.learning_rate as f32;
        match self.kind {
            Optimizer::Sgd => lr,
            Optimizer::Momentum => {
                let mu = c.momentum as f32;
                match &mut self.first[i] {
                    Some(v) => {
                        for (v, x) in v.iter_mut().zip(g.iter_mut()) {
                            *v = *v * mu + *x;
                            *x = *v;
                        }
                    }
                    None => self.first[i] = Some(g.to_vec()),
                }
                lr
            }
            Optimizer::Adam => {
                let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.epsilon as f32);
                let m_hat = (1.0 / (1.0 - c.beta1.powi(self.step))) as f32;
                let v_hat = (1.0 / (1.0 - c.beta2.powi(self.step))) as f32;
                let m = self.first[i].get_or_insert_with(|| vec![0.0; g.len()]);
                let v = self.second[i].get_or_insert_with(|| vec![0.0; g.len()]);
                for ((x, m), v) in g.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m = *m * b1 + *x * (1.0 - b1);
                    *v = *v * b2 + *x * *x * (1.0 - b2);
                    *x = (*m * m_hat) / ((*v * v_hat).sqrt() + eps);
                }
                lr
            }
            Optimizer::Rmsprop => {
                let (rho, eps) = (c.rmsprop_decay as f32, c.epsilon as f32);
                let v = self.second[i].get_or_insert_with(|| vec![0.0; g.len()]);
                for (x, v) in g.iter_mut().zip(v.iter_mut()) {
                    *v = *v * rho + *x * *x * (1.0 - rho);
                    *x /= v.sqrt() + eps;
                }
                lr
            }
            Optimizer::Rprop => {
                // iRprop−, as `train::optim`: grow Δ where the sign held, shrink it and skip
                // the step (forgetting the gradient) where it flipped.
                let (up, down) = (c.rprop_eta_plus as f32, c.rprop_eta_minus as f32);
                let (dmax, dmin) = (c.rprop_delta_max as f32, c.rprop_delta_min as f32);
                let delta0 = c.rprop_delta0 as f32;
                let delta = self.second[i].get_or_insert_with(|| vec![delta0; g.len()]);
                let prev = self.first[i].get_or_insert_with(|| vec![0.0; g.len()]);
                for ((x, d), p) in g.iter_mut().zip(delta.iter_mut()).zip(prev.iter_mut()) {
                    let agree = *p * *x;
                    if agree > 0.0 {
                        *d = (*d * up).min(dmax);
                    } else if agree < 0.0 {
                        *d = (*d * down).max(dmin);
                        *x = 0.0;
                    }
                    *p = *x;
                    *x = if *x > 0.0 {
                        *d
                    } else if *x < 0.0 {
                        -*d
                    } else {
                        *x * 0.0
                    };
                }
                1.0
            }
            Optimizer::Genetic | Optimizer::RandomSearch => {
                unreachable!("gradient-free trainers never take gradient steps")
            }
        }
    }
}

/// How a parameter's gradient is clipped before its update.
#[derive(Clone, Copy)]
pub enum Clip {
    None,
    /// Multiply by this factor (global-norm clipping, computed over all parameters).
    Scale(f32),
    /// Clamp to ±this value.
    Value(f32),
}
