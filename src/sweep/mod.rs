//! Sweeps: a grid of configs over one experiment, every point a ledger entry.
//!
//! - [`grid`]: `--set field=values` axes, their cartesian product with seeds, the sweep id.
//! - [`run`]: the points on worker threads, recorded and tagged; recorded points skipped.
//! - [`summary`]: the per-point table and the two-axis grid (with ξ) read from the ledger.
//! - [`jobs`]: one `gradlab run` line per point, for GNU parallel or a Slurm array.

pub mod grid;
pub mod jobs;
pub mod run;
pub mod summary;

pub use grid::{Axis, GridError, Point, expand, parse_axis, sweep_id};
pub use run::{Options, Plan, Progress, Report, SweepError};
pub use summary::{Cell, Metric, Row, SummaryError, SweepGrid, grid_summary};
