//! `GenerateOptions::patient_id` and `GenerateOptions::tests`: the patient and the tests a
//! caller asks for instead of the template's.

use lis_templates::files::{self, FileOptions};
use lis_templates::{
    AccessionMinter, GenerateError, GenerateOptions, Generator, Layout, Output, ProtocolKind,
    TemplateSet, generate,
};

fn options(patient_id: Option<&str>, tests: Option<&[&str]>) -> GenerateOptions {
    GenerateOptions {
        seed: Some(3),
        patient_id: patient_id.map(str::to_owned),
        tests: tests.map(|codes| codes.iter().map(|c| (*c).to_owned()).collect()),
        ..GenerateOptions::default()
    }
}

/// An order (placer P1, filler F1) for ALT.
fn alt_order() -> lis_templates::OrderGroup {
    lis_templates::OrderGroup {
        placer: vec!["P1".into()],
        filler: vec!["F1".into()],
        codes: vec!["ALT".into()],
        service: Vec::new(),
    }
}

/// The seeded options in `layout`.
fn in_layout(layout: Layout) -> GenerateOptions {
    GenerateOptions {
        layout,
        ..options(None, None)
    }
}

fn run(template: &str, options: &GenerateOptions, qc: bool) -> Result<Output, GenerateError> {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    generate(set.get(template).unwrap(), &minter, options, qc)
}

/// The test code of an OBX (`OBX|n|NM|^^^CODE^Name|...` or `OBX|n|NM|CODE^Name^...|...`).
fn obx_code(segment: &str) -> &str {
    let id = segment.split('|').nth(3).unwrap();
    id.split('^').find(|c| !c.is_empty()).unwrap()
}

#[test]
fn hl7_reports_the_patient_and_only_the_tests_asked_for_in_that_order() {
    let Ok(Output::Hl7(m)) = run(
        "mindray_bc5380",
        &options(Some("MRN|1"), Some(&["PLT", "WBC"])),
        false,
    ) else {
        panic!()
    };
    let pid = m.segments.iter().find(|s| s.starts_with("PID|")).unwrap();
    // Delimiters in the ID are escaped, not taken as field separators.
    assert_eq!(pid.split('|').nth(3), Some(r"MRN\F\1^^^HOSPITAL"));
    let codes: Vec<&str> = m
        .segments
        .iter()
        .filter(|s| s.starts_with("OBX|"))
        .map(|s| obx_code(s))
        .collect();
    assert_eq!(codes, ["PLT", "WBC"]);
    let obx: Vec<&String> = m
        .segments
        .iter()
        .filter(|s| s.starts_with("OBX|"))
        .collect();
    assert!(obx[0].starts_with("OBX|1|") && obx[1].starts_with("OBX|2|"));

    // Without options: the template's patient and every field.
    let Ok(Output::Hl7(all)) = run("mindray_bc5380", &options(None, None), false) else {
        panic!()
    };
    assert!(all.segments[1].contains("|PAT001^^^HOSPITAL|"));
    assert_eq!(
        all.segments
            .iter()
            .filter(|s| s.starts_with("OBX|"))
            .count(),
        13
    );
}

#[test]
fn astm_reports_the_patient_and_only_the_tests_asked_for() {
    let Ok(Output::Astm(messages)) = run(
        "horiba_micros60",
        &options(Some("MRN-42"), Some(&["HGB"])),
        false,
    ) else {
        panic!()
    };
    let records = &messages[0].records;
    let patient = records.iter().find(|r| r.starts_with("P|")).unwrap();
    assert_eq!(patient.split('|').nth(3), Some("MRN-42"));
    let results: Vec<&String> = records.iter().filter(|r| r.starts_with("R|")).collect();
    assert_eq!(results.len(), 1, "{records:?}");
    assert!(results[0].starts_with("R|1|^^^HGB|"), "{}", results[0]);
}

