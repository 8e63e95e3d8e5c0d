//! The control characters of E1381 / LIS1-A and the restricted-character rule (§6.6).

/// Start of text: opens a frame.
pub const STX: u8 = 0x02;
/// End of text: closes the last (end) frame of a message.
pub const ETX: u8 = 0x03;
/// End of transmission: ends a transfer, or asks the sender to stop (receiver interrupt).
pub const EOT: u8 = 0x04;
/// Enquiry: asks for the link (establishment phase).
pub const ENQ: u8 = 0x05;
/// Acknowledge.
pub const ACK: u8 = 0x06;
/// Line feed: the last character of a frame.
pub const LF: u8 = 0x0A;
/// Carriage return: the E1394 record terminator, and the next-to-last character of a frame.
pub const CR: u8 = 0x0D;
/// Negative acknowledge.
pub const NAK: u8 = 0x15;
/// End of transmission block: closes an intermediate frame.
pub const ETB: u8 = 0x17;

/// A one-byte control message exchanged between frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Control {
    /// `ENQ` (0x05): the sender asks for the link.
    Enq,
    /// `ACK` (0x06): ready to receive, or frame accepted.
    Ack,
    /// `NAK` (0x15): not ready, or frame rejected.
    Nak,
    /// `EOT` (0x04): end of transfer, or (in place of an ACK) a receiver interrupt.
    Eot,
}

impl Control {
    /// The control for a byte, if it is one of ENQ, ACK, NAK or EOT.
    #[must_use]
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            ENQ => Some(Self::Enq),
            ACK => Some(Self::Ack),
            NAK => Some(Self::Nak),
            EOT => Some(Self::Eot),
            _ => None,
        }
    }

    /// The byte sent on the wire.
    #[must_use]
    pub const fn byte(self) -> u8 {
        match self {
            Self::Enq => ENQ,
            Self::Ack => ACK,
            Self::Nak => NAK,
            Self::Eot => EOT,
        }
    }

    /// The standard's name of the character (`"ENQ"`, `"ACK"`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Enq => "ENQ",
            Self::Ack => "ACK",
            Self::Nak => "NAK",
            Self::Eot => "EOT",
        }
    }
}

/// Whether `byte` may not appear in message text (§6.6): SOH, STX, ETX, EOT, ENQ, ACK, LF, DLE,
/// DC1-DC4, NAK, SYN, ETB. CR is allowed: it ends E1394 records.
#[inline]
#[must_use]
pub const fn is_restricted(byte: u8) -> bool {
    // 0x01..=0x06, 0x0A and 0x10..=0x17, written as range tests so a loop over text vectorises.
    byte.wrapping_sub(0x01) < 6 || byte == LF || byte.wrapping_sub(0x10) < 8
}

/// Position of the first restricted byte in `text`, if any.
#[must_use]
pub fn find_restricted(text: &[u8]) -> Option<usize> {
    // A branch-free OR over the text first: restricted bytes are rare, so the exact search runs
    // only when one is present.
    let any = text
        .iter()
        .fold(0u8, |acc, &b| acc | u8::from(is_restricted(b)));
    if any == 0 {
        None
    } else {
        text.iter().position(|&b| is_restricted(b))
    }
}

/// The byte sum of `bytes` and whether any of them is restricted, in one pass (the hot loop of
/// frame decoding; both reductions vectorise).
#[inline]
#[must_use]
pub fn sum_and_restricted(bytes: &[u8]) -> (u8, bool) {
    let mut sum = 0u8;
    let mut restricted = 0u8;
    for &b in bytes {
        sum = sum.wrapping_add(b);
        restricted |= u8::from(is_restricted(b));
    }
    (sum, restricted != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_set_is_exactly_the_standards_list() {
        let listed = [
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x0A, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
            0x17,
        ];
        for b in 0..=255u8 {
            assert_eq!(is_restricted(b), listed.contains(&b), "byte {b:#04x}");
        }
        assert!(!is_restricted(CR));
    }

    #[test]
    fn control_round_trip() {
        for c in [Control::Enq, Control::Ack, Control::Nak, Control::Eot] {
            assert_eq!(Control::from_byte(c.byte()), Some(c));
        }
        assert_eq!(Control::from_byte(STX), None);
    }

    #[test]
    fn find_restricted_positions() {
        assert_eq!(find_restricted(b"H|\\^&\r"), None);
        assert_eq!(find_restricted(b"ab\ncd"), Some(2));
        assert_eq!(find_restricted(b"\x17"), Some(0));
    }
}
