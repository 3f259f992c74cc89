//! The trace as a run writes it: JSON Lines hashed as they are written and, past a few MiB,
//! spooled to an unnamed temporary file, so a run's memory does not grow with its steps.
//!
//! A depth-200 net probed every step writes some 50 KB of trace per step; held in memory
//! that was most of a long run's peak. The spool file is unlinked from birth
//! (`tempfile::tempfile`, in `$TMPDIR`), so a killed run leaves nothing behind. Should the
//! spool fail (no temporary folder, a full disk) the rest of the trace stays in memory: the
//! run is never lost to its own bookkeeping.

use super::events::{Probe, TraceLine};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

/// Bytes kept in memory before they go to the spool file.
const SPILL: usize = 4 << 20;

/// A trace being written.
pub(crate) struct TraceWriter {
    file: Option<File>,
    /// Bytes safely in `file` (a failed write leaves this where it was).
    in_file: u64,
    tail: Vec<u8>,
    /// The spool gave up; everything from here on stays in `tail`.
    spool_failed: bool,
    hasher: blake3::Hasher,
    len: u64,
    first: Option<Probe>,
    last: Option<Probe>,
    probes: usize,
}

impl TraceWriter {
    pub(crate) fn new() -> Self {
        Self {
            file: None,
            in_file: 0,
            tail: Vec::new(),
            spool_failed: false,
            hasher: blake3::Hasher::new(),
            len: 0,
            first: None,
            last: None,
            probes: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one record and its newline.
    pub(crate) fn push(&mut self, line: &TraceLine) {
        let start = self.tail.len();
        serde_json::to_writer(&mut self.tail, line).expect("trace records always serialize");
        self.tail.push(b'\n');
        self.hasher.update(&self.tail[start..]);
        self.len += (self.tail.len() - start) as u64;
        if let TraceLine::Probe(p) = line {
            if self.first.is_none() {
                self.first = Some(p.clone());
            }
            self.last = Some(p.clone());
            self.probes += 1;
        }
        if self.tail.len() >= SPILL && !self.spool_failed {
            self.spill();
        }
    }

    /// Moves the in-memory tail to the spool file.
    fn spill(&mut self) {
        if self.file.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.file = Some(f),
                Err(_) => {
                    self.spool_failed = true;
                    return;
                }
            }
        }
        let file = self.file.as_ref().expect("opened above");
        // Positional: a failed write leaves `in_file` — what a reader trusts — unchanged.
        match file.write_all_at(&self.tail, self.in_file) {
            Ok(()) => {
                self.in_file += self.tail.len() as u64;
                self.tail.clear();
            }
            Err(_) => self.spool_failed = true,
        }
    }

    pub(crate) fn finish(self) -> Trace {
        Trace {
            file: self.file,
            in_file: self.in_file,
            tail: self.tail,
            hash: self.hasher.finalize().to_hex().to_string(),
            len: self.len,
            first: self.first,
            last: self.last,
            probes: self.probes,
        }
    }
}

/// A finished trace: its blake3 and length, the first and last probe, and its bytes
/// (read back on demand).
pub struct Trace {
    file: Option<File>,
    in_file: u64,
    tail: Vec<u8>,
    hash: String,
    len: u64,
    first: Option<Probe>,
    last: Option<Probe>,
    probes: usize,
}

