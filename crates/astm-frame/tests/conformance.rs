//! Every vector of the shared ASTM conformance set (copied into `tests/data/vectors/`), except
//! those labelled as one library's quirk.

use std::time::Instant;

use astm_frame::{
    DecoderConfig, FrameDefect, FrameEnd, FrameScanner, FramedMessage, FramerConfig, Item,
    Leniency, Link, LinkConfig, Packing, Role, checksum,
};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v["hex"].as_str().expect("hex field");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Bytes from the vectors' `esc` notation: `\\`, `\r`, `\n`, `\xHH`, everything else as is.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'\\' => {
                    out.push(b'\\');
                    i += 2;
                }
                b'r' => {
                    out.push(b'\r');
                    i += 2;
                }
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                }
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).expect("hex escape"));
                    i += 4;
                }
                _ => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn items(bytes: &[u8], leniency: Leniency) -> Vec<Item<'_>> {
    let mut scanner = FrameScanner::new(DecoderConfig {
        leniency,
        ..DecoderConfig::default()
    });
    scanner.iter(bytes).collect()
}

#[test]
fn checksum_vectors() {
    let mut checked = 0;
    for v in load("checksums.jsonl") {
        let id = v["id"].as_str().unwrap();
        let Some(body) = v.get("body") else {
            // pyastm-unicode-codepoints: python-astm sums code points, a library quirk.
            assert!(v["note"].as_str().unwrap().contains("quirk"), "{id}");
            continue;
        };
        let body = hex(body);
        let computed = format!("{:02X}", checksum::sum(&body));
        let expected = v["expected_checksum"].as_str().unwrap();
        if v["agrees"].as_bool().unwrap() {
            assert_eq!(computed, expected, "{id}");
        } else {
            // Real-world mismatches: a receiver must see the difference and NAK.
            assert_ne!(computed, expected, "{id}");
            assert_eq!(
                computed,
                v["computed_sum_mod_256"].as_str().unwrap(),
                "{id}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 35);
}

#[test]
fn frame_vectors() {
    let mut checked = 0;
    for v in load("frames.jsonl") {
        let id = v["id"].as_str().unwrap();
        let bytes = hex(&v["frame"]);
        let expected = &v["expected"];
        if id == "lowercase-checksum" {
            let strict = items(&bytes, Leniency::STRICT);
            let [Item::Frame(f)] = strict[..] else {
                panic!("{id}: {strict:?}")
            };
            assert!(matches!(
                f.defect(),
                Some(FrameDefect::LowercaseChecksum(_))
            ));
            assert!(!f.checksum_ok());
            let lenient = items(
                &bytes,
                Leniency {
                    lowercase_checksum: true,
                    ..Leniency::STRICT
                },
            );
            let [Item::Frame(f)] = lenient[..] else {
                panic!("{id}: {lenient:?}")
            };
            assert!(f.is_valid() && f.checksum_ok(), "{id}");
            checked += 1;
            continue;
        }
        let found = items(&bytes, Leniency::STRICT);
        if expected["valid"].as_bool().unwrap() {
            let [Item::Frame(f)] = found[..] else {
                panic!("{id}: {found:?}")
            };
            assert!(f.is_valid(), "{id}: {:?}", f.defect());
            assert_eq!(
                f.number(),
                Some(expected["fn"].as_u64().unwrap() as u8),
                "{id}"
            );
            if let Some(end) = expected.get("end") {
                let end = if end == "ETX" {
                    FrameEnd::End
                } else {
                    FrameEnd::Intermediate
                };
                assert_eq!(f.end(), end, "{id}");
            }
            if let Some(text) = expected.get("text") {
                let text: Vec<u8> = text.as_str().unwrap().chars().map(|c| c as u8).collect();
                assert_eq!(f.text(), &text[..], "{id}");
            }
            if let Some(len) = expected.get("text_len") {
                assert_eq!(f.text().len() as u64, len.as_u64().unwrap(), "{id}");
            }
            if let Some(cs) = expected.get("checksum") {
                assert_eq!(
                    format!("{:02X}", f.computed_checksum()),
                    cs.as_str().unwrap()
                );
            }
            // A valid frame re-encodes to exactly its bytes.
            let mut again = Vec::new();
            astm_frame::encode_frame(f.number().unwrap(), f.text(), f.end(), &mut again);
            assert_eq!(again, bytes, "{id}");
        } else {
            let error = expected["error"].as_str().unwrap();
            match error {
                "checksum" => {
                    let [Item::Frame(f)] = found[..] else {
                        panic!("{id}: {found:?}")
                    };
                    assert!(matches!(
                        f.defect(),
                        Some(FrameDefect::ChecksumMismatch { .. })
                    ));
                    if let Some(c) = expected.get("computed") {
                        assert_eq!(
                            format!("{:02X}", f.computed_checksum()),
                            c.as_str().unwrap()
                        );
                    }
                }
                "missing CR LF" => {
                    // A complete buffer that ends after the checksum: strictly, not a frame.
                    assert!(
                        matches!(found[..], [Item::Broken { .. }]),
                        "{id}: {found:?}"
                    );
                    let lenient = Leniency {
                        missing_trailer: true,
                        ..Leniency::STRICT
                    };
                    let found = items(&bytes, lenient);
                    assert!(
                        matches!(found[..], [Item::Frame(f)] if f.is_valid()),
                        "{id}"
                    );
                }
                "missing STX" => {
                    assert!(
                        found.iter().all(|i| matches!(i, Item::Junk(_))),
                        "{id}: {found:?}"
                    );
                }
                other => panic!("{id}: unknown expectation {other}"),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 29);
}

#[test]
fn message_vectors() {
    for v in load("messages.jsonl") {
        let id = v["id"].as_str().unwrap();
        let records: Vec<&str> = v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let expected: Vec<u8> = v["expected_frames"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(hex)
            .collect();
        let message = records.join("\r").into_bytes();
        let config = if id == "pyastm-chunked-size14" {
            // python-astm's bulk mode: one text, frames of 14 bytes (7 of text).
            FramerConfig {
                max_text_len: 7,
                packing: Packing::Packed,
            }
        } else {
            FramerConfig::default()
        };
        let framed = FramedMessage::new(message, config);
        assert_eq!(framed.encode_all(1), expected, "{id}");
    }
}

/// Replays what a sender wrote into a computer-role link and collects its replies.
fn replay(sent: &[Vec<u8>], leniency: Leniency) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency = leniency;
    let mut link = Link::new(config);
    let now = Instant::now();
    let mut replies = Vec::new();
    let mut messages = Vec::new();
    for chunk in sent {
        link.handle_input(chunk, now);
        let mut reply = Vec::new();
        while link.poll_transmit(&mut reply).is_some() {}
        replies.push(reply);
        while let Some(event) = link.poll_event() {
            if let astm_frame::Event::MessageReceived(m) = event {
                messages.push(m);
            }
        }
    }
    (replies, messages)
}

fn names(replies: &[Vec<u8>]) -> Vec<&'static str> {
    replies
        .iter()
        .map(|r| match r.as_slice() {
            [] => "-",
            [0x06] => "ACK",
            [0x15] => "NAK",
            [0x04] => "EOT",
            _ => "?",
        })
        .collect()
}

#[test]
fn session_transcripts_replay_byte_for_byte() {
    for v in load("sessions.jsonl") {
        let Some(transcript) = v.get("transcript") else {
            continue;
        };
        let id = v["id"].as_str().unwrap();
        // Each sender chunk is answered by the receiver's bytes that follow it.
        let mut sent = Vec::new();
        let mut expected = Vec::new();
        for step in transcript.as_array().unwrap() {
            let bytes = hex(&step["bytes"]);
            if step["dir"] == "s2r" {
                sent.push(bytes);
                expected.push(Vec::new());
            } else {
                expected.last_mut().unwrap().extend(bytes);
            }
        }
        let (replies, messages) = replay(&sent, Leniency::STRICT);
        assert_eq!(replies, expected, "{id}");
        assert!(!messages.is_empty(), "{id}");
    }
}

#[test]
fn probe_cases_get_the_standard_replies() {
    let mut seen = std::collections::BTreeSet::new();
    for v in load("sessions.jsonl") {
        let Some(sent) = v.get("sent_esc") else {
            continue;
        };
        let id = v["id"].as_str().unwrap();
        let case = id.rsplit('-').next().unwrap().to_string();
        if !seen.insert(case.clone()) {
            continue; // the same bytes were sent to three peers
        }
        let sent: Vec<Vec<u8>> = sent
            .as_array()
            .unwrap()
            .iter()
            .map(|s| unescape(s.as_str().unwrap()))
            .collect();
        let (replies, messages) = replay(&sent, Leniency::STRICT);
        let got = names(&replies);
        // What E1381 / LIS1-A requires (astm-protocols.md §5.3, "Standard says").
        let expected: Vec<&str> = match case.as_str() {
            "good_message" => vec!["ACK", "ACK", "ACK", "-"],
            "bad_checksum" => vec!["ACK", "NAK", "-"],
            "lowercase_checksum" => vec!["ACK", "NAK", "-"],
            "wrong_first_fn_2" => vec!["ACK", "NAK", "-"],
            "fn_skip_1_then_3" => vec!["ACK", "ACK", "NAK", "-"],
            "duplicate_fn_retransmit" => vec!["ACK", "ACK", "ACK", "ACK", "-"],
            // Strict: the frame is incomplete until CR LF; the EOT shows it never will be, and
            // ends the transfer: no reply to it or to the cut frame (§2.7: EOT gets none).
            "no_crlf_after_checksum" => vec!["ACK", "-", "-"],
            "frame_before_enq" => vec!["-", "-"],
            // The standard is silent; an ACK could accept a frame that never arrived (the
            // sender waits for a frame reply), so the ENQ is refused and the transfer goes on.
            "enq_during_transfer" => vec!["ACK", "ACK", "NAK", "-"],
            "etb_then_etx" => vec!["ACK", "ACK", "ACK", "-"],
            "etb_chunks_correct" | "overlong_frame_309" | "multi_record_frame"
            | "fn_wrap_1to7_0_1" => {
                let mut all = vec!["ACK"; sent.len() - 1];
                all.push("-");
                all
            }
            other => panic!("unknown probe case {other}"),
        };
        assert_eq!(got, expected, "{case}");
        match case.as_str() {
            "duplicate_fn_retransmit" => assert_eq!(messages.len(), 2, "{case}: delivered once"),
            "etb_then_etx" => {
                assert_eq!(messages, [b"H|\\^&|||PROBE|||||||P|1\r".to_vec()], "{case}");
            }
            "bad_checksum" | "wrong_first_fn_2" | "frame_before_enq" => {
                assert!(messages.is_empty(), "{case}");
            }
            _ => {}
        }
    }
    assert_eq!(seen.len(), 14);

    // The lenient receiver takes the deviations real instruments need.
    let lowercase = [
        b"\x05".to_vec(),
        b"\x021H|\\^&|||PROBE|||||||P|1|202401012\r\x036a\r\n".to_vec(),
    ];
    assert_eq!(names(&replay(&lowercase, Leniency::ALL).0), ["ACK", "ACK"]);
    let no_trailer = [
        b"\x05".to_vec(),
        b"\x021H|\\^&|||PROBE|||||||P|1\r\x0332".to_vec(),
    ];
    assert_eq!(names(&replay(&no_trailer, Leniency::ALL).0), ["ACK", "ACK"]);
}
