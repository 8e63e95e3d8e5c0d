//! The HTTP API (axum): the reference's routes and JSON shapes, the legacy `POST /push`, and
//! `GET /received`. Every user mistake gets a JSON 4xx.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use lis_templates::{AstmMessage, Hl7Message, Output, ProtocolKind, Template};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::app::{App, Overrides};
use crate::bridge;
use crate::fixture_file::{FixtureError, FixtureFile};
use crate::host_query::{self, HostQuery};
use crate::host_query_hl7::{self, Hl7HostQuery};
use crate::json_body;
use crate::push::{self, Destination};
use crate::server::{Gate, MinuteBudget};
use crate::write_stall::WriteStallLimit;

type Reply = Result<Response, ApiError>;

/// A JSON error reply.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn ok(value: Value) -> Reply {
    Ok((StatusCode::OK, axum::Json(value)).into_response())
}

/// Binds the API listener.
pub(crate) async fn bind(app: &App, port: u16) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(app.cli.bind, port);
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (HTTP API)"))
}

/// The routes.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(health))
        .route("/health", get(health))
        .route("/received", get(received))
        .route("/push", post(legacy_push))
        .route("/simulate/astm/{name}", get(astm_get).post(astm_post))
        .route("/simulate/astm/{name}/host-query", post(astm_host_query))
        .route("/simulate/hl7/{name}", get(hl7_get).post(hl7_post))
        .route("/simulate/hl7/{name}/host-query", post(hl7_host_query))
        .route("/simulate/file/{name}", get(file_get).post(file_post))
        // The reference strips slashes around the name: `/simulate/astm/stago_start4/` works.
        .route("/simulate/astm/{name}/", get(astm_get).post(astm_post))
        .route("/simulate/hl7/{name}/", get(hl7_get).post(hl7_post))
        .route("/simulate/file/{name}/", get(file_get).post(file_post))
        .route("/simulate/astm/", any(missing_template_name))
        .route("/simulate/hl7/", any(missing_analyzer_name))
        .route("/simulate/file/", any(missing_template_name))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::map_request(body_deadline))
        .with_state(app)
}

/// Largest request body (axum's default, stated so that a refusal can name it).
const MAX_BODY: usize = 2 << 20;

/// How long a request's body may take to arrive, in full, once its head has come.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Ends a request body that has not arrived in full within [`BODY_READ_TIMEOUT`] with an
/// error (the route answers 400 and the connection closes). Without it a client that sent a
/// head announcing a body and then a byte now and then held its connection, one of the
/// API's `--max-connections`, for as long as it liked.
async fn body_deadline(request: axum::extract::Request) -> axum::extract::Request {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + BODY_READ_TIMEOUT;
    request.map(|body| {
        let chunks = body.into_data_stream();
        axum::body::Body::from_stream(futures_util::stream::unfold(
            Some(chunks),
            move |chunks| async move {
                let mut chunks = chunks?;
                match tokio::time::timeout_at(deadline, chunks.next()).await {
                    Ok(Some(chunk)) => Some((chunk, Some(chunks))),
                    Ok(None) => None,
                    Err(_) => Some((
                        Err(axum::Error::new(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "request body not received in full within {BODY_READ_TIMEOUT:?}"
                            ),
                        ))),
                        None,
                    )),
                }
            },
        ))
    })
}

/// Largest plain-text error body [`json_errors`] reads back.
const MAX_TEXT_ERROR: usize = 64 * 1024;

/// Axum answers what it cannot extract (a path segment that is not UTF-8 once decoded, a body
/// over the size limit) in plain text before any handler runs; the API promises JSON errors,
/// so such a reply becomes `{"error": <its text>}` with the same status.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT_ERROR)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    // Axum's text does not say what the limit is.
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("{message}: the request body may be at most {MAX_BODY} bytes")
    } else {
        message
    };
    let mut json = ApiError(status, message).into_response();
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(CONTENT_LENGTH);
    json.headers_mut().extend(parts.headers);
    json
}

/// How long a client has to send a request's head (request line and headers), counted from
/// when its connection waits for one: a new connection, or a kept one between requests.
/// hyper's default, which `axum::serve` left without effect (it gives hyper no timer), so a
/// client that sent half a head, or nothing, held its connection for ever.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a reply may wait for its client to read any of it before the connection is closed.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the API until the process ends: at most `--max-connections` connections at once (one
/// beyond is closed at once, with a log line, as on the listening ports), each closed when a
/// request head has not come within [`HEADER_READ_TIMEOUT`] or its client has read nothing of
/// a reply for [`WRITE_STALL_TIMEOUT`].
pub(crate) async fn serve(app: Arc<App>, listener: TcpListener) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let mut gate = Gate::new(&app, format!("{local} (HTTP)"));
    let router = router(app);
    let malformed = Arc::new(std::sync::Mutex::new(MalformedLog::new(format!(
        "{local} (HTTP)"
    ))));
    loop {
        let (stream, peer, permit) = gate.accept(&listener).await;
        let service = TowerToHyperService::new(router.clone());
        let malformed = Arc::clone(&malformed);
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            if let Err(e) = builder
                .serve_connection(
                    TokioIo::new(WriteStallLimit::new(stream, WRITE_STALL_TIMEOUT)),
                    service,
                )
                .await
            {
                if e.is_parse() || e.is_parse_too_large() {
                    if let Ok(mut log) = malformed.lock() {
                        log.report(peer, &e);
                    }
                } else {
                    tracing::debug!("HTTP connection from {peer}: {e}");
                }
            }
            drop(permit);
        });
    }
}

