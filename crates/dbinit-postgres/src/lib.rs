//! PostgreSQL backend for dbinit, on tokio-postgres with a deadpool-postgres
//! pool and rustls.
//!
//! Registers the `postgres` [`Connector`](dbinit_core::Connector) for
//! `postgres://` / `postgresql://` URLs and libpq `key=value` strings
//! (parsed by tokio-postgres; `sslmode` and `sslrootcert` are handled here
//! because tokio-postgres does not know `verify-ca` / `verify-full`).
//!
//! What it does for you:
//! - waits for the server with exponential backoff and jitter up to
//!   `connect_timeout` ("connection refused", "the database system is
//!   starting up", too many connections), logging one line when the wait
//!   starts and one when it ends; never retries authentication or permission
//!   errors;
//! - creates a missing database through the maintenance database, the name
//!   quoted as an identifier, and says so; without `CREATEDB`, the error
//!   carries the SQL an administrator would run;
//! - serializes initialization with a session-level advisory lock keyed per
//!   database and schema, polled up to the lock timeout, naming the holder's
//!   pid and `application_name` on timeout, released on every path (rolling
//!   back an aborted transaction first); a connection that might still hold
//!   it is closed, never returned to the pool;
//! - applies each migration in one transaction with its refinery history row;
//! - introspects through `pg_catalog`; bulk-inserts with binary `COPY`.
//!
//! Call [`link`] once from your binary (the runner's
//! `link_builtin_plugins()` does) so the linker keeps the registration.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod advisory;
mod bulk;
mod cancel;
mod config;
mod connector;
mod conninfo;
mod dialect;
mod error;
mod introspect;
mod lease;
mod lock;
mod passfile;
mod script;
mod session;
mod tls;
mod types;
mod wait;

pub use advisory::INIT_LOCK_KEY_SQL;
pub use connector::PostgresConnector;
pub use dialect::PostgresDialect;
pub use lease::TABLE as LEASE_TABLE;
pub use session::PostgresSession;

dbinit_core::register! {
    ConnectorRegistration => PostgresConnector,
}
