//! Every message in the real captures parses, with the expected record types and counts; every record
//! writes back byte for byte.

mod common;

use astm_records::{
    AbnormalFlag, Comparator, Delimiters, Message, MessageAssembler, MessageError, Record,
    RecordBuf, RecordType, ResultStatus, TypedRecord, Validation, ViolationKind, split_messages,
    yen_to_backslash,
};
use common::{deframe, type_string};

fn capture(path: &str) -> Vec<u8> {
    common::data(&format!("captures/{path}"))
}

/// Joins E1381 message texts into H … L messages.
fn assemble(texts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut assembler = MessageAssembler::new(1 << 20);
    let mut messages = Vec::new();
    for text in texts {
        assembler.push(text).expect("within the size limit");
        messages.extend(std::iter::from_fn(|| assembler.next_message()));
    }
    messages.extend(assembler.finish());
    messages
}

/// Parses one message, checks lossless splitting and byte-exact re-serialisation, returns the types.
fn check_message(text: &[u8]) -> (String, Vec<String>) {
    let message =
        Message::parse(text).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(text)));
    let mut rebuilt = Vec::new();
    for record in message.records() {
        let written = RecordBuf::from_record(record)
            .to_bytes(record.delimiters())
            .unwrap();
        assert_eq!(written, record.raw(), "record does not round-trip");
        rebuilt.extend_from_slice(record.raw());
        rebuilt.extend_from_slice(record.terminator());
    }
    let start = text
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    assert_eq!(rebuilt, &text[start..], "splitting lost bytes");
    let violations = message
        .violations()
        .iter()
        .map(ToString::to_string)
        .collect();
    (type_string(message.records()), violations)
}

fn framed(path: &str) -> Vec<(String, Vec<String>)> {
    assemble(&deframe(&capture(path)))
        .iter()
        .map(|m| check_message(m))
        .collect()
}

fn unframed(path: &str) -> Vec<(String, Vec<String>)> {
    let text = capture(path);
    split_messages(&text).map(check_message).collect()
}

fn clean(types: &str) -> (String, Vec<String>) {
    (types.to_owned(), Vec::new())
}

#[test]
fn senaite_instrument_capture() {
    let cases: &[(&str, &str)] = &[
        ("senaite/abbott_afinion2.txt", "HPORL"),
        ("senaite/cobas_c111.txt", "HPORCML"),
        (
            "senaite/cobas_c111_frames_from_test_cobas_c111.py.bin",
            "HPORCML",
        ),
        ("senaite/cobas_c311.txt", "HPORCRCRCRCRCRCRCL"),
        ("senaite/dca_vantage.txt", "HPORCRCRL"),
        ("senaite/genexpert.txt", "HPORCR{19}CR{19}CR{45}L"),
        ("senaite/mini_vidas_mock.txt", "HPORL"),
        ("senaite/pentra_xlr.txt", "HPORCCR{18}CRRL"),
        ("senaite/spotchem_el_mock.txt", "HOR{3}L"),
        ("senaite/sysmex_xn550.txt", "HPCOCR{41}CL"),
        ("senaite/sysmex_xp100.txt", "HPOR{20}L"),
        ("senaite/yumizen_h500.txt", "HPOCCM{4}R{21}L"),
    ];
    for (path, types) in cases {
        let messages = framed(path);
        assert_eq!(messages.len(), 1, "{path}");
        let (found, violations) = &messages[0];
        assert_eq!(found, types, "{path}");
        let expected: &[&str] = match *path {
            // Hand-made mocks: the order comes straight after the header.
            "senaite/spotchem_el_mock.txt" => &["record 2: O record has no P record before it"],
            _ => &[],
        };
        assert_eq!(violations, expected, "{path}");
    }
}

#[test]
fn senaite_non_astm_files_are_refused_clearly() {
    // Arkray Spotchem EL sends a printout, not E1394 records.
    let texts = deframe(&capture("senaite/spotchem_el.txt"));
    assert_eq!(texts.len(), 1);
    let err = Message::parse(&texts[0]).unwrap_err();
    assert!(matches!(err, MessageError::MissingHeader { .. }), "{err}");
    assert!(
        err.to_string().starts_with("record 1 must be a header (H)"),
        "{err}"
    );
    // bioMérieux mini VIDAS uses RS/GS separated fields with no ETX at all.
    let raw = capture("senaite/mini_vidas.txt");
    assert!(deframe(&raw).is_empty());
    assert!(matches!(
        Message::parse(&raw[1..]),
        Err(MessageError::MissingHeader { .. })
    ));
}

