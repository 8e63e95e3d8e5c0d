//! Zero-copy records: fields, repeats and components as views over the input bytes.

use std::borrow::Cow;
use std::fmt;

use crate::delimiters::Delimiters;
use crate::error::TimestampError;
use crate::error::{MessageError, RecordError};
use crate::escape::{UnknownEscape, unescape, unescape_with};
use crate::text::Charset;
use crate::timestamp::{Timestamp, parse_timestamp};

/// The record types of E1394 §6 (LIS2-A2), read case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordType {
    /// `H` message header.
    Header,
    /// `P` patient information.
    Patient,
    /// `O` test order.
    Order,
    /// `R` result.
    Result,
    /// `C` comment.
    Comment,
    /// `Q` request information (host query).
    Query,
    /// `M` manufacturer information.
    Manufacturer,
    /// `S` scientific.
    Scientific,
    /// `L` message terminator.
    Terminator,
    /// Anything else (the type field is kept in the record).
    Other,
}

impl RecordType {
    /// Classifies a type field (field 1); one letter, either case.
    pub fn from_field(field: &[u8]) -> Self {
        match field {
            [letter] => match letter.to_ascii_uppercase() {
                b'H' => Self::Header,
                b'P' => Self::Patient,
                b'O' => Self::Order,
                b'R' => Self::Result,
                b'C' => Self::Comment,
                b'Q' => Self::Query,
                b'M' => Self::Manufacturer,
                b'S' => Self::Scientific,
                b'L' => Self::Terminator,
                _ => Self::Other,
            },
            _ => Self::Other,
        }
    }

    /// The upper-case letter, or `None` for [`RecordType::Other`].
    pub const fn letter(self) -> Option<u8> {
        Some(match self {
            Self::Header => b'H',
            Self::Patient => b'P',
            Self::Order => b'O',
            Self::Result => b'R',
            Self::Comment => b'C',
            Self::Query => b'Q',
            Self::Manufacturer => b'M',
            Self::Scientific => b'S',
            Self::Terminator => b'L',
            Self::Other => return None,
        })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.letter() {
            Some(letter) => write!(f, "{}", char::from(letter)),
            None => f.write_str("other"),
        }
    }
}

/// One record, borrowed from the input: the bytes as written plus the delimiters in force.
///
/// Fields and components are numbered from 1, like the standard (`R.3.4` is field 3, component 4);
/// repeats are indexed from 0. Nothing is decoded until asked for, and asking for a field that is not
/// there gives an empty field rather than an error.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    raw: &'a [u8],
    terminator: &'a [u8],
    delimiters: Delimiters,
    kind: RecordType,
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("kind", &self.kind)
            .field("raw", &Charset::Latin1.decode(self.raw))
            .finish()
    }
}

impl<'a> Record<'a> {
    /// Parses one record (no terminator). A header (`H` or `h` followed by a non-alphanumeric byte)
    /// brings its own delimiters; any other record uses `delimiters`.
    ///
    /// ```
    /// use astm_records::{Delimiters, Record, RecordType};
    /// let r = Record::parse(b"R|1|^^^WBC|5.8", &Delimiters::STANDARD)?;
    /// assert_eq!(r.kind(), RecordType::Result);
    /// assert_eq!(r.field(3).component(4).raw(), b"WBC");
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    pub fn parse(raw: &'a [u8], delimiters: &Delimiters) -> Result<Self, RecordError> {
        if raw.is_empty() {
            return Err(RecordError::Empty);
        }
        if let Some(offset) = memchr::memchr2(b'\r', b'\n', raw) {
            return Err(RecordError::EmbeddedTerminator { offset });
        }
        Self::parse_line(raw, b"", delimiters)
    }

    /// Parses a line known to hold no CR or LF.
    pub(crate) fn parse_line(
        raw: &'a [u8],
        terminator: &'a [u8],
        delimiters: &Delimiters,
    ) -> Result<Self, RecordError> {
        if is_header(raw) {
            let delimiters = Delimiters::from_header(raw)?;
            return Ok(Self {
                raw,
                terminator,
                delimiters,
                kind: RecordType::Header,
            });
        }
        let type_field = match find(delimiters.field(), raw) {
            Some(end) => &raw[..end],
            None => raw,
        };
        Ok(Self {
            raw,
            terminator,
            delimiters: *delimiters,
            kind: RecordType::from_field(type_field),
        })
    }

