//! Format detection: what a location holds decides the reader.
//!
//! - A location that is a single object (a local file, or an object-store key that exists as
//!   an object) is a mongodump `--archive`; a leading gzip magic number (`1f 8b`) makes it a
//!   gzip'ed archive, and the decompressed stream must then start with the archive magic.
//! - Anything else is a directory / key prefix, read as a mongodump directory dump
//!   (see [`super::directory`] for root vs. database directory and `--gzip`).
//! - First of all, a location that names a PBM backup (`<root>/<name>.pbm.json`,
//!   `<root>/<name>`, `<root>/<name>/<rs>`; see [`super::pbm`]) is that backup.

use super::objects::{self, Target, object_name};
use super::{DumpInfo, SnapshotSource, SourceError, archive, directory, pbm};
use crate::storage::Location;

/// See [`SnapshotSource::open`].
pub async fn open(location: Location) -> Result<SnapshotSource, SourceError> {
    if let Some(found) = pbm::locate(&location).await? {
        return pbm::open(found).await;
    }
    match objects::target(&location).await? {
        Target::Object(listed) => {
            let info = DumpInfo {
                mongod_version: None,
                taken_at: listed.modified,
                total_bytes: listed.size,
                oplog: None,
            };
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || archive::open_blocking(location, &handle, info))
                .await
                .map_err(|e| SourceError::Stopped(format!("archive open task failed: {e}")))?
        }
        Target::Prefix => {
            let url = object_name(&location, "");
            directory::open(location)
                .await?
                .ok_or_else(|| SourceError::Invalid {
                    object: url,
                    message: "no mongodump dump found: expected <db>/<collection>.bson \
                              (or .metadata.json) files, or a location naming a single \
                              --archive object"
                        .into(),
                })
        }
    }
}
