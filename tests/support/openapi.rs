//! Every API response the test suites see, checked against the OpenAPI document snapex serves
//! at `/api/openapi.json` (issue 14): a response the document does not describe fails the test
//! that received it, so the document cannot drift from what the handlers answer.
//!
//! [`check_response`] takes the request's method and path (with its query), and the
//! response's status, `Content-Type` and body, and fails when
//! - no documented operation has that method and path (paths under [`UNDOCUMENTED_PREFIXES`]
//!   aside: the dashboard's HTML pages are not part of the API);
//! - the status is not among the operation's responses (an `NXX` range or `default` counts);
//! - the response has a body and its media type (without parameters) is not among that
//!   response's `content` types, or it has none and the response documents one;
//! - the body does not validate against that media type's schema (JSON Schema 2020-12, with
//!   `#/components/schemas/…` resolved in the document, formats checked).
//!
//! With `envelope=true` in the query, a 2xx body must be Atlas's envelope (`{status, content}`
//! for one resource, a list page with an extra `status`); the checker unwraps it and checks
//! the content against the response documented for the envelope's `status`.
//!
//! The document is built once per process from [`snapex::api::openapi::build`] (the same value
//! the server serves), and compiled schemas are cached per (operation, status, media type).
//! `SNAPEX_OPENAPI_CHECK=warn` makes violations a note on stderr instead of a panic (while the
//! document is being completed); anything else but unset or `strict` is refused.
//!
//! [`Checker`] is the same check over any document, so its own tests use small hand-written
//! ones (`tests/api/openapi_check.rs`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// Request paths that are not part of the API, so not in the document: the dashboard's HTML
/// pages, forms, scripts and live streams (`/ui`, `/ui/...`).
pub const UNDOCUMENTED_PREFIXES: &[&str] = &["/ui"];

/// The environment variable that chooses what a violation does: unset or `strict` panics,
/// `warn` prints it to stderr.
pub const ENV_MODE: &str = "SNAPEX_OPENAPI_CHECK";

/// A response body, as received (bytes or text) or already parsed.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    Bytes(&'a [u8]),
    Json(&'a Value),
}

impl<'a> From<&'a [u8]> for Body<'a> {
    fn from(b: &'a [u8]) -> Self {
        Body::Bytes(b)
    }
}
impl<'a> From<&'a Vec<u8>> for Body<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        Body::Bytes(b)
    }
}
impl<'a> From<&'a str> for Body<'a> {
    fn from(b: &'a str) -> Self {
        Body::Bytes(b.as_bytes())
    }
}
impl<'a> From<&'a String> for Body<'a> {
    fn from(b: &'a String) -> Self {
        Body::Bytes(b.as_bytes())
    }
}
impl<'a> From<&'a bytes::Bytes> for Body<'a> {
    fn from(b: &'a bytes::Bytes) -> Self {
        Body::Bytes(b)
    }
}
impl<'a> From<&'a Value> for Body<'a> {
    fn from(b: &'a Value) -> Self {
        Body::Json(b)
    }
}

/// The documented operation a request reached.
#[derive(Debug, Clone)]
pub struct Operation<'d> {
    /// The lower-case method, as the document's key (`get`).
    pub method: String,
    /// The path template, as the document's key (`/api/atlas/v2/groups/{groupId}`).
    pub template: &'d str,
    /// The operation object.
    pub value: &'d Value,
}

impl Operation<'_> {
    /// `operationId (GET /path/{template})`, for messages.
    pub fn name(&self) -> String {
        let id = self.value["operationId"]
            .as_str()
            .unwrap_or("no operationId");
        format!(
            "{id} ({} {})",
            self.method.to_ascii_uppercase(),
            self.template
        )
    }
}

