//! A parsed HL7 v2 message: segment index over borrowed bytes, header accessors.

use std::cmp::Ordering;
use std::fmt;

use super::{Charset, Delimiters, Path, Segment, Value};
use crate::error::{ParseError, PathError, TextError};
use crate::fmt_bytes::{Escaped, EscapedList};

/// A zero-copy view of one HL7 v2 message (or an FHS/BHS batch).
///
/// Parsing reads the delimiters from the header and indexes the segments; nothing is
/// copied or unescaped until asked for. Segments may end in CR (the standard), LF or
/// CR LF. A bare LF only ends a segment when a segment id (`ABC|`) or the end follows,
/// blank lines in between looked past, so an LF or a blank line inside a field (seen in
/// Epic ORM feeds) stays data.
///
/// ```
/// use mllp_hl7::Message;
///
/// let msg = Message::parse(b"MSH|^~\\&|LAB|HOSP|LIS|HOSP|20240101||ORU^R01^ORU_R01|42|P|2.5.1\rPID|1||123^^^HOSP^MR||DOE^JOHN")?;
/// assert_eq!(msg.message_type().trigger, b"R01");
/// assert_eq!(msg.control_id().raw(), b"42");
/// assert_eq!(msg.get("PID-5.2")?.unwrap().raw(), b"JOHN");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `Debug` shows MSH-9, MSH-10 and the segments as escaped text (non-UTF-8 bytes as
/// `\xNN`):
///
/// ```
/// use mllp_hl7::Message;
///
/// let msg = Message::parse(b"MSH|^~\\&|LAB||LIS||20240101||ORU^R01|42|P|2.3\rPID|1||123")?;
/// assert_eq!(
///     format!("{msg:?}"),
///     r#"Message { message_type: "ORU^R01", control_id: "42", segments: ["MSH|^~\\&|LAB||LIS||20240101||ORU^R01|42|P|2.3", "PID|1||123"] }"#,
/// );
/// # Ok::<(), mllp_hl7::ParseError>(())
/// ```
#[derive(Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    segments: Vec<&'a [u8]>,
    msh: Option<usize>,
}

/// MSH-9: message code, trigger event and message structure.
///
/// Displayed as HL7 writes message types in prose and logs, `ORU^R01^ORU_R01`: parts joined
/// with `^` whatever the message's component separator, empty trailing parts left out, bytes
/// that are not UTF-8 shown as U+FFFD, escapes left as received.
///
/// ```
/// use mllp_hl7::Message;
/// let oru = Message::parse(b"MSH|^~\\&|LAB||LIS||20240101||ORU^R01|1|P|2.3\r")?;
/// assert_eq!(oru.message_type().to_string(), "ORU^R01");
/// let custom = Message::parse(b"MSH|$~\\&|LAB||LIS||20240101||ORU$R01$ORU_R01|1|P|2.5.1\r")?;
/// assert_eq!(custom.message_type().to_string(), "ORU^R01^ORU_R01");
/// # Ok::<(), mllp_hl7::ParseError>(())
/// ```
///
/// `Debug` shows each part as escaped text:
/// `MessageType { code: "ORU", trigger: "R01", structure: "ORU_R01" }`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MessageType<'a> {
    /// MSH-9.1, e.g. `ORU`.
    pub code: &'a [u8],
    /// MSH-9.2, e.g. `R01` (empty in HL7 2.1 style messages).
    pub trigger: &'a [u8],
    /// MSH-9.3, e.g. `ORU_R01` (from 2.3.1).
    pub structure: &'a [u8],
}

/// An HL7 version from MSH-12 (`2.3.1` is major 2, minor 3, patch 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Always 2 for HL7 v2.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Patch level (the `1` of 2.3.1), 0 if absent.
    pub patch: u8,
}

