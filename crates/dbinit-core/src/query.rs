//! [`Query`]: the part of a [`Session`](crate::Session) every backend
//! provides — statements, queries, transactions — and what the other
//! capabilities' defaults are written over.

use std::sync::Arc;

use async_trait::async_trait;

use crate::dialect::Dialect;
use crate::{CoreError, Row, Value};

/// Cancels what a [`Session`] is running, from another task or thread (a
/// signal handler): the statement fails, and the step's own error path rolls
/// back and releases the lock.
#[async_trait]
pub trait Canceller: Send + Sync {
    /// Asks the database to cancel the running statement (if any), and stops
    /// any wait the session is in. Idempotent; never fails loudly.
    async fn cancel(&self);
}

/// Statements, queries and transactions on one connection.
///
/// SQL parameters are written as the backend's [`Dialect`] says (`$1`,
/// `?`); what dbinit itself writes goes through [`Query::dialect`]. The
/// provided transaction methods are right for any SQL database that speaks
/// `BEGIN`/`COMMIT`.
#[async_trait]
pub trait Query: Send {
    /// The registered name of the backend serving this session (`"sqlite"`).
    fn backend(&self) -> &'static str;

    /// How this backend writes SQL.
    fn dialect(&self) -> &dyn Dialect;

    /// Runs one statement and returns the number of rows it changed.
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, CoreError>;

    /// Runs one query and returns its rows.
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CoreError>;

    /// Runs several `;`-separated statements without parameters.
    async fn execute_batch(&mut self, sql: &str) -> Result<(), CoreError>;

    /// A round trip to the database.
    async fn ping(&mut self) -> Result<(), CoreError> {
        self.query("SELECT 1", &[]).await.map(|_| ())
    }

    /// Starts a transaction.
    async fn begin(&mut self) -> Result<(), CoreError> {
        self.execute_batch("BEGIN").await
    }

    /// Commits the open transaction.
    async fn commit(&mut self) -> Result<(), CoreError> {
        self.execute_batch("COMMIT").await
    }

    /// Rolls back the open transaction (a no-op without one).
    async fn rollback(&mut self) -> Result<(), CoreError> {
        self.execute_batch("ROLLBACK").await
    }

    /// A handle that cancels this session's running statement from elsewhere;
    /// `None` when the backend cannot (then only the next step sees the
    /// interruption).
    fn canceller(&self) -> Option<Arc<dyn Canceller>> {
        None
    }
}
