//! MLLP framing: pipelining, junk, lenient mode, size limits, custom sequences, release 2.

mod common;

use bytes::{Bytes, BytesMut};
use common::decode_chunked;
use mllp_hl7::{
    CommitAck, ConfigError, Decoded, EncodeError, FrameError, MllpConfig, MllpDecoder, MllpFrame,
    SliceEvent, encode_frame,
};
use proptest::prelude::*;

const VT: u8 = 0x0B;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(payload, &mut out).unwrap();
    out
}

fn message(payload: &str) -> MllpFrame {
    MllpFrame::Message(Bytes::copy_from_slice(payload.as_bytes()))
}

#[test]
fn pipelined_frames_in_one_read_all_come_out() {
    let mut stream = Vec::new();
    for i in 0..100 {
        stream.extend(frame(
            format!("MSH|^~\\&|A|B|C|D|1||ORU^R01|{i}|P|2.5\rPID|{i}\r").as_bytes(),
        ));
    }
    let events = decode_chunked(&mut MllpDecoder::new(), &stream, stream.len());
    assert_eq!(events.len(), 100);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            *event,
            message(&format!(
                "MSH|^~\\&|A|B|C|D|1||ORU^R01|{i}|P|2.5\rPID|{i}\r"
            ))
        );
    }
}

#[test]
fn junk_before_a_start_block_is_skipped_and_reported() {
    let mut stream = b"GARBAGE".to_vec();
    stream.extend(frame(b"MSH|A"));
    stream.extend_from_slice(b"\n\x00xy");
    stream.extend(frame(b"MSH|B"));
    stream.extend_from_slice(b"tail");
    for chunk in [1, 2, 3, 5, stream.len()] {
        let events = decode_chunked(&mut MllpDecoder::new(), &stream, chunk);
        assert_eq!(
            events,
            vec![
                MllpFrame::Junk { len: 7, offset: 0 },
                message("MSH|A"),
                MllpFrame::Junk { len: 4, offset: 15 },
                message("MSH|B"),
                MllpFrame::Junk { len: 4, offset: 27 },
            ],
            "chunk {chunk}"
        );
    }
}

#[test]
fn junk_without_any_start_block_is_drained_not_buffered() {
    let mut decoder = MllpDecoder::new();
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        buf.extend_from_slice(&[b'x'; 1024]);
        assert_eq!(decoder.decode(&mut buf), None);
        assert!(buf.is_empty(), "junk must not accumulate");
    }
    // Counted while it waits to be reported: what a caller awaiting a reply can tell.
    assert_eq!(decoder.unreported_junk(), 1_024_000);
    buf.extend(frame(b"MSH|ok"));
    assert_eq!(
        decoder.decode(&mut buf),
        Some(MllpFrame::Junk {
            len: 1_024_000,
            offset: 0
        })
    );
    assert_eq!(decoder.decode(&mut buf), Some(message("MSH|ok")));
    assert_eq!(decoder.unreported_junk(), 0);
}

#[test]
fn strict_mode_treats_fs_without_cr_as_data() {
    let stream = b"\x0bMSH|a\x1cb\x1c\x0d";
    let events = decode_chunked(&mut MllpDecoder::new(), stream, 1);
    assert_eq!(events, vec![message("MSH|a\x1cb")]);
    // At EOF a frame that ended in FS alone is refused as truncated in strict mode.
    let events = decode_chunked(&mut MllpDecoder::new(), b"\x0bMSH|a\x1c", 64);
    assert_eq!(
        events,
        vec![MllpFrame::Error(FrameError::Truncated {
            offset: 0,
            len: 6
        })]
    );
}

#[test]
fn lenient_mode_accepts_fs_without_cr() {
    let config = MllpConfig::default().with_lenient(true);
    // FS alone, then the next frame; FS CR; FS CR LF; FS at the very end of a read.
    let stream = b"\x0bMSH|a\x1c\x0bMSH|b\x1c\x0d\x0bMSH|c\x1c\x0d\x0a\x00\x0bMSH|d\x1c";
    for chunk in [1, 2, 4, stream.len()] {
        let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
        let events = decode_chunked(&mut decoder, stream, chunk);
        assert_eq!(
            events,
            vec![
                message("MSH|a"),
                message("MSH|b"),
                message("MSH|c"),
                message("MSH|d")
            ],
            "chunk {chunk}"
        );
    }
}

