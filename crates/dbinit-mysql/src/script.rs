//! Running a migration script on MySQL: statement by statement, as the
//! `mysql` client splits it; in the engine's transaction when nothing in
//! it commits, through the statement journal (`journal.rs`) otherwise.

use dbinit_core::dialect::Dialect;
use dbinit_core::{fault, BoxError, CoreError, ErrorKind, Script};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{code, describe, server_code};
use crate::journal::{self, Entry, Key};
use crate::lease::{self, Lease};
use crate::split::{self, SessionState, Statement};
use crate::target;

/// Runs `script`. A script whose statements all run inside a transaction
/// (data changes) runs in the engine's, as on PostgreSQL. Any other is
/// journaled: after a crash, the rerun checks that the statements already
/// committed are unchanged and resumes after them. Returns whether it was
/// journaled (its rows then go with its history row: `journal::forget`).
pub(crate) async fn execute(
    conn: &mut Conn,
    database: &str,
    script: Script<'_>,
    rows: &mut journal::Rows,
    lease: Option<&Lease>,
    keeps_session: &mut bool,
) -> Result<bool, CoreError> {
    let statements = split::split(script.sql).map_err(|reason| failed(&script, reason, None))?;
    *keeps_session = statements.iter().all(|s| split::keeps_session(&s.sql));
    if let Some(s) = statements
        .iter()
        .find(|s| split::controls_transaction(&s.sql))
    {
        return Err(failed(
            &script,
            format!(
                "line {}: `{}` controls the transaction or locks tables, which dbinit does \
                 itself (a script runs in one transaction when it can, and is journaled \
                 statement by statement when it cannot); remove it",
                s.line,
                first_line(&s.sql)
            ),
            None,
        ));
    }
    let key = Key {
        database,
        version: script.version,
        down: script.down,
    };
    let entries = rows
        .scripts
        .remove(&(script.version, script.down))
        .unwrap_or_default();
    let commits = statements.iter().any(|s| split::commits_implicitly(&s.sql));
    if entries.is_empty() && script.in_transaction && !commits {
        for (index, statement) in statements.iter().enumerate() {
            if let Err(e) = conn.query_drop(statement.sql.as_str()).await {
                return Err(failed_at(&script, statement, index, e, 0));
            }
        }
        return Ok(false);
    }
    Journaled {
        conn,
        script,
        key,
        open: script.in_transaction,
        committed: 0,
        lease,
    }
    .run(&statements, &entries, &mut rows.table)
    .await
    .map(|()| true)
}

/// A journaled run. `open`: whether a transaction is open; `committed`:
/// how many statements are committed for certain.
struct Journaled<'c, 's> {
    conn: &'c mut Conn,
    script: Script<'s>,
    key: Key<'s>,
    open: bool,
    committed: usize,
    /// The lease this process holds, if the lock is one: checked before
    /// anything commits (DDL cannot be fenced inside a transaction).
    lease: Option<&'s Lease>,
}

impl Journaled<'_, '_> {
    /// `table`: whether the journal's table exists (made here if not).
    async fn run(
        mut self,
        statements: &[Statement],
        entries: &[Entry],
        table: &mut bool,
    ) -> Result<(), CoreError> {
        let resume = resume_point(&self.script, statements, entries)?;
        if !*table {
            // Creating the table commits the engine's (still empty) transaction.
            journal::create(self.conn, self.key).await?;
            self.open = false;
            *table = true;
        }
        if !entries.is_empty() {
            self.resume(statements, resume).await?;
        }
        // The last recorded statement, if it was running when the run stopped.
        let running = entries.last().filter(|e| !e.done);
        for (index, statement) in statements.iter().enumerate().skip(resume) {
            if split::commits_implicitly(&statement.sql) {
                let was_running = running.filter(|e| e.statement == index);
                self.committing(statement, index, was_running).await?;
            } else {
                self.transactional(statement, index).await?;
            }
        }
        // The rows go with the history row (`MigrationScripts::recorded`):
        // in the engine's transaction, or in the one it opens next.
        if self.script.in_transaction && !self.open {
            self.simple("START TRANSACTION").await?;
        } else if !self.script.in_transaction && self.open {
            self.commit().await?;
        }
        Ok(())
    }

