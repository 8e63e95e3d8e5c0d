//! Loading: every OpenELIS template file, the embedded set, errors that name file, path and reason.

mod common;

use std::path::Path;

use common::{data, profiles};
use lis_templates::{
    Category, FieldType, Profiles, ProtocolKind, TemplateError, TemplateSet, load_file, load_str,
    template_files,
};

const OPENELIS_19: [&str; 19] = [
    "abbott_architect_hl7",
    "genexpert",
    "genexpert_astm",
    "hain_fluorocycler",
    "horiba_micros60",
    "horiba_pentra60",
    "mindray_ba88a",
    "mindray_bc2000",
    "mindray_bc5380",
    "mindray_bs200",
    "mindray_bs300",
    "mindray_bs360e",
    "multiskan_fc",
    "quantstudio5",
    "quantstudio7",
    "stago_start4",
    "sysmex_xn",
    "tecan_f50",
    "wondfo_finecare",
];

#[test]
fn every_openelis_template_file_loads_unchanged() {
    let files = template_files(&data().join("templates")).unwrap();
    assert_eq!(files.len(), 19);
    for file in files {
        let template = load_file(&file, &profiles()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!template.fields.is_empty(), "{}", template.name);
    }
}

#[test]
fn profile_backed_templates_derive_their_fields() {
    let set = TemplateSet::load_dir(&data().join("templates"), &profiles()).unwrap();
    let count = |name: &str| set.get(name).unwrap().fields.len();
    assert_eq!(count("genexpert_astm"), 28);
    assert_eq!(count("mindray_bc5380"), 13);
    assert_eq!(count("mindray_bs200"), 8);
    assert_eq!(count("mindray_bs300"), 8);
    let gx = set.get("genexpert_astm").unwrap();
    assert_eq!(gx.profile.as_deref(), Some("astm/genexpert-astm"));
    let hiv = gx.field("HIV-VL").unwrap();
    assert_eq!(hiv.version.as_deref(), Some("1.0"));
    assert_eq!(hiv.seed_value.as_ref().unwrap().to_string(), "1250");
    assert_eq!(hiv.complementary_results[0].name, "Conc/LOG");
    let mtb = gx.field("MTB").unwrap();
    assert_eq!(mtb.kind, FieldType::Qualitative);
    assert_eq!(mtb.seed_qualitative.as_deref(), Some("NOT DETECTED"));
    let bc = set.get("mindray_bc5380").unwrap();
    assert_eq!(
        bc.field("WBC")
            .unwrap()
            .seed_value
            .as_ref()
            .unwrap()
            .to_string(),
        "7.5"
    );
    assert_eq!(
        bc.field("RBC")
            .unwrap()
            .seed_value
            .as_ref()
            .unwrap()
            .to_string(),
        "0"
    );
}

#[test]
fn branch_templates_load_except_the_two_that_break_the_schema() {
    let mut failures = Vec::new();
    for file in template_files(&data().join("templates-branch")).unwrap() {
        if let Err(e) = load_file(&file, &profiles()) {
            failures.push(e.to_string());
        }
    }
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(
        failures[0].contains(
            "dtprime.json: $: needs exactly one of \"fields\" or \"profile\"; found none"
        )
    );
    assert!(failures[1].contains(
        "quantstudio7.json: $.testSamples[0].sampleId: \"LM2024001\" does not match pattern ^DEV01[0-9]{15}$"
    ));
}

#[test]
fn embedded_templates_cover_all_openelis_names_and_the_branch() {
    let set = TemplateSet::embedded().unwrap();
    for name in OPENELIS_19 {
        assert!(set.get(name).is_ok(), "{name}");
    }
    for name in [
        "dtprime",
        "fluorocycler_xt",
        "multiskan_fc_grid",
        "tecan_f50_grid",
        "quantstudio7_xls",
        "tecan_f50_magellan",
        "multiskan_fc_wells",
    ] {
        assert!(set.get(name).is_ok(), "{name}");
    }
    assert_eq!(set.len(), 26);
    // Profile-backed templates are materialised, so the embedded set needs no profiles.
    assert_eq!(set.get("genexpert_astm").unwrap().fields.len(), 28);
}