/// Why a response does not match the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// No operation has this method and path.
    UndocumentedOperation { method: String, path: String },
    /// The operation has no response for this status, nor a range or `default` one.
    UndocumentedStatus {
        operation: String,
        status: u16,
        documented: Vec<String>,
    },
    /// The response has a body in a media type the documented response does not list (or
    /// none, or the response documents a body and there is none).
    UndocumentedMediaType {
        operation: String,
        status: u16,
        /// The documented response that applies (`200`, `2XX`, `default`).
        response: String,
        media_type: Option<String>,
        documented: Vec<String>,
    },
    /// `envelope=true`, but a success body is not an envelope.
    NotAnEnvelope {
        operation: String,
        status: u16,
        problem: String,
    },
    /// A JSON media type whose body does not parse.
    UnparsableBody {
        operation: String,
        status: u16,
        media_type: String,
        error: String,
    },
    /// The body breaks the media type's schema: `errors` are `instance path: message (schema
    /// path)`, at most [`MAX_ERRORS`].
    Schema {
        operation: String,
        status: u16,
        media_type: String,
        errors: Vec<String>,
    },
    /// The document's schema for this response does not compile (a defect of the document).
    BadSchema {
        operation: String,
        status: u16,
        media_type: String,
        error: String,
    },
}

/// At most this many schema errors are listed per response.
pub const MAX_ERRORS: usize = 20;

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::UndocumentedOperation { method, path } => write!(
                f,
                "{method} {path}: no operation of the OpenAPI document has this method and path"
            ),
            Violation::UndocumentedStatus {
                operation,
                status,
                documented,
            } => write!(
                f,
                "{operation}: status {status} is not documented (documented: {})",
                documented.join(", ")
            ),
            Violation::UndocumentedMediaType {
                operation,
                status,
                response,
                media_type,
                documented,
            } => match (media_type, documented.is_empty()) {
                (None, _) => write!(
                    f,
                    "{operation} {status} (response {response}): there is no body, but the \
                     response documents one in {}",
                    documented.join(", ")
                ),
                (Some(m), true) => write!(
                    f,
                    "{operation} {status} (response {response}): a body in {m}, but the response \
                     documents none"
                ),
                (Some(m), false) => write!(
                    f,
                    "{operation} {status} (response {response}): media type {m} is not documented \
                     (documented: {})",
                    documented.join(", ")
                ),
            },
            Violation::NotAnEnvelope {
                operation,
                status,
                problem,
            } => write!(
                f,
                "{operation} {status}: envelope=true but the body is not an envelope: {problem}"
            ),
            Violation::UnparsableBody {
                operation,
                status,
                media_type,
                error,
            } => write!(
                f,
                "{operation} {status} {media_type}: the body is not JSON: {error}"
            ),
            Violation::Schema {
                operation,
                status,
                media_type,
                errors,
            } => write!(
                f,
                "{operation} {status} {media_type}: the body does not match the documented schema:\n  {}",
                errors.join("\n  ")
            ),
            Violation::BadSchema {
                operation,
                status,
                media_type,
                error,
            } => write!(
                f,
                "{operation} {status} {media_type}: the document's schema does not compile: {error}"
            ),
        }
    }
}

/// One path template, split into segments.
struct Template {
    key: String,
    segments: Vec<Option<String>>, // None: a `{parameter}`
}

impl Template {
    fn new(key: &str) -> Template {
        let segments = split(key)
            .map(|s| {
                let param = s.starts_with('{') && s.ends_with('}');
                (!param).then(|| s.to_string())
            })
            .collect();
        Template {
            key: key.to_string(),
            segments,
        }
    }

    /// Whether `path`'s segments match: literals exactly, a parameter any non-empty segment.
    fn matches(&self, path: &[&str]) -> bool {
        self.segments.len() == path.len()
            && self.segments.iter().zip(path).all(|(t, p)| match t {
                Some(lit) => lit == p,
                None => !p.is_empty(),
            })
    }
}

/// A path's segments after its leading `/` (`/` alone is one empty segment).
fn split(path: &str) -> impl Iterator<Item = &str> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

type Validator = Arc<Result<jsonschema::Validator, String>>;

/// The check of [`check_response`] over one document.
pub struct Checker {
    doc: Value,
    templates: Vec<Template>,
    validators: Mutex<HashMap<(String, String, String, String), Validator>>,
}

