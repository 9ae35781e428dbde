//! A Google Cloud Storage server speaking the XML API, for tests: no emulator installable here
//! accepts the XML-API writes `object_store` sends (fake-gcs-server implements the JSON API and
//! only part of the XML one), so GCS writes are tested against this implementation, written
//! from Google's XML API reference (object PUT, GET with `Range`, HEAD, DELETE, list with
//! `list-type=2`, multipart initiate / upload part / complete / abort, list multipart uploads)
//! and from the requests object_store 0.14's `gcp` client and snapex's sweep of open uploads
//! (`storage::uploads`) send.
//!
//! Authentication is checked as GCS checks a service account's self-signed JWT (Google AIP
//! 4111, what object_store sends as the bearer for a service-account key; it never calls the
//! key's `token_uri`): every request needs `Authorization: Bearer <JWT>`, an RS256 JWT whose
//! `kid` is the test key's id, whose `iss` and `sub` are its e-mail, with a storage scope, not
//! expired, and signed by the test key's private half. Anything else gets the XML error body
//! and 401. There is no token endpoint because nothing here asks one.
//!
//! One server per test process ([`server`]), on a thread and runtime of its own, so it serves
//! every test whatever its runtime (and `snapex serve` child processes, over TCP). Tests share
//! it the way they share the emulators: each under a unique prefix of [`BUCKET`]. The state is
//! open to the test ([`GcsServer::open_uploads`], [`GcsServer::completed_uploads`],
//! [`GcsServer::aborted_uploads`]) and a test can make the server refuse a part
//! ([`GcsServer::refuse_part`]) to drive the failure path over the wire.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

/// The one bucket the server holds; any other is `NoSuchBucket`.
pub const BUCKET: &str = "snapex-gcs-test";
/// The service account the test key belongs to.
pub const CLIENT_EMAIL: &str = "snapex-test@snapex-test.iam.gserviceaccount.com";
const KEY_ID: &str = "snapex-test-key-1";
/// GCS's smallest part, except the last (checked when an upload completes).
pub const MIN_PART: usize = 5 * 1024 * 1024;
/// GCS's part numbers.
const MAX_PART_NUMBER: u32 = 10_000;
/// The most keys one list page holds, as in GCS.
const MAX_KEYS: usize = 1000;
const XMLNS: &str = "http://doc.s3.amazonaws.com/2006-03-01";

/// The running server.
pub struct GcsServer {
    /// `http://127.0.0.1:PORT`: the base URL object_store puts before `/<bucket>/<key>`.
    pub url: String,
    state: Arc<Mutex<ServerState>>,
    key_json: String,
    stranger_key_json: String,
}

/// The server of this test process, started on first use.
pub fn server() -> &'static GcsServer {
    static SERVER: OnceLock<GcsServer> = OnceLock::new();
    SERVER.get_or_init(GcsServer::start)
}

/// An upload that completed: its key and how many parts made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedUpload {
    pub key: String,
    pub parts: usize,
}

