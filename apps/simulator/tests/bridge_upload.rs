//! `bridge_upload` of `POST /simulate/file/{template}`: a real HTTP server on loopback plays the
//! bridge (`POST /admin/upload`, multipart) and OpenELIS (the analyzer list), and records what
//! arrives.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use common::*;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One upload as the bridge received it.
#[derive(Debug, Clone, Default)]
struct Received {
    authorization: String,
    analyzer_id: Option<String>,
    test_code: Option<String>,
    file_name: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Fake {
    uploads: Mutex<Vec<Received>>,
    lookups: Mutex<Vec<String>>,
}

async fn admin_upload(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    mut form: Multipart,
) -> (StatusCode, String) {
    let mut received = Received {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        ..Received::default()
    };
    while let Some(field) = form.next_field().await.unwrap() {
        match field.name().unwrap_or_default() {
            "analyzerId" => received.analyzer_id = Some(field.text().await.unwrap()),
            "testCode" => received.test_code = Some(field.text().await.unwrap()),
            "file" => {
                received.file_name = field.file_name().map(str::to_owned);
                received.content_type = field.content_type().map(str::to_owned);
                received.bytes = field.bytes().await.unwrap().to_vec();
            }
            other => panic!("unexpected form field {other}"),
        }
    }
    // Analyzer 500 stands for one the bridge refuses.
    let refused = received.analyzer_id.as_deref() == Some("500");
    fake.uploads.lock().unwrap().push(received);
    if refused {
        (StatusCode::INTERNAL_SERVER_ERROR, "no such analyzer".into())
    } else {
        (StatusCode::CREATED, format!("queued {}", "x".repeat(600)))
    }
}

async fn analyzers(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> axum::Json<Value> {
    fake.lookups.lock().unwrap().push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    );
    axum::Json(json!([
        {"id": "3", "name": "Tecan Infinite F50", "active": true},
        {"id": 7, "name": "QuantStudio 5", "active": true}
    ]))
}

/// The bridge and OpenELIS on one loopback port.
async fn fake_servers() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/admin/upload", post(admin_upload))
        .route(
            "/api/OpenELIS-Global/rest/analyzer/analyzers",
            get(analyzers),
        )
        // An OpenELIS that answers with more than anyone should buffer.
        .route(
            "/huge/api/OpenELIS-Global/rest/analyzer/analyzers",
            get(|| async { format!("[{}]", "{\"id\":1,\"name\":\"x\"},".repeat(600_000)) }),
        )
        .with_state(fake.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

fn basic(user: &str, password: &str) -> String {
    // Base64 by hand keeps the test free of another dependency.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_uploaded_to_the_bridge_as_the_reference_does() {
    let (url, fake) = fake_servers().await;
    let files = tempfile::tempdir().unwrap();
    let root = files.path().display().to_string();
    let mut cmd = command(&[
        "--listen",
        "0=stago_start4",
        "--simulate-api-port",
        "0",
        "--file-root",
        &root,
    ]);
    cmd.env("BRIDGE_URL", &url)
        .env("OE_URL", &url)
        .env_remove("BRIDGE_USER")
        .env_remove("BRIDGE_PASS")
        .env_remove("OE_USER")
        .env_remove("OE_PASS")
        .env_remove("QC_DEFAULT_FILE_TEST_CODE");
    let sim = Sim::start_with(cmd);

    // QuantStudio 5 QC without `bridge_upload`: uploaded by default, its analyzer id looked
    // up in OpenELIS, the first control's code as the test code, the default credentials.
    let (s, v) = post_json(
        sim.api_url("/simulate/file/quantstudio5"),
        r#"{"qc":true,"qc_deviation":2.5,"target_dir":"ignored"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "uploaded");
    assert_eq!(v["template"], "quantstudio5");
    assert_eq!(
        (v["qc"].clone(), v["qc_deviation"].clone()),
        (json!(true), json!(2.5))
    );
    assert_eq!(v["format"], "XLSX");
    // The reference's key order (the simulator's JSON keeps insertion order).
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "status",
            "template",
            "qc",
            "qc_deviation",
            "format",
            "bridge_status",
            "bridge_response_preview",
            "upload_filename",
            "content_size_bytes"
        ],
        "{v}"
    );
    assert_eq!(v["bridge_status"], 201);
    assert_eq!(
        v["bridge_response_preview"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        500
    );
    let name = v["upload_filename"].as_str().unwrap();
    assert_tagged_qc_name(name);
    assert!(
        v.get("content_preview").is_none(),
        "XLSX has no text preview"
    );
    {
        let uploads = fake.uploads.lock().unwrap();
        assert_eq!(uploads.len(), 1);
        let up = &uploads[0];
        assert_eq!(up.authorization, basic("bridge", "changeme"));
        assert_eq!(up.analyzer_id.as_deref(), Some("7"));
        assert_eq!(up.test_code.as_deref(), Some("VIH-1"));
        assert_eq!(up.file_name.as_deref(), Some(name));
        assert_eq!(
            up.content_type.as_deref(),
            Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        );
        assert!(up.bytes.starts_with(b"PK"), "a zip (XLSX)");
        assert_eq!(v["content_size_bytes"], up.bytes.len());
    }
    assert_eq!(
        *fake.lookups.lock().unwrap(),
        [basic("admin", "adminADMIN!")]
    );
    // Nothing was written: an upload replaces the write.
    assert_eq!(std::fs::read_dir(files.path()).unwrap().count(), 0);

    // `{}` means no upload: the file is written instead.
    let body = format!(r#"{{"qc":true,"bridge_upload":{{}},"target_dir":"{root}"}}"#);
    let (s, v) = post_json(sim.api_url("/simulate/file/quantstudio5"), &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "completed");
    assert!(std::path::Path::new(v["written_path"].as_str().unwrap()).exists());
    assert_eq!(fake.uploads.lock().unwrap().len(), 1);
    // Named as the reference names it, `qc-{template}-{hex8}.EXT`: a second QC file in the
    // same second is a second file, not a replacement of the first.
    let (s, again) = post_json(sim.api_url("/simulate/file/quantstudio5"), &body).await;
    assert_eq!(s, 200, "{again}");
    let paths = [&v, &again].map(|r| r["written_path"].as_str().unwrap().to_owned());
    assert_ne!(paths[0], paths[1]);
    for path in &paths {
        assert_tagged_qc_name(
            std::path::Path::new(path)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap(),
        );
        assert!(std::path::Path::new(path).exists(), "{path}");
    }

    // An explicit analyzer id (a number, as OpenELIS writes ids) and credentials; no lookup;
    // the template's export (a CSV), with its text preview and results.
    let (s, v) = post_json(
        sim.api_url("/simulate/file/tecan_f50"),
        r#"{"bridge_upload":{"analyzer_id":42,"test_code":"HIV","bridge_user":"u","bridge_pass":"p"}}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "uploaded");
    assert_eq!(v["qc"], false);
    assert!(
        v["upload_filename"]
            .as_str()
            .unwrap()
            .starts_with("tecan_f50-")
    );
    {
        let uploads = fake.uploads.lock().unwrap();
        let up = uploads.last().unwrap();
        assert_eq!(up.authorization, basic("u", "p"));
        assert_eq!(up.analyzer_id.as_deref(), Some("42"));
        assert_eq!(up.test_code.as_deref(), Some("HIV"));
        assert_eq!(up.content_type.as_deref(), Some("text/csv"));
        // tecan_f50 has a fixture: its export is what is uploaded, as in the reference.
        let templates = lis_templates::TemplateSet::embedded().unwrap();
        let fixture = lis_templates::files::Fixture::of(templates.get("tecan_f50").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(up.bytes, fixture.embedded_bytes().unwrap());
        assert_eq!(v["metadata"]["fixture"], "fixtures/tecan-f50/results.csv");
        let text = String::from_utf8(up.bytes.clone()).unwrap();
        assert_eq!(
            v["content_preview"],
            text.chars().take(500).collect::<String>()
        );
    }
    assert_eq!(fake.lookups.lock().unwrap().len(), 1);

    // Without `bridge_upload` a patient file is not uploaded.
    let (s, v) = post_json(sim.api_url("/simulate/file/tecan_f50"), "{}").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("completed")), "{v}");

    // The bridge's error status is passed through in a 200, as the reference does.
    let (s, v) = post_json(
        sim.api_url("/simulate/file/tecan_f50"),
        r#"{"bridge_upload":{"analyzer_id":"500"}}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["bridge_status"].clone(),
            v["bridge_response_preview"].clone()
        ),
        (json!(500), json!("no such analyzer"))
    );
    let uploads = fake.uploads.lock().unwrap().len();
    assert_eq!(uploads, 3);

    // An analyzer OpenELIS does not know: 400 with the reference's message and the reason.
    let (s, v) = post_json(
        sim.api_url("/simulate/file/multiskan_fc"),
        r#"{"bridge_upload":{"test_code":"HIV"}}"#,
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "Could not resolve analyzer_id from name 'Thermo Multiskan FC'. Pass \
             bridge_upload.analyzer_id explicitly, or ensure the analyzer is registered in OE."
        ) && error.contains("no analyzer named"),
        "{error}"
    );

    // An analyzer list too large to read is refused, not buffered.
    let body = format!(r#"{{"bridge_upload":{{"oe_url":"{url}/huge"}}}}"#);
    let (s, v) = post_json(sim.api_url("/simulate/file/tecan_f50"), &body).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("is larger than 8388608 bytes"),
        "{v}"
    );

    // A bridge that cannot be reached: 502.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let body = format!(r#"{{"bridge_upload":{{"analyzer_id":"3","bridge_url":"{closed_url}"}}}}"#);
    let (s, v) = post_json(sim.api_url("/simulate/file/tecan_f50"), &body).await;
    assert_eq!(s, 502, "{v}");
    assert!(
        v["error"].as_str().unwrap().starts_with(&format!(
            "Bridge upload failed: POST {closed_url}/admin/upload: "
        )),
        "{v}"
    );

    // Bad `bridge_upload` values: 400 naming the key.
    for (body, needle) in [
        (
            r#"{"bridge_upload":"yes"}"#,
            "bridge_upload must be an object",
        ),
        (
            r#"{"bridge_upload":{"bridge_url":5}}"#,
            "bridge_upload.bridge_url must be a string",
        ),
        // A URL that is none was a 502 'Bridge upload failed: ... builder error'.
        (
            r#"{"bridge_upload":{"analyzer_id":"3","bridge_url":"bridge:8443"}}"#,
            "bridge_upload.bridge_url \"bridge:8443\" is not an http(s) URL: scheme bridge:// is not http:// or https://",
        ),
        (
            r#"{"bridge_upload":{"analyzer_id":"3","bridge_url":"openelis bridge"}}"#,
            "bridge_upload.bridge_url \"openelis bridge\" is not an http(s) URL: relative URL without a base",
        ),
        (
            r#"{"bridge_upload":{"oe_url":"http://oe:port"}}"#,
            "bridge_upload.oe_url \"http://oe:port\" is not an http(s) URL: invalid port number",
        ),
        (
            r#"{"bridge_upload":{"analyzer_id":true}}"#,
            "bridge_upload.analyzer_id must be a string or a number; got true",
        ),
    ] {
        let (s, v) = post_json(sim.api_url("/simulate/file/tecan_f50"), body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
    assert_eq!(fake.uploads.lock().unwrap().len(), uploads);

    // A key the reference does not know is ignored (with a log line), as the reference does:
    // the id is looked up and the file goes out.
    let (s, v) = post_json(
        sim.api_url("/simulate/file/tecan_f50"),
        r#"{"bridge_upload":{"analyzer":"Tecan"}}"#,
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("uploaded")), "{v}");
    let last = fake.uploads.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.analyzer_id.as_deref(), Some("3"));
    assert_eq!(last.test_code, None);
}

/// `qc-quantstudio5-{hex8}.xlsx`, as the reference names a QC file.
fn assert_tagged_qc_name(name: &str) {
    let tag = name
        .strip_prefix("qc-quantstudio5-")
        .and_then(|rest| rest.strip_suffix(".xlsx"))
        .unwrap_or_else(|| panic!("{name}"));
    assert!(
        tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}"
    );
}

