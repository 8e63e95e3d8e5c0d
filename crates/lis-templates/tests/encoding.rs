//! `GenerateOptions::encoding` and a template's `protocol.encoding`: the bytes a simulated analyzer writes, for a LIS that reads
//! Latin-1 (or ASCII) rather than UTF-8.

use lis_templates::{
    AccessionMinter, GenerateOptions, Generator, Layout, OrderGroup, OrderedPatient, OrderedSample,
    Output, Profiles, TemplateSet, TextEncoding, generate,
};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn options(encoding: TextEncoding, layout: Layout) -> GenerateOptions {
    GenerateOptions {
        seed: Some(5),
        layout,
        encoding: Some(encoding),
        ..GenerateOptions::default()
    }
}

fn patient(name: &str) -> OrderedPatient {
    OrderedPatient {
        practice_id: "MRN-1".into(),
        name: vec![name.into(), "ZOË".into()],
        ..OrderedPatient::default()
    }
}

fn alt_order() -> OrderGroup {
    OrderGroup {
        placer: vec!["P1".into()],
        filler: vec![],
        codes: vec!["ALT".into()],
        service: Vec::new(),
    }
}

/// The ORU for an order from `name`, as written in `encoding`.
fn hl7_bytes(encoding: TextEncoding, layout: Layout, name: &str) -> Vec<u8> {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let options = options(encoding, layout);
    let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
    let oru = g
        .hl7_order_results_for(Some(&patient(name)), &[alt_order()])
        .unwrap();
    assert_eq!(oru.encoding, encoding);
    oru.to_bytes()
}

/// The patient name (PID-5) a receiver reads with the character set MSH-18 names, and that
/// character set.
fn read_name(bytes: &[u8]) -> (mllp_hl7::Charset, Vec<String>) {
    let message = mllp_hl7::Message::parse(bytes).unwrap();
    let charset = message.charset().unwrap();
    let name = message
        .segment(b"PID")
        .unwrap()
        .field(5)
        .unwrap()
        .components()
        .map(|c| charset.decode(&c.decoded()).unwrap().into_owned())
        .collect();
    (charset, name)
}

#[test]
fn hl7_text_is_written_in_the_encoding_msh18_names() {
    let latin1 = hl7_bytes(TextEncoding::Latin1, Layout::Standard, "RENÉ");
    assert!(contains(&latin1, b"REN\xC9"));
    assert!(std::str::from_utf8(&latin1).is_err(), "not UTF-8");
    assert_eq!(
        read_name(&latin1),
        (mllp_hl7::Charset::Latin1, vec!["RENÉ".into(), "ZOË".into()])
    );

    // The euro sign is in Latin-9, not in Latin-1.
    let latin9 = hl7_bytes(TextEncoding::Latin9, Layout::Standard, "€URO");
    assert_eq!(
        read_name(&latin9),
        (mllp_hl7::Charset::Latin9, vec!["€URO".into(), "ZOË".into()])
    );
    let latin1 = hl7_bytes(TextEncoding::Latin1, Layout::Standard, "€URO");
    assert_eq!(
        read_name(&latin1),
        (mllp_hl7::Charset::Latin1, vec!["?URO".into(), "ZOË".into()])
    );

    // ASCII writes `?` for the rest and leaves MSH-18 empty.
    let ascii = hl7_bytes(TextEncoding::Ascii, Layout::Standard, "RENÉ");
    assert!(ascii.is_ascii());
    assert_eq!(
        read_name(&ascii),
        (mllp_hl7::Charset::Ascii, vec!["REN?".into(), "ZO?".into()])
    );

    let utf8 = hl7_bytes(TextEncoding::Utf8, Layout::Standard, "RENÉ");
    assert_eq!(
        read_name(&utf8),
        (mllp_hl7::Charset::Utf8, vec!["RENÉ".into(), "ZOË".into()])
    );
}

/// Only non-ASCII text is declared: after `?` stands in for what Latin-1 cannot write, an
/// ASCII message keeps MSH-18 empty; the OpenELIS layout never values it, whatever the bytes.
#[test]
fn msh18_is_set_only_for_text_beyond_ascii_in_the_standard_layout() {
    let msh18 = |bytes: &[u8]| {
        let message = mllp_hl7::Message::parse(bytes).unwrap();
        message.charset_id().raw().to_vec()
    };
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let options = options(TextEncoding::Latin1, Layout::Standard);
    let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
    let greek = OrderedPatient {
        name: vec!["ΑΘΗΝΑ".into()],
        ..OrderedPatient::default()
    };
    let oru = g
        .hl7_order_results_for(Some(&greek), &[alt_order()])
        .unwrap();
    assert!(oru.segments[1].contains("|?????|"), "{}", oru.segments[1]);
    assert_eq!(msh18(&oru.to_bytes()), b"");

    let openelis = hl7_bytes(TextEncoding::Latin1, Layout::OpenElis, "RENÉ");
    assert_eq!(msh18(&openelis), b"");
    assert_eq!(
        msh18(&hl7_bytes(TextEncoding::Latin1, Layout::Standard, "RENÉ")),
        b"8859/1"
    );
}

