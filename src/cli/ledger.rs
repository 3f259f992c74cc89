//! The ledger's command line: `gradlab ledger …`, `gradlab replay`, and recording a run.

use super::out::{out, outln};
use crate::experiment::Experiment;
use crate::ledger::export::{self, Format};
use crate::ledger::{
    self, Entry, Filter, Ledger, LedgerOptions, VerdictKind, render, replay as rp, store, time,
};
use crate::train::{Control, DeviceKind, Outcome, RunEnv, Status};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// Environment variable: largest weights object stored, in bytes (default 262144).
pub const WEIGHTS_CAP_ENV: &str = "GRADLAB_WEIGHTS_CAP";

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// The entries as a table: seq, start time, experiment, short config hash, status, final loss.
    List {
        /// Only entries of this experiment name.
        #[arg(long)]
        experiment: Option<String>,
        /// Only entries with this status: completed, diverged, interrupted or failed.
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        /// Only entries started at or after this UTC date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ).
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        /// The matching entries as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// One entry in full. ID is a seq number or a unique hash prefix.
    Show {
        id: String,
        /// The entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Two entries side by side: config differences, metric deltas, per-layer gradient profiles.
    Diff { a: String, b: String },
    /// Recompute every hash, check the chain, every object and every claim; exit 1 on any problem.
    Verify {
        /// A head published earlier (`gradlab ledger head`): the ledger must still contain it.
        #[arg(long)]
        head: Option<String>,
        /// Print the report as JSON (`ok`, `entries`, `objects`, `head`, and every problem
        /// with its `line` and `experiment`), for scripts and for comparing with another
        /// verifier (`tools/ledger-verify.py --json` prints the same shape).
        #[arg(long)]
        json: bool,
    },
    /// Print the head hash (the last entry's), to publish.
    Head,
    /// An entry's full trace (`json`: the JSON Lines verbatim, whose blake3 is the trace hash).
    Export {
        id: String,
        #[arg(long, value_enum)]
        format: Format,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Move a torn final line (an interrupted append) into a side file; touches nothing else.
    Repair,
    /// Fold ledgers made elsewhere into this one: every source verified first (one problem
    /// refuses the whole merge), objects copied, each new entry appended with its original
    /// hash and origin; entries already here are skipped.
    Merge {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Replay a seeded random sample of run entries and report (exit 1 unless all are EXACT).
    Audit {
        /// How many run entries to replay.
        #[arg(long)]
        sample: usize,
        /// Seed of the draw: the same ledger and seed draw the same entries.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Do not append the replays to the ledger.
        #[arg(long)]
        no_record: bool,
        /// `text` (default), `json`, or `markdown` (a table for a paper's supplement).
        #[arg(long, value_enum, default_value = "text")]
        format: AuditFormat,
    },
}

/// How `ledger audit` prints its report.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum AuditFormat {
    Text,
    Json,
    Markdown,
}

/// `gradlab replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// A seq number or a unique hash prefix.
    pub id: String,
    /// Do not append the replay entry.
    #[arg(long)]
    pub no_ledger: bool,
    /// Run on this device instead of the recorded one (warned about).
    #[arg(long, value_enum)]
    pub device: Option<DeviceKind>,
    /// Use this many worker threads instead of the recorded count (warned about).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
}

fn parse_status(s: &str) -> Result<Status, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        format!("'{s}' is not a status: use completed, diverged, interrupted or failed")
    })
}

fn parse_since(s: &str) -> Result<i64, String> {
    time::parse(s)
        .ok_or_else(|| format!("'{s}' is not a UTC date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"))
}

/// Writer settings from the environment (`GRADLAB_WEIGHTS_CAP`).
pub fn options() -> Result<LedgerOptions> {
    let mut o = LedgerOptions::default();
    if let Ok(v) = std::env::var(WEIGHTS_CAP_ENV) {
        o.weights_cap = v.parse().with_context(|| {
            format!("{WEIGHTS_CAP_ENV} = '{v}': must be a whole number of bytes")
        })?;
    }
    Ok(o)
}

/// Opens the ledger at `dir` with the writer settings from the environment.
pub fn open(dir: &Path) -> Result<Ledger> {
    Ok(Ledger::open_with(dir, options()?)?)
}

/// Opens the ledger a run will be recorded in and checks that it can take the entry, so a
/// ledger that cannot be written to stops the command before the first step, not after
/// the last.
pub fn open_for_run(dir: &Path) -> Result<Ledger> {
    let ledger = open(dir)?;
    store::check_appendable(dir).with_context(|| {
        format!(
            "the ledger {} cannot be written to, so the run would not be recorded \
             (use --no-ledger to run without recording)",
            dir.display()
        )
    })?;
    Ok(ledger)
}

