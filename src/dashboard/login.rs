//! Signing in and out, and the list of the caller's projects.
//!
//! The login form takes an API key pair (checked against the key's stored Digest HA1, as
//! Digest checks it: [`AuthService::verify_api_key_pair`](crate::auth::AuthService)) or a
//! service account's client id and secret (the OAuth client check). It is protected against
//! login CSRF by a double-submit token: a cookie of its own set with the form, which the
//! submitted form must repeat. A success starts a session and sets its cookie; a failure says
//! only that the credentials are not valid.

use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::safe_next;
use super::layout;
use super::need;
use super::session::{
    self, CSRF_FIELD, LOGIN_COOKIE, Post, SESSION_COOKIE, cookie, cookie_header, is_https,
    read_form, set_cookie, tokens_equal,
};
use super::{Dashboard, UiError, Viewer};
use crate::auth::{AuthError, Denied};

/// How long a login form stays valid.
const LOGIN_FORM_TTL: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn hidden(token: &str, next: Option<&str>) -> Markup {
    html! {
        input type="hidden" name=(CSRF_FIELD) value=(token);
        @if let Some(n) = next.filter(|n| safe_next(n)) {
            input type="hidden" name="next" value=(n);
        }
    }
}

fn login_page(token: &str, next: Option<&str>, error: Option<&str>) -> Markup {
    layout::bare_page(
        "Sign in",
        html! {
            section.login {
                h1 { "Sign in to snapex" }
                p.hint { "With an API key pair (as for " code { "curl --digest" } ") or a service account's client credentials. Nothing you type is stored: the session only remembers who signed in." }
                @if let Some(e) = error {
                    p.flash.error role="alert" data-flash="error" { (e) }
                }
                form.sign-in method="post" action="/ui/login" autocomplete="off" {
                    (hidden(token, next))
                    h2 { "API key" }
                    label { "Public key" input name="public_key" autocomplete="username" spellcheck="false" required; }
                    label { "Private key" input name="private_key" type="password" autocomplete="current-password" required; }
                    button type="submit" id="sign-in" { "Sign in" }
                }
                form.sign-in method="post" action="/ui/login" autocomplete="off" {
                    (hidden(token, next))
                    h2 { "Service account" }
                    label { "Client id" input name="client_id" spellcheck="false" required; }
                    label { "Client secret" input name="client_secret" type="password" required; }
                    button type="submit" id="sign-in-account" { "Sign in" }
                }
            }
        },
    )
}

/// The form with a fresh login token (in a cookie and in the form).
fn login_response(
    dashboard: &Dashboard,
    headers: &HeaderMap,
    uri: &Uri,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
) -> Result<Response, UiError> {
    // The token of a login form already open in another tab stays valid: a second form
    // reuses it rather than invalidating the first.
    let token = cookie(headers, LOGIN_COOKIE)
        .filter(|t| session::is_token(t))
        .map(str::to_string)
        .unwrap_or_else(session::random_token);
    let secure = is_https(headers, uri, dashboard);
    let set = cookie_header(set_cookie(
        LOGIN_COOKIE,
        &token,
        "/ui/login",
        LOGIN_FORM_TTL,
        secure,
    ))?;
    let mut response = (status, login_page(&token, next, error)).into_response();
    response.headers_mut().append(header::SET_COOKIE, set);
    Ok(response)
}

