//! The reference mock's generation rules one by one (OpenELIS mock notes, sections 5, 6, 7 and
//! 10), each on a small inline template, in the `openelis` layout unless a rule is about both.
//! The golden tests cover the shipped templates byte for byte; these cover the branches the
//! shipped templates never take (fallbacks, defaults, range forms, categories).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::at;
use lis_templates::{
    AccessionMinter, GenerateOptions, Layout, Output, Profiles, Template, ValueMode, generate,
    load_str,
};
use serde_json::{Value, json};

const NOW: &str = "20261121085941";

/// Loads `value`, giving fields without a `type` (required by the schema) `NUMERIC`.
fn template(mut value: Value) -> Template {
    if let Some(fields) = value.get_mut("fields").and_then(Value::as_array_mut) {
        for f in fields {
            if f.get("type").is_none() {
                f["type"] = json!("NUMERIC");
            }
        }
    }
    load_str(&value.to_string(), Path::new("t.json"), &Profiles::None).unwrap()
}

fn options(seed: u64) -> GenerateOptions {
    GenerateOptions {
        seed: Some(seed),
        now: Some(at(NOW)),
        layout: Layout::OpenElis,
        ..GenerateOptions::default()
    }
}

fn minter() -> AccessionMinter {
    AccessionMinter::with("DEV01", 26).unwrap()
}

fn astm(t: &Template, options: &GenerateOptions, qc: bool) -> Vec<Vec<String>> {
    match generate(t, &minter(), options, qc).unwrap() {
        Output::Astm(messages) => messages.into_iter().map(|m| m.records).collect(),
        other => panic!("not ASTM: {other:?}"),
    }
}

fn hl7(t: &Template, options: &GenerateOptions, qc: bool) -> Vec<String> {
    match generate(t, &minter(), options, qc).unwrap() {
        Output::Hl7(message) => message.segments,
        other => panic!("not HL7: {other:?}"),
    }
}

fn file(t: &Template, options: &GenerateOptions, qc: bool) -> lis_templates::FileOutput {
    match generate(t, &minter(), options, qc).unwrap() {
        Output::File(file) => file,
        other => panic!("not a file: {other:?}"),
    }
}

fn field(record: &str, n: usize) -> &str {
    record.split('|').nth(n - 1).unwrap_or("")
}

fn analyzer() -> Value {
    json!({"name": "Box", "model": "B1", "manufacturer": "Acme"})
}

fn astm_template(fields: Value) -> Template {
    template(json!({
        "analyzer": analyzer(),
        "protocol": {"type": "ASTM", "version": "LIS2-A2"},
        "fields": fields,
    }))
}

/// §6.2 H: H.5 is `astm_header`, else `manufacturer^model^name` with `^` taken out of each part.
#[test]
fn generator_a_sender_falls_back_to_manufacturer_model_name_without_carets() {
    let t = template(json!({
        "analyzer": {"name": "Big^Box", "model": "B^1", "manufacturer": "Ac^me"},
        "protocol": {"type": "ASTM"},
        "fields": [{"code": "GLU", "name": "Glucose", "seedValue": 5.5}],
    }));
    let h = &astm(&t, &options(1), false)[0][0];
    assert_eq!(h, &format!("H|\\^&|||Acme^B1^BigBox|||||||LIS2-A2|{NOW}"));
    let t = template(json!({
        "analyzer": analyzer(),
        "protocol": {"type": "ASTM"},
        "identification": {"astm_header": "ACME^BOX^V9"},
        "fields": [{"code": "GLU", "name": "Glucose", "seedValue": 5.5}],
    }));
    assert_eq!(field(&astm(&t, &options(1), false)[0][0], 5), "ACME^BOX^V9");
}

/// §6.2 P: without `testPatient`, `PAT-YYYYMMDD-NNN`, `Last^First`, sex M/F, birth date 1950–2000;
/// id P.4, name P.5, sex P.7, birth date P.8.
#[test]
fn generator_a_makes_up_a_patient_without_test_patient() {
    let t = astm_template(json!([{"code": "GLU", "name": "Glucose", "seedValue": 5.5}]));
    for seed in 0..20 {
        let p = astm(&t, &options(seed), false)[0][1].clone();
        let f: Vec<&str> = p.split('|').collect();
        assert_eq!(f.len(), 8, "{p}");
        assert_eq!((f[0], f[1], f[2], f[5]), ("P", "1", "", ""), "{p}");
        assert!(f[3].starts_with("PAT-20261121-") && f[3].len() == 16, "{p}");
        assert!(f[3][13..].bytes().all(|b| b.is_ascii_digit()), "{p}");
        assert_eq!(f[4].split('^').count(), 2, "{p}");
        assert!(f[6] == "M" || f[6] == "F", "{p}");
        let year: u32 = f[7][..4].parse().unwrap();
        assert!((1950..=2000).contains(&year) && f[7].len() == 8, "{p}");
    }
}

