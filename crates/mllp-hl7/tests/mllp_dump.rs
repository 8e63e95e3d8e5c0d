//! Runs the `mllp_dump` example (built by a plain `cargo test -p mllp-hl7`, or `cargo build -p
//! mllp-hl7 --example mllp_dump` before a `--test mllp_dump` run) on input it cannot read.

use std::path::PathBuf;
use std::process::Command;

fn example() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/mllp_dump
    let mut path = std::env::current_exe().unwrap();
    path.pop();
    path.pop();
    path.push("examples");
    path.push(format!("mllp_dump{}", std::env::consts::EXE_SUFFIX));
    path
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

/// Runs the example `name` with stdout (`stdout_closed`) or stderr a pipe whose reader has
/// gone, as in `{name} ... | head -0`: writing there fails with EPIPE (Rust ignores SIGPIPE).
fn into_closed_pipe(name: &str, args: &[&str], stdout_closed: bool) -> std::process::Output {
    let mut path = example();
    path.set_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = Command::new(path);
    command.args(args).stdin(std::process::Stdio::null());
    if stdout_closed {
        command.stdout(writer).stderr(std::process::Stdio::piped());
    } else {
        command.stderr(writer).stdout(std::process::Stdio::piped());
    }
    command.output().expect("example built by cargo test")
}

/// `mllp_dump --help | head -0`, `hl7_ack --help | head -0`, and their errors with a stderr
/// pipe whose reader has gone: the `println!` / `eprintln!` there panicked (exit 101, "failed
/// printing to stdout: Broken pipe"); the line is now dropped and the exit status kept.
#[test]
fn a_closed_output_pipe_does_not_panic() {
    let dir = std::env::temp_dir().display().to_string();
    for name in ["mllp_dump", "hl7_ack"] {
        let out = into_closed_pipe(name, &["--help"], true);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = into_closed_pipe(name, &[&dir], false);
        assert_eq!(out.status.code(), Some(1), "{name}");
    }
}
