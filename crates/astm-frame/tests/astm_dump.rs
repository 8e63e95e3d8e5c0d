//! Runs the `astm_dump` example (built by `cargo test` alongside the tests) on real captures.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use test_support::{ClosedStream, example_into_closed_pipe};

use serde_json::Value;

fn example() -> PathBuf {
    test_support::example_path("astm_dump")
}

fn dump(args: &[&str], stdin: &[u8]) -> Vec<Value> {
    let mut child = Command::new(example())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("astm_dump example built by cargo test");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn dumps_the_horiba_capture() {
    let capture = format!(
        "{}/tests/data/captures/horiba_yumizen_h500_raw.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let lines = dump(&[&capture], b"");
    let count = |e: &str| lines.iter().filter(|l| l["event"] == e).count();
    assert_eq!(count("frame"), 125);
    assert_eq!(count("message"), 36);
    assert_eq!(count("enq"), 1);
    assert_eq!(count("eot"), 1);
    assert_eq!(count("error"), 0);
    assert!(
        lines
            .iter()
            .filter(|l| l["event"] == "frame")
            .all(|l| l["checksum_ok"] == true)
    );
    let etb240 = lines
        .iter()
        .filter(|l| l["end"] == "ETB" && l["text"].as_str().unwrap().chars().count() == 240)
        .count();
    assert_eq!(etb240, 89);
    assert_eq!(lines[1]["fn"], 1);
}

#[test]
fn strict_and_lenient_modes() {
    let wire = b"\x05\x021H|\\^&\r\x03e5\r\n\x04noise";
    let strict = dump(&[], wire);
    assert_eq!(strict[1]["checksum_ok"], false);
    // A strict receiver refuses the lower-case checksum: no message.
    assert_eq!(strict[2], serde_json::json!({"event": "eot"}));
    assert_eq!(strict.last().unwrap()["event"], "error");
    let lenient = dump(&["--lenient"], b"\x05\x021H|\\^&\r\x03e5\r\n\x04");
    assert_eq!(lenient[1]["checksum_ok"], true);
    assert_eq!(
        lenient[2],
        serde_json::json!({"event": "message", "text": "H|\\^&\r"})
    );
    // Bytes above 0x7F come out as the characters of the same value.
    let latin1 = dump(&[], b"\x021R|1|\xc9\r\x0385\r\n");
    assert_eq!(latin1[0]["text"], "R|1|\u{c9}\r");
    assert_eq!(latin1[0]["checksum_ok"], true);
}

#[test]
fn a_frame_that_fails_its_checksum_is_not_part_of_the_message() {
    let mut wire = vec![0x05];
    let mut good = Vec::new();
    astm_frame::encode_frame(1, b"H|\\^&\r", astm_frame::FrameEnd::End, &mut good);
    // Noise flips one byte of the text: the receiver NAKs, the sender repeats the frame.
    let mut corrupt = good.clone();
    corrupt[3] = b'X';
    wire.extend_from_slice(&corrupt);
    wire.push(0x15);
    wire.extend_from_slice(&good);
    wire.push(0x04);
    let lines = dump(&[], &wire);
    let frames: Vec<bool> = lines
        .iter()
        .filter(|l| l["event"] == "frame")
        .map(|l| l["checksum_ok"].as_bool().unwrap())
        .collect();
    assert_eq!(frames, [false, true], "both transmissions are listed");
    let messages: Vec<&Value> = lines.iter().filter(|l| l["event"] == "message").collect();
    assert_eq!(
        messages,
        [&serde_json::json!({"event": "message", "text": "H|\\^&\r"})],
        "one message, from the good frame"
    );
}

/// The same one-frame message in two transfers (an instrument repeating its host query) is two
/// messages; a retransmitted end frame ends no second, empty message; and the start of a
/// message cut short by EOT is not glued to the next transfer's message.
#[test]
fn messages_follow_the_transfers_they_were_sent_in() {
    let frame = |number: u8, text: &[u8], end: astm_frame::FrameEnd| {
        let mut out = Vec::new();
        astm_frame::encode_frame(number, text, end, &mut out);
        out
    };
    let query = b"H|\\^&\rQ|1|^S1||ALL||||||||O\rL|1|N\r";
    let once = [
        &b"\x05"[..],
        &frame(1, query, astm_frame::FrameEnd::End),
        b"\x04",
    ]
    .concat();
    let lines = dump(&[], &[once.clone(), once].concat());
    let messages: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "message")
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    let query = std::str::from_utf8(query).unwrap();
    assert_eq!(messages, [query, query]);

    let header = frame(1, b"H|\\^&\r", astm_frame::FrameEnd::End);
    let wire = [&b"\x05"[..], &header, &header, b"\x04"].concat();
    let lines = dump(&[], &wire);
    let messages: Vec<&Value> = lines.iter().filter(|l| l["event"] == "message").collect();
    assert_eq!(
        messages,
        [&serde_json::json!({"event": "message", "text": "H|\\^&\r"})]
    );

    let wire = [
        &b"\x05"[..],
        &frame(1, b"R|1|^^^A|", astm_frame::FrameEnd::Intermediate),
        b"\x04\x05",
        &frame(1, b"L|1|N\r", astm_frame::FrameEnd::End),
        b"\x04",
    ]
    .concat();
    let lines = dump(&[], &wire);
    let messages: Vec<&Value> = lines.iter().filter(|l| l["event"] == "message").collect();
    assert_eq!(
        messages,
        [&serde_json::json!({"event": "message", "text": "L|1|N\r"})]
    );
    assert!(
        lines.iter().any(|l| l["event"] == "error"
            && l["detail"] == "transfer ended inside a message: 9 bytes dropped"),
        "{lines:?}"
    );
}

/// Bare records (`--lenient`) of a message cut short by a new header or EOT are not glued to
/// the next message.
#[test]
fn bare_records_of_a_cut_message_are_dropped() {
    let wire = b"H|\\^&\r\nP|1\r\nH|\\^&\r\nL|1|N\r\n\x05H|\\^&\r\n\x04";
    let lines = dump(&["--lenient"], wire);
    let messages: Vec<&Value> = lines.iter().filter(|l| l["event"] == "message").collect();
    assert_eq!(
        messages,
        [&serde_json::json!({"event": "message", "text": "H|\\^&\rL|1|N\r"})]
    );
    let errors: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "error")
        .map(|l| l["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "message without its L record: 10 bytes dropped",
            "transfer ended inside a message: 6 bytes dropped"
        ]
    );
}

#[test]
fn a_path_that_cannot_be_read_is_named() {
    // A directory opens but cannot be read; the error was a bare "Is a directory (os error 21)".
    let dir = std::env::temp_dir();
    let dir_text = dir.display().to_string();
    let output = Command::new(example())
        .arg(&dir_text)
        .output()
        .expect("astm_dump example built by cargo test");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!("astm_dump: cannot read {dir_text}: ")),
        "{stderr}"
    );
}

/// `astm_dump --help | head -0` and an error with a stderr pipe whose reader has gone: the
/// `println!` / `eprintln!` there panicked (exit 101, "failed printing to stdout: Broken
/// pipe"); the line is now dropped and the exit status kept.
#[test]
fn a_closed_output_pipe_does_not_panic() {
    let out = example_into_closed_pipe("astm_dump", &["--help"], ClosedStream::Stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::env::temp_dir().display().to_string();
    let out = example_into_closed_pipe("astm_dump", &[&dir], ClosedStream::Stderr);
    assert_eq!(out.status.code(), Some(1));
}
