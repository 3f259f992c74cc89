//! The command line: clap definitions and the dispatch from each subcommand to the library.

pub mod ledger;
pub mod lesion;
pub mod out;
pub mod plot;
pub mod sweep;

use out::{out, outln};

use crate::experiment::{ConfigError, Experiment, Overrides};
use crate::headless;
use crate::train::{self, Control, DeviceKind, Outcome, RunEnv, Status};
use crate::tui;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The experiment `make run` and a bare `gradlab` without a terminal start.
pub const DEFAULT_EXPERIMENT: &str = "experiments/tanh-naive-20.toml";
/// The folder the Experiments screen lists.
pub const EXPERIMENTS_DIR: &str = "experiments";

#[derive(Parser, Debug)]
#[command(
    name = "gradlab",
    version,
    about = "A terminal lab for the vanishing and exploding gradient problem"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Ledger folder (default `ledger/`).
    #[arg(long, global = true, env = "GRADLAB_LEDGER", default_value = "ledger")]
    pub ledger: PathBuf,
}

/// Options shared by everything that trains.
#[derive(clap::Args, Debug, Clone)]
pub struct EnvArgs {
    /// Engine: `portable` (the same bits on every CPU) where it covers the run, else `cpu`.
    #[arg(long, value_enum, default_value = "portable")]
    pub device: DeviceKind,
    /// CPU worker threads (1 is the exact, recorded default).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

impl EnvArgs {
    pub fn env(&self) -> RunEnv {
        RunEnv {
            device: self.device,
            threads: self.threads as usize,
            ..RunEnv::default()
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train an experiment (the terminal UI when stdout is a terminal, else headless).
    Run {
        file: PathBuf,
        /// No terminal UI: progress on stderr, summary table on stdout.
        #[arg(long)]
        headless: bool,
        /// Write the full trace as JSON Lines.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Override `train.steps` (recorded as part of the config).
        #[arg(long)]
        steps: Option<usize>,
        /// Override `experiment.seed` (recorded as part of the config).
        #[arg(long)]
        seed: Option<u64>,
        /// Set a config field, e.g. `model.depth=30` (repeatable; part of the recorded config,
        /// applied before --steps and --seed).
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// A label for the ledger entry (repeatable); sweep job lines tag their runs.
        #[arg(long = "tag", value_name = "TAG")]
        tag: Vec<String>,
        /// Do not record the run in the ledger.
        #[arg(long)]
        no_ledger: bool,
        /// Run even if the config's least memory need exceeds this machine's memory.
        #[arg(long)]
        ignore_memory: bool,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Mean-field prediction at initialisation next to the measurement: ‖δ‖ per layer (MLPs,
    /// DBNs, residual nets) or ‖∂L/∂h_t‖ per time step (RNNs, LSTMs).
    Theory {
        file: PathBuf,
        /// The table as one JSON object: model, theory, and per row name, predicted and
        /// measured ratio (or the reason there is no prediction).
        #[arg(long, conflicts_with = "grid")]
        json: bool,
        /// Average the measurement over this many seeds (the file's seed and the next ones).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        seeds: u64,
        /// The phase diagram instead: `--grid sigma_w=0.5:4:0.1 --grid sigma_b=0:1:0.05`
        /// (start:stop:step or a list), χ* over the plane with the order–chaos line.
        #[arg(long, value_name = "FIELD=VALUES")]
        grid: Vec<String>,
        /// With --grid: also draw the plane (log10 χ* with the order–chaos line) to this .svg
        /// or .png.
        #[arg(long, value_name = "FILE", requires = "grid")]
        out: Option<PathBuf>,
    },
    /// Inspect and check the ledger of runs.
    Ledger {
        #[command(subcommand)]
        command: ledger::LedgerCommand,
    },
    /// Rerun a ledger entry and compare it bit for bit with its record (exit 1 if DIVERGED).
    Replay(ledger::ReplayArgs),
    /// Lesion study of a trained mlp or resnet entry (Veit et al. 2016): delete each block or
    /// layer, then k at random, at test time; for residual nets the gradient by path length.
    /// Recorded as a `lesion` entry tied to the trained one (replayable).
    Lesion(lesion::LesionArgs),
    /// Time the real training step on the peer benchmarks' workloads (JSON lines; see
    /// `make bench-peers`).
    #[command(hide = true)]
    BenchStep {
        /// Comma-separated: w1, w1_noprobe, w2, w2_noprobe, lstm, rnn.
        #[arg(long, default_value = "w1,w1_noprobe,w2,w2_noprobe,lstm,rnn")]
        workloads: String,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Engine to time (`flex` is the op-by-op reference path).
        #[arg(long, value_enum, default_value = "portable")]
        device: DeviceKind,
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Seconds per repetition.
        #[arg(long, default_value_t = 1.5)]
        rep_seconds: f64,
    },
    /// GFLOP/s of the portable engine's product kernel and of the `gemm` crate's (JSON lines;
    /// `make bench-peers` puts numpy's, PyTorch's and JAX's beside them).
    #[command(hide = true)]
    BenchSgemm {
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Run a grid of configs (`--set field=values` per axis), every point a tagged ledger entry.
    Sweep(sweep::SweepArgs),
    /// Draw a figure (SVG or PNG) from ledger entries or a sweep.
    Plot(plot::PlotArgs),
    /// Validate experiment files and print each canonical hash.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the canonical form instead of the hash (one file).
        #[arg(long)]
        canonical: bool,
        /// Accept configs whose least memory need exceeds this machine's memory.
        #[arg(long)]
        ignore_memory: bool,
    },
}

/// Parses the process arguments, runs, and maps the result to an exit code
/// (0 success, 1 a failed run or check, 2 bad input, 74 the disk, the ledger or an output
/// failed, 130 interrupted).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(error_code(&e))
        }
    }
}

/// The σ_w and σ_b values of `theory --grid` (each defaults to the one value of the file's
/// usual range when not given).
fn phase_axes(grid: &[String]) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut w, mut b) = (None, None);
    for arg in grid {
        let axis = crate::sweep::grid::parse_axis(arg)?;
        let values: Vec<f64> = axis
            .values
            .iter()
            .map(|v| v.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow::anyhow!("--grid '{arg}': the values must be numbers"))?;
        if values
            .iter()
            .any(|v| !v.is_finite() || *v < 0.0 || *v > 100.0)
        {
            anyhow::bail!("--grid '{arg}': σ values must be between 0 and 100");
        }
        match axis.field.trim_start_matches("model.") {
            "sigma_w" => w = Some(values),
            "sigma_b" => b = Some(values),
            other => anyhow::bail!(
                "--grid '{arg}': '{other}' is not an axis (allowed: sigma_w, sigma_b)"
            ),
        }
    }
    let w = w.unwrap_or_else(|| (5..=40).map(|i| i as f64 / 10.0).collect());
    let b = b.unwrap_or_else(|| (0..=20).map(|i| i as f64 / 20.0).collect());
    Ok((w, b))
}

