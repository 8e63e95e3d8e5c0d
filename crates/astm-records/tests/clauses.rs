//! E1394 / LIS2-A2 clause by clause, for the rules the unit tests and the capture tests do not pin
//! down on their own: field positions of every typed record, the allowed successors of each record,
//! the Q record outside the patient tree, L.2 and the L.3 termination codes, empty versus absent
//! fields, escapes decoded after splitting. Each test names the rule it shows (field numbers as in
//! LIS2-A2, hierarchy as in E1394 §5.1).

use astm_records::{
    Comment, Delimiters, Header, Message, Order, Patient, Query, Record, RecordBuf, RecordType,
    ResultBuilder, ResultRecord, TerminationCode, Terminator, TypedRecord, Violation,
    ViolationKind,
};

/// A record of type `letter` whose field n holds `fn` (n from 2 up to `last`); a header gets its
/// delimiter definition in field 2 instead.
fn numbered(letter: char, last: usize) -> Vec<u8> {
    let mut text = letter.to_string();
    for n in 2..=last {
        text.push('|');
        if letter == 'H' && n == 2 {
            text.push_str("\\^&");
        } else {
            text.push_str(&format!("f{n}"));
        }
    }
    text.into_bytes()
}

fn text(field: astm_records::Field<'_>) -> String {
    field.text().into_owned()
}

