//! A rusqlite connection as every dbinit session uses it: its settings,
//! WAL, parameters bound by position, statements and queries, and blocking
//! calls run off the async threads.

use std::sync::Arc;

use dbinit_core::{CoreError, ErrorKind, Row, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement};

use crate::error;

/// Applies the connection settings every dbinit session runs with.
/// The busy wait's budget reaches the handler with each call (`busy.rs`).
pub(crate) fn configure(conn: &mut Connection) -> Result<(), CoreError> {
    conn.busy_handler(Some(crate::busy::handler))
        .map_err(|e| error::sqlite("cannot set the busy handler", e))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
        .map_err(|e| error::sqlite("cannot configure the connection", e))?;
    Ok(())
}

/// Switches to WAL unless already there (persistent: set once, by the first
/// migration of a new database). Switching needs exclusive access,
/// and SQLite does not run the busy handler for it (two processes opening a
/// new file at once would deadlock), so retry with backoff up to `busy`.
pub(crate) fn enable_wal(conn: &Connection, busy: std::time::Duration) -> Result<(), CoreError> {
    // Reading first keeps the common case (already WAL) free of any lock.
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| error::sqlite("cannot read journal_mode", e))?;
    if mode.eq_ignore_ascii_case("wal") || mode.eq_ignore_ascii_case("memory") {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut delays = dbinit_core::wait::lock_poll_delays();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                // Some file systems cannot do WAL; SQLite keeps the old mode.
                tracing::warn!(%mode, "SQLite refused WAL; continuing in this journal mode");
                return Ok(());
            }
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < busy =>
            {
                std::thread::sleep(delays.next().unwrap_or(busy / 10));
            }
            Err(e) => return Err(error::sqlite("cannot switch to WAL", e)),
        }
    }
}

/// Runs blocking work on tokio's blocking pool with the caller's span (like
/// deadpool-sqlite's `interact`), or on this thread when `inline`.
pub(crate) async fn blocking<T: Send + 'static>(
    inline: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CoreError> {
    if inline {
        return Ok(f());
    }
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| CoreError::backend(ErrorKind::Database, format!("sqlite task failed: {e}")))
}

/// Binds `$1`, `$2`, ... (or anonymous `?`) parameters by position.
pub(crate) fn bind(stmt: &mut Statement<'_>, params: &[Value]) -> Result<(), CoreError> {
    let count = stmt.parameter_count();
    for index in 1..=count {
        let position = match stmt.parameter_name(index) {
            None => index,
            Some(name) => name
                .strip_prefix(['$', '?'])
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    CoreError::backend(
                        ErrorKind::Database,
                        format!("parameter `{name}` is not positional; write $1, $2, ..."),
                    )
                })?,
        };
        let value = params.get(position - 1).ok_or_else(|| {
            CoreError::backend(
                ErrorKind::Database,
                format!(
                    "the statement uses ${position} but {} parameters were given",
                    params.len()
                ),
            )
        })?;
        stmt.raw_bind_parameter(index, SqlValue(value))
            .map_err(|e| error::sqlite("cannot bind a parameter", e))?;
    }
    Ok(())
}

pub(crate) struct SqlValue<'a>(pub(crate) &'a Value);

impl rusqlite::ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Bool(b) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*b))),
            Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
            Value::Float(f) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            _ => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

pub(crate) fn to_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

pub(crate) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64, CoreError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| error::sqlite("cannot prepare statement", e))?;
    bind(&mut stmt, params)?;
    let changed = stmt
        .raw_execute()
        .map_err(|e| error::sqlite("statement failed", e))?;
    Ok(changed as u64)
}

pub(crate) fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, CoreError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| error::sqlite("cannot prepare query", e))?;
    bind(&mut stmt, params)?;
    let columns: Arc<[String]> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| error::sqlite("query failed", e))? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(to_value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error::sqlite("cannot read a row", e))?;
        out.push(Row::new(columns.clone(), values));
    }
    Ok(out)
}

pub(crate) fn batch(conn: &Connection, sql: &str, what: &str) -> Result<(), CoreError> {
    conn.execute_batch(sql).map_err(|e| error::sqlite(what, e))
}
