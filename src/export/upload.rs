//! One object being written, from a blocking thread: a single `put` when the object turns out
//! small, a multipart upload with bounded parts in flight when it grows past one part.
//!
//! Small objects are common (metadata, small collections) and a multipart upload costs three
//! requests; large ones must never be held in memory. So bytes are buffered up to one part and
//! the multipart upload starts only when a second part is needed.
//!
//! Parts are driven here rather than through `object_store::WriteMultipart`, whose `finish`
//! consumes the upload: a cancellation that interrupts it would leave the upload impossible to
//! abort, and its parts behind in the bucket. With `MultipartUpload` held until the end, every
//! way out of an unfinished upload (error, cancellation, stalled store) ends in `abort`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Handle;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Bytes per multipart part: over S3's 5 MiB minimum, small enough to keep memory low.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one object uploading at once; the writer waits (backpressure) beyond this.
pub const PARTS_IN_FLIGHT: usize = 3;

/// How long an abort may take before we give up on it: a stalled store must not stall the
/// cancellation of an export.
const ABORT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a multipart creation cut short by a stop is still awaited, to abort it.
const CREATE_GRACE: Duration = Duration::from_secs(1);

/// Runs a store call, giving up as soon as `stop` is cancelled, so that a stalled store can
/// never keep a cancelled or failed export alive.
pub fn block_on_or_stop<T>(
    handle: &Handle,
    stop: &CancellationToken,
    call: impl std::future::Future<Output = Result<T, object_store::Error>>,
) -> Result<T, object_store::Error> {
    handle.block_on(async {
        tokio::select! {
            result = call => result,
            _ = stop.cancelled() => Err(stopped()),
        }
    })
}

fn stopped() -> object_store::Error {
    object_store::Error::Generic {
        store: "snapex",
        source: "export stopped".into(),
    }
}

struct Multipart {
    upload: Box<dyn MultipartUpload>,
    parts: JoinSet<Result<(), object_store::Error>>,
    /// Whether the test-only pause point of the first part was passed.
    paused: bool,
}

pub struct Upload {
    store: Arc<dyn ObjectStore>,
    path: Path,
    buffer: Vec<u8>,
    multipart: Option<Multipart>,
    stop: CancellationToken,
}

impl Upload {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, stop: CancellationToken) -> Self {
        Upload {
            store,
            path,
            buffer: Vec::new(),
            multipart: None,
            stop,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends bytes; may block on the upload of earlier parts. The caller holds a
    /// `Handle::enter` guard: part uploads are spawned onto the runtime.
    pub fn write(&mut self, handle: &Handle, data: &[u8]) -> Result<(), object_store::Error> {
        self.buffer.extend_from_slice(data);
        while self.buffer.len() >= PART_SIZE {
            let rest = self.buffer.split_off(PART_SIZE);
            let part = std::mem::replace(&mut self.buffer, rest);
            self.send_part(handle, part)?;
        }
        Ok(())
    }

    fn send_part(&mut self, handle: &Handle, part: Vec<u8>) -> Result<(), object_store::Error> {
        if self.multipart.is_none() {
            let upload = self.create_multipart(handle)?;
            self.multipart = Some(Multipart {
                upload,
                parts: JoinSet::new(),
                paused: false,
            });
        }
        let Some(multipart) = self.multipart.as_mut() else {
            return Ok(());
        };
        // Backpressure: at most PARTS_IN_FLIGHT parts of this object in memory and in flight.
        while multipart.parts.len() >= PARTS_IN_FLIGHT {
            wait_for_one(handle, &self.stop, &mut multipart.parts)?;
        }
        let upload = multipart
            .upload
            .put_part(PutPayload::from(Bytes::from(part)));
        multipart.parts.spawn(upload);
        if !multipart.paused {
            multipart.paused = true;
            if crate::pause::armed(crate::pause::Phase::WritingData) {
                // Test-only (see `crate::pause`): the first part is in the store, the object
                // unfinished.
                wait_for_one(handle, &self.stop, &mut multipart.parts)?;
                crate::pause::blocking_at(crate::pause::Phase::WritingData);
            }
        }
        Ok(())
    }

    /// Starts the multipart upload. If the export stops meanwhile, the store may already have
    /// created it: its handle is awaited a little longer so that it can be aborted, not left
    /// behind.
    fn create_multipart(
        &self,
        handle: &Handle,
    ) -> Result<Box<dyn MultipartUpload>, object_store::Error> {
        let stop = &self.stop;
        let path = &self.path;
        handle.block_on(async {
            let create = self.store.put_multipart(path);
            tokio::pin!(create);
            tokio::select! {
                created = &mut create => created,
                _ = stop.cancelled() => {
                    if let Ok(Ok(mut upload)) = tokio::time::timeout(CREATE_GRACE, create).await
                        && tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await.is_err()
                    {
                        tracing::warn!(%path, "multipart upload abort timed out");
                    }
                    Err(stopped())
                }
            }
        })
    }

    /// Completes the object: after this returns Ok, readers see all of it. On any failure an
    /// unfinished multipart upload is aborted before the error is returned.
    pub fn finish(mut self, handle: &Handle) -> Result<(), object_store::Error> {
        if self.multipart.is_none() {
            let payload = PutPayload::from(Bytes::from(std::mem::take(&mut self.buffer)));
            return block_on_or_stop(handle, &self.stop, self.store.put(&self.path, payload))
                .map(|_| ());
        }
        let result = self.complete(handle);
        if result.is_err() {
            self.abort(handle);
        }
        result
    }

    fn complete(&mut self, handle: &Handle) -> Result<(), object_store::Error> {
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            self.send_part(handle, last)?;
        }
        let Some(multipart) = self.multipart.as_mut() else {
            return Ok(());
        };
        while !multipart.parts.is_empty() {
            wait_for_one(handle, &self.stop, &mut multipart.parts)?;
        }
        block_on_or_stop(handle, &self.stop, multipart.upload.complete())?;
        self.multipart = None;
        Ok(())
    }

    /// Aborts an in-flight multipart upload so no parts are left behind in the bucket.
    pub fn abort(mut self, handle: &Handle) {
        self.abort_parts(handle);
    }

    fn abort_parts(&mut self, handle: &Handle) {
        let Some(mut multipart) = self.multipart.take() else {
            return;
        };
        multipart.parts.abort_all();
        match handle.block_on(tokio::time::timeout(
            ABORT_TIMEOUT,
            multipart.upload.abort(),
        )) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(path = %self.path, %error, "cannot abort multipart upload")
            }
            Err(_) => tracing::warn!(path = %self.path, "multipart upload abort timed out"),
        }
    }
}

fn wait_for_one(
    handle: &Handle,
    stop: &CancellationToken,
    parts: &mut JoinSet<Result<(), object_store::Error>>,
) -> Result<(), object_store::Error> {
    let joined = handle.block_on(async {
        tokio::select! {
            joined = parts.join_next() => Ok(joined),
            _ = stop.cancelled() => Err(stopped()),
        }
    })?;
    match joined {
        Some(Ok(result)) => result,
        Some(Err(join_error)) => Err(object_store::Error::Generic {
            store: "snapex",
            source: Box::new(join_error),
        }),
        None => Ok(()),
    }
}
