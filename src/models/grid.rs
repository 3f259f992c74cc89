//! Multi-dimensional recurrent nets on an image (Graves, Fernández & Schmidhuber 2007; the
//! LSTM form won the ICDAR 2009 handwriting competitions, Graves & Schmidhuber 2009): a cell
//! at pixel (i, j) reads the pixel and the states of its predecessors along both dimensions,
//! in four scans, one from each corner, each with its own weights. The four scans' last cells
//! are read out together, so the error reaches a pixel by paths along the grid from the
//! corners — as far as 2(n − 1) steps for the pixel in the opposite corner.
//!
//! MD-LSTM: z = x·W + h↑·U↑ + h←·U← + b split into i, f↑, f←, g, o;
//! c = σ(f↑)⊙c↑ + σ(f←)⊙c← + σ(i)⊙tanh(g), h = σ(o)⊙tanh(c) — one forget gate per
//! dimension. The 2-D tanh RNN beside it: h = tanh(x·W + h↑·U↑ + h←·U← + b).
//! `tests::backward_matches_autodiff` holds both hand-derived passes to Burn's autodiff.

use super::activation::{SIGMOID_SATURATED, TANH_SATURATED};
use super::mlp::Dense;
use super::{Backward, LayerSignals, Network, Saturation, init, kernels, matrix};
use crate::experiment::ModelSection;
use crate::models::ops::{PortableMatrix, PortableOps};
use crate::rng::Stream;
use burn::tensor::{Device, Tensor};

/// Scans: 0 from the top-left corner (rows down, columns right), 1 from the bottom-left,
/// 2 from the top-right, 3 from the bottom-right.
pub const SCANS: usize = 4;
/// Gate blocks of an MD-LSTM cell: input, forget ↑, forget ←, cell candidate, output.
const LSTM_GATES: usize = 5;
const FORGET_UP: usize = 1;
const FORGET_LEFT: usize = 2;

/// The cell on the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Tanh,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => LSTM_GATES,
            Cell::Tanh => 1,
        }
    }
}

/// One scan's weights.
#[derive(Debug, Clone)]
pub struct Scan {
    /// `[features, gates·hidden]`.
    pub w_in: Tensor<2>,
    /// From the predecessor along the rows (↑) and along the columns (←): `[hidden, gates·hidden]`.
    pub u_up: Tensor<2>,
    pub u_left: Tensor<2>,
    pub bias: Tensor<2>,
}

/// The network: `rows × cols` pixels of `features` values each, row-major in a row of input.
#[derive(Debug, Clone)]
pub struct GridNet {
    pub cell: Cell,
    pub scans: Vec<Scan>,
    /// Reads the four scans' last states side by side: `[4·hidden, outputs]`.
    pub out: Dense,
    pub rows: usize,
    pub cols: usize,
    pub features: usize,
}

/// One scan's forward values, cells in its own order (raster order from its corner).
struct ScanTape {
    /// Per cell `[b, hidden]`: h and (MD-LSTM) c; the gates σ(i), σ(f↑), σ(f←), tanh(g), σ(o), tanh(c).
    h: Vec<Tensor<2>>,
    c: Vec<Tensor<2>>,
    gates: Vec<Vec<Tensor<2>>>,
    /// Per cell, its input `[b, features]`.
    x: Vec<Tensor<2>>,
}

/// What the forward pass keeps.
pub struct GridTape {
    scans: Vec<ScanTape>,
    last: Tensor<2>,
    logits: Tensor<2>,
}

/// A scan's grid position (i, j) in the image: flipped rows for scans 1 and 3, flipped
/// columns for 2 and 3.
fn pixel(scan: usize, i: usize, j: usize, rows: usize, cols: usize) -> usize {
    let r = if scan & 1 == 1 { rows - 1 - i } else { i };
    let c = if scan & 2 == 2 { cols - 1 - j } else { j };
    r * cols + c
}

fn dsigmoid(s: &Tensor<2>) -> Tensor<2> {
    s.clone().mul(s.clone().neg().add_scalar(1.0))
}

fn one_minus_sq(t: &Tensor<2>) -> Tensor<2> {
    t.clone().square().neg().add_scalar(1.0)
}

