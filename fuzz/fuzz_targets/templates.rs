//! Analyzer templates are user files, and so are the instrument files `--replay-fixture`
//! rewrites. Two modes, picked by the first byte:
//!
//! - Edit an embedded template (values swapped for hostile ones, keys removed, arrays grown),
//!   load it, and if it loads generate everything it can: patient and QC output in both
//!   layouts, order results for its codes and an unknown one, host queries, instrument files
//!   in every format, in an encoding the input picks. What generation returns must parse back
//!   (`astm-records`, `mllp-hl7`) with one record or segment per line written: no value may
//!   break the framing. A standard-layout HL7 message must decode in the character set its
//!   MSH-18 names, to the text generated.
//! - Feed the rest as the bytes of a fixture file (CSV, TXT, XLSX, XML) to `replay_fixture`,
//!   and to the template's `fixture` reader (`Fixture::results`).
//!
//! No panic on any input.
#![no_main]

use std::path::Path;

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use lis_templates::files::{self, FileOptions};
use lis_templates::{
    AccessionMinter, FileKind, GenerateOptions, Generator, Layout, OrderGroup, OrderedPatient,
    OrderedSample, Output, Profiles, TemplateSet, TextEncoding, ValueMode, load_str,
};
use serde_json::Value;

/// Numbers that have broken range, rounding and SD code elsewhere.
const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1e-300,
    -1e-300,
    1e15,
    1e308,
    -1e308,
    9007199254740993.0,
    2.0,
    100.0,
    1000.0,
    -5.0,
    3.0,
];

/// Strings that carry delimiters, escapes, ranges and non-ASCII text.
const STRINGS: &[&str] = &[
    "",
    "|",
    "^",
    "\\",
    "&",
    "~",
    "\r",
    "\n",
    "\r\n",
    "0-0",
    "5-1",
    "-1--5",
    "<",
    ">",
    "<5",
    ">1e309",
    "1e309-2",
    "NaN",
    "inf",
    "-",
    "10^3/uL",
    "β-hCG",
    "Ж",
    "%",
    "{seq}",
    "{",
    "}",
    "..",
    "../x",
    "a,b;c\td",
    "\"",
    "\u{0}",
    "\u{1c}\u{0b}\u{3}\u{4}",
    "POSITIVE",
    "NUMERIC",
    "QUALITATIVE",
    "TEXT",
    "ASTM",
    "HL7",
    "FILE",
    "CSV",
    "XLSX",
    "XML",
    "TSV",
    "E",
    "A1",
    "Z99",
    "00",
    "99",
    "2.5",
    "2.3.1",
];