#[test]
fn lenient_frame_is_delivered_without_waiting_for_the_cr() {
    // A sender that writes FS without CR and then waits for the ACK must get it.
    let mut decoder = MllpDecoder::with_config(MllpConfig::default().with_lenient(true)).unwrap();
    let mut buf = BytesMut::from(&b"\x0bMSH|a\x1c"[..]);
    assert_eq!(decoder.decode(&mut buf), Some(message("MSH|a")));
    // The late CR is swallowed, not reported as junk.
    buf.extend_from_slice(b"\x0d\x0bMSH|b\x1c\x0d");
    assert_eq!(decoder.decode(&mut buf), Some(message("MSH|b")));
    assert_eq!(decoder.decode_eof(&mut buf), None);
}

#[test]
fn oversized_frame_is_refused_and_decoding_resynchronises() {
    let config = MllpConfig::default().with_max_message_size(10);
    let mut stream = frame(b"MSH|0123456789ABCDEF");
    stream.extend(frame(b"MSH|ok"));
    for chunk in [1, 3, 7, stream.len()] {
        let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
        let events = decode_chunked(&mut decoder, &stream, chunk);
        assert_eq!(
            events,
            vec![
                MllpFrame::Error(FrameError::TooLarge { offset: 0, max: 10 }),
                message("MSH|ok")
            ],
            "chunk {chunk}"
        );
    }
}