    /// Fails once the lease is no longer this process's: a holder that
    /// was stopped past its lease's expiry commits nothing more.
    async fn still_held(&mut self) -> Result<(), CoreError> {
        match self.lease {
            Some(held) => lease::check(self.conn, held).await,
            None => Ok(()),
        }
    }

    async fn commit(&mut self) -> Result<(), CoreError> {
        self.still_held().await?;
        self.simple("COMMIT").await
    }

    /// A new session resumes `statements` at `resume`: the statements
    /// before it that only changed settings (`SET`, `USE`) run again. One
    /// that left a temporary table, a prepared statement or a user variable
    /// cannot be made again as it was: the script cannot resume past it.
    async fn resume(&mut self, statements: &[Statement], resume: usize) -> Result<(), CoreError> {
        tracing::info!(
            file = self.script.file,
            statement = resume + 1,
            of = statements.len(),
            "resuming a script an earlier run left part way: the statements before this \
             one are committed and unchanged"
        );
        self.committed = resume;
        let before = statements.iter().enumerate().take(resume);
        if let Some((index, lost)) = before
            .clone()
            .find(|(_, s)| split::session_state(&s.sql) == Some(SessionState::Lost))
        {
            return Err(CoreError::backend(
                ErrorKind::MigrationFailed,
                format!(
                    "{}: an earlier run stopped at statement {} and cannot resume there: \
                     statement {} (line {}) left session state (a temporary table, a \
                     prepared statement or a user variable) that this new session does not \
                     have",
                    self.script.file,
                    resume + 1,
                    index + 1,
                    lost.line
                ),
            )
            .with_hint(format!(
                "undo statements 1 to {resume} by hand, `DELETE FROM {} WHERE version = {}`, \
                 and run again; a script that keeps such state between statements should do \
                 its DDL first or be split in two",
                journal::TABLE,
                self.script.version
            )));
        }
        for (index, statement) in before {
            if split::session_state(&statement.sql) == Some(SessionState::Replayed) {
                if let Err(e) = self.conn.query_drop(statement.sql.as_str()).await {
                    return Err(self.failed_at(statement, index, e));
                }
            }
        }
        Ok(())
    }

