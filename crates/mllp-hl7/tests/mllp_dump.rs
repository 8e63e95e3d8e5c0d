//! Runs the `mllp_dump` example (built by a plain `cargo test -p mllp-hl7`, or `cargo build -p
//! mllp-hl7 --example mllp_dump` before a `--test mllp_dump` run) on input it cannot read.

use std::path::PathBuf;
use std::process::Command;
use test_support::{ClosedStream, example_into_closed_pipe};

fn example() -> PathBuf {
    test_support::example_path("mllp_dump")
}

#[test]
fn a_path_that_cannot_be_read_is_named() {
    // A directory opens but cannot be read; the error was "mllp_dump: read: Is a directory".
    let dir = std::env::temp_dir().display().to_string();
    let output = Command::new(example())
        .arg(&dir)
        .output()
        .expect("mllp_dump example built");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!("mllp_dump: cannot read {dir}: ")),
        "{stderr}"
    );
}

/// `mllp_dump --help | head -0`, `hl7_ack --help | head -0`, and their errors with a stderr
/// pipe whose reader has gone: the `println!` / `eprintln!` there panicked (exit 101, "failed
/// printing to stdout: Broken pipe"); the line is now dropped and the exit status kept.
#[test]
fn a_closed_output_pipe_does_not_panic() {
    let dir = std::env::temp_dir().display().to_string();
    for name in ["mllp_dump", "hl7_ack"] {
        let out = example_into_closed_pipe(name, &["--help"], ClosedStream::Stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = example_into_closed_pipe(name, &[&dir], ClosedStream::Stderr);
        assert_eq!(out.status.code(), Some(1), "{name}");
    }
}