#[test]
fn qc_output_is_limited_to_the_tests_asked_for() {
    // horiba_micros60 has controls for WBC, RBC, HGB, HCT and PLT.
    let Ok(Output::Astm(all)) = run("horiba_micros60", &options(None, None), true) else {
        panic!()
    };
    let Ok(Output::Astm(some)) = run("horiba_micros60", &options(None, Some(&["RBC"])), true)
    else {
        panic!()
    };
    let results = |m: &[lis_templates::AstmMessage]| -> Vec<String> {
        m.iter()
            .flat_map(|m| m.records.iter())
            .filter(|r| r.starts_with("R|"))
            .map(|r| r.split('|').nth(2).unwrap().to_owned())
            .collect()
    };
    assert!(results(&all).len() > results(&some).len());
    assert!(!results(&some).is_empty());
    assert!(
        results(&some).iter().all(|id| id == "^^^RBC"),
        "{:?}",
        results(&some)
    );
    // A test without a control leaves nothing to report: the usual "no QC" error.
    let err = run("horiba_micros60", &options(None, Some(&["MCV"])), true).unwrap_err();
    assert!(matches!(err, GenerateError::NoQc { .. }), "{err}");
}

#[test]
fn the_generic_result_file_has_one_row_per_test_asked_for() {
    let Ok(Output::File(file)) = run("wondfo_finecare", &options(None, Some(&["β-hCG"])), false)
    else {
        panic!()
    };
    let text = file.text().unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("DEV01")).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(rows[0].contains(";β-hCG;"), "{text}");
    assert!(!text.contains("TSH"), "{text}");
}

#[test]
fn mistakes_are_errors_that_say_what_is_wrong() {
    let message = |patient: Option<&str>, tests: Option<&[&str]>| {
        run("stago_start4", &options(patient, tests), false)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message(None, Some(&["INR", "GLU"])),
        "invalid option tests: template stago_start4 has no test \"GLU\"; its tests are PT, \
         INR, APTT, FIB, TT"
    );
    assert_eq!(
        message(None, Some(&["PT", "PT"])),
        "invalid option tests: test \"PT\" is listed twice"
    );
    assert!(message(None, Some(&[])).contains("the list is empty"));
    // Codes match exactly: no case folding, no trimming.
    assert!(message(None, Some(&["inr"])).contains("no test \"inr\""));
    assert!(message(Some(""), None).contains("patient_id: \"\" is empty"));
    assert!(message(Some("A\rB"), None).contains("control character"));
    assert!(message(Some(&"9".repeat(65)), None).contains("longer than 64"));
}

#[test]
fn instrument_file_layouts_refuse_what_they_cannot_honour() {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    for generate in [
        options(None, Some(&["HIV ELISA"])),
        options(Some("P1"), None),
    ] {
        let file_options = FileOptions {
            generate,
            ..FileOptions::default()
        };
        let err = files::render(set.get("tecan_f50").unwrap(), &minter, &file_options).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("instrument file layouts do not support it"),
            "{err}"
        );
    }
}

#[test]
fn hl7_qc_is_limited_to_the_tests_asked_for_and_checks_its_controls() {
    // mindray_bs200 has one control, for GLU.
    let Ok(Output::Hl7(glu)) = run("mindray_bs200", &options(None, Some(&["GLU"])), true) else {
        panic!()
    };
    let obx: Vec<&str> = glu
        .segments
        .iter()
        .filter(|s| s.starts_with("OBX|"))
        .map(String::as_str)
        .collect();
    assert_eq!(obx.len(), 1);
    assert_eq!(obx_code(obx[0]), "GLU");
    // CREA has no control: nothing to report, the usual "no QC" error (ASTM and file QC alike).
    let err = run("mindray_bs200", &options(None, Some(&["CREA"])), true).unwrap_err();
    assert!(matches!(err, GenerateError::NoQc { .. }), "{err}");
    // A control naming no field (the loader refuses it; a changed template reaches generation).
    let set = TemplateSet::embedded().unwrap();
    let mut template = set.get("mindray_bs200").unwrap().clone();
    template.qc_controls[0].field_code = "GLUC".into();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let err = generate(&template, &minter, &options(None, None), true).unwrap_err();
    assert!(
        matches!(err, GenerateError::NoQc { .. }) && err.to_string().contains("GLUC"),
        "{err}"
    );
}

