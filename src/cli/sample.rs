//! `snapex sample DIR --size 200MiB`: a deterministic mongodump directory of varied documents
//! using every BSON type, for trying snapex out and for benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::snapshot::generate::{SampleSpec, write_sample_dump};

#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// Directory to write the dump into (created if needed).
    pub dir: PathBuf,
    /// Approximate total size of the BSON files (suffixes: KiB, MiB, GiB).
    #[arg(long, default_value = "64MiB", value_parser = super::export::parse_size)]
    pub size: u64,
    /// Seed: the same seed and size give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let spec = SampleSpec {
        target_bytes: args.size,
        seed: args.seed,
    };
    let dir = args.dir.clone();
    let stats = tokio::task::spawn_blocking(move || write_sample_dump(&dir, &spec))
        .await
        .context("sample generator failed")?
        .with_context(|| format!("writing the sample dump to {}", args.dir.display()))?;
    println!(
        "wrote {} documents ({} measurements in time-series buckets), {} bytes of BSON in {} collections to {}",
        stats.documents,
        stats.measurements,
        stats.bson_bytes,
        stats.collections.len(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