impl GcsServer {
    fn start() -> GcsServer {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate the test RSA key");
        let stranger = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate a second RSA key");
        let public_key = key.public_key().as_ref().to_vec();
        let state = Arc::new(Mutex::new(ServerState::new(public_key)));
        let app = Router::new()
            .fallback(handle)
            // Parts are 8 MiB in exports; an object PUT holds at most one part's worth too.
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the GCS server");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("GCS server address");
        std::thread::Builder::new()
            .name("gcs-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("GCS server runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("GCS server listener");
                    axum::serve(listener, app).await.expect("GCS server");
                });
            })
            .expect("start the GCS server thread");
        GcsServer {
            url: format!("http://{addr}"),
            state,
            key_json: key_json(&key),
            stranger_key_json: key_json(&stranger),
        }
    }

    /// The service-account key JSON object_store is given (a real key, as GCS hands them out;
    /// the server knows its public half).
    pub fn key_json(&self) -> &str {
        &self.key_json
    }

    /// A key of the same id and e-mail but another private key: its signatures do not verify.
    pub fn stranger_key_json(&self) -> &str {
        &self.stranger_key_json
    }

    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keys of the multipart uploads initiated and neither completed nor aborted under `prefix`.
    pub fn open_uploads(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .lock()
            .uploads
            .values()
            .filter(|u| u.key.starts_with(prefix))
            .map(|u| u.key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The uploads completed under `prefix`, in completion order.
    pub fn completed_uploads(&self, prefix: &str) -> Vec<CompletedUpload> {
        let s = self.lock();
        s.completed
            .iter()
            .filter(|c| c.key.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Keys of the uploads aborted under `prefix`, in abort order.
    pub fn aborted_uploads(&self, prefix: &str) -> Vec<String> {
        let s = self.lock();
        s.aborted
            .iter()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// From now on, part `part_number` of any upload under `prefix` is refused with 403
    /// `AccessDenied` (a permission withdrawn mid-upload: permanent, so no client retries it).
    pub fn refuse_part(&self, prefix: &str, part_number: u32) {
        self.lock().refusals.push(Refusal {
            prefix: prefix.to_string(),
            part_number,
        });
    }

    /// Whether an object is stored under the full key `key`.
    pub fn has_object(&self, key: &str) -> bool {
        self.lock().objects.contains_key(key)
    }

    /// How many requests the server turned away for their credentials.
    pub fn unauthenticated_requests(&self) -> u64 {
        self.lock().unauthenticated
    }
}

/// `{"type": "service_account", ...}` with the key as PKCS#8 PEM, as Google's console writes it.
fn key_json(key: &RsaKeyPair) -> String {
    let der: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().expect("PKCS#8 of the test key");
    let b64 = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    serde_json::json!({
        "type": "service_account",
        "project_id": "snapex-test",
        "private_key_id": KEY_ID,
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
    })
    .to_string()
}

struct Refusal {
    prefix: String,
    part_number: u32,
}

struct Object {
    data: Bytes,
    generation: i64,
    etag: String,
    md5: [u8; 16],
    crc32c: u32,
    updated: DateTime<Utc>,
    content_type: String,
    metadata: Vec<(String, String)>,
}

struct Part {
    data: Bytes,
    etag: String,
    md5: [u8; 16],
}

struct Upload {
    key: String,
    content_type: String,
    metadata: Vec<(String, String)>,
    parts: BTreeMap<u32, Part>,
}

struct ServerState {
    public_key: Vec<u8>,
    objects: BTreeMap<String, Object>,
    uploads: HashMap<String, Upload>,
    last_generation: i64,
    completed: Vec<CompletedUpload>,
    aborted: Vec<String>,
    refusals: Vec<Refusal>,
    unauthenticated: u64,
}

impl ServerState {
    fn new(public_key: Vec<u8>) -> Self {
        ServerState {
            public_key,
            objects: BTreeMap::new(),
            uploads: HashMap::new(),
            last_generation: 0,
            completed: Vec::new(),
            aborted: Vec::new(),
            refusals: Vec::new(),
            unauthenticated: 0,
        }
    }

    /// Generations are microseconds since the epoch in GCS; strictly increasing here, so two
    /// writes in one microsecond still differ.
    fn next_generation(&mut self) -> i64 {
        let now = Utc::now().timestamp_micros();
        self.last_generation = now.max(self.last_generation + 1);
        self.last_generation
    }
}

/// An XML API error: the status, `<Code>` and `<Message>` the reference lists.
struct GcsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> GcsError {
    GcsError {
        status,
        code,
        message: message.into(),
    }
}

impl IntoResponse for GcsError {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code,
            escape(&self.message)
        );
        (
            self.status,
            [(header::CONTENT_TYPE, "application/xml; charset=UTF-8")],
            body,
        )
            .into_response()
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

type Shared = Arc<Mutex<ServerState>>;

fn lock(state: &Shared) -> MutexGuard<'_, ServerState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match route(&state, &method, &uri, &headers, body) {
        Ok(response) => response,
        Err(e) => {
            if method == Method::HEAD {
                // A HEAD answer has no body: the status says it all.
                return e.status.into_response();
            }
            e.into_response()
        }
    }
}

fn route(
    state: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, GcsError> {
    {
        let mut s = lock(state);
        if let Err(e) = authenticate(&s.public_key, headers) {
            s.unauthenticated += 1;
            return Err(e);
        }
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let path = uri.path().trim_start_matches('/');
    let (bucket, raw_key) = match path.split_once('/') {
        Some((b, k)) => (b, k),
        None => (path, ""),
    };
    // object_store percent-encodes every character but letters and digits, in the bucket too.
    if percent_decode_str(bucket).decode_utf8().ok().as_deref() != Some(BUCKET) {
        return Err(err(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        ));
    }
    let key = percent_decode_str(raw_key)
        .decode_utf8()
        .map_err(|_| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Invalid object name.",
            )
        })?
        .into_owned();
    if key.is_empty() {
        return match *method {
            Method::GET if param("uploads").is_some() => list_uploads(state, &param),
            Method::GET => list(state, &param),
            _ => Err(err(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )),
        };
    }
    match (method.clone(), param("uploads"), param("uploadId")) {
        (Method::POST, Some(_), _) => initiate(state, &key, headers),
        (Method::POST, None, Some(id)) => complete(state, &key, id, headers, &body),
        (Method::PUT, None, Some(id)) => upload_part(state, &key, id, param("partNumber"), body),
        (Method::DELETE, None, Some(id)) => abort(state, &key, id),
        (Method::PUT, None, None) => put(state, &key, headers, body),
        (Method::GET | Method::HEAD, None, None) => get(
            state,
            &key,
            method == Method::HEAD,
            param("generation"),
            headers,
        ),
        (Method::DELETE, None, None) => delete(state, &key),
        _ => Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Unsupported combination of method and query string.",
        )),
    }
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct JwtClaims {
    iss: String,
    sub: Option<String>,
    scope: Option<String>,
    exp: i64,
    iat: i64,
}

/// The bearer check (see the module docs).
fn authenticate(public_key: &[u8], headers: &HeaderMap) -> Result<(), GcsError> {
    let denied = |why: &str| {
        err(
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequired",
            format!("Invalid credentials: {why}"),
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| denied("no Authorization header"))?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| denied("not a bearer token"))?;
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(denied("not a JWT"));
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| denied("bad base64url"))
    };
    let jwt_header: JwtHeader =
        serde_json::from_slice(&decode(h)?).map_err(|_| denied("bad JWT header"))?;
    let claims: JwtClaims =
        serde_json::from_slice(&decode(c)?).map_err(|_| denied("bad JWT claims"))?;
    if jwt_header.alg != "RS256" || jwt_header.kid.as_deref() != Some(KEY_ID) {
        return Err(denied("unknown key"));
    }
    let signed = &token[..h.len() + 1 + c.len()];
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(signed.as_bytes(), &decode(sig)?)
        .map_err(|_| denied("the signature does not verify"))?;
    if claims.iss != CLIENT_EMAIL || claims.sub.as_deref().is_some_and(|s| s != CLIENT_EMAIL) {
        return Err(denied("unknown service account"));
    }
    let scoped = claims.scope.as_deref().is_some_and(|s| {
        s.split(' ').any(|s| {
            s == "https://www.googleapis.com/auth/cloud-platform"
                || s.starts_with("https://www.googleapis.com/auth/devstorage.")
        })
    });
    if !scoped {
        return Err(denied("no storage scope"));
    }
    let now = Utc::now().timestamp();
    // A minute of clock skew either way, as Google's token checks allow.
    if claims.exp < now - 60 || claims.iat > now + 60 || claims.exp - claims.iat > 3600 {
        return Err(denied("expired or not yet valid"));
    }
    Ok(())
}

