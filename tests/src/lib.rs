//! Shared helpers for the cross-crate tests (sqlx-test's role): fresh
//! databases and URLs. Every test gets its own database.

use std::path::PathBuf;

use dbinit_runner::dbinit_core::DatabaseUrl;

/// A fresh SQLite file path in its own temporary directory (removed on drop).
pub struct SqliteFile {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The database path (not created yet).
    pub path: PathBuf,
}

impl SqliteFile {
    /// A new, not yet existing, database file `app.db` in a new directory.
    pub fn new() -> Self {
        dbinit_runner::link_builtin_backends();
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("app.db");
        SqliteFile { dir, path }
    }

    /// `sqlite://<path>`.
    pub fn url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&format!("sqlite://{}", self.path.display())).expect("valid url")
    }
}

impl Default for SqliteFile {
    fn default() -> Self {
        Self::new()
    }
}