/// §6.2 O: `O|1|{accession}^LAB|{model}^{model} Panel||{now}`; lane 00 without `testSample`.
#[test]
fn generator_a_order_record_and_default_lane() {
    let t = astm_template(json!([{"code": "GLU", "name": "Glucose", "seedValue": 5.5}]));
    let o = &astm(&t, &options(1), false)[0][2];
    assert_eq!(
        o,
        &format!("O|1|DEV01260000000000001^LAB|B1^B1 Panel||{NOW}")
    );
}

/// §6.2 R: numeric, qualitative and text records, the seed, and `L|1|N`.
#[test]
fn generator_a_result_records_by_type() {
    let t = astm_template(json!([
        {"code": "GLU", "name": "Glucose", "unit": "mg/dL", "normalRange": "70-110", "seedValue": 95},
        {"code": "HIV", "name": "HIV Ab", "type": "QUALITATIVE", "unit": "x",
         "normalRange": "1-2", "possibleValues": ["REACTIVE", "NON-REACTIVE"],
         "seedQualitative": "NON-REACTIVE"},
        {"code": "CULT", "name": "Culture", "type": "TEXT"},
    ]));
    let m = &astm(&t, &options(1), false)[0];
    let end = field(&m[3], 10).to_owned();
    assert_eq!(m[3], format!("R|1|^^^GLU|95|mg/dL|70-110|N||F|{end}"));
    assert_eq!(m[4], format!("R|2|^^^HIV|NON-REACTIVE|||N||F|{end}"));
    assert_eq!(
        m[5],
        format!("R|3|^^^CULT|Sample result for Culture|||N||F|{end}")
    );
    assert_eq!(m[6], "L|1|N");
    let minutes = (at(&end) - at(NOW)).num_minutes();
    assert!((5..=30).contains(&minutes), "{end}");
}

fn drawn(t: &Template, seed: u64, i: usize) -> f64 {
    let m = &astm(t, &options(seed), false)[0];
    let text = field(&m[3 + i], 4).to_owned();
    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
    assert!(decimals <= 2, "{text} has more than 2 decimals");
    text.parse().unwrap()
}

/// §6.2 values: unseeded numerics are drawn uniformly within `lo-hi`, `<x` → 0..0.9x,
/// `>x` → 1.1x..2x, no range → 1..100, rounded to 2 decimals.
#[test]
fn unseeded_values_are_drawn_from_the_range_forms() {
    let t = astm_template(json!([
        {"code": "A", "name": "A", "normalRange": "4.0-10.0"},
        {"code": "B", "name": "B", "normalRange": "<5"},
        {"code": "C", "name": "C", "normalRange": ">50"},
        {"code": "D", "name": "D"},
    ]));
    let mut seen = [(f64::MAX, f64::MIN); 4];
    for seed in 0..200 {
        for (i, s) in seen.iter_mut().enumerate() {
            let v = drawn(&t, seed, i);
            *s = (s.0.min(v), s.1.max(v));
        }
    }
    let within = |(lo, hi): (f64, f64), a: f64, b: f64| lo >= a && hi <= b;
    assert!(within(seen[0], 4.0, 10.0), "{:?}", seen[0]);
    assert!(within(seen[1], 0.0, 4.5), "{:?}", seen[1]);
    assert!(within(seen[2], 55.0, 100.0), "{:?}", seen[2]);
    assert!(within(seen[3], 1.0, 100.0), "{:?}", seen[3]);
    // and they are spread over the interval, not stuck at one end
    assert!(seen[1].1 - seen[1].0 > 3.0, "{:?}", seen[1]);
    assert!(seen[2].1 - seen[2].0 > 30.0, "{:?}", seen[2]);
}

/// §5.4 / §6.5: units are written as they are, `μ` as UTF-8 (`CE BC`), in ASTM and HL7.
#[test]
fn units_with_mu_are_written_as_utf8() {
    let t =
        astm_template(json!([{"code": "WBC", "name": "WBC", "unit": "10^3/μL", "seedValue": 6.2}]));
    let r = &astm(&t, &options(1), false)[0][3];
    assert_eq!(field(r, 5), "10^3/μL");
    assert!(r.as_bytes().windows(2).any(|w| w == [0xce, 0xbc]));
    let t = template(json!({
        "analyzer": analyzer(), "protocol": {"type": "HL7"},
        "fields": [{"code": "WBC", "name": "WBC", "unit": "10^3/μL", "seedValue": 6.2}],
    }));
    assert_eq!(field(&hl7(&t, &options(1), false)[4], 7), "10^3/μL");
}

