//! Bulk insert: one prepared statement, executed per row, in one transaction.

use std::sync::atomic::{AtomicBool, Ordering};

use dbinit_core::{CoreError, ErrorKind, Value};
use rusqlite::Connection;

use crate::conn::{bind, SqlValue};
use crate::error;

pub(crate) fn insert(
    conn: &mut Connection,
    sql: &str,
    rows: &[Vec<Value>],
) -> Result<u64, CoreError> {
    // Join the caller's transaction if there is one; otherwise make our own
    // so that a failure leaves no partial batch.
    let own_transaction = conn.is_autocommit();
    if own_transaction {
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| error::sqlite("cannot begin the bulk insert", e))?;
    }
    let result = insert_rows(conn, sql, rows);
    if own_transaction {
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        if let Err(e) = conn.execute_batch(end) {
            // A failed COMMIT leaves the transaction open: close it.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(error::sqlite("cannot finish the bulk insert", e));
        }
    }
    result
}

fn insert_rows(conn: &Connection, sql: &str, rows: &[Vec<Value>]) -> Result<u64, CoreError> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| error::sqlite("cannot prepare the bulk insert", e))?;
    let mut inserted = 0;
    for row in rows {
        bind(&mut stmt, row)?;
        inserted += stmt
            .raw_execute()
            .map_err(|e| error::sqlite("bulk insert failed", e))? as u64;
    }
    Ok(inserted)
}

/// Runs the upsert `sql` for every row of a batch inside the caller's
/// transaction: the rows seen and the rows changed, or the index of the
/// refused row. Parameters are `$1..$n` in order, so they bind by index.
///
/// Stops at the next row once `cancelled` is set: `sqlite3_interrupt`
/// alone is forgotten between two statements, and a load is thousands of
/// short ones.
pub(crate) fn upsert(
    conn: &Connection,
    sql: &str,
    columns: &[NumberColumn],
    rows: &[Vec<Value>],
    cancelled: &AtomicBool,
) -> (usize, Result<u64, (usize, CoreError)>) {
    let mut stmt = match conn.prepare_cached(sql) {
        Ok(stmt) => stmt,
        Err(e) => return (0, Err((0, error::sqlite("cannot prepare the load", e)))),
    };
    let mut changed = 0;
    for (i, row) in rows.iter().enumerate() {
        if cancelled.load(Ordering::SeqCst) {
            let stop = CoreError::backend(ErrorKind::Interrupted, "the load was cancelled");
            return (i, Err((i, stop)));
        }
        if let Some(refused) = inexact(row, columns) {
            return (i, Err((i, refused)));
        }
        let result = row
            .iter()
            .enumerate()
            .try_for_each(|(p, v)| stmt.raw_bind_parameter(p + 1, SqlValue(v)))
            .and_then(|()| stmt.raw_execute());
        match result {
            Ok(n) => changed += n as u64,
            Err(e) => {
                return (
                    i,
                    Err((i, error::sqlite("the database refused the row", e))),
                )
            }
        }
    }
    (rows.len(), Ok(changed))
}

/// A loaded column that stores numeric text as a number (see
/// [`crate::introspect::converts_text_to_numbers`]): its name, or `None`.
pub(crate) type NumberColumn = Option<String>;

/// SQLite keeps a number as a 64-bit integer or a float with 15 significant
/// digits (when it converts text to REAL, it keeps no more): more digits
/// would be stored as another number, so the row is refused.
const EXACT_DIGITS: usize = 15;

/// The first value of `row` that its column would store as another number.
fn inexact(row: &[Value], columns: &[NumberColumn]) -> Option<CoreError> {
    row.iter().zip(columns).find_map(|(value, column)| {
        let name = column.as_ref()?;
        let text = match value {
            Value::Float(f) if f.is_nan() => {
                return Some(CoreError::backend(
                    ErrorKind::Database,
                    format!("column `{name}`: SQLite stores NaN as NULL; give NULL (an empty field) if that is meant"),
                ))
            }
            Value::Text(text) => text,
            _ => return None,
        };
        use dbinit_core::{excerpt, literal::Decimal};
        let t = text.trim();
        let decimal = Decimal::parse(t)?;
        // A float that reads back as the number (not one out of range).
        let as_float = t.parse::<f64>().ok().filter(|f| f.is_finite());
        let reads_back =
            as_float.is_some_and(|f| Decimal::parse(&format!("{f:e}")) == Some(decimal.clone()));
        let fits = t.parse::<i64>().is_ok()
            || (decimal.significant_digits() <= EXACT_DIGITS && reads_back);
        if fits {
            return None;
        }
        Some(CoreError::backend(
            ErrorKind::Database,
            format!(
                "column `{name}`: `{}` would not be stored as written: SQLite keeps a number as \
                 a 64-bit integer or a float of {EXACT_DIGITS} significant digits; declare the \
                 column TEXT to keep every digit, or round the value",
                excerpt(t)
            ),
        ))
    })
}
