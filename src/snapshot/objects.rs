//! Source objects: naming, listing and blocking readers, on the local disk (plain `std::fs`,
//! the fast path for `file://` locations) or on any object store.
//!
//! An object is named for messages as the location URL followed by its key relative to the
//! location (`s3://bucket/dump/db1/c1.bson`); the location itself names a single-object source.
//! The relative key is kept raw (mongodump's percent-encoded file names stay as they are on
//! disk or in the bucket), so the same string can be mapped back to a local path or a store key.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use tokio::runtime::Handle;

use super::{READ_BUFFER_BYTES, SourceError};
use crate::storage::Location;

/// How many times a broken object-store stream is resumed (from the byte where it broke)
/// before the read fails. object_store retries requests, not streams that break midway.
const STREAM_RESUMES: u32 = 3;

/// One listed object, `rel` relative to the location (`/`-separated, raw).
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub rel: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// What a location points at.
pub(crate) enum Target {
    /// A single object (an archive candidate), with its size and modification time.
    Object(Listed),
    /// A directory / key prefix.
    Prefix,
}

/// The name of the object at `rel` (empty: the location itself), for messages and
/// [`super::CollectionInfo::source_object`].
pub(crate) fn object_name(location: &Location, rel: &str) -> String {
    let base = location.url.trim_end_matches('/');
    if rel.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{rel}")
    }
}

/// The inverse of [`object_name`].
pub(crate) fn relative_key<'a>(location: &Location, name: &'a str) -> &'a str {
    let base = location.url.trim_end_matches('/');
    name.strip_prefix(base)
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(name)
}

fn store_path(location: &Location, rel: &str) -> Result<Path, SourceError> {
    let prefix = location.prefix.as_ref();
    let key = match (prefix.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}/{rel}"),
    };
    Path::parse(&key).map_err(|e| SourceError::Invalid {
        object: object_name(location, rel),
        message: format!("invalid object key: {e}"),
    })
}

fn local_path(root: &std::path::Path, rel: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
    }
    path
}

fn io_error(object: String, source: io::Error) -> SourceError {
    SourceError::Io { object, source }
}

fn store_error(object: String, source: object_store::Error) -> SourceError {
    SourceError::Store { object, source }
}

/// Whether the location is a single object or a prefix.
pub(crate) async fn target(location: &Location) -> Result<Target, SourceError> {
    let name = object_name(location, "");
    if let Some(root) = &location.local_root {
        let meta = tokio::fs::metadata(root)
            .await
            .map_err(|e| io_error(name, e))?;
        if meta.is_file() {
            return Ok(Target::Object(Listed {
                rel: String::new(),
                size: meta.len(),
                modified: meta.modified().ok().map(DateTime::<Utc>::from),
            }));
        }
        return Ok(Target::Prefix);
    }
    if location.prefix.as_ref().is_empty() {
        return Ok(Target::Prefix);
    }
    let head = GetOptions {
        head: true,
        ..Default::default()
    };
    match location.store.get_opts(&location.prefix, head).await {
        Ok(result) => Ok(Target::Object(Listed {
            rel: String::new(),
            size: result.meta.size,
            modified: Some(result.meta.last_modified),
        })),
        Err(object_store::Error::NotFound { .. }) => Ok(Target::Prefix),
        Err(e) => Err(store_error(name, e)),
    }
}

/// Lists every object under the location, up to `max_depth` path segments deep (deeper
/// entries are reported in the second vector, by relative directory, so callers can warn).
pub(crate) async fn list(
    location: &Location,
    max_depth: usize,
) -> Result<(Vec<Listed>, Vec<String>), SourceError> {
    if let Some(root) = location.local_root.clone() {
        let url = object_name(location, "");
        return tokio::task::spawn_blocking(move || list_local(&root, max_depth, &url))
            .await
            .map_err(|e| SourceError::Stopped(format!("listing task failed: {e}")))?;
    }
    let prefix = location.prefix.as_ref().to_string();
    let mut stream = if prefix.is_empty() {
        location.store.list(None)
    } else {
        location.store.list(Some(&location.prefix))
    };
    let mut listed = Vec::new();
    let mut deeper = Vec::new();
    while let Some(item) = stream.next().await {
        let meta = item.map_err(|e| store_error(object_name(location, ""), e))?;
        let key = meta.location.as_ref();
        let rel = if prefix.is_empty() {
            key
        } else {
            match key
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(rel) => rel,
                None => continue,
            }
        };
        if rel.split('/').count() > max_depth {
            let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or(rel);
            deeper.push(dir.to_string());
            continue;
        }
        listed.push(Listed {
            rel: rel.to_string(),
            size: meta.size,
            modified: Some(meta.last_modified),
        });
    }
    deeper.sort();
    deeper.dedup();
    Ok((listed, deeper))
}

