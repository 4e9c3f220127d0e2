//! [`MigrationScripts`]: how a migration script runs, and how session
//! state is reset after it.

use async_trait::async_trait;

use crate::query::Query;
use crate::CoreError;

/// A migration script handed to [`MigrationScripts::execute_migration`].
#[derive(Debug, Clone, Copy)]
pub struct Script<'a> {
    /// The file, for errors: `V3__users.sql` or `V3__users.down.sql`.
    pub file: &'a str,
    /// The migration's version, and whether this is its down script: the
    /// key under which a backend that journals progress within a script
    /// (MySQL) finds how far an interrupted run got.
    pub version: i64,
    /// Whether this is the down script.
    pub down: bool,
    /// The SQL.
    pub sql: &'a str,
    /// Whether the engine opened a transaction around it; `false` for a
    /// `-- dbinit:no-transaction` script, whose statements run one by one.
    pub in_transaction: bool,
}

/// Running migration scripts. The defaults run a script as one batch and
/// have no session state to reset; a backend overrides them to refuse what
/// would break the engine's promises and to name the failing line.
#[async_trait]
pub trait MigrationScripts: Query {
    /// Runs a migration script, inside the engine's transaction or (when
    /// `script.in_transaction` is false) statement by statement. A backend
    /// overrides it to refuse what would break the engine's promises before
    /// it runs (transaction control, changes to the history table) and to
    /// name the failing line.
    ///
    /// # Errors
    ///
    /// [`CoreError::MigrationFailed`] naming `script.file`.
    async fn execute_migration(&mut self, script: Script<'_>) -> Result<(), CoreError> {
        self.execute_batch(script.sql)
            .await
            .map_err(|e| CoreError::MigrationFailed {
                file: script.file.to_owned(),
                message: e.to_string(),
                source: Some(Box::new(e)),
            })
    }

    /// Undoes session state a migration may have changed (`SET search_path`,
    /// `SET ROLE`, a pragma), without releasing the init lock. Runs right
    /// after every script, inside its transaction when it has one, before
    /// the engine writes the history row. The default has nothing to undo.
    async fn reset_session(&mut self) -> Result<(), CoreError> {
        Ok(())
    }

    /// Called in the transaction that records `script` in the history (its
    /// row written, or removed for a down script), before it commits: a
    /// backend that journals progress within a script forgets it here, so
    /// that the journal and the history change together. The default has
    /// nothing to forget.
    async fn recorded(&mut self, script: Script<'_>) -> Result<(), CoreError> {
        let _ = script;
        Ok(())
    }

    /// The versions whose scripts a crash interrupted part way, for a
    /// backend that journals progress within a script (MySQL, whose DDL
    /// commits implicitly); the engine then knows that the tables it finds
    /// beside an empty history are its own, and resumes. The default: none.
    async fn interrupted(&mut self) -> Result<Vec<i64>, CoreError> {
        Ok(Vec::new())
    }
}
