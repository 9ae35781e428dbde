//! `snapex export` (being built).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {}

pub async fn run(_args: ExportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("snapex export is not built yet")
}
