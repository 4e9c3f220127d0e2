//! The migration engine, written once over the [`Session`] primitives:
//! the history table and its decoding, the plan, apply, rollback, baseline,
//! repair, and the audit trail. Backends supply primitives; nothing here
//! names a backend. Every function expects the caller (the runner) to hold
//! the init lock.
//!
//! Order of each step, and why:
//! - a migration runs in one transaction with its history row; a
//!   `-- dbinit:no-transaction` one runs statement by statement, its
//!   session is reset, and its row is written after it succeeds, in a
//!   transaction of its own (so a failure means "may be partly applied;
//!   the next run retries it");
//! - the backend hears that a script is recorded inside the transaction
//!   that records it (`MigrationScripts::recorded`: a journal of its
//!   statements goes with it);
//! - session state is reset after every script, before its history row is
//!   written (a `SET search_path` must not hide the history table) and
//!   inside its transaction, without releasing the lock
//!   (`MigrationScripts::reset_session`);
//! - a down script runs in one transaction with the removal of its row;
//! - baseline and repair write history rows and an audit record in one
//!   transaction.

use std::time::Instant;

use serde::Serialize;

use crate::dialect::{self, ColumnType, Dialect, OwnColumn};
use crate::fault;
use crate::migration::{is_no_transaction, timestamp_now, MigrationBatchError, HISTORY_TABLE};
use crate::script::Script;
use crate::{
    AppliedMigration, CoreError, ErrorKind, MigrationFile, MigrationSet, Row, Session, Value,
};

/// dbinit's record of baselines, repairs and rollbacks.
pub const AUDIT_TABLE: &str = "dbinit_migration_audit";

/// refinery's table definition, so refinery reads what dbinit writes.
const HISTORY_COLUMNS: &[OwnColumn] = &[
    OwnColumn::null("version", ColumnType::Int32),
    OwnColumn::null("name", ColumnType::Varchar(255)),
    OwnColumn::null("applied_on", ColumnType::Varchar(255)),
    OwnColumn::null("checksum", ColumnType::Varchar(255)),
];
const AUDIT_COLUMNS: &[OwnColumn] = &[
    OwnColumn::required("at", ColumnType::Varchar(64)),
    OwnColumn::required("action", ColumnType::Varchar(32)),
    OwnColumn::required("version", ColumnType::Int32),
    OwnColumn::required("name", ColumnType::Varchar(255)),
    OwnColumn::null("old_checksum", ColumnType::Varchar(255)),
    OwnColumn::null("new_checksum", ColumnType::Varchar(255)),
    OwnColumn::required("host", ColumnType::Varchar(255)),
    OwnColumn::required("os_user", ColumnType::Varchar(255)),
];

/// The history row of a migration: `(version, name, applied_on, checksum)`.
fn insert_history(d: &dyn Dialect) -> String {
    let names: Vec<&str> = HISTORY_COLUMNS.iter().map(|c| c.name).collect();
    dialect::insert(d, HISTORY_TABLE, &names)
}

/// The history, oldest first.
fn select_history(d: &dyn Dialect) -> String {
    let names: Vec<&str> = HISTORY_COLUMNS.iter().map(|c| c.name).collect();
    let select = dialect::select(d, HISTORY_TABLE, &names);
    format!("{select} ORDER BY {}", d.quote_ident("version"))
}

fn delete_history(d: &dyn Dialect) -> String {
    format!(
        "DELETE FROM {} WHERE {} = {}",
        d.quote_ident(HISTORY_TABLE),
        d.quote_ident("version"),
        d.placeholder(1)
    )
}

/// Parameters: name, checksum, version.
fn update_checksum(d: &dyn Dialect) -> String {
    let q = |name: &str| d.quote_ident(name);
    format!(
        "UPDATE {} SET {} = {}, {} = {} WHERE {} = {}",
        q(HISTORY_TABLE),
        q("name"),
        d.placeholder(1),
        q("checksum"),
        d.placeholder(2),
        q("version"),
        d.placeholder(3)
    )
}

