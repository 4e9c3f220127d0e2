//! The stable contract of dbinit.
//!
//! `dbinit-core` is what plugin authors depend on: the [`Connector`],
//! [`Session`], [`SchemaStep`], [`Seeder`] and [`HealthCheck`] traits, the
//! [`DatabaseUrl`] parser (passwords redacted everywhere it is shown), the
//! `inventory`-backed [registries](registry), and error types with a stable
//! [`ErrorKind`]. It has no database
//! driver dependency and is kept small and boring on purpose: backends,
//! seeders and health checks live in other crates and register themselves.
//!
//! | crate | provides |
//! |---|---|
//! | `dbinit-core` | this contract |
//! | `dbinit-sqlite` | the SQLite [`Connector`] (rusqlite) |
//! | `dbinit-postgres` | the PostgreSQL [`Connector`] (tokio-postgres, deadpool-postgres) |
//! | `dbinit-datafiles` | CSV/JSON data files as [`Seeder`]s |
//! | `dbinit-accounts` | system tenant, roles and admin user [`Seeder`]s |
//! | `dbinit-runner` | the pipeline, `Initializer` and a mountable clap CLI |
//!
//! # Writing a seeder
//!
//! See `docs/writing-a-seeder.md` (its example is one of this crate's
//! doctests).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connector;
pub mod dialect;
mod discover;
mod embed;
pub mod engine;
mod environment;
mod error;
pub mod fault;
mod health;
mod introspect;
pub mod lease;
pub mod literal;
pub mod load;
mod lock;
pub mod migration;
mod query;
pub mod registry;
mod resolve;
mod schema;
mod script;
mod seed;
mod session;
mod tables;
mod text;
pub mod url;
mod value;
pub mod wait;
pub mod walk;

pub use async_trait::async_trait;
pub use inventory;

pub use connector::{ConnectOptions, Connector, DatabaseCreated};
pub use dialect::{quote_ident, Dialect};
pub use environment::{Environment, Environments};
pub use error::{BoxError, CoreError, ErrorKind};
pub use health::{
    DependencyCheck, HealthCheck, HealthContext, HealthOutcome, HealthStatus, RunFacts,
};
pub use introspect::{Column, Index, Introspect};
pub use load::BulkLoad;
pub use lock::{InitLock, Locking};
pub use migration::{AppliedMigration, MigrationFile, MigrationSet, MigrationSets};
pub use query::{Canceller, Query};
pub use registry::{
    ConnectorRegistration, DependencyRegistration, HealthCheckRegistration, SchemaStepRegistration,
    SeederRegistration,
};
pub use resolve::redact;
pub use schema::{SchemaStep, StepOutcome};
pub use script::{MigrationScripts, Script};
pub use seed::{NoProgress, Progress, SecretSink, SeedContext, SeedOutcome, SeedPolicy, Seeder};
pub use session::Session;
pub use text::{bounded, excerpt, MAX_MESSAGE_CHARS};
pub use url::{redact_service_url, DatabaseUrl};
pub use value::{FromValue, Row, Value};

/// `docs/writing-a-seeder.md`, compiled as a doctest so its example stays
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/writing-a-seeder.md")]
pub struct WritingASeeder;
