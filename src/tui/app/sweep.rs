//! State of the Sweep screen: which sweep, its grid as read from the ledger, which metric.

use crate::sweep::{Metric, SweepGrid};

/// The sweep on screen.
#[derive(Debug, Clone)]
pub struct SweepView {
    /// The sweep id (the `sweep:<id>` tag of its points).
    pub id: String,
    /// The two-axis grid, or why it could not be built (a one-axis sweep, say).
    pub grid: Result<SweepGrid, String>,
    pub metric: Metric,
}

impl SweepView {
    pub fn new(id: String, grid: Result<SweepGrid, String>) -> Self {
        Self {
            id,
            grid,
            metric: Metric::Loss,
        }
    }

    /// The next metric in `Metric::ALL`, wrapping around.
    pub fn next_metric(&mut self) {
        let i = Metric::ALL
            .iter()
            .position(|m| *m == self.metric)
            .unwrap_or(0);
        self.metric = Metric::ALL[(i + 1) % Metric::ALL.len()];
    }
}

/// The sweep id an entry belongs to, from its `sweep:<id>` tag.
pub fn sweep_of(tags: &[String]) -> Option<String> {
    tags.iter()
        .find_map(|t| t.strip_prefix(crate::sweep::run::SWEEP_TAG))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_cycle_and_tags_name_the_sweep() {
        let mut v = SweepView::new("abc".into(), Err("one axis".into()));
        let first = v.metric;
        for _ in 0..Metric::ALL.len() {
            v.next_metric();
        }
        assert_eq!(v.metric, first);
        v.next_metric();
        assert_ne!(v.metric, first);
        assert_eq!(
            sweep_of(&["x".into(), "sweep:9f2".into()]),
            Some("9f2".into())
        );
        assert_eq!(sweep_of(&["sweep-axes:model.depth".into()]), None);
    }
}