impl Version {
    /// A version from its parts.
    #[must_use]
    pub const fn new(major: u8, minor: u8, patch: u8) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Reads `2.5.1`-style text; `None` if it is not one.
    #[must_use]
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(text).ok()?.trim();
        let mut parts = text.split('.').map(|p| p.parse::<u8>().ok());
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let patch = parts.next().unwrap_or(Some(0))?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self::new(major, minor, patch))
    }

    /// Compares with `major.minor`.
    #[must_use]
    pub fn cmp_minor(&self, major: u8, minor: u8) -> Ordering {
        (self.major, self.minor).cmp(&(major, minor))
    }
}

impl MessageType<'_> {
    /// The application acknowledgement an order message's trigger event defines, as message
    /// code and trigger: `ORR^O02` for `ORM^O01`; `ORL^O22`, `O34`, `O36`, `O40` for
    /// `OML^O21`, `O33`, `O35`, `O39`. `None` for any other message, which an `ACK` answers.
    /// In enhanced mode the accept acknowledgement is an `ACK` whatever the message. Pass it
    /// to [`AckBuilder::response_type`](crate::AckBuilder::response_type).
    ///
    /// ```
    /// let oml = mllp_hl7::Message::parse(b"MSH|^~\\&|LIS||LAB||20240101||OML^O33^OML_O33|1|P|2.5.1")?;
    /// assert_eq!(oml.message_type().order_response(), Some(("ORL", "O34")));
    /// let oru = mllp_hl7::Message::parse(b"MSH|^~\\&|LAB||LIS||20240101||ORU^R01|2|P|2.5.1")?;
    /// assert_eq!(oru.message_type().order_response(), None);
    /// # Ok::<(), mllp_hl7::ParseError>(())
    /// ```
    #[must_use]
    pub fn order_response(&self) -> Option<(&'static str, &'static str)> {
        match (self.code, self.trigger) {
            (b"ORM", b"O01") => Some(("ORR", "O02")),
            (b"OML", b"O21") => Some(("ORL", "O22")),
            (b"OML", b"O33") => Some(("ORL", "O34")),
            (b"OML", b"O35") => Some(("ORL", "O36")),
            (b"OML", b"O39") => Some(("ORL", "O40")),
            _ => None,
        }
    }
}

impl fmt::Display for MessageType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [self.code, self.trigger, self.structure];
        let shown = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |last| last + 1);
        for (i, part) in parts[..shown].iter().enumerate() {
            if i > 0 {
                f.write_str("^")?;
            }
            f.write_str(&String::from_utf8_lossy(part))?;
        }
        Ok(())
    }
}

impl fmt::Debug for MessageType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageType")
            .field("code", &Escaped(self.code))
            .field("trigger", &Escaped(self.trigger))
            .field("structure", &Escaped(self.structure))
            .finish()
    }
}

impl fmt::Debug for Message<'_> {
    // MSH-9 and MSH-10 raw (empty without an MSH segment) and the segments; the
    // delimiters are in the header segment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("message_type", &Escaped(self.msh_field(9).raw()))
            .field("control_id", &Escaped(self.control_id().raw()))
            .field("segments", &EscapedList(&self.segments))
            .finish()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.patch != 0 {
            write!(f, ".{}", self.patch)?;
        }
        Ok(())
    }
}

/// When an acknowledgement is wanted (MSH-15 / MSH-16, HL7 table 0155).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCondition {
    /// `AL`: always.
    Always,
    /// `NE`: never.
    Never,
    /// `ER`: only on error or reject.
    Error,
    /// `SU`: only on success.
    Success,
}

impl AckCondition {
    /// Reads a table 0155 value; anything else (Mindray analyzers put `0` or `2` in
    /// MSH-16) is `None`.
    #[must_use]
    pub fn parse(value: &[u8]) -> Option<Self> {
        match value.trim_ascii() {
            b"AL" => Some(Self::Always),
            b"NE" => Some(Self::Never),
            b"ER" => Some(Self::Error),
            b"SU" => Some(Self::Success),
            _ => None,
        }
    }

    /// The table 0155 code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "AL",
            Self::Never => "NE",
            Self::Error => "ER",
            Self::Success => "SU",
        }
    }
}

