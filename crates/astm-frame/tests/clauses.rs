//! E1381 / LIS1-A clause by clause, for the rules `link.rs` and `conformance.rs` do not pin
//! down on their own: each test names the clause it shows (section numbers of CLSI LIS1-A).
//! Sans-IO throughout: explicit instants, no sleeping.

mod common;

use common::*;
use std::time::{Duration, Instant};

use astm_frame::{
    DecoderConfig, Event, FrameEnd, Leniency, Link, LinkConfig, LinkError, LinkState, Role,
    checksum,
};

fn received(events: &[Event]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// A computer that has answered an instrument's ENQ.
fn receiving(config: LinkConfig, t0: Instant) -> Link {
    let mut lis = Link::new(config);
    lis.handle_input(&[ENQ], t0);
    assert_eq!(out(&mut lis), [ACK]);
    lis
}

/// An instrument whose ENQ for `message` was answered with ACK.
fn sending(message: &[u8], t0: Instant) -> Link {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    link.send(message.to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[ACK], t0);
    link
}

/// §6.2.5: a neutral receiver answers ENQ and ignores every other character; its 30 s
/// timer starts with the ACK (§6.5.2.4).
#[test]
fn neutral_receiver_answers_only_enq() {
    let mut lis = Link::new(LinkConfig::new(Role::Computer));
    let t0 = Instant::now();
    lis.handle_input(&[ACK, NAK, EOT], t0);
    lis.handle_input(b"noise\r\n", t0);
    assert!(out(&mut lis).is_empty());
    assert_eq!(lis.state(), LinkState::Neutral);
    lis.handle_input(&[ENQ], t0);
    assert_eq!(out(&mut lis), [ACK]);
    assert_eq!(lis.state(), LinkState::Receiving);
    assert_eq!(lis.poll_timeout(), Some(t0 + secs(30)));
}

/// §6.2.4–6.2.5: after ENQ the sender ignores every reply but ACK, NAK and ENQ; its 15 s
/// timer keeps running.
#[test]
fn sender_ignores_replies_to_enq_other_than_ack_nak_enq() {
    let mut link = Link::new(LinkConfig::new(Role::Instrument));
    let t0 = Instant::now();
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert_eq!(out(&mut link), [ENQ]);
    link.handle_input(&[EOT], t0 + secs(1));
    link.handle_input(b"junk", t0 + secs(1));
    link.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0 + secs(2));
    assert!(out(&mut link).is_empty());
    assert_eq!(link.state(), LinkState::Establishing);
    assert_eq!(link.poll_timeout(), Some(t0 + secs(15)));
    link.handle_input(&[ACK], t0 + secs(3));
    assert_eq!(out(&mut link), frame(1, b"H|\\^&\r", FrameEnd::End));
}

/// §6.3.1, §6.3.2, §6.3.3: frame numbers start at 1, go on across intermediate (ETB) frames
/// and wrap 7 -> 0; ETB ends an intermediate frame and ETX the end frame; no frame is longer
/// than 247 characters (240 of text, E1381-95, the default); the checksum covers FN, text
/// and ETB/ETX in two upper-case hex digits; each frame ends in CR LF.
#[test]
fn sent_frames_are_numbered_sized_and_checksummed_by_the_standard() {
    let long = format!("R|1|^^^M|{}\r", "9".repeat(600));
    let mut message = format!("H|\\^&\r{long}").into_bytes();
    for n in 1..=7 {
        message.extend_from_slice(format!("C|{n}\r").as_bytes());
    }
    message.extend_from_slice(b"L|1|N\r");
    let t0 = Instant::now();
    let mut link = sending(&message, t0);
    let mut frames = Vec::new();
    loop {
        let bytes = out(&mut link);
        if bytes == [EOT] {
            break;
        }
        frames.push(bytes);
        link.handle_input(&[ACK], t0);
    }
    let numbers: Vec<u8> = frames.iter().map(|f| f[1]).collect();
    assert_eq!(numbers, b"123456701234");
    let mut text = Vec::new();
    for f in &frames {
        assert!(f.len() <= 247, "{} bytes", f.len());
        assert_eq!(f[0], STX);
        assert_eq!(&f[f.len() - 2..], b"\r\n");
        let terminator = f[f.len() - 5];
        assert!(terminator == ETB || terminator == ETX);
        let body = &f[1..f.len() - 4];
        assert_eq!(
            &f[f.len() - 4..f.len() - 2],
            checksum::to_hex(checksum::sum(body))
        );
        let frame_text = &f[2..f.len() - 5];
        assert!(frame_text.len() <= 240);
        // A record longer than 240 continues in ETB frames; every record ends an ETX frame.
        assert_eq!(terminator == ETX, frame_text.ends_with(b"\r"));
        text.extend_from_slice(frame_text);
    }
    assert_eq!(frames[1][2..242], long.as_bytes()[..240]);
    assert_eq!(text, message);
    assert!(matches!(
        events(&mut link).last(),
        Some(Event::MessageSent(_))
    ));
}

