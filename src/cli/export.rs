//! `snapex export SOURCE DEST_URL`: one export, no server. Everything has a default (printed),
//! so the two arguments are enough.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::export::parquet::{ParquetCompression, ParquetOptions};
use crate::export::{self, CompleteInfo, DataFormat, ExportOptions, ExportTarget, Progress};
use crate::extjson::Format;
use crate::snapshot::SnapshotSource;
use crate::storage::{self, StorageOptions};

/// Object-store connection flags shared by `export` and `verify`; the environment
/// (`AWS_*`, `AZURE_*`, `GOOGLE_*`) supplies anything not given.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StorageFlags {
    /// S3 endpoint URL (for S3-compatible stores and emulators).
    #[arg(long, env = "SNAPEX_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, env = "SNAPEX_S3_REGION")]
    pub s3_region: Option<String>,
    /// S3 access key id (default: the AWS environment / instance credentials).
    #[arg(long, env = "SNAPEX_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key; prefer the environment variable to the flag.
    #[arg(long, env = "SNAPEX_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Azure storage account.
    #[arg(long, env = "SNAPEX_AZURE_ACCOUNT")]
    pub azure_account: Option<String>,
    /// Azure storage access key; prefer the environment variable to the flag.
    #[arg(long, env = "SNAPEX_AZURE_ACCESS_KEY", hide_env_values = true)]
    pub azure_access_key: Option<String>,
    /// Use the Azurite emulator (URL from AZURITE_BLOB_STORAGE_URL).
    #[arg(long)]
    pub azure_emulator: bool,
    /// Allow plain-HTTP endpoints (emulators on loopback).
    #[arg(long)]
    pub allow_http: bool,
}

impl StorageFlags {
    pub fn options(&self) -> StorageOptions {
        StorageOptions {
            s3_endpoint: self.s3_endpoint.clone(),
            s3_region: self.s3_region.clone(),
            s3_access_key_id: self.s3_access_key_id.clone(),
            s3_secret_access_key: self.s3_secret_access_key.clone(),
            azure_account: self.azure_account.clone(),
            azure_access_key: self.azure_access_key.clone(),
            azure_use_emulator: self.azure_emulator,
            allow_http: self.allow_http
                || self
                    .s3_endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            ..Default::default()
        }
    }
}

const ZERO_ID: &str = "000000000000000000000000";

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The snapshot: a mongodump directory or archive (plain or compressed), or a PBM logical
    /// backup (`<root>/<name>.pbm.json`, `<root>/<name>` or `<root>/<name>/<rs>`), as a local
    /// path or storage URL. A PBM backup of several replica sets exports them all.
    /// Omit it when every replica set is given with --replica-set.
    pub source: String,
    /// Destination bucket URL: file:///dir, s3://bucket/prefix, az://container/prefix, gs://bucket/prefix.
    pub dest: String,
    /// Replica set name of SOURCE.
    #[arg(long, default_value = "rs0")]
    pub replica_set_name: String,
    /// Another replica set of a sharded snapshot, NAME=SOURCE (repeatable); all export together.
    #[arg(long = "replica-set", value_name = "NAME=SOURCE")]
    pub replica_sets: Vec<String>,
    #[arg(long, default_value = ZERO_ID)]
    pub org_id: String,
    #[arg(long, default_value = "snapex")]
    pub org_name: String,
    #[arg(long, alias = "group-id", default_value = ZERO_ID)]
    pub project_id: String,
    #[arg(long, alias = "group-name", default_value = "snapex")]
    pub project_name: String,
    #[arg(long, default_value = "Cluster0")]
    pub cluster_name: String,
    /// clusterUniqueId in `.complete` (default: the project id).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// Snapshot time, RFC 3339 (default: the dump's newest file time, else now).
    #[arg(long)]
    pub snapshot_time: Option<DateTime<Utc>>,
    /// KEY=VALUE written into `.complete` customData (repeatable).
    #[arg(long = "custom-data", value_name = "KEY=VALUE")]
    pub custom_data: Vec<String>,
    /// KEY=VALUE written into `.complete` labels (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Data files: `json` (Atlas's layout, gzipped Extended JSON) or `parquet` (typed columns,
    /// schema inferred from every document; a snapex extension).
    #[arg(long, default_value = "json")]
    pub format: DataFormat,
    /// Parquet: rows per row group at most (a row group is also cut at 64 MiB buffered).
    #[arg(long, default_value_t = 131_072, value_parser = clap::value_parser!(u64).range(1..))]
    pub row_group_rows: u64,
    /// Parquet: column compression, zstd or snappy.
    #[arg(long, default_value = "zstd")]
    pub parquet_compression: ParquetCompression,
    /// Extended JSON flavour of the data files.
    #[arg(long, default_value = "canonical", value_parser = parse_format)]
    pub json_format: Format,
    /// Uncompressed JSON bytes per data file before a new one starts (suffixes: KiB, MiB, GiB).
    #[arg(long, default_value = "128MiB", value_parser = parse_size)]
    pub chunk_size: u64,
    /// gzip level 0-9.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,
    /// Skip invalid documents and invalid time-series buckets (counted in the summary and
    /// manifest) instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Export only the namespaces matching this pattern (repeatable; mongorestore's wildcard
    /// syntax: `db.*`, `db.coll`, `*.coll`; `*` matches any characters, dots included).
    #[arg(long = "ns-include", value_name = "PATTERN")]
    pub ns_include: Vec<String>,
    /// Leave out the namespaces matching this pattern (repeatable; applied after --ns-include).
    #[arg(long = "ns-exclude", value_name = "PATTERN")]
    pub ns_exclude: Vec<String>,
    /// Print a machine-readable JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub storage: StorageFlags,
}