    /// The record type.
    pub const fn kind(&self) -> RecordType {
        self.kind
    }

    /// The record bytes as written, without the terminator.
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The terminator that followed the record in the input (`\r`, `\n`, `\r\n`, several of them when
    /// blank lines followed, or empty at the end of input).
    pub const fn terminator(&self) -> &'a [u8] {
        self.terminator
    }

    /// The delimiters this record was split with.
    pub const fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// Iterates over the fields, starting with field 1 (the record type).
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            rest: Some(self.raw),
            delimiters: self.delimiters,
            number: 0,
            header: self.kind == RecordType::Header,
        }
    }

    /// Field `number` (1-based), or `None` if the record has fewer fields.
    pub fn get(&self, number: usize) -> Option<Field<'a>> {
        self.fields().nth(number.checked_sub(1)?)
    }

    /// Field `number` (1-based); an empty field if the record has fewer fields.
    pub fn field(&self, number: usize) -> Field<'a> {
        self.get(number).unwrap_or(Field {
            raw: &[],
            delimiters: self.delimiters,
            literal: false,
        })
    }

    /// How many fields the record has as written (trailing empty fields included).
    pub fn field_count(&self) -> usize {
        memchr::memchr_iter(self.delimiters.field(), self.raw).count() + 1
    }

    /// The sequence number (field 2), if it is a decimal number.
    pub fn sequence(&self) -> Option<u32> {
        parse_u32(self.field(2).raw())
    }
}

/// True when a line is a header record: `H` or `h`, then a non-alphanumeric byte (or nothing).
pub(crate) fn is_header(raw: &[u8]) -> bool {
    match raw {
        [b'H' | b'h'] => true,
        [b'H' | b'h', second, ..] => !second.is_ascii_alphanumeric(),
        _ => false,
    }
}

/// Finds `needle`: a plain scan of the first bytes (most fields are a few bytes long, where a `memchr`
/// call costs more than it saves), then `memchr` for the rest (base64 histograms run to kilobytes).
#[inline]
fn find(needle: u8, haystack: &[u8]) -> Option<usize> {
    const HEAD: usize = 16;
    let head = haystack.len().min(HEAD);
    if let Some(at) = haystack[..head].iter().position(|&b| b == needle) {
        return Some(at);
    }
    let tail = haystack.get(HEAD..)?;
    memchr::memchr(needle, tail).map(|at| at + HEAD)
}

pub(crate) fn parse_u32(raw: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Iterator over a record's fields.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: Option<&'a [u8]>,
    delimiters: Delimiters,
    number: usize,
    header: bool,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let rest = self.rest?;
        let (raw, next) = match find(self.delimiters.field(), rest) {
            Some(end) => (&rest[..end], Some(&rest[end + 1..])),
            None => (rest, None),
        };
        self.rest = next;
        self.number += 1;
        Some(Field {
            raw,
            delimiters: self.delimiters,
            // H.2 declares the delimiters; it is not split by them.
            literal: self.header && self.number == 2,
        })
    }
}

/// One field of a record: zero or more repeats of one or more components.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    literal: bool,
}

impl fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Field")
            .field(&Charset::Latin1.decode(self.raw))
            .finish()
    }
}

impl<'a> Field<'a> {
    /// The field bytes as written (escapes not decoded).
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// True when the field is empty.
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// True for H.2, the delimiter definition, which is not split into repeats or components.
    pub const fn is_literal(&self) -> bool {
        self.literal
    }

