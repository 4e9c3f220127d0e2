//! The core error type and its stable [`ErrorKind`].

use std::time::Duration;

use serde::Serialize;

/// A boxed error from a driver or the operating system, kept reachable via
/// [`std::error::Error::source`] so callers can downcast to the native type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, independent of the backend. Stable: the CLI maps each kind
/// to a documented exit code (see `docs/exit-codes.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The database URL is empty, malformed or unsupported.
    InvalidUrl,
    /// No linked backend claims the URL's scheme.
    UnknownBackend,
    /// The binary links no backend at all, or a registry is inconsistent.
    Registry,
    /// The server or file cannot be reached (refused, missing directory, ...).
    Unreachable,
    /// The server rejected the credentials.
    Authentication,
    /// TLS could not be negotiated, or the server's certificate did not verify.
    Tls,
    /// The operating system or the database refused an operation.
    PermissionDenied,
    /// The target exists but is not a database of this backend.
    NotADatabase,
    /// Another process held the initialization lock past the timeout.
    LockTimeout,
    /// Applied migrations diverge from (or are missing in) the migration set.
    MigrationValidation,
    /// A migration failed to apply.
    MigrationFailed,
    /// A seeder failed, or seeders are misconfigured.
    SeedFailed,
    /// A health check reported the database unhealthy.
    Unhealthy,
    /// Any other database error.
    Database,
    /// An I/O error outside the database.
    Io,
    /// The run was interrupted (SIGINT, SIGTERM, or the application's own
    /// cancellation); what was running was rolled back.
    Interrupted,
    /// A setting other than the URL (an environment variable) is invalid.
    Config,
}

impl ErrorKind {
    /// The kind's stable `snake_case` name, as used in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::UnknownBackend => "unknown_backend",
            ErrorKind::Registry => "registry",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Tls => "tls",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotADatabase => "not_a_database",
            ErrorKind::LockTimeout => "lock_timeout",
            ErrorKind::MigrationValidation => "migration_validation",
            ErrorKind::MigrationFailed => "migration_failed",
            ErrorKind::SeedFailed => "seed_failed",
            ErrorKind::Unhealthy => "unhealthy",
            ErrorKind::Database => "database",
            ErrorKind::Io => "io",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Config => "config",
        }
    }
}