/// The patient and panel of HL7 order results are escaped as in the patient ORU: a `|` in a
/// name must not shift PID-7 and PID-8, a `&` must not split a component.
#[test]
fn hl7_order_results_escape_the_patient_and_panel() {
    let set = TemplateSet::embedded().unwrap();
    let mut template = set.get("mindray_bs360e").unwrap().clone();
    let patient = template.test_patient.as_mut().unwrap();
    patient.name = Some("O|Brien&Co^Ann".into());
    patient.dob = Some("19800101".into());
    template.test_sample.as_mut().unwrap().kind = Some("CH|EM^A&B".into());
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    for layout in [Layout::Standard, Layout::OpenElis] {
        let options = in_layout(layout);
        let mut g = Generator::new(&template, &minter, &options).unwrap();
        let oru = g
            .hl7_order_results(&["P1"], &["F1"], &["ALT".into()])
            .unwrap();
        let pid: Vec<&str> = oru.segments[1].split('|').collect();
        assert_eq!(pid[5], r"O\F\Brien\T\Co^Ann", "{layout:?}");
        assert_eq!(pid[7], "19800101", "{layout:?}");
        let obr4 = oru.segments[3].split('|').nth(4).unwrap();
        let expected = match layout {
            Layout::Standard => r"CH\F\EM^A\T\B",
            Layout::OpenElis => r"^^^CH\F\EM^A",
        };
        assert!(obr4.starts_with(expected), "{layout:?}: {obr4}");
    }
}

/// Standard-layout order results code their tests as the standard patient ORU does: OBR-4
/// `PANEL^Label` and OBX-3 `CODE^Name^L`, the identifier in CE.1 where a LIS reads it (they
/// wrote the OpenELIS `^^^CODE^Name`, whose CE.1 is empty). An unknown code is `CODE^CODE^L`.
#[test]
fn standard_hl7_order_results_code_tests_as_the_patient_oru() {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let mut checked = 0;
    for template in set.iter().filter(|t| t.protocol.kind == ProtocolKind::Hl7) {
        let mut g = Generator::new(template, &minter, &options(None, None)).unwrap();
        let patient = g.hl7().unwrap();
        let mut codes: Vec<String> = template.fields.iter().map(|f| f.code.clone()).collect();
        codes.push("NOPE".into());
        let order = g.hl7_order_results(&["P1"], &["F1"], &codes).unwrap();
        let field = |segment: &str, i: usize| segment.split('|').nth(i).unwrap().to_owned();
        assert_eq!(
            field(&order.segments[3], 4),
            field(&patient.segments[3], 4),
            "{}: OBR-4",
            template.name
        );
        let obx3 = |m: &lis_templates::Hl7Message| -> Vec<String> {
            m.segments
                .iter()
                .filter(|s| s.starts_with("OBX|"))
                .map(|s| field(s, 3))
                .collect()
        };
        let mut expected = obx3(&patient);
        expected.push("NOPE^NOPE^L".into());
        assert_eq!(obx3(&order), expected, "{}: OBX-3", template.name);
        checked += 1;
    }
    assert!(checked >= 7, "{checked}");
}

/// The placer and filler order numbers are echoed as whole entity identifiers: every
/// component escaped, trailing empty ones left out. The OpenELIS layout, which otherwise
/// writes values unescaped as the reference does, escapes them too: the reference echoes the
/// ORM's raw field, so a component that held `\S\` there must come back as `\S\`, not split.
#[test]
fn hl7_order_results_echo_every_component_of_the_order_numbers() {
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    for layout in [Layout::Standard, Layout::OpenElis] {
        let options = in_layout(layout);
        let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
        let oru = g
            .hl7_order_results(&["A|1", "NS^X", "", ""], &["", r"F\&L"], &["ALT".into()])
            .unwrap();
        for segment in [&oru.segments[2], &oru.segments[3]] {
            let fields: Vec<&str> = segment.split('|').collect();
            assert_eq!(
                fields[2..4],
                [r"A\F\1^NS\S\X", r"^F\E\\T\L"],
                "{layout:?}: {segment}"
            );
        }
    }
    let mut g = Generator::new(
        set.get("mindray_bs360e").unwrap(),
        &minter,
        &options(None, None),
    )
    .unwrap();
    let none = g
        .hl7_order_results::<&str>(&[], &["", ""], &["ALT".into()])
        .unwrap();
    assert!(
        none.segments[2].starts_with("ORC|RE|||"),
        "{:?}",
        none.segments
    );
}