/// The applied migrations, oldest first. An absent history table reads as
/// empty. Read-only.
///
/// # Errors
///
/// [`CoreError::CorruptHistory`] for a row dbinit cannot read.
pub async fn history(session: &mut dyn Session) -> Result<Vec<AppliedMigration>, CoreError> {
    let select = select_history(session.dialect());
    match session.query_table(HISTORY_TABLE, &select).await? {
        None => Ok(Vec::new()),
        Some(rows) => rows.iter().map(decode).collect(),
    }
}

fn decode(row: &Row) -> Result<AppliedMigration, CoreError> {
    let values = row.values();
    let shown = match values.first() {
        Some(Value::Int(v)) => v.to_string(),
        Some(Value::Text(t)) => format!("{t:?}"),
        Some(Value::Null) | None => "NULL".to_owned(),
        Some(other) => format!("{other:?}"),
    };
    let corrupt = |what: &str| CoreError::CorruptHistory {
        reason: format!("the row of version {shown}: {what}"),
    };
    let text = |i: usize| match values.get(i) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    };
    let version = match values.first() {
        Some(Value::Int(v)) => *v,
        _ => return Err(corrupt("no version (or not an integer)")),
    };
    Ok(AppliedMigration {
        version,
        name: text(1).ok_or_else(|| corrupt("no name"))?,
        applied_on: text(2).unwrap_or_default(),
        checksum: text(3)
            .and_then(|c| c.trim().parse().ok())
            .ok_or_else(|| corrupt("checksum is not a number"))?,
        duration: None,
    })
}

/// What `init` would do to the migrations: what is applied, what is pending.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The history, oldest first.
    pub applied: Vec<AppliedMigration>,
    /// The migrations to apply, in order.
    pub pending: Vec<&'a MigrationFile>,
}

/// Reads the history and validates it against `set`. Read-only.
///
/// # Errors
///
/// Divergent, missing or out-of-order migrations; a database with tables
/// but no history ([`CoreError::ForeignDatabase`]) when there is anything
/// to apply.
pub async fn plan<'a>(
    session: &mut dyn Session,
    set: &'a MigrationSet,
) -> Result<Plan<'a>, CoreError> {
    let applied = history(session).await?;
    let pending = set.pending(&applied)?;
    if applied.is_empty() && !pending.is_empty() {
        // Tables but no history: another application's database, or one
        // made before dbinit (unless a crash interrupted dbinit's first
        // script). Never build a schema on top of it.
        let tables = session.tables().await?;
        if !tables.is_empty() && session.interrupted().await?.is_empty() {
            return Err(CoreError::ForeignDatabase { tables });
        }
    }
    Ok(Plan { applied, pending })
}