/// A reader timing out unfinished frames sees an oversized frame being skipped as still in
/// a frame (its bytes are consumed, not buffered), and the stream position moving with them.
#[test]
fn an_oversized_frame_being_skipped_is_still_in_frame() {
    let config = MllpConfig::default().with_max_message_size(10);
    let mut decoder = MllpDecoder::with_config(config).unwrap();
    let mut buf = BytesMut::from(&b"\x0bMSH|0123456789ABCDEF"[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Some(MllpFrame::Error(FrameError::TooLarge {
            offset: 0,
            max: 10
        }))
    );
    assert_eq!(decoder.decode(&mut buf), None);
    assert!(buf.is_empty(), "skipped bytes are not kept");
    assert!(decoder.in_frame());
    let before = decoder.position();
    buf.extend_from_slice(b"more");
    assert_eq!(decoder.decode(&mut buf), None);
    assert!(decoder.in_frame());
    assert_eq!(decoder.position(), before + 4);
    buf.extend_from_slice(b"\x1c\x0d");
    assert_eq!(decoder.decode(&mut buf), None);
    assert!(!decoder.in_frame(), "the end block ends the skipped frame");
}

#[test]
fn memory_stays_bounded_for_an_unterminated_frame() {
    let config = MllpConfig::default().with_max_message_size(4096);
    let mut decoder = MllpDecoder::with_config(config).unwrap();
    let mut buf = BytesMut::from(&[VT][..]);
    let mut errors = 0;
    for _ in 0..1000 {
        buf.extend_from_slice(&[b'A'; 1000]);
        while let Some(event) = decoder.decode(&mut buf) {
            assert!(matches!(
                event,
                MllpFrame::Error(FrameError::TooLarge { .. })
            ));
            errors += 1;
        }
        assert!(buf.len() <= 4096 + 1000 + 3, "buffer grew to {}", buf.len());
    }
    assert_eq!(errors, 1, "one error per refused frame");
    buf.extend(frame(b"MSH|after"));
    assert_eq!(decoder.decode(&mut buf), Some(message("MSH|after")));
}

#[test]
fn a_new_start_block_inside_a_frame_drops_the_partial_frame() {
    let stream = b"\x0bMSH|cut off\x0bMSH|whole\x1c\x0d";
    let events = decode_chunked(&mut MllpDecoder::new(), stream, 1);
    assert_eq!(
        events,
        vec![
            MllpFrame::Error(FrameError::Interrupted { offset: 0, len: 11 }),
            message("MSH|whole")
        ]
    );
}

#[test]
fn custom_multibyte_sequences_split_anywhere() {
    let config = MllpConfig::default()
        .with_start_block(b"START-BLOCK".to_vec())
        .with_end_block(b"END-BLOCK".to_vec())
        .with_trailer(b"\r\n".to_vec());
    let mut stream = b"STARjunk".to_vec();
    for payload in ["MSH|one\rPID|1\r", "", "MSH|three END-BLOC START"] {
        let mut framed = Vec::new();
        config.encode(payload.as_bytes(), &mut framed).unwrap();
        stream.extend(framed);
    }
    for chunk in 1..=stream.len() {
        let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
        let events = decode_chunked(&mut decoder, &stream, chunk);
        assert_eq!(
            events,
            vec![
                MllpFrame::Junk { len: 8, offset: 0 },
                message("MSH|one\rPID|1\r"),
                message(""),
                message("MSH|three END-BLOC START"),
            ],
            "chunk {chunk}"
        );
    }
}

#[test]
fn socketreader_style_single_byte_sequences() {
    // sob = 0x02 (STX), eod = 0x03 (ETX) as the end block, eob empty (no trailer).
    let config = MllpConfig::default()
        .with_start_block(vec![0x02])
        .with_end_block(vec![0x03])
        .with_trailer(Vec::new());
    let mut decoder = MllpDecoder::with_config(config).unwrap();
    let events = decode_chunked(&mut decoder, b"\x02MSH|a\x03\x02MSH|b\x03", 2);
    assert_eq!(events, vec![message("MSH|a"), message("MSH|b")]);
}

#[test]
fn truncated_frame_at_end_of_stream_is_reported() {
    let events = decode_chunked(&mut MllpDecoder::new(), b"\x0bMSH|abc", 3);
    assert_eq!(
        events,
        vec![MllpFrame::Error(FrameError::Truncated {
            offset: 0,
            len: 7
        })]
    );
}

#[test]
fn release_2_commit_blocks_encode_and_decode() {
    assert_eq!(CommitAck::Ack.to_block(), [0x0B, 0x06, 0x1C, 0x0D]);
    assert_eq!(CommitAck::Nak.to_block(), [0x0B, 0x15, 0x1C, 0x0D]);
    let mut wire = Vec::new();
    MllpConfig::default()
        .encode_commit(CommitAck::Ack, &mut wire)
        .unwrap();
    MllpConfig::default()
        .encode_commit(CommitAck::Nak, &mut wire)
        .unwrap();
    // mllp-rs 0.1.1 sends 0x0F as its NAK: not a commit block, so it stays a message.
    wire.extend_from_slice(&[0x0B, 0x0F, 0x1C, 0x0D]);
    let events = decode_chunked(&mut MllpDecoder::new(), &wire, 1);
    assert_eq!(
        events,
        vec![
            MllpFrame::Commit(CommitAck::Ack),
            MllpFrame::Commit(CommitAck::Nak),
            MllpFrame::Message(Bytes::from_static(&[0x0F])),
        ]
    );
    assert_eq!(CommitAck::from_block(&[0x0B, 0x0F, 0x1C, 0x0D]), None);
    assert_eq!(
        CommitAck::from_block(&CommitAck::Nak.to_block()),
        Some(CommitAck::Nak)
    );
    assert_eq!(CommitAck::from_block(&[0x0B, 0x06]), None);
}

#[test]
fn encoding_refuses_payloads_that_would_break_framing() {
    let mut out = Vec::new();
    assert_eq!(
        encode_frame(b"MSH|\x0b", &mut out),
        Err(EncodeError::ContainsStartBlock { at: 4 })
    );
    assert_eq!(
        encode_frame(b"MSH|\x1c\x0d", &mut out),
        Err(EncodeError::ContainsEndBlock { at: 4 })
    );
    assert_eq!(encode_frame(b"MSH|\x1cx", &mut out), Ok(()));
    let lenient = MllpConfig::default().with_lenient(true);
    assert_eq!(
        lenient.encode(b"MSH|\x1cx", &mut out),
        Err(EncodeError::ContainsEndBlock { at: 4 })
    );
    let small = MllpConfig::default().with_max_message_size(3);
    assert_eq!(
        small.encode(b"MSH|", &mut out),
        Err(EncodeError::TooLarge { len: 4, max: 3 })
    );
}

#[test]
fn invalid_configs_are_refused() {
    let refused = |config: MllpConfig| MllpDecoder::with_config(config).unwrap_err();
    assert_eq!(
        refused(MllpConfig::default().with_start_block(Vec::new())),
        ConfigError::EmptyStartBlock
    );
    assert_eq!(
        refused(MllpConfig::default().with_end_block(Vec::new())),
        ConfigError::EmptyEndBlock
    );
    assert_eq!(
        refused(MllpConfig::default().with_end_block(vec![VT])),
        ConfigError::StartEqualsEnd
    );
    assert_eq!(
        refused(MllpConfig::default().with_max_message_size(0)),
        ConfigError::ZeroMaxMessageSize
    );
    assert!(
        ConfigError::EmptyStartBlock
            .to_string()
            .starts_with("mllp config: ")
    );
}

/// The sans-IO encoder refuses the same settings the decoder does, and writes nothing: a
/// frame without a start block, or with start and end blocks alike, no receiver can find.
#[test]
fn encoding_with_invalid_settings_writes_nothing() {
    for (config, expected) in [
        (
            MllpConfig::default().with_start_block(Vec::new()),
            ConfigError::EmptyStartBlock,
        ),
        (
            MllpConfig::default().with_end_block(Vec::new()),
            ConfigError::EmptyEndBlock,
        ),
        (
            MllpConfig::default().with_end_block(vec![VT]),
            ConfigError::StartEqualsEnd,
        ),
        (
            MllpConfig::default().with_max_message_size(0),
            ConfigError::ZeroMaxMessageSize,
        ),
    ] {
        let mut wire = Vec::new();
        assert_eq!(
            config.encode(b"MSH|^~\\&|A\r", &mut wire),
            Err(EncodeError::Config(expected.clone()))
        );
        assert_eq!(
            config.check_payload(b"MSH"),
            Err(EncodeError::Config(expected.clone()))
        );
        assert_eq!(
            config.encode_commit(CommitAck::Ack, &mut wire),
            Err(EncodeError::Config(expected.clone()))
        );
        assert!(wire.is_empty(), "{expected}: wrote {wire:?}");
        assert_eq!(
            EncodeError::Config(expected.clone()).to_string(),
            expected.to_string()
        );
    }
}

#[test]
fn slice_api_reports_ranges_into_the_callers_buffer() {
    let mut decoder = MllpDecoder::new();
    let mut buf: Vec<u8> = b"xx".to_vec();
    buf.extend(frame(b"MSH|a"));
    let Decoded { consumed, event } = decoder.decode_slice(&buf);
    assert_eq!(
        (consumed, event),
        (2, Some(SliceEvent::Junk { len: 2, offset: 0 }))
    );
    buf.drain(..consumed);
    let step = decoder.decode_slice(&buf);
    assert_eq!(step.event, Some(SliceEvent::Message(1..6)));
    assert_eq!(&buf[1..6], b"MSH|a");
    buf.drain(..step.consumed);
    assert!(decoder.decode_slice(&buf).needs_more());
    assert_eq!(decoder.position(), 10);
}

fn hl7ish_payload() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes except the start block, and no FS CR pair (what a valid payload is).
    proptest::collection::vec(any::<u8>().prop_filter("no VT", |b| *b != VT), 0..300).prop_map(
        |mut bytes| {
            for i in 1..bytes.len() {
                if bytes[i - 1] == 0x1C && bytes[i] == 0x0D {
                    bytes[i] = b'x';
                }
            }
            bytes
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// encode then decode gives the payloads back, whatever the read boundaries.
    #[test]
    fn frames_round_trip_under_any_chunking(
        payloads in proptest::collection::vec(hl7ish_payload(), 0..12),
        cuts in proptest::collection::vec(1usize..64, 1..64),
    ) {
        let mut stream = Vec::new();
        for payload in &payloads {
            encode_frame(payload, &mut stream).unwrap();
        }
        let mut decoder = MllpDecoder::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = &stream[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(event) = decoder.decode(&mut buf) {
                out.push(event);
            }
        }
        prop_assert_eq!(decoder.decode_eof(&mut buf), None);
        let expected: Vec<MllpFrame> = payloads
            .iter()
            .map(|p| match CommitAck::from_payload(p) {
                Some(commit) => MllpFrame::Commit(commit),
                None => MllpFrame::Message(Bytes::copy_from_slice(p)),
            })
            .collect();
        prop_assert_eq!(out, expected);
    }

    /// Custom multi-byte sequences round-trip too (payloads free of the sequences).
    #[test]
    fn custom_sequences_round_trip_under_any_chunking(
        payloads in proptest::collection::vec("[a-z|^~ ]{0,40}", 0..8),
        chunk in 1usize..20,
    ) {
        let config = MllpConfig::default()
            .with_start_block(b"<<SB>>".to_vec())
            .with_end_block(b"<<EB>>".to_vec())
            .with_trailer(b"\r".to_vec());
        let mut stream = Vec::new();
        for payload in &payloads {
            config.encode(payload.as_bytes(), &mut stream).unwrap();
        }
        let mut decoder = MllpDecoder::with_config(config).unwrap();
        let events = decode_chunked(&mut decoder, &stream, chunk);
        let expected: Vec<MllpFrame> = payloads.iter().map(|p| message(p)).collect();
        prop_assert_eq!(events, expected);
    }

    /// Arbitrary bytes: no panic, every byte accounted for, buffer bounded.
    #[test]
    fn arbitrary_input_never_panics_and_accounts_for_every_byte(
        stream in proptest::collection::vec(
            prop_oneof![Just(0x0Bu8), Just(0x1C), Just(0x0D), Just(0x06), any::<u8>()], 0..2000),
        chunk in 1usize..50,
        lenient in any::<bool>(),
        max in 1usize..100,
    ) {
        let config = MllpConfig::default().with_lenient(lenient).with_max_message_size(max);
        let mut decoder = MllpDecoder::with_config(config).unwrap();
        let mut buf = BytesMut::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(event) = decoder.decode(&mut buf) {
                if let MllpFrame::Message(payload) = event {
                    prop_assert!(payload.len() <= max);
                }
            }
            prop_assert!(buf.len() <= max + chunk + 3);
        }
        while decoder.decode_eof(&mut buf).is_some() {}
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoder.position(), stream.len() as u64);
    }
}