/// Whether a header may declare `byte` as its field separator (what
/// [`Delimiters::from_header`] accepts).
fn may_be_delimiter(byte: u8) -> bool {
    super::delimiters::unusable_as_delimiter(byte).is_none()
}

fn is_segment_start(rest: &[u8], field: u8) -> bool {
    matches!(rest, [a, b, c, sep, ..]
        if a.is_ascii_uppercase()
            && (b.is_ascii_uppercase() || b.is_ascii_digit())
            && (c.is_ascii_uppercase() || c.is_ascii_digit())
            && *sep == field)
}

fn split_segments(raw: &[u8], field: u8) -> Vec<&[u8]> {
    let mut segments = Vec::with_capacity(memchr::memchr_iter(b'\r', raw).count() + 1);
    let mut start = 0;
    let mut from = 0;
    while let Some(at) = memchr::memchr2(b'\r', b'\n', &raw[from..]).map(|i| from + i) {
        let next = if raw[at] == b'\r' {
            if raw.get(at + 1) == Some(&b'\n') {
                at + 2
            } else {
                at + 1
            }
        } else {
            // Blank lines after the LF are looked past: what follows them decides. A
            // paragraph break inside a field (`text\n\nmore`) is data like a single LF;
            // empty lines between segments are no segment.
            let run = raw[at..]
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            let rest = &raw[at + run..];
            if !rest.is_empty() && !is_segment_start(rest, field) {
                // Every LF of the run before its first CR sees this same `rest`: all are
                // data. Stepping one byte at a time rescanned the run for each of them,
                // quadratic in its length (a 200 KB run of LFs took 8 s).
                let lfs = raw[at..].iter().take_while(|b| **b == b'\n').count();
                from = at + lfs;
                continue;
            }
            at + run
        };
        if at > start {
            segments.push(&raw[start..at]);
        }
        start = next;
        from = next;
    }
    if start < raw.len() {
        segments.push(&raw[start..]);
    }
    segments
}

impl<'a> Message<'a> {
    /// Parses a message (or an FHS/BHS batch; header accessors then read its first MSH).
    /// A UTF-8 byte-order mark and empty lines before the header are skipped.
    ///
    /// # Errors
    ///
    /// [`ParseError`] when the input is empty, does not start with a header segment, or
    /// declares unusable delimiters.
    pub fn parse(raw: &'a [u8]) -> Result<Self, ParseError> {
        // A UTF-8 byte-order mark, as Windows editors save files, is not part of the text.
        let text = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        let lead = text
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let body = &text[lead..];
        if body.is_empty() {
            return Err(ParseError::Empty);
        }
        if !matches!(body.get(..3), Some(b"MSH" | b"FHS" | b"BHS")) {
            return Err(ParseError::MissingHeader {
                found: String::from_utf8_lossy(&body[..body.len().min(8)]).into_owned(),
            });
        }
        let delimiters = Delimiters::from_header(body)?;
        let segments = split_segments(body, delimiters.field());
        let field = delimiters.field();
        let msh = segments
            .iter()
            .position(|s| s.starts_with(b"MSH") && s.get(3) == Some(&field));
        Ok(Self {
            raw,
            delimiters,
            segments,
            msh,
        })
    }

    /// The bytes parsed.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The delimiters declared in the header.
    #[must_use]
    pub fn delimiters(&self) -> Delimiters {
        self.delimiters
    }

