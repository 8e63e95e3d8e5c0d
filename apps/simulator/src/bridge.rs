//! `bridge_upload` of `POST /simulate/file/{template}`: the generated file goes to the analyzer
//! bridge's file import (multipart `POST {bridge_url}/admin/upload` with `analyzerId`, optional
//! `testCode` and `file`), as the reference mock sends it. A missing `analyzer_id` is looked up
//! by the template's analyzer name in OpenELIS. Unlike the reference, TLS is verified (with
//! `--ca-cert`, or skipped with `--insecure`).

use std::time::Duration;

use lis_templates::{FileKind, FileOutput, Template};
use rand::RngExt;
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value, json};

use crate::api::env_or;
use crate::app::App;
use crate::push;

/// The reference's upload timeout.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of the bridge's reply, and of a text file, the JSON reply shows.
const PREVIEW_CHARS: usize = 500;

/// The reference's bridge and OpenELIS base URLs.
const DEFAULT_BRIDGE_URL: &str = "https://openelis-analyzer-bridge:8443";
const DEFAULT_OE_URL: &str = "https://oe.openelis.org:8443";

/// Most of OpenELIS's analyzer list read; a lab has tens of analyzers, not megabytes.
const MAX_ANALYZER_LIST: usize = 8 << 20;
/// Most of the bridge's reply read: the preview shows 500 characters of it.
const MAX_BRIDGE_REPLY: usize = 64 << 10;

/// Reads at most `limit` bytes of a response body (a peer that sends more is cut off, not
/// buffered), and whether it was cut.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Where and as whom to upload; each setting from the body, else its environment variable,
/// else the reference's default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Upload {
    analyzer_id: Option<String>,
    test_code: Option<String>,
    bridge_url: String,
    bridge_user: String,
    bridge_pass: String,
    oe_url: String,
    oe_user: String,
    oe_pass: String,
}

/// Why an upload did not happen.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// The request is wrong (a 400).
    Request(String),
    /// The bridge could not be reached (a 502).
    Bridge(String),
    /// The simulator's own environment is wrong (a 500 naming the variable).
    Config(String),
}

