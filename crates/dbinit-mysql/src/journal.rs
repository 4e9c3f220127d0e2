//! The statement journal, `dbinit_statement_journal`: how far a script
//! got, statement by statement, so that a rerun after a crash resumes
//! there. MySQL commits DDL implicitly, so a script of several statements
//! cannot be atomic; the journal is what makes it recoverable.
//!
//! A row per statement run: the script's version and direction, the
//! statement's index and checksum, and its state. A statement that commits
//! is recorded `started` (committed before it runs, with a checksum of the
//! definitions of what it changes: `target.rs`) and `done` after it; a
//! statement that does not is recorded `done` in the transaction that runs
//! it. The rows go in the transaction that writes the script's history
//! row.

use std::collections::HashMap;

use dbinit_core::CoreError;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{self, code, server_code};

/// The journal table's name.
pub(crate) const TABLE: &str = "dbinit_statement_journal";

const COLUMNS: &str = "(\
     `version` BIGINT NOT NULL, `direction` VARCHAR(4) NOT NULL, \
     `statement` INT NOT NULL, `checksum` VARCHAR(32) NOT NULL, \
     `state` VARCHAR(8) NOT NULL, `before` VARCHAR(32) NULL, \
     PRIMARY KEY (`version`, `direction`, `statement`)) ENGINE=InnoDB";

/// A script's rows: the database (a script may `USE` another), its version
/// and direction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) database: &'a str,
    pub(crate) version: i64,
    pub(crate) down: bool,
}

/// The table, qualified with `database`.
fn table(database: &str) -> String {
    format!("`{}`.`{TABLE}`", database.replace('`', "``"))
}

impl Key<'_> {
    fn table(self) -> String {
        table(self.database)
    }

    fn direction(self) -> &'static str {
        if self.down {
            "down"
        } else {
            "up"
        }
    }
}

/// One recorded statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its 0-based index in the script.
    pub(crate) statement: usize,
    pub(crate) checksum: String,
    /// `false`: it was running when the run stopped, and may or may not
    /// have committed.
    pub(crate) done: bool,
    /// The definitions of what it changes, before it ran (`target.rs`).
    pub(crate) before: Option<String>,
}

/// A statement's checksum, as recorded.
pub(crate) fn checksum(sql: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(sql.as_bytes()))
}

/// The journal as a session reads it before its first script.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// Whether the table exists: creating it commits, so it is made once.
    pub(crate) table: bool,
    /// Every script's rows, by version and direction (`down`), in
    /// statement order.
    pub(crate) scripts: HashMap<(i64, bool), Vec<Entry>>,
}

/// The journal's rows; none when the table does not exist yet.
pub(crate) async fn load(conn: &mut Conn, database: &str) -> Result<Rows, CoreError> {
    type Columns = (i64, String, i64, String, String, Option<String>);
    let rows: Result<Vec<Columns>, _> = conn
        .query(format!(
            "SELECT `version`, `direction`, `statement`, `checksum`, `state`, `before` FROM {} \
             ORDER BY `version`, `direction`, `statement`",
            table(database)
        ))
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) if server_code(&e) == Some(code::NO_SUCH_TABLE) => return Ok(Rows::default()),
        Err(e) => return Err(error::classify("cannot read the statement journal", e)),
    };
    let mut scripts: HashMap<(i64, bool), Vec<Entry>> = HashMap::new();
    for (version, direction, statement, checksum, state, before) in rows {
        scripts
            .entry((version, direction == "down"))
            .or_default()
            .push(Entry {
                statement: usize::try_from(statement).unwrap_or(usize::MAX),
                checksum,
                done: state == "done",
                before,
            });
    }
    Ok(Rows {
        table: true,
        scripts,
    })
}

/// The versions with rows: scripts a crash interrupted.
pub(crate) async fn interrupted(conn: &mut Conn, database: &str) -> Result<Vec<i64>, CoreError> {
    let sql = format!(
        "SELECT DISTINCT `version` FROM {} ORDER BY 1",
        table(database)
    );
    match conn.query(sql).await {
        Ok(versions) => Ok(versions),
        Err(e) if server_code(&e) == Some(code::NO_SUCH_TABLE) => Ok(Vec::new()),
        Err(e) => Err(error::classify("cannot read the statement journal", e)),
    }
}

/// Creates the table (a statement that commits).
pub(crate) async fn create(conn: &mut Conn, key: Key<'_>) -> Result<(), CoreError> {
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {} {COLUMNS}",
        key.table()
    ))
    .await
    .map_err(|e| error::classify("cannot create the statement journal", e))
}

/// Records statement `index` (`sql`) done, in the caller's transaction.
pub(crate) async fn record(
    conn: &mut Conn,
    key: Key<'_>,
    index: usize,
    sql: &str,
) -> Result<(), CoreError> {
    conn.exec_drop(
        format!(
            "INSERT INTO {} (`version`, `direction`, `statement`, `checksum`, `state`) \
             VALUES (?, ?, ?, ?, 'done')",
            key.table()
        ),
        (key.version, key.direction(), index, checksum(sql)),
    )
    .await
    .map_err(|e| error::classify("cannot write the statement journal", e))
}

/// Records statement `index` (`sql`) started, with the fingerprint of its
/// targets (`before`), and commits it with whatever the transaction held
/// (`commit`: one is open). One round trip: every value is a number or a
/// hex digest, written as a literal.
pub(crate) async fn start(
    conn: &mut Conn,
    key: Key<'_>,
    index: usize,
    sql: &str,
    before: Option<&str>,
    commit: bool,
) -> Result<(), CoreError> {
    let before = before.filter(|b| b.bytes().all(|c| c.is_ascii_hexdigit()));
    let mut statement = format!(
        "INSERT INTO {} (`version`, `direction`, `statement`, `checksum`, `state`, `before`) \
         VALUES ({}, '{}', {index}, '{}', 'started', {})",
        key.table(),
        key.version,
        key.direction(),
        checksum(sql),
        before.map_or_else(|| "NULL".to_owned(), |b| format!("'{b}'"))
    );
    if commit {
        statement.push_str("; COMMIT");
    }
    conn.query_drop(statement)
        .await
        .map_err(|e| error::classify("cannot write the statement journal", e))
}

/// Marks started statement `index` done.
pub(crate) async fn finish(conn: &mut Conn, key: Key<'_>, index: usize) -> Result<(), CoreError> {
    conn.exec_drop(
        format!(
            "UPDATE {} SET `state` = 'done' \
             WHERE `version` = ? AND `direction` = ? AND `statement` = ?",
            key.table()
        ),
        (key.version, key.direction(), index),
    )
    .await
    .map_err(|e| error::classify("cannot write the statement journal", e))
}

/// Removes the script's rows from `from` on: all of them once it is
/// recorded in the history, or a started statement that failed. A missing
/// table has none.
pub(crate) async fn forget(conn: &mut Conn, key: Key<'_>, from: usize) -> Result<(), CoreError> {
    conn.exec_drop(
        format!(
            "DELETE FROM {} WHERE `version` = ? AND `direction` = ? AND `statement` >= ?",
            key.table()
        ),
        (key.version, key.direction(), from),
    )
    .await
    .or_else(|e| match server_code(&e) {
        Some(code::NO_SUCH_TABLE) => Ok(()),
        _ => Err(error::classify("cannot write the statement journal", e)),
    })
}
