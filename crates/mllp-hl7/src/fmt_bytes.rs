//! `Debug` helpers that show borrowed HL7 / MLLP bytes as escaped text instead of a list
//! of numbers.

use std::fmt::{self, Write};

/// Formats bytes as a quoted, escaped string: UTF-8 text as `str`'s `Debug` writes it
/// (`\r`, `\n`, `\t`, `\\`, `\"`), ASCII control bytes other than those three and bytes
/// that are not UTF-8 as `\xNN`: `"PID|1\r\x0B\xFF"`.
#[derive(Clone, Copy)]
pub(crate) struct Escaped<'b>(pub(crate) &'b [u8]);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    // As `str`'s `Debug`: a single quote needs no escape in a string.
                    '\'' => f.write_char(c)?,
                    '\t' | '\n' | '\r' => write!(f, "{}", c.escape_debug())?,
                    // VT and FS (the MLLP blocks) read better as `\x0B` than `\u{b}`.
                    c if c.is_ascii_control() => write!(f, "\\x{:02X}", u32::from(c))?,
                    c => write!(f, "{}", c.escape_debug())?,
                }
            }
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02X}")?;
            }
        }
        f.write_char('"')
    }
}

/// Formats a list of byte strings as a list of [`Escaped`] strings.
#[derive(Clone, Copy)]
pub(crate) struct EscapedList<'s, 'b>(pub(crate) &'s [&'b [u8]]);

impl fmt::Debug for EscapedList<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|bytes| Escaped(bytes)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;
    use crate::{Delimiters, Message, MllpConfig, MllpDecoder, Path, Segment};

    fn escaped(bytes: &[u8]) -> String {
        format!("{:?}", Escaped(bytes))
    }

    #[test]
    fn text_is_written_as_str_debug_writes_it() {
        for text in [
            "",
            "PID|1||12345^^^HOSP^MR",
            "MSH|^~\\&|A\rPID|1\n\t\"q\" 'a'",
            "Müller",
        ] {
            assert_eq!(escaped(text.as_bytes()), format!("{text:?}"));
        }
    }

    #[test]
    fn control_and_non_utf8_bytes_are_hex_escaped() {
        assert_eq!(escaped(b"\x0bMSH|A\x1c\r"), r#""\x0BMSH|A\x1C\r""#);
        assert_eq!(escaped(b"\x00\x7f"), r#""\x00\x7F""#);
        assert_eq!(escaped(b"M\xfcller \xc3"), r#""M\xFCller \xC3""#);
        // A valid character after an invalid byte is still text.
        assert_eq!(escaped(b"\xff\xc3\xa9"), r#""\xFFé""#);
    }

    /// A Latin-1 `ü` (not UTF-8), UTF-8 `é` and `ô`, and an LF inside a field (data, as
    /// the reader keeps it).
    const ORU: &[u8] = b"MSH|^~\\&|LAB||LIS||20240101||ORU^R01^ORU_R01|42|P|2.5.1\r\
        PID|1||12345^^^HOSP^MR||M\xfcller^J\xc3\xa9r\xc3\xb4me\r\
        OBX|1|TX|||line 1\nline 2\r";

    #[test]
    fn segment_value_and_message_type_show_escaped_text() {
        let message = Message::parse(ORU).unwrap();
        let pid = message.segment(b"PID").unwrap();
        assert_eq!(
            format!("{pid:?}"),
            r#"Segment("PID|1||12345^^^HOSP^MR||M\xFCller^Jérôme")"#
        );
        let name = pid.field(5).unwrap();
        assert_eq!(format!("{name:?}"), r#"Value("M\xFCller^Jérôme")"#);
        let family = name.component(1).unwrap();
        assert_eq!(format!("{family:?}"), r#"Value("M\xFCller")"#);
        let obx5 = message.get("OBX-5").unwrap().unwrap();
        assert_eq!(format!("{obx5:?}"), r#"Value("line 1\nline 2")"#);
        assert_eq!(
            format!("{:?}", message.message_type()),
            r#"MessageType { code: "ORU", trigger: "R01", structure: "ORU_R01" }"#
        );
        // Parsed segments never hold a CR (it ends them); a segment's bytes that do show it
        // escaped.
        let segment = Segment::new(b"NTE|1||a\rb\xff", Delimiters::STANDARD);
        assert_eq!(format!("{segment:?}"), r#"Segment("NTE|1||a\rb\xFF")"#);
    }

    #[test]
    fn message_shows_its_type_control_id_and_segments() {
        let message = Message::parse(ORU).unwrap();
        assert_eq!(
            format!("{message:?}"),
            r#"Message { message_type: "ORU^R01^ORU_R01", control_id: "42", segments: ["MSH|^~\\&|LAB||LIS||20240101||ORU^R01^ORU_R01|42|P|2.5.1", "PID|1||12345^^^HOSP^MR||M\xFCller^Jérôme", "OBX|1|TX|||line 1\nline 2"] }"#
        );
        let batch = Message::parse(b"FHS|^~\\&\r\nBHS|^~\\&\r\n").unwrap();
        assert_eq!(
            format!("{batch:#?}"),
            r#"Message {
    message_type: "",
    control_id: "",
    segments: [
        "FHS|^~\\&",
        "BHS|^~\\&",
    ],
}"#
        );
    }

    #[test]
    fn delimiters_path_and_framing_config_show_characters() {
        assert_eq!(
            format!("{:?}", Delimiters::STANDARD),
            r"Delimiters { field: '|', component: '^', repetition: Some('~'), escape: Some('\\'), subcomponent: Some('&'), truncation: None }"
        );
        let path: Path = "PID(2)-5.1".parse().unwrap();
        assert_eq!(
            format!("{path:?}"),
            r#"Path { segment: "PID", occurrence: 2, field: Some(5), repetition: 1, component: Some(1), subcomponent: None }"#
        );
        let config = r#"MllpConfig { start_block: "\x0B", end_block: "\x1C", trailer: "\r", max_message_size: 8388608, lenient: false }"#;
        assert_eq!(format!("{:?}", MllpConfig::default()), config);
        assert_eq!(
            format!("{:?}", MllpDecoder::new()),
            format!(
                "MllpDecoder {{ config: {config}, state: Idle, scan_from: 0, pending_junk: 0, \
                 junk_offset: 0, trailer_pending: false, position: 0, frame_offset: 0, .. }}"
            )
        );
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn response_shows_the_message_as_text() {
        use crate::{CommitAck, Response};
        assert_eq!(
            format!(
                "{:?}",
                Response::Message(b"MSH|^~\\&|A\rMSA|AA|1\r".to_vec())
            ),
            r#"Message("MSH|^~\\&|A\rMSA|AA|1\r")"#
        );
        assert_eq!(
            format!("{:?}", Response::Commit(CommitAck::Ack)),
            "Commit(Ack)"
        );
    }
}