/// Applies `pending` in order. Stops at the first failure.
///
/// # Errors
///
/// The failing migration's error, with the migrations applied before it.
pub async fn apply(
    session: &mut dyn Session,
    pending: &[&MigrationFile],
) -> Result<Vec<AppliedMigration>, MigrationBatchError> {
    let mut applied = Vec::with_capacity(pending.len());
    if pending.is_empty() {
        return Ok(applied);
    }
    if let Err(error) = ensure_history(session).await {
        return Err(MigrationBatchError { applied, error });
    }
    for migration in pending {
        let started = Instant::now();
        let applied_on = timestamp_now();
        if let Err(error) = apply_one(session, migration, &applied_on).await {
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

/// Creates the history table unless the name already resolves to one: on
/// PostgreSQL, `CREATE TABLE IF NOT EXISTS` would make a second one in a
/// schema that appeared earlier in the search path (`$user`), and split the
/// history.
async fn ensure_history(session: &mut dyn Session) -> Result<(), CoreError> {
    let create = dialect::create_table(session.dialect(), HISTORY_TABLE, HISTORY_COLUMNS, true);
    ensure(session, HISTORY_TABLE, &create).await
}

async fn ensure_audit(session: &mut dyn Session) -> Result<(), CoreError> {
    let create = dialect::create_table(session.dialect(), AUDIT_TABLE, AUDIT_COLUMNS, false);
    ensure(session, AUDIT_TABLE, &create).await
}

/// Creates `table` with `create` unless its name already resolves (the
/// audit table likewise: a role without CREATE on the schema can still
/// use one that exists).
async fn ensure(session: &mut dyn Session, table: &str, create: &str) -> Result<(), CoreError> {
    if session.table_exists(table).await? {
        return Ok(());
    }
    session.execute_batch(create).await
}

fn history_row(migration: &MigrationFile, applied_on: &str) -> [Value; 4] {
    [
        Value::Int(migration.version()),
        Value::from(migration.name()),
        Value::from(applied_on),
        Value::Text(migration.checksum().to_string()),
    ]
}

/// The history row could not be written after the migration ran: unless
/// the connection is gone, the migration changed the history table.
fn unrecordable(migration: &MigrationFile, e: CoreError) -> CoreError {
    match e.kind() {
        ErrorKind::Unreachable | ErrorKind::Io | ErrorKind::Interrupted => e,
        _ => CoreError::MigrationFailed {
            file: migration.file_name(),
            message: format!(
                "its history row cannot be written ({e}); the migration changed \
                 refinery_schema_history, which migrations must never touch"
            ),
            source: Some(Box::new(e)),
        },
    }
}

/// Runs `body` in one transaction, rolled back if it fails.
async fn atomically<T>(
    session: &mut dyn Session,
    body: impl AsyncFnOnce(&mut dyn Session) -> Result<T, CoreError>,
) -> Result<T, CoreError> {
    session.begin().await?;
    let result = match body(&mut *session).await {
        Ok(value) => session.commit().await.map(|()| value),
        Err(e) => Err(e),
    };
    if result.is_err() {
        // The transaction may already be gone; a failed ROLLBACK changes nothing.
        let _ = session.rollback().await;
    }
    result
}

/// One migration and its history row: in one transaction, or — marked
/// no-transaction — its statements one by one, then its row.
async fn apply_one(
    session: &mut dyn Session,
    migration: &MigrationFile,
    applied_on: &str,
) -> Result<(), CoreError> {
    let in_transaction = migration.runs_in_transaction();
    let file = migration.file_name();
    let script = Script {
        file: &file,
        version: migration.version(),
        down: false,
        sql: migration.sql(),
        in_transaction,
    };
    // A no-transaction script's session is reset outside the transaction
    // that records it: SQLite's pragmas cannot change inside one.
    let record = async |s: &mut dyn Session| {
        fault::point("migration.executed");
        s.execute(
            &insert_history(s.dialect()),
            &history_row(migration, applied_on),
        )
        .await
        .map_err(|e| unrecordable(migration, e))?;
        fault::point("migration.recorded");
        s.recorded(script).await
    };
    if in_transaction {
        atomically(session, async |s| {
            s.execute_migration(script).await?;
            s.reset_session().await?;
            record(s).await
        })
        .await?;
    } else {
        if let Err(e) = session.execute_migration(script).await {
            return Err(if resumes(session, migration).await {
                e
            } else {
                partly_applied(e, "fix it and run init again")
            });
        }
        session.reset_session().await?;
        atomically(session, record).await?;
    }
    fault::point("migration.committed");
    Ok(())
}

/// Whether the backend journaled how far `migration`'s failed script got
/// (MySQL): its own error then says where the next run resumes. Unknown
/// (a lost connection) counts as no: the script's own error is kept.
async fn resumes(session: &mut dyn Session, migration: &MigrationFile) -> bool {
    session
        .interrupted()
        .await
        .is_ok_and(|v| v.contains(&migration.version()))
}

/// A no-transaction script's failure: nothing was rolled back, so say what
/// that leaves behind (`what`: what the next step is).
fn partly_applied(e: CoreError, what: &str) -> CoreError {
    match e {
        CoreError::MigrationFailed {
            file,
            message,
            source,
        } if source.is_some() => {
            let error = CoreError::backend(
                ErrorKind::MigrationFailed,
                format!(
                    "{file} failed part way: {message}. It runs outside a transaction, so \
                     the statements before the failure stay applied"
                ),
            )
            .with_hint(format!(
                "{what}; it runs the whole file again from the start, so write it to be \
                 re-runnable (CREATE INDEX CONCURRENTLY IF NOT EXISTS, DROP ... IF EXISTS)"
            ));
            match source {
                Some(source) => error.with_source(source),
                None => error,
            }
        }
        e => e,
    }
}

/// Reads the history back after applying or rolling back: a script that
/// rewrote, emptied or refilled it (which the database may not have
/// prevented) must fail this run, not the next one. `expected`: the
/// versions the history must hold now.
///
/// # Errors
///
/// A [`ErrorKind::MigrationFailed`] error when the history does not hold
/// exactly `expected`, or no longer matches `set`.
pub async fn verify(
    session: &mut dyn Session,
    set: &MigrationSet,
    expected: &[i64],
) -> Result<(), CoreError> {
    let after = history(session).await?;
    let mut want = expected.to_vec();
    want.sort_unstable();
    let have: Vec<i64> = after.iter().map(|a| a.version).collect();
    let problem = match set.pending(&after) {
        Err(e) => Some(e.to_string()),
        Ok(_) if have != want => Some(format!(
            "it holds versions {have:?} where {want:?} were expected"
        )),
        Ok(_) => None,
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(CoreError::backend(
            ErrorKind::MigrationFailed,
            format!(
                "after this run's scripts were committed, refinery_schema_history no longer \
                 matches them ({problem}): one of them modified the history table"
            ),
        )
        .with_hint(
            "find the script that touches refinery_schema_history, fix it, and restore the \
             history rows from a backup; migrations and down scripts must never modify it",
        )),
    }
}

/// How far to roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The newest `n` applied migrations.
    Steps(usize),
    /// Every applied migration above this version.
    To(i64),
}

/// The migrations a rollback would undo, newest first, with their down
/// scripts. Read-only.
///
/// # Errors
///
/// An invalid history (divergent or missing files: their down scripts
/// cannot be trusted), a target beyond the history, or a migration in the
/// range without a down script: nothing is rolled back then.
pub async fn rollback_plan<'a>(
    session: &mut dyn Session,
    set: &'a MigrationSet,
    target: RollbackTarget,
) -> Result<Vec<&'a MigrationFile>, CoreError> {
    let applied = history(session).await?;
    set.pending(&applied)?;
    let invalid = |reason: String| CoreError::InvalidMigrationSet { reason };
    let count = match target {
        RollbackTarget::Steps(n) if n > applied.len() => {
            return Err(invalid(format!(
                "cannot roll back {n} migrations: {} are applied",
                applied.len()
            )))
        }
        RollbackTarget::Steps(n) => n,
        RollbackTarget::To(v) if v != 0 && !applied.iter().any(|a| a.version == v) => {
            return Err(invalid(format!(
                "version {v} is not applied; roll back to an applied version (or 0 for all)"
            )))
        }
        RollbackTarget::To(v) => applied.iter().filter(|a| a.version > v).count(),
    };
    let range: Vec<&MigrationFile> = applied
        .iter()
        .rev()
        .take(count)
        .filter_map(|a| set.migrations().iter().find(|m| m.version() == a.version))
        .collect();
    let missing: Vec<String> = range
        .iter()
        .filter(|m| m.down().is_none())
        .map(|m| m.down_file_name())
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "no down script for {}; nothing was rolled back (an empty down script means \
             \"nothing to undo\")",
            missing.join(", ")
        )));
    }
    Ok(range)
}

