//! Schema introspection through `sqlite_schema` and the `pragma_*` functions.

use dbinit_core::{Column, CoreError, Index};
use rusqlite::Connection;

use crate::error;

pub(crate) fn tables(conn: &Connection) -> Result<Vec<String>, CoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'dbinit\\_%' ESCAPE '\\' \
             AND name <> 'refinery_schema_history' \
             ORDER BY name",
        )
        .map_err(|e| error::sqlite("cannot list tables", e))?;
    let names = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| error::sqlite("cannot list tables", e))?;
    Ok(names)
}

pub(crate) fn columns(conn: &Connection, table: &str) -> Result<Vec<Column>, CoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
        )
        .map_err(|e| error::sqlite("cannot list columns", e))?;
    let columns = stmt
        .query_map([table], |r| {
            Ok(Column {
                name: r.get(0)?,
                data_type: r.get(1)?,
                nullable: r.get::<_, i64>(2)? == 0,
                primary_key: r.get::<_, i64>(3)? > 0,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| error::sqlite(format_args!("cannot list the columns of {table}"), e))?;
    Ok(columns)
}

/// Whether a column of this declared type stores numeric-looking text as
/// a number (INTEGER, REAL and NUMERIC affinity, by SQLite's rules in
/// order), keeping only what a 64-bit integer or float holds.
pub(crate) fn converts_text_to_numbers(declared: &str) -> bool {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        return true;
    }
    !(["CHAR", "CLOB", "TEXT", "BLOB"]
        .iter()
        .any(|k| t.contains(k))
        || t.trim().is_empty())
}

pub(crate) fn indexes(conn: &Connection, table: &str) -> Result<Vec<Index>, CoreError> {
    let context = || format!("cannot list the indexes of {table}");
    let mut list = conn
        .prepare_cached("SELECT name, \"unique\", partial FROM pragma_index_list(?1) ORDER BY name")
        .map_err(|e| error::sqlite(context(), e))?;
    let found: Vec<(String, bool, bool)> = list
        .query_map([table], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? != 0,
                r.get::<_, i64>(2)? != 0,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| error::sqlite(context(), e))?;
    let mut info = conn
        .prepare_cached("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
        .map_err(|e| error::sqlite(context(), e))?;
    found
        .into_iter()
        .map(|(name, unique, partial)| {
            let columns = info
                .query_map([&name], |r| r.get::<_, Option<String>>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| error::sqlite(context(), e))?
                .into_iter()
                // Expression index columns have no name.
                .map(|c| c.unwrap_or_else(|| "<expression>".to_owned()))
                .collect();
            Ok(Index {
                name,
                columns,
                unique,
                partial,
            })
        })
        .collect()
}
