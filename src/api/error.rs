//! The one API error type: every failure the HTTP layer reports becomes Atlas's error body
//! `{detail, error, errorCode, parameters, reason, badRequestDetail?}` with
//! `Content-Type: application/json` and an `X-Error-Code` header, as the recorded Atlas
//! responses show. 5xx details are logged, never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid field of a request body, with its JSON path (`export.frequencyType`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BadRequestDetail {
    pub fields: Vec<FieldViolation>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_code: String,
    pub detail: String,
    pub parameters: Vec<serde_json::Value>,
    pub bad_request_detail: Option<BadRequestDetail>,
    /// Extra response headers (`WWW-Authenticate` on a 401, for instance).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error_code: error_code.to_string(),
            detail: detail.into(),
            parameters: Vec::new(),
            bad_request_detail: None,
            headers: Vec::new(),
        }
    }

    pub fn with_parameters(
        mut self,
        parameters: impl IntoIterator<Item = impl Into<serde_json::Value>>,
    ) -> Self {
        self.parameters = parameters.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_field(mut self, field: impl Into<String>, description: impl Into<String>) -> Self {
        self.bad_request_detail
            .get_or_insert_with(|| BadRequestDetail { fields: Vec::new() })
            .fields
            .push(FieldViolation {
                field: field.into(),
                description: description.into(),
            });
        self
    }

    pub fn bad_request(error_code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error_code, detail)
    }

    pub fn not_found(error_code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error_code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "USER_UNAUTHORIZED", detail)
    }

    /// An unexpected failure: the cause is logged here and the client only learns that the
    /// server failed, so no internal detail (paths, SQL, credentials) ever leaks.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNEXPECTED_ERROR",
            "Unexpected error.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error_code,
            self.detail
        )
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    detail: &'a str,
    error: u16,
    error_code: &'a str,
    parameters: &'a [serde_json::Value],
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bad_request_detail: Option<&'a BadRequestDetail>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            detail: &self.detail,
            error: self.status.as_u16(),
            error_code: &self.error_code,
            parameters: &self.parameters,
            reason: self.status.canonical_reason().unwrap_or(""),
            bad_request_detail: self.bad_request_detail.as_ref(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(code) = HeaderValue::from_str(&self.error_code) {
            headers.insert("x-error-code", code);
        }
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}
