//! Arbitrary bytes into the ASTM frame decoder and a receiving link, with invariants checked.
#![no_main]

use std::time::{Duration, Instant};

use astm_frame::{
    DecoderConfig, Event, FrameDecoder, FrameScanner, Item, Leniency, Link, LinkConfig, Role,
    encode_frame,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks leniency, a small frame limit and the chunk size.
    let Some((&knobs, bytes)) = data.split_first() else {
        return;
    };
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
    let mut link_config = LinkConfig::new(Role::Computer);
    link_config.decoder = config;
    let mut link = Link::new(link_config);
    let mut now = Instant::now();
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
        link.handle_input(piece, now);
        now += Duration::from_millis(100);
        link.handle_timeout(now);
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
