//! Instrument file layouts: every FILE template's output read back with a CSV reader, an XLSX
//! reader or as XML and checked against the template's columns; headers compared with the
//! reference fixtures; QC values; encodings and line endings; fixture replay; publishing.

mod common;

use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook_auto_from_rs};
use common::{at, fixture, reference_template};
use lis_templates::files::{self, FileLayout, FileOptions, LineEnding, RenderedFile};
use lis_templates::{
    AccessionMinter, FileError, FileKind, GenerateError, GenerateOptions, Profiles, ProtocolKind,
    Template, TemplateSet, load_str,
};

fn options(samples: usize, seed: u64) -> FileOptions {
    FileOptions {
        generate: GenerateOptions {
            seed: Some(seed),
            now: Some(at("20261121085941")),
            ..GenerateOptions::default()
        },
        samples: Some(samples),
        ..FileOptions::default()
    }
}

fn minter() -> AccessionMinter {
    AccessionMinter::with("DEV01", 26).unwrap()
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) => format!("{f}"),
        Data::Int(i) => i.to_string(),
        other => other.to_string(),
    }
}

fn workbook_rows(bytes: &[u8], sheet: Option<&str>) -> Vec<Vec<String>> {
    let mut book = open_workbook_auto_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let name = sheet.map_or_else(|| book.sheet_names()[0].clone(), str::to_owned);
    let range = book.worksheet_range(&name).unwrap();
    let (row0, _) = range.start().unwrap_or((0, 0));
    let mut rows = vec![Vec::new(); row0 as usize];
    rows.extend(range.rows().map(|r| r.iter().map(cell_text).collect()));
    rows
}

/// Rows of delimited text, read line by line with a CSV reader (it would skip blank lines, which
/// count as metadata rows here).
fn text_rows(text: &str, delimiter: &str) -> Vec<Vec<String>> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                return Vec::new();
            }
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(delimiter.as_bytes()[0])
                .has_headers(false)
                .flexible(true)
                .from_reader(line.as_bytes());
            let record = reader.records().next().unwrap().unwrap();
            record.iter().map(str::to_owned).collect()
        })
        .collect()
}

fn decode(file: &RenderedFile) -> String {
    let label = file.encoding.unwrap_or("UTF-8");
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap();
    let (text, _, errors) = encoding.decode(&file.file.bytes);
    assert!(!errors, "{}: not valid {label}", file.file.file_name);
    text.into_owned()
}

/// The file read back as rows of text, with the reader the format calls for.
fn read_back(file: &RenderedFile) -> Vec<Vec<String>> {
    match file.file.kind {
        FileKind::Xlsx => {
            assert!(
                file.file.bytes.starts_with(b"PK"),
                "a real XLSX (zip) workbook"
            );
            Xlsx::new(Cursor::new(file.file.bytes.clone())).unwrap();
            workbook_rows(&file.file.bytes, file.sheet.as_deref())
        }
        _ => {
            let text = decode(file);
            let ending = file.line_ending.unwrap();
            let crlf = text.matches("\r\n").count();
            let lf = text.matches('\n').count();
            match ending {
                LineEnding::CrLf => {
                    assert_eq!(crlf, lf, "{}: every line ends CRLF", file.file.file_name)
                }
                LineEnding::Lf => assert_eq!(crlf, 0, "{}: LF only", file.file.file_name),
            }
            text_rows(&text, file.delimiter.as_deref().unwrap())
        }
    }
}

fn template_columns(template: &Template) -> Vec<String> {
    let mut columns = template.columns.clone();
    columns.sort_by_key(|c| c.index);
    columns.into_iter().map(|c| c.name).collect()
}

fn file_templates() -> Vec<Template> {
    TemplateSet::embedded()
        .unwrap()
        .iter()
        .filter(|t| t.protocol.kind == ProtocolKind::File)
        .cloned()
        .collect()
}

#[test]
fn every_file_template_has_an_instrument_layout() {
    let layouts: Vec<(String, &str)> = file_templates()
        .iter()
        .map(|t| (t.name.clone(), FileLayout::of(t).name()))
        .collect();
    let expected = [
        ("dtprime", "dtprime_xml"),
        ("fluorocycler_xt", "bruker_fluorocycler"),
        ("hain_fluorocycler", "hain_fluorocycler"),
        ("multiskan_fc", "elisa_wells"),
        ("multiskan_fc_grid", "plate_grid"),
        ("multiskan_fc_wells", "multiskan_wells"),
        ("quantstudio5", "quantstudio_results"),
        ("quantstudio7", "quantstudio_results"),
        ("quantstudio7_xls", "quantstudio_export"),
        ("tecan_f50", "elisa_wells"),
        ("tecan_f50_grid", "plate_grid"),
        ("tecan_f50_magellan", "magellan_wells"),
        ("wondfo_finecare", "finecare"),
    ];
    assert_eq!(
        layouts,
        expected
            .iter()
            .map(|(t, l)| ((*t).to_owned(), *l))
            .collect::<Vec<_>>()
    );
}