/// Every named accessor reads the field the standard puts it in (H.3–14, P.3–35, O.3–31, R.3–14,
/// C.3–5, Q.3–13, L.3), and a builder setter writes there.
#[test]
fn every_named_field_is_at_its_standard_position() {
    let d = Delimiters::STANDARD;

    let raw = numbered('H', 14);
    let h = Header::new(Record::parse(&raw, &d).unwrap()).unwrap();
    assert_eq!(h.delimiter_definition().raw(), b"\\^&");
    let header = [
        (3, text(h.message_control_id())),
        (4, text(h.access_password())),
        (5, text(h.sender_name())),
        (6, text(h.sender_address())),
        (7, text(h.reserved())),
        (8, text(h.sender_telephone())),
        (9, text(h.sender_characteristics())),
        (10, text(h.receiver_id())),
        (11, text(h.comment())),
        (12, text(h.processing_id())),
        (13, text(h.version())),
        (14, text(h.date_time())),
    ];
    for (n, value) in header {
        assert_eq!(value, format!("f{n}"), "H.{n}");
    }

    let raw = numbered('P', 35);
    let p = Patient::new(Record::parse(&raw, &d).unwrap()).unwrap();
    let patient = [
        (3, text(p.practice_patient_id())),
        (4, text(p.laboratory_patient_id())),
        (5, text(p.patient_id_3())),
        (6, text(p.name())),
        (7, text(p.mothers_maiden_name())),
        (8, text(p.birthdate())),
        (9, text(p.sex())),
        (10, text(p.race())),
        (11, text(p.address())),
        (12, text(p.reserved())),
        (13, text(p.telephone())),
        (14, text(p.attending_physician())),
        (15, text(p.special_field_1())),
        (16, text(p.special_field_2())),
        (17, text(p.height())),
        (18, text(p.weight())),
        (19, text(p.diagnosis())),
        (20, text(p.active_medications())),
        (21, text(p.diet())),
        (22, text(p.practice_field_1())),
        (23, text(p.practice_field_2())),
        (24, text(p.admission_dates())),
        (25, text(p.admission_status())),
        (26, text(p.location())),
        (27, text(p.diagnostic_code_nature())),
        (28, text(p.diagnostic_code())),
        (29, text(p.religion())),
        (30, text(p.marital_status())),
        (31, text(p.isolation_status())),
        (32, text(p.language())),
        (33, text(p.hospital_service())),
        (34, text(p.hospital_institution())),
        (35, text(p.dosage_category())),
    ];
    for (n, value) in patient {
        assert_eq!(value, format!("f{n}"), "P.{n}");
    }

    let raw = numbered('O', 31);
    let o = Order::new(Record::parse(&raw, &d).unwrap()).unwrap();
    let order = [
        (3, text(o.specimen_id())),
        (4, text(o.instrument_specimen_id())),
        (5, text(o.universal_test_id())),
        (6, text(o.priority())),
        (7, text(o.requested_date_time())),
        (8, text(o.collection_date_time())),
        (9, text(o.collection_end_time())),
        (10, text(o.collection_volume())),
        (11, text(o.collector_id())),
        (12, text(o.action_code())),
        (13, text(o.danger_code())),
        (14, text(o.clinical_information())),
        (15, text(o.received_date_time())),
        (16, text(o.specimen_descriptor())),
        (17, text(o.ordering_physician())),
        (18, text(o.physician_telephone())),
        (19, text(o.user_field_1())),
        (20, text(o.user_field_2())),
        (21, text(o.laboratory_field_1())),
        (22, text(o.laboratory_field_2())),
        (23, text(o.reported_date_time())),
        (24, text(o.instrument_charge())),
        (25, text(o.instrument_section_id())),
        (26, text(o.report_type())),
        (27, text(o.reserved())),
        (28, text(o.collection_location())),
        (29, text(o.nosocomial_infection_flag())),
        (30, text(o.specimen_service())),
        (31, text(o.specimen_institution())),
    ];
    for (n, value) in order {
        assert_eq!(value, format!("f{n}"), "O.{n}");
    }

    let raw = numbered('R', 14);
    let r = ResultRecord::new(Record::parse(&raw, &d).unwrap()).unwrap();
    let result = [
        (3, text(r.universal_test_id())),
        (4, text(r.value())),
        (5, text(r.units())),
        (6, text(r.reference_ranges())),
        (7, text(r.abnormal_flags())),
        (8, text(r.abnormality_nature())),
        (9, text(r.status())),
        (10, text(r.normatives_changed_date())),
        (11, text(r.operator_id())),
        (12, text(r.started_date_time())),
        (13, text(r.completed_date_time())),
        (14, text(r.instrument_id())),
    ];
    for (n, value) in result {
        assert_eq!(value, format!("f{n}"), "R.{n}");
    }

    let raw = numbered('C', 5);
    let c = Comment::new(Record::parse(&raw, &d).unwrap()).unwrap();
    for (n, value) in [
        (3, text(c.source())),
        (4, text(c.text())),
        (5, text(c.comment_type())),
    ] {
        assert_eq!(value, format!("f{n}"), "C.{n}");
    }

    let raw = numbered('Q', 13);
    let q = Query::new(Record::parse(&raw, &d).unwrap()).unwrap();
    let query = [
        (3, text(q.starting_range_id())),
        (4, text(q.ending_range_id())),
        (5, text(q.universal_test_id())),
        (6, text(q.request_time_limits())),
        (7, text(q.beginning_date_time())),
        (8, text(q.ending_date_time())),
        (9, text(q.requesting_physician())),
        (10, text(q.physician_telephone())),
        (11, text(q.user_field_1())),
        (12, text(q.user_field_2())),
        (13, text(q.status_code())),
    ];
    for (n, value) in query {
        assert_eq!(value, format!("f{n}"), "Q.{n}");
    }

    let raw = numbered('L', 3);
    let l = Terminator::new(Record::parse(&raw, &d).unwrap()).unwrap();
    assert_eq!(text(l.termination_code()), "f3", "L.3");

    // The setters write the same positions (R.13 and P.35 as samples of the far end).
    let built = ResultBuilder::new()
        .completed_date_time("f13")
        .build()
        .to_bytes(&d)
        .unwrap();
    assert_eq!(built, b"R||||||||||||f13");
    let built = astm_records::PatientBuilder::new()
        .dosage_category("f35")
        .build()
        .to_bytes(&d)
        .unwrap();
    assert_eq!(Record::parse(&built, &d).unwrap().field(35).raw(), b"f35");
    assert_eq!(Record::parse(&built, &d).unwrap().field_count(), 35);
}

