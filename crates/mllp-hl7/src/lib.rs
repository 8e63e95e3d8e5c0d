//! MLLP framing, a light zero-copy HL7 v2 reader, and HL7 acknowledgements.
//!
//! ```
//! use mllp_hl7::bytes::BytesMut;
//! use mllp_hl7::{AckBuilder, AckCode, Message, MllpDecoder, MllpFrame};
//!
//! // Two pipelined frames in one read, with junk in front.
//! let mut buf = BytesMut::from(
//!     &b"\r\n\x0bMSH|^~\\&|LAB|HOSP|LIS|HOSP|20240101||ORU^R01^ORU_R01|42|P|2.5.1\rPID|1\x1c\x0d\
//!        \x0bMSH|^~\\&|LAB|HOSP|LIS|HOSP|20240101||ORU^R01^ORU_R01|43|P|2.5.1\x1c\x0d"[..],
//! );
//! let mut decoder = MllpDecoder::new();
//! assert!(matches!(decoder.decode(&mut buf), Some(MllpFrame::Junk { len: 2, .. })));
//!
//! let Some(MllpFrame::Message(payload)) = decoder.decode(&mut buf) else { panic!() };
//! let message = Message::parse(&payload)?;
//! assert_eq!(message.control_id().raw(), b"42");
//!
//! let ack = AckBuilder::new(&message).code(AckCode::ApplicationAccept).build()?;
//! let ack = Message::parse(&ack)?;
//! assert_eq!(ack.get("MSA-2")?.unwrap().raw(), b"42");
//! assert_eq!(ack.sending_application().raw(), b"LIS");
//!
//! assert!(matches!(decoder.decode(&mut buf), Some(MllpFrame::Message(_))));
//! assert_eq!(decoder.decode(&mut buf), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Overview
//!
//! - **Framing** ([`MllpDecoder`], [`MllpConfig`], [`encode_frame`]): MLLP release 1
//!   `<VT> message <FS><CR>` as a sans-IO decoder with a resumable scan. Any number of
//!   frames per read, junk before a start block skipped and reported, a maximum size with
//!   a discard mode that skips to the frame's end or the next start block, a lenient mode
//!   for `FS` without `CR`, and start / end sequences of any length.
//! - **Release 2** ([`CommitAck`]): commit acknowledgement blocks `<VT><ACK><FS><CR>` and
//!   `<VT><NAK><FS><CR>`.
//! - **HL7 reader** ([`Message`], [`Segment`], [`Value`], [`Path`]): segments (CR, LF or
//!   CR LF), fields, repetitions, components, subcomponents, delimiters from MSH-1/2,
//!   escapes ([`unescape`], [`escape`]), MSH accessors, `SEG-n.c` paths, MSH-18
//!   character sets ([`Charset`]).
//! - **Acknowledgements** ([`AckBuilder`], [`AckMessage`]): original and enhanced mode,
//!   HL7 2.1 to 2.8.
//! - **tokio** (feature `tokio`): `MllpCodec` for `Framed`, `MllpClient` (send, await
//!   the correlated ACK with a timeout, pipelining) and `serve` (its documentation has a
//!   LIS port that reads OBX values and acknowledges, and a client sending to it).
//!
//! Nothing here panics on any input; refused frames are events, not stream errors.

/// The `bytes` crate, whose [`Bytes`](bytes::Bytes) and [`BytesMut`](bytes::BytesMut) this
/// crate's API uses.
pub use bytes;

mod ack;
mod error;
mod fmt_bytes;
mod hl7;
mod mllp;
#[cfg(feature = "tokio")]
mod tokio;

pub use ack::{AckBuilder, AckCode, AckMessage, AckMode, ErrorDetail, Severity, new_control_id};
pub use error::{
    AckError, AckReadError, ConfigError, EncodeError, FrameError, ParseError, PathError, TextError,
};
pub use hl7::{
    AckCondition, Charset, Delimiters, Message, MessageType, Path, Segment, Value, Version, escape,
    split_messages, unescape,
};
pub use mllp::{
    ACK_BYTE, CARRIAGE_RETURN, CommitAck, DEFAULT_MAX_MESSAGE_SIZE, Decoded, END_BLOCK, MllpConfig,
    MllpDecoder, MllpFrame, NAK_BYTE, START_BLOCK, SliceEvent, encode_frame,
};
#[cfg(feature = "tokio")]
pub use tokio::{
    ClientError, CodecError, MllpClient, MllpCodec, MllpServer, Reply, Response, Unframed,
    auto_ack, refuse_self_connect, serve, serve_connection,
};

/// The README's example, compiled and run as a doc-test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
