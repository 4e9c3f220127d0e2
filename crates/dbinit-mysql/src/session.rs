//! A session on one MySQL connection: queries, the init lock (`lock.rs`),
//! introspection through `information_schema`.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dbinit_core::dialect::Dialect;
use dbinit_core::{
    Canceller, Column, CoreError, Index, InitLock, Introspect, Locking, MigrationScripts, Query,
    Row, Script, Session, Value,
};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::dialect::MysqlDialect;
use crate::error;
use crate::journal;
use crate::lease;
use crate::lock::{self, Lock};
use crate::script;
use crate::types;
use crate::url::Target;

/// One connection to a MySQL or MariaDB database.
pub struct MysqlSession {
    pub(crate) conn: Conn,
    database: String,
    /// The script whose journal rows go with its history row: version and
    /// direction (`MigrationScripts::recorded`).
    journaled: Option<(i64, bool)>,
    /// The journal's rows, read before the first script (only scripts
    /// this session runs change them).
    journal: Option<journal::Rows>,
    /// What restores the session's settings (`script::SETTINGS`) and
    /// database after each migration script, read before the first.
    reset: Option<String>,
    /// Whether the last script was plain DDL and DML, which leaves the
    /// settings and database as they were: no reset needed.
    keeps_session: bool,
    lock: Lock,
}

impl MysqlSession {
    pub(crate) fn new(conn: Conn, target: &Target, application: &str) -> Self {
        MysqlSession {
            conn,
            database: target.database.clone(),
            journaled: None,
            journal: None,
            reset: None,
            keeps_session: false,
            lock: Lock::new(&target.database, target.lock, target.lease_ttl, application),
        }
    }

    fn kill_query(&self) -> KillQuery {
        KillQuery {
            opts: self.conn.opts().clone(),
            id: self.conn.id(),
            cancelled: self.lock.cancelled.clone(),
        }
    }

    async fn lock(&mut self, wait: Duration, share_if_busy: bool) -> Result<InitLock, CoreError> {
        let opts = self.conn.opts().clone();
        let on = lock::On {
            cancel: Arc::new(self.kill_query()),
            conn: &mut self.conn,
            opts: &opts,
        };
        self.lock.acquire(on, wait, share_if_busy).await
    }
}

/// `err` from running `sql`, named by the statement's first line.
fn failed(sql: &str, err: mysql_async::Error) -> CoreError {
    let first: String = sql
        .trim()
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect();
    error::classify(format_args!("`{first}`"), err)
}

#[async_trait]
impl Query for MysqlSession {
    fn backend(&self) -> &'static str {
        "mysql"
    }

    fn dialect(&self) -> &dyn Dialect {
        &MysqlDialect
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, CoreError> {
        let done = if params.is_empty() {
            let result = self
                .conn
                .query_iter(sql)
                .await
                .map_err(|e| failed(sql, e))?;
            let affected = result.affected_rows();
            result.drop_result().await.map(|()| affected)
        } else {
            let result = self
                .conn
                .exec_iter(sql, types::params(params))
                .await
                .map_err(|e| failed(sql, e))?;
            let affected = result.affected_rows();
            result.drop_result().await.map(|()| affected)
        };
        done.map_err(|e| failed(sql, e))
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CoreError> {
        let rows: Vec<mysql_async::Row> = if params.is_empty() {
            self.conn.query(sql).await
        } else {
            self.conn.exec(sql, types::params(params)).await
        }
        .map_err(|e| failed(sql, e))?;
        types::rows(rows)
    }

    async fn execute_batch(&mut self, sql: &str) -> Result<(), CoreError> {
        self.conn.query_drop(sql).await.map_err(|e| failed(sql, e))
    }

    async fn ping(&mut self) -> Result<(), CoreError> {
        self.conn
            .ping()
            .await
            .map_err(|e| error::classify("ping", e))
    }

    async fn begin(&mut self) -> Result<(), CoreError> {
        self.execute_batch("START TRANSACTION").await
    }

    /// Under a lease, commits only while the lease is still ours.
    async fn commit(&mut self) -> Result<(), CoreError> {
        if let Some(held) = self.lock.lease() {
            if let Err(e) = lease::check(&mut self.conn, held).await {
                let _ = self.rollback().await;
                return Err(e);
            }
        }
        self.execute_batch("COMMIT").await
    }

    fn canceller(&self) -> Option<Arc<dyn Canceller>> {
        Some(Arc::new(self.kill_query()))
    }
}

/// Cancels the session's running statement: `KILL QUERY` from a second
/// connection, as the `mysql` client does on Ctrl-C. No `Debug`: the
/// options hold the password.
struct KillQuery {
    opts: mysql_async::Opts,
    id: u32,
    /// Stops a lease wait between polls.
    cancelled: Arc<AtomicBool>,
}

#[async_trait]
impl Canceller for KillQuery {
    async fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let kill = async {
            let mut conn = Conn::new(self.opts.clone()).await?;
            conn.query_drop(format!("KILL QUERY {}", self.id)).await?;
            conn.disconnect().await
        };
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), kill).await {
            tracing::warn!(error = %error::describe(&e), "could not cancel the running statement");
        }
    }
}

