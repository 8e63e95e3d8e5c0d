//! Raw wire captures received by the real E1381 receiver (`astm-frame`'s `Link` in the computer role),
//! then assembled and parsed here: the records layer on top of the link layer, as in production.

mod common;

use std::time::Instant;

use astm_frame::{Event, Link, LinkConfig, Role};
use astm_records::{Message, MessageAssembler, RecordBuf, RecordType};

/// Feeds a capture to a receiving link and returns the E1381 message texts it delivers.
fn receive(capture: &[u8]) -> Vec<Vec<u8>> {
    let mut link = Link::new(LinkConfig::new(Role::Computer));
    let now = Instant::now();
    let mut texts = Vec::new();
    let mut replies = Vec::new();
    // Chunks of 64 bytes, as TCP reads might arrive.
    for chunk in capture.chunks(64) {
        link.handle_input(chunk, now);
        while link.poll_transmit(&mut replies).is_some() {}
        while let Some(event) = link.poll_event() {
            match event {
                Event::MessageReceived(text) => texts.push(text),
                other => panic!("unexpected link event {other:?}"),
            }
        }
    }
    // Every reply is an ACK: all frames valid.
    assert!(
        replies.iter().all(|&b| b == 0x06),
        "link replied {replies:?}"
    );
    texts
}

fn assemble(texts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut assembler = MessageAssembler::new(1 << 20);
    let mut out = Vec::new();
    for text in texts {
        assembler.push(text).unwrap();
        out.extend(std::iter::from_fn(|| assembler.next_message()));
    }
    assert!(
        assembler.finish().is_none(),
        "a message was left incomplete"
    );
    out
}

#[test]
fn horiba_yumizen_h500_raw_capture() {
    let capture = common::data("captures/horiba_yumizen_h500_raw.bin");
    let texts = receive(&capture);
    // 125 frames (89 ETB of 240 bytes) → 36 E1381 messages, one record each.
    assert_eq!(texts.len(), 36);
    assert_eq!(
        texts,
        common::deframe(&capture),
        "the test's own de-framing agrees with the link"
    );
    let messages = assemble(&texts);
    assert_eq!(messages.len(), 1);
    let message = Message::parse_strict(&messages[0]).unwrap();
    assert_eq!(common::type_string(message.records()), "HPOCM{4}R{27}L");
    for record in message.records() {
        assert_eq!(
            RecordBuf::from_record(record)
                .to_bytes(record.delimiters())
                .unwrap(),
            record.raw()
        );
    }
    let header = message.header();
    assert_eq!(header.version().text(), "LIS2-A2");
    assert!(header.date_time().timestamp().unwrap().is_some());
    let order = message
        .patients()
        .next()
        .unwrap()
        .children()
        .next()
        .unwrap();
    assert_eq!(
        order
            .children()
            .filter(|r| r.kind() == RecordType::Result)
            .count(),
        27
    );
    let codes: Vec<String> = message
        .results()
        .filter_map(|r| r.test_code().map(|c| c.into_owned()))
        .collect();
    assert_eq!(codes.len(), 27);
    assert!(codes.iter().any(|c| c == "WBC"), "{codes:?}");
}

#[test]
fn other_wire_exact_captures() {
    for (path, types) in [
        (
            "captures/abbott-architect/result_session_rebuilt.bin",
            "HPOR{3}L",
        ),
        (
            "captures/abbott-architect/host_query_session_rebuilt.bin",
            "HQL",
        ),
        (
            "captures/senaite/cobas_c111_frames_from_test_cobas_c111.py.bin",
            "HPORCML",
        ),
    ] {
        let capture = common::data(path);
        let mut session = vec![0x05];
        session.extend(capture.iter().filter(|&&b| b != 0x05 && b != 0x04));
        session.push(0x04);
        let messages = assemble(&receive(&session));
        assert_eq!(messages.len(), 1, "{path}");
        let message = Message::parse_strict(&messages[0]).unwrap();
        assert_eq!(common::type_string(message.records()), types, "{path}");
    }
}
