//! Field separator and encoding characters, read from MSH-1 and MSH-2.

use std::fmt;

use crate::error::ParseError;

/// The delimiters a message declares in its header: MSH-1 (field separator) and MSH-2
/// (component, repetition, escape, subcomponent and, from HL7 2.7, truncation).
///
/// Encoding characters a message leaves out of MSH-2 are `None` and never split
/// anything.
///
/// `Debug` shows the delimiters as characters:
/// `Delimiters { field: '|', component: '^', repetition: Some('~'), escape: Some('\\'), subcomponent: Some('&'), truncation: None }`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    field: u8,
    component: u8,
    repetition: Option<u8>,
    escape: Option<u8>,
    subcomponent: Option<u8>,
    truncation: Option<u8>,
}

impl fmt::Debug for Delimiters {
    // Delimiters are printable ASCII (`from_header` refuses anything else).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |byte: Option<u8>| byte.map(char::from);
        f.debug_struct("Delimiters")
            .field("field", &char::from(self.field))
            .field("component", &char::from(self.component))
            .field("repetition", &shown(self.repetition))
            .field("escape", &shown(self.escape))
            .field("subcomponent", &shown(self.subcomponent))
            .field("truncation", &shown(self.truncation))
            .finish()
    }
}

impl Default for Delimiters {
    fn default() -> Self {
        Self::STANDARD
    }
}

impl Delimiters {
    /// `|^~\&`, what nearly every message declares.
    pub const STANDARD: Self = Self {
        field: b'|',
        component: b'^',
        repetition: Some(b'~'),
        escape: Some(b'\\'),
        subcomponent: Some(b'&'),
        truncation: None,
    };

    /// Reads the delimiters of a header segment (`MSH`, `FHS` or `BHS`): the byte after
    /// the segment id, then the encoding characters up to the next field separator.
    ///
    /// # Errors
    ///
    /// [`ParseError::TruncatedHeader`] when the header ends before MSH-2;
    /// [`ParseError::InvalidDelimiter`] for a letter, digit, whitespace, control byte or
    /// repeated delimiter, or more than five encoding characters.
    pub fn from_header(segment: &[u8]) -> Result<Self, ParseError> {
        let truncated = || ParseError::TruncatedHeader {
            segment: String::from_utf8_lossy(&segment[..segment.len().min(3)]).into_owned(),
        };
        let field = *segment.get(3).ok_or_else(truncated)?;
        let rest = &segment[4..];
        let end = rest
            .iter()
            .position(|&b| b == field || b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        let encoding = &rest[..end];
        if encoding.is_empty() {
            return Err(truncated());
        }
        if encoding.len() > 5 {
            return Err(ParseError::InvalidDelimiter {
                byte: encoding[5],
                position: 9,
                reason: "more than five encoding characters in MSH-2",
            });
        }
        for (i, &byte) in std::iter::once(&field).chain(encoding).enumerate() {
            let position = 3 + i;
            let reason = unusable_as_delimiter(byte).or_else(|| {
                segment[3..position]
                    .contains(&byte)
                    .then_some("each delimiter must be different")
            });
            if let Some(reason) = reason {
                return Err(ParseError::InvalidDelimiter {
                    byte,
                    position,
                    reason,
                });
            }
        }
        Ok(Self {
            field,
            component: encoding[0],
            repetition: encoding.get(1).copied(),
            escape: encoding.get(2).copied(),
            subcomponent: encoding.get(3).copied(),
            truncation: encoding.get(4).copied(),
        })
    }

    /// Field separator (MSH-1).
    #[must_use]
    pub fn field(&self) -> u8 {
        self.field
    }

    /// Component separator.
    #[must_use]
    pub fn component(&self) -> u8 {
        self.component
    }

    /// Repetition separator, if declared.
    #[must_use]
    pub fn repetition(&self) -> Option<u8> {
        self.repetition
    }

    /// Escape character, if declared.
    #[must_use]
    pub fn escape(&self) -> Option<u8> {
        self.escape
    }

    /// Subcomponent separator, if declared.
    #[must_use]
    pub fn subcomponent(&self) -> Option<u8> {
        self.subcomponent
    }

    /// Truncation character (HL7 2.7+), if declared.
    #[must_use]
    pub fn truncation(&self) -> Option<u8> {
        self.truncation
    }

    /// MSH-2 as it would be written: the declared encoding characters in order.
    #[must_use]
    pub fn encoding_characters(&self) -> Vec<u8> {
        let mut out = vec![self.component];
        out.extend(
            [
                self.repetition,
                self.escape,
                self.subcomponent,
                self.truncation,
            ]
            .into_iter()
            .map_while(|c| c),
        );
        out
    }
}

/// Why a header cannot declare `byte` as a delimiter, if it cannot.
pub(crate) fn unusable_as_delimiter(byte: u8) -> Option<&'static str> {
    if byte.is_ascii_alphanumeric() {
        Some("letters and digits cannot be delimiters")
    } else if byte.is_ascii_whitespace() || byte.is_ascii_control() || byte >= 0x80 {
        Some("whitespace, control and non-ASCII bytes cannot be delimiters")
    } else {
        None
    }
}
