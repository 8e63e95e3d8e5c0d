//! E1394 escape sequences: decoding on demand, encoding on output.

use std::borrow::Cow;

use crate::delimiters::Delimiters;

/// What to do with an escape sequence the decoder does not know (e.g. `&Z&`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownEscape {
    /// Keep the bytes as written (the default: nothing is lost).
    #[default]
    Keep,
    /// Drop the whole sequence, as Roche cobas hosts do ("skipped, treated as null"). Only
    /// what looks like a sequence (1 to 16 letters, digits or dots between the escape
    /// characters) is dropped: text between two literal escape characters, as in
    /// `R&D and A&E` from a sender that does not escape, is kept.
    Drop,
}

/// Decodes the escape sequences in `value` (E1394 §7.1.3, plus forms seen in the wild).
///
/// With escape character `&`: `&F&` field, `&S&` component, `&R&` repeat and `&E&` escape delimiter;
/// `&Xhh…&` hex bytes, including unpadded forms such as `&XD&` (one digit, read as `0D`); `&.br&`
/// line break (LF). A lone escape character, or a sequence the decoder does not know, is kept as
/// written ([`UnknownEscape::Keep`]). Borrows when there is nothing to decode.
///
/// Values are split on the delimiters before they are decoded, so the vendor form `&|&` (a bare
/// field delimiter between escape characters) never reaches this function whole: the field
/// delimiter ends the field, as E1394 defines it.
///
/// ```
/// use astm_records::{Delimiters, unescape};
/// let text = unescape(b"Parker &E& Sons &F& x &XD&&XA&", &Delimiters::STANDARD);
/// assert_eq!(&*text, b"Parker & Sons | x \r\n");
/// ```
pub fn unescape<'a>(value: &'a [u8], delimiters: &Delimiters) -> Cow<'a, [u8]> {
    unescape_with(value, delimiters, UnknownEscape::Keep)
}

/// [`unescape`] with a choice for unknown sequences.
pub fn unescape_with<'a>(
    value: &'a [u8],
    delimiters: &Delimiters,
    unknown: UnknownEscape,
) -> Cow<'a, [u8]> {
    let Some(escape) = delimiters.escape() else {
        return Cow::Borrowed(value);
    };
    let Some(first) = memchr::memchr(escape, value) else {
        return Cow::Borrowed(value);
    };
    let mut out = Vec::with_capacity(value.len());
    out.extend_from_slice(&value[..first]);
    // Whether any sequence was decoded or dropped: a value whose escape characters are all
    // literal (`R&D`, from a sender that does not escape) is handed back borrowed.
    let mut changed = false;
    let mut pos = first;
    while pos < value.len() {
        // `pos` is at an escape character.
        let body_start = pos + 1;
        let Some(len) = memchr::memchr(escape, &value[body_start..]) else {
            if !changed {
                return Cow::Borrowed(value);
            }
            out.extend_from_slice(&value[pos..]);
            return Cow::Owned(out);
        };
        let body = &value[body_start..body_start + len];
        let end = body_start + len + 1;
        let known = decode_sequence(body, delimiters, escape, &mut out);
        if known || (unknown == UnknownEscape::Drop && looks_like_sequence(body)) {
            changed = true;
            pos = end;
        } else {
            // Keep the escape byte literally and rescan from the next byte: the closing escape may open
            // a real sequence (`Parker & Sons &F& x`).
            out.push(escape);
            pos = body_start;
        }
        let next = memchr::memchr(escape, &value[pos..]).map_or(value.len(), |n| pos + n);
        out.extend_from_slice(&value[pos..next]);
        pos = next;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(value)
    }
}

/// Whether an unknown body is shaped like an escape sequence (`Z`, `H`, `.sp`, `C1B`) rather
/// than text between two literal escape characters.
fn looks_like_sequence(body: &[u8]) -> bool {
    (1..=16).contains(&body.len()) && body.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'.')
}