/// Errors raised by the core contract and by backends speaking through it.
///
/// Messages never contain a password: URLs are always shown redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The database URL could not be parsed.
    #[error("invalid database url `{url}`: {reason}")]
    InvalidUrl {
        /// The input, redacted.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// No registered connector claims this scheme.
    #[error(
        "no backend handles `{scheme}` urls; registered backends: {}",
        list_or_none(registered)
    )]
    UnknownBackend {
        /// The scheme of the URL.
        scheme: String,
        /// The names of the registered connectors.
        registered: Vec<String>,
    },
    /// The connector registry is empty: nothing linked a backend crate.
    #[error("no database backends are linked into this binary")]
    NoBackends,
    /// Two registrations share a name.
    #[error("two {registry} registrations are named `{name}`")]
    DuplicateRegistration {
        /// Which registry (connector, seeder, ...).
        registry: &'static str,
        /// The duplicated name.
        name: String,
    },
    /// A seeder depends on a seeder that is not registered or not enabled.
    #[error(
        "seeder `{seeder}` depends on `{dependency}`, which is not registered for this environment"
    )]
    MissingSeederDependency {
        /// The dependent seeder.
        seeder: String,
        /// The missing dependency.
        dependency: String,
    },
    /// Seeders depend on each other in a cycle.
    #[error("seeders depend on each other in a cycle; involved or blocked: {}", seeders.join(", "))]
    SeederCycle {
        /// Seeders on the cycle or waiting behind it.
        seeders: Vec<String>,
    },
    /// Another process held the initialization lock for longer than allowed.
    #[error("timed out after {:.1}s waiting for the initialization lock {lock}{}", waited.as_secs_f64(), holder_suffix(holder))]
    LockTimeout {
        /// What was locked (a file path or an advisory lock key).
        lock: String,
        /// How long we waited.
        waited: Duration,
        /// Who holds it, when the backend can tell.
        holder: Option<String>,
    },
    /// An applied migration's name or checksum differs from the migration set.
    #[error("applied migration V{version}__{applied_name} differs from {file}: {what}; refusing to change anything")]
    DivergentMigration {
        /// Version of the migration.
        version: i64,
        /// The name recorded in the history table.
        applied_name: String,
        /// The migration file now in the set.
        file: String,
        /// What differs (name, checksum).
        what: String,
    },
    /// An applied migration is absent from the migration set.
    #[error("applied migration V{version}__{name} is missing from the migration set; refusing to change anything")]
    MissingMigration {
        /// Version of the migration.
        version: i64,
        /// The name recorded in the history table.
        name: String,
    },
    /// A migration file sorts below the newest applied version but was never applied.
    #[error("migration {file} was never applied, but version {current} already is; renumber it above {current}")]
    OutOfOrderMigration {
        /// The migration file.
        file: String,
        /// The newest applied version.
        current: i64,
    },
    /// The migration set itself is invalid (bad file name, duplicate version, ...).
    #[error("invalid migration set: {reason}")]
    InvalidMigrationSet {
        /// What is wrong.
        reason: String,
    },
    /// A migration failed, or was refused before it ran; it left no trace
    /// (its transaction was rolled back).
    #[error("migration {file} failed, and nothing of it was kept: {message}")]
    MigrationFailed {
        /// The migration file, `V{version}__{name}`.
        file: String,
        /// The database's message.
        message: String,
        /// The native error.
        #[source]
        source: Option<BoxError>,
    },
    /// The database has tables but no migration history: it is not ours.
    #[error("the database already has {} tables ({}) but no migration history; refusing to migrate it", tables.len(), tables.iter().take(5).cloned().collect::<Vec<_>>().join(", "))]
    ForeignDatabase {
        /// Its tables.
        tables: Vec<String>,
    },
    /// The history table holds a row dbinit cannot read.
    #[error("the migration history table has an unreadable row: {reason}")]
    CorruptHistory {
        /// What is wrong with the row.
        reason: String,
    },
    /// A seeder failed; its transaction was rolled back.
    #[error("seeder `{seeder}` failed: {message}")]
    SeedFailed {
        /// The seeder's name.
        seeder: String,
        /// What went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Health checks found the database unhealthy.
    #[error("unhealthy: {}", checks.join("; "))]
    Unhealthy {
        /// `name: detail` for each failing check.
        checks: Vec<String>,
    },
    /// The run was interrupted; the step that was running was rolled back
    /// and the lock released.
    #[error("interrupted by {by}; {what}")]
    Interrupted {
        /// What interrupted it (`SIGTERM`, ...).
        by: String,
        /// Where the run stopped and what that left behind.
        what: String,
    },
    /// A setting other than the URL is invalid.
    #[error("invalid {setting}: {reason}")]
    InvalidConfig {
        /// The variable or option (`DBINIT_ENV`).
        setting: String,
        /// Why it was rejected (never its value when it could be secret).
        reason: String,
    },
    /// An error from a backend, classified by kind.
    #[error("{message}")]
    Backend {
        /// The classification.
        kind: ErrorKind,
        /// A message for humans, without secrets.
        message: String,
        /// What to do about it.
        hint: Option<String>,
        /// The native error, reachable by downcast.
        #[source]
        source: Option<BoxError>,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn holder_suffix(holder: &Option<String>) -> String {
    holder
        .as_ref()
        .map(|h| format!(" (held by {h})"))
        .unwrap_or_default()
}

impl CoreError {
    /// A backend error of the given kind, with no hint and no source.
    pub fn backend(kind: ErrorKind, message: impl Into<String>) -> Self {
        CoreError::Backend {
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Attaches a hint (only to [`CoreError::Backend`]; others carry their own).
    pub fn with_hint(mut self, new_hint: impl Into<String>) -> Self {
        if let CoreError::Backend { hint, .. } = &mut self {
            *hint = Some(new_hint.into());
        }
        self
    }

    /// Attaches the native error (only to [`CoreError::Backend`]).
    pub fn with_source(mut self, err: impl Into<BoxError>) -> Self {
        if let CoreError::Backend { source, .. } = &mut self {
            *source = Some(err.into());
        }
        self
    }

    /// The stable classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::InvalidUrl { .. } => ErrorKind::InvalidUrl,
            CoreError::UnknownBackend { .. } => ErrorKind::UnknownBackend,
            CoreError::NoBackends | CoreError::DuplicateRegistration { .. } => ErrorKind::Registry,
            CoreError::MissingSeederDependency { .. } | CoreError::SeederCycle { .. } => {
                ErrorKind::SeedFailed
            }
            CoreError::LockTimeout { .. } => ErrorKind::LockTimeout,
            CoreError::DivergentMigration { .. }
            | CoreError::MissingMigration { .. }
            | CoreError::OutOfOrderMigration { .. }
            | CoreError::InvalidMigrationSet { .. }
            | CoreError::ForeignDatabase { .. }
            | CoreError::CorruptHistory { .. } => ErrorKind::MigrationValidation,
            CoreError::MigrationFailed { .. } => ErrorKind::MigrationFailed,
            CoreError::SeedFailed { .. } => ErrorKind::SeedFailed,
            CoreError::Unhealthy { .. } => ErrorKind::Unhealthy,
            CoreError::Interrupted { .. } => ErrorKind::Interrupted,
            CoreError::InvalidConfig { .. } => ErrorKind::Config,
            CoreError::Backend { kind, .. } => *kind,
        }
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            CoreError::InvalidUrl { .. } => Some(
                "write the URL form of your backend: SCHEME://USER@HOST[:PORT]/DB for a \
                 server, SCHEME://PATH for a file (each backend's docs list its forms)"
                    .to_owned(),
            ),
            CoreError::UnknownBackend { .. } => {
                Some("check the scheme for typos, or link the backend crate that serves it".to_owned())
            }
            CoreError::NoBackends => Some(
                "call `dbinit_runner::link_builtin_plugins()` (or a backend's `link()`) \
                 from main, or enable a backend feature of the runner"
                    .to_owned(),
            ),
            CoreError::LockTimeout { .. } => Some(
                "another process is initializing this database; wait for it or raise --lock-timeout"
                    .to_owned(),
            ),
            CoreError::DivergentMigration { .. } | CoreError::MissingMigration { .. } => Some(
                "restore the original migration file; applied migrations must never be edited \
                 or deleted, add a new migration instead"
                    .to_owned(),
            ),
            CoreError::ForeignDatabase { .. } => Some(
                "point DATABASE_URL at a new or dbinit-managed database, or adopt this one with \
                 `baseline --version N` if it already has the schema of migrations 1..N; \
                 dbinit wrote nothing to it"
                    .to_owned(),
            ),
            CoreError::OutOfOrderMigration { .. } => {
                Some("give the new migration a version above every applied one".to_owned())
            }
            CoreError::MigrationFailed { message, .. } if message.contains("statement timeout") => Some(
                "the server's statement_timeout cancelled it; raise it for this role or database \
                 (ALTER ROLE ... SET statement_timeout = ...) and run init again"
                    .to_owned(),
            ),
            CoreError::MigrationFailed { .. } => Some(
                "fix the migration's SQL and run init again; earlier migrations stay applied"
                    .to_owned(),
            ),
            CoreError::Interrupted { .. } => Some(
                "run the same command again: every completed step stays, and the interrupted one \
                 runs again from the start"
                    .to_owned(),
            ),
            CoreError::Backend { hint, .. } => hint.clone(),
            // A seeder's failure keeps the hint of what failed inside it.
            CoreError::SeedFailed {
                source: Some(source),
                ..
            } => source.downcast_ref::<CoreError>().and_then(CoreError::hint),
            _ => None,
        }
    }
}