/// The generation precondition of `x-goog-if-generation-match` (`0`: the object must not
/// exist) against the object now under the key.
fn check_generation(headers: &HeaderMap, current: Option<&Object>) -> Result<(), GcsError> {
    let Some(wanted) = headers.get("x-goog-if-generation-match") else {
        return Ok(());
    };
    let wanted: i64 = wanted
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Invalid x-goog-if-generation-match.",
            )
        })?;
    let holds = match current {
        None => wanted == 0,
        Some(o) => o.generation == wanted,
    };
    if holds {
        Ok(())
    } else {
        Err(err(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        ))
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string()
}

fn user_metadata(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-goog-meta-")?;
            Some((name.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect()
}

fn quoted_md5(md5: &[u8; 16]) -> String {
    format!("\"{}\"", hex::encode(md5))
}

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

fn object_headers(
    o: &Object,
    builder: axum::http::response::Builder,
) -> axum::http::response::Builder {
    let mut hash = format!("crc32c={}", STANDARD.encode(o.crc32c.to_be_bytes()));
    // Composite objects (from multipart uploads) have no MD5 in GCS.
    if !o.etag.contains('-') {
        hash.push_str(&format!(",md5={}", STANDARD.encode(o.md5)));
    }
    let mut b = builder
        .header(header::ETAG, &o.etag)
        .header(
            header::LAST_MODIFIED,
            o.updated.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        )
        .header("x-goog-generation", o.generation.to_string())
        .header("x-goog-metageneration", "1")
        .header("x-goog-hash", hash)
        .header("x-goog-stored-content-length", o.data.len().to_string())
        .header("x-goog-stored-content-encoding", "identity")
        .header("x-goog-storage-class", "STANDARD");
    for (k, v) in &o.metadata {
        if let Ok(v) = HeaderValue::from_str(v) {
            b = b.header(format!("x-goog-meta-{k}"), v);
        }
    }
    b
}

fn build(b: axum::http::response::Builder, body: Body) -> Response {
    b.body(body).unwrap_or_else(|e| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            e.to_string(),
        )
        .into_response()
    })
}