#[test]
fn go_astm_record_files() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "go-astm/euroimmun_analyzer1_v10_sampleigg.astm",
            &["HPORPORPORPORPORPORPORPORPORPORPORPORPORPORPORPORPORPORPORPORL"],
            &[],
        ),
        ("go-astm/galileo_order.astm", &["HPOCL"], &[]),
        ("go-astm/galileo_result.astm", &["HPOR{9}OR{5}L"], &[]),
        ("go-astm/ihcom_v52_bloodtype.astm", &["HPORCRCRCRCL"], &[]),
        (
            "go-astm/ihcom_v52_bloodtype_por.astm",
            &["HPORCRCRCRCPORL"],
            // The second patient restarts at 1 instead of continuing with 2.
            &["record 12: P record has sequence number 1, expected 2"],
        ),
        ("go-astm/yumizen_result.astm", &["HPOM{3}R{20}L"], &[]),
    ];
    for (path, types, violations) in cases {
        let messages = unframed(path);
        let found: Vec<&str> = messages.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(found, *types, "{path}");
        assert_eq!(messages[0].1, *violations, "{path}");
    }
}

#[test]
fn abbott_architect_sessions() {
    assert_eq!(
        framed("abbott-architect/host_query_session_rebuilt.bin"),
        [clean("HQL")]
    );
    assert_eq!(
        framed("abbott-architect/result_session_rebuilt.bin"),
        [clean("HPOR{3}L")]
    );

    let text = assemble(&deframe(&capture(
        "abbott-architect/result_session_rebuilt.bin",
    )))
    .remove(0);
    let message = Message::parse_strict(&text).unwrap();
    let results: Vec<_> = message.results().collect();
    assert_eq!(results[0].test_code().as_deref(), Some("651"));
    assert_eq!(results[0].test_id().component(5).text(), "_B-hCG");
    let value = results[0].numeric_value().unwrap();
    assert_eq!(
        (value.comparator, value.value),
        (Some(Comparator::Greater), 15000.0)
    );
    assert_eq!(
        results[0].abnormal_flag_list().collect::<Vec<_>>(),
        [AbnormalFlag::AboveScale]
    );
    assert_eq!(results[1].value_text(), "Positive");
    assert_eq!(results[1].numeric_value(), None);
    assert_eq!(results[2].units_text(), "RLU");
    assert_eq!(results[2].result_status(), Some(ResultStatus::Final));
    assert_eq!(
        results[2]
            .completed_date_time()
            .timestamp()
            .unwrap()
            .unwrap()
            .to_string(),
        "20120217144954"
    );
    let header = message.header();
    assert_eq!(header.sender_name().component(2).text(), "7.01");
    assert_eq!(header.version().text(), "1");

    let text = assemble(&deframe(&capture(
        "abbott-architect/host_query_session_rebuilt.bin",
    )))
    .remove(0);
    let message = Message::parse_strict(&text).unwrap();
    let query = message.queries().next().unwrap();
    let TypedRecord::Query(query) = query.typed() else {
        panic!("not a query")
    };
    assert_eq!(query.requested_specimen_id().as_deref(), Some("0000040735"));
    assert_eq!(query.universal_test_id().component(4).text(), "ALL");
    assert_eq!(query.status_code().text(), "O");
}

/// Lines as `FN record CS`: the frame number, the record, a space and the two checksum digits.
fn immulite_lines(path: &str) -> Vec<u8> {
    let mut text = Vec::new();
    for line in capture(path)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let mut record = &line[1..];
        if let [head @ .., b' ', a, b] = record
            && a.is_ascii_hexdigit()
            && b.is_ascii_hexdigit()
        {
            record = head;
        }
        text.extend_from_slice(record);
        text.push(b'\r');
    }
    text
}

