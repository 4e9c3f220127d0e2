//! Bulk insert and loads with `COPY ... FROM STDIN`.

use bytes::{BufMut, BytesMut};
use dbinit_core::dialect::idents;
use dbinit_core::load::{self, LoadFailure, LoadOutcome, LoadSpec, RowBatches};

use crate::dialect::PostgresDialect;
use dbinit_core::{quote_ident, CoreError, ErrorKind, Value};
use futures_util::{pin_mut, SinkExt};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::error;
use crate::types::{self, Param};

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

/// What a load needs to know of its table and columns, looked up once per
/// session (until the next schema change): a thousand one-row files into
/// one table ask the catalog once.
pub(crate) struct Shape {
    /// The columns' types, as the server sees them (drive the encoding).
    types: Vec<Type>,
    /// Loaded columns that are `GENERATED ALWAYS AS IDENTITY`.
    always: Vec<String>,
    /// Loaded columns the database computes.
    generated: Vec<String>,
    /// Loaded columns backed by a sequence, with it.
    sequences: Vec<(String, String)>,
}

/// [`Shape`]s by table and columns.
pub(crate) type Shapes = std::collections::HashMap<(String, Vec<String>), std::sync::Arc<Shape>>;

async fn shape(
    client: &Client,
    shapes: &mut Shapes,
    spec: &LoadSpec,
) -> Result<std::sync::Arc<Shape>, CoreError> {
    let key = (spec.table.clone(), spec.columns.clone());
    if let Some(known) = shapes.get(&key) {
        return Ok(known.clone());
    }
    let table = quote_ident(&spec.table);
    let probe = client
        .prepare(&format!(
            "SELECT {} FROM {table} LIMIT 0",
            idents(&PostgresDialect, &spec.columns)
        ))
        .await
        .map_err(|e| error::classify(format!("cannot load into {table}: its columns"), e))?;
    let types: Vec<Type> = probe.columns().iter().map(|c| c.type_().clone()).collect();
    drop(probe);
    let (always, generated) = identity_and_generated(client, spec).await?;
    let shape = std::sync::Arc::new(Shape {
        types,
        always,
        generated,
        sequences: sequences(client, spec).await?,
    });
    shapes.insert(key, shape.clone());
    Ok(shape)
}

/// Rows in one `INSERT … VALUES` (PostgreSQL takes at most 65,535
/// parameters in a statement).
const MAX_PARAMETERS: usize = 65_535;

/// Streams `rows` into `spec.table` inside the caller's transaction: `COPY`
/// straight into an empty table; into a table with rows, a file of one
/// batch in `INSERT … VALUES … ON CONFLICT` (no staging table to make and
/// drop: most seed files are small), a bigger one by `COPY` into a
/// temporary table and one `INSERT … SELECT … ON CONFLICT` from it (which
/// also names the row the database refuses, for a small file too). Binary
/// `COPY` when every column's type has a binary encoding here, text `COPY`
/// otherwise (enums, numeric, intervals: the server converts the text).
pub(crate) async fn load(
    client: &Client,
    shapes: &mut Shapes,
    spec: &LoadSpec,
    rows: &mut dyn RowBatches,
) -> Result<LoadOutcome, LoadFailure> {
    let table = quote_ident(&spec.table);
    let shape = shape(client, shapes, spec).await?;
    if let Some(column) = shape.generated.first() {
        return Err(CoreError::backend(
            ErrorKind::Database,
            format!("column `{column}` of {table} is generated: the database computes it, so the file must not give it"),
        )
        .into());
    }
    let mut rows = Prefetched::new(rows);
    if !spec.into_empty {
        if let Some(batch) = rows.only_batch().await? {
            client
                .batch_execute("SAVEPOINT dbinit_load")
                .await
                .map_err(|e| error::classify("cannot load", e))?;
            match upsert_values(client, spec, &shape, &batch).await {
                Ok(outcome) => {
                    client
                        .batch_execute("RELEASE SAVEPOINT dbinit_load")
                        .await
                        .map_err(|e| error::classify("cannot load", e))?;
                    advance_sequences(client, &table, &shape).await?;
                    return Ok(outcome);
                }
                // A cancel, a lost connection: not the rows' doing.
                Err(Refused::Other(e)) => return Err(e.into()),
                // A row refused: again through COPY, which names it.
                Err(Refused::Row) => {
                    client
                        .batch_execute("ROLLBACK TO SAVEPOINT dbinit_load")
                        .await
                        .map_err(|e| error::classify("cannot load", e))?;
                    rows.replay(batch);
                }
            }
        }
    }
    staged(client, spec, &shape, &mut rows).await
}

