//! `gradlab lesion ID`: delete blocks (or layers) of a trained entry at test time and weigh
//! its gradient by path length; the table or JSON on stdout, the study in the ledger.

use super::ledger::{existing, open, recorded_line};
use super::out::{out, outln};
use crate::ledger::lesion::{self as ls, LesionReport};
use crate::lesion::{Options, Summary};
use anyhow::{Context, Result};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// `gradlab lesion`.
#[derive(clap::Args, Debug)]
pub struct LesionArgs {
    /// The trained entry: a seq number or a hash prefix.
    pub id: String,
    /// Random lesions per number of deleted units k ≥ 2 (all of them when there are fewer).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub draws: u64,
    /// Random paths sampled per path length (residual nets).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub path_draws: u64,
    /// The result as one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Do not record the study in the ledger.
    #[arg(long)]
    pub no_ledger: bool,
}

pub fn lesion(dir: &Path, args: LesionArgs) -> Result<ExitCode> {
    existing(dir)?;
    let mut ledger = open(dir)?;
    let options = Options {
        draws: args.draws as usize,
        path_draws: args.path_draws as usize,
    };
    let report = ls::lesion(&ledger, &args.id, options)?;
    // Recorded before anything is printed: a closed or full stdout cannot cost the study.
    let recorded = if args.no_ledger {
        None
    } else {
        Some(
            ledger
                .record_lesion(&report, Vec::new())
                .context("the lesion study finished but cannot be recorded")?,
        )
    };
    let summary = report.study.summary();
    if args.json {
        let mut v = to_json(&report, &summary);
        if let Some(e) = &recorded {
            v["recorded"] = json!({"seq": e.seq, "hash": e.hash});
        }
        outln!("{v}")?;
    } else {
        out!("{}", table(&report, &summary))?;
        if let Some(e) = &recorded {
            outln!("{}", recorded_line(e, dir))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn unit_word(report: &LesionReport) -> &'static str {
    if report.study.paths.is_empty() {
        "layer"
    } else {
        "block"
    }
}

/// The study as a table: the intact net, each unit alone, k at random, and the paths.
pub fn table(report: &LesionReport, s: &Summary) -> String {
    let study = &report.study;
    let unit = unit_word(report);
    let mut t = format!(
        "lesion study of entry {} ({}, {} {unit}s that can be deleted; {} test examples)\n",
        report.parent.seq,
        report.experiment.name(),
        study.units.len(),
        study.spec.examples
    );
    let _ = writeln!(t, "intact net: test error {:.4}", s.intact);
    let _ = writeln!(t, "\neach {unit} deleted alone:");
    for (name, error) in &s.singles {
        let _ = writeln!(t, "  {name:<8} {error:.4}");
    }
    let _ = writeln!(
        t,
        "\n{:>3}  {:>7}  {:>10}  {:>8}  {:>8}",
        "k", "lesions", "mean error", "min", "max"
    );
    for k in &s.by_k {
        let _ = writeln!(
            t,
            "{:>3}  {:>7}  {:>10.4}  {:>8.4}  {:>8.4}",
            k.k, k.count, k.mean, k.min, k.max
        );
    }
    if let Some((peak, median)) = s.paths_peak() {
        let _ = writeln!(
            t,
            "\neffective paths: the gradient reaching h_0 by path length k (of {}): peak at \
             k = {peak}, half of it through paths of k ≤ {median}",
            study.units.len()
        );
        let _ = writeln!(
            t,
            "{:>3}  {:>10}  {:>12}  {:>7}",
            "k", "paths", "|grad|/path", "share"
        );
        for p in &s.paths {
            let _ = writeln!(
                t,
                "{:>3}  {:>10.3e}  {:>12.3e}  {:>7.4}",
                p.k, p.paths, p.mean, p.share
            );
        }
    }
    t
}

/// The study as one JSON object.
pub fn to_json(report: &LesionReport, s: &Summary) -> serde_json::Value {
    let (peak, median) = s.paths_peak().unzip();
    json!({
        "entry": {"seq": report.parent.seq, "hash": report.parent.hash},
        "experiment": report.experiment.name(),
        "model": report.experiment.spec().model.kind.name(),
        "units": report.study.units,
        "examples": report.study.spec.examples,
        "intact": s.intact,
        "singles": s.singles.iter().map(|(u, e)| json!({"unit": u, "error": e})).collect::<Vec<_>>(),
        "by_k": s.by_k.iter().map(|k| json!({
            "k": k.k, "count": k.count, "mean": k.mean, "min": k.min, "max": k.max
        })).collect::<Vec<_>>(),
        "paths": s.paths,
        "paths_peak": peak,
        "paths_median": median,
    })
}
