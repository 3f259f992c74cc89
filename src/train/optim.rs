//! Optimisers and gradient clipping over a flat list of parameter tensors.
//!
//! Written here rather than taken from burn-optim because the lab needs the global-norm
//! clipping of Pascanu et al. (burn clips each tensor separately), works on its own
//! hand-derived gradients, and must keep every update's arithmetic fixed for exact replays.

use crate::experiment::{Clip, Optimizer, TrainSection};
use burn::tensor::Tensor;

/// Rescales or clamps `grads` in place as `[train].clip` says. `total_sq` is Σ‖g‖² of all
/// gradients (a 1-element tensor, kept on the device: no host read is needed to clip).
pub fn clip(grads: &mut [Tensor<2>], total_sq: &Tensor<1>, kind: Clip, threshold: f64) {
    match kind {
        Clip::None => {}
        Clip::GlobalNorm => {
            // g ← g · min(1, c / ‖g‖); the tiny floor only guards an all-zero gradient.
            let scale = total_sq
                .clone()
                .sqrt()
                .clamp_min(1e-30)
                .recip()
                .mul_scalar(threshold)
                .clamp_max(1.0)
                .reshape([1, 1]);
            for g in grads.iter_mut() {
                *g = g.clone().mul(scale.clone());
            }
        }
        Clip::Value => {
            for g in grads.iter_mut() {
                *g = g.clone().clamp(-threshold, threshold);
            }
        }
    }
}

/// iRprop−'s constants.
#[derive(Debug, Clone, Copy)]
struct RpropRule {
    eta_plus: f64,
    eta_minus: f64,
    delta0: f64,
    delta_max: f64,
    delta_min: f64,
}

/// Optimiser state for one list of parameters.
pub struct Optim {
    kind: Optimizer,
    lr: f64,
    momentum: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    rmsprop_decay: f64,
    rprop: RpropRule,
    t: i32,
    first: Vec<Option<Tensor<2>>>,
    second: Vec<Option<Tensor<2>>>,
}

impl Optim {
    pub fn new(t: &TrainSection, n_params: usize) -> Self {
        Self {
            kind: t.optimizer,
            lr: t.learning_rate,
            momentum: t.momentum,
            beta1: t.beta1,
            beta2: t.beta2,
            epsilon: t.epsilon,
            rmsprop_decay: t.rmsprop_decay,
            rprop: RpropRule {
                eta_plus: t.rprop_eta_plus,
                eta_minus: t.rprop_eta_minus,
                delta0: t.rprop_delta0,
                delta_max: t.rprop_delta_max,
                delta_min: t.rprop_delta_min,
            },
            t: 0,
            first: vec![None; n_params],
            second: vec![None; n_params],
        }
    }

