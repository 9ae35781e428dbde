//! Live fragments over Server-Sent Events.
//!
//! A live page has an element with `data-live="<fragment URL>"`; the script opens an
//! `EventSource` on it and replaces the element's content with each `fragment` event. The
//! server side is [`stream`]: every [`Options::live_every`](super::Options) it checks that the
//! session is still alive, reloads the caller (a deleted key or a withdrawn role ends the
//! stream), renders the fragment with the caller's roles as they are now, and sends it only
//! when it differs from the last one sent. Events:
//! - `fragment`: the new HTML of the element;
//! - `expired`: the session ended (the script goes to the login page);
//! - `end`: the fragment cannot be shown any more (its data text says why).
//!
//! A stream ends by itself after [`Options::live_lifetime`](super::Options) (and at once when
//! the server shuts down): the browser's `EventSource` reconnects on its own, after the
//! `retry` the first event sets, and the new stream starts with the current fragment. So no
//! open page holds a connection that a graceful shutdown would wait for.
//!
//! Polling the store once a second per open page was chosen over a change feed: the job
//! engine already writes progress at its heartbeat (once a second), both engines answer these
//! reads in well under a millisecond, and it needs no notification channel across nodes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use maud::Markup;

use super::{Dashboard, UiError, Viewer};

/// Renders a fragment for the caller as it is now.
pub type Render = Arc<
    dyn Fn(Dashboard, Viewer) -> Pin<Box<dyn Future<Output = Result<Markup, UiError>> + Send>>
        + Send
        + Sync,
>;

/// Milliseconds the browser waits before reconnecting a stream that ended.
const RETRY: Duration = Duration::from_millis(500);

struct Cursor {
    dashboard: Dashboard,
    started: Instant,
    session_id: String,
    render: Render,
    last: Option<String>,
    first: bool,
    done: bool,
}

/// The event stream of a live fragment for `viewer`'s session.
pub fn stream(
    dashboard: Dashboard,
    viewer: Viewer,
    render: Render,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let cursor = Cursor {
        dashboard,
        started: Instant::now(),
        session_id: viewer.session_id,
        render,
        last: None,
        first: true,
        done: false,
    };
    let events = futures::stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        loop {
            if !c.first {
                let options = &c.dashboard.options;
                if c.started.elapsed() >= options.live_lifetime {
                    return None;
                }
                let shutdown = options.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(options.live_every) => {}
                    _ = async move {
                        match shutdown {
                            Some(token) => token.cancelled().await,
                            None => std::future::pending().await,
                        }
                    } => return None,
                }
            }
            c.first = false;
            let session = c.dashboard.sessions.get(&c.session_id, Instant::now());
            let principal = match &session {
                Some(s) => c.dashboard.auth.principal_of(&s.who).await,
                None => Ok(None),
            };
            let (principal, csrf) = match (principal, session) {
                (Ok(Some(p)), Some(s)) => (p, s.csrf),
                (Ok(_), _) => {
                    c.done = true;
                    return Some((Ok(Event::default().event("expired").data("signed out")), c));
                }
                (Err(e), _) => {
                    tracing::warn!(error = %crate::errors::chain(&e), "live fragment: cannot load the caller");
                    continue;
                }
            };
            let viewer = Viewer {
                principal,
                session_id: c.session_id.clone(),
                csrf,
            };
            match (c.render)(c.dashboard.clone(), viewer).await {
                Ok(markup) => {
                    // A carriage return cannot travel in an SSE field; newlines are split
                    // into data lines and joined again by the browser.
                    let html = markup.into_string().replace('\r', "");
                    if c.last.as_deref() != Some(html.as_str()) {
                        let mut event = Event::default().event("fragment").data(&html);
                        if c.last.is_none() {
                            event = event.retry(RETRY);
                        }
                        c.last = Some(html);
                        return Some((Ok(event), c));
                    }
                }
                Err(e) => {
                    c.done = true;
                    let why = match &e {
                        UiError::Api(api) => api.detail.clone(),
                        other => other.to_string(),
                    };
                    return Some((Ok(Event::default().event("end").data(why)), c));
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Boxes a render function.
pub fn render<F, Fut>(f: F) -> Render
where
    F: Fn(Dashboard, Viewer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Markup, UiError>> + Send + 'static,
{
    Arc::new(move |d, p| Box::pin(f(d, p)))
}
