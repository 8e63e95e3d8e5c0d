//! Turning received bytes into text, for callers that want it. The link layer itself never
//! decodes: checksums are over bytes.

use std::borrow::Cow;

/// Decodes ISO 8859-1 (Latin-1): every byte becomes the character of the same value. Never fails;
/// the usual default for instrument links.
#[must_use]
pub fn decode_latin1(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // ASCII is valid UTF-8 and reads the same in Latin-1.
        Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default())
    } else {
        Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
    }
}

/// Decodes UTF-8 when the bytes are valid UTF-8, Latin-1 otherwise.
#[must_use]
pub fn decode_utf8_or_latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => decode_latin1(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_maps_every_byte() {
        assert_eq!(decode_latin1(b"NON D\xc9TECT\xc9"), "NON DÉTECTÉ");
        assert!(matches!(decode_latin1(b"plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn utf8_preferred_when_valid() {
        assert_eq!(decode_utf8_or_latin1("É".as_bytes()), "É");
        assert_eq!(decode_utf8_or_latin1(b"\xc9"), "É");
    }
}