    /// The delimiters this field was split with.
    pub(crate) const fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// Iterates over the repeats (one, possibly empty, for a field without repeat delimiters).
    pub fn repeats(&self) -> Repeats<'a> {
        Repeats {
            rest: Some(self.raw),
            delimiters: self.delimiters,
            literal: self.literal,
        }
    }

    /// Repeat `index` (0-based), or `None` if there are fewer repeats.
    pub fn repeat(&self, index: usize) -> Option<Repeat<'a>> {
        self.repeats().nth(index)
    }

    /// The first repeat (the whole field when it has no repeat delimiter).
    pub fn first(&self) -> Repeat<'a> {
        self.repeats().next().unwrap_or(Repeat {
            raw: self.raw,
            delimiters: self.delimiters,
            literal: self.literal,
        })
    }

    /// Component `number` (1-based) of the first repeat; empty if absent.
    pub fn component(&self, number: usize) -> Component<'a> {
        self.first().component(number)
    }

    /// The components of the first repeat.
    pub fn components(&self) -> Components<'a> {
        self.first().components()
    }

    /// The whole field with escapes decoded (delimiters inside stay as they are).
    pub fn unescaped(&self) -> Cow<'a, [u8]> {
        if self.literal {
            return Cow::Borrowed(self.raw);
        }
        unescape(self.raw, &self.delimiters)
    }

    /// The whole field decoded as Latin-1 text, escapes decoded.
    pub fn text(&self) -> Cow<'a, str> {
        self.text_as(Charset::Latin1)
    }

    /// The whole field decoded with the given character set, escapes decoded.
    ///
    /// ```
    /// use astm_records::{Charset, Record};
    /// let record = Record::parse(b"P|1||ID-7||M\xc3\xbcller^Ann", &Default::default())?;
    /// assert_eq!(record.field(6).text_as(Charset::Auto), "Müller^Ann");
    /// assert_eq!(record.field(6).text(), "MÃ¼ller^Ann");
    /// # Ok::<(), astm_records::RecordError>(())
    /// ```
    pub fn text_as(&self, charset: Charset) -> Cow<'a, str> {
        cow_text(self.unescaped(), charset)
    }

    /// The first component of the first repeat parsed as a timestamp; `Ok(None)` when empty or blank.
    ///
    /// Timestamps are never parsed unless asked for, so a bad one never fails the record.
    pub fn timestamp(&self) -> Result<Option<Timestamp>, TimestampError> {
        self.component(1).timestamp()
    }
}

/// Iterator over a field's repeats.
#[derive(Debug, Clone)]
pub struct Repeats<'a> {
    rest: Option<&'a [u8]>,
    delimiters: Delimiters,
    literal: bool,
}

impl<'a> Iterator for Repeats<'a> {
    type Item = Repeat<'a>;

    fn next(&mut self) -> Option<Repeat<'a>> {
        let rest = self.rest?;
        let split = if self.literal {
            None
        } else {
            find(self.delimiters.repeat(), rest)
        };
        let (raw, next) = match split {
            Some(end) => (&rest[..end], Some(&rest[end + 1..])),
            None => (rest, None),
        };
        self.rest = next;
        Some(Repeat {
            raw,
            delimiters: self.delimiters,
            literal: self.literal,
        })
    }
}

/// One repeat of a field: one or more components.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Repeat<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    literal: bool,
}

impl fmt::Debug for Repeat<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Repeat")
            .field(&Charset::Latin1.decode(self.raw))
            .finish()
    }
}

impl<'a> Repeat<'a> {
    /// The repeat bytes as written.
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// True when the repeat is empty.
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Iterates over the components.
    pub fn components(&self) -> Components<'a> {
        Components {
            rest: Some(self.raw),
            delimiters: self.delimiters,
            literal: self.literal,
        }
    }

    /// Component `number` (1-based); empty if absent.
    pub fn component(&self, number: usize) -> Component<'a> {
        number
            .checked_sub(1)
            .and_then(|index| self.components().nth(index))
            .unwrap_or(Component {
                raw: &[],
                delimiters: self.delimiters,
                literal: self.literal,
            })
    }
}

/// Iterator over a repeat's components.
#[derive(Debug, Clone)]
pub struct Components<'a> {
    rest: Option<&'a [u8]>,
    delimiters: Delimiters,
    literal: bool,
}

impl<'a> Iterator for Components<'a> {
    type Item = Component<'a>;

    fn next(&mut self) -> Option<Component<'a>> {
        let rest = self.rest?;
        let split = if self.literal {
            None
        } else {
            find(self.delimiters.component(), rest)
        };
        let (raw, next) = match split {
            Some(end) => (&rest[..end], Some(&rest[end + 1..])),
            None => (rest, None),
        };
        self.rest = next;
        Some(Component {
            raw,
            delimiters: self.delimiters,
            literal: self.literal,
        })
    }
}