    /// A statement that commits: recorded as started (committed with what
    /// came before, with the definitions of what it changes), run, then
    /// recorded done. `running`: its row, when an earlier run stopped in it.
    async fn committing(
        &mut self,
        statement: &Statement,
        index: usize,
        running: Option<&Entry>,
    ) -> Result<(), CoreError> {
        self.still_held().await?;
        // A `CREATE` answers for itself when run again: it runs, says the
        // object exists (it ran), or is idempotent (`IF NOT EXISTS`, `OR
        // REPLACE`). Other DDL is told by the definitions of its targets.
        let creates = split::tokens(&statement.sql)
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("CREATE"));
        let targets = if creates {
            None
        } else {
            target::targets(&statement.sql)
        };
        let now = match &targets {
            Some(objects) => Some(target::fingerprint(self.conn, objects).await?),
            None => None,
        };
        match running {
            // The definitions changed since it started: it ran.
            Some(entry) if entry.before.is_some() && entry.before != now => {
                tracing::warn!(
                    file = self.script.file,
                    line = statement.line,
                    "the statement an earlier run stopped in had run; going on after it"
                );
                self.committed = index + 1;
                return journal::finish(self.conn, self.key, index).await;
            }
            Some(_) if self.open => self.simple("COMMIT").await?,
            Some(_) => {}
            None => {
                let before = now.as_deref();
                journal::start(
                    self.conn,
                    self.key,
                    index,
                    &statement.sql,
                    before,
                    self.open,
                )
                .await?;
            }
        }
        self.open = false;
        self.committed = index;
        fault::point("mysql.statement.before");
        if let Err(e) = self.conn.query_drop(statement.sql.as_str()).await {
            // Run again on unchanged definitions, "it exists" means it ran
            // and changed nothing `SHOW CREATE` shows (an index that takes
            // over a foreign key's implicit one of the same name).
            if running.is_some() && server_code(&e).is_some_and(|c| code::EXISTS.contains(&c)) {
                tracing::warn!(
                    file = self.script.file,
                    line = statement.line,
                    server = %describe(&e),
                    "the statement an earlier run stopped in had run; going on after it"
                );
                self.committed = index + 1;
                return journal::finish(self.conn, self.key, index).await;
            }
            // A statement the server refused did not run (MySQL's DDL is
            // atomic), and the next run starts it afresh; one killed, lost
            // with the connection, or run before without a way to tell,
            // stays started.
            let refused = server_code(&e).is_some_and(|c| c != code::QUERY_INTERRUPTED);
            if refused && (running.is_none() || targets.is_some() || creates) {
                let _ = journal::forget(self.conn, self.key, index).await;
            } else if running.is_some() {
                let error = self.failed_at(statement, index, e);
                return Err(CoreError::backend(
                    ErrorKind::MigrationFailed,
                    format!(
                        "{error}. It was running when an earlier run stopped, and what it \
                         changes cannot be read back to tell whether it ran"
                    ),
                )
                .with_hint(format!(
                    "if it ran, `UPDATE {} SET state = 'done' WHERE version = {} AND \
                     statement = {index}` and run again; if not, fix it",
                    journal::TABLE,
                    self.script.version
                )));
            }
            return Err(self.failed_at(statement, index, e));
        }
        fault::point("mysql.statement.after");
        self.committed = index + 1;
        journal::finish(self.conn, self.key, index).await
    }

    /// A statement that runs in a transaction, recorded in the same one
    /// (its own, when the script is marked no-transaction).
    async fn transactional(
        &mut self,
        statement: &Statement,
        index: usize,
    ) -> Result<(), CoreError> {
        if !self.open {
            self.simple("START TRANSACTION").await?;
            self.open = true;
        }
        fault::point("mysql.statement.before");
        if let Err(e) = self.conn.query_drop(statement.sql.as_str()).await {
            // The engine rolls back a transactional script; here, our own.
            let _ = self.conn.query_drop("ROLLBACK").await;
            self.open = false;
            return Err(self.failed_at(statement, index, e));
        }
        journal::record(self.conn, self.key, index, &statement.sql).await?;
        fault::point("mysql.statement.after");
        if !self.script.in_transaction {
            self.commit().await?;
            self.open = false;
            self.committed = index + 1;
        }
        Ok(())
    }

    async fn simple(&mut self, sql: &str) -> Result<(), CoreError> {
        self.conn
            .query_drop(sql)
            .await
            .map_err(|e| crate::error::classify(sql, e))
    }

    fn failed_at(&self, statement: &Statement, index: usize, e: mysql_async::Error) -> CoreError {
        failed_at(&self.script, statement, index, e, self.committed)
    }
}

/// Statement `index` failed; `committed` statements before it stay.
fn failed_at(
    script: &Script<'_>,
    statement: &Statement,
    index: usize,
    e: mysql_async::Error,
    committed: usize,
) -> CoreError {
    let message = format!(
        "statement {} at line {}: {}",
        index + 1,
        statement.line,
        describe(&e)
    );
    let denied = server_code(&e)
        .is_some_and(|c| code::PRIVILEGE.contains(&c) || c == code::DB_ACCESS_DENIED);
    if denied {
        return CoreError::backend(
            ErrorKind::PermissionDenied,
            format!("migration {} was refused: {message}", script.file),
        )
        .with_hint(
            "the user may not change the schema: run init with a user that has ALL on the \
             database, or grant it",
        )
        .with_source(e);
    }
    if committed == 0 {
        return failed(script, message, Some(e));
    }
    // Not `MigrationFailed`'s "nothing of it was kept": some of it was.
    CoreError::backend(
        ErrorKind::MigrationFailed,
        format!(
            "migration {} failed part way: {message}; statements 1 to {committed} stay \
             committed (MySQL commits DDL implicitly) and the next run resumes at statement {}",
            script.file,
            committed + 1
        ),
    )
    .with_source(e)
}