impl GridNet {
    /// Draws, in order, from the `init` stream: per scan W (`model.init`), U↑ and U← (each
    /// gate block `model.recurrent_init` scaled to `model.spectral_radius`), b (N(0, σ_b²);
    /// MD-LSTM: plus `model.forget_bias` on both forget blocks); then the read-out.
    pub fn new(
        m: &ModelSection,
        cell: Cell,
        side: (usize, usize),
        features: usize,
        output_dim: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = Stream::new(seed, "init");
        let (h, g) = (m.width, cell.gates());
        let recurrent = |rng: &mut Stream| {
            let blocks: Vec<Vec<f32>> = (0..g)
                .map(|_| init::recurrent(m.recurrent_init, h, m.spectral_radius, rng))
                .collect();
            let side_by_side: Vec<f32> = (0..h)
                .flat_map(|r| {
                    blocks
                        .iter()
                        .flat_map(move |blk| blk[r * h..(r + 1) * h].iter().copied())
                })
                .collect();
            matrix(side_by_side, h, g * h, device)
        };
        let scans = (0..SCANS)
            .map(|_| {
                let w_in = init::weights(m.init, features, g * h, m.sigma_w, &mut rng);
                let u_up = recurrent(&mut rng);
                let u_left = recurrent(&mut rng);
                let mut bias = init::biases(g * h, m.sigma_b, &mut rng);
                if cell == Cell::Lstm {
                    for block in [FORGET_UP, FORGET_LEFT] {
                        for v in &mut bias[block * h..(block + 1) * h] {
                            *v += m.forget_bias as f32;
                        }
                    }
                }
                Scan {
                    w_in: matrix(w_in, features, g * h, device),
                    u_up,
                    u_left,
                    bias: matrix(bias, 1, g * h, device),
                }
            })
            .collect();
        let w = init::weights(m.init, SCANS * h, output_dim, m.sigma_w, &mut rng);
        let b = init::biases(output_dim, m.sigma_b, &mut rng);
        Self {
            cell,
            scans,
            out: Dense {
                weight: matrix(w, SCANS * h, output_dim, device),
                bias: matrix(b, 1, output_dim, device),
            },
            rows: side.0,
            cols: side.1,
            features,
        }
    }

    fn hidden(&self) -> usize {
        self.scans[0].u_up.dims()[0]
    }

    fn scan(&self, s: usize, x: &Tensor<2>) -> ScanTape {
        let [b, _] = x.dims();
        let (rows, cols, f, h) = (self.rows, self.cols, self.features, self.hidden());
        let w = &self.scans[s];
        let zeros = Tensor::<2>::zeros([b, h], &x.device());
        let n = rows * cols;
        let mut t = ScanTape {
            h: Vec::with_capacity(n),
            c: Vec::with_capacity(n),
            gates: Vec::with_capacity(n),
            x: Vec::with_capacity(n),
        };
        for i in 0..rows {
            for j in 0..cols {
                crate::cancel::checkpoint();
                let p = pixel(s, i, j, rows, cols);
                let xij = x.clone().narrow(1, p * f, f);
                let up = (i > 0).then(|| (i - 1) * cols + j);
                let left = (j > 0).then(|| i * cols + j - 1);
                let mut z = xij.clone().pmatmul(w.w_in.clone()).add(w.bias.clone());
                if let Some(u) = up {
                    z = z.add(t.h[u].clone().pmatmul(w.u_up.clone()));
                }
                if let Some(l) = left {
                    z = z.add(t.h[l].clone().pmatmul(w.u_left.clone()));
                }
                match self.cell {
                    Cell::Tanh => {
                        t.h.push(kernels::tanh(z));
                    }
                    Cell::Lstm => {
                        let gate = |k: usize| z.clone().narrow(1, k * h, h);
                        let (ig, fu, fl) = (
                            kernels::sigmoid(gate(0)),
                            kernels::sigmoid(gate(FORGET_UP)),
                            kernels::sigmoid(gate(FORGET_LEFT)),
                        );
                        let (g, o) = (kernels::tanh(gate(3)), kernels::sigmoid(gate(4)));
                        let c_up = up.map_or_else(|| zeros.clone(), |u| t.c[u].clone());
                        let c_left = left.map_or_else(|| zeros.clone(), |l| t.c[l].clone());
                        let c = fu
                            .clone()
                            .mul(c_up)
                            .add(fl.clone().mul(c_left))
                            .add(ig.clone().mul(g.clone()));
                        let tanh_c = kernels::tanh(c.clone());
                        t.h.push(o.clone().mul(tanh_c.clone()));
                        t.c.push(c);
                        t.gates.push(vec![ig, fu, fl, g, o, tanh_c]);
                    }
                }
                t.x.push(xij);
            }
        }
        t
    }

