//! SQLite backend for dbinit, on rusqlite.
//!
//! Registers the `sqlite` [`Connector`](dbinit_core::Connector) (schemes
//! `sqlite:` and `file:`) and the `sqlite_quick_check` health check.
//!
//! What it does for you:
//! - creates the parent directory (mode 0700) and the file (mode 0600);
//! - refuses, without writing a byte, a path that is a directory or a file
//!   that is not a SQLite database;
//! - WAL journal, `busy_timeout`, `foreign_keys=ON`, `synchronous=NORMAL`;
//! - serializes initialization across processes with an OS lock on
//!   `<database>.lock` (bounded wait, holder's pid in the timeout error);
//! - applies each migration atomically with its refinery history row;
//! - runs rusqlite on tokio's blocking pool, carrying the tracing span.
//!
//! # Linking
//!
//! Call [`link`] once from your binary (the runner's
//! `link_builtin_plugins()` does) so the linker keeps the registrations.
//!
//! # Features
//!
//! | feature | default | meaning |
//! |---|---|---|
//! | `bundled` | yes | compile SQLite in (no system `libsqlite3` needed) |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bulk;
mod busy;
mod conn;
mod connector;
mod dialect;
mod error;
mod files;
mod health;
mod introspect;
mod lock;
mod mark;
mod script;
mod session;
mod url;

pub use connector::SqliteConnector;
pub use dialect::SqliteDialect;
pub use session::SqliteSession;

dbinit_core::register! {
    ConnectorRegistration => SqliteConnector,
    HealthCheckRegistration => health::QuickCheck,
}