fn list_local(
    root: &std::path::Path,
    max_depth: usize,
    url: &str,
) -> Result<(Vec<Listed>, Vec<String>), SourceError> {
    let mut listed = Vec::new();
    let mut deeper = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new(), 1usize)];
    while let Some((dir, rel_dir, depth)) = pending.pop() {
        let name = |rel: &str| {
            if rel.is_empty() {
                url.to_string()
            } else {
                format!("{url}/{rel}")
            }
        };
        let entries = std::fs::read_dir(&dir).map_err(|e| io_error(name(&rel_dir), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(name(&rel_dir), e))?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(path = %entry.path().display(), "skipping a file whose name is not utf-8");
                continue;
            };
            let rel = if rel_dir.is_empty() {
                file_name
            } else {
                format!("{rel_dir}/{file_name}")
            };
            // Follow symlinks, as mongorestore does.
            let meta = std::fs::metadata(entry.path()).map_err(|e| io_error(name(&rel), e))?;
            if meta.is_dir() {
                if depth < max_depth {
                    pending.push((entry.path(), rel, depth + 1));
                } else {
                    deeper.push(rel);
                }
            } else if meta.is_file() {
                listed.push(Listed {
                    rel,
                    size: meta.len(),
                    modified: meta.modified().ok().map(DateTime::<Utc>::from),
                });
            }
        }
    }
    deeper.sort();
    Ok((listed, deeper))
}

/// Opens the object `rel` for blocking, sequential reading, decompressing when `gzip`.
/// Must not run on a runtime worker thread (it blocks on `handle` for object-store reads).
pub(crate) fn open_blocking(
    location: &Location,
    rel: &str,
    gzip: bool,
    handle: &Handle,
) -> Result<Box<dyn Read + Send>, SourceError> {
    let raw: Box<dyn Read + Send> = match &location.local_root {
        Some(root) => {
            let path = local_path(root, rel);
            let file = File::open(&path).map_err(|e| io_error(object_name(location, rel), e))?;
            Box::new(file)
        }
        None => Box::new(StoreReader::open(
            location.store.clone(),
            store_path(location, rel)?,
            object_name(location, rel),
            handle.clone(),
        )?),
    };
    Ok(if gzip {
        // Multi-member, like Go's gzip reader that mongodump's files are read with; the
        // decoder reads its input through a buffer of our size.
        Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(READ_BUFFER_BYTES, raw),
        ))
    } else {
        raw
    })
}

/// Reads a whole small object (metadata, prelude) asynchronously, refusing anything larger
/// than `limit` bytes so that a mistaken file cannot exhaust memory.
pub(crate) async fn read_small(
    location: &Location,
    rel: &str,
    limit: u64,
) -> Result<Vec<u8>, SourceError> {
    let name = object_name(location, rel);
    let bytes = match &location.local_root {
        Some(root) => {
            let path = local_path(root, rel);
            let meta = tokio::fs::metadata(&path)
                .await
                .map_err(|e| io_error(name.clone(), e))?;
            if meta.len() > limit {
                return Err(too_large(name, meta.len(), limit));
            }
            tokio::fs::read(&path)
                .await
                .map_err(|e| io_error(name, e))?
        }
        None => {
            let path = store_path(location, rel)?;
            let result = location
                .store
                .get_opts(&path, GetOptions::default())
                .await
                .map_err(|e| store_error(name.clone(), e))?;
            if result.meta.size > limit {
                return Err(too_large(name, result.meta.size, limit));
            }
            result
                .bytes()
                .await
                .map_err(|e| store_error(name, e))?
                .to_vec()
        }
    };
    Ok(bytes)
}

fn too_large(object: String, size: u64, limit: u64) -> SourceError {
    SourceError::Invalid {
        object,
        message: format!("file of {size} bytes is larger than the {limit} bytes accepted"),
    }
}

/// A blocking [`Read`] over an object-store GET stream. A stream that breaks midway is resumed
/// with a ranged GET from the first byte not yet read, pinned to the object's ETag so that a
/// replaced object is an error rather than a silent mix of two versions.
///
/// (tokio-util's `SyncIoBridge` would do the bridging, but needs a tokio-util feature this
/// crate does not enable; the resume logic needs the stream anyway.)
struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    name: String,
    handle: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    position: u64,
    e_tag: Option<String>,
    resumes_left: u32,
}

impl StoreReader {
    fn open(
        store: Arc<dyn ObjectStore>,
        path: Path,
        name: String,
        handle: Handle,
    ) -> Result<Self, SourceError> {
        let result = handle
            .block_on(store.get_opts(&path, GetOptions::default()))
            .map_err(|e| store_error(name.clone(), e))?;
        let e_tag = result.meta.e_tag.clone();
        Ok(StoreReader {
            store,
            path,
            name,
            handle,
            stream: result.into_stream(),
            chunk: Bytes::new(),
            position: 0,
            e_tag,
            resumes_left: STREAM_RESUMES,
        })
    }

    fn resume(&mut self, cause: object_store::Error) -> io::Result<()> {
        if self.resumes_left == 0 {
            return Err(io::Error::other(cause));
        }
        self.resumes_left -= 1;
        tracing::warn!(object = %self.name, offset = self.position, error = %cause, "object stream broke, resuming");
        let options = GetOptions {
            range: Some(GetRange::Offset(self.position)),
            if_match: self.e_tag.clone(),
            ..Default::default()
        };
        let result = self
            .handle
            .block_on(self.store.get_opts(&self.path, options))
            .map_err(io::Error::other)?;
        self.stream = result.into_stream();
        Ok(())
    }
}

impl Read for StoreReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => self.resume(e)?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        self.position += n as u64;
        Ok(n)
    }
}
