//! What one `GET …/backup/exports/{id}` costs in SQLite round trips, and what pool settings
//! change it (evidence for the `scripts/bench-api` findings).
//!
//! The GET path runs six small queries (bearer token, grants, project, cluster, job, job
//! parts), each through `sqlx`'s `Any` pool on the embedded SQLite, whose connections each live
//! on a dedicated worker thread: every query is a hand-off to that thread and back, and with
//! `test_before_acquire` (sqlx's default) every acquire adds a ping, i.e. another hand-off.
//! This example opens a pool the way `Store::open` does (same pragmas, 8 connections), runs
//! "six point lookups" from 16 concurrent tasks on a 2-worker runtime, and prints throughput
//! and process CPU per simulated request for:
//!   default     six queries on the pool, test_before_acquire = true (as the store does today)
//!   no-ping     the same with test_before_acquire(false)
//!   one-conn    the six queries on one acquired connection (no ping)
//!   one-query   one query that reads the same rows (a join), no ping
//!
//! Usage: cargo run --release --example api_sqlite_roundtrip [SECONDS_PER_CASE]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

const TASKS: usize = 16;

fn cpu_seconds() -> f64 {
    // utime + stime of the whole process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, s)| s).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn open(url: &str, ping: bool) -> AnyPool {
    AnyPoolOptions::new()
        .max_connections(8)
        .test_before_acquire(ping)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .expect("open sqlite")
}

#[derive(Clone, Copy, Debug)]
enum Case {
    Default,
    NoPing,
    OneConn,
    OneQuery,
}

const LOOKUPS: [&str; 6] = [
    "SELECT id, v FROM t1 WHERE id = $1",
    "SELECT id, v FROM t2 WHERE id = $1",
    "SELECT id, v FROM t3 WHERE id = $1",
    "SELECT id, v FROM t4 WHERE id = $1",
    "SELECT id, v FROM t5 WHERE id = $1",
    "SELECT id, v FROM t6 WHERE id = $1",
];
const JOINED: &str = "SELECT t1.v, t2.v, t3.v, t4.v, t5.v, t6.v FROM t1 \
    JOIN t2 ON t2.id = t1.id JOIN t3 ON t3.id = t1.id JOIN t4 ON t4.id = t1.id \
    JOIN t5 ON t5.id = t1.id JOIN t6 ON t6.id = t1.id WHERE t1.id = $1";

async fn one_request(pool: &AnyPool, case: Case) -> Result<(), sqlx::Error> {
    match case {
        Case::Default | Case::NoPing => {
            for q in LOOKUPS {
                sqlx::query(q).bind("k").fetch_optional(pool).await?;
            }
        }
        Case::OneConn => {
            let mut conn = pool.acquire().await?;
            for q in LOOKUPS {
                sqlx::query(q).bind("k").fetch_optional(&mut *conn).await?;
            }
        }
        Case::OneQuery => {
            sqlx::query(JOINED).bind("k").fetch_optional(pool).await?;
        }
    }
    Ok(())
}

async fn run(url: &str, case: Case, seconds: u64) {
    let pool = open(url, matches!(case, Case::Default)).await;
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    one_request(&pool, case).await.expect("query");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let n = done.load(Ordering::Relaxed) as f64;
    println!(
        "{:<10} {:>9.0} requests/s {:>8.3} ms CPU per request",
        format!("{case:?}"),
        n / wall,
        cpu * 1e3 / n
    );
    pool.close().await;
}

fn main() {
    let seconds = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("roundtrip.db").display()
    );
    install_default_drivers();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let pool = open(&url, true).await;
        for i in 1..=6 {
            pool.execute(
                format!(
                    "CREATE TABLE t{i} (id TEXT PRIMARY KEY, v TEXT NOT NULL); \
                     INSERT INTO t{i} (id, v) VALUES ('k', 'value {i}');"
                )
                .as_str(),
            )
            .await
            .expect("schema");
        }
        pool.close().await;
        println!("{TASKS} tasks on 2 tokio workers, one simulated GET = 6 point lookups");
        for case in [Case::Default, Case::NoPing, Case::OneConn, Case::OneQuery] {
            run(&url, case, seconds).await;
        }
    });
}
