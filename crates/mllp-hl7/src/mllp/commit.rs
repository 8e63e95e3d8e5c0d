//! MLLP release 2 commit acknowledgement blocks.

use super::config::{CARRIAGE_RETURN, END_BLOCK, START_BLOCK};

/// ASCII `ACK`, the payload of a positive commit acknowledgement.
pub const ACK_BYTE: u8 = 0x06;
/// ASCII `NAK`, the payload of a negative commit acknowledgement.
pub const NAK_BYTE: u8 = 0x15;

/// An MLLP release 2 commit acknowledgement: the receiver has (or has not) persisted the
/// message. SocketReader calls this an "MLLP-ACK"; it is opt-in per connection, since a
/// release 1 peer does not understand it.
///
/// ```
/// use mllp_hl7::CommitAck;
///
/// assert_eq!(CommitAck::Ack.to_block(), [0x0B, 0x06, 0x1C, 0x0D]);
/// assert_eq!(CommitAck::from_block(&[0x0B, 0x15, 0x1C, 0x0D]), Some(CommitAck::Nak));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitAck {
    /// Positive commit acknowledgement (`0x06`): the message is stored.
    Ack,
    /// Negative commit acknowledgement (`0x15`): storing failed, the sender should resend.
    Nak,
}

impl CommitAck {
    /// The payload byte.
    #[must_use]
    pub fn byte(self) -> u8 {
        match self {
            Self::Ack => ACK_BYTE,
            Self::Nak => NAK_BYTE,
        }
    }

    /// The whole block with the default MLLP sequences.
    #[must_use]
    pub fn to_block(self) -> [u8; 4] {
        [START_BLOCK, self.byte(), END_BLOCK, CARRIAGE_RETURN]
    }

    /// Recognises a frame payload that is a commit acknowledgement (exactly one byte,
    /// `0x06` or `0x15`).
    #[must_use]
    pub fn from_payload(payload: &[u8]) -> Option<Self> {
        match payload {
            [ACK_BYTE] => Some(Self::Ack),
            [NAK_BYTE] => Some(Self::Nak),
            _ => None,
        }
    }

    /// Recognises a whole default-framed block (`0B 06 1C 0D` or `0B 15 1C 0D`); anything
    /// else, including the `0B 0F 1C 0D` that crate `mllp-rs` 0.1.1 sends as its NAK, is
    /// `None`.
    #[must_use]
    pub fn from_block(block: &[u8]) -> Option<Self> {
        match block {
            [START_BLOCK, byte, END_BLOCK, CARRIAGE_RETURN] => Self::from_payload(&[*byte]),
            _ => None,
        }
    }

    /// Whether this is the positive acknowledgement.
    #[must_use]
    pub fn is_ack(self) -> bool {
        self == Self::Ack
    }
}