/// Where a journaled script resumes: after its recorded statements, which
/// must be the script's own (same text, same place), or at the one that
/// was running when the run stopped.
fn resume_point(
    script: &Script<'_>,
    statements: &[Statement],
    entries: &[Entry],
) -> Result<usize, CoreError> {
    for (expected, entry) in entries.iter().enumerate() {
        let changed = match statements.get(entry.statement) {
            _ if entry.statement != expected => Some("the journal has a gap".to_owned()),
            None => Some(format!(
                "it now has {} statements, and statement {} had run",
                statements.len(),
                entry.statement + 1
            )),
            Some(s) if journal::checksum(&s.sql) != entry.checksum => Some(format!(
                "statement {} (line {}) is not the one that ran",
                entry.statement + 1,
                s.line
            )),
            Some(_) => None,
        };
        if let Some(changed) = changed {
            return Err(CoreError::backend(
                ErrorKind::MigrationValidation,
                format!(
                    "{}: an earlier run stopped part way through it, after committing {} \
                     statements, and the file has changed since in that part: {changed}",
                    script.file,
                    entries.len()
                ),
            )
            .with_hint(format!(
                "restore the file as it was and run again (it resumes), or undo those \
                 statements by hand and `DELETE FROM {} WHERE version = {}`",
                journal::TABLE,
                script.version
            )));
        }
    }
    Ok(match entries.last() {
        Some(last) if !last.done => last.statement,
        Some(last) => last.statement + 1,
        None => 0,
    })
}

fn failed(script: &Script<'_>, message: String, source: Option<mysql_async::Error>) -> CoreError {
    CoreError::MigrationFailed {
        file: script.file.to_owned(),
        message,
        source: source.map(|e| Box::new(e) as BoxError),
    }
}

fn first_line(sql: &str) -> String {
    sql.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect()
}

/// Session settings a script may change, read before the first script and
/// restored after each (with the current database): `SET
/// FOREIGN_KEY_CHECKS = 0` in one migration must not reach the next.
pub(crate) const SETTINGS: &str = "@@SESSION.sql_mode, @@SESSION.foreign_key_checks, \
     @@SESSION.unique_checks, @@SESSION.time_zone, @@SESSION.character_set_client, \
     @@SESSION.character_set_connection, @@SESSION.character_set_results, \
     @@SESSION.collation_connection, @@SESSION.sql_safe_updates, \
     @@SESSION.auto_increment_increment, @@SESSION.auto_increment_offset, \
     @@SESSION.sql_select_limit, @@SESSION.lock_wait_timeout";

/// `SET SESSION` of [`SETTINGS`] back to `values` (as `SELECT` of them
/// returned them), then `USE database`: one round trip. The values are
/// names and numbers: no quote or backslash to escape.
pub(crate) fn restore(values: Vec<mysql_async::Value>, database: &str) -> String {
    let mut sql = String::from("SET ");
    for (i, (name, value)) in SETTINGS.split(',').zip(values).enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(name.trim());
        sql.push_str(" = ");
        match value {
            mysql_async::Value::Bytes(b) => {
                let text = dbinit_core::Value::Text(String::from_utf8_lossy(&b).into_owned());
                let _ = crate::types::push_literal(&mut sql, &text, false);
            }
            other => sql.push_str(&other.as_sql(false)),
        }
    }
    sql.push_str("; USE ");
    sql.push_str(&crate::dialect::MysqlDialect.quote_ident(database));
    sql
}