/// sysexits' EX_IOERR: what went wrong is not the input but reading or writing.
pub const IO_FAILED: u8 = 74;

/// The exit code of an error, from the first typed cause in its chain: bad input (a config,
/// an ID, a device this build lacks, anything untyped such as a missing folder) is 2; a
/// ledger that cannot be read or written, a damaged ledger, or an output that failed (a full
/// disk, an unwritable file) is 74, so a script can tell "fix the command" from "fix the
/// machine" — a finished run whose entry cannot be written is the latter.
pub fn error_code(e: &anyhow::Error) -> u8 {
    use crate::ledger::LedgerError as L;
    for cause in e.chain() {
        if cause.is::<ConfigError>() {
            return 2;
        }
        if let Some(t) = cause.downcast_ref::<crate::train::TrainError>() {
            return if t.is_bad_input() { 2 } else { 1 };
        }
        if let Some(l) = cause.downcast_ref::<L>() {
            return match l {
                L::Io { .. }
                | L::TornTail { .. }
                | L::BadEntry { .. }
                | L::Object { .. }
                | L::Trace { .. } => IO_FAILED,
                _ => 2,
            };
        }
        if cause.is::<out::OutputError>() || cause.is::<std::io::Error>() {
            return IO_FAILED;
        }
    }
    2
}