fn genexpert(fields: Value, config: Value) -> Template {
    template(json!({
        "analyzer": analyzer(),
        "protocol": {"type": "ASTM", "version": "1394-97"},
        "astm_config": config,
        "fields": fields,
    }))
}

/// §6.3 H defaults: H.12 `P`, H.13 `LIS2-A2`, H.10 empty; `MSG-` + 12 hex digits in H.3.
#[test]
fn generator_b_header_defaults() {
    let t = genexpert(
        json!([{"code": "MTB", "name": "MTB", "type": "QUALITATIVE", "possibleValues": ["DETECTED", "NOT DETECTED"]}]),
        json!({}),
    );
    let h = &astm(&t, &options(1), false)[0][0];
    let f: Vec<&str> = h.split('|').collect();
    assert_eq!(f.len(), 14, "{h}");
    assert!(f[2].starts_with("MSG-") && f[2].len() == 16, "{h}");
    assert!(f[2][4..].bytes().all(|b| b.is_ascii_hexdigit()), "{h}");
    assert_eq!(
        (f[9], f[11], f[12], f[13]),
        ("", "P", "LIS2-A2", NOW),
        "{h}"
    );
}

/// §6.3 R.3 forms and values: with `version` the 8-component form, without it `^^^code`;
/// a complementary result without a seed gets `^{0.1..10}`, with the field's operator and times.
#[test]
fn generator_b_result_identifiers_and_complementary_values() {
    let t = genexpert(
        json!([
            {"code": "VL", "name": "Viral Load", "version": "1.0", "unit": "copies/mL",
             "normalRange": "20-1000", "seedValue": 500,
             "complementaryResults": [{"name": "Conc/LOG", "unit": "log"}]},
            {"code": "CT", "name": "CT", "type": "QUALITATIVE", "possibleValues": ["POSITIVE", "NEGATIVE"],
             "seedQualitative": "NEGATIVE"},
        ]),
        json!({"receiver_id": "LIS"}),
    );
    for seed in 0..30 {
        let m = &astm(&t, &options(seed), false)[0];
        let f: Vec<&str> = m[3].split('|').collect();
        let (op, start, end) = (f[10], f[11], f[12]);
        assert_eq!(
            m[3],
            format!("R|1|^^^VL^Viral Load^1.0^^|500|copies/mL|20-1000|N||F||{op}|{start}|{end}")
        );
        let c: Vec<&str> = m[4].split('|').collect();
        assert_eq!(c[2], "^^^VL^Viral Load^1.0^^Conc/LOG");
        let v: f64 = c[3].strip_prefix('^').unwrap().parse().unwrap();
        assert!((0.1..10.0).contains(&v), "{}", m[4]);
        assert_eq!(
            m[4],
            format!(
                "R|2|^^^VL^Viral Load^1.0^^Conc/LOG|{}|log||||F||{op}|{start}|{end}",
                c[3]
            )
        );
        assert_eq!(
            m[5],
            format!("R|3|^^^CT|NEGATIVE^|||||F||{op}|{start}|{end}")
        );
    }
}

/// §6.3 with `enable_qc` and a `qcSample`: a second message with its own H, O.3 the qcSample id,
/// O.12 its action code (default `Q`), patient `QC-PAT-NNN` / `QC^Control`.
#[test]
fn generator_b_qc_sample_message() {
    let t = template(json!({
        "analyzer": analyzer(),
        "protocol": {"type": "ASTM"},
        "astm_config": {"enable_qc": true},
        "qcSample": {"id": "DEV01261000000000999", "fields": [{"code": "VL", "seedValue": 1000}]},
        "fields": [{"code": "VL", "name": "VL", "seedValue": 500}],
    }));
    let m = astm(&t, &options(1), false);
    assert_eq!(m.len(), 2);
    assert!(m[1][0].starts_with("H|\\^&|MSG-"));
    let p: Vec<&str> = m[1][1].split('|').collect();
    assert!(
        p[3].starts_with("QC-PAT-") && p[3].len() == 10,
        "{}",
        m[1][1]
    );
    assert_eq!(p[4], "QC^Control");
    assert_eq!(field(&m[1][2], 3), "DEV01261000000000999");
    assert_eq!(field(&m[1][2], 12), "Q");
    assert_eq!(field(&m[1][3], 4), "1000");
    assert_eq!(field(&m[0][2], 12), "");
}

