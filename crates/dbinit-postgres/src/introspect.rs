//! Schema introspection through `pg_catalog`, in the current schema.

use dbinit_core::{Column, CoreError, Index};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::error;

pub(crate) async fn tables(client: &Client) -> Result<Vec<String>, CoreError> {
    let rows = client
        .query_typed(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
               AND c.relname <> 'refinery_schema_history' AND c.relname NOT LIKE 'dbinit\\_%' \
             ORDER BY c.relname",
            &[],
        )
        .await
        .map_err(|e| error::classify("cannot list tables", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(crate) async fn columns(client: &Client, table: &str) -> Result<Vec<Column>, CoreError> {
    let rows = client
        .query_typed(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                    coalesce(a.attnum = ANY (i.indkey), false) \
             FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
             WHERE n.nspname = current_schema() AND c.relname = $1 \
               AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[(&table, Type::TEXT)],
        )
        .await
        .map_err(|e| error::classify(format!("cannot list the columns of {table}"), e))?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            data_type: r.get(1),
            nullable: r.get(2),
            primary_key: r.get(3),
        })
        .collect())
}

pub(crate) async fn indexes(client: &Client, table: &str) -> Result<Vec<Index>, CoreError> {
    let rows = client
        .query_typed(
            "SELECT ic.relname, i.indisunique, \
                    array(SELECT coalesce(a.attname, '<expression>') \
                          FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                          LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                          ORDER BY k.ord)::text[], \
                    i.indpred IS NOT NULL \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = $1 \
             ORDER BY ic.relname",
            &[(&table, Type::TEXT)],
        )
        .await
        .map_err(|e| error::classify(format!("cannot list the indexes of {table}"), e))?;
    Ok(rows
        .iter()
        .map(|r| Index {
            name: r.get(0),
            unique: r.get(1),
            columns: r.get(2),
            partial: r.get(3),
        })
        .collect())
}
