//! Segments and the values inside them (fields, repetitions, components, subcomponents).

use std::borrow::Cow;
use std::fmt;

use super::{Charset, Delimiters, unescape};
use crate::error::TextError;
use crate::fmt_bytes::Escaped;

/// The `index`-th (0-based) part of `raw` split at `separator`.
fn nth_part(raw: &[u8], separator: u8, index: usize) -> Option<&[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(separator, raw);
    for _ in 0..index {
        start = ends.next()? + 1;
    }
    let end = ends.next().unwrap_or(raw.len());
    Some(&raw[start..end])
}

fn count_parts(raw: &[u8], separator: u8) -> usize {
    memchr::memchr_iter(separator, raw).count() + 1
}

/// One segment, e.g. `PID|1||12345^^^HOSP^MR|...`, borrowed from the message.
///
/// Field numbers follow HL7: for `MSH` (and `FHS` / `BHS`) field 1 is the field
/// separator itself and field 2 the encoding characters; for other segments field 1 is
/// the first field after the segment id.
///
/// `Debug` shows the bytes as escaped text: `Segment("PID|1||12345^^^HOSP^MR")`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
}

impl<'a> Segment<'a> {
    pub(crate) fn new(raw: &'a [u8], delimiters: Delimiters) -> Self {
        Self { raw, delimiters }
    }

    /// The segment's bytes, without terminator.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The segment id (`MSH`, `PID`, `OBX`, ...).
    #[must_use]
    pub fn id(&self) -> &'a [u8] {
        nth_part(self.raw, self.delimiters.field(), 0).unwrap_or_default()
    }

    /// Whether the segment declares delimiters in its first fields (MSH, FHS, BHS).
    #[must_use]
    pub fn is_header(&self) -> bool {
        matches!(self.id(), b"MSH" | b"FHS" | b"BHS")
    }

    /// Field `n` (1-based), `None` if the segment has fewer fields.
    #[must_use]
    pub fn field(&self, n: usize) -> Option<Value<'a>> {
        if n == 0 {
            return None;
        }
        let separator = self.delimiters.field();
        if self.is_header() {
            match n {
                1 => {
                    return self
                        .raw
                        .get(3..4)
                        .map(|raw| Value::atomic(raw, self.delimiters));
                }
                2 => {
                    return nth_part(self.raw, separator, 1)
                        .map(|raw| Value::atomic(raw, self.delimiters));
                }
                _ => {
                    return nth_part(self.raw, separator, n - 1)
                        .map(|raw| Value::new(raw, self.delimiters));
                }
            }
        }
        nth_part(self.raw, separator, n).map(|raw| Value::new(raw, self.delimiters))
    }

    /// Field `n`, or an empty value when absent (HL7 does not tell the two apart).
    #[must_use]
    pub fn field_or_empty(&self, n: usize) -> Value<'a> {
        self.field(n)
            .unwrap_or_else(|| Value::new(&[], self.delimiters))
    }

    /// The number of the last field present.
    #[must_use]
    pub fn field_count(&self) -> usize {
        let parts = count_parts(self.raw, self.delimiters.field()) - 1;
        if self.is_header() { parts + 1 } else { parts }
    }

    /// Fields 1 to [`field_count`](Self::field_count) in order, as [`field`](Self::field)
    /// gives them.
    pub fn fields(&self) -> impl Iterator<Item = Value<'a>> + '_ {
        // One pass: looking each field up by number rescanned the segment from its start,
        // quadratic in the number of fields.
        let delimiters = self.delimiters;
        let header = self.is_header();
        let separator = self
            .raw
            .get(3..4)
            .filter(|_| header)
            .map(|raw| Value::atomic(raw, delimiters));
        let rest = self
            .raw
            .split(move |b| *b == delimiters.field())
            .skip(1)
            .enumerate()
            .map(move |(i, raw)| {
                if header && i == 0 {
                    Value::atomic(raw, delimiters)
                } else {
                    Value::new(raw, delimiters)
                }
            });
        separator.into_iter().chain(rest)
    }
}

impl fmt::Debug for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Segment").field(&Escaped(self.raw)).finish()
    }
}

/// A field, repetition, component or subcomponent: raw (still escaped) bytes borrowed
/// from the message, plus the delimiters to split it further.
///
/// Numbers are 1-based. [`component`](Self::component) reads the first repetition,
/// [`subcomponent`](Self::subcomponent) the first component of the first repetition;
/// pick another repetition first with [`repetition`](Self::repetition).
///
/// `Debug` shows the raw bytes as escaped text: `Value("12345^^^HOSP^MR")`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    /// MSH-1 and MSH-2 hold delimiters themselves and are never split.
    atomic: bool,
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Value").field(&Escaped(self.raw)).finish()
    }
}

