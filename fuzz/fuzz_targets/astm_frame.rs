//! Arbitrary bytes into the ASTM frame decoder and a link (receiving, or with a message of its
//! own to send, under any contention policy), with invariants checked.
#![no_main]

use std::time::{Duration, Instant};

use astm_frame::{
    ContentionPolicy, DecoderConfig, Event, FrameDecoder, FrameScanner, Item, Leniency, Link,
    LinkConfig, Role, encode_frame,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks leniency, a small frame limit and the chunk size; the second the
    // link's role, contention policy, whether it has a message to send, is busy, and turns
    // busy on and off before chunks that start with a byte >= 0x80.
    let [knobs, link_knobs, bytes @ ..] = data else {
        return;
    };
    let (knobs, link_knobs) = (*knobs, *link_knobs);
    let leniency = if knobs & 1 == 1 {
        Leniency::ALL
    } else {
        Leniency::STRICT
    };
    let config = DecoderConfig {
        max_frame_len: if knobs & 2 == 2 { 32 } else { 64_000 },
        leniency,
    };
    let chunk = usize::from(knobs >> 2) + 1;

    // 1. Whole buffer: every strictly valid frame re-encodes to its exact bytes.
    let mut scanner = FrameScanner::new(config);
    let mut consumed = 0;
    for item in scanner.iter(bytes) {
        match item {
            Item::Frame(f) => {
                consumed += f.raw().len();
                if f.is_valid() && leniency == Leniency::STRICT {
                    let mut again = Vec::new();
                    encode_frame(f.number().unwrap(), f.text(), f.end(), &mut again);
                    assert_eq!(again, f.raw());
                    assert!(f.checksum_ok());
                }
            }
            Item::Control(_) => consumed += 1,
            Item::Junk(b) | Item::Record(b) | Item::Broken { bytes: b, .. } => consumed += b.len(),
        }
    }
    assert!(consumed <= bytes.len());

    // 2. Chunked decoding never holds more than one frame plus one chunk.
    let mut decoder = FrameDecoder::new(config);
    for piece in bytes.chunks(chunk) {
        decoder.push(piece);
        while decoder.next_item().is_some() {}
        assert!(decoder.buffered() <= config.max_frame_len + chunk);
    }

    // 3. A receiving link never delivers a message containing a frame that failed its checks:
    //    every delivered message splits into texts of valid frames (or bare records).
    let role = if link_knobs & 1 == 1 {
        Role::Instrument
    } else {
        Role::Computer
    };
    let mut link_config = LinkConfig::new(role);
    link_config.decoder = config;
    link_config.contention = match (link_knobs >> 1) % 5 {
        0 => ContentionPolicy::ByRole,
        1 => ContentionPolicy::Yield,
        2 => ContentionPolicy::Insist,
        3 => ContentionPolicy::AckAtOnce,
        _ => ContentionPolicy::AckAfter(Duration::from_millis(300)),
    };
    let mut link = Link::new(link_config);
    let mut now = Instant::now();
    if link_knobs & 0x10 == 0x10 {
        link.send(b"H|\\^&\rL|1|N\r".to_vec(), now);
    }
    let mut busy = link_knobs & 0x20 == 0x20;
    link.set_busy(busy);
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let mut check = FrameScanner::new(config);
    for item in check.iter(bytes) {
        match item {
            Item::Frame(f) if f.is_valid() && !f.text().is_empty() => {
                pieces.push(f.text().to_vec())
            }
            Item::Record(r) => {
                let mut record = r.to_vec();
                record.push(b'\r');
                pieces.push(record);
            }
            _ => {}
        }
    }
    for piece in bytes.chunks(chunk) {
        if link_knobs & 0x40 == 0x40 && piece[0] & 0x80 == 0x80 {
            // The application's receive buffer filling and draining in any state.
            busy = !busy;
            link.set_busy(busy);
        }
        link.handle_input(piece, now);
        now += Duration::from_millis(100);
        link.handle_timeout(now);
        // Every timer that was due has run: one still due would have an I/O loop call
        // `handle_timeout` again and again.
        assert!(
            link.poll_timeout().is_none_or(|t| t > now),
            "a timer due at {now:?} is still pending after handle_timeout"
        );
        let mut out = Vec::new();
        while link.poll_transmit(&mut out).is_some() {}
        while let Some(event) = link.poll_event() {
            if let Event::MessageReceived(m) = event {
                assert!(
                    made_of(&m, &pieces),
                    "delivered text that no valid frame carried"
                );
            }
        }
    }
});

/// Whether `message` is a concatenation of some of `pieces`.
fn made_of(message: &[u8], pieces: &[Vec<u8>]) -> bool {
    let mut reachable = vec![false; message.len() + 1];
    reachable[0] = true;
    for i in 0..message.len() {
        if reachable[i] {
            for p in pieces {
                if message[i..].starts_with(p) {
                    reachable[i + p.len()] = true;
                }
            }
        }
    }
    reachable[message.len()]
}
