//! A light, zero-copy HL7 v2 reader.

mod charset;
mod delimiters;
mod escape;
mod message;
mod path;
mod value;

pub use charset::Charset;
pub use delimiters::Delimiters;
pub use escape::{escape, unescape};
pub use message::{AckCondition, Message, MessageType, Version, split_messages};
pub use path::Path;
pub use value::{Segment, Value};