/// An error and its causes joined by `: ` (anyhow's `{:#}`), leaving out a cause whose text
/// the message before it already holds: many of our errors quote their source in their
/// own message, and the user should read "No such file or directory" once.
pub fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
    }
    text
}

/// Loads a file, applies `--set` settings, then `--steps`/`--seed`: the order sweeps use, so
/// a sweep's job line reproduces its point's config hash.
fn load(file: &Path, set: &[String], overrides: Overrides) -> Result<Experiment> {
    let settings = set
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--set '{s}': expected field=value, e.g. model.depth=30"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Experiment::load(file)?
        .with_settings(&settings)?
        .with_overrides(overrides)?)
}

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    // A bare `gradlab` in a terminal opens the Experiments screen.
    if cli.command.is_none() && std::io::stdout().is_terminal() {
        let start = tui::Start::Browse(PathBuf::from(EXPERIMENTS_DIR));
        return run_tui(
            start,
            RunEnv::default(),
            None,
            Some(cli.ledger.as_path()),
            &[],
        );
    }
    let command = cli.command.unwrap_or_else(|| Command::Run {
        file: PathBuf::from(DEFAULT_EXPERIMENT),
        headless: false,
        trace: None,
        steps: None,
        seed: None,
        set: Vec::new(),
        tag: Vec::new(),
        no_ledger: false,
        ignore_memory: false,
        env: EnvArgs {
            device: DeviceKind::Portable,
            threads: 1,
        },
    });
    match command {
        Command::Check {
            files,
            canonical,
            ignore_memory,
        } => check(&files, canonical, ignore_memory),
        Command::Theory {
            file,
            json,
            seeds,
            grid,
            out,
        } => {
            let exp = Experiment::load(&file)?;
            if json {
                let v = crate::theory::report_json(&exp, seeds)?;
                outln!("{v}")?;
            } else if grid.is_empty() {
                out!("{}", crate::theory::report(&exp, seeds)?)?;
            } else {
                let (w, b) = phase_axes(&grid)?;
                if let Some(path) = &out {
                    let figure = crate::figures::phase_plane(&exp, &w, &b);
                    crate::plot::write(&figure, path)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                out!("{}", crate::theory::phase_diagram(&exp, &w, &b))?;
                if let Some(path) = &out {
                    outln!("wrote {}", path.display())?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ledger { command } => ledger::dispatch(&cli.ledger, command),
        Command::Replay(args) => ledger::replay(&cli.ledger, args),
        Command::Lesion(args) => lesion::lesion(&cli.ledger, args),
        Command::BenchStep {
            workloads,
            threads,
            device,
            reps,
            rep_seconds,
        } => {
            let env = RunEnv {
                device,
                threads,
                ..RunEnv::default()
            };
            train::init_threads(threads);
            for name in workloads
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
            {
                match crate::bench::workload(name) {
                    Some(exp) => outln!(
                        "{}",
                        crate::bench::measure(name, &exp, env, reps, rep_seconds)
                    )?,
                    None => eprintln!(
                        "gradlab bench-step: workload '{name}' is not available in this build"
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchSgemm { threads, reps } => {
            train::init_threads(threads);
            for shape in crate::bench::SGEMM_SHAPES {
                for portable in [true, false] {
                    outln!("{}", crate::bench::sgemm(portable, shape, threads, reps))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep(args) => sweep::sweep(&cli.ledger, args),
        Command::Plot(args) => plot::plot(&cli.ledger, args),
        Command::Run {
            file,
            headless,
            trace,
            steps,
            seed,
            set,
            tag,
            no_ledger,
            ignore_memory,
            env,
        } => {
            let exp = load(&file, &set, Overrides { steps, seed })?;
            if !ignore_memory {
                fits(&exp, &file)?;
            }
            if let Some(bad) = tag
                .iter()
                .find(|t| t.is_empty() || t.chars().any(char::is_control))
            {
                anyhow::bail!(
                    "--tag '{bad}': a tag is a non-empty label without control characters"
                );
            }
            let headless = headless || !std::io::stdout().is_terminal();
            let ledger = (!no_ledger).then_some(cli.ledger.as_path());
            if !headless {
                let start = tui::Start::Run {
                    experiment: Box::new(exp),
                    dir: PathBuf::from(EXPERIMENTS_DIR),
                };
                return run_tui(start, env.env(), trace.as_deref(), ledger, &tag);
            }
            run_headless(&exp, env.env(), trace.as_deref(), ledger, &tag)
        }
    }
}

/// Refuses a config whose least memory need (see `experiment::memory`) exceeds this
/// machine's memory: it could only abort part way, unrecorded.
fn fits(exp: &Experiment, file: &Path) -> Result<()> {
    use crate::experiment::memory;
    let need = memory::estimate(exp.spec());
    match memory::machine_memory() {
        Some(have) if need.total() > have => anyhow::bail!(
            "{}: needs at least {} of memory ({} for the parameters, their gradients and \
             optimiser state, {} for one batch's activations), and this machine has {}: make \
             the model, batch or sequence smaller, or pass --ignore-memory",
            file.display(),
            memory::gib(need.total()),
            memory::gib(need.parameters),
            memory::gib(need.activations),
            memory::gib(have)
        ),
        _ => Ok(()),
    }
}

fn check(files: &[PathBuf], canonical: bool, ignore_memory: bool) -> Result<ExitCode> {
    if canonical {
        anyhow::ensure!(files.len() == 1, "--canonical takes exactly one file");
        out!("{}", Experiment::load(&files[0])?.canonical())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut bad = 0;
    for f in files {
        let checked = Experiment::load(f)
            .map_err(anyhow::Error::from)
            .and_then(|exp| {
                if !ignore_memory {
                    fits(&exp, f)?;
                }
                Ok(exp)
            });
        match checked {
            Ok(exp) => outln!("{}  {}", exp.hash(), f.display())?,
            Err(e) => {
                eprintln!("error: {}", chain(&e));
                bad += 1;
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Stops the run cooperatively on SIGINT, SIGTERM and SIGHUP (a dropped SSH link), so it is
/// still recorded.
fn stop_on_signals(control: &Control) -> Result<()> {
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, control.stop_flag())
            .context("installing a signal handler")?;
    }
    Ok(())
}

fn run_headless(
    exp: &Experiment,
    env: RunEnv,
    trace: Option<&Path>,
    ledger: Option<&Path>,
    tags: &[String],
) -> Result<ExitCode> {
    env.device.device().map_err(anyhow::Error::msg)?;
    train::init_threads(env.threads);
    let control = Control::new();
    stop_on_signals(&control)?;
    // Open the ledger first, so a damaged or read-only one is reported before the run
    // rather than after.
    let mut book = ledger.map(ledger::open_for_run).transpose()?;
    let started = std::time::SystemTime::now();
    let outcome = headless::run(exp, env, control);
    // The record comes first: nothing that follows (a bad trace path, a closed pipe, a full
    // disk) may cost it.
    let recorded = match &mut book {
        Some(book) => {
            let entry = ledger::record(book, exp, env, &outcome, started, tags)?;
            Some(ledger::recorded_line(&entry, book.dir()))
        }
        None => None,
    };
    let report = || -> Result<()> {
        if let Some(path) = trace {
            outcome
                .trace
                .save(path)
                .with_context(|| format!("writing the trace to {}", path.display()))?;
        }
        out!("{}", headless::summary(&outcome))?;
        if let Some(line) = &recorded {
            outln!("{line}")?;
        }
        Ok(())
    };
    match (report(), &recorded) {
        (Ok(()), _) => Ok(exit_code(outcome.end.status)),
        (Err(e), Some(line)) => Err(e.context(format!("the run is safe ({line})"))),
        (Err(e), None) => Err(e),
    }
}

/// The terminal UI; every run it starts is recorded through `record` when it ends. Prints
/// the last run's summary on the normal screen after the UI is gone.
fn run_tui(
    start: tui::Start,
    env: RunEnv,
    trace: Option<&Path>,
    ledger: Option<&Path>,
    tags: &[String],
) -> Result<ExitCode> {
    env.device.device().map_err(anyhow::Error::msg)?;
    train::init_threads(env.threads);
    let browsing = matches!(start, tui::Start::Browse(_));
    // Opened and checked before the UI starts, so a damaged or read-only ledger is reported
    // on the normal screen before any run.
    let mut book = ledger.map(ledger::open_for_run).transpose()?;
    let mut record = |exp: &Experiment, outcome: &Outcome| -> Result<tui::Recorded> {
        let (mut note, seq) = match &mut book {
            Some(book) => {
                let started = std::time::SystemTime::now()
                    - std::time::Duration::from_secs_f64(outcome.wall_s);
                let entry = ledger::record(book, exp, env, outcome, started, tags)?;
                (ledger::recorded_line(&entry, book.dir()), Some(entry.seq))
            }
            None => ("not recorded (--no-ledger)".to_string(), None),
        };
        if let Some(path) = trace {
            outcome
                .trace
                .save(path)
                .with_context(|| format!("writing the trace to {}", path.display()))?;
            note += &format!("; trace written to {}", path.display());
        }
        Ok(tui::Recorded { line: note, seq })
    };
    let at = ledger
        .map(|dir| ledger::options().map(|o| tui::LedgerAt::new(dir, o)))
        .transpose()?;
    let ended = tui::run(start, env, at, &mut record)?;
    if let Some(f) = &ended.last {
        outln!("{}", f.summary)?;
    }
    Ok(match ended.last {
        // A signal ends the session as it ends a headless run, whatever was on screen.
        _ if ended.signalled => exit_code(Status::Interrupted),
        Some(f) if !browsing => exit_code(f.status),
        _ => ExitCode::SUCCESS,
    })
}

/// The exit code of a run: a diverged run is a result, not an error.
pub fn exit_code(status: Status) -> ExitCode {
    match status {
        Status::Completed | Status::Diverged => ExitCode::SUCCESS,
        Status::Interrupted => ExitCode::from(130),
        Status::Failed => ExitCode::from(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LedgerError;

    #[test]
    fn errors_map_to_bad_input_or_io_by_their_typed_cause() {
        let io = || std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left");
        let ledger_io = anyhow::Error::new(LedgerError::Io {
            dir: "L".into(),
            source: io(),
        })
        .context("the run finished but cannot be recorded");
        assert_eq!(error_code(&ledger_io), IO_FAILED);
        assert_eq!(
            error_code(&anyhow::Error::new(io()).context("writing x.svg")),
            IO_FAILED
        );
        let bad_id = anyhow::Error::new(LedgerError::NotFound {
            id: "9".into(),
            count: 1,
        });
        assert_eq!(error_code(&bad_id), 2);
        let config =
            Experiment::parse("[model]\ndepth = \"x\"\n", Path::new("x.toml")).unwrap_err();
        assert_eq!(error_code(&anyhow::Error::new(config)), 2);
        let device = crate::train::TrainError::DeviceMissing { device: "cuda" };
        assert_eq!(error_code(&anyhow::Error::new(device)), 2);
        assert_eq!(error_code(&anyhow::anyhow!("no ledger at L")), 2);
    }
}
