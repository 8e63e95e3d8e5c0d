//! Every sample message and captured ACK in `tests/data`, replayed through the MLLP
//! decoder whole, byte by byte, split at every byte boundary and in irregular reads: the
//! same payloads come out, and they read as the same HL7 messages.

use bytes::BytesMut;
use mllp_hl7::{Message, MllpConfig, MllpDecoder, MllpFrame, encode_frame};

/// Every sample message (`.hl7`) and captured ACK (`.mllp`) in `tests/data`, by name.
fn samples() -> Vec<String> {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".hl7") || name.ends_with(".mllp"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "samples missing from {dir}: {names:?}");
    names
}

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The wire bytes of a sample (captures are framed already) and its payload.
fn wire_and_payload(name: &str) -> (Vec<u8>, Vec<u8>) {
    let raw = sample(name);
    if name.ends_with(".mllp") {
        assert_eq!(raw.first(), Some(&0x0B), "{name}: starts with VT");
        assert!(raw.ends_with(b"\x1c\x0d"), "{name}: ends with FS CR");
        let payload = raw[1..raw.len() - 2].to_vec();
        (raw, payload)
    } else {
        let mut wire = Vec::new();
        encode_frame(&raw, &mut wire).unwrap_or_else(|e| panic!("{name}: {e}"));
        (wire, raw)
    }
}

/// Decodes `stream` cut at `cuts`, returning every event up to the end of the stream.
fn decode(config: &MllpConfig, stream: &[u8], cuts: &[usize]) -> Vec<MllpFrame> {
    let mut decoder = MllpDecoder::with_config(config.clone()).unwrap();
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain([&stream.len()]) {
        buf.extend_from_slice(&stream[from..to]);
        from = to;
        while let Some(event) = decoder.decode(&mut buf) {
            events.push(event);
        }
    }
    while let Some(event) = decoder.decode_eof(&mut buf) {
        events.push(event);
    }
    assert_eq!(decoder.position(), stream.len() as u64);
    events
}

#[test]
fn each_sample_decodes_alone_at_every_split() {
    let samples = samples();
    for lenient in [false, true] {
        let config = MllpConfig::default().with_lenient(lenient);
        for name in &samples {
            let (wire, payload) = wire_and_payload(name);
            let expected = vec![MllpFrame::Message(payload.clone().into())];
            assert_eq!(decode(&config, &wire, &[]), expected, "{name}: whole");
            for cut in 0..=wire.len() {
                assert_eq!(
                    decode(&config, &wire, &[cut]),
                    expected,
                    "{name}: split at {cut}, lenient {lenient}"
                );
            }
            let every_byte: Vec<usize> = (1..wire.len()).collect();
            assert_eq!(
                decode(&config, &wire, &every_byte),
                expected,
                "{name}: byte by byte"
            );
        }
    }
}

#[test]
fn all_samples_pipelined_with_noise_decode_in_any_reads() {
    // Junk before the first frame, NUL and CR LF between frames (Mirth #249, FS CR LF
    // senders), everything in one stream.
    let samples = samples();
    let mut stream = b"\r\n".to_vec();
    let mut payloads = Vec::new();
    for name in &samples {
        let (wire, payload) = wire_and_payload(name);
        stream.extend_from_slice(&wire);
        stream.extend_from_slice(b"\0\r\n");
        payloads.push(payload);
    }
    for lenient in [false, true] {
        let config = MllpConfig::default().with_lenient(lenient);
        let whole = decode(&config, &stream, &[]);
        let messages: Vec<&[u8]> = whole
            .iter()
            .filter_map(|event| match event {
                MllpFrame::Message(payload) => Some(&payload[..]),
                _ => None,
            })
            .collect();
        assert_eq!(
            messages,
            payloads.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        let junk = whole.len() - messages.len();
        // Strict: the leading CR LF and each NUL CR LF are reported; lenient: nothing.
        assert_eq!(junk, if lenient { 0 } else { samples.len() + 1 });
        // Irregular reads (a fixed pseudo-random sequence), byte by byte, and fixed sizes.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut cuts = Vec::new();
        let mut at = 0;
        loop {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            at += 1 + (state % 1500) as usize;
            if at >= stream.len() {
                break;
            }
            cuts.push(at);
        }
        assert_eq!(decode(&config, &stream, &cuts), whole, "irregular reads");
        let every_byte: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(decode(&config, &stream, &every_byte), whole, "byte by byte");
        for size in [2, 3, 7, 64, 1460] {
            let cuts: Vec<usize> = (size..stream.len()).step_by(size).collect();
            assert_eq!(decode(&config, &stream, &cuts), whole, "reads of {size}");
        }
    }
    // Every payload reads as HL7, with the segments of the sample file itself.
    for (name, payload) in samples.iter().zip(&payloads) {
        let message = Message::parse(payload).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(message.msh().is_some(), "{name}");
        assert!(message.segment_count() >= 2, "{name}");
    }
}