fn violations(text: &[u8]) -> Vec<String> {
    Message::parse(text)
        .unwrap()
        .violations()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// E1394 §5.1: levels H/L 0, P 1, O 2, R 3; a run at one level ends with a record at the same or
/// a higher level; an O needs a P, an R an O. The successor map python-astm's client enforces
/// (H → C P L; P → C O L; O → C P O R L; R → C P O R L; C → anything; L → H) is accepted, and
/// what it forbids is reported.
#[test]
fn each_record_may_follow_only_what_the_hierarchy_allows() {
    let allowed: &[&[u8]] = &[
        b"H|\\^&\rL|1|N\r",
        b"H|\\^&\rC|1|L|x\rL|1|N\r",
        b"H|\\^&\rP|1\rL|1|N\r",
        b"H|\\^&\rP|1\rC|1|L|x\rO|1\rL|1|N\r",
        b"H|\\^&\rP|1\rO|1\rC|1|L|x\rR|1\rL|1|N\r",
        b"H|\\^&\rP|1\rO|1\rP|2\rL|1|N\r",
        b"H|\\^&\rP|1\rO|1\rO|2\rR|1\rR|2\rO|3\rL|1|N\r",
        b"H|\\^&\rP|1\rO|1\rR|1\rP|2\rO|1\rR|1\rL|1|N\r",
        b"H|\\^&\rP|1\rO|1\rR|1\rC|1|I|x\rC|2|I|y\rR|2\rL|1|N\r",
        b"H|\\^&\rP|1\rP|2\rL|1|N\r",
    ];
    for text in allowed {
        assert_eq!(
            violations(text),
            Vec::<String>::new(),
            "{}",
            String::from_utf8_lossy(text)
        );
    }
    let forbidden: &[(&[u8], &str)] = &[
        (
            b"H|\\^&\rO|1\rL|1|N\r",
            "record 2: O record has no P record before it",
        ),
        (
            b"H|\\^&\rR|1\rL|1|N\r",
            "record 2: R record has no O record before it",
        ),
        (
            b"H|\\^&\rP|1\rR|1\rL|1|N\r",
            "record 3: R record has no O record before it",
        ),
        // A comment does not open a level: the R after a P's comment still has no order.
        (
            b"H|\\^&\rP|1\rC|1|L|x\rR|1\rL|1|N\r",
            "record 4: R record has no O record before it",
        ),
        // A new P closes the order: its R has none.
        (
            b"H|\\^&\rP|1\rO|1\rP|2\rR|1\rL|1|N\r",
            "record 5: R record has no O record before it",
        ),
        // Nothing follows L.
        (
            b"H|\\^&\rL|1|N\rC|1|L|x\r",
            "record 3: C record after the terminator record",
        ),
        (
            b"H|\\^&\rP|1\rL|1|N\rO|1\r",
            "record 4: O record after the terminator record",
        ),
        // A second L is misplaced, not also misnumbered: L.2 is always 1.
        (
            b"H|\\^&\rP|1\rL|1|N\rL|1|N\r",
            "record 4: L record after the terminator record",
        ),
        (
            b"H|\\^&\rP|1\r",
            "record 2: message has no terminator (L) record",
        ),
    ];
    for (text, expected) in forbidden {
        assert_eq!(
            violations(text),
            [*expected],
            "{}",
            String::from_utf8_lossy(text)
        );
        assert!(Message::parse_strict(text).is_err());
    }
}

/// C (and M) have no level and attach to the record before them, wherever it sits; their
/// sequence numbers restart at 1 under each record they follow (`C|1` after every P/O/R).
#[test]
fn comments_attach_to_the_record_before_and_number_from_one_under_it() {
    let text = b"H|\\^&\rC|1|L|h\rP|1\rC|1|L|p\rO|1\rC|1|L|o\rM|1|m\rR|1\rC|1|I|r\rC|2|I|r\rM|1|m\rQ|1|^S\rC|1|L|q\rL|1|N\rC|1|L|l\r";
    let message = Message::parse(text).unwrap();
    let owner = |i: usize| message.node(i).parent().map(|n| n.kind());
    let expected = [
        (1, RecordType::Header),
        (3, RecordType::Patient),
        (5, RecordType::Order),
        (6, RecordType::Order),
        (8, RecordType::Result),
        (9, RecordType::Result),
        (10, RecordType::Result),
        (12, RecordType::Query),
        (14, RecordType::Terminator),
    ];
    for (index, kind) in expected {
        assert_eq!(owner(index), Some(kind), "record {}", index + 1);
        assert!(
            message
                .node(index)
                .parent()
                .unwrap()
                .attachments()
                .any(|n| n.index() == index),
            "record {}",
            index + 1
        );
    }
    // Only the comment after L is out of place.
    assert_eq!(
        message.violations(),
        [Violation {
            record: 15,
            kind: ViolationKind::AfterTerminator {
                kind: RecordType::Comment
            }
        }]
    );
    // A comment numbered as if it continued the previous record's comments is reported.
    assert_eq!(
        violations(b"H|\\^&\rP|1\rC|1|L|p\rO|1\rC|2|L|o\rL|1|N\r"),
        ["record 5: C record has sequence number 2, expected 1"]
    );
}

/// Q (request information) sits at level 1 under the header, outside the patient tree: it closes
/// an open patient, an order after it has no patient, and its own sequence numbers are counted
/// apart from the P records'.
#[test]
fn a_query_sits_outside_the_patient_tree() {
    let message = Message::parse(b"H|\\^&\rP|1\rO|1\rQ|1|^S1\rQ|2|^S2\rP|2\rL|1|N\r").unwrap();
    assert!(
        message.violations().is_empty(),
        "{:?}",
        message.violations()
    );
    assert_eq!(message.queries().count(), 2);
    assert_eq!(message.patients().count(), 2);
    for query in message.queries() {
        assert_eq!(query.parent().unwrap().kind(), RecordType::Header);
        assert!(query.ancestor(RecordType::Patient).is_none());
    }
    assert_eq!(
        violations(b"H|\\^&\rQ|1|^S1\rO|1|S1\rL|1|N\r"),
        ["record 3: O record has no P record before it"]
    );
    assert_eq!(
        violations(b"H|\\^&\rP|1\rQ|1|^S1\rR|1\rL|1|N\r"),
        ["record 4: R record has no O record before it"]
    );
    // The host-query session of §3.6 (ARCHITECT shape) is clean in strict mode.
    assert!(Message::parse_strict(b"H|\\^&\rQ|1|^0000040735||^^^ALL||||||||O\rL|1|N\r").is_ok());
}

/// L.2 is 1 (one terminator per message), and L.3 holds the termination codes of LIS2-A2 as
/// restated by Roche: N normal, T sender aborted, R receiver abort, E error, Q error in the
/// request, I no information, F request processed; empty reads as none, anything else as Other.
#[test]
fn the_terminator_is_numbered_one_and_its_codes_are_read() {
    assert_eq!(
        violations(b"H|\\^&\rL|2|N\r"),
        ["record 2: L record has sequence number 2, expected 1"]
    );
    let codes = [
        ("N", Some(TerminationCode::Normal)),
        ("T", Some(TerminationCode::SenderAborted)),
        ("R", Some(TerminationCode::ReceiverAborted)),
        ("E", Some(TerminationCode::SystemError)),
        ("Q", Some(TerminationCode::QueryError)),
        ("I", Some(TerminationCode::NoInformation)),
        ("F", Some(TerminationCode::QueryProcessed)),
        ("n", Some(TerminationCode::Normal)),
        (" F ", Some(TerminationCode::QueryProcessed)),
        ("", None),
        ("Z", Some(TerminationCode::Other)),
    ];
    for (code, expected) in codes {
        let text = format!("H|\\^&\rL|1|{code}\r");
        let message = Message::parse_strict(text.as_bytes()).unwrap();
        assert_eq!(message.terminator().unwrap().code(), expected, "{code:?}");
    }
    // Each code with a letter is written back by the builder and read as itself.
    for (_, code) in codes {
        let Some(code) = code.filter(|c| *c != TerminationCode::Other) else {
            continue;
        };
        let message = astm_records::MessageBuilder::new(astm_records::HeaderBuilder::new())
            .push(astm_records::TerminatorBuilder::new().termination_code(code))
            .build()
            .unwrap();
        let parsed = Message::parse_strict(&message).unwrap();
        assert_eq!(parsed.terminator().unwrap().code(), Some(code));
    }
    let message = Message::parse(b"H|\\^&\rL|1\r").unwrap();
    assert_eq!(message.terminator().unwrap().code(), None);
    assert!(matches!(
        message.records()[1].typed(),
        TypedRecord::Terminator(_)
    ));
}

/// Fields are found by counting delimiters: an empty field keeps its delimiters, trailing ones
/// may be left out (cobas c111 manual §7.1.4.3.7, restating E1394). A field that is there but
/// empty (`get` gives it) differs from one that is not (`get` gives `None`); `field` reads both as
/// empty. Trailing delimiters survive a round trip.
#[test]
fn empty_and_absent_fields_and_trailing_delimiters() {
    let d = Delimiters::STANDARD;
    let short = Record::parse(b"R|1|^^^GLU|5.5", &d).unwrap();
    let padded = Record::parse(b"R|1|^^^GLU|5.5|||", &d).unwrap();
    assert_eq!(short.field_count(), 4);
    assert_eq!(padded.field_count(), 7);
    assert!(short.get(5).is_none());
    assert!(padded.get(5).is_some_and(|f| f.is_empty()));
    assert!(padded.get(8).is_none());
    for record in [short, padded] {
        let r = ResultRecord::new(record).unwrap();
        assert_eq!(r.value_text(), "5.5");
        assert!(r.units().is_empty());
        assert!(r.instrument_id().is_empty());
        assert_eq!(r.result_status(), None);
        assert_eq!(
            RecordBuf::from_record(&record).to_bytes(&d).unwrap(),
            record.raw()
        );
    }
    // Empty fields in the middle keep their delimiters; nothing is written after the last set
    // field, and trailing empty components are left out.
    let built = ResultBuilder::new()
        .sequence(1)
        .universal_test_id(astm_records::FieldBuf::components(["", "", "", "GLU", ""]))
        .status("F")
        .build()
        .to_bytes(&d)
        .unwrap();
    assert_eq!(built, b"R|1|^^^GLU||||||F");
}

/// Fields, repeats and components are split on the declared delimiters first and escapes decoded
/// after, per component: an escaped delimiter is data and never splits anything.
#[test]
fn escapes_are_decoded_after_splitting() {
    let d = Delimiters::STANDARD;
    let record = Record::parse(b"C|1|I|a&F&b^c&S&d\\e&R&f^&E&|G", &d).unwrap();
    assert_eq!(record.field_count(), 5);
    let comment = Comment::new(record).unwrap();
    let text = comment.text();
    assert_eq!(text.repeats().count(), 2);
    let first: Vec<_> = text.components().map(|c| c.text().into_owned()).collect();
    assert_eq!(first, ["a|b", "c^d"]);
    let second: Vec<_> = text
        .repeat(1)
        .unwrap()
        .components()
        .map(|c| c.text().into_owned())
        .collect();
    assert_eq!(second, ["e\\f", "&"]);
    assert_eq!(comment.comment_type().text(), "G");
    // With a declared escape character other than `&` (Beckman DxH `|\!~`), `&` is data and
    // `~S~` the component delimiter.
    let dxh = Delimiters::new(b'|', b'\\', b'!', Some(b'~')).unwrap();
    let record = Record::parse(b"C|1|I|R&D ~S~ x!y", &dxh).unwrap();
    let parts: Vec<_> = record
        .field(4)
        .components()
        .map(|c| c.text().into_owned())
        .collect();
    assert_eq!(parts, ["R&D ! x", "y"]);
    // Without an escape character (Immulite `H|\^`), nothing is an escape.
    let message = Message::parse(b"H|\\^\rP|1||a&F&b\rL|1|N\r").unwrap();
    assert_eq!(message.records()[1].field(4).text(), "a&F&b");
}

/// The vendor form `&|&` (labmcp's decoder reads it as a field delimiter) is not an escape this
/// crate reads: the field delimiter ends the field wherever it stands, as E1394 defines it, so
/// `&|&` splits the field and each side keeps its lone `&`.
#[test]
fn the_vendor_form_with_a_bare_field_delimiter_splits_the_field() {
    let record = Record::parse(b"C|1|I|a&|&b|G", &Delimiters::STANDARD).unwrap();
    assert_eq!(record.field_count(), 6);
    assert_eq!(record.field(4).text(), "a&");
    assert_eq!(record.field(5).text(), "&b");
}

/// The header declares the delimiters: `H`, the field delimiter, then at least repeat and
/// component (the escape is optional). A header too short to declare them fails the message
/// with the record's position and the reason, in lenient mode too, since nothing after it could
/// be split.
#[test]
fn a_too_short_header_is_refused_with_its_position_and_reason() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"H\rP|1\rL|1|N\r",
            "record 1: invalid delimiter definition in header: header record too short: expected `H` followed by a field delimiter",
        ),
        (
            b"H|\rL|1|N\r",
            "record 1: invalid delimiter definition in header: header declares 0 delimiter(s) after the field delimiter; at least repeat and component are needed",
        ),
        (
            b"H|\\\rL|1|N\r",
            "record 1: invalid delimiter definition in header: header declares 1 delimiter(s) after the field delimiter; at least repeat and component are needed",
        ),
        (
            b"H|\\^&\rL|1|N\rH|\\\rL|1|N\r",
            "record 3: invalid delimiter definition in header: header declares 1 delimiter(s) after the field delimiter; at least repeat and component are needed",
        ),
    ];
    for (text, expected) in cases {
        let err = Message::parse(text).unwrap_err();
        assert_eq!(err.to_string(), *expected);
    }
    // Two delimiters are enough: no escape character (Siemens Immulite `H|\^`).
    let message = Message::parse_strict(b"H|\\^\rL|1|N\r").unwrap();
    assert_eq!(message.header().record().delimiters().escape(), None);
}

