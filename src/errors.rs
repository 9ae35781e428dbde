//! Rendering an error with its causes, one line, for job `stateReason`s and logs (the CLI
//! prints the same chain as `caused by:` lines).

/// `e` and each of its sources, `: `-separated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        // A wrapper that already prints its cause (`#[error("…: {0}")]`) is not repeated.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
