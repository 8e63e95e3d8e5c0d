//! Frames (§6.3.1): `<STX> FN text <ETB|ETX> C1 C2 <CR><LF>`.

use crate::checksum::{self, HexDigits};
use crate::control::{CR, ETB, ETX, LF, STX};

/// Characters a frame adds around its text: STX, FN, ETB/ETX, C1, C2, CR, LF.
pub const FRAME_OVERHEAD: usize = 7;
/// Largest frame of E1381-95 (247 characters, 240 of them text): what old instruments accept.
pub const E1381_95_MAX_FRAME: usize = 247;
/// Largest text of an E1381-95 frame, and the default when sending.
pub const E1381_95_MAX_TEXT: usize = E1381_95_MAX_FRAME - FRAME_OVERHEAD;
/// Largest frame of LIS1-A (64,000 characters including the overhead, §8.3.1), the default when
/// receiving.
pub const LIS1_A_MAX_FRAME: usize = 64_000;
/// Largest text of a LIS1-A frame.
pub const LIS1_A_MAX_TEXT: usize = LIS1_A_MAX_FRAME - FRAME_OVERHEAD;

/// Which terminator closes a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameEnd {
    /// `ETB`: an intermediate frame; the message continues in the next frame.
    Intermediate,
    /// `ETX`: the end frame of a message.
    End,
}

impl FrameEnd {
    /// The terminator byte (ETB or ETX).
    #[must_use]
    pub const fn byte(self) -> u8 {
        match self {
            Self::Intermediate => ETB,
            Self::End => ETX,
        }
    }

    /// `"ETB"` or `"ETX"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Intermediate => "ETB",
            Self::End => "ETX",
        }
    }
}

/// Why a complete frame cannot be accepted. A receiver answers each of these with NAK (§6.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameDefect {
    /// The received checksum differs from the sum of the received bytes.
    #[error("checksum mismatch: received {received:02X}, computed {computed:02X}")]
    ChecksumMismatch {
        /// The value of the two checksum characters.
        received: u8,
        /// The sum of FN, text and terminator.
        computed: u8,
    },
    /// The checksum uses lower-case hex digits (allowed only with `Leniency::lowercase_checksum`).
    #[error("checksum {0:02x} is in lower case (the standard allows only 0-9 and A-F)")]
    LowercaseChecksum(u8),
    /// The two characters after ETB/ETX are not hex digits.
    #[error("checksum characters {0:#04x} {1:#04x} are not hex digits")]
    MalformedChecksum(u8, u8),
    /// The frame number is not a digit 0-7.
    #[error("frame number {0:#04x} is not a digit 0-7")]
    BadFrameNumber(u8),
    /// The text holds a character that §6.6 forbids.
    #[error("restricted character {byte:#04x} at text offset {offset}")]
    RestrictedCharacter {
        /// Offset of the byte within the frame text.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// CR LF does not follow the checksum (allowed only with `Leniency::missing_trailer`).
    #[error("CR LF missing after the checksum")]
    MissingTrailer,
}

/// One frame as found on the wire, borrowing the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) number: Option<u8>,
    pub(crate) text: &'a [u8],
    pub(crate) end: FrameEnd,
    pub(crate) computed: u8,
    pub(crate) received: [u8; 2],
    pub(crate) checksum_ok: bool,
    pub(crate) defect: Option<FrameDefect>,
    pub(crate) tolerated: Option<FrameDefect>,
}

impl<'a> Frame<'a> {
    /// The frame number 0-7, or `None` for an unnumbered frame (accepted only when lenient).
    #[must_use]
    pub const fn number(&self) -> Option<u8> {
        self.number
    }

