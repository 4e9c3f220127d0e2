//! Waiting for the server: retry transient failures with exponential backoff
//! and jitter until a deadline, logging once when the wait starts and once
//! when it ends, never once per attempt.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use dbinit_core::CoreError;
use deadpool_postgres::{Object, Pool, PoolError};

use crate::error;

/// Why getting a connection failed.
pub(crate) enum GetError {
    /// The database does not exist (the caller may create it).
    MissingDatabase(tokio_postgres::Error),
    /// Anything else, classified.
    Fatal(CoreError),
}

/// Gets a connection from `pool`, retrying transient failures until
/// `timeout` has passed. `what` names the target (redacted) for messages.
pub(crate) async fn get(pool: &Pool, timeout: Duration, what: &str) -> Result<Object, GetError> {
    let started = Instant::now();
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let err = match pool.get().await {
            Ok(client) => {
                if attempts > 1 {
                    tracing::info!(
                        waited_ms = started.elapsed().as_millis() as u64,
                        attempts,
                        "database reachable"
                    );
                }
                return Ok(client);
            }
            Err(PoolError::Backend(e)) => e,
            Err(other) => {
                return Err(GetError::Fatal(CoreError::backend(
                    dbinit_core::ErrorKind::Unreachable,
                    format!("cannot connect to {what}: {other}"),
                )))
            }
        };
        if error::is_missing_database(&err) {
            if attempts > 1 {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    attempts,
                    "database server reachable"
                );
            }
            return Err(GetError::MissingDatabase(err));
        }
        let elapsed = started.elapsed();
        if !error::is_transient(&err) || elapsed >= timeout {
            if attempts > 1 {
                tracing::warn!(
                    waited_ms = elapsed.as_millis() as u64,
                    attempts,
                    "gave up waiting for the database"
                );
            }
            let context = if attempts > 1 {
                format!(
                    "cannot connect to {what} after {:.1}s and {attempts} attempts",
                    elapsed.as_secs_f64()
                )
            } else {
                format!("cannot connect to {what}")
            };
            return Err(GetError::Fatal(error::classify(context, err)));
        }
        if attempts == 1 {
            tracing::warn!(
                error = %error::describe(&err),
                timeout_s = timeout.as_secs_f64(),
                "database not reachable yet; waiting"
            );
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(delay.min(timeout.saturating_sub(elapsed))).await;
    }
}