/// With custom sequences, the end of a payload and the end block appended to it can form
/// a frame boundary together: an LF-terminated payload followed by the end block `LF LF`
/// ends one byte early (the payload's last LF is lost and one LF left over as junk), and a
/// payload ending in `A` before the end block `BC` forms the start block `AB`. `encode`
/// refuses such payloads as it refuses those that contain a boundary outright.
#[test]
fn encoding_refuses_a_payload_whose_tail_and_the_end_block_form_a_boundary() {
    let blank_line = MllpConfig::default()
        .with_end_block(b"\n\n".to_vec())
        .with_trailer(Vec::new());
    let payload = b"MSH|^~\\&|A\nPID|1\n";
    let mut out = Vec::new();
    assert_eq!(
        blank_line.encode(payload, &mut out),
        Err(EncodeError::ContainsEndBlock {
            at: payload.len() - 1
        })
    );
    assert!(out.is_empty(), "nothing written");
    assert!(blank_line.check_payload(payload).is_err());
    // Without the trailing LF it frames and decodes back whole.
    let payload = b"MSH|^~\\&|A\nPID|1";
    blank_line.encode(payload, &mut out).unwrap();
    let mut decoder = MllpDecoder::with_config(blank_line).unwrap();
    assert_eq!(
        decode_chunked(&mut decoder, &out, out.len()),
        vec![message("MSH|^~\\&|A\nPID|1")]
    );

    let overlapping = MllpConfig::default()
        .with_start_block(b"AB".to_vec())
        .with_end_block(b"BC".to_vec())
        .with_trailer(b"\r".to_vec());
    assert_eq!(
        overlapping.check_payload(b"xA"),
        Err(EncodeError::ContainsStartBlock { at: 1 })
    );
    // Standard MLLP: a payload ending in FS is fine (FS FS CR: the first FS is data).
    assert_eq!(MllpConfig::default().check_payload(b"x\x1c"), Ok(()));
}