/// E1394 §7.1.2: repeat, component and escape are distinct characters. A header repeating one
/// (`H|^^&`) was read as `^&` with no escape, so `^^^TSH` became four repeats and the result
/// lost its test code without a violation, even in strict mode.
#[test]
fn a_header_declaring_one_delimiter_twice_is_refused() {
    let text = b"H|^^&\rP|1\rO|1|S1||^^^TSH\rR|1|^^^TSH|1.5\rL|1|N\r";
    let error = Message::parse(text).unwrap_err().to_string();
    assert_eq!(
        error,
        "record 1: invalid delimiter definition in header: byte 0x5E is used for two delimiters"
    );
    // The doubled backslash some exports write (`H|\\^&`) still declares the standard set.
    let message =
        Message::parse(b"H|\\\\^&\rP|1\rO|1|S1||^^^TSH\rR|1|^^^TSH|1.5\rL|1|N\r").unwrap();
    assert_eq!(
        *message.header().record().delimiters(),
        Delimiters::STANDARD
    );
    let result = message.results().next().unwrap();
    assert_eq!(result.test_id().test_code().as_deref(), Some("TSH"));
}

/// A letter or digit after `H` cannot be the field delimiter (E1394 §7.1.2). Such a first
/// record was reported as "must be a header, found type "HA\^&"", blaming the wrong thing.
#[test]
fn a_header_with_a_letter_for_field_delimiter_says_so() {
    let error = Message::parse(b"HA\\^&\rPA1\rLA1AN\r").unwrap_err();
    assert_eq!(
        error.to_string(),
        "record 1: invalid delimiter definition in header: byte 0x41 cannot be a delimiter \
         (letters, digits, CR and LF are not allowed)"
    );
    // Framed text still gets the hint at the link layer.
    let error = Message::parse(b"\x021H|\\^&\rL|1|N\r")
        .unwrap_err()
        .to_string();
    assert!(error.contains("E1381 framing"), "{error}");
}