#[test]
fn every_file_template_reads_back_with_its_columns_accessions_and_controls() {
    let minter = minter();
    let mut checked = 0;
    for template in file_templates() {
        let layout = FileLayout::of(&template);
        let formats: &[Option<FileKind>] = if layout == FileLayout::DtPrimeXml {
            &[None]
        } else {
            &[
                None,
                Some(FileKind::Csv),
                Some(FileKind::Tsv),
                Some(FileKind::Xlsx),
            ]
        };
        for format in formats {
            let mut o = options(5, 3);
            o.format = *format;
            let file = files::render(&template, &minter, &o).unwrap();
            let name = format!("{} {format:?}", template.name);
            assert_eq!(file.accessions.len(), 5, "{name}");
            for accession in &file.accessions {
                minter.validate(accession, "accession").unwrap();
            }
            if layout == FileLayout::DtPrimeXml {
                let text = decode(&file);
                assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"windows-1251\"?>\r\n"));
                assert_eq!(text.matches("<cell ").count(), 5 + file.controls.len());
                assert_eq!(file.controls, ["C-", "C+"]);
                for id in file.accessions.iter().chain(&file.controls) {
                    assert!(
                        text.contains(&format!("<cell name=\"{id}\"")),
                        "{name}: {id}"
                    );
                }
                assert!(
                    text.contains("<result value=\"-\"/>")
                        || text.contains("<result value=\"+\"/>")
                );
                assert!(text.ends_with("</package>\r\n"));
                checked += 1;
                continue;
            }
            let rows = read_back(&file);
            let header = &rows[file.header_row];
            assert_eq!(header, &file.columns, "{name}");
            // The header the template declares, where it declares one.
            let declared = template_columns(&template);
            let hain_xlsx =
                layout == FileLayout::HainFluoroCycler && file.file.kind == FileKind::Xlsx;
            if !declared.is_empty() && layout != FileLayout::PlateGrid && !hain_xlsx {
                assert_eq!(header, &declared, "{name}: the template's columns");
            }
            let data = &rows[file.header_row + 1..];
            assert_eq!(data.len(), file.data_rows, "{name}");
            let cells: Vec<&String> = data.iter().flatten().collect();
            if layout == FileLayout::PlateGrid {
                let numbers: Vec<String> = (1..=12).map(|c| c.to_string()).collect();
                assert_eq!(header[1..], numbers[..], "{name}");
                // SkanIt's second grid (sample IDs) follows a blank line: see
                // the_skanit_plate_grid_names_the_sample_of_every_reading.
                let skanit = template.name.starts_with("multiskan");
                assert_eq!(data.len(), if skanit { 18 } else { 8 }, "{name}");
                let readings = data[..8]
                    .iter()
                    .flatten()
                    .filter(|c| c.parse::<f64>().is_ok())
                    .count();
                assert_eq!(
                    readings,
                    5 + file.controls.len(),
                    "{name}: one reading per used well"
                );
            } else {
                for id in file
                    .accessions
                    .iter()
                    .chain(file.controls.iter().filter(|c| !c.is_empty()))
                {
                    assert!(cells.contains(&id), "{name}: {id} missing");
                }
            }
            // Metadata before the header comes from the template.
            if let Some(block) = template
                .extra
                .get("metadataBlock")
                .and_then(|b| b.as_array())
            {
                for (i, entry) in block.iter().enumerate() {
                    assert_eq!(rows[i][0], entry["key"].as_str().unwrap(), "{name}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 12 * 4 + 1);
}

#[test]
fn quantstudio_files_have_the_task_column_and_control_rows() {
    let minter = minter();
    for name in ["quantstudio5", "quantstudio7"] {
        let template = TemplateSet::embedded().unwrap().get(name).unwrap().clone();
        let file = files::render(&template, &minter, &options(4, 9)).unwrap();
        let rows = read_back(&file);
        let task = rows[0].iter().position(|c| c == "Task").unwrap();
        let sample = rows[0].iter().position(|c| c == "Sample Name").unwrap();
        let ct = rows[0].iter().position(|c| c == "CT").unwrap();
        // Two targets per well.
        assert_eq!(rows.len(), 1 + (4 + 2) * 2);
        for row in &rows[1..9] {
            assert_eq!(row[task], "UNKNOWN");
            assert!(row[sample].starts_with("DEV0126"));
        }
        let cpos: Vec<_> = rows.iter().filter(|r| r[sample] == "CPOS").collect();
        let cneg: Vec<_> = rows.iter().filter(|r| r[sample] == "CNEG").collect();
        assert_eq!((cpos.len(), cneg.len()), (2, 2));
        assert!(cpos.iter().all(|r| r[task] == "STANDARD"));
        assert!(
            cneg.iter()
                .all(|r| r[task] == "NTC" && r[ct] == "Undetermined")
        );
        // As in the fixtures (`results.xls` A6): a quantity of 0, which a QC rule on the
        // control reads; the row had none.
        let quantity = rows[0].iter().position(|c| c == "Quantity Mean").unwrap();
        assert!(cneg.iter().all(|r| r[quantity] == "0"), "{name}: {cneg:?}");
    }
    // The QuantStudio 7 export: 46 metadata rows, then the 31 columns.
    let template = TemplateSet::embedded()
        .unwrap()
        .get("quantstudio7_xls")
        .unwrap()
        .clone();
    let file = files::render(&template, &minter, &options(3, 9)).unwrap();
    assert_eq!(file.header_row, 46);
    let rows = read_back(&file);
    assert_eq!(rows[0][..2], ["Block Type", "96fast"]);
    assert!(rows[0][2..].iter().all(String::is_empty));
    assert_eq!(rows[46].len(), 31);
    assert_eq!(rows[46][5], "Task");
    let names: Vec<&str> = rows[47..].iter().map(|r| r[3].as_str()).collect();
    for control in ["PC", "NC", "STD1_E7", "STD2_E6"] {
        assert!(names.contains(&control), "{control}");
    }
    let nc = rows[47..].iter().find(|r| r[3] == "NC").unwrap();
    assert_eq!((nc[5].as_str(), nc[8].as_str()), ("NTC", "Undetermined"));
}

#[test]
fn headers_match_the_reference_fixtures() {
    let set = TemplateSet::embedded().unwrap();
    let minter = minter();
    let render =
        |name: &str| files::render(set.get(name).unwrap(), &minter, &options(3, 1)).unwrap();
    let cases = [
        ("quantstudio5", "quantstudio5/results.xls"),
        ("quantstudio7", "quantstudio7/results.xlsx"),
        ("hain_fluorocycler", "fluorocycler-xt/results.xlsx"),
    ];
    for (name, path) in cases {
        let ours = read_back(&render(name));
        let theirs = workbook_rows(&fixture(path), None);
        assert_eq!(ours[0], theirs[0], "{name} vs {path}");
    }
    // Bruker FluoroCycler XT: the demo export has the template's first ten columns.
    let ours = read_back(&render("fluorocycler_xt"));
    let theirs = workbook_rows(&fixture("fluorocycler-xt/results-demo.xlsx"), None);
    assert_eq!(ours[0][..10], theirs[0][..]);
    for (name, path, delimiter) in [
        ("tecan_f50", "tecan-f50/results.csv", ","),
        ("multiskan_fc", "multiskan-fc/results.csv", ";"),
        ("wondfo_finecare", "wondfo-finecare/results.csv", ";"),
    ] {
        let file = render(name);
        assert_eq!(file.delimiter.as_deref(), Some(delimiter));
        let ours = read_back(&file);
        let theirs = text_rows(std::str::from_utf8(&fixture(path)).unwrap(), delimiter);
        let h = file.header_row;
        assert_eq!(ours[h], theirs[h], "{name} vs {path}");
        // Metadata rows: same number of fields, same instrument fields.
        for i in 0..h {
            assert_eq!(ours[i].len(), theirs[i].len(), "{name} metadata row {i}");
            assert_eq!(ours[i][..2], theirs[i][..2], "{name} metadata row {i}");
        }
    }
}

#[test]
fn finecare_writes_a_metadata_line_forty_columns_and_semicolons() {
    let template = TemplateSet::embedded()
        .unwrap()
        .get("wondfo_finecare")
        .unwrap()
        .clone();
    let file = files::render(&template, &minter(), &options(4, 2)).unwrap();
    let text = std::str::from_utf8(&file.file.bytes).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines[0].split(';').count(), 41);
    // The session opened 7 minutes per result (8 here) before the clock.
    assert_eq!(lines[0].split(';').nth(20).unwrap(), "2026-11-21 08:03:41");
    assert!(lines[1].starts_with("Serial Number;Sample Number;Sample Type;Test Name;Result;"));
    for line in &lines[2..lines.len() - 1] {
        assert_eq!(line.split(';').count(), 40, "{line}");
    }
    assert!(text.contains(";β-hCG;"), "UTF-8 test names");
    // A reader configured like the template (skipRows 1, ';') gets 4 samples × 2 tests.
    let rows = text_rows(text, ";");
    let header = &rows[1];
    let result = header.iter().position(|c| c == "Result").unwrap();
    assert_eq!(rows.len() - 2, 8);
    for row in &rows[2..] {
        row[result].parse::<f64>().unwrap();
    }
    // One result every 7 minutes, the last one at the clock: none dated in the future.
    let time = header.iter().position(|c| c == "Date/Time").unwrap();
    let times: Vec<&str> = rows[2..].iter().map(|r| r[time].as_str()).collect();
    assert_eq!(times.first(), Some(&"2026-11-21 08:10:41"));
    assert_eq!(times.last(), Some(&"2026-11-21 08:59:41"));
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
}

#[test]
fn a_template_with_skip_rows_gets_that_many_metadata_lines() {
    // The reference multiskan_fc declares skipRows 1 (the embedded copy follows its fixture: 0).
    let template = reference_template("multiskan_fc");
    assert_eq!(template.file_config.as_ref().unwrap().skip_rows, Some(1));
    let file = files::render(&template, &minter(), &options(2, 1)).unwrap();
    assert_eq!(file.header_row, 1);
    let rows = read_back(&file);
    assert_eq!(rows[0][0], "Thermo Fisher Multiskan FC");
    assert_eq!(
        rows[1],
        ["WellPosition", "SampleID", "Interpretation", "TestCode"]
    );
    assert_eq!(
        rows[4..],
        [
            vec![
                "A3".to_owned(),
                "NC".into(),
                "Negative".into(),
                "HIV ELISA".into()
            ],
            vec![
                "A4".to_owned(),
                "PC".into(),
                "Positive".into(),
                "HIV ELISA".into()
            ],
        ]
    );
}

#[test]
fn delimiters_encodings_and_line_endings_follow_the_instrument() {
    let set = TemplateSet::embedded().unwrap();
    let expect = [
        ("tecan_f50", ",", LineEnding::Lf),
        ("multiskan_fc", ";", LineEnding::Lf),
        ("wondfo_finecare", ";", LineEnding::Lf),
        ("tecan_f50_magellan", "\t", LineEnding::CrLf),
        ("tecan_f50_grid", "\t", LineEnding::CrLf),
        ("multiskan_fc_grid", "\t", LineEnding::CrLf),
        ("multiskan_fc_wells", ",", LineEnding::CrLf),
    ];
    for (name, delimiter, ending) in expect {
        let file = files::render(set.get(name).unwrap(), &minter(), &options(3, 1)).unwrap();
        assert_eq!(file.delimiter.as_deref(), Some(delimiter), "{name}");
        assert_eq!(file.line_ending, Some(ending), "{name}");
        assert_eq!(file.encoding, Some("UTF-8"), "{name}");
        read_back(&file);
    }
    let hain = set.get("hain_fluorocycler").unwrap();
    let mut o = options(2, 1);
    o.format = Some(FileKind::Csv);
    let file = files::render(hain, &minter(), &o).unwrap();
    assert_eq!(file.delimiter.as_deref(), Some(";"), "fileFormat delimiter");
    assert_eq!(
        read_back(&file)[0],
        ["Position", "Sample ID", "Result", "Interpretation"]
    );
}

/// Delimited text in a character set that cannot hold a character writes `?` for it. The
/// numeric character reference written instead (`&#946;` for β) held the `;` that ends a
/// cell, so every β-hCG row of a Latin-1 Finecare file had two cells too many.
#[test]
fn characters_a_text_file_encoding_cannot_hold_do_not_split_cells() {
    assert!(embedded_source("wondfo_finecare").contains('β'));
    let mut json = embedded_json("wondfo_finecare");
    json["fileFormat"]["encoding"] = "ISO-8859-1".into();
    let template = load_str(&json.to_string(), Path::new("latin.json"), &Profiles::None).unwrap();
    let file = files::render(&template, &minter(), &options(4, 1)).unwrap();
    assert_eq!(file.encoding, Some("windows-1252"));
    let rows = read_back(&file);
    let width = rows[file.header_row].len();
    let data = &rows[file.header_row + 1..];
    assert!(data.iter().all(|row| row.len() == width), "{rows:?}");
    assert!(
        data.iter().flatten().any(|cell| cell == "?-hCG"),
        "{rows:?}"
    );
    assert!(
        !file.file.bytes.windows(2).any(|w| w == b"&#"),
        "no character references"
    );
}

#[test]
fn dtprime_xml_is_windows_1251() {
    let json = TemplateSet::embedded_sources()
        .find(|(n, _)| *n == "dtprime")
        .unwrap()
        .1
        .replace(
            "Mycobacterium tuberculosis DNA (LA2M-TB)",
            "ДНК микобактерий туберкулёза",
        );
    let template = load_str(&json, Path::new("dtprime.json"), &Profiles::None).unwrap();
    let file = files::render(&template, &minter(), &options(2, 1)).unwrap();
    assert_eq!(file.encoding, Some("windows-1251"));
    assert!(std::str::from_utf8(&file.file.bytes).is_err(), "not UTF-8");
    // 'Д' is 0xC4 in windows-1251.
    assert!(file.file.bytes.contains(&0xC4));
    let text = decode(&file);
    assert!(text.contains("name=\"ДНК микобактерий туберкулёза\""));
}

#[test]
fn quantstudio5_qc_file_uses_the_pattern_and_westgard_values() {
    let set = TemplateSet::embedded().unwrap();
    let template = set.get("quantstudio5").unwrap();
    for (deviation, low, high) in [
        (0.0, "32", "25"),
        (3.0, "33.5", "26.2"),
        (-2.0, "31", "24.2"),
    ] {
        let mut o = options(1, 5);
        o.qc = true;
        o.generate.qc_deviation = Some(deviation);
        let file = files::render(template, &minter(), &o).unwrap();
        assert!(file.accessions.is_empty());
        assert_eq!(
            file.controls,
            ["LPC-LOT-LPC-26B-001", "HPC-LOT-HPC-26B-001"]
        );
        let name = &file.file.file_name;
        assert!(
            name.starts_with("QS5_") && name.ends_with("-QC.xlsx"),
            "{name}"
        );
        let rows = read_back(&file);
        let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1][col("Sample Name")], "LPC-LOT-LPC-26B-001");
        assert_eq!(rows[1][col("Task")], "STANDARD");
        assert_eq!(rows[1][col("Target Name")], "VIH-1");
        assert_eq!(rows[1][col("Quantity Mean")], low);
        assert_eq!(rows[2][col("Quantity Mean")], high);
        assert_eq!(rows[2][col("CT")], high);
    }
}