/// An oversized frame cut short by a new start block is refused as too large however the
/// stream is read: in one read the decoder used to see the new start block first and
/// report `Interrupted` with a length over the maximum, byte by byte it reported
/// `TooLarge`.
#[test]
fn an_oversized_frame_interrupted_by_a_start_block_is_too_large_in_any_read() {
    let mut stream = vec![VT];
    stream.extend_from_slice(b"0123456789");
    stream.extend(frame(b"MSH|ok"));
    let config = MllpConfig::default().with_max_message_size(6);
    for chunk in [stream.len(), 7, 1] {
        let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
        assert_eq!(
            decode_chunked(&mut decoder, &stream, chunk),
            vec![
                MllpFrame::Error(FrameError::TooLarge { offset: 0, max: 6 }),
                message("MSH|ok"),
            ],
            "reads of {chunk} bytes"
        );
    }
    // At the limit it is still an interrupted frame.
    let mut stream = vec![VT];
    stream.extend_from_slice(b"012345");
    stream.extend(frame(b"MSH|ok"));
    for chunk in [stream.len(), 1] {
        let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
        assert_eq!(
            decode_chunked(&mut decoder, &stream, chunk),
            vec![
                MllpFrame::Error(FrameError::Interrupted { offset: 0, len: 6 }),
                message("MSH|ok"),
            ],
            "reads of {chunk} bytes"
        );
    }
}

