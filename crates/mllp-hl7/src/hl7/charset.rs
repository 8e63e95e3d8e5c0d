//! MSH-18 character sets (HL7 table 0211) and text decoding.

use std::borrow::Cow;

use crate::error::TextError;

/// A character set text can be decoded from and encoded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Charset {
    /// `ASCII`, the default when MSH-18 is empty.
    Ascii,
    /// `8859/1`, ISO 8859-1 (Latin-1).
    Latin1,
    /// `8859/15`, ISO 8859-15 (Latin-9, with the euro sign).
    Latin9,
    /// `UNICODE UTF-8` (also accepted: `UTF-8`, `UTF8`).
    Utf8,
}

/// Latin-9 code points that differ from Latin-1.
const LATIN9: [(u8, char); 8] = [
    (0xA4, '€'),
    (0xA6, 'Š'),
    (0xA8, 'š'),
    (0xB4, 'Ž'),
    (0xB8, 'ž'),
    (0xBC, 'Œ'),
    (0xBD, 'œ'),
    (0xBE, 'Ÿ'),
];

impl Charset {
    /// Maps an MSH-18 value; empty means ASCII.
    ///
    /// # Errors
    ///
    /// [`TextError::Unsupported`] for another table 0211 value (e.g. `ISO IR87`,
    /// `UNICODE UTF-16`, which MLLP cannot carry anyway).
    pub fn from_msh18(value: &[u8]) -> Result<Self, TextError> {
        let name = value.trim_ascii();
        match name {
            b"" | b"ASCII" | b"ISO IR6" => Ok(Self::Ascii),
            b"8859/1" | b"ISO IR100" => Ok(Self::Latin1),
            b"8859/15" | b"ISO IR203" => Ok(Self::Latin9),
            b"UNICODE UTF-8" | b"UTF-8" | b"UTF8" => Ok(Self::Utf8),
            _ => Err(TextError::Unsupported {
                charset: String::from_utf8_lossy(name).into_owned(),
            }),
        }
    }

    /// The MSH-18 name.
    #[must_use]
    pub fn msh18_name(self) -> &'static str {
        match self {
            Self::Ascii => "ASCII",
            Self::Latin1 => "8859/1",
            Self::Latin9 => "8859/15",
            Self::Utf8 => "UNICODE UTF-8",
        }
    }

    /// Decodes bytes; borrows when they are already valid UTF-8 with the same meaning.
    ///
    /// # Errors
    ///
    /// [`TextError::Invalid`] for a byte outside ASCII, or invalid UTF-8.
    pub fn decode(self, bytes: &[u8]) -> Result<Cow<'_, str>, TextError> {
        let invalid = |at: usize| TextError::Invalid {
            charset: self.msh18_name().to_owned(),
            byte: bytes[at],
            at,
        };
        match self {
            Self::Ascii => match bytes.iter().position(|b| !b.is_ascii()) {
                Some(at) => Err(invalid(at)),
                None => Ok(Cow::Borrowed(
                    std::str::from_utf8(bytes).map_err(|e| invalid(e.valid_up_to()))?,
                )),
            },
            Self::Utf8 => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|e| invalid(e.valid_up_to())),
            Self::Latin1 | Self::Latin9 => {
                if bytes.is_ascii() {
                    return Ok(Cow::Borrowed(
                        std::str::from_utf8(bytes).map_err(|e| invalid(e.valid_up_to()))?,
                    ));
                }
                Ok(Cow::Owned(
                    bytes.iter().map(|&b| self.latin_char(b)).collect(),
                ))
            }
        }
    }

    fn latin_char(self, byte: u8) -> char {
        if self == Self::Latin9
            && let Some(&(_, c)) = LATIN9.iter().find(|(b, _)| *b == byte)
        {
            return c;
        }
        char::from(byte)
    }

    /// Encodes text; a character the set cannot represent becomes `?`.
    #[must_use]
    pub fn encode(self, text: &str) -> Cow<'_, [u8]> {
        if self == Self::Utf8 || text.is_ascii() {
            return Cow::Borrowed(text.as_bytes());
        }
        let byte = |c: char| -> u8 {
            match self {
                Self::Latin9 => LATIN9
                    .iter()
                    .find(|(_, l)| *l == c)
                    .map(|(b, _)| *b)
                    .or_else(|| {
                        u8::try_from(u32::from(c))
                            .ok()
                            .filter(|b| !LATIN9.iter().any(|(l, _)| l == b))
                    })
                    .unwrap_or(b'?'),
                Self::Latin1 => u8::try_from(u32::from(c)).unwrap_or(b'?'),
                _ => {
                    if c.is_ascii() {
                        c as u8
                    } else {
                        b'?'
                    }
                }
            }
        };
        Cow::Owned(text.chars().map(byte).collect())
    }
}