/// §6.3.3: the checksum of an intermediate frame includes its ETB. A frame checksummed as
/// if it ended in ETX (the UniversaLIS / go-bloodlab-net bug) is refused.
#[test]
fn checksum_of_an_intermediate_frame_includes_etb() {
    let t0 = Instant::now();
    let mut lis = receiving(LinkConfig::new(Role::Computer), t0);
    let mut wrong = vec![STX, b'1'];
    wrong.extend_from_slice(b"R|1|");
    wrong.push(ETB);
    wrong.extend_from_slice(&checksum::to_hex(checksum::checksum(
        Some(b'1'),
        b"R|1|",
        ETX,
    )));
    wrong.extend_from_slice(b"\r\n");
    lis.handle_input(&wrong, t0);
    lis.handle_input(&frame(1, b"R|1|", FrameEnd::Intermediate), t0);
    lis.handle_input(&frame(2, b"5\r", FrameEnd::End), t0);
    assert_eq!(out(&mut lis), [NAK, ACK, ACK]);
    assert_eq!(received(&events(&mut lis)), [b"R|1|5\r".to_vec()]);
}

/// §6.5.1.2: a NAKed frame is sent again unchanged, with its own number, wherever it is in
/// the message; the six transmissions are counted per frame, not per message.
#[test]
fn retransmission_keeps_the_frame_and_counts_per_frame() {
    let t0 = Instant::now();
    let mut link = sending(b"H|\\^&\rP|1\rL|1|N\r", t0);
    let first = out(&mut link);
    for _ in 0..5 {
        link.handle_input(&[NAK], t0);
        assert_eq!(out(&mut link), first);
    }
    link.handle_input(&[ACK], t0);
    let second = out(&mut link);
    assert_eq!(second, frame(2, b"P|1\r", FrameEnd::End));
    for _ in 0..5 {
        link.handle_input(&[NAK], t0);
        assert_eq!(out(&mut link), second, "same frame, same FN 2");
    }
    link.handle_input(&[ACK], t0);
    assert_eq!(out(&mut link), frame(3, b"L|1|N\r", FrameEnd::End));
    link.handle_input(&[ACK], t0);
    assert_eq!(out(&mut link), [EOT]);
    assert!(matches!(
        events(&mut link).last(),
        Some(Event::MessageSent(_))
    ));
}

/// §6.5.2.3: the 15 s reply timer starts again with each transmission of a frame.
#[test]
fn frame_reply_timer_restarts_with_each_transmission() {
    let t0 = Instant::now();
    let mut link = sending(b"H|\\^&\rL|1|N\r", t0);
    let _ = out(&mut link);
    assert_eq!(link.poll_timeout(), Some(t0 + secs(15)));
    link.handle_input(&[NAK], t0 + secs(10));
    let _ = out(&mut link);
    assert_eq!(link.poll_timeout(), Some(t0 + secs(25)));
    link.handle_input(&[ACK], t0 + secs(20));
    let _ = out(&mut link);
    assert_eq!(link.poll_timeout(), Some(t0 + secs(35)));
}

