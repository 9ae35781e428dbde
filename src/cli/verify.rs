//! `snapex verify PREFIX_URL`: checks an export against its manifest; exits non-zero and lists
//! what is wrong when anything is.

use std::process::ExitCode;

use anyhow::Context;

use super::export::StorageFlags;
use crate::export::verify::verify;
use crate::storage;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The export prefix URL, e.g. file:///bucket/exported_snapshots/<org>/<project>/<cluster>/<date>/<ts>.
    pub prefix_url: String,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub storage: StorageFlags,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let location = storage::open(&args.prefix_url, &args.storage.options())
        .with_context(|| format!("opening {}", args.prefix_url))?;
    let report = verify(&location).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.is_ok() {
        println!(
            "ok: {} objects, {} documents, {} bytes match the manifest",
            report.objects_checked, report.documents, report.bytes
        );
    } else {
        println!(
            "FAILED: {} problem(s) in {} objects",
            report.problems.len(),
            report.objects_checked
        );
        for problem in &report.problems {
            println!("  {problem}");
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
