//! Where job heartbeats run: a thread of their own ("snapex-heartbeat") with a single-threaded
//! tokio runtime and a small pool of its own on the metadata store.
//!
//! Why: a late heartbeat is a false death — another node fails a live node's job as
//! interrupted (seen on a CPU-starved machine, issue 10). On the request runtime a heartbeat
//! shares worker threads with API requests and blocking export setup, and its database I/O is
//! driven by that runtime's reactor; here it needs only one thread to get the CPU now and then.
//! The thread keeps the default priority while export threads run at nice 10
//! (`export::workers`), so the kernel schedules it ahead of them; the pool's connections are
//! opened on this runtime, so their I/O never waits for a busy runtime elsewhere. The
//! alternative of renewing leases from the export threads themselves was rejected: a stalled
//! store call would then stop the heartbeat of a job that is merely waiting.
//!
//! When the thread or its pool cannot be set up, heartbeats fall back to the caller's runtime
//! and store (as before), with a warning.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Connections of the heartbeat's pool: one heartbeat at a time per job, a few jobs per node.
const POOL_CONNECTIONS: u32 = 2;

pub(super) struct Heartbeats {
    handle: Handle,
    store: Store,
    stop: CancellationToken,
}

impl Heartbeats {
    /// Starts the heartbeat thread (see the module docs).
    pub(super) async fn start(store: &Store) -> Heartbeats {
        let stop = CancellationToken::new();
        let (ready, started) = tokio::sync::oneshot::channel();
        let main_store = store.clone();
        let stopped = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("snapex-heartbeat".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match main_store.connect_again(POOL_CONNECTIONS).await {
                        Ok(own) => {
                            let _ = ready.send(Ok((Handle::current(), own)));
                        }
                        Err(e) => {
                            let _ = ready.send(Err(crate::errors::chain(&e)));
                            return;
                        }
                    }
                    stopped.cancelled().await;
                });
            });
        let outcome = match spawned {
            Ok(_) => started
                .await
                .unwrap_or_else(|_| Err("the heartbeat thread stopped".into())),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok((handle, store)) => Heartbeats {
                handle,
                store,
                stop,
            },
            Err(error) => {
                tracing::warn!(%error, "cannot start the heartbeat thread; heartbeats share the request runtime");
                Heartbeats {
                    handle: Handle::current(),
                    store: store.clone(),
                    stop,
                }
            }
        }
    }

    /// The store heartbeats write through (this thread's own pool).
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a heartbeat loop on the heartbeat thread.
    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
        self.handle.spawn(task)
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
