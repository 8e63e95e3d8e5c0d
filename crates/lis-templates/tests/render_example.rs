//! Runs the `render` example (built by a plain `cargo test -p lis-templates`, or `cargo build
//! -p lis-templates --example render` before a `--test render_example` run) with mistakes an
//! integrator makes: its errors name the option and say why.

use std::path::PathBuf;
use std::process::Command;
use test_support::{ClosedStream, example_into_closed_pipe};

fn example() -> PathBuf {
    test_support::example_path("render")
}

fn render_error(args: &[&str]) -> String {
    let out = Command::new(example())
        .args(args)
        .output()
        .expect("render example built by cargo test");
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn errors_name_the_option_and_the_reason() {
    // Was `render: premature end of input` and `render: No such file or directory (os error 2)`.
    let e = render_error(&["stago_start4", "--now", "2026"]);
    assert!(
        e.starts_with("render: --now \"2026\": expected YYYYMMDDHHMMSS: "),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing").join("x.txt");
    let out_text = out.display().to_string();
    let e = render_error(&["stago_start4", "--out", &out_text]);
    assert!(
        e.starts_with(&format!("render: --out {out_text}: cannot write: ")),
        "{e}"
    );
    let e = render_error(&["stago_start4", "--year", "123"]);
    assert_eq!(
        e.trim_end(),
        "render: invalid year 123: use the last two digits of the year, 0 to 99"
    );
}

/// `render NAME | head -1` and `template_check DIR | head -1`: writing to the gone reader fails
/// with EPIPE (Rust ignores SIGPIPE), which `print!` / `println!` turned into a panic (exit
/// 101, "failed printing to stdout: Broken pipe"). The output now just ends; template_check
/// still exits 0 when every file loaded.
#[test]
fn a_closed_stdout_pipe_does_not_panic() {
    let out = example_into_closed_pipe("render", &["stago_start4"], ClosedStream::Stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("t.json");
    std::fs::write(&template, "{}").unwrap();
    let out = example_into_closed_pipe(
        "template_check",
        &[template.to_str().unwrap()],
        ClosedStream::Stdout,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // `{}` is not a valid template: status 1, as with a reader.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}