/// Requests that cannot be parsed as HTTP (a `Content-Length` that is no number, a head over
/// hyper's limit): hyper answers them itself (400, 431) without a body, before any route
/// runs, so the log is the one place that says why. Logged 10 a minute, the rest counted and
/// their number logged with the next line, as refused connections are.
#[derive(Debug)]
struct MalformedLog {
    label: String,
    budget: MinuteBudget,
}

impl MalformedLog {
    fn new(label: String) -> Self {
        Self {
            label,
            budget: MinuteBudget::new(10),
        }
    }

    fn report(&mut self, peer: SocketAddr, error: &hyper::Error) {
        let Some(admitted) = self.budget.admit() else {
            return;
        };
        let earlier = match admitted.unlogged_before {
            0 => String::new(),
            n => format!(" ({n} more before, not logged)"),
        };
        tracing::warn!(
            "{}: request from {peer} is not valid HTTP: {error}; answered with an error status \
             and no body{earlier}",
            self.label
        );
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method not allowed: {method} {}", uri.path()),
    )
}

/// The reference's answer to `/simulate/astm/` and `/simulate/file/`.
async fn missing_template_name() -> ApiError {
    bad("Missing template name".to_owned())
}

/// The reference's answer to `/simulate/hl7/`, in its HL7 routes' words.
async fn missing_analyzer_name() -> ApiError {
    bad("Missing analyzer name".to_owned())
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("Not found: {method} {}", uri.path()),
    )
}

async fn health() -> Reply {
    ok(json!({
        "status": "ok",
        "service": "Multi-Protocol Analyzer Simulator",
        "endpoints": {
            "GET /health": "Health check",
            "GET /simulate/hl7/{template}": "Generate HL7 ORU^R01",
            "POST /simulate/hl7/{template}": "Generate + push HL7 (body: destination, count, qc, qc_deviation)",
            "GET /simulate/astm/{template}": "Generate ASTM message",
            "POST /simulate/astm/{template}": "Generate + push ASTM (body: destination, count, sample_id, source_ip, qc, qc_deviation)",
            "POST /simulate/astm/{template}/host-query": "Ask a LIS for orders, send their results (body: destination, specimens or sample_id, timeout, source_ip)",
            "POST /simulate/hl7/{template}/host-query": "Ask a LIS for work orders (IHE LAW QBP^Q11), send their results (body as for ASTM; destination mllp://)",
            "GET /simulate/file/{template}": "Generate FILE payload",
            "POST /simulate/file/{template}": "Generate + write FILE (body: target_dir, bridge_upload, filename, qc, qc_deviation)",
            "POST /push": "Trigger a push (query or body: template, count, destination, analyzer_type)",
            "GET /received": "Messages received from the LIS, newest first (query: limit)"
        }
    }))
}

async fn received(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let limit = match query.get("limit") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "limit must be an integer from 1 to 100000; got {text:?}"
                ))
            })?,
    };
    // Streamed: whole, the JSON of a full store can be twelve times its 64 MiB.
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        json_body::streamed(app.received.list(limit)),
    )
        .into_response())
}

/// `{name}` must be a plain template name.
fn check_name(name: &str, what: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(bad(format!("Missing {what} name")))
    }
}

fn template<'a>(app: &'a App, name: &str) -> Result<&'a Template, ApiError> {
    app.templates
        .get(name)
        .map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("Template not found: {name}")))
}

/// The ASTM template `name`: 404 when there is none, 400 when it is not ASTM.
fn astm_template<'a>(app: &'a App, name: &str) -> Result<&'a Template, ApiError> {
    let t = template(app, name)?;
    if !t.protocol.kind.is_astm() {
        return Err(bad("Template is not ASTM protocol"));
    }
    Ok(t)
}

/// The HL7 template `name`: 404 when there is none, 400 when it is not HL7.
fn hl7_template<'a>(app: &'a App, name: &str) -> Result<&'a Template, ApiError> {
    let t = template(app, name)?;
    if t.protocol.kind != ProtocolKind::Hl7 {
        return Err(bad("Template is not HL7 protocol"));
    }
    Ok(t)
}

/// A POST body read with [`body_json`], keys it does not know (`known`) logged for `route`.
fn body_with_keys(
    body: &Bytes,
    route: &str,
    known: &[&str],
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let body = body_json(body)?;
    warn_unknown_keys(route, "body key", body.keys(), known);
    Ok(body)
}

/// The JSON body: empty means `{}`; anything but an object is a 400 that starts as the
/// reference's (`Invalid JSON body`) and goes on to say why and where (serde's reason, line
/// and column), or what came instead of an object.
fn body_json(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            Err(bad(format!(
                "Invalid JSON body: expected an object {{\"key\": value, ...}}, got {kind}"
            )))
        }
        Err(e) => Err(bad(format!("Invalid JSON body: {e}"))),
    }
}

/// Body keys of `POST /simulate/astm/{t}` and `POST /simulate/hl7/{t}`.
const PUSH_KEYS: [&str; 10] = [
    "count",
    "destination",
    "sampleId",
    "sample_id",
    "patientId",
    "patient_id",
    "tests",
    "source_ip",
    "qc",
    "qc_deviation",
];
/// Body keys of `POST /simulate/astm/{t}/host-query` and `POST /simulate/hl7/{t}/host-query`.
const HOST_QUERY_KEYS: [&str; 6] = [
    "destination",
    "specimens",
    "sample_id",
    "sampleId",
    "timeout",
    "source_ip",
];
/// Body keys of `POST /simulate/file/{t}`.
const FILE_KEYS: [&str; 5] = [
    "target_dir",
    "filename",
    "qc",
    "qc_deviation",
    "bridge_upload",
];

/// Query parameters of `GET /simulate/astm/{t}` and `GET /simulate/hl7/{t}`.
const QUERY_KEYS: [&str; 5] = ["sampleId", "sample_id", "patientId", "patient_id", "tests"];

