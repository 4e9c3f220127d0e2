//! The workspace's own schema (`migrations/<dialect>/`), embedded at build time.

use dbinit_core::{CoreError, Dialect, MigrationSet};

/// Tables the bundled schema creates; the `required_tables` check expects them.
pub const BUNDLED_TABLES: &[&str] = &[
    "performance_alerts",
    "roles",
    "tenants",
    "user_roles",
    "users",
];

#[cfg(feature = "sqlite")]
static SQLITE: &[dbinit_core::migration::EmbeddedMigration] =
    include!(concat!(env!("OUT_DIR"), "/sqlite_migrations.rs"));

#[cfg(feature = "postgres")]
static POSTGRES: &[dbinit_core::migration::EmbeddedMigration] =
    include!(concat!(env!("OUT_DIR"), "/postgres_migrations.rs"));

/// The bundled migration set for `dialect`, if this build embeds one.
///
/// # Errors
///
/// [`CoreError::InvalidMigrationSet`] if two files share a version.
pub fn migrations(dialect: Dialect) -> Option<Result<MigrationSet, CoreError>> {
    match dialect {
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => Some(MigrationSet::embedded("embedded:migrations/sqlite", SQLITE)),
        #[cfg(feature = "postgres")]
        Dialect::Postgres => Some(MigrationSet::embedded(
            "embedded:migrations/postgres",
            POSTGRES,
        )),
        _ => None,
    }
}
