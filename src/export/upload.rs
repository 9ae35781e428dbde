//! One object being written, from a blocking thread: a single `put` when the object turns out
//! small, a multipart upload with bounded parts in flight when it grows past one part.
//!
//! Small objects are common (metadata, small collections) and a multipart upload costs three
//! requests; large ones must never be held in memory. So bytes are buffered up to one part and
//! the multipart upload starts only when a second part is needed.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// Bytes per multipart part: over S3's 5 MiB minimum, small enough to keep memory low.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one object uploading at once; the writer waits (backpressure) beyond this.
pub const PARTS_IN_FLIGHT: usize = 3;

pub struct Upload {
    store: Arc<dyn ObjectStore>,
    path: Path,
    buffer: Vec<u8>,
    multipart: Option<WriteMultipart>,
    stop: CancellationToken,
}

/// How long an abort may take before we give up on it: a stalled store must not stall the
/// cancellation of an export.
const ABORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
            _ = stop.cancelled() => Err(object_store::Error::Generic {
                store: "snapex",
                source: "export stopped".into(),
            }),
        }
    })
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

    /// Appends bytes; may block on the upload of earlier parts.
    pub fn write(&mut self, handle: &Handle, data: &[u8]) -> Result<(), object_store::Error> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() < PART_SIZE {
            return Ok(());
        }
        if self.multipart.is_none() {
            let upload =
                block_on_or_stop(handle, &self.stop, self.store.put_multipart(&self.path))?;
            self.multipart = Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE));
        }
        if let Some(multipart) = self.multipart.as_mut() {
            block_on_or_stop(
                handle,
                &self.stop,
                multipart.wait_for_capacity(PARTS_IN_FLIGHT),
            )?;
            // WriteMultipart spawns part uploads onto the runtime: the caller holds an
            // `Handle::enter` guard.
            multipart.write(&self.buffer);
            self.buffer.clear();
        }
        Ok(())
    }

    /// Completes the object: after this returns Ok, readers see all of it.
    pub fn finish(mut self, handle: &Handle) -> Result<(), object_store::Error> {
        match self.multipart.take() {
            Some(mut multipart) => {
                multipart.write(&self.buffer);
                block_on_or_stop(handle, &self.stop, multipart.finish())?;
            }
            None => {
                let payload = PutPayload::from(Bytes::from(std::mem::take(&mut self.buffer)));
                block_on_or_stop(handle, &self.stop, self.store.put(&self.path, payload))?;
            }
        }
        Ok(())
    }

    /// Aborts an in-flight multipart upload so no parts are left behind in the bucket.
    pub fn abort(mut self, handle: &Handle) {
        if let Some(multipart) = self.multipart.take() {
            match handle.block_on(tokio::time::timeout(ABORT_TIMEOUT, multipart.abort())) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(path = %self.path, %error, "cannot abort multipart upload")
                }
                Err(_) => tracing::warn!(path = %self.path, "multipart upload abort timed out"),
            }
        }
    }
}
