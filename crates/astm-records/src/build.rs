//! Owned records for output: built field by field, escaped when written.

use chrono::{NaiveDate, NaiveDateTime};

use crate::delimiters::Delimiters;
use crate::error::BuildError;
use crate::escape::escape_into;
use crate::record::{Record, RecordType};
use crate::timestamp::Timestamp;

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
    /// H.2: written from the delimiters in use.
    Definition,
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
    pub fn timestamp(timestamp: impl Into<Timestamp>) -> Self {
        Self::text(timestamp.into().to_string())
    }

    /// The values (repeats of components), unless this is a raw field or H.2.
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
            Repr::Raw(raw) => raw.is_empty(),
            Repr::Definition => false,
        }
    }

    fn write(
        &self,
        number: usize,
        delimiters: &Delimiters,
        out: &mut Vec<u8>,
    ) -> Result<(), BuildError> {
        match &self.repr {
            Repr::Definition => out.extend_from_slice(&delimiters.definition()),
            Repr::Raw(raw) => {
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
/// [`Record`] into one with [`RecordBuf::from_record`]; an unmodified parsed record writes back the
/// same bytes.
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

    /// Copies a parsed record, keeping every field in its wire form.
    pub fn from_record(record: &Record<'_>) -> Self {
        Self::from_fields(record.fields().map(|f| FieldBuf::raw(f.raw())))
    }

    /// The record type read from field 1.
    pub fn kind(&self) -> RecordType {
        match self.fields.first().map(|f| &f.repr) {
            Some(Repr::Raw(raw)) => RecordType::from_field(raw),
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

    /// Sets field `number` (1-based), adding empty fields before it as needed. Number 0 is ignored.
    pub fn set(&mut self, number: usize, value: impl Into<FieldBuf>) -> &mut Self {
        if let Some(index) = number.checked_sub(1) {
            if self.fields.len() <= index {
                self.fields.resize_with(index + 1, FieldBuf::default);
            }
            self.fields[index] = value.into();
        }
        self
    }

    /// Sets the sequence number (field 2).
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
        c.set(0, "ignored");
        assert_eq!(c.field_count(), 4);
    }
}
