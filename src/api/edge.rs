//! The HTTP edge: what every request meets before (and around) its handler, and the settings
//! of the server's HTTP side ([`EdgeConfig`], each default written here once).
//!
//! - [`guard`] runs before routing: a request target over [`MAX_URI_BYTES`] gets 414
//!   `REQUEST_URI_TOO_LONG`, headers over [`MAX_HEADER_BYTES`] get 431
//!   `REQUEST_HEADERS_TOO_LARGE`, a `Content-Length` over the body limit gets 413
//!   `REQUEST_BODY_TOO_LARGE`, and a path that is not UTF-8 once percent-decoded gets 400
//!   `INVALID_PATH` — all before authentication, since they are about the request's framing
//!   and nothing of it is read or checked. A body without a declared length
//!   that grows past the limit is refused (413) when the handler reads it, after
//!   authentication. The guard also adds the `RateLimit-*` headers to the response.
//! - [`method_not_allowed`] answers a wrong method on an existing path: 405
//!   `METHOD_NOT_ALLOWED` with `Allow`, *after* authentication, as Atlas does (an
//!   unauthenticated caller gets the 401 challenge).
//! - [`RateLimiter`]: a token bucket per authenticated principal (API key or service account),
//!   checked by the `Principal` extractor right after authentication: `RateLimit-Limit` (the
//!   burst), `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the bucket is full again)
//!   on every authenticated response, and 429 `RATE_LIMITED` with `Retry-After` when the
//!   bucket is empty. The buckets are in memory, per node: with N nodes behind a balancer a
//!   key may make up to N times the rate.
//! - `links` are built from the configured public URL ([`Edge::base_url`]), never from the
//!   request's `Host` header.
//!
//! Past hyper's own bounds (a request head over about 400 KiB, more than 100 headers, a
//! malformed request line) hyper answers 431 or 400 itself, without a body, and closes the
//! connection: those requests never reach the router.
//!
//! The connection side (header-read and idle timeouts) is `cli::http`'s; its settings are
//! here so that every HTTP setting has one home.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::auth::Principal;

/// Largest request body, in bytes (before: axum's built-in 2 MiB, answered 400). The largest
/// Atlas body snapex takes (a snapshot import of many shards) is a few KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests per second a principal may make once its burst is spent.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 100;
/// Requests a principal may make at once (the bucket's size).
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 1000;
/// Time a client has to send a request line and its headers, counted from the connection's
/// accept or from the end of the previous response (so also the keep-alive idle time).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause while a request body is received (then 408) or a response is sent (then
/// the connection is closed).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest request target (path and query), in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section (names, values and 4 bytes of framing per field), in bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The base of `links` for a router that runs without a server (tests).
pub const ROUTER_BASE_URL: &str = "http://localhost";

/// A token bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// The HTTP side's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Base URL of `links`, as clients reach the server; `None`: `http://<bound address>`.
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    /// `None`: no rate limiting.
    pub rate_limit: Option<RateLimit>,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            public_url: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            rate_limit: Some(RateLimit {
                per_second: DEFAULT_RATE_LIMIT_PER_SECOND,
                burst: DEFAULT_RATE_LIMIT_BURST,
            }),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Checks and normalizes a public URL: `http` or `https`, a host, no credentials, query or
/// fragment; a path (a proxy's prefix) is kept, without its trailing `/`.
pub fn parse_public_url(text: &str) -> Result<String, PublicUrlError> {
    let refuse = |why| PublicUrlError {
        url: text.to_string(),
        why,
    };
    let url = url::Url::parse(text.trim()).map_err(|e| refuse(PublicUrlProblem::Syntax(e)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse(PublicUrlProblem::Scheme));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse(PublicUrlProblem::NoHost));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(PublicUrlProblem::Credentials));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse(PublicUrlProblem::QueryOrFragment));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A public URL [`parse_public_url`] refuses, and why.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {why}")]
pub struct PublicUrlError {
    pub url: String,
    #[source]
    pub why: PublicUrlProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum PublicUrlProblem {
    #[error("{0}")]
    Syntax(url::ParseError),
    #[error("the scheme must be http or https")]
    Scheme,
    #[error("a host is required")]
    NoHost,
    #[error("credentials are not allowed")]
    Credentials,
    #[error("a query or fragment is not allowed")]
    QueryOrFragment,
}

/// The base of `links`: the public URL, else `http://<bound address>`, else (no server)
/// [`ROUTER_BASE_URL`].
pub fn base_url(config: &EdgeConfig, bound: Option<SocketAddr>) -> String {
    match (&config.public_url, bound) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => ROUTER_BASE_URL.to_string(),
    }
}

/// The edge as the router sees it: the resolved base URL, the body limit and the limiter.
#[derive(Debug)]
pub struct Edge {
    /// Scheme, host, port and path prefix of every `links` URL, without a trailing `/`.
    pub base_url: String,
    pub max_body_bytes: usize,
    limiter: Option<Arc<RateLimiter>>,
}