/// LIS2-A2 §10.1.3 / E1394: R.3 is `universal ID^name^type^local code`; a sender filling in the
/// name (`^Glucose^^GLU`) got the name back as its test code.
#[test]
fn the_test_code_is_the_local_code_not_the_test_name() {
    let d = Delimiters::STANDARD;
    for (raw, code) in [
        ("R|1|^Glucose^^GLU|5.5", "GLU"),
        ("R|1|^Glucose|5.5", "Glucose"),
        ("R|1|^MTB-RIF^^Xpert^^^rpoB1^Ct|^0.0", "MTB-RIF"),
        ("R|1|^MTB-RIF^^Xpert^^^^|MTB DETECTED", "MTB-RIF"),
        // Name and local code both filled, and vendor components after them (ARCHITECT sends
        // seven): the local code, not the name GeneXpert's layout would take.
        ("R|1|^Glucose^^GLU^^^P|5.5", "GLU"),
        ("R|1|^Beta-hCG^^651^_B-hCG^UNDILUTED^P|5", "651"),
        ("R|1|^Beta-hCG^^651^_B-hCG^UNDILUTED^P^F^1|5", "651"),
    ] {
        let result = ResultRecord::new(Record::parse(raw.as_bytes(), &d).unwrap()).unwrap();
        assert_eq!(result.test_id().test_code().as_deref(), Some(code), "{raw}");
    }
}

