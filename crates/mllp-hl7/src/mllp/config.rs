//! Framing settings shared by the decoder and the encoder.

use std::borrow::Cow;
use std::fmt;

use bytes::BufMut;
use memchr::memmem;

use super::CommitAck;
use crate::error::{ConfigError, EncodeError};
use crate::fmt_bytes::Escaped;

/// MLLP start block `SB`, ASCII vertical tab.
pub const START_BLOCK: u8 = 0x0B;
/// MLLP end block `EB`, ASCII file separator.
pub const END_BLOCK: u8 = 0x1C;
/// Carriage return that follows the end block.
pub const CARRIAGE_RETURN: u8 = 0x0D;

/// Default cap on one message: 8 MiB leaves room for base64 PDFs and images in OBX-5
/// while a sender that never terminates its frame cannot exhaust memory.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 * 1024 * 1024;

/// How frames are delimited and how much a receiver accepts.
///
/// The default is MLLP release 1: start block `0x0B`, end block `0x1C`, trailer `0x0D`,
/// strict (an end block not followed by the trailer is data) and at most
/// [`DEFAULT_MAX_MESSAGE_SIZE`] bytes per message. Every sequence may be any non-empty
/// byte string, as with SocketReader's `sob` (start block), `eod` (end of data: the end
/// block) and `eob` (end of block: the trailer), or Mirth's frame mode:
///
/// ```
/// use mllp_hl7::{MllpConfig, MllpDecoder};
///
/// let config = MllpConfig::default()
///     .with_start_block(b"START-BLOCK".to_vec())
///     .with_end_block(b"END-BLOCK".to_vec())
///     .with_trailer(b"\r\n".to_vec());
/// let decoder = MllpDecoder::with_config(config)?;
/// # Ok::<(), mllp_hl7::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MllpConfig {
    pub(crate) start_block: Cow<'static, [u8]>,
    pub(crate) end_block: Cow<'static, [u8]>,
    pub(crate) trailer: Cow<'static, [u8]>,
    pub(crate) max_message_size: usize,
    pub(crate) lenient: bool,
}

impl fmt::Debug for MllpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MllpConfig")
            .field("start_block", &Escaped(&self.start_block))
            .field("end_block", &Escaped(&self.end_block))
            .field("trailer", &Escaped(&self.trailer))
            .field("max_message_size", &self.max_message_size)
            .field("lenient", &self.lenient)
            .finish()
    }
}

impl Default for MllpConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl MllpConfig {
    /// MLLP release 1 as specified (see the type's documentation).
    pub const DEFAULT: Self = Self {
        start_block: Cow::Borrowed(&[START_BLOCK]),
        end_block: Cow::Borrowed(&[END_BLOCK]),
        trailer: Cow::Borrowed(&[CARRIAGE_RETURN]),
        max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        lenient: false,
    };

    /// The default configuration.
    #[must_use]
    pub fn new() -> Self {
        Self::DEFAULT
    }

    /// Sets the start-of-block sequence (SocketReader `sob`); must not be empty.
    #[must_use]
    pub fn with_start_block(mut self, sequence: impl Into<Vec<u8>>) -> Self {
        self.start_block = Cow::Owned(sequence.into());
        self
    }

    /// Sets the end block that closes the payload (SocketReader `eod`, "end of data";
    /// `FS` in MLLP); must not be empty.
    #[must_use]
    pub fn with_end_block(mut self, sequence: impl Into<Vec<u8>>) -> Self {
        self.end_block = Cow::Owned(sequence.into());
        self
    }

    /// Sets the trailer after the end block (SocketReader `eob`, "end of block"; `CR` in
    /// MLLP); may be empty.
    #[must_use]
    pub fn with_trailer(mut self, sequence: impl Into<Vec<u8>>) -> Self {
        self.trailer = Cow::Owned(sequence.into());
        self
    }

