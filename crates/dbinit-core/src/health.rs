//! [`HealthCheck`]: what "ready" means, checked at the end of every run.

use async_trait::async_trait;
use serde::Serialize;

use crate::{CoreError, Environment, MigrationSet, Seeder, Session};

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Fine.
    Healthy,
    /// Working, but something deserves attention.
    Degraded,
    /// Not ready.
    Unhealthy,
    /// Not applicable or turned off.
    Disabled,
}

impl HealthStatus {
    /// The status's `snake_case` name, as in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::Disabled => "disabled",
        }
    }
}

/// A check's result: status and a one-line detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthOutcome {
    /// The verdict.
    pub status: HealthStatus,
    /// What was found.
    pub detail: String,
}

impl HealthOutcome {
    /// A healthy outcome.
    pub fn healthy(detail: impl Into<String>) -> Self {
        HealthOutcome {
            status: HealthStatus::Healthy,
            detail: detail.into(),
        }
    }
    /// An unhealthy outcome.
    pub fn unhealthy(detail: impl Into<String>) -> Self {
        HealthOutcome {
            status: HealthStatus::Unhealthy,
            detail: detail.into(),
        }
    }
    /// A disabled outcome.
    pub fn disabled(detail: impl Into<String>) -> Self {
        HealthOutcome {
            status: HealthStatus::Disabled,
            detail: detail.into(),
        }
    }
}

/// Facts established earlier in the same run, so checks need not query again.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// Migrations still pending after the migration step (normally zero).
    pub pending_migrations: Option<usize>,
    /// Seeders that completed in this run (their data is present).
    pub seeded: Vec<String>,
    /// Whether this run wrote anything (applied a migration, created a
    /// seed record). Checks that read the whole database may skip a run
    /// that changed nothing.
    pub wrote: bool,
}

/// What a health check receives.
pub struct HealthContext<'a> {
    /// The session.
    pub session: &'a mut dyn Session,
    /// The migration set the database should match.
    pub migrations: &'a MigrationSet,
    /// Seeders enabled for this environment.
    pub seeders: &'a [Box<dyn Seeder>],
    /// Tables that must exist.
    pub required_tables: &'a [String],
    /// The environment.
    pub environment: Environment,
    /// Facts from this run, when the check runs at the end of `init`.
    pub run: Option<&'a RunFacts>,
}

/// A named health check.
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// Unique name.
    fn name(&self) -> &'static str;

    /// Whether the check applies to the backend registered as `backend`
    /// (default: all).
    fn applies_to(&self, backend: &str) -> bool {
        let _ = backend;
        true
    }

    /// Runs the check. An `Err` counts as unhealthy with the error as detail.
    async fn check(&self, cx: &mut HealthContext<'_>) -> Result<HealthOutcome, CoreError>;
}
