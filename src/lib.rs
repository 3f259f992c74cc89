//! gradlab — a terminal lab for seeing and measuring the vanishing and exploding gradient.
//!
//! Data flows one way: experiment file → [`experiment::Experiment`] (validated, hashed) →
//! [`data`] + [`models`] → [`train`] (its own thread, one event channel) → the listener
//! ([`headless`] progress or the [`tui`]) and, when the run ends, the [`ledger`].
//!
//! - [`experiment`]: TOML spec, validation, canonical form and blake3 hash.
//! - [`data`]: spirals, parity, teacher–student, the shipped 8×8 digits, MNIST IDX files,
//!   bars and stripes, and the long-time-lag sequence tasks (adding, temporal order, copy memory).
//! - [`engine`]: the portable engine's arithmetic (products, element-wise math, sums), the
//!   same bits on every CPU; a leaf that knows nothing of the lab.
//! - [`models`]: the deep MLP, residual MLP, tanh RNN and LSTM with hand-derived backward
//!   passes; RBMs and deep belief nets; activations; init schemes.
//! - [`train`]: the training loop, optimisers (incl. iRprop−, RMSProp) and clipping, DBN
//!   pretraining, gradient-free search, per-layer and per-time-step probes, events, traces.
//! - [`ledger`]: the append-only hash-chained record of every run; verify, replay, audit.
//! - [`lesion`]: residual nets as ensembles (Veit et al. 2016): lesions and effective paths
//!   of a trained entry, recorded as their own ledger entry.
//! - [`theory`]: mean-field prediction of the δ profile (q-map, χ, depth scale ξ).
//! - [`sweep`]: grids of configs (`--set`), run in parallel, recorded in the ledger.
//! - [`plot`]: SVG/PNG figures (profiles, training curves, sweeps) with plotters.
//! - [`figures`]: which figure each `gradlab plot --kind` draws from ledger entries and sweeps.
//! - [`headless`]: progress bar and summary table for runs without a terminal UI.
//! - [`tui`]: the ratatui screens.
//! - [`bench`]: the lab's side of `make bench-peers` (peer-benchmark protocol).
//! - [`cli`]: the command line.

pub mod bench;
pub mod cancel;
pub mod cli;
pub mod data;
pub mod engine;
pub mod experiment;
pub mod figures;
pub mod headless;
pub mod ledger;
pub mod lesion;
pub mod models;
pub mod plot;
pub mod rng;
pub mod sweep;
pub mod theory;
pub mod train;
pub mod tui;