#[test]
fn siemens_immulite_query_and_download() {
    let query = immulite_lines("siemens-immulite/query_lines.txt");
    assert_eq!(check_message(&query), clean("HQL"));
    let message = Message::parse(&query).unwrap();
    let header = message.header();
    assert_eq!(header.access_password().text(), "PASSWORD");
    assert_eq!(header.sender_name().text(), "DPC");
    // The documented example is one field off for the address (H.7 instead of H.6).
    assert_eq!(header.reserved().components().count(), 4);

    let download = immulite_lines("siemens-immulite/order_download_expected_lines.txt");
    let (types, violations) = check_message(&download);
    assert_eq!(types, "HPO{6}L");
    // The documented download numbers every order 1; the standard wants 1..6 under the patient.
    assert_eq!(violations.len(), 5);
    assert_eq!(
        violations[0],
        "record 4: O record has sequence number 1, expected 2"
    );
    let message = Message::parse(&download).unwrap();
    let codes: Vec<String> = message
        .patients()
        .flat_map(|p| p.children().collect::<Vec<_>>())
        .filter_map(|o| match o.typed() {
            TypedRecord::Order(order) => {
                order.test_ids().next()?.test_code().map(|c| c.into_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(codes, ["TSH", "FT3", "FT4", "FOO", "BAR", "BAZ"]);
}

#[test]
fn sysmex_yen_sign_example() {
    let backslash = capture("sysmex-xn/xn550_example_backslash.txt");
    assert_eq!(check_message(&backslash), clean("HPCOCRL"));

    // Taken as bytes, the yen sign is two bytes: the message still parses (types and counts right) and
    // the odd header is reported.
    let yen = capture("sysmex-xn/xn550_example_yen.txt");
    let (types, violations) = check_message(&yen);
    assert_eq!(types, "HPCOCRL");
    assert_eq!(
        violations,
        [
            "record 1: header declares a non-ASCII delimiter (a multi-byte character such as the yen sign?)"
        ]
    );
    // After mapping the yen sign back to 0x5C it reads exactly like the backslash version.
    let mapped = yen_to_backslash(&yen);
    assert_eq!(&*mapped, &backslash[..]);
    let message = Message::parse_strict(&mapped).unwrap();
    let result = message.results().next().unwrap();
    assert_eq!(result.test_code().as_deref(), Some("WBC"));
    let order = message
        .patients()
        .next()
        .unwrap()
        .children()
        .next()
        .unwrap();
    let TypedRecord::Order(order) = order.typed() else {
        panic!("not an order")
    };
    assert_eq!(order.specimen_id().component(3).text(), " 1234567890");
    assert_eq!(order.test_ids().count(), 1);
}

#[test]
fn cepheid_genexpert_declares_at_sign_repeats() {
    let text = assemble(&deframe(&capture("senaite/genexpert.txt"))).remove(0);
    let message = Message::parse(&text).unwrap();
    let header = message.header();
    let delimiters = *header.record().delimiters();
    assert_eq!(
        delimiters,
        Delimiters::new(b'|', b'@', b'^', Some(b'\\')).unwrap()
    );
    let first = message.results().next().unwrap();
    assert_eq!(first.test_id().component(2).text(), "MTB-RIF");
    assert_eq!(first.value_text(), "NOT DETECTED");
    assert_eq!(first.numeric_value(), None);
    // R.4 is qualitative^quantitative: a Ct value comes in component 2 (`^24.7`); it read as
    // an empty text and no number.
    let ct = message
        .results()
        .find(|r| r.test_id().component(7).text() == "SPC" && r.value().raw() == b"^24.7")
        .expect("the SPC Ct record");
    assert_eq!(ct.value_text(), "24.7");
    assert_eq!(ct.numeric_value().map(|n| n.value), Some(24.7));
    // Component 4 names the system (`Xpert`, `Trace`, `RIF`); the assay in component 2 is the code.
    assert!(
        message
            .results()
            .all(|r| r.test_code().as_deref() != Some("Xpert"))
    );
    let names: Vec<_> = message
        .results()
        .take(4)
        .map(|r| {
            let id = r.test_id();
            (
                r.test_code().unwrap().into_owned(),
                id.result_name().map(|n| n.into_owned()),
                id.complementary_result_name().map(|n| n.into_owned()),
            )
        })
        .collect();
    let expected = [
        ("MTB-RIF", Some("MTB"), None),
        ("MTB-RIF", Some("rpoB1"), None),
        ("MTB-RIF", Some("rpoB1"), Some("Ct")),
        ("MTB-RIF", Some("rpoB1"), Some("EndPt")),
    ]
    .map(|(code, name, value)| {
        (
            code.to_owned(),
            name.map(str::to_owned),
            value.map(str::to_owned),
        )
    });
    assert_eq!(names, expected);
}

#[test]
fn horiba_yumizen_etb_chains_deframed_in_test() {
    // 125 frames, 89 of them ETB (240-byte chunks of base64 M records): 36 E1381 messages, one record
    // each, forming one E1394 message.
    let texts = deframe(&capture("horiba_yumizen_h500_raw.bin"));
    assert_eq!(texts.len(), 36);
    assert!(
        texts
            .iter()
            .all(|t| t.iter().filter(|&&b| b == b'\r').count() == 1)
    );
    let messages = assemble(&texts);
    assert_eq!(messages.len(), 1);
    assert_eq!(check_message(&messages[0]), clean("HPOCM{4}R{27}L"));
    let message = Message::parse(&messages[0]).unwrap();
    let longest = message
        .records()
        .iter()
        .map(|r| r.raw().len())
        .max()
        .unwrap();
    assert!(
        longest > 240 * 10,
        "M histogram records span many frames ({longest} bytes)"
    );
    let order = message
        .patients()
        .next()
        .unwrap()
        .children()
        .next()
        .unwrap();
    assert_eq!(
        order
            .attachments()
            .filter(|a| a.kind() == RecordType::Manufacturer)
            .count(),
        4
    );
    assert_eq!(order.children().count(), 27);
}

#[test]
fn lenient_and_strict_agree_on_clean_captures() {
    let text = assemble(&deframe(&capture("senaite/pentra_xlr.txt"))).remove(0);
    let records: Vec<Record<'_>> = astm_records::parse_records(&text)
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(Message::from_records(records.clone(), Validation::Strict).is_ok());
    let message = Message::from_records(records, Validation::Lenient).unwrap();
    let flags: Vec<_> = message
        .results()
        .flat_map(|r| r.abnormal_flag_list().collect::<Vec<_>>())
        .collect();
    assert!(flags.contains(&AbnormalFlag::PanicHigh));
    assert!(flags.contains(&AbnormalFlag::Low));
    let statuses: Vec<_> = message
        .results()
        .filter_map(|r| r.result_status())
        .collect();
    assert!(
        statuses.contains(&ResultStatus::Warning) && statuses.contains(&ResultStatus::CannotBeDone)
    );
    let strict_err = Message::parse_strict(b"H|\\^&\rR|1\r").unwrap_err();
    let MessageError::Invalid(list) = strict_err else {
        panic!("expected violations")
    };
    assert!(matches!(list[0].kind, ViolationKind::MissingParent { .. }));
}

/// Every result of a capture reaches its order and patient through `Node::ancestor`, also
/// where the order has no patient before it (the Spotchem mock), which `patients()` misses.
#[test]
fn results_reach_their_order_and_patient() {
    use astm_records::{Order, Patient, ResultRecord};

    let rows = |path: &str| -> Vec<(Option<String>, Option<String>, String, String)> {
        let messages = assemble(&deframe(&capture(path)));
        let message = Message::parse(&messages[0]).unwrap();
        message
            .nodes_of(RecordType::Result)
            .map(|node| {
                let result = ResultRecord::new(node.record()).unwrap();
                let order = node
                    .ancestor(RecordType::Order)
                    .and_then(|o| Order::new(o.record()));
                let patient = node
                    .ancestor(RecordType::Patient)
                    .and_then(|p| Patient::new(p.record()));
                (
                    patient.map(|p| p.practice_patient_id().text().into_owned()),
                    order.map(|o| o.specimen_id().text().into_owned()),
                    result.test_code().unwrap_or_default().into_owned(),
                    result.value_text().into_owned(),
                )
            })
            .collect()
    };

    let architect = rows("abbott-architect/result_session_rebuilt.bin");
    assert_eq!(architect.len(), 3);
    assert_eq!(
        architect[0],
        (
            Some(String::new()),
            Some("1379 levchenko".to_owned()),
            "651".to_owned(),
            "> 15000.00".to_owned()
        )
    );

    let spotchem = rows("senaite/spotchem_el_mock.txt");
    let message = assemble(&deframe(&capture("senaite/spotchem_el_mock.txt")));
    let message = Message::parse(&message[0]).unwrap();
    assert_eq!(
        message
            .patients()
            .flat_map(|p| p.children().collect::<Vec<_>>())
            .count(),
        0,
        "the order has no patient"
    );
    assert_eq!(spotchem.len(), 3);
    for (patient, order, _, _) in &spotchem {
        assert_eq!(patient, &None);
        assert!(order.is_some());
    }
    assert_eq!(spotchem[0].2, "Na");

    // A comment's ancestors are those of the record it is attached to, and that record.
    let text = b"H|\\^&\rP|1\rO|1|S1\rR|1|^^^GLU|5\rC|1|I|checked\rL|1|N\r";
    let message = Message::parse(text).unwrap();
    let comment = message.nodes_of(RecordType::Comment).next().unwrap();
    assert_eq!(comment.ancestor(RecordType::Result).unwrap().index(), 3);
    assert_eq!(comment.ancestor(RecordType::Patient).unwrap().index(), 1);
    assert!(message.root().ancestor(RecordType::Header).is_none());
}

/// A capture passed to `Message::parse` as it came off the wire (ENQ, STX, frame number …):
/// the error says the text is still framed and where to unframe it.
#[test]
fn a_framed_capture_is_refused_with_a_hint_at_the_link_layer() {
    let wire = capture("abbott-architect/result_session_rebuilt.bin");
    assert_eq!(wire[..2], [0x05, 0x02]);
    let error = Message::parse(&wire).unwrap_err().to_string();
    assert!(error.contains("E1381 framing"), "{error}");
    assert!(error.contains("astm-frame"), "{error}");
    let frame = &wire[1..];
    let error = Message::parse(frame).unwrap_err().to_string();
    assert!(error.contains("E1381 framing"), "{error}");
    let error = Message::parse(b"P|1\rL|1\r").unwrap_err().to_string();
    assert!(!error.contains("E1381"), "{error}");
}