/// Lenient mode skips NUL, CR and LF between frames silently, but once junk has begun
/// they are part of it: the junk reported is the same however the stream is read (byte
/// by byte, padding after junk used to be skipped and the junk reported shorter).
#[test]
fn lenient_padding_after_junk_counts_as_junk_in_any_read() {
    let mut stream = b"\r\nab\n\0".to_vec();
    stream.extend(frame(b"MSH|1"));
    stream.extend_from_slice(b"\nx\r");
    let config = MllpConfig::default().with_lenient(true);
    for chunk in [stream.len(), 3, 1] {
        let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
        assert_eq!(
            decode_chunked(&mut decoder, &stream, chunk),
            vec![
                MllpFrame::Junk { len: 4, offset: 2 },
                message("MSH|1"),
                MllpFrame::Junk { len: 2, offset: 15 },
            ],
            "reads of {chunk} bytes"
        );
    }
}

/// Bytes after the end of an oversized frame are junk like any other, however the
/// stream is read: once the frame had been refused early (its first bytes in one read,
/// its end in a later one), the decoder skipped silently up to the next start block, so
/// junk after the frame was reported in one read and lost byte by byte.
#[test]
fn junk_after_an_oversized_frame_is_reported_in_any_read() {
    let mut stream = vec![VT];
    stream.extend_from_slice(b"0123456789\x1c\x0d");
    stream.extend_from_slice(b"junk");
    stream.extend(frame(b"MSH|ok"));
    for lenient in [false, true] {
        let config = MllpConfig::default()
            .with_max_message_size(6)
            .with_lenient(lenient);
        for chunk in [stream.len(), 5, 1] {
            let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
            assert_eq!(
                decode_chunked(&mut decoder, &stream, chunk),
                vec![
                    MllpFrame::Error(FrameError::TooLarge { offset: 0, max: 6 }),
                    MllpFrame::Junk { len: 4, offset: 13 },
                    message("MSH|ok"),
                ],
                "reads of {chunk} bytes, lenient {lenient}"
            );
        }
    }
}