/// Why [`upsert_values`] did not load a batch.
enum Refused {
    /// A row of it (the `COPY` path names which).
    Row,
    /// Anything else: a cancel, the connection.
    Other(CoreError),
}

/// `INSERT … VALUES … ON CONFLICT` of `batch`, counting what it created and
/// changed as it goes (`xmax = 0` marks a row it inserted).
async fn upsert_values(
    client: &Client,
    spec: &LoadSpec,
    shape: &Shape,
    batch: &[Vec<Value>],
) -> Result<LoadOutcome, Refused> {
    if batch
        .iter()
        .any(|row| narrowed(row, &shape.types, spec).is_some())
    {
        return Err(Refused::Row);
    }
    let width = spec.columns.len().max(1);
    let (mut created, mut changed) = (0u64, 0u64);
    for chunk in batch.chunks((MAX_PARAMETERS / width).max(1)) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|r| {
                let cells: Vec<String> =
                    (1..=width).map(|c| format!("${}", r * width + c)).collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        let sql = format!(
            "WITH up AS (INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES {}{} \
             RETURNING (xmax = 0) AS created) \
             SELECT count(*) FILTER (WHERE created) AS created, count(*) AS changed FROM up",
            quote_ident(&spec.table),
            idents(&PostgresDialect, &spec.columns),
            tuples.join(", "),
            upsert_clause(spec, &shape.always)
        );
        let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
        let params = types::typed(&values);
        let row = client
            .query_typed_one(&sql, &types::refs(&params))
            .await
            .map_err(|e| match e.code().and_then(|c| c.code().get(..2)) {
                // Data exceptions, integrity and cardinality violations.
                Some("21" | "22" | "23") => Refused::Row,
                _ => Refused::Other(error::classify("cannot load", e)),
            })?;
        created += u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
        changed += u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
    }
    Ok(load::outcome(batch.len() as u64, changed, created))
}

