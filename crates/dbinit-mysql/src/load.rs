//! Bulk loads: multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements
//! (as `mysqldump` writes them), each under the server's
//! `max_allowed_packet`, counted exactly from what the server says of
//! each: its affected rows (1 per insert, 2 per changed row, 0 per
//! unchanged one) and its "Duplicates: D" (the changed rows). The values go as
//! literals over the text protocol: a prepared statement's reply carries
//! no "Duplicates", and its 65,535 parameters would cut statements short.
//! A batch's statements are written on a blocking thread while the server
//! runs the previous batch's. Into an empty table, `LOAD DATA LOCAL INFILE`
//! is faster where the server allows it (`infile.rs`).

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use dbinit_core::dialect;
use dbinit_core::load::{self, LoadFailure, LoadOutcome, LoadSpec, RowBatches};
use dbinit_core::{BulkLoad, CoreError, ErrorKind, Query, Value};
use mysql_async::prelude::Queryable;
use tokio::task::JoinHandle;

use crate::session::MysqlSession;
use crate::{error, infile, types};

#[async_trait]
impl BulkLoad for MysqlSession {
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, CoreError> {
        let insert = self.insert_head(table, columns, "").await?;
        let mut inserted = 0;
        for chunk in chunks(rows, insert.budget) {
            inserted += self.run(&insert.statement(chunk)?).await?.affected;
        }
        Ok(inserted)
    }

    async fn load_rows(
        &mut self,
        spec: &LoadSpec,
        rows: &mut dyn RowBatches,
    ) -> Result<LoadOutcome, LoadFailure> {
        let clause = load::conflict_clause(self.dialect(), spec, &[]).unwrap_or_default();
        let mut insert = self
            .insert_head(&spec.table, &spec.columns, &clause)
            .await?;
        if spec.into_empty && insert.local_infile {
            insert.infile = Some(infile::statement(spec, insert.no_backslash_escapes));
        }
        // Data files give timestamps in UTC, and a TIMESTAMP column reads
        // them in the session's time zone.
        let zone = std::mem::take(&mut insert.time_zone);
        let utc = zone != "+00:00";
        if utc {
            self.time_zone("+00:00").await?;
        }
        let loaded = self.load_batches(Arc::new(insert), rows).await;
        if utc {
            self.time_zone(&zone).await?;
        }
        loaded
    }
}

impl MysqlSession {
    async fn time_zone(&mut self, zone: &str) -> Result<(), CoreError> {
        self.conn
            .exec_drop("SET time_zone = ?", (zone,))
            .await
            .map_err(|e| error::classify("cannot set the session's time zone", e))
    }

    /// The batches of `rows`, each written on a blocking thread while the
    /// server takes the previous one.
    async fn load_batches(
        &mut self,
        insert: Arc<Insert>,
        rows: &mut dyn RowBatches,
    ) -> Result<LoadOutcome, LoadFailure> {
        let mut outcome = LoadOutcome::default();
        let mut seen = 0u64;
        let mut writing: Option<JoinHandle<Written>> = None;
        loop {
            let next = rows.next_batch().await.transpose()?.map(|batch| {
                let insert = Arc::clone(&insert);
                tokio::task::spawn_blocking(move || insert.write(batch))
            });
            if let Some(written) = writing.take() {
                let (batch, carrier) = written.await.map_err(|e| {
                    CoreError::backend(ErrorKind::Database, format!("a load thread failed: {e}"))
                })?;
                self.send(&insert, &batch, carrier, seen, &mut outcome)
                    .await?;
                seen += batch.len() as u64;
            }
            match next {
                Some(next) => writing = Some(next),
                None => return Ok(outcome),
            }
        }
    }
}

/// A batch, and what carries it to the server.
type Written = (Vec<Vec<Value>>, Carrier);

/// A batch as `INSERT` statements (with the rows each holds), or as
/// `LOAD DATA` lines (or the index of a row that cannot be written).
enum Carrier {
    Statements(Vec<(Result<String, CoreError>, Range<usize>)>),
    Infile(Result<Bytes, (usize, CoreError)>),
}

/// How a load's statements are written.
struct Insert {
    /// `INSERT INTO t (a, b) VALUES `.
    head: String,
    /// The upsert clause, if any.
    clause: String,
    no_backslash_escapes: bool,
    /// Bytes one statement may take.
    budget: usize,
    /// The server takes `LOAD DATA LOCAL INFILE` (`infile.rs`).
    local_infile: bool,
    /// The `LOAD DATA` statement, when the load goes that way.
    infile: Option<String>,
    /// The session's time zone before the load.
    time_zone: String,
}

