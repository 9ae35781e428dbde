//! Test-only pause points: **not a feature**. When `SNAPEX_TEST_PAUSE_AT` names a [`Phase`]
//! (read once, at the first pause point reached), an export that reaches that phase announces
//! it on stderr (`snapex: paused at PHASE`) and waits there until the process is killed. The
//! crash tests use it to SIGKILL `snapex serve` at an exact point of an export (issue 10);
//! nothing else sets it, and unset (the default) every pause point is a no-op.

use std::sync::LazyLock;

/// The environment variable naming the phase to pause at.
pub const ENV: &str = "SNAPEX_TEST_PAUSE_AT";

/// The points of an export where a test can stop it, in the order an export passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `writing-data`: the first part of a multipart data file is uploaded, the file unfinished.
    WritingData,
    /// `after-data`: every data file is written, the manifest is not.
    AfterData,
    /// `after-manifest`: `.manifest.json` is written, `.complete` is not.
    AfterManifest,
    /// `after-complete`: `.complete` is written, the job's end is not recorded.
    AfterComplete,
    /// `recording`: inside the transaction that records the job `Successful`, before commit.
    Recording,
}

impl Phase {
    pub fn parse(text: &str) -> Option<Phase> {
        Some(match text {
            "writing-data" => Phase::WritingData,
            "after-data" => Phase::AfterData,
            "after-manifest" => Phase::AfterManifest,
            "after-complete" => Phase::AfterComplete,
            "recording" => Phase::Recording,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::WritingData => "writing-data",
            Phase::AfterData => "after-data",
            Phase::AfterManifest => "after-manifest",
            Phase::AfterComplete => "after-complete",
            Phase::Recording => "recording",
        }
    }
}

static CONFIGURED: LazyLock<Option<Phase>> =
    LazyLock::new(|| std::env::var(ENV).ok().and_then(|v| Phase::parse(v.trim())));

/// Whether the process was started to pause at `phase`.
pub fn armed(phase: Phase) -> bool {
    *CONFIGURED == Some(phase)
}

fn announce(phase: Phase) {
    eprintln!("snapex: paused at {} ({ENV})", phase.as_str());
}

/// Waits forever when the process was started to pause at `phase`; returns at once otherwise.
pub async fn at(phase: Phase) {
    if armed(phase) {
        announce(phase);
        std::future::pending::<()>().await;
    }
}

/// [`at`] for a blocking thread (the export's writer threads).
pub fn blocking_at(phase: Phase) {
    if armed(phase) {
        announce(phase);
        loop {
            std::thread::park();
        }
    }
}
