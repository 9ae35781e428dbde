//! OAuth 2.0 client credentials for service accounts (RFC 6749 §4.4) and token revocation
//! (RFC 7009): `POST /api/oauth/token` and `POST /api/oauth/revoke`.
//!
//! This file is the HTTP side only (form and Basic parsing, the RFC 6749 answers); checking
//! the client, issuing and revoking tokens is [`AuthService`]'s.
//!
//! The client authenticates with HTTP Basic (what the Atlas SDKs and `golang.org/x/oauth2`
//! send first) or with `client_id`/`client_secret` form fields. Errors on these two endpoints
//! use the RFC 6749 body `{error, error_description}` rather than Atlas's error body, because
//! OAuth client libraries parse that shape.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::edge::{BodyLimit, body_error};
use super::error::ErrorBody;
use crate::auth::digest::REALM;
use crate::auth::{AuthError, AuthService};

/// The OAuth routes, for any router state from which an [`AuthService`] can be taken.
pub fn routes<S>() -> OpenApiRouter<S>
where
    AuthService: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(token))
        .routes(routes!(revoke))
}

/// The form of `POST /api/oauth/token` (RFC 6749 §4.4.2). The handler reads the form itself
/// ([`Form`]): this type is its documentation.
#[derive(ToSchema)]
#[schema(as = OAuthTokenRequest)]
#[allow(dead_code)]
struct TokenForm {
    /// Only `client_credentials`.
    #[schema(pattern = "^client_credentials$")]
    grant_type: String,
    /// The service account's client id, when not sent with HTTP Basic.
    client_id: Option<String>,
    /// The service account's client secret, when not sent with HTTP Basic.
    #[schema(write_only)]
    client_secret: Option<String>,
}

/// The form of `POST /api/oauth/revoke` (RFC 7009 §2.1); documentation, as [`TokenForm`].
#[derive(ToSchema)]
#[schema(as = OAuthRevokeRequest)]
#[allow(dead_code)]
struct RevokeForm {
    /// The access token to revoke.
    token: String,
    /// The service account's client id, when not sent with HTTP Basic.
    client_id: Option<String>,
    /// The service account's client secret, when not sent with HTTP Basic.
    #[schema(write_only)]
    client_secret: Option<String>,
}

/// The one token type issued.
#[derive(Serialize, ToSchema)]
#[schema(as = OAuthTokenType)]
enum TokenType {
    Bearer,
}

/// An access token (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
#[schema(as = OAuthToken)]
struct TokenResponse<'a> {
    /// The bearer token, for `Authorization: Bearer …` on the Admin API.
    #[schema(value_type = String)]
    access_token: &'a str,
    token_type: TokenType,
    /// Seconds the token is valid for.
    #[schema(minimum = 0)]
    expires_in: u64,
}

/// The RFC 6749 §5.2 error codes these endpoints answer with.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
    ServerError,
}

/// An RFC 6749 §5.2 error body (what OAuth client libraries parse).
#[derive(Serialize, ToSchema)]
#[schema(as = OAuthError)]
struct OAuthErrorBody<'a> {
    error: OAuthErrorCode,
    #[schema(value_type = String)]
    error_description: &'a str,
}

/// An RFC 6749 §5.2 error.
struct OAuthError {
    status: StatusCode,
    error: OAuthErrorCode,
    description: String,
    /// The client tried HTTP Basic: a 401 must then carry a Basic challenge.
    basic_challenge: bool,
}

impl OAuthError {
    fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: OAuthErrorCode::InvalidRequest,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_client(basic: bool) -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: OAuthErrorCode::InvalidClient,
            description: "client authentication failed".into(),
            basic_challenge: basic,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&OAuthErrorBody {
            error: self.error,
            error_description: &self.description,
        })
        .unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.basic_challenge {
                format!("Basic realm=\"{REALM}\"")
            } else {
                format!("Bearer realm=\"{REALM}\"")
            };
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}

fn from_auth_error(e: AuthError, basic: bool) -> OAuthError {
    match e {
        AuthError::InvalidClient => OAuthError::invalid_client(basic),
        other => {
            tracing::error!(error = %other, "oauth endpoint failed");
            OAuthError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                error: OAuthErrorCode::ServerError,
                description: "unexpected error".into(),
                basic_challenge: false,
            }
        }
    }
}

/// The decoded form body.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        // RFC 6749 §3.2: parameters must not be repeated.
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(other, _)| other == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} is repeated"
                )));
            }
        }
        Ok(Form(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Client credentials from HTTP Basic (percent-decoded, RFC 6749 §2.3.1) or the form; the flag
/// says whether Basic was used.
fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<(String, String, bool), OAuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| OAuthError::invalid_client(true))?;
        let (scheme, encoded) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| OAuthError::invalid_client(true))?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::invalid_client(true));
        }
        let decoded = STANDARD
            .decode(encoded.trim())
            .map_err(|_| OAuthError::invalid_client(true))?;
        let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client(true))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client(true))?;
        let unescape = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        return Ok((unescape(id), unescape(secret), true));
    }
    match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string(), false)),
        _ => Err(OAuthError::invalid_client(false)),
    }
}