/// One component: the smallest unit, a value that may hold escape sequences.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Component<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    literal: bool,
}

impl fmt::Debug for Component<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Component")
            .field(&Charset::Latin1.decode(self.raw))
            .finish()
    }
}

impl<'a> Component<'a> {
    /// The component bytes as written.
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// True when the component is empty.
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The value with escapes decoded; borrows when there are none.
    pub fn unescaped(&self) -> Cow<'a, [u8]> {
        self.unescaped_with(UnknownEscape::Keep)
    }

    /// The value with escapes decoded, choosing what happens to unknown sequences.
    pub fn unescaped_with(&self, unknown: UnknownEscape) -> Cow<'a, [u8]> {
        if self.literal {
            return Cow::Borrowed(self.raw);
        }
        unescape_with(self.raw, &self.delimiters, unknown)
    }

    /// The value decoded as Latin-1 text.
    pub fn text(&self) -> Cow<'a, str> {
        self.text_as(Charset::Latin1)
    }

    /// The value decoded with the given character set.
    pub fn text_as(&self, charset: Charset) -> Cow<'a, str> {
        cow_text(self.unescaped(), charset)
    }

    /// Parses the value as `YYYYMMDD[HHMM[SS]]`; `Ok(None)` when empty or only whitespace (Sysmex
    /// pads fixed-width fields with spaces, and the parser ignores surrounding spaces anyway).
    pub fn timestamp(&self) -> Result<Option<Timestamp>, TimestampError> {
        if self.raw.trim_ascii().is_empty() {
            return Ok(None);
        }
        parse_timestamp(self.raw).map(Some)
    }
}

fn cow_text(bytes: Cow<'_, [u8]>, charset: Charset) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(bytes) => charset.decode(bytes),
        Cow::Owned(bytes) => Cow::Owned(charset.decode(&bytes).into_owned()),
    }
}

/// Splits message text into records.
///
/// Records end with CR (the standard), LF or CR LF; blank lines are skipped. Each header record switches
/// to the delimiters it declares; records before the first header use [`Delimiters::STANDARD`].
///
/// ```
/// use astm_records::{RecordType, parse_records};
/// let kinds: Vec<_> = parse_records(b"H|\\!~\rR|1|!!!WBC|5.8\rL|1|N\r")
///     .map(|r| r.map(|r| r.kind()))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(kinds, [RecordType::Header, RecordType::Result, RecordType::Terminator]);
/// # Ok::<(), astm_records::MessageError>(())
/// ```
pub fn parse_records(text: &[u8]) -> Records<'_> {
    Records::new(text)
}

/// Iterator over the records of a message text; see [`parse_records`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    delimiters: Delimiters,
    index: usize,
}

impl<'a> Records<'a> {
    /// Starts at the beginning of `text`.
    pub fn new(text: &'a [u8]) -> Self {
        Self::with_delimiters(text, Delimiters::STANDARD)
    }

    /// Starts with `delimiters` in force until the first header.
    pub fn with_delimiters(text: &'a [u8], delimiters: Delimiters) -> Self {
        let start = text
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(text.len());
        Self {
            rest: &text[start..],
            delimiters,
            index: 0,
        }
    }