/// Logs body keys (or query parameters) the route does not read. The reference ignores them,
/// and a harness may send some, so they are not refused; but a misspelt key (`sampleID`) would
/// otherwise lose the value without a word. A key that differs from a known one only in case
/// or `_` is named.
fn warn_unknown_keys<'a>(
    route: &str,
    what: &str,
    keys: impl Iterator<Item = &'a String>,
    known: &[&str],
) {
    let fold = |k: &str| k.replace('_', "").to_ascii_lowercase();
    for key in keys.filter(|k| !known.contains(&k.as_str())) {
        match known.iter().find(|k| fold(k) == fold(key)) {
            Some(near) => tracing::warn!(
                "{route}: {what} {key:?} is not one this route reads; ignored (did you mean \
                 {near:?}?)"
            ),
            None => tracing::warn!(
                "{route}: {what} {key:?} is not one this route reads (known: {}); ignored",
                known.join(", ")
            ),
        }
    }
}

fn str_field(
    body: &serde_json::Map<String, Value>,
    keys: &[&str],
) -> Result<Option<String>, ApiError> {
    for key in keys {
        match body.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(other) => return Err(bad(format!("{key} must be a string; got {other}"))),
        }
    }
    Ok(None)
}

/// As [`str_field`], an empty string counting as absent: the reference reads accession and
/// patient with `get(a) or get(b)`, so `""` falls through to the next key, then to none (a
/// generated one). A harness sending every key, empty ones included, was refused.
fn non_empty_str_field(
    body: &serde_json::Map<String, Value>,
    keys: &[&str],
) -> Result<Option<String>, ApiError> {
    for key in keys {
        if let Some(value) = str_field(body, &[key])?.filter(|v| !v.is_empty()) {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// `count` of `POST /simulate/astm` and `/simulate/hl7`: read as the reference reads it, with
/// `int()` (a number, truncated, or a numeric string), then clamped to 1..=1000 as the
/// reference clamps it (its ASTM route to 1..=100; here the HL7 route's bound for both), so
/// every count the reference takes is taken; anything else is a 400 (the reference: a 500 or
/// a dropped connection).
fn count_field(body: &serde_json::Map<String, Value>) -> Result<u64, ApiError> {
    let value = match body.get("count") {
        None | Some(Value::Null) => return Ok(1),
        Some(v) => v,
    };
    let n = match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    // Saturating, as the clamp below would make it anyway.
                    .map(|f| f.trunc() as i64)
            }),
        Value::String(text) => python_int(text),
        _ => None,
    };
    let n = n.ok_or_else(|| bad(format!("count must be an integer; got {value}")))?;
    Ok(u64::try_from(n.clamp(1, 1000)).unwrap_or(1))
}

/// A string read as Python's `int()` reads it (surrounding whitespace, a sign, digits with
/// single underscores between them), saturated to `i64`: Python has no overflow, so a count
/// of twenty digits is a number there, clamped like any other.
fn python_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    let magnitude = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    Some(if negative { -magnitude } else { magnitude })
}

fn qc_fields(body: &serde_json::Map<String, Value>) -> Result<(bool, Option<f64>), ApiError> {
    let qc = match body.get("qc") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(bad(format!("qc must be true or false; got {v}"))),
    };
    // Read as the reference reads it, with `float()`: a number or a numeric string.
    let deviation = match body.get("qc_deviation") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            match v {
                Value::String(text) => text.trim().parse::<f64>().ok(),
                other => other.as_f64(),
            }
            .filter(|d| d.is_finite())
            .ok_or_else(|| bad(format!("qc_deviation must be a number; got {v}")))?,
        ),
    };
    // The reference echoes `qc_deviation` only in QC mode, and only QC uses it.
    Ok((qc, deviation.filter(|_| qc)))
}

fn check_sample(app: &App, sample: Option<&String>) -> Result<(), ApiError> {
    if let Some(id) = sample {
        app.minter
            .validate(id, "sample_id")
            .map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

/// `tests` in a body: an array of test codes (a comma-separated string is accepted too).
fn tests_field(body: &serde_json::Map<String, Value>) -> Result<Option<Vec<String>>, ApiError> {
    let wrong = |v: &Value| bad(format!("tests must be an array of test codes; got {v}"));
    match body.get("tests") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(list)) => Ok(Some(split_tests(list))),
        Some(Value::Array(codes)) => codes
            .iter()
            .map(|c| c.as_str().map(str::to_owned).ok_or_else(|| wrong(c)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(wrong(other)),
    }
}

fn split_tests(list: &str) -> Vec<String> {
    list.split(',').map(|c| c.trim().to_owned()).collect()
}

/// The accession, patient and tests a body asks for (`sampleId`|`sample_id`,
/// `patientId`|`patient_id`, `tests`); the accession is checked here, the rest by the
/// generator.
fn body_overrides(app: &App, body: &serde_json::Map<String, Value>) -> Result<Overrides, ApiError> {
    let sample_id = non_empty_str_field(body, &["sampleId", "sample_id"])?;
    check_sample(app, sample_id.as_ref())?;
    Ok(Overrides {
        sample_id,
        patient_id: non_empty_str_field(body, &["patientId", "patient_id"])?,
        tests: tests_field(body)?,
    })
}

/// The same from a query string (`tests` comma-separated; an empty value is none, as
/// Python's `parse_qs` drops it).
fn query_overrides(app: &App, query: &HashMap<String, String>) -> Result<Overrides, ApiError> {
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| query.get(*k).filter(|v| !v.is_empty()))
            .cloned()
    };
    let sample_id = get(&["sampleId", "sample_id"]);
    check_sample(app, sample_id.as_ref())?;
    Ok(Overrides {
        sample_id,
        patient_id: get(&["patientId", "patient_id"]),
        tests: get(&["tests"]).map(|list| split_tests(&list)),
    })
}

