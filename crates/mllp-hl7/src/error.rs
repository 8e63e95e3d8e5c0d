//! Error types, one per failure area.

use thiserror::Error;

/// Framing settings that cannot delimit frames.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The start-of-block sequence is empty.
    #[error("mllp config: the start block is empty")]
    EmptyStartBlock,
    /// The end-of-block sequence is empty.
    #[error("mllp config: the end block is empty")]
    EmptyEndBlock,
    /// Start and end blocks are the same bytes.
    #[error("mllp config: the start and end blocks are equal, so frames cannot be told apart")]
    StartEqualsEnd,
    /// The maximum message size is zero.
    #[error("mllp config: the maximum message size is zero")]
    ZeroMaxMessageSize,
}

/// A frame the decoder refused. Decoding continues after it; nothing else is lost.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The payload grew past the maximum; the rest of the frame was skipped, up to its
    /// end (end block and trailer) or the next start block.
    #[error(
        "frame at stream offset {offset} exceeds the maximum message size of {max} bytes; skipped to its end or the next start block"
    )]
    TooLarge {
        /// Stream offset of the frame's start block.
        offset: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A new start block arrived before the end block; the partial frame was dropped
    /// and decoding resumed at the new start block. A partial frame already over the
    /// maximum size is reported as [`TooLarge`](Self::TooLarge) instead.
    #[error(
        "frame at stream offset {offset} interrupted by a new start block after {len} payload bytes; partial frame dropped"
    )]
    Interrupted {
        /// Stream offset of the dropped frame's start block.
        offset: u64,
        /// Payload bytes dropped.
        len: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside the frame at stream offset {offset} after {len} payload bytes")]
    Truncated {
        /// Stream offset of the frame's start block.
        offset: u64,
        /// Payload bytes received.
        len: usize,
    },
}

/// A payload that cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Larger than the configured maximum.
    #[error("payload of {len} bytes exceeds the maximum message size of {max} bytes")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The payload contains the start block, which would cut the frame short, or its last
    /// bytes with the end block and trailer after them begin one, so a receiver could not
    /// end the frame before more bytes came.
    #[error(
        "payload would hold a start block at byte {at} (in the payload, or formed or begun by its last bytes with the end block and trailer)"
    )]
    ContainsStartBlock {
        /// Offset in the payload.
        at: usize,
    },
    /// The payload contains the end block (and trailer), which would end the frame early.
    #[error("payload contains the end-of-frame sequence at byte {at}")]
    ContainsEndBlock {
        /// Offset in the payload.
        at: usize,
    },
    /// The settings cannot delimit frames (an empty start block, say), so no receiver could
    /// find this one.
    #[error("{0}")]
    Config(ConfigError),
}

/// Input that is not an HL7 v2 message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// No bytes, or only segment terminators.
    #[error("hl7: empty message")]
    Empty,
    /// The first segment is not MSH (or FHS / BHS for a batch).
    #[error(
        "hl7: the message starts with {found:?}, expected a MSH, FHS or BHS header segment{}",
        mllp_hint(found)
    )]
    MissingHeader {
        /// The first bytes found (at most 8).
        found: String,
    },
    /// The header is too short to declare the field separator and encoding characters.
    #[error("hl7: header segment {segment} is too short to declare its delimiters")]
    TruncatedHeader {
        /// The header segment id.
        segment: String,
    },
    /// A delimiter is a letter, digit, whitespace or repeated.
    #[error("hl7: invalid delimiter {byte:#04x} at header position {position}: {reason}")]
    InvalidDelimiter {
        /// The offending byte.
        byte: u8,
        /// 0-based position in the header segment.
        position: usize,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// A malformed `SEG-n.c` path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PathError {
    /// The segment id is not 3 upper-case letters or digits.
    #[error(
        "hl7 path {path:?}: the segment id must be 3 upper-case letters or digits (OBX, not obx)"
    )]
    BadSegment {
        /// The path given.
        path: String,
    },
    /// A number in the path is missing, zero or not a number.
    #[error("hl7 path {path:?}: invalid {what} (a number from 1 up is expected)")]
    BadNumber {
        /// The path given.
        path: String,
        /// Which part.
        what: &'static str,
    },
    /// Unexpected characters.
    #[error(
        "hl7 path {path:?}: unexpected {rest:?}; expected SEG[(k)][-field[(rep)][.component[.subcomponent]]]"
    )]
    Syntax {
        /// The path given.
        path: String,
        /// What could not be read.
        rest: String,
    },
}

/// Bytes that cannot be turned into text in the declared character set.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TextError {
    /// A byte is not valid in the character set.
    #[error("hl7 text: byte {byte:#04x} at offset {at} is not valid {charset}")]
    Invalid {
        /// The character set's MSH-18 name.
        charset: String,
        /// The offending byte.
        byte: u8,
        /// Offset in the unescaped value.
        at: usize,
    },
    /// No decoder for this character set.
    #[error(
        "hl7 text: character set {charset:?} is not supported (ASCII, 8859/1, 8859/15 and UTF-8 are)"
    )]
    Unsupported {
        /// The MSH-18 value.
        charset: String,
    },
}

/// A message that must not be, or cannot be, acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AckError {
    /// The message is itself an acknowledgement (MSH-9 = ACK); acknowledging it would
    /// start an endless ACK loop (SocketReader bug #13).
    #[error("hl7 ack: the message is an ACK (MSH-9 {msh9:?}); an ACK is never acknowledged")]
    IsAcknowledgement {
        /// MSH-9 as received.
        msh9: String,
    },
    /// The header (first MSH segment) is missing.
    #[error("hl7 ack: the message has no MSH segment")]
    NoMsh,
}

/// An ACK message that cannot be read as one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AckReadError {
    /// The bytes are not an HL7 message (only from
    /// [`AckMessage::parse`](crate::AckMessage::parse), which parses them first).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// No MSA segment.
    #[error("hl7 ack: no MSA segment")]
    NoMsa,
    /// MSA-1 is not one of AA, AE, AR, CA, CE, CR.
    #[error("hl7 ack: MSA-1 {found:?} is not an acknowledgement code (AA, AE, AR, CA, CE, CR)")]
    BadCode {
        /// MSA-1 as received.
        found: String,
    },
}

/// A hint for a message that starts with an MLLP start block: the caller passed the frame
/// as it came off the wire instead of its payload.
fn mllp_hint(found: &str) -> &'static str {
    if found.starts_with('\x0b') {
        " (it starts with the MLLP start block VT: decode the frame with MllpDecoder or \
         MllpCodec and parse its payload)"
    } else {
        ""
    }
}
