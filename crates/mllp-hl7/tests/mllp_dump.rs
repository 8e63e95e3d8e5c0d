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
