//! Classifying rusqlite and I/O errors into core errors, with hints.

use std::io;
use std::path::Path;

use dbinit_core::{CoreError, ErrorKind};
use rusqlite::ErrorCode;

/// Classifies a rusqlite error; `context` says what we were doing.
pub(crate) fn sqlite(context: impl std::fmt::Display, err: rusqlite::Error) -> CoreError {
    let code = err.sqlite_error_code();
    let (kind, hint) = match code {
        Some(ErrorCode::NotADatabase) => (
            ErrorKind::NotADatabase,
            Some("the file is not a SQLite database; point the url at another path"),
        ),
        Some(ErrorCode::CannotOpen) => (
            ErrorKind::Unreachable,
            Some("check that the directory exists and is writable"),
        ),
        Some(ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => (
            ErrorKind::PermissionDenied,
            Some("the database or its directory is read-only for this user"),
        ),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => (
            ErrorKind::Database,
            Some("another connection holds a write lock longer than the busy timeout"),
        ),
        Some(ErrorCode::DiskFull) => (ErrorKind::Io, Some("the disk is full")),
        Some(ErrorCode::SystemIoFailure) => (
            ErrorKind::Io,
            Some("the disk is full or failing, or a file size limit was hit; free space and rerun"),
        ),
        Some(ErrorCode::DatabaseCorrupt) => (
            ErrorKind::NotADatabase,
            Some("the database file is corrupt; restore it from a backup"),
        ),
        _ => (ErrorKind::Database, None),
    };
    let error = CoreError::backend(kind, format!("{context}: {err}")).with_source(err);
    match hint {
        Some(h) => error.with_hint(h),
        None => error,
    }
}

/// Classifies an I/O error on `path`.
pub(crate) fn io(what: &str, path: &Path, err: io::Error) -> CoreError {
    let (kind, hint) = match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => (
            ErrorKind::PermissionDenied,
            Some("the directory is not writable by this user"),
        ),
        io::ErrorKind::NotFound => (ErrorKind::Unreachable, None),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            (ErrorKind::Io, Some("the disk is full"))
        }
        _ => (ErrorKind::Io, None),
    };
    let error = CoreError::backend(kind, format!("cannot {what} {}: {err}", path.display()))
        .with_source(err);
    match hint {
        Some(h) => error.with_hint(h),
        None => error,
    }
}
