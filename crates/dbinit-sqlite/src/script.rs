//! Migration scripts on SQLite: what only SQLite needs around the engine's
//! `execute_migration` (an authorizer, and errors that name the line).

use std::sync::{Arc, Mutex};

use dbinit_core::migration::HISTORY_TABLE;
use dbinit_core::{CoreError, Script};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, ErrorCode};

use crate::error;

/// Runs a migration script. Refuses, when each statement is prepared and
/// before it can run, what would break the engine's promises: the script's
/// own transaction control, any change to the history table, and
/// `PRAGMA writable_schema`. A failure names the line, not the rest of the
/// file.
pub(crate) fn run(conn: &mut Connection, script: Script<'_>) -> Result<(), CoreError> {
    let denied = Arc::new(Mutex::new(None));
    guard(conn, Some(denied.clone()))?;
    let executed = conn.execute_batch(script.sql);
    guard(conn, None)?;
    executed.map_err(|e| {
        let refusal = denied.lock().ok().and_then(|mut d| d.take());
        let message = match refusal {
            Some(why)
                if e.sqlite_error_code() == Some(ErrorCode::AuthorizationForStatementDenied) =>
            {
                why
            }
            _ => error::describe(&e, Some(script.sql)),
        };
        // Not the script's fault: keep the kind (disk full, read-only, ...).
        if matches!(
            e.sqlite_error_code(),
            Some(
                ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::PermissionDenied
                    | ErrorCode::ReadOnly
                    | ErrorCode::CannotOpen
                    | ErrorCode::NotADatabase
                    | ErrorCode::DatabaseCorrupt
            )
        ) {
            return error::sqlite(format_args!("cannot run {}", script.file), e);
        }
        CoreError::MigrationFailed {
            file: script.file.to_owned(),
            message,
            source: Some(Box::new(e)),
        }
    })
}

/// Drops the temporary objects a script left and resets the pragmas that
/// change the meaning of later SQL.
pub(crate) fn reset(conn: &Connection) -> Result<(), CoreError> {
    let temp: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT type, name FROM temp.sqlite_schema \
             WHERE type IN ('table', 'view', 'trigger') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| error::sqlite("cannot list temporary objects", e))?;
    let mut sql = String::from(
        "PRAGMA recursive_triggers = OFF; PRAGMA case_sensitive_like = OFF; \
         PRAGMA reverse_unordered_selects = OFF; PRAGMA defer_foreign_keys = OFF;",
    );
    for (kind, name) in temp {
        sql.push_str(&format!(
            " DROP {} IF EXISTS temp.{};",
            kind.to_ascii_uppercase(),
            dbinit_core::quote_ident(&name)
        ));
    }
    conn.execute_batch(&sql)
        .map_err(|e| error::sqlite("cannot reset the session after a migration", e))
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
        | AuthAction::CreateTable { table_name }
        | AuthAction::CreateTempTable { table_name }
        | AuthAction::CreateView {
            view_name: table_name,
        }
        | AuthAction::CreateTempView {
            view_name: table_name,
        }
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
            if pragma_name.eq_ignore_ascii_case("writable_schema")
                || pragma_name.eq_ignore_ascii_case("query_only") =>
        {
            Some(format!(
                "it uses PRAGMA {pragma_name}, which can corrupt the schema or keep dbinit from \
                 recording the migration; use ALTER TABLE or a table rebuild instead"
            ))
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
