//! The HL7 v2 reader on the shared samples and on edge cases.

use std::borrow::Cow;

use mllp_hl7::{
    AckCondition, Charset, Delimiters, Message, ParseError, Path, PathError, TextError, Version,
    escape, split_messages, unescape,
};
use proptest::prelude::*;

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text<'a>(value: Option<mllp_hl7::Value<'a>>) -> &'a str {
    value.and_then(|v| v.as_str()).unwrap_or("<absent>")
}

/// name, segments, MSH-3, MSH-9 (code, trigger, structure), MSH-10, MSH-11, MSH-12
type Expected = (
    &'static str,
    usize,
    &'static str,
    [&'static str; 3],
    &'static str,
    &'static str,
    &'static str,
);

const SAMPLES: [Expected; 10] = [
    (
        "adt_a01_2.5_wikipedia.hl7",
        8,
        "MegaReg",
        ["ADT", "A01", "ADT_A01"],
        "01052901",
        "P",
        "2.5",
    ),
    (
        "adt_a04_2.4_hl7std_example.hl7",
        15,
        "ADT1",
        ["ADT", "A04", ""],
        "MSG00001",
        "P",
        "2.4",
    ),
    (
        "batch_fhs_bhs_adt_a04_2.5_vinah.hl7",
        10,
        "",
        ["ADT", "A04", "ADT_A01"],
        "12334456778890",
        "P",
        "2.5",
    ),
    (
        "orm_o01_2.3_epic_xray.hl7",
        7,
        "EPIC",
        ["ORM", "O01", ""],
        "497",
        "D",
        "2.3",
    ),
    (
        "oru_r01_2.3.1_mindray_bs200_glucose.hl7",
        4,
        "Mindray",
        ["ORU", "R01", ""],
        "1",
        "P",
        "2.3.1",
    ),
    (
        "oru_r01_2.3.1_mindray_bs200_qc.hl7",
        2,
        "Mindray",
        ["ORU", "R01", ""],
        "1",
        "P",
        "2.3.1",
    ),
    (
        "oru_r01_2.3_lab_hl7messageparser.hl7",
        21,
        "LAB",
        ["ORU", "R01", ""],
        "3216598",
        "D",
        "2.3",
    ),
    (
        "oru_r01_2.4_ghh_lab_glucose.hl7",
        5,
        "GHH LAB",
        ["ORU", "R01", ""],
        "CNTRL-3456",
        "P",
        "2.4",
    ),
    (
        "oru_r01_2.5.1_nist_elr_lead.hl7",
        7,
        "EHR Application^2.16.840.1.113883.3.72.7.1^HL7",
        ["ORU", "R01", "ORU_R01"],
        "NIST-100929110701660",
        "P",
        "2.5.1",
    ),
    (
        "oru_r01_2.5.1_synthetic_cbc_1k.hl7",
        13,
        "ANALYZER",
        ["ORU", "R01", "ORU_R01"],
        "MSG00001",
        "P",
        "2.5.1",
    ),
];

#[test]
fn every_sample_parses_with_the_expected_header() {
    for (name, segments, msh3, msh9, msh10, msh11, msh12) in SAMPLES {
        let raw = sample(name);
        let msg = Message::parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.segment_count(), segments, "{name}");
        assert_eq!(msg.sending_application().as_str(), Some(msh3), "{name}");
        let ty = msg.message_type();
        assert_eq!(
            [ty.code, ty.trigger, ty.structure],
            msh9.map(str::as_bytes),
            "{name}"
        );
        assert_eq!(msg.control_id().raw(), msh10.as_bytes(), "{name}");
        assert_eq!(msg.processing_id().raw(), msh11.as_bytes(), "{name}");
        assert_eq!(msg.version_id().raw(), msh12.as_bytes(), "{name}");
        assert_eq!(msg.delimiters(), Delimiters::STANDARD, "{name}");
        // Every segment id is three characters; every field can be read.
        for segment in msg.segments() {
            assert_eq!(
                segment.id().len(),
                3,
                "{name}: {:?}",
                String::from_utf8_lossy(segment.raw())
            );
            assert_eq!(segment.fields().count(), segment.field_count());
        }
    }
}

