//! The page frame (header, project navigation, sign-out, flash), the static assets, the
//! security headers of every dashboard answer, and the small formatters the pages share.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::session::{CSRF_FIELD, Flash, Viewer};
use crate::store::{JobState, Project};

const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLESHEET: &str = include_str!("assets/dashboard.css");
/// Changes with every release, so browsers fetch new assets after an upgrade.
const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The content security policy: only this server's own script and stylesheet, no inline
/// code, no framing, forms only to this server.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// Adds the security headers to every dashboard answer; pages are never cached (they show
/// live data and CSRF tokens).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

/// The pages of a project, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Jobs,
    Snapshots,
    Buckets,
    Nodes,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::Jobs, Tab::Snapshots, Tab::Buckets, Tab::Nodes];

    fn label(self) -> &'static str {
        match self {
            Tab::Jobs => "Export jobs",
            Tab::Snapshots => "Snapshots",
            Tab::Buckets => "Buckets",
            Tab::Nodes => "Nodes",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Tab::Jobs => "jobs",
            Tab::Snapshots => "snapshots",
            Tab::Buckets => "buckets",
            Tab::Nodes => "nodes",
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · snapex" }
            // No favicon request (it would reach the API's 404).
            link rel="icon" href="data:,";
            link rel="stylesheet" href={ "/ui/static/dashboard.css?v=" (ASSET_VERSION) };
            script src={ "/ui/static/dashboard.js?v=" (ASSET_VERSION) } defer {}
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(viewer.csrf); }
}

fn flash_box(flash: &Option<Flash>) -> Markup {
    html! {
        @if let Some(f) = flash {
            p.flash.ok[f.ok].error[!f.ok] role="status" data-flash=(if f.ok { "ok" } else { "error" }) { (f.text) }
        }
    }
}

fn header_bar(viewer: &Viewer, project: Option<&Project>) -> Markup {
    html! {
        header.top {
            a.brand href="/ui/" { "snapex" }
            @if let Some(p) = project {
                span.project title=(p.id) { (p.name) }
            }
            span.who {
                (viewer.label())
                @if let Some(p) = project {
                    " · "
                    @let roles = viewer.principal.group_roles(&p.id);
                    @for (i, role) in roles.iter().enumerate() {
                        @if i > 0 { ", " }
                        (role.display_name())
                    }
                }
            }
            form.logout method="post" action="/ui/logout" {
                (csrf_field(viewer))
                button type="submit" { "Sign out" }
            }
        }
    }
}

/// A page of a project: header, the project's tabs, the flash, then `body`.
pub fn project_page(
    title: &str,
    viewer: &Viewer,
    project: &Project,
    tab: Tab,
    flash: Option<Flash>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                (header_bar(viewer, Some(project)))
                nav.tabs {
                    @for t in Tab::ALL {
                        a.active[t == tab] href={ "/ui/groups/" (project.id) "/" (t.path()) } { (t.label()) }
                    }
                }
                main {
                    (flash_box(&flash))
                    (body)
                }
            }
        }
    }
}

/// A page outside a project (the project list).
pub fn viewer_page(title: &str, viewer: &Viewer, flash: Option<Flash>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                (header_bar(viewer, None))
                main {
                    (flash_box(&flash))
                    (body)
                }
            }
        }
    }
}

/// A page without a signed-in caller (login, errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/ui/" { "snapex" } }
                main { (body) }
            }
        }
    }
}

/// A timestamp as `2026-08-10 03:28:25 UTC` in a `<time>` element.
pub fn time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(crate::api::iso(t)) { (t.format("%Y-%m-%d %H:%M:%S UTC")) }
    }
}

pub fn maybe_time(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.none { "—" } },
    }
}

/// Bytes in binary units (`12.3 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration as a person reads it (`4 s`, `2 min 5 s`, `3 h 12 min`).
pub fn duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A job state as a badge.
pub fn state_badge(state: JobState) -> Markup {
    html! {
        span class={ "state state-" (state.as_str()) } { (state.as_str()) }
    }
}

/// A number with thousands separators (`1,234,567`).
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(duration(chrono::Duration::seconds(4)), "4 s");
        assert_eq!(duration(chrono::Duration::seconds(125)), "2 min 5 s");
        assert_eq!(
            duration(chrono::Duration::seconds(3 * 3600 + 720)),
            "3 h 12 min"
        );
        assert_eq!(duration(chrono::Duration::seconds(-3)), "0 s");
    }

    #[test]
    fn names_are_escaped() {
        let page = bare_page("<script>", html! { p { "<b>x</b>" } }).into_string();
        assert!(!page.contains("<script>·"));
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