/// Credentials from the environment (`BRIDGE_USER`/`BRIDGE_PASS`, `OE_USER`/`OE_PASS`) go only
/// to the origin of the URL from the environment: a request naming another `bridge_url` or
/// `oe_url` must bring its own, or it is a 400 and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_credentials_go_only_to_the_environments_origin() {
    let (home, home_fake) = fake_servers().await;
    let (other, other_fake) = fake_servers().await;
    let mut cmd = command(&["--listen", "0=stago_start4", "--simulate-api-port", "0"]);
    cmd.env("BRIDGE_URL", &home)
        .env("OE_URL", &home)
        .env("BRIDGE_USER", "env-bridge")
        .env("BRIDGE_PASS", "env-bridge-secret")
        .env("OE_USER", "env-admin")
        .env("OE_PASS", "env-oe-secret")
        .env_remove("QC_DEFAULT_FILE_TEST_CODE");
    let sim = Sim::start_with(cmd);
    let upload = |bridge_upload: String| {
        let url = sim.api_url("/simulate/file/tecan_f50");
        async move { post_json(url, &format!(r#"{{"bridge_upload":{bridge_upload}}}"#)).await }
    };

    for (bridge_upload, needle) in [
        (
            format!(r#"{{"analyzer_id":"3","bridge_url":"{other}"}}"#),
            format!(
                "bridge_upload.bridge_url \"{other}\" is not at BRIDGE_URL's origin ({home}), and \
                 the simulator's BRIDGE_USER and BRIDGE_PASS are sent only there; give \
                 bridge_upload.bridge_user and bridge_upload.bridge_pass with this URL"
            ),
        ),
        (
            format!(r#"{{"analyzer_id":"3","bridge_url":"{other}","bridge_user":"u"}}"#),
            "the simulator's BRIDGE_PASS is sent only there".to_owned(),
        ),
        // The lookup's credentials likewise, whatever the bridge's.
        (
            format!(
                r#"{{"oe_url":"{other}","bridge_url":"{other}","bridge_user":"u","bridge_pass":"p"}}"#
            ),
            format!(
                "bridge_upload.oe_url \"{other}\" is not at OE_URL's origin ({home}), and the \
                 simulator's OE_USER and OE_PASS are sent only there"
            ),
        ),
    ] {
        let (s, v) = upload(bridge_upload.clone()).await;
        assert_eq!(s, 400, "{bridge_upload}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(&needle),
            "{bridge_upload}: {v}"
        );
    }
    assert!(other_fake.uploads.lock().unwrap().is_empty());
    assert!(other_fake.lookups.lock().unwrap().is_empty());
    assert!(home_fake.uploads.lock().unwrap().is_empty());

    // Its own credentials with another origin: sent there, as given.
    let (s, v) = upload(format!(
        r#"{{"oe_url":"{other}","oe_user":"a","oe_pass":"b","bridge_url":"{other}","bridge_user":"u","bridge_pass":"p"}}"#
    ))
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("uploaded")), "{v}");
    assert_eq!(*other_fake.lookups.lock().unwrap(), [basic("a", "b")]);
    assert_eq!(
        other_fake.uploads.lock().unwrap()[0].authorization,
        basic("u", "p")
    );

    // The environment's origin, however the URL is spelled (a trailing slash, an unused
    // `oe_url` when the id is given): the environment's credentials.
    let (s, v) = upload(format!(
        r#"{{"analyzer_id":"3","bridge_url":"{home}/","oe_url":"{other}"}}"#
    ))
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("uploaded")), "{v}");
    assert_eq!(
        home_fake.uploads.lock().unwrap()[0].authorization,
        basic("env-bridge", "env-bridge-secret")
    );
    assert_eq!(other_fake.lookups.lock().unwrap().len(), 1);
}
