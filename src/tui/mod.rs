//! The terminal UI: ratatui screens over one event channel, never in the way of training.
//!
//! - [`event`]: the one `Event` enum; the input thread and the training forwarder feed it.
//! - [`app`]: all state and the pure `App::update(event) -> Option<Effect>`.
//! - [`jobs`]: background threads over the ledger (read, verify, replay, export) and the
//!   mean-field theory line, reporting on the same channel.
//! - [`ui`]: drawing, `impl Widget for &App`; one file per screen.
//! - [`runtime`]: the loop — drain events, carry out effects, draw at most ~30 times a second.
//! - [`terminal`]: raw mode and the alternate screen, restored on every way out.
//! - [`theme`], [`regime`]: colours and symbols (NO_COLOR, 16/256/true colour), thresholds.

pub mod app;
pub mod event;
pub mod jobs;
pub mod regime;
pub mod runtime;
pub mod terminal;
pub mod theme;
pub mod ui;

#[cfg(test)]
pub mod fixtures;

pub use jobs::LedgerAt;
pub use runtime::{Ended, Finished, Recorded, Recorder, Start, run};