/// The source of the embedded template `name`.
fn embedded_source(name: &str) -> &'static str {
    TemplateSet::embedded_sources()
        .find(|(file, _)| file.trim_end_matches(".json") == name)
        .unwrap()
        .1
}

/// The embedded template `name` as a JSON value, to edit.
fn embedded_json(name: &str) -> serde_json::Value {
    serde_json::from_str(embedded_source(name)).unwrap()
}

/// An embedded template's JSON with `from` replaced by `to` (once).
fn edited_template(name: &str, from: &str, to: &str) -> Template {
    let source = embedded_source(name);
    assert!(source.contains(from), "{from}");
    let text = source.replacen(from, to, 1);
    load_str(&text, Path::new(&format!("{name}.json")), &Profiles::None).unwrap()
}

#[test]
fn a_zero_target_is_shifted_too() {
    // Standard and OpenELIS layouts alike: target + k x SD, also when the target is 0 (the
    // reference's "target != 0" condition belongs to its ASTM path only).
    let template = edited_template("quantstudio5", "\"target\": 32.0", "\"target\": 0.0");
    let mut o = options(1, 5);
    o.qc = true;
    o.generate.qc_deviation = Some(3.0);
    let rows = read_back(&files::render(&template, &minter(), &o).unwrap());
    let col = rows[0].iter().position(|c| c == "Quantity Mean").unwrap();
    assert_eq!(rows[1][col], "1.5");
    let hl7 = edited_template("mindray_bs200", "\"target\": 100.0", "\"target\": 0.0");
    for layout in [
        lis_templates::Layout::Standard,
        lis_templates::Layout::OpenElis,
    ] {
        let value = first_qc_obx_value(&hl7, 3.0, layout);
        assert_eq!(value.parse::<f64>().unwrap(), 15.0, "{layout:?}: {value}");
    }
}

/// A control whose SD is small against 2 decimals is written to two significant digits of
/// the SD, so the value read back is still target + k x SD: 0.05 +- 0.004 read 0.06 for
/// k = 2 and for k = 3 alike (z 2.5). Controls with larger SDs keep their 2 decimals.
#[test]
fn small_controls_keep_two_significant_digits_of_their_sd() {
    let template = edited_template(
        "quantstudio5",
        "\"target\": 32.0,\n      \"sd\": 0.5",
        "\"target\": 0.05,\n      \"sd\": 0.004",
    );
    for (deviation, low, high) in [
        (1.0, "0.054", "25.4"),
        (2.0, "0.058", "25.8"),
        (3.0, "0.062", "26.2"),
        (-2.0, "0.042", "24.2"),
    ] {
        let mut o = options(1, 5);
        o.qc = true;
        o.generate.qc_deviation = Some(deviation);
        let rows = read_back(&files::render(&template, &minter(), &o).unwrap());
        let col = rows[0].iter().position(|c| c == "Quantity Mean").unwrap();
        assert_eq!(
            (&*rows[1][col], &*rows[2][col]),
            (low, high),
            "k = {deviation}"
        );
    }
    let hl7 = edited_template(
        "mindray_bs200",
        "\"target\": 100.0,\n      \"sd\": 5.0",
        "\"target\": 0.05,\n      \"sd\": 0.004",
    );
    let value = first_qc_obx_value(&hl7, 2.0, lis_templates::Layout::Standard);
    assert_eq!(value, "0.058");
}

/// OBX-5 of the first OBX of an HL7 template's QC message shifted by `deviation` SD.
fn first_qc_obx_value(
    template: &Template,
    deviation: f64,
    layout: lis_templates::Layout,
) -> String {
    let generate = GenerateOptions {
        qc_deviation: Some(deviation),
        layout,
        ..GenerateOptions::default()
    };
    let Ok(lis_templates::Output::Hl7(m)) =
        lis_templates::generate(template, &minter(), &generate, true)
    else {
        panic!("{} makes no HL7 QC message", template.name)
    };
    let obx = m.segments.iter().find(|s| s.starts_with("OBX|")).unwrap();
    obx.split('|').nth(5).unwrap().to_owned()
}

/// A QC value a hair below zero rounds to -0.0, which the clamp to 0 let through: it was
/// written `-0.00` beside a Quantity of `0`.
#[test]
fn a_value_rounding_to_minus_zero_is_written_as_zero() {
    let template = edited_template(
        "quantstudio5",
        "\"target\": 32.0,\n      \"sd\": 0.5",
        "\"target\": 0.001,\n      \"sd\": 0.002",
    );
    let mut o = options(1, 5);
    o.qc = true;
    o.format = Some(FileKind::Csv);
    // 0.001 - 0.52 x 0.002 = -0.00004, 0 at 4 decimals.
    o.generate.qc_deviation = Some(-0.52);
    let text = decode(&files::render(&template, &minter(), &o).unwrap());
    let row = text.lines().find(|l| l.contains(",LPC-")).unwrap();
    assert!(row.contains(",0,0.00,0.00,"), "{row}");
}