fn qc_template(category: Option<&str>, controls: Value) -> Template {
    let mut a = analyzer();
    if let Some(c) = category {
        a["category"] = json!(c);
    }
    template(json!({
        "analyzer": a,
        "protocol": {"type": "ASTM"},
        "qc_controls": controls,
        "fields": [
            {"code": "A", "name": "A", "unit": "u", "normalRange": "1-2", "seedValue": 40},
            {"code": "B", "name": "B", "seedValue": 7},
        ],
    }))
}

/// §7.1: SD = target × the category's share (HEMATOLOGY/CHEMISTRY 5 %, MOLECULAR 10 %,
/// COAGULATION 8 %, IMMUNOLOGY 10 %, none 5 %); target from `qc_controls` else `seedValue`.
#[test]
fn astm_qc_sd_follows_the_category_table() {
    for (category, expected) in [
        (Some("HEMATOLOGY"), "110.0"),
        (Some("CHEMISTRY"), "110.0"),
        (Some("MOLECULAR"), "120.0"),
        (Some("COAGULATION"), "116.0"),
        (Some("IMMUNOLOGY"), "120.0"),
        (Some("MICROBIOLOGY"), "110.0"),
        (None, "110.0"),
    ] {
        let t = qc_template(category, json!([{"field_code": "A", "target": 100.0}]));
        let o = GenerateOptions {
            qc_deviation: Some(2.0),
            ..options(1)
        };
        let m = &astm(&t, &o, true)[0];
        assert_eq!(field(&m[3], 4), expected, "{category:?}");
    }
    // target from seedValue (40, SD 2): +2 SD = 44
    let t = qc_template(Some("CHEMISTRY"), json!([{"field_code": "A"}]));
    let o = GenerateOptions {
        qc_deviation: Some(2.0),
        ..options(1)
    };
    assert_eq!(field(&astm(&t, &o, true)[0][3], 4), "44.0");
}

/// §6.4 / §7.1: missing lot → `LOT-{code}-N`, missing level → `N`; fields without a control are
/// skipped; the O record has 25 fields with O.12 `Q` and lane 98; negatives clamp to 0.0.
#[test]
fn astm_qc_defaults_skipping_and_clamping() {
    let t = qc_template(None, json!([{"field_code": "B", "target": 1.0}]));
    let o = GenerateOptions {
        qc_deviation: Some(-30.0),
        ..options(1)
    };
    let m = &astm(&t, &o, true)[0];
    assert_eq!(m.len(), 6, "{m:#?}");
    assert_eq!(m[1], "P|1||QCCTRL001|QC^Control||U|19000101");
    assert_eq!(m[2].split('|').count(), 25);
    assert_eq!(field(&m[2], 3), "DEV01269800000000001");
    assert_eq!(field(&m[2], 12), "Q");
    assert_eq!(m[3], format!("R|1|^^^B|0.0|||N||F|{NOW}"));
    assert_eq!(m[4], format!("Q|1|B^LOT-B-N^N|0.0||{NOW}"));
    assert_eq!(m[5], "L|1|N");
}

fn hl7_template(extra: Value, fields: Value) -> Template {
    let mut t = json!({"analyzer": analyzer(), "protocol": {"type": "HL7"}, "fields": fields});
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    template(t)
}

/// §6.6 MSH and PID defaults: MSH-3 `SIMULATOR`, MSH-4 `LAB`, MSH-12 `2.5.1`, PID-3 `PAT001^^^HOSPITAL`,
/// `RAKOTO^JAO`, 19850412, F; OBR-4 `^^^IMMUNO^IMMUNOASSAY PANEL`; `msh_sender` when no
/// `hl7_sending_app`; lane 00.
#[test]
fn hl7_defaults() {
    let t = hl7_template(
        json!({}),
        json!([{"code": "GLU", "name": "Glucose", "seedValue": 5}]),
    );
    let s = hl7(&t, &options(1), false);
    assert_eq!(
        s[0],
        format!("MSH|^~\\&|SIMULATOR|LAB|OpenELIS|LAB|{NOW}||ORU^R01|SIM{NOW}|P|2.5.1|||||||")
    );
    assert_eq!(
        s[1],
        "PID|1||PAT001^^^HOSPITAL||RAKOTO^JAO||19850412|F||||||||||||"
    );
    assert_eq!(s[2].split('|').count(), 23);
    assert_eq!(field(&s[2], 3), "DEV01260000000000001");
    assert_eq!(field(&s[3], 5), "^^^IMMUNO^IMMUNOASSAY PANEL");
    assert_eq!(field(&s[3], 9), NOW);
    assert_eq!(field(&s[3], 21), "F");
    assert_eq!(s[3].split('|').count(), 28);
    let t = hl7_template(
        json!({"identification": {"msh_sender": "GX"}, "protocol": {"type": "HL7", "version": "2.5"}}),
        json!([{"code": "GLU", "name": "Glucose", "seedValue": 5}]),
    );
    let msh = &hl7(&t, &options(1), false)[0];
    assert_eq!((field(msh, 3), field(msh, 12)), ("GX", "2.5"));
}