/// Standard-layout HL7 order results report the range, the flag it gives and the time, as the
/// patient ORU does (a hard-coded `N` hid an out-of-range value).
#[test]
fn standard_hl7_order_results_flag_values_from_the_range() {
    let set = TemplateSet::embedded().unwrap();
    let mut template = set.get("mindray_bs360e").unwrap().clone();
    let field = template
        .fields
        .iter_mut()
        .find(|f| f.code == "ALT")
        .unwrap();
    field.normal_range = Some("7-56".into());
    field.seed_value = Some(serde_json::Number::from(99));
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let options = GenerateOptions {
        now: chrono::NaiveDate::from_ymd_opt(2026, 1, 2).and_then(|d| d.and_hms_opt(8, 0, 0)),
        ..options(None, None)
    };
    let mut g = Generator::new(&template, &minter, &options).unwrap();
    let Output::Hl7(patient) = g.generate(false).unwrap() else {
        panic!()
    };
    let alt = patient
        .segments
        .iter()
        .find(|s| s.starts_with("OBX|") && obx_code(s) == "ALT")
        .unwrap();
    assert_eq!(alt.split('|').nth(8), Some("H"), "{alt}");
    let oru = g
        .hl7_order_results(&["P1"], &["F1"], &["ALT".into()])
        .unwrap();
    let obx: Vec<&str> = oru.segments[4].split('|').collect();
    assert_eq!(
        (obx[7], obx[8], obx[14]),
        ("7-56", "H", "20260102080000"),
        "{obx:?}"
    );
}

/// LIS2-A2: sequence numbers restart at 1 under each new parent; in the standard layout the
/// second specimen's order is O|1 and its results start again at R|1 (the OpenELIS layout keeps
/// the reference's running numbers).
#[test]
fn standard_astm_order_results_number_records_per_parent() {
    use lis_templates::OrderedSample;
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let orders = [
        OrderedSample {
            sample_id: "DEV01260000000000001".into(),
            codes: vec!["PT".into(), "INR".into()],
            patient: None,
        },
        OrderedSample {
            sample_id: "DEV01260000000000002".into(),
            codes: vec!["PT".into(), "XYZ".into()],
            patient: None,
        },
    ];
    let numbers = |layout: Layout| -> Vec<String> {
        let options = in_layout(layout);
        let mut g = Generator::new(set.get("stago_start4").unwrap(), &minter, &options).unwrap();
        let m = g.astm_order_results(&orders).unwrap();
        m.records
            .iter()
            .filter(|r| !r.starts_with('H') && !r.starts_with('L'))
            .map(|r| r.split('|').take(2).collect::<Vec<_>>().join("|"))
            .collect()
    };
    assert_eq!(
        numbers(Layout::Standard),
        ["P|1", "O|1", "R|1", "R|2", "P|2", "O|1", "R|1", "R|2"]
    );
    assert_eq!(
        numbers(Layout::OpenElis),
        ["P|1", "O|1", "R|1", "R|2", "P|2", "O|2", "R|3", "R|4"]
    );
}

/// Order results carry `patient_id` as the patient messages do (P in ASTM, PID-3 in HL7);
/// they used the template's patient whatever was asked.
#[test]
fn order_results_use_the_patient_id_option() {
    use lis_templates::OrderedSample;
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let order = OrderedSample {
        sample_id: "DEV01260000000000001".into(),
        codes: vec!["PT".into()],
        patient: None,
    };
    for layout in [Layout::Standard, Layout::OpenElis] {
        let options = GenerateOptions {
            layout,
            ..options(Some("MRN-4711"), None)
        };
        let mut g = Generator::new(set.get("stago_start4").unwrap(), &minter, &options).unwrap();
        let astm = g.astm_order_results(std::slice::from_ref(&order)).unwrap();
        let p = astm.records.iter().find(|r| r.starts_with("P|")).unwrap();
        assert!(p.contains("|MRN-4711|"), "{layout:?}: {p}");
        let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
        let oru = g
            .hl7_order_results(&["P1"], &["F1"], &["ALT".into()])
            .unwrap();
        let pid3 = oru.segments[1].split('|').nth(3).unwrap();
        assert_eq!(pid3, "MRN-4711^^^HOSPITAL", "{layout:?}");
    }
}

