//! `snapex verify`: re-reads an export and checks it against its `.manifest.json`: every object
//! present with its size and SHA-256, every JSON data file a gzip stream that decodes to the
//! recorded number of bytes and lines, every Parquet data file a footer whose row count is the
//! recorded number of documents, nothing unexpected, and `.complete` present.

use std::collections::BTreeSet;
use std::io::Read;

use futures::{StreamExt, TryStreamExt};
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{COMPLETE_FILE, MANIFEST_FILE, ManifestObject};
use crate::storage::Location;

/// What `verify` found; the export is good when `problems` is empty.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub objects_checked: usize,
    pub documents: u64,
    pub bytes: u64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    objects: Vec<ManifestObject>,
}

/// Checks the export whose prefix is `location`.
pub async fn verify(location: &Location) -> VerifyReport {
    let mut report = VerifyReport::default();
    let store = location.store.clone();
    let base = location.prefix.clone();
    let manifest_path = base.clone().join(PathPart::from(MANIFEST_FILE));
    let manifest: Manifest = match store.get(&manifest_path).await {
        Ok(result) => match result.bytes().await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(manifest) => manifest,
                Err(e) => {
                    report
                        .problems
                        .push(format!("{MANIFEST_FILE}: not a valid manifest: {e}"));
                    return report;
                }
            },
            Err(e) => {
                report
                    .problems
                    .push(format!("{MANIFEST_FILE}: cannot read: {e}"));
                return report;
            }
        },
        Err(object_store::Error::NotFound { .. }) => {
            report.problems.push(format!(
                "{MANIFEST_FILE} missing: {} is not a snapex export prefix, or the export never finished",
                location.url
            ));
            return report;
        }
        Err(e) => {
            report
                .problems
                .push(format!("{MANIFEST_FILE}: cannot read: {e}"));
            return report;
        }
    };
    if let Err(e) = store
        .head(&base.clone().join(PathPart::from(COMPLETE_FILE)))
        .await
    {
        report
            .problems
            .push(format!("{COMPLETE_FILE} missing or unreadable: {e}"));
    }

    // Objects present under the prefix that the manifest does not list.
    let listed: BTreeSet<String> = manifest.objects.iter().map(|o| o.key.clone()).collect();
    let mut present = store.list(Some(&base));
    while let Some(meta) = present.next().await {
        match meta {
            Ok(meta) => {
                let relative: Vec<_> = meta
                    .location
                    .prefix_match(&base)
                    .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
                    .unwrap_or_default();
                let key = relative.join("/");
                if key != MANIFEST_FILE && key != COMPLETE_FILE && !listed.contains(&key) {
                    report
                        .problems
                        .push(format!("{key}: present but not in the manifest"));
                }
            }
            Err(e) => report.problems.push(format!("listing the export: {e}")),
        }
    }

    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let checks = futures::stream::iter(manifest.objects.into_iter().map(|object| {
        let store = store.clone();
        let base = base.clone();
        async move {
            let problems = check_object(store, &base, &object).await;
            (object, problems)
        }
    }))
    .buffer_unordered(parallel);
    let results: Vec<_> = checks.collect().await;
    for (object, problems) in results {
        report.objects_checked += 1;
        report.documents += object.documents;
        report.bytes += object.bytes;
        report.problems.extend(problems);
    }
    report.problems.sort();
    report
}