/// §6.5.1: a frame whose number is neither the last accepted nor the next is refused; the
/// right frame is then accepted, a repeat of it acknowledged and dropped, and the sequence
/// goes on from there.
#[test]
fn receiver_refuses_a_wrong_number_and_takes_the_right_one() {
    let t0 = Instant::now();
    let mut lis = receiving(LinkConfig::new(Role::Computer), t0);
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0);
    lis.handle_input(&frame(3, b"P|1\r", FrameEnd::End), t0);
    lis.handle_input(&frame(0, b"P|1\r", FrameEnd::End), t0);
    lis.handle_input(&frame(2, b"P|1\r", FrameEnd::End), t0);
    lis.handle_input(&frame(2, b"P|1\r", FrameEnd::End), t0);
    lis.handle_input(&frame(3, b"L|1|N\r", FrameEnd::End), t0);
    lis.handle_input(&[EOT], t0);
    assert_eq!(out(&mut lis), [ACK, NAK, NAK, ACK, ACK, ACK]);
    let evs = events(&mut lis);
    assert_eq!(
        received(&evs),
        [b"H|\\^&\r".to_vec(), b"P|1\r".to_vec(), b"L|1|N\r".to_vec()]
    );
    assert!(evs.contains(&Event::LinkError(LinkError::DuplicateFrame(2))));
    assert_eq!(lis.state(), LinkState::Neutral);
}

/// §6.6: every restricted character in a frame's text gets the frame refused; CR (the
/// record terminator) is allowed. (STX, ETX, EOT, ENQ, ACK, NAK and ETB end or cut a frame
/// wherever they appear: see `link.rs`.)
#[test]
fn receiver_refuses_frames_holding_restricted_characters() {
    let t0 = Instant::now();
    for byte in [0x01, 0x0A, 0x10, 0x11, 0x12, 0x13, 0x14, 0x16] {
        let mut lis = receiving(LinkConfig::new(Role::Computer), t0);
        lis.handle_input(&frame(1, &[b'R', b'|', byte, b'\r'], FrameEnd::End), t0);
        assert_eq!(out(&mut lis), [NAK], "byte {byte:#04x}");
        assert!(received(&events(&mut lis)).is_empty());
    }
    let mut lis = receiving(LinkConfig::new(Role::Computer), t0);
    lis.handle_input(&frame(1, b"R|1\rC|1\r", FrameEnd::End), t0);
    assert_eq!(out(&mut lis), [ACK]);
}

/// §6.5.1.1: characters before STX are ignored; the frame after them is taken.
#[test]
fn receiver_ignores_characters_before_stx() {
    let t0 = Instant::now();
    let mut lis = receiving(LinkConfig::new(Role::Computer), t0);
    let mut bytes = b"\x00\xffxyz\r\n".to_vec();
    bytes.extend(frame(1, b"H|\\^&\r", FrameEnd::End));
    lis.handle_input(&bytes, t0);
    assert_eq!(out(&mut lis), [ACK]);
    assert_eq!(received(&events(&mut lis)), [b"H|\\^&\r".to_vec()]);
}

/// §6.3.1 / §8.3.1 and E1381-95: frames up to 64,000 characters are taken by default; a
/// receiver set for E1381-95 takes 247 and refuses 248.
#[test]
fn frame_size_limits() {
    let t0 = Instant::now();
    for (max, ok, too_long) in [(64_000, 64_000, 64_001), (247, 247, 248)] {
        let mut config = LinkConfig::new(Role::Computer);
        config.decoder = DecoderConfig {
            max_frame_len: max,
            ..DecoderConfig::default()
        };
        let mut lis = receiving(config, t0);
        let fits = frame(1, &vec![b'x'; ok - 7], FrameEnd::Intermediate);
        assert_eq!(fits.len(), ok);
        lis.handle_input(&fits, t0);
        assert_eq!(out(&mut lis), [ACK], "{ok} of {max}");
        let over = frame(2, &vec![b'x'; too_long - 7], FrameEnd::Intermediate);
        lis.handle_input(&over, t0);
        assert_eq!(out(&mut lis), [NAK], "{too_long} of {max}");
    }
}

