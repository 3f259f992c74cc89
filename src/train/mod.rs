//! Training on its own thread: the loop, optimisers, probes, and the events it sends.
//!
//! `spawn` starts a run and returns the receiving end of its event channel plus a join
//! handle yielding the `Outcome`; the caller (headless progress or TUI) only listens.
//! The thread never waits for its listener: a dropped receiver is ignored and the run
//! finishes so it can still be recorded.

mod batch;
mod error;
pub mod events;
mod fused;
pub mod optim;
mod pretrain;
pub mod probe;
mod runner;
mod search;
mod step;
mod trace;

pub use error::TrainError;
pub use events::*;
pub use runner::{panics_are_caught, train};
pub(crate) use trace::TraceWriter;
pub use trace::{Trace, TraceReader};

use crate::experiment::Experiment;
use burn::tensor::Device;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

/// Where a run executes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// The CPU with the lab's own arithmetic (`crate::engine`) for every model and phase:
    /// the same bits on every CPU and thread count (default).
    Portable,
    /// The CPU with the lab's fused kernels over the `gemm` crate's products (bit-exact
    /// reruns on the same CPU kind). Models without a fused step run as on `flex`.
    Cpu,
    /// Burn's pure-Rust CPU backend, op by op: the reference path (bit-exact reruns; what
    /// every ledger entry before the `cpu` engine recorded).
    Flex,
    /// Burn's wgpu backend (build with `--features wgpu`).
    Wgpu,
    /// Burn's CUDA backend (build with `--features cuda`).
    Cuda,
}

impl DeviceKind {
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Portable => "portable",
            DeviceKind::Cpu => "cpu",
            DeviceKind::Flex => "flex",
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cuda => "cuda",
        }
    }

    /// The kind a ledger entry's `backend` names, if this build knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Portable,
            Self::Cpu,
            Self::Flex,
            Self::Wgpu,
            Self::Cuda,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// Whether MLP steps take the fused host path (`train::fused`).
    pub fn fused(self) -> bool {
        matches!(self, DeviceKind::Cpu | DeviceKind::Portable)
    }

    /// The host arithmetic of a fused path on this kind, with `threads`.
    pub fn host_engine(self, threads: usize) -> crate::models::host::Engine {
        crate::models::host::Engine {
            portable: self == DeviceKind::Portable,
            threads,
        }
    }

    /// The Burn device, or why this build has none.
    pub fn device(self) -> Result<Device, TrainError> {
        match self {
            DeviceKind::Portable | DeviceKind::Cpu | DeviceKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => Err(TrainError::DeviceMissing {
                device: other.name(),
            }),
        }
    }
}

/// The execution environment of a run (not part of the config, recorded beside it).
#[derive(Debug, Clone, Copy)]
pub struct RunEnv {
    pub device: DeviceKind,
    /// Worker threads of the CPU backend's pool.
    pub threads: usize,
    /// The f64 functions of the data and init path (recorded as `seeds.version`).
    pub streams: crate::rng::Version,
    /// The trace format to write (a replay writes its original's).
    pub trace: TraceFormat,
}

impl Default for RunEnv {
    fn default() -> Self {
        Self {
            device: DeviceKind::Portable,
            threads: 1,
            streams: crate::rng::Version::default(),
            trace: TraceFormat::default(),
        }
    }
}

/// Cooperative control of a running training thread, checked every step.
#[derive(Debug, Default)]
pub struct Control {
    stop: Arc<AtomicBool>,
    paused: AtomicBool,
}

impl Control {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    /// The stop flag itself, for signal handlers (SIGINT, SIGTERM) to set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
}

/// Everything a finished run leaves behind.
#[derive(Debug)]
pub struct Outcome {
    pub header: Header,
    pub end: End,
    /// The JSON Lines trace, byte for byte (spooled to a temporary file when long), with
    /// its first and last probe at hand.
    pub trace: Trace,
    /// Final parameters in the canonical layout (see `weights_bytes`).
    pub weights: Vec<u8>,
    pub wall_s: f64,
}

