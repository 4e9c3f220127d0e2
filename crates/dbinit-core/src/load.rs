//! Bulk loads: rows streamed into a table, upserted by a natural key, on
//! the backend's fastest path ([`BulkLoad::load_rows`]).
//!
//! The rows arrive in batches from a [`RowBatches`] source (a file parsed
//! on another thread, say), so memory stays bounded however many rows
//! there are.

use async_trait::async_trait;
use serde::Serialize;

use crate::dialect::{self, Dialect, OnConflict};
use crate::query::Query;
use crate::{CoreError, Value};

/// What to load, and where.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The target table.
    pub table: String,
    /// The columns every row gives, in row order.
    pub columns: Vec<String>,
    /// The natural key: a subset of `columns` with a primary key or unique
    /// index on exactly these columns. Rows whose key exists update it.
    pub key: Vec<String>,
    /// Whether the table was empty when the load started (under the
    /// init lock): every row is then new, and plain inserts (or `COPY`)
    /// replace the upsert.
    pub into_empty: bool,
}

/// What a load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LoadOutcome {
    /// Rows inserted.
    pub created: u64,
    /// Existing rows whose values changed.
    pub updated: u64,
    /// Existing rows that already had these values.
    pub unchanged: u64,
}

/// Why a load failed, and at which row of the stream (0-based) when the
/// backend knows: the source maps it back to a file line.
#[derive(Debug)]
pub struct LoadFailure {
    /// The row the database refused, counted from 0 over the whole stream.
    pub row: Option<u64>,
    /// The error.
    pub error: CoreError,
}

impl From<CoreError> for LoadFailure {
    fn from(error: CoreError) -> Self {
        LoadFailure { row: None, error }
    }
}

/// A stream of row batches. Every row has one value per
/// [`LoadSpec::columns`], already converted to the column's type.
#[async_trait]
pub trait RowBatches: Send {
    /// The next batch, `None` at the end. An `Err` stops the load: the
    /// caller rolls back.
    async fn next_batch(&mut self) -> Option<Result<Vec<Vec<Value>>, CoreError>>;
}

/// Loading many rows. The defaults insert and upsert row by row; a backend
/// overrides them with its fastest path.
#[async_trait]
pub trait BulkLoad: Query {
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
    /// ([`load_row_by_row`]); backends override it with their
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
        load_row_by_row(self, spec, rows).await
    }
}

/// `INSERT INTO t (…) VALUES (…)`, plus, unless `spec.into_empty`, the
/// dialect's upsert clause ([`conflict_clause`]). A row whose values are
/// all the same changes nothing and counts as unchanged.
pub fn upsert_sql(d: &dyn Dialect, spec: &LoadSpec) -> String {
    let insert = dialect::insert(d, &spec.table, &spec.columns);
    match conflict_clause(d, spec, &[]) {
        Some(clause) => format!("{insert} {clause}"),
        None => insert,
    }
}

/// The clause that makes an insert into `spec.table` an upsert by
/// `spec.key`, updating only rows whose values differ; `None` for a load
/// into an empty table. Columns in `insert_only` are given on insert and
/// never updated (a `GENERATED ALWAYS` identity column refuses updates).
pub fn conflict_clause(d: &dyn Dialect, spec: &LoadSpec, insert_only: &[String]) -> Option<String> {
    if spec.into_empty {
        return None;
    }
    let key: Vec<&str> = spec.key.iter().map(String::as_str).collect();
    let update: Vec<&str> = spec
        .columns
        .iter()
        .filter(|c| !spec.key.contains(c) && !insert_only.contains(c))
        .map(String::as_str)
        .collect();
    Some(d.on_conflict(&OnConflict {
        table: &spec.table,
        key: &key,
        update: &update,
        only_if_changed: true,
        increment: None,
    }))
}

/// `SELECT count(*)` of `table`.
pub async fn count_rows<S: Query + ?Sized>(session: &mut S, table: &str) -> Result<u64, CoreError> {
    let rows = session
        .query(
            &format!(
                "SELECT count(*) AS n FROM {}",
                session.dialect().quote_ident(table)
            ),
            &[],
        )
        .await?;
    let n: i64 = rows
        .first()
        .map(|r| r.get("n"))
        .transpose()?
        .unwrap_or_default();
    Ok(u64::try_from(n).unwrap_or_default())
}

/// The portable load behind [`BulkLoad::load_rows`]: one upsert statement
/// per row, inside the caller's transaction. Counts created rows by the
/// table's size before and after.
pub async fn load_row_by_row<S: Query + ?Sized>(
    session: &mut S,
    spec: &LoadSpec,
    rows: &mut dyn RowBatches,
) -> Result<LoadOutcome, LoadFailure> {
    let before = count_rows(session, &spec.table).await?;
    let sql = upsert_sql(session.dialect(), spec);
    let (mut seen, mut changed) = (0u64, 0u64);
    while let Some(batch) = rows.next_batch().await {
        for row in batch? {
            changed += session
                .execute(&sql, &row)
                .await
                .map_err(|error| LoadFailure {
                    row: Some(seen),
                    error,
                })?;
            seen += 1;
        }
    }
    let after = count_rows(session, &spec.table).await?;
    Ok(outcome(seen, changed, after.saturating_sub(before)))
}

/// A load's outcome from `rows` seen, `changed` (inserted or updated) and
/// `created`.
pub fn outcome(rows: u64, changed: u64, created: u64) -> LoadOutcome {
    let updated = changed.saturating_sub(created);
    LoadOutcome {
        created,
        updated,
        unchanged: rows.saturating_sub(created + updated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_splits_changes() {
        assert_eq!(
            outcome(10, 7, 4),
            LoadOutcome {
                created: 4,
                updated: 3,
                unchanged: 3
            }
        );
    }
}