impl Insert {
    /// The statement inserting `rows`.
    fn statement(&self, rows: &[Vec<Value>]) -> Result<String, CoreError> {
        let mut sql = self.head.clone();
        for (i, row) in rows.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.iter().enumerate() {
                if j > 0 {
                    sql.push_str(", ");
                }
                types::push_literal(&mut sql, value, self.no_backslash_escapes)?;
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(&self.clause);
        Ok(sql)
    }

    /// What carries `batch`: `LOAD DATA` lines when the load goes that
    /// way, else statements.
    fn write(&self, batch: Vec<Vec<Value>>) -> Written {
        let carrier = if self.infile.is_some() {
            Carrier::Infile(infile::encode(&batch))
        } else {
            Carrier::Statements(self.statements(&batch))
        };
        (batch, carrier)
    }

    /// `batch`'s statements, with the rows each holds.
    fn statements(&self, batch: &[Vec<Value>]) -> Vec<(Result<String, CoreError>, Range<usize>)> {
        let mut statements = Vec::new();
        let mut start = 0;
        for chunk in chunks(batch, self.budget) {
            let rows = start..start + chunk.len();
            statements.push((self.statement(chunk), rows));
            start += chunk.len();
        }
        statements
    }
}

/// What one statement did.
struct Done {
    affected: u64,
    /// Rows whose key existed and whose values changed (`Duplicates:`;
    /// an unchanged row is not counted), when the server said.
    duplicates: Option<u64>,
}

impl Done {
    fn add_to(&self, outcome: &mut LoadOutcome, rows: usize) {
        // One row: the server sends no "Duplicates"; its count says it.
        let updated = self
            .duplicates
            .unwrap_or(u64::from(rows == 1 && self.affected == 2));
        let created = self.affected.saturating_sub(2 * updated);
        outcome.created += created;
        outcome.updated += updated;
        outcome.unchanged += (rows as u64).saturating_sub(created + updated);
    }
}

impl MysqlSession {
    /// How statements into `table`'s `columns` are written: the literals
    /// as the session's `sql_mode` reads them, each statement in half the
    /// server's packet limit.
    async fn insert_head<S: AsRef<str> + Sync>(
        &mut self,
        table: &str,
        columns: &[S],
        clause: &str,
    ) -> Result<Insert, CoreError> {
        let settings: Option<(String, u64, String, bool, String)> = self
            .conn
            .query_first(
                "SELECT @@SESSION.sql_mode, @@max_allowed_packet, \
                 @@SESSION.character_set_client, @@GLOBAL.local_infile, @@SESSION.time_zone",
            )
            .await
            .map_err(|e| error::classify("cannot read sql_mode", e))?;
        let (mode, packet, charset, local_infile, time_zone) = settings.unwrap_or_default();
        // Literals are escaped for UTF-8 (a seeder's `SET NAMES gbk` would
        // let a character's second byte end a string).
        if !["utf8mb4", "utf8mb3", "utf8"].contains(&charset.as_str()) {
            return Err(CoreError::backend(
                ErrorKind::Database,
                format!(
                    "the session's character set is {charset}: dbinit loads rows as utf8mb4 \
                     only"
                ),
            )
            .with_hint("a seeder changed it (SET NAMES); set it back to utf8mb4"));
        }
        Ok(Insert {
            head: format!(
                "INSERT INTO {} ({}) VALUES ",
                self.dialect().quote_ident(table),
                dialect::idents(self.dialect(), columns)
            ),
            clause: clause.to_owned(),
            no_backslash_escapes: mode.contains("NO_BACKSLASH_ESCAPES"),
            budget: usize::try_from(packet / 2)
                .unwrap_or(usize::MAX)
                .max(1 << 16),
            local_infile,
            infile: None,
            time_zone,
        })
    }

    async fn run(&mut self, sql: &str) -> Result<Done, CoreError> {
        self.conn
            .query_drop(sql)
            .await
            .map_err(|e| error::classify("the server refused the rows", e))?;
        Ok(Done {
            affected: self.conn.affected_rows(),
            duplicates: duplicates(&self.conn.info()),
        })
    }

