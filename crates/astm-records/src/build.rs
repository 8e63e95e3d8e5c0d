//! Owned records for output: built field by field, escaped when written.

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use crate::delimiters::{Delimiters, restricted_name};
use crate::error::BuildError;
use crate::escape::{escape_into, unescape};
use crate::record::{Field, Record, RecordType};
use crate::timestamp::Timestamp;
use crate::values::{AbnormalFlag, ResultStatus};

/// One field to write.
///
/// Values are held unescaped and escaped on output; [`FieldBuf::raw`] holds bytes already in wire form
/// (how a parsed record keeps its fields, so it serialises back to the same bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldBuf {
    repr: Repr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    /// Repeats of components of unescaped values.
    Values(Vec<Vec<Vec<u8>>>),
    /// Bytes in wire form, written as they are.
    Raw(Vec<u8>),
    /// A field of a parsed record, in wire form for the delimiters it was parsed with.
    Parsed {
        raw: Vec<u8>,
        source: Delimiters,
        /// H.2 of a parsed header: the delimiter definition, not a value.
        definition: bool,
    },
    /// H.2: written from the delimiters in use.
    Definition,
    /// A timestamp whose year does not fit `YYYY`; writing it fails rather than producing text the
    /// parser refuses.
    Unwritable(Timestamp),
}

impl Default for Repr {
    fn default() -> Self {
        Self::Values(Vec::new())
    }
}

impl FieldBuf {
    /// An empty field.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A single value (one repeat, one component).
    pub fn text(value: impl Into<Vec<u8>>) -> Self {
        Self::components([value])
    }

    /// One repeat made of components. Trailing empty components are not written.
    pub fn components<V: Into<Vec<u8>>>(components: impl IntoIterator<Item = V>) -> Self {
        Self::repeats([components])
    }

    /// Several repeats, each made of components.
    pub fn repeats<V, R>(repeats: impl IntoIterator<Item = R>) -> Self
    where
        V: Into<Vec<u8>>,
        R: IntoIterator<Item = V>,
    {
        let values = repeats
            .into_iter()
            .map(|r| r.into_iter().map(Into::into).collect())
            .collect();
        Self {
            repr: Repr::Values(values),
        }
    }