    /// Applies one update: `params[i] ← params[i] − u_i`; returns the updates u_i when
    /// `keep` (the probes measure ‖ΔW‖ from them without a subtraction). Gradient-free
    /// trainers never reach here (they have their own loop).
    pub fn step(
        &mut self,
        params: &mut [Tensor<2>],
        grads: Vec<Tensor<2>>,
        keep: bool,
    ) -> Vec<Tensor<2>> {
        self.t += 1;
        let mut kept = Vec::with_capacity(if keep { params.len() } else { 0 });
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let update = match self.kind {
                Optimizer::Sgd => g.mul_scalar(self.lr),
                Optimizer::Momentum => {
                    let v = match self.first[i].take() {
                        Some(v) => v.mul_scalar(self.momentum).add(g),
                        None => g,
                    };
                    self.first[i] = Some(v.clone());
                    v.mul_scalar(self.lr)
                }
                Optimizer::Adam => {
                    let m = match self.first[i].take() {
                        Some(m) => m
                            .mul_scalar(self.beta1)
                            .add(g.clone().mul_scalar(1.0 - self.beta1)),
                        None => g.clone().mul_scalar(1.0 - self.beta1),
                    };
                    let v = match self.second[i].take() {
                        Some(v) => v
                            .mul_scalar(self.beta2)
                            .add(g.square().mul_scalar(1.0 - self.beta2)),
                        None => g.square().mul_scalar(1.0 - self.beta2),
                    };
                    let m_hat = 1.0 / (1.0 - self.beta1.powi(self.t));
                    let v_hat = 1.0 / (1.0 - self.beta2.powi(self.t));
                    let u = m
                        .clone()
                        .mul_scalar(m_hat)
                        .div(v.clone().mul_scalar(v_hat).sqrt().add_scalar(self.epsilon));
                    self.first[i] = Some(m);
                    self.second[i] = Some(v);
                    u.mul_scalar(self.lr)
                }
                Optimizer::Rmsprop => {
                    let rho = self.rmsprop_decay;
                    let v = match self.second[i].take() {
                        Some(v) => v
                            .mul_scalar(rho)
                            .add(g.clone().square().mul_scalar(1.0 - rho)),
                        None => g.clone().square().mul_scalar(1.0 - rho),
                    };
                    let u = g.div(v.clone().sqrt().add_scalar(self.epsilon));
                    self.second[i] = Some(v);
                    u.mul_scalar(self.lr)
                }
                Optimizer::Rprop => {
                    // `first` holds the previous step's gradient (zeroed where its sign
                    // flipped), `second` the per-weight step sizes Δ.
                    let r = self.rprop;
                    let delta = self.second[i]
                        .take()
                        .unwrap_or_else(|| g.zeros_like().add_scalar(r.delta0));
                    let (g, delta) = match self.first[i].take() {
                        Some(prev) => {
                            let agree = prev.mul(g.clone());
                            let same = agree.clone().greater_elem(0.0);
                            let flipped = agree.lower_elem(0.0);
                            let grown = delta.clone().mul_scalar(r.eta_plus).clamp_max(r.delta_max);
                            let shrunk =
                                delta.clone().mul_scalar(r.eta_minus).clamp_min(r.delta_min);
                            let delta = delta
                                .mask_where(same, grown)
                                .mask_where(flipped.clone(), shrunk);
                            // iRprop−: after a sign flip take no step and forget the gradient,
                            // so the next step neither grows nor shrinks Δ.
                            (g.mask_fill(flipped, 0.0), delta)
                        }
                        None => (g, delta),
                    };
                    let u = g.clone().sign().mul(delta.clone());
                    self.first[i] = Some(g);
                    self.second[i] = Some(delta);
                    u
                }
                Optimizer::Genetic | Optimizer::RandomSearch => {
                    unreachable!(
                        "gradient-free trainers are driven by train::search, never by Optim"
                    )
                }
            };
            if keep {
                kept.push(update.clone());
            }
            *p = p.clone().sub(update);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    fn vals(t: &Tensor<2>) -> Vec<f32> {
        t.to_data().try_to_vec::<f32>().unwrap()
    }

    fn total_sq(gs: &[Tensor<2>]) -> Tensor<1> {
        Tensor::cat(gs.iter().map(|g| g.clone().square().sum()).collect(), 0).sum()
    }

    #[test]
    fn global_norm_clipping_gives_exactly_the_threshold() {
        let mut gs = vec![t(vec![3.0, 0.0], [1, 2]), t(vec![0.0, 4.0, 12.0], [3, 1])];
        let sq = total_sq(&gs); // ‖g‖ = 13
        clip(&mut gs, &sq, Clip::GlobalNorm, 1.0);
        let norm = total_sq(&gs).into_scalar::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6, "{norm}");
        assert!(
            (vals(&gs[1])[2] - 12.0 / 13.0).abs() < 1e-6,
            "direction is kept"
        );
        // Below the threshold nothing changes.
        let mut small = vec![t(vec![0.3, 0.4], [1, 2])];
        let sq = total_sq(&small);
        clip(&mut small, &sq, Clip::GlobalNorm, 1.0);
        assert_eq!(vals(&small[0]), vec![0.3, 0.4]);
    }

    #[test]
    fn value_clipping_clamps_each_element() {
        let mut gs = vec![t(vec![-5.0, 0.5, 2.0], [1, 3])];
        let sq = total_sq(&gs);
        clip(&mut gs, &sq, Clip::Value, 1.0);
        assert_eq!(vals(&gs[0]), vec![-1.0, 0.5, 1.0]);
    }

    #[test]
    fn updates_follow_their_rules() {
        let section = |kind| TrainSection {
            optimizer: kind,
            learning_rate: 0.1,
            ..TrainSection::default()
        };
        // sgd: 1 − 0.1·2 = 0.8
        let mut p = vec![t(vec![1.0], [1, 1])];
        let mut o = Optim::new(&section(Optimizer::Sgd), 1);
        o.step(&mut p, vec![t(vec![2.0], [1, 1])], false);
        assert!((vals(&p[0])[0] - 0.8).abs() < 1e-6);
        // momentum: v1 = 2, v2 = 0.9·2 + 2 = 3.8 → 1 − 0.1·(2 + 3.8) = 0.42
        let mut p = vec![t(vec![1.0], [1, 1])];
        let mut o = Optim::new(&section(Optimizer::Momentum), 1);
        o.step(&mut p, vec![t(vec![2.0], [1, 1])], false);
        o.step(&mut p, vec![t(vec![2.0], [1, 1])], false);
        assert!((vals(&p[0])[0] - 0.42).abs() < 1e-6);
        // adam's first step moves every weight by ≈ lr whatever the gradient's scale
        let mut p = vec![t(vec![1.0, 1.0], [1, 2])];
        let mut o = Optim::new(&section(Optimizer::Adam), 1);
        let u = o.step(&mut p, vec![t(vec![1e-3, -50.0], [1, 2])], true);
        assert_eq!(u.len(), 1);
        let v = vals(&p[0]);
        assert!(
            (v[0] - 0.9).abs() < 1e-4 && (v[1] - 1.1).abs() < 1e-4,
            "{v:?}"
        );
        // rmsprop (ρ = 0.9, ε = 1e-8): v1 = 0.1·4 = 0.4, step 0.1·2/√0.4 = 0.316228
        let mut p = vec![t(vec![1.0], [1, 1])];
        let mut o = Optim::new(&section(Optimizer::Rmsprop), 1);
        o.step(&mut p, vec![t(vec![2.0], [1, 1])], false);
        assert!(
            (vals(&p[0])[0] - (1.0 - 0.2 / 0.4f32.sqrt())).abs() < 1e-6,
            "{:?}",
            vals(&p[0])
        );
    }