impl Checker {
    pub fn new(doc: Value) -> Checker {
        let templates = doc["paths"]
            .as_object()
            .map(|paths| paths.keys().map(|k| Template::new(k)).collect())
            .unwrap_or_default();
        Checker {
            doc,
            templates,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The document.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// The operation documented for `method` on the concrete `path_and_query` (the query is
    /// ignored). Of several matching templates the one with a literal segment where the others
    /// have a parameter, at the first place they differ, wins (`/snapshots/shardedClusters`
    /// over `/snapshots/{snapshotId}`), as OpenAPI wants concrete paths matched first.
    pub fn operation(&self, method: &str, path_and_query: &str) -> Option<Operation<'_>> {
        let path = strip_query(path_and_query);
        let segments: Vec<&str> = split(path).collect();
        let method = method.to_ascii_lowercase();
        let best = self
            .templates
            .iter()
            .filter(|t| t.matches(&segments))
            .filter(|t| self.doc["paths"][&t.key].get(&method).is_some())
            .max_by(|a, b| {
                let lits =
                    |t: &Template| t.segments.iter().map(Option::is_some).collect::<Vec<_>>();
                lits(a).cmp(&lits(b))
            })?;
        let (template, path_item) = self.doc["paths"].as_object()?.get_key_value(&best.key)?;
        Some(Operation {
            method: method.clone(),
            template,
            value: path_item.get(&method)?,
        })
    }

    /// Checks one response; see the module doc. `content_type` is the whole header value.
    pub fn check(
        &self,
        method: &str,
        path_and_query: &str,
        status: u16,
        content_type: Option<&str>,
        body: Body<'_>,
    ) -> Result<(), Violation> {
        let path = strip_query(path_and_query);
        if is_undocumented_prefix(path) {
            return Ok(());
        }
        let Some(op) = self.operation(method, path_and_query) else {
            return Err(Violation::UndocumentedOperation {
                method: method.to_ascii_uppercase(),
                path: path.to_string(),
            });
        };
        let operation = op.name();
        let media_type = content_type.map(essence);

        // The body as JSON, when the media type says it is (parsed once, envelope or not).
        let parsed: Option<Value> = match body {
            Body::Json(v) => Some(v.clone()),
            Body::Bytes([]) => None,
            Body::Bytes(b) if media_type.as_deref().is_some_and(is_json) => {
                match serde_json::from_slice(b) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        return Err(Violation::UnparsableBody {
                            operation,
                            status,
                            media_type: media_type.unwrap_or_default(),
                            error: e.to_string(),
                        });
                    }
                }
            }
            // Text: a string instance, for a `type: string` schema.
            Body::Bytes(b)
                if media_type
                    .as_deref()
                    .is_some_and(|m| m.starts_with("text/")) =>
            {
                Some(Value::String(String::from_utf8_lossy(b).into_owned()))
            }
            // Anything else (binary): the media type is checked, not the bytes.
            Body::Bytes(_) => None,
        };
        let has_body = match body {
            Body::Json(v) => !v.is_null(),
            Body::Bytes(b) => !b.is_empty(),
        };

        let (status, instance) =
            if envelope_requested(path_and_query) && (200..300).contains(&status) && has_body {
                unwrap_envelope(parsed.unwrap_or(Value::Null)).map_err(|problem| {
                    Violation::NotAnEnvelope {
                        operation: operation.clone(),
                        status,
                        problem,
                    }
                })?
            } else {
                (status, parsed)
            };