/// DT-Prime's test is qualitative (`-`/`+`): a QC control gets a call, as a control does,
/// not a number; a control whose value is no finite number is an error, not `inf`.
#[test]
fn dtprime_qc_results_are_calls_and_never_inf() {
    let qc = |target: &str, level: &str| {
        edited_template(
            "dtprime",
            "  \"fields\": [",
            &format!(
                "  \"qc_controls\": [{{\"field_code\": \"MTB\", \"lot_number\": \"L1\", \
                 \"level\": \"{level}\", \"target\": {target}, \"sd\": {target}}}],\n  \"fields\": ["
            ),
        )
    };
    let mut o = options(1, 5);
    o.qc = true;
    o.generate.qc_deviation = Some(2.0);
    for (level, call) in [("POS", "+"), ("NEG", "-")] {
        let text = decode(&files::render(&qc("1.0", level), &minter(), &o).unwrap());
        let test = text
            .lines()
            .find(|l| l.contains("<test value=\"MTB\""))
            .unwrap();
        assert!(
            test.ends_with(&format!("<result value=\"{call}\"/></test>")),
            "{level}: {text}"
        );
    }
    // A tab and a control character in a lot number: a reference, and U+FFFD (XML 1.0
    // allows no C0 control but tab, CR and LF); written raw, the file could not be parsed.
    let mut odd_lot = qc("1.0", "POS");
    odd_lot.qc_controls[0].lot_number = Some("L\t1\u{1}".into());
    let text = decode(&files::render(&odd_lot, &minter(), &o).unwrap());
    // windows-1251 has no U+FFFD: the encoder writes its reference.
    assert!(
        text.contains("<cell name=\"QC-L&#9;1&#65533;-POS\""),
        "{text}"
    );
    let mut numeric = qc("1e308", "POS");
    numeric.fields[0].possible_values.clear();
    let e = files::render(&numeric, &minter(), &o).unwrap_err();
    assert!(e.to_string().contains("not a finite number"), "{e}");
}

#[test]
fn a_control_naming_no_field_is_an_error_not_a_missing_row() {
    // The loader refuses such a template ...
    let text = embedded_source("quantstudio5").replacen(
        "\"field_code\": \"VIH-1\"",
        "\"field_code\": \"VIH1\"",
        1,
    );
    let e = load_str(&text, Path::new("quantstudio5.json"), &Profiles::None).unwrap_err();
    assert!(e.to_string().contains("\"VIH1\" names no field"), "{e}");
    // ... and generation checks again, as a loaded template can be changed.
    let mut template = TemplateSet::embedded()
        .unwrap()
        .get("quantstudio5")
        .unwrap()
        .clone();
    let control = template
        .qc_controls
        .iter_mut()
        .find(|c| c.field_code == "VIH-1")
        .unwrap();
    control.field_code = "VIH1".into();
    let mut o = options(1, 5);
    o.qc = true;
    let e = files::render(&template, &minter(), &o).unwrap_err();
    assert_eq!(
        e.to_string(),
        "template quantstudio5: qc_controls entry LOT-LPC-26B (LPC) names field_code \"VIH1\", \
         which is not one of the template's fields"
    );
    // The generic QC file and the HL7/ASTM QC messages say the same.
    let e = lis_templates::generate(&template, &minter(), &GenerateOptions::default(), true)
        .unwrap_err();
    assert!(e.to_string().contains("names field_code \"VIH1\""), "{e}");
}

#[test]
fn bad_requests_are_clear_errors() {
    let set = TemplateSet::embedded().unwrap();
    let m = minter();
    let mut qc = options(1, 1);
    qc.qc = true;
    let e = files::render(set.get("tecan_f50").unwrap(), &m, &qc).unwrap_err();
    assert_eq!(e.to_string(), "template tecan_f50: has no qc_controls");
    let e = files::render(set.get("quantstudio5").unwrap(), &m, &options(95, 1)).unwrap_err();
    assert!(matches!(
        e,
        GenerateError::InvalidOption {
            option: "samples",
            ..
        }
    ));
    assert!(
        e.to_string()
            .contains("has 96 wells; 97 samples and controls do not fit"),
        "{e}"
    );
    let e = files::render(set.get("quantstudio5").unwrap(), &m, &options(0, 1)).unwrap_err();
    assert!(e.to_string().contains("at least one sample"));
    let mut csv = options(1, 1);
    csv.format = Some(FileKind::Csv);
    let e = files::render(set.get("dtprime").unwrap(), &m, &csv).unwrap_err();
    assert!(e.to_string().contains("writes XML only"), "{e}");
    let e = files::render(set.get("mindray_bs200").unwrap(), &m, &options(1, 1)).unwrap_err();
    assert_eq!(e.to_string(), "template mindray_bs200 is HL7, not FILE");
    let mut nan = options(1, 1);
    nan.qc = true;
    nan.generate.qc_deviation = Some(f64::NAN);
    assert!(files::render(set.get("quantstudio5").unwrap(), &m, &nan).is_err());
    // A shift so large that target + k x SD is no longer a number (was written as `inf`).
    let mut huge = nan;
    huge.generate.qc_deviation = Some(1e308);
    let e = files::render(set.get("quantstudio5").unwrap(), &m, &huge).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid option qc_deviation: 1e308 is not a number of SD within -1000..1000"
    );
    // The whole plate is fine.
    files::render(set.get("quantstudio5").unwrap(), &m, &options(94, 1)).unwrap();
}

#[test]
fn a_seed_and_a_fixed_clock_give_identical_files() {
    for template in file_templates() {
        let a = files::render(&template, &minter(), &options(6, 42)).unwrap();
        let b = files::render(&template, &minter(), &options(6, 42)).unwrap();
        assert!(a.file == b.file, "{}", template.name);
        let c = files::render(&template, &minter(), &options(6, 43)).unwrap();
        if !matches!(FileLayout::of(&template), FileLayout::DtPrimeXml) {
            assert!(
                a.file.bytes != c.file.bytes,
                "{}: another seed, other values",
                template.name
            );
        }
    }
}

#[test]
fn replaying_a_csv_fixture_changes_only_the_accessions() {
    let set = TemplateSet::embedded().unwrap();
    let template = set.get("tecan_f50").unwrap();
    let original = fixture("tecan-f50/results.csv");
    let m = minter();
    let replayed = files::replay_fixture(
        template,
        "results.csv",
        &original,
        &m,
        1,
        Some(at("20261121085941")),
    )
    .unwrap();
    assert_eq!(replayed.replaced.len(), 3);
    let mut expected = String::from_utf8(original.clone()).unwrap();
    for (old, new) in &replayed.replaced {
        assert_eq!(&new[7..9], "51", "same lane");
        m.validate(new, "new").unwrap();
        expected = expected.replace(old, new);
    }
    assert_eq!(
        String::from_utf8(replayed.file.bytes.clone()).unwrap(),
        expected
    );
    assert!(expected.contains("\nA4,NEG,Negative,HIV ELISA\nA5,POS,Positive,HIV ELISA\n"));
    // A second replay gets other accessions.
    let again = files::replay_fixture(template, "results.csv", &original, &m, 2, None).unwrap();
    assert_ne!(again.replaced[0].1, replayed.replaced[0].1);
}

