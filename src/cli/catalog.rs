//! `snapex catalog scan LOCATION`: what a backup location holds and what the catalog would
//! register, with the completeness rule's verdict per backup, without a server. The rule
//! needs two listings: the command lists, waits `--settle-seconds`, and lists again.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::export::StorageFlags;
use crate::service::catalog::{self, Verdict};
use crate::snapshot::SnapshotSource;
use crate::snapshot::catalog::{self as listing, BackupKind};
use crate::storage;

#[derive(clap::Subcommand, Debug)]
pub enum CatalogCommand {
    /// List a backup location and judge each backup by the completeness rule.
    Scan(ScanArgs),
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// The location: a PBM storage root, or a prefix with one mongodump directory or archive
    /// per backup (local path or storage URL).
    pub location: String,
    /// Seconds between the two listings the rule compares.
    #[arg(long, default_value_t = 2)]
    pub settle_seconds: u64,
    /// Print one JSON array on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub storage: StorageFlags,
}

pub async fn run(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    let CatalogCommand::Scan(args) = command;
    let location = storage::open(&args.location, &args.storage.options())
        .with_context(|| format!("opening {}", args.location))?;
    let first = listing::list(&location)
        .await
        .with_context(|| format!("listing {}", args.location))?;
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let second = listing::list(&location)
        .await
        .with_context(|| format!("listing {}", args.location))?;
    let mut judged = catalog::judge_listings(&first, &second);
    // Complete by the rule: would it open as a snapshot?
    for (backup, listed) in judged.iter_mut().zip(&second) {
        if backup.verdict != Verdict::Complete {
            continue;
        }
        let url = match (listed.kind, listed.replica_sets.first()) {
            (BackupKind::Pbm, Some(rs)) if listed.replica_sets.len() > 1 => {
                format!("{}/{rs}", listed.url)
            }
            _ => listed.url.clone(),
        };
        let opened = match storage::open(&url, &args.storage.options()) {
            Ok(part) => SnapshotSource::open(part)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(message) = opened {
            backup.verdict = Verdict::Unreadable(message);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&judged)?);
        return Ok(ExitCode::SUCCESS);
    }
    if judged.is_empty() {
        println!("no backups under {}", args.location);
    }
    for b in &judged {
        let verdict = match &b.verdict {
            Verdict::Complete => "register".to_string(),
            Verdict::Incomplete(reason) => format!("incomplete: {reason}"),
            Verdict::Changing => format!(
                "changing: not the same in two listings {}s apart",
                args.settle_seconds
            ),
            Verdict::Unreadable(reason) => format!("unreadable: {reason}"),
        };
        println!(
            "{}  {}  {}  {}  {} bytes  {}",
            b.name,
            b.kind.as_str(),
            b.taken_at
                .map_or("-".into(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            b.frequency_type.map_or("-", |f| f.as_str()),
            b.bytes,
            verdict
        );
    }
    Ok(ExitCode::SUCCESS)
}