/// §6.6 OBX: NM for NUMERIC else ST; a whole float seed prints as an integer, no seed gives `0`;
/// QUALITATIVE takes the first possibleValue whatever `seedQualitative` says; TEXT takes
/// `seedValue` or `Result for {code}`; 16 fields, OBX-8 `N`, OBX-11 `F`.
#[test]
fn hl7_obx_types_and_values() {
    let t = hl7_template(
        json!({}),
        json!([
            {"code": "A", "name": "Alpha", "unit": "u", "seedValue": 42.0},
            {"code": "B", "name": "Beta", "normalRange": "1-9"},
            {"code": "C", "name": "Gamma", "type": "QUALITATIVE",
             "possibleValues": ["POS", "NEG"], "seedQualitative": "NEG"},
            {"code": "D", "name": "Delta", "type": "TEXT"},
            {"code": "E", "name": "Eps", "type": "TEXT", "seedValue": 3.5},
        ]),
    );
    let s = hl7(&t, &options(1), false);
    assert_eq!(s[4], "OBX|1|NM|^^^A^Alpha||42|u||N|||F|||||");
    assert_eq!(s[5], "OBX|2|NM|^^^B^Beta||0|||N|||F|||||");
    assert_eq!(s[6], "OBX|3|ST|^^^C^Gamma||POS|||N|||F|||||");
    assert_eq!(s[7], "OBX|4|ST|^^^D^Delta||Result for D|||N|||F|||||");
    assert_eq!(s[8], "OBX|5|ST|^^^E^Eps||3.5|||N|||F|||||");
    assert_eq!(s.len(), 9);
}

/// §6.6 / §7.2 HL7 QC: specimen `QC-{lot}-{level}` of the first control, `sd` absolute
/// (default 0: the target whatever the deviation), negatives not clamped.
#[test]
fn hl7_qc_values_use_the_absolute_sd_and_are_not_clamped() {
    let t = hl7_template(
        json!({"qc_controls": [
            {"field_code": "A", "target": 1.0, "sd": 1.0, "unit": "u"},
            {"field_code": "B", "lot_number": "L2", "level": "HIGH", "target": 50.0},
        ]}),
        json!([{"code": "A", "name": "A"}, {"code": "B", "name": "B"}]),
    );
    let o = GenerateOptions {
        qc_deviation: Some(-3.0),
        ..options(1)
    };
    let s = hl7(&t, &o, true);
    assert_eq!(field(&s[0], 10), format!("QC{NOW}"));
    assert_eq!(field(&s[2], 3), "QC-LOT-A-N-N");
    assert_eq!(s[4], "OBX|1|NM|^^^A^LOT-A-N^N||-2.0|u||N|||C|||||");
    assert_eq!(field(&s[5], 6), "50.0");
    assert_eq!(field(&s[5], 4), "^^^B^L2^HIGH");
}

fn file_template(config: Value) -> Template {
    template(json!({
        "analyzer": analyzer(),
        "protocol": {"type": "FILE"},
        "file_config": config,
        "qc_controls": [{"field_code": "A", "lot_number": "L1", "level": "LOW", "target": 2.0,
                         "sd": 1.0, "task": "QCT"}],
        "fields": [
            {"code": "A", "name": "A", "seedValue": 1.5},
            {"code": "B", "name": "B", "type": "QUALITATIVE", "possibleValues": ["Detected"]},
        ],
    }))
}

