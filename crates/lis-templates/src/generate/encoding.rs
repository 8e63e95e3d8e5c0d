//! The character encoding generated messages are written in.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// How generated text becomes bytes: what the simulated analyzer writes on the wire.
///
/// Messages are built as text; [`AstmMessage::to_bytes`](crate::AstmMessage::to_bytes) and
/// [`Hl7Message::to_bytes`](crate::Hl7Message::to_bytes) encode it (with
/// [`mllp_hl7::Charset::encode`], for ASTM too). A character the encoding cannot write
/// becomes `?`, already in the generated text, so what is displayed is what is sent. Latin-1
/// is what many instruments write (the Cepheid GeneXpert's `NON DÉTECTÉ` with `É` as the
/// single byte 0xC9, which OpenELIS PR #4143 had NAKed), and lets a LIS bridge be tested
/// against it.
///
/// ```
/// use lis_templates::TextEncoding;
/// assert_eq!(&*TextEncoding::Latin1.encode("NON DÉTECTÉ"), b"NON D\xC9TECT\xC9");
/// assert_eq!(&*TextEncoding::Latin1.encode("β-hCG µg/L 5 €"), b"?-hCG \xB5g/L 5 ?");
/// assert_eq!(&*TextEncoding::Latin9.encode("5 €"), b"5 \xA4");
/// assert_eq!(&*TextEncoding::Latin1.encode("10^3/μL"), b"10^3/\xB5L");
/// assert_eq!(&*TextEncoding::Ascii.encode("β-hCG µg/L"), b"?-hCG ?g/L");
/// assert_eq!(&*TextEncoding::Utf8.encode("É"), "É".as_bytes());
/// assert_eq!(TextEncoding::Ascii.substitute("µg/L"), "?g/L");
/// assert_eq!("latin-1".parse::<TextEncoding>(), Ok(TextEncoding::Latin1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TextEncoding {
    /// UTF-8: every character is written.
    #[default]
    Utf8,
    /// ISO 8859-1: characters up to U+00FF as one byte each, any other as `?`.
    Latin1,
    /// ISO 8859-15 (Latin-9): Latin-1 with the euro sign and seven other letters in place of
    /// eight rarely used signs.
    Latin9,
    /// US-ASCII: any character beyond U+007F as `?` (what the OpenELIS mock's push framer
    /// writes).
    Ascii,
}

impl TextEncoding {
    /// Every encoding.
    pub const ALL: [Self; 4] = [Self::Utf8, Self::Latin1, Self::Latin9, Self::Ascii];

