//! Standard output that never costs a result: a reader that went away (`| head`, `| true`)
//! ends the output quietly, as ripgrep does, and any other write error (a full disk) is an
//! error the caller reports — after the work it describes has been saved.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout's reader has gone: nothing more is written, nothing is an error.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout and flushes it, so a failure is seen here and not at exit.
/// A closed pipe is not an error: it returns Ok and later writes are skipped.
pub fn print(text: &str) -> io::Result<()> {
    print_bytes(text.as_bytes())
}

/// [`print`] for bytes that need not be text (an exported trace).
pub fn print_bytes(bytes: &[u8]) -> io::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        r => r,
    }
}

/// Standard output as a writer, through [`print_bytes`] (a closed pipe ends it quietly).
/// Wrap it in a buffer: each write is flushed.
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        print_bytes(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The error of a failed write to stdout, for the user.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output: {0}")]
pub struct OutputError(#[from] pub io::Error);

/// `print!` through [`print`]: `out!(...)?` in a function returning `anyhow::Result`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::print(&format!($($arg)*)).map_err($crate::cli::out::OutputError)
    };
}

/// `println!` through [`print`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out::print(&format!("{}\n", format_args!($($arg)*)))
            .map_err($crate::cli::out::OutputError)
    };
}

pub(crate) use {out, outln};
