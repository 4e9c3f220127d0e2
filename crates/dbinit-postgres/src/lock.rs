//! The initialization lock: a session-level advisory lock.
//!
//! Keyed per database and schema by the server's own `hashtextextended`, so
//! every client agrees on the key whatever its version. Polled with
//! `pg_try_advisory_lock` (never a blocking `pg_advisory_lock`: a bounded
//! wait must stay bounded), and dies with the session if the process dies.

use std::time::{Duration, Instant};

use dbinit_core::wait::lock_poll_delays;
use dbinit_core::{CoreError, InitLock};
use tokio_postgres::Client;

use crate::error;

/// SQL for the lock key of the current database and schema (a `bigint`).
/// Exposed so that tools and tests can find or hold the same lock.
pub const INIT_LOCK_KEY_SQL: &str =
    "hashtextextended('dbinit-init:' || current_database() || ':' || coalesce(current_schema(), ''), 0)";

/// Takes the lock, waiting at most `wait`. Returns the key with the lock.
pub(crate) async fn acquire(client: &Client, wait: Duration) -> Result<(i64, InitLock), CoreError> {
    let started = Instant::now();
    let first = client
        .query_one(
            &format!("SELECT k.key, pg_try_advisory_lock(k.key) AS locked FROM (SELECT {INIT_LOCK_KEY_SQL} AS key) k"),
            &[],
        )
        .await
        .map_err(|e| error::classify("cannot take the initialization lock", e))?;
    let key: i64 = first.get("key");
    let mut locked: bool = first.get("locked");
    let mut delays = lock_poll_delays();
    let mut announced = false;
    while !locked {
        let waited = started.elapsed();
        if waited >= wait {
            return Err(CoreError::LockTimeout {
                lock: format!("advisory lock {key}"),
                waited,
                holder: holder(client, key).await,
            });
        }
        if !announced {
            tracing::info!(key, "another process is initializing; waiting");
            announced = true;
        }
        let delay = delays.next().unwrap_or(Duration::from_millis(100));
        tokio::time::sleep(delay.min(wait - waited)).await;
        locked = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| error::classify("cannot take the initialization lock", e))?
            .get(0);
    }
    let waited = started.elapsed();
    if announced {
        tracing::info!(
            waited_ms = waited.as_millis() as u64,
            "initialization lock acquired"
        );
    }
    Ok((
        key,
        InitLock {
            name: format!("advisory lock {key}"),
            waited,
        },
    ))
}

/// Releases the lock; the session must not be in a transaction.
pub(crate) async fn release(client: &Client, key: i64) -> Result<(), CoreError> {
    let released: bool = client
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .map_err(|e| error::classify("cannot release the initialization lock", e))?
        .get(0);
    if !released {
        tracing::warn!(key, "the initialization lock was not held at release");
    }
    Ok(())
}

/// `pid N (application_name)` of the session holding the lock, if visible.
async fn holder(client: &Client, key: i64) -> Option<String> {
    let (high, low) = ((key as u64 >> 32) as i64, (key as u64 & 0xffff_ffff) as i64);
    let row = client
        .query_opt(
            "SELECT a.pid, a.application_name FROM pg_locks l \
             JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.database = \
                   (SELECT oid FROM pg_database WHERE datname = current_database()) \
             LIMIT 1",
            &[&high, &low],
        )
        .await
        .ok()??;
    let pid: i32 = row.get(0);
    let app: Option<String> = row.get(1);
    Some(match app.filter(|a| !a.is_empty()) {
        Some(app) => format!("pid {pid} ({app})"),
        None => format!("pid {pid}"),
    })
}
