//! Sessions, their cookie, and the CSRF check of every form.
//!
//! A session is created by a successful sign-in and names who signed in ([`PrincipalKind`]: a
//! public key or a client id, neither secret) with a CSRF token of its own; it holds no
//! credential. The cookie carries a random 256-bit id; the node keeps only its SHA-256, so
//! the session table holds nothing a cookie could be made from. Sessions live in this node's
//! memory: a restart signs everyone out, and several nodes behind one address need sticky
//! sessions (see the module docs of `dashboard`).
//!
//! Expiry: a session ends after [`Options::session_idle`](super::Options) without a request,
//! and [`Options::session_max`](super::Options) after sign-in whatever happens; sign-out ends
//! it at once.
//!
//! Extractors: [`Viewer`] (a signed-in caller, its roles reloaded from the store on every
//! request) for pages, and [`Post`] for actions — which also reads the form and refuses it
//! (403) unless it carries the session's CSRF token, so no action handler can forget the check.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Dashboard, UiError};
use crate::auth::{Principal, PrincipalKind};

/// The session cookie (path `/ui`).
pub const SESSION_COOKIE: &str = "snapex_session";
/// The login form's own CSRF cookie (path `/ui/login`): double-submit, as there is no session
/// yet.
pub const LOGIN_COOKIE: &str = "snapex_login";
/// The form field every POST carries.
pub const CSRF_FIELD: &str = "csrf";
/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Sessions a node keeps at most; past it a sign-in forgets the least recently used one.
const MAX_SESSIONS: usize = 10_000;

/// A one-shot message shown on the next page after an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Flash {
            ok: true,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Flash {
            ok: false,
            text: text.into(),
        }
    }
}

struct Session {
    who: PrincipalKind,
    csrf: String,
    created: Instant,
    last_seen: Instant,
    flash: Option<Flash>,
}

/// What a request learns of its session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub who: PrincipalKind,
    pub csrf: String,
}

/// This node's sessions, by the SHA-256 of their id.
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    max: Duration,
    capacity: usize,
}

/// 256 random bits, base64url: session ids, CSRF and login tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `text` looks like a token of [`random_token`] (43 base64url characters).
pub fn is_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub fn new(idle: Duration, max: Duration) -> Self {
        Self::with_capacity(idle, max, MAX_SESSIONS)
    }

    fn with_capacity(idle: Duration, max: Duration, capacity: usize) -> Self {
        Sessions {
            table: Mutex::new(HashMap::new()),
            idle,
            max,
            capacity,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn alive(&self, session: &Session, now: Instant) -> bool {
        now.saturating_duration_since(session.last_seen) < self.idle
            && now.saturating_duration_since(session.created) < self.max
    }

    /// A new session for `who`; returns its id (the cookie's value).
    pub fn create(&self, who: PrincipalKind, now: Instant) -> String {
        let id = random_token();
        let mut table = self.table();
        // Sign-ins are rare next to requests: a good moment to forget the expired.
        table.retain(|_, s| self.alive(s, now));
        if table.len() >= self.capacity
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k)
        {
            table.remove(&oldest);
        }
        table.insert(
            key_of(&id),
            Session {
                who,
                csrf: random_token(),
                created: now,
                last_seen: now,
                flash: None,
            },
        );
        id
    }

    /// The session `id` when it is alive (and it is used now); an expired one is forgotten.
    pub fn get(&self, id: &str, now: Instant) -> Option<SessionInfo> {
        let key = key_of(id);
        let mut table = self.table();
        let alive = self.alive(table.get(&key)?, now);
        if !alive {
            table.remove(&key);
            return None;
        }
        let session = table.get_mut(&key)?;
        session.last_seen = now;
        Some(SessionInfo {
            who: session.who.clone(),
            csrf: session.csrf.clone(),
        })
    }

    /// Ends the session `id` (sign-out, or a key deleted since sign-in).
    pub fn remove(&self, id: &str) {
        self.table().remove(&key_of(id));
    }

    /// Leaves a message for the session's next page.
    pub fn flash(&self, id: &str, flash: Flash) {
        if let Some(session) = self.table().get_mut(&key_of(id)) {
            session.flash = Some(flash);
        }
    }

    /// The message left for this page, once.
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.table().get_mut(&key_of(id))?.flash.take()
    }

    /// How many sessions the node holds (expired ones not yet forgotten included).
    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over https: through a proxy that says so, or because the