impl Edge {
    /// The edge of a server bound to `bound` (`None`: a router without a server, whose links
    /// start with [`ROUTER_BASE_URL`] unless a public URL is configured). The public URL must
    /// have passed [`parse_public_url`].
    pub fn new(config: &EdgeConfig, bound: Option<SocketAddr>) -> Self {
        Edge {
            base_url: base_url(config, bound),
            max_body_bytes: config.max_body_bytes,
            limiter: config.rate_limit.map(|l| Arc::new(RateLimiter::new(l))),
        }
    }
}

impl Default for Edge {
    fn default() -> Self {
        Edge::new(&EdgeConfig::default(), None)
    }
}

// ---------------------------------------------------------------------------------------------
// Before routing.

fn too_large_body(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "REQUEST_BODY_TOO_LARGE",
        format!("The request body is larger than {limit} bytes."),
    )
    .with_parameters([limit])
}

/// The Atlas error for a framing limit the request breaks, if any.
fn check_head(req: &Request, max_body_bytes: usize) -> Option<ApiError> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(
            ApiError::new(
                StatusCode::URI_TOO_LONG,
                "REQUEST_URI_TOO_LONG",
                format!("The request target is longer than {MAX_URI_BYTES} bytes."),
            )
            .with_parameters([MAX_URI_BYTES]),
        );
    }
    if header_bytes(req.headers()) > MAX_HEADER_BYTES {
        return Some(
            ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "REQUEST_HEADERS_TOO_LARGE",
                format!("The request headers are larger than {MAX_HEADER_BYTES} bytes."),
            )
            .with_parameters([MAX_HEADER_BYTES]),
        );
    }
    // The router's own answer to such a path is a plain-text 400 from the path extractor; the
    // target names nothing that could exist, so it is refused here, as JSON like every error.
    // ('/' never occurs inside a UTF-8 sequence, so the whole path decodes as UTF-8 exactly
    // when each of its segments does.)
    if percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8()
        .is_err()
    {
        return Some(ApiError::bad_request(
            "INVALID_PATH",
            "The request path is not UTF-8 once its percent-escapes are decoded.",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body_bytes as u64) {
        return Some(too_large_body(max_body_bytes));
    }
    None
}

/// The size of a header section as sent: `name: value\r\n` per field.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// The body limit of this request, for the 413 message of a body read in a handler.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The middleware around the whole router (see the module docs).
pub async fn guard(edge: Arc<Edge>, mut req: Request, next: Next) -> Response {
    if let Some(error) = check_head(&req, edge.max_body_bytes) {
        return error.into_response();
    }
    req.extensions_mut().insert(BodyLimit(edge.max_body_bytes));
    let quota = Arc::new(Mutex::new(None));
    if let Some(limiter) = &edge.limiter {
        req.extensions_mut().insert(RateGate {
            limiter: limiter.clone(),
            quota: quota.clone(),
        });
    }
    let mut response = next.run(req).await;
    // axum adds `Allow` to whatever the method fallback answers; only a 405 should say it.
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().remove(header::ALLOW);
    }
    let quota = *quota.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(quota) = quota {
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", u64::from(quota.limit)),
            ("ratelimit-remaining", u64::from(quota.remaining)),
            ("ratelimit-reset", quota.reset_seconds),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
    response
}

/// A wrong method on an existing path, once the caller is authenticated (and within its rate).
pub async fn method_not_allowed(_principal: Principal, method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("The method {method} is not allowed on this resource."),
    )
    .with_parameters([method.to_string()])
}

/// The answer to a request body that cannot be read: 413 over the limit, 408 when the client
/// paused longer than the idle timeout, 400 otherwise. `limit` is the request's [`BodyLimit`].
pub fn body_error(rejection: BytesRejection, limit: Option<BodyLimit>) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large_body(limit.map_or(DEFAULT_MAX_BODY_BYTES, |l| l.0));
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                "The request body was not received in time.",
            );
        }
        cause = e.source();
    }
    ApiError::bad_request(
        "INVALID_JSON",
        format!("Cannot read request body: {rejection}."),
    )
}

// ---------------------------------------------------------------------------------------------
// Rate limiting.

/// What one request left of its principal's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The bucket's size (`RateLimit-Limit`).
    pub limit: u32,
    /// Whole requests left (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_seconds: u64,
    /// `Some(seconds)` when this request was refused (`Retry-After`).
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Past this many buckets, full ones (idle principals) are dropped before adding another. The
/// map only ever holds authenticated principals, so it stays as small as the set of keys.
const PRUNE_AT: usize = 4096;

