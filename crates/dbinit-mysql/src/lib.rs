//! MySQL and MariaDB backend for dbinit (`mysql://`, `mariadb://`), on
//! `mysql_async`.
//!
//! Written against the public contract only (`dbinit-core`): its URL forms
//! (`url.rs`), its SQL (`dialect.rs`: `?` parameters, backquotes,
//! `ON DUPLICATE KEY UPDATE`), waiting for the server and creating the
//! database (`connector.rs`), the init lock (`lock.rs`: `GET_LOCK`, named
//! after the database because lock names are server-wide, or the lease of
//! `lease.rs`), introspection (`session.rs`), and the `mysql` client's
//! statement splitting (`split.rs`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connector;
mod dialect;
mod error;
mod infile;
mod journal;
mod lease;
mod load;
mod lock;
mod script;
mod session;
mod split;
mod target;
mod types;
mod url;

pub use connector::MysqlConnector;
pub use dialect::MysqlDialect;
pub use session::MysqlSession;

dbinit_core::register! {
    ConnectorRegistration => connector::MysqlConnector,
}