/// §6.7 FileHandler.generate: default column names, `Timestamp`, one row per field, lane 99,
/// LF; TSV → tab; `has_header` false → no header; XLS/XLSX still delimited text.
#[test]
fn result_file_columns_delimiters_and_header() {
    let t = file_template(json!({}));
    let f = file(&t, &options(1), false);
    assert_eq!(
        f.text().unwrap(),
        format!(
            "Sample Name,Target,Result,Timestamp\n\
             DEV01269900000000001,A,1.5,{NOW}\nDEV01269900000000001,B,Detected,{NOW}\n"
        )
    );
    assert!(f.file_name.ends_with(".csv"));
    let t = file_template(
        json!({"format": "TSV", "delimiter": ";", "has_header": false,
        "column_mapping": {"sample_id": "S", "test_code": "T", "result": "R"}}),
    );
    let text = file(&t, &options(1), false).text().unwrap().to_owned();
    assert_eq!(
        text,
        format!("DEV01269900000000001\tA\t1.5\t{NOW}\nDEV01269900000000001\tB\tDetected\t{NOW}\n")
    );
    let t = file_template(json!({"format": "XLSX", "delimiter": ";",
        "column_mapping": {"sample_id": "S", "test_code": "T", "result": "R"}}));
    let text = file(&t, &options(1), false).text().unwrap().to_owned();
    assert!(text.starts_with("S;T;R;Timestamp\n"), "{text}");
}

/// §6.7 FileHandler.generate_qc: header `[sample, test, Task, result, Timestamp]` with the QC
/// defaults, extension by format (CSV .csv, TSV .tsv, TXT .csv, XLS/XLSX .xlsx), sample name
/// from `qc_sample_id_pattern` (`{field_code}`, `{task}` too) else `QC-{lot}-{level}`;
/// §7.2 value target + k × sd, not clamped.
#[test]
fn qc_file_header_extension_and_sample_names() {
    let o = GenerateOptions {
        qc_deviation: Some(-3.0),
        ..options(1)
    };
    let t = file_template(json!({}));
    let f = file(&t, &o, true);
    assert!(f.file_name.ends_with(".csv"), "{}", f.file_name);
    assert_eq!(
        f.text().unwrap(),
        format!(
            "Sample Name,Target Name,Task,Quantity Mean,Timestamp\nQC-L1-LOW,A,QCT,-1.0,{NOW}\n"
        )
    );
    for (format, ext) in [
        ("CSV", ".csv"),
        ("TSV", ".tsv"),
        ("TXT", ".csv"),
        ("XLS", ".xlsx"),
        ("XLSX", ".xlsx"),
    ] {
        let t = file_template(json!({"format": format}));
        let name = file(&t, &o, true).file_name;
        assert!(name.ends_with(ext), "{format}: {name}");
    }
    let mut t = file_template(json!({"format": "TSV"}));
    t.qc_sample_id_pattern = Some("{field_code}_{task}_{lot}_{level}".into());
    let text = file(&t, &o, true).text().unwrap().to_owned();
    assert!(
        text.contains(&format!("\nA_QCT_L1_LOW\tA\tQCT\t-1.0\t{NOW}\n")),
        "{text}"
    );
}

fn derive(profile: Value, extra: Value) -> Result<Template, String> {
    let mut t = json!({"analyzer": analyzer(), "protocol": {"type": "HL7"}, "profile": "hl7/p"});
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    let profiles = Profiles::Map(BTreeMap::from([("hl7/p".to_owned(), profile)]));
    load_str(&t.to_string(), Path::new("t.json"), &profiles).map_err(|e| e.to_string())
}

/// §5.3: code = `test_code` | `obx_identifier` | `analyzer_code`; name = `test_name_hint` or the
/// code; qualitative `result_type`s (qualitative, ordinal, nominal, ord, nom, qual) get `possibleValues` (default DETECTED /
/// NOT DETECTED) and a negative-leaning `seedQualitative` (a `NOT DETECTED` value, NEGATIVE or NEG,
/// else the last), or `seedValues[code]`; numerics `seedValue` from `seedValues`, else 0;
/// then `fieldOverrides` merged in key by key.
#[test]
fn profile_derivation_rules() {
    let profile = json!({"default_test_mappings": [
        {"test_code": "T1", "test_name_hint": "Test one", "loinc": "1-1", "unit": "g/L"},
        {"obx_identifier": "T2"},
        {"analyzer_code": "T3", "result_type": "ord", "values": ["POS", "NEG", "NEGATIVE"]},
        {"test_code": "T4", "result_type": "nom"},
        {"test_code": "T5", "result_type": "qual", "values": ["A", "B"]},
        {"test_code": "T6", "result_type": "qualitative", "values": ["DETECTED", "NOT DETECTED", "INVALID"]},
        {"test_code": "T7", "result_type": "nominal", "values": ["X", "Y"]},
    ]});
    let t = derive(
        profile,
        json!({
            "seedValues": {"T1": 7.5, "T7": "X"},
            "fieldOverrides": {"T2": {"name": "Two", "normalRange": "1-5", "version": "2.0"}},
        }),
    )
    .unwrap();
    let f = |code: &str| t.field(code).unwrap().clone();
    assert_eq!(
        (f("T1").name.as_str(), f("T1").loinc.as_deref()),
        ("Test one", Some("1-1"))
    );
    assert_eq!(f("T1").unit.as_deref(), Some("g/L"));
    assert_eq!(f("T1").seed_value.unwrap().to_string(), "7.5");
    assert_eq!(f("T2").seed_value.unwrap().to_string(), "0");
    assert_eq!(f("T2").name, "Two");
    assert_eq!(f("T2").normal_range.as_deref(), Some("1-5"));
    assert_eq!(f("T2").version.as_deref(), Some("2.0"));
    assert_eq!(f("T3").kind, lis_templates::FieldType::Qualitative);
    assert_eq!(f("T3").name, "T3");
    assert_eq!(f("T3").seed_qualitative.as_deref(), Some("NEG"));
    assert_eq!(f("T4").possible_values, ["DETECTED", "NOT DETECTED"]);
    assert_eq!(f("T4").seed_qualitative.as_deref(), Some("NOT DETECTED"));
    assert_eq!(f("T5").seed_qualitative.as_deref(), Some("B"));
    assert_eq!(f("T6").seed_qualitative.as_deref(), Some("NOT DETECTED"));
    assert_eq!(f("T7").seed_qualitative.as_deref(), Some("X"));
    // the derived seeds are what seeded generation reports
    let s = hl7(&t, &options(1), false);
    assert_eq!(field(&s[4], 6), "7.5");
}