    fn run(&self, x: &Tensor<2>) -> GridTape {
        let scans: Vec<ScanTape> = (0..SCANS).map(|s| self.scan(s, x)).collect();
        let last = Tensor::cat(
            scans
                .iter()
                .map(|t| t.h.last().expect("a grid has cells").clone())
                .collect(),
            1,
        );
        let logits = last
            .clone()
            .pmatmul(self.out.weight.clone())
            .add(self.out.bias.clone());
        GridTape {
            scans,
            last,
            logits,
        }
    }

    /// Back through scan `s` from ∂L/∂h at its last cell: its weight gradients (W, U↑, U←, b),
    /// ∂L/∂z of every cell as rows `[b·n, gates·hidden]`, and ‖∂L/∂h‖² of every cell in the
    /// scan's order.
    fn scan_back(&self, s: usize, t: &ScanTape, d_last: Tensor<2>) -> ScanGrads {
        let (rows, cols, h) = (self.rows, self.cols, self.hidden());
        let w = &self.scans[s];
        let n = rows * cols;
        let [b, _] = d_last.dims();
        let zeros = Tensor::<2>::zeros([b, h], &d_last.device());
        let mut dh: Vec<Option<Tensor<2>>> = vec![None; n];
        let mut dc: Vec<Option<Tensor<2>>> = vec![None; n];
        dh[n - 1] = Some(d_last);
        let mut dz: Vec<Tensor<2>> = vec![zeros.clone(); n];
        let mut dh_sq: Vec<Tensor<1>> = vec![Tensor::zeros([1], &zeros.device()); n];
        let add = |slot: &mut Option<Tensor<2>>, v: Tensor<2>| {
            *slot = Some(match slot.take() {
                Some(a) => a.add(v),
                None => v,
            });
        };
        for k in (0..n).rev() {
            crate::cancel::checkpoint();
            let (i, j) = (k / cols, k % cols);
            let up = (i > 0).then(|| (i - 1) * cols + j);
            let left = (j > 0).then(|| i * cols + j - 1);
            let g = dh[k].take().unwrap_or_else(|| zeros.clone());
            dh_sq[k] = g.clone().square().psum();
            let z = match self.cell {
                Cell::Tanh => g.mul(one_minus_sq(&t.h[k])),
                Cell::Lstm => {
                    let [ig, fu, fl, gg, o, tanh_c] = <&[Tensor<2>; 6]>::try_from(&t.gates[k][..])
                        .expect("six gate values per cell")
                        .clone();
                    let c = g
                        .clone()
                        .mul(o.clone())
                        .mul(one_minus_sq(&tanh_c))
                        .add(dc[k].take().unwrap_or_else(|| zeros.clone()));
                    let c_up = up.map_or_else(|| zeros.clone(), |u| t.c[u].clone());
                    let c_left = left.map_or_else(|| zeros.clone(), |l| t.c[l].clone());
                    if let Some(u) = up {
                        add(&mut dc[u], c.clone().mul(fu.clone()));
                    }
                    if let Some(l) = left {
                        add(&mut dc[l], c.clone().mul(fl.clone()));
                    }
                    Tensor::cat(
                        vec![
                            c.clone().mul(gg.clone()).mul(dsigmoid(&ig)),
                            c.clone().mul(c_up).mul(dsigmoid(&fu)),
                            c.clone().mul(c_left).mul(dsigmoid(&fl)),
                            c.mul(ig).mul(one_minus_sq(&gg)),
                            g.mul(tanh_c).mul(dsigmoid(&o)),
                        ],
                        1,
                    )
                }
            };
            if let Some(u) = up {
                add(&mut dh[u], z.clone().pmatmul_nt(w.u_up.clone()));
            }
            if let Some(l) = left {
                add(&mut dh[l], z.clone().pmatmul_nt(w.u_left.clone()));
            }
            dz[k] = z;
        }
        // Predecessor states per cell (zero where there is none), for U↑ and U←.
        let before = |of: &dyn Fn(usize) -> Option<usize>| -> Vec<Tensor<2>> {
            (0..n)
                .map(|k| of(k).map_or_else(|| zeros.clone(), |p| t.h[p].clone()))
                .collect()
        };
        let ups = before(&|k| (k >= cols).then(|| k - cols));
        let lefts = before(&|k| (k % cols > 0).then(|| k - 1));
        let rows_of = |v: Vec<Tensor<2>>| Tensor::cat(v, 0);
        let dz_rows = rows_of(dz);
        ScanGrads {
            w_in: rows_of(t.x.clone()).pmatmul_tn(dz_rows.clone()),
            u_up: rows_of(ups).pmatmul_tn(dz_rows.clone()),
            u_left: rows_of(lefts).pmatmul_tn(dz_rows.clone()),
            bias: dz_rows.clone().psum_dim(0),
            dz_rows,
            dh_sq,
        }
    }
}

