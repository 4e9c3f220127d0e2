//! [`PostgresSession`]: one pooled connection, dedicated to the run.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::dialect::PostgresDialect;
use dbinit_core::load::{LoadFailure, LoadOutcome, LoadSpec, RowBatches};
use dbinit_core::Dialect;
use dbinit_core::{
    async_trait, BulkLoad, Canceller, Column, CoreError, Index, InitLock, Introspect, Locking,
    MigrationScripts, Query, Row, Script, Session, Value,
};
use deadpool_postgres::{Object, Pool};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{LockChoice, Target};
use crate::lease::{self, LeaseContext};
use crate::lock::{self, Held, Strategy};
use crate::types::{refs, typed};
use crate::{advisory, bulk, cancel, error, introspect, script, types};

/// The backend's registered name.
pub(crate) const NAME: &str = "postgres";

/// A session on one connection taken from a deadpool-postgres pool.
///
/// While it holds the initialization lock or an open transaction, the
/// connection is never returned to the pool: if the session is dropped in
/// that state, the connection is closed, which makes the server release the
/// lock and roll the transaction back.
pub struct PostgresSession {
    pool: Pool,
    tls: MakeRustlsConnect,
    client: Option<Object>,
    in_transaction: bool,
    held: Option<Held>,
    discard: bool,
    lock: LockSettings,
    /// Set when the run is cancelled: stops a lease wait between polls.
    cancelled: Arc<AtomicBool>,
    /// What loads learned of their tables; forgotten at every change of
    /// schema this session makes.
    shapes: bulk::Shapes,
}

/// What the lock strategy is chosen from, and once chosen, the choice.
struct LockSettings {
    choice: LockChoice,
    lease_ttl: Duration,
    config: tokio_postgres::Config,
    resolved: Option<Strategy>,
}