/// OAuth 2.0 client credentials (RFC 6749 §4.4): a one-hour bearer token for a service
/// account. The client authenticates with HTTP Basic (`client_secret_basic`) or with
/// `client_id` and `client_secret` in the form (`client_secret_post`).
#[utoipa::path(
    post,
    path = "/api/oauth/token",
    operation_id = "oauthToken",
    tag = "Service Accounts",
    security(("ClientSecretBasic" = []), ()),
    request_body(content((TokenForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The token", content(
            (TokenResponse = "application/json"),
        ), headers(
            ("Cache-Control" = String, description = "`no-store` (RFC 6749 §5.1)"),
            ("Pragma" = String, description = "`no-cache`"),
        )),
        (status = 400, description = "`invalid_request` (not a form, a parameter missing or repeated) \
            or `unsupported_grant_type`", content((OAuthErrorBody = "application/json"))),
        (status = 401, description = "`invalid_client`: unknown client or wrong secret (a Basic \
            challenge when Basic was used)", content((OAuthErrorBody = "application/json")), headers(
            ("WWW-Authenticate" = String, description = "`Basic` (Basic was used) or `Bearer`"),
        )),
        (status = 408, description = "The request body did not arrive in time", content(
            (ErrorBody = "application/json"),
        )),
        (status = 413, description = "The request body is over the server's limit", content(
            (ErrorBody = "application/json"),
        )),
        (status = 500, description = "`server_error`", content((OAuthErrorBody = "application/json"))),
    ),
)]
async fn token(
    State(auth): State<AuthService>,
    limit: Option<Extension<BodyLimit>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = match body {
        Ok(body) => body,
        // Too large or stalled: the edge's answer, as on every other path.
        Err(e) => return Ok(body_error(e, limit.map(|l| l.0)).into_response()),
    };
    let form = Form::parse(&headers, &body)?;
    match form.get("grant_type") {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError {
                status: StatusCode::BAD_REQUEST,
                error: OAuthErrorCode::UnsupportedGrantType,
                description: "only client_credentials is supported".into(),
                basic_challenge: false,
            });
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    }
    let (client_id, client_secret, basic) = client_credentials(&headers, &form)?;
    let issued = auth
        .issue_token(&client_id, &client_secret)
        .await
        .map_err(|e| from_auth_error(e, basic))?;
    let body = serde_json::to_vec(&TokenResponse {
        access_token: &issued.access_token,
        token_type: TokenType::Bearer,
        expires_in: issued.expires_in,
    })
    .unwrap_or_default();
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // RFC 6749 §5.1: token responses must not be cached.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Token revocation (RFC 7009): removes the token if it belongs to the authenticated client;
/// a token that is unknown is not an error (RFC 7009 §2.2). The client authenticates as for
/// `/api/oauth/token`.
#[utoipa::path(
    post,
    path = "/api/oauth/revoke",
    operation_id = "oauthRevoke",
    tag = "Service Accounts",
    security(("ClientSecretBasic" = []), ()),
    request_body(content((RevokeForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Revoked (no body)"),
        (status = 400, description = "`invalid_request` (not a form, `token` missing, a parameter \
            repeated)", content((OAuthErrorBody = "application/json"))),
        (status = 401, description = "`invalid_client`: unknown client or wrong secret (a Basic \
            challenge when Basic was used)", content((OAuthErrorBody = "application/json")), headers(
            ("WWW-Authenticate" = String, description = "`Basic` (Basic was used) or `Bearer`"),
        )),
        (status = 408, description = "The request body did not arrive in time", content(
            (ErrorBody = "application/json"),
        )),
        (status = 413, description = "The request body is over the server's limit", content(
            (ErrorBody = "application/json"),
        )),
        (status = 500, description = "`server_error`", content((OAuthErrorBody = "application/json"))),
    ),
)]
async fn revoke(
    State(auth): State<AuthService>,
    limit: Option<Extension<BodyLimit>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = match body {
        Ok(body) => body,
        // Too large or stalled: the edge's answer, as on every other path.
        Err(e) => return Ok(body_error(e, limit.map(|l| l.0)).into_response()),
    };
    let form = Form::parse(&headers, &body)?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?
        .to_string();
    let (client_id, client_secret, basic) = client_credentials(&headers, &form)?;
    auth.revoke_token(&client_id, &client_secret, &token)
        .await
        .map_err(|e| from_auth_error(e, basic))?;
    Ok(StatusCode::OK.into_response())
}