#[test]
fn msh_accessors_on_the_ghh_sample() {
    let raw = sample("oru_r01_2.4_ghh_lab_glucose.hl7");
    let msg = Message::parse(&raw).unwrap();
    assert_eq!(msg.sending_application().raw(), b"GHH LAB");
    assert_eq!(msg.sending_facility().raw(), b"ELAB-3");
    assert_eq!(msg.receiving_application().raw(), b"GHH OE");
    assert_eq!(msg.receiving_facility().raw(), b"BLDG4");
    assert_eq!(msg.timestamp().raw(), b"200202150930");
    assert_eq!(msg.security().raw(), b"");
    assert_eq!(msg.version(), Some(Version::new(2, 4, 0)));
    assert_eq!(msg.accept_ack_type(), None);
    assert_eq!(msg.application_ack_type(), None);
    assert_eq!(msg.charset(), Ok(Charset::Ascii));
    assert_eq!(text(msg.get("MSH-1").unwrap()), "|");
    assert_eq!(text(msg.get("MSH-2").unwrap()), "^~\\&");
    assert_eq!(
        text(msg.get("MSH-2.2").unwrap()),
        "<absent>",
        "MSH-2 is never split"
    );
    assert_eq!(text(msg.get("PID-5").unwrap()), "EVERYWOMAN^EVE^E^^^^L");
    assert_eq!(text(msg.get("PID-5.2").unwrap()), "EVE");
    assert_eq!(text(msg.get("OBX(2)-3.1").unwrap()), "1553-5");
    assert_eq!(text(msg.get("OBX[2]-2").unwrap()), "FN");
    assert_eq!(text(msg.get("OBX-5.2").unwrap()), "182");
    assert_eq!(
        text(msg.get("OBR-15.9").unwrap()),
        "LEVEL SEVEN HEALTHCARE, INC."
    );
    assert_eq!(text(msg.get("OBX(3)-1").unwrap()), "<absent>");
    assert_eq!(text(msg.get("PID-99").unwrap()), "<absent>");
    assert!(
        msg.get("PID")
            .unwrap()
            .unwrap()
            .raw()
            .starts_with(b"PID|||555-44-4444")
    );
}

#[test]
fn enhanced_mode_and_charset_fields() {
    let raw = sample("oru_r01_2.5.1_synthetic_cbc_1k.hl7");
    let msg = Message::parse(&raw).unwrap();
    assert_eq!(raw.len(), 1024);
    assert_eq!(msg.accept_ack_type(), Some(AckCondition::Always));
    assert_eq!(msg.application_ack_type(), Some(AckCondition::Never));
    assert_eq!(msg.charset_id().raw(), b"UNICODE UTF-8");
    assert_eq!(msg.charset(), Ok(Charset::Utf8));

    let raw = sample("oru_r01_2.3.1_mindray_bs200_glucose.hl7");
    let msg = Message::parse(&raw).unwrap();
    assert_eq!(msg.msh_field(16).raw(), b"0");
    assert_eq!(
        msg.application_ack_type(),
        None,
        "Mindray's 0 is not a table 0155 value"
    );
    assert_eq!(text(msg.get("OBX-3").unwrap()), "1");
    assert_eq!(text(msg.get("OBX-4").unwrap()), "GLU");
    assert_eq!(text(msg.get("OBX-5").unwrap()), "95.000000");
}

#[test]
fn lf_separated_files_and_a_raw_lf_inside_a_field() {
    let raw = sample("orm_o01_2.3_epic_xray.hl7");
    let msg = Message::parse(&raw).unwrap();
    let ids: Vec<&[u8]> = msg.segments().map(|s| s.id()).collect();
    assert_eq!(
        ids,
        [&b"MSH"[..], b"PID", b"PD1", b"PV1", b"ORC", b"OBR", b"DG1"]
    );
    // OBR-17 (order callback phone) carries the raw LF; it stays data.
    assert_eq!(text(msg.get("OBR-17").unwrap()), "(608)258-\n8866");
    assert_eq!(text(msg.get("OBR-25").unwrap()), "Final");
    assert_eq!(text(msg.get("DG1-3.2").unwrap()), "ANKLE FRACTURE");

    let raw = sample("adt_a04_2.4_hl7std_example.hl7");
    let msg = Message::parse(&raw).unwrap();
    assert_eq!(msg.segments_named(b"ROL").count(), 2);
    assert_eq!(text(msg.get("AL1(1)-5(2)").unwrap()), "RASH");
    assert_eq!(text(msg.get("PID-14(2)").unwrap()), "(919)277-3114");

    // CR LF works the same.
    let crlf = raw
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect::<Vec<u8>>();
    let msg = Message::parse(&crlf).unwrap();
    assert_eq!(msg.segment_count(), 15);
    assert_eq!(text(msg.get("IN2-2").unwrap()), "SSN12345678");
}