    /// Sends one batch (the first row's index in the load is `seen`). A
    /// batch that `LOAD DATA` did not take cleanly was undone: the
    /// statements load it, as the load would without `LOAD DATA`, and name
    /// a refused row.
    async fn send(
        &mut self,
        insert: &Insert,
        batch: &[Vec<Value>],
        carrier: Carrier,
        seen: u64,
        outcome: &mut LoadOutcome,
    ) -> Result<(), LoadFailure> {
        let statements = match carrier {
            Carrier::Statements(statements) => statements,
            Carrier::Infile(Err((i, error))) => {
                return Err(LoadFailure {
                    row: Some(seen + i as u64),
                    error,
                })
            }
            Carrier::Infile(Ok(lines)) => {
                let sql = insert.infile.as_deref().unwrap_or_default();
                if self.load_data(sql, lines, insert.budget).await? {
                    outcome.created += batch.len() as u64;
                    return Ok(());
                }
                insert.statements(batch)
            }
        };
        for (sql, rows) in statements {
            let done = match sql {
                Ok(sql) => self.run(&sql).await,
                Err(e) => Err(e),
            };
            match done {
                Ok(done) => done.add_to(outcome, rows.len()),
                Err(error) => {
                    let first = seen + rows.start as u64;
                    return Err(self.refused_row(insert, &batch[rows], first, error).await);
                }
            }
        }
        Ok(())
    }

    /// A statement failed as a whole: when a row is at fault, runs the
    /// rows one by one to name it (the caller rolls the transaction back
    /// either way).
    async fn refused_row(
        &mut self,
        insert: &Insert,
        rows: &[Vec<Value>],
        first: u64,
        error: CoreError,
    ) -> LoadFailure {
        if !refuses_data(&error) {
            return LoadFailure { row: None, error };
        }
        for (i, row) in rows.iter().enumerate() {
            let one = insert.statement(std::slice::from_ref(row));
            let done = match one {
                Ok(sql) => self.run(&sql).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(error) = done {
                return LoadFailure {
                    row: Some(first + i as u64),
                    error,
                };
            }
        }
        LoadFailure { row: None, error }
    }
}

/// Whether `error` is a row's fault: a value refused before sending (no
/// server error), or by the server (SQLSTATE class 22, data exception; 23,
/// integrity constraint; 01, a warning strict mode made an error, such as
/// an unknown `ENUM` label), which leaves the transaction open; a deadlock
/// or a lost connection does not.
fn refuses_data(error: &CoreError) -> bool {
    match std::error::Error::source(error) {
        None => true,
        Some(source) => matches!(
            source.downcast_ref::<mysql_async::Error>(),
            Some(mysql_async::Error::Server(e)) if ["01", "22", "23"].iter().any(|class| e.state.starts_with(class))
        ),
    }
}

/// `D` from the server's "Records: N  Duplicates: D  Warnings: W".
fn duplicates(info: &str) -> Option<u64> {
    let rest = info.split("Duplicates:").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `rows` cut into statements of about `budget` bytes.
fn chunks(rows: &[Vec<Value>], budget: usize) -> impl Iterator<Item = &[Vec<Value>]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (mut n, mut bytes) = (0, 0);
        while n < rest.len() {
            bytes += rest[n].iter().map(size).sum::<usize>();
            if n > 0 && bytes > budget {
                break;
            }
            n += 1;
        }
        let (chunk, after) = rest.split_at(n);
        rest = after;
        Some(chunk)
    })
}

/// At most what a value takes as a literal (escaping may double text).
fn size(value: &Value) -> usize {
    match value {
        Value::Text(s) => 2 * s.len() + 4,
        Value::Bytes(b) => 2 * b.len() + 4,
        _ => 26,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_counts_split_into_created_updated_unchanged() {
        assert_eq!(
            duplicates("Records: 5  Duplicates: 3  Warnings: 0"),
            Some(3)
        );
        assert_eq!(duplicates(""), None);
        let mut outcome = LoadOutcome::default();
        // 5 rows: 2 new (2), 2 changed (4), 1 unchanged (0).
        Done {
            affected: 6,
            duplicates: Some(2),
        }
        .add_to(&mut outcome, 5);
        for (affected, rows) in [(1, 1), (2, 1), (0, 1)] {
            Done {
                affected,
                duplicates: None,
            }
            .add_to(&mut outcome, rows);
        }
        assert_eq!(
            outcome,
            LoadOutcome {
                created: 3,
                updated: 3,
                unchanged: 2
            }
        );
    }

    #[test]
    fn statements_stay_under_the_byte_budget() {
        // 26 + 204 bytes a row at most: 4 rows in 1,000 bytes.
        let row = vec![Value::Int(1), Value::Text("x".repeat(100))];
        let rows = vec![row; 10];
        let sizes: Vec<usize> = chunks(&rows, 1_000).map(<[_]>::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        // A row over the budget still goes, alone.
        let sizes: Vec<usize> = chunks(&rows, 10).map(<[_]>::len).collect();
        assert_eq!(sizes, [1; 10]);
    }
}
