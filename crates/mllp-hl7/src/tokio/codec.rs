//! tokio-util `Decoder` / `Encoder` over [`MllpDecoder`].

use std::io;

use bytes::{Bytes, BytesMut};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{ConfigError, EncodeError};
use crate::mllp::{CommitAck, MllpConfig, MllpDecoder, MllpFrame};

/// Why a [`MllpCodec`] stopped. Refused frames and junk are not errors: they come out
/// as [`MllpFrame::Error`] and [`MllpFrame::Junk`] items and decoding goes on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Reading or writing the transport failed.
    #[error("mllp transport: {0}")]
    Io(io::Error),
    /// A payload could not be framed.
    #[error("mllp encode: {0}")]
    Encode(EncodeError),
}

impl From<EncodeError> for CodecError {
    fn from(error: EncodeError) -> Self {
        Self::Encode(error)
    }
}

// Not `#[from]`: that would also make the cause the `source()`, and it is already in the
// message, so a printer of the error chain would show it twice.
impl From<io::Error> for CodecError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// MLLP codec for `tokio_util::codec::Framed`: decodes into [`MllpFrame`]s (message
/// payloads as zero-copy [`Bytes`]), encodes payloads (`&[u8]`, `Bytes`, `Vec<u8>`) and
/// release 2 [`CommitAck`] blocks.
///
/// ```
/// use mllp_hl7::bytes::BytesMut;
/// use mllp_hl7::{MllpCodec, MllpFrame};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = MllpCodec::new();
/// let mut wire = BytesMut::new();
/// codec.encode(&b"MSH|^~\\&|A"[..], &mut wire)?;
/// codec.encode(&b"MSH|^~\\&|B"[..], &mut wire)?;
/// assert_eq!(codec.decode(&mut wire)?, Some(MllpFrame::Message("MSH|^~\\&|A".into())));
/// assert_eq!(codec.decode(&mut wire)?, Some(MllpFrame::Message("MSH|^~\\&|B".into())));
/// # Ok::<(), mllp_hl7::CodecError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MllpCodec {
    decoder: MllpDecoder,
}

impl MllpCodec {
    /// A codec for standard MLLP release 1 framing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec with custom settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the settings cannot delimit frames.
    pub fn with_config(config: MllpConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            decoder: MllpDecoder::with_config(config)?,
        })
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &MllpConfig {
        self.decoder.config()
    }

    /// Bytes outside any frame skipped but not yet reported
    /// ([`MllpDecoder::unreported_junk`]).
    #[must_use]
    pub fn unreported_junk(&self) -> usize {
        self.decoder.unreported_junk()
    }

    /// Stream offset of the first byte not yet consumed ([`MllpDecoder::position`]): with
    /// the bytes still buffered, how much of the stream has arrived.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.decoder.position()
    }

    /// Whether the decoder is inside a frame, or skipping an oversized one
    /// ([`MllpDecoder::in_frame`]).
    #[must_use]
    pub fn in_frame(&self) -> bool {
        self.decoder.in_frame()
    }
}

impl Decoder for MllpCodec {
    type Item = MllpFrame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<MllpFrame>, CodecError> {
        Ok(self.decoder.decode(src))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<MllpFrame>, CodecError> {
        Ok(self.decoder.decode_eof(src))
    }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.reserve(self.config().framed_len(payload.len()));
        Ok(self.config().encode(payload, dst)?)
    }
}

impl Encoder<Bytes> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&payload[..], dst)
    }
}

impl Encoder<Vec<u8>> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, payload: Vec<u8>, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&payload[..], dst)
    }
}

impl Encoder<CommitAck> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, commit: CommitAck, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.config().encode_commit(commit, dst)?)
    }
}
