//! The workspace's own schema (`migrations/<backend>/`), embedded at build time.

use dbinit_core::{CoreError, MigrationSet};

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

/// The bundled migration set for the backend registered as `backend`, if
/// this build embeds one.
///
/// # Errors
///
/// [`CoreError::InvalidMigrationSet`] if two files share a version.
pub fn migrations(backend: &str) -> Option<Result<MigrationSet, CoreError>> {
    match backend {
        #[cfg(feature = "sqlite")]
        "sqlite" => Some(MigrationSet::embedded("embedded:migrations/sqlite", SQLITE)),
        #[cfg(feature = "postgres")]
        "postgres" => Some(MigrationSet::embedded(
            "embedded:migrations/postgres",
            POSTGRES,
        )),
        _ => None,
    }
}
