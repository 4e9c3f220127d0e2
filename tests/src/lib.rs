//! Shared helpers for the cross-crate tests (sqlx-test's role): fresh
//! databases and URLs. Every test gets its own database.

pub mod cli;
pub mod demo;
pub mod dump;
pub mod http;
pub mod mariadb;
pub mod pg;
pub mod pgbouncer;
pub mod realistic;
pub mod redis;
pub mod tree;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use dbinit_runner::dbinit_core::DatabaseUrl;

/// The built-in backends, for tests that run on each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A database on the shared test cluster.
    Postgres,
    /// A database on the shared MariaDB server.
    Mysql,
}

impl Backend {
    /// The registered name, which is also the bundled migrations' directory.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        }
    }

    /// A URL for a database nobody has used yet (a file under `dir`, or a
    /// new database name starting with `prefix`).
    pub fn fresh_url(self, dir: &std::path::Path, prefix: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("sqlite://{}/{}.db", dir.display(), unique_database(prefix))
            }
            Backend::Postgres => pg_url(&unique_database(prefix)),
            Backend::Mysql => mysql_url(&unique_database(prefix)),
        }
    }
}

/// Links every plugin a test binary needs: the built-in backends and the
/// demo's seeders (linked here rather than through the runner's `accounts`
/// feature, which feature unification would spread to every binary).
pub fn link() {
    dbinit_runner::link_builtin_plugins();
    dbinit_accounts::link();
    dbinit_redis::link();
}

/// The variable `cargo xtask test` sets to the shared test cluster's
/// superuser URL (database `postgres`).
pub const PG_URL_VAR: &str = "DBINIT_TEST_PG_URL";
/// The variable holding the shared cluster's server log path.
pub const PG_LOG_VAR: &str = "DBINIT_TEST_PG_LOG";
/// The variable holding the shared cluster's Unix socket directory.
pub const PG_SOCKET_VAR: &str = "DBINIT_TEST_PG_SOCKET";

/// The shared test cluster's superuser URL for `database`.
///
/// # Panics
///
/// When `DBINIT_TEST_PG_URL` is unset: PostgreSQL tests never skip. Run them
/// through `cargo xtask test`, which starts a throwaway cluster.
pub fn pg_url(database: &str) -> String {
    let base = std::env::var(PG_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{PG_URL_VAR} is not set: run the suite with `cargo xtask test`, which starts              a throwaway PostgreSQL cluster (PostgreSQL tests never skip)"
        )
    });
    let (server, _) = base.rsplit_once('/').expect("the url has a database");
    format!("{server}/{database}")
}

/// The shared test cluster's TCP port.
///
/// # Panics
///
/// As [`pg_url`].
pub fn pg_port() -> u16 {
    let url = pg_url("postgres");
    url.rsplit_once('@')
        .and_then(|(_, host)| host.split_once('/'))
        .and_then(|(host, _)| host.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in the cluster URL"))
}

/// The variable `cargo xtask test` sets to the shared MariaDB server's
/// superuser URL (database `mysql`).
pub const MYSQL_URL_VAR: &str = "DBINIT_TEST_MYSQL_URL";
/// The variable holding the path of the CA that signed the MariaDB test
/// server's certificate.
pub const MYSQL_CA_VAR: &str = "DBINIT_TEST_MYSQL_CA";

/// The shared MariaDB server's superuser URL for `database`.
///
/// # Panics
///
/// When `DBINIT_TEST_MYSQL_URL` is unset: MySQL tests never skip. Run them
/// through `cargo xtask test`, which starts a throwaway server.
pub fn mysql_url(database: &str) -> String {
    let base = std::env::var(MYSQL_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{MYSQL_URL_VAR} is not set: run the suite with `cargo xtask test`, which starts \
             a throwaway MariaDB server (MySQL tests never skip)"
        )
    });
    let (server, _) = base.rsplit_once('/').expect("the url has a database");
    format!("{server}/{database}")
}

/// A database name no other test uses (the database is not created).
pub fn unique_database(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

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
        link();
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