#[async_trait]
impl Locking for MysqlSession {
    async fn acquire_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.lock(wait, false).await
    }

    async fn acquire_or_share_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.lock(wait, true).await
    }

    async fn release_init_lock(&mut self, _lock: InitLock) -> Result<(), CoreError> {
        let opts = self.conn.opts().clone();
        self.lock.release(&mut self.conn, &opts).await
    }
}

#[async_trait]
impl Introspect for MysqlSession {
    async fn table_exists(&mut self, table: &str) -> Result<bool, CoreError> {
        let found: Option<i64> = self
            .conn
            .exec_first(
                "SELECT 1 FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (table,),
            )
            .await
            .map_err(|e| error::classify("cannot list tables", e))?;
        Ok(found.is_some())
    }

    async fn tables(&mut self) -> Result<Vec<String>, CoreError> {
        self.conn
            .query(
                "SELECT TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' \
                   AND TABLE_NAME <> 'refinery_schema_history' \
                   AND TABLE_NAME NOT LIKE 'dbinit!_%' ESCAPE '!' \
                 ORDER BY TABLE_NAME",
            )
            .await
            .map_err(|e| error::classify("cannot list tables", e))
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, CoreError> {
        let rows: Vec<(String, String, String, String)> = self
            .conn
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY \
                 FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (table,),
            )
            .await
            .map_err(|e| error::classify("cannot list columns", e))?;
        Ok(rows
            .into_iter()
            .map(|(name, data_type, nullable, key)| Column {
                name,
                data_type,
                nullable: nullable == "YES",
                primary_key: key == "PRI",
            })
            .collect())
    }

    async fn indexes(&mut self, table: &str) -> Result<Vec<Index>, CoreError> {
        // A functional key part (MySQL 8) has no column name.
        let rows: Vec<(String, Option<String>, i64)> = self
            .conn
            .exec(
                "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
                 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                (table,),
            )
            .await
            .map_err(|e| error::classify("cannot list indexes", e))?;
        let mut out: Vec<Index> = Vec::new();
        for (name, column, non_unique) in rows {
            let column = column.unwrap_or_else(|| "(expression)".to_owned());
            match out.last_mut() {
                Some(index) if index.name == name => index.columns.push(column),
                _ => out.push(Index {
                    name,
                    columns: vec![column],
                    unique: non_unique == 0,
                    partial: false,
                }),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl MigrationScripts for MysqlSession {
    /// Runs the script statement by statement (the `mysql` client's
    /// splitting, `DELIMITER` included): in the engine's transaction when
    /// nothing in it commits, through the statement journal otherwise.
    async fn execute_migration(&mut self, script: Script<'_>) -> Result<(), CoreError> {
        if self.reset.is_none() {
            // Read typed (binary protocol): numbers stay numbers.
            let settings: Option<mysql_async::Row> = self
                .conn
                .exec_first(format!("SELECT {}", script::SETTINGS), ())
                .await
                .map_err(|e| error::classify("cannot read the session's settings", e))?;
            self.reset = settings.map(|row| script::restore(row.unwrap(), &self.database));
        }
        let rows = match &mut self.journal {
            Some(rows) => rows,
            None => self
                .journal
                .insert(journal::load(&mut self.conn, &self.database).await?),
        };
        let lease = self.lock.lease();
        let keeps = &mut self.keeps_session;
        match script::execute(&mut self.conn, &self.database, script, rows, lease, keeps).await {
            Ok(journaled) => {
                self.journaled = journaled.then_some((script.version, script.down));
                Ok(())
            }
            Err(e) => {
                // It may have written rows: read them again next time.
                self.journal = None;
                Err(e)
            }
        }
    }

    /// Forgets the journal of a script now recorded in the history, in
    /// the transaction that records it.
    async fn recorded(&mut self, script: Script<'_>) -> Result<(), CoreError> {
        if self.journaled.take() != Some((script.version, script.down)) {
            return Ok(());
        }
        let key = journal::Key {
            database: &self.database,
            version: script.version,
            down: script.down,
        };
        journal::forget(&mut self.conn, key, 0).await
    }

    /// Restores the settings a script may change (`SET FOREIGN_KEY_CHECKS
    /// = 0`, `sql_mode`, the character sets, `USE`) to what they were
    /// before the first script.
    async fn reset_session(&mut self) -> Result<(), CoreError> {
        let Some(reset) = self.reset.as_ref().filter(|_| !self.keeps_session) else {
            return Ok(());
        };
        self.conn
            .query_drop(reset.as_str())
            .await
            .map_err(|e| error::classify("cannot reset the session after a migration", e))
    }

    async fn interrupted(&mut self) -> Result<Vec<i64>, CoreError> {
        journal::interrupted(&mut self.conn, &self.database).await
    }
}

impl Session for MysqlSession {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl std::fmt::Debug for MysqlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSession")
            .field("database", &self.database)
            .field("connection", &self.conn.id())
            .finish()
    }
}