/// An ASTM order result echoes the patient in the encoding's bytes: Latin-1 `É` is the one
/// byte 0xC9 (as a GeneXpert writes `NON DÉTECTÉ`), and the records show the text sent.
#[test]
fn astm_records_are_written_in_the_encoding() {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let orders = [OrderedSample {
        sample_id: "SPÉC-1".into(),
        codes: vec!["PT".into()],
        patient: Some(patient("RENÉ")),
    }];
    let message = |encoding: TextEncoding| {
        let options = options(encoding, Layout::Standard);
        let mut g = Generator::new(set.get("stago_start4").unwrap(), &minter, &options).unwrap();
        g.astm_order_results(&orders).unwrap()
    };

    let latin1 = message(TextEncoding::Latin1);
    assert_eq!(latin1.encoding, TextEncoding::Latin1);
    let bytes = latin1.to_bytes();
    assert!(contains(&bytes, b"REN\xC9^ZO\xCB\r"));
    assert!(contains(&bytes, b"|SP\xC9C-1"));
    let p = latin1.records.iter().find(|r| r.starts_with("P|")).unwrap();
    assert!(p.contains("RENÉ^ZOË"), "{p}");

    let ascii = message(TextEncoding::Ascii);
    assert!(ascii.to_bytes().is_ascii());
    let p = ascii.records.iter().find(|r| r.starts_with("P|")).unwrap();
    assert!(p.ends_with("|REN?^ZO?"), "{p}");

    let utf8 = message(TextEncoding::Utf8).to_bytes();
    assert!(contains(&utf8, "RENÉ".as_bytes()));
}

/// A template's own patient messages follow the encoding too (here the generated name's
/// text is ASCII, so the bytes are the same in every encoding).
#[test]
fn template_messages_carry_the_encoding() {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    for encoding in TextEncoding::ALL {
        let options = options(encoding, Layout::Standard);
        match generate(set.get("mindray_bs200").unwrap(), &minter, &options, false).unwrap() {
            Output::Hl7(m) => {
                assert_eq!(m.encoding, encoding);
                assert_eq!(m.to_bytes(), m.to_wire().into_bytes());
            }
            other => panic!("{other:?}"),
        }
        match generate(set.get("genexpert_astm").unwrap(), &minter, &options, false).unwrap() {
            Output::Astm(ms) => assert!(ms.iter().all(|m| m.encoding == encoding)),
            other => panic!("{other:?}"),
        }
    }
}

/// A template declares the encoding its instrument writes (`protocol.encoding`, this toolkit's
/// extension); `GenerateOptions::encoding` overrides it; a name that is no encoding is a load
/// error naming the file, the key and the names known.
#[test]
fn a_template_names_its_encoding_and_the_option_overrides_it() {
    let set = TemplateSet::embedded().unwrap();
    let text = TemplateSet::embedded_sources()
        .find(|(name, _)| *name == "stago_start4")
        .unwrap()
        .1;
    let mut root: serde_json::Value = serde_json::from_str(text).unwrap();
    root["protocol"]["encoding"] = "ISO-8859-1".into();
    let path = std::path::Path::new("stago_latin1.json");
    let latin1 = lis_templates::load_str(&root.to_string(), path, &Profiles::None).unwrap();
    assert_eq!(latin1.protocol.encoding, Some(TextEncoding::Latin1));
    assert_eq!(set.get("stago_start4").unwrap().protocol.encoding, None);

    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let written = |encoding: Option<TextEncoding>| {
        let options = GenerateOptions {
            seed: Some(5),
            encoding,
            ..GenerateOptions::default()
        };
        match generate(&latin1, &minter, &options, false).unwrap() {
            Output::Astm(messages) => messages[0].encoding,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(written(None), TextEncoding::Latin1);
    assert_eq!(written(Some(TextEncoding::Utf8)), TextEncoding::Utf8);

    root["protocol"]["encoding"] = "EBCDIC".into();
    let error = lis_templates::load_str(&root.to_string(), path, &Profiles::None)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("stago_latin1.json")
            && error.contains("protocol.encoding")
            && error.contains("utf-8, latin-1, latin-9, ascii"),
        "{error}"
    );
}
