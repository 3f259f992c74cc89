//! `gradlab plot`: publication figures from ledger entries and sweeps, as SVG or PNG.

use super::out::outln;
use crate::figures::{self, At, Kind, Quantity, Request};
use crate::plot::{self, PlotError};
use crate::sweep::Metric;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `gradlab plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Ledger entries: seq numbers or hash prefixes (none for --kind sweep).
    pub ids: Vec<String>,
    /// The figure file: .svg or .png.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// What to draw (default: depth, or sweep when --sweep is given).
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Depth profiles: draw the mean-field prediction (MLPs, ‖δ‖ at initialisation).
    #[arg(long)]
    pub theory: bool,
    /// Depth and layers figures: which gradient (default delta).
    #[arg(long, value_enum)]
    pub quantity: Option<Quantity>,
    /// Depth profiles: at initialisation or at the last probe (default init).
    #[arg(long, value_enum)]
    pub at: Option<At>,
    /// The sweep to draw (its id, as `gradlab sweep` printed it).
    #[arg(long, value_name = "ID")]
    pub sweep: Option<String>,
    /// Sweep heatmaps: the value shown per grid point (default loss).
    #[arg(long, value_enum)]
    pub metric: Option<Metric>,
}

pub fn plot(ledger_dir: &Path, args: PlotArgs) -> Result<ExitCode> {
    let ext = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    // Checked first, so a typo costs nothing.
    if !matches!(ext.as_deref(), Some("svg" | "png")) {
        return Err(PlotError::Format(args.out.display().to_string()).into());
    }
    // A folder that is not there is named now, not as the drawing library's error later.
    let folder = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        bail!(
            "cannot write {}: the folder {} does not exist",
            args.out.display(),
            folder.display()
        );
    }
    let kind = args.kind.unwrap_or(if args.sweep.is_some() {
        Kind::Sweep
    } else {
        Kind::Depth
    });
    let ledger = super::ledger::open(ledger_dir)?;
    let request = Request {
        kind,
        ids: args.ids,
        theory: args.theory,
        quantity: args.quantity,
        at: args.at,
        sweep: args.sweep,
        metric: args.metric,
    };
    let figure = figures::build(&ledger, &request)?;
    plot::write(&figure, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    outln!("wrote {} ({} figure)", args.out.display(), kind.name())?;
    Ok(ExitCode::SUCCESS)
}