/// Records a finished run with its tags and returns its entry, durable on disk.
pub fn record(
    ledger: &mut Ledger,
    exp: &Experiment,
    env: RunEnv,
    outcome: &Outcome,
    started: SystemTime,
    tags: &[String],
) -> Result<Entry> {
    let extra = ledger::Extra {
        tags: tags.to_vec(),
        ..ledger::Extra::default()
    };
    ledger
        .record(exp, env, outcome, started, extra)
        .map_err(|e| {
            let kept = keep_unrecorded(exp, outcome);
            anyhow::Error::new(e)
                .context(format!("the run finished but cannot be recorded; {kept}"))
        })
}

/// Saves the trace and weights of a run the ledger would not take, in the system's temp
/// folder, so the finished work survives; says where (or why not).
fn keep_unrecorded(exp: &Experiment, outcome: &Outcome) -> String {
    let stamp = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = std::env::temp_dir().join(format!(
        "gradlab-unrecorded-{}-{stamp}-{}",
        exp.hash().short(),
        std::process::id()
    ));
    let trace = base.with_extension("trace.jsonl");
    let weights = base.with_extension("weights.bin");
    match outcome
        .trace
        .save(&trace)
        .and_then(|()| std::fs::write(&weights, &outcome.weights))
    {
        Ok(()) => format!(
            "its trace is kept in {} and its weights in {}",
            trace.display(),
            weights.display()
        ),
        Err(e) => format!("keeping its trace in {} failed too: {e}", trace.display()),
    }
}

/// The line `gradlab run` prints once its entry is durable.
pub fn recorded_line(entry: &Entry, dir: &Path) -> String {
    format!(
        "recorded entry {} {} in {}",
        entry.seq,
        entry.short_hash(),
        dir.join(store::ENTRIES).display()
    )
}

/// A ledger that is read must exist: a mistyped `--ledger` would otherwise read as an empty,
/// valid ledger ("ok: 0 entries"). A folder without `entries.jsonl` is an empty ledger.
pub(super) fn existing(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!(
            "no ledger at {}: the folder does not exist (check --ledger or GRADLAB_LEDGER; \
             the first recorded run creates it)",
            dir.display()
        );
    }
    Ok(())
}

