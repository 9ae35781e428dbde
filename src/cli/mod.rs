//! The command line (PRODUCT.md §4a). Each subcommand lives in its own file with its
//! arguments; this file only dispatches and turns errors into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin;
pub mod catalog;
pub mod demo;
pub mod export;
pub mod http;
pub mod sample;
pub mod serve;
pub mod verify;

#[derive(Parser, Debug)]
#[command(
    name = "snapex",
    version,
    about = "Self-hosted MongoDB Atlas Cloud Backup Snapshot Export"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the Atlas-compatible API server and the export job engine.
    Serve(Box<serve::ServeArgs>),
    /// Manage organizations.
    #[command(subcommand)]
    Orgs(admin::OrgsCommand),
    /// Manage projects (Atlas groups).
    #[command(subcommand)]
    Projects(admin::ProjectsCommand),
    /// Manage programmatic API keys (HTTP Digest).
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Manage service accounts (OAuth 2.0 client credentials).
    #[command(subcommand, name = "service-accounts")]
    ServiceAccounts(admin::ServiceAccountsCommand),
    /// Export one snapshot to a bucket, without a server.
    Export(Box<export::ExportArgs>),
    /// Backup locations: what the catalog would register (`scan`), without a server.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Check an export against its manifest.
    Verify(verify::VerifyArgs),
    /// Run the whole flow on a generated sample snapshot.
    Demo(demo::DemoArgs),
    /// Write a deterministic generated sample snapshot (a mongodump directory).
    Sample(sample::SampleArgs),
    /// Print the OpenAPI 3.1 document the server serves at /api/openapi.json (for client
    /// generators and validators, without a running server).
    Openapi,
}

/// Where the metadata store lives; shared by `serve` and the administrative commands.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Data directory: the embedded SQLite database, the encryption key, the default bucket root.
    #[arg(long, env = "SNAPEX_DATA_DIR", default_value = "snapex-data")]
    pub data_dir: PathBuf,
    /// Metadata database URL (`sqlite://…` or `postgres://…`); default SQLite in the data dir.
    #[arg(long, env = "SNAPEX_DATABASE")]
    pub database: Option<String>,
}

fn print_openapi() -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(&crate::api::openapi::build())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Orgs(cmd) => admin::orgs(cmd).await,
            Command::Projects(cmd) => admin::projects(cmd).await,
            Command::Keys(cmd) => admin::keys(cmd).await,
            Command::ServiceAccounts(cmd) => admin::service_accounts(cmd).await,
            Command::Export(args) => export::run(*args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::Catalog(cmd) => catalog::run(cmd).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Sample(args) => sample::run(args).await,
            Command::Openapi => print_openapi(),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            // The whole chain, so the user sees the object and offset behind "export failed".
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