/// In the standard layout an order's results carry the patient the order named (P.3, P.4,
/// P.6, P.8, P.9 in ASTM; PID-3, 5, 7, 8 in HL7), each escaped again; they carried the
/// template's patient whatever the LIS had ordered for. An order without a patient, and the
/// OpenELIS layout (the reference's bytes), keep the generator's patient.
#[test]
fn order_results_echo_the_ordered_patient() {
    use lis_templates::{OrderedPatient, OrderedSample};
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let smith = OrderedPatient {
        practice_id: "MRN|77".into(),
        laboratory_id: "LAB-9".into(),
        name: vec!["SMITH".into(), "ANNA^MARIA".into()],
        birth_date: "19800101".into(),
        sex: "F".into(),
    };
    let orders = [
        OrderedSample {
            sample_id: "DEV01260000000000001".into(),
            codes: vec!["PT".into()],
            patient: Some(smith.clone()),
        },
        OrderedSample {
            sample_id: "DEV01260000000000002".into(),
            codes: vec!["PT".into()],
            patient: None,
        },
    ];
    let patients = |layout: Layout| -> Vec<String> {
        let options = in_layout(layout);
        let mut g = Generator::new(set.get("stago_start4").unwrap(), &minter, &options).unwrap();
        let m = g.astm_order_results(&orders).unwrap();
        m.records
            .iter()
            .filter(|r| r.starts_with("P|"))
            .cloned()
            .collect()
    };
    let standard = patients(Layout::Standard);
    assert_eq!(
        standard[0],
        "P|1|MRN&F&77|LAB-9||SMITH^ANNA&S&MARIA||19800101|F"
    );
    assert!(standard[1].starts_with("P|2||PAT-"), "{}", standard[1]);
    for record in patients(Layout::OpenElis) {
        assert!(!record.contains("MRN"), "{record}");
    }

    let hl7 = |layout: Layout| -> String {
        let options = in_layout(layout);
        let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
        g.hl7_order_results_for(Some(&smith), &[alt_order()])
            .unwrap()
            .segments[1]
            .clone()
    };
    let pid = hl7(Layout::Standard);
    assert_eq!(
        pid.split('|').collect::<Vec<_>>()[..9],
        [
            "PID",
            "1",
            "",
            "MRN\\F\\77",
            "",
            "SMITH^ANNA\\S\\MARIA",
            "",
            "19800101",
            "F"
        ]
    );
    assert_eq!(pid.split('|').count(), 21, "{pid}");
    assert!(!hl7(Layout::OpenElis).contains("MRN"));
}

/// A standard-layout ASTM order result carries the header the template's patient messages
/// carry (receiver H.10, processing id H.12, version H.13); it always said `LIS2-A2`, so
/// a GeneXpert (`1394-97`) answered in another version than it reports results in.
#[test]
fn standard_astm_order_results_carry_the_templates_header() {
    use lis_templates::OrderedSample;
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let template = set.get("genexpert_astm").unwrap();
    let code = template.fields[0].code.clone();
    let order = OrderedSample {
        sample_id: "DEV01260000000000001".into(),
        codes: vec![code],
        patient: None,
    };
    let header_tail = |record: &str| -> Vec<String> {
        record
            .split('|')
            .skip(9)
            .take(4)
            .map(str::to_owned)
            .collect()
    };
    let options = in_layout(Layout::Standard);
    let mut g = Generator::new(template, &minter, &options).unwrap();
    let order_header = g
        .astm_order_results(std::slice::from_ref(&order))
        .unwrap()
        .records[0]
        .clone();
    let Output::Astm(patient) = run("genexpert_astm", &options, false).unwrap() else {
        panic!("genexpert_astm writes ASTM");
    };
    let patient_header = &patient[0].records[0];
    assert_eq!(header_tail(&order_header), header_tail(patient_header));
    assert_eq!(
        header_tail(&order_header)[..3],
        ["LIS", "", "P"],
        "{order_header}"
    );
    assert!(order_header.contains("|1394-97|"), "{order_header}");
}

#[test]
fn a_qc_value_that_overflows_is_an_error_naming_the_field() {
    // target + 3 SD = 1e308 + 3e308 overflowed to infinity, written as `inf` into the ASTM R
    // record (files already refused it).
    let mut json: serde_json::Value =
        serde_json::from_str(include_str!("../../../templates/stago_start4.json")).unwrap();
    json["qc_controls"][0]["target"] = 1e308.into();
    json["qc_controls"][0]["sd"] = 1e308.into();
    let t = lis_templates::load_str(
        &json.to_string(),
        std::path::Path::new("huge.json"),
        &lis_templates::Profiles::None,
    )
    .unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let options = GenerateOptions {
        qc_deviation: Some(3.0),
        ..GenerateOptions::default()
    };
    let e = generate(&t, &minter, &options, true).unwrap_err();
    assert_eq!(
        e.to_string(),
        "template huge: field PT: the QC value would be inf, not a finite number; check the \
         qc_controls target and sd"
    );
}