/// Sysmex (XE, XN, XS) host queries carry `rack^tube^sample number^attribute` in Q.3, the
/// sample number right-justified in 22 characters, as its O.3 and O.4 do (the XN-550
/// captures). The tube position was read as the specimen and the rack as the patient.
#[test]
fn a_sysmex_query_asks_for_its_sample_number() {
    let d = Delimiters::STANDARD;
    for (raw, specimen) in [
        (
            "Q|1|2^1^          1234567890^B||||20011001153000",
            "1234567890",
        ),
        ("Q|1|^^                    27^M||||20240627135407", "27"),
        ("Q|1|^^            113^A||||20240723172452", "113"),
    ] {
        let query = Query::new(Record::parse(raw.as_bytes(), &d).unwrap()).unwrap();
        assert_eq!(
            query.requested_specimen_id().as_deref(),
            Some(specimen),
            "{raw}"
        );
        assert_eq!(query.requested_patient_id(), None, "{raw}");
        // The component as sent, padding included, for echoing it back.
        let sent = query.requested_specimen().unwrap();
        assert_eq!(sent.raw().trim_ascii_start(), specimen.as_bytes());
    }
    // Four components without Sysmex's attribute letter keep the standard reading.
    let query = Query::new(Record::parse(b"Q|1|P1^S1^x^1||ALL", &d).unwrap()).unwrap();
    assert_eq!(query.requested_specimen_id().as_deref(), Some("S1"));
    assert_eq!(query.requested_patient_id().as_deref(), Some("P1"));
}

