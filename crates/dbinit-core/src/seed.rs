//! [`Seeder`]: idempotent initial data, run in dependency order.

use std::io::Write;

use async_trait::async_trait;
use serde::Serialize;

use crate::{CoreError, Environment, Environments, Session};

/// What a seeder did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeedOutcome {
    /// Records written in this run.
    pub created: u64,
    /// Records that already existed and were left alone.
    pub skipped: u64,
}

impl SeedOutcome {
    /// `n` records created.
    pub fn created(n: u64) -> Self {
        SeedOutcome {
            created: n,
            skipped: 0,
        }
    }

    /// `n` records already present.
    pub fn skipped(n: u64) -> Self {
        SeedOutcome {
            created: 0,
            skipped: n,
        }
    }
}

impl std::ops::Add for SeedOutcome {
    type Output = SeedOutcome;
    fn add(self, rhs: SeedOutcome) -> SeedOutcome {
        SeedOutcome {
            created: self.created + rhs.created,
            skipped: self.skipped + rhs.skipped,
        }
    }
}

/// Where a seeder shows a secret it generated (an initial password), once.
///
/// Never tracing: logs are kept and shipped; a terminal is not.
pub trait SecretSink: Send + Sync {
    /// Shows `secret` to the operator, labelled.
    fn show_once(&self, label: &str, secret: &str);
}

/// Writes secrets to standard error, outside of any log format.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrSecretSink;

impl SecretSink for StderrSecretSink {
    fn show_once(&self, label: &str, secret: &str) {
        let mut err = std::io::stderr().lock();
        // Nothing sensible to do if stderr is gone; the hash is stored anyway.
        let _ = writeln!(
            err,
            "\n==> {label}: {secret}\n    Shown once and never stored in clear; keep it now.\n"
        );
    }
}

/// What a seeder receives: the session (inside a transaction the runner
/// opened), the environment, and where to show generated secrets.
pub struct SeedContext<'a> {
    /// The session, inside the seeder's transaction.
    pub session: &'a mut dyn Session,
    /// The environment being initialized.
    pub environment: Environment,
    /// Where to show generated secrets.
    pub secrets: &'a dyn SecretSink,
}

/// Initial data. Must be idempotent: a second run creates nothing.
#[async_trait]
pub trait Seeder: Send + Sync + 'static {
    /// Unique name; other seeders refer to it in [`Seeder::depends_on`].
    fn name(&self) -> &'static str;

    /// Seeders that must run first.
    fn depends_on(&self) -> &'static [&'static str] {
        &[]
    }

    /// Environments this seeder runs in.
    fn environments(&self) -> Environments {
        Environments::ALL
    }

    /// Tables the seeder writes; the "required tables" health check expects them.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether this seeder's data is present. Read-only.
    async fn is_seeded(&self, cx: &mut SeedContext<'_>) -> Result<bool, CoreError>;

    /// Writes what is missing. Runs inside a transaction that the runner
    /// commits on `Ok` and rolls back on `Err`.
    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError>;
}