    /// Bytes already in wire form (escaped, with delimiters), written unchanged.
    ///
    /// Writing fails when they hold the field delimiter, CR or LF ([`BuildError::RawValue`]) or a
    /// LIS1-A restricted character such as STX ([`BuildError::RestrictedByte`]).
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            repr: Repr::Raw(bytes.into()),
        }
    }

    /// A universal test ID holding `code` as the manufacturer's local code: `^^^code`.
    pub fn test_code(code: impl Into<Vec<u8>>) -> Self {
        Self::test_codes([code])
    }

    /// Several test IDs as repeats: `^^^a\^^^b`.
    pub fn test_codes<V: Into<Vec<u8>>>(codes: impl IntoIterator<Item = V>) -> Self {
        Self::repeats(
            codes
                .into_iter()
                .map(|c| [Vec::new(), Vec::new(), Vec::new(), c.into()]),
        )
    }

    /// A timestamp as `YYYYMMDD` or `YYYYMMDDHHMMSS`.
    ///
    /// A year outside 0–9999 has no `YYYY` form: writing the record then fails with
    /// [`BuildError::TimestampYear`].
    pub fn timestamp(timestamp: impl Into<Timestamp>) -> Self {
        let timestamp = timestamp.into();
        if (0..=9999).contains(&timestamp.date().year()) {
            Self::text(timestamp.to_string())
        } else {
            Self {
                repr: Repr::Unwritable(timestamp),
            }
        }
    }

    /// A field of a parsed record in wire form; `definition` when it is the H.2 of a header.
    fn parsed(field: Field<'_>, definition: bool) -> Self {
        Self {
            repr: Repr::Parsed {
                raw: field.raw().to_vec(),
                source: *field.delimiters(),
                definition,
            },
        }
    }

    /// The values (repeats of components), unless this is a raw field, a field of a parsed record or
    /// H.2.
    pub fn values(&self) -> Option<&[Vec<Vec<u8>>]> {
        match &self.repr {
            Repr::Values(values) => Some(values),
            _ => None,
        }
    }

    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Values(values) => {
                values.iter().all(|r| r.iter().all(Vec::is_empty)) && values.len() <= 1
            }
            Repr::Raw(raw) | Repr::Parsed { raw, .. } => raw.is_empty(),
            Repr::Definition | Repr::Unwritable(_) => false,
        }
    }

    /// True for H.2, the delimiter definition (of a built or of a parsed header).
    fn is_definition(&self) -> bool {
        matches!(
            self.repr,
            Repr::Definition
                | Repr::Parsed {
                    definition: true,
                    ..
                }
        )
    }

    fn write(
        &self,
        number: usize,
        delimiters: &Delimiters,
        out: &mut Vec<u8>,
    ) -> Result<(), BuildError> {
        match &self.repr {
            Repr::Definition => out.extend_from_slice(&delimiters.definition()),
            Repr::Unwritable(timestamp) => {
                return Err(BuildError::TimestampYear {
                    field: number,
                    year: timestamp.date().year(),
                });
            }
            Repr::Parsed {
                raw,
                source,
                definition,
            } if source != delimiters => {
                if *definition {
                    out.extend_from_slice(&delimiters.definition());
                } else {
                    reencode(raw, source, number, delimiters, out)?;
                }
            }
            Repr::Raw(raw) | Repr::Parsed { raw, .. } => {
                // H.2 legitimately holds the other delimiters; elsewhere only the field delimiter is fatal.
                if let Some(&byte) = raw
                    .iter()
                    .find(|&&b| b == delimiters.field() || b == b'\r' || b == b'\n')
                {
                    return Err(BuildError::RawValue {
                        field: number,
                        byte,
                    });
                }
                // Bytes given as wire form cannot be LIS1-A restricted characters, which the link
                // layer refuses to send. A parsed record is written back as it came.
                if let Repr::Raw(raw) = &self.repr
                    && let Some((byte, name)) = raw
                        .iter()
                        .find_map(|&b| restricted_name(b).map(|name| (b, name)))
                {
                    return Err(BuildError::RestrictedByte {
                        field: number,
                        byte,
                        name,
                    });
                }
                out.extend_from_slice(raw);
            }
            Repr::Values(repeats) => {
                for (i, components) in repeats.iter().enumerate() {
                    if i > 0 {
                        out.push(delimiters.repeat());
                    }
                    let used = components
                        .iter()
                        .rposition(|c| !c.is_empty())
                        .map_or(0, |n| n + 1);
                    for (j, value) in components[..used].iter().enumerate() {
                        if j > 0 {
                            out.push(delimiters.component());
                        }
                        escape_into(value, delimiters, out).map_err(|byte| {
                            BuildError::CannotEscape {
                                field: number,
                                byte,
                            }
                        })?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writes a field parsed with `source` for `target`: every repeat and component is kept (empty ones
/// too, so component numbers do not shift), each value unescaped and escaped again.
fn reencode(
    raw: &[u8],
    source: &Delimiters,
    number: usize,
    target: &Delimiters,
    out: &mut Vec<u8>,
) -> Result<(), BuildError> {
    for (i, repeat) in raw.split(|&b| b == source.repeat()).enumerate() {
        if i > 0 {
            out.push(target.repeat());
        }
        for (j, component) in repeat.split(|&b| b == source.component()).enumerate() {
            if j > 0 {
                out.push(target.component());
            }
            escape_into(&unescape(component, source), target, out).map_err(|byte| {
                BuildError::CannotEscape {
                    field: number,
                    byte,
                }
            })?;
        }
    }
    Ok(())
}

/// A field of a parsed record, kept in wire form with the delimiters it was parsed with: written
/// with the same delimiters it is copied byte for byte, written with others it is re-encoded (as
/// [`RecordBuf::from_record`] does for every field). This is how a reply echoes a field unchanged,
/// as Roche cobas requires of the instrument specimen ID (O.4) in host-query replies.
///
/// ```
/// use astm_records::{Delimiters, FieldBuf, OrderBuilder, Record};
/// // A Beckman DxH style query (`|\!~`): the specimen ID is Q.3 component 2.
/// let dxh = Delimiters::new(b'|', b'\\', b'!', Some(b'~'))?;
/// let query = Record::parse(b"Q|1|!000004287888||!!!ALL", &dxh)?;
/// let order = OrderBuilder::new().sequence(1).instrument_specimen_id(query.field(3)).build();
/// assert_eq!(order.to_bytes(&Delimiters::STANDARD)?, b"O|1||^000004287888");
/// assert_eq!(order.to_bytes(&dxh)?, b"O|1||!000004287888");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A header's H.2 converted this way is a value like any other (its text), not a delimiter
/// definition: only [`RecordBuf::from_record`] keeps it as the header's definition.
impl From<Field<'_>> for FieldBuf {
    fn from(field: Field<'_>) -> Self {
        if field.is_literal() {
            // H.2 is not split into repeats or components: its bytes are one value.
            return Self::text(field.raw());
        }
        Self::parsed(field, false)
    }
}

impl From<&str> for FieldBuf {
    fn from(value: &str) -> Self {
        Self::text(value)
    }
}

impl From<String> for FieldBuf {
    fn from(value: String) -> Self {
        Self::text(value)
    }
}

impl From<&[u8]> for FieldBuf {
    fn from(value: &[u8]) -> Self {
        Self::text(value)
    }
}

impl From<Vec<u8>> for FieldBuf {
    fn from(value: Vec<u8>) -> Self {
        Self::text(value)
    }
}

impl From<u32> for FieldBuf {
    fn from(value: u32) -> Self {
        Self::text(value.to_string())
    }
}

/// The flag's [`code`](AbnormalFlag::code); [`AbnormalFlag::Other`] has none and writes an
/// empty field (write the vendor's flag text instead).
impl From<AbnormalFlag> for FieldBuf {
    fn from(value: AbnormalFlag) -> Self {
        value.code().map_or_else(Self::empty, Self::text)
    }
}

/// The status's [`code`](ResultStatus::code); [`ResultStatus::Other`] has none and writes
/// an empty field (write the instrument's letter instead).
impl From<ResultStatus> for FieldBuf {
    fn from(value: ResultStatus) -> Self {
        value.code().map_or_else(Self::empty, Self::text)
    }
}

impl From<Timestamp> for FieldBuf {
    fn from(value: Timestamp) -> Self {
        Self::timestamp(value)
    }
}

impl From<NaiveDateTime> for FieldBuf {
    fn from(value: NaiveDateTime) -> Self {
        Self::timestamp(value)
    }
}

impl From<NaiveDate> for FieldBuf {
    fn from(value: NaiveDate) -> Self {
        Self::timestamp(value)
    }
}

/// An owned record: field 1 is the record type.
///
/// Build one with the typed builders ([`ResultBuilder`](crate::ResultBuilder) …), or turn a parsed
/// [`Record`] into one with [`RecordBuf::from_record`]; an unmodified parsed record written with the
/// delimiters it was parsed with gives back the same bytes.
///
/// ```
/// use astm_records::{Delimiters, Record, RecordBuf, FieldBuf};
/// let input = b"R|1|^^^GLU|5.5|mmol/L||N||F";
/// let record = Record::parse(input, &Delimiters::STANDARD)?;
/// let mut owned = RecordBuf::from_record(&record);
/// assert_eq!(owned.to_bytes(record.delimiters())?, input);
/// owned.set(5, FieldBuf::text("mg|dL"));
/// assert_eq!(owned.to_bytes(record.delimiters())?, b"R|1|^^^GLU|5.5|mg&F&dL||N||F");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBuf {
    fields: Vec<FieldBuf>,
}

impl RecordBuf {
    /// A record holding only its type letter.
    pub fn new(letter: u8) -> Self {
        let mut fields = vec![FieldBuf::raw(vec![letter])];
        if letter.eq_ignore_ascii_case(&b'H') {
            fields.push(FieldBuf {
                repr: Repr::Definition,
            });
        }
        Self { fields }
    }

    /// A record from its fields, field 1 (the type) first. No field is treated as H.2.
    pub fn from_fields(fields: impl IntoIterator<Item = FieldBuf>) -> Self {
        Self {
            fields: fields.into_iter().collect(),
        }
    }

    /// Copies a parsed record, keeping every field in its wire form and the delimiters it was parsed
    /// with.
    ///
    /// Written with those delimiters, the fields are copied byte for byte. Written with others, each
    /// field is split into its repeats and components, unescaped and escaped again, and a header's
    /// H.2 declares the delimiters in use, so the record reads back the same.
    ///
    /// ```
    /// use astm_records::{Delimiters, Record, RecordBuf};
    /// let dxh = Delimiters::new(b'|', b'\\', b'!', Some(b'~'))?;
    /// let record = Record::parse(b"R|1|!!!WBC|5.8|x^y", &dxh)?;
    /// let owned = RecordBuf::from_record(&record);
    /// assert_eq!(owned.to_bytes(&dxh)?, record.raw());
    /// assert_eq!(owned.to_bytes(&Delimiters::STANDARD)?, b"R|1|^^^WBC|5.8|x&S&y");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_record(record: &Record<'_>) -> Self {
        Self::from_fields(record.fields().map(|f| FieldBuf::parsed(f, f.is_literal())))
    }

    /// The record type read from field 1.
    pub fn kind(&self) -> RecordType {
        match self.fields.first().map(|f| &f.repr) {
            Some(Repr::Raw(raw) | Repr::Parsed { raw, .. }) => RecordType::from_field(raw),
            Some(Repr::Values(values)) => match values.as_slice() {
                [components] => match components.as_slice() {
                    [value] => RecordType::from_field(value),
                    _ => RecordType::Other,
                },
                _ => RecordType::Other,
            },
            _ => RecordType::Other,
        }
    }

    /// Sets field `number` (1-based), adding empty fields before it as needed. Number 0 is ignored,
    /// and so is field 2 of a header made with [`RecordBuf::new`] or copied with
    /// [`RecordBuf::from_record`]: it is the delimiter definition, written from the delimiters the
    /// record is encoded with.
    pub fn set(&mut self, number: usize, value: impl Into<FieldBuf>) -> &mut Self {
        if let Some(index) = number.checked_sub(1) {
            if self.fields.len() <= index {
                self.fields.resize_with(index + 1, FieldBuf::default);
            }
            // Replaced, the definition would be written as data and the header would no
            // longer declare the delimiters the rest of the message uses.
            if !self.fields[index].is_definition() {
                self.fields[index] = value.into();
            }
        }
        self
    }

    /// Makes field 2 the delimiter definition, written from the delimiters the record is
    /// encoded with: the standard's repeat, component and escape, whatever the header held there
    /// (nothing, for a header built field by field with [`RecordBuf::from_fields`], or a parsed
    /// definition as written, such as the doubled `\\^&` of some exports).
    pub(crate) fn declare_delimiters(&mut self) {
        if self.fields.len() < 2 {
            self.fields.resize_with(2, FieldBuf::default);
        }
        self.fields[1] = FieldBuf {
            repr: Repr::Definition,
        };
    }

    /// Sets the sequence number (field 2); a header has none, and keeps its delimiter
    /// definition there.
    pub fn set_sequence(&mut self, sequence: u32) -> &mut Self {
        self.set(2, sequence)
    }

    /// Field `number` (1-based).
    pub fn field(&self, number: usize) -> Option<&FieldBuf> {
        self.fields.get(number.checked_sub(1)?)
    }

    /// How many fields will be written.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// Writes the record (no terminator) with `delimiters`, escaping values.
    ///
    /// # Errors
    ///
    /// [`BuildError::CannotEscape`] for a value holding a delimiter or control byte when
    /// `delimiters` has no escape character, [`BuildError::RawValue`] or
    /// [`BuildError::RestrictedByte`] for a raw value that cannot appear in a record, and
    /// [`BuildError::TimestampYear`] for a timestamp outside years 0 to 9999. `out` may then
    /// hold part of the record.
    pub fn write_to(&self, delimiters: &Delimiters, out: &mut Vec<u8>) -> Result<(), BuildError> {
        for (i, field) in self.fields.iter().enumerate() {
            // A header's field delimiter comes right after the `H`, as in any other record.
            if i > 0 {
                out.push(delimiters.field());
            }
            field.write(i + 1, delimiters, out)?;
        }
        Ok(())
    }

    /// The record as bytes (no terminator).
    ///
    /// # Errors
    ///
    /// As [`write_to`](Self::write_to).
    pub fn to_bytes(&self, delimiters: &Delimiters) -> Result<Vec<u8>, BuildError> {
        let mut out = Vec::new();
        self.write_to(delimiters, &mut out)?;
        Ok(out)
    }
}

impl From<&Record<'_>> for RecordBuf {
    fn from(record: &Record<'_>) -> Self {
        Self::from_record(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_fields_repeats_components() {
        let mut r = RecordBuf::new(b'O');
        r.set_sequence(1)
            .set(3, "S1")
            .set(5, FieldBuf::test_codes(["GLU", "NA"]))
            .set(8, FieldBuf::components(["a", "", "b", "", ""]));
        assert_eq!(
            r.to_bytes(&Delimiters::STANDARD).unwrap(),
            b"O|1|S1||^^^GLU\\^^^NA|||a^^b"
        );
        assert_eq!(r.kind(), RecordType::Order);
        assert_eq!(r.field_count(), 8);
    }

    /// A header's field 2 is its delimiter definition: `set_sequence` (or `set(2, ..)`) on
    /// it wrote `1` there, and the header no longer parsed.
    #[test]
    fn a_header_keeps_its_definition_whatever_is_set_in_field_2() {
        let mut h = RecordBuf::new(b'H');
        h.set_sequence(1).set(2, "x").set(5, "LIS");
        let bytes = h.to_bytes(&Delimiters::STANDARD).unwrap();
        assert_eq!(bytes, b"H|\\^&|||LIS");
        assert!(Delimiters::from_header(&bytes).is_ok());
    }

    /// The same for a header copied from a parsed record: its H.2 is the parsed definition,
    /// and `set_sequence(1)` wrote `H|1|||LIS`, which no longer parses (E1394: H.2 holds
    /// the delimiters, a header has no sequence number).
    #[test]
    fn a_parsed_header_keeps_its_definition_whatever_is_set_in_field_2() {
        let parsed = Record::parse(b"H|\\^&|||LIS", &Delimiters::STANDARD).unwrap();
        let mut h = RecordBuf::from_record(&parsed);
        h.set_sequence(1).set(2, "x").set(4, "pw");
        let bytes = h.to_bytes(&Delimiters::STANDARD).unwrap();
        assert_eq!(bytes, b"H|\\^&||pw|LIS");
        assert_eq!(Delimiters::from_header(&bytes), Ok(Delimiters::STANDARD));
        // Written with other delimiters, it declares those.
        let dxh = Delimiters::new(b'|', b'\\', b'!', Some(b'~')).unwrap();
        assert_eq!(h.to_bytes(&dxh).unwrap(), b"H|\\!~||pw|LIS");
        // Field 2 of any other parsed record is its sequence number, and is replaced.
        let parsed = Record::parse(b"P|7|x", &Delimiters::STANDARD).unwrap();
        let mut p = RecordBuf::from_record(&parsed);
        p.set_sequence(1);
        assert_eq!(p.to_bytes(&Delimiters::STANDARD).unwrap(), b"P|1|x");
    }

    /// A parsed field converted on its own is a value: copied as it came with its own
    /// delimiters, re-encoded with others, and a header's H.2 is its text, not a definition.
    #[test]
    fn a_parsed_field_converts_into_a_value_in_wire_form() {
        let dxh = Delimiters::new(b'|', b'\\', b'!', Some(b'~')).unwrap();
        let q = Record::parse(b"Q|1|!S1~S~x\\!S2||!!!ALL", &dxh).unwrap();
        let mut o = RecordBuf::new(b'O');
        o.set(4, q.field(3));
        assert_eq!(o.to_bytes(&dxh).unwrap(), b"O|||!S1~S~x\\!S2");
        assert_eq!(
            o.to_bytes(&Delimiters::STANDARD).unwrap(),
            b"O|||^S1!x\\^S2"
        );
        let h = Record::parse(b"H|\\!~|||DxH", &dxh).unwrap();
        let mut c = RecordBuf::new(b'C');
        c.set(4, h.field(2)).set(4, "replaced");
        assert_eq!(c.to_bytes(&dxh).unwrap(), b"C|||replaced");
        c.set(4, h.field(2));
        assert_eq!(c.to_bytes(&Delimiters::STANDARD).unwrap(), b"C|||&R&!~");
        assert_eq!(c.to_bytes(&dxh).unwrap(), b"C|||~R~~S~~E~");
    }

    #[test]
    fn header_writes_its_definition() {
        let mut h = RecordBuf::new(b'H');
        h.set(5, FieldBuf::components(["LIS", "1.0"]));
        let dxh = Delimiters::new(b'|', b'\\', b'!', Some(b'~')).unwrap();
        assert_eq!(h.to_bytes(&dxh).unwrap(), b"H|\\!~|||LIS!1.0");
        assert_eq!(
            h.to_bytes(&Delimiters::STANDARD).unwrap(),
            b"H|\\^&|||LIS^1.0"
        );
    }

    #[test]
    fn parsed_records_written_with_other_delimiters_are_re_encoded() {
        use crate::{Message, MessageBuilder, ResultRecord};
        // The Beckman DxH example of the crate documentation, plus a `^` that is text under `|\!~`
        // and an escaped `!` (`~S~`) that is text under `|\^&`.
        let dxh_text = b"H|\\!~|||DxH\rP|1||PID7||Doe!Jane\rO|1|S-1||!!!CBC\rR|1|!!!WBC|5.8|10*3/uL|4.0-10.0|N||F\rC|1|I|a^b ~S~ c\\d\rL|1|N\r";
        let dxh = Message::parse(dxh_text).unwrap();
        let mut builder = MessageBuilder::new(RecordBuf::from_record(&dxh.records()[0]));
        for record in &dxh.records()[1..] {
            builder.add(RecordBuf::from_record(record));
        }
        let standard_text = builder.build().unwrap();
        assert_eq!(
            standard_text,
            b"H|\\^&|||DxH\rP|1||PID7||Doe^Jane\rO|1|S-1||^^^CBC\rR|1|^^^WBC|5.8|10*3/uL|4.0-10.0|N||F\rC|1|I|a&S&b ! c\\d\rL|1|N\r"
        );
        let standard = Message::parse_strict(&standard_text).unwrap();
        assert_eq!(
            *standard.header().record().delimiters(),
            Delimiters::STANDARD
        );
        let patient = standard.patients().next().unwrap().record();
        assert_eq!(patient.field(6).component(2).text(), "Jane");
        let result = standard.results().next().unwrap();
        assert_eq!(result.test_code().as_deref(), Some("WBC"));
        assert_eq!(result.value_text(), "5.8");
        let comment = standard.records()[4].field(4);
        let repeats: Vec<_> = comment.repeats().map(|r| r.component(1).text()).collect();
        assert_eq!(repeats, ["a^b ! c", "d"]);

        // A lone record; and written back with its own delimiters, byte for byte as before.
        let dxh_delimiters = *dxh.header().record().delimiters();
        let r = Record::parse(b"R|1|!!!WBC|5.8", &dxh_delimiters).unwrap();
        let owned = RecordBuf::from_record(&r);
        let out = owned.to_bytes(&Delimiters::STANDARD).unwrap();
        assert_eq!(out, b"R|1|^^^WBC|5.8");
        let back = ResultRecord::new(Record::parse(&out, &Delimiters::STANDARD).unwrap()).unwrap();
        assert_eq!(back.test_code().as_deref(), Some("WBC"));
        assert_eq!(owned.to_bytes(&dxh_delimiters).unwrap(), r.raw());
        let h = Record::parse(b"H|\\\\^&|||H550", &Delimiters::STANDARD).unwrap();
        assert_eq!(
            RecordBuf::from_record(&h)
                .to_bytes(&Delimiters::STANDARD)
                .unwrap(),
            h.raw()
        );

        // A target without escape character cannot carry the `^` of the DxH comment.
        let no_escape = Delimiters::new(b'|', b'\\', b'^', None).unwrap();
        let c = Record::parse(b"C|1|I|a^b", &dxh_delimiters).unwrap();
        assert_eq!(
            RecordBuf::from_record(&c).to_bytes(&no_escape),
            Err(BuildError::CannotEscape {
                field: 4,
                byte: b'^'
            })
        );
    }

    #[test]
    fn timestamp_years_without_four_digits_fail_to_build() {
        use crate::{MessageBuilder, PatientBuilder, ResultBuilder, ResultRecord, parse_timestamp};
        let day = |year| NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
        for year in [10_000, -1, 262_000] {
            let result = ResultBuilder::new()
                .sequence(1)
                .completed_date_time(day(year))
                .build();
            assert_eq!(
                result.to_bytes(&Delimiters::STANDARD),
                Err(BuildError::TimestampYear { field: 13, year })
            );
        }
        let err = MessageBuilder::new(RecordBuf::new(b'H'))
            .push(PatientBuilder::new().birthdate(day(-44).and_hms_opt(12, 0, 0).unwrap()))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "record 2: field 8: year -44 cannot be written as a YYYY timestamp (0 to 9999)"
        );
        // The edges of the range are written and read back.
        for year in [0, 9999] {
            let bytes = ResultBuilder::new()
                .sequence(1)
                .completed_date_time(day(year))
                .build()
                .to_bytes(&Delimiters::STANDARD)
                .unwrap();
            let record = Record::parse(&bytes, &Delimiters::STANDARD).unwrap();
            let result = ResultRecord::new(record).unwrap();
            assert_eq!(
                result.completed_date_time().timestamp(),
                Ok(Some(day(year).into()))
            );
        }
        assert_eq!(
            parse_timestamp(FieldBuf::timestamp(day(1)).values().unwrap()[0][0].as_slice()),
            Ok(day(1).into())
        );
    }

    #[test]
    fn refuses_what_cannot_be_written() {
        let no_escape = Delimiters::new(b'|', b'\\', b'^', None).unwrap();
        let mut c = RecordBuf::new(b'C');
        c.set(4, "a^b");
        assert_eq!(
            c.to_bytes(&no_escape),
            Err(BuildError::CannotEscape {
                field: 4,
                byte: b'^'
            })
        );
        c.set(4, FieldBuf::raw("a|b"));
        assert_eq!(
            c.to_bytes(&Delimiters::STANDARD),
            Err(BuildError::RawValue {
                field: 4,
                byte: b'|'
            })
        );
        // Wire form carries no LIS1-A restricted character (§6.6): the link layer would refuse
        // the message only when sending it, far from the field that held it.
        for byte in [0x02u8, 0x04, 0x05, 0x17] {
            c.set(4, FieldBuf::raw([b'a', byte, b'b']));
            assert!(
                matches!(
                    c.to_bytes(&Delimiters::STANDARD),
                    Err(BuildError::RestrictedByte { field: 4, byte: b, .. }) if b == byte
                ),
                "{byte:#04x}"
            );
        }
        assert_eq!(
            c.to_bytes(&Delimiters::STANDARD).unwrap_err().to_string(),
            "field 4: raw value contains byte 0x17 (ETB), a LIS1-A restricted character, which cannot appear in message text"
        );
        // Other controls are not restricted, and a value (not raw) is hex-escaped.
        c.set(4, FieldBuf::raw("a\tb\x07"));
        assert_eq!(c.to_bytes(&Delimiters::STANDARD).unwrap(), b"C|||a\tb\x07");
        c.set(4, &b"a\x02b"[..]);
        assert_eq!(c.to_bytes(&Delimiters::STANDARD).unwrap(), b"C|||a&X02&b");
        // A parsed record is written back as it came.
        let parsed = Record::parse(b"C|1|I|a\x02b", &Delimiters::STANDARD).unwrap();
        let copy = RecordBuf::from_record(&parsed).to_bytes(&Delimiters::STANDARD);
        assert_eq!(copy.unwrap(), parsed.raw());
        c.set(0, "ignored");
        assert_eq!(c.field_count(), 4);
    }
}
