//! Helpers shared by the framing tests.

#![allow(dead_code, unreachable_pub)] // each test binary uses a subset

use bytes::BytesMut;
use mllp_hl7::{MllpDecoder, MllpFrame};

/// Feeds `stream` in chunks of `chunk` bytes and collects every event, ending with EOF.
pub fn decode_chunked(decoder: &mut MllpDecoder, stream: &[u8], chunk: usize) -> Vec<MllpFrame> {
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(event) = decoder.decode(&mut buf) {
            events.push(event);
        }
    }
    while let Some(event) = decoder.decode_eof(&mut buf) {
        events.push(event);
    }
    events
}
