//! The four E1394 delimiters, declared by each header record.

use crate::error::DelimiterError;

/// Field, repeat, component and escape delimiters (E1394 §7.1.2, LIS2-A2 H.2).
///
/// Each message declares them in its header: `H`, then the field delimiter, then repeat, component and
/// escape. `|\^&` is the recommended set; real instruments use others (`|\!~`, `` |`^& ``, `|@^\`), and
/// some headers declare no escape character at all (`H|\^|`), which is why [`escape`](Self::escape) is
/// an [`Option`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    field: u8,
    repeat: u8,
    component: u8,
    escape: Option<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Self::STANDARD
    }
}

impl Delimiters {
    /// The recommended set `|\^&`.
    pub const STANDARD: Self = Self {
        field: b'|',
        repeat: b'\\',
        component: b'^',
        escape: Some(b'&'),
    };

    /// Builds a delimiter set, checking that the bytes are distinct and usable.
    ///
    /// Letters, digits, CR and LF are refused, and so are the LIS1-A restricted characters (SOH, STX,
    /// ETX, EOT, ENQ, ACK, DLE, NAK, SYN, ETB, DC1–DC4; LIS1-A §6.6): they cannot appear in message
    /// text, so no record using them could be sent. TAB and space are allowed.
    pub fn new(
        field: u8,
        repeat: u8,
        component: u8,
        escape: Option<u8>,
    ) -> Result<Self, DelimiterError> {
        let all = [Some(field), Some(repeat), Some(component), escape];
        for (i, byte) in all.iter().enumerate() {
            let Some(byte) = *byte else { continue };
            check(byte)?;
            if all[..i].contains(&Some(byte)) {
                return Err(DelimiterError::Duplicate { byte });
            }
        }
        Ok(Self {
            field,
            repeat,
            component,
            escape,
        })
    }

    /// Reads the delimiters a header record declares.
    ///
    /// `header` is the record without its terminator, starting with `H` (or `h`). The field delimiter is
    /// the byte after `H`; repeat, component and (optional) escape are the first distinct bytes of H.2.
    /// A doubled byte is read once when the set is complete without it: `H|\\^&`, seen in exports
    /// that wrote an escaped backslash verbatim, declares `|\^&`. Any other repeated byte
    /// (`H|^^&`, `H|\^\&`) is [`DelimiterError::Duplicate`]: read once, it would shift the
    /// delimiters after it into the wrong roles. Bytes of H.2 beyond the fourth delimiter are
    /// ignored.
    pub fn from_header(header: &[u8]) -> Result<Self, DelimiterError> {
        if header.len() < 2 || !header[0].eq_ignore_ascii_case(&b'H') {
            return Err(DelimiterError::HeaderTooShort);
        }
        let field = header[1];
        check(field)?;
        let definition = definition_of(header, field);
        let mut found = [0u8; 3];
        let mut count = 0;
        let mut doubled = None;
        let mut previous = None;
        for &byte in definition {
            if count == 3 {
                break;
            }
            if byte == field {
                continue;
            }
            if found[..count].contains(&byte) {
                if previous != Some(byte) || doubled.is_some() {
                    return Err(DelimiterError::Duplicate { byte });
                }
                doubled = Some(byte);
            } else {
                found[count] = byte;
                count += 1;
            }
            previous = Some(byte);
        }
        if let Some(byte) = doubled.filter(|_| count < 3) {
            return Err(DelimiterError::Duplicate { byte });
        }
        if count < 2 {
            return Err(DelimiterError::TooFewDelimiters { found: count });
        }
        let escape = (count == 3).then_some(found[2]);
        Self::new(field, found[0], found[1], escape)
    }

    /// The field delimiter (`|` in the standard set).
    pub const fn field(&self) -> u8 {
        self.field
    }

    /// The repeat delimiter (`\` in the standard set).
    pub const fn repeat(&self) -> u8 {
        self.repeat
    }

    /// The component delimiter (`^` in the standard set).
    pub const fn component(&self) -> u8 {
        self.component
    }

    /// The escape character (`&` in the standard set), if the header declared one.
    pub const fn escape(&self) -> Option<u8> {
        self.escape
    }