#[test]
fn an_unknown_name_is_answered_with_the_names_there_are() {
    let set = TemplateSet::embedded().unwrap();
    let e = set.get("genexpert-astm").unwrap_err();
    let TemplateError::NotFound { name, known } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(name, "genexpert-astm");
    assert_eq!(known.len(), 26);
    let text = e.to_string();
    assert!(
        text.starts_with("no template named \"genexpert-astm\"; the set has "),
        "{text}"
    );
    assert!(text.contains("genexpert_astm, "), "{text}");
    assert_eq!(
        TemplateSet::default().get("x").unwrap_err().to_string(),
        "no template named \"x\"; the set has no templates"
    );
}

#[test]
fn embedded_templates_fix_the_reference_defects() {
    let set = TemplateSet::embedded().unwrap();
    let sysmex = set.get("sysmex_xn").unwrap();
    assert_eq!(sysmex.fields[0].code, "WBC");
    assert_eq!(sysmex.fields[0].loinc.as_deref(), Some("6690-2"));
    assert!(sysmex.fields.iter().all(|f| f.seed_value.is_some()));
    let ba88a = set.get("mindray_ba88a").unwrap();
    assert_eq!(ba88a.analyzer.category, Some(Category::Chemistry));
    assert_eq!(ba88a.fields[0].code, "GLU");
    for name in ["genexpert", "quantstudio5", "quantstudio7"] {
        assert_eq!(
            set.get(name).unwrap().analyzer.category,
            Some(Category::Molecular),
            "{name}"
        );
    }
    assert_eq!(
        set.get("tecan_f50")
            .unwrap()
            .file_config
            .as_ref()
            .unwrap()
            .delimiter
            .as_deref(),
        Some(",")
    );
    assert_eq!(
        set.get("multiskan_fc")
            .unwrap()
            .file_config
            .as_ref()
            .unwrap()
            .skip_rows,
        Some(0)
    );
    assert!(!set.get("dtprime").unwrap().fields.is_empty());
}

#[test]
fn typed_model() {
    let set = TemplateSet::embedded().unwrap();
    let micros = set.get("horiba_micros60").unwrap();
    assert_eq!(micros.protocol.kind, ProtocolKind::Astm);
    assert_eq!(
        micros.identification.astm_header.as_deref(),
        Some("ABX^MICROS60^V1.5")
    );
    assert_eq!(micros.serial_config.as_ref().unwrap().baud_rate, 9600);
    assert_eq!(micros.lane(), "61");
    assert_eq!(micros.qc_controls.len(), 5);
    assert_eq!(micros.qc_controls[0].lot(), "LOT-WBC-N");
    let qs5 = set.get("quantstudio5").unwrap();
    assert_eq!(qs5.qc_controls[1].sd, Some(0.4));
    assert_eq!(
        qs5.qc_sample_id_pattern.as_deref(),
        Some("{level}-{lot}-001")
    );
    assert!(
        set.get("hain_fluorocycler")
            .unwrap()
            .extra
            .contains_key("fixture")
    );
}