#[test]
fn replaying_workbooks_keeps_every_other_cell() {
    let set = TemplateSet::embedded().unwrap();
    for (name, path) in [
        ("quantstudio7", "quantstudio7/results.xlsx"),
        ("hain_fluorocycler", "fluorocycler-xt/results.xlsx"),
        ("quantstudio5", "quantstudio5/results.xls"),
    ] {
        let original = fixture(path);
        let replayed =
            files::replay_fixture(set.get(name).unwrap(), path, &original, &minter(), 1, None)
                .unwrap();
        assert_eq!(replayed.file.kind, FileKind::Xlsx);
        assert!(replayed.file.file_name.ends_with(".xlsx"));
        let before = workbook_rows(&original, None);
        let after = workbook_rows(&replayed.file.bytes, None);
        assert_eq!(before.len(), after.len(), "{name}");
        assert!(!replayed.replaced.is_empty());
        let mut changed = 0;
        for (b, a) in before.iter().zip(&after) {
            for (x, y) in b.iter().zip(a) {
                if x != y {
                    let pair = replayed.replaced.iter().find(|(old, _)| old == x).unwrap();
                    assert_eq!(&pair.1, y);
                    changed += 1;
                }
            }
        }
        assert!(
            changed >= replayed.replaced.len(),
            "{name}: {changed} {:?}\n{before:?}\n{after:?}",
            replayed.replaced
        );
        // Controls survive.
        let flat: Vec<&String> = after.iter().flatten().collect();
        if name != "hain_fluorocycler" {
            assert!(flat.iter().any(|c| *c == "CPOS") && flat.iter().any(|c| *c == "CNEG"));
        }
    }
}

#[test]
fn write_output_publishes_whole_files_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let set = TemplateSet::embedded().unwrap();
    let template = set.get("quantstudio7").unwrap();
    let m = minter();
    let mut paths = Vec::new();
    for _ in 0..20 {
        // Same clock and sequence: the same name every time.
        let (path, file) = files::write_file(template, &m, &options(2, 1), dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), file.file.bytes);
        paths.push(path);
    }
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 20);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 20);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("QS7_") && n.ends_with(".xlsx")),
        "{names:?}"
    );
    // An unwritable folder: its parent is a regular file.
    let blocker = dir.path().join("plain-file");
    std::fs::write(&blocker, b"x").unwrap();
    let e = files::write_file(template, &m, &options(1, 1), &blocker.join("out")).unwrap_err();
    assert!(
        matches!(
            e,
            FileError::Io {
                action: "create folder",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("cannot create folder "), "{e}");
}

/// Whether `name` matches the glob `pattern` (`*` only; the only wildcard the templates use).
fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == name;
    }
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Two files generated under one name (same clock, same sequence: two runs in the same second)
/// are both published, and the second one's name still matches the template's `file_pattern`,
/// so an importer that polls for that pattern picks it up. The counter used to go before the
/// extension, after the pattern's literal tail: `tecan_…-0001_grid-1.csv` is not
/// `tecan_*_grid.csv`.
#[test]
fn a_name_taken_twice_still_matches_the_file_pattern() {
    for template in file_templates() {
        let Some(pattern) = template.identification.file_pattern.clone() else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let file = files::render(&template, &minter(), &options(1, 1)).unwrap();
        let ext = file.file.file_name.rsplit_once('.').unwrap().1.to_owned();
        // The pattern with the extension actually written (`QS5_*.xls` files are XLSX).
        let pattern = format!("{}.{ext}", pattern.rsplit_once('.').unwrap().0);
        let mut names = Vec::new();
        for _ in 0..3 {
            let path = files::write_output(&file.file, dir.path()).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), file.file.bytes);
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names[0], file.file.file_name);
        names.dedup();
        assert_eq!(names.len(), 3, "{}: {names:?}", template.name);
        for name in &names {
            assert!(
                glob_matches(&pattern, name),
                "{}: {name} does not match {pattern}",
                template.name
            );
        }
    }
}

/// QC controls of a detection assay are called from their level and target: the
/// negative control reads as not detected (no concentration), the positive one as
/// detected with its QC value; before, every QC control read as detected.
#[test]
fn detection_layouts_call_a_negative_qc_control_negative() {
    let template = edited_template(
        "hain_fluorocycler",
        "{\n  \"analyzer\"",
        "{\n  \"qc_controls\": [\
           {\"field_code\": \"RESULT\", \"lot_number\": \"NC1\", \"level\": \"NC\", \
            \"level_name\": \"Negative Control\", \"target\": 0.0, \"sd\": 0.0},\
           {\"field_code\": \"RESULT\", \"lot_number\": \"PC1\", \"level\": \"PC\", \
            \"level_name\": \"Positive Control\", \"target\": 400.0, \"sd\": 10.0}],\n  \"analyzer\"",
    );
    for format in [FileKind::Csv, FileKind::Xlsx] {
        let mut o = options(1, 3);
        o.qc = true;
        o.format = Some(format);
        let file = files::render(&template, &minter(), &o).unwrap();
        assert_eq!(file.controls.len(), 2, "{format:?}");
        let rows = read_back(&file);
        let row_of = |id: &str| {
            rows.iter()
                .find(|r| r.iter().any(|c| c == id))
                .unwrap_or_else(|| panic!("{format:?}: no row for {id}: {rows:?}"))
                .clone()
        };
        let negative = row_of(&file.controls[0]);
        let positive = row_of(&file.controls[1]);
        match format {
            FileKind::Csv => {
                let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
                assert_eq!(negative[col("Result")], "Not Detected");
                assert_eq!(negative[col("Interpretation")], "Negative");
                assert_eq!(positive[col("Result")], "Detected");
                assert_eq!(positive[col("Interpretation")], "Positive");
            }
            _ => {
                assert_eq!(negative.last().unwrap(), "Negative", "{negative:?}");
                assert_eq!(negative[4], "", "no concentration: {negative:?}");
                assert_eq!(positive.last().unwrap(), "Positive", "{positive:?}");
                let value: f64 = positive[4].parse().unwrap();
                assert!((300.0..=500.0).contains(&value), "{positive:?}");
            }
        }
    }
}

/// `replace_output` overwrites a file of the same name (`write_output` picks `-1`), and
/// replaces a symbolic link under the name instead of writing through it.
#[cfg(unix)]
#[test]
fn replace_output_replaces_the_name_and_never_follows_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let file = |bytes: &[u8]| lis_templates::FileOutput {
        file_name: "run.csv".into(),
        kind: FileKind::Csv,
        bytes: bytes.to_vec(),
    };
    let first = files::replace_output(&file(b"first"), dir.path()).unwrap();
    let second = files::replace_output(&file(b"second"), dir.path()).unwrap();
    assert_eq!(first, second);
    assert_eq!(std::fs::read(&second).unwrap(), b"second");

    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    std::fs::remove_file(&second).unwrap();
    std::os::unix::fs::symlink(&victim, &second).unwrap();
    files::replace_output(&file(b"third"), dir.path()).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert!(!std::fs::symlink_metadata(&second).unwrap().is_symlink());
    assert_eq!(std::fs::read(&second).unwrap(), b"third");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["run.csv"], "no temporary left behind");
}

/// Several threads publishing files of the same name into one folder (a service writing for
/// several instruments at once): every call succeeds, every published file holds exactly the
/// bytes of one call, and no temporary is left. Before, all calls shared one temporary name per
/// process: a call that found it taken failed and deleted the other call's temporary, and a file
/// could be published with another call's half-written bytes.
#[test]
fn concurrent_writes_of_one_name_publish_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    const THREADS: u8 = 8;
    const FILES: usize = 40;
    const SIZE: usize = 64 * 1024;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let file = lis_templates::FileOutput {
                    file_name: "run.csv".into(),
                    kind: FileKind::Csv,
                    bytes: vec![b'a' + t; SIZE],
                };
                (0..FILES)
                    .map(|_| files::write_output(&file, &dir).map_err(|e| e.to_string()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        failed[0]
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "temporaries left: {names:?}"
    );
    assert_eq!(names.len(), usize::from(THREADS) * FILES, "{names:?}");
    for name in &names {
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        assert_eq!(bytes.len(), SIZE, "{name}");
        assert!(bytes.iter().all(|b| *b == bytes[0]), "{name}: mixed bytes");
    }
}

/// A template asking for an absurd number of metadata rows before the header is an error that
/// names the key. Before, the rows were built regardless: `skipRows` 2,000,000 wrote two million
/// empty lines, and 4,000,000,000 aborted the process trying to allocate 96 GB (in the
/// instrument layouts first, then still in the generic file of `generate`).
#[test]
fn absurd_metadata_row_counts_are_errors_not_allocations() {
    let template = edited_template(
        "quantstudio7_xls",
        "\"metadataRowCount\": 46",
        "\"metadataRowCount\": 2000000",
    );
    let e = files::render(&template, &minter(), &options(1, 1))
        .map(|f| f.file.bytes.len())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid option excelFormat.metadataRowCount: template quantstudio7_xls asks for \
         2000000 metadata rows before the header; at most 10000 are supported"
    );
    // `skipRows` is refused when the template is loaded, for every way of generating from it.
    for name in ["multiskan_fc", "dtprime"] {
        let mut json = embedded_json(name);
        json["file_config"]["skipRows"] = u32::MAX.into();
        let e = load_str(&json.to_string(), Path::new("big.json"), &Profiles::None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "big.json: $.file_config.skipRows: 4294967295 metadata rows before the header; at \
             most 10000 are supported"
        );
    }
    // A usual count still works.
    let template = edited_template("multiskan_fc", "\"skipRows\": 0", "\"skipRows\": 3");
    assert_eq!(
        files::render(&template, &minter(), &options(1, 1))
            .unwrap()
            .header_row,
        3
    );
}

