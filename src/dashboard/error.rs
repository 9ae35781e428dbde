//! The dashboard's one error type and its HTML answer.
//!
//! A page that cannot be shown answers with the status the API would give for the same data
//! (its detail too: [`UiError::Api`] carries the API's error), rendered as a small page. Two
//! refusals are the dashboard's own: no session (a page redirects to the login form, an action
//! gets 403) and a form without the session's CSRF token (403).

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout;
use crate::api::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No session, or one that expired or whose key is gone. `next` is the page to return to
    /// after signing in (`None` for an action, which is refused instead).
    #[error("sign-in required")]
    LoginRequired { next: Option<String> },
    /// A POST without the session's CSRF token, or sent from another site.
    #[error("the form is not valid for this session")]
    Csrf,
    /// What the API answers for the same request (not found, forbidden, refused by a rule,
    /// or an internal failure already logged).
    #[error("{0}")]
    Api(ApiError),
}

impl UiError {
    /// No session: a page (GET) goes to the login form and comes back; anything else is
    /// refused.
    pub fn login_required(method: &Method, path_and_query: &str) -> Self {
        let next =
            (method == Method::GET || method == Method::HEAD).then(|| path_and_query.to_string());
        UiError::LoginRequired { next }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        UiError::Api(ApiError::not_found("RESOURCE_NOT_FOUND", detail))
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        UiError::Api(ApiError::bad_request("INVALID_PARAMETER", detail))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        UiError::Api(ApiError::internal(cause))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            UiError::LoginRequired { next: Some(_) } => StatusCode::SEE_OTHER,
            UiError::LoginRequired { next: None } | UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::Api(e) => e.status,
        }
    }
}

/// Store failures and every service error become the API's answer for them.
macro_rules! as_the_api_answers {
    ($($error:ty),+ $(,)?) => {
        $(impl From<$error> for UiError {
            fn from(e: $error) -> Self {
                UiError::Api(e.into())
            }
        })+
    };
}

as_the_api_answers!(
    ApiError,
    crate::auth::AuthError,
    crate::auth::Denied,
    crate::service::Invalid,
    crate::service::buckets::BucketError,
    crate::service::export_jobs::ExportJobError,
    crate::service::schedules::ScheduleError,
    crate::service::snapshots::SnapshotError,
    crate::store::StoreError,
);

/// Whether `next` is a dashboard page to return to after signing in (never another site).
pub fn safe_next(next: &str) -> bool {
    next.starts_with("/ui/") && !next.starts_with("//") && !next.contains('\\')
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (title, detail) = match &self {
            UiError::LoginRequired { next: Some(next) } => {
                let target = if safe_next(next) {
                    format!(
                        "/ui/login?next={}",
                        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                    )
                } else {
                    "/ui/login".to_string()
                };
                return Redirect::to(&target).into_response();
            }
            UiError::LoginRequired { next: None } => (
                "Sign-in required",
                "This action needs a signed-in session: sign in again.".to_string(),
            ),
            UiError::Csrf => (
                "Form expired",
                "This form does not belong to your session (it is old, or it came from another \
                 site). Reload the page and try again."
                    .to_string(),
            ),
            UiError::Api(e) => (
                match e.status {
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    s if s.is_server_error() => "Server error",
                    _ => "Refused",
                },
                e.detail.clone(),
            ),
        };
        let body = layout::bare_page(
            title,
            html! {
                section.error data-status=(status.as_u16()) {
                    h1 { (title) }
                    p { (detail) }
                    p { a href="/ui/" { "Back to the dashboard" } }
                }
            },
        );
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}

/// Any other `/ui/…` path.
pub async fn not_found() -> UiError {
    UiError::not_found("No such page.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_dashboard() {
        assert!(safe_next("/ui/groups/abc/jobs?state=Queued"));
        assert!(!safe_next("//evil.example/ui/"));
        assert!(!safe_next("https://evil.example/ui/"));
        assert!(!safe_next("/api/atlas/v2"));
        assert!(!safe_next("/ui/\\evil"));
    }

    #[test]
    fn a_page_redirects_to_the_login_and_an_action_is_refused() {
        let page = UiError::login_required(&Method::GET, "/ui/groups/g/jobs");
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
        let response = page.into_response();
        assert_eq!(
            response.headers().get(header::LOCATION).unwrap(),
            "/ui/login?next=%2Fui%2Fgroups%2Fg%2Fjobs"
        );
        let action = UiError::login_required(&Method::POST, "/ui/logout");
        assert_eq!(action.status(), StatusCode::FORBIDDEN);
        assert_eq!(UiError::Csrf.status(), StatusCode::FORBIDDEN);
    }
}
