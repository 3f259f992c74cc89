//! The lesion study's figures (Veit, Wilber & Belongie 2016): test error against the number
//! of deleted blocks (their Fig. 5), and the gradient's share by path length (Fig. 6).

use super::FigureError;
use crate::ledger::{Entry, EntryKind, Ledger};
use crate::lesion::Summary;
use crate::plot::{Figure, Series};
use crate::train::TraceLine;

/// The lesion entry an ID stands for: itself, or a run's latest study.
fn study_of<'a>(ledger: &'a Ledger, e: &'a Entry) -> Result<&'a Entry, FigureError> {
    if e.kind == EntryKind::Lesion {
        return Ok(e);
    }
    ledger
        .entries()
        .iter()
        .rev()
        .find(|l| l.kind == EntryKind::Lesion && l.lesion_of.as_deref() == Some(&e.hash))
        .ok_or_else(|| FigureError::NoLesion {
            seq: e.seq,
            experiment: e.experiment.clone(),
        })
}

/// A study's summary and its task's classes (for the chance line), from its trace.
fn summary(ledger: &Ledger, e: &Entry) -> Result<(Summary, Option<usize>), FigureError> {
    let lines = ledger.load_trace(study_of(ledger, e)?)?;
    let classes = lines.iter().find_map(|l| match l {
        TraceLine::Header(h) => h.lesion.as_ref().and_then(|s| s.classes),
        _ => None,
    });
    Ok((Summary::from_trace(&lines), classes))
}

/// Mean test error per k (k = 0 the intact net), one line per study, chance dashed.
pub(super) fn lesion(
    ledger: &Ledger,
    entries: &[&Entry],
    labels: &[String],
) -> Result<Figure, FigureError> {
    let mut series = Vec::new();
    let mut chance = None;
    for (e, label) in entries.iter().zip(labels) {
        let (s, classes) = summary(ledger, e)?;
        let mut points = vec![(0.0, s.intact)];
        points.extend(s.by_k.iter().map(|k| (k.k as f64, k.mean)));
        series.push(Series {
            label: label.clone(),
            points,
        });
        chance = chance.or_else(|| classes.map(|c| 1.0 - 1.0 / c as f64));
    }
    let dashed = chance
        .map(|c| {
            let top = series
                .iter()
                .flat_map(|s| s.points.last())
                .map(|p| p.0)
                .fold(1.0, f64::max);
            vec![Series {
                label: format!("chance ({c:.2})"),
                points: vec![(0.0, c), (top, c)],
            }]
        })
        .unwrap_or_default();
    Ok(Figure::Curves {
        title: "test error after deleting k units at test time".into(),
        x_label: "units deleted k".into(),
        y_label: "test error".into(),
        series,
        dashed,
        log_y: false,
    })
}

/// The share of ‖∂L/∂h_0‖ carried by paths of each length, one line per study.
pub(super) fn paths(
    ledger: &Ledger,
    entries: &[&Entry],
    labels: &[String],
) -> Result<Figure, FigureError> {
    let mut series = Vec::new();
    for (e, label) in entries.iter().zip(labels) {
        let (s, _) = summary(ledger, e)?;
        if s.paths.is_empty() {
            return Err(FigureError::NoPaths {
                seq: e.seq,
                experiment: e.experiment.clone(),
            });
        }
        let peak = s.paths_peak().map_or(0, |p| p.0);
        series.push(Series {
            label: format!("{label} (peak k = {peak} of {})", s.paths.len() - 1),
            points: s.paths.iter().map(|p| (p.k as f64, p.share)).collect(),
        });
    }
    Ok(Figure::Curves {
        title: "gradient magnitude by path length".into(),
        x_label: "residual branches on the path k".into(),
        y_label: "share of ‖∂L/∂h₀‖".into(),
        series,
        dashed: Vec::new(),
        log_y: false,
    })
}