/// Replaying a workbook keeps what each cell is, not only what it shows: a date stays a date, a
/// time of day and a boolean stay what they were. Before, a
/// date became its bare serial number (an importer read `46097.35` for the run date) and a
/// boolean became the text `TRUE`.
#[test]
fn replaying_workbooks_keeps_dates_and_booleans() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut fixture = Workbook::new();
    let sheet = fixture.add_worksheet();
    sheet.set_name("Results").unwrap();
    let date = Format::new().set_num_format("dd/mm/yyyy hh:mm");
    let time = Format::new().set_num_format("hh:mm:ss");
    let run = ExcelDateTime::from_ymd(2026, 3, 15)
        .unwrap()
        .and_hms(8, 24, 0)
        .unwrap();
    for (c, h) in ["Sample Name", "Run Date", "Read Time", "Omit"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "DEV01262000000000001").unwrap();
    sheet.write_datetime_with_format(1, 1, &run, &date).unwrap();
    sheet.write_number_with_format(1, 2, 0.5, &time).unwrap();
    sheet.write_boolean(1, 3, true).unwrap();
    let (replaced, row) = replay_results_row(&mut fixture);
    assert_eq!(replaced.len(), 1);
    assert_eq!(row[0], Data::String(replaced[0].clone()));
    match &row[1] {
        Data::DateTime(d) => {
            assert!(d.is_datetime());
            assert_eq!(d.to_ymd_hms_milli(), (2026, 3, 15, 8, 24, 0, 0));
        }
        other => panic!("run date is no longer a date: {other:?}"),
    }
    match &row[2] {
        Data::DateTime(d) => assert_eq!(d.as_f64(), 0.5),
        other => panic!("read time is no longer a time: {other:?}"),
    }
    assert_eq!(row[3], Data::Bool(true));
}

/// Replays the workbook as the quantstudio7 fixture; the fresh accessions and the second row
/// of its `Results` sheet as read back.
fn replay_results_row(fixture: &mut rust_xlsxwriter::Workbook) -> (Vec<String>, Vec<Data>) {
    let original = fixture.save_to_buffer().unwrap();
    let set = TemplateSet::embedded().unwrap();
    let replayed = files::replay_fixture(
        set.get("quantstudio7").unwrap(),
        "results.xlsx",
        &original,
        &minter(),
        1,
        Some(at("20261121085941")),
    )
    .unwrap();
    let mut book = open_workbook_auto_from_rs(Cursor::new(replayed.file.bytes)).unwrap();
    let range = book.worksheet_range("Results").unwrap();
    let row = range.rows().nth(1).unwrap().to_vec();
    let fresh = replayed.replaced.into_iter().map(|(_, new)| new).collect();
    (fresh, row)
}

/// An error cell of the fixture (a formula that divided by zero) comes back in Excel's own
/// spelling, as an importer would compare it; before it was written as `#Div0`.
#[test]
fn replaying_workbooks_spells_error_cells_as_excel_does() {
    use rust_xlsxwriter::{Formula, Workbook};
    let mut fixture = Workbook::new();
    let sheet = fixture.add_worksheet();
    sheet.set_name("Results").unwrap();
    sheet.write_string(0, 0, "Sample Name").unwrap();
    sheet.write_string(0, 1, "Ratio").unwrap();
    sheet.write_string(0, 2, "Lookup").unwrap();
    sheet.write_string(1, 0, "DEV01262000000000001").unwrap();
    sheet
        .write_formula(1, 1, Formula::new("=1/0").set_result("#DIV/0!"))
        .unwrap();
    sheet
        .write_formula(1, 2, Formula::new("=NA()").set_result("#N/A"))
        .unwrap();
    let (_, row) = replay_results_row(&mut fixture);
    assert_eq!(row[1], Data::String("#DIV/0!".into()));
    assert_eq!(row[2], Data::String("#N/A".into()));
}

/// A text export in a Windows code page (here windows-1252: `µ` is the single byte 0xB5) is
/// replayed byte for byte apart from the accessions, as the docs promise for CSV. Before, any
/// fixture that was not UTF-8 was refused ("is not UTF-8 text").
#[test]
fn replaying_a_non_utf8_text_fixture_keeps_every_other_byte() {
    let set = TemplateSet::embedded().unwrap();
    let template = set.get("multiskan_fc").unwrap();
    let original: Vec<u8> = [
        &b"WellPosition;SampleID;Interpretation;TestCode;Unit\r\n"[..],
        b"A1;DEV01265200000000101;Positive;HIV ELISA;\xB5IU/mL\r\n",
        b"A2;DEV01265200000000102;Negative;HIV ELISA;\xB5IU/mL\r\n",
        b"A3;NC;Negative;HIV ELISA;\xB5IU/mL\r\n",
    ]
    .concat();
    assert!(std::str::from_utf8(&original).is_err());
    let replayed = files::replay_fixture(
        template,
        "results.csv",
        &original,
        &minter(),
        1,
        Some(at("20261121085941")),
    )
    .unwrap();
    assert_eq!(replayed.replaced.len(), 2);
    let mut expected = original;
    for (old, new) in &replayed.replaced {
        assert_eq!(&new[7..9], "52", "same lane");
        let at = expected
            .windows(20)
            .position(|w| w == old.as_bytes())
            .unwrap();
        expected[at..at + 20].copy_from_slice(new.as_bytes());
    }
    assert_eq!(replayed.file.bytes, expected);
}

/// Magellan reports the blank-corrected OD (OD_450 − OD_620) and interprets that reading: every
/// Reactive well has a higher CorrectedOD than every Non-Reactive one. (Interpreting the raw
/// OD_450 called wells Reactive whose corrected reading was below the cut-off.)
#[test]
fn magellan_interpretation_follows_the_corrected_od() {
    let set = TemplateSet::embedded().unwrap();
    let template = set.get("tecan_f50_magellan").unwrap();
    let (mut lowest_reactive, mut highest_non_reactive) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut wells = 0;
    for seed in 0..20 {
        let file = files::render(template, &minter(), &options(90, seed)).unwrap();
        let rows = read_back(&file);
        let header = &rows[file.header_row];
        let column = |name: &str| header.iter().position(|c| c == name).unwrap();
        let (corrected, interpretation) = (column("CorrectedOD"), column("Interpretation"));
        for row in &rows[file.header_row + 1..] {
            let od: f64 = row[corrected].parse().unwrap();
            match row[interpretation].as_str() {
                "Reactive" => lowest_reactive = lowest_reactive.min(od),
                "Non-Reactive" => highest_non_reactive = highest_non_reactive.max(od),
                _ => continue,
            }
            wells += 1;
        }
    }
    assert!(wells >= 1_800, "{wells}");
    assert!(
        highest_non_reactive < lowest_reactive,
        "a Non-Reactive well reads {highest_non_reactive}, a Reactive one {lowest_reactive}"
    );
}

/// A workbook whose cells span the whole sheet (one in A1, one in XFD1048576: a few hundred
/// bytes on disk) is refused with the sheet and its extent. Read as a grid it needed 17 billion
/// cells, and the allocation aborted the process.
#[test]
fn a_workbook_spanning_the_whole_sheet_is_refused_not_allocated() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("Results").unwrap();
    sheet.write_string(0, 0, "Sample Name").unwrap();
    sheet.write_string(1_048_575, 16_383, "far").unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let set = TemplateSet::embedded().unwrap();
    let template = set.get("quantstudio7").unwrap();
    let error = files::replay_fixture(template, "huge.xlsx", &bytes, &minter(), 1, None)
        .expect_err("a sheet of 17 billion cells");
    let text = error.to_string();
    assert!(
        text.contains("huge.xlsx") && text.contains("Results") && text.contains("1048576 rows"),
        "{text}"
    );
}

