//! How the Rust MLLP peers behave on the streams real senders produce (pipelining, junk,
//! FS without CR, split reads), next to ours. The observed behaviour is asserted, so
//! `docs/mllp-peers.md` stays true: if a peer release changes, this test fails.
//!
//! hl7-mllp-codec is built with its `noncompliance` feature (see benches/Cargo.toml):
//! its own setting for several messages per read.
#![allow(missing_docs)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::BytesMut;
use tokio_util::codec::Decoder;

#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    messages: Vec<String>,
    errors: usize,
    panicked: bool,
    /// Bytes the decoder still holds after the last read.
    held: usize,
}

fn ours(reads: &[&[u8]]) -> Outcome {
    let mut codec = mllp_hl7::MllpCodec::new();
    let mut buf = BytesMut::new();
    let mut outcome = Outcome::default();
    for read in reads {
        buf.extend_from_slice(read);
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            match frame {
                mllp_hl7::MllpFrame::Message(m) => outcome
                    .messages
                    .push(String::from_utf8_lossy(&m).into_owned()),
                mllp_hl7::MllpFrame::Error(_) => outcome.errors += 1,
                _ => {}
            }
        }
    }
    outcome.held = buf.len();
    outcome
}

fn hl7_mllp_codec(reads: &[&[u8]]) -> Outcome {
    let mut outcome = Outcome::default();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut codec = hl7_mllp_codec::MllpCodec::new();
        let mut buf = BytesMut::new();
        for read in reads {
            buf.extend_from_slice(read);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(m)) => outcome
                        .messages
                        .push(String::from_utf8_lossy(&m).into_owned()),
                    Ok(None) => break,
                    Err(_) => {
                        outcome.errors += 1;
                        break;
                    }
                }
            }
        }
        // The codec moves unfinished input into a private buffer; `buf` shows what is left
        // in the caller's buffer only.
        outcome.held = buf.len();
    }));
    outcome.panicked = result.is_err();
    outcome
}

fn mllp_crate(reads: &[&[u8]]) -> Outcome {
    let mut outcome = Outcome::default();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut decoder = mllp::Decoder::new();
        for read in reads {
            decoder.push(read);
            while let Some(frame) = decoder.next_frame() {
                match frame {
                    Ok(m) => outcome
                        .messages
                        .push(String::from_utf8_lossy(&m).into_owned()),
                    Err(_) => outcome.errors += 1,
                }
            }
        }
        outcome.held = decoder.buffered().len();
    }));
    outcome.panicked = result.is_err();
    outcome
}

fn names(messages: &[&str]) -> Vec<String> {
    messages.iter().map(|m| (*m).to_owned()).collect()
}

const A: &[u8] = b"\x0bMSH|A\x1c\x0d";
const B: &[u8] = b"\x0bMSH|B\x1c\x0d";
const C: &[u8] = b"\x0bMSH|C\x1c\x0d";

#[test]
fn pipelined_frames_in_one_read() {
    let read = [A, B, C].concat();
    let want = names(&["MSH|A", "MSH|B", "MSH|C"]);
    assert_eq!(ours(&[&read]).messages, want);
    assert_eq!(mllp_crate(&[&read]).messages, want);
    // With `noncompliance`, hl7-mllp-codec yields all three.
    assert_eq!(hl7_mllp_codec(&[&read]).messages, want);
}

#[test]
fn pipelined_frames_split_across_reads() {
    let stream = [A, B, C].concat();
    let want = names(&["MSH|A", "MSH|B", "MSH|C"]);
    for cut in 1..stream.len() {
        let reads = [&stream[..cut], &stream[cut..]];
        assert_eq!(ours(&reads).messages, want, "ours, cut {cut}");
        assert_eq!(mllp_crate(&reads).messages, want, "mllp, cut {cut}");
        assert_eq!(
            hl7_mllp_codec(&reads).messages,
            want,
            "hl7-mllp-codec, cut {cut}"
        );
    }
}