impl<'a> Value<'a> {
    pub(crate) fn new(raw: &'a [u8], delimiters: Delimiters) -> Self {
        Self {
            raw,
            delimiters,
            atomic: false,
        }
    }

    pub(crate) fn atomic(raw: &'a [u8], delimiters: Delimiters) -> Self {
        Self {
            raw,
            delimiters,
            atomic: true,
        }
    }

    /// The raw bytes, escape sequences included.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The raw bytes as text if they are UTF-8 (escape sequences included).
    #[must_use]
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.raw).ok()
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Whether the value is the explicit HL7 null `""` (delete the stored value).
    #[must_use]
    pub fn is_null(&self) -> bool {
        self.raw == b"\"\""
    }

    fn split(&self, separator: Option<u8>, n: usize) -> Option<Self> {
        if n == 0 {
            return None;
        }
        match separator {
            Some(separator) if !self.atomic => {
                nth_part(self.raw, separator, n - 1).map(|raw| Self::new(raw, self.delimiters))
            }
            _ => (n == 1).then_some(*self),
        }
    }

    fn first_repetition(&self) -> Self {
        self.split(self.delimiters.repetition(), 1).unwrap_or(*self)
    }

    /// Repetition `n`.
    #[must_use]
    pub fn repetition(&self, n: usize) -> Option<Self> {
        self.split(self.delimiters.repetition(), n)
    }

    /// The parts `split` gives for 1, 2, ... in one pass (looking each up by number
    /// rescanned the value from its start, quadratic in the number of parts).
    fn parts(self, separator: Option<u8>) -> impl Iterator<Item = Self> + 'a {
        let delimiters = self.delimiters;
        let separator = separator.filter(|_| !self.atomic);
        let whole = separator.is_none().then_some(self);
        let split = separator.map(|separator| {
            self.raw
                .split(move |b| *b == separator)
                .map(move |raw| Self::new(raw, delimiters))
        });
        whole.into_iter().chain(split.into_iter().flatten())
    }

    /// All repetitions (one for a value without repetition separators).
    pub fn repetitions(&self) -> impl Iterator<Item = Self> + '_ {
        self.parts(self.delimiters.repetition())
    }

    /// Component `n` of the first repetition.
    #[must_use]
    pub fn component(&self, n: usize) -> Option<Self> {
        self.first_repetition()
            .split(Some(self.delimiters.component()), n)
    }

    /// All components of the first repetition.
    pub fn components(&self) -> impl Iterator<Item = Self> + '_ {
        self.first_repetition()
            .parts(Some(self.delimiters.component()))
    }

    /// Subcomponent `n` of the first component of the first repetition.
    #[must_use]
    pub fn subcomponent(&self, n: usize) -> Option<Self> {
        let component = self.component(1).unwrap_or(*self);
        component.split(self.delimiters.subcomponent(), n)
    }

    /// The value with escape sequences replaced (see [`unescape`](crate::unescape));
    /// borrows when there are none.
    ///
    /// Decode a single value: a field of one component, or a component or subcomponent.
    /// On a field with components (or repetitions) the delimiters between them stay, and an
    /// escaped delimiter decodes to the same character, so the two can no longer be told
    /// apart:
    ///
    /// ```
    /// use mllp_hl7::Message;
    /// let message = Message::parse(b"MSH|^~\\&|A\rOBX|1|CE|AB\\S\\O^Name")?;
    /// let field = message.get("OBX-3")?.unwrap();
    /// assert_eq!(&*field.decoded(), b"AB^O^Name"); // three components?
    /// assert_eq!(&*field.component(1).unwrap().decoded(), b"AB^O"); // no: the code is AB^O
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn decoded(&self) -> Cow<'a, [u8]> {
        if self.atomic {
            return Cow::Borrowed(self.raw);
        }
        unescape(self.raw, &self.delimiters)
    }

    /// The unescaped value as text in `charset` (usually
    /// [`Message::charset`](crate::Message::charset), from MSH-18). As with
    /// [`decoded`](Self::decoded), read a single value: a field of one component, or a
    /// component.
    ///
    /// # Errors
    ///
    /// [`TextError`] when the bytes are not valid in `charset`.
    pub fn text(&self, charset: Charset) -> Result<Cow<'a, str>, TextError> {
        match self.decoded() {
            Cow::Borrowed(bytes) => charset.decode(bytes),
            Cow::Owned(bytes) => charset.decode(&bytes).map(|s| Cow::Owned(s.into_owned())),
        }
    }
}
