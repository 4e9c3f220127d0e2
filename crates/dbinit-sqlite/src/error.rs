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
    let error =
        CoreError::backend(kind, format!("{context}: {}", describe(&err, None))).with_source(err);
    match hint {
        Some(h) => error.with_hint(h),
        None => error,
    }
}

/// SQLite's message, bounded: rusqlite's `Display` of a syntax error quotes
/// all the SQL that followed it, which for a migration is the rest of the
/// file. Instead: the message, the line and column in `full_sql` (when the
/// failing text is part of it), and that one line, cut short.
pub(crate) fn describe(err: &rusqlite::Error, full_sql: Option<&str>) -> String {
    let rusqlite::Error::SqlInputError {
        msg, sql, offset, ..
    } = err
    else {
        return dbinit_core::bounded(&err.to_string(), 500);
    };
    let (text, base) = match full_sql {
        Some(full) if full.ends_with(sql.as_str()) => (full, full.len() - sql.len()),
        _ => (sql.as_str(), 0),
    };
    let at = (base + usize::try_from(*offset).unwrap_or(0)).min(text.len());
    let at = (0..=at)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..at].matches('\n').count() + 1;
    let column = text[line_start..at].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim_end();
    format!(
        "{msg} at line {line_no}, column {column}: {}",
        dbinit_core::bounded(line, 120)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_the_line_not_the_rest_of_the_file() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let tail = format!("SELECT 'Zq-last-line';{}", "\n-- padding".repeat(50_000));
        let sql =
            format!("CREATE TABLE a (x INT);\nCREATE TABLE b (x INT);\nCREATE TABL c;\n{tail}");
        let err = conn.execute_batch(&sql).unwrap_err();
        let shown = describe(&err, Some(&sql));
        assert!(shown.contains("at line 3, column"), "{shown}");
        assert!(shown.contains("CREATE TABL c;"), "{shown}");
        assert!(
            !shown.contains("Zq-last-line") && shown.len() < 400,
            "{shown}"
        );
    }
}
