//! Replay: rerun an entry's embedded config in its recorded environment and compare the
//! trace and weights with the stored ones; EXACT, or the first step, quantity and layer
//! where they part. Audit: replay a seeded random sample of entries.

pub use super::compare::{CLOSE_ACCURACY, CLOSE_FIRST, CLOSE_LOSS, compare, conclusions_hold};
use super::entry::{Difference, Entry, EntryKind, Verdict, VerdictKind};
use super::{Ledger, LedgerError, environment, object};
use crate::experiment::Experiment;
use crate::rng::Stream;
use crate::train::{self, Control, DeviceKind, Event, Outcome, RunEnv, TraceFormat};
use std::sync::Arc;
use std::time::SystemTime;

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Run here instead of the entry's recorded device and thread count (warned about).
    pub env: Option<RunEnv>,
    /// Lets the caller stop the rerun (it is then compared as far as it got).
    pub control: Option<Arc<Control>>,
}

/// What will be rerun and what differs from the original's circumstances.
#[derive(Debug, Clone)]
pub struct Plan {
    pub original: Entry,
    pub experiment: Experiment,
    pub env: RunEnv,
    /// Differences in code identity, backend, threads or host: reasons a replay may not be
    /// exact that have nothing to do with the record being wrong.
    pub warnings: Vec<String>,
    /// Why this machine may take other kernel paths than the recording one (another CPU
    /// feature set, OS or architecture); None when they agree.
    pub machine: Option<String>,
}

/// The result of a replay.
#[derive(Debug)]
pub struct ReplayReport {
    pub original: Entry,
    pub experiment: Experiment,
    pub env: RunEnv,
    pub started: SystemTime,
    /// The rerun's own outcome (recorded as the replay entry).
    pub outcome: Outcome,
    pub verdict: Verdict,
    /// Every differing trace-header field (the config hash, thread count, …).
    pub header_differences: Vec<Difference>,
    pub warnings: Vec<String>,
    /// As [`Plan::machine`].
    pub machine: Option<String>,
}

/// The trace format of an entry, from its stored trace's header.
fn trace_format(ledger: &Ledger, e: &Entry) -> Result<TraceFormat, LedgerError> {
    let trace = ledger.load_trace_bytes(e)?;
    let first = trace.split(|&b| b == b'\n').next().unwrap_or_default();
    let format = serde_json::from_slice::<serde_json::Value>(first)
        .ok()
        .and_then(|h| h.get("format").and_then(|f| f.as_str()).map(str::to_string))
        .unwrap_or_default();
    TraceFormat::from_name(&format).ok_or_else(|| LedgerError::Trace {
        seq: e.seq,
        message: format!(
            "its format '{format}' is unknown to this build (it knows gradlab-trace/1 and /2)"
        ),
    })
}