/// A token bucket per principal id, in this process's memory.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit: RateLimit {
                per_second: limit.per_second.max(1),
                burst: limit.burst.max(1),
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket.
    pub fn take(&self, key: &str) -> Quota {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: &str, now: Instant) -> Quota {
        let rate = f64::from(self.limit.per_second);
        let burst = f64::from(self.limit.burst);
        let level = |b: &Bucket| {
            (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(burst)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(key) {
            buckets.retain(|_, b| level(b) < burst);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = level(bucket);
        bucket.at = now;
        let retry_after = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        };
        Quota {
            limit: self.limit.burst,
            remaining: bucket.tokens.floor() as u32,
            reset_seconds: ((burst - bucket.tokens) / rate).ceil() as u64,
            retry_after,
        }
    }
}

/// The limiter and the slot for this request's quota, put in the request by [`guard`] and
/// used by the `Principal` extractor once the caller is known.
#[derive(Clone)]
pub struct RateGate {
    limiter: Arc<RateLimiter>,
    quota: Arc<Mutex<Option<Quota>>>,
}

impl RateGate {
    /// Takes one request from the principal's bucket: 429 `RATE_LIMITED` when it is empty.
    pub fn admit(&self, principal: &Principal) -> Result<(), ApiError> {
        let quota = self.limiter.take(&principal.id);
        *self.quota.lock().unwrap_or_else(|e| e.into_inner()) = Some(quota);
        match quota.retry_after {
            None => Ok(()),
            Some(seconds) => {
                let RateLimit { per_second, burst } = self.limiter.limit;
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    format!(
                        "Too many requests: this API key or service account may make {burst} \
                         requests at once and {per_second} per second after that. Retry after \
                         {seconds} seconds."
                    ),
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from(seconds)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_spends_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2,
            burst: 3,
        });
        let t0 = Instant::now();
        let q: Vec<Quota> = (0..4).map(|_| limiter.take_at("k", t0)).collect();
        assert_eq!(
            q.iter().map(|q| q.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert!(q[..3].iter().all(|q| q.retry_after.is_none()));
        assert_eq!(q[3].retry_after, Some(1));
        assert_eq!(q[3].limit, 3);
        assert_eq!(q[3].reset_seconds, 2, "3 tokens at 2/s");
        // Another key has its own bucket.
        assert!(limiter.take_at("other", t0).retry_after.is_none());
        // Half a second later one token is back.
        let q = limiter.take_at("k", t0 + Duration::from_millis(500));
        assert!(q.retry_after.is_none(), "{q:?}");
        assert_eq!(q.remaining, 0);
        // Long after, the bucket is full again (never more than the burst).
        let q = limiter.take_at("k", t0 + Duration::from_secs(60));
        assert_eq!((q.remaining, q.retry_after), (2, None));
    }

    #[test]
    fn idle_buckets_are_dropped_when_the_map_is_large() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 1000,
            burst: 1,
        });
        let t0 = Instant::now();
        for n in 0..PRUNE_AT {
            limiter.take_at(&format!("k{n}"), t0);
        }
        limiter.take_at("new", t0 + Duration::from_secs(1));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }

    #[test]
    fn public_urls_are_checked_and_normalized() {
        assert_eq!(
            parse_public_url("https://snapex.example.com/").unwrap(),
            "https://snapex.example.com"
        );
        assert_eq!(
            parse_public_url("http://10.0.0.1:8080/backup/").unwrap(),
            "http://10.0.0.1:8080/backup"
        );
        for bad in [
            "ftp://x",
            "snapex.example.com",
            "https://u:p@x",
            "https://x/?a=1",
            "https://x/#f",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
        let edge = Edge::new(&EdgeConfig::default(), Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(edge.base_url, "http://127.0.0.1:9");
        assert_eq!(Edge::default().base_url, ROUTER_BASE_URL);
    }

    #[test]
    fn framing_limits_are_checked_before_routing() {
        let req = |uri: &str, headers: &[(&str, String)]| {
            let mut b = Request::builder().uri(uri);
            for (k, v) in headers {
                b = b.header(*k, v);
            }
            b.body(axum::body::Body::empty()).unwrap()
        };
        assert!(check_head(&req("/a?b=c", &[]), 10).is_none());
        let long = format!("/{}", "a".repeat(MAX_URI_BYTES));
        assert_eq!(
            check_head(&req(&long, &[]), 10).unwrap().status,
            StatusCode::URI_TOO_LONG
        );
        let big = "v".repeat(MAX_HEADER_BYTES);
        assert_eq!(
            check_head(&req("/", &[("x-big", big)]), 10).unwrap().status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let e = check_head(&req("/", &[("content-length", "11".into())]), 10).unwrap();
        assert_eq!(
            (e.status, e.error_code.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "REQUEST_BODY_TOO_LARGE")
        );
        assert!(check_head(&req("/", &[("content-length", "10".into())]), 10).is_none());
    }
}
