//! Publication figures without Python: SVG or PNG, chosen by the output file's extension.
//!
//! Each figure is plain data (`Figure`), so the same drawing code serves ledger entries,
//! sweeps and tests. Text uses the DejaVu Sans font shipped in `data/fonts/` (embedded), so a
//! PNG looks the same on a machine without fonts.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const FONT: &[u8] = include_bytes!("../data/fonts/DejaVuSans.ttf");
const SIZE: (u32, u32) = (900, 600);

/// A named series of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One figure the lab can draw.
#[derive(Debug, Clone)]
pub enum Figure {
    /// ‖δ‖ (or ‖∂L/∂W‖) against layer index, log y; optionally the theory's prediction,
    /// dashed (one per measured series, in its colour; a single one in grey).
    DepthProfile {
        quantity: String,
        series: Vec<Series>,
        theory: Vec<Series>,
    },
    /// A quantity per layer over training steps, log y, one line per layer.
    OverTraining {
        title: String,
        quantity: String,
        series: Vec<Series>,
    },
    /// Loss against step (train and test lines), linear or log y.
    Loss {
        title: String,
        series: Vec<Series>,
        log_y: bool,
    },
    /// ‖∂L/∂h_t‖ against t for recurrent nets, log y.
    TimeProfile { series: Vec<Series> },
    /// Any curves over a whole-number x: solid lines, and dashed references (one alone is grey).
    Curves {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<Series>,
        dashed: Vec<Series>,
        log_y: bool,
    },
    /// A value over a grid (a sweep): `values[row][col]`, rows = y values, cols = x values;
    /// optionally a curve drawn over it (the theory's depth scale).
    Heatmap {
        title: String,
        x_label: String,
        y_label: String,
        xs: Vec<f64>,
        ys: Vec<f64>,
        values: Vec<Vec<f64>>,
        overlay: Option<Series>,
    },
}

/// A figure that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("'{0}': the output must end in .svg or .png")]
    Format(String),
    #[error("nothing to plot: {0}")]
    Empty(String),
    #[error("drawing failed: {0}")]
    Draw(String),
}

fn draw_err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

/// Writes `figure` to `out` (`.svg` or `.png`).
pub fn write(figure: &Figure, out: &Path) -> Result<(), PlotError> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    // Registering twice is harmless; the font is needed before any text is laid out.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    match ext.as_str() {
        "svg" => draw(SVGBackend::new(out, SIZE).into_drawing_area(), figure),
        "png" => draw(BitMapBackend::new(out, SIZE).into_drawing_area(), figure),
        _ => Err(PlotError::Format(out.display().to_string())),
    }
}

fn palette(i: usize) -> RGBColor {
    // Colour-blind-safe (Okabe–Ito), then repeats.
    const C: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 0, 0),
        RGBColor(240, 228, 66),
    ];
    C[i % C.len()]
}

/// The positive finite range of the y values, widened to whole decades.
fn log_range<'a>(series: impl Iterator<Item = &'a Series>) -> Result<(f64, f64), PlotError> {
    let ys: Vec<f64> = series
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if ys.is_empty() {
        return Err(PlotError::Empty(
            "no positive finite values for a log scale".into(),
        ));
    }
    let lo = ys.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().cloned().fold(0.0, f64::max);
    Ok((
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil().max(lo.log10().floor() + 1.0)),
    ))
}

fn x_range<'a>(series: impl Iterator<Item = &'a Series>) -> Result<(f64, f64), PlotError> {
    let xs: Vec<f64> = series
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|v| v.is_finite())
        .collect();
    if xs.is_empty() {
        return Err(PlotError::Empty("no points".into()));
    }
    let lo = xs.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    Ok((lo, if hi > lo { hi } else { lo + 1.0 }))
}