        let responses = op.value["responses"].as_object();
        let documented = || -> Vec<String> {
            responses
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default()
        };
        let Some((status_key, response)) = responses.and_then(|r| response_for(r, status)) else {
            return Err(Violation::UndocumentedStatus {
                operation,
                status,
                documented: documented(),
            });
        };
        let response = self.resolve(response);
        let content = response
            .get("content")
            .and_then(Value::as_object)
            .filter(|c| !c.is_empty());
        let Some(content) = content else {
            if has_body {
                return Err(Violation::UndocumentedMediaType {
                    operation,
                    status,
                    response: status_key.to_string(),
                    media_type: media_type.or_else(|| Some("(no Content-Type)".into())),
                    documented: vec![],
                });
            }
            return Ok(());
        };
        // A body-less answer (a versioned 204) whose media types carry no schema: they name
        // the version the server negotiated (its Content-Type), not a body.
        if !has_body && content.values().all(|m| m.get("schema").is_none()) {
            return Ok(());
        }
        let listed: Vec<String> = content.keys().cloned().collect();
        let Some(mt) = media_type.as_deref().filter(|_| has_body) else {
            return Err(Violation::UndocumentedMediaType {
                operation,
                status,
                response: status_key.to_string(),
                media_type: has_body.then(|| {
                    media_type
                        .clone()
                        .unwrap_or_else(|| "(no Content-Type)".into())
                }),
                documented: listed,
            });
        };
        let Some((media_key, media)) = media_for(content, mt) else {
            return Err(Violation::UndocumentedMediaType {
                operation,
                status,
                response: status_key.to_string(),
                media_type: Some(mt.to_string()),
                documented: listed,
            });
        };
        let Some(schema) = media.get("schema") else {
            return Ok(());
        };
        // A binary body against a non-JSON, non-text media type: nothing to validate.
        let Some(instance) = instance else {
            return Ok(());
        };
        let key = (
            op.method.clone(),
            op.template.to_string(),
            status_key.to_string(),
            media_key.to_string(),
        );
        let validator = self.validator(key, schema);
        match validator.as_ref() {
            Err(error) => Err(Violation::BadSchema {
                operation,
                status,
                media_type: mt.to_string(),
                error: error.clone(),
            }),
            Ok(v) => {
                let errors: Vec<String> = v
                    .iter_errors(&instance)
                    .take(MAX_ERRORS)
                    .map(|e| {
                        let at = e.instance_path().to_string();
                        format!(
                            "{}: {e} (schema {})",
                            if at.is_empty() { "/" } else { &at },
                            e.schema_path()
                        )
                    })
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(Violation::Schema {
                        operation,
                        status,
                        media_type: mt.to_string(),
                        errors,
                    })
                }
            }
        }
    }

    /// A response object, through its `$ref` when it is one (`#/components/responses/…`).
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .strip_prefix('#')
                .and_then(|p| self.doc.pointer(p))
                .unwrap_or(value),
            None => value,
        }
    }

    /// The compiled validator of `schema`, cached under `key`. The schema is checked as
    /// `allOf` of a root that carries the document's `components`, so its
    /// `#/components/schemas/…` references resolve in the document.
    fn validator(&self, key: (String, String, String, String), schema: &Value) -> Validator {
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let root = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "components": self.doc.get("components").cloned().unwrap_or(Value::Object(Map::new())),
                    "allOf": [schema],
                });
                Arc::new(
                    jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft202012)
                        .should_validate_formats(true)
                        .build(&root)
                        .map_err(|e| e.to_string()),
                )
            })
            .clone()
    }
}

fn strip_query(path_and_query: &str) -> &str {
    path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p)
}

fn is_undocumented_prefix(path: &str) -> bool {
    UNDOCUMENTED_PREFIXES
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// A media type without its parameters, lower case (`application/json;charset=utf-8` →
/// `application/json`).
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

/// Whether the query has `envelope=true` (any case, as the server reads it).
fn envelope_requested(path_and_query: &str) -> bool {
    path_and_query.split_once('?').is_some_and(|(_, q)| {
        q.split('&').any(|pair| {
            pair.split_once('=')
                .is_some_and(|(k, v)| k == "envelope" && v.eq_ignore_ascii_case("true"))
        })
    })
}

/// The status in an envelope and the content it wraps.
fn unwrap_envelope(body: Value) -> Result<(u16, Option<Value>), String> {
    let Value::Object(mut map) = body else {
        return Err(format!("not an object: {body}"));
    };
    let status = match map.remove("status") {
        None => return Err("no `status`".into()),
        Some(s) => s
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| format!("`status` is not an HTTP status integer: {s}"))?,
    };
    if map.contains_key("results") {
        // A list page: the rest of the object is the page.
        return Ok((status, Some(Value::Object(map))));
    }
    match map.remove("content") {
        Some(content) if map.is_empty() => Ok((status, Some(content))),
        Some(_) => Err(format!(
            "fields beside `status` and `content`: {:?}",
            map.keys().collect::<Vec<_>>()
        )),
        None => Err("neither `content` nor `results`".into()),
    }
}

/// The response documented for `status`: exact, then its range (`4XX`), then `default`.
fn response_for(responses: &Map<String, Value>, status: u16) -> Option<(&str, &Value)> {
    let exact = status.to_string();
    let range = format!("{}XX", status / 100);
    responses
        .iter()
        .find(|(k, _)| **k == exact)
        .or_else(|| {
            responses
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&range))
        })
        .or_else(|| responses.iter().find(|(k, _)| *k == "default"))
        .map(|(k, v)| (k.as_str(), v))
}

