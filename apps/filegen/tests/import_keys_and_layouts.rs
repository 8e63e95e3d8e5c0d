//! What an importer reads from generated files: duplicate keys unique across a batch, the
//! generic layout's skipped rows and mapped columns, and a clock the files can hold.

use std::path::Path;
use std::process::{Command, Output};

fn filegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_filegen"))
        .args(args)
        .output()
        .expect("run filegen")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A one-field FILE template of the generic layout, with `members` added.
fn write_acme_px(templates: &Path, members: &str) {
    let json = format!(
        r#"{{"analyzer":{{"name":"Plate X","model":"PX","manufacturer":"Acme"}},
        "protocol":{{"type":"FILE"}},
        "fields":[{{"code":"OD","name":"OD","type":"NUMERIC","normalRange":"0.1-2.0"}}],
        {members}}}"#
    );
    std::fs::write(templates.join("acme_px.json"), json).unwrap();
}

/// The Wondfo profile's duplicate key is Serial Number (col 0) + Date/Time (col 21) + Test
/// Name (col 3). Two files of one batch must not repeat it, or the importer drops the second
/// file's results as duplicates.
#[test]
fn finecare_files_of_one_batch_do_not_repeat_the_importers_duplicate_key() {
    let dir = tempfile::tempdir().unwrap();
    let o = filegen(&[
        "--template",
        "wondfo_finecare",
        "--out",
        dir.path().to_str().unwrap(),
        "--count",
        "2",
        "--samples",
        "2",
        "--now",
        "2026-03-15T10:00:00",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = names(dir.path());
    assert_eq!(files.len(), 2);
    let keys = |name: &str| -> std::collections::BTreeSet<(String, String, String)> {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.split_once('\n').unwrap().1.as_bytes());
        reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_owned(), r[21].to_owned(), r[3].to_owned())
            })
            .collect()
    };
    let (a, b) = (keys(&files[0]), keys(&files[1]));
    let shared: Vec<_> = a.intersection(&b).collect();
    assert!(
        shared.is_empty(),
        "rows of the second file repeat the first file's duplicate key: {shared:?}"
    );
}

/// A generic template with `file_config.skipRows`: a reader skips that many lines before the
/// header, so they must be metadata, not the header and the first data rows.
#[test]
fn generic_layout_writes_the_skip_rows_a_reader_skips() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    write_acme_px(
        &templates,
        r#""file_config":{"format":"CSV","delimiter":";","skipRows":2}"#,
    );
    let out = dir.path().join("out");
    let o = filegen(&[
        "--template",
        "acme_px",
        "--out",
        out.to_str().unwrap(),
        "--templates-dir",
        templates.to_str().unwrap(),
        "--samples",
        "3",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join(&names(&out)[0])).unwrap();
    // What an importer configured with skipRows = 2 reads.
    let after_skip: String = text.lines().skip(2).map(|l| format!("{l}\n")).collect();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(after_skip.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        ["Sample Name", "Target", "Result"],
        "file as written:\n{text}"
    );
    assert_eq!(reader.records().count(), 3, "file as written:\n{text}");
}

/// A generic template modelled on the GeneXpert CSV export (OpenELIS profile `genexpert-csv`:
/// `Sample ID`, `Test Type`, `Test Result`), its `column_mapping` naming those columns: the
/// mapped result column must hold the result, not the test code.
#[test]
fn generic_layout_fills_mapped_columns_before_guessing_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    write_acme_px(
        &templates,
        r#""file_config":{"format":"CSV","column_mapping":{"sample_id":"Sample ID","test_code":"Test Type","result":"Test Result"}},
        "columns":[{"index":0,"name":"Sample ID"},{"index":1,"name":"Test Type"},{"index":2,"name":"Test Result"}]"#,
    );
    let out = dir.path().join("out");
    let o = filegen(&[
        "--template",
        "acme_px",
        "--out",
        out.to_str().unwrap(),
        "--templates-dir",
        templates.to_str().unwrap(),
        "--samples",
        "2",
        "--seed",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join(&names(&out)[0])).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    for row in reader.records() {
        let row = row.unwrap();
        assert_eq!(&row[1], "OD", "{text}");
        let value: f64 = row[2]
            .parse()
            .unwrap_or_else(|_| panic!("Test Result holds {:?}, not a value:\n{text}", &row[2]));
        assert!((0.1..=2.0).contains(&value), "{text}");
    }
}

/// A `--now` the files cannot hold is refused as the option's error (a usage error, exit 2),
/// nothing written: far in the future Finecare's session times overflowed (a panic), and
/// before 1900 every XLSX layout failed late with rust_xlsxwriter's words, not naming `--now`.
#[test]
fn a_now_the_files_cannot_hold_is_refused_naming_the_option() {
    for (template, now) in [
        ("wondfo_finecare", "+262142-12-31T23:59:59"),
        ("quantstudio5", "0001-01-01T00:00:00"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = filegen(&[
            "--template",
            template,
            "--out",
            dir.path().to_str().unwrap(),
            "--now",
            now,
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--now") && stderr.contains("outside the years 1901 to 9998"),
            "{stderr}"
        );
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }
}

/// A `file_pattern` whose only wildcard is in its extension (`aux.*`) named every file
/// `aux.csv` (then `aux-1.csv` ...), without time, sequence or QC marker, and `aux` is a
/// Windows device name. The stem now gets the time stamp and sequence.
#[test]
fn a_pattern_wildcard_only_in_the_extension_still_gives_unique_names() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    write_acme_px(
        &templates,
        r#""identification":{"file_pattern":"aux.*"},"file_config":{"format":"CSV"}"#,
    );
    let out = dir.path().join("out");
    let o = filegen(&[
        "--template",
        "acme_px",
        "--out",
        out.to_str().unwrap(),
        "--templates-dir",
        templates.to_str().unwrap(),
        "--count",
        "2",
        "--now",
        "2026-03-15T10:00:00",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        names(&out),
        [
            "aux-20260315-100000-0001.csv",
            "aux-20260315-100000-0002.csv"
        ]
    );
}
