//! [`Session`]: one connection to a database, handed to every step.

use std::any::Any;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::migration::{AppliedMigration, MigrationBatchError, MigrationFile};
use crate::{CoreError, Dialect, Row, Value};

/// Proof that the initialization lock is held; give it back to
/// [`Session::release_init_lock`].
#[derive(Debug)]
#[must_use = "release the lock with Session::release_init_lock"]
pub struct InitLock {
    /// What was locked: a lock file path or an advisory lock key.
    pub name: String,
    /// How long acquiring it took.
    pub waited: Duration,
}

/// A column, as introspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Declared type, as the database reports it.
    pub data_type: String,
    /// Whether `NULL` is allowed.
    pub nullable: bool,
    /// Whether the column is part of the primary key.
    pub primary_key: bool,
}

/// An index, as introspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    /// Index name.
    pub name: String,
    /// Indexed columns, in order.
    pub columns: Vec<String>,
    /// Whether the index enforces uniqueness.
    pub unique: bool,
}

/// Cancels what a [`Session`] is running, from another task or thread (a
/// signal handler): the statement fails, and the step's own error path rolls
/// back and releases the lock.
#[async_trait]
pub trait Canceller: Send + Sync {
    /// Asks the database to cancel the running statement (if any), and stops
    /// any wait the session is in. Idempotent; never fails loudly.
    async fn cancel(&self);
}

/// One connection to a database. Steps receive it as an argument: there is no
/// global "current connection".
///
/// SQL parameters are written `$1`, `$2`, ... on every backend.
#[async_trait]
pub trait Session: Send {
    /// The dialect of this session.
    fn dialect(&self) -> Dialect;

    /// A round trip to the database.
    async fn ping(&mut self) -> Result<(), CoreError>;

    /// Runs one statement and returns the number of rows it changed.
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, CoreError>;

    /// Runs one query and returns its rows.
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CoreError>;

    /// Runs several `;`-separated statements without parameters.
    async fn execute_batch(&mut self, sql: &str) -> Result<(), CoreError>;

    /// Starts a transaction.
    async fn begin(&mut self) -> Result<(), CoreError>;

    /// Commits the open transaction.
    async fn commit(&mut self) -> Result<(), CoreError>;

    /// Rolls back the open transaction.
    async fn rollback(&mut self) -> Result<(), CoreError>;

    /// Takes the lock that serializes initialization across processes,
    /// waiting at most `wait`.
    ///
    /// # Errors
    ///
    /// [`CoreError::LockTimeout`] when another holder keeps it longer.
    async fn acquire_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError>;

    /// Releases the lock taken by [`Session::acquire_init_lock`].
    async fn release_init_lock(&mut self, lock: InitLock) -> Result<(), CoreError>;

    /// Reads the migration history (refinery's `refinery_schema_history`),
    /// oldest first. Read-only: an absent history table reads as empty.
    async fn applied_migrations(&mut self) -> Result<Vec<AppliedMigration>, CoreError>;

    /// Applies `pending` in order, each atomically with its history row,
    /// creating the history table if needed. Stops at the first failure.
    ///
    /// # Errors
    ///
    /// The failing migration's error, with the migrations applied before it.
    async fn apply_migrations(
        &mut self,
        pending: &[MigrationFile],
    ) -> Result<Vec<AppliedMigration>, MigrationBatchError>;

    /// The user tables of the database (no internal or history tables), sorted.
    async fn tables(&mut self) -> Result<Vec<String>, CoreError>;

    /// The columns of `table`, in declaration order.
    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, CoreError>;

    /// The indexes of `table`, sorted by name.
    async fn indexes(&mut self, table: &str) -> Result<Vec<Index>, CoreError>;

    /// Inserts `rows` into `table` as fast as the backend allows, inside the
    /// caller's transaction if one is open. Returns the number of rows inserted.
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, CoreError>;

    /// A handle that cancels this session's running statement from elsewhere;
    /// `None` when the backend cannot (then only the next step sees the
    /// interruption).
    fn canceller(&self) -> Option<std::sync::Arc<dyn Canceller>> {
        None
    }

    /// The escape hatch to the native session type, for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}
