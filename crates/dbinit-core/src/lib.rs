//! The stable contract of dbinit.
//!
//! `dbinit-core` is what plugin authors depend on: the [`Connector`],
//! [`Session`], [`SchemaStep`], [`Seeder`] and [`HealthCheck`] traits, the
//! [`DatabaseUrl`] parser (passwords redacted everywhere it is shown), the
//! `inventory`-backed [registries](registry), error types with a stable
//! [`ErrorKind`], and the serde [report](report) types. It has no database
//! driver dependency and is kept small and boring on purpose: backends,
//! seeders and health checks live in other crates and register themselves.
//!
//! | crate | provides |
//! |---|---|
//! | `dbinit-core` | this contract |
//! | `dbinit-sqlite` | the SQLite [`Connector`] (rusqlite) |
//! | `dbinit-postgres` | the PostgreSQL [`Connector`] (tokio-postgres, deadpool-postgres) |
//! | `dbinit-accounts` | system tenant, roles and admin user [`Seeder`]s |
//! | `dbinit-runner` | the pipeline, `Initializer` and a mountable clap CLI |
//!
//! # Writing a seeder
//!
//! ```
//! use dbinit_core::{async_trait, CoreError, SeedContext, SeedOutcome, Seeder, Value};
//!
//! struct DefaultPlan;
//!
//! #[async_trait]
//! impl Seeder for DefaultPlan {
//!     fn name(&self) -> &'static str { "default_plan" }
//!     fn tables(&self) -> &'static [&'static str] { &["plans"] }
//!     async fn is_seeded(&self, cx: &mut SeedContext<'_>) -> Result<bool, CoreError> {
//!         let rows = cx.session.query("SELECT 1 FROM plans WHERE code = $1", &["free".into()]).await?;
//!         Ok(!rows.is_empty())
//!     }
//!     async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
//!         if self.is_seeded(cx).await? {
//!             return Ok(SeedOutcome::skipped(1));
//!         }
//!         cx.session.execute("INSERT INTO plans (code) VALUES ($1)", &[Value::from("free")]).await?;
//!         Ok(SeedOutcome::created(1))
//!     }
//! }
//!
//! dbinit_core::inventory::submit! {
//!     dbinit_core::SeederRegistration::new(|| Box::new(DefaultPlan))
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connector;
mod discover;
mod embed;
pub mod engine;
mod environment;
mod error;
pub mod fault;
mod health;
pub mod migration;
pub mod ratelimit;
pub mod registry;
pub mod report;
mod schema;
mod seed;
mod session;
mod url;
mod value;
pub mod wait;

pub use async_trait::async_trait;
pub use inventory;

pub use connector::{ConnectOptions, Connector, DatabaseCreated};
pub use environment::{Environment, Environments};
pub use error::{BoxError, CoreError, ErrorKind};
pub use health::{HealthCheck, HealthContext, HealthOutcome, HealthStatus, RunFacts};
pub use migration::{AppliedMigration, MigrationFile, MigrationSet};
pub use registry::{
    ConnectorRegistration, HealthCheckRegistration, SchemaStepRegistration, SeederRegistration,
};
pub use schema::{SchemaStep, StepOutcome};
pub use seed::{SecretSink, SeedContext, SeedOutcome, Seeder, StderrSecretSink};
pub use session::{Canceller, Column, Index, InitLock, Script, Session};
pub use url::{
    quote_conninfo, quote_ident, redact, split_conninfo, DatabaseUrl, SqlitePath, UrlForm,
};
pub use value::{Row, Value};
