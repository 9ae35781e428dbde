//! What an unfinished object leaves in a bucket, and its removal: multipart uploads still open
//! under the export prefix (where the store can list them, see
//! [`crate::storage::uploads`]) and, on `file://`, the staging files `<name>#<n>` that
//! `object_store`'s LocalFileSystem writes an object into before renaming it into place.
//! Finished objects are never touched.
//!
//! Called when nothing of the export can still be writing: after every replica set of an
//! export finished (a retried CreateMultipartUpload may have left an upload nobody uses), after
//! a job failed or was cancelled, and by the recovery of an interrupted job.

use std::path::PathBuf;

use object_store::path::Path;

use crate::storage::Location;

/// What [`clean`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub uploads_aborted: usize,
    pub staging_files_removed: usize,
}

/// Aborts the multipart uploads open under `prefix` and removes its staging files. Failures
/// are logged, not returned: a leftover is worth a warning, never a second failure of a job.
pub async fn clean(prefix: &Location) -> Cleaned {
    let mut cleaned = Cleaned::default();
    if let Some(uploads) = &prefix.pending_uploads {
        // The prefix as a directory: `…/1700000000/`, not every key starting with the digits.
        let dir = format!("{}/", prefix.prefix.as_ref());
        match uploads.list(&Path::from(dir.as_str())).await {
            Ok(open) => {
                for (key, id) in open {
                    match uploads.abort(&key, &id).await {
                        Ok(()) => {
                            cleaned.uploads_aborted += 1;
                            tracing::info!(%key, upload_id = %id, "aborted a multipart upload left open");
                        }
                        Err(error) => {
                            tracing::warn!(%key, error = %crate::errors::chain(&error), "cannot abort a multipart upload left open")
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(prefix = %prefix.url, error = %crate::errors::chain(&error), "cannot list open multipart uploads")
            }
        }
    }
    if let Some(root) = prefix.local_root.clone() {
        let removed = tokio::task::spawn_blocking(move || remove_staging_files(root))
            .await
            .unwrap_or(0);
        cleaned.staging_files_removed = removed;
    }
    cleaned
}

/// Whether a file name is a LocalFileSystem staging file: `<name>#<digits>` (a finished object
/// never has that form: LocalFileSystem refuses such keys).
pub fn is_staging_file(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn remove_staging_files(root: PathBuf) -> usize {
    let mut removed = 0;
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(path),
                Ok(_) if is_staging_file(&entry.file_name().to_string_lossy()) => {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            removed += 1;
                            tracing::info!(path = %path.display(), "removed the staging file of an unfinished object");
                        }
                        Err(error) => {
                            tracing::warn!(path = %path.display(), %error, "cannot remove a staging file")
                        }
                    }
                }
                _ => {}
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_files_are_told_from_objects() {
        assert!(is_staging_file("rs0.0.json.gz#1"));
        assert!(is_staging_file("metadata.json#12"));
        assert!(!is_staging_file("rs0.0.json.gz"));
        assert!(!is_staging_file("a#b"));
        assert!(!is_staging_file("a#"));
    }
}