    /// The H.2 text this set is written as: repeat, component and escape (if any).
    pub fn definition(&self) -> Vec<u8> {
        let mut out = vec![self.repeat, self.component];
        out.extend(self.escape);
        out
    }

    /// True when every delimiter is a 7-bit ASCII byte.
    ///
    /// A non-ASCII delimiter usually means a multi-byte character was used: Sysmex documents show `¥`
    /// where the wire carries `\` (0x5C in Japanese code pages). See [`yen_to_backslash`].
    ///
    /// [`yen_to_backslash`]: crate::yen_to_backslash
    pub fn is_ascii(&self) -> bool {
        [self.field, self.repeat, self.component]
            .iter()
            .chain(self.escape.as_ref())
            .all(u8::is_ascii)
    }

    /// True when two delimiters next to each other in the header are both non-ASCII: most
    /// likely the bytes of one multi-byte character (a `¥` typed where the wire carries `\`,
    /// `C2 A5` in UTF-8) rather than delimiters a sender chose. One non-ASCII delimiter among
    /// ASCII ones is a legal single-byte (Latin-1) choice, which
    /// [`MessageBuilder`](crate::MessageBuilder) may write.
    pub fn looks_multi_byte(&self) -> bool {
        let mut order = vec![self.field, self.repeat, self.component];
        order.extend(self.escape);
        order
            .windows(2)
            .any(|pair| !pair[0].is_ascii() && !pair[1].is_ascii())
    }

    /// True when `byte` is one of the four delimiters.
    pub fn contains(&self, byte: u8) -> bool {
        byte == self.field
            || byte == self.repeat
            || byte == self.component
            || Some(byte) == self.escape
    }
}

/// The raw H.2 bytes of a header: from after the field delimiter to the next one.
pub(crate) fn definition_of(header: &[u8], field: u8) -> &[u8] {
    let rest = header.get(2..).unwrap_or_default();
    match memchr::memchr(field, rest) {
        Some(end) => &rest[..end],
        None => rest,
    }
}

fn check(byte: u8) -> Result<(), DelimiterError> {
    if byte.is_ascii_alphanumeric() || byte == b'\r' || byte == b'\n' {
        return Err(DelimiterError::NotAllowed { byte });
    }
    if let Some(name) = restricted_name(byte) {
        return Err(DelimiterError::Restricted { byte, name });
    }
    Ok(())
}