fn schema_error(json: &str) -> (String, String, String) {
    match load_str(json, Path::new("bad/x.json"), &Profiles::None) {
        Err(TemplateError::Schema { file, path, reason }) => {
            (file.display().to_string(), path, reason)
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
}

const MINIMAL: &str = r#"{"analyzer":{"name":"A","model":"M","manufacturer":"X"},"protocol":{"type":"ASTM"},"fields":[{"code":"GLU","name":"Glucose","type":"NUMERIC"}]}"#;

#[test]
fn schema_errors_name_file_path_and_reason() {
    assert!(load_str(MINIMAL, Path::new("ok.json"), &Profiles::None).is_ok());
    let cases = [
        (
            MINIMAL.replace(r#""type":"ASTM""#, r#""type":"SMOKE""#),
            "$.protocol.type",
            "\"SMOKE\" is not one of",
        ),
        (
            MINIMAL.replace(r#""type":"NUMERIC""#, r#""type":7"#),
            "$.fields[0].type",
            "expected string, found integer 7",
        ),
        (
            MINIMAL.replace(r#""code":"GLU","#, ""),
            "$.fields[0]",
            "missing required key \"code\"",
        ),
        (
            MINIMAL.replace(r#","manufacturer":"X""#, ""),
            "$.analyzer",
            "missing required key \"manufacturer\"",
        ),
        (
            MINIMAL.replace(
                r#""fields":"#,
                r#""testSample":{"id":"SPECIMEN-GX-001"},"fields":"#,
            ),
            "$.testSample.id",
            "does not match pattern ^[0-9]{2}$",
        ),
        (
            MINIMAL.replace(
                r#""fields":[{"code":"GLU","name":"Glucose","type":"NUMERIC"}]"#,
                r#""fields":[]"#,
            ),
            "$.fields",
            "needs at least 1 item(s), found 0",
        ),
        (
            MINIMAL.replace(r#""fields":"#, r#""profile":"hl7/x","fields":"#),
            "$",
            "needs exactly one of \"fields\" or \"profile\"; found more than one",
        ),
        (
            MINIMAL.replace(
                r#""fields":"#,
                r#""qc_controls":[{"field_code":"GLU","sd":-1}],"fields":"#,
            ),
            "$.qc_controls[0].sd",
            "less than the minimum 0",
        ),
        (
            MINIMAL.replace(
                r#""fields":"#,
                r#""qc_sample_id_pattern":"QC-{colour}","fields":"#,
            ),
            "$.qc_sample_id_pattern",
            "unknown placeholder {colour}",
        ),
        (
            MINIMAL.replace(r#""fields":"#, r#""qcSample":{"id":"DEV01"},"fields":"#),
            "$.qcSample.id",
            "does not match pattern",
        ),
        // Was accepted, and a QC control naming the code was blamed instead.
        (
            MINIMAL.replace(r#""code":"GLU""#, r#""code":" ""#),
            "$.fields[0].code",
            "\" \" is empty; a field needs the analyzer's test code",
        ),
    ];
    for (json, path, reason) in cases {
        let (file, got_path, got_reason) = schema_error(&json);
        assert_eq!(file, "bad/x.json");
        assert_eq!(got_path, path, "{got_reason}");
        assert!(got_reason.contains(reason), "{got_reason}");
    }
}

#[test]
fn values_the_typed_model_refuses_are_reported_at_their_json_path() {
    // The schema declares baud_rate an integer without a minimum; the model's u32 refused -5,
    // and the error used to point at `$`.
    let (file, path, reason) = schema_error(&MINIMAL.replace(
        r#""fields":"#,
        r#""serial_config":{"baud_rate":-5},"fields":"#,
    ));
    assert_eq!(file, "bad/x.json");
    assert_eq!(path, "$.serial_config.baud_rate", "{reason}");
    assert!(reason.contains("invalid value: integer `-5`"), "{reason}");
    // A null where a string is due reads "found null", once.
    let (_, path, reason) = schema_error(&MINIMAL.replace(
        r#""type":"NUMERIC""#,
        r#""type":"NUMERIC","normalRange":null"#,
    ));
    assert_eq!(path, "$.fields[0].normalRange");
    assert_eq!(reason, "expected string, found null");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    // Notepad writes one; it was refused as "invalid json at line 1, column 1: expected value".
    let with_bom = format!("\u{feff}{MINIMAL}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notepad.json");
    std::fs::write(&path, &with_bom).unwrap();
    let t = load_file(&path, &Profiles::None).unwrap();
    assert_eq!(t.name, "notepad");
    assert_eq!(t.fields[0].code, "GLU");
}

#[test]
fn json_io_and_profile_errors() {
    let e = load_str("{\n  \"analyzer\": ", Path::new("t.json"), &Profiles::None).unwrap_err();
    assert!(matches!(e, TemplateError::Json { line: 2, .. }), "{e}");
    assert!(e.to_string().starts_with("t.json: invalid json at line 2"));
    // The position is said once, not again at the end of serde_json's message.
    assert_eq!(
        e.to_string(),
        "t.json: invalid json at line 2, column 14: EOF while parsing a value"
    );
    let e = load_file(Path::new("/nonexistent/t.json"), &Profiles::None).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/t.json: cannot read")
    );
    let backed = r#"{"analyzer":{"name":"A","model":"M","manufacturer":"X"},"protocol":{"type":"HL7"},"profile":"hl7/nope"}"#;
    let e = load_str(backed, Path::new("p.json"), &profiles()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("p.json: $.profile: profile \"hl7/nope\": cannot read"),
        "{e}"
    );
    // `.json` in the reference: the file tried is `….json.json`; the error says what to write.
    let with_extension = backed.replace("hl7/nope", "hl7/mindray-bc5380.json");
    let e = load_str(&with_extension, Path::new("p.json"), &profiles()).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("(write the reference without .json: \"hl7/mindray-bc5380\")"),
        "{e}"
    );
    let escape = backed.replace("hl7/nope", "../../etc/passwd");
    let e = load_str(&escape, Path::new("p.json"), &profiles()).unwrap_err();
    assert!(e.to_string().contains("must be a relative path"), "{e}");
    let e = load_str(backed, Path::new("p.json"), &Profiles::None).unwrap_err();
    assert!(
        e.to_string()
            .contains("no analyzer-profiles directory was given"),
        "{e}"
    );
}

#[test]
fn arbitrary_json_never_panics() {
    use proptest::prelude::*;
    proptest!(|(text in "\\PC{0,200}")| {
        let _ = load_str(&text, Path::new("fuzz.json"), &Profiles::None);
    });
    // Structured junk: a real template with values swapped for other JSON types.
    let base: serde_json::Value = serde_json::from_str(MINIMAL).unwrap();
    for replacement in [
        serde_json::json!(null),
        serde_json::json!(1.5),
        serde_json::json!([]),
        serde_json::json!("x"),
    ] {
        for key in [
            "analyzer",
            "protocol",
            "fields",
            "testSample",
            "qc_controls",
            "file_config",
            "astm_config",
        ] {
            let mut v = base.clone();
            v[key] = replacement.clone();
            let _ = load_str(&v.to_string(), Path::new("fuzz.json"), &Profiles::None);
        }
    }
}

/// Fields the schema accepts but generation cannot use are refused at load, the error naming the
/// file, the field code and the bad value.
#[test]
fn invalid_fields_are_refused_naming_file_code_and_value() {
    let with_range = |range: &str| {
        MINIMAL.replace(
            r#""type":"NUMERIC"}"#,
            &format!(r#""type":"NUMERIC","normalRange":"{range}"}}"#),
        )
    };
    assert!(
        load_str(
            &with_range("4.0-10.0"),
            Path::new("ok.json"),
            &Profiles::None
        )
        .is_ok()
    );
    assert!(load_str(&with_range(""), Path::new("ok.json"), &Profiles::None).is_ok());
    for (range, why) in [
        ("10.0-4.0", "reversed"),
        ("4,0-10,0", "decimal comma"),
        ("abc", "is not lo-hi"),
        ("<inf", "not a finite number"),
        ("NaN-5", "not a finite number"),
        (">1e308", "overflows"),
        ("-1e308-1e308", "overflows"),
    ] {
        let (file, path, reason) = schema_error(&with_range(range));
        assert_eq!(file, "bad/x.json");
        assert_eq!(path, "$.fields[0].normalRange", "{range}");
        assert!(
            reason.contains("\"GLU\"") && reason.contains(range) && reason.contains(why),
            "{range}: {reason}"
        );
    }
    let twice = MINIMAL.replace(
        r#"}]}"#,
        r#"},{"code":"GLU","name":"Glucose again","type":"NUMERIC"}]}"#,
    );
    let (_, path, reason) = schema_error(&twice);
    assert_eq!(path, "$.fields[1].code");
    assert!(
        reason.contains("duplicate") && reason.contains("\"GLU\""),
        "{reason}"
    );
    let control = MINIMAL.replace(
        r#"}]}"#,
        r#"}],"qc_controls":[{"field_code":"GLUC","target":5.0,"sd":0.5}]}"#,
    );
    let (_, path, reason) = schema_error(&control);
    assert_eq!(path, "$.qc_controls[0].field_code");
    assert!(
        reason.contains("\"GLUC\"") && reason.contains("GLU"),
        "{reason}"
    );
    // A qualitative field without possibleValues stays allowed (generation has defaults).
    let qualitative = MINIMAL.replace(r#""type":"NUMERIC""#, r#""type":"QUALITATIVE""#);
    assert!(load_str(&qualitative, Path::new("ok.json"), &Profiles::None).is_ok());
}

/// A `seedValues` or `fieldOverrides` key the profile does not have is a typo: refused at load
/// (it used to be dropped silently), the error naming the file, the key and the known codes.
#[test]
fn overrides_for_codes_the_profile_lacks_are_refused() {
    let mut map = std::collections::BTreeMap::new();
    map.insert(
        "hl7/p".to_owned(),
        serde_json::json!({"default_test_mappings": [{"test_code": "GLU", "unit": "mg/dL"}]}),
    );
    let profiles = Profiles::Map(map);
    let base = r#"{"analyzer": {"name": "X", "model": "X", "manufacturer": "X"},
      "protocol": {"type": "HL7"}, "profile": "hl7/p", KEYS}"#;
    let ok = base.replace(
        "KEYS",
        r#""seedValues": {"GLU": 99}, "fieldOverrides": {"GLU": {"normalRange": "70-110"}}"#,
    );
    let t = load_str(&ok, Path::new("t.json"), &profiles).unwrap();
    assert_eq!(t.fields[0].normal_range.as_deref(), Some("70-110"));
    for (keys, what) in [
        (r#""seedValues": {"GLUC": 99}"#, "seedValues"),
        (
            r#""fieldOverrides": {"GLUC": {"normalRange": "70-110"}}"#,
            "fieldOverrides",
        ),
    ] {
        let e = load_str(&base.replace("KEYS", keys), Path::new("t.json"), &profiles).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, TemplateError::Profile { .. }), "{text}");
        assert!(
            text.starts_with("t.json: ")
                && text.contains(what)
                && text.contains("\"GLUC\"")
                && text.contains("GLU"),
            "{text}"
        );
    }
}

/// `lo-hi` includes its bounds; `<x` and `>x` are strict, so `x` itself is abnormal.
#[test]
fn strict_range_bounds_flag_the_bound_itself() {
    use lis_templates::NormalRange;
    let flag = |range: &str, value: f64| NormalRange::parse(range).unwrap().flag(value);
    assert_eq!(flag("<5", 5.0), "H");
    assert_eq!(flag("<5", 4.99), "N");
    assert_eq!(flag(">5", 5.0), "L");
    assert_eq!(flag(">5", 5.01), "N");
    assert_eq!(flag("4-10", 4.0), "N");
    assert_eq!(flag("4-10", 10.0), "N");
    assert_eq!(flag("4-10", 3.9), "L");
    assert_eq!(flag("4-10", 10.1), "H");
}

/// The embedded `mindray_bc5380` gives every field a typical seed (the reference's profile
/// derivation leaves 8 of 13 at `0`, as the test above shows), and its `%` differential sums
/// to 100.
#[test]
fn embedded_bc5380_seeds_are_typical_results() {
    let set = TemplateSet::embedded().unwrap();
    let bc = set.get("mindray_bc5380").unwrap();
    let seed = |code: &str| {
        bc.field(code)
            .unwrap()
            .seed_value
            .as_ref()
            .and_then(serde_json::Number::as_f64)
            .unwrap()
    };
    for field in &bc.fields {
        assert!(seed(&field.code) > 0.0, "{} seeds 0", field.code);
    }
    let differential: f64 = ["NEUT", "LYMPH", "MONO", "EOS", "BASO"]
        .into_iter()
        .map(seed)
        .sum();
    assert!((differential - 100.0).abs() < 1e-9, "{differential}");
}

/// The mock's profile loader builds `analyzer` from the profile's `analyzer_name`,
/// `manufacturer` and `category` when a profile-backed template has none; such a template
/// loaded there and was refused here ("missing required key \"analyzer\"").
#[test]
fn a_profile_backed_template_without_analyzer_takes_it_from_the_profile() {
    let text = r#"{"protocol":{"type":"HL7","version":"2.3.1"},"profile":"hl7/mindray-bs200"}"#;
    let t = load_str(text, Path::new("bs200.json"), &profiles()).unwrap();
    assert_eq!(t.analyzer.name, "Mindray BS-200");
    assert_eq!(t.analyzer.model, "Mindray BS-200");
    assert_eq!(t.analyzer.manufacturer, "Mindray");
    assert_eq!(t.analyzer.category, Some(Category::Chemistry));
    assert_eq!(t.fields.len(), 8);
    // An `analyzer` of the template's own wins; without a profile it is still required.
    let own = r#"{"analyzer":{"name":"A","model":"M","manufacturer":"X"},"protocol":{"type":"HL7"},"profile":"hl7/mindray-bs200"}"#;
    let t = load_str(own, Path::new("own.json"), &profiles()).unwrap();
    assert_eq!((t.analyzer.name.as_str(), t.analyzer.category), ("A", None));
    let bare = r#"{"protocol":{"type":"HL7"},"fields":[{"code":"A","name":"A","type":"NUMERIC"}]}"#;
    let e = load_str(bare, Path::new("bare.json"), &profiles())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing required key \"analyzer\""), "{e}");
}

/// A QUALITATIVE field's `normalRange` is any text to the OpenELIS schema (a rapid test's
/// `NEGATIVE`), and nothing is drawn from it: the template loads, and the standard layout
/// reports the text as written. The loader took it for a numeric range and refused the
/// whole template (and with `--templates-dir` the simulator would not start). A NUMERIC
/// field's text range is still refused.
#[test]
fn a_text_range_on_a_qualitative_field_loads_and_is_reported_as_written() {
    use lis_templates::{AccessionMinter, GenerateOptions, Output, generate};
    let rapid = |kind: &str| {
        format!(
            r#"{{
              "analyzer": {{"name": "Rapid HIV", "model": "RT", "manufacturer": "Acme", "category": "IMMUNOLOGY"}},
              "protocol": {{"type": "ASTM", "version": "LIS2-A2"}},
              "identification": {{"astm_header": "ACME^RT^1.0"}},
              "fields": [
                {{"code": "HIV", "name": "HIV 1/2", "type": "{kind}", "normalRange": "NEGATIVE",
                 "possibleValues": ["NEGATIVE", "POSITIVE"], "seedQualitative": "NEGATIVE"}}
              ]
            }}"#
        )
    };
    let template = load_str(
        &rapid("QUALITATIVE"),
        Path::new("rapid_hiv.json"),
        &Profiles::None,
    )
    .unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let Output::Astm(messages) =
        generate(&template, &minter, &GenerateOptions::default(), false).unwrap()
    else {
        panic!("not ASTM")
    };
    let r = messages[0]
        .records
        .iter()
        .find(|r| r.starts_with("R|"))
        .unwrap();
    assert_eq!(r.split('|').nth(5), Some("NEGATIVE"), "{r}");
    let refused = load_str(
        &rapid("NUMERIC"),
        Path::new("rapid_hiv.json"),
        &Profiles::None,
    )
    .unwrap_err();
    assert!(
        refused.to_string().contains("normalRange \"NEGATIVE\""),
        "{refused}"
    );
}