/// Every node of `value` as a JSON pointer, in document order.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Applies one 4-byte edit to `root`.
fn edit(root: &mut Value, edit: [u8; 4], rest: &mut &[u8]) {
    let mut all = Vec::new();
    pointers(root, String::new(), &mut all);
    let pointer = &all[usize::from(u16::from_le_bytes([edit[0], edit[1]])) % all.len()];
    let payload = edit[3];
    if edit[2] % 9 == 5 {
        // Remove the node from its parent.
        if let Some((parent, key)) = pointer.rsplit_once('/')
            && let Some(parent) = root.pointer_mut(parent)
        {
            match parent {
                Value::Object(map) => {
                    map.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Value::Array(items) => {
                    if let Ok(i) = key.parse::<usize>()
                        && i < items.len()
                    {
                        items.remove(i);
                    }
                }
                _ => {}
            }
        }
        return;
    }
    let Some(node) = root.pointer_mut(pointer) else {
        return;
    };
    *node = match edit[2] % 9 {
        0 => Value::from(NUMBERS[usize::from(payload) % NUMBERS.len()]),
        1 => Value::from(STRINGS[usize::from(payload) % STRINGS.len()]),
        2 => Value::from(payload % 2 == 0),
        3 => Value::Null,
        4 => Value::from(i64::from(payload) - 128),
        6 => match node.take() {
            // Grow an array (more fields, controls, columns than the template has).
            Value::Array(mut items) => {
                if let Some(first) = items.first().cloned() {
                    items.extend(std::iter::repeat_n(first, usize::from(payload % 40)));
                }
                Value::Array(items)
            }
            other => Value::Array(vec![other]),
        },
        7 => {
            let len = usize::from(payload % 48).min(rest.len());
            let (text, tail) = rest.split_at(len);
            *rest = tail;
            Value::from(String::from_utf8_lossy(text).into_owned())
        }
        _ => Value::from(STRINGS[usize::from(payload) % STRINGS.len()].repeat(64)),
    };
}

/// The output parses back; a standard-layout HL7 message's MSH-18 names a character set its
/// bytes decode in.
fn check(output: &Output, layout: Layout) {
    match output {
        Output::Astm(messages) => {
            for message in messages {
                let bytes = message.to_bytes();
                let parsed = astm_records::Message::parse(&bytes)
                    .unwrap_or_else(|e| panic!("{e}\n{}", message.to_lines()));
                assert_eq!(parsed.records().len(), message.records.len());
            }
        }
        Output::Hl7(message) => {
            let bytes = message.to_bytes();
            let parsed = mllp_hl7::Message::parse(&bytes)
                .unwrap_or_else(|e| panic!("{e}\n{}", message.to_lines()));
            assert_eq!(parsed.segment_count(), message.segments.len());
            if layout == Layout::Standard {
                let charset = parsed.charset().expect("a known MSH-18");
                let text = charset
                    .decode(&bytes)
                    .unwrap_or_else(|e| panic!("{e}\n{}", message.to_lines()));
                assert_eq!(text, message.to_wire());
            }
        }
        Output::File(_) => {}
    }
}

fn generate_everything(data: &[u8]) {
    let sources: Vec<_> = TemplateSet::embedded_sources().collect();
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let (name, text) = sources[usize::from(pick) % sources.len()];
    let mut root: Value = serde_json::from_str(text).expect("embedded templates are JSON");
    let Some((&knobs, tail)) = rest.split_first() else {
        return;
    };
    rest = tail;
    while let Some((chunk, tail)) = rest.split_first_chunk::<4>() {
        rest = tail;
        edit(&mut root, *chunk, &mut rest);
    }
    let file = format!("{name}.json");
    let Ok(template) = load_str(&root.to_string(), Path::new(&file), &Profiles::None) else {
        return;
    };
    let minter = AccessionMinter::new();
    let now = NaiveDate::from_ymd_opt(2026, 3, 5)
        .and_then(|d| d.and_hms_opt(14, 23, 45))
        .expect("a valid time");
    let values = if knobs & 1 == 0 {
        ValueMode::Template
    } else {
        ValueMode::Random
    };
    let qc_deviation = NUMBERS.get(usize::from(knobs >> 4)).copied();
    // `None` leaves the template's own `protocol.encoding` (UTF-8 without one).
    let encoding = TextEncoding::ALL
        .get(usize::from(knobs >> 1) % (TextEncoding::ALL.len() + 1))
        .copied();
    for layout in [Layout::Standard, Layout::OpenElis] {
        let options = GenerateOptions {
            seed: Some(u64::from(knobs)),
            now: Some(now),
            layout,
            values: Some(values),
            qc_deviation,
            encoding,
            ..GenerateOptions::default()
        };
        let Ok(mut generator) = Generator::new(&template, &minter, &options) else {
            continue;
        };
        for qc in [false, true] {
            if let Ok(output) = generator.generate(qc) {
                check(&output, layout);
            }
        }
        let mut codes: Vec<String> = template.fields.iter().map(|f| f.code.clone()).collect();
        codes.push("NOPE".into());
        if let Ok(message) = generator.hl7_order_results(&["P1", "^|\\"], &["F&1"], &codes) {
            check(&Output::Hl7(message), layout);
        }
        // An ordered patient whose values hold every delimiter, a CR and non-ASCII text.
        let patient = OrderedPatient {
            practice_id: "P|1^~\\&".into(),
            laboratory_id: "L\rX".into(),
            name: vec!["O'BRIEN".into(), "RENÉ^&".into(), String::new()],
            birth_date: "1970\n0101".into(),
            sex: "F".into(),
        };
        let groups = [
            OrderGroup {
                placer: vec!["P1".into(), "^|\\".into()],
                filler: vec!["F&1".into()],
                codes: codes.clone(),
                service: vec!["CBC".into(), "Blood^count|\r\\".into(), "L".into()],
            },
            OrderGroup {
                placer: vec!["P2".into()],
                filler: Vec::new(),
                codes: vec!["NOPE".into()],
                service: Vec::new(),
            },
            OrderGroup::default(),
        ];
        if let Ok(message) = generator.hl7_order_results_for(Some(&patient), &groups) {
            check(&Output::Hl7(message), layout);
        }
        let orders = [
            OrderedSample {
                sample_id: "DEV01260000000000123".into(),
                codes: codes.clone(),
                patient: None,
            },
            OrderedSample {
                sample_id: "DEV01260000000000124".into(),
                codes,
                patient: Some(patient),
            },
        ];
        if let Ok(message) = generator.astm_order_results(&orders) {
            check(&Output::Astm(vec![message]), layout);
        }
        // Specimen IDs as a barcode reader might deliver them, delimiters and line ends
        // included: one Q record each.
        let specimens = ["DEV01260000000000123", "A|B^C\\D&E", "X\rY\nZ", "RENÉ"];
        for query in [
            generator.astm_host_query(&specimens),
            generator.astm_host_query_abort(&specimens),
        ]
        .into_iter()
        .flatten()
        {
            assert_eq!(query.records.len(), specimens.len() + 2);
            check(&Output::Astm(vec![query]), layout);
        }
        // The HL7 host query (IHE LAW's QBP^Q11): one specimen each, in QPD-3, escaped.
        for specimen in specimens {
            let query = generator.hl7_host_query(specimen);
            assert_eq!(query.segments.len(), 3);
            check(&Output::Hl7(query), layout);
        }
    }
    for format in [
        None,
        Some(FileKind::Csv),
        Some(FileKind::Tsv),
        Some(FileKind::Xlsx),
    ] {
        for qc in [false, true] {
            let options = FileOptions {
                generate: GenerateOptions {
                    seed: Some(u64::from(knobs)),
                    now: Some(now),
                    values: Some(values),
                    qc_deviation,
                    ..GenerateOptions::default()
                },
                samples: Some(usize::from(knobs >> 2) % 100),
                format,
                qc,
                sequence: 1,
            };
            let _ = files::render(&template, &minter, &options);
        }
    }
}

fn replay(data: &[u8]) {
    let templates = TemplateSet::embedded().expect("embedded templates load");
    let file_templates: Vec<_> = templates
        .iter()
        .filter(|t| t.protocol.kind == lis_templates::ProtocolKind::File)
        .collect();
    let [pick, extension, bytes @ ..] = data else {
        return;
    };
    let template = file_templates[usize::from(*pick) % file_templates.len()];
    let name = [
        "run.csv", "run.txt", "run.xlsx", "run.xls", "run.xml", "run.tsv", "run",
    ][usize::from(*extension) % 7];
    let minter = AccessionMinter::new();
    let _ = files::replay_fixture(template, name, bytes, &minter, 1, None);
    // The same bytes as the template's fixture export, read for `/simulate/file`'s metadata.
    if let Ok(Some(fixture)) = files::Fixture::of(template) {
        let _ = fixture.results(bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 0 {
        replay(rest);
    } else {
        generate_everything(rest);
    }
});