/// Runs the down scripts of `range` (from [`rollback_plan`]), newest first,
/// each atomically with the removal of its history row (unless the down
/// script is marked no-transaction). Stops at the first failure.
///
/// # Errors
///
/// The failing down script's error, with the migrations rolled back before
/// it (as `applied`).
pub async fn rollback(
    session: &mut dyn Session,
    range: &[&MigrationFile],
) -> Result<Vec<AppliedMigration>, MigrationBatchError> {
    let mut done = Vec::with_capacity(range.len());
    if let Err(error) = ensure_audit(session).await {
        return Err(MigrationBatchError {
            applied: done,
            error,
        });
    }
    for migration in range {
        let started = Instant::now();
        if let Err(error) = roll_back_one(session, migration).await {
            return Err(MigrationBatchError {
                applied: done,
                error,
            });
        }
        tracing::info!(migration = %migration, "rolled back migration");
        done.push(migration.applied(timestamp_now(), started));
    }
    Ok(done)
}

async fn roll_back_one(
    session: &mut dyn Session,
    migration: &MigrationFile,
) -> Result<(), CoreError> {
    let sql = migration.down().unwrap_or_default();
    let in_transaction = !is_no_transaction(sql);
    let file = migration.down_file_name();
    let script = Script {
        file: &file,
        version: migration.version(),
        down: true,
        sql,
        in_transaction,
    };
    let record = async |s: &mut dyn Session| {
        fault::point("rollback.executed");
        s.execute(
            &delete_history(s.dialect()),
            &[Value::Int(migration.version())],
        )
        .await?;
        fault::point("rollback.recorded");
        audit(s, "rollback", migration, Some(migration.checksum()), None).await?;
        s.recorded(script).await
    };
    let failed = async |s: &mut dyn Session, e: CoreError| {
        if resumes(s, migration).await {
            return e;
        }
        match e {
            e if !in_transaction => partly_applied(e, "fix the down script and run rollback again"),
            CoreError::MigrationFailed {
                file,
                message,
                source,
            } => {
                let error = CoreError::backend(
                    ErrorKind::MigrationFailed,
                    format!(
                        "{file} failed and was rolled back: {message}; {migration} stays applied"
                    ),
                )
                .with_hint("fix the down script and run rollback again");
                match source {
                    Some(source) => error.with_source(source),
                    None => error,
                }
            }
            e => e,
        }
    };
    if in_transaction {
        atomically(session, async |s| {
            if let Err(e) = s.execute_migration(script).await {
                return Err(failed(s, e).await);
            }
            s.reset_session().await?;
            record(s).await
        })
        .await?;
    } else {
        if let Err(e) = session.execute_migration(script).await {
            return Err(failed(session, e).await);
        }
        session.reset_session().await?;
        atomically(session, record).await?;
    }
    fault::point("rollback.committed");
    Ok(())
}

