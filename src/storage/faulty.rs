//! [`FaultyStore`]: an [`ObjectStore`] that forwards every call to a real inner store and
//! starts failing writes at a chosen point, for tests of failure paths ("the store dies in the
//! middle of an upload: what is left in the bucket, what state does the job end in?").
//!
//! Writes are `put_opts`, each multipart `put_part`, and multipart `complete`. A fault trips
//! when a write would take the accepted bytes past a limit, or after a number of accepted
//! write calls. Once tripped it stays tripped (a real outage does not heal between retries):
//! every later write, including starting a multipart upload, fails too — or, with
//! [`FaultyStore::stall`], never finishes. Reads, lists, copies and deletes always pass
//! through, so a test can see what the failed run left behind, and cleanup code can run.
//!
//! Multipart uploads are wrapped so the store records which ones were completed and which
//! were aborted: "a failed upload is aborted, not left dangling" is then checkable on every
//! backend, including those that keep no trace of aborted uploads.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::FutureExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// The error a tripped [`FaultyStore`] returns, wrapped in `object_store::Error::Generic`
/// with `store: "FaultyStore"`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("injected fault: {reason}")]
pub struct InjectedFault {
    pub reason: String,
}

/// What a [`FaultyStore`] has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Payload bytes of the writes that were passed to the inner store.
    pub bytes_accepted: u64,
    /// Write calls (put, part, complete) passed to the inner store.
    pub writes_accepted: u64,
    /// Write calls refused (or stalled) because the fault had tripped.
    pub writes_failed: u64,
    /// Multipart uploads started, by location, in order.
    pub uploads_started: Vec<Path>,
    /// Multipart uploads completed successfully.
    pub uploads_completed: Vec<Path>,
    /// Multipart uploads on which `abort` was called (whatever the inner store answered).
    pub uploads_aborted: Vec<Path>,
}

#[derive(Debug, Default)]
struct State {
    fail_after_bytes: Option<u64>,
    fail_after_calls: Option<u64>,
    stall: bool,
    tripped: Option<String>,
    stats: FaultStats,
}

impl State {
    /// Decides whether a write of `bytes` may go through, and accounts for it.
    fn admit(&mut self, op: &str, location: &Path, bytes: u64) -> Result<(), InjectedFault> {
        if self.tripped.is_none()
            && let Some(limit) = self.fail_after_bytes
            && self.stats.bytes_accepted + bytes > limit
        {
            self.tripped = Some(format!(
                "write limit of {limit} bytes reached ({} accepted, {op} of {bytes} bytes to {location} refused)",
                self.stats.bytes_accepted
            ));
        }
        if self.tripped.is_none()
            && let Some(limit) = self.fail_after_calls
            && self.stats.writes_accepted >= limit
        {
            self.tripped = Some(format!(
                "write call limit of {limit} reached ({op} to {location} refused)"
            ));
        }
        match &self.tripped {
            Some(reason) => {
                self.stats.writes_failed += 1;
                Err(InjectedFault {
                    reason: reason.clone(),
                })
            }
            None => {
                self.stats.bytes_accepted += bytes;
                self.stats.writes_accepted += 1;
                Ok(())
            }
        }
    }
}

/// An [`ObjectStore`] wrapper that injects write failures; see the module docs.
///
/// Cloning shares the state, so a test keeps one handle for [`FaultyStore::stats`] while
/// the code under test holds another as `Arc<dyn ObjectStore>`.
#[derive(Clone)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &format_args!("{}", self.inner))
            .field("stats", &self.stats())
            .finish()
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// Wraps `inner`; no fault is armed until one of the `fail_*` methods is called.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FaultyStore {
            inner,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Accept writes while the total accepted payload stays within `bytes`; the first write
    /// that would go past it fails, and every write after it.
    pub fn fail_after_bytes(self, bytes: u64) -> Self {
        self.lock().fail_after_bytes = Some(bytes);
        self
    }

    /// Accept the first `calls` write calls (put, part, complete); every later one fails.
    pub fn fail_after_calls(self, calls: u64) -> Self {
        self.lock().fail_after_calls = Some(calls);
        self
    }

    /// Once tripped, hang instead of failing: the write future never completes, as with a
    /// store that stopped answering. For tests of cancellation and timeouts.
    pub fn stall(self) -> Self {
        self.lock().stall = true;
        self
    }

    /// Trips the fault now, whatever the limits.
    pub fn trip(&self, reason: impl Into<String>) {
        self.lock().tripped = Some(reason.into());
    }

    /// Disarms the fault: limits cleared, later writes go through again. Statistics are kept.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.tripped = None;
        state.fail_after_bytes = None;
        state.fail_after_calls = None;
    }

    /// Whether the fault has tripped.
    pub fn tripped(&self) -> bool {
        self.lock().tripped.is_some()
    }

    pub fn stats(&self) -> FaultStats {
        self.lock().stats.clone()
    }

    /// The multipart uploads on which `abort` was called.
    pub fn aborted_uploads(&self) -> Vec<Path> {
        self.lock().stats.uploads_aborted.clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain counters behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a write or turns the fault into an error (or a stall).
    async fn admit(&self, op: &str, location: &Path, bytes: u64) -> Result<()> {
        let decision = {
            let mut state = self.lock();
            state
                .admit(op, location, bytes)
                .map_err(|e| (e, state.stall))
        };
        match decision {
            Ok(()) => Ok(()),
            Err((_, true)) => futures::future::pending().await,
            Err((fault, false)) => Err(fault_error(fault)),
        }
    }

    fn check_tripped(&self) -> Result<(), (InjectedFault, bool)> {
        let mut state = self.lock();
        match state.tripped.clone() {
            Some(reason) => {
                state.stats.writes_failed += 1;
                Err((InjectedFault { reason }, state.stall))
            }
            None => Ok(()),
        }
    }
}

fn fault_error(fault: InjectedFault) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: Box::new(fault),
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.admit("put", location, payload.content_length() as u64)
            .await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // Starting an upload is not counted as a write, but a tripped store refuses it.
        match self.check_tripped() {
            Ok(()) => {}
            Err((_, true)) => futures::future::pending::<()>().await,
            Err((fault, false)) => return Err(fault_error(fault)),
        }
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        self.lock().stats.uploads_started.push(location.clone());
        Ok(Box::new(FaultyUpload {
            store: self.clone(),
            location: location.clone(),
            inner,
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// A multipart upload through a [`FaultyStore`].
struct FaultyUpload {
    store: FaultyStore,
    location: Path,
    inner: Box<dyn MultipartUpload>,
}

impl fmt::Debug for FaultyUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyUpload")
            .field("location", &self.location)
            .finish()
    }
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        // Decided here, synchronously, so that the order in which parts are handed over (not
        // the order in which their uploads finish) decides which part fails: deterministic.
        let decision = {
            let mut state = self.store.lock();
            state
                .admit("part", &self.location, data.content_length() as u64)
                .map_err(|e| (e, state.stall))
        };
        match decision {
            Ok(()) => self.inner.put_part(data),
            Err((_, true)) => futures::future::pending().boxed(),
            Err((fault, false)) => futures::future::ready(Err(fault_error(fault))).boxed(),
        }
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.store.admit("complete", &self.location, 0).await?;
        let result = self.inner.complete().await?;
        self.store
            .lock()
            .stats
            .uploads_completed
            .push(self.location.clone());
        Ok(result)
    }

    async fn abort(&mut self) -> Result<()> {
        self.store
            .lock()
            .stats
            .uploads_aborted
            .push(self.location.clone());
        self.inner.abort().await
    }
}
