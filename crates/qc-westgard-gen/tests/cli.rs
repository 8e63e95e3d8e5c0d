//! Runs the `westgard` example (built by `cargo test` alongside the tests).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use test_support::{ClosedStream, example_into_closed_pipe};

fn example() -> PathBuf {
    test_support::example_path("westgard")
}

/// Exit code, stdout and stderr of `westgard args` with `stdin`.
fn westgard(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(example())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("westgard example built by cargo test");
    // The program may exit before reading (bad arguments): ignore a broken pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let output = child.wait_with_output().unwrap();
    (
        output
            .status
            .code()
            .expect("exited, not killed by a signal"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn prints_the_documented_json_lines_skipping_blank_lines_comments_and_crs() {
    let (code, out, err) = westgard(
        &["--mean", "100", "--sd", "5"],
        b"100\r\n\r\n  \n# a comment\r\n111\r\n 90 \n",
    );
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        concat!(
            r#"{"value":100.0,"z":0.0,"violations":[],"status":"accepted"}"#,
            "\n",
            r#"{"value":111.0,"z":2.2,"violations":["1-2s"],"status":"warning"}"#,
            "\n",
            r#"{"value":90.0,"z":-2.0,"violations":["1-2s","R-4s"],"status":"rejected"}"#,
            "\n",
        )
    );
}

#[test]
fn a_bad_line_stops_with_status_2_after_the_values_before_it() {
    for bad in ["abc", "nan", "inf", "1,5", "12 mg/dL"] {
        let input = format!("100\n{bad}\n111\n");
        let (code, out, err) = westgard(&["--mean", "100", "--sd", "5"], input.as_bytes());
        assert_eq!(code, 2, "{bad}");
        assert_eq!(out.lines().count(), 1, "{bad}: {out}");
        assert!(
            err.starts_with("westgard: stdin line 2: not a finite number"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn empty_input_prints_nothing_and_still_writes_the_chart() {
    let svg = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("westgard-empty.svg");
    let (code, out, err) = westgard(
        &["--mean", "100", "--sd", "5", "--svg", svg.to_str().unwrap()],
        b"",
    );
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.contains("n = 0"), "{chart}");
}

#[test]
fn a_bad_sd_is_reported_as_such_even_when_negative() {
    for sd in [
        &["--sd", "0"][..],
        &["--sd", "-5"],
        &["--sd=-5"],
        &["--sd", "nan"],
    ] {
        let mut args = vec!["--mean", "100"];
        args.extend_from_slice(sd);
        let (code, out, err) = westgard(&args, b"100\n");
        assert_eq!((code, out.as_str()), (2, ""), "{sd:?}");
        assert!(
            err.starts_with("westgard: invalid standard deviation"),
            "{sd:?}: {err}"
        );
    }
}

#[test]
fn a_utf8_byte_order_mark_before_the_first_value_is_skipped() {
    // What Notepad and PowerShell 5 write at the start of a UTF-8 file (with CRLF line ends).
    let (code, out, err) = westgard(
        &["--mean", "100", "--sd", "5"],
        b"\xEF\xBB\xBF111\r\n90\r\n",
    );
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.starts_with(r#"{"value":111.0,"z":2.2,"violations":["1-2s"],"status":"warning"}"#),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2);
    // Only at the very start: elsewhere it is not part of a number.
    let (code, _, err) = westgard(
        &["--mean", "100", "--sd", "5"],
        "100\n\u{feff}90\n".as_bytes(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn a_z_beyond_a_double_is_null_and_rejected() {
    let (code, out, err) = westgard(&["--mean", "0", "--sd", "1e-300"], b"1e10\n");
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "{\"value\":10000000000.0,\"z\":null,\"violations\":[\"1-2s\",\"1-3s\"],\"status\":\"rejected\"}\n"
    );
}

/// `westgard ... 2>&1 | head -0`: the `eprintln!` of a bad argument or a bad stdin line
/// panicked on the stderr pipe whose reader had gone (exit 101, "failed printing to stderr:
/// Broken pipe"); the line is now dropped and the exit status (2) kept.
#[test]
fn a_closed_stderr_pipe_does_not_panic() {
    let out = example_into_closed_pipe(
        "westgard",
        &["--mean", "100", "--sd", "0"],
        ClosedStream::Stderr,
    );
    assert_eq!(out.status.code(), Some(2));
}