/// The upload `bridge_upload` asks for, or `None` for none. Absent (or null), it defaults as in
/// the reference: QC files of `quantstudio5` go to the bridge with `QC_DEFAULT_FILE_TEST_CODE`
/// (else the first control's field code) as the test code; nothing else is uploaded. An empty
/// object means "do not upload".
pub(crate) fn requested(
    body: &Map<String, Value>,
    template: &Template,
    qc: bool,
) -> Result<Option<Upload>, UploadError> {
    let given = match body.get("bridge_upload") {
        None | Some(Value::Null) => {
            if !(qc && template.name == "quantstudio5") {
                return Ok(None);
            }
            let test_code = std::env::var("QC_DEFAULT_FILE_TEST_CODE")
                .ok()
                .or_else(|| template.qc_controls.first().map(|c| c.field_code.clone()));
            let mut defaults = Map::new();
            if let Some(code) = test_code {
                defaults.insert("test_code".into(), Value::String(code));
            }
            defaults
        }
        Some(Value::Object(map)) if map.is_empty() => return Ok(None),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(UploadError::Request(format!(
                "bridge_upload must be an object ({{}} for no upload); got {other}"
            )));
        }
    };
    const KEYS: [&str; 8] = [
        "analyzer_id",
        "test_code",
        "bridge_url",
        "bridge_user",
        "bridge_pass",
        "oe_url",
        "oe_user",
        "oe_pass",
    ];
    // The reference ignores keys it does not know, so a harness may send some; say so in
    // the log rather than refuse the request.
    for unknown in given.keys().filter(|k| !KEYS.contains(&k.as_str())) {
        tracing::warn!(
            "bridge_upload.{unknown} is not a known key (known: {}); ignored",
            KEYS.join(", ")
        );
    }
    let text = |key: &str| -> Result<Option<String>, UploadError> {
        match given.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // OpenELIS ids are numbers in its JSON; the form field is text either way.
            Some(Value::Number(n)) if key == "analyzer_id" => Ok(Some(n.to_string())),
            Some(other) if key == "analyzer_id" => Err(UploadError::Request(format!(
                "bridge_upload.{key} must be a string or a number; got {other}"
            ))),
            Some(other) => Err(UploadError::Request(format!(
                "bridge_upload.{key} must be a string; got {other}"
            ))),
        }
    };
    // A URL in the request that cannot be one is the request's fault (a 400 naming the key),
    // not a bridge that could not be reached (the 502 it used to be).
    for key in ["bridge_url", "oe_url"] {
        if let Some(url) = text(key)?
            && let Some(reason) = push::http_url_problem(&url)
        {
            return Err(UploadError::Request(format!(
                "bridge_upload.{key} {url:?} is not an http(s) URL: {reason}"
            )));
        }
    }
    let or_env = |key: &str, var: &str, default: &str| -> Result<String, UploadError> {
        Ok(text(key)?.unwrap_or_else(|| env_or(var, default)))
    };
    // A URL from the environment that cannot be one is named with its variable (it was a 502
    // or a failed id lookup quoting only the URL). OE_URL matters only for the lookup.
    let lookup = text("analyzer_id")?.is_none();
    for (key, var, used) in [
        ("bridge_url", "BRIDGE_URL", true),
        ("oe_url", "OE_URL", lookup),
    ] {
        if let (true, None, Ok(url)) = (used, text(key)?, std::env::var(var))
            && let Some(reason) = push::http_url_problem(&url)
        {
            return Err(UploadError::Config(format!(
                "{var} {url:?} is not an http(s) URL: {reason}; fix the simulator's environment \
                 or pass bridge_upload.{key}"
            )));
        }
    }
    // Credentials from the environment belong to the URL from the environment: sent to a URL
    // of the caller's choosing, they would be anyone's who can reach the API (the reference
    // sends them). The reference's defaults are public, so they still go anywhere.
    for (url_key, url_var, default_url, credentials, used) in [
        (
            "bridge_url",
            "BRIDGE_URL",
            DEFAULT_BRIDGE_URL,
            [
                ("bridge_user", "BRIDGE_USER"),
                ("bridge_pass", "BRIDGE_PASS"),
            ],
            true,
        ),
        (
            "oe_url",
            "OE_URL",
            DEFAULT_OE_URL,
            [("oe_user", "OE_USER"), ("oe_pass", "OE_PASS")],
            lookup,
        ),
    ] {
        let Some(url) = text(url_key)?.filter(|_| used) else {
            continue;
        };
        let configured = push::http_origin(&env_or(url_var, default_url)).unwrap_or_default();
        if push::http_origin(&url).as_ref() == Some(&configured) {
            continue;
        }
        let mut from_env = Vec::new();
        for (key, var) in credentials {
            if text(key)?.is_none() && std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                from_env.push(var);
            }
        }
        if !from_env.is_empty() {
            let [user_key, pass_key] = credentials.map(|(key, _)| key);
            return Err(UploadError::Request(format!(
                "bridge_upload.{url_key} {url:?} is not at {url_var}'s origin ({configured}), and \
                 the simulator's {} {} sent only there; give bridge_upload.{user_key} and \
                 bridge_upload.{pass_key} with this URL",
                from_env.join(" and "),
                if from_env.len() == 1 { "is" } else { "are" }
            )));
        }
    }
    Ok(Some(Upload {
        analyzer_id: text("analyzer_id")?,
        test_code: text("test_code")?,
        bridge_url: or_env("bridge_url", "BRIDGE_URL", DEFAULT_BRIDGE_URL)?,
        bridge_user: or_env("bridge_user", "BRIDGE_USER", "bridge")?,
        bridge_pass: or_env("bridge_pass", "BRIDGE_PASS", "changeme")?,
        oe_url: or_env("oe_url", "OE_URL", DEFAULT_OE_URL)?,
        oe_user: or_env("oe_user", "OE_USER", "admin")?,
        oe_pass: or_env("oe_pass", "OE_PASS", "adminADMIN!")?,
    }))
}

/// Content type of an uploaded file.
fn content_type(file: &FileOutput) -> &'static str {
    match file.kind {
        FileKind::Csv => "text/csv",
        FileKind::Tsv => "text/tab-separated-values",
        FileKind::Txt => "text/plain",
        FileKind::Xml => "application/xml",
        FileKind::Xls | FileKind::Xlsx => {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }
        _ => "application/octet-stream",
    }
}

fn preview(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

/// Finds the id of the analyzer named `name` in OpenELIS's analyzer list. The list may come
/// bare or wrapped in an object; any object with a matching `name` (case and surrounding
/// spaces ignored) and an `id` counts.
fn find_analyzer_id(list: &Value, name: &str) -> Option<String> {
    match list {
        Value::Array(items) => items.iter().find_map(|v| find_analyzer_id(v, name)),
        Value::Object(map) => {
            let named = map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(name.trim()));
            let id = match map.get("id") {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            match (named, id) {
                (true, Some(id)) => Some(id),
                _ => map.values().find_map(|v| find_analyzer_id(v, name)),
            }
        }
        _ => None,
    }
}

async fn look_up_analyzer_id(
    app: &App,
    client: &reqwest::Client,
    upload: &Upload,
    name: &str,
) -> Result<String, String> {
    let url = format!(
        "{}/api/OpenELIS-Global/rest/analyzer/analyzers",
        upload.oe_url.trim_end_matches('/')
    );
    let response = client
        .get(&url)
        .basic_auth(&upload.oe_user, Some(&upload.oe_pass))
        .timeout(UPLOAD_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GET {url}: {}",
                push::explain_http_error(&e, app.cli.ca_cert.is_some())
            )
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: status {status}"));
    }
    let (body, cut) = read_capped(response, MAX_ANALYZER_LIST)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if cut {
        return Err(format!(
            "GET {url}: the analyzer list is larger than {MAX_ANALYZER_LIST} bytes"
        ));
    }
    let list: Value =
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))?;
    find_analyzer_id(&list, name).ok_or_else(|| format!("GET {url}: no analyzer named {name:?}"))
}

