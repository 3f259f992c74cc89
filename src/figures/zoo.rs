//! Figures of the zoo's own probes: the history compressor's levels over training and a grid
//! net's error over the image.

use super::{At, FigureError, flat_config, no_probes, probes};
use crate::ledger::{Entry, Ledger};
use crate::plot::{Figure, Series};

/// ‖∂L/∂h_{i,j}‖ over the image (the four scans' states at each pixel together), as log10 of
/// its share of the largest, at the first or last probe.
pub(super) fn grid(ledger: &Ledger, e: &Entry, at: At) -> Result<Figure, FigureError> {
    let probes = probes(ledger, e)?;
    let p = match at {
        At::Init => probes.first(),
        At::End => probes.last(),
    }
    .ok_or_else(|| no_probes(e))?;
    let not_grid = || FigureError::NotGrid {
        seq: e.seq,
        experiment: e.experiment.clone(),
    };
    if !matches!(
        flat_config(&e.config).get("model.kind").map(String::as_str),
        Some("\"mdlstm\"" | "\"rnn2d\"")
    ) {
        return Err(not_grid());
    }
    let map = crate::models::grid::pixel_map(&p.time).ok_or_else(not_grid)?;
    let side = crate::models::grid::square_side(map.len()).ok_or_else(not_grid)?;
    let max = map.iter().copied().fold(0.0, f64::max);
    let values = (0..side)
        .map(|r| {
            // Heatmap rows go upwards: the image's bottom row first.
            let row = side - 1 - r;
            (0..side)
                .map(|c| (map[row * side + c] / max).log10())
                .collect()
        })
        .collect();
    Ok(Figure::Heatmap {
        title: format!(
            "{}: log10 ‖∂L/∂h_ij‖ / its largest, step {}",
            e.experiment, p.step
        ),
        x_label: "image column".into(),
        y_label: "image row (1 = bottom)".into(),
        xs: (1..=side).map(|c| c as f64).collect(),
        ys: (1..=side).map(|r| r as f64).collect(),
        values,
        overlay: None,
    })
}

/// Inputs passed up to the history compressor's higher level per sequence, over training.
pub(super) fn levels(
    ledger: &Ledger,
    entries: &[&Entry],
    labels: &[String],
) -> Result<Figure, FigureError> {
    let mut series = Vec::new();
    let mut steps = 0;
    for (e, label) in entries.iter().zip(labels) {
        let probes = probes(ledger, e)?;
        let points: Vec<(f64, f64)> = probes
            .iter()
            .filter_map(|p| p.levels.as_ref().map(|l| (p.step as f64, l.passed_up)))
            .collect();
        if points.is_empty() {
            return Err(FigureError::NotChunker {
                seq: e.seq,
                experiment: e.experiment.clone(),
            });
        }
        steps = probes
            .iter()
            .find_map(|p| p.levels.as_ref().map(|l| l.steps))
            .unwrap_or(steps);
        series.push(Series {
            label: label.clone(),
            points,
        });
    }
    Ok(Figure::Curves {
        title: format!("inputs passed up to the higher level, of T = {steps}"),
        x_label: "step".into(),
        y_label: "inputs passed up per sequence".into(),
        series,
        dashed: Vec::new(),
        log_y: true,
    })
}