#[test]
fn escape_sequences_in_real_data() {
    let raw = sample("oru_r01_2.3_lab_hl7messageparser.hl7");
    let msg = Message::parse(&raw).unwrap();
    let obr4_5 = msg.get("OBR-4.5").unwrap().unwrap();
    assert_eq!(obr4_5.raw(), b"CBC \\T\\ Auto Differential");
    assert_eq!(&obr4_5.decoded()[..], b"CBC & Auto Differential");
    let units = msg.get("OBX-6").unwrap().unwrap();
    assert_eq!(units.text(Charset::Ascii).unwrap(), "10^9/L");
    assert!(matches!(
        msg.get("OBX(3)-6").unwrap().unwrap().decoded(),
        Cow::Borrowed(b"g/L")
    ));
}

#[test]
fn all_escape_kinds() {
    let d = Delimiters::STANDARD;
    let cases: [(&[u8], &[u8]); 9] = [
        (b"a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", b"a|b^c&d~e\\f"),
        (b"\\X0D0A\\", b"\r\n"),
        (b"\\xzz\\", b"\\xzz\\"),
        (b"\\X0\\", b"\\X0\\"),
        (b"\\H\\bold\\N\\", b"\\H\\bold\\N\\"),
        (b"line\\.br\\next", b"line\\.br\\next"),
        (b"unterminated \\F", b"unterminated \\F"),
        (b"\\Z99\\", b"\\Z99\\"),
        (b"plain", b"plain"),
    ];
    for (raw, want) in cases {
        assert_eq!(
            &unescape(raw, &d)[..],
            want,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(&escape(b"a|b\r\n", &d)[..], b"a\\F\\b\\X0D\\\\X0A\\");
}

#[test]
fn charsets_from_msh18_when_text_is_asked_for() {
    let raw = sample("adt_a01_2.5_wikipedia.hl7");
    let msg = Message::parse(&raw).unwrap();
    let street = msg.get("PID-11(2).1").unwrap().unwrap();
    // No MSH-18: ASCII, and the UTF-8 apostrophe is refused with where it is.
    assert_eq!(msg.charset(), Ok(Charset::Ascii));
    let error = street.text(msg.charset().unwrap()).unwrap_err();
    assert!(
        matches!(
            error,
            TextError::Invalid {
                at: 7,
                byte: 0xE2,
                ..
            }
        ),
        "{error}"
    );
    // A per-connection default says what the sender really uses.
    let utf8 = msg.charset_or(Charset::Utf8).unwrap();
    assert_eq!(street.text(utf8).unwrap(), "NICKELL\u{2019}S PICKLES");

    let latin = b"MSH|^~\\&|A||B||1||ADT^A01|1|P|2.5||||||8859/1\rPID|1||||M\xfcller";
    let msg = Message::parse(latin).unwrap();
    assert_eq!(msg.charset(), Ok(Charset::Latin1));
    assert_eq!(
        msg.get("PID-5")
            .unwrap()
            .unwrap()
            .text(msg.charset().unwrap())
            .unwrap(),
        "Müller"
    );
    let euro =
        Message::parse(b"MSH|^~\\&|||||||ADT^A01|1|P|2.5||||||8859/15\rNTE|1||\xa4").unwrap();
    assert_eq!(
        euro.get("NTE-3")
            .unwrap()
            .unwrap()
            .text(euro.charset().unwrap())
            .unwrap(),
        "€"
    );
    let iso_ir87 = Message::parse(b"MSH|^~\\&|||||||ADT^A01|1|P|2.5||||||ISO IR87").unwrap();
    assert!(matches!(
        iso_ir87.charset(),
        Err(TextError::Unsupported { .. })
    ));
}

#[test]
fn batches_parse_and_split() {
    let raw = sample("batch_fhs_bhs_adt_a04_2.5_vinah.hl7");
    let batch = Message::parse(&raw).unwrap();
    assert_eq!(batch.segments().next().unwrap().id(), b"FHS");
    assert_eq!(
        batch.control_id().raw(),
        b"12334456778890",
        "header accessors read the first MSH"
    );
    assert_eq!(batch.accept_ack_type(), Some(AckCondition::Never));
    assert_eq!(batch.application_ack_type(), Some(AckCondition::Never));
    assert_eq!(batch.charset(), Ok(Charset::Ascii));
    let messages: Vec<&[u8]> = split_messages(&raw).collect();
    assert_eq!(messages.len(), 1);
    let inner = Message::parse(messages[0]).unwrap();
    assert_eq!(inner.segment_count(), 6);
    assert_eq!(inner.segments().last().unwrap().id(), b"PV1");
}

#[test]
fn unusual_delimiters_are_read_from_the_header() {
    let msg = Message::parse(b"MSH#$*!@#A#B\rPID#1##x$y*z!T!z@u").unwrap();
    let d = msg.delimiters();
    assert_eq!(
        (
            d.field(),
            d.component(),
            d.repetition(),
            d.escape(),
            d.subcomponent()
        ),
        (b'#', b'$', Some(b'*'), Some(b'!'), Some(b'@'))
    );
    assert_eq!(text(msg.get("MSH-3").unwrap()), "A");
    assert_eq!(text(msg.get("PID-3.2").unwrap()), "y");
    assert_eq!(text(msg.get("PID-3(2)").unwrap()), "z!T!z@u");
    assert_eq!(
        &msg.get("PID-3(2)").unwrap().unwrap().decoded()[..],
        b"z@z@u"
    );
    // HL7 2.7 truncation character.
    let v27 = Message::parse(b"MSH|^~\\&#|A\rNTE|1||long\\P\\").unwrap();
    assert_eq!(v27.delimiters().truncation(), Some(b'#'));
    assert_eq!(v27.delimiters().encoding_characters(), b"^~\\&#");
    assert_eq!(&v27.get("NTE-3").unwrap().unwrap().decoded()[..], b"long#");
    // Only a component separator declared: nothing else splits.
    let short = Message::parse(b"MSH|^|A\rPID|1||a~b&c^d").unwrap();
    assert_eq!(text(short.get("PID-3.1").unwrap()), "a~b&c");
}

/// A file saved by a Windows editor starts with a UTF-8 byte-order mark; the message
/// was refused as having no header.
#[test]
fn a_byte_order_mark_before_the_header_is_skipped() {
    let raw = b"\xEF\xBB\xBFMSH|^~\\&|LAB|FAC|LIS|HOSP|20240101||ORU^R01|M1|P|2.5.1\rPID|1||42\r";
    let message = Message::parse(raw).unwrap();
    assert_eq!(message.control_id().raw(), b"M1");
    assert_eq!(text(message.get("PID-3").unwrap()), "42");
    assert_eq!(message.raw(), raw, "the bytes parsed are the bytes given");
    assert_eq!(
        Message::parse(b"\xEF\xBB\xBF").unwrap_err(),
        ParseError::Empty
    );
}

#[test]
fn bad_messages_get_clear_errors() {
    assert_eq!(Message::parse(b"").unwrap_err(), ParseError::Empty);
    assert_eq!(Message::parse(b"\r\n\r").unwrap_err(), ParseError::Empty);
    assert!(
        matches!(Message::parse(b"PID|1").unwrap_err(), ParseError::MissingHeader { found } if found == "PID|1")
    );
    assert!(matches!(
        Message::parse(b"MSH").unwrap_err(),
        ParseError::TruncatedHeader { .. }
    ));
    assert!(matches!(
        Message::parse(b"MSH||").unwrap_err(),
        ParseError::TruncatedHeader { .. }
    ));
    let error = Message::parse(b"MSHA^~\\&").unwrap_err();
    assert!(
        matches!(
            error,
            ParseError::InvalidDelimiter {
                byte: b'A',
                position: 3,
                ..
            }
        ),
        "{error}"
    );
    let error = Message::parse(b"MSH|^^\\&|").unwrap_err();
    assert!(
        matches!(
            error,
            ParseError::InvalidDelimiter {
                byte: b'^',
                position: 5,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("hl7: invalid delimiter 0x5e at header position 5")
    );
}

#[test]
fn paths_parse_and_refuse_nonsense() {
    let path: Path = "OBX(2)-5(3).1.2".parse().unwrap();
    assert_eq!(
        (
            path.occurrence,
            path.field,
            path.repetition,
            path.component,
            path.subcomponent
        ),
        (2, Some(5), 3, Some(1), Some(2))
    );
    assert_eq!(path.to_string(), "OBX(2)-5(3).1.2");
    assert!(matches!(
        "P1".parse::<Path>(),
        Err(PathError::BadSegment { .. })
    ));
    assert!(matches!(
        "PID-0".parse::<Path>(),
        Err(PathError::BadNumber { what: "field", .. })
    ));
    assert!(matches!(
        "PID-x".parse::<Path>(),
        Err(PathError::BadNumber { .. })
    ));
    assert!(matches!(
        "PID-3.".parse::<Path>(),
        Err(PathError::BadNumber {
            what: "component",
            ..
        })
    ));
    assert!(matches!(
        "PID-3(2".parse::<Path>(),
        Err(PathError::Syntax { .. })
    ));
    assert!(matches!(
        "PID-3 ".parse::<Path>(),
        Err(PathError::Syntax { .. })
    ));
    assert!(matches!(
        "PI€-3".parse::<Path>(),
        Err(PathError::BadSegment { .. })
    ));
    // A lower-case id is refused, not left to find nothing as if the field were absent.
    let lower = "obx-5".parse::<Path>().unwrap_err();
    assert_eq!(
        lower.to_string(),
        "hl7 path \"obx-5\": the segment id must be 3 upper-case letters or digits (OBX, not obx)"
    );
    let message = Message::parse(b"MSH|^~\\&|A\rOBX|1|NM|GLU||95\r").unwrap();
    assert!(message.get("obx-5").is_err());
    assert_eq!(
        message.get("OBX-5").unwrap().map(|v| v.raw().to_vec()),
        Some(b"95".to_vec())
    );
    assert!("Z01-1".parse::<Path>().is_ok());
}

#[test]
fn versions_2_1_to_2_8_are_read() {
    for (text, want) in [
        ("2.1", (2, 1, 0)),
        ("2.3.1", (2, 3, 1)),
        ("2.8", (2, 8, 0)),
        ("2.5.1^HL7", (2, 5, 1)),
    ] {
        let raw = format!("MSH|^~\\&|A||B||1||ORU^R01|1|P|{text}");
        let msg = Message::parse(raw.as_bytes()).unwrap();
        assert_eq!(
            msg.version(),
            Some(Version::new(want.0, want.1, want.2)),
            "{text}"
        );
    }
    assert_eq!(Version::parse(b"two"), None);
    assert_eq!(Version::new(2, 3, 1).to_string(), "2.3.1");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn escaping_round_trips(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let d = Delimiters::STANDARD;
        let escaped = escape(&data, &d);
        // An escaped value contains no delimiter and no CR/LF outside escape sequences.
        prop_assert!(!escaped.iter().any(|b| matches!(b, b'|' | b'^' | b'~' | b'&' | b'\r' | b'\n')));
        prop_assert_eq!(&unescape(&escaped, &d)[..], &data[..]);
    }

    #[test]
    fn escaping_round_trips_with_truncation_and_odd_delimiters(data in "[#$*!@a-z|\\\\&^~\r\n]{0,60}") {
        let msg = Message::parse(b"MSH#$*!@%#A").unwrap();
        let d = msg.delimiters();
        let escaped = escape(data.as_bytes(), &d);
        prop_assert_eq!(&unescape(&escaped, &d)[..], data.as_bytes());
    }

    #[test]
    fn reader_never_panics(raw in proptest::collection::vec(
        prop_oneof![Just(b'|'), Just(b'^'), Just(b'\\'), Just(b'\r'), Just(b'\n'), Just(b'~'), any::<u8>()], 0..400)) {
        let mut input = b"MSH|^~\\&|".to_vec();
        input.extend_from_slice(&raw);
        for candidate in [&input[..], &raw[..]] {
            if let Ok(msg) = Message::parse(candidate) {
                for segment in msg.segments() {
                    for field in segment.fields() {
                        for rep in field.repetitions() {
                            for component in rep.components() {
                                let _ = component.subcomponent(2);
                                let _ = component.decoded();
                                let _ = component.text(Charset::Latin1);
                            }
                        }
                    }
                }
                let _ = msg.message_type();
                let _ = msg.version();
                let _ = msg.charset();
                let _ = msg.get("PID-3(2).1.1");
                let _ = mllp_hl7::AckBuilder::new(&msg).build();
            }
        }
    }

    /// The iterators give exactly what looking each part up by number gives (they now
    /// walk the value once instead).
    #[test]
    fn iterators_agree_with_lookups_by_number(raw in proptest::collection::vec(
        prop_oneof![Just(b'|'), Just(b'^'), Just(b'~'), Just(b'&'), Just(b'\r'), Just(b'a'), Just(b'b')],
        0..200)) {
        for header in [&b"MSH|^~\\&|"[..], b"MSH|^", b"MSH|", b"MSH"] {
            let mut input = header.to_vec();
            input.extend_from_slice(&raw);
            let Ok(msg) = Message::parse(&input) else { continue };
            for segment in msg.segments() {
                let by_number: Vec<_> =
                    (1..=segment.field_count()).filter_map(|n| segment.field(n)).collect();
                prop_assert_eq!(segment.fields().collect::<Vec<_>>(), by_number.clone());
                for field in by_number {
                    let reps: Vec<_> = (1..).map_while(|n| field.repetition(n)).collect();
                    prop_assert_eq!(field.repetitions().collect::<Vec<_>>(), reps.clone());
                    for rep in reps.into_iter().chain([field]) {
                        let components: Vec<_> = (1..).map_while(|n| rep.component(n)).collect();
                        prop_assert_eq!(rep.components().collect::<Vec<_>>(), components);
                    }
                }
            }
        }
    }

    #[test]
    fn unescape_never_panics(raw in proptest::collection::vec(
        prop_oneof![Just(b'\\'), Just(b'X'), Just(b'0'), Just(b'F'), any::<u8>()], 0..100)) {
        let _ = unescape(&raw, &Delimiters::STANDARD);
    }
}

#[test]
fn acknowledged_on_success_follows_msh_15() {
    for (fields, expected) in [
        ("", true),
        ("|||AL|NE", true),
        ("|||SU|AL", true),
        ("||||AL", true),
        ("|||NE|AL", false),
        ("|||ER|ER", false),
    ] {
        let raw = format!("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5{fields}\rPID|1\r");
        let msg = Message::parse(raw.as_bytes()).unwrap();
        assert_eq!(msg.acknowledged_on_success(), expected, "{fields:?}");
    }
}

/// `Path`'s fields are public, so a caller can build one with occurrence 0 (which
/// `FromStr` never yields): there is no 0th segment, and `query` must say so, not panic
/// on `0 - 1` (debug builds) or wrap around (release).
#[test]
fn a_hand_built_path_with_occurrence_zero_finds_nothing() {
    let msg = Message::parse(b"MSH|^~\\&|A\rPID|1").unwrap();
    let mut path: Path = "PID-1".parse().unwrap();
    assert_eq!(msg.query(&path).unwrap().raw(), b"1");
    path.occurrence = 0;
    assert_eq!(msg.query(&path), None);
}

/// An ACK captured with its MLLP framing, passed to `Message::parse` as it came off the
/// wire: the error says to take the payload out of the frame first.
#[test]
fn a_framed_message_is_refused_with_a_hint_at_mllp() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ack_from_python-hl7_0.4.5.mllp"
    );
    let wire = std::fs::read(path).unwrap();
    assert_eq!(wire[0], 0x0b);
    let error = Message::parse(&wire).unwrap_err().to_string();
    assert!(error.contains("MLLP start block"), "{error}");
    assert!(error.contains("MllpDecoder"), "{error}");
    // Without the start block it parses.
    let payload = &wire[1..wire.len() - 2];
    assert!(Message::parse(payload).is_ok());
    // Other wrong starts get no such hint.
    let error = Message::parse(b"PID|1").unwrap_err().to_string();
    assert!(!error.contains("MLLP"), "{error}");
}

/// A raw LF may sit inside a field (Epic's OBR-17); the reader keeps the text after it in
/// the field unless a segment id and the field separator follow. `split_messages` cut a
/// message at any line beginning with `MSH`, `BTS` or `FTS`, so a line of text in an NTE
/// starting "MSH segment" ended the message there and began a bogus one.
#[test]
fn split_messages_reads_segment_starts_as_the_reader_does() {
    let file =
        b"MSH|^~\\&|A|||||ORU^R01|1|P|2.5\nNTE|1||see the\nMSH segment docs\nOBX|1\rMSH|^~\\&|B\r";
    let messages: Vec<&[u8]> = split_messages(file).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let first = Message::parse(messages[0]).unwrap();
    assert_eq!(
        text(first.get("NTE-3").unwrap()),
        "see the\nMSH segment docs"
    );
    assert_eq!(first.segment_count(), 3);
    assert_eq!(messages[1], b"MSH|^~\\&|B\r");

    // A text line starting with a trailer id stays data too; trailers alone still end.
    let file = b"MSH|^~\\&|A\rNTE|1||x\nFTS in review\rMSH|^~\\&|B\rBTS\rFTS|1";
    let messages: Vec<&[u8]> = split_messages(file).collect();
    assert_eq!(
        messages,
        [
            &b"MSH|^~\\&|A\rNTE|1||x\nFTS in review\r"[..],
            &b"MSH|^~\\&|B\r"[..]
        ]
    );

    // LF and CR LF separated batches split as before.
    let raw = sample("batch_fhs_bhs_adt_a04_2.5_vinah.hl7");
    for terminator in [&b"\n"[..], b"\r\n"] {
        let converted: Vec<u8> = raw
            .iter()
            .flat_map(|&b| {
                if b == b'\r' {
                    terminator.to_vec()
                } else {
                    vec![b]
                }
            })
            .collect();
        let messages: Vec<&[u8]> = split_messages(&converted).collect();
        assert_eq!(messages.len(), 1);
        assert_eq!(Message::parse(messages[0]).unwrap().segment_count(), 6);
    }
}

/// A paragraph break (a blank line) inside a field of an LF-separated message is data, as a
/// single LF is: it ended the segment there, losing the rest of the field and every field
/// after it (OBX-6 units, OBX-7 range) and adding a bogus segment. Blank lines between
/// segments still make no segment.
#[test]
fn a_blank_line_inside_a_field_stays_in_the_field() {
    let raw = b"MSH|^~\\&|EPIC|EPIC|||20140418173314||ORU^R01|497|P|2.3\n\
OBX|1|TX|IMP^Impression||First paragraph.\n\nSecond paragraph.\n\n\nThird.|mg|N\n";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.segment_count(), 2);
    assert_eq!(
        text(m.get("OBX-5").unwrap()),
        "First paragraph.\n\nSecond paragraph.\n\n\nThird."
    );
    assert_eq!(text(m.get("OBX-6").unwrap()), "mg");
    assert_eq!(text(m.get("OBX-7").unwrap()), "N");

    let spaced = b"MSH|^~\\&|A|||||ORU^R01|1|P|2.5\n\n\nPID|1\r\n\r\nOBX|1|NM|GLU||5\n\n";
    let m = Message::parse(spaced).unwrap();
    let ids: Vec<&[u8]> = m.segments().map(|s| &s.raw()[..3]).collect();
    assert_eq!(ids, [&b"MSH"[..], b"PID", b"OBX"]);
    assert_eq!(text(m.get("OBX-5").unwrap()), "5");
    assert!(
        m.segments().next().unwrap().raw().ends_with(b"|2.5"),
        "no line end kept"
    );
}

/// Values and runs of line feeds a sender can make large cost time in proportion to their
/// size. Each lookup by number rescanned from the start, and each LF of a run of them
/// rescanned the run: a 200 KB frame took 8 s to read, and a frame at the size cap hours,
/// holding a server thread. At these sizes the quadratic versions ran for minutes.
#[test]
fn long_values_and_line_feed_runs_are_read_in_one_pass() {
    const N: usize = 300_000;
    let mut text = b"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\rNTE|1||x".to_vec();
    text.extend(std::iter::repeat_n(b'\n', N));
    text.extend_from_slice(b"y\rPID|1||");
    text.extend(b"^".repeat(N));
    text.extend_from_slice(b"|");
    text.extend(b"~".repeat(N));
    text.extend(b"|".repeat(N));
    let message = Message::parse(&text).unwrap();
    let segments: Vec<_> = message.segments().collect();
    assert_eq!(segments.len(), 3);
    let note = segments[1].field(3).unwrap();
    assert_eq!(note.raw().len(), N + 2, "the LFs are data in NTE-3");
    let pid = segments[2];
    assert_eq!(pid.fields().count(), N + 4);
    assert_eq!(pid.field(3).unwrap().components().count(), N + 1);
    assert_eq!(pid.field(4).unwrap().repetitions().count(), N + 1);
}
