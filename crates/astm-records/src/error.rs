//! Error types, one enum per failure area.

use thiserror::Error;

use crate::message::Violation;

/// Why a delimiter set or a header's delimiter definition was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DelimiterError {
    /// The record does not start with `H` followed by a field delimiter.
    #[error("header record too short: expected `H` followed by a field delimiter")]
    HeaderTooShort,
    /// The header declares fewer than the two mandatory delimiters after the field delimiter.
    #[error(
        "header declares {found} delimiter(s) after the field delimiter; at least repeat and component are needed"
    )]
    TooFewDelimiters {
        /// How many distinct delimiter characters were found in H.2.
        found: usize,
    },
    /// A delimiter is a letter, a digit, CR or LF.
    #[error("byte 0x{byte:02X} cannot be a delimiter (letters, digits, CR and LF are not allowed)")]
    NotAllowed {
        /// The offending byte.
        byte: u8,
    },
    /// A delimiter is a LIS1-A restricted character (SOH, STX, ETX, EOT, ENQ, ACK, DLE, NAK, SYN, ETB,
    /// DC1–DC4), which the link layer does not carry in message text.
    #[error(
        "byte 0x{byte:02X} ({name}) cannot be a delimiter: it is a LIS1-A restricted character, which cannot appear in message text"
    )]
    Restricted {
        /// The offending byte.
        byte: u8,
        /// Its control-character name, e.g. `ETB`.
        name: &'static str,
    },
    /// Two delimiters are the same byte.
    #[error("byte 0x{byte:02X} is used for two delimiters")]
    Duplicate {
        /// The byte used twice.
        byte: u8,
    },
}

/// A record could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is empty.
    #[error("empty record")]
    Empty,
    /// The record contains a CR or LF, so it is more than one record.
    #[error("record contains a record terminator (CR or LF) at byte {offset}")]
    EmbeddedTerminator {
        /// Byte offset of the CR or LF.
        offset: usize,
    },
    /// The header's delimiter definition (H.2) is unusable.
    #[error("invalid delimiter definition in header: {0}")]
    Delimiters(DelimiterError),
}

// Not `#[from]`: that would also make the cause the `source()`, and it is already in the
// message, so a printer of the error chain would show it twice.
impl From<DelimiterError> for RecordError {
    fn from(error: DelimiterError) -> Self {
        Self::Delimiters(error)
    }
}

/// A message could not be parsed or failed validation in strict mode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The text holds no record at all.
    #[error("message is empty")]
    Empty,
    /// The first record is not a header, so the delimiters are unknown.
    #[error(
        "record 1 must be a header (H), found type {found:?}{}",
        framing_hint(found)
    )]
    MissingHeader {
        /// The first record's type field, as written (lossy text).
        found: String,
    },
    /// One record could not be parsed.
    #[error("record {record}: {error}")]
    Record {
        /// 1-based position of the record in the message.
        record: usize,
        /// What was wrong with it (in the message, so not also the `source()`).
        error: RecordError,
    },
    /// Strict mode: the message violates the E1394 hierarchy or numbering rules.
    #[error("{} violation(s), first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Violation>),
}

/// A hint for a "record type" that starts with E1381 link bytes: the caller passed what
/// came off the wire instead of the message text.
fn framing_hint(found: &str) -> &'static str {
    if found.starts_with(['\x02', '\x05', '\x04']) {
        " (E1381 framing: STX, ENQ or EOT; take the message text out of its frames with \
         astm-frame, e.g. a Link or FrameDecoder, first)"
    } else {
        ""
    }
}

/// A record or message could not be serialised.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A value contains a delimiter or control byte but the delimiter set has no escape character.
    #[error(
        "field {field}: byte 0x{byte:02X} needs escaping but the delimiter set declares no escape character"
    )]
    CannotEscape {
        /// 1-based field number.
        field: usize,
        /// The byte that could not be written.
        byte: u8,
    },
    /// A raw (pre-escaped) value contains the field delimiter, CR or LF.
    #[error(
        "field {field}: raw value contains byte 0x{byte:02X}, which would end the field or record"
    )]
    RawValue {
        /// 1-based field number.
        field: usize,
        /// The offending byte.
        byte: u8,
    },
    /// A raw (wire form) value contains a LIS1-A restricted character (SOH, STX, ETX, EOT, ENQ,
    /// ACK, DLE, NAK, SYN, ETB, DC1–DC4; LIS1-A §6.6), which cannot appear in message text.
    #[error(
        "field {field}: raw value contains byte 0x{byte:02X} ({name}), a LIS1-A restricted character, which cannot appear in message text"
    )]
    RestrictedByte {
        /// 1-based field number.
        field: usize,
        /// The offending byte.
        byte: u8,
        /// Its control-character name, e.g. `STX`.
        name: &'static str,
    },
    /// A timestamp's year is outside 0–9999, so it has no `YYYYMMDD` form.
    #[error("field {field}: year {year} cannot be written as a YYYY timestamp (0 to 9999)")]
    TimestampYear {
        /// 1-based field number.
        field: usize,
        /// The year that does not fit.
        year: i32,
    },
    /// The records pushed into a message builder break the E1394 hierarchy.
    #[error("{0}")]
    Hierarchy(Violation),
    /// A record of a message builder could not be written: which record, and why.
    #[error("record {record}: {error}")]
    Record {
        /// 1-based position of the record in the message.
        record: usize,
        /// What was wrong with it (in the message, so not also the `source()`).
        error: Box<Self>,
    },
}

/// A timestamp field does not hold `YYYYMMDD[HHMM[SS]]`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The text does not match the grammar.
    #[error("timestamp {text:?} is not YYYYMMDD[HHMM[SS]]")]
    Syntax {
        /// The text as written (lossy).
        text: String,
    },
    /// The digits do not form a real date or time (e.g. month 13).
    #[error("timestamp {text:?} is not a valid calendar date or time")]
    OutOfRange {
        /// The text as written (lossy).
        text: String,
    },
}

/// The message assembler's buffer limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AssembleError {
    /// The pending message would exceed the configured limit; it was discarded.
    #[error("message exceeds the {limit}-byte limit; {discarded} buffered byte(s) discarded")]
    TooLong {
        /// The configured limit in bytes.
        limit: usize,
        /// How many bytes were dropped.
        discarded: usize,
    },
}