/// Adopts an existing database: records every migration up to `version`
/// (versioned or not) as applied without running it, with an audit record,
/// in one transaction.
///
/// # Errors
///
/// A history that already has rows, a `version` that is not in the set, or
/// a database without the tables the migrations up to it create: nothing
/// is written then.
pub async fn baseline(
    session: &mut dyn Session,
    set: &MigrationSet,
    version: i64,
) -> Result<Vec<AppliedMigration>, CoreError> {
    let invalid = |reason: String| CoreError::InvalidMigrationSet { reason };
    if !history(session).await?.is_empty() {
        return Err(invalid(
            "the database already has a migration history; baseline adopts only a database \
             without one"
                .to_owned(),
        ));
    }
    if !set.migrations().iter().any(|m| m.version() == version) {
        return Err(invalid(format!(
            "version {version} is not in the migration set {}; baseline to the version of an \
             existing migration file",
            set.origin()
        )));
    }
    // Versioned and unversioned alike: everything up to `version` is there.
    let adopted: Vec<&MigrationFile> = set
        .migrations()
        .iter()
        .filter(|m| m.version() <= version)
        .collect();
    // The database must look like that version: its tables, at least.
    let expected = crate::tables::tables_left_by(adopted.iter().map(|m| m.sql()));
    if !expected.is_empty() {
        // Each backend resolves names by its own rules (case, search path).
        let missing = session.missing_tables(&expected).await?;
        if !missing.is_empty() {
            let shown = missing
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = missing.len().saturating_sub(20);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            return Err(invalid(format!(
                "the database does not look like version {version}: the migrations up to it \
                 create {} tables it does not have ({shown}{more}); baseline adopts a database \
                 whose schema is already there (on a new database, run `init` instead); \
                 nothing was written",
                missing.len()
            )));
        }
    }
    ensure_history(session).await?;
    ensure_audit(session).await?;
    let applied_on = timestamp_now();
    atomically(session, async |s| {
        let mut records = Vec::with_capacity(adopted.len());
        for migration in &adopted {
            s.execute(
                &insert_history(s.dialect()),
                &history_row(migration, &applied_on),
            )
            .await?;
            audit(s, "baseline", migration, None, Some(migration.checksum())).await?;
            records.push(migration.applied(applied_on.clone(), Instant::now()));
        }
        fault::point("baseline.recorded");
        Ok(records)
    })
    .await
}

