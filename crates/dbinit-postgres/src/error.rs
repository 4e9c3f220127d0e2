//! Classifying tokio-postgres and pool errors: kind, hint, and whether
//! waiting might help.

use std::io;

use dbinit_core::{CoreError, ErrorKind};
use tokio_postgres::error::SqlState;

/// Whether an error is worth retrying while waiting for the server.
pub(crate) fn is_transient(err: &tokio_postgres::Error) -> bool {
    if let Some(db) = err.as_db_error() {
        return [
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
        ]
        .contains(db.code());
    }
    match io_source(err) {
        Some(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotFound
                | io::ErrorKind::TimedOut
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::AddrNotAvailable
        ),
        // tokio-postgres reports its own connect timeout without an io source.
        None => err.to_string().contains("timed out"),
    }
}

/// The database named in the connection does not exist.
pub(crate) fn is_missing_database(err: &tokio_postgres::Error) -> bool {
    // PgBouncer relays the server's refusal with its own code (08P01),
    // keeping the message.
    err.code() == Some(&SqlState::INVALID_CATALOG_NAME)
        || err.as_db_error().is_some_and(|db| {
            let m = db.message();
            m.starts_with("database \"") && m.ends_with("\" does not exist")
        })
}

fn io_source(err: &tokio_postgres::Error) -> Option<&io::Error> {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = e.source();
    }
    None
}

/// The server's message with its detail and hint, or the client-side error.
pub(crate) fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            text
        }
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(e) = source {
                text.push_str(&format!(": {e}"));
                source = e.source();
            }
            text
        }
    }
}

/// Classifies `err`; `context` says what we were doing (and names the
/// database, redacted).
pub(crate) fn classify(context: impl std::fmt::Display, err: tokio_postgres::Error) -> CoreError {
    let code = err.code().cloned();
    let (kind, hint): (ErrorKind, Option<String>) = match code {
        Some(c)
            if c == SqlState::INVALID_PASSWORD
                || c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            (
                ErrorKind::Authentication,
                Some("check the user and password in DATABASE_URL (and pg_hba.conf)".into()),
            )
        }
        Some(c) if c == SqlState::INSUFFICIENT_PRIVILEGE => (
            ErrorKind::PermissionDenied,
            Some("the role lacks a privilege this step needs; see the message".into()),
        ),
        Some(c) if c == SqlState::INVALID_CATALOG_NAME => (
            ErrorKind::Unreachable,
            Some("the database does not exist; run `cargo xtask init` to create it".into()),
        ),
        // PgBouncer refuses logins with its own code (08P01) and message.
        Some(c)
            if c == SqlState::PROTOCOL_VIOLATION
                && err.as_db_error().is_some_and(|db| {
                    let m = db.message();
                    m.contains("authentication failed") || m.starts_with("no such user")
                }) =>
        {
            (
                ErrorKind::Authentication,
                Some(
                    "check the user and password in DATABASE_URL (and the pooler's auth_file)"
                        .into(),
                ),
            )
        }
        // PgBouncer's own refusal of a database it has no entry for.
        Some(_)
            if err
                .as_db_error()
                .is_some_and(|db| db.message().starts_with("no such database")) =>
        {
            (
                ErrorKind::Unreachable,
                Some(
                    "the pooler has no entry for this database: create it directly on the \
                     server and add it to the pooler's [databases]"
                        .into(),
                ),
            )
        }
        Some(c) if c == SqlState::QUERY_CANCELED => (
            ErrorKind::Database,
            Some("a statement was cancelled (statement_timeout?)".into()),
        ),
        _ if err.as_db_error().is_none() && is_transient(&err) => (
            ErrorKind::Unreachable,
            Some("is the server running? try `pg_isready -h HOST -p PORT`".into()),
        ),
        _ if err.as_db_error().is_none() && {
            let text = describe(&err).to_lowercase();
            text.contains("tls") || text.contains("certificate") || text.contains("ssl")
        } =>
        {
            (
                ErrorKind::Tls,
                Some("check sslmode and sslrootcert, and that the server has TLS on".into()),
            )
        }
        _ if err.as_db_error().is_none() && describe(&err).contains("password missing") => (
            ErrorKind::Authentication,
            Some(
                "the server wants a password: put it in DATABASE_URL (or .env), PGPASSWORD or \
                 ~/.pgpass (mode 0600), not on the command line where `ps` shows it"
                    .into(),
            ),
        ),
        _ => (ErrorKind::Database, None),
    };
    let error = CoreError::backend(kind, format!("{context}: {}", describe(&err))).with_source(err);
    match hint {
        Some(h) => error.with_hint(h),
        None => error,
    }
}