/// The `COPY` path: straight into an empty table, else through a staging
/// table.
async fn staged(
    client: &Client,
    spec: &LoadSpec,
    shape: &Shape,
    rows: &mut dyn RowBatches,
) -> Result<LoadOutcome, LoadFailure> {
    let table = quote_ident(&spec.table);
    let names = idents(&PostgresDialect, &spec.columns);
    let failed = |what: &str, e| error::classify(format!("cannot load into {table}: {what}"), e);
    let types = &shape.types;
    let target = if spec.into_empty {
        table.clone()
    } else {
        client
            .batch_execute(&format!(
                "CREATE TEMPORARY TABLE {STAGE} ON COMMIT DROP AS \
                 SELECT {names} FROM {table} WITH NO DATA"
            ))
            .await
            .map_err(|e| failed("the staging table", e))?;
        STAGE.to_owned()
    };
    let copy = format!("COPY {target} ({names}) FROM STDIN");
    let copied = if types.iter().all(has_binary_encoding) {
        copy_binary(client, &copy, spec, types, rows).await?
    } else {
        // Text timestamps are UTC (the data files' rule), not the
        // session's zone; until this transaction ends.
        client
            .batch_execute("SET LOCAL TIME ZONE 'UTC'")
            .await
            .map_err(|e| failed("setting the time zone", e))?;
        copy_text(client, &copy, spec, types, rows).await?
    };
    if spec.into_empty {
        advance_sequences(client, &table, shape).await?;
        return Ok(load::outcome(copied, copied, copied));
    }
    let count = |sql: String| async move {
        let rows = client
            .query_typed(&sql, &[])
            .await
            .map_err(|e| failed("counting its rows", e))?;
        Ok::<u64, CoreError>(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
    };
    let before = count(format!("SELECT count(*) FROM {table}")).await?;
    let changed = client
        .execute_typed(
            &format!(
                // As COPY does: a file may give an identity column's values.
                "INSERT INTO {table} ({names}) OVERRIDING SYSTEM VALUE \
                 SELECT {names} FROM {STAGE}{}",
                upsert_clause(spec, &shape.always)
            ),
            &[],
        )
        .await
        .map_err(|e| {
            // 21000: two rows of the file hit the same row of the table.
            if e.code() == Some(&tokio_postgres::error::SqlState::CARDINALITY_VIOLATION) {
                CoreError::backend(
                    ErrorKind::Database,
                    format!(
                        "two rows of the file have keys that {table} considers equal, though \
                         they are written differently (letter case under a case-insensitive \
                         collation, say); keep one of them"
                    ),
                )
            } else {
                failed("merging the rows", e)
            }
        })?;
    let after = count(format!("SELECT count(*) FROM {table}")).await?;
    client
        .batch_execute(&format!("DROP TABLE {STAGE}"))
        .await
        .map_err(|e| failed("the staging table", e))?;
    advance_sequences(client, &table, shape).await?;
    Ok(load::outcome(copied, changed, after.saturating_sub(before)))
}

/// The batches of a load, with the first ones read ahead (to tell a file of
/// one batch) and handed out again.
struct Prefetched<'a> {
    ahead: std::collections::VecDeque<Vec<Vec<Value>>>,
    rest: &'a mut dyn RowBatches,
    ended: bool,
}

impl<'a> Prefetched<'a> {
    fn new(rest: &'a mut dyn RowBatches) -> Self {
        Prefetched {
            ahead: std::collections::VecDeque::new(),
            rest,
            ended: false,
        }
    }

    async fn pull(&mut self) -> Result<Option<Vec<Vec<Value>>>, LoadFailure> {
        if self.ended {
            return Ok(None);
        }
        match self.rest.next_batch().await {
            None => {
                self.ended = true;
                Ok(None)
            }
            Some(batch) => Ok(Some(batch?)),
        }
    }

    /// The file's only batch, when it has exactly one; else `None`, with
    /// what was read kept for [`RowBatches::next_batch`].
    async fn only_batch(&mut self) -> Result<Option<Vec<Vec<Value>>>, LoadFailure> {
        let Some(first) = self.pull().await? else {
            return Ok(None);
        };
        match self.pull().await? {
            None => Ok(Some(first)),
            Some(second) => {
                self.ahead.extend([first, second]);
                Ok(None)
            }
        }
    }

    fn replay(&mut self, batch: Vec<Vec<Value>>) {
        self.ahead.push_front(batch);
    }
}

#[dbinit_core::async_trait]
impl RowBatches for Prefetched<'_> {
    async fn next_batch(&mut self) -> Option<Result<Vec<Vec<Value>>, CoreError>> {
        if let Some(batch) = self.ahead.pop_front() {
            return Some(Ok(batch));
        }
        match self.pull().await {
            Ok(batch) => batch.map(Ok),
            Err(failure) => Some(Err(failure.error)),
        }
    }
}

