//! Golden tests against the reference mock's own outputs (`generated_examples.json`, produced by
//! its generators), with the `openelis` layout. Parts the reference draws at random (message IDs,
//! operator IDs, completion times, accession sequence numbers from its shared counters, and values
//! of unseeded fields) are masked; everything else must match byte for byte.

mod common;

use common::{at, data, reference_template};
use lis_templates::{
    AccessionMinter, GenerateOptions, Generator, Layout, Output, ProtocolKind, generate,
};
use serde_json::Value;

/// Replaces the 11-digit sequence of every `DEV01` accession with `#`.
fn mask_accessions(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"DEV01")
            && b.len() >= i + 20
            && b[i + 5..i + 20].iter().all(u8::is_ascii_digit)
        {
            out.push_str(&s[i..i + 9]);
            out.push_str("###########");
            i += 20;
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Masks `MSG-` + 12 hex digits and `OP-` + 3 digits.
fn mask_ids(s: &str) -> String {
    let mut out = s.to_owned();
    for (prefix, len) in [("MSG-", 12), ("OP-", 3)] {
        let mut from = 0;
        while let Some(pos) = out[from..].find(prefix) {
            let start = from + pos + prefix.len();
            let end = (start + len).min(out.len());
            out.replace_range(start..end, &"x".repeat(end - start));
            from = end;
        }
    }
    out
}

/// Replaces 14-digit timestamps other than `now` with `LATER`, checking they lie 5 to 30 minutes
/// after `now` (the reference's completion time).
fn mask_later(s: &str, now: &str) -> String {
    let now_t = at(now);
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        let parsed = chrono::NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S").ok();
        if let (14, Some(t)) = (digits.len(), parsed)
            && digits != now
        {
            let minutes = (t - now_t).num_minutes();
            assert!(
                (5..=30).contains(&minutes),
                "completion {digits} is {minutes} min after {now}"
            );
            out.push_str("LATER");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// Masks decimal numbers (random values) field by field, and the whole random P record.
fn mask_random_values(s: &str) -> String {
    s.split_inclusive(['\n', '\r'])
        .map(|line| {
            let body = line.trim_end_matches(['\n', '\r']);
            let end = &line[body.len()..];
            let sep = if body.contains('|') {
                '|'
            } else if body.contains(';') {
                ';'
            } else {
                ','
            };
            let fields: Vec<String> = body
                .split(sep)
                .map(|f| {
                    if f.contains('.') && f.parse::<f64>().is_ok() {
                        "<num>".to_owned()
                    } else {
                        f.to_owned()
                    }
                })
                .collect();
            let masked = if body.starts_with("P|1||PAT-") && fields.len() == 8 {
                "P|<random patient>".to_owned()
            } else {
                fields.join(&sep.to_string())
            };
            format!("{masked}{end}")
        })
        .collect()
}

/// Seed 1 at `now` (`YYYYMMDDHHMMSS`), as the reference outputs were made.
fn seeded(layout: Layout, now: &str) -> GenerateOptions {
    GenerateOptions {
        seed: Some(1),
        now: Some(at(now)),
        layout,
        ..GenerateOptions::default()
    }
}

fn first_timestamp(s: &str) -> String {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(13))
        .find(|&i| {
            b[i..i + 14].iter().all(u8::is_ascii_digit)
                && (i == 0 || !b[i - 1].is_ascii_digit())
                && !b.get(i + 14).is_some_and(u8::is_ascii_digit)
        })
        .map(|i| s[i..i + 14].to_owned())
        .unwrap()
}

fn render(output: &Output) -> String {
    match output {
        Output::Astm(messages) => messages.iter().map(|m| m.to_lines()).collect(),
        Output::Hl7(m) => m.to_wire(),
        Output::File(f) => f.text().unwrap().to_owned(),
    }
}

const RANDOM_PATIENT_VALUES: [&str; 6] = [
    "mindray_ba88a",
    "multiskan_fc",
    "quantstudio5",
    "quantstudio7",
    "tecan_f50",
    "wondfo_finecare",
];

#[test]
fn openelis_layout_matches_the_reference_outputs() {
    let text = std::fs::read_to_string(data().join("generated_examples.json")).unwrap();
    let examples: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let mut compared = 0;
    let mut exact = 0;
    for (name, entry) in &examples {
        let template = reference_template(name);
        assert_eq!(
            template.fields.len() as u64,
            entry["nfields"].as_u64().unwrap(),
            "{name}"
        );
        let codes: Vec<&str> = template.fields.iter().map(|f| f.code.as_str()).collect();
        let expected_codes: Vec<&str> = entry["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(codes, expected_codes, "{name}");
        for (key, value) in entry.as_object().unwrap() {
            let Some(expected) = value.as_str() else {
                continue;
            };
            let (qc, deviation) = match key.as_str() {
                "generate" => (false, None),
                "generate_qc_random" => (true, None),
                k if k.starts_with("generate_qc_dev") => (
                    true,
                    Some(k["generate_qc_dev".len()..].parse::<f64>().unwrap()),
                ),
                _ => continue,
            };
            if expected.starts_with("<XLSX") {
                continue; // checked in quantstudio5_qc_xlsx_matches_the_reference
            }
            let now = first_timestamp(expected);
            let minter = AccessionMinter::with("DEV01", 26).unwrap();
            let options = GenerateOptions {
                qc_deviation: deviation,
                ..seeded(Layout::OpenElis, &now)
            };
            let output = generate(&template, &minter, &options, qc)
                .unwrap_or_else(|e| panic!("{name} {key}: {e}"));
            let random = key == "generate_qc_random"
                || (key == "generate" && RANDOM_PATIENT_VALUES.contains(&name.as_str()));
            let normalise = |s: &str| {
                let s = mask_later(&mask_ids(&mask_accessions(s)), &now);
                if random { mask_random_values(&s) } else { s }
            };
            let ours = normalise(&render(&output));
            let theirs = normalise(expected);
            assert_eq!(
                ours, theirs,
                "{name} {key}\n--- ours\n{ours}\n--- reference\n{theirs}"
            );
            compared += 1;
            if !random {
                exact += 1;
            }
        }
    }
    println!("compared {compared} reference outputs, {exact} with values byte for byte");
    assert_eq!(compared, 36);
}

#[test]
fn quantstudio5_qc_xlsx_matches_the_reference() {
    use calamine::{Data, Reader, Xlsx};
    let template = reference_template("quantstudio5");
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    for (deviation, low, high) in [(0.0, 32.0, 25.0), (3.0, 33.5, 26.2)] {
        let options = GenerateOptions {
            qc_deviation: Some(deviation),
            ..seeded(Layout::OpenElis, "20261121085941")
        };
        let Output::File(file) = generate(&template, &minter, &options, true).unwrap() else {
            panic!()
        };
        assert!(file.file_name.ends_with(".xlsx"));
        let mut book = Xlsx::new(std::io::Cursor::new(file.bytes)).unwrap();
        assert_eq!(book.sheet_names(), vec!["Results".to_owned()]);
        let range = book.worksheet_range("Results").unwrap();
        let rows: Vec<Vec<Data>> = range.rows().map(<[Data]>::to_vec).collect();
        let s = |v: &str| Data::String(v.to_owned());
        assert_eq!(
            rows[0],
            vec![
                s("Sample Name"),
                s("Target Name"),
                s("Task"),
                s("Quantity Mean"),
                s("Timestamp")
            ]
        );
        assert_eq!(
            rows[1],
            vec![
                s("LPC-LOT-LPC-26B-001"),
                s("VIH-1"),
                s("STANDARD"),
                Data::Float(low),
                s("20261121085941")
            ]
        );
        assert_eq!(
            rows[2],
            vec![
                s("HPC-LOT-HPC-26B-001"),
                s("VIH-1"),
                s("STANDARD"),
                Data::Float(high),
                s("20261121085941")
            ]
        );
    }
}

#[test]
fn reference_qc_contract_values() {
    // test_qc_message.py: GeneXpert HIV-VL 1250 at 0, 3.5 and -2.5 SD; BS-200 GLU at 0 and 3.5.
    let cases = [
        (
            "genexpert_astm",
            0.0,
            "Q|1|HIV-VL^LOT-HIVVL-N^N|1250.0|copies/mL|",
        ),
        (
            "genexpert_astm",
            3.5,
            "Q|1|HIV-VL^LOT-HIVVL-N^N|1687.5|copies/mL|",
        ),
        (
            "genexpert_astm",
            -2.5,
            "Q|1|HIV-VL^LOT-HIVVL-N^N|937.5|copies/mL|",
        ),
        (
            "mindray_bs200",
            0.0,
            "OBX|1|NM|^^^GLU^LOT-GLU-N^NORMAL||100.0|mg/dL||N|||C|||||",
        ),
        (
            "mindray_bs200",
            3.5,
            "OBX|1|NM|^^^GLU^LOT-GLU-N^NORMAL||117.5|mg/dL||N|||C|||||",
        ),
    ];
    for (name, deviation, needle) in cases {
        let template = reference_template(name);
        let minter = AccessionMinter::with("DEV01", 26).unwrap();
        let options = GenerateOptions {
            seed: Some(9),
            layout: Layout::OpenElis,
            qc_deviation: Some(deviation),
            ..GenerateOptions::default()
        };
        let text = render(&generate(&template, &minter, &options, true).unwrap());
        assert!(text.contains(needle), "{name} {deviation}: {text}");
    }
}

/// The reference's MLLP listener answers an order with `generate_oru_r01`, the builder of the
/// patient ORU (notes §6.6): the time in OBR-8, PID 20 / ORC 22 / OBR 27 / OBX 16 fields.
#[test]
fn openelis_hl7_order_results_use_the_reference_oru_field_positions() {
    let set = lis_templates::TemplateSet::embedded().unwrap();
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let options = seeded(Layout::OpenElis, "20260102080000");
    let template = set.get("mindray_bs360e").unwrap();
    let mut g = Generator::new(template, &minter, &options).unwrap();
    let oru = g
        .hl7_order_results(&["P1"], &["F1"], &["ALT".into(), "NOPE".into()])
        .unwrap();
    let fields = |i: usize| oru.segments[i].split('|').count() - 1;
    assert_eq!(oru.segments[3].split('|').nth(8), Some("20260102080000"));
    assert_eq!(oru.segments[3].split('|').nth(7), Some(""));
    assert_eq!(
        [
            fields(0),
            fields(1),
            fields(2),
            fields(3),
            fields(4),
            fields(5)
        ],
        [18, 20, 22, 27, 16, 16],
        "{:#?}",
        oru.segments
    );
}
/// The reference's MLLP listener answers an order with `generate_oru_r01`, the builder of the
/// patient ORU: ordering every test of an HL7 template must give the patient message, segment for
/// segment (OBR-8 time, PID 20 / ORC 22 / OBR 27 / OBX 16 fields).
#[test]
fn openelis_hl7_order_results_are_the_reference_patient_oru() {
    let set = lis_templates::TemplateSet::embedded().unwrap();
    let mut checked = 0;
    for template in set.iter().filter(|t| t.protocol.kind == ProtocolKind::Hl7) {
        let minter = AccessionMinter::with("DEV01", 26).unwrap();
        let options = seeded(Layout::OpenElis, "20261121085938");
        let mut g = Generator::new(template, &minter, &options).unwrap();
        let patient = g.hl7().unwrap();
        let accession = patient.segments[3].split('|').nth(3).unwrap().to_owned();
        let codes: Vec<String> = template.fields.iter().map(|f| f.code.clone()).collect();
        let order = g
            .hl7_order_results(&[accession.as_str()], &[accession.as_str()], &codes)
            .unwrap();
        assert_eq!(order.segments, patient.segments, "{}", template.name);
        checked += 1;
    }
    assert!(checked >= 7, "{checked}");
}

/// A GeneXpert-like template: `enable_qc` with a `qcSample`, and a result seeded `ERROR` with a
/// complementary result.
const GX_QC: &str = r#"{
  "analyzer": {"name": "GX", "model": "GX", "manufacturer": "C", "category": "MOLECULAR"},
  "protocol": {"type": "ASTM", "version": "E-1394-97"},
  "astm_config": {"receiver_id": "LIS", "version_number": "1394-97", "enable_qc": true},
  "qcSample": {"id": "DEV01261000000000999", "fields": [{"code": "MTB", "seedQualitative": "DETECTED"}]},
  "fields": [
    {"code": "MTB", "name": "MTB", "type": "QUALITATIVE", "version": "1.0",
     "possibleValues": ["DETECTED", "NOT DETECTED", "ERROR"], "seedQualitative": "ERROR",
     "complementaryResults": [{"name": "Ct", "seedValue": 30.1}]}
  ]
}"#;

fn gx_qc() -> lis_templates::Template {
    lis_templates::load_str(
        GX_QC,
        std::path::Path::new("gx.json"),
        &lis_templates::Profiles::None,
    )
    .unwrap()
}

/// The reference builds the `enable_qc` control message with `use_seed=True` always: without a
/// seed the patient values are random, the control's are still the configured `qcSample` ones.
#[test]
fn the_qc_sample_message_reports_the_configured_values_without_a_seed() {
    let template = gx_qc();
    for layout in [Layout::OpenElis, Layout::Standard] {
        for _ in 0..20 {
            let minter = AccessionMinter::with("DEV01", 26).unwrap();
            let options = GenerateOptions {
                now: Some(at("20260102080000")),
                layout,
                ..GenerateOptions::default()
            };
            let Output::Astm(m) = generate(&template, &minter, &options, false).unwrap() else {
                panic!()
            };
            let r = m[1].records.iter().find(|r| r.starts_with("R|1|")).unwrap();
            assert!(
                r.split('|').nth(3).unwrap().starts_with("DETECTED"),
                "{layout:?}: {r}"
            );
            let ct = m[1].records.iter().find(|r| r.starts_with("R|2|")).unwrap();
            assert!(
                ct.split('|').nth(3).unwrap().contains("30.1"),
                "{layout:?}: {ct}"
            );
        }
    }
}

/// A comment record annotates the record before it: the C record of an `ERROR` result follows
/// its R record, before the complementary results (the reference's order: R, C, then the
/// complementary R).
#[test]
fn the_error_comment_follows_its_own_result() {
    let template = gx_qc();
    for layout in [Layout::OpenElis, Layout::Standard] {
        let minter = AccessionMinter::with("DEV01", 26).unwrap();
        let options = seeded(layout, "20260102080000");
        let Output::Astm(m) = generate(&template, &minter, &options, false).unwrap() else {
            panic!()
        };
        let kinds: Vec<&str> = m[0].records.iter().map(|r| &r[..1]).collect();
        assert_eq!(
            kinds,
            ["H", "P", "O", "R", "C", "R", "L"],
            "{layout:?}: {:#?}",
            m[0].records
        );
        assert!(
            m[0].records[5].contains("Ct"),
            "{layout:?}: {:#?}",
            m[0].records
        );
    }
}

/// The reference's `generate_oru_r01` repeats the panel code as the label when
/// `testSample.type` has no `^`: OBR-4 `^^^CHEM^CHEM`, in the patient ORU and in order results.
#[test]
fn openelis_obr4_repeats_a_panel_code_without_label() {
    let set = lis_templates::TemplateSet::embedded().unwrap();
    let mut template = set.get("mindray_bs200").unwrap().clone();
    template.test_sample.as_mut().unwrap().kind = Some("CHEM".into());
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let options = seeded(Layout::OpenElis, "20260102080000");
    let mut g = Generator::new(&template, &minter, &options).unwrap();
    let patient = g.hl7().unwrap();
    assert_eq!(patient.segments[3].split('|').nth(4), Some("^^^CHEM^CHEM"));
    let order = g
        .hl7_order_results(&["P1"], &["F1"], &["GLU".into()])
        .unwrap();
    assert_eq!(order.segments[3].split('|').nth(4), Some("^^^CHEM^CHEM"));
}

/// A QUALITATIVE field with neither `possibleValues` nor a seed gets the reference's defaults:
/// `NEGATIVE` on HL7, `POSITIVE` or `NEGATIVE` at random on ASTM (never an empty result).
#[test]
fn a_qualitative_field_without_values_gets_the_reference_defaults() {
    let fields = r#""fields": [{"code": "HIV", "name": "HIV", "type": "QUALITATIVE"}]"#;
    let load = |protocol: &str| {
        let text = format!(
            r#"{{"analyzer": {{"name": "X", "model": "X", "manufacturer": "X"}},
                "protocol": {{"type": "{protocol}"}}, {fields}}}"#
        );
        lis_templates::load_str(
            &text,
            std::path::Path::new("q.json"),
            &lis_templates::Profiles::None,
        )
        .unwrap()
    };
    let (hl7, astm) = (load("HL7"), load("ASTM"));
    let minter = AccessionMinter::with("DEV01", 26).unwrap();
    let mut astm_values = std::collections::BTreeSet::new();
    for layout in [Layout::OpenElis, Layout::Standard] {
        for seed in [None, Some(1)] {
            for run in 0..40 {
                let options = GenerateOptions {
                    seed: seed.map(|s: u64| s + run),
                    now: Some(at("20260102080000")),
                    layout,
                    ..GenerateOptions::default()
                };
                let Output::Hl7(m) = generate(&hl7, &minter, &options, false).unwrap() else {
                    panic!()
                };
                let obx = m.segments.iter().find(|s| s.starts_with("OBX|")).unwrap();
                assert_eq!(obx.split('|').nth(5), Some("NEGATIVE"), "{layout:?}: {obx}");
                let Output::Astm(m) = generate(&astm, &minter, &options, false).unwrap() else {
                    panic!()
                };
                let r = m[0].records.iter().find(|r| r.starts_with("R|")).unwrap();
                astm_values.insert(r.split('|').nth(3).unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        astm_values.into_iter().collect::<Vec<_>>(),
        ["NEGATIVE", "POSITIVE"]
    );
}
