//! The frame checksum (§6.3.3): the byte sum of FN, the text and ETB/ETX, modulo 256, sent as two
//! upper-case hexadecimal digits.
//!
//! The sum is over the bytes on the wire. Summing decoded text instead (Unicode code points, or
//! UTF-8 replacement characters) is the bug behind OpenELIS-Global-2 PR #4143.

/// The low 8 bits of the sum of `bytes`.
#[inline]
#[must_use]
pub fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

/// The checksum of a frame body: `fn_byte` (if the frame is numbered), `text` and the terminator.
#[inline]
#[must_use]
pub fn checksum(fn_byte: Option<u8>, text: &[u8], terminator: u8) -> u8 {
    sum(text)
        .wrapping_add(fn_byte.unwrap_or(0))
        .wrapping_add(terminator)
}

/// A checksum as the two upper-case hex digits sent on the wire (`122` gives `*b"7A"`).
#[inline]
#[must_use]
pub const fn to_hex(checksum: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    [
        DIGITS[(checksum >> 4) as usize],
        DIGITS[(checksum & 0x0F) as usize],
    ]
}

/// How two received checksum characters read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexDigits {
    /// Two upper-case hex digits (`0-9`, `A-F`), as the standard requires.
    Upper(u8),
    /// Valid hex with at least one lower-case letter: not standard, accepted only when lenient.
    Lower(u8),
    /// Not two hex digits.
    Invalid,
}

/// Reads the two checksum characters `c1 c2`.
#[inline]
#[must_use]
pub const fn parse_hex(c1: u8, c2: u8) -> HexDigits {
    const fn digit(c: u8) -> Option<(u8, bool)> {
        match c {
            b'0'..=b'9' => Some((c - b'0', false)),
            b'A'..=b'F' => Some((c - b'A' + 10, false)),
            b'a'..=b'f' => Some((c - b'a' + 10, true)),
            _ => None,
        }
    }
    match (digit(c1), digit(c2)) {
        (Some((hi, lower_hi)), Some((lo, lower_lo))) => {
            let value = (hi << 4) | lo;
            if lower_hi || lower_lo {
                HexDigits::Lower(value)
            } else {
                HexDigits::Upper(value)
            }
        }
        _ => HexDigits::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_example() {
        // §6.3.3: a sum of 122 is sent as "7A".
        assert_eq!(to_hex(122), *b"7A");
        assert_eq!(to_hex(0), *b"00");
        assert_eq!(to_hex(0x0F), *b"0F");
        assert_eq!(to_hex(0xFF), *b"FF");
    }

    #[test]
    fn checksum_of_python_astm_vector() {
        // "1A|B|C|D<CR><ETX>" -> BF
        assert_eq!(checksum(Some(b'1'), b"A|B|C|D\r", 0x03), 0xBF);
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex(b'B', b'F'), HexDigits::Upper(0xBF));
        assert_eq!(parse_hex(b'b', b'F'), HexDigits::Lower(0xBF));
        assert_eq!(parse_hex(b'G', b'0'), HexDigits::Invalid);
        for v in 0..=255u8 {
            let [a, b] = to_hex(v);
            assert_eq!(parse_hex(a, b), HexDigits::Upper(v));
        }
    }
}
