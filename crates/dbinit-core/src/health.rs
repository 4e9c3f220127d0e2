//! [`HealthCheck`]: what "ready" means, checked at the end of every run;
//! [`DependencyCheck`]: the other services an application leans on.
//!
//! # How statuses combine
//!
//! One overall status ([`HealthStatus::overall`]): any `unhealthy` check
//! makes it `unhealthy`; otherwise any `degraded` or `fallback` check makes
//! it `degraded`; otherwise it is `healthy`. `disabled` checks do not count.
//! Readiness ([`HealthStatus::blocks_readiness`]): ready unless some check
//! is `unhealthy`. A dependency running on its declared fallback does not
//! block readiness: the application said it can serve without it.

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
    /// A dependency is down and the application runs on its declared
    /// fallback.
    Fallback,
}

impl HealthStatus {
    /// The status's `snake_case` name, as in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::Disabled => "disabled",
            HealthStatus::Fallback => "fallback",
        }
    }

    /// Every status, in a stable order (for metrics).
    pub const ALL: [HealthStatus; 5] = [
        HealthStatus::Healthy,
        HealthStatus::Degraded,
        HealthStatus::Unhealthy,
        HealthStatus::Disabled,
        HealthStatus::Fallback,
    ];

    /// Whether a check with this status makes the service not ready.
    pub fn blocks_readiness(self) -> bool {
        self == HealthStatus::Unhealthy
    }

    /// The one status that sums up `statuses` (see the module docs).
    pub fn overall(statuses: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
        statuses
            .into_iter()
            .fold(HealthStatus::Healthy, |sum, s| match (sum, s) {
                (HealthStatus::Unhealthy, _) | (_, HealthStatus::Unhealthy) => {
                    HealthStatus::Unhealthy
                }
                (_, HealthStatus::Degraded | HealthStatus::Fallback) => HealthStatus::Degraded,
                (sum, _) => sum,
            })
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
    /// A degraded outcome.
    pub fn degraded(detail: impl Into<String>) -> Self {
        HealthOutcome {
            status: HealthStatus::Degraded,
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
    /// The check runs on every tick of a service's health monitor: a check
    /// that reads the whole database should report `disabled` here and
    /// leave the full check to `health`.
    pub periodic: bool,
}

/// A named health check.
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// Unique name.
    fn name(&self) -> &str;

    /// Whether the check applies to the backend registered as `backend`
    /// (default: all).
    fn applies_to(&self, backend: &str) -> bool {
        let _ = backend;
        true
    }

    /// Runs the check. An `Err` counts as unhealthy with the error as detail.
    async fn check(&self, cx: &mut HealthContext<'_>) -> Result<HealthOutcome, CoreError>;
}

/// A service the application leans on besides its database (a cache, a
/// queue, another HTTP service), checked by the health monitor on every
/// tick, whether or not the database is up.
///
/// A check reports `healthy`, `degraded`, `unhealthy` or `disabled` (not
/// configured). It never reports `fallback` itself: when the application
/// declared it can run without the dependency
/// (`Initializer::dependency_fallback`), the monitor turns `unhealthy` into
/// `fallback`, so every dependency gets the same rule.
///
/// Details and [`target`](DependencyCheck::target) are shown in logs and
/// over HTTP: they must never hold a secret.
#[async_trait]
pub trait DependencyCheck: Send + Sync + 'static {
    /// Unique name among all checks (`redis`).
    fn name(&self) -> &str;

    /// Where the dependency is, redacted (`redis://127.0.0.1:6379/0`).
    fn target(&self) -> String;

    /// Refuses a configuration that can never work (an unparsable URL), so
    /// that a service fails at startup instead of reporting it forever.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidConfig`] saying what to fix.
    fn validate(&self) -> Result<(), CoreError> {
        Ok(())
    }

    /// One round trip. It should answer within `timeout`; the monitor
    /// stops waiting after it and reports the dependency unhealthy.
    async fn check(&self, timeout: std::time::Duration) -> HealthOutcome;
}

#[cfg(test)]
mod tests {
    use super::HealthStatus::{self, *};

    #[test]
    fn statuses_combine_worst_first_and_only_unhealthy_blocks_readiness() {
        let cases: &[(&[HealthStatus], HealthStatus)] = &[
            (&[], Healthy),
            (&[Disabled, Disabled], Healthy),
            (&[Healthy, Disabled], Healthy),
            (&[Healthy, Fallback], Degraded),
            (&[Degraded, Healthy], Degraded),
            (&[Fallback, Unhealthy, Degraded], Unhealthy),
            (&[Unhealthy, Healthy], Unhealthy),
        ];
        for (statuses, expected) in cases {
            assert_eq!(
                HealthStatus::overall(statuses.iter().copied()),
                *expected,
                "{statuses:?}"
            );
        }
        let blocking: Vec<_> = HealthStatus::ALL
            .into_iter()
            .filter(|s| s.blocks_readiness())
            .collect();
        assert_eq!(blocking, [Unhealthy]);
    }
}
