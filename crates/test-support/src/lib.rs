//! Helpers shared by the workspace's integration tests. Not published: crates take it as a
//! dev-dependency only.
//!
//! ```no_run
//! use std::process::Command;
//! use test_support::{ClosedStream, output_into_closed_pipe};
//!
//! let out = output_into_closed_pipe(Command::new("some-tool"), ClosedStream::Stdout);
//! assert_ne!(out.status.code(), Some(101), "a panic");
//! ```

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Which of a child's output streams has lost its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedStream {
    /// As in `tool | head -0`.
    Stdout,
    /// As in `tool 2>&1 | head -0`.
    Stderr,
}

/// Runs `command` to the end with `closed` a pipe whose reader has gone: writing there fails
/// with EPIPE (Rust ignores SIGPIPE), which `println!` / `eprintln!` turn into a panic (exit
/// 101). The other output stream is captured and stdin is null.
///
/// # Panics
/// When the pipe cannot be made or the command cannot be started: the test cannot go on.
#[must_use]
pub fn output_into_closed_pipe(mut command: Command, closed: ClosedStream) -> Output {
    let (reader, writer) = std::io::pipe().expect("make a pipe");
    drop(reader);
    command.stdin(Stdio::null());
    match closed {
        ClosedStream::Stdout => command.stdout(writer).stderr(Stdio::piped()),
        ClosedStream::Stderr => command.stderr(writer).stdout(Stdio::piped()),
    };
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// The path of this package's example `name`, as `cargo test` builds it: the running test is
/// `target/<profile>/deps/<test>`, the example `target/<profile>/examples/<name>`.
///
/// # Panics
/// When the running test's own path is unknown.
#[must_use]
pub fn example_path(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().expect("the test's own path");
    path.pop();
    path.pop();
    path.push("examples");
    path.push(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path
}

/// Runs this package's example `name` with `args` as [`output_into_closed_pipe`] does.
#[must_use]
pub fn example_into_closed_pipe(name: &str, args: &[&str], closed: ClosedStream) -> Output {
    let mut command = Command::new(example_path(name));
    command.args(args);
    output_into_closed_pipe(command, closed)
}