    /// iRprop− (Igel & Hüsken 2000) on four weights, worked by hand with η⁺ = 1.2, η⁻ = 0.5,
    /// Δ₀ = 0.1 and bounds Δmax = 0.15, Δmin = 0.04 small enough that both bite. Rule per
    /// weight: g·g_prev > 0 → Δ ← min(η⁺Δ, Δmax); g·g_prev < 0 → Δ ← max(η⁻Δ, Δmin) and
    /// g ← 0; then w ← w − sign(g)·Δ, g_prev ← g.
    ///
    /// | step | g                | Δ after                      | w after                          |
    /// |------|------------------|------------------------------|----------------------------------|
    /// | 1    | (1, −2, 3, 0)    | (0.1, 0.1, 0.1, 0.1)         | (−0.1, 0.1, −0.1, 0)             |
    /// | 2    | (1, 2, 3, 5)     | (0.12, 0.05, 0.12, 0.1)      | (−0.22, 0.1, −0.22, −0.1)        |
    /// | 3    | (1, −1, −1, 5)   | (0.144, 0.05, 0.06, 0.12)    | (−0.364, 0.15, −0.22, −0.22)     |
    /// | 4    | (1, −1, −1, −5)  | (0.15, 0.06, 0.06, 0.06)     | (−0.514, 0.21, −0.16, −0.22)     |
    /// | 5    | (−1, −1, 1, −5)  | (0.075, 0.072, 0.04, 0.06)   | (−0.514, 0.282, −0.16, −0.16)    |
    /// | 6    | (−1, −1, −1, −5) | (0.075, 0.0864, 0.04, 0.072) | (−0.439, 0.3684, −0.12, −0.088)  |
    ///
    /// A flip (weight 2 at step 2, weight 3 at steps 3 and 5, weight 4 at step 4, weight 1 at
    /// step 5) shrinks Δ and takes no step; the next step sees a stored 0 and moves by the
    /// unchanged Δ. Weight 1 reaches Δmax at step 4 (0.1728 → 0.15); weight 3 hits Δmin at
    /// step 5 (0.03 → 0.04). Weight 4's zero first gradient keeps Δ₀ and takes no step.
    #[test]
    fn irprop_minus_follows_the_published_rule() {
        let section = TrainSection {
            optimizer: Optimizer::Rprop,
            rprop_eta_plus: 1.2,
            rprop_eta_minus: 0.5,
            rprop_delta0: 0.1,
            rprop_delta_max: 0.15,
            rprop_delta_min: 0.04,
            ..TrainSection::default()
        };
        let mut o = Optim::new(&section, 1);
        let mut p = vec![t(vec![0.0; 4], [1, 4])];
        let steps: [([f32; 4], [f32; 4]); 6] = [
            ([1.0, -2.0, 3.0, 0.0], [-0.1, 0.1, -0.1, 0.0]),
            ([1.0, 2.0, 3.0, 5.0], [-0.22, 0.1, -0.22, -0.1]),
            ([1.0, -1.0, -1.0, 5.0], [-0.364, 0.15, -0.22, -0.22]),
            ([1.0, -1.0, -1.0, -5.0], [-0.514, 0.21, -0.16, -0.22]),
            ([-1.0, -1.0, 1.0, -5.0], [-0.514, 0.282, -0.16, -0.16]),
            ([-1.0, -1.0, -1.0, -5.0], [-0.439, 0.3684, -0.12, -0.088]),
        ];
        for (k, (g, want)) in steps.iter().enumerate() {
            o.step(&mut p, vec![t(g.to_vec(), [1, 4])], false);
            let got = vals(&p[0]);
            for j in 0..4 {
                assert!(
                    (got[j] - want[j]).abs() < 1e-6,
                    "step {} weight {}: {} vs {}",
                    k + 1,
                    j + 1,
                    got[j],
                    want[j]
                );
            }
        }
    }
}
