//! Sweeps: a grid of configs over one experiment, every point a ledger entry.

pub mod grid;

pub use grid::{expand, parse_axis, sweep_id, Axis, GridError, Point};