impl Trace {
    /// A trace of the given bytes (tests and fixtures; a run builds its own).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let mut first = None;
        let mut last = None;
        let mut probes = 0;
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(TraceLine::Probe(p)) = serde_json::from_slice(line) {
                first.get_or_insert_with(|| p.clone());
                last = Some(p);
                probes += 1;
            }
        }
        Self {
            file: None,
            in_file: 0,
            hash: blake3::hash(&bytes).to_hex().to_string(),
            len: bytes.len() as u64,
            tail: bytes,
            first,
            last,
            probes,
        }
    }

    /// blake3 of the bytes, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first probe record, if the run wrote any.
    pub fn first_probe(&self) -> Option<&Probe> {
        self.first.as_ref()
    }

    /// The last probe record, if the run wrote any.
    pub fn last_probe(&self) -> Option<&Probe> {
        self.last.as_ref()
    }

    /// How many probe records the trace holds.
    pub fn probe_count(&self) -> usize {
        self.probes
    }

    /// Whether part of the trace lives in the spool file.
    pub fn spooled(&self) -> bool {
        self.in_file > 0
    }

    /// The bytes from the start, as a reader.
    pub fn reader(&self) -> TraceReader<'_> {
        TraceReader { trace: self, at: 0 }
    }

    /// Every byte, in memory (tests, and the first differing line of a replay).
    pub fn bytes(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len as usize);
        self.reader().read_to_end(&mut out)?;
        Ok(out)
    }

    /// Copies the bytes to `w`.
    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<u64> {
        io::copy(&mut self.reader(), w)
    }

    /// Writes the bytes to a new file at `path` (replacing one there).
    pub fn save(&self, path: &std::path::Path) -> io::Result<()> {
        let mut f = io::BufWriter::new(File::create(path)?);
        self.write_to(&mut f)?;
        f.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()
    }

    /// Every probe record, parsed back from the bytes (tests and small traces).
    pub fn probes(&self) -> io::Result<Vec<Probe>> {
        let bytes = self.bytes()?;
        let mut out = Vec::with_capacity(self.probes);
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let TraceLine::Probe(p) = serde_json::from_slice(line)? {
                out.push(p);
            }
        }
        Ok(out)
    }
}

/// Two traces are equal when their bytes are (compared by blake3).
impl PartialEq for Trace {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.hash == other.hash
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Trace({} bytes, {} probes, blake3 {})",
            self.len, self.probes, self.hash
        )
    }
}

/// Reads a trace from its start: the spooled part, then the in-memory tail.
pub struct TraceReader<'a> {
    trace: &'a Trace,
    at: u64,
}

impl Read for TraceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = self.trace;
        if self.at < t.in_file {
            let file = t.file.as_ref().expect("bytes in the file mean a file");
            let want = buf.len().min((t.in_file - self.at) as usize);
            let n = file.read_at(&mut buf[..want], self.at)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the trace's spool file is shorter than what was written to it",
                ));
            }
            self.at += n as u64;
            return Ok(n);
        }
        let off = (self.at - t.in_file) as usize;
        let rest = &t.tail[off.min(t.tail.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Status;
    use crate::train::events::End;

    fn end() -> TraceLine {
        TraceLine::End(End {
            status: Status::Completed,
            steps_done: 1,
            diverged_at: None,
            error: None,
        })
    }

    /// Past the spill size the bytes live in the file, and reading them back gives exactly
    /// what was written, hashed as written.
    #[test]
    fn a_long_trace_spools_and_reads_back_byte_for_byte() {
        let mut w = TraceWriter::new();
        let mut expected = Vec::new();
        for _ in 0..(SPILL / 20) {
            w.push(&end());
            serde_json::to_writer(&mut expected, &end()).unwrap();
            expected.push(b'\n');
        }
        let t = w.finish();
        assert!(t.spooled(), "{} bytes stayed in memory", t.len());
        assert!(t.tail.len() < SPILL);
        assert_eq!(t.len(), expected.len() as u64);
        assert_eq!(t.hash(), blake3::hash(&expected).to_hex().as_str());
        assert_eq!(t.bytes().unwrap(), expected);
        assert_eq!(t, Trace::from_bytes(expected));
        // Small reads across the file/tail boundary.
        let mut r = t.reader();
        let mut again = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            again.extend_from_slice(&buf[..n]);
        }
        assert_eq!(again.len() as u64, t.len());
    }

    /// A spool that cannot be written keeps the trace whole in memory.
    #[test]
    fn a_failed_spool_keeps_the_trace_in_memory() {
        let mut w = TraceWriter::new();
        w.spool_failed = true;
        for _ in 0..(SPILL / 20) {
            w.push(&end());
        }
        let t = w.finish();
        assert!(!t.spooled());
        assert_eq!(t.bytes().unwrap().len() as u64, t.len());
    }
}