    /// Caps the payload of one message; a longer one is refused and skipped.
    #[must_use]
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Lenient mode: an end block without its trailer still ends the frame (senders that
    /// write `FS` without `CR`), and `NUL`, `CR` and `LF` between frames are skipped
    /// silently (`FS CR LF` senders, NUL padding) instead of being reported as junk;
    /// after other junk they are reported with it.
    #[must_use]
    pub fn with_lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    /// The start-of-block sequence.
    #[must_use]
    pub fn start_block(&self) -> &[u8] {
        &self.start_block
    }

    /// The end block that closes the payload (SocketReader `eod`).
    #[must_use]
    pub fn end_block(&self) -> &[u8] {
        &self.end_block
    }

    /// The trailer expected after the end block (SocketReader `eob`).
    #[must_use]
    pub fn trailer(&self) -> &[u8] {
        &self.trailer
    }

    /// The largest accepted payload in bytes.
    #[must_use]
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Whether lenient mode is on.
    #[must_use]
    pub fn is_lenient(&self) -> bool {
        self.lenient
    }

    /// Checks that frames can be delimited with these settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when a required sequence is empty, the start and end blocks are
    /// equal, or the maximum size is zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.start_block.is_empty() {
            return Err(ConfigError::EmptyStartBlock);
        }
        if self.end_block.is_empty() {
            return Err(ConfigError::EmptyEndBlock);
        }
        if self.start_block == self.end_block {
            return Err(ConfigError::StartEqualsEnd);
        }
        if self.max_message_size == 0 {
            return Err(ConfigError::ZeroMaxMessageSize);
        }
        Ok(())
    }

    /// Whether [`encode`](Self::encode) can frame `payload`, without framing it: a
    /// sender can set aside a message no retry will ever deliver.
    ///
    /// # Errors
    ///
    /// The [`EncodeError`] that `encode` would return.
    ///
    /// ```
    /// use mllp_hl7::{EncodeError, MllpConfig};
    ///
    /// let config = MllpConfig::new();
    /// assert!(config.check_payload(b"MSH|^~\\&|A\r").is_ok());
    /// assert!(matches!(
    ///     config.check_payload(b"MSH|\x1c\rPID"),
    ///     Err(EncodeError::ContainsEndBlock { at: 4 })
    /// ));
    /// ```
    pub fn check_payload(&self, payload: &[u8]) -> Result<(), EncodeError> {
        self.validate().map_err(EncodeError::Config)?;
        if payload.len() > self.max_message_size {
            return Err(EncodeError::TooLarge {
                len: payload.len(),
                max: self.max_message_size,
            });
        }
        let start = find_sequence(payload, &self.start_block)
            .or_else(|| self.find_straddling(payload, &self.start_block))
            .or_else(|| self.find_start_prefix_at_frame_end(payload));
        if let Some(at) = start {
            return Err(EncodeError::ContainsStartBlock { at });
        }
        if let Some(at) = self.find_terminator(payload) {
            return Err(EncodeError::ContainsEndBlock { at });
        }
        Ok(())
    }

    /// The earliest offset in `payload` where `sequence` begins and runs on into the end
    /// block and trailer that [`encode`](Self::encode) appends (custom sequences can
    /// overlap that way, e.g. a payload ending in LF before the end block `LF LF`).
    fn find_straddling(&self, payload: &[u8], sequence: &[u8]) -> Option<usize> {
        let appended = || self.end_block.iter().chain(self.trailer.iter());
        // `inside` bytes of the sequence at the end of the payload, the rest after it;
        // the most bytes inside is the earliest start.
        (1..sequence.len())
            .rev()
            .filter(|&inside| inside <= payload.len())
            .find(|&inside| {
                let rest = &sequence[inside..];
                payload.ends_with(&sequence[..inside])
                    && appended().take(rest.len()).eq(rest.iter())
            })
            .map(|inside| payload.len() - inside)
    }

    /// The earliest offset in `payload` where the frame's last bytes (the rest of the
    /// payload, the end block and the trailer) are the beginning of a longer start block.
    /// A decoder cannot end such a frame at its end block until the next bytes show that
    /// no start block begins there, so a sender waiting for the reply would wait for ever.
    fn find_start_prefix_at_frame_end(&self, payload: &[u8]) -> Option<usize> {
        let appended = self.end_block.len() + self.trailer.len();
        let longest = self
            .start_block
            .len()
            .saturating_sub(appended + 1)
            .min(payload.len());
        (1..=longest)
            .rev()
            .find(|&inside| {
                let tail = &payload[payload.len() - inside..];
                let (head, rest) = self.start_block.split_at(inside);
                head == tail
                    && rest.starts_with(&self.end_block)
                    && rest[self.end_block.len()..].starts_with(&self.trailer)
            })
            .map(|inside| payload.len() - inside)
    }

    /// Frames `payload`: start block, payload, end block, trailer.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when the settings fail [`validate`](Self::validate), or the payload
    /// is larger than the maximum size or contains a
    /// sequence the receiver would take for a frame boundary (the start block, or the end
    /// block followed by the trailer; in lenient mode the end block alone), counting one
    /// that its last bytes form with the end block and trailer appended, and a start
    /// block they would begin (a receiver would hold the frame until more bytes came).
    /// Nothing is written then.
    pub fn encode(&self, payload: &[u8], out: &mut impl BufMut) -> Result<(), EncodeError> {
        self.check_payload(payload)?;
        out.put_slice(&self.start_block);
        out.put_slice(payload);
        out.put_slice(&self.end_block);
        out.put_slice(&self.trailer);
        Ok(())
    }

    /// Writes an MLLP release 2 commit acknowledgement block (`<SB><ACK><EB><CR>` or
    /// `<SB><NAK><EB><CR>` with the default sequences).
    ///
    /// # Errors
    ///
    /// [`EncodeError::Config`] when the settings fail [`validate`](Self::validate); nothing
    /// is written then.
    pub fn encode_commit(
        &self,
        commit: CommitAck,
        out: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        self.validate().map_err(EncodeError::Config)?;
        out.put_slice(&self.start_block);
        out.put_u8(commit.byte());
        out.put_slice(&self.end_block);
        out.put_slice(&self.trailer);
        Ok(())
    }

    /// The number of bytes a frame of `payload_len` bytes occupies on the wire.
    #[must_use]
    pub fn framed_len(&self, payload_len: usize) -> usize {
        self.start_block.len() + payload_len + self.end_block.len() + self.trailer.len()
    }

    fn find_terminator(&self, payload: &[u8]) -> Option<usize> {
        if self.lenient {
            return find_sequence(payload, &self.end_block)
                .or_else(|| self.find_straddling(payload, &self.end_block));
        }
        let mut terminator = Vec::with_capacity(self.end_block.len() + self.trailer.len());
        terminator.extend_from_slice(&self.end_block);
        terminator.extend_from_slice(&self.trailer);
        find_sequence(payload, &terminator).or_else(|| self.find_straddling(payload, &terminator))
    }
}

/// First occurrence of `needle` in `haystack`; `None` for an empty needle.
pub(crate) fn find_sequence(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [] => None,
        [byte] => memchr::memchr(*byte, haystack),
        _ => memmem::find(haystack, needle),
    }
}
