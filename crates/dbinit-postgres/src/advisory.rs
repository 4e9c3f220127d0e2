//! The session advisory lock strategy.
//!
//! Keyed per database and schema by the server's own `hashtextextended`, so
//! every client agrees on the key whatever its version. Dies with the session
//! if the process dies. Unsafe behind a transaction-pooling proxy, where the
//! "session" is whichever server connection the pooler picked: see [`crate::lock`].
//!
//! Taking it: one `pg_try_advisory_lock` (the uncontended case costs one
//! round trip); when another process holds it, wait in the server's lock
//! queue with `lock_timeout` set to what is left of the wait. Polling would
//! wake up to a poll interval late after every release, and sixteen
//! processes serialize through the lock; the queue wakes the next one at once
//! and `lock_timeout` keeps the wait bounded. A waiter that may share queues
//! for the shared lock: the server grants it to every such waiter at once
//! when the holder unlocks.

use std::time::{Duration, Instant};

use dbinit_core::{CoreError, InitLock};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::error;

/// SQL for the lock key of the current database and schema (a `bigint`).
/// Exposed so that tools and tests can find or hold the same lock.
pub const INIT_LOCK_KEY_SQL: &str =
    "hashtextextended('dbinit-init:' || current_database() || ':' || coalesce(current_schema(), ''), 0)";

/// Takes the lock, waiting at most `wait`; with `share_if_busy`, a busy
/// lock is waited for in shared mode. Returns the key with the hold.
pub(crate) async fn acquire(
    client: &Client,
    wait: Duration,
    share_if_busy: bool,
) -> Result<(i64, InitLock), CoreError> {
    let started = Instant::now();
    let first = client
        .query_typed_one(
            &format!("SELECT k.key, pg_try_advisory_lock(k.key) AS locked FROM (SELECT {INIT_LOCK_KEY_SQL} AS key) k"),
            &[],
        )
        .await
        .map_err(|e| error::classify("cannot take the initialization lock", e))?;
    let key: i64 = first.get("key");
    let name = format!("advisory lock {key}");
    if first.get::<_, bool>("locked") {
        return Ok((key, InitLock::exclusive(name, started.elapsed())));
    }
    let waited_for = holder(client, key).await;
    tracing::info!(
        key,
        holder = waited_for.as_deref(),
        "another process is initializing; waiting"
    );
    match wait_in_queue(
        client,
        key,
        share_if_busy,
        wait.saturating_sub(started.elapsed()),
    )
    .await
    {
        Ok(()) => {}
        Err(QueueError::TimedOut) => {
            return Err(CoreError::LockTimeout {
                lock: name,
                waited: started.elapsed(),
                holder: holder(client, key).await.or(waited_for),
            })
        }
        Err(QueueError::Failed(e)) => return Err(e),
    }
    let waited = started.elapsed();
    tracing::info!(
        waited_ms = waited.as_millis() as u64,
        shared = share_if_busy,
        "initialization lock acquired"
    );
    Ok((
        key,
        InitLock {
            name,
            waited,
            shared: share_if_busy,
            waited_for,
        },
    ))
}

enum QueueError {
    TimedOut,
    Failed(CoreError),
}

/// Blocks in the server's lock queue for at most `wait`. The session-level
/// lock outlives the little transaction that scopes the timeouts.
async fn wait_in_queue(
    client: &Client,
    key: i64,
    shared: bool,
    wait: Duration,
) -> Result<(), QueueError> {
    let millis = wait.as_millis().clamp(1, i32::MAX as u128);
    let failed = |e| QueueError::Failed(error::classify("cannot take the initialization lock", e));
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = {millis}"
        ))
        .await
        .map_err(failed)?;
    let sql = if shared {
        "SELECT pg_advisory_lock_shared($1)"
    } else {
        "SELECT pg_advisory_lock($1)"
    };
    match client.query_typed(sql, &[(&key, Type::INT8)]).await {
        Ok(_) => client.batch_execute("COMMIT").await.map_err(failed),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                Err(QueueError::TimedOut)
            } else {
                Err(failed(e))
            }
        }
    }
}

/// Releases the lock; the session must not be in a transaction.
pub(crate) async fn release(client: &Client, key: i64, shared: bool) -> Result<(), CoreError> {
    let sql = if shared {
        "SELECT pg_advisory_unlock_shared($1)"
    } else {
        "SELECT pg_advisory_unlock($1)"
    };
    let released: bool = client
        .query_typed_one(sql, &[(&key, Type::INT8)])
        .await
        .map_err(|e| error::classify("cannot release the initialization lock", e))?
        .get(0);
    if !released {
        tracing::warn!(key, "the initialization lock was not held at release");
    }
    Ok(())
}

/// `pid N (application_name)` of a session holding the lock exclusively,
/// found without holding or knowing the key.
pub(crate) async fn exclusive_holder(client: &Client) -> Result<Option<String>, CoreError> {
    let key: i64 = client
        .query_typed_one(&format!("SELECT {INIT_LOCK_KEY_SQL}"), &[])
        .await
        .map_err(|e| error::classify("cannot look for the advisory lock", e))?
        .get(0);
    Ok(holder(client, key).await)
}

/// `pid N (application_name)` of the session holding the lock exclusively,
/// if visible.
async fn holder(client: &Client, key: i64) -> Option<String> {
    let (high, low) = ((key as u64 >> 32) as i64, (key as u64 & 0xffff_ffff) as i64);
    let row = client
        .query_typed_opt(
            "SELECT a.pid, a.application_name FROM pg_locks l \
             JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.mode = 'ExclusiveLock' \
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.database = \
                   (SELECT oid FROM pg_database WHERE datname = current_database()) \
             LIMIT 1",
            &[(&high, Type::INT8), (&low, Type::INT8)],
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