async fn check_object(
    store: std::sync::Arc<dyn ObjectStore>,
    base: &Path,
    object: &ManifestObject,
) -> Vec<String> {
    let mut path = base.clone();
    for part in object.key.split('/') {
        path = path.join(PathPart::parse(part).unwrap_or_else(|_| PathPart::from(part)));
    }
    let key = object.key.clone();
    let stream = match store.get(&path).await {
        Ok(result) => result.into_stream(),
        Err(object_store::Error::NotFound { .. }) => return vec![format!("{key}: missing")],
        Err(e) => return vec![format!("{key}: cannot read: {e}")],
    };
    let reader = tokio_util::io::StreamReader::new(stream.map_err(std::io::Error::other));
    let handle = tokio::runtime::Handle::current();
    let expected = object.clone();
    // Decompression and hashing are CPU work: off the async runtime.
    let outcome = tokio::task::spawn_blocking(move || {
        let reader = tokio_util::io::SyncIoBridge::new_with_handle(reader, handle);
        check_bytes(reader, &expected)
    })
    .await;
    let mut problems = match outcome {
        Ok(problems) => problems,
        Err(e) => vec![format!("{key}: check failed: {e}")],
    };
    // The footer says why a file that fails its hash is broken, so it is read anyway.
    if key.ends_with(".parquet") && !problems.iter().any(|p| p.ends_with(": missing")) {
        match parquet_rows(store.as_ref(), &path, object.bytes).await {
            Ok(rows) if rows == object.documents => {}
            Ok(rows) => problems.push(format!(
                "{key}: {rows} rows in the Parquet footer, manifest says {} documents",
                object.documents
            )),
            Err(e) => problems.push(format!("{key}: not a valid Parquet file: {e}")),
        }
    }
    problems
}

/// Why a Parquet file's footer could not be read.
#[derive(Debug, thiserror::Error)]
enum FooterError {
    #[error("cannot read: {0}")]
    Read(#[from] object_store::Error),
    #[error("no PAR1 magic at the end")]
    Magic,
    #[error("footer length {0} does not fit a file of {1} bytes")]
    Length(u64, u64),
    #[error("footer: {0}")]
    Decode(#[from] ::parquet::errors::ParquetError),
}

/// The row count a Parquet file's footer records (two range reads: the tail, the metadata).
async fn parquet_rows(store: &dyn ObjectStore, path: &Path, size: u64) -> Result<u64, FooterError> {
    if size < 12 {
        return Err(FooterError::Length(0, size));
    }
    let tail = store.get_range(path, size - 8..size).await?;
    if &tail[4..8] != b"PAR1" {
        return Err(FooterError::Magic);
    }
    let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if length + 12 > size {
        return Err(FooterError::Length(length, size));
    }
    let metadata = store.get_range(path, size - 8 - length..size - 8).await?;
    let metadata = ::parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&metadata)?;
    Ok(metadata.file_metadata().num_rows().max(0) as u64)
}

/// Counts and hashes the raw bytes while decoding them.
struct Tee<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn check_bytes(reader: impl Read, expected: &ManifestObject) -> Vec<String> {
    let key = &expected.key;
    let mut problems = Vec::new();
    let mut tee = Tee {
        inner: reader,
        sha: Sha256::new(),
        bytes: 0,
    };
    let is_data = key.ends_with(".json.gz");
    let mut buffer = vec![0u8; 256 * 1024];
    if is_data {
        let (mut lines, mut uncompressed) = (0u64, 0u64);
        let mut decoder = flate2::read::MultiGzDecoder::new(&mut tee);
        let mut last = b'\n';
        loop {
            match decoder.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    uncompressed += n as u64;
                    lines += memchr_count(&buffer[..n]);
                    last = buffer[n - 1];
                }
                Err(e) => {
                    problems.push(format!("{key}: not a valid gzip stream: {e}"));
                    break;
                }
            }
        }
        drop(decoder);
        if problems.is_empty() {
            if last != b'\n' {
                problems.push(format!("{key}: last line does not end with a newline"));
            }
            if lines != expected.documents {
                problems.push(format!(
                    "{key}: {lines} lines, manifest says {} documents",
                    expected.documents
                ));
            }
            if uncompressed != expected.uncompressed_bytes {
                problems.push(format!(
                    "{key}: {uncompressed} bytes uncompressed, manifest says {}",
                    expected.uncompressed_bytes
                ));
            }
        }
    }
    // Read whatever the decoder left (or the whole object for non-gzip files) for the hash.
    loop {
        match tee.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                problems.push(format!("{key}: cannot read: {e}"));
                return problems;
            }
        }
    }
    if tee.bytes != expected.bytes {
        problems.push(format!(
            "{key}: {} bytes, manifest says {}",
            tee.bytes, expected.bytes
        ));
    }
    let sha = hex::encode(tee.sha.finalize());
    if sha != expected.sha256 {
        problems.push(format!(
            "{key}: sha256 {sha}, manifest says {}",
            expected.sha256
        ));
    }
    problems
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}