/// Uploads `file` as `upload` says and returns the reply's fields (`status` `uploaded`,
/// `bridge_status`, `bridge_response_preview`, `upload_filename`, `content_size_bytes`, and
/// `content_preview` for delimited text). A bridge that answers with an error status is
/// reported in `bridge_status`, as the reference does.
pub(crate) async fn upload(
    app: &App,
    template: &Template,
    file: &FileOutput,
    qc: bool,
    upload: &Upload,
) -> Result<Map<String, Value>, UploadError> {
    let client = push::http_client(app).map_err(|e| UploadError::Bridge(format!("{e:#}")))?;
    let analyzer_id = match &upload.analyzer_id {
        Some(id) => id.clone(),
        None => {
            let name = &template.analyzer.name;
            look_up_analyzer_id(app, &client, upload, name)
                .await
                .map_err(|reason| {
                    tracing::warn!("bridge upload: analyzer id lookup failed: {reason}");
                    UploadError::Request(format!(
                        "Could not resolve analyzer_id from name '{name}'. Pass \
                         bridge_upload.analyzer_id explicitly, or ensure the analyzer is \
                         registered in OE. ({reason})"
                    ))
                })?
        }
    };
    let content_type = content_type(file);
    let upload_filename = tagged_file_name(app, template, file, qc);
    let part = Part::bytes(file.bytes.clone())
        .file_name(upload_filename.clone())
        .mime_str(content_type)
        .map_err(|e| UploadError::Bridge(format!("content type {content_type}: {e}")))?;
    let mut form = Form::new().text("analyzerId", analyzer_id);
    if let Some(code) = &upload.test_code {
        form = form.text("testCode", code.clone());
    }
    let form = form.part("file", part);
    let url = format!("{}/admin/upload", upload.bridge_url.trim_end_matches('/'));
    let response = client
        .post(&url)
        .basic_auth(&upload.bridge_user, Some(&upload.bridge_pass))
        .timeout(UPLOAD_TIMEOUT)
        .multipart(form)
        .send()
        .await
        .map_err(|e| {
            UploadError::Bridge(format!(
                "Bridge upload failed: POST {url}: {}",
                push::explain_http_error(&e, app.cli.ca_cert.is_some())
            ))
        })?;
    let status = response.status();
    // The upload is done once the status is in; a reply that breaks off only shortens the
    // preview.
    let reply = read_capped(response, MAX_BRIDGE_REPLY)
        .await
        .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    tracing::info!(
        "bridge upload of {upload_filename} ({} bytes) to {url}: status {status}",
        file.bytes.len()
    );
    let mut fields = Map::new();
    fields.insert("status".into(), json!("uploaded"));
    fields.insert("bridge_status".into(), json!(status.as_u16()));
    fields.insert("bridge_response_preview".into(), json!(preview(&reply)));
    fields.insert("upload_filename".into(), json!(upload_filename));
    fields.insert("content_size_bytes".into(), json!(file.bytes.len()));
    if matches!(file.kind, FileKind::Csv | FileKind::Tsv)
        && let Some(text) = file.text()
    {
        fields.insert("content_preview".into(), json!(preview(text)));
    }
    Ok(fields)
}

/// The reference's name for a generated file: `qc-{template}-{hex8}.EXT` for QC,
/// `{template}-{hex8}.EXT` otherwise, EXT the extension the generator gave the file (`.xlsx`
/// for XLS instruments, `.csv`, ...). The random tag keeps files made in the same second
/// apart.
pub(crate) fn tagged_file_name(
    app: &App,
    template: &Template,
    file: &FileOutput,
    qc: bool,
) -> String {
    let extension = std::path::Path::new(&file.file_name)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let tag: u32 = app.rng().random();
    format!(
        "{}{}-{tag:08x}{extension}",
        if qc { "qc-" } else { "" },
        template.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analyzer_id_is_found_bare_or_wrapped() {
        let bare = json!([{"id": "3", "name": "Other"}, {"id": 7, "name": " quantstudio 5 "}]);
        assert_eq!(
            find_analyzer_id(&bare, "QuantStudio 5").as_deref(),
            Some("7")
        );
        let wrapped = json!({"analyzers": [{"id": "12", "name": "QuantStudio 5"}]});
        assert_eq!(
            find_analyzer_id(&wrapped, "QuantStudio 5").as_deref(),
            Some("12")
        );
        let nameless = json!([{"id": "", "name": "QuantStudio 5"}, {"name": "QuantStudio 5"}]);
        assert_eq!(find_analyzer_id(&nameless, "QuantStudio 5"), None);
    }
}