/// Finds the entry, rebuilds its experiment and environment, and lists the warnings.
pub fn plan(ledger: &Ledger, id: &str, options: &ReplayOptions) -> Result<Plan, LedgerError> {
    let original = ledger.find(id)?.clone();
    let seq = original.seq;
    let experiment = Experiment::from_canonical(&original.config)
        .map_err(|source| LedgerError::Config { seq, source })?;
    let mut warnings = Vec::new();
    if experiment.hash() != &original.config_hash {
        warnings.push(format!(
            "the embedded config re-canonicalises to {} under this build, the entry says {}",
            experiment.hash().short(),
            original.config_hash.short()
        ));
    }
    let backend = original.execution.backend.as_str();
    let recorded = DeviceKind::from_name(backend).ok_or_else(|| LedgerError::Backend {
        seq,
        backend: backend.to_string(),
    })?;
    let mut env = options.env.unwrap_or(RunEnv {
        device: recorded,
        threads: original.execution.threads,
        ..RunEnv::default()
    });
    // The data and init path is the entry's own, whatever engine the replay runs on.
    env.streams = original
        .seeds
        .streams_version()
        .ok_or_else(|| LedgerError::Streams {
            seq,
            version: original.seeds.version.unwrap_or(1),
        })?;
    // So is its trace format: it decides when a probe step's test metrics are taken (a lesion
    // study trains nothing).
    if original.kind != EntryKind::Lesion {
        env.trace = trace_format(ledger, &original)?;
    }
    if env.device != recorded {
        warnings.push(format!(
            "backend differs: the entry ran on '{}', this replay runs on '{}'",
            recorded.name(),
            env.device.name()
        ));
    }
    // The worker pool is sized once per process; record what the rerun really gets.
    train::init_threads(env.threads);
    let pool = rayon::current_num_threads();
    if pool != env.threads {
        warnings.push(format!(
            "this process's worker pool already has {pool} threads (it is sized once per process), not {}",
            env.threads
        ));
        env.threads = pool;
    }
    if env.threads != original.execution.threads {
        warnings.push(format!(
            "thread count differs: the entry ran with {}, this replay runs with {}",
            original.execution.threads, env.threads
        ));
    }
    for (field, theirs, ours) in original.code.differences(&environment::code_identity()) {
        warnings.push(format!(
            "code identity differs: {field} was '{theirs}', this build has '{ours}'"
        ));
    }
    let host = environment::host();
    // The portable engine's bits are the same on every CPU: another machine is no reason to
    // expect a difference (its replay tests hold it to that).
    let portable = env.device == DeviceKind::Portable;
    let machine = original.host.kernel_difference(&host).filter(|_| !portable);
    if portable && original.host.cpu != host.cpu {
        warnings.push(format!(
            "host differs: the entry ran on '{}', this is '{}' (the portable engine computes \
             the same bits on any CPU)",
            original.host.cpu, host.cpu
        ));
    } else if let Some(why) = &machine {
        warnings.push(format!(
            "machine differs: {why}. The '{}' engine picks kernels by instruction set, so its \
             rounding may differ here",
            env.device.name()
        ));
    } else if original.host.cpu != host.cpu {
        warnings.push(format!(
            "host differs: the entry ran on '{}', this is '{}' (same CPU features)",
            original.host.cpu, host.cpu
        ));
    }
    Ok(Plan {
        original,
        experiment,
        env,
        warnings,
        machine,
    })
}