    /// Number of segments.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// All segments in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + '_ {
        self.segments
            .iter()
            .map(|raw| Segment::new(raw, self.delimiters))
    }

    /// Segments with the given id, in order.
    pub fn segments_named<'s>(&'s self, id: &'s [u8]) -> impl Iterator<Item = Segment<'a>> + 's {
        self.segments().filter(move |s| s.id() == id)
    }

    /// The first segment with the given id.
    #[must_use]
    pub fn segment(&self, id: &[u8]) -> Option<Segment<'a>> {
        self.segments().find(|s| s.id() == id)
    }

    /// The (first) MSH segment.
    #[must_use]
    pub fn msh(&self) -> Option<Segment<'a>> {
        self.msh
            .map(|i| Segment::new(self.segments[i], self.delimiters))
    }

    /// MSH field `n`; empty when absent.
    #[must_use]
    pub fn msh_field(&self, n: usize) -> Value<'a> {
        match self.msh() {
            Some(msh) => msh.field_or_empty(n),
            None => Value::new(&[], self.delimiters),
        }
    }

    /// MSH-3 sending application.
    #[must_use]
    pub fn sending_application(&self) -> Value<'a> {
        self.msh_field(3)
    }

    /// MSH-4 sending facility.
    #[must_use]
    pub fn sending_facility(&self) -> Value<'a> {
        self.msh_field(4)
    }

    /// MSH-5 receiving application.
    #[must_use]
    pub fn receiving_application(&self) -> Value<'a> {
        self.msh_field(5)
    }

    /// MSH-6 receiving facility.
    #[must_use]
    pub fn receiving_facility(&self) -> Value<'a> {
        self.msh_field(6)
    }

    /// MSH-7 date/time of message.
    #[must_use]
    pub fn timestamp(&self) -> Value<'a> {
        self.msh_field(7)
    }

    /// MSH-8 security.
    #[must_use]
    pub fn security(&self) -> Value<'a> {
        self.msh_field(8)
    }

    /// MSH-9 message type, split into code, trigger and structure.
    #[must_use]
    pub fn message_type(&self) -> MessageType<'a> {
        let msh9 = self.msh_field(9);
        let part = |n| msh9.component(n).map(|v| v.raw()).unwrap_or_default();
        MessageType {
            code: part(1),
            trigger: part(2),
            structure: part(3),
        }
    }

    /// Whether the message is an acknowledgement (MSH-9.1 = `ACK`).
    #[must_use]
    pub fn is_ack(&self) -> bool {
        self.message_type().code == b"ACK"
    }

    /// MSH-10 message control ID.
    #[must_use]
    pub fn control_id(&self) -> Value<'a> {
        self.msh_field(10)
    }

    /// MSH-11 processing ID (`P`, `T`, `D`, with an optional mode component).
    #[must_use]
    pub fn processing_id(&self) -> Value<'a> {
        self.msh_field(11)
    }

    /// MSH-12 version ID, raw.
    #[must_use]
    pub fn version_id(&self) -> Value<'a> {
        self.msh_field(12)
    }

    /// MSH-12.1 as a [`Version`], `None` when empty or unreadable.
    #[must_use]
    pub fn version(&self) -> Option<Version> {
        Version::parse(self.version_id().component(1)?.raw())
    }

    /// MSH-15 accept acknowledgement type, `None` when empty or not a table 0155 value.
    #[must_use]
    pub fn accept_ack_type(&self) -> Option<AckCondition> {
        AckCondition::parse(self.msh_field(15).raw())
    }

    /// Whether a receiver that accepts this message answers with an ACK: always in
    /// original mode and by default; not when MSH-15 is NE (never) or ER (only on
    /// error). A sender waiting for an ACK to an NE/ER message would wait in vain.
    #[must_use]
    pub fn acknowledged_on_success(&self) -> bool {
        !matches!(
            self.accept_ack_type(),
            Some(AckCondition::Never | AckCondition::Error)
        )
    }

    /// MSH-16 application acknowledgement type, `None` when empty or not a table 0155
    /// value.
    #[must_use]
    pub fn application_ack_type(&self) -> Option<AckCondition> {
        AckCondition::parse(self.msh_field(16).raw())
    }

    /// MSH-18 character set, raw (the first repetition is the message's default).
    #[must_use]
    pub fn charset_id(&self) -> Value<'a> {
        self.msh_field(18)
    }

    /// The character set from MSH-18, ASCII when empty.
    ///
    /// # Errors
    ///
    /// [`TextError::Unsupported`] for a set this crate cannot decode.
    pub fn charset(&self) -> Result<Charset, TextError> {
        self.charset_or(Charset::Ascii)
    }

    /// The character set from MSH-18, or `default` when MSH-18 is empty (a per-connection
    /// setting for senders that leave it out).
    ///
    /// # Errors
    ///
    /// [`TextError::Unsupported`] for a set this crate cannot decode.
    pub fn charset_or(&self, default: Charset) -> Result<Charset, TextError> {
        let first = self.charset_id().repetition(1);
        match first {
            Some(value) if !value.is_empty() => Charset::from_msh18(value.raw()),
            _ => Ok(default),
        }
    }

    /// The value at `path` (see [`Path`]); `Ok(None)` when the message has no such value.
    ///
    /// # Errors
    ///
    /// [`PathError`] when the path is malformed.
    pub fn get(&self, path: &str) -> Result<Option<Value<'a>>, PathError> {
        Ok(self.query(&path.parse()?))
    }

    /// The value at a parsed `path`.
    #[must_use]
    pub fn query(&self, path: &Path) -> Option<Value<'a>> {
        let segment = self
            .segments_named(&path.segment)
            .nth(path.occurrence.checked_sub(1)?)?;
        let Some(field) = path.field else {
            return Some(Value::atomic(segment.raw(), self.delimiters));
        };
        let mut value = segment.field(field)?.repetition(path.repetition)?;
        if let Some(component) = path.component {
            value = value.component(component)?;
            if let Some(subcomponent) = path.subcomponent {
                value = value.subcomponent(subcomponent)?;
            }
        }
        Some(value)
    }
}