fn check_qc(t: &Template, qc: bool) -> Result<(), ApiError> {
    if qc && t.qc_controls.is_empty() {
        return Err(bad(format!(
            "Template '{}' has no qc_controls defined",
            t.analyzer.name
        )));
    }
    Ok(())
}

fn source_ip(body: &serde_json::Map<String, Value>) -> Result<Option<IpAddr>, ApiError> {
    str_field(body, &["source_ip"])?
        .map(|s| {
            s.parse()
                .map_err(|_| bad(format!("source_ip {s:?} is not an IP address")))
        })
        .transpose()
}

fn preview(first: &str) -> String {
    let cut: String = first.chars().take(80).collect();
    format!("{cut}...")
}

async fn astm_get(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    check_name(&name, "template")?;
    let t = astm_template(&app, &name)?;
    warn_unknown_keys(
        &format!("GET /simulate/astm/{name}"),
        "query parameter",
        query.keys(),
        &QUERY_KEYS,
    );
    let overrides = query_overrides(&app, &query)?;
    let messages = app
        .astm_messages(t, false, None, &overrides, true)
        .map_err(|e| bad(format!("{e:#}")))?;
    let text: String = messages.iter().map(AstmMessage::to_lines).collect();
    ok(json!({"status": "generated", "template": name, "message": text}))
}

/// An environment variable the reference reads at request time, else its default.
pub(crate) fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// A push destination from the environment: one that cannot name a peer is the simulator's
/// configuration error (a 500 naming the variable), not a per-message failure quoting a URL
/// the client never sent.
fn env_destination(var: &str, default: &str) -> Result<String, ApiError> {
    let text = env_or(var, default);
    Destination::parse(&text).map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{var}: {e:#}; fix the simulator's environment"),
        )
    })?;
    Ok(text)
}

/// A source IP from the environment: a value that is no IP address is the simulator's
/// configuration error (a 500 naming the variable), not a reason to push from whatever address
/// the host picks, which the bridge, identifying analyzers by source IP, would misattribute.
fn env_ip(var: &str, default: &str) -> Result<IpAddr, ApiError> {
    let text = env_or(var, default);
    text.trim().parse().map_err(|_| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{var} {text:?} is not an IP address; fix the simulator's environment"),
        )
    })
}

/// The protocol of a `POST /simulate/{astm,hl7}/{name}` push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushProtocol {
    Astm,
    Hl7,
}

/// A checked `POST /simulate/astm/{name}` or `/simulate/hl7/{name}` body.
struct PushRequest {
    count: u64,
    qc: bool,
    deviation: Option<f64>,
    overrides: Overrides,
    destination: Option<String>,
    source: Option<IpAddr>,
}

impl PushRequest {
    /// Reads `body` for the template `name` of `protocol`, checked in the reference's order:
    /// the body's JSON, the template, then each field.
    fn read<'a>(
        app: &'a App,
        protocol: PushProtocol,
        name: &str,
        body: &Bytes,
    ) -> Result<(&'a Template, Self), ApiError> {
        let path = match protocol {
            PushProtocol::Astm => "astm",
            PushProtocol::Hl7 => "hl7",
        };
        let body = body_with_keys(body, &format!("POST /simulate/{path}/{name}"), &PUSH_KEYS)?;
        let t = match protocol {
            PushProtocol::Astm => astm_template(app, name)?,
            PushProtocol::Hl7 => hl7_template(app, name)?,
        };
        let count = count_field(&body)?;
        let (qc, deviation) = qc_fields(&body)?;
        check_qc(t, qc)?;
        let overrides = body_overrides(app, &body)?;
        // Empty is none, as the reference's `if destination:` has it.
        let mut destination = str_field(&body, &["destination"])?.filter(|d| !d.is_empty());
        let mut source = source_ip(&body)?;
        // Where the reference sends a QC push that names no destination: for one template per
        // protocol, to the bridge, from the address the bridge knows that analyzer by.
        let (qc_template, destination_var, default_destination, source_var, default_source) =
            match protocol {
                PushProtocol::Astm => (
                    "genexpert_astm",
                    "QC_DEFAULT_ASTM_DESTINATION",
                    "tcp://openelis-analyzer-bridge:12001",
                    "QC_DEFAULT_ASTM_SOURCE_IP",
                    "10.42.20.10",
                ),
                PushProtocol::Hl7 => (
                    "mindray_bs200",
                    "QC_DEFAULT_HL7_DESTINATION",
                    "mllp://openelis-analyzer-bridge:2575",
                    "QC_DEFAULT_HL7_SOURCE_IP",
                    "10.42.22.10",
                ),
            };
        if qc && destination.is_none() && name == qc_template {
            destination = Some(env_destination(destination_var, default_destination)?);
            if source.is_none() {
                source = Some(env_ip(source_var, default_source)?);
            }
        }
        let request = Self {
            count,
            qc,
            deviation,
            overrides,
            destination,
            source,
        };
        Ok((t, request))
    }

    /// The `pushed` and `error` of one message's result; counts it in `pushed` when sent.
    fn outcome(result: Option<anyhow::Result<()>>, pushed: &mut u64) -> (Value, Value) {
        match result {
            None => (Value::Null, Value::Null),
            Some(Ok(())) => {
                *pushed += 1;
                (Value::Bool(true), Value::Null)
            }
            Some(Err(e)) => (Value::Bool(false), Value::String(format!("{e:#}"))),
        }
    }
}

