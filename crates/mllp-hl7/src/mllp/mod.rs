//! MLLP framing: release 1 blocks and release 2 commit acknowledgements.

mod commit;
mod config;
mod decoder;

pub use commit::{ACK_BYTE, CommitAck, NAK_BYTE};
pub use config::{CARRIAGE_RETURN, DEFAULT_MAX_MESSAGE_SIZE, END_BLOCK, MllpConfig, START_BLOCK};
pub use decoder::{Decoded, MllpDecoder, MllpFrame, SliceEvent};

/// Frames `payload` with the default MLLP sequences, appending to `out`.
///
/// ```
/// let mut out = Vec::new();
/// mllp_hl7::encode_frame(b"MSH|^~\\&|A", &mut out)?;
/// assert_eq!(out, b"\x0bMSH|^~\\&|A\x1c\x0d");
/// # Ok::<(), mllp_hl7::EncodeError>(())
/// ```
///
/// # Errors
///
/// See [`MllpConfig::encode`].
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), crate::EncodeError> {
    MllpConfig::DEFAULT.encode(payload, out)
}