/// The name of a LIS1-A §6.6 restricted character other than LF (which the record splitter already
/// treats as a terminator), or `None` for any other byte.
pub(crate) fn restricted_name(byte: u8) -> Option<&'static str> {
    Some(match byte {
        0x01 => "SOH",
        0x02 => "STX",
        0x03 => "ETX",
        0x04 => "EOT",
        0x05 => "ENQ",
        0x06 => "ACK",
        0x10 => "DLE",
        0x11 => "DC1",
        0x12 => "DC2",
        0x13 => "DC3",
        0x14 => "DC4",
        0x15 => "NAK",
        0x16 => "SYN",
        0x17 => "ETB",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_header_sets() {
        let cases: &[(&[u8], Delimiters)] = &[
            (b"H|\\^&|||x", Delimiters::STANDARD),
            (
                b"H|\\!~|||",
                Delimiters::new(b'|', b'\\', b'!', Some(b'~')).unwrap(),
            ),
            (
                b"H|@^\\|URM",
                Delimiters::new(b'|', b'@', b'^', Some(b'\\')).unwrap(),
            ),
            (
                b"H|`^&|||",
                Delimiters::new(b'|', b'`', b'^', Some(b'&')).unwrap(),
            ),
            (
                b"H|\\^||PASS",
                Delimiters::new(b'|', b'\\', b'^', None).unwrap(),
            ),
            (b"H|\\\\^&|||H550", Delimiters::STANDARD),
            (b"h|\\^&", Delimiters::STANDARD),
        ];
        for (header, expected) in cases {
            assert_eq!(
                Delimiters::from_header(header).as_ref(),
                Ok(expected),
                "{header:?}"
            );
        }
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            Delimiters::from_header(b"H"),
            Err(DelimiterError::HeaderTooShort)
        );
        assert_eq!(
            Delimiters::from_header(b"P|1"),
            Err(DelimiterError::HeaderTooShort)
        );
        assert_eq!(
            Delimiters::from_header(b"H||"),
            Err(DelimiterError::TooFewDelimiters { found: 0 })
        );
        assert_eq!(
            Delimiters::from_header(b"H|^"),
            Err(DelimiterError::TooFewDelimiters { found: 1 })
        );
        // Read once, the repeated `^` shifted `&` to component and left no escape: `^^^TSH`
        // became four repeats and the test code was lost without a word.
        for (header, byte) in [
            (&b"H|^^&"[..], b'^'),
            (b"H|^^|", b'^'),
            (b"H|\\^\\&", b'\\'),
            (b"H|\\^\\", b'\\'),
            (b"H|\\\\^^&", b'^'),
        ] {
            assert_eq!(
                Delimiters::from_header(header),
                Err(DelimiterError::Duplicate { byte }),
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
        assert_eq!(
            Delimiters::from_header(b"HA^&"),
            Err(DelimiterError::NotAllowed { byte: b'A' })
        );
        assert_eq!(
            Delimiters::from_header(b"H|\\x&"),
            Err(DelimiterError::NotAllowed { byte: b'x' })
        );
        assert_eq!(
            Delimiters::new(b'|', b'^', b'^', None),
            Err(DelimiterError::Duplicate { byte: b'^' })
        );
    }

    #[test]
    fn link_layer_restricted_characters_are_refused_as_delimiters() {
        for byte in [
            0x01u8, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
        ] {
            let err = Delimiters::new(b'|', byte, b'^', Some(b'&')).unwrap_err();
            assert!(
                matches!(err, DelimiterError::Restricted { byte: b, .. } if b == byte),
                "{err:?}"
            );
            assert!(Delimiters::new(b'|', b'\\', b'^', Some(byte)).is_err());
            assert!(Delimiters::from_header(&[b'H', byte, b'\\', b'^', b'&']).is_err());
            assert!(Delimiters::from_header(&[b'H', b'|', b'\\', byte, b'&']).is_err());
        }
        let err = Delimiters::from_header(b"H|\x02^&").unwrap_err();
        assert_eq!(
            err.to_string(),
            "byte 0x02 (STX) cannot be a delimiter: it is a LIS1-A restricted character, which cannot appear in message text"
        );
        assert_eq!(
            Delimiters::new(b'|', 0x17, b'^', Some(b'&')),
            Err(DelimiterError::Restricted {
                byte: 0x17,
                name: "ETB"
            })
        );
        // Other controls, TAB and space stay usable.
        assert!(Delimiters::new(b'\t', b' ', 0x07, Some(0x1F)).is_ok());
        assert!(Delimiters::from_header(b"H\t \x07\x1F").is_ok());
    }

    #[test]
    fn yen_header_is_flagged_not_ascii() {
        let delims = Delimiters::from_header("H|¥^&|||".as_bytes()).unwrap();
        assert!(!delims.is_ascii());
        assert!(delims.looks_multi_byte());
        assert!(Delimiters::STANDARD.is_ascii());
        assert!(!Delimiters::STANDARD.looks_multi_byte());
        assert_eq!(Delimiters::STANDARD.definition(), b"\\^&");
    }

    /// One Latin-1 delimiter among ASCII ones is a sender's choice, not a broken character:
    /// a message built with it passes the strict parse (it was refused as non-ASCII).
    #[test]
    fn a_single_latin1_delimiter_is_not_taken_for_a_multi_byte_character() {
        let section = Delimiters::new(b'|', 0xA7, b'^', Some(b'&')).unwrap();
        assert!(!section.looks_multi_byte());
        let text = crate::MessageBuilder::with_delimiters(section, crate::HeaderBuilder::new())
            .push(crate::PatientBuilder::new().laboratory_patient_id("P1"))
            .build()
            .unwrap();
        assert!(crate::Message::parse_strict(&text).is_ok());
        // Two in a row, as the two bytes of a UTF-8 character, are reported.
        let two = Delimiters::new(b'|', 0xC2, 0xA5, Some(b'&')).unwrap();
        assert!(two.looks_multi_byte());
    }
}