/// The documented media type for `media_type`: exact, then `type/*`, then `*/*`.
fn media_for<'a>(
    content: &'a Map<String, Value>,
    media_type: &str,
) -> Option<(&'a str, &'a Value)> {
    let wildcard = format!("{}/*", media_type.split('/').next().unwrap_or(""));
    let find = |want: &str| {
        content
            .iter()
            .find(|(k, _)| essence(k) == want)
            .map(|(k, v)| (k.as_str(), v))
    };
    find(media_type)
        .or_else(|| find(&wildcard))
        .or_else(|| find("*/*"))
}

/// The checker of the product's document, built on first use.
pub fn checker() -> &'static Checker {
    static CHECKER: OnceLock<Checker> = OnceLock::new();
    CHECKER.get_or_init(|| Checker::new(snapex::api::openapi::build()))
}

/// Checks one response the tests received against the product's document (see the module
/// doc); panics on a violation unless `SNAPEX_OPENAPI_CHECK=warn`.
pub fn check_response<'b>(
    method: &str,
    path_and_query: &str,
    status: u16,
    content_type: Option<&str>,
    body: impl Into<Body<'b>>,
) {
    if let Err(violation) = try_check_response(method, path_and_query, status, content_type, body) {
        panic!("the response does not match the OpenAPI document: {violation}");
    }
}

/// [`check_response`] returning the violation instead of panicking, for a test that counts
/// failures rather than stopping at the first (the load test). In `warn` mode a violation is
/// printed and `Ok` returned.
pub fn try_check_response<'b>(
    method: &str,
    path_and_query: &str,
    status: u16,
    content_type: Option<&str>,
    body: impl Into<Body<'b>>,
) -> Result<(), Violation> {
    let warn = match std::env::var(ENV_MODE).as_deref() {
        Err(_) | Ok("") | Ok("strict") => false,
        Ok("warn") => true,
        Ok(other) => panic!("{ENV_MODE}={other}: expected strict or warn"),
    };
    match checker().check(method, path_and_query, status, content_type, body.into()) {
        Err(v) if warn => {
            eprintln!("warning: the response does not match the OpenAPI document: {v}");
            Ok(())
        }
        result => result,
    }
}

/// A response read to its end and checked with [`check_response`]. Its accessors are those
/// of `reqwest::Response` (the body ones async and fallible too), so a test reads the same.
pub struct Checked {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    url: reqwest::Url,
    body: bytes::Bytes,
}

impl Checked {
    pub fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    pub async fn bytes(self) -> Result<bytes::Bytes, std::convert::Infallible> {
        Ok(self.body)
    }

    pub async fn text(self) -> Result<String, std::convert::Infallible> {
        Ok(String::from_utf8_lossy(&self.body).into_owned())
    }

    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// `send_checked()`: `send()`, reading the whole answer and checking it against the document.
/// Not for answers a test reads as a stream (the dashboard's live pages).
pub trait SendChecked {
    fn send_checked(self) -> impl Future<Output = reqwest::Result<Checked>> + Send;
}

impl SendChecked for reqwest::RequestBuilder {
    async fn send_checked(self) -> reqwest::Result<Checked> {
        let (client, request) = self.build_split();
        let request = request?;
        let method = request.method().clone();
        let url = request.url().clone();
        let response = client.execute(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        check_response(
            method.as_str(),
            &path_and_query(&url),
            status.as_u16(),
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            &body,
        );
        Ok(Checked {
            status,
            headers,
            url,
            body,
        })
    }
}

/// `reqwest::get`, checked.
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<Checked> {
    reqwest::Client::new().get(url).send_checked().await
}

/// The path and query of `url`, as the server reads them.
pub fn path_and_query(url: &reqwest::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// `tower::ServiceExt::oneshot` on the router, in-process: the answer's parts and its whole
/// body, checked.
pub async fn oneshot(
    router: axum::Router,
    request: http::Request<axum::body::Body>,
) -> (http::response::Parts, bytes::Bytes) {
    use tower::ServiceExt;
    let method = request.method().clone();
    let uri = request.uri().clone();
    let path = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let response = match router.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: the body: {e}"));
    check_parts(method.as_str(), path, &parts, &body);
    (parts, body)
}

/// Checks an answer of the router called in-process: its parts and its collected body.
pub fn check_parts(method: &str, uri: &str, parts: &http::response::Parts, body: &[u8]) {
    check_response(
        method,
        uri,
        parts.status.as_u16(),
        parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body,
    );
}
