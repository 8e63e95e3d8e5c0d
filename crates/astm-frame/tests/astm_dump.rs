//! Runs the `astm_dump` example (built by `cargo test` alongside the tests) on real captures.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

fn example() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/astm_dump
    let mut path = std::env::current_exe().unwrap();
    path.pop();
    path.pop();
    path.push("examples");
    path.push(format!("astm_dump{}", std::env::consts::EXE_SUFFIX));
    path
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