/// `GET /ui/login`.
pub async fn form(
    State(dashboard): State<Dashboard>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, UiError> {
    login_response(
        &dashboard,
        &headers,
        &uri,
        StatusCode::OK,
        query.next.as_deref(),
        None,
    )
}

/// `POST /ui/login`.
pub async fn submit(
    State(dashboard): State<Dashboard>,
    request: Request,
) -> Result<Response, UiError> {
    let headers = request.headers().clone();
    let uri = request.uri().clone();
    let form = read_form(request).await?;
    let token_ok = match (cookie(&headers, LOGIN_COOKIE), form.get(CSRF_FIELD)) {
        (Some(expected), Some(given)) => tokens_equal(expected, given),
        _ => false,
    };
    if !token_ok {
        return Err(UiError::Csrf);
    }
    let next = form.get("next").filter(|n| safe_next(n));
    let auth = &dashboard.auth;
    let outcome = match (
        form.get("public_key"),
        form.get("private_key"),
        form.get("client_id"),
        form.get("client_secret"),
    ) {
        (Some(public), Some(private), _, _) => auth.verify_api_key_pair(public, private).await,
        (None, None, Some(id), Some(secret)) => auth.verify_client_credentials(id, secret).await,
        _ => {
            return login_response(
                &dashboard,
                &headers,
                &uri,
                StatusCode::BAD_REQUEST,
                next,
                Some("Give a public and a private key, or a client id and a client secret."),
            );
        }
    };
    let principal = match outcome {
        Ok(p) => p,
        Err(AuthError::InvalidClient | AuthError::Denied(Denied::Unauthenticated { .. })) => {
            return login_response(
                &dashboard,
                &headers,
                &uri,
                StatusCode::UNAUTHORIZED,
                next,
                Some("These credentials are not valid."),
            );
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(principal_id = %principal.id, "dashboard sign-in");
    // A new session id at every sign-in; the one this browser had (if any) ends.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        dashboard.sessions.remove(old);
    }
    let id = dashboard
        .sessions
        .create(principal.kind.clone(), Instant::now());
    let secure = is_https(&headers, &uri, &dashboard);
    let mut response = Redirect::to(next.unwrap_or("/ui/")).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        cookie_header(set_cookie(
            SESSION_COOKIE,
            &id,
            "/ui",
            dashboard.options.session_max,
            secure,
        ))?,
    );
    cookies.append(
        header::SET_COOKIE,
        cookie_header(set_cookie(
            LOGIN_COOKIE,
            "",
            "/ui/login",
            Duration::ZERO,
            secure,
        ))?,
    );
    Ok(response)
}

/// `POST /ui/logout`: ends the session (a form with its CSRF token, like every action).
pub async fn logout(
    State(dashboard): State<Dashboard>,
    headers: HeaderMap,
    uri: Uri,
    post: Post,
) -> Result<Response, UiError> {
    dashboard.sessions.remove(&post.viewer.session_id);
    let secure = is_https(&headers, &uri, &dashboard);
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(set_cookie(
            SESSION_COOKIE,
            "",
            "/ui",
            Duration::ZERO,
            secure,
        ))?,
    );
    Ok(response)
}

/// `GET /ui`.
pub async fn to_home() -> Redirect {
    Redirect::permanent("/ui/")
}

/// `GET /ui/`: the projects the caller has a role in.
pub async fn home(State(dashboard): State<Dashboard>, viewer: Viewer) -> Result<Markup, UiError> {
    let mut projects = Vec::new();
    for id in viewer.principal.visible_group_ids() {
        if let Some(p) = dashboard.store.get_project(&id).await? {
            projects.push(p);
        }
    }
    let flash = viewer.take_flash(&dashboard);
    Ok(layout::viewer_page(
        "Projects",
        &viewer,
        flash,
        html! {
            h1 { "Projects" }
            @if projects.is_empty() {
                p { "This key has no role in any project." }
            } @else {
                ul.projects {
                    @for p in &projects {
                        @let start = if viewer.can(&p.id, need::READ_JOBS) { "jobs" } else { "snapshots" };
                        li {
                            a href={ "/ui/groups/" (p.id) "/" (start) } { (p.name) }
                            " "
                            span.id { (p.id) }
                            " — "
                            @let roles = viewer.principal.group_roles(&p.id);
                            @for (i, r) in roles.iter().enumerate() {
                                @if i > 0 { ", " }
                                (r.display_name())
                            }
                        }
                    }
                }
            }
        },
    ))
}