/// Whether `sql` may change a table a load has looked at: what forgets
/// the loads' cache. A batch of several statements counts whatever its
/// first.
fn changes_schema(sql: &str) -> bool {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    !["SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
        || sql.contains(';')
}

impl PostgresSession {
    pub(crate) fn new(pool: Pool, client: Object, tls: MakeRustlsConnect, target: &Target) -> Self {
        PostgresSession {
            pool,
            tls,
            client: Some(client),
            in_transaction: false,
            held: None,
            discard: false,
            lock: LockSettings {
                choice: target.lock,
                lease_ttl: target.lease_ttl,
                config: target.config.clone(),
                resolved: None,
            },
            cancelled: Arc::new(AtomicBool::new(false)),
            shapes: bulk::Shapes::new(),
        }
    }

    /// The pool this session's connection came from, for the application
    /// to keep using after `init`.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The native client: the escape hatch for what [`Session`] does not cover.
    pub fn client(&self) -> &tokio_postgres::Client {
        self.client
            .as_ref()
            .expect("the client is present until drop")
    }

    /// Takes the lock with the strategy this server calls for, then makes
    /// sure no process holds the other strategy's lock on this database (a
    /// replica connected directly and one through a pooler): if one does,
    /// lets go and waits for it.
    async fn lock(&mut self, wait: Duration, share_if_busy: bool) -> Result<InitLock, CoreError> {
        // Until this returns, the connection may hold a lock this session
        // does not know of (a wait dropped halfway, on an interruption):
        // then it must be closed, not pooled.
        let discard = std::mem::replace(&mut self.discard, true);
        let result = self.lock_inner(wait, share_if_busy).await;
        self.discard = discard || result.is_err();
        result
    }

    async fn lock_inner(
        &mut self,
        wait: Duration,
        share_if_busy: bool,
    ) -> Result<InitLock, CoreError> {
        let strategy = self.strategy().await?;
        let cancelled = self.cancelled.clone();
        let mut poll = dbinit_core::wait::Poll::new(wait, &cancelled);
        let mut waited_for = None;
        loop {
            let mut held = self.take(&strategy, poll.left(), share_if_busy).await?;
            let rival = if held.shared {
                None
            } else {
                lock::rival(self.client(), &strategy).await?
            };
            let Some(rival) = rival else {
                held.waited = poll.elapsed();
                held.waited_for = held.waited_for.or(waited_for);
                return Ok(held);
            };
            let name = held.name.clone();
            self.release_init_lock(held).await?;
            tracing::info!(holder = %rival, "another process holds the lock of the other strategy; waiting");
            let mut current = Some(rival);
            while let Some(holder) = current {
                poll.pause(&name, Some(holder.clone())).await?;
                waited_for = Some(holder);
                current = lock::rival(self.client(), &strategy).await?;
            }
        }
    }

    /// The strategy, chosen on first use.
    async fn strategy(&mut self) -> Result<Strategy, CoreError> {
        if let Some(strategy) = &self.lock.resolved {
            return Ok(strategy.clone());
        }
        let strategy = lock::strategy(self.client(), &self.lock.config, self.lock.choice).await?;
        if let Strategy::Lease { why } = &strategy {
            tracing::info!(why = %why, "initialization lock: lease");
        }
        self.lock.resolved = Some(strategy.clone());
        Ok(strategy)
    }

    /// One strategy's lock.
    async fn take(
        &mut self,
        strategy: &Strategy,
        wait: Duration,
        share_if_busy: bool,
    ) -> Result<InitLock, CoreError> {
        match strategy {
            Strategy::Advisory => match advisory::acquire(self.client(), wait, share_if_busy).await
            {
                Ok((key, held)) => {
                    self.held = Some(Held::Advisory {
                        key,
                        shared: held.shared,
                    });
                    Ok(held)
                }
                Err(e) => {
                    // It may have been granted before the error (a failed
                    // COMMIT after pg_advisory_lock): never pool this
                    // connection again.
                    self.discard = true;
                    Err(e)
                }
            },
            Strategy::Lease { why } => {
                let cx = LeaseContext {
                    pool: &self.pool,
                    ttl: self.lock.lease_ttl,
                    application: self.lock.config.get_application_name().unwrap_or("dbinit"),
                    cancelled: &self.cancelled,
                    cancel: Arc::new(self.server_cancel()),
                };
                let (lease, mut held) =
                    lease::acquire(self.client(), cx, wait, share_if_busy).await?;
                held.name = format!("{}, because {why}", held.name);
                self.held = Some(lease.map_or(Held::Nothing, Held::Lease));
                Ok(held)
            }
        }
    }

    fn server_cancel(&self) -> ServerCancel {
        ServerCancel {
            token: self.client().cancel_token(),
            tls: self.tls.clone(),
            config: self.lock.config.clone(),
            cancelled: self.cancelled.clone(),
        }
    }

    async fn simple(&mut self, sql: &str, what: &str) -> Result<(), CoreError> {
        self.client()
            .batch_execute(sql)
            .await
            .map_err(|e| error::classify(what, e))
    }
}

impl Drop for PostgresSession {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let advisory = matches!(self.held, Some(Held::Advisory { .. }));
            if advisory || self.in_transaction || self.discard {
                // Detach from the pool; dropping the client closes the connection.
                drop(Object::take(client));
            }
        }
    }
}

/// Cancels the session's running statement through the server's cancel
/// protocol (a second connection), as `psql` does on Ctrl-C.
struct ServerCancel {
    token: tokio_postgres::CancelToken,
    tls: MakeRustlsConnect,
    config: tokio_postgres::Config,
    cancelled: Arc<AtomicBool>,
}

#[async_trait]
impl Canceller for ServerCancel {
    async fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Err(e) = cancel::send(&self.token, &self.tls, &self.config).await {
            tracing::warn!(error = %e, "could not send the cancel request");
        }
    }
}

/// Whether `e` is PostgreSQL's "relation does not exist".
fn is_undefined_table(e: &CoreError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .is_some_and(|e| e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE))
}