/// The same for a legacy `.xls` workbook: a real QuantStudio 5 export with one cell moved to row
/// 5001, column IV (a 14-byte NUMBER record's row and column rewritten in place), spans 1.28
/// million cells and is refused before the replay builds its grid.
#[test]
fn a_legacy_workbook_spanning_too_many_cells_is_refused() {
    let mut bytes = fixture("quantstudio5/results.xls");
    // BIFF8 NUMBER: record type 0x0203, length 14, then row, column (little-endian u16).
    let number = bytes
        .windows(4)
        .rposition(|w| w == [0x03, 0x02, 0x0e, 0x00])
        .expect("a NUMBER record in the fixture");
    bytes[number + 4..number + 6].copy_from_slice(&5000_u16.to_le_bytes());
    bytes[number + 6..number + 8].copy_from_slice(&255_u16.to_le_bytes());
    let set = TemplateSet::embedded().unwrap();
    let template = set.get("quantstudio5").unwrap();
    let error = files::replay_fixture(template, "wide.xls", &bytes, &minter(), 1, None)
        .expect_err("a sheet of 1.28 million cells");
    let text = error.to_string();
    assert!(
        text.contains("wide.xls") && text.contains("5001 rows by 256 columns"),
        "{text}"
    );
    // The untouched export replays.
    let original = fixture("quantstudio5/results.xls");
    files::replay_fixture(template, "results.xls", &original, &minter(), 1, None).unwrap();
}

/// A sheet name Excel would refuse is a load error naming the key. It loaded, and generation
/// failed later with the XLSX writer's message, which named neither the template nor the key.
#[test]
fn sheet_names_excel_refuses_are_load_errors() {
    let load = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut json = embedded_json(name);
        edit(&mut json);
        load_str(&json.to_string(), Path::new("x.json"), &Profiles::None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let long = "Results:2026/11 [run] of the day";
    assert_eq!(
        load("quantstudio5", &|j| j["file_config"]["sheetName"] =
            long.into()),
        Err(format!(
            "x.json: $.file_config.sheetName: sheet name {long:?} has 32 characters; Excel \
             allows 31"
        ))
    );
    assert_eq!(
        load("quantstudio7_xls", &|j| j["excelFormat"]["sheetName"] =
            "Run/1".into()),
        Err(
            "x.json: $.excelFormat.sheetName: sheet name \"Run/1\" holds '/', which Excel does \
             not allow in a sheet name"
                .to_owned()
        )
    );
    assert!(
        load("quantstudio5", &|j| j["file_config"]["sheetName"] =
            "'Run".into())
        .unwrap_err()
        .contains("apostrophe")
    );
    assert!(
        load("quantstudio5", &|j| j["file_config"]["sheetName"] =
            "".into())
        .unwrap_err()
        .contains("is empty")
    );
    // 31 characters, and anything else Excel takes, load.
    assert_eq!(
        load("quantstudio5", &|j| j["file_config"]["sheetName"] =
            "Results (run 1) - 2026.11.22 ok".into()),
        Ok(())
    );
}

/// `generate`'s own XML file (a FILE template in XML, standard layout) escapes as the
/// instrument layouts do: a control character in a code or value became a raw byte, which
/// no XML parser reads.
#[test]
fn the_generic_xml_file_holds_no_raw_control_characters() {
    let json = r#"{"analyzer":{"name":"X","model":"X","manufacturer":"Acme"},
        "protocol":{"type":"FILE"},"file_config":{"format":"XML"},
        "fields":[{"code":"MTB\u0001","name":"MTB","type":"QUALITATIVE",
                   "possibleValues":["-\u000b"]}]}"#;
    let template = load_str(json, Path::new("x.json"), &Profiles::None).unwrap();
    let options = GenerateOptions {
        seed: Some(1),
        ..GenerateOptions::default()
    };
    let Ok(lis_templates::Output::File(file)) =
        lis_templates::generate(&template, &minter(), &options, false)
    else {
        panic!()
    };
    let text = String::from_utf8(file.bytes).unwrap();
    assert!(text.starts_with("<?xml"), "{text}");
    assert!(
        !text.chars().any(|c| c < ' ' && c != '\n'),
        "a raw control character: {text:?}"
    );
    assert!(text.contains("<test value=\"MTB\u{fffd}\">"), "{text}");
    assert!(text.contains("<result value=\"-\u{fffd}\"/>"), "{text}");
}

/// A FILE template with one numeric field `OD` and one QC control, with `file_config` made
/// of `config` (its JSON members).
fn od_template(config: &str) -> Template {
    let json = format!(
        r#"{{"analyzer":{{"name":"X","model":"PX","manufacturer":"Acme"}},
        "protocol":{{"type":"FILE"}},
        "file_config":{{{config}}},
        "fields":[{{"code":"OD","name":"OD","type":"NUMERIC","normalRange":"0.1-2.0"}}],
        "qc_controls":[{{"field_code":"OD","lot_number":"L1","level":"N","target":1.0,"sd":0.1}}]}}"#
    );
    load_str(&json, Path::new("x.json"), &Profiles::None).unwrap()
}

/// `generate`'s own file for `template` (seed 1), patient or QC.
fn generic_file(template: &Template, qc: bool) -> lis_templates::FileOutput {
    let options = GenerateOptions {
        seed: Some(1),
        ..GenerateOptions::default()
    };
    match lis_templates::generate(template, &minter(), &options, qc) {
        Ok(lis_templates::Output::File(file)) => file,
        other => panic!("{}: {other:?}", template.name),
    }
}