/// Reruns a plan and compares. `progress(step, total)` follows the rerun.
pub fn run_plan(
    ledger: &Ledger,
    plan: Plan,
    control: Option<Arc<Control>>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ReplayReport, LedgerError> {
    // Check the stored trace first: a damaged record is reported before any training.
    ledger.check_trace(&plan.original)?;
    let original_weights = match ledger.load_weights(&plan.original) {
        Ok(w) => Some(w),
        Err(LedgerError::WeightsNotStored { .. }) => None,
        Err(e) => return Err(e),
    };
    let control = control.unwrap_or_default();
    let total = plan.experiment.spec().train.steps;
    let started = SystemTime::now();
    let mut sink = |e: Event| {
        if let Event::Probe { probe, .. } = e {
            progress(probe.step + 1, total);
        }
    };
    let outcome = if plan.original.kind == EntryKind::Lesion {
        super::lesion::rerun(ledger, &plan.original)?
    } else {
        train::train(&plan.experiment, plan.env, &control, &mut sink)
    };
    let io = |source| LedgerError::Io {
        dir: ledger.dir().to_path_buf(),
        source,
    };
    // Equal hashes make the verdict EXACT and leave only the headers to compare: read just
    // their first lines, so replaying a 100 MB trace does not hold two of them.
    let exact = plan.original.trace.hash == outcome.trace.hash()
        && plan.original.weights.hash == outcome.weights_hash();
    let (original_trace, rerun_trace) = if exact {
        let mut first = Vec::new();
        object::read_object_into(ledger.dir(), &plan.original.trace.hash, &mut |chunk| {
            if !first.contains(&b'\n') {
                first.extend_from_slice(chunk);
            }
        })
        .map_err(|source| LedgerError::Object {
            seq: plan.original.seq,
            source,
        })?;
        let mut rerun = Vec::new();
        std::io::BufRead::read_until(
            &mut std::io::BufReader::new(outcome.trace.reader()),
            b'\n',
            &mut rerun,
        )
        .map_err(io)?;
        (first_line(first), first_line(rerun))
    } else {
        (
            ledger.load_trace_bytes(&plan.original)?,
            outcome.trace.bytes().map_err(io)?,
        )
    };
    let (verdict, header_differences) = compare(
        &plan.original,
        &original_trace,
        original_weights.as_deref(),
        &outcome,
        &rerun_trace,
    );
    Ok(ReplayReport {
        original: plan.original,
        experiment: plan.experiment,
        env: plan.env,
        started,
        outcome,
        verdict,
        header_differences,
        warnings: plan.warnings,
        machine: plan.machine,
    })
}

/// The bytes up to and including the first newline.
fn first_line(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(at) = memchr::memchr(b'\n', &bytes) {
        bytes.truncate(at + 1);
    }
    bytes
}

/// Replays entry `id` (seq or hash prefix) in its recorded environment. Does not append:
/// pass the report to [`Ledger::record_replay`].
pub fn replay(
    ledger: &Ledger,
    id: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ReplayReport, LedgerError> {
    replay_with(ledger, id, ReplayOptions::default(), progress)
}

/// [`replay`] with a different environment or a stop control.
pub fn replay_with(
    ledger: &Ledger,
    id: &str,
    options: ReplayOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ReplayReport, LedgerError> {
    let p = plan(ledger, id, &options)?;
    run_plan(ledger, p, options.control, progress)
}

/// One replayed entry of an audit.
#[derive(Debug, Clone)]
pub struct AuditItem {
    pub seq: u64,
    pub experiment: String,
    /// None when the replay could not run (`error` says why).
    pub verdict: Option<Verdict>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// Why this machine may take other kernel paths than the recording one.
    pub machine: Option<String>,
    /// The replay entry appended: (seq, short hash).
    pub recorded: Option<(u64, String)>,
}

/// The result of an audit.
#[derive(Debug, Clone)]
pub struct AuditReport {
    pub seed: u64,
    /// Run entries the sample was drawn from.
    pub population: usize,
    pub items: Vec<AuditItem>,
}

impl AuditReport {
    /// How many replays gave `kind`.
    pub fn count(&self, kind: VerdictKind) -> usize {
        self.items
            .iter()
            .filter(|i| i.verdict.as_ref().is_some_and(|v| v.result == kind))
            .count()
    }
    pub fn exact(&self) -> usize {
        self.count(VerdictKind::Exact)
    }
    pub fn all_exact(&self) -> bool {
        self.exact() == self.items.len()
    }
    /// Every sampled entry reproduced: EXACT or CLOSE, none DIVERGED or failed to replay.
    pub fn all_reproduced(&self) -> bool {
        self.exact() + self.count(VerdictKind::Close) == self.items.len()
    }
}

/// The seqs of `n` run entries drawn at random by `seed` (all of them when `n` is larger),
/// in ledger order. The same ledger and seed always draw the same sample.
pub fn audit_sample(entries: &[Entry], n: usize, seed: u64) -> Vec<u64> {
    let mut runs: Vec<u64> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Run)
        .map(|e| e.seq)
        .collect();
    Stream::new(seed, "audit").shuffle(&mut runs);
    runs.truncate(n);
    runs.sort_unstable();
    runs
}

/// Replays a seeded sample of `n` run entries; with `record`, appends each replay (tagged
/// `audit`). `on_item` sees each result as it comes.
pub fn audit(
    ledger: &mut Ledger,
    n: usize,
    seed: u64,
    record: bool,
    on_item: &mut dyn FnMut(&AuditItem),
) -> Result<AuditReport, LedgerError> {
    let population = ledger
        .entries()
        .iter()
        .filter(|e| e.kind == EntryKind::Run)
        .count();
    let sample = audit_sample(ledger.entries(), n, seed);
    let mut items = Vec::new();
    for seq in sample {
        let original = ledger.find(&seq.to_string())?.clone();
        let mut item = AuditItem {
            seq,
            experiment: original.experiment.clone(),
            verdict: None,
            error: None,
            warnings: Vec::new(),
            machine: None,
            recorded: None,
        };
        match replay(ledger, &seq.to_string(), &mut |_, _| {}) {
            Ok(report) => {
                item.verdict = Some(report.verdict.clone());
                item.warnings = report.warnings.clone();
                item.machine = report.machine.clone();
                if record {
                    let e = ledger.record_replay(&report, vec!["audit".into()])?;
                    item.recorded = Some((e.seq, e.short_hash().to_string()));
                }
            }
            Err(e) => item.error = Some(e.to_string()),
        }
        on_item(&item);
        items.push(item);
    }
    Ok(AuditReport {
        seed,
        population,
        items,
    })
}