/// Appends the decoding of one known sequence body; false when the body is not known.
fn decode_sequence(body: &[u8], delimiters: &Delimiters, escape: u8, out: &mut Vec<u8>) -> bool {
    match body {
        b"F" => out.push(delimiters.field()),
        b"S" => out.push(delimiters.component()),
        b"R" => out.push(delimiters.repeat()),
        b"E" => out.push(escape),
        b".br" => out.push(b'\n'),
        [b'X', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_hexdigit) => {
            // An odd digit count is read as if left-padded with 0 (`&XD&` = 0x0D).
            let (head, rest) = digits.split_at(digits.len() % 2);
            if let [digit] = head {
                out.push(hex_value(*digit));
            }
            for pair in rest.chunks_exact(2) {
                out.push(hex_value(pair[0]) << 4 | hex_value(pair[1]));
            }
        }
        _ => return false,
    }
    true
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// True for bytes that must not appear in record text: E1381 restricted characters, CR (the record
/// terminator) and the other C0 controls except TAB.
pub(crate) fn needs_hex(byte: u8) -> bool {
    byte < 0x20 && byte != b'\t'
}

/// Appends `value` escaped for output; on failure returns the byte that cannot be written.
///
/// Delimiters become `&F&`, `&S&`, `&R&`, `&E&`; control bytes become `&Xhh&`. Everything else,
/// including bytes ≥ 0x80, is written as is.
pub fn escape_into(value: &[u8], delimiters: &Delimiters, out: &mut Vec<u8>) -> Result<(), u8> {
    let special = |b: u8| delimiters.contains(b) || needs_hex(b);
    let mut start = 0;
    for (i, &byte) in value.iter().enumerate() {
        if !special(byte) {
            continue;
        }
        let escape = delimiters.escape().ok_or(byte)?;
        out.extend_from_slice(&value[start..i]);
        out.push(escape);
        match byte {
            b if b == delimiters.field() => out.push(b'F'),
            b if b == delimiters.component() => out.push(b'S'),
            b if b == delimiters.repeat() => out.push(b'R'),
            b if b == escape => out.push(b'E'),
            b => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'X', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
            }
        }
        out.push(escape);
        start = i + 1;
    }
    out.extend_from_slice(&value[start..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(text: &str) -> Vec<u8> {
        unescape(text.as_bytes(), &Delimiters::STANDARD).into_owned()
    }

    /// Literal escape characters decode nothing, so the value is borrowed, as documented;
    /// it was copied whenever it held an escape character at all.
    #[test]
    fn a_value_with_only_literal_escape_characters_is_borrowed() {
        let d = Delimiters::STANDARD;
        for literal in [&b"R&D"[..], b"Parker & Sons & co", b"a&Z&b", b"&"] {
            let out = unescape(literal, &d);
            assert!(matches!(out, Cow::Borrowed(_)), "{literal:?}");
            assert_eq!(&*out, literal);
        }
        let dropped = unescape_with(b"a&Z&b", &d, UnknownEscape::Drop);
        assert!(matches!(&dropped, Cow::Owned(v) if v == b"ab"));
        assert!(matches!(unescape(b"R&E&D", &d), Cow::Owned(v) if v == b"R&D"));
    }

    #[test]
    fn standard_sequences() {
        assert_eq!(
            un("Parker &E& Sons &F& x &S& y &R& z"),
            b"Parker & Sons | x ^ y \\ z"
        );
        assert_eq!(un("a&X0D0A&b"), b"a\r\nb");
        assert_eq!(un("a&XD&&XA&b"), b"a\r\nb");
        assert_eq!(un("&Xc9&"), b"\xC9");
        assert_eq!(un("&XABC&"), b"\x0A\xBC");
        assert_eq!(un("line&.br&two"), b"line\ntwo");
    }

    #[test]
    fn lenient_forms_are_kept() {
        assert_eq!(un("Parker & Sons &F& x"), b"Parker & Sons | x");
        assert_eq!(un("trailing &"), b"trailing &");
        assert_eq!(un("&Z&"), b"&Z&");
        assert_eq!(un("&&"), b"&&");
        assert_eq!(un("&XZZ&"), b"&XZZ&");
        let drop = |s: &str| {
            unescape_with(s.as_bytes(), &Delimiters::STANDARD, UnknownEscape::Drop).into_owned()
        };
        assert_eq!(drop("a&Z&b&F&"), b"ab|");
        assert_eq!(drop("a&.sp&b&C1B&c"), b"abc");
        // Text between two literal escape characters is not a sequence.
        assert_eq!(drop("R&D and A&E"), b"R&D and A&E");
        assert_eq!(drop("Parker & Sons &F& x"), b"Parker & Sons | x");
        assert_eq!(drop("&&"), b"&&");
    }

    #[test]
    fn borrows_when_clean() {
        assert!(matches!(
            unescape(b"plain", &Delimiters::STANDARD),
            Cow::Borrowed(_)
        ));
        let no_escape = Delimiters::new(b'|', b'\\', b'^', None).unwrap();
        assert!(matches!(
            unescape(b"a&F&", &no_escape),
            Cow::Borrowed(b"a&F&")
        ));
    }

    #[test]
    fn escape_round_trip() {
        let value = b"a|b^c\\d&e\r\x02f\xC9";
        let mut out = Vec::new();
        escape_into(value, &Delimiters::STANDARD, &mut out).unwrap();
        assert_eq!(out, b"a&F&b&S&c&R&d&E&e&X0D&&X02&f\xC9");
        assert_eq!(&*unescape(&out, &Delimiters::STANDARD), value);
        let no_escape = Delimiters::new(b'|', b'\\', b'^', None).unwrap();
        assert_eq!(escape_into(b"a^b", &no_escape, &mut Vec::new()), Err(b'^'));
        assert_eq!(escape_into(b"a&b", &no_escape, &mut out), Ok(()));
    }
}