/// In the standard layout `generate`'s QC file has the metadata lines of its patient file
/// (`skipRows`) and its sheet name: without them, a reader skipping one row took the header
/// for metadata and the first control for the header.
#[test]
fn generic_qc_files_skip_the_rows_their_patient_files_skip() {
    let file = |format: &str, qc: bool| {
        let config =
            format!(r#""format":"{format}","delimiter":";","skipRows":1,"sheetName":"Run""#);
        generic_file(&od_template(&config), qc)
    };
    for format in ["CSV", "TSV"] {
        let patient = String::from_utf8(file(format, false).bytes).unwrap();
        let qc = String::from_utf8(file(format, true).bytes).unwrap();
        let line = |text: &str, n: usize| text.lines().nth(n).unwrap_or_default().to_owned();
        assert!(
            line(&patient, 0).contains("(generated by lis-templates)"),
            "{patient}"
        );
        assert_eq!(line(&qc, 0), line(&patient, 0), "{format}: {qc}");
        assert!(line(&qc, 1).starts_with("Sample Name"), "{format}: {qc}");
        assert!(line(&qc, 2).starts_with("QC-L1-N"), "{format}: {qc}");
    }
    let workbook = file("XLSX", true).bytes;
    let sheets = Xlsx::new(Cursor::new(workbook)).unwrap();
    assert_eq!(sheets.sheet_names(), ["Run"]);
}

/// `generate`'s own file puts a template's `metadataBlock` before the header as the instrument
/// does, with its date and time from the clock: the template's example `2026-03-05 14:23:45`
/// contradicted the file's own timestamp column.
#[test]
fn generic_metadata_lines_carry_the_generation_time() {
    let set = TemplateSet::embedded().unwrap();
    let options = GenerateOptions {
        seed: Some(1),
        now: Some(at("20260102080000")),
        ..GenerateOptions::default()
    };
    for (name, delimiter) in [("tecan_f50_magellan", "\t"), ("multiskan_fc_wells", ",")] {
        let output = lis_templates::generate(set.get(name).unwrap(), &minter(), &options, false);
        let Ok(lis_templates::Output::File(file)) = output else {
            panic!("{name}: {output:?}")
        };
        let text = String::from_utf8(file.bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for line in [
            format!("Date{delimiter}2026-01-02"),
            format!("Time{delimiter}08:00:00"),
        ] {
            assert!(lines.contains(&line.as_str()), "{name}: {text}");
        }
        assert!(!text.contains("2026-03-05"), "{name}: {text}");
        assert!(
            lines[0].starts_with("Application") || lines[0].starts_with("Instrument"),
            "{name}: {text}"
        );
    }
}

/// A SkanIt (Multiskan FC) plate export is a dual grid: OD readings under `Abs`, then the
/// wells' sample IDs under `Echantillon` (the profile's `dual_grid`). Without the second grid
/// no reading could be matched to the accessions the run reported. Magellan's plate export
/// holds readings only.
#[test]
fn the_skanit_plate_grid_names_the_sample_of_every_reading() {
    let set = TemplateSet::embedded().unwrap();
    let file = files::render(
        set.get("multiskan_fc_grid").unwrap(),
        &minter(),
        &options(8, 1),
    )
    .unwrap();
    let rows = read_back(&file);
    let header = file.header_row;
    assert_eq!(rows[header][0], "Abs");
    assert!(
        rows[header + 9].iter().all(String::is_empty),
        "a blank line"
    );
    assert_eq!(rows[header + 10][0], "Echantillon");
    assert_eq!(rows[header + 10][1..], rows[header][1..]);
    let readings = &rows[header + 1..header + 9];
    let ids = &rows[header + 11..header + 19];
    assert_eq!(rows.len(), header + 19);
    let mut named = Vec::new();
    for (reading_row, id_row) in readings.iter().zip(ids) {
        assert_eq!(reading_row[0], id_row[0], "row letters A-H in both grids");
        for (od, id) in reading_row[1..].iter().zip(&id_row[1..]) {
            assert_eq!(od.is_empty(), id.is_empty(), "{od:?} / {id:?}");
            if !id.is_empty() {
                assert!(od.parse::<f64>().is_ok(), "{od}");
                named.push(id.clone());
            }
        }
    }
    let mut expected: Vec<String> = file.accessions.clone();
    expected.extend(file.controls.iter().cloned());
    assert_eq!(file.accessions.len(), 8);
    named.sort();
    expected.sort();
    assert_eq!(named, expected);

    let tecan = files::render(
        set.get("tecan_f50_grid").unwrap(),
        &minter(),
        &options(8, 1),
    )
    .unwrap();
    let rows = read_back(&tecan);
    assert_eq!(rows.len(), tecan.header_row + 9, "one grid");
    assert!(
        !tecan
            .accessions
            .iter()
            .any(|a| rows.iter().flatten().any(|c| c == a))
    );
}

/// Finecare's dates and fixed numbers are typed cells in XLSX (a date a spreadsheet or an
/// importer reading cell types sees as a date, a number as a number), spelled as before in CSV.
#[test]
fn finecare_xlsx_dates_and_numbers_are_typed_cells() {
    let set = TemplateSet::embedded().unwrap();
    let finecare = set.get("wondfo_finecare").unwrap();
    let mut xlsx = options(2, 1);
    xlsx.format = Some(FileKind::Xlsx);
    let workbook = files::render(finecare, &minter(), &xlsx).unwrap();
    let mut book = Xlsx::new(Cursor::new(workbook.file.bytes)).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    let header: Vec<String> = rows[workbook.header_row].iter().map(cell_text).collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let csv = files::render(finecare, &minter(), &options(2, 1)).unwrap();
    let text = read_back(&csv);
    let first = workbook.header_row + 1;
    for (name, spelled) in [
        // The clock is 2026-11-21 08:59:41; the first result is the earliest of the session.
        ("Date/Time", "2026-11-21 08:"),
        ("Calibration Date", "2026-10-22 00:00:00"),
        ("Reagent Expiry", "2027-05-20 00:00:00"),
    ] {
        let Data::DateTime(at) = &rows[first][column(name)] else {
            panic!("{name}: {:?}", rows[first][column(name)])
        };
        let (y, mo, d, h, mi, sec, _) = at.to_ymd_hms_milli();
        let at = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02}");
        assert!(at.starts_with(spelled), "{name}: {at}");
        let csv_cell = &text[csv.header_row + 1][column(name)];
        assert!(
            at.starts_with(csv_cell.as_str()),
            "{name}: {csv_cell} / {at}"
        );
    }
    for (name, value, spelled) in [
        ("Dilution Factor", 1.0, "1.0"),
        ("Linearity Min", 0.05, "0.05"),
        ("Linearity Max", 100.0, "100.0"),
        ("Internal Temp", 36.8, "36.8"),
    ] {
        assert_eq!(rows[first][column(name)], Data::Float(value), "{name}");
        assert_eq!(text[csv.header_row + 1][column(name)], spelled, "{name}");
    }
    assert!(
        matches!(rows[0][20], Data::DateTime(_)),
        "{:?}",
        rows[0][20]
    );
}

/// Molecular calls that are neither detected nor not detected are written as such: a drawn
/// `Invalid` (Hain) was written as Not Detected / Negative, a drawn `INDETERMINATE`
/// (FluoroCycler XT) as DETECTED with a CP. An invalid run's internal control is the one that
/// failed; an indeterminate target has a late CP.
#[test]
fn invalid_and_indeterminate_calls_are_written_as_drawn() {
    let set = TemplateSet::embedded().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..6 {
        let mut o = options(20, seed);
        o.format = Some(FileKind::Csv);
        let hain = files::render(set.get("hain_fluorocycler").unwrap(), &minter(), &o).unwrap();
        let rows = read_back(&hain);
        let column = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
        for row in &rows[1..] {
            let pair = (
                row[column("Result")].as_str(),
                row[column("Interpretation")].as_str(),
            );
            assert!(
                matches!(
                    pair,
                    ("Detected", "Positive")
                        | ("Not Detected", "Negative")
                        | ("Invalid", "Invalid")
                ),
                "{row:?}"
            );
            seen.insert(format!("hain {}", pair.0));
        }

        let xt = files::render(
            set.get("fluorocycler_xt").unwrap(),
            &minter(),
            &options(20, seed),
        )
        .unwrap();
        let rows = read_back(&xt);
        let column = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
        // Each well has its target row, then its IC row.
        for pair in rows[1..].chunks(2) {
            let (target, ic) = (&pair[0], &pair[1]);
            assert_eq!(ic[column("TargetName")], "IC");
            let cp = |row: &Vec<String>| row[column("CP")].parse::<f64>().unwrap();
            let call = target[column("Interpretation")].as_str();
            let ic_call = ic[column("Interpretation")].as_str();
            match call {
                "DETECTED" => assert!(cp(target) > 0.0 && cp(target) < 38.0, "{target:?}"),
                "NOT DETECTED" => assert_eq!(cp(target), -1.0, "{target:?}"),
                "INDETERMINATE" => assert!(cp(target) >= 38.0, "{target:?}"),
                "INVALID" => assert_eq!(cp(target), -1.0, "{target:?}"),
                other => panic!("{other}"),
            }
            if call == "INVALID" {
                assert_eq!((ic_call, cp(ic)), ("NOT DETECTED", -1.0), "{ic:?}");
            } else {
                assert_eq!(ic_call, "DETECTED", "{ic:?}");
            }
            seen.insert(format!("xt {call}"));
        }
    }
    let expected = [
        "hain Detected",
        "hain Invalid",
        "hain Not Detected",
        "xt DETECTED",
        "xt INDETERMINATE",
        "xt INVALID",
        "xt NOT DETECTED",
    ];
    assert_eq!(
        seen.iter().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
}

/// `generate`'s QC file follows the patient file's `file_config`: a TXT template's is `.txt`
/// (it was `.csv`, which a poller globbing the template's pattern does not see) and without a
/// header row when `has_header` is false (a reader took the header for a control).
#[test]
fn generic_qc_files_follow_the_format_and_header_of_patient_files() {
    let file = |format: &str, header: bool, qc: bool| {
        let config = format!(r#""format":"{format}","delimiter":";","has_header":{header}"#);
        generic_file(&od_template(&config), qc)
    };
    for (format, ext) in [("TXT", ".txt"), ("CSV", ".csv"), ("TSV", ".tsv")] {
        for header in [true, false] {
            let patient = file(format, header, false);
            let qc = file(format, header, true);
            assert!(patient.file_name.ends_with(ext), "{}", patient.file_name);
            assert!(qc.file_name.ends_with(ext), "{format}: {}", qc.file_name);
            assert_eq!(qc.kind, patient.kind, "{format}");
            let first = String::from_utf8(qc.bytes).unwrap();
            let first = first.lines().next().unwrap().to_owned();
            assert_eq!(
                first.starts_with("QC-L1-N"),
                !header,
                "{format} {header}: {first}"
            );
            let patient_text = String::from_utf8(patient.bytes).unwrap();
            let patient_first = patient_text.lines().next().unwrap();
            assert_eq!(
                patient_first.starts_with("DEV01"),
                !header,
                "{patient_first}"
            );
        }
    }
}