/// configured public URL is https. (A client that claims https over plain http only makes
/// its own cookie stricter.)
pub fn is_https(parts_headers: &HeaderMap, uri: &axum::http::Uri, dashboard: &Dashboard) -> bool {
    dashboard.options.public_url_is_https()
        || uri.scheme_str() == Some("https")
        || parts_headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` when `secure`; `max_age`
/// zero deletes the cookie.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration, secure: bool) -> String {
    let mut cookie = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict",
        max_age.as_secs()
    );
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A cookie header value; the values built here are base64url and fixed text.
pub fn cookie_header(value: String) -> Result<HeaderValue, UiError> {
    HeaderValue::try_from(value).map_err(UiError::internal)
}

/// Tokens compared in constant time.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in caller: the session and the principal it names, with the roles it has now.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub principal: Principal,
    /// The session id (the cookie's value), to leave a flash or sign out.
    pub session_id: String,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
}

impl Viewer {
    /// Who is signed in, as the header shows it (a public key or a client id).
    pub fn label(&self) -> String {
        match &self.principal.kind {
            PrincipalKind::ApiKey { public_key } => format!("API key {public_key}"),
            PrincipalKind::ServiceAccount { client_id } => format!("service account {client_id}"),
        }
    }

    /// Whether the caller may do what needs `role` in the project (to show its button).
    pub fn can(&self, group_id: &str, role: crate::auth::Role) -> bool {
        self.principal.has_group_role(group_id, role)
    }

    pub fn flash(&self, dashboard: &Dashboard, flash: Flash) {
        dashboard.sessions.flash(&self.session_id, flash);
    }

    pub fn take_flash(&self, dashboard: &Dashboard) -> Option<Flash> {
        dashboard.sessions.take_flash(&self.session_id)
    }
}

impl FromRequestParts<Dashboard> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, dashboard: &Dashboard) -> Result<Self, UiError> {
        let target = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/ui/");
        let refused = || UiError::login_required(&parts.method, target);
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(refused());
        };
        let Some(session) = dashboard.sessions.get(id, Instant::now()) else {
            return Err(refused());
        };
        let Some(principal) = dashboard.auth.principal_of(&session.who).await? else {
            dashboard.sessions.remove(id);
            return Err(refused());
        };
        Ok(Viewer {
            principal,
            session_id: id.to_string(),
            csrf: session.csrf,
        })
    }
}

/// A submitted form's fields, in order (a name may repeat).
#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        FormData(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `name`, untrimmed, empty ones included.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Reads a form body (urlencoded, at most 64 KiB).
pub async fn read_form(request: Request) -> Result<FormData, UiError> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(UiError::bad_request("expected a form"));
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| UiError::bad_request("the form is too large"))?;
    Ok(FormData::parse(&body))
}

/// An action: a signed-in caller and its form, whose CSRF token has been checked.
pub struct Post {
    pub viewer: Viewer,
    pub form: FormData,
}

impl FromRequest<Dashboard> for Post {
    type Rejection = UiError;

    async fn from_request(request: Request, dashboard: &Dashboard) -> Result<Self, UiError> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, dashboard).await?;
        // A browser says when a request comes from another site; SameSite=Strict keeps the
        // cookie off it anyway, and the token check below holds for any client.
        let cross_site = parts
            .headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
        if cross_site {
            return Err(UiError::Csrf);
        }
        let form = read_form(Request::from_parts(parts, body)).await?;
        match form.get(CSRF_FIELD) {
            Some(token) if tokens_equal(token, &viewer.csrf) => Ok(Post { viewer, form }),
            _ => Err(UiError::Csrf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> PrincipalKind {
        PrincipalKind::ApiKey {
            public_key: "abcdefgh".into(),
        }
    }

    #[test]
    fn a_session_ends_when_idle_too_long_or_too_old() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(300));
        let t0 = Instant::now();
        let id = sessions.create(who(), t0);
        let info = sessions.get(&id, t0 + Duration::from_secs(59)).unwrap();
        assert_eq!(info.who, who());
        // Used at 59 s: idle counts from there.
        assert!(sessions.get(&id, t0 + Duration::from_secs(118)).is_some());
        assert!(sessions.get(&id, t0 + Duration::from_secs(179)).is_none());
        assert!(sessions.is_empty(), "an expired session is forgotten");

        let id = sessions.create(who(), t0);
        for s in (50..300).step_by(50) {
            assert!(sessions.get(&id, t0 + Duration::from_secs(s)).is_some());
        }
        assert!(
            sessions.get(&id, t0 + Duration::from_secs(300)).is_none(),
            "used all along, still ended at the absolute limit"
        );
    }

    #[test]
    fn sessions_are_kept_by_hash_and_end_at_sign_out() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(300));
        let t0 = Instant::now();
        let a = sessions.create(who(), t0);
        let b = sessions.create(who(), t0);
        assert_ne!(a, b);
        let (ca, cb) = (
            sessions.get(&a, t0).unwrap().csrf,
            sessions.get(&b, t0).unwrap().csrf,
        );
        assert_ne!(ca, cb, "each session has its own csrf token");
        assert!(sessions.get("not-a-session", t0).is_none());
        // The table is keyed by the id's hash: the cookie value itself is not kept.
        assert!(sessions.table().contains_key(&key_of(&a)));
        sessions.flash(&a, Flash::ok("done"));
        assert_eq!(sessions.take_flash(&a), Some(Flash::ok("done")));
        assert_eq!(sessions.take_flash(&a), None);
        sessions.remove(&a);
        assert!(sessions.get(&a, t0).is_none());
        assert!(sessions.get(&b, t0).is_some());
    }

    #[test]
    fn a_full_table_forgets_the_least_recently_used_session() {
        let sessions =
            Sessions::with_capacity(Duration::from_secs(60), Duration::from_secs(300), 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let ids: Vec<String> = (0..3).map(|s| sessions.create(who(), at(s))).collect();
        assert!(
            sessions.get(&ids[0], at(3)).is_some(),
            "the oldest, used again"
        );
        let newest = sessions.create(who(), at(4));
        assert_eq!(sessions.len(), 3);
        assert!(
            sessions.get(&ids[1], at(5)).is_none(),
            "the least recently used went"
        );
        for id in [&ids[0], &ids[2], &newest] {
            assert!(sessions.get(id, at(5)).is_some());
        }
    }

    #[test]
    fn cookies_are_found_among_others_and_set_strictly() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; snapex_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("snapex_login=t"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("t"));
        assert_eq!(cookie(&headers, "b"), None);
        let c = set_cookie(SESSION_COOKIE, "xyz", "/ui", Duration::from_secs(60), true);
        assert_eq!(
            c,
            "snapex_session=xyz; Path=/ui; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!set_cookie("a", "b", "/", Duration::ZERO, false).contains("Secure"));
    }

    #[test]
    fn form_fields_repeat_and_trim() {
        let form = FormData::parse(b"csrf=t&key=a&value=1&key=&value=&key=b+c&value=%3D");
        assert_eq!(form.get("csrf"), Some("t"));
        assert_eq!(form.all("key"), ["a", "", "b c"]);
        assert_eq!(form.all("value"), ["1", "", "="]);
        assert_eq!(form.get("missing"), None);
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "ab"));
        assert!(is_token(&random_token()));
        assert!(!is_token("short"));
        assert!(!is_token(&"=".repeat(43)));
    }
}