fn store_object<'s>(
    s: &'s mut ServerState,
    key: &str,
    data: Bytes,
    etag: Option<String>,
    content_type: String,
    metadata: Vec<(String, String)>,
) -> &'s Object {
    let md5: [u8; 16] = Md5::digest(&data).into();
    let generation = s.next_generation();
    let object = Object {
        etag: etag.unwrap_or_else(|| quoted_md5(&md5)),
        crc32c: CRC32C.checksum(&data),
        md5,
        data,
        generation,
        updated: Utc::now(),
        content_type,
        metadata,
    };
    s.objects.insert(key.to_string(), object);
    &s.objects[key]
}

/// `PUT /<bucket>/<key>`: a simple upload.
fn put(state: &Shared, key: &str, headers: &HeaderMap, body: Bytes) -> Result<Response, GcsError> {
    let mut s = lock(state);
    check_generation(headers, s.objects.get(key))?;
    let o = store_object(
        &mut s,
        key,
        body,
        None,
        content_type(headers),
        user_metadata(headers),
    );
    Ok(build(
        object_headers(o, Response::builder().status(StatusCode::OK)),
        Body::empty(),
    ))
}

/// `GET`/`HEAD /<bucket>/<key>`, with `Range`, `If-Match`, `If-None-Match` and `generation`.
fn get(
    state: &Shared,
    key: &str,
    head: bool,
    generation: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, GcsError> {
    let s = lock(state);
    let not_found = || {
        err(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    };
    let o = s.objects.get(key).ok_or_else(not_found)?;
    if let Some(g) = generation
        && g != o.generation.to_string()
    {
        return Err(not_found());
    }
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(m) = header_str(header::IF_MATCH)
        && m != "*"
        && !m.split(',').any(|t| t.trim() == o.etag)
    {
        return Err(err(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        ));
    }
    if let Some(m) = header_str(header::IF_NONE_MATCH)
        && (m == "*" || m.split(',').any(|t| t.trim() == o.etag))
    {
        return Ok(build(
            object_headers(o, Response::builder().status(StatusCode::NOT_MODIFIED)),
            Body::empty(),
        ));
    }
    let len = o.data.len() as u64;
    let range = match header_str(header::RANGE) {
        None => None,
        Some(r) => parse_range(r, len)?,
    };
    let (status, slice) = match range {
        None => (StatusCode::OK, o.data.clone()),
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            o.data.slice(start as usize..=end as usize),
        ),
    };
    let mut b = object_headers(o, Response::builder().status(status))
        .header(header::CONTENT_TYPE, &o.content_type)
        .header(header::CONTENT_LENGTH, slice.len().to_string())
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some((start, end)) = range {
        b = b.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(slice)
    };
    Ok(build(b, body))
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` as an inclusive range, `None` for a range the whole
/// object satisfies as a plain 200 (an empty object), 416 `InvalidRange` past the end.
fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, GcsError> {
    let invalid = || {
        err(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range cannot be satisfied.",
        )
    };
    let spec = value.strip_prefix("bytes=").ok_or_else(invalid)?;
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| invalid());
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            let n = num(b)?;
            if n == 0 {
                return Err(invalid());
            }
            if len == 0 {
                return Ok(None);
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, true) => (num(a)?, len.saturating_sub(1)),
        (false, false) => (num(a)?, num(b)?.min(len.saturating_sub(1))),
        (true, true) => return Err(invalid()),
    };
    if start >= len || start > end {
        return Err(invalid());
    }
    Ok(Some((start, end)))
}

/// `DELETE /<bucket>/<key>`.
fn delete(state: &Shared, key: &str) -> Result<Response, GcsError> {
    let mut s = lock(state);
    match s.objects.remove(key) {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(err(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )),
    }
}

/// `GET /<bucket>?list-type=2&prefix=&delimiter=&continuation-token=&start-after=&max-keys=`.
fn list<'q>(state: &Shared, param: &dyn Fn(&str) -> Option<&'q str>) -> Result<Response, GcsError> {
    let prefix = param("prefix").unwrap_or("");
    let delimiter = param("delimiter").filter(|d| !d.is_empty());
    let max_keys = match param("max-keys") {
        None => MAX_KEYS,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| {
                err(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "Invalid max-keys.",
                )
            })?
            .min(MAX_KEYS),
    };
    // The token is the last name (key or common prefix) of the previous page: listing goes on
    // past it, and past everything under it when it was a common prefix.
    let token = match param("continuation-token") {
        None => None,
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    err(
                        StatusCode::BAD_REQUEST,
                        "InvalidArgument",
                        "Invalid continuation-token.",
                    )
                })?,
        ),
    };
    let start_after = param("start-after").unwrap_or("");
    let s = lock(state);
    let mut contents = String::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut count = 0usize;
    let mut last_name: Option<String> = None;
    let mut truncated = false;
    for (key, o) in s.objects.range(prefix.to_string()..) {
        if !key.starts_with(prefix) {
            break;
        }
        if key.as_str() <= start_after {
            continue;
        }
        if let Some(t) = &token
            && (key <= t
                || (t.ends_with(delimiter.unwrap_or("\u{0}")) && key.starts_with(t.as_str())))
        {
            continue;
        }
        let common = delimiter.and_then(|d| {
            key[prefix.len()..]
                .find(d)
                .map(|i| key[..prefix.len() + i + d.len()].to_string())
        });
        if let Some(p) = &common
            && prefixes.last() == Some(p)
        {
            continue;
        }
        if count == max_keys {
            truncated = true;
            break;
        }
        count += 1;
        match common {
            Some(p) => {
                last_name = Some(p.clone());
                prefixes.push(p);
            }
            None => {
                last_name = Some(key.clone());
                contents.push_str(&format!(
                    "<Contents><Key>{}</Key><Generation>{}</Generation><MetaGeneration>1</MetaGeneration><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size></Contents>",
                    escape(key),
                    o.generation,
                    o.updated.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    escape(&o.etag),
                    o.data.len()
                ));
            }
        }
    }
    let mut xml = format!(
        "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns=\"{XMLNS}\"><Name>{BUCKET}</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        escape(prefix)
    );
    if let Some(d) = delimiter {
        xml.push_str(&format!("<Delimiter>{}</Delimiter>", escape(d)));
    }
    xml.push_str(&contents);
    for p in &prefixes {
        xml.push_str(&format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            escape(p)
        ));
    }
    if truncated && let Some(last) = last_name {
        xml.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            URL_SAFE_NO_PAD.encode(last)
        ));
    }
    xml.push_str("</ListBucketResult>");
    Ok(xml_response(StatusCode::OK, xml))
}

/// `GET /<bucket>?uploads&prefix=&key-marker=&upload-id-marker=&max-uploads=`: the uploads in
/// progress, by key then upload id.
fn list_uploads<'q>(
    state: &Shared,
    param: &dyn Fn(&str) -> Option<&'q str>,
) -> Result<Response, GcsError> {
    let prefix = param("prefix").unwrap_or("");
    let key_marker = param("key-marker").unwrap_or("");
    let id_marker = param("upload-id-marker").unwrap_or("");
    let max = match param("max-uploads") {
        None => MAX_KEYS,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| {
                err(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "Invalid max-uploads.",
                )
            })?
            .clamp(1, MAX_KEYS),
    };
    let s = lock(state);
    let mut open: Vec<(&str, &str)> = s
        .uploads
        .iter()
        .filter(|(_, u)| u.key.starts_with(prefix))
        .map(|(id, u)| (u.key.as_str(), id.as_str()))
        .filter(|(k, id)| (*k, *id) > (key_marker, id_marker))
        .collect();
    open.sort();
    let truncated = open.len() > max;
    open.truncate(max);
    let mut xml = format!(
        "<?xml version='1.0' encoding='UTF-8'?><ListMultipartUploadsResult xmlns=\"{XMLNS}\"><Bucket>{BUCKET}</Bucket><KeyMarker>{}</KeyMarker><UploadIdMarker>{}</UploadIdMarker><Prefix>{}</Prefix><MaxUploads>{max}</MaxUploads><IsTruncated>{truncated}</IsTruncated>",
        escape(key_marker),
        escape(id_marker),
        escape(prefix)
    );
    if truncated && let Some((k, id)) = open.last() {
        xml.push_str(&format!(
            "<NextKeyMarker>{}</NextKeyMarker><NextUploadIdMarker>{}</NextUploadIdMarker>",
            escape(k),
            escape(id)
        ));
    }
    for (k, id) in &open {
        xml.push_str(&format!(
            "<Upload><Key>{}</Key><UploadId>{}</UploadId><StorageClass>STANDARD</StorageClass></Upload>",
            escape(k),
            escape(id)
        ));
    }
    xml.push_str("</ListMultipartUploadsResult>");
    Ok(xml_response(StatusCode::OK, xml))
}

fn xml_response(status: StatusCode, xml: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=UTF-8")],
        xml,
    )
        .into_response()
}

/// `POST /<bucket>/<key>?uploads`: a new upload id; the object's metadata is given here.
fn initiate(state: &Shared, key: &str, headers: &HeaderMap) -> Result<Response, GcsError> {
    let id = format!("{:032x}", rand::random::<u128>());
    lock(state).uploads.insert(
        id.clone(),
        Upload {
            key: key.to_string(),
            content_type: content_type(headers),
            metadata: user_metadata(headers),
            parts: BTreeMap::new(),
        },
    );
    Ok(xml_response(
        StatusCode::OK,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult xmlns=\"{XMLNS}\"><Bucket>{BUCKET}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
            escape(key)
        ),
    ))
}

fn upload_of<'s>(s: &'s mut ServerState, key: &str, id: &str) -> Result<&'s mut Upload, GcsError> {
    match s.uploads.get_mut(id) {
        Some(u) if u.key == key => Ok(u),
        _ => Err(err(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The requested upload was not found.",
        )),
    }
}

/// `PUT /<bucket>/<key>?partNumber=N&uploadId=ID`: the part's ETag (its MD5) in the answer.
fn upload_part(
    state: &Shared,
    key: &str,
    id: &str,
    part_number: Option<&str>,
    body: Bytes,
) -> Result<Response, GcsError> {
    let number: u32 = part_number
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "partNumber must be an integer from 1 to 10000.",
            )
        })?;
    let mut s = lock(state);
    let refused = s
        .refusals
        .iter()
        .any(|r| r.part_number == number && key.starts_with(&r.prefix));
    upload_of(&mut s, key, id)?;
    if refused {
        return Err(err(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("Access denied to part {number} of {key}."),
        ));
    }
    let md5: [u8; 16] = Md5::digest(&body).into();
    let etag = quoted_md5(&md5);
    let upload = upload_of(&mut s, key, id)?;
    upload.parts.insert(
        number,
        Part {
            data: body,
            etag: etag.clone(),
            md5,
        },
    );
    Ok(build(
        Response::builder()
            .status(StatusCode::OK)
            .header(header::ETAG, etag),
        Body::empty(),
    ))
}

#[derive(Deserialize)]
struct CompleteBody {
    #[serde(rename = "Part", default)]
    parts: Vec<CompletePart>,
}

#[derive(Deserialize)]
struct CompletePart {
    #[serde(rename = "PartNumber")]
    number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

/// `POST /<bucket>/<key>?uploadId=ID` with `<CompleteMultipartUpload>`: the listed parts,
/// ascending, each as uploaded, all but the last at least 5 MiB, become the object.
fn complete(
    state: &Shared,
    key: &str,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, GcsError> {
    let text = std::str::from_utf8(body).map_err(|_| {
        err(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "The body is not UTF-8.",
        )
    })?;
    let listed: CompleteBody = quick_xml::de::from_str(text).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            format!("The XML you provided was not well-formed: {e}"),
        )
    })?;
    let mut s = lock(state);
    upload_of(&mut s, key, id)?;
    check_generation(headers, s.objects.get(key))?;
    let upload = upload_of(&mut s, key, id)?;
    if listed.parts.is_empty() {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "A multipart upload needs at least one part.",
        ));
    }
    if listed.parts.windows(2).any(|w| w[0].number >= w[1].number) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The parts must be listed in ascending order.",
        ));
    }
    let mut data = Vec::new();
    let mut md5s = Vec::new();
    for (i, p) in listed.parts.iter().enumerate() {
        let part = upload
            .parts
            .get(&p.number)
            .filter(|part| part.etag.trim_matches('"') == p.etag.trim().trim_matches('"'))
            .ok_or_else(|| {
                err(
                    StatusCode::BAD_REQUEST,
                    "InvalidPart",
                    format!(
                        "Part {} was not uploaded or its ETag does not match.",
                        p.number
                    ),
                )
            })?;
        if i + 1 < listed.parts.len() && part.data.len() < MIN_PART {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                format!("Part {} is smaller than the 5 MiB minimum.", p.number),
            ));
        }
        data.extend_from_slice(&part.data);
        md5s.extend_from_slice(&part.md5);
    }
    let n = listed.parts.len();
    let Some(upload) = s.uploads.remove(id) else {
        return Err(err(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The requested upload was not found.",
        ));
    };
    // Not an MD5 of the content, as the reference says of multipart objects.
    let etag = format!("\"{}-{n}\"", hex::encode(Md5::digest(&md5s)));
    let generation = {
        let o = store_object(
            &mut s,
            key,
            Bytes::from(data),
            Some(etag.clone()),
            upload.content_type,
            upload.metadata,
        );
        o.generation
    };
    s.completed.push(CompletedUpload {
        key: key.to_string(),
        parts: n,
    });
    let xml = format!(
        "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult xmlns=\"{XMLNS}\"><Location>http://storage.googleapis.com/{BUCKET}/{}</Location><Bucket>{BUCKET}</Bucket><Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
        escape(key),
        escape(key),
        escape(&etag)
    );
    let mut response = xml_response(StatusCode::OK, xml);
    if let Ok(v) = HeaderValue::from_str(&generation.to_string()) {
        response.headers_mut().insert("x-goog-generation", v);
    }
    Ok(response)
}

/// `DELETE /<bucket>/<key>?uploadId=ID`: the upload and its parts go.
fn abort(state: &Shared, key: &str, id: &str) -> Result<Response, GcsError> {
    let mut s = lock(state);
    upload_of(&mut s, key, id)?;
    s.uploads.remove(id);
    s.aborted.push(key.to_string());
    Ok(StatusCode::NO_CONTENT.into_response())
}