#[test]
fn one_byte_reads() {
    let stream = [A, B, C].concat();
    let reads: Vec<&[u8]> = stream.chunks(1).collect();
    let want = names(&["MSH|A", "MSH|B", "MSH|C"]);
    assert_eq!(ours(&reads).messages, want);
    assert_eq!(mllp_crate(&reads).messages, want);
    assert_eq!(hl7_mllp_codec(&reads).messages, want);
}

#[test]
fn junk_before_the_start_block() {
    let read = [b"junk".as_slice(), A].concat();
    let want = names(&["MSH|A"]);
    assert_eq!(ours(&[&read]).messages, want);
    let mllp = mllp_crate(&[&read]);
    assert_eq!(
        (mllp.messages, mllp.errors),
        (want.clone(), 1),
        "mllp reports the junk once"
    );
    assert_eq!(
        hl7_mllp_codec(&[&read]).messages,
        want,
        "hl7-mllp-codec skips it silently"
    );
}

#[test]
fn leftover_end_of_a_broken_frame_before_the_next_frame() {
    // The tail of a frame whose start was lost (`...FS CR`), then a good frame.
    let read = [b"tail\x1c\x0d".as_slice(), A, B].concat();
    let want = names(&["MSH|A", "MSH|B"]);
    assert_eq!(ours(&[&read]).messages, want);
    assert_eq!(mllp_crate(&[&read]).messages, want);
    // hl7-mllp-codec (noncompliance) finds that FS CR before the start block and panics
    // (`BytesMut::advance` past the end).
    let peer = hl7_mllp_codec(&[&read]);
    assert!(peer.panicked, "{peer:?}");
}

#[test]
fn fs_without_cr() {
    // A sender that ends its frame with FS alone, then sends the next frame.
    let read = b"\x0bMSH|A\x1c\x0bMSH|B\x1c\x0d".as_slice();
    // Strict by default: a lone FS is data, so the start block of B interrupts A, which is
    // reported and dropped, and B comes out; lenient mode accepts both.
    let strict = ours(&[read]);
    assert_eq!((strict.messages, strict.errors), (names(&["MSH|B"]), 1));
    let mut lenient =
        mllp_hl7::MllpCodec::with_config(mllp_hl7::MllpConfig::default().with_lenient(true))
            .unwrap();
    let mut buf = BytesMut::from(read);
    let mut got = Vec::new();
    while let Some(mllp_hl7::MllpFrame::Message(m)) = lenient.decode(&mut buf).unwrap() {
        got.push(String::from_utf8_lossy(&m).into_owned());
    }
    assert_eq!(got, names(&["MSH|A", "MSH|B"]));
    // Peers: both merge A and B into one message containing FS and VT.
    assert_eq!(mllp_crate(&[read]).messages, names(&["MSH|A\x1c\x0bMSH|B"]));
    assert_eq!(
        hl7_mllp_codec(&[read]).messages,
        names(&["MSH|A\x1c\x0bMSH|B"])
    );
}

#[test]
fn unterminated_frame_memory() {
    // 20 MiB without an end block: does the decoder hold it all?
    let start = b"\x0bMSH|".as_slice();
    let filler = vec![b'A'; 1 << 20];
    let mut reads: Vec<&[u8]> = vec![start];
    reads.extend(std::iter::repeat_n(filler.as_slice(), 20));
    let ours = ours(&reads);
    assert_eq!(ours.errors, 1, "ours refuses it once (8 MiB default)");
    assert!(
        ours.held <= (1 << 20) + 8,
        "ours holds at most one read: {}",
        ours.held
    );
    let mllp = mllp_crate(&reads);
    // mllp refuses it at 16 MiB (FrameTooLarge, buffer cleared), then reports each later
    // read of the same frame as MissingStartBlock: 1 + 4 errors.
    assert_eq!(mllp.errors, 5, "{mllp:?}");
    assert!(mllp.held <= 16 << 20);
    let peer = hl7_mllp_codec(&reads);
    assert_eq!(
        (peer.errors, peer.messages.len()),
        (0, 0),
        "hl7-mllp-codec has no limit and keeps buffering"
    );
}