/// A command-line value that does not parse; the message names the value and what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ArgError(String);

/// A pattern list for the start line: the patterns, or what an empty list means.
fn patterns(list: &[export::Pattern], empty: &str) -> String {
    if list.is_empty() {
        return empty.to_string();
    }
    list.iter()
        .map(export::Pattern::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_format(s: &str) -> Result<Format, ArgError> {
    match s {
        "canonical" => Ok(Format::Canonical),
        "relaxed" => Ok(Format::Relaxed),
        other => Err(ArgError(format!(
            "unknown JSON format {other:?}: use canonical or relaxed"
        ))),
    }
}

pub fn parse_size(s: &str) -> Result<u64, ArgError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        ArgError(format!(
            "invalid size {s:?}: expected a number with an optional unit"
        ))
    })?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(ArgError(format!(
                "invalid size unit {other:?}: use KiB, MiB or GiB"
            )));
        }
    };
    let size = n
        .checked_mul(factor)
        .ok_or_else(|| ArgError(format!("size {s:?} is too large")))?;
    if size == 0 {
        return Err(ArgError("size must be greater than 0".into()));
    }
    Ok(size)
}

fn parse_pairs(items: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--{flag} {item:?}: expected KEY=VALUE"),
        })
        .collect()
}

fn check_id(value: &str, flag: &str) -> anyhow::Result<()> {
    if value.len() != 24 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--{flag} {value:?}: expected 24 hexadecimal characters");
    }
    Ok(())
}

pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    check_id(&args.org_id, "org-id")?;
    check_id(&args.project_id, "project-id")?;
    let custom_data = parse_pairs(&args.custom_data, "custom-data")?;
    let labels = parse_pairs(&args.labels, "label")?;
    let options = args.storage.options();

    let mut part_urls = vec![(args.replica_set_name.clone(), args.source.clone())];
    // A PBM backup of a sharded cluster holds several replica sets: with no --replica-set
    // given, each becomes a part under its own name.
    if args.replica_sets.is_empty() {
        let location = storage::open(&args.source, &options)
            .with_context(|| format!("opening snapshot {}", args.source))?;
        if let Some(sets) = crate::snapshot::pbm::replica_set_parts(&location)
            .await
            .with_context(|| format!("reading snapshot {}", args.source))?
        {
            eprintln!(
                "PBM backup with replica sets {}: one part each",
                sets.iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            part_urls = sets;
        }
    }
    for item in &args.replica_sets {
        let Some((name, url)) = item.split_once('=') else {
            bail!("--replica-set {item:?}: expected NAME=SOURCE");
        };
        part_urls.push((name.to_string(), url.to_string()));
    }
    let mut parts = Vec::new();
    for (name, url) in part_urls {
        if parts.iter().any(|(n, _): &(String, _)| *n == name) {
            bail!("replica set {name} is given twice");
        }
        let location =
            storage::open(&url, &options).with_context(|| format!("opening snapshot {url}"))?;
        let source = SnapshotSource::open(location)
            .await
            .with_context(|| format!("reading snapshot {url} (replica set {name})"))?;
        parts.push((name, Arc::new(source)));
    }
    let snapshot_time = args
        .snapshot_time
        .or_else(|| parts.iter().filter_map(|(_, s)| s.info.taken_at).max())
        .unwrap_or_else(Utc::now);
    let created = Utc::now();
    let prefix = export::export_prefix(
        &args.org_id,
        &args.project_id,
        &args.cluster_name,
        snapshot_time,
        created,
    );
    let bucket = storage::open_for_write(&args.dest, &options)
        .with_context(|| format!("opening destination {}", args.dest))?;
    let target = ExportTarget {
        bucket,
        prefix: prefix.clone(),
    };
    let namespaces = export::NamespaceFilter::parse(&args.ns_include, &args.ns_exclude)?;
    let complete = CompleteInfo {
        org_id: args.org_id.clone(),
        org_name: args.org_name.clone(),
        group_id: args.project_id.clone(),
        group_name: args.project_name.clone(),
        cluster_unique_id: args.cluster_id.clone().unwrap_or(args.project_id.clone()),
        cluster_name: args.cluster_name.clone(),
        snapshot_initiation_date: snapshot_time,
        labels,
        custom_data,
    };
    let export_options = ExportOptions {
        format: args.json_format,
        data_format: args.format,
        parquet: ParquetOptions {
            row_group_rows: usize::try_from(args.row_group_rows).unwrap_or(usize::MAX),
            compression: args.parquet_compression,
        },
        chunk_size: args.chunk_size,
        compression_level: args.compression_level,
        skip_invalid: args.skip_invalid,
        worker_nice: 0,
        namespaces,
    };
    let encoding = match args.format {
        DataFormat::Json => format!(
            "json ({:?}, gzip level {})",
            export_options.format, export_options.compression_level
        ),
        DataFormat::Parquet => format!(
            "parquet ({}, row groups of {} rows)",
            export_options.parquet.compression.as_str(),
            export_options.parquet.row_group_rows
        ),
    };
    eprintln!(
        "snapex export: org {} project {} cluster {} snapshot {} format {} chunk {} bytes{}",
        args.org_id,
        args.project_id,
        args.cluster_name,
        snapshot_time.format("%Y-%m-%dT%H:%M:%SZ"),
        encoding,
        export_options.chunk_size,
        if args.skip_invalid {
            " (skipping invalid documents and buckets)"
        } else {
            ""
        },
    );
    if !export_options.namespaces.is_everything() {
        eprintln!(
            "namespaces: include {} exclude {}",
            patterns(&export_options.namespaces.include, "everything"),
            patterns(&export_options.namespaces.exclude, "nothing"),
        );
    }
    eprintln!("exporting to {}/{prefix}", args.dest.trim_end_matches('/'));

    let total_bytes: u64 = parts.iter().map(|(_, s)| s.info.total_bytes).sum();
    let progress = Arc::new(Bars::new(total_bytes, args.json));
    let cancel = CancellationToken::new();
    let ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let started = Instant::now();
    let result = export::run_export(
        parts,
        &target,
        &complete,
        &export_options,
        progress.clone(),
        cancel,
    )
    .await;
    ctrl_c.abort();
    progress.finish();
    let summary =
        result.context("export failed; files written so far stay, there is no .complete")?;
    let seconds = started.elapsed().as_secs_f64();
    let documents: u64 = summary.replica_sets.iter().map(|r| r.documents).sum();
    let bson_bytes: u64 = summary.replica_sets.iter().map(|r| r.bson_bytes).sum();
    let skipped_invalid: u64 = summary
        .replica_sets
        .iter()
        .map(|r| r.skipped_invalid_documents)
        .sum();
    let collections: u64 = summary
        .replica_sets
        .iter()
        .map(|r| r.exported_collections)
        .sum();
    let buckets: u64 = summary.replica_sets.iter().map(|r| r.buckets).sum();
    let skipped_buckets: u64 = summary
        .replica_sets
        .iter()
        .map(|r| r.skipped_invalid_buckets)
        .sum();
    if args.json {
        let out = serde_json::json!({
            "prefix": prefix,
            "url": format!("{}/{prefix}", args.dest.trim_end_matches('/')),
            "totalFiles": summary.total_files,
            "collections": collections,
            "documents": documents,
            "bsonBytes": bson_bytes,
            "skippedInvalidDocuments": skipped_invalid,
            "buckets": buckets,
            "skippedInvalidBuckets": skipped_buckets,
            "skippedCollections": summary.replica_sets.iter().flat_map(|r| r.skipped_collections.clone()).collect::<Vec<_>>(),
            "excludedCollections": summary.replica_sets.iter().flat_map(|r| r.excluded_collections.iter().map(|c| serde_json::json!({"replicaSet": r.replica_set, "collection": c}))).collect::<Vec<_>>(),
            "seconds": seconds,
            "replicaSets": summary.replica_sets.iter().map(|r| serde_json::json!({
                "name": r.replica_set, "collections": r.exported_collections, "documents": r.documents,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "export complete: {}/{prefix}",
            args.dest.trim_end_matches('/')
        );
        println!(
            "  {collections} collections, {documents} documents, {} files, {:.1} MB of BSON in {seconds:.1} s ({:.1} MB/s, {:.0} docs/s)",
            summary.total_files,
            bson_bytes as f64 / 1e6,
            bson_bytes as f64 / 1e6 / seconds.max(1e-9),
            documents as f64 / seconds.max(1e-9),
        );
        for r in &summary.replica_sets {
            for s in &r.skipped_collections {
                println!(
                    "  skipped {} ({}): {}",
                    s.collection, s.replica_set, s.reason
                );
            }
        }
        if buckets > 0 {
            println!("  {buckets} time-series buckets unpacked into measurements");
        }
        if skipped_invalid > 0 {
            println!("  skipped {skipped_invalid} invalid documents");
        }
        if skipped_buckets > 0 {
            println!("  skipped {skipped_buckets} invalid time-series buckets");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress bars on a terminal (docs/s, MB/s, ETA overall, and the current collection of each
/// replica set); nothing at all when stderr is not a terminal or `--json` is given.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    current: std::sync::Mutex<std::collections::HashMap<String, ProgressBar>>,
    documents: AtomicU64,
    planned: AtomicU64,
    finished: AtomicU64,
    started: Instant,
}

impl Bars {
    pub fn new(total_bytes: u64, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total_bytes));
        overall.set_style(
            ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bars {
            multi,
            overall,
            current: Default::default(),
            documents: AtomicU64::new(0),
            planned: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn message(&self) {
        let docs = self.documents.load(Ordering::Relaxed);
        let rate = docs as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        self.overall.set_message(format!(
            "{docs} docs ({rate:.0} docs/s), {}/{} collections",
            self.finished.load(Ordering::Relaxed),
            self.planned.load(Ordering::Relaxed)
        ));
    }

    pub fn finish(&self) {
        if let Ok(bars) = self.current.lock() {
            for bar in bars.values() {
                bar.finish_and_clear();
            }
        }
        self.overall.finish_and_clear();
    }
}

impl Progress for Bars {
    fn collections_planned(&self, _replica_set: &str, total: usize) {
        self.planned.fetch_add(total as u64, Ordering::Relaxed);
        self.message();
    }

    fn collection_started(&self, replica_set: &str, namespace: &str, bson_bytes: Option<u64>) {
        let Ok(mut bars) = self.current.lock() else {
            return;
        };
        let bar = bars.entry(replica_set.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("  {prefix} {bar:20} {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(replica_set.to_string());
            bar
        });
        bar.set_position(0);
        bar.set_length(bson_bytes.unwrap_or(0));
        bar.set_message(namespace.to_string());
    }

    fn advanced(&self, replica_set: &str, bson_bytes: u64, documents: u64) {
        self.overall.inc(bson_bytes);
        if self.overall.position() > self.overall.length().unwrap_or(0) {
            self.overall.set_length(self.overall.position());
        }
        self.documents.fetch_add(documents, Ordering::Relaxed);
        if let Ok(bars) = self.current.lock()
            && let Some(bar) = bars.get(replica_set)
        {
            bar.inc(bson_bytes);
        }
        self.message();
    }

    fn collection_finished(&self, _replica_set: &str, _namespace: &str) {
        self.finished.fetch_add(1, Ordering::Relaxed);
        self.message();
    }
}