/// Splits a batch or a file of several messages into messages: each starts at an `MSH`
/// segment and ends before the next `MSH`, `BTS` or `FTS`. Works on CR, LF or CR LF
/// separated input; FHS/BHS headers and trailers are left out.
///
/// A line counts as one of those segments as [`Message::parse`] reads segments: its id
/// followed by a field separator (a header's own, which must be a possible delimiter; the
/// current header's for `BTS` / `FTS`, which may also stand alone). After a bare LF, which
/// may sit inside a field, the field separator must be the current header's, so a line of
/// text that begins with `MSH` or `FTS` stays inside its message.
///
/// ```
/// let file = b"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\rBTS|2\rFTS|1\r";
/// let messages: Vec<_> = mllp_hl7::split_messages(file).collect();
/// assert_eq!(messages, [&b"MSH|^~\\&|A\rPID|1\r"[..], &b"MSH|^~\\&|B\r"[..]]);
/// ```
pub fn split_messages(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut line_start = 0;
    let mut after_bare_lf = false;
    // The field separator of the last header line (MSH, FHS, BHS).
    let mut field: Option<u8> = None;
    for (i, &b) in raw.iter().enumerate() {
        let at_line_start = i == line_start;
        if matches!(b, b'\r' | b'\n') {
            after_bare_lf = b == b'\n' && (i == 0 || raw[i - 1] != b'\r');
            line_start = i + 1;
            continue;
        }
        if !at_line_start {
            continue;
        }
        let rest = &raw[i..];
        let header =
            rest.starts_with(b"MSH") || rest.starts_with(b"BHS") || rest.starts_with(b"FHS");
        let trailer = rest.starts_with(b"BTS") || rest.starts_with(b"FTS");
        if !header && !trailer {
            continue;
        }
        let separator = rest.get(3).copied();
        let is_current = separator.is_some() && separator == field;
        let counts = if after_bare_lf {
            // As the reader: an LF ends a segment only before `ABC` and the field separator.
            is_current || (field.is_none() && header && separator.is_some_and(may_be_delimiter))
        } else if header {
            separator.is_some_and(may_be_delimiter)
        } else {
            is_current || matches!(separator, None | Some(b'\r' | b'\n'))
        };
        if !counts {
            continue;
        }
        if header {
            field = separator;
        }
        starts.push((i, rest.starts_with(b"MSH")));
    }
    let mut out = Vec::new();
    for (k, &(start, is_msh)) in starts.iter().enumerate() {
        if is_msh {
            let end = starts.get(k + 1).map_or(raw.len(), |&(s, _)| s);
            out.push(&raw[start..end]);
        }
    }
    out.into_iter()
}