async fn astm_post(State(app): State<Arc<App>>, Path(name): Path<String>, body: Bytes) -> Reply {
    check_name(&name, "template")?;
    let (t, req) = PushRequest::read(&app, PushProtocol::Astm, &name, &body)?;
    let mut results = Vec::new();
    let mut pushed = 0u64;
    for i in 1..=req.count {
        // The template's seed values, as the reference pushes them (`use_seed=True`).
        let messages = app
            .astm_messages(t, req.qc, req.deviation, &req.overrides, true)
            .map_err(|e| bad(format!("{e:#}")))?;
        let sample_id = messages
            .first()
            .and_then(|m| m.records.iter().find(|r| r.starts_with("O|")))
            .and_then(|o| o.split('|').nth(2))
            .map(|f| f.split('^').next().unwrap_or_default().to_owned());
        let first = messages
            .first()
            .and_then(|m| m.records.first())
            .cloned()
            .unwrap_or_default();
        let result = match &req.destination {
            None => None,
            Some(dest) => Some(deliver_astm(&app, dest, req.source, &messages).await),
        };
        let (ok_push, error) = PushRequest::outcome(result, &mut pushed);
        results.push(json!({
            "message_number": i, "pushed": ok_push, "error": error,
            "sample_id": sample_id, "preview": preview(&first)
        }));
    }
    ok(json!({
        "status": "completed", "template": name, "count": req.count, "qc": req.qc,
        "pushed": req.destination.as_ref().map(|_| pushed),
        "destination": req.destination, "source_ip": req.source.map(|s| s.to_string()),
        "results": results
    }))
}

/// Specimens one host-query request may ask about (as `count` allows 1000 messages).
const MAX_HOST_QUERY_SPECIMENS: usize = 1000;

/// Longest specimen ID a host query asks about: far beyond any barcode or accession.
const MAX_SPECIMEN_ID_LEN: usize = 256;

/// Plays an analyzer in query mode against the LIS at `destination`: the host query for
/// `specimens` (or `sample_id`), the LIS's order download within `timeout` seconds (15), then
/// results for exactly the tests ordered. A LIS that fails is a 502, one that does not answer
/// in time a 504 (the query withdrawn with Q.13 `A`), each with the reason.
async fn astm_host_query(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let request = HostQueryRequest::read(&app, &name, &body, false)?;
    let mut query = HostQuery::new(&app, &name, request.specimens, request.wait)
        .map_err(|e| bad(format!("{e:#}")))?;
    let mut io = host_query::connect(&app, &request.host_port, request.source)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, format!("{e:#}")))?;
    let port = io.get_ref().local_addr().map_or(0, |a| a.port());
    let result = query.exchange(&mut io, &request.host_port, port).await;
    io.shutdown().await;
    host_query_reply(&name, &request.destination, result)
}

/// `POST /simulate/astm/{t}/host-query` in HL7, as IHE LAW has it: QBP^Q11 to the LIS at
/// `destination` (`mllp://`), its RSP^K11 and work order (OML^O33, answered ORL^O34), then
/// results for exactly the tests ordered. The same body, statuses and reply.
async fn hl7_host_query(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let request = HostQueryRequest::read(&app, &name, &body, true)?;
    let mut query = Hl7HostQuery::new(&app, &name, request.specimens, request.wait)
        .map_err(|e| bad(format!("{e:#}")))?;
    let mut connection = host_query_hl7::connect(&request.host_port, request.source)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, format!("{e:#}")))?;
    let port = connection.get_ref().local_addr().map_or(0, |a| a.port());
    let result = query
        .exchange(&mut connection, &request.host_port, port)
        .await;
    host_query_hl7::close(connection).await;
    host_query_reply(&name, &request.destination, result)
}

/// A checked host-query body.
struct HostQueryRequest {
    destination: String,
    host_port: String,
    specimens: Vec<String>,
    wait: Duration,
    source: Option<IpAddr>,
}

