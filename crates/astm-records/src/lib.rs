//! ASTM E1394 / CLSI LIS2-A2 records: the content layer of laboratory instrument interfaces.
//!
//! Parse what instruments send, tolerantly and without copying; build what you send, strictly.
//!
//! ```
//! use astm_records::{Message, TypedRecord};
//!
//! // A Beckman DxH style header declares its own delimiters: field |, repeat \, component !, escape ~.
//! let text = b"H|\\!~|||DxH\rP|1||PID7\rO|1|S-1||!!!CBC\rR|1|!!!WBC|5.8|10*3/uL|4.0-10.0|N||F\rL|1|N\r";
//! let message = Message::parse(text)?;
//! assert!(message.violations().is_empty());
//! for result in message.results() {
//!     assert_eq!(result.test_code().as_deref(), Some("WBC"));
//!     assert_eq!(result.numeric_value().unwrap().value, 5.8);
//!     assert_eq!(result.units_text(), "10*3/uL");
//!     assert_eq!(result.reference_range().unwrap().high, Some(10.0));
//! }
//! assert!(matches!(message.records()[1].typed(), TypedRecord::Patient(_)));
//! # Ok::<(), astm_records::MessageError>(())
//! ```
//!
//! # Layers
//!
//! - [`Delimiters`] come from each header record (`H|\^&`, `H|\!~`, `` H|`^& ``, `H|@^\`, or a
//!   three-character `H|\^` without escape character).
//! - [`Record`] borrows the input; [`Field`], [`Repeat`] and [`Component`] are views split with `memchr`.
//!   Escapes (`&F&`, `&S&`, `&R&`, `&E&`, `&Xhh&`, unpadded `&XD&`) are decoded on demand ([`unescape`]).
//! - Typed views [`Header`], [`Patient`], [`Order`], [`ResultRecord`], [`Comment`], [`Query`] and
//!   [`Terminator`] name every LIS2-A2 field of their record; [`Manufacturer`] (vendor-defined after
//!   M.2) and [`Scientific`] name only the type and sequence number, and their other fields are read
//!   by number through [`Record::field`]. Values such as
//!   [`TestId`], [`NumericValue`], [`ReferenceRange`], [`AbnormalFlag`], [`ResultStatus`] and
//!   [`Timestamp`] are parsed only when asked for.
//! - [`Message`] builds the H → P → O → R hierarchy (C and M attach to the record before them) and
//!   reports [`Violation`]s as warnings, or as an error in [`Validation::Strict`] mode. Each
//!   result's order and patient: [`Message::nodes_of`] and [`Node::ancestor`].
//! - Builders ([`RecordBuf`], [`ResultBuilder`] …, [`MessageBuilder`]) escape on output; an unmodified
//!   parsed record ([`RecordBuf::from_record`]) writes back the same bytes with its own delimiters
//!   and is re-encoded for others; [`MessageBuilder`] writes H.2 and the record letters in the
//!   standard's form.
//! - [`MessageAssembler`] joins E1381 message texts (usually one record each) into H … L messages.
//!
//! The crate does no I/O and does not depend on the link layer (`astm-frame`).

/// The `chrono` crate, whose [`NaiveDate`](chrono::NaiveDate) and
/// [`NaiveDateTime`](chrono::NaiveDateTime) [`Timestamp`] converts to and from, so a caller
/// needs no `chrono` dependency of its own (nor the same version) to use them.
///
/// ```
/// use astm_records::chrono::NaiveDate;
/// use astm_records::{Delimiters, FieldBuf, ResultBuilder};
/// let completed = NaiveDate::from_ymd_opt(2024, 5, 6).and_then(|d| d.and_hms_opt(7, 8, 9)).unwrap();
/// let r = ResultBuilder::new().completed_date_time(FieldBuf::timestamp(completed)).build();
/// assert!(r.to_bytes(&Delimiters::STANDARD)?.ends_with(b"|20240506070809"));
/// # Ok::<(), astm_records::BuildError>(())
/// ```
pub use chrono;

mod build;
mod delimiters;
mod error;
mod escape;
mod message;
mod record;
mod text;
mod timestamp;
mod typed;
mod values;

pub use build::{FieldBuf, RecordBuf};
pub use delimiters::Delimiters;
pub use error::{
    AssembleError, BuildError, DelimiterError, MessageError, RecordError, TimestampError,
};
pub use escape::{UnknownEscape, escape_into, unescape, unescape_with};
pub use message::{
    Message, MessageAssembler, MessageBuilder, MessageSlices, Node, Validation, Violation,
    ViolationKind, split_messages,
};
pub use record::{
    Component, Components, Field, Fields, Record, RecordType, Records, Repeat, Repeats,
    parse_records,
};
pub use text::{Charset, yen_to_backslash};
pub use timestamp::{Timestamp, parse_timestamp};
pub use typed::{
    Comment, CommentBuilder, Header, HeaderBuilder, Manufacturer, ManufacturerBuilder, Order,
    OrderBuilder, Patient, PatientBuilder, Query, QueryBuilder, ResultBuilder, ResultRecord,
    Scientific, ScientificBuilder, TerminationCode, Terminator, TerminatorBuilder, TypedRecord,
};
pub use values::{
    AbnormalFlag, Comparator, NumericValue, ReferenceRange, ReportType, ResultStatus, TestId,
    test_ids,
};

/// The README's example, compiled and run as a doc-test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