struct ScanGrads {
    w_in: Tensor<2>,
    u_up: Tensor<2>,
    u_left: Tensor<2>,
    bias: Tensor<2>,
    dz_rows: Tensor<2>,
    dh_sq: Vec<Tensor<1>>,
}

impl Network for GridNet {
    type Tape = GridTape;

    /// `s1`..`s4` (the scans from the top-left, bottom-left, top-right and bottom-right), `out`.
    fn layer_names(&self) -> Vec<String> {
        (1..=SCANS)
            .map(|s| format!("s{s}"))
            .chain(["out".to_string()])
            .collect()
    }

    fn param_names(&self) -> Vec<String> {
        (1..=SCANS)
            .flat_map(|s| ["w_in", "u_up", "u_left", "bias"].map(|p| format!("s{s}.{p}")))
            .chain(["out.weight".to_string(), "out.bias".to_string()])
            .collect()
    }

    fn params(&self) -> Vec<Tensor<2>> {
        self.scans
            .iter()
            .flat_map(|s| {
                [
                    s.w_in.clone(),
                    s.u_up.clone(),
                    s.u_left.clone(),
                    s.bias.clone(),
                ]
            })
            .chain([self.out.weight.clone(), self.out.bias.clone()])
            .collect()
    }

    fn set_params(&mut self, params: Vec<Tensor<2>>) {
        let mut it = params.into_iter();
        let mut next = || {
            it.next()
                .expect("four parameters per scan and two for the read-out")
        };
        for s in &mut self.scans {
            (s.w_in, s.u_up, s.u_left, s.bias) = (next(), next(), next(), next());
        }
        (self.out.weight, self.out.bias) = (next(), next());
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.run(&x).logits
    }

    fn forward_tape(&self, x: Tensor<2>) -> (Tensor<2>, GridTape) {
        let tape = self.run(&x);
        (tape.logits.clone(), tape)
    }