impl HostQueryRequest {
    /// The body of a host query with template `name`, in HL7 when `hl7` (an `mllp://`
    /// destination) else in ASTM (`tcp://`).
    fn read(app: &App, name: &str, body: &Bytes, hl7: bool) -> Result<Self, ApiError> {
        check_name(name, "template")?;
        let protocol = if hl7 { "hl7" } else { "astm" };
        let body = body_with_keys(
            body,
            &format!("POST /simulate/{protocol}/{name}/host-query"),
            &HOST_QUERY_KEYS,
        )?;
        if hl7 {
            hl7_template(app, name)?;
        } else {
            astm_template(app, name)?;
        }
        let scheme = if hl7 { "mllp" } else { "tcp" };
        let destination = str_field(&body, &["destination"])?.ok_or_else(|| {
            bad(format!(
                "destination is required: the LIS's {} port, {scheme}://host:port",
                protocol.to_ascii_uppercase()
            ))
        })?;
        let host_port = match Destination::parse(&destination).map_err(|e| bad(format!("{e:#}")))? {
            Destination::Tcp(host_port) if !hl7 => host_port,
            Destination::Mllp(host_port) if hl7 => host_port,
            _ => {
                return Err(bad(format!(
                    "destination must be {scheme}://host:port: this host query is {}",
                    protocol.to_ascii_uppercase()
                )));
            }
        };
        let specimens = match body.get("specimens") {
            None | Some(Value::Null) => str_field(&body, &["sample_id", "sampleId"])?
                .into_iter()
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(bad(format!("specimens must hold strings; got {other}"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(bad(format!(
                    "specimens must be a list of specimen IDs; got {other}"
                )));
            }
        };
        // Each specimen becomes a query message built before the exchange: a 2 MiB body
        // of short IDs (half a million) took 200 MB and seconds before a byte was sent.
        if specimens.len() > MAX_HOST_QUERY_SPECIMENS {
            return Err(bad(format!(
                "specimens: {} given, at most {MAX_HOST_QUERY_SPECIMENS} per request",
                specimens.len()
            )));
        }
        if let Some(long) = specimens.iter().find(|s| s.len() > MAX_SPECIMEN_ID_LEN) {
            return Err(bad(format!(
                "specimens: an ID of {} bytes, at most {MAX_SPECIMEN_ID_LEN}",
                long.len()
            )));
        }
        let wait = match body.get("timeout") {
            None | Some(Value::Null) => Duration::from_secs(15),
            Some(v) => v
                .as_f64()
                .filter(|s| (0.0..=3600.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| bad(format!("timeout must be seconds, 0 to 3600; got {v}")))?,
        };
        Ok(Self {
            destination,
            host_port,
            specimens,
            wait,
            source: source_ip(&body)?,
        })
    }
}

/// The reply to a host query: the orders received, or a 504 (no answer in time) or 502.
fn host_query_reply(
    name: &str,
    destination: &str,
    result: anyhow::Result<host_query::Outcome>,
) -> Reply {
    let outcome = result.map_err(|e| {
        let status = if e.downcast_ref::<host_query::NoAnswer>().is_some() {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::BAD_GATEWAY
        };
        ApiError(status, format!("{e:#}"))
    })?;
    let orders: Vec<Value> = outcome
        .orders
        .iter()
        .map(|o| json!({"sample_id": o.sample_id, "tests": o.codes}))
        .collect();
    ok(json!({
        "status": "completed", "template": name, "destination": destination,
        "orders": orders, "not_orders": outcome.not_orders,
        "results_sent": !outcome.orders.is_empty(), "summary": outcome.summary
    }))
}

async fn deliver_astm(
    app: &App,
    dest: &str,
    source: Option<IpAddr>,
    messages: &[AstmMessage],
) -> anyhow::Result<()> {
    let payloads: Vec<Vec<u8>> = messages.iter().map(AstmMessage::to_bytes).collect();
    match Destination::parse(dest)? {
        Destination::Tcp(hp) => {
            push::astm_tcp(app, &hp, source, &payloads, false, Duration::from_secs(30)).await
        }
        Destination::Mllp(_) => anyhow::bail!("mllp:// carries HL7; use tcp://host:port for ASTM"),
        Destination::Http(base) => {
            let client = push::http_client(app)?;
            let url = push::http_url(&base, false);
            let encoding = messages.first().map(|m| m.encoding).unwrap_or_default();
            for p in &payloads {
                push::http(app, &client, &url, push::http_body(p, false), encoding).await?;
            }
            Ok(())
        }
    }
}

async fn deliver_hl7(
    app: &App,
    dest: &str,
    source: Option<IpAddr>,
    message: &Hl7Message,
) -> anyhow::Result<()> {
    let wire = message.to_bytes();
    match Destination::parse(dest)? {
        Destination::Mllp(hp) => push::mllp(&hp, source, &wire, Duration::from_secs(30)).await,
        Destination::Tcp(_) => anyhow::bail!("tcp:// carries ASTM; use mllp://host:port for HL7"),
        Destination::Http(base) => {
            let client = push::http_client(app)?;
            let url = push::http_url(&base, true);
            let body = push::http_body(&wire, true);
            push::http(app, &client, &url, body, message.encoding).await
        }
    }
}

fn hl7_generate(
    app: &App,
    t: &Template,
    qc: bool,
    deviation: Option<f64>,
    overrides: &Overrides,
) -> Result<Hl7Message, ApiError> {
    let options = app.options_for(true, deviation, overrides);
    match lis_templates::generate(t, &app.minter, &options, qc) {
        Ok(Output::Hl7(m)) => Ok(m),
        Ok(_) => Err(bad("Template is not HL7 protocol")),
        Err(e) => Err(bad(e.to_string())),
    }
}

fn hl7_field(segment: &str, n: usize) -> String {
    segment.split('|').nth(n).unwrap_or_default().to_owned()
}

fn hl7_sent(m: &Hl7Message, qc: bool, deviation: Option<f64>) -> Value {
    let msh10 = m
        .segments
        .first()
        .map(|s| hl7_field(s, 9))
        .unwrap_or_default();
    let sample = m
        .segments
        .iter()
        .find(|s| s.starts_with("OBR|"))
        .map(|s| hl7_field(s, 3));
    json!({
        "status": "sent", "messageId": format!("MSG-{msh10}"), "qc": qc,
        "qc_deviation": deviation, "sample_id": sample, "message": m.to_wire()
    })
}

async fn hl7_get(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    check_name(&name, "analyzer")?;
    let t = hl7_template(&app, &name)?;
    warn_unknown_keys(
        &format!("GET /simulate/hl7/{name}"),
        "query parameter",
        query.keys(),
        &QUERY_KEYS,
    );
    let overrides = query_overrides(&app, &query)?;
    let m = hl7_generate(&app, t, false, None, &overrides)?;
    ok(hl7_sent(&m, false, None))
}

async fn hl7_post(State(app): State<Arc<App>>, Path(name): Path<String>, body: Bytes) -> Reply {
    check_name(&name, "analyzer")?;
    let (t, req) = PushRequest::read(&app, PushProtocol::Hl7, &name, &body)?;
    if req.destination.is_none() && req.count == 1 {
        let m = hl7_generate(&app, t, req.qc, req.deviation, &req.overrides)?;
        return ok(hl7_sent(&m, req.qc, req.deviation));
    }
    let mut results = Vec::new();
    let mut pushed = 0u64;
    for i in 1..=req.count {
        let m = hl7_generate(&app, t, req.qc, req.deviation, &req.overrides)?;
        let sample_id = m
            .segments
            .iter()
            .find(|s| s.starts_with("OBR|"))
            .map(|s| hl7_field(s, 3));
        let result = match &req.destination {
            None => None,
            Some(dest) => Some(deliver_hl7(&app, dest, req.source, &m).await),
        };
        let (ok_push, error) = PushRequest::outcome(result, &mut pushed);
        results.push(json!({
            "message_number": i, "pushed": ok_push, "error": error, "sample_id": sample_id,
            "preview": preview(m.segments.first().map_or("", String::as_str))
        }));
    }
    ok(json!({
        "status": "completed", "analyzer": name, "count": req.count, "qc": req.qc, "qc_deviation": req.deviation,
        "destination": req.destination, "pushed": req.destination.as_ref().map(|_| pushed), "results": results
    }))
}

fn file_generate(
    app: &App,
    t: &Template,
    qc: bool,
    deviation: Option<f64>,
) -> Result<lis_templates::FileOutput, ApiError> {
    if t.protocol.kind != ProtocolKind::File {
        return Err(bad("Template is not FILE protocol"));
    }
    let options = app.options(true, deviation);
    match lis_templates::generate(t, &app.minter, &options, qc) {
        Ok(Output::File(f)) => Ok(f),
        Ok(_) => Err(bad("Template is not FILE protocol")),
        Err(e) => Err(bad(e.to_string())),
    }
}

async fn file_get(State(app): State<Arc<App>>, Path(name): Path<String>) -> Reply {
    check_name(&name, "template")?;
    let t = template(&app, &name)?;
    let f = file_generate(&app, t, false, None)?;
    let mut reply = json!({
        "status": "generated", "template": name, "file_name": f.file_name,
        "format": format!("{:?}", f.kind).to_ascii_uppercase(), "content": f.text()
    });
    // As the reference: a template with a fixture answers with the export's results.
    if let Some(fixture) = fixture_of(&app, t)? {
        reply["metadata"] = fixture.metadata;
    }
    ok(reply)
}

fn fixture_of(app: &App, t: &Template) -> Result<Option<FixtureFile>, ApiError> {
    FixtureFile::of(app, t).map_err(|e| match e {
        FixtureError::Missing(file) => ApiError(
            StatusCode::NOT_FOUND,
            format!("Fixture file not found: {file}"),
        ),
        FixtureError::Broken(why) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, why),
    })
}

/// A plain file name: ASCII letters, digits, `-`, `_`, `.` and spaces (not at either end), not
/// hidden, at most 255 bytes; `None` otherwise. Spaces are allowed as in instrument export names
/// (`QS5 run 2026-01-15.xls`), which the reference writes as given; the writer
/// (`files::replace_output`) keeps exactly these characters, so the name asked for is the name
/// written.
pub(crate) fn safe_file_name(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.trim() == name
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b' '));
    valid.then(|| name.to_owned())
}

