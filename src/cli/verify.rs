//! `snapex verify` (being built).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {}

pub async fn run(_args: VerifyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("snapex verify is not built yet")
}