    /// From the read-out to each scan's last cell, then cell by cell in reverse scan order:
    /// ∂L/∂h of a cell collects ∂L/∂z·Uᵀ from its successor below and to the right (and the
    /// MD-LSTM's ∂L/∂c the forget-gated ∂L/∂c of both). `time` is ‖∂L/∂h‖² per scan and
    /// pixel: the first scan's map row by row in the image, then the second's, and so on.
    fn backward(&self, tape: GridTape, delta_out: Tensor<2>) -> Backward {
        let (rows, cols, h) = (self.rows, self.cols, self.hidden());
        let GridTape {
            scans,
            last,
            logits,
        } = tape;
        let d_last = delta_out.clone().pmatmul_nt(self.out.weight.clone());
        let mut grads = Vec::with_capacity(4 * SCANS + 2);
        let mut layers = Vec::with_capacity(SCANS + 1);
        // Per scan, per pixel of the image (row by row): ‖∂L/∂h‖² of that scan's state there.
        let mut per_pixel: Vec<Option<Tensor<1>>> = vec![None; SCANS * rows * cols];
        for (s, t) in scans.iter().enumerate() {
            let g = self.scan_back(s, t, d_last.clone().narrow(1, s * h, h));
            grads.extend([g.w_in, g.u_up, g.u_left, g.bias]);
            for (k, sq) in g.dh_sq.into_iter().enumerate() {
                per_pixel[s * rows * cols + pixel(s, k / cols, k % cols, rows, cols)] = Some(sq);
            }
            let output = Tensor::cat(t.h.clone(), 0);
            let saturated = match self.cell {
                Cell::Tanh => output.clone().abs().greater_elem(TANH_SATURATED).float(),
                Cell::Lstm => {
                    let f = Tensor::cat(t.gates.iter().map(|g| g[1].clone()).collect(), 0);
                    f.clone()
                        .lower_elem(SIGMOID_SATURATED)
                        .float()
                        .add(f.greater_elem(1.0 - SIGMOID_SATURATED).float())
                }
            };
            layers.push(LayerSignals {
                delta: g.dz_rows,
                output,
                saturated: Some(Saturation::Mask(saturated)),
                weight: 4 * s + 1,
                bias: Some(4 * s + 3),
                skip: None,
                delta_sq: None,
            });
        }
        grads.push(last.pmatmul_tn(delta_out.clone()));
        grads.push(delta_out.clone().psum_dim(0));
        layers.push(LayerSignals {
            delta: delta_out,
            output: logits,
            saturated: None,
            weight: 4 * SCANS,
            bias: Some(4 * SCANS + 1),
            skip: None,
            delta_sq: None,
        });
        let time = Tensor::cat(
            per_pixel
                .into_iter()
                .map(|v| v.expect("every pixel is on every scan"))
                .collect(),
            0,
        );
        Backward {
            grads,
            layers,
            time: vec![time],
            levels: None,
        }
    }
}

