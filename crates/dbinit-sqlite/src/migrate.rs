//! Migrations on SQLite: refinery's history table, one transaction per
//! migration holding both its SQL and its history row.
//!
//! refinery's own rusqlite path commits the SQL and the history row in two
//! transactions, so a crash between them re-applies the migration; this
//! module does not have that window.

use std::time::Instant;

use dbinit_core::migration::{timestamp_now, MigrationBatchError, HISTORY_TABLE};
use dbinit_core::{AppliedMigration, CoreError, MigrationFile};
use rusqlite::Connection;

use crate::error;

/// refinery's table definition, so refinery can read what dbinit wrote.
const CREATE_HISTORY: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history(
    version INT4 PRIMARY KEY,
    name VARCHAR(255),
    applied_on VARCHAR(255),
    checksum VARCHAR(255))";

pub(crate) fn applied(conn: &mut Connection) -> Result<Vec<AppliedMigration>, CoreError> {
    // One statement on the no-op path: a missing history table shows up as
    // a prepare error, which means "nothing applied yet".
    let mut stmt = match conn.prepare_cached(
        "SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version",
    ) {
        Ok(stmt) => stmt,
        Err(rusqlite::Error::SqliteFailure(_, Some(msg)))
            if msg == format!("no such table: {HISTORY_TABLE}") =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(error::sqlite("cannot read the migration history", e)),
    };
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(|e| error::sqlite("cannot read the migration history", e))?;
    let mut out = Vec::new();
    for row in rows {
        let (version, name, applied_on, checksum) =
            row.map_err(|e| error::sqlite("cannot read the migration history", e))?;
        let corrupt = |what: &str| CoreError::CorruptHistory {
            reason: format!("version {version:?}: {what}"),
        };
        out.push(AppliedMigration {
            version: version.ok_or_else(|| corrupt("no version"))?,
            name: name.ok_or_else(|| corrupt("no name"))?,
            applied_on: applied_on.unwrap_or_default(),
            checksum: checksum
                .as_deref()
                .and_then(|c| c.trim().parse().ok())
                .ok_or_else(|| corrupt("checksum is not a number"))?,
            duration: None,
        });
    }
    Ok(out)
}

pub(crate) fn apply(
    conn: &mut Connection,
    pending: &[MigrationFile],
) -> Result<Vec<AppliedMigration>, MigrationBatchError> {
    let mut applied = Vec::with_capacity(pending.len());
    for (i, migration) in pending.iter().enumerate() {
        let started = Instant::now();
        let applied_on = timestamp_now();
        let result = apply_one(conn, migration, &applied_on, i == 0);
        if let Err(error) = result {
            // The transaction may already be gone (SQLite rolls back on some
            // errors by itself); a failed ROLLBACK then changes nothing.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(MigrationBatchError { applied, error });
        }
        let record = migration.applied(applied_on, started);
        tracing::info!(
            migration = %migration,
            elapsed_ms = record.duration.unwrap_or_default().as_secs_f64() * 1e3,
            "applied migration"
        );
        applied.push(record);
    }
    Ok(applied)
}

fn apply_one(
    conn: &mut Connection,
    migration: &MigrationFile,
    applied_on: &str,
    ensure_table: bool,
) -> Result<(), CoreError> {
    let failed = |e: rusqlite::Error| {
        let message = if e.sqlite_error_code()
            == Some(rusqlite::ErrorCode::AuthorizationForStatementDenied)
        {
            "it controls transactions itself (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE); \
             dbinit runs every migration in its own transaction: remove those statements"
                .to_owned()
        } else {
            error::describe(&e, Some(migration.sql()))
        };
        CoreError::MigrationFailed {
            file: format!("{migration}.sql"),
            message,
            source: Some(Box::new(e)),
        }
    };
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| error::sqlite("cannot begin the migration transaction", e))?;
    if ensure_table {
        conn.execute_batch(CREATE_HISTORY)
            .map_err(|e| error::sqlite("cannot create the migration history table", e))?;
    }
    // A COMMIT inside the file would commit half a migration without its
    // history row: refuse transaction control when the statement is
    // prepared, before it can run.
    forbid_transaction_control(conn, true)?;
    let executed = conn.execute_batch(migration.sql());
    forbid_transaction_control(conn, false)?;
    executed.map_err(failed)?;
    dbinit_core::fault::point("migration.executed");
    conn.prepare_cached(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| {
        s.execute(rusqlite::params![
            migration.version(),
            migration.name(),
            applied_on,
            migration.checksum().to_string()
        ])
    })
    .map_err(|e| error::sqlite("cannot record the migration in the history", e))?;
    dbinit_core::fault::point("migration.recorded");
    conn.execute_batch("COMMIT")
        .map_err(|e| error::sqlite("cannot commit the migration", e))?;
    dbinit_core::fault::point("migration.committed");
    Ok(())
}

fn forbid_transaction_control(conn: &mut Connection, forbid: bool) -> Result<(), CoreError> {
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    let result = if forbid {
        conn.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
            AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Authorization::Deny,
            _ => Authorization::Allow,
        }))
    } else {
        conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
    };
    result.map_err(|e| error::sqlite("cannot set the migration authorizer", e))
}