    /// The text between FN and ETB/ETX, as received.
    #[must_use]
    pub const fn text(&self) -> &'a [u8] {
        self.text
    }

    /// Intermediate (ETB) or end (ETX) frame.
    #[must_use]
    pub const fn end(&self) -> FrameEnd {
        self.end
    }

    /// Every byte of the frame, from STX through the trailer as far as it had arrived when the
    /// frame was handed over. With [`Leniency::missing_trailer`](crate::Leniency::missing_trailer) a frame is
    /// handed over without waiting for its LF, so whether a late LF is part of `raw` depends
    /// on how the input was split (the LF is then skipped on its own).
    #[must_use]
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The checksum computed over the received FN, text and terminator.
    #[must_use]
    pub const fn computed_checksum(&self) -> u8 {
        self.computed
    }

    /// The two checksum characters as received.
    #[must_use]
    pub const fn received_checksum(&self) -> [u8; 2] {
        self.received
    }

    /// Whether the received checksum matches, under the decoder's case rule (strict: upper case
    /// only).
    #[must_use]
    pub const fn checksum_ok(&self) -> bool {
        self.checksum_ok
    }

    /// The first reason the frame must be rejected, under the decoder's leniency; `None` if it is
    /// acceptable.
    #[must_use]
    pub const fn defect(&self) -> Option<FrameDefect> {
        self.defect
    }

    /// Whether the frame is acceptable under the decoder's leniency.
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        self.defect.is_none()
    }

    /// For an acceptable frame, the checksum deviation the decoder's leniency let through: a
    /// [`FrameDefect::LowercaseChecksum`] (with
    /// [`Leniency::lowercase_checksum`](crate::Leniency::lowercase_checksum)), or a
    /// [`FrameDefect::ChecksumMismatch`] or [`FrameDefect::MalformedChecksum`] (with
    /// [`Leniency::unverified_checksum`](crate::Leniency::unverified_checksum)). `None` for
    /// a frame that is standard, or not acceptable (see [`defect`](Self::defect)).
    /// [`Link`](crate::Link) reports each as [`LinkError::Tolerated`](crate::LinkError).
    #[must_use]
    pub const fn tolerated_defect(&self) -> Option<FrameDefect> {
        if self.defect.is_some() {
            return None;
        }
        self.tolerated
    }

    /// Builds the frame record from its parts; the decoder computes `defect` and `checksum_ok`.
    #[allow(clippy::too_many_arguments)] // one call site, in the scanner
    pub(crate) fn check(
        raw: &'a [u8],
        number_byte: Option<u8>,
        text: &'a [u8],
        end: FrameEnd,
        received: [u8; 2],
        trailer_ok: bool,
        leniency: &crate::Leniency,
        body_sum: u8,
        number_missing: bool,
        restricted: Option<usize>,
    ) -> Self {
        // The sum of FN and text, already taken by the scanner, plus the terminator.
        let computed = body_sum.wrapping_add(end.byte());
        let mut tolerated = None;
        let (checksum_ok, checksum_defect) = match checksum::parse_hex(received[0], received[1]) {
            HexDigits::Upper(v) if v == computed => (true, None),
            HexDigits::Lower(v) if v == computed => {
                if leniency.lowercase_checksum {
                    tolerated = Some(FrameDefect::LowercaseChecksum(v));
                    (true, None)
                } else {
                    (false, Some(FrameDefect::LowercaseChecksum(v)))
                }
            }
            HexDigits::Upper(v) | HexDigits::Lower(v) => (
                false,
                Some(FrameDefect::ChecksumMismatch {
                    received: v,
                    computed,
                }),
            ),
            HexDigits::Invalid => (
                false,
                Some(FrameDefect::MalformedChecksum(received[0], received[1])),
            ),
        };
        let number = number_byte.and_then(|b| (b'0'..=b'7').contains(&b).then(|| b - b'0'));
        let defect = if number_missing {
            Some(FrameDefect::BadFrameNumber(end.byte()))
        } else if let (Some(b), None) = (number_byte, number) {
            Some(FrameDefect::BadFrameNumber(b))
        } else if let Some(offset) = restricted {
            Some(FrameDefect::RestrictedCharacter {
                offset,
                byte: text[offset],
            })
        } else if checksum_defect.is_some() && !leniency.unverified_checksum {
            checksum_defect
        } else if !trailer_ok && !leniency.missing_trailer {
            Some(FrameDefect::MissingTrailer)
        } else {
            None
        };
        Self {
            raw,
            number,
            text,
            end,
            computed,
            received,
            checksum_ok,
            defect,
            tolerated: checksum_defect.or(tolerated),
        }
    }
}

/// Appends one standard frame to `out`: `<STX> FN text <ETB|ETX> C1 C2 <CR><LF>`.
///
/// `number` is taken modulo 8. The text is written as given: callers keep restricted characters
/// out of it ([`crate::FramedMessage`] does not check either; the receiver would NAK them).
pub fn encode_frame(number: u8, text: &[u8], end: FrameEnd, out: &mut Vec<u8>) {
    let fn_byte = b'0' + (number % 8);
    let sum = checksum::checksum(Some(fn_byte), text, end.byte());
    out.reserve(text.len() + FRAME_OVERHEAD);
    out.push(STX);
    out.push(fn_byte);
    out.extend_from_slice(text);
    out.push(end.byte());
    out.extend_from_slice(&checksum::to_hex(sum));
    out.push(CR);
    out.push(LF);
}

/// The frame number that follows `number` (1, 2, ... 7, 0, 1, ...; §6.3.2). Numbers count
/// modulo 8, so any `u8` is taken modulo 8 first.
#[must_use]
pub const fn next_frame_number(number: u8) -> u8 {
    (number % 8 + 1) % 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_numbers_wrap_for_any_byte() {
        assert_eq!(next_frame_number(1), 2);
        assert_eq!(next_frame_number(7), 0);
        assert_eq!(next_frame_number(255), 0);
        assert_eq!(next_frame_number(8), 1);
    }

    #[test]
    fn encodes_the_python_astm_vector() {
        let mut out = Vec::new();
        encode_frame(1, b"A|B|C|D\r", FrameEnd::End, &mut out);
        assert_eq!(out, b"\x021A|B|C|D\r\x03BF\r\n");
    }

    #[test]
    fn frame_numbers_wrap() {
        let seq: Vec<u8> = std::iter::successors(Some(1u8), |&n| Some(next_frame_number(n)))
            .take(10)
            .collect();
        assert_eq!(seq, [1, 2, 3, 4, 5, 6, 7, 0, 1, 2]);
    }
}