/// The loaded columns that are `GENERATED ALWAYS AS IDENTITY` (inserted,
/// never updated) and those that are generated (never given).
async fn identity_and_generated(
    client: &Client,
    spec: &LoadSpec,
) -> Result<(Vec<String>, Vec<String>), CoreError> {
    let params = [Value::Text(quote_ident(&spec.table))];
    let params = types::typed(&params);
    let rows = client
        .query_typed(
            "SELECT attname::text, attidentity = 'a', attgenerated <> '' FROM pg_attribute \
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            &types::refs(&params),
        )
        .await
        .map_err(|e| error::classify("cannot read the columns' kinds", e))?;
    let (mut always, mut generated) = (Vec::new(), Vec::new());
    for row in rows {
        let name: String = row.get(0);
        if !spec.columns.contains(&name) {
            continue;
        }
        if row.get::<_, bool>(1) {
            always.push(name.clone());
        }
        if row.get::<_, bool>(2) {
            generated.push(name);
        }
    }
    Ok((always, generated))
}

/// The loaded columns backed by a sequence (serial or identity), with it.
async fn sequences(client: &Client, spec: &LoadSpec) -> Result<Vec<(String, String)>, CoreError> {
    let table = quote_ident(&spec.table);
    let mut found = Vec::new();
    for column in &spec.columns {
        let params = [Value::Text(table.clone()), Value::Text(column.clone())];
        let params = types::typed(&params);
        let sequence = client
            .query_typed(
                "SELECT pg_get_serial_sequence($1, $2)",
                &types::refs(&params),
            )
            .await
            .map_err(|e| error::classify(format!("cannot find the sequences of {table}"), e))?;
        if let Some(sequence) = sequence.first().and_then(|r| r.get::<_, Option<String>>(0)) {
            found.push((column.clone(), sequence));
        }
    }
    Ok(found)
}

/// Moves the sequence behind each loaded identity or serial column past
/// the largest value loaded, so the application's next insert does not
/// collide with a row the file gave an id.
async fn advance_sequences(client: &Client, table: &str, shape: &Shape) -> Result<(), CoreError> {
    for (column, sequence) in &shape.sequences {
        let sql = format!(
            "SELECT setval($1::regclass, v) FROM (SELECT max({})::bigint AS v FROM {table}) m \
             WHERE v IS NOT NULL",
            quote_ident(column)
        );
        let params = [Value::Text(sequence.clone())];
        let params = types::typed(&params);
        client
            .query_typed(&sql, &types::refs(&params))
            .await
            .map_err(|e| error::classify(format!("cannot advance the sequences of {table}"), e))?;
    }
    Ok(())
}

/// The temporary table a load into a non-empty table goes through.
const STAGE: &str = "dbinit_load_stage";

fn has_binary_encoding(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::BYTEA
            | Type::JSON
            | Type::JSONB
            | Type::TIMESTAMP
            | Type::TIMESTAMPTZ
            | Type::DATE
            | Type::UUID
    )
}

/// The row a `COPY` error names: its context says `COPY t, line N`
/// (N counts rows from 1 in both formats).
fn refused_row(e: &tokio_postgres::Error, base: u64) -> Option<u64> {
    let context = e.as_db_error()?.where_()?;
    let line = context.split(", line ").nth(1)?;
    let digits: String = line.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u64>().ok()?.checked_sub(1).map(|n| base + n)
}

fn copy_failed(e: tokio_postgres::Error) -> LoadFailure {
    LoadFailure {
        row: refused_row(&e, 0),
        error: error::classify("the database refused a row", e),
    }
}

async fn copy_binary(
    client: &Client,
    copy: &str,
    spec: &LoadSpec,
    types: &[Type],
    rows: &mut dyn RowBatches,
) -> Result<u64, LoadFailure> {
    let sink = client
        .copy_in(&format!("{copy} BINARY"))
        .await
        .map_err(copy_failed)?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    let mut seen = 0u64;
    while let Some(batch) = rows.next_batch().await {
        for row in batch? {
            let params: Vec<Param<'_>> = row.iter().map(Param).collect();
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            writer
                .as_mut()
                .write(&refs)
                .await
                .map_err(|e| LoadFailure {
                    // An encoding error is this row's; a server error names its own.
                    row: refused_row(&e, 0).or(Some(seen)),
                    error: match unencodable(&row, types, spec) {
                        Some(why) => CoreError::backend(ErrorKind::Database, why),
                        None => error::classify("the row cannot be sent", e),
                    },
                })?;
            seen += 1;
        }
    }
    writer.finish().await.map_err(copy_failed)
}

