//! Helpers shared by the link tests: control bytes, draining a link's output and events,
//! encoding a frame.

#![allow(dead_code, unreachable_pub)] // each test binary uses a subset

use std::time::Duration;

use astm_frame::{Event, FrameEnd, Link, encode_frame};

pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;
pub const EOT: u8 = 0x04;
pub const ENQ: u8 = 0x05;
pub const ACK: u8 = 0x06;
pub const NAK: u8 = 0x15;
pub const ETB: u8 = 0x17;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Everything the link has to send now.
pub fn out(link: &mut Link) -> Vec<u8> {
    let mut buf = Vec::new();
    while link.poll_transmit(&mut buf).is_some() {}
    buf
}

/// Every event the link has to report now.
pub fn events(link: &mut Link) -> Vec<Event> {
    std::iter::from_fn(|| link.poll_event()).collect()
}

/// A frame as the standard writes it.
pub fn frame(number: u8, text: &[u8], end: FrameEnd) -> Vec<u8> {
    let mut f = Vec::new();
    encode_frame(number, text, end, &mut f);
    f
}