fn file_roots(app: &App) -> Vec<PathBuf> {
    if app.cli.file_root.is_empty() {
        vec![
            PathBuf::from("/data/analyzer-imports"),
            std::env::temp_dir(),
        ]
    } else {
        app.cli.file_root.clone()
    }
}

fn resolve_target(app: &App, dir: &str) -> Result<PathBuf, ApiError> {
    let roots = file_roots(app);
    let listed = roots
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let real = FsPath::new(dir)
        .canonicalize()
        .map_err(|_| bad(format!("target_dir {dir:?} does not exist")))?;
    let inside = roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| real.starts_with(&r));
    if !inside {
        return Err(bad(format!("target_dir must be under [{listed}]")));
    }
    if !real.is_dir() {
        return Err(bad(format!("target_dir {dir:?} is not a directory")));
    }
    Ok(real)
}

async fn file_post(State(app): State<Arc<App>>, Path(name): Path<String>, body: Bytes) -> Reply {
    check_name(&name, "template")?;
    let body = body_with_keys(&body, &format!("POST /simulate/file/{name}"), &FILE_KEYS)?;
    let t = template(&app, &name)?;
    let (qc, deviation) = qc_fields(&body)?;
    check_qc(t, qc)?;
    let target = str_field(&body, &["target_dir"])?;
    let filename = str_field(&body, &["filename"])?;
    let upload = bridge::requested(&body, t, qc).map_err(upload_error)?;
    // As the reference: without QC, a template with a fixture writes or uploads the export
    // itself (the layout the bridge reads), not the generic generated file.
    let fixture = if qc || t.protocol.kind != ProtocolKind::File {
        None
    } else {
        fixture_of(&app, t)?
    };
    let f = match &fixture {
        Some(fixture) => fixture.file.clone(),
        None => file_generate(&app, t, qc, deviation)?,
    };
    let metadata = fixture.as_ref().map(|f| f.metadata.clone());
    if let Some(upload) = upload {
        // As in the reference, an uploaded file is not also written to `target_dir`.
        let uploaded = bridge::upload(&app, t, &f, qc, &upload)
            .await
            .map_err(upload_error)?;
        // The reference's key order: status, template, qc, qc_deviation, format, then the
        // bridge's answer.
        let mut reply = serde_json::Map::new();
        reply.insert("status".into(), json!("uploaded"));
        reply.insert("template".into(), json!(name));
        reply.insert("qc".into(), json!(qc));
        reply.insert("qc_deviation".into(), json!(deviation));
        reply.insert(
            "format".into(),
            json!(format!("{:?}", f.kind).to_ascii_uppercase()),
        );
        reply.extend(uploaded.into_iter().filter(|(k, _)| k != "status"));
        if let Some(metadata) = metadata {
            reply.insert("metadata".into(), metadata);
        }
        return ok(Value::Object(reply));
    }
    let mut f = f;
    let written = match target {
        None => None,
        Some(dir) => {
            let dir = resolve_target(&app, &dir)?;
            let name = match &filename {
                // As the reference: only the last component of the name is kept
                // (`../evil.csv` is written as `evil.csv` in target_dir), then checked.
                Some(n) => safe_file_name(n.rsplit('/').next().unwrap_or(n)).ok_or_else(|| {
                    bad(format!(
                        "filename {n:?} must be a plain file name (letters, digits, - _ . and spaces)"
                    ))
                })?,
                // As the reference: a QC file is named with a random tag, so that two
                // written in the same second do not replace each other. So is a fixture
                // (`tecan_f50-1f2e3d4c.csv`, which the template's file mask matches).
                None if qc || fixture.is_some() => bridge::tagged_file_name(&app, t, &f, qc),
                None => f.file_name.clone(),
            };
            // A same-named file is replaced, as the reference does; a symlink planted under
            // the name (the temporary directory is a default root, writable by anyone) is
            // replaced too, never followed out of the roots.
            let named = match &fixture {
                Some(fixture) => fixture.to_write(name),
                None => lis_templates::FileOutput {
                    file_name: name,
                    ..f.clone()
                },
            };
            let path = lis_templates::files::replace_output(&named, &dir)
                .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            // `content` is what was written.
            f = named;
            Some(path.display().to_string())
        }
    };
    let mut reply = json!({
        "status": "completed", "template": name, "qc": qc, "qc_deviation": deviation,
        "written_path": written, "format": format!("{:?}", f.kind).to_ascii_uppercase(),
        "content": f.text()
    });
    if let Some(metadata) = metadata {
        reply["metadata"] = metadata;
    }
    ok(reply)
}

