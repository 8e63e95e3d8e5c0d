//! Runs the `astm_parse` example (built by a plain `cargo test -p astm-records`, or `cargo
//! build -p astm-records --example astm_parse` before a `--test astm_parse_example` run).

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn example() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/astm_parse
    let mut path = std::env::current_exe().unwrap();
    path.pop();
    path.pop();
    path.push("examples");
    path.push(format!("astm_parse{}", std::env::consts::EXE_SUFFIX));
    path
}

/// `astm_parse FILE 2>&1 | head -0`: the `eprintln!` of an error (here an unreadable file, as
/// for a record that does not parse or bad usage) panicked on the stderr pipe whose reader
/// had gone (exit 101, "failed printing to stderr: Broken pipe"); the line is now dropped and
/// the exit status kept.
#[test]
fn a_closed_stderr_pipe_does_not_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let missing = std::env::temp_dir().join("astm_parse-no-such-file");
    let out = Command::new(example())
        .arg(&missing)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(writer)
        .output()
        .expect("astm_parse example built by cargo test");
    assert_eq!(out.status.code(), Some(1));
}