impl Outcome {
    /// blake3 of the trace bytes.
    pub fn trace_hash(&self) -> String {
        self.trace.hash().to_string()
    }
    /// Every probe record, parsed back from the trace (tests and short runs: a long run's
    /// probes are its trace's size in memory).
    pub fn probes(&self) -> Vec<Probe> {
        self.trace
            .probes()
            .expect("a run's own trace reads back and parses")
    }
    /// blake3 of the canonical weights bytes.
    pub fn weights_hash(&self) -> String {
        blake3::hash(&self.weights).to_hex().to_string()
    }
    /// Optimisation steps per second of wall time.
    pub fn steps_per_s(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.end.steps_done as f64 / self.wall_s
        } else {
            0.0
        }
    }
}

/// Canonical weights layout: for each parameter in model order, a line
/// `name dtype d0xd1…\n`, then its elements as little-endian f32, row-major.
pub fn weights_bytes(params: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, shape, values) in params {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        out.extend_from_slice(format!("{name} f32 {}\n", dims.join("x")).as_bytes());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// One parameter of the canonical weights layout: name, shape, values (row-major).
pub type NamedParam = (String, Vec<usize>, Vec<f32>);

/// Reads back the canonical weights layout of [`weights_bytes`]: (name, shape, values) per
/// parameter, in order; `Err` says where the bytes stop making sense.
pub fn parse_weights(bytes: &[u8]) -> Result<Vec<NamedParam>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[at..])
            .map(|i| at + i)
            .ok_or_else(|| format!("byte {at}: a parameter line without its newline"))?;
        let line = std::str::from_utf8(&bytes[at..end])
            .map_err(|_| format!("byte {at}: a parameter line that is not UTF-8"))?;
        let mut parts = line.split(' ');
        let (Some(name), Some("f32"), Some(dims), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("byte {at}: '{line}' is not `name f32 d0xd1`"));
        };
        let shape = dims
            .split('x')
            .map(|d| d.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("byte {at}: '{dims}' is not a shape"))?;
        let n: usize = shape.iter().product();
        let data = &bytes[end + 1..];
        if data.len() < 4 * n {
            return Err(format!(
                "{name}: {n} values announced, {} bytes left",
                data.len()
            ));
        }
        let values = data[..4 * n]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push((name.to_string(), shape, values));
        at = end + 1 + 4 * n;
    }
    Ok(out)
}

/// Starts `exp` on a new thread. Events arrive on the receiver; the handle yields the outcome.
pub fn spawn(
    exp: Experiment,
    env: RunEnv,
    control: Arc<Control>,
) -> (Receiver<Event>, JoinHandle<Outcome>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("gradlab-train".into())
        .spawn(move || {
            let mut sink = |e: Event| {
                // A listener that went away must not stop the run: it is still recorded.
                let _ = tx.send(e);
            };
            train(&exp, env, &control, &mut sink)
        })
        .expect("the OS can start the training thread");
    (rx, handle)
}

/// Sets the CPU backend's worker pool size once per process (later calls are no-ops).
pub fn init_threads(threads: usize) {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build_global();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_read_back_as_written_and_damage_is_named() {
        let params = vec![
            (
                "h1.weight".to_string(),
                vec![2, 3],
                vec![1.0, -2.5, 3.0, 0.0, f32::MIN, 7.0],
            ),
            ("h1.bias".to_string(), vec![1, 3], vec![0.5, 0.25, -0.125]),
        ];
        let bytes = weights_bytes(&params);
        assert_eq!(parse_weights(&bytes).unwrap(), params);
        let cut = parse_weights(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(cut.contains("h1.bias"), "{cut}");
        let mut bad = bytes.clone();
        bad[10] = b'q'; // "f32" → "fq2"
        assert!(parse_weights(&bad).is_err());
        assert_eq!(parse_weights(b"").unwrap(), Vec::new());
    }
}