/// Whatever text the order's patient holds (delimiters, escape characters, CR, LF and other
/// controls, non-ASCII), a LIS reading the results gets back exactly what it sent, in ASTM and
/// in HL7: the echo escapes every value, so none can shift, split or end a field or record.
#[test]
fn any_ordered_patient_reads_back_unchanged() {
    use lis_templates::{OrderedPatient, OrderedSample};
    use proptest::prelude::*;
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let text = "(?s).{0,12}";
    let patient = (
        text,
        text,
        proptest::collection::vec(text, 0..5),
        text,
        text,
    )
        .prop_map(
            |(practice_id, laboratory_id, name, birth_date, sex)| OrderedPatient {
                practice_id,
                laboratory_id,
                name,
                birth_date,
                sex,
            },
        );
    // Empty trailing components are not written, so they do not come back.
    let trimmed = |name: &[String]| -> Vec<String> {
        let used = name
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        name[..used].to_vec()
    };
    let options = in_layout(Layout::Standard);
    proptest!(ProptestConfig::with_cases(256), |(patient in patient)| {
        let order = OrderedSample {
            sample_id: "DEV01260000000000001".into(),
            codes: vec!["PT".into()],
            patient: Some(patient.clone()),
        };
        let mut g = Generator::new(set.get("stago_start4").unwrap(), &minter, &options).unwrap();
        let astm = g.astm_order_results(std::slice::from_ref(&order)).unwrap().to_bytes();
        let message = astm_records::Message::parse(&astm).unwrap();
        let records = message.records();
        prop_assert_eq!(records.len(), 5, "{}", String::from_utf8_lossy(&astm));
        let astm_records::TypedRecord::Patient(p) = records[1].typed() else {
            panic!("{}", String::from_utf8_lossy(&astm));
        };
        let utf8 = astm_records::Charset::Auto;
        prop_assert_eq!(p.practice_patient_id().text_as(utf8), patient.practice_id.as_str());
        prop_assert_eq!(p.laboratory_patient_id().text_as(utf8), patient.laboratory_id.as_str());
        let name: Vec<String> = p
            .name()
            .components()
            .map(|c| c.text_as(utf8).into_owned())
            .collect();
        prop_assert_eq!(trimmed(&name), trimmed(&patient.name));
        prop_assert_eq!(p.birthdate().text_as(utf8), patient.birth_date.as_str());
        prop_assert_eq!(p.sex().text_as(utf8), patient.sex.as_str());

        let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
        let oru = g
            .hl7_order_results_for(Some(&patient), &[alt_order()])
            .unwrap()
            .to_wire();
        let message = mllp_hl7::Message::parse(oru.as_bytes()).unwrap();
        let pid = message.segment(b"PID").unwrap();
        let decoded = |n: usize| {
            String::from_utf8(pid.field(n).unwrap().decoded().into_owned()).unwrap()
        };
        prop_assert_eq!(decoded(3), patient.practice_id.clone());
        let name: Vec<String> = pid
            .field(5)
            .unwrap()
            .components()
            .map(|c| String::from_utf8(c.decoded().into_owned()).unwrap())
            .collect();
        prop_assert_eq!(trimmed(&name), trimmed(&patient.name));
        prop_assert_eq!(decoded(7), patient.birth_date.clone());
        prop_assert_eq!(decoded(8), patient.sex.clone());
        // Non-ASCII text is declared (MSH-18), so the receiver decodes it as UTF-8.
        let expected = if oru.is_ascii() {
            mllp_hl7::Charset::Ascii
        } else {
            mllp_hl7::Charset::Utf8
        };
        prop_assert_eq!(message.charset(), Ok(expected));
    });
}

/// A standard-layout ORU holding non-ASCII text declares UTF-8 in MSH-18 (IHE: only then);
/// with MSH-18 empty a receiver must read it as ASCII, and many read Latin-1. The OpenELIS
/// layout keeps the reference's empty MSH-18.
#[test]
fn an_oru_with_non_ascii_text_declares_utf8() {
    use lis_templates::OrderedPatient;
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let rene = OrderedPatient {
        practice_id: "P7".into(),
        name: vec!["RENÉ".into()],
        ..OrderedPatient::default()
    };
    let msh18 = |layout: Layout, patient: &OrderedPatient| -> String {
        let options = in_layout(layout);
        let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
        let oru = g
            .hl7_order_results_for(Some(patient), &[alt_order()])
            .unwrap();
        oru.segments[0].split('|').nth(17).unwrap_or("").to_owned()
    };
    assert_eq!(msh18(Layout::Standard, &rene), "UNICODE UTF-8");
    let ascii = OrderedPatient {
        name: vec!["RENE".into()],
        ..rene.clone()
    };
    assert_eq!(msh18(Layout::Standard, &ascii), "");
    assert_eq!(msh18(Layout::OpenElis, &rene), "");
}

