//! `snapex serve` (being built).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {}

pub async fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("snapex serve is not built yet")
}