/// §5.1: unknown keys pass; a field needs `type`; a template with neither `fields` nor
/// `profile` fails; the enums and patterns of `analyzer.category`, `protocol.transport`,
/// `testPatient`, `columns` and `serial_config` are checked.
#[test]
fn schema_rules_not_covered_elsewhere() {
    let ok = json!({"analyzer": analyzer(), "protocol": {"type": "RS232", "transport": "SERIAL"},
        "someVendorKey": {"x": 1}, "fields": [{"code": "A", "name": "A", "type": "TEXT"}]});
    template(ok.clone());
    // `unit` string or null, `seedValue` number or null (null: none, so drawn from the range)
    let t = astm_template(
        json!([{"code": "A", "name": "A", "unit": null, "seedValue": null,
        "normalRange": "2-3"}]),
    );
    let v: f64 = field(&astm(&t, &options(1), false)[0][3], 4)
        .parse()
        .unwrap();
    assert!((2.0..=3.0).contains(&v), "{v}");
    let bad = |patch: Value, path: &str| {
        let mut v = ok.clone();
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        let e = load_str(&v.to_string(), Path::new("t.json"), &Profiles::None)
            .err()
            .unwrap_or_else(|| panic!("{patch} accepted"))
            .to_string();
        assert!(e.contains(path), "{patch}: {e}");
    };
    bad(
        json!({"fields": null}),
        "needs exactly one of \"fields\" or \"profile\"; found none",
    );
    bad(
        json!({"analyzer": {"name": "a", "model": "b", "manufacturer": "c", "category": "SEROLOGY"}}),
        "$.analyzer.category",
    );
    bad(
        json!({"protocol": {"type": "ASTM", "transport": "UDP"}}),
        "$.protocol.transport",
    );
    bad(json!({"testPatient": {"sex": "X"}}), "$.testPatient.sex");
    bad(
        json!({"testPatient": {"dob": "1985-03-15"}}),
        "$.testPatient.dob",
    );
    bad(
        json!({"columns": [{"index": -1, "name": "x"}]}),
        "$.columns[0].index",
    );
    bad(
        json!({"serial_config": {"parity": "MARK"}}),
        "$.serial_config.parity",
    );
    bad(
        json!({"file_config": {"format": "PDF"}}),
        "$.file_config.format",
    );
    bad(
        json!({"testSamples": [{"sampleId": "S1"}]}),
        "$.testSamples[0].sampleId",
    );
    bad(json!({"analyzer": null}), "\"analyzer\"");
    bad(
        json!({"fields": [{"code": "A", "name": "A"}]}),
        "missing required key \"type\"",
    );
}

