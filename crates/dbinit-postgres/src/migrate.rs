//! Migrations on PostgreSQL: refinery's history table, one transaction per
//! migration holding both its SQL and its history row.

use std::time::Instant;

use dbinit_core::migration::{timestamp_now, MigrationBatchError};
use dbinit_core::{AppliedMigration, CoreError, MigrationFile};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::error;

/// refinery's table definition, so refinery can read what dbinit wrote.
const CREATE_HISTORY: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history(
    version INT4 PRIMARY KEY,
    name VARCHAR(255),
    applied_on VARCHAR(255),
    checksum VARCHAR(255))";

pub(crate) async fn applied(client: &Client) -> Result<Vec<AppliedMigration>, CoreError> {
    let rows = match client
        .query(
            "SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        // No history table yet: nothing applied. One round trip either way.
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => return Ok(Vec::new()),
        Err(e) => return Err(error::classify("cannot read the migration history", e)),
    };
    rows.iter()
        .map(|row| {
            // try_get: a history table whose column types differ from
            // refinery's is reported, not a panic.
            let text = |i: usize| row.try_get::<_, Option<String>>(i).ok().flatten();
            let version: Option<i32> = row.try_get(0).ok().flatten();
            let corrupt = |what: &str| CoreError::CorruptHistory {
                reason: format!("version {version:?}: {what}"),
            };
            Ok(AppliedMigration {
                version: i64::from(version.ok_or_else(|| corrupt("no version (or not an INT4)"))?),
                name: text(1).ok_or_else(|| corrupt("no name"))?,
                applied_on: text(2).unwrap_or_default(),
                checksum: text(3)
                    .and_then(|c| c.trim().parse().ok())
                    .ok_or_else(|| corrupt("checksum is not a number"))?,
                duration: None,
            })
        })
        .collect()
}

pub(crate) async fn apply(
    client: &Client,
    pending: &[MigrationFile],
) -> Result<Vec<AppliedMigration>, MigrationBatchError> {
    let mut applied = Vec::with_capacity(pending.len());
    for (i, migration) in pending.iter().enumerate() {
        let started = Instant::now();
        let applied_on = timestamp_now();
        if let Err(error) = apply_one(client, migration, &applied_on, i == 0).await {
            // Leaves the session usable (and able to release its lock).
            let _ = client.batch_execute("ROLLBACK").await;
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

/// The server's message for a failed migration, with the line it points at.
fn failure(migration: &MigrationFile, e: tokio_postgres::Error) -> CoreError {
    let mut message = error::describe(&e);
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) =
        e.as_db_error().and_then(|d| d.position())
    {
        let offset = (*pos as usize).saturating_sub(1);
        let line = migration
            .sql()
            .chars()
            .take(offset)
            .filter(|c| *c == '\n')
            .count()
            + 1;
        message.push_str(&format!(" at line {line}"));
    }
    CoreError::MigrationFailed {
        file: format!("{migration}.sql"),
        message,
        source: Some(Box::new(e)),
    }
}

async fn apply_one(
    client: &Client,
    migration: &MigrationFile,
    applied_on: &str,
    ensure_table: bool,
) -> Result<(), CoreError> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| error::classify("cannot begin the migration transaction", e))?;
    if ensure_table {
        client
            .batch_execute(CREATE_HISTORY)
            .await
            .map_err(|e| error::classify("cannot create the migration history table", e))?;
    }
    client
        .batch_execute(migration.sql())
        .await
        .map_err(|e| failure(migration, e))?;
    dbinit_core::fault::point("migration.executed");
    let version =
        i32::try_from(migration.version()).map_err(|_| CoreError::InvalidMigrationSet {
            reason: format!("{migration}: version does not fit refinery's INT4 history column"),
        })?;
    client
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES ($1, $2, $3, $4)",
            &[&version, &migration.name(), &applied_on, &migration.checksum().to_string()],
        )
        .await
        .map_err(|e| {
            if e.as_db_error().is_some() {
                // The table was there when the migration began: the
                // migration itself dropped or altered it.
                CoreError::MigrationFailed {
                    file: format!("{migration}.sql"),
                    message: format!(
                        "its history row cannot be written ({}); the migration changed \
                         refinery_schema_history, which migrations must never touch",
                        error::describe(&e)
                    ),
                    source: Some(Box::new(e)),
                }
            } else {
                error::classify("cannot record the migration in the history", e)
            }
        })?;
    dbinit_core::fault::point("migration.recorded");
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| error::classify("cannot commit the migration", e))?;
    dbinit_core::fault::point("migration.committed");
    Ok(())
}
