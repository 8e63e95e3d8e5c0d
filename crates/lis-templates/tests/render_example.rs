//! Runs the `render` example (built by a plain `cargo test -p lis-templates`, or `cargo build
//! -p lis-templates --example render` before a `--test render_example` run) with mistakes an
//! integrator makes: its errors name the option and say why.

use std::path::PathBuf;
use std::process::Command;

fn example() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/render
    let mut path = std::env::current_exe().unwrap();
    path.pop();
    path.pop();
    path.push("examples");
    path.push(format!("render{}", std::env::consts::EXE_SUFFIX));
    path
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
