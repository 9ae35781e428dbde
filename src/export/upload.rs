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

/// Bytes per multipart part: over S3's 5 MiB minimum, small enough to keep memory low.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one object uploading at once; the writer waits (backpressure) beyond this.
pub const PARTS_IN_FLIGHT: usize = 3;

pub struct Upload {
    store: Arc<dyn ObjectStore>,
    path: Path,
    buffer: Vec<u8>,
    multipart: Option<WriteMultipart>,
}

impl Upload {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path) -> Self {
        Upload {
            store,
            path,
            buffer: Vec::new(),
            multipart: None,
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
            let upload = handle.block_on(self.store.put_multipart(&self.path))?;
            self.multipart = Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE));
        }
        if let Some(multipart) = self.multipart.as_mut() {
            handle.block_on(multipart.wait_for_capacity(PARTS_IN_FLIGHT))?;
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
                handle.block_on(multipart.finish())?;
            }
            None => {
                let payload = PutPayload::from(Bytes::from(std::mem::take(&mut self.buffer)));
                handle.block_on(self.store.put(&self.path, payload))?;
            }
        }
        Ok(())
    }

    /// Aborts an in-flight multipart upload so no parts are left behind in the bucket.
    pub fn abort(mut self, handle: &Handle) {
        if let Some(multipart) = self.multipart.take()
            && let Err(error) = handle.block_on(multipart.abort())
        {
            tracing::warn!(path = %self.path, %error, "cannot abort multipart upload");
        }
    }
}
