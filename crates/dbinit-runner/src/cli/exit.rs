//! Exit codes, one per error kind. Documented in `docs/exit-codes.md`; keep
//! the two in step (a test compares them).

use dbinit_core::ErrorKind;

/// Success.
pub const OK: u8 = 0;
/// A bug or an unexpected failure.
pub const INTERNAL: u8 = 1;
/// Bad command-line usage (clap's own code).
pub const USAGE: u8 = 2;
/// `status --exit-code`: migrations are pending.
pub const PENDING: u8 = 42;

/// The exit code for an error kind.
pub fn code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidUrl => 10,
        ErrorKind::UnknownBackend => 11,
        ErrorKind::Registry => 12,
        ErrorKind::Config => 13,
        ErrorKind::Unreachable => 20,
        ErrorKind::Authentication => 21,
        ErrorKind::Tls => 24,
        ErrorKind::PermissionDenied => 22,
        ErrorKind::NotADatabase => 23,
        ErrorKind::LockTimeout => 30,
        ErrorKind::MigrationValidation => 40,
        ErrorKind::MigrationFailed => 41,
        ErrorKind::SeedFailed => 50,
        ErrorKind::Unhealthy => 60,
        ErrorKind::Database => 70,
        ErrorKind::Io => 71,
        // 128 + SIGINT; the CLI exits 128 + SIGTERM (143) for SIGTERM.
        ErrorKind::Interrupted => 130,
        _ => INTERNAL,
    }
}

/// Every kind with its code, for documentation and tests.
pub const ALL: &[ErrorKind] = &[
    ErrorKind::InvalidUrl,
    ErrorKind::UnknownBackend,
    ErrorKind::Registry,
    ErrorKind::Config,
    ErrorKind::Unreachable,
    ErrorKind::Authentication,
    ErrorKind::Tls,
    ErrorKind::PermissionDenied,
    ErrorKind::NotADatabase,
    ErrorKind::LockTimeout,
    ErrorKind::MigrationValidation,
    ErrorKind::MigrationFailed,
    ErrorKind::SeedFailed,
    ErrorKind::Unhealthy,
    ErrorKind::Database,
    ErrorKind::Io,
    ErrorKind::Interrupted,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_documented() {
        let doc = include_str!("../../../../docs/exit-codes.md");
        let mut seen = std::collections::HashSet::new();
        for kind in ALL {
            let code = code(*kind);
            assert!(seen.insert(code), "{kind:?} reuses exit code {code}");
            assert!(
                ![OK, INTERNAL, USAGE, PENDING].contains(&code),
                "{kind:?} uses a reserved code"
            );
            let row = format!("| {code} | `{}` |", kind.as_str());
            assert!(doc.contains(&row), "docs/exit-codes.md lacks `{row}`");
        }
    }
}
