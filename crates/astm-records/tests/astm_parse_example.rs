//! Runs the `astm_parse` example (built by a plain `cargo test -p astm-records`, or `cargo
//! build -p astm-records --example astm_parse` before a `--test astm_parse_example` run).

use std::path::PathBuf;
use std::process::Command;

fn example() -> PathBuf {
    test_support::example_path("astm_parse")
}

/// `astm_parse FILE 2>&1 | head -0`: the `eprintln!` of an error (here an unreadable file, as
/// for a record that does not parse or bad usage) panicked on the stderr pipe whose reader
/// had gone (exit 101, "failed printing to stderr: Broken pipe"); the line is now dropped and
/// the exit status kept.
#[test]
fn a_closed_stderr_pipe_does_not_panic() {
    let missing = std::env::temp_dir().join("astm_parse-no-such-file");
    let mut command = Command::new(example());
    command.arg(&missing);
    let out = test_support::output_into_closed_pipe(command, test_support::ClosedStream::Stderr);
    assert_eq!(out.status.code(), Some(1));
}
