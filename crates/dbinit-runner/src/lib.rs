//! The dbinit pipeline, composed from the registered plugins.
//!
//! - [`Initializer`]: one call at startup makes the database ready, and
//!   returns a typed [`InitReport`](report::InitReport) — or a
//!   [`RunnerError`] carrying the partial report and an error kind.
//! - [`cli`] (feature `cli`): `init`, `status` and `health` as clap
//!   subcommands that any binary can mount in a few lines.
//! - [`Monitor`]: the health of a running service — the database's checks
//!   and its dependencies' ([`dependency::Endpoint`], plugin crates such as
//!   `dbinit-redis`) every interval, published on a watch channel, served
//!   by [`http::router`] (feature `http`).
//! - Built-in health checks: `connectivity`, `migrations_current`,
//!   `required_tables`, `seed_data`.
//!
//! # Features
//!
//! | feature | default | meaning |
//! |---|---|---|
//! | `sqlite` | yes | link the SQLite backend |
//! | `postgres` | no | link the PostgreSQL backend |
//! | `accounts` | no | the demo content: the tenant, roles and admin seeders and their schema (`dbinit_accounts::migration_sets()`) |
//! | `cli` | yes | the clap CLI, logging setup and `.env` loading |
//! | `http` | no | `/livez` `/readyz` `/health` `/metrics` as an axum `Router`, HTTP dependency checks, `health --serve` |
//!
//! # Linking
//!
//! Call [`link_builtin_plugins`] once from `main`: `inventory` registrations
//! in a crate that nothing references can be dropped by the linker.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checks;
#[cfg(feature = "cli")]
pub mod cli;
mod context;
pub mod dependency;
mod error;
mod health;
#[cfg(feature = "http")]
pub mod http;
mod initializer;
mod interrupt;
mod lifecycle;
mod monitor;
mod pipeline;
mod ratelimit;
pub mod report;
mod secrets;
pub mod seed_history;
mod seed_order;
mod seeding;
mod settings;
#[cfg(feature = "sqlite")]
pub mod testing;

#[cfg(feature = "accounts")]
pub use dbinit_accounts;
/// `docs/using-dbinit.md`, compiled as doctests so its examples stay true.
#[cfg(all(doctest, feature = "cli", feature = "sqlite"))]
#[doc = include_str!("../../../docs/using-dbinit.md")]
pub struct UsingDbinit;

pub use dbinit_core;
pub use error::RunnerError;
pub use initializer::Initializer;
pub use interrupt::Interrupt;
pub use lifecycle::SeedOptions;
pub use monitor::{CheckKind, CheckState, HealthSnapshot, InitFacts, Monitor, MonitorStats};
pub use secrets::StderrSecretSink;
pub use tokio_util::sync::CancellationToken;

// The runner's own health checks; `link_builtin_plugins` calls `link_checks`.
dbinit_core::register! {
    fn link_checks;
    HealthCheckRegistration => checks::Connectivity,
    HealthCheckRegistration => checks::MigrationsCurrent,
    HealthCheckRegistration => checks::RequiredTables,
    HealthCheckRegistration => checks::SeedData,
}

/// Keeps every built-in plugin (the backends and plugins the features
/// enable, and the runner's own health checks) in the final binary. Call
/// once from `main` and from test binaries.
#[inline(never)]
pub fn link_builtin_plugins() {
    link_checks();
    #[cfg(feature = "sqlite")]
    dbinit_sqlite::link();
    #[cfg(feature = "postgres")]
    dbinit_postgres::link();
    #[cfg(feature = "mysql")]
    dbinit_mysql::link();
    #[cfg(feature = "accounts")]
    dbinit_accounts::link();
}