/// A standard-layout ORU's OBR-4 echoes the service ID each order asked for (every
/// component, delimiters in it escaped, read back unchanged), where a LIS matching results to
/// orders compares it; it was the template's panel whatever was ordered. An order without one
/// (and the OpenELIS layout, always) gets the template's panel.
#[test]
fn standard_hl7_order_results_echo_the_ordered_service() {
    let orm = mllp_hl7::Message::parse(
        b"MSH|^~\\&|LIS|LAB|SIM|SIM|20260101||ORM^O01|C1|P|2.5.1\rPID|1||P1\r\
          ORC|NW|PL-1\rOBR|1|PL-1||ALT^ALT \\T\\ friends^LN^^Alanine\r\
          ORC|NW|PL-2\rOBR|1|PL-2||^^^AST",
    )
    .unwrap();
    let orders = lis_templates::Hl7Orders::read(&orm).orders;
    assert_eq!(
        orders[0].service,
        ["ALT", "ALT & friends", "LN", "", "Alanine"]
    );
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let obr4 = |layout: Layout| -> Vec<Vec<String>> {
        let options = in_layout(layout);
        let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
        let oru = g.hl7_order_results_for(None, &orders).unwrap().to_bytes();
        let message = mllp_hl7::Message::parse(&oru).unwrap();
        message
            .segments_named(b"OBR")
            .map(|obr| {
                obr.field(4)
                    .unwrap()
                    .components()
                    .map(|c| String::from_utf8(c.decoded().into_owned()).unwrap())
                    .collect()
            })
            .collect()
    };
    assert_eq!(
        obr4(Layout::Standard),
        [
            vec!["ALT", "ALT & friends", "LN", "", "Alanine"],
            vec!["", "", "", "AST"]
        ]
    );
    let panel = ["", "", "", "CHEM", "CHEMISTRY PANEL"];
    assert_eq!(obr4(Layout::OpenElis), [panel]);
    let without = lis_templates::OrderGroup {
        service: Vec::new(),
        ..orders[1].clone()
    };
    let options = in_layout(Layout::Standard);
    let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
    let oru = g.hl7_order_results_for(None, &[without]).unwrap();
    assert!(
        oru.segments[3].starts_with("OBR|1|PL-2||CHEM^CHEMISTRY PANEL|"),
        "{}",
        oru.segments[3]
    );
}