/// §6.5.2.4: the receiver's 30 s timer runs from the ACK of the ENQ and again from each
/// reply, NAK included; when it runs out the receiver goes neutral without a word.
#[test]
fn receive_timer_runs_from_each_reply_and_ends_silently() {
    let t0 = Instant::now();
    let mut lis = receiving(LinkConfig::new(Role::Computer), t0);
    lis.handle_timeout(t0 + secs(30) - Duration::from_millis(1));
    assert_eq!(lis.state(), LinkState::Receiving);
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0 + secs(20));
    assert_eq!(lis.poll_timeout(), Some(t0 + secs(50)));
    lis.handle_input(b"\x021bad\x0300\r\n", t0 + secs(40));
    assert_eq!(out(&mut lis), [ACK, NAK]);
    assert_eq!(lis.poll_timeout(), Some(t0 + secs(70)));
    lis.handle_timeout(t0 + secs(70));
    assert_eq!(lis.state(), LinkState::Neutral);
    assert!(out(&mut lis).is_empty(), "no EOT from a receiver");
    assert_eq!(lis.poll_timeout(), None);
}

/// §6.3.5: a receiver asks to interrupt by answering an accepted frame with EOT in place of
/// ACK; the frame is delivered. The sender's EOT ends the transfer and the receiver's own
/// message goes out at once.
#[test]
fn receiver_interrupt_is_eot_in_place_of_ack() {
    let t0 = Instant::now();
    let mut lis = receiving(LinkConfig::new(Role::Computer), t0);
    lis.handle_input(&frame(1, b"H|\\^&\r", FrameEnd::End), t0);
    assert_eq!(out(&mut lis), [ACK]);
    lis.send(b"H|\\^&|||LIS\rL|1|N\r".to_vec(), t0);
    assert!(lis.request_interrupt());
    lis.handle_input(&frame(2, b"P|1\r", FrameEnd::End), t0);
    assert_eq!(out(&mut lis), [EOT]);
    assert_eq!(
        received(&events(&mut lis)),
        [b"H|\\^&\r".to_vec(), b"P|1\r".to_vec()]
    );
    lis.handle_input(&[EOT], t0 + secs(1));
    assert_eq!(out(&mut lis), [ENQ]);
    assert_eq!(lis.state(), LinkState::Establishing);
}

/// §6.3.5.3: an interrupt on the last frame accepts it: the message is sent, the transfer
/// ends with EOT, and the 15 s hold-off applies.
#[test]
fn interrupt_on_the_last_frame_completes_the_message() {
    let t0 = Instant::now();
    let mut link = sending(b"H|\\^&\rL|1|N\r", t0);
    let _ = out(&mut link);
    link.handle_input(&[ACK], t0);
    let _ = out(&mut link);
    link.handle_input(&[EOT], t0);
    assert_eq!(out(&mut link), [EOT]);
    assert!(matches!(events(&mut link)[..], [Event::MessageSent(_)]));
    link.send(b"H|\\^&\rL|1|N\r".to_vec(), t0);
    assert!(out(&mut link).is_empty());
    assert_eq!(link.poll_timeout(), Some(t0 + secs(15)));
}

/// §6.3.5.3: the hold-off after an honoured interrupt ends early once the receiver has sent
/// its message and returned the link to neutral.
#[test]
fn interrupt_hold_off_ends_when_the_receiver_has_had_its_turn() {
    let t0 = Instant::now();
    let mut link = sending(b"H|\\^&\rP|1\rL|1|N\r", t0);
    let _ = out(&mut link);
    link.handle_input(&[EOT], t0);
    assert_eq!(out(&mut link), [EOT]);
    // The interrupted message is handed back, to be queued again ahead of the rest.
    let Some(Event::MessageAborted { message, .. }) = events(&mut link).pop() else {
        panic!("the interrupted message comes back");
    };
    link.send_first(message, t0);
    assert!(out(&mut link).is_empty(), "held off");
    link.handle_input(&[ENQ], t0 + secs(1));
    link.handle_input(&frame(1, b"H|\\^&|||LIS\r", FrameEnd::End), t0 + secs(2));
    assert_eq!(out(&mut link), [ACK, ACK]);
    link.handle_input(&[EOT], t0 + secs(3));
    assert_eq!(out(&mut link), [ENQ], "the message again, before 15 s");
}

