//! [`SqliteSession`]: a rusqlite connection driven from async code.

use std::any::Any;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::dialect::SqliteDialect;
use dbinit_core::load::{self, LoadFailure, LoadOutcome, LoadSpec, RowBatches};
use dbinit_core::Dialect;
use dbinit_core::{
    async_trait, BulkLoad, Canceller, Column, CoreError, ErrorKind, Index, InitLock, Introspect,
    Locking, MigrationScripts, Query, Row, Script, Session, Value,
};
use rusqlite::config::DbConfig;
use rusqlite::Connection;

use crate::conn::{self, batch, blocking, execute, query};
use crate::files::DbFile;
use crate::{bulk, busy, error, introspect, lock, script};

/// The backend's registered name.
pub(crate) const NAME: &str = "sqlite";

/// A session on one SQLite connection.
///
/// rusqlite is synchronous: every call runs on tokio's blocking pool with the
/// caller's tracing span, like deadpool-sqlite's `interact` — or on the
/// calling thread when opened with `ConnectOptions::run_inline`.
pub struct SqliteSession {
    /// `None` only while a blocking call owns the connection, or after that
    /// call panicked.
    conn: Option<Connection>,
    /// `None` for an in-memory database.
    file: Option<DbFile>,
    lock_file: Option<File>,
    /// Whether the lock file says this session is writing (see `lock.rs`).
    marked_writing: bool,
    /// Whether this session may write: until then it never checkpoints.
    writing: bool,
    /// Set by the [`Canceller`]; stops a wait for the lock.
    cancelled: Arc<AtomicBool>,
    run_inline: bool,
    busy: Duration,
    /// Device and inode of the file when it was opened.
    opened: Option<(u64, u64)>,
}

/// Device and inode of `path`, if it exists.
fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl SqliteSession {
    pub(crate) fn new(
        conn: Connection,
        file: Option<DbFile>,
        run_inline: bool,
        busy: Duration,
        cancelled: Arc<AtomicBool>,
    ) -> Self {
        let opened = file.as_ref().and_then(|f| identity(f.path()));
        SqliteSession {
            conn: Some(conn),
            file,
            lock_file: None,
            marked_writing: false,
            writing: false,
            cancelled,
            run_inline,
            busy,
            opened,
        }
    }

    /// Runs `f` with the native connection, synchronously. The escape hatch
    /// for what the [`Session`] trait does not cover.
    ///
    /// # Errors
    ///
    /// When an earlier blocking call panicked and lost the connection.
    pub fn with_connection<R>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> R,
    ) -> Result<R, CoreError> {
        let conn = self.conn.as_mut().ok_or_else(lost)?;
        Ok(busy::with_budget(self.busy, &self.cancelled, || f(conn)))
    }

    /// Before the first write: from now on, closing may checkpoint the WAL
    /// into the file as usual (it holds only what this database wrote), and
    /// a new database switches to WAL.
    async fn start_writing(&mut self) -> Result<(), CoreError> {
        if let (false, Some(lock), Some(db)) = (self.marked_writing, &self.lock_file, &self.file) {
            // Before SQLite can leave a journal: it is ours if we crash.
            crate::mark::mark_writing(lock, &db.lock_path())?;
            self.marked_writing = true;
        }
        if self.writing {
            return Ok(());
        }
        let busy = self.busy;
        self.interact(move |c| {
            c.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
                .map_err(|e| error::sqlite("cannot configure the connection", e))?;
            // WAL before the first write of a new database, under the init
            // lock; a database someone else owns is refused before this.
            conn::enable_wal(c, busy)
        })
        .await??;
        self.writing = true;
        Ok(())
    }

    /// The file lock, exclusive or (`share_if_busy`) shared behind a holder.
    async fn lock(&mut self, wait: Duration, share_if_busy: bool) -> Result<InitLock, CoreError> {
        let Some(db) = &self.file else {
            // A private in-memory database has no other process to race.
            return Ok(InitLock::exclusive(":memory:", Duration::ZERO));
        };
        let (path, journal) = (db.lock_path(), db.journal_path());
        let cancelled = self.cancelled.clone();
        let (file, held) = blocking(self.run_inline, move || {
            lock::acquire(&path, &journal, wait, share_if_busy, &cancelled)
        })
        .await??;
        self.lock_file = Some(file);
        Ok(held)
    }

    /// Moves the connection to the blocking pool, runs `f`, and takes it
    /// back; or runs `f` right here when the session was opened `run_inline`.
    async fn interact<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> R + Send + 'static,
    ) -> Result<R, CoreError> {
        let (busy, cancelled) = (self.busy, self.cancelled.clone());
        if self.run_inline {
            let conn = self.conn.as_mut().ok_or_else(lost)?;
            return Ok(busy::with_budget(busy, &cancelled, || f(conn)));
        }
        let mut conn = self.conn.take().ok_or_else(lost)?;
        let (conn, result) = blocking(self.run_inline, move || {
            let result = busy::with_budget(busy, &cancelled, || f(&mut conn));
            (conn, result)
        })
        .await?;
        self.conn = Some(conn);
        Ok(result)
    }
}

