//! Property tests: build → serialise → parse gives back the values, for arbitrary bytes (delimiters,
//! escape characters, CR, LF, controls, Latin-1) under random delimiter sets.

use astm_records::{
    CommentBuilder, Delimiters, FieldBuf, HeaderBuilder, Message, MessageBuilder, OrderBuilder,
    PatientBuilder, Record, RecordBuf, RecordType, ResultBuilder, parse_records,
};
use proptest::prelude::*;

/// Bytes that may serve as delimiters: punctuation, plus two Latin-1 bytes.
const CANDIDATES: &[u8] = b"|\\^&!~@`#$%*+,-./:;<=>?[]_{}'\"\xA5\xA7";

fn delimiters() -> impl Strategy<Value = Delimiters> {
    proptest::sample::subsequence(CANDIDATES, 4)
        .prop_shuffle()
        .prop_map(|d| {
            Delimiters::new(d[0], d[1], d[2], Some(d[3])).expect("distinct allowed bytes")
        })
}

/// Values biased towards the bytes that need escaping.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        3 => proptest::sample::select(CANDIDATES),
        1 => proptest::sample::select(&b"\r\nXF&SRE.br"[..]),
    ];
    proptest::collection::vec(byte, 0..10)
}

type Repeats = Vec<Vec<Vec<u8>>>;

fn field() -> impl Strategy<Value = Repeats> {
    proptest::collection::vec(proptest::collection::vec(value(), 1..4), 1..4)
}

/// What a reader sees: trailing empty components are not written, an all-empty repeat reads as one
/// empty component.
fn normalise(repeats: &Repeats) -> Repeats {
    repeats
        .iter()
        .map(|components| {
            let used = components
                .iter()
                .rposition(|c| !c.is_empty())
                .map_or(0, |n| n + 1);
            if used == 0 {
                vec![Vec::new()]
            } else {
                components[..used].to_vec()
            }
        })
        .collect()
}

