//! Migrations on SQLite: refinery's history table, one transaction per
//! migration holding both its SQL and its history row.
//!
//! refinery's own rusqlite path commits the SQL and the history row in two
//! transactions, so a crash between them re-applies the migration; this
//! module does not have that window.

use std::time::Instant;

use dbinit_core::migration::{timestamp_now, MigrationBatchError, HISTORY_TABLE};
use dbinit_core::{AppliedMigration, CoreError, MigrationFile};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, ErrorCode};

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
    let denied = Arc::new(Mutex::new(None));
    let failed = |e: rusqlite::Error| {
        let refusal = denied.lock().ok().and_then(|mut d| d.take());
        let message = match refusal {
            Some(why)
                if e.sqlite_error_code() == Some(ErrorCode::AuthorizationForStatementDenied) =>
            {
                why
            }
            _ => error::describe(&e, Some(migration.sql())),
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
    // Refuse, when each statement is prepared and before it can run, what
    // would break the one-transaction-with-its-history-row promise: its own
    // transaction control, and any change to the history table.
    guard(conn, Some(denied.clone()))?;
    let executed = conn.execute_batch(migration.sql());
    guard(conn, None)?;
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

/// What a migration may not do, or `None` when it may.
fn refusal(action: &AuthAction<'_>) -> Option<String> {
    let history = |table: &str| table.eq_ignore_ascii_case(HISTORY_TABLE);
    match action {
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Some(
            "it controls transactions itself (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE); \
             dbinit runs every migration in its own transaction: remove those statements"
                .to_owned(),
        ),
        AuthAction::DropTable { table_name }
        | AuthAction::AlterTable { table_name, .. }
        | AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
        | AuthAction::CreateIndex { table_name, .. }
        | AuthAction::CreateTrigger { table_name, .. }
        | AuthAction::CreateTempTrigger { table_name, .. }
            if history(table_name) =>
        {
            Some(format!(
                "it changes {HISTORY_TABLE}, dbinit's migration history; migrations must \
                 never touch it"
            ))
        }
        AuthAction::Pragma { pragma_name, .. }
            if pragma_name.eq_ignore_ascii_case("writable_schema") =>
        {
            Some(
                "it uses PRAGMA writable_schema, which can silently corrupt the schema and the \
                 migration history; use ALTER TABLE or a table rebuild instead"
                    .to_owned(),
            )
        }
        _ => None,
    }
}

/// Installs the migration authorizer (recording why it denied a statement
/// in `denied`), or removes it.
fn guard(
    conn: &mut Connection,
    denied: Option<Arc<Mutex<Option<String>>>>,
) -> Result<(), CoreError> {
    let result = match denied {
        Some(denied) => conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            match refusal(&ctx.action) {
                Some(why) => {
                    if let Ok(mut slot) = denied.lock() {
                        slot.get_or_insert(why);
                    }
                    Authorization::Deny
                }
                None => Authorization::Allow,
            }
        })),
        None => conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>),
    };
    result.map_err(|e| error::sqlite("cannot set the migration authorizer", e))
}
