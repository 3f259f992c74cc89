//! `gradlab sweep`: run a grid of configs (or write one job line per point), then print the
//! per-point table.

use super::out::{out, outln};
use crate::experiment::Experiment;
use crate::sweep::{self, Options, Plan, Progress, jobs, parse_axis, summary};
use crate::train::{Control, Status};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `gradlab sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The base experiment file.
    pub file: PathBuf,
    /// A swept field: `field=v1,v2,…` or `field=start:stop:step`; one --set per axis.
    #[arg(long = "set", value_name = "FIELD=VALUES", required = true)]
    pub set: Vec<String>,
    /// Seeds per grid point: the file's seed and the next ones.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub seeds: u64,
    /// Override `train.steps` of every point (recorded as part of each config).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Points trained side by side, each on one backend thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Train points again even when the ledger already holds them.
    #[arg(long)]
    pub rerun: bool,
    /// Run nothing: write one `gradlab run` command line per point to FILE (for GNU
    /// parallel or a Slurm job array).
    #[arg(long, value_name = "FILE")]
    pub emit_jobs: Option<PathBuf>,
    /// With --emit-jobs: the folder holding each line's ledger `point-<i>` (default
    /// `sweep-<id>` beside the job-lines file).
    #[arg(long, value_name = "DIR", requires = "emit_jobs")]
    pub jobs_dir: Option<PathBuf>,
}

fn settings_text(settings: &[(String, String)]) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the sweep (or writes its job lines). Exit 0, 1 if a point failed, 130 if stopped.
pub fn sweep(ledger_dir: &Path, args: SweepArgs) -> Result<ExitCode> {
    let base = Experiment::load(&args.file)?;
    let axes = args
        .set
        .iter()
        .map(|s| parse_axis(s))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = Plan::new(&base, axes, args.seeds, args.steps)?;
    if let Some(out) = &args.emit_jobs {
        return emit(&plan, &args.file, out, args.jobs_dir.as_deref());
    }

    let control = Control::new();
    super::stop_on_signals(&control)?;
    let mut ledger = super::ledger::open_for_run(ledger_dir)?;
    let total = plan.points.len();
    let cells = total / plan.seeds as usize;
    eprintln!(
        "sweep {}: {cells} grid point(s) × {} seed(s) = {total} run(s), {} job(s)",
        plan.id, plan.seeds, args.jobs
    );
    let width = total.to_string().len();
    let mut count = 0;
    let mut failed = 0;
    let report = sweep::run::run(
        &mut ledger,
        &plan,
        Options {
            jobs: args.jobs as usize,
            rerun: args.rerun,
        },
        &control,
        &mut |p| {
            count += 1;
            let (index, line) = match p {
                Progress::Skipped { index, entry } => (
                    index,
                    format!("already in the ledger (entry {}), skipped", entry.seq),
                ),
                Progress::Recorded {
                    index,
                    entry,
                    outcome,
                } => {
                    failed += usize::from(entry.status == Status::Failed);
                    let loss = entry
                        .metrics
                        .train_loss
                        .map_or("-".into(), |l| format!("{l:.4}"));
                    (
                        index,
                        format!(
                            "{}, loss {loss}, entry {} ({:.1} s)",
                            entry.status.name(),
                            entry.seq,
                            outcome.wall_s
                        ),
                    )
                }
            };
            let point = &plan.points[index];
            eprintln!(
                "[{count:>width$}/{total}] {} seed {}: {line}",
                settings_text(&point.settings),
                point.seed
            );
        },
    )?;
    let rows = summary::rows(ledger.entries(), &plan);
    out!("{}", summary::table(&rows, &plan.axes))?;
    let mut tail = format!(
        "sweep {}: {} run, {} already in the ledger",
        plan.id, report.ran, report.skipped
    );
    if report.not_started > 0 {
        tail += &format!(", {} not started (stopped)", report.not_started);
    }
    outln!(
        "{tail}, {:.1} s; entries tagged sweep:{}",
        report.wall_s,
        plan.id
    )?;
    if plan.axes.len() == 2 {
        outln!(
            "heatmap: gradlab plot --sweep {} --out sweep-{}.png",
            plan.id,
            plan.id
        )?;
    }
    Ok(if control.stop_requested() {
        ExitCode::from(130)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--emit-jobs`: writes the command lines and says how to run and merge them.
fn emit(plan: &Plan, file: &Path, out: &Path, jobs_dir: Option<&Path>) -> Result<ExitCode> {
    let file = file
        .canonicalize()
        .with_context(|| format!("resolving {}", file.display()))?;
    let program = std::env::current_exe().context("finding the gradlab binary's path")?;
    let out_abs =
        std::path::absolute(out).with_context(|| format!("resolving {}", out.display()))?;
    let dir = match jobs_dir {
        Some(d) => std::path::absolute(d).with_context(|| format!("resolving {}", d.display()))?,
        None => out_abs
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf)
            .join(format!("sweep-{}", plan.id)),
    };
    let lines = jobs::lines(plan, &program, &file, &dir);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    outln!(
        "wrote {} job line(s) to {} (sweep {}); each writes its ledger to {}/point-<i>",
        lines.len(),
        out.display(),
        plan.id,
        dir.display()
    )?;
    outln!(
        "run them:   parallel --jobs 8 < {}   (or a Slurm array: see the README)",
        out.display()
    )?;
    outln!("then merge: gradlab ledger merge {}/point-*", dir.display())?;
    Ok(ExitCode::SUCCESS)
}