/// LIS2-A2 §12.1.3: Q.3 is `patient ID^specimen ID^…`. A query naming only the patient was
/// read as a query for a specimen with the patient's ID, and `ALL` as a specimen named ALL.
#[test]
fn a_query_for_a_patient_is_not_a_query_for_a_specimen() {
    let d = Delimiters::STANDARD;
    for (raw, specimen, patient) in [
        ("Q|1|PAT42^||ALL||||||||O", None, Some("PAT42")),
        ("Q|1|PAT42^S1||ALL||||||||O", Some("S1"), Some("PAT42")),
        ("Q|1|^S1||ALL||||||||O", Some("S1"), None),
        ("Q|1|S1||ALL||||||||O", Some("S1"), None),
        ("Q|1|ALL||ALL||||||||O", None, None),
    ] {
        let query = Query::new(Record::parse(raw.as_bytes(), &d).unwrap()).unwrap();
        assert_eq!(query.requested_specimen_id().as_deref(), specimen, "{raw}");
        assert_eq!(query.requested_patient_id().as_deref(), patient, "{raw}");
    }
}

/// A sequence number that is not one was reported as "sequence number none", whatever was
/// written; the violation now shows it.
#[test]
fn a_sequence_violation_shows_what_was_written() {
    for (record, said) in [
        (
            "P|A",
            "P record has sequence number \"A\", not a number, expected 1",
        ),
        (
            "P|4294967296",
            "P record has sequence number \"4294967296\", beyond 4294967295, expected 1",
        ),
        ("P|", "P record has no sequence number, expected 1"),
        ("P|2", "P record has sequence number 2, expected 1"),
    ] {
        let text = format!("H|\\^&\r{record}\rL|1|N\r");
        assert_eq!(
            violations(text.as_bytes()),
            [format!("record 2: {said}")],
            "{record}"
        );
    }
}