/// ‖∂L/∂h‖ per pixel over the four scans' states there, from a probe's `time` (the four
/// scans' maps of ‖∂L/∂h‖, one after the other): √Σ_s v_s². `None` if it is not four maps.
pub fn pixel_map(time: &[f64]) -> Option<Vec<f64>> {
    if time.is_empty() || !time.len().is_multiple_of(SCANS) {
        return None;
    }
    let n = time.len() / SCANS;
    Some(
        (0..n)
            .map(|p| {
                (0..SCANS)
                    .map(|s| time[s * n + p].powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect(),
    )
}

/// Each scan's ‖∂L/∂h‖ at the pixel it reads first (the far corner) over the one it reads
/// last (where the read-out is), from a probe's `time`; and their geometric mean.
pub fn far_over_near(time: &[f64]) -> Option<(Vec<f64>, f64)> {
    let n = time.len() / SCANS;
    let side = square_side(n).filter(|_| time.len() == SCANS * n)?;
    let ratios: Vec<f64> = (0..SCANS)
        .map(|s| {
            let far = pixel(s, 0, 0, side, side);
            let near = pixel(s, side - 1, side - 1, side, side);
            time[s * n + far] / time[s * n + near]
        })
        .collect();
    let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / SCANS as f64).exp();
    Some((ratios, geo))
}

/// The side of a square image of `pixels` pixels, if it is one.
pub fn square_side(pixels: usize) -> Option<usize> {
    let s = (pixels as f64).sqrt().round() as usize;
    (s > 0 && s * s == pixels).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::rnn::tests::{close, leaf, random};

    /// Both cells' hand-written passes agree with autodiff: ∂L/∂h at every pixel of every
    /// scan (zero leaves added to each state; `time` sums them per pixel) and every
    /// parameter's gradient, on a non-square grid so a flipped axis cannot hide.
    #[test]
    fn backward_matches_autodiff() {
        for cell in [Cell::Lstm, Cell::Tanh] {
            let device = Device::flex();
            let m = ModelSection {
                width: 3,
                sigma_b: 0.2,
                spectral_radius: 1.1,
                forget_bias: 0.5,
                ..ModelSection::default()
            };
            let (rows, cols, f, b, out) = (3, 4, 2, 2, 3);
            let net = GridNet::new(&m, cell, (rows, cols), f, out, 5, &device);
            let x = random(b, rows * cols * f, 1, &device);
            let cot = random(b, out, 2, &device);
            let (_, tape) = net.forward_tape(x.clone());
            let ours = net.backward(tape, cot.clone());

            let ad = device.clone().autodiff();
            let p: Vec<Tensor<2>> = net.params().iter().map(|t| leaf(t, &ad)).collect();
            let xa = Tensor::<2>::from_data(x.to_data(), &ad);
            let h = 3;
            let n = rows * cols;
            let leaves: Vec<Vec<Tensor<2>>> = (0..SCANS)
                .map(|_| {
                    (0..n)
                        .map(|_| Tensor::zeros([b, h], &ad).require_grad())
                        .collect()
                })
                .collect();
            let mut last = Vec::new();
            for s in 0..SCANS {
                let (w, uu, ul, bb) = (&p[4 * s], &p[4 * s + 1], &p[4 * s + 2], &p[4 * s + 3]);
                let mut hs: Vec<Tensor<2>> = Vec::new();
                let mut cs: Vec<Tensor<2>> = Vec::new();
                let zero = Tensor::<2>::zeros([b, h], &ad);
                for i in 0..rows {
                    for j in 0..cols {
                        let k = i * cols + j;
                        let px = pixel(s, i, j, rows, cols);
                        let mut z = xa.clone().narrow(1, px * f, f).matmul(w.clone()) + bb.clone();
                        if i > 0 {
                            z = z + hs[k - cols].clone().matmul(uu.clone());
                        }
                        if j > 0 {
                            z = z + hs[k - 1].clone().matmul(ul.clone());
                        }
                        let hk = match cell {
                            Cell::Tanh => z.tanh(),
                            Cell::Lstm => {
                                use burn::tensor::activation::sigmoid;
                                let gate = |q: usize| z.clone().narrow(1, q * h, h);
                                let cu = if i > 0 {
                                    cs[k - cols].clone()
                                } else {
                                    zero.clone()
                                };
                                let cl = if j > 0 {
                                    cs[k - 1].clone()
                                } else {
                                    zero.clone()
                                };
                                let c = sigmoid(gate(1)) * cu
                                    + sigmoid(gate(2)) * cl
                                    + sigmoid(gate(0)) * gate(3).tanh();
                                cs.push(c.clone());
                                sigmoid(gate(4)) * c.tanh()
                            }
                        };
                        hs.push(hk + leaves[s][k].clone());
                    }
                }
                last.push(hs[n - 1].clone());
            }
            let logits = Tensor::cat(last, 1).matmul(p[16].clone()) + p[17].clone();
            let grads = (logits * Tensor::<2>::from_data(cot.to_data(), &ad))
                .sum()
                .backward();
            let per_pixel = ours.time[0]
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(per_pixel.len(), SCANS * n);
            for (s, scan) in leaves.iter().enumerate() {
                for px in 0..n {
                    let k = (0..n)
                        .find(|&k| pixel(s, k / cols, k % cols, rows, cols) == px)
                        .unwrap();
                    let want = scan[k]
                        .grad(&grads)
                        .unwrap()
                        .square()
                        .sum()
                        .into_scalar::<f32>();
                    let got = per_pixel[s * n + px];
                    assert!(
                        (got - want).abs() <= 1e-5 + 1e-4 * want,
                        "{cell:?} scan {s} pixel {px}: {got} vs {want}"
                    );
                }
            }
            for (i, name) in net.param_names().iter().enumerate() {
                close(
                    ours.grads[i].clone(),
                    p[i].grad(&grads).unwrap(),
                    &format!("{cell:?} {name}"),
                );
            }
        }
    }

    #[test]
    fn the_four_scans_start_at_the_four_corners() {
        let (r, c) = (3, 5);
        let firsts: Vec<usize> = (0..SCANS).map(|s| pixel(s, 0, 0, r, c)).collect();
        assert_eq!(firsts, [0, 10, 4, 14]);
        let lasts: Vec<usize> = (0..SCANS).map(|s| pixel(s, r - 1, c - 1, r, c)).collect();
        assert_eq!(lasts, [14, 4, 10, 0]);
        assert_eq!(square_side(64), Some(8));
        assert_eq!(square_side(63), None);
        assert_eq!(square_side(0), None);
        // Before the first probe there is no map (the Run screen asks all the same).
        assert_eq!(far_over_near(&[]), None);
        assert_eq!(pixel_map(&[]), None);
        assert_eq!(far_over_near(&[1.0; 7]), None);
        let (ratios, geo) = far_over_near(&[1.0; 4 * 9]).unwrap();
        assert_eq!((ratios, geo), (vec![1.0; 4], 1.0));
    }
}