fn lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    dashed: &[Series],
    log_y: bool,
) -> Result<(), PlotError> {
    let all = || series.iter().chain(dashed);
    let (x0, x1) = x_range(all())?;
    let mut chart = ChartBuilder::on(root);
    chart
        .caption(title, ("sans-serif", 26))
        .margin(18)
        .x_label_area_size(48)
        .y_label_area_size(90);
    let style = |i: usize| ShapeStyle::from(&palette(i)).stroke_width(2);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            let sci = |v: &f64| {
                if log_y {
                    format!("{v:.0e}")
                } else {
                    format!("{v:.3}")
                }
            };
            // Every x here counts something (layers, steps, time steps): label whole numbers only.
            let int_x = |v: &f64| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            };
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .y_label_formatter(&sci)
                .x_label_formatter(&int_x)
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 18))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(draw_err)?;
            for (i, s) in series.iter().enumerate() {
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .cloned()
                    .filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), style(i)))
                    .map_err(draw_err)?
                    .label(s.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style(i)));
                if pts.len() <= 60 {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, palette(i).filled())))
                        .map_err(draw_err)?;
                }
            }
            for (i, t) in dashed.iter().enumerate() {
                let pts: Vec<(f64, f64)> = t
                    .points
                    .iter()
                    .cloned()
                    .filter(|p| p.1.is_finite() && p.1 > 0.0)
                    .collect();
                let colour = if dashed.len() == 1 {
                    RGBColor(60, 60, 60)
                } else {
                    palette(i)
                };
                let dash = ShapeStyle::from(&colour).stroke_width(2);
                chart
                    .draw_series(DashedLineSeries::new(pts, 8, 5, dash))
                    .map_err(draw_err)?
                    .label(t.label.clone())
                    // Two short strokes, so the legend reads as dashed like the line.
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (9, 0)], dash)
                            + PathElement::new(vec![(15, 0), (24, 0)], dash)
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 16))
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(draw_err)?;
        }};
    }
    if log_y {
        let (y0, y1) = log_range(all())?;
        body!(
            chart
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(draw_err)?
        );
    } else {
        let ys: Vec<f64> = all()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .collect();
        let lo = ys.iter().cloned().fold(f64::INFINITY, f64::min).min(0.0);
        let hi = ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        body!(
            chart
                .build_cartesian_2d(x0..x1, lo..(if hi > lo { hi * 1.05 } else { lo + 1.0 }))
                .map_err(draw_err)?
        );
    }
    Ok(())
}