/// `sqlite3_interrupt`: the running statement fails with SQLITE_INTERRUPT
/// (from any thread, also while the connection runs inline).
struct Interrupt {
    handle: rusqlite::InterruptHandle,
    cancelled: Arc<AtomicBool>,
}

#[async_trait]
impl Canceller for Interrupt {
    async fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.handle.interrupt();
    }
}

/// Whether `e` says that `table` does not exist.
fn is_missing_table(e: &CoreError, table: &str) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<rusqlite::Error>())
        .is_some_and(|e| {
            matches!(e, rusqlite::Error::SqliteFailure(_, Some(msg)) | rusqlite::Error::SqlInputError { msg, .. }
                if *msg == format!("no such table: {table}"))
        })
}

fn lost() -> CoreError {
    CoreError::backend(
        ErrorKind::Database,
        "the sqlite connection was lost after a panic",
    )
}

#[async_trait]
impl Query for SqliteSession {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn dialect(&self) -> &dyn Dialect {
        &SqliteDialect
    }

    /// `SELECT 1`, and the file at the path is still the one this session
    /// opened: a connection keeps a deleted or replaced file (a restore)
    /// alive through its descriptor, and a long-lived session (the health
    /// monitor's) would otherwise check a database nobody else sees.
    async fn ping(&mut self) -> Result<(), CoreError> {
        self.interact(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| error::sqlite("ping failed", e))
        })
        .await??;
        match (&self.file, self.opened) {
            (Some(file), Some(opened)) if identity(file.path()) != Some(opened) => {
                Err(CoreError::backend(
                    ErrorKind::Unreachable,
                    format!(
                        "{} was removed or replaced since this connection opened it",
                        file.path().display()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, CoreError> {
        self.start_writing().await?;
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.interact(move |c| execute(c, &sql, &params)).await?
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CoreError> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.interact(move |c| query(c, &sql, &params)).await?
    }

    async fn execute_batch(&mut self, sql: &str) -> Result<(), CoreError> {
        self.start_writing().await?;
        let sql = sql.to_owned();
        self.interact(move |c| batch(c, &sql, "batch failed"))
            .await?
    }

    async fn begin(&mut self) -> Result<(), CoreError> {
        self.start_writing().await?;
        // IMMEDIATE: take the write lock now rather than fail to upgrade a
        // read snapshot later if another connection wrote in between.
        self.interact(|c| batch(c, "BEGIN IMMEDIATE", "cannot begin a transaction"))
            .await?
    }

    async fn commit(&mut self) -> Result<(), CoreError> {
        self.interact(|c| batch(c, "COMMIT", "cannot commit"))
            .await?
    }

    async fn rollback(&mut self) -> Result<(), CoreError> {
        self.interact(|c| {
            if c.is_autocommit() {
                return Ok(());
            }
            batch(c, "ROLLBACK", "cannot roll back")
        })
        .await?
    }

    fn canceller(&self) -> Option<Arc<dyn Canceller>> {
        let handle = self.conn.as_ref()?.get_interrupt_handle();
        Some(Arc::new(Interrupt {
            handle,
            cancelled: self.cancelled.clone(),
        }))
    }
}

#[async_trait]
impl Locking for SqliteSession {
    async fn acquire_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.lock(wait, false).await
    }

    async fn acquire_or_share_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.lock(wait, true).await
    }

    async fn release_init_lock(&mut self, held: InitLock) -> Result<(), CoreError> {
        if let Some(file) = self.lock_file.take() {
            // A transaction still open could leave a journal: then the
            // mark stays.
            let finished = self.conn.as_ref().is_some_and(Connection::is_autocommit);
            let wrote = std::mem::take(&mut self.marked_writing) && finished;
            lock::release(file, &held.name, wrote)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Introspect for SqliteSession {
    async fn table_exists(&mut self, table: &str) -> Result<bool, CoreError> {
        let table = table.to_owned();
        self.interact(move |c| {
            // SQLite's names are case-insensitive: `Users` is `users`.
            c.prepare_cached(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            )
            .and_then(|mut s| s.exists([&table]))
            .map_err(|e| error::sqlite("cannot look up a table", e))
        })
        .await?
    }

    async fn missing_tables(&mut self, tables: &[String]) -> Result<Vec<String>, CoreError> {
        let present: Vec<String> = self
            .tables()
            .await?
            .iter()
            .map(|t| t.to_lowercase())
            .collect();
        Ok((tables.iter())
            .filter(|t| !present.contains(&t.to_lowercase()))
            .cloned()
            .collect())
    }

    /// One statement on the no-op path: a missing table shows up as a
    /// prepare error.
    async fn query_table(&mut self, table: &str, sql: &str) -> Result<Option<Vec<Row>>, CoreError> {
        let (table, sql) = (table.to_owned(), sql.to_owned());
        self.interact(move |c| match query(c, &sql, &[]) {
            Err(e) if is_missing_table(&e, &table) => Ok(None),
            other => other.map(Some),
        })
        .await?
    }

    async fn tables(&mut self) -> Result<Vec<String>, CoreError> {
        self.interact(|c| introspect::tables(c)).await?
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, CoreError> {
        let table = table.to_owned();
        self.interact(move |c| introspect::columns(c, &table))
            .await?
    }

    async fn indexes(&mut self, table: &str) -> Result<Vec<Index>, CoreError> {
        let table = table.to_owned();
        self.interact(move |c| introspect::indexes(c, &table))
            .await?
    }
}

#[async_trait]
impl BulkLoad for SqliteSession {
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, CoreError> {
        let sql = dbinit_core::dialect::insert(&SqliteDialect, table, columns);
        let rows = rows.to_vec();
        self.interact(move |c| bulk::insert(c, &sql, &rows)).await?
    }

    async fn load_rows(
        &mut self,
        spec: &LoadSpec,
        rows: &mut dyn RowBatches,
    ) -> Result<LoadOutcome, LoadFailure> {
        // Every row is new in an empty table: no need to count.
        let before = if spec.into_empty {
            0
        } else {
            load::count_rows(self, &spec.table).await?
        };
        let sql: Arc<str> = load::upsert_sql(&SqliteDialect, spec).into();
        let declared = self.columns(&spec.table).await?;
        let numbers: Arc<[bulk::NumberColumn]> = (spec.columns.iter())
            .map(|name| {
                let column = declared.iter().find(|c| &c.name == name)?;
                introspect::converts_text_to_numbers(&column.data_type).then(|| name.clone())
            })
            .collect();
        let (mut seen, mut changed) = (0u64, 0u64);
        while let Some(batch) = rows.next_batch().await {
            let batch = batch?;
            let (sql, numbers, cancelled) = (sql.clone(), numbers.clone(), self.cancelled.clone());
            let (n, result) = self
                .interact(move |c| bulk::upsert(c, &sql, &numbers, &batch, &cancelled))
                .await?;
            changed += result.map_err(|(at, error)| LoadFailure {
                row: Some(seen + at as u64),
                error,
            })?;
            seen += n as u64;
        }
        let created = if spec.into_empty {
            changed
        } else {
            load::count_rows(self, &spec.table).await? - before
        };
        Ok(load::outcome(seen, changed, created))
    }
}

#[async_trait]
impl MigrationScripts for SqliteSession {
    async fn execute_migration(&mut self, script: Script<'_>) -> Result<(), CoreError> {
        self.start_writing().await?;
        let (file, sql) = (script.file.to_owned(), script.sql.to_owned());
        let Script {
            version,
            down,
            in_transaction,
            ..
        } = script;
        self.interact(move |c| {
            script::run(
                c,
                Script {
                    file: &file,
                    version,
                    down,
                    sql: &sql,
                    in_transaction,
                },
            )
        })
        .await?
    }

    /// Undoes what a script may leave in the connection: temporary tables,
    /// views and triggers (a temp trigger would fire in later migrations),
    /// and the pragmas that change how later SQL behaves. `foreign_keys` and
    /// `synchronous` can only change outside a transaction: dbinit's values
    /// are restored there.
    async fn reset_session(&mut self) -> Result<(), CoreError> {
        self.interact(move |c| {
            script::reset(c)?;
            if c.is_autocommit() {
                conn::configure(c)?;
            }
            Ok(())
        })
        .await?
    }
}

impl Session for SqliteSession {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
