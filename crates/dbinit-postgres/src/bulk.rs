//! Bulk insert with binary `COPY ... FROM STDIN`.

use dbinit_core::{quote_ident, CoreError, ErrorKind, Value};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::error;
use crate::types::Param;

/// Copies `rows` into `table`. The caller wraps it in a transaction.
pub(crate) async fn copy_in(
    client: &Client,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<u64, CoreError> {
    let names = columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let table = quote_ident(table);
    // The column types, as the server sees them, drive the binary encoding.
    let probe = client
        .prepare(&format!("SELECT {names} FROM {table} LIMIT 0"))
        .await
        .map_err(|e| error::classify(format!("cannot bulk insert into {table}"), e))?;
    let types: Vec<_> = probe.columns().iter().map(|c| c.type_().clone()).collect();
    let sink = client
        .copy_in(&format!("COPY {table} ({names}) FROM STDIN BINARY"))
        .await
        .map_err(|e| error::classify(format!("cannot bulk insert into {table}"), e))?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for (n, row) in rows.iter().enumerate() {
        if row.len() != types.len() {
            return Err(CoreError::backend(
                ErrorKind::Database,
                format!(
                    "row {n} has {} values for {} columns",
                    row.len(),
                    types.len()
                ),
            ));
        }
        let params: Vec<Param<'_>> = row.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await.map_err(|e| {
            error::classify(format!("bulk insert into {table} failed at row {n}"), e)
        })?;
    }
    writer
        .finish()
        .await
        .map_err(|e| error::classify(format!("bulk insert into {table} failed"), e))
}