/// Custom sequences: when a payload's last bytes, the end block and the trailer are the
/// beginning of a longer start block (start `ABC`, end `B`, a payload ending in `A`), a
/// decoder cannot end the frame at its end block before the next bytes show that no start
/// block begins there: a sender waiting for the reply waits for ever, and at the end of the
/// stream the frame was reported truncated. `encode` accepted such payloads; it refuses
/// them now, as it refuses a payload whose tail forms the whole start block.
#[test]
fn encoding_refuses_a_payload_whose_tail_and_the_end_block_begin_a_start_block() {
    let config = MllpConfig::default()
        .with_start_block(b"ABC".to_vec())
        .with_end_block(b"B".to_vec())
        .with_trailer(Vec::new());
    let payload = b"MSH|^~\\&|x\rNTE|1||A";
    // What a receiver makes of the frame: nothing until more bytes come.
    let mut wire = b"ABC".to_vec();
    wire.extend_from_slice(payload);
    wire.push(b'B');
    let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(decoder.decode(&mut buf), None, "the frame is held");
    assert!(matches!(
        decoder.decode_eof(&mut buf),
        Some(MllpFrame::Error(FrameError::Truncated { .. }))
    ));
    // So the encoder refuses it, at the byte where the start block would begin.
    let mut out = Vec::new();
    assert_eq!(
        config.encode(payload, &mut out),
        Err(EncodeError::ContainsStartBlock {
            at: payload.len() - 1
        })
    );
    assert!(out.is_empty(), "nothing written");
    // With a trailer the frame ends in `AB\r`, which begins no start block.
    let with_trailer = config.clone().with_trailer(b"\r".to_vec());
    with_trailer.encode(payload, &mut out).unwrap();
    let mut decoder = MllpDecoder::with_config(with_trailer).unwrap();
    let mut buf = BytesMut::from(&out[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Some(MllpFrame::Message(Bytes::copy_from_slice(payload)))
    );
    // Standard MLLP has a one-byte start block: the frame's last bytes begin none.
    assert_eq!(MllpConfig::default().check_payload(b"x\x1c"), Ok(()));
}

fn small_sequence(min: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], min..4)
}

/// Data over the delimiters' letters and one letter of its own, up to `max - 1` bytes.
fn small_data(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![Just(b'a'), Just(b'b'), Just(b'c'), Just(b'x')],
        0..max,
    )
}

/// A framing with these delimiters, strict or lenient.
fn framing(start: Vec<u8>, end: Vec<u8>, trailer: Vec<u8>, lenient: bool) -> MllpConfig {
    MllpConfig::default()
        .with_start_block(start)
        .with_end_block(end)
        .with_trailer(trailer)
        .with_lenient(lenient)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        max_global_rejects: 100_000,
        ..ProptestConfig::default()
    })]

    /// Any start block, end block and trailer (over a three-letter alphabet, so they
    /// overlap each other and the payloads in every way), strict or lenient: every payload
    /// `encode` accepts comes back whole, whatever the reads (found the payload whose tail
    /// and end block began the start block).
    #[test]
    fn what_encode_accepts_decodes_back_with_any_sequences(
        start in small_sequence(1),
        end in small_sequence(1),
        trailer in small_sequence(0),
        payloads in proptest::collection::vec(small_data(8), 1..4),
        chunk in 1usize..6,
        lenient in any::<bool>(),
    ) {
        let config = framing(start, end, trailer, lenient);
        prop_assume!(config.validate().is_ok());
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for payload in &payloads {
            if config.encode(payload, &mut stream).is_ok() {
                expected.push(MllpFrame::Message(Bytes::copy_from_slice(payload)));
            }
        }
        let mut decoder = MllpDecoder::with_config(config).unwrap();
        prop_assert_eq!(decode_chunked(&mut decoder, &stream, chunk), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4000,
        max_global_rejects: 100_000,
        ..ProptestConfig::default()
    })]

    /// Any stream, well formed or not, under any start block, end block and trailer that
    /// overlap each other and the data, strict or lenient: the events (messages, junk with
    /// its offsets, refused or cut-off frames) are the same however the stream is cut into
    /// reads, as the decoder promises.
    #[test]
    fn events_do_not_depend_on_the_reads(
        start in small_sequence(1),
        end in small_sequence(1),
        trailer in small_sequence(0),
        stream in small_data(16),
        chunk in 1usize..6,
        lenient in any::<bool>(),
    ) {
        let config = framing(start, end, trailer, lenient).with_max_message_size(6);
        prop_assume!(config.validate().is_ok());
        let whole = decode_chunked(&mut MllpDecoder::with_config(config.clone()).unwrap(), &stream, stream.len());
        let pieces = decode_chunked(&mut MllpDecoder::with_config(config).unwrap(), &stream, chunk);
        prop_assert_eq!(whole, pieces);
    }
}
