//! Terminal output that outlives its reader.
//!
//! `println!` and `eprintln!` panic when their stream is a pipe whose reader has gone
//! (`simulator --dry-run | head -1`, a harness that stops reading once it has seen `ready`).
//! Status lines and reports are dropped instead, so a server keeps serving and a run keeps its
//! own exit code; the output a run exists to print ends the run quietly, as `cat` would.

use std::fmt;
use std::io::{self, Write as _};

/// The reader of standard output has gone: the run stops and exits 0, as the reader asked for
/// no more.
#[derive(Debug, thiserror::Error)]
#[error("standard output closed by its reader")]
pub(crate) struct StdoutClosed;

/// Writes a status line to stdout and flushes it, for a harness waiting on it; a failed write is
/// ignored.
pub(crate) fn status(line: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Writes a line to stderr; a failed write is ignored.
pub(crate) fn report(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Writes what the run exists to print (a dry run's messages, seed SQL) to stdout.
///
/// # Errors
/// [`StdoutClosed`] when the reader has gone, else the write error.
pub(crate) fn output(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}
