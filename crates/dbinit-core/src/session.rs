//! [`Session`]: one connection to a database, handed to every step.

use std::any::Any;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::dialect::Dialect;
use crate::load::{LoadFailure, LoadOutcome, LoadSpec, RowBatches};
use crate::{CoreError, Row, Value};

/// Proof that the initialization lock is held; give it back to
/// [`Session::release_init_lock`].
#[derive(Debug)]
#[must_use = "release the lock with Session::release_init_lock"]
pub struct InitLock {
    /// What was locked, and how: a lock file path, an advisory lock key, a
    /// lease row.
    pub name: String,
    /// How long acquiring it took.
    pub waited: Duration,
    /// A shared hold, from [`Session::acquire_or_share_init_lock`]: another
    /// process initialized while this one waited. Readers may verify; any
    /// write needs the exclusive lock.
    pub shared: bool,
    /// Who held the lock while this process waited, when known (`pid 42`,
    /// `host web-1 pid 42`).
    pub waited_for: Option<String>,
}

impl InitLock {
    /// An exclusive hold, taken after `waited`.
    pub fn exclusive(name: impl Into<String>, waited: Duration) -> Self {
        InitLock {
            name: name.into(),
            waited,
            shared: false,
            waited_for: None,
        }
    }

    /// A shared hold, taken after `waited` for `waited_for`.
    pub fn shared(name: impl Into<String>, waited: Duration, waited_for: Option<String>) -> Self {
        InitLock {
            shared: true,
            waited_for,
            ..Self::exclusive(name, waited)
        }
    }
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
    /// Whether it covers only the rows a `WHERE` clause selects.
    pub partial: bool,
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

/// A migration script handed to [`Session::execute_migration`].
#[derive(Debug, Clone, Copy)]
pub struct Script<'a> {
    /// The file, for errors: `V3__users.sql` or `V3__users.down.sql`.
    pub file: &'a str,
    /// The SQL.
    pub sql: &'a str,
    /// Whether the engine opened a transaction around it; `false` for a
    /// `-- dbinit:no-transaction` script, whose statements run one by one.
    pub in_transaction: bool,
}

/// One connection to a database. Steps receive it as an argument: there is no
/// global "current connection".
///
/// A backend implements a few primitives; everything else — the migration
/// engine ([`crate::engine`]), seeding, health checks — is written once over
/// them, like refinery's `AsyncMigrate`. The provided methods are correct for
/// any SQL database that speaks `BEGIN`/`COMMIT`; backends override them
/// only to be faster or stricter.
///
/// SQL parameters are written as the backend's [`Dialect`] says (`$1`,
/// `?`); what dbinit itself writes goes through [`Session::dialect`].
#[async_trait]
pub trait Session: Send {
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

    /// Takes the lock that serializes initialization across processes,
    /// waiting at most `wait`.
    ///
    /// # Errors
    ///
    /// [`CoreError::LockTimeout`] when another holder keeps it longer.
    async fn acquire_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError>;

    /// Takes the lock exclusively if it is free. Otherwise waits until its
    /// holder is done and returns a shared hold ([`InitLock::shared`]), so
    /// that the processes that lost the race verify the holder's work in
    /// parallel instead of repeating it one after another. A shared hold
    /// keeps any new exclusive holder out while it lasts, where the backend
    /// can (a lease cannot: it returns a hold on nothing).
    ///
    /// The default takes the exclusive lock.
    ///
    /// # Errors
    ///
    /// [`CoreError::LockTimeout`] when another holder keeps it longer.
    async fn acquire_or_share_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.acquire_init_lock(wait).await
    }

    /// Releases a lock taken by [`Session::acquire_init_lock`] or
    /// [`Session::acquire_or_share_init_lock`].
    async fn release_init_lock(&mut self, lock: InitLock) -> Result<(), CoreError>;

    /// Whether `table` exists (in the session's schema).
    async fn table_exists(&mut self, table: &str) -> Result<bool, CoreError>;

    /// The user tables of the database (no internal or dbinit tables), sorted.
    async fn tables(&mut self) -> Result<Vec<String>, CoreError>;

    /// The columns of `table`, in declaration order.
    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, CoreError>;

    /// The indexes of `table`, sorted by name.
    async fn indexes(&mut self, table: &str) -> Result<Vec<Index>, CoreError>;

    /// The escape hatch to the native session type, for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;

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

    /// Which of `tables` do not exist. The default lists every table; a
    /// backend overrides it to look the names up in one round trip.
    async fn missing_tables(&mut self, tables: &[String]) -> Result<Vec<String>, CoreError> {
        let present = self.tables().await?;
        Ok(tables
            .iter()
            .filter(|t| !present.contains(t))
            .cloned()
            .collect())
    }

    /// `query`, or `None` when `table` does not exist. A backend overrides
    /// it to do both in one round trip (the no-op `init` reads the history
    /// this way).
    async fn query_table(&mut self, table: &str, sql: &str) -> Result<Option<Vec<Row>>, CoreError> {
        if !self.table_exists(table).await? {
            return Ok(None);
        }
        self.query(sql, &[]).await.map(Some)
    }

    /// Runs a migration script, inside the engine's transaction or (when
    /// `script.in_transaction` is false) statement by statement. A backend
    /// overrides it to refuse what would break the engine's promises before
    /// it runs (transaction control, changes to the history table) and to
    /// name the failing line.
    ///
    /// # Errors
    ///
    /// [`CoreError::MigrationFailed`] naming `script.file`.
    async fn execute_migration(&mut self, script: Script<'_>) -> Result<(), CoreError> {
        self.execute_batch(script.sql)
            .await
            .map_err(|e| CoreError::MigrationFailed {
                file: script.file.to_owned(),
                message: e.to_string(),
                source: Some(Box::new(e)),
            })
    }

    /// Undoes session state a migration may have changed (`SET search_path`,
    /// `SET ROLE`, a pragma), without releasing the init lock. Runs right
    /// after every script, inside its transaction when it has one, before
    /// the engine writes the history row. The default has nothing to undo.
    async fn reset_session(&mut self) -> Result<(), CoreError> {
        Ok(())
    }

    /// Inserts `rows` into `table` as fast as the backend allows, inside the
    /// caller's transaction if one is open. Returns the number of rows
    /// inserted. The default inserts row by row.
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, CoreError> {
        let sql = crate::dialect::insert(self.dialect(), table, columns);
        let mut inserted = 0;
        for row in rows {
            inserted += self.execute(&sql, row).await?;
        }
        Ok(inserted)
    }

    /// Streams `rows` into `spec.table`, upserting by `spec.key`, inside
    /// the caller's transaction. The default runs one upsert per row
    /// ([`crate::load::load_row_by_row`]); backends override it with their
    /// fastest path (`COPY` on PostgreSQL).
    ///
    /// # Errors
    ///
    /// The first refused row, with its index in the stream when known.
    async fn load_rows(
        &mut self,
        spec: &LoadSpec,
        rows: &mut dyn RowBatches,
    ) -> Result<LoadOutcome, LoadFailure> {
        crate::load::load_row_by_row(self, spec, rows).await
    }

    /// A handle that cancels this session's running statement from elsewhere;
    /// `None` when the backend cannot (then only the next step sees the
    /// interruption).
    fn canceller(&self) -> Option<std::sync::Arc<dyn Canceller>> {
        None
    }
}
