//! `snapex orgs|projects|keys|service-accounts`: administrative commands on the metadata store.
//!
//! They open the same database as `snapex serve` (`--data-dir`/`--database`) and work while it
//! runs: SQLite is in WAL mode with a busy timeout. Secrets (an API key's private key, a service
//! account's client secret) are printed once, here, and never stored.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use crate::auth::{AuthService, Grant, Role, SecretBox};
use crate::cli::StoreArgs;
use crate::store::Store;

#[derive(clap::Subcommand, Debug)]
pub enum OrgsCommand {
    /// Create an organization.
    Create {
        /// The organization's name.
        name: String,
        /// Print `{"id", "name"}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List organizations.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ProjectsCommand {
    /// Create a project (an Atlas group) in an organization.
    Create {
        /// The organization id.
        #[arg(long)]
        org: String,
        /// The project's name (unique in the deployment).
        name: String,
        /// Print `{"id", "name", "orgId"}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the projects of an organization.
    List {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a programmatic API key (HTTP Digest); the private key is printed once.
    Create {
        /// The organization id.
        #[arg(long)]
        org: String,
        /// Grant the roles on this project (project roles); without it, organization roles.
        #[arg(long)]
        project: Option<String>,
        /// A role such as GROUP_OWNER, GROUP_READ_ONLY, GROUP_BACKUP_MANAGER, ORG_OWNER;
        /// repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// A description shown by `keys list`.
        #[arg(long, default_value = "")]
        description: String,
        /// Print `{"id", "publicKey", "privateKey"}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete an API key (by id or public key); it stops working at once.
    Delete {
        #[arg(long)]
        org: String,
        /// The key's id or public key.
        key: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the API keys of an organization (no secrets).
    List {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ServiceAccountsCommand {
    /// Create a service account (OAuth 2.0 client credentials); the secret is printed once.
    Create {
        /// The organization id.
        #[arg(long)]
        org: String,
        /// Grant the roles on this project (project roles); without it, organization roles.
        #[arg(long)]
        project: Option<String>,
        /// A role such as GROUP_OWNER, GROUP_READ_ONLY, ORG_OWNER; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// A name shown by `service-accounts list`.
        #[arg(long, default_value = "")]
        name: String,
        /// Print `{"id", "clientId", "clientSecret"}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a service account (by id or client id) and its tokens.
    Delete {
        #[arg(long)]
        org: String,
        /// The service account's id or client id.
        account: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the service accounts of an organization (no secrets).
    List {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    Store::open_configured(&args.data_dir, args.database.as_deref())
        .await
        .context("cannot open the metadata store")
}

/// The store plus the deployment key, checked against the database so that a key created
/// here can be verified by the server.
async fn open_auth(args: &StoreArgs) -> anyhow::Result<AuthService> {
    let store = open_store(args).await?;
    let secrets =
        SecretBox::from_env_or_data_dir(&args.data_dir).context("cannot load the secret key")?;
    let auth = AuthService::new(store, secrets);
    auth.verify_deployment_key().await?;
    Ok(auth)
}

fn parse_roles(roles: &[String]) -> anyhow::Result<Vec<Role>> {
    roles
        .iter()
        .flat_map(|r| r.split(','))
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.parse::<Role>().map_err(anyhow::Error::from))
        .collect()
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

fn describe_grants(grants: &[Grant]) -> String {
    grants
        .iter()
        .map(|g| match &g.group_id {
            Some(p) => format!("{} on project {p}", g.role),
            None => format!("{} on the organization", g.role),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn orgs(cmd: OrgsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OrgsCommand::Create { name, json, store } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "the organization name must not be empty");
            let store = open_store(&store).await?;
            let org = store
                .create_org(name)
                .await
                .context("cannot create the organization")?;
            if json {
                print_json(&json!({"id": org.id, "name": org.name}))?;
            } else {
                println!("created organization {} with id {}", org.name, org.id);
            }
        }
        OrgsCommand::List { json, store } => {
            let store = open_store(&store).await?;
            let orgs = store.list_orgs().await?;
            if json {
                let list: Vec<_> = orgs
                    .iter()
                    .map(|o| json!({"id": o.id, "name": o.name}))
                    .collect();
                print_json(&serde_json::Value::Array(list))?;
            } else {
                for o in orgs {
                    println!("{}  {}", o.id, o.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn projects(cmd: ProjectsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProjectsCommand::Create {
            org,
            name,
            json,
            store,
        } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "the project name must not be empty");
            let store = open_store(&store).await?;
            let project = store
                .create_project(&org, name)
                .await
                .context("cannot create the project")?;
            if json {
                print_json(
                    &json!({"id": project.id, "name": project.name, "orgId": project.org_id}),
                )?;
            } else {
                println!(
                    "created project {} with id {} in organization {}",
                    project.name, project.id, project.org_id
                );
            }
        }
        ProjectsCommand::List { org, json, store } => {
            let store = open_store(&store).await?;
            let projects = store.list_projects(&org).await?;
            if json {
                let list: Vec<_> = projects
                    .iter()
                    .map(|p| json!({"id": p.id, "name": p.name, "orgId": p.org_id}))
                    .collect();
                print_json(&serde_json::Value::Array(list))?;
            } else {
                for p in projects {
                    println!("{}  {}", p.id, p.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Create {
            org,
            project,
            roles,
            description,
            json,
            store,
        } => {
            let roles = parse_roles(&roles)?;
            let auth = open_auth(&store).await?;
            let key = auth
                .create_api_key(&org, project.as_deref(), &roles, &description)
                .await
                .context("cannot create the api key")?;
            if json {
                print_json(&json!({
                    "id": key.id,
                    "publicKey": key.public_key,
                    "privateKey": key.private_key,
                }))?;
            } else {
                println!(
                    "created api key {} ({})",
                    key.id,
                    describe_grants(&key.grants)
                );
                println!("public key:  {}", key.public_key);
                println!("private key: {}", key.private_key);
                println!("the private key is shown only now: store it safely");
            }
        }
        KeysCommand::Delete {
            org,
            key,
            json,
            store,
        } => {
            let auth = open_auth(&store).await?;
            let deleted = auth.delete_api_key(&org, &key).await?;
            anyhow::ensure!(deleted, "api key {key} not found in organization {org}");
            if json {
                print_json(&json!({"id": key, "deleted": true}))?;
            } else {
                println!("deleted api key {key}");
            }
        }
        KeysCommand::List { org, json, store } => {
            let auth = open_auth(&store).await?;
            let keys = auth.list_api_keys(&org).await?;
            if json {
                print_json(&serde_json::to_value(&keys)?)?;
            } else {
                for k in keys {
                    println!(
                        "{}  {}  {}  {}",
                        k.id,
                        k.public_key,
                        describe_grants(&k.grants),
                        k.description
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn service_accounts(cmd: ServiceAccountsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ServiceAccountsCommand::Create {
            org,
            project,
            roles,
            name,
            json,
            store,
        } => {
            let roles = parse_roles(&roles)?;
            let auth = open_auth(&store).await?;
            let account = auth
                .create_service_account(&org, project.as_deref(), &roles, &name)
                .await
                .context("cannot create the service account")?;
            if json {
                print_json(&json!({
                    "id": account.id,
                    "clientId": account.client_id,
                    "clientSecret": account.client_secret,
                }))?;
            } else {
                println!(
                    "created service account {} ({})",
                    account.id,
                    describe_grants(&account.grants)
                );
                println!("client id:     {}", account.client_id);
                println!("client secret: {}", account.client_secret);
                println!("the client secret is shown only now: store it safely");
            }
        }
        ServiceAccountsCommand::Delete {
            org,
            account,
            json,
            store,
        } => {
            let auth = open_auth(&store).await?;
            let deleted = auth.delete_service_account(&org, &account).await?;
            anyhow::ensure!(
                deleted,
                "service account {account} not found in organization {org}"
            );
            if json {
                print_json(&json!({"id": account, "deleted": true}))?;
            } else {
                println!("deleted service account {account}");
            }
        }
        ServiceAccountsCommand::List { org, json, store } => {
            let auth = open_auth(&store).await?;
            let accounts = auth.list_service_accounts(&org).await?;
            if json {
                print_json(&serde_json::to_value(&accounts)?)?;
            } else {
                for a in accounts {
                    println!(
                        "{}  {}  {}  {}",
                        a.id,
                        a.client_id,
                        describe_grants(&a.grants),
                        a.name
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
