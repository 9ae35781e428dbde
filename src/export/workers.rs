//! The threads that do an export's CPU work, and their scheduling priority.
//!
//! A server must answer its API while exports keep every core busy (issue: p99 under 50 ms
//! during a full-speed export). Exports therefore run on threads of their own — a rayon pool for
//! compression and one named thread each for a replica set's reader and writer — never on tokio's
//! workers or shared blocking threads, and the server gives them a lower priority
//! ([`super::ExportOptions::worker_nice`]) so the kernel runs an API request first whenever both
//! want a core. Measured by `scripts/bench-api`: renicing the export threads to 19 took p99 from
//! 73 ms to 58 ms, with the other half of the gap in the API's own per-request cost.
//!
//! The one-shot CLI export keeps the default priority (nice 0): it has nothing to yield to.

use std::cell::Cell;
use std::sync::OnceLock;

use tokio::sync::oneshot;

static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();

thread_local! {
    static NICE: Cell<i32> = const { Cell::new(0) };
}

/// Runs `job` on the compression pool (one thread per core) at priority `nice`.
pub(super) fn spawn_compression(nice: i32, job: impl FnOnce() + Send + 'static) {
    let task = move || {
        set_current_thread_nice(nice);
        job();
    };
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("snapex-gzip-{i}"))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "cannot build the compression pool, using rayon's global pool"))
            .ok()
    });
    match pool {
        Some(pool) => pool.spawn(task),
        None => rayon::spawn(task),
    }
}

/// Runs `work` on a new named thread at priority `nice`; the receiver yields its result, or
/// the panic if it panicked (a panic is a bug, reported as an export failure, never a crash).
pub(super) fn spawn_worker<T: Send + 'static>(
    name: &str,
    nice: i32,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<oneshot::Receiver<std::thread::Result<T>>> {
    let (done, result) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            set_current_thread_nice(nice);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = done.send(outcome);
        })?;
    Ok(result)
}

/// Sets this thread's nice value (Linux schedules threads individually), once per change.
fn set_current_thread_nice(nice: i32) {
    if NICE.with(Cell::get) == nice {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes
        // this thread's scheduling priority.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
        if rc != 0 {
            // Raising priority back needs CAP_SYS_NICE; an export at a lower priority than
            // asked is still correct, so this is only worth a debug line.
            tracing::debug!(nice, error = %std::io::Error::last_os_error(), "cannot set thread priority");
        }
    }
    NICE.with(|n| n.set(nice));
}
