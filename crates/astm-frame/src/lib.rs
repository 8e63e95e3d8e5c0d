//! The ASTM E1381 / CLSI LIS1-A link layer: how clinical laboratory instruments and laboratory
//! information systems exchange frames over serial lines and TCP.
//!
//! ```
//! use std::time::Instant;
//! use astm_frame::{Event, Link, LinkConfig, Role};
//!
//! // The start of a session captured from an instrument: ENQ, one frame per record, EOT.
//! let capture: &[u8] = b"\x05\
//!     \x021H|\\^&|||H500|||||||P|LIS2-A2|20240101120000\r\x0349\r\n\
//!     \x022R|1|^^^WBC|5.8|10^3/uL||N||F\r\x03AC\r\n\
//!     \x023L|1|N\r\x0306\r\n\
//!     \x04";
//! let now = Instant::now();
//! let mut lis = Link::new(LinkConfig::new(Role::Computer));
//! lis.handle_input(capture, now);
//!
//! let mut replies = Vec::new();
//! while lis.poll_transmit(&mut replies).is_some() {}
//! assert_eq!(replies, b"\x06\x06\x06\x06"); // ENQ and three frames acknowledged
//!
//! let mut records = Vec::new();
//! while let Some(event) = lis.poll_event() {
//!     if let Event::MessageReceived(text) = event {
//!         records.push(text);
//!     }
//! }
//! assert_eq!(records[1], b"R|1|^^^WBC|5.8|10^3/uL||N||F\r");
//! ```
//!
//! By default a receiver hands over each E1381 message, which instruments make one record
//! ([`Assembly::PerEndFrame`]). For the whole E1394 message H … L, as `astm-records`'
//! `Message::parse` takes it, set [`Assembly::PerTransfer`] (a transfer holding several
//! messages comes as one text) or join the records with `astm_records::MessageAssembler`:
//!
//! ```
//! use std::time::Instant;
//! use astm_frame::{Assembly, Event, Link, LinkConfig, Role};
//!
//! let mut lis = Link::new(LinkConfig::new(Role::Computer).with_assembly(Assembly::PerTransfer));
//! lis.handle_input(b"\x05\x021H|\\^&\r\x03E5\r\n\x022L|1|N\r\x0305\r\n\x04", Instant::now());
//! assert_eq!(lis.poll_event(), Some(Event::MessageReceived(b"H|\\^&\rL|1|N\r".to_vec())));
//! ```
//!
//! A [`Link`] takes frames only inside a transfer (after ENQ). To read a file of frames
//! without ENQ and EOT, decode it with [`FrameDecoder`] and join each ETB chain with its ETX
//! frame (shown there).
//!
//! # Layers
//!
//! - [`checksum`] and [`encode_frame`]: the frame format `<STX> FN text <ETB|ETX> C1 C2 <CR><LF>`.
//! - [`FrameScanner`] (over a caller's buffer) and [`FrameDecoder`] (owning one): incremental
//!   decoding in any chunking, bounded memory, junk reported and skipped.
//! - [`FramedMessage`]: a message cut into frames, one record per end frame or packed, long
//!   records continued in ETB frames (240 text bytes by default, up to 63,993).
//! - [`Link`]: the sans-IO state machine of one station, either role: establishment,
//!   contention, transfer with retransmission, receiver interrupt, termination, every timer.
#![cfg_attr(
    feature = "tokio",
    doc = "- With the `tokio` feature: [`AstmCodec`] for `tokio_util::codec::Framed`, and
  [`LinkDriver`], which runs a [`Link`] over any `AsyncRead + AsyncWrite` (also re-exported
  at the crate root, as their modules `codec` and `driver` have them)."
)]
#![cfg_attr(
    not(feature = "tokio"),
    doc = "- With the `tokio` feature (not enabled in this build): `codec::AstmCodec` for
  `tokio_util::codec::Framed`, and `driver::LinkDriver`, which runs a [`Link`] over any
  `AsyncRead + AsyncWrite`."
)]
//!
//! # Leniency
//!
//! Real instruments deviate; [`Leniency`] names each accepted deviation (lower-case checksums,
//! missing CR LF, unnumbered frames, any first frame number, unchecked checksums, bare unframed
//! records). All are off
//! by default.
//!
//! # Bytes are bytes
//!
//! Checksums are computed over the bytes on the wire and the crate never decodes text. For
//! callers that want strings, [`text`] decodes Latin-1 or UTF-8.

#![doc(test(attr(deny(warnings))))]

pub mod checksum;
pub mod control;
mod decoder;
mod frame;
mod framer;
mod link;
mod scanner;
pub mod text;

#[cfg(feature = "tokio")]
pub mod codec;
#[cfg(feature = "tokio")]
pub mod driver;

#[cfg(feature = "tokio")]
pub use codec::{AstmCodec, CodecError, CodecItem, Outgoing, OwnedFrame};
pub use control::Control;
pub use decoder::FrameDecoder;
#[cfg(feature = "tokio")]
pub use driver::{DriverError, LinkDriver, MAX_DIAGNOSTICS};
pub use frame::{
    E1381_95_MAX_FRAME, E1381_95_MAX_TEXT, FRAME_OVERHEAD, Frame, FrameDefect, FrameEnd,
    LIS1_A_MAX_FRAME, LIS1_A_MAX_TEXT, encode_frame, next_frame_number,
};
pub use framer::{FramedMessage, FramerConfig, Packing};
pub use link::{
    AbortReason, Assembly, ContentionPolicy, DiscardReason, Event, Link, LinkConfig, LinkError,
    LinkState, MessageId, Role, Timers,
};
pub use scanner::{
    BrokenReason, DecoderConfig, FrameScanner, Item, Items, Leniency, Scanned, is_header_record,
    is_terminator_record,
};

/// The README's example, compiled and run as a doc-test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
