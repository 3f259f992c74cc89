//! `gradlab lesion`: the lesion study of a trained entry (see [`crate::lesion`]), recorded as
//! an entry of its own kind tied to it by `lesion_of`; and the rerun a replay of one makes.

use super::entry::{Entry, EntryKind};
use super::{Extra, Ledger, LedgerError};
use crate::experiment::Experiment;
use crate::lesion::{self, Options, Study};
use crate::rng::Version;
use crate::train::{self, Control, DeviceKind, Outcome, RunEnv, Status, TraceLine};
use std::time::{Instant, SystemTime};

/// A finished study, not yet recorded.
#[derive(Debug)]
pub struct LesionReport {
    /// The trained entry studied.
    pub parent: Entry,
    pub experiment: Experiment,
    pub study: Study,
    pub outcome: Outcome,
    pub env: RunEnv,
    pub started: SystemTime,
}

/// Studies entry `id` (seq or hash prefix): a completed or interrupted run, or a replay of
/// one. Weights that were not stored are trained again (see [`retrain`]).
pub fn lesion(ledger: &Ledger, id: &str, options: Options) -> Result<LesionReport, LedgerError> {
    let parent = ledger.find(id)?.clone();
    let seq = parent.seq;
    let refuse = |message: String| Err(LedgerError::Lesion { seq, message });
    if parent.kind == EntryKind::Lesion {
        return refuse("it is a lesion study itself: study the run it names in lesion_of".into());
    }
    if matches!(parent.status, Status::Diverged | Status::Failed) {
        return refuse(format!(
            "the run {}: its final weights are not a trained net",
            parent.status.name()
        ));
    }
    let experiment = Experiment::from_canonical(&parent.config)
        .map_err(|source| LedgerError::Config { seq, source })?;
    let streams = parent.seeds.streams_version().ok_or(LedgerError::Streams {
        seq,
        version: parent.seeds.version.unwrap_or(1),
    })?;
    let weights = match ledger.load_weights(&parent) {
        Err(LedgerError::WeightsNotStored { .. }) => retrain(&parent, &experiment, streams)?,
        other => other?,
    };
    let (started, clock) = (SystemTime::now(), Instant::now());
    let study =
        lesion::study(&experiment, &weights, streams, &parent.hash, options).map_err(|e| {
            LedgerError::Lesion {
                seq,
                message: e.to_string(),
            }
        })?;
    let outcome = study.outcome(&experiment, &parent, weights, clock.elapsed().as_secs_f64());
    Ok(LesionReport {
        parent,
        experiment,
        study,
        outcome,
        env: RunEnv {
            device: DeviceKind::Portable,
            threads: 1,
            streams,
            ..RunEnv::default()
        },
        started,
    })
}

/// The final weights of an entry whose weights were over the size cap: trained again from its
/// config where it ran, and accepted only if they hash to what the entry recorded — the
/// weights are reproducible by construction, so they need not have been stored.
fn retrain(parent: &Entry, exp: &Experiment, streams: Version) -> Result<Vec<u8>, LedgerError> {
    let seq = parent.seq;
    let device =
        DeviceKind::from_name(&parent.execution.backend).ok_or_else(|| LedgerError::Backend {
            seq,
            backend: parent.execution.backend.clone(),
        })?;
    let env = RunEnv {
        device,
        threads: parent.execution.threads,
        streams,
        ..RunEnv::default()
    };
    let outcome = train::train(exp, env, &Control::default(), &mut |_| {});
    if outcome.weights_hash() != parent.weights.hash {
        return Err(LedgerError::Lesion {
            seq,
            message: format!(
                "its weights were not stored (over the size cap) and training it again here gives                  weights {} where the entry recorded {}: replay it to see where they part",
                &outcome.weights_hash()[..12],
                &parent.weights.hash[..12.min(parent.weights.hash.len())]
            ),
        });
    }
    Ok(outcome.weights)
}

/// Reruns the lesion study `entry` recorded, with its own draws, on the entry it names.
pub(super) fn rerun(ledger: &Ledger, entry: &Entry) -> Result<Outcome, LedgerError> {
    let seq = entry.seq;
    let of = entry.lesion_of.as_deref().ok_or(LedgerError::Lesion {
        seq,
        message: "a lesion entry without lesion_of".into(),
    })?;
    let spec = ledger
        .load_trace(entry)?
        .into_iter()
        .find_map(|l| match l {
            TraceLine::Header(h) => h.lesion,
            _ => None,
        })
        .ok_or(LedgerError::Lesion {
            seq,
            message: "its trace header does not say how the study was drawn".into(),
        })?;
    let options = Options {
        draws: spec.draws,
        path_draws: spec.path_draws,
    };
    Ok(lesion(ledger, of, options)?.outcome)
}

impl Ledger {
    /// Records a lesion study, tied to the entry it studied.
    pub fn record_lesion(
        &mut self,
        report: &LesionReport,
        tags: Vec<String>,
    ) -> Result<Entry, LedgerError> {
        let extra = Extra {
            lesion_of: Some(report.parent.hash.clone()),
            tags,
            ..Extra::default()
        };
        self.record(
            &report.experiment,
            report.env,
            &report.outcome,
            report.started,
            extra,
        )
    }
}
