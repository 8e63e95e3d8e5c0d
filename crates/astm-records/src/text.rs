//! Turning record bytes into text.

use std::borrow::Cow;

/// How to decode record bytes into text.
///
/// E1394 text is bytes; the character set is agreed per link. Latin-1 is the usual default (python-astm,
/// labmcp, go-astm) and never fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Charset {
    /// ISO-8859-1: every byte is the code point of the same value.
    #[default]
    Latin1,
    /// UTF-8, invalid sequences replaced by U+FFFD.
    Utf8Lossy,
    /// UTF-8 when the bytes are valid UTF-8, Latin-1 otherwise.
    Auto,
}

impl Charset {
    /// Decodes `bytes`, borrowing when they are plain ASCII (or valid UTF-8 for the UTF-8 modes).
    pub fn decode<'a>(self, bytes: &'a [u8]) -> Cow<'a, str> {
        match self {
            Self::Latin1 => latin1(bytes),
            Self::Utf8Lossy => String::from_utf8_lossy(bytes),
            Self::Auto => match std::str::from_utf8(bytes) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => latin1(bytes),
            },
        }
    }
}

fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.is_ascii() => Cow::Borrowed(text),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Replaces the UTF-8 yen sign (`¥`, C2 A5) with a backslash.
///
/// Sysmex documents print the 0x5C backslash as `¥` (Japanese code pages), and text copied from them
/// carries a two-byte `¥` as the repeat delimiter (`H|¥^&`). Run this over such text before parsing.
/// Borrows when there is no yen sign.
///
/// ```
/// assert_eq!(&*astm_records::yen_to_backslash("H|¥^&".as_bytes()), b"H|\\^&");
/// ```
pub fn yen_to_backslash(text: &[u8]) -> Cow<'_, [u8]> {
    const YEN: &[u8] = "¥".as_bytes();
    if memchr::memmem::find(text, YEN).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = memchr::memmem::find(rest, YEN) {
        out.extend_from_slice(&rest[..at]);
        out.push(b'\\');
        rest = &rest[at + YEN.len()..];
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        assert_eq!(Charset::Latin1.decode(b"NON D\xC9TECT\xC9"), "NON DÉTECTÉ");
        assert_eq!(Charset::Auto.decode("привет".as_bytes()), "привет");
        assert_eq!(Charset::Auto.decode(b"\xC9"), "É");
        assert_eq!(Charset::Utf8Lossy.decode(b"\xC9"), "\u{FFFD}");
        assert!(matches!(
            Charset::Latin1.decode(b"abc"),
            Cow::Borrowed("abc")
        ));
    }
}
