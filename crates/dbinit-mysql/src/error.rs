//! Classifying mysql_async errors: kind, hint, and whether waiting might
//! help.

use std::io;

use dbinit_core::{CoreError, ErrorKind};
use mysql_async::{Error, IoError};

/// Server error codes dbinit acts on (MySQL's and MariaDB's share them).
pub(crate) mod code {
    /// `ER_DBACCESS_DENIED_ERROR`: no access to that database.
    pub(crate) const DB_ACCESS_DENIED: u16 = 1044;
    /// `ER_ACCESS_DENIED_ERROR`: wrong user or password.
    pub(crate) const ACCESS_DENIED: u16 = 1045;
    /// `ER_BAD_DB_ERROR`: unknown database.
    pub(crate) const BAD_DB: u16 = 1049;
    /// `ER_SERVER_SHUTDOWN`.
    pub(crate) const SHUTDOWN: u16 = 1053;
    /// `ER_CON_COUNT_ERROR`: too many connections.
    pub(crate) const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// `ER_QUERY_INTERRUPTED`: `KILL QUERY`.
    pub(crate) const QUERY_INTERRUPTED: u16 = 1317;
    /// `ER_SPECIFIC_ACCESS_DENIED_ERROR`, `ER_TABLEACCESS_DENIED_ERROR`,
    /// `ER_COLUMNACCESS_DENIED_ERROR`.
    pub(crate) const PRIVILEGE: [u16; 3] = [1227, 1142, 1143];
    /// `ER_ACCESS_DENIED_NO_PASSWORD_ERROR`.
    pub(crate) const NO_PASSWORD: u16 = 1698;
    /// `ER_NO_SUCH_TABLE`.
    pub(crate) const NO_SUCH_TABLE: u16 = 1146;
    /// "It exists already": a table, column, key name, primary key,
    /// routine, trigger, foreign key name.
    pub(crate) const EXISTS: [u16; 7] = [1050, 1060, 1061, 1068, 1304, 1359, 1826];
}

/// The server's error code, if the server sent one.
pub(crate) fn server_code(err: &Error) -> Option<u16> {
    match err {
        Error::Server(e) => Some(e.code),
        _ => None,
    }
}

/// Whether the TLS handshake failed: rustls reports a refused certificate
/// inside an I/O error.
fn is_tls(err: &Error) -> bool {
    match err {
        Error::Io(IoError::Tls(_)) => true,
        Error::Io(IoError::Io(e)) => e
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

/// Whether waiting for the server might help.
pub(crate) fn is_transient(err: &Error) -> bool {
    match err {
        Error::Server(e) => [code::SHUTDOWN, code::TOO_MANY_CONNECTIONS].contains(&e.code),
        Error::Io(IoError::Io(e)) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotFound
                | io::ErrorKind::TimedOut
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::BrokenPipe
        ),
        Error::Driver(mysql_async::DriverError::ConnectionClosed) => true,
        _ => false,
    }
}

/// Classifies `err`; `context` says what we were doing (and names the
/// database, redacted).
pub(crate) fn classify(context: impl std::fmt::Display, err: Error) -> CoreError {
    let (kind, hint): (ErrorKind, Option<&str>) = match &err {
        Error::Server(e) if [code::ACCESS_DENIED, code::NO_PASSWORD].contains(&e.code) => (
            ErrorKind::Authentication,
            Some("check the user and password in DATABASE_URL"),
        ),
        Error::Server(e)
            if e.code == code::DB_ACCESS_DENIED || code::PRIVILEGE.contains(&e.code) =>
        {
            (
                ErrorKind::PermissionDenied,
                Some("the user lacks a privilege this step needs; see the message"),
            )
        }
        Error::Server(e) if e.code == code::BAD_DB => (
            ErrorKind::Unreachable,
            Some("the database does not exist; run `init` to create it"),
        ),
        Error::Server(e) if e.code == code::QUERY_INTERRUPTED => (ErrorKind::Interrupted, None),
        e if is_tls(e) => (
            ErrorKind::Tls,
            Some("check ssl-mode and ssl-ca, and that the server has TLS on"),
        ),
        e if is_transient(e) => (
            ErrorKind::Unreachable,
            Some("is the server running? try `mariadb-admin ping -h HOST -P PORT`"),
        ),
        _ => (ErrorKind::Database, None),
    };
    let error = CoreError::backend(kind, format!("{context}: {}", describe(&err))).with_source(err);
    match hint {
        Some(h) => error.with_hint(h),
        None => error,
    }
}

/// The server's message with its code, or the client-side error.
pub(crate) fn describe(err: &Error) -> String {
    match err {
        Error::Server(e) => format!("ERROR {} ({}): {}", e.code, e.state, e.message),
        other => other.to_string(),
    }
}
