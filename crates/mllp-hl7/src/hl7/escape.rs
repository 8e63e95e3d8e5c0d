//! HL7 escape sequences (`\F\ \S\ \T\ \R\ \E\ \P\ \Xhh..\`).

use std::borrow::Cow;

use super::Delimiters;

/// Replaces the escape sequences in `raw` with the bytes they stand for.
///
/// `\F\ \S\ \T\ \R\ \E\` become the declared field, component, subcomponent, repetition
/// and escape characters, `\P\` the truncation character (2.7+), `\Xhh..\` the bytes
/// given in hexadecimal. Everything else (`\H\ \N\`, `\.br\` and the other formatting
/// commands, `\Z..\`, `\C..\`, `\M..\`, a malformed or unterminated sequence) is kept
/// verbatim, so nothing is lost. Borrows when there is nothing to replace.
///
/// ```
/// use mllp_hl7::{Delimiters, unescape};
///
/// let out = unescape(b"CBC \\T\\ Auto \\X41\\", &Delimiters::STANDARD);
/// assert_eq!(&out[..], b"CBC & Auto A");
/// ```
#[must_use]
pub fn unescape<'a>(raw: &'a [u8], delimiters: &Delimiters) -> Cow<'a, [u8]> {
    let Some(escape) = delimiters.escape() else {
        return Cow::Borrowed(raw);
    };
    let Some(first) = memchr::memchr(escape, raw) else {
        return Cow::Borrowed(raw);
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut at = first;
    while at < raw.len() {
        let Some(close) = memchr::memchr(escape, &raw[at + 1..]).map(|i| at + 1 + i) else {
            out.extend_from_slice(&raw[at..]);
            break;
        };
        let sequence = &raw[at + 1..close];
        let single = match sequence {
            b"F" => Some(delimiters.field()),
            b"S" => Some(delimiters.component()),
            b"T" => delimiters.subcomponent(),
            b"R" => delimiters.repetition(),
            b"E" => Some(escape),
            b"P" => delimiters.truncation(),
            _ => None,
        };
        if let Some(byte) = single {
            out.push(byte);
        } else if !decode_hex(sequence, &mut out) {
            out.extend_from_slice(&raw[at..=close]);
        }
        let next = close + 1;
        match memchr::memchr(escape, &raw[next..]) {
            Some(i) => {
                out.extend_from_slice(&raw[next..next + i]);
                at = next + i;
            }
            None => {
                out.extend_from_slice(&raw[next..]);
                break;
            }
        }
    }
    Cow::Owned(out)
}

/// Appends the bytes of an `Xhh..` sequence; false (nothing appended) if it is not one.
fn decode_hex(sequence: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(hex) = sequence.strip_prefix(b"X") else {
        return false;
    };
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    out.extend(
        hex.chunks_exact(2)
            .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1])),
    );
    true
}

fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit.wrapping_sub(b'A').wrapping_add(10),
    }
}

/// Escapes `data` so it can stand in a field: delimiters become `\F\ \S\ \T\ \R\ \E\ \P\`,
/// CR and LF become `\X0D\` and `\X0A\`, and the MLLP framing bytes VT and FS `\X0B\` and
/// `\X1C\` (raw, they could keep the message from being framed). Borrows when nothing needs
/// escaping, and when the message declares no escape character (then nothing can be escaped).
///
/// `unescape(escape(x)) == x` for any bytes.
///
/// ```
/// use mllp_hl7::{Delimiters, escape};
///
/// assert_eq!(&escape(b"A|B^C", &Delimiters::STANDARD)[..], b"A\\F\\B\\S\\C");
/// assert_eq!(&escape(b"A\x1c\r", &Delimiters::STANDARD)[..], b"A\\X1C\\\\X0D\\");
/// ```
#[must_use]
pub fn escape<'a>(data: &'a [u8], delimiters: &Delimiters) -> Cow<'a, [u8]> {
    let Some(escape) = delimiters.escape() else {
        return Cow::Borrowed(data);
    };
    let code = |byte: u8| -> Option<&'static [u8]> {
        if byte == delimiters.field() {
            Some(b"F")
        } else if byte == delimiters.component() {
            Some(b"S")
        } else if Some(byte) == delimiters.subcomponent() {
            Some(b"T")
        } else if Some(byte) == delimiters.repetition() {
            Some(b"R")
        } else if byte == escape {
            Some(b"E")
        } else if Some(byte) == delimiters.truncation() {
            Some(b"P")
        } else if byte == b'\r' {
            Some(b"X0D")
        } else if byte == b'\n' {
            Some(b"X0A")
        } else if byte == crate::mllp::START_BLOCK {
            Some(b"X0B")
        } else if byte == crate::mllp::END_BLOCK {
            Some(b"X1C")
        } else {
            None
        }
    };
    let Some(first) = data.iter().position(|&b| code(b).is_some()) else {
        return Cow::Borrowed(data);
    };
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&data[..first]);
    for &byte in &data[first..] {
        match code(byte) {
            Some(sequence) => {
                out.push(escape);
                out.extend_from_slice(sequence);
                out.push(escape);
            }
            None => out.push(byte),
        }
    }
    Cow::Owned(out)
}
