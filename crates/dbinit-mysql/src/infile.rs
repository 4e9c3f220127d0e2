//! Batches into an empty table go as `LOAD DATA LOCAL INFILE`, where the
//! server allows `local_infile`: about a third faster than `INSERT`.
//!
//! No file is read. The handler is set on the connection for one statement
//! and answers whatever name the server asks for with the batch's lines, so
//! a server cannot fetch a client file through it.
//!
//! `LOCAL` makes the server turn refused values and duplicate keys into
//! warnings, because it cannot stop the client mid-file. So each batch runs
//! after a savepoint. A batch that warns or fails is rolled back to it and
//! loaded by `INSERT` statements instead (`load.rs`). That path stores the
//! same rows, refuses the same values and names the row.

use bytes::Bytes;
use dbinit_core::dialect::{self, Dialect};
use dbinit_core::load::LoadSpec;
use dbinit_core::{CoreError, Value};
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;

use crate::dialect::MysqlDialect;
use crate::session::MysqlSession;
use crate::{error, types};

/// The `LOAD DATA` statement for `spec`. Tab and newline are written raw
/// in it, and the escape is a backslash as this `sql_mode` reads it.
pub(crate) fn statement(spec: &LoadSpec, no_backslash_escapes: bool) -> String {
    format!(
        "LOAD DATA LOCAL INFILE 'dbinit-rows' INTO TABLE {} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\t' ESCAPED BY '{}' LINES TERMINATED BY '\n' ({})",
        MysqlDialect.quote_ident(&spec.table),
        if no_backslash_escapes { "\\" } else { "\\\\" },
        dialect::idents(&MysqlDialect, &spec.columns)
    )
}

impl MysqlSession {
    /// Runs `sql` (from [`statement`]) on `lines`, sent `piece` bytes at a
    /// time. Returns false, with the batch undone, when the server warned
    /// or refused it.
    pub(crate) async fn load_data(
        &mut self,
        sql: &str,
        lines: Bytes,
        piece: usize,
    ) -> Result<bool, CoreError> {
        let savepoint = |what| move |e| error::classify(what, e);
        self.conn
            .query_drop("SAVEPOINT dbinit_load")
            .await
            .map_err(savepoint("cannot set a savepoint for the load"))?;
        // In pieces: the driver sends each as one packet, which must stay
        // under the server's max_allowed_packet.
        let pieces: Vec<std::io::Result<Bytes>> = (0..lines.len())
            .step_by(piece)
            .map(|at| Ok(lines.slice(at..lines.len().min(at + piece))))
            .collect();
        self.conn
            .set_infile_handler(async move { Ok(futures_util::stream::iter(pieces).boxed()) });
        let clean = match self.conn.query_drop(sql).await {
            Ok(()) => self.conn.get_warnings() == 0,
            Err(e @ mysql_async::Error::Server(_)) => {
                tracing::debug!(error = %error::describe(&e), "LOAD DATA refused a batch");
                false
            }
            Err(e) => return Err(error::classify("the server refused the rows", e)),
        };
        if !clean {
            self.conn
                .query_drop("ROLLBACK TO SAVEPOINT dbinit_load")
                .await
                .map_err(savepoint("cannot undo a batch that LOAD DATA warned about"))?;
        }
        Ok(clean)
    }
}

/// `batch` as `LOAD DATA` lines: a tab between fields, `\N` for NULL, and
/// the escape before tab, newline, NUL and itself. Returns the index of a
/// row that cannot be written.
pub(crate) fn encode(batch: &[Vec<Value>]) -> Result<Bytes, (usize, CoreError)> {
    let mut out = Vec::with_capacity(batch.len() * 64);
    for (i, row) in batch.iter().enumerate() {
        for (j, value) in row.iter().enumerate() {
            if j > 0 {
                out.push(b'\t');
            }
            push(&mut out, value).map_err(|e| (i, e))?;
        }
        out.push(b'\n');
    }
    Ok(Bytes::from(out))
}

fn push(out: &mut Vec<u8>, value: &Value) -> Result<(), CoreError> {
    let escaped = |out: &mut Vec<u8>, bytes: &[u8]| {
        for &b in bytes {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                0 => out.extend_from_slice(b"\\0"),
                b => out.push(b),
            }
        }
    };
    match value {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Text(text) => escaped(out, text.as_bytes()),
        Value::Bytes(bytes) => escaped(out, bytes),
        // Numbers and booleans: their literal has nothing to escape.
        other => {
            let mut literal = String::new();
            types::push_literal(&mut literal, other, false)?;
            out.extend_from_slice(literal.as_bytes());
        }
    }
    Ok(())
}