    /// The delimiters in force for the next record.
    pub const fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, MessageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let end = memchr::memchr2(b'\r', b'\n', self.rest).unwrap_or(self.rest.len());
        let after = self.rest[end..]
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .map_or(self.rest.len(), |n| end + n);
        let (line, terminator) = (&self.rest[..end], &self.rest[end..after]);
        self.rest = &self.rest[after..];
        self.index += 1;
        Some(
            match Record::parse_line(line, terminator, &self.delimiters) {
                Ok(record) => {
                    self.delimiters = *record.delimiters();
                    Ok(record)
                }
                Err(error) => Err(MessageError::Record {
                    record: self.index,
                    error,
                }),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(field: Field<'_>) -> Vec<Vec<String>> {
        field
            .repeats()
            .map(|r| r.components().map(|c| c.text().into_owned()).collect())
            .collect()
    }

    #[test]
    fn splits_fields_repeats_components() {
        let r = Record::parse(
            b"O|1|12120001||^^^NA^Sodium\\^^^Cl^Clorum|R",
            &Delimiters::STANDARD,
        )
        .unwrap();
        assert_eq!(r.kind(), RecordType::Order);
        assert_eq!(r.field_count(), 6);
        assert_eq!(r.sequence(), Some(1));
        assert_eq!(
            comps(r.field(5)),
            [["", "", "", "NA", "Sodium"], ["", "", "", "Cl", "Clorum"]]
        );
        assert_eq!(r.field(5).repeat(1).unwrap().component(5).raw(), b"Clorum");
        assert!(r.field(5).repeat(2).is_none());
        assert!(r.get(7).is_none());
        assert!(r.field(99).is_empty());
        assert!(r.field(0).is_empty());
        assert_eq!(r.field(3).component(0).raw(), b"");
    }

    #[test]
    fn header_field_two_is_literal() {
        let h = Record::parse(b"H|\\^&|||Host^1.0", &Delimiters::STANDARD).unwrap();
        assert_eq!(h.kind(), RecordType::Header);
        let def = h.field(2);
        assert!(def.is_literal());
        assert_eq!(comps(def), [["\\^&"]]);
        assert_eq!(h.field(5).component(2).raw(), b"1.0");
    }

    #[test]
    fn lower_case_and_terminators() {
        let text = b"\r\nh|\\^&\r\np|1\n\no|1|S1\rl|1|N";
        let records: Vec<_> = parse_records(text).collect::<Result<_, _>>().unwrap();
        let kinds: Vec<_> = records.iter().map(Record::kind).collect();
        assert_eq!(
            kinds,
            [
                RecordType::Header,
                RecordType::Patient,
                RecordType::Order,
                RecordType::Terminator
            ]
        );
        let terminators: Vec<_> = records.iter().map(Record::terminator).collect();
        assert_eq!(terminators, [&b"\r\n"[..], b"\n\n", b"\r", b""]);
    }

    #[test]
    fn header_switches_delimiters_per_message() {
        let text = b"H|`^&\rO|1||^^^A`^^^B\rL|1\rH!@#$\rO!1!!###A@###B\r";
        let records: Vec<_> = parse_records(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(records[1].field(4).repeats().count(), 2);
        assert_eq!(
            records[4].field(4).repeat(1).unwrap().component(4).raw(),
            b"B"
        );
    }

    #[test]
    fn errors_carry_position() {
        let err = parse_records(b"H|\\^&\rP|1\rH||\r")
            .nth(2)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "record 3: invalid delimiter definition in header: header declares 0 delimiter(s) after the field delimiter; at least repeat and component are needed"
        );
        assert_eq!(
            Record::parse(b"", &Delimiters::STANDARD),
            Err(RecordError::Empty)
        );
        assert_eq!(
            Record::parse(b"P|1\rX", &Delimiters::STANDARD),
            Err(RecordError::EmbeddedTerminator { offset: 3 })
        );
    }

    #[test]
    fn blank_timestamp_is_absent() {
        let r = Record::parse(
            b"R|1|^^^A|1|||||||||          | 20240102 |x",
            &Delimiters::STANDARD,
        )
        .unwrap();
        assert_eq!(r.field(13).raw(), b"          ");
        assert_eq!(r.field(13).timestamp(), Ok(None));
        assert_eq!(r.field(13).component(1).timestamp(), Ok(None));
        assert_eq!(r.field(99).timestamp(), Ok(None));
        assert_eq!(
            r.field(14).timestamp().unwrap().map(|t| t.to_string()),
            Some("20240102".to_owned())
        );
        assert!(r.field(15).timestamp().is_err());
    }

    #[test]
    fn other_types() {
        for (raw, kind) in [
            (&b"Hello|x"[..], RecordType::Other),
            (b"X|1", RecordType::Other),
            (b"RR|1", RecordType::Other),
            (b"q|1", RecordType::Query),
            (b"m|1", RecordType::Manufacturer),
            (b"s|1", RecordType::Scientific),
            (b"c|1", RecordType::Comment),
        ] {
            assert_eq!(
                Record::parse(raw, &Delimiters::STANDARD).unwrap().kind(),
                kind
            );
        }
    }
}