pub fn dispatch(dir: &Path, command: LedgerCommand) -> Result<ExitCode> {
    // Merging into a new folder makes it; every other command reads what is there.
    if !matches!(command, LedgerCommand::Merge { .. }) {
        existing(dir)?;
    }
    match command {
        LedgerCommand::List {
            experiment,
            status,
            since,
            json,
        } => {
            let filter = Filter {
                experiment,
                status,
                since,
            };
            if json {
                let ledger = open(dir)?;
                let rows: Vec<&Entry> = ledger
                    .entries()
                    .iter()
                    .filter(|e| filter.matches(e))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                // The table shows a few fields: read only those (every hash still checked).
                let all = ledger::row::read_rows(dir)?;
                let rows: Vec<&ledger::row::Row> =
                    all.iter().filter(|r| filter.matches_row(r)).collect();
                out!("{}", render::list(&rows, &ledger::row::seq_by_hash(&all)))?;
            }
        }
        LedgerCommand::Show { id, json } => {
            let ledger = open(dir)?;
            let e = ledger.find(&id)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(e)?)?;
            } else {
                out!("{}", render::show(e, ledger.entries()))?;
            }
        }
        LedgerCommand::Diff { a, b } => {
            let ledger = open(dir)?;
            out!("{}", render::diff(ledger.find(&a)?, ledger.find(&b)?))?;
        }
        LedgerCommand::Verify { head, json } => {
            let report = ledger::verify::verify_dir(dir, head.as_deref());
            if json {
                outln!("{}", serde_json::to_string(&report.to_json())?)?;
            } else {
                out!("{}", render::verify(&report, head.as_deref()))?;
            }
            return Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        LedgerCommand::Head => {
            let ledger = open(dir)?;
            let Some(head) = ledger.head() else {
                bail!("the ledger {} has no entries yet", dir.display());
            };
            outln!("{}", head.hash)?;
        }
        LedgerCommand::Export { id, format, out } => {
            let ledger = open(dir)?;
            let e = ledger.find(&id)?;
            // Streamed: the object is checked first (a damaged trace writes nothing, not
            // even the file), then converted as it decompresses.
            ledger.check_trace(e).map_err(anyhow::Error::from)?;
            let written = match &out {
                Some(path) => {
                    let mut f = std::fs::File::create(path)
                        .with_context(|| format!("writing {}", path.display()))?;
                    export::export_entry(&ledger, e, format, &mut f)
                }
                None => export::export_entry(&ledger, e, format, &mut super::out::Stdout),
            };
            match written {
                Ok(_) => {}
                Err(export::ExportError::Ledger(l)) => return Err(l.into()),
                Err(export::ExportError::Write(w)) => {
                    return Err(match &out {
                        Some(path) => {
                            anyhow::Error::from(w).context(format!("writing {}", path.display()))
                        }
                        None => super::out::OutputError(w).into(),
                    });
                }
            }
        }
        LedgerCommand::Repair => {
            let r = ledger::repair(dir)?;
            match &r.saved_to {
                Some(side) => outln!(
                    "removed a torn tail of {} bytes (saved in {}); {} entries remain",
                    r.removed,
                    side.display(),
                    r.lines
                )?,
                None => outln!("nothing to repair: {} entries, no torn tail", r.lines)?,
            }
        }
        LedgerCommand::Merge { dirs } => {
            let mut ledger = open(dir)?;
            let report = ledger::merge(&mut ledger, &dirs)?;
            for s in &report.sources {
                outln!(
                    "{}: {} entries verified (head {}), {} added, {} already here",
                    s.dir.display(),
                    s.entries,
                    s.head.as_deref().map_or("none", |h| &h[..12.min(h.len())]),
                    s.added,
                    s.present
                )?;
            }
            let head = ledger
                .head()
                .map_or(String::new(), |h| format!("; head {}", h.hash));
            outln!(
                "merged {} entries into {}{head}",
                report.added.len(),
                dir.join(store::ENTRIES).display()
            )?;
        }
        LedgerCommand::Audit {
            sample,
            seed,
            no_record,
            format,
        } => {
            let mut ledger = open(dir)?;
            let report = rp::audit(&mut ledger, sample, seed, !no_record, &mut |item| {
                for w in &item.warnings {
                    eprintln!("warning: entry {}: {w}", item.seq);
                }
            })?;
            out!(
                "{}",
                match format {
                    AuditFormat::Text => render::audit(&report),
                    AuditFormat::Json => render::audit_json(&report),
                    AuditFormat::Markdown => render::audit_markdown(&report),
                }
            )?;
            // 1 when anything did not reproduce (DIVERGED, or could not replay); CLOSE is 0.
            return Ok(if report.all_reproduced() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `gradlab replay ID`: warnings first, then the rerun, the verdict, and the replay entry.
/// Exit 0 for EXACT, 1 for DIVERGED.
pub fn replay(dir: &Path, args: ReplayArgs) -> Result<ExitCode> {
    existing(dir)?;
    let mut ledger = open(dir)?;
    let env = match (args.device, args.threads) {
        (None, None) => None,
        (device, threads) => {
            let e = ledger.find(&args.id)?;
            Some(RunEnv {
                device: device.unwrap_or(
                    DeviceKind::from_name(&e.execution.backend).unwrap_or(DeviceKind::Flex),
                ),
                threads: threads.map_or(e.execution.threads, usize::from),
                ..RunEnv::default()
            })
        }
    };
    let control = Control::new();
    super::stop_on_signals(&control)?;
    let options = rp::ReplayOptions {
        env,
        control: Some(control.clone()),
    };
    let plan = rp::plan(&ledger, &args.id, &options)?;
    plan.env.device.device().map_err(anyhow::Error::msg)?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(plan.experiment.spec().train.steps as u64);
        bar.set_message(format!("replaying entry {}", plan.original.seq));
        bar
    });
    let report = rp::run_plan(&ledger, plan, Some(control), &mut |step, _| {
        if let Some(bar) = &bar {
            bar.set_position(step as u64);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    out!("{}", render::replay(&report))?;
    if !args.no_ledger {
        let entry = ledger
            .record_replay(&report, Vec::new())
            .context("the replay finished but cannot be recorded")?;
        outln!("{}", recorded_line(&entry, dir))?;
    }
    // 0 EXACT, 1 DIVERGED, 3 CLOSE (reproduced, not bit for bit; 2 is an error).
    Ok(match report.verdict.result {
        VerdictKind::Exact => ExitCode::SUCCESS,
        VerdictKind::Diverged => ExitCode::from(1),
        VerdictKind::Close => ExitCode::from(3),
    })
}