/// Which value of `row` its column's type cannot take, and why (an
/// integer out of a smallint's range, say).
fn unencodable(row: &[Value], types: &[Type], spec: &LoadSpec) -> Option<String> {
    let mut scratch = BytesMut::new();
    for ((value, ty), column) in row.iter().zip(types).zip(&spec.columns) {
        scratch.clear();
        if let Err(e) = Param(value).to_sql(ty, &mut scratch) {
            return Some(format!("column `{column}` ({ty}): {e}"));
        }
    }
    None
}

async fn copy_text(
    client: &Client,
    copy: &str,
    spec: &LoadSpec,
    types: &[Type],
    rows: &mut dyn RowBatches,
) -> Result<u64, LoadFailure> {
    let sink = client.copy_in(copy).await.map_err(copy_failed)?;
    pin_mut!(sink);
    let mut buffer = BytesMut::with_capacity(1 << 16);
    let mut seen = 0u64;
    while let Some(batch) = rows.next_batch().await {
        for row in batch? {
            if let Some(why) = narrowed(&row, types, spec) {
                return Err(LoadFailure {
                    row: Some(seen),
                    error: CoreError::backend(ErrorKind::Database, why),
                });
            }
            seen += 1;
            for (i, value) in row.iter().enumerate() {
                if i > 0 {
                    buffer.put_u8(b'\t');
                }
                copy_text_field(value, &mut buffer);
            }
            buffer.put_u8(b'\n');
        }
        if buffer.len() >= 1 << 16 {
            sink.send(buffer.split().freeze())
                .await
                .map_err(copy_failed)?;
        }
    }
    if !buffer.is_empty() {
        sink.send(buffer.freeze()).await.map_err(copy_failed)?;
    }
    sink.finish().await.map_err(copy_failed)
}

/// The value of `row` that the server would round to its column's type
/// without a word (a float to a `real`), and why: sent as text, only
/// dbinit can refuse it.
fn narrowed(row: &[Value], types: &[Type], spec: &LoadSpec) -> Option<String> {
    (row.iter().zip(types).zip(&spec.columns)).find_map(|((value, ty), column)| match (value, ty) {
        (Value::Float(f), &Type::FLOAT4) => types::float4(*f)
            .err()
            .map(|e| format!("column `{column}` ({ty}): {e}")),
        _ => None,
    })
}

/// A value in `COPY`'s text format.
fn copy_text_field(value: &Value, out: &mut BytesMut) {
    use std::fmt::Write;
    let _ = match value {
        Value::Null => out.write_str("\\N"),
        Value::Bool(b) => out.write_str(if *b { "t" } else { "f" }),
        Value::Int(i) => write!(out, "{i}"),
        Value::Float(f) if f.is_infinite() => {
            out.write_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Float(f) => write!(out, "{f}"),
        Value::Text(s) => {
            for b in s.bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b => out.put_u8(b),
                }
            }
            Ok(())
        }
        Value::Bytes(b) => {
            out.extend_from_slice(b"\\\\x");
            b.iter().try_for_each(|byte| write!(out, "{byte:02x}"))
        }
        _ => out.write_str("\\N"),
    };
}

/// `" ON CONFLICT …"`, or nothing for a load into an empty table.
fn upsert_clause(spec: &LoadSpec, insert_only: &[String]) -> String {
    load::conflict_clause(&PostgresDialect, spec, insert_only)
        .map(|clause| format!(" {clause}"))
        .unwrap_or_default()
}
