//! The results of each template's `fixture` (the OpenELIS mock's `/simulate/file` metadata):
//! read from the embedded export (the same bytes as the reference fixtures in `tests/data`)
//! with the template's column mapping; controls dropped, `testCodeFilter` and
//! `perFileTestCode` applied; a fixture key that points outside the templates' folder, or
//! names a column the export lacks, is refused with the reason.

use std::path::Path;

use lis_templates::files::{Fixture, FixtureResult};
use lis_templates::{GenerateError, Profiles, TemplateSet, load_str};
use serde_json::{Value, json};

mod common;

/// The reference export at `path` (`fixtures/...`, as templates name it) under `tests/data`.
fn reference_fixture(path: &str) -> Vec<u8> {
    common::fixture(path.strip_prefix("fixtures/").unwrap())
}

/// The embedded template `name`'s fixture and its results.
fn results(name: &str) -> (Fixture, Vec<FixtureResult>) {
    let templates = TemplateSet::embedded().unwrap();
    let fixture = Fixture::of(templates.get(name).unwrap())
        .unwrap()
        .unwrap_or_else(|| panic!("{name} has a fixture"));
    let bytes = fixture.embedded_bytes().expect("the fixture is embedded");
    assert_eq!(bytes, reference_fixture(&fixture.file), "{}", fixture.file);
    let results = fixture.results(bytes).unwrap();
    (fixture, results)
}

fn summary(results: &[FixtureResult]) -> Vec<Value> {
    results.iter().map(FixtureResult::to_json).collect()
}

#[test]
fn csv_fixtures_read_with_their_delimiter_and_skipped_rows_without_controls() {
    let (tecan, rows) = results("tecan_f50");
    assert_eq!((tecan.format.as_str(), tecan.delimiter), ("CSV", b','));
    assert_eq!(
        summary(&rows),
        [
            json!({"sampleId": "DEV01265100000000101", "result": "Positive", "testCode": "HIV ELISA"}),
            json!({"sampleId": "DEV01265100000000102", "result": "Negative", "testCode": "HIV ELISA"}),
            json!({"sampleId": "DEV01265100000000103", "result": "Positive", "testCode": "HIV ELISA"}),
        ]
    );
    // `;`, and the controls NC and PC dropped.
    let (_, rows) = results("multiskan_fc");
    let ids: Vec<&str> = rows.iter().map(|r| r.sample_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "DEV01265200000000101",
            "DEV01265200000000102",
            "DEV01265200000000103"
        ]
    );
    // One metadata line skipped (skipRows 1), then the 40-column header.
    let (wondfo, rows) = results("wondfo_finecare");
    assert_eq!(wondfo.skip_rows, 1);
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.sample_id.starts_with("DEV0126") && r.test_code.is_some()),
        "{rows:?}"
    );
    assert_eq!(
        rows[0].to_json(),
        json!({"sampleId": "DEV01265000000000101", "result": "3.45", "testCode": "TSH"})
    );
}

#[test]
fn workbook_fixtures_read_from_their_header_row_with_filter_and_per_file_code() {
    for name in ["quantstudio5", "quantstudio7"] {
        let (fixture, rows) = results(name);
        assert_eq!(fixture.test_code_filter.as_deref(), Some("VIH-1"));
        assert!(!rows.is_empty(), "{name}");
        for row in &rows {
            assert_eq!(row.test_code.as_deref(), Some("VIH-1"), "{name}: {row:?}");
            assert!(row.sample_id.starts_with("DEV0126"), "{name}: {row:?}");
            assert!(row.result.is_number(), "{name}: {row:?}");
        }
    }
    // No test column: every row carries perFileTestCode.
    let (hain, rows) = results("hain_fluorocycler");
    assert_eq!(hain.per_file_test_code.as_deref(), Some("VIH-1"));
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.test_code.as_deref() == Some("VIH-1") && !r.sample_id.is_empty()),
        "{rows:?}"
    );
}

#[test]
fn templates_without_a_fixture_have_none() {
    let templates = TemplateSet::embedded().unwrap();
    assert_eq!(
        Fixture::of(templates.get("genexpert").unwrap()).unwrap(),
        None
    );
}

/// The tecan template with its fixture key replaced by `fixture`.
fn with_fixture(fixture: Value) -> Result<Option<Fixture>, GenerateError> {
    let source = TemplateSet::embedded_sources()
        .find(|(name, _)| *name == "tecan_f50")
        .unwrap()
        .1;
    let mut json: Value = serde_json::from_str(source).unwrap();
    json["fixture"] = fixture;
    let template = load_str(
        &json.to_string(),
        Path::new("tecan_f50.json"),
        &Profiles::None,
    )
    .unwrap();
    Fixture::of(&template)
}

#[test]
fn a_fixture_outside_the_templates_folder_or_with_a_missing_column_is_refused() {
    let mapping = json!({"sampleId": "SampleID", "result": "Interpretation"});
    for file in [
        "../../etc/passwd",
        "/etc/passwd",
        "fixtures/../../x.csv",
        "",
    ] {
        let error = with_fixture(json!({"file": file, "column_mapping": mapping}))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("must be a relative path inside the templates' folder"),
            "{file}: {error}"
        );
    }
    let error = with_fixture(json!({"file": "fixtures/x.csv"}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("column_mapping"), "{error}");
    let fixture = with_fixture(json!({
        "file": "fixtures/tecan-f50/results.csv",
        "column_mapping": {"sampleId": "Sample", "result": "Interpretation"},
    }))
    .unwrap()
    .unwrap();
    let error = fixture
        .results(&reference_fixture("fixtures/tecan-f50/results.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("fixtures/tecan-f50/results.csv: no column \"Sample\" (the header has WellPosition, SampleID, Interpretation, TestCode)"),
        "{error}"
    );
    let error = fixture.results(b"\xff\xfe").unwrap_err().to_string();
    assert!(error.contains("not UTF-8 text"), "{error}");
    let workbook = with_fixture(json!({
        "file": "fixtures/q.xlsx",
        "column_mapping": {"sampleId": "Sample Name", "result": "CT"},
    }))
    .unwrap()
    .unwrap();
    let error = workbook.results(b"PK not a zip").unwrap_err().to_string();
    assert!(error.contains("cannot read workbook"), "{error}");
}