/// Each parameter with the type "unspecified": see [`types`].
#[async_trait]
impl Query for PostgresSession {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn dialect(&self) -> &dyn Dialect {
        &PostgresDialect
    }

    async fn ping(&mut self) -> Result<(), CoreError> {
        self.simple("SELECT 1", "ping failed").await
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, CoreError> {
        if changes_schema(sql) {
            self.shapes.clear();
        }
        let params = typed(params);
        self.client()
            .execute_typed(sql, &refs(&params))
            .await
            .map_err(|e| error::classify("statement failed", e))
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CoreError> {
        let params = typed(params);
        let rows = self
            .client()
            .query_typed(sql, &refs(&params))
            .await
            .map_err(|e| error::classify("query failed", e))?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let columns: Arc<[String]> = first
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        rows.iter()
            .map(|row| {
                let values = (0..columns.len())
                    .map(|i| types::read(row, i))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Row::new(columns.clone(), values))
            })
            .collect()
    }

    async fn execute_batch(&mut self, sql: &str) -> Result<(), CoreError> {
        if changes_schema(sql) {
            self.shapes.clear();
        }
        self.simple(sql, "batch failed").await
    }

    async fn begin(&mut self) -> Result<(), CoreError> {
        self.simple("BEGIN", "cannot begin a transaction").await?;
        self.in_transaction = true;
        Ok(())
    }

    /// Under a lease, commits only while the lease is still ours.
    async fn commit(&mut self) -> Result<(), CoreError> {
        if let Some(Held::Lease(lease)) = &self.held {
            if let Err(e) = lease::fence(self.client(), lease).await {
                let _ = self.rollback().await;
                return Err(e);
            }
        }
        let result = self.simple("COMMIT", "cannot commit").await;
        self.in_transaction = false;
        result
    }

    async fn rollback(&mut self) -> Result<(), CoreError> {
        let result = self.simple("ROLLBACK", "cannot roll back").await;
        self.in_transaction = false;
        result
    }

    fn canceller(&self) -> Option<Arc<dyn Canceller>> {
        Some(Arc::new(self.server_cancel()))
    }
}

#[async_trait]
impl Locking for PostgresSession {
    async fn acquire_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.lock(wait, false).await
    }

    async fn acquire_or_share_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.lock(wait, true).await
    }

    async fn release_init_lock(&mut self, _lock: InitLock) -> Result<(), CoreError> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        // A session in an aborted transaction cannot unlock until it rolls
        // back: this is how other tools leak the lock when a step fails.
        let rolled_back = if self.in_transaction {
            self.rollback().await
        } else {
            Ok(())
        };
        // A connection that could not roll back is closed, never pooled.
        self.discard |= rolled_back.is_err();
        let released = match (held, rolled_back) {
            // Its connection is closed, not pooled: the server lets go of
            // the advisory lock with it.
            (Held::Advisory { .. }, Err(e)) => Err(e),
            (Held::Advisory { key, shared }, Ok(())) => {
                advisory::release(self.client(), key, shared).await
            }
            // A row outlives the connection: it is deleted, over another
            // connection if need be.
            (Held::Lease(lease), rolled_back) => {
                let released =
                    lease::release(self.client(), &self.pool, lease, self.lock.lease_ttl).await;
                released.and(rolled_back)
            }
            (Held::Nothing, rolled_back) => rolled_back,
        };
        if released.is_err() {
            self.discard = true;
        }
        released
    }
}

#[async_trait]
impl Introspect for PostgresSession {
    /// Whether the unqualified name resolves through the search path, as the
    /// statements that use it will resolve it (a table in a schema that is
    /// not the current one still counts).
    async fn table_exists(&mut self, table: &str) -> Result<bool, CoreError> {
        let rows = self
            .query(
                "SELECT to_regclass(quote_ident($1::text)) IS NOT NULL AS found",
                &[Value::from(table)],
            )
            .await?;
        Ok(rows
            .first()
            .is_some_and(|r| r.values().first() == Some(&Value::Bool(true))))
    }