/// §10: ASTM patient accessions on the template lane, ASTM QC on 98, files on 99, all
/// `DEV01` + year + lane + 11 digits.
#[test]
fn accession_lanes_per_output() {
    let minter = minter();
    let a = astm_template(json!([{"code": "A", "name": "A", "seedValue": 1}]));
    let mut laned = json!({"analyzer": analyzer(), "protocol": {"type": "ASTM"},
        "testSample": {"id": "61"}, "qc_controls": [{"field_code": "A"}],
        "fields": [{"code": "A", "name": "A", "seedValue": 1}]});
    let l = template(laned.clone());
    let get = |t: &Template, qc: bool| match generate(t, &minter, &options(1), qc).unwrap() {
        Output::Astm(m) => field(&m[0].records[2], 3).to_owned(),
        Output::Hl7(m) => field(&m.segments[2], 3).to_owned(),
        Output::File(f) => f.text().unwrap().lines().nth(1).unwrap()[..20].to_owned(),
    };
    assert_eq!(get(&a, false), "DEV01260000000000001^LAB");
    assert_eq!(get(&l, false), "DEV01266100000000001^LAB");
    assert_eq!(get(&l, true), "DEV01269800000000001");
    laned["protocol"] = json!({"type": "HL7"});
    assert_eq!(get(&template(laned.clone()), false), "DEV01266100000000002");
    laned["protocol"] = json!({"type": "FILE"});
    assert_eq!(get(&template(laned), false), "DEV01269900000000001");
    let _ = ValueMode::Template;
}

/// §6.6: an ordered code the template does not have → OBX-2 `ST`, OBX-5 `TEST NOT PERFORMED`,
/// OBX-8 empty, OBX-11 `X`; a known one is reported as in the patient ORU.
#[test]
fn hl7_unknown_ordered_code_is_not_performed() {
    let t = hl7_template(
        json!({}),
        json!([{"code": "GLU", "name": "Glucose", "seedValue": 5}]),
    );
    let minter = minter();
    let mut g = lis_templates::Generator::new(&t, &minter, &options(1)).unwrap();
    let s = g
        .hl7_order_results(&["P1"], &["F1"], &["GLU".to_owned(), "XYZ".to_owned()])
        .unwrap()
        .segments;
    assert_eq!(s[4], "OBX|1|NM|^^^GLU^Glucose||5|||N|||F|||||");
    let obx: Vec<&str> = s[5].split('|').collect();
    assert_eq!(obx.len(), 17, "{}", s[5]);
    assert_eq!(
        (obx[1], obx[2], obx[5], obx[8], obx[11]),
        ("2", "ST", "TEST NOT PERFORMED", "", "X")
    );
}

/// §5.1 defaults: `serial_config` 9600 8N1; `astm_config` `enable_qc` and `enable_isid` false
/// (no second message, nothing in O.4), `qcSample.actionCode` `Q`.
#[test]
fn config_defaults() {
    let t = template(json!({
        "analyzer": analyzer(), "protocol": {"type": "RS232"}, "serial_config": {},
        "astm_config": {}, "qcSample": {"id": "DEV01261000000000999"},
        "fields": [{"code": "A", "name": "A", "seedValue": 1}],
    }));
    let serial = t.serial_config.clone().unwrap();
    assert_eq!((serial.baud_rate, serial.data_bits), (9600, 8));
    assert_eq!(serial.parity, lis_templates::Parity::None);
    assert!((serial.stop_bits - 1.0).abs() < f64::EPSILON);
    let m = astm(&t, &options(1), false);
    assert_eq!(m.len(), 1);
    assert_eq!(field(&m[0][2], 4), "");
    let mut t = t;
    t.astm_config.as_mut().unwrap().enable_qc = true;
    let m = astm(&t, &options(1), false);
    assert_eq!(field(&m[1][2], 12), "Q");
}

/// §6.6 HL7 QC OBX-6 is `qc_controls[].unit` (a key the mock reads outside its schema): a
/// control without one has an empty OBX-6 in the OpenELIS layout, even when its field has a
/// unit; the standard layout falls back to the field's unit.
#[test]
fn hl7_qc_unit_comes_from_the_control() {
    let t = hl7_template(
        json!({"qc_controls": [
            {"field_code": "A", "target": 5.0},
            {"field_code": "B", "target": 6.0, "unit": "mmol/L"},
        ]}),
        json!([{"code": "A", "name": "A", "unit": "mg/dL"}, {"code": "B", "name": "B", "unit": "g/L"}]),
    );
    let s = hl7(&t, &options(1), true);
    assert_eq!(s[4], "OBX|1|NM|^^^A^LOT-A-N^N||5.0|||N|||C|||||");
    assert_eq!(field(&s[5], 7), "mmol/L");
    let standard = GenerateOptions {
        layout: Layout::Standard,
        ..options(1)
    };
    let s = hl7(&t, &standard, true);
    assert_eq!((field(&s[4], 7), field(&s[5], 7)), ("mg/dL", "mmol/L"));
}
