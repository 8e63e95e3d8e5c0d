//! A `tokio_util::codec` Decoder/Encoder for frames and control characters.
//!
//! Use it with `tokio_util::codec::Framed` when you want raw items and run your own logic; use
//! [`crate::driver::LinkDriver`] to have the full [`crate::Link`] state machine driven for you.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::control::Control;
use crate::frame::{FrameDefect, FrameEnd, encode_frame};
use crate::scanner::{BrokenReason, DecoderConfig, FrameScanner, Item};

/// A decoded frame that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// Frame number 0-7, or `None` for an unnumbered frame (lenient).
    pub number: Option<u8>,
    /// Intermediate (ETB) or end (ETX).
    pub end: FrameEnd,
    /// The text between FN and the terminator.
    pub text: Bytes,
    /// Every byte of the frame as received.
    pub raw: Bytes,
    /// Whether the checksum matched under the configured case rule.
    pub checksum_ok: bool,
    /// Why the frame must be rejected, if it must.
    pub defect: Option<FrameDefect>,
}

/// An item of the stream, owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecItem {
    /// ENQ, ACK, NAK or EOT.
    Control(Control),
    /// A complete frame.
    Frame(OwnedFrame),
    /// A bare record (lenient unframed mode).
    Record(Bytes),
    /// Bytes that began a frame but did not complete one.
    Broken {
        /// The bytes.
        bytes: Bytes,
        /// Why.
        reason: BrokenReason,
    },
    /// Bytes outside any frame.
    Junk(Bytes),
}

/// What to write: a control character or a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// One control character.
    Control(Control),
    /// A frame, checksummed on the way out.
    Frame {
        /// Frame number (taken modulo 8).
        number: u8,
        /// The text.
        text: &'a [u8],
        /// ETB or ETX.
        end: FrameEnd,
    },
}

/// Errors of the codec: only I/O, since every byte sequence decodes to some item.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(std::io::Error),
}

// Not `#[from]`: that would also make the cause the `source()`, and it is already in the
// message, so a printer of the error chain would show it twice.
impl From<std::io::Error> for CodecError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

/// The E1381 codec.
#[derive(Debug, Clone)]
pub struct AstmCodec {
    scanner: FrameScanner,
}

impl AstmCodec {
    /// A codec with the given decoder configuration.
    #[must_use]
    pub const fn new(config: DecoderConfig) -> Self {
        Self {
            scanner: FrameScanner::new(config),
        }
    }
}

impl Default for AstmCodec {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

/// Offset of `part` within `whole` (a subslice of it).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

impl Decoder for AstmCodec {
    type Item = CodecItem;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<CodecItem>, CodecError> {
        loop {
            if src.is_empty() {
                return Ok(None);
            }
            let scanned = self.scanner.scan(src);
            let Some(item) = scanned.item else {
                if scanned.consumed == 0 {
                    // Room for a whole frame, so the next read need not grow the buffer twice.
                    src.reserve(256);
                    return Ok(None);
                }
                let _ = src.split_to(scanned.consumed);
                continue;
            };
            // Record where the item's slices sit, then take the bytes out of the buffer.
            let whole: &[u8] = src;
            let range = |part: &[u8]| {
                let start = offset_in(whole, part);
                start..start + part.len()
            };
            enum Shape {
                Control(Control),
                Frame(
                    Option<u8>,
                    FrameEnd,
                    std::ops::Range<usize>,
                    std::ops::Range<usize>,
                    bool,
                    Option<FrameDefect>,
                ),
                Record(std::ops::Range<usize>),
                Broken(std::ops::Range<usize>, BrokenReason),
                Junk(std::ops::Range<usize>),
            }
            let shape = match item {
                Item::Control(c) => Shape::Control(c),
                Item::Frame(f) => Shape::Frame(
                    f.number(),
                    f.end(),
                    range(f.text()),
                    range(f.raw()),
                    f.checksum_ok(),
                    f.defect(),
                ),
                Item::Record(r) => Shape::Record(range(r)),
                Item::Broken { bytes, reason } => Shape::Broken(range(bytes), reason),
                Item::Junk(j) => Shape::Junk(range(j)),
            };
            let taken = src.split_to(scanned.consumed).freeze();
            return Ok(Some(match shape {
                Shape::Control(c) => CodecItem::Control(c),
                Shape::Frame(number, end, text, raw, checksum_ok, defect) => {
                    CodecItem::Frame(OwnedFrame {
                        number,
                        end,
                        text: taken.slice(text),
                        raw: taken.slice(raw),
                        checksum_ok,
                        defect,
                    })
                }
                Shape::Record(r) => CodecItem::Record(taken.slice(r)),
                Shape::Broken(r, reason) => CodecItem::Broken {
                    bytes: taken.slice(r),
                    reason,
                },
                Shape::Junk(r) => CodecItem::Junk(taken.slice(r)),
            }));
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<CodecItem>, CodecError> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        if src.is_empty() {
            return Ok(None);
        }
        self.scanner.reset();
        Ok(Some(CodecItem::Broken {
            bytes: src.split().freeze(),
            reason: BrokenReason::Unfinished,
        }))
    }
}

impl Encoder<Outgoing<'_>> for AstmCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Outgoing<'_>, dst: &mut BytesMut) -> Result<(), CodecError> {
        match item {
            Outgoing::Control(c) => dst.extend_from_slice(&[c.byte()]),
            Outgoing::Frame { number, text, end } => {
                let mut frame = Vec::with_capacity(text.len() + crate::FRAME_OVERHEAD);
                encode_frame(number, text, end, &mut frame);
                dst.extend_from_slice(&frame);
            }
        }
        Ok(())
    }
}

impl Encoder<Control> for AstmCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Control, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(Outgoing::Control(item), dst)
    }
}