/// Tolerated vendor deviation (documented `Leniency::unverified_checksum`): a frame with a
/// wrong checksum is accepted, and the mismatch still reported on the frame.
#[test]
fn unverified_checksums_are_accepted_when_asked() {
    let t0 = Instant::now();
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency = Leniency {
        unverified_checksum: true,
        ..Leniency::STRICT
    };
    let mut lis = receiving(config, t0);
    lis.handle_input(b"\x021H|\\^&\r\x0300\r\n", t0);
    assert_eq!(out(&mut lis), [ACK]);
    assert_eq!(received(&events(&mut lis)), [b"H|\\^&\r".to_vec()]);
}

/// Tolerated deviation (documented `Leniency::any_first_frame_number`): the first frame of a
/// transfer may have any number 0-7; the next must follow it. Strict, only 1 starts one.
#[test]
fn any_first_frame_number_is_accepted_when_asked() {
    let t0 = Instant::now();
    let mut strict = receiving(LinkConfig::new(Role::Computer), t0);
    strict.handle_input(b"\x020H|\\^&\r\x03E4\r\n", t0);
    assert_eq!(out(&mut strict), [NAK]);
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency = Leniency {
        any_first_frame_number: true,
        ..Leniency::STRICT
    };
    let mut lis = receiving(config, t0);
    lis.handle_input(b"\x020H|\\^&\r\x03E4\r\n", t0);
    lis.handle_input(b"\x023L|1|N\r\x0306\r\n", t0);
    lis.handle_input(b"\x021L|1|N\r\x0304\r\n", t0);
    assert_eq!(out(&mut lis), [ACK, NAK, ACK], "0, then 3 refused, then 1");
}

/// §6.4.1, §6.2.5: EOT returns the link to neutral at once: an ENQ right behind it, in the
/// same read, is answered (on either side), not lost (senaite.astm's N7).
#[test]
fn eot_returns_to_neutral_at_once() {
    let t0 = Instant::now();
    // Sender side: an interrupt EOT followed at once by the receiver's ENQ.
    let mut link = sending(b"H|\\^&\rP|1\rL|1|N\r", t0);
    let _ = out(&mut link);
    link.handle_input(&[EOT, ENQ], t0);
    assert_eq!(out(&mut link), [EOT, ACK]);
    assert_eq!(link.state(), LinkState::Receiving);
    // Receiver side: the end of one transfer and the start of the next.
    let mut lis = receiving(LinkConfig::new(Role::Computer), t0);
    let mut bytes = frame(1, b"H|\\^&\r", FrameEnd::End);
    bytes.extend([EOT, ENQ]);
    bytes.extend(frame(1, b"L|1|N\r", FrameEnd::End));
    lis.handle_input(&bytes, t0);
    assert_eq!(out(&mut lis), [ACK, ACK, ACK]);
    assert_eq!(
        received(&events(&mut lis)),
        [b"H|\\^&\r".to_vec(), b"L|1|N\r".to_vec()]
    );
}

/// Tolerated vendor deviation (documented `Leniency::missing_trailer`): frames ending in CR
/// only, LF only or nothing after the checksum are accepted at once, and a trailer that
/// comes in a later read is not taken for noise.
#[test]
fn missing_trailers_are_accepted_when_asked() {
    let t0 = Instant::now();
    let mut config = LinkConfig::new(Role::Computer);
    config.decoder.leniency.missing_trailer = true;
    for trailer in [&b""[..], b"\r", b"\n", b"\r\n"] {
        for split in [false, true] {
            let mut lis = receiving(config, t0);
            let mut f1 = frame(1, b"H|\\^&\r", FrameEnd::End);
            f1.truncate(f1.len() - 2);
            let mut f2 = frame(2, b"L|1|N\r", FrameEnd::End);
            f2.truncate(f2.len() - 2);
            if split {
                lis.handle_input(&f1, t0);
                lis.handle_input(trailer, t0);
            } else {
                f1.extend_from_slice(trailer);
                lis.handle_input(&f1, t0);
            }
            f2.extend_from_slice(trailer);
            lis.handle_input(&f2, t0);
            lis.handle_input(&[EOT], t0);
            let evs = events(&mut lis);
            assert_eq!(out(&mut lis), [ACK, ACK], "{trailer:?} {split}");
            assert_eq!(received(&evs).len(), 2, "{trailer:?} {split}");
            assert!(
                !evs.iter().any(|e| matches!(e, Event::LinkError(_))),
                "{trailer:?} {split} {evs:?}"
            );
        }
    }
}