fn upload_error(error: bridge::UploadError) -> ApiError {
    match error {
        bridge::UploadError::Request(message) => bad(message),
        bridge::UploadError::Bridge(message) => ApiError(StatusCode::BAD_GATEWAY, message),
        bridge::UploadError::Config(message) => {
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

/// `POST /push` answers errors in the legacy push API's shape,
/// `{"status":"error","message":…}`, with `error` as on the other routes.
async fn legacy_push(
    state: State<Arc<App>>,
    query: Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    match legacy_push_reply(state, query, body).await {
        Ok(response) => response,
        Err(ApiError(status, message)) => (
            status,
            axum::Json(json!({"status": "error", "message": message, "error": message})),
        )
            .into_response(),
    }
}

/// A `count` of the legacy push API: a number or a numeric string (the reference reads it
/// with `int()`), 1 to 1000.
fn legacy_count(value: &Value) -> Result<u64, ApiError> {
    // As the push API read it, with int(): a number is truncated (2.0 is 2), a string must
    // be an integer.
    let n = match value {
        Value::String(text) => python_int(text).and_then(|n| u64::try_from(n).ok()),
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.trunc() as u64)
        }),
        _ => None,
    };
    n.filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
        bad(format!(
            "count must be an integer from 1 to 1000; got {value}"
        ))
    })
}

async fn legacy_push_reply(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Reply {
    // The legacy API ignores a body that is not a JSON object, with a warning.
    let body = body_json(&body).unwrap_or_else(|_| {
        tracing::warn!("POST /push: the body is not a JSON object; ignored");
        serde_json::Map::new()
    });
    let get = |key: &str| -> Result<Option<String>, ApiError> {
        match str_field(&body, &[key])? {
            Some(v) => Ok(Some(v)),
            None => Ok(query.get(key).cloned()),
        }
    };
    let count = match (body.get("count"), query.get("count")) {
        (Some(v), _) if !v.is_null() => legacy_count(v)?,
        (_, Some(c)) => legacy_count(&Value::String(c.clone()))?,
        _ => 1,
    };
    let template_name = get("template")?;
    let analyzer_type = get("analyzer_type")?
        .unwrap_or_else(|| "HEMATOLOGY".into())
        .to_ascii_uppercase();
    let destination = get("destination")?
        .or_else(|| app.cli.push.clone())
        .ok_or_else(|| bad("destination is required (or start with --push URL)"))?;
    let t = match &template_name {
        Some(n) => {
            check_name(n, "template")?;
            Some(template(&app, n)?)
        }
        None => None,
    };
    let mut results = Vec::new();
    let mut successful = 0u64;
    for i in 1..=count {
        let messages: anyhow::Result<Vec<AstmMessage>> = match t {
            Some(t) => app.astm_messages(t, false, None, &Overrides::default(), true),
            None => app
                .minter
                .mint(lis_templates::Lane::parse("00", "lane").map_err(|e| bad(e.to_string()))?)
                .map_err(anyhow::Error::from)
                .and_then(|acc| {
                    crate::legacy::message(&analyzer_type, &acc, app.now(), &mut app.rng())
                })
                .map(|r| vec![app.legacy_message(r)]),
        };
        let outcome = match messages {
            Ok(m) => deliver_astm(&app, &destination, app.cli.source_ip, &m).await,
            Err(e) => Err(e),
        };
        // As the reference: the template (or analyzer type) on every result, plus why a push
        // failed.
        let mut entry = json!({"message_number": i, "success": outcome.is_ok()});
        match &template_name {
            Some(n) => entry["template"] = json!(n),
            None => entry["analyzer_type"] = json!(analyzer_type),
        }
        if let Err(e) = &outcome {
            entry["error"] = json!(format!("{e:#}"));
        }
        if outcome.is_ok() {
            successful += 1;
        }
        results.push(entry);
    }
    ok(json!({
        "status": "completed", "total": count, "successful": successful,
        "failed": count - successful, "results": results
    }))
}
