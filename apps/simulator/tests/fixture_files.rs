//! `/simulate/file/{template}` for the templates with a `fixture` (a real instrument export),
//! as the reference answers them: `metadata` with the export's results on GET and POST, and
//! on POST (without QC) the export itself written to `target_dir`, a text export with a
//! `\n{epoch_ms}` line appended. A fixture missing from `--templates-dir` is the reference's
//! 404.

mod common;

use common::*;
use lis_templates::TemplateSet;
use lis_templates::files::Fixture;
use serde_json::{Value, json};

/// The embedded export of template `name`.
fn export(name: &str) -> &'static [u8] {
    let templates = TemplateSet::embedded().unwrap();
    Fixture::of(templates.get(name).unwrap())
        .unwrap()
        .unwrap()
        .embedded_bytes()
        .unwrap()
}

async fn get_json(url: String) -> (u16, Value) {
    let reply = http().get(url).send().await.unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_templates_answer_with_the_exports_results_and_write_the_export() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().display().to_string();
    let sim = api_sim(&["--file-root", &root_path]);

    let (s, v) = get_json(sim.api_url("/simulate/file/tecan_f50")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "generated");
    let tecan = json!({
        "analyzerName": "Tecan Infinite F50",
        "format": "CSV",
        "fixture": "fixtures/tecan-f50/results.csv",
        "results": [
            {"sampleId": "DEV01265100000000101", "result": "Positive", "testCode": "HIV ELISA"},
            {"sampleId": "DEV01265100000000102", "result": "Negative", "testCode": "HIV ELISA"},
            {"sampleId": "DEV01265100000000103", "result": "Positive", "testCode": "HIV ELISA"},
        ],
    });
    assert_eq!(v["metadata"], tecan, "{v}");
    // A workbook export: numbers stay numbers; the controls and the other targets are gone.
    let (s, v) = get_json(sim.api_url("/simulate/file/quantstudio5")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["metadata"]["format"], "XLS");
    let results = v["metadata"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "{v}");
    assert_eq!(
        results[0],
        json!({"sampleId": "DEV01262100000000001", "result": 1520.5, "testCode": "VIH-1"})
    );
    // A template without a fixture answers as before, without metadata.
    let (s, v) = get_json(sim.api_url("/simulate/file/dtprime")).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("metadata").is_none(), "{v}");

    // POST: the export is written under a tagged name, with the epoch line.
    let body = json!({"target_dir": root_path}).to_string();
    let (s, v) = post_json(sim.api_url("/simulate/file/tecan_f50"), body.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["metadata"], tecan, "{v}");
    let path = std::path::PathBuf::from(v["written_path"].as_str().unwrap());
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("tecan_f50-") && name.ends_with(".csv") && name.len() == 22,
        "{name}"
    );
    let written = std::fs::read(&path).unwrap();
    let (kept, stamp) = written.split_at(export("tecan_f50").len());
    assert_eq!(kept, export("tecan_f50"));
    let stamp = std::str::from_utf8(stamp).unwrap();
    assert!(
        stamp.len() == 14
            && stamp.starts_with('\n')
            && stamp[1..].bytes().all(|b| b.is_ascii_digit()),
        "{stamp:?}"
    );
    assert_eq!(v["content"].as_str().unwrap().as_bytes(), written);
    // A second run is another file with other content (the bridge drops same-hash files).
    let (_, again) = post_json(sim.api_url("/simulate/file/tecan_f50"), body).await;
    assert_ne!(again["written_path"], v["written_path"]);

    // A workbook is written as it is, under its own extension.
    let body = json!({"target_dir": root_path, "filename": "QS5_run.xls"}).to_string();
    let (s, v) = post_json(sim.api_url("/simulate/file/quantstudio5"), body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["format"], "XLS");
    assert_eq!(
        v["metadata"]["fixture"],
        "fixtures/quantstudio5/results.xls"
    );
    let path = v["written_path"].as_str().unwrap();
    assert!(path.ends_with("/QS5_run.xls"), "{path}");
    assert_eq!(std::fs::read(path).unwrap(), export("quantstudio5"));

    // QC files are generated as before: no fixture, no metadata. (`{}`: quantstudio5's QC
    // is uploaded by default, as in the reference.)
    let body = json!({"target_dir": root_path, "qc": true, "bridge_upload": {}}).to_string();
    let (s, v) = post_json(sim.api_url("/simulate/file/quantstudio5"), body).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("metadata").is_none(), "{v}");
    assert_eq!(v["format"], "XLSX");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixture_is_read_from_the_templates_dir_and_a_missing_one_is_a_404() {
    // The reference's layout: templates/ and fixtures/ side by side.
    let repo = tempfile::tempdir().unwrap();
    let templates = repo.path().join("templates");
    std::fs::create_dir_all(repo.path().join("fixtures/mine")).unwrap();
    std::fs::create_dir(&templates).unwrap();
    let tecan = include_str!("../../../templates/tecan_f50.json");
    let mut template: Value = serde_json::from_str(tecan).unwrap();
    template["fixture"]["file"] = "fixtures/mine/run.csv".into();
    std::fs::write(templates.join("tecan_f50.json"), template.to_string()).unwrap();
    let dir = templates.display().to_string();
    let sim = api_sim(&["--templates-dir", &dir]);

    let (s, v) = get_json(sim.api_url("/simulate/file/tecan_f50")).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(
        v["error"], "Fixture file not found: fixtures/mine/run.csv",
        "{v}"
    );
    std::fs::write(
        repo.path().join("fixtures/mine/run.csv"),
        "WellPosition,SampleID,Interpretation,TestCode\nB1,SPEC-9,Negative,HIV ELISA\nB2,POS,Positive,HIV ELISA\n",
    )
    .unwrap();
    let (s, v) = get_json(sim.api_url("/simulate/file/tecan_f50")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["metadata"]["results"],
        json!([{"sampleId": "SPEC-9", "result": "Negative", "testCode": "HIV ELISA"}]),
        "{v}"
    );
}