fn heat_colour(t: f64) -> RGBColor {
    // viridis-like ramp, dark (low) to yellow (high)
    const STOPS: [(f64, (u8, u8, u8)); 5] = [
        (0.0, (68, 1, 84)),
        (0.25, (59, 82, 139)),
        (0.5, (33, 145, 140)),
        (0.75, (94, 201, 98)),
        (1.0, (253, 231, 37)),
    ];
    let t = t.clamp(0.0, 1.0);
    let i = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let (a, b) = (STOPS[i - 1], STOPS[i]);
    let f = (t - a.0) / (b.0 - a.0);
    let mix = |x: u8, y: u8| (x as f64 + f * (y as f64 - x as f64)).round() as u8;
    RGBColor(mix(a.1.0, b.1.0), mix(a.1.1, b.1.1), mix(a.1.2, b.1.2))
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: &Figure,
) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(draw_err)?;
    match figure {
        Figure::DepthProfile {
            quantity,
            series,
            theory,
        } => lines(
            &root,
            &format!("{quantity} by depth"),
            "layer (input side = 1)",
            quantity,
            series,
            theory,
            true,
        )?,
        Figure::OverTraining {
            title,
            quantity,
            series,
        } => lines(&root, title, "step", quantity, series, &[], true)?,
        Figure::Loss {
            title,
            series,
            log_y,
        } => lines(&root, title, "step", "loss", series, &[], *log_y)?,
        Figure::Curves {
            title,
            x_label,
            y_label,
            series,
            dashed,
            log_y,
        } => lines(&root, title, x_label, y_label, series, dashed, *log_y)?,
        Figure::TimeProfile { series } => lines(
            &root,
            "‖∂L/∂h_t‖ through time",
            "time step t",
            "‖∂L/∂h_t‖",
            series,
            &[],
            true,
        )?,
        Figure::Heatmap {
            title,
            x_label,
            y_label,
            xs,
            ys,
            values,
            overlay,
        } => {
            if xs.is_empty() || ys.is_empty() {
                return Err(PlotError::Empty("an empty grid".into()));
            }
            let finite: Vec<f64> = values
                .iter()
                .flatten()
                .cloned()
                .filter(|v| v.is_finite())
                .collect();
            let lo = finite.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = finite.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let (main, bar) = root.split_horizontally(SIZE.0 - 110);
            // The overlay is named in the caption: a legend box would hide cells.
            let caption = match overlay {
                Some(o) => format!("{title} (white: {})", o.label),
                None => title.clone(),
            };
            let mut chart = ChartBuilder::on(&main)
                .caption(caption, ("sans-serif", 24))
                .margin(18)
                .x_label_area_size(48)
                .y_label_area_size(70)
                .build_cartesian_2d(-0.5..xs.len() as f64 - 0.5, -0.5..ys.len() as f64 - 0.5)
                .map_err(draw_err)?;
            let fmt = |v: &[f64], i: f64| {
                v.get(i.round().max(0.0) as usize)
                    .map_or(String::new(), |x| format!("{x}"))
            };
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc(x_label.as_str())
                .y_desc(y_label.as_str())
                .x_labels(xs.len().min(12))
                .y_labels(ys.len().min(12))
                .x_label_formatter(&|x| fmt(xs, *x))
                .y_label_formatter(&|y| fmt(ys, *y))
                .label_style(("sans-serif", 15))
                .axis_desc_style(("sans-serif", 18))
                .draw()
                .map_err(draw_err)?;
            let span = if hi > lo { hi - lo } else { 1.0 };
            for (r, row) in values.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    let colour = if v.is_finite() {
                        heat_colour((v - lo) / span)
                    } else {
                        RGBColor(200, 0, 0)
                    };
                    let (x, y) = (c as f64, r as f64);
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                            colour.filled(),
                        )))
                        .map_err(draw_err)?;
                }
            }
            if let Some(o) = overlay {
                // Overlay points are in data units; map them onto the grid's index axes.
                let to_index = |v: f64, axis: &[f64]| -> f64 {
                    if axis.len() < 2 {
                        return 0.0;
                    }
                    let k = axis
                        .windows(2)
                        .position(|w| v <= w[1])
                        .unwrap_or(axis.len() - 2);
                    k as f64 + (v - axis[k]) / (axis[k + 1] - axis[k])
                };
                // Points off the grid (ξ → ∞ at the edge of chaos) split the curve: each
                // stretch on the grid is drawn on its own, never joined across the gap.
                let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                for p in &o.points {
                    let q = (to_index(p.0, xs), to_index(p.1, ys));
                    if p.1.is_finite() && q.1 >= -0.5 && q.1 <= ys.len() as f64 - 0.5 {
                        segments.last_mut().expect("never empty").push(q);
                    } else if !segments.last().expect("never empty").is_empty() {
                        segments.push(Vec::new());
                    }
                }
                let white = ShapeStyle::from(&WHITE).stroke_width(3);
                for seg in segments.into_iter().filter(|s| s.len() > 1) {
                    chart
                        .draw_series(LineSeries::new(seg, white))
                        .map_err(draw_err)?;
                }
            }
            // Colour bar with its range.
            let mut cb = ChartBuilder::on(&bar)
                .margin_top(60)
                .margin_bottom(66)
                .margin_right(10)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..1.0, lo..(if hi > lo { hi } else { lo + 1.0 }))
                .map_err(draw_err)?;
            cb.configure_mesh()
                .disable_mesh()
                .disable_x_axis()
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(draw_err)?;
            let steps = 64;
            cb.draw_series((0..steps).map(|i| {
                let (a, b) = (
                    lo + span * i as f64 / steps as f64,
                    lo + span * (i + 1) as f64 / steps as f64,
                );
                Rectangle::new(
                    [(0.0, a), (1.0, b)],
                    heat_colour(i as f64 / (steps - 1) as f64).filled(),
                )
            }))
            .map_err(draw_err)?;
        }
    }
    root.present().map_err(draw_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Figure {
        let s = |label: &str, k: f64| Series {
            label: label.into(),
            points: (1..=20).map(|l| (l as f64, k.powi(20 - l))).collect(),
        };
        Figure::DepthProfile {
            quantity: "‖δ‖".into(),
            series: vec![s("naive", 0.4), s("xavier", 0.98)],
            theory: vec![s("theory", 0.41)],
        }
    }

    #[test]
    fn writes_valid_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("p.svg");
        write(&profile(), &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
        assert!(
            text.contains("xavier") && text.contains("<polyline"),
            "labels and lines are drawn"
        );
        let png = dir.path().join("p.png");
        write(&profile(), &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(
            bytes.len() > 10_000,
            "a real picture, not a blank: {} bytes",
            bytes.len()
        );
    }

    #[test]
    fn rejects_unknown_formats_and_empty_data() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            write(&profile(), &dir.path().join("p.pdf")),
            Err(PlotError::Format(_))
        ));
        let empty = Figure::TimeProfile {
            series: vec![Series {
                label: "x".into(),
                points: vec![],
            }],
        };
        assert!(matches!(
            write(&empty, &dir.path().join("e.svg")),
            Err(PlotError::Empty(_))
        ));
    }

    #[test]
    fn heatmap_draws_every_cell() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("h.svg");
        let fig = Figure::Heatmap {
            title: "final loss".into(),
            x_label: "σ_w".into(),
            y_label: "depth".into(),
            xs: vec![0.5, 1.0, 1.5],
            ys: vec![5.0, 10.0],
            values: vec![vec![0.1, 0.2, f64::NAN], vec![0.3, 0.4, 0.5]],
            overlay: Some(Series {
                label: "ξ".into(),
                points: vec![(0.5, 5.0), (1.5, 10.0)],
            }),
        };
        write(&fig, &out).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.matches("<rect").count() >= 6 + 64,
            "cells and colour bar"
        );
    }
}
