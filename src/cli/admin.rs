//! `snapex orgs|projects|keys|service-accounts`: administrative commands on the metadata store.

use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum OrgsCommand {}
#[derive(clap::Subcommand, Debug)]
pub enum ProjectsCommand {}
#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {}
#[derive(clap::Subcommand, Debug)]
pub enum ServiceAccountsCommand {}

pub async fn orgs(cmd: OrgsCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
pub async fn projects(cmd: ProjectsCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
pub async fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
pub async fn service_accounts(cmd: ServiceAccountsCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