fn read(record: &Record<'_>, number: usize) -> Repeats {
    record
        .field(number)
        .repeats()
        .map(|r| r.components().map(|c| c.unescaped().into_owned()).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn result_record_values_survive(delims in delimiters(), fields in proptest::collection::vec(field(), 1..8)) {
        let mut record = RecordBuf::new(b'R');
        record.set_sequence(1);
        for (i, repeats) in fields.iter().enumerate() {
            record.set(i + 3, FieldBuf::repeats(repeats.clone()));
        }
        let bytes = record.to_bytes(&delims).unwrap();
        prop_assert!(!bytes.contains(&b'\r') && !bytes.contains(&b'\n'));
        let parsed = Record::parse(&bytes, &delims).unwrap();
        prop_assert_eq!(parsed.kind(), RecordType::Result);
        prop_assert_eq!(parsed.sequence(), Some(1));
        prop_assert_eq!(parsed.field_count(), fields.len() + 2);
        for (i, repeats) in fields.iter().enumerate() {
            prop_assert_eq!(read(&parsed, i + 3), normalise(repeats));
        }
        // An unmodified parsed record writes back the same bytes.
        prop_assert_eq!(RecordBuf::from_record(&parsed).to_bytes(&delims).unwrap(), bytes);
    }

    #[test]
    fn parsed_records_written_with_other_delimiters_read_the_same(
        from in delimiters(),
        to in delimiters(),
        sender in field(),
        fields in proptest::collection::vec(field(), 1..6),
    ) {
        let mut record = RecordBuf::new(b'R');
        record.set_sequence(1);
        for (i, repeats) in fields.iter().enumerate() {
            record.set(i + 3, FieldBuf::repeats(repeats.clone()));
        }
        let header = HeaderBuilder::new().sender_name(FieldBuf::repeats(sender.clone())).build();
        let (header, record) = (header.to_bytes(&from).unwrap(), record.to_bytes(&from).unwrap());
        let header = Record::parse(&header, &Delimiters::STANDARD).unwrap();
        let record = Record::parse(&record, &from).unwrap();
        let header = RecordBuf::from_record(&header).to_bytes(&to).unwrap();
        let record = RecordBuf::from_record(&record).to_bytes(&to).unwrap();
        let header = Record::parse(&header, &Delimiters::STANDARD).unwrap();
        prop_assert_eq!(*header.delimiters(), to);
        prop_assert_eq!(read(&header, 5), normalise(&sender));
        let record = Record::parse(&record, &to).unwrap();
        prop_assert_eq!(record.field_count(), fields.len() + 2);
        for (i, repeats) in fields.iter().enumerate() {
            prop_assert_eq!(read(&record, i + 3), normalise(repeats));
        }
    }

    #[test]
    fn header_declares_random_delimiters(delims in delimiters(), sender in field(), version in value()) {
        let header = HeaderBuilder::new()
            .sender_name(FieldBuf::repeats(sender.clone()))
            .version(version.clone())
            .build();
        let result = ResultBuilder::new().value(version.clone()).units(FieldBuf::repeats(sender.clone()));
        let text = MessageBuilder::with_delimiters(delims, header)
            .push(PatientBuilder::new())
            .push(OrderBuilder::new().universal_test_id(FieldBuf::test_code(version.clone())))
            .push(result)
            .push(CommentBuilder::new().text(version.clone()))
            .build()
            .unwrap();
        let message = Message::parse(&text).unwrap();
        // Non-ASCII delimiters are legal bytes; two in a row are reported, since they usually
        // are one multi-byte `¥`.
        let expected = usize::from(delims.looks_multi_byte());
        prop_assert_eq!(Message::parse_strict(&text).is_ok(), expected == 0);
        prop_assert_eq!(message.violations().len(), expected, "{:?}", message.violations());
        let header = message.header();
        prop_assert_eq!(*header.record().delimiters(), delims);
        prop_assert_eq!(read(header.record(), 5), normalise(&sender));
        prop_assert_eq!(header.version().components().next().unwrap().unescaped().into_owned(), version);
        let r = message.results().next().unwrap();
        prop_assert_eq!(read(r.record(), 5), normalise(&sender));
        let order = message.patients().next().unwrap().children().next().unwrap();
        prop_assert_eq!(order.children().next().unwrap().comments().count(), 1);
        // Splitting the text again gives the same records.
        prop_assert_eq!(parse_records(&text).count(), 6);
    }

    #[test]
    fn parsing_never_panics_and_is_lossless(text in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut rebuilt = Vec::new();
        for record in parse_records(&text).flatten() {
            let _ = record.typed();
            for field in record.fields() {
                let _ = field.text();
                let _ = field.timestamp();
            }
            prop_assert_eq!(
                RecordBuf::from_record(&record).to_bytes(record.delimiters()).unwrap(),
                record.raw()
            );
            rebuilt.extend_from_slice(record.raw());
            rebuilt.extend_from_slice(record.terminator());
        }
        if parse_records(&text).all(|r| r.is_ok()) {
            let start = text.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(text.len());
            prop_assert_eq!(&rebuilt[..], &text[start..]);
        }
        let _ = Message::parse(&text);
    }
}

#[test]
fn no_escape_character_refuses_what_it_cannot_write() {
    let delims = Delimiters::new(b'|', b'\\', b'^', None).unwrap();
    let mut record = RecordBuf::new(b'C');
    record.set(4, "plain text");
    let bytes = record.to_bytes(&delims).unwrap();
    assert_eq!(bytes, b"C|||plain text");
    record.set(4, "a|b");
    assert!(record.to_bytes(&delims).is_err());
    let header = HeaderBuilder::new().build().to_bytes(&delims).unwrap();
    assert_eq!(header, b"H|\\^");
    assert_eq!(
        Record::parse(&header, &Delimiters::STANDARD)
            .unwrap()
            .delimiters(),
        &delims
    );
}