    /// One lookup by name for all of them (the catalog join of `tables()`
    /// is slow on a new connection's cold caches).
    async fn missing_tables(&mut self, tables: &[String]) -> Result<Vec<String>, CoreError> {
        // A text array literal: every element quoted, `"` and `\` escaped.
        let literal = tables
            .iter()
            .map(|t| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(",");
        let rows = self
            .query(
                // A table (plain or partitioned) the name resolves to, as
                // statements resolve it: not a view or a sequence.
                "SELECT t AS name FROM unnest($1::text[]) AS t WHERE NOT EXISTS (SELECT 1 \
                 FROM pg_class c WHERE c.oid = to_regclass(quote_ident(t)) \
                 AND c.relkind IN ('r', 'p'))",
                &[Value::Text(format!("{{{literal}}}"))],
            )
            .await?;
        rows.iter().map(|r| r.get("name")).collect()
    }

    /// One round trip on the no-op path: a missing table is an error code.
    async fn query_table(&mut self, table: &str, sql: &str) -> Result<Option<Vec<Row>>, CoreError> {
        // A failed statement would abort the caller's transaction: inside
        // one, look before querying.
        if self.in_transaction {
            if !self.table_exists(table).await? {
                return Ok(None);
            }
            return self.query(sql, &[]).await.map(Some);
        }
        match self.query(sql, &[]).await {
            Err(e) if is_undefined_table(&e) => Ok(None),
            other => other.map(Some),
        }
    }

    async fn tables(&mut self) -> Result<Vec<String>, CoreError> {
        introspect::tables(self.client()).await
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, CoreError> {
        introspect::columns(self.client(), table).await
    }

    async fn indexes(&mut self, table: &str) -> Result<Vec<Index>, CoreError> {
        introspect::indexes(self.client(), table).await
    }
}

#[async_trait]
impl BulkLoad for PostgresSession {
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, CoreError> {
        // Join the caller's transaction, or make one so a failure leaves nothing.
        let own = !self.in_transaction;
        if own {
            self.begin().await?;
        }
        let result = bulk::copy_in(self.client(), table, columns, rows).await;
        if own {
            match &result {
                Ok(_) => self.commit().await?,
                Err(_) => self.rollback().await?,
            }
        }
        result
    }

    async fn load_rows(
        &mut self,
        spec: &LoadSpec,
        rows: &mut dyn RowBatches,
    ) -> Result<LoadOutcome, LoadFailure> {
        // Join the caller's transaction, or make one: the staging table
        // lives until commit, and a failure must leave nothing.
        let own = !self.in_transaction;
        if own {
            self.begin().await?;
        }
        let client = self
            .client
            .as_ref()
            .expect("the client is present until drop");
        let result = bulk::load(client, &mut self.shapes, spec, rows).await;
        if own {
            match &result {
                Ok(_) => self.commit().await?,
                Err(_) => self.rollback().await?,
            }
        }
        result
    }
}

#[async_trait]
impl MigrationScripts for PostgresSession {
    async fn execute_migration(&mut self, script: Script<'_>) -> Result<(), CoreError> {
        self.shapes.clear();
        script::run(self.client(), script).await
    }

    /// What `SET`, `SET ROLE`, `SET SESSION AUTHORIZATION`, cursors, `LISTEN`
    /// and temporary objects leave behind, undone — without `DISCARD ALL`,
    /// which would release the init lock.
    async fn reset_session(&mut self) -> Result<(), CoreError> {
        self.simple(
            "RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; CLOSE ALL; UNLISTEN *; \
             DISCARD TEMP; DISCARD SEQUENCES",
            "cannot reset the session after a migration",
        )
        .await
    }
}

impl Session for PostgresSession {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