    /// The encoding's name as [`FromStr`] reads it: `utf-8`, `latin-1`, `latin-9` or `ascii`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Latin1 => "latin-1",
            Self::Latin9 => "latin-9",
            Self::Ascii => "ascii",
        }
    }

    /// The HL7 character set that writes the same bytes.
    #[must_use]
    pub const fn hl7(self) -> mllp_hl7::Charset {
        match self {
            Self::Utf8 => mllp_hl7::Charset::Utf8,
            Self::Latin1 => mllp_hl7::Charset::Latin1,
            Self::Latin9 => mllp_hl7::Charset::Latin9,
            Self::Ascii => mllp_hl7::Charset::Ascii,
        }
    }

    /// `text` with every character the encoding cannot write replaced by `?`; borrowed
    /// when there is none. The Greek small mu (U+03BC), which units such as `10^3/μL` are
    /// often typed with, is written in Latin-1 and Latin-9 as their micro sign (0xB5), as
    /// an instrument writing those sets does.
    #[must_use]
    pub fn substitute(self, text: &str) -> Cow<'_, str> {
        if self == Self::Utf8 || text.is_ascii() {
            return Cow::Borrowed(text);
        }
        let bytes = self.encode(text);
        // Every byte the encoder writes decodes in the same set, and all but `?` (and the
        // micro sign) as the character it came from.
        match self.hl7().decode(&bytes) {
            Ok(decoded) if decoded == text => Cow::Borrowed(text),
            Ok(decoded) => Cow::Owned(decoded.into_owned()),
            Err(_) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    /// [`substitute`](Self::substitute) for owned text: `text` itself when it needs no
    /// substitution.
    #[must_use]
    pub fn substitute_owned(self, text: String) -> String {
        match self.substitute(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(substituted) => substituted,
        }
    }

    /// `text` as bytes in this encoding (`?` for what it cannot write, the Greek mu as the
    /// micro sign in Latin-1 and Latin-9); borrowed for UTF-8 and for ASCII text.
    #[must_use]
    pub fn encode(self, text: &str) -> Cow<'_, [u8]> {
        const GREEK_MU: char = '\u{3BC}';
        if matches!(self, Self::Latin1 | Self::Latin9) && text.contains(GREEK_MU) {
            let micro = text.replace(GREEK_MU, "\u{B5}");
            return Cow::Owned(self.hl7().encode(&micro).into_owned());
        }
        self.hl7().encode(text)
    }

    /// The HL7 character set (MSH-18, table 0211) of a message holding text beyond ASCII in
    /// this encoding; `None` for ASCII, which HL7 assumes when MSH-18 is empty.
    #[must_use]
    pub fn msh18(self) -> Option<&'static str> {
        (self != Self::Ascii).then(|| self.hl7().msh18_name())
    }

    /// The encoding's IANA name, for a `charset` parameter (`text/plain; charset=...`).
    #[must_use]
    pub const fn mime_charset(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Latin1 => "iso-8859-1",
            Self::Latin9 => "iso-8859-15",
            Self::Ascii => "us-ascii",
        }
    }
}

impl fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name [`TextEncoding`]'s [`FromStr`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown text encoding {0:?} (known: utf-8, latin-1, latin-9, ascii)")]
pub struct UnknownEncoding(pub String);

impl FromStr for TextEncoding {
    type Err = UnknownEncoding;

    /// Reads `utf-8`, `latin-1`, `latin-9` or `ascii`, and their usual aliases (`utf8`,
    /// `latin1`, `iso-8859-1`, `8859/1`, `iso-8859-15`, `us-ascii`...), in any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "unicode utf-8" => Ok(Self::Utf8),
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "8859/1" => Ok(Self::Latin1),
            "latin-9" | "latin9" | "iso-8859-15" | "iso8859-15" | "8859/15" => Ok(Self::Latin9),
            "ascii" | "us-ascii" => Ok(Self::Ascii),
            _ => Err(UnknownEncoding(name.to_owned())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for TextEncoding {
    /// Reads a name as [`FromStr`] does (a template's `protocol.encoding`).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What `encode` writes reads back, in that encoding, as `substitute`'s text.
        #[test]
        fn encode_reads_back_as_substitute(
            text in prop_oneof![any::<String>(), "[a-zµμ€¤ÉŒβ?]{0,16}"]
        ) {
            for encoding in TextEncoding::ALL {
                let bytes = encoding.encode(&text);
                let read = encoding.hl7().decode(&bytes).unwrap();
                prop_assert_eq!(&read, &*encoding.substitute(&text));
                prop_assert_eq!(read.chars().count(), text.chars().count());
                for (read, sent) in read.chars().zip(text.chars()) {
                    let micro = sent == '\u{3BC}' && read == '\u{B5}';
                    prop_assert!(read == sent || read == '?' || micro, "{:?} for {:?}", read, sent);
                }
                if encoding == TextEncoding::Ascii {
                    prop_assert!(bytes.is_ascii());
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for encoding in TextEncoding::ALL {
            assert_eq!(encoding.name().parse::<TextEncoding>(), Ok(encoding));
            assert_eq!(encoding.to_string(), encoding.name());
        }
        assert_eq!(
            "EBCDIC".parse::<TextEncoding>(),
            Err(UnknownEncoding("EBCDIC".into()))
        );
        assert_eq!(
            UnknownEncoding("x".into()).to_string(),
            "unknown text encoding \"x\" (known: utf-8, latin-1, latin-9, ascii)"
        );
    }
}