/// The OpenELIS layout writes the reference's bytes, but a patient ID, sample ID or test code
/// holding an ASTM delimiter is escaped, so it reads back as one value: `A^B` went out raw and
/// split P.4 into two components, and an ordered code `X&Y` opened an escape sequence in R.3.
#[test]
fn the_openelis_layout_escapes_ids_holding_delimiters() {
    use astm_records::{Delimiters, Record};
    use lis_templates::OrderedSample;
    let id = r"MRN^4711&B\C";
    let read = |record: &str, number: usize| {
        let record = Record::parse(record.as_bytes(), &Delimiters::STANDARD).unwrap();
        let field = record.field(number);
        assert_eq!(field.repeats().count(), 1, "{number} in {record:?}");
        assert_eq!(field.components().count(), 1, "{number} in {record:?}");
        field.component(1).text().into_owned()
    };
    let options = GenerateOptions {
        layout: Layout::OpenElis,
        ..options(Some(id), None)
    };
    let Ok(Output::Astm(messages)) = run("horiba_micros60", &options, false) else {
        panic!()
    };
    let p = messages[0]
        .records
        .iter()
        .find(|r| r.starts_with("P|"))
        .unwrap();
    assert_eq!(read(p, 4), id, "{p}");

    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let order = OrderedSample {
        sample_id: "S^1&2".into(),
        codes: vec!["PT".into(), "X&Y".into()],
        patient: None,
    };
    let mut g = Generator::new(set.get("stago_start4").unwrap(), &minter, &options).unwrap();
    let astm = g.astm_order_results(std::slice::from_ref(&order)).unwrap();
    let record = |kind: &str| astm.records.iter().find(|r| r.starts_with(kind)).unwrap();
    assert_eq!(read(record("P|"), 3), id);
    assert_eq!(read(record("O|"), 3), "S^1&2");
    // The unknown code is reported not performed, under its own (escaped) name.
    let unknown = astm.records.iter().find(|r| r.contains("X&E&Y")).unwrap();
    assert!(unknown.starts_with("R|2|^^^X&E&Y|"), "{unknown}");
    // Ordinary values keep the reference's bytes.
    assert!(
        record("R|1|").starts_with("R|1|^^^PT|"),
        "{}",
        record("R|1|")
    );

    // HL7 PID-3 likewise: the OpenELIS layout escaped only `|` and line breaks.
    let pid3 = |segments: &[String]| -> String {
        let wire = segments.join("\r");
        let message = mllp_hl7::Message::parse(wire.as_bytes()).unwrap();
        let cx = message.get("PID-3").unwrap().unwrap();
        assert_eq!(cx.component(4).unwrap().decoded().as_ref(), b"HOSPITAL");
        String::from_utf8(cx.component(1).unwrap().decoded().into_owned()).unwrap()
    };
    let Ok(Output::Hl7(oru)) = run("mindray_bs360e", &options, false) else {
        panic!()
    };
    assert_eq!(pid3(&oru.segments), id);
    let mut g = Generator::new(set.get("mindray_bs360e").unwrap(), &minter, &options).unwrap();
    let oru = g
        .hl7_order_results(&["P1"], &["F1"], &["ALT".into()])
        .unwrap();
    assert_eq!(pid3(&oru.segments), id);
}

/// A clock the generated times cannot be computed from (a year before 1901 or after 9998:
/// runs, calibrations and expiry dates reach a year around it, and XLSX dates stop at 1900
/// and 9999) is an option error, not a panic or a late XLSX failure.
#[test]
fn a_clock_outside_the_years_files_can_hold_is_an_option_error() {
    use lis_templates::chrono::NaiveDate;
    let set = TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    for year in [1, 1900, 9999, 200_000] {
        let now = NaiveDate::from_ymd_opt(year, 6, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        let options = GenerateOptions {
            now: Some(now),
            ..GenerateOptions::default()
        };
        let error =
            generate(set.get("stago_start4").unwrap(), &minter, &options, false).unwrap_err();
        assert!(
            error.to_string().contains("invalid option now"),
            "{year}: {error}"
        );
    }
}

/// An OML^O33's specimens are grouped as HL7 has them: SPM-2's placer and filler IDs and the
/// SAC-3 container IDs after the SPM name one specimen; a SAC before any SPM is one of its
/// own. A message naming tens of thousands of specimens is read in one pass (each set
/// once), as its orders are.
#[test]
fn oml_specimens_are_grouped_by_spm() {
    let oml = mllp_hl7::Message::parse(
        b"MSH|^~\\&|LIS|LAB|SIM|SIM|20260101||OML^O33^OML_O33|C1|P|2.5.1\r\
          SAC|||LOOSE-1\rSPM|1|S-1&LIS^F-1&LAB\rSAC|||T-1\rSAC|||S-1\r\
          SPM|2|S-2\rORC|NW|PL-1\rOBR|1|PL-1||GLU\rSPM|3|S-1^F-1\r",
    )
    .unwrap();
    assert_eq!(
        lis_templates::Hl7Orders::read(&oml).specimens,
        [
            vec!["LOOSE-1"],
            vec!["S-1", "F-1", "T-1"],
            vec!["S-2"],
            vec!["S-1", "F-1"]
        ]
    );
    let mut many = b"MSH|^~\\&|LIS|LAB|SIM|SIM|20260101||OML^O33^OML_O33|C2|P|2.5.1\r".to_vec();
    for n in 0..40_000 {
        many.extend_from_slice(format!("SPM|{n}|S-{n}\rSAC|||T-{n}\r").as_bytes());
    }
    let read = lis_templates::Hl7Orders::read(&mllp_hl7::Message::parse(&many).unwrap());
    assert_eq!(read.specimens.len(), 40_000);
    assert_eq!(read.specimens[39_999], ["S-39999", "T-39999"]);
}