/// What [`repair`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repaired {
    /// The migration's version.
    pub version: i64,
    /// Its name (now that of the file).
    pub name: String,
    /// The checksum the history had.
    pub old_checksum: u64,
    /// The file's checksum, now in the history.
    pub new_checksum: u64,
}

/// Accepts the edited file of applied migration `version`: its checksum
/// (and name) replace the recorded ones, with an audit record saying who
/// did it, where, when, and what the checksum was.
///
/// # Errors
///
/// When `version` is not applied, its file is missing, or nothing differs.
pub async fn repair(
    session: &mut dyn Session,
    set: &MigrationSet,
    version: i64,
) -> Result<Repaired, CoreError> {
    let invalid = |reason: String| CoreError::InvalidMigrationSet { reason };
    let history = history(session).await?;
    let Some(applied) = history.iter().find(|a| a.version == version) else {
        return Err(invalid(format!(
            "version {version} is not applied; nothing to repair"
        )));
    };
    let Some(file) = set.migrations().iter().find(|m| m.version() == version) else {
        return Err(invalid(format!(
            "V{version}__{} is missing from {}; repair accepts an edited file, not a missing one",
            applied.name,
            set.origin()
        )));
    };
    if file.checksum() == applied.checksum && file.name() == applied.name {
        return Err(invalid(format!(
            "{} matches its history row; nothing to repair",
            file.file_name()
        )));
    }
    let row = [
        Value::from(file.name()),
        Value::Text(file.checksum().to_string()),
        Value::Int(version),
    ];
    ensure_audit(session).await?;
    atomically(session, async |s| {
        s.execute(&update_checksum(s.dialect()), &row).await?;
        audit(
            s,
            "repair",
            file,
            Some(applied.checksum),
            Some(file.checksum()),
        )
        .await?;
        fault::point("repair.recorded");
        Ok(())
    })
    .await?;
    Ok(Repaired {
        version,
        name: file.name().to_owned(),
        old_checksum: applied.checksum,
        new_checksum: file.checksum(),
    })
}

/// Appends to the audit table (the caller created it).
async fn audit(
    session: &mut dyn Session,
    action: &str,
    migration: &MigrationFile,
    old: Option<u64>,
    new: Option<u64>,
) -> Result<(), CoreError> {
    let checksum = |c: Option<u64>| c.map_or(Value::Null, |c| Value::Text(c.to_string()));
    let names: Vec<&str> = AUDIT_COLUMNS.iter().map(|c| c.name).collect();
    let sql = dialect::insert(session.dialect(), AUDIT_TABLE, &names);
    session
        .execute(
            &sql,
            &[
                Value::from(timestamp_now()),
                Value::from(action),
                Value::Int(migration.version()),
                Value::from(migration.name()),
                checksum(old),
                checksum(new),
                Value::from(host()),
                Value::from(os_user()),
            ],
        )
        .await
        .map(|_| ())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}
