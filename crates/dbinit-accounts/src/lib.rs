//! System tenant, system roles and admin user seeders for dbinit.
//!
//! This crate uses only the public [`Seeder`](dbinit_core::Seeder) API, exactly
//! as a downstream crate would: it is the proof that the extension point works.
//!
//! | seeder | depends on | writes |
//! |---|---|---|
//! | `system_tenant` | | the `system` tenant |
//! | `system_roles` | `system_tenant` | roles `admin` and `member` |
//! | `admin_user` | `system_roles` | the admin user, with the `admin` role |
//!
//! The admin password is never a default. It comes from
//! `DBINIT_ADMIN_PASSWORD`, or from the file named by
//! `DBINIT_ADMIN_PASSWORD_FILE`; otherwise a strong one is generated and shown
//! once through the [`SecretSink`](dbinit_core::SecretSink) (the terminal,
//! never the log). Only its argon2id hash is stored. The user name and e-mail
//! come from `DBINIT_ADMIN_USERNAME` (default `admin`) and `DBINIT_ADMIN_EMAIL`
//! (default `admin@localhost`).
//!
//! The schema they write to (tenants, roles, users, user_roles and the
//! demo's performance_alerts) ships with them: [`migration_sets`], one set
//! per backend, embedded at build time. Linking this crate is how an
//! application opts into the demo content; `dbinit-runner` with default
//! features has none of it.
//!
//! Call [`link`] once from your binary so the linker keeps the registrations.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod password;
mod roles;
mod tenant;

pub use admin::AdminUser;
pub use roles::{SystemRoles, SYSTEM_ROLES};
pub use tenant::{SystemTenant, SYSTEM_TENANT_SLUG};

use dbinit_core::migration::EmbeddedMigration;
use dbinit_core::{CoreError, MigrationSets, SeedContext};
use dbinit_datafiles::SeedFiles;

/// `sql` with its `$1`, `$2`, ... written in the session's dialect (`?` on
/// MySQL, which binds by position: parameters appear in order).
pub(crate) fn sql(cx: &SeedContext<'_>, sql: &str) -> String {
    let dialect = cx.session.dialect();
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        match rest[at + 1..at + 1 + digits].parse() {
            Ok(n) => out.push_str(&dialect.placeholder(n)),
            Err(_) => out.push('$'),
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

static MIGRATIONS: &[(&str, &[EmbeddedMigration])] =
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Every table the demo schema creates (for `Initializer::require_tables`).
pub const DEMO_TABLES: &[&str] = &[
    "performance_alerts",
    "roles",
    "tenants",
    "user_roles",
    "users",
];

/// The demo schema, one migration set per backend (`sqlite`, `postgres`).
///
/// # Errors
///
/// Never in practice: the files were checked when the crate was built.
pub fn migration_sets() -> Result<MigrationSets, CoreError> {
    MigrationSets::embedded("dbinit-accounts/migrations", MIGRATIONS)
}

static SEEDS: &[dbinit_datafiles::EmbeddedFile] = include!(concat!(env!("OUT_DIR"), "/seeds.rs"));

/// The demo data files (`seeds/`: demo tenants in development), for
/// `Initializer::seed_files`.
///
/// # Errors
///
/// Never in practice: the files were checked when the crate was built.
pub fn seed_files() -> Result<SeedFiles, CoreError> {
    SeedFiles::embedded("dbinit-accounts/seeds", SEEDS)
}

dbinit_core::register! {
    SeederRegistration => SystemTenant,
    SeederRegistration => SystemRoles,
    SeederRegistration => AdminUser,
}
