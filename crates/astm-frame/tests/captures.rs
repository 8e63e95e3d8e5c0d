//! Real instrument captures (copied into `tests/data/captures/`) decode with every checksum
//! valid, and a computer-role link accepts them whole.

use std::time::Instant;

use astm_frame::{
    Control, DecoderConfig, Event, FrameEnd, FrameScanner, Item, Leniency, Link, LinkConfig, Role,
};

fn capture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/captures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn horiba_yumizen_h500_raw_capture() {
    let bytes = capture("horiba_yumizen_h500_raw.bin");
    let mut scanner = FrameScanner::new(DecoderConfig::default());
    let (mut frames, mut etb_240, mut controls, mut numbers) = (0, 0, Vec::new(), Vec::new());
    for item in scanner.iter(&bytes) {
        match item {
            Item::Frame(f) => {
                assert!(f.is_valid(), "frame {frames}: {:?}", f.defect());
                assert!(f.checksum_ok());
                frames += 1;
                numbers.push(f.number().unwrap());
                if f.end() == FrameEnd::Intermediate && f.text().len() == 240 {
                    etb_240 += 1;
                }
            }
            Item::Control(c) => controls.push(c),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(frames, 125);
    assert_eq!(etb_240, 89);
    assert_eq!(controls, [Control::Enq, Control::Eot]);
    // FN 1..7, 0, 1, ... without a gap.
    for (i, n) in numbers.iter().enumerate() {
        assert_eq!(usize::from(*n), (i + 1) % 8, "frame {i}");
    }

    // The same bytes through a receiver: every frame ACKed, records reassembled.
    let mut link = Link::new(LinkConfig::new(Role::Computer));
    link.handle_input(&bytes, Instant::now());
    let mut replies = Vec::new();
    while link.poll_transmit(&mut replies).is_some() {}
    assert_eq!(replies.len(), 126);
    assert!(replies.iter().all(|&b| b == 0x06));
    let mut messages = Vec::new();
    while let Some(event) = link.poll_event() {
        match event {
            Event::MessageReceived(m) => messages.push(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(messages.len(), 125 - 89);
    assert!(messages[0].starts_with(b"H|"));
    assert!(messages.last().unwrap().starts_with(b"L|"));
    assert!(messages.iter().all(|m| m.ends_with(b"\r")));
}

#[test]
fn abbott_architect_sessions() {
    for (name, records) in [
        ("result_session_rebuilt.bin", 7),
        ("host_query_session_rebuilt.bin", 3),
    ] {
        let bytes = capture(name);
        let mut link = Link::new(LinkConfig::new(Role::Computer));
        let now = Instant::now();
        // Arrives one byte at a time, as over a serial line.
        for b in &bytes {
            link.handle_input(std::slice::from_ref(b), now);
        }
        let mut replies = Vec::new();
        while link.poll_transmit(&mut replies).is_some() {}
        assert!(replies.iter().all(|&b| b == 0x06), "{name}");
        let mut got = 0;
        while let Some(event) = link.poll_event() {
            assert!(
                matches!(event, Event::MessageReceived(_)),
                "{name}: {event:?}"
            );
            got += 1;
        }
        assert_eq!(got, records, "{name}");
    }
}

#[test]
fn cobas_c111_every_record_in_an_etb_frame() {
    let bytes = capture("cobas_c111_frames_from_test_cobas_c111.py.bin");
    let mut scanner = FrameScanner::new(DecoderConfig::default());
    let frames: Vec<_> = scanner
        .iter(&bytes)
        .filter_map(|i| match i {
            Item::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), 7);
    assert!(frames.iter().all(|f| f.is_valid()));
    assert_eq!(
        frames.iter().filter(|f| f.end() == FrameEnd::End).count(),
        1
    );
    // Reassembled, the chain is one message of seven records.
    let mut link = Link::new(LinkConfig::new(Role::Computer));
    link.handle_input(b"\x05", Instant::now());
    link.handle_input(&bytes, Instant::now());
    let mut messages = Vec::new();
    while let Some(event) = link.poll_event() {
        if let Event::MessageReceived(m) = event {
            messages.push(m);
        }
    }
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].iter().filter(|&&b| b == b'\r').count(), 7);
}

/// The senaite files keep the frame bytes but had their line endings normalised: they decode
/// with every checksum valid once missing trailers are tolerated.
#[test]
fn senaite_instrument_files() {
    let lenient = DecoderConfig {
        leniency: Leniency {
            missing_trailer: true,
            ..Leniency::STRICT
        },
        ..DecoderConfig::default()
    };
    for (name, expected_frames) in [
        ("senaite_abbott_afinion2.txt", 1),
        ("senaite_cobas_c111.txt", 7),
        ("senaite_cobas_c311.txt", 1),
        ("senaite_dca_vantage.txt", 1),
        ("senaite_genexpert.txt", 1),
        ("senaite_pentra_xlr.txt", 28),
        ("senaite_sysmex_xn550.txt", 1),
        ("senaite_sysmex_xp100.txt", 1),
        ("senaite_yumizen_h500.txt", 31),
    ] {
        let bytes = capture(name);
        let mut scanner = FrameScanner::new(lenient);
        let mut frames = 0;
        for item in scanner.iter(&bytes) {
            match item {
                Item::Frame(f) => {
                    assert!(f.checksum_ok(), "{name}: {:?}", f.defect());
                    assert!(f.is_valid(), "{name}: {:?}", f.defect());
                    frames += 1;
                }
                // Line endings between frames, as the files were saved.
                Item::Junk(j) => assert!(j.iter().all(|b| b"\r\n".contains(b)), "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(frames, expected_frames, "{name}");
    }
}
