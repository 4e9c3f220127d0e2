//! [`HealthSnapshot`]: what the monitor last saw, as published on its watch
//! channel and served by `/readyz`, `/health` and `/metrics`.

use std::time::{Duration, SystemTime};

use crate::report::{millis, InitReport, Outcome};
use dbinit_core::HealthStatus;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

/// The detail of a database check that did not run because the database
/// could not be reached (`connectivity` says why).
pub(crate) const NOT_CHECKED: &str = "not checked: the database is unreachable";

/// Whether a check is about the database or another service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A registered [`HealthCheck`](dbinit_core::HealthCheck) on the database.
    Database,
    /// A [`DependencyCheck`](dbinit_core::DependencyCheck).
    Dependency,
}

/// One check as last seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckState {
    /// The check's name.
    pub name: String,
    /// Database or dependency.
    pub kind: CheckKind,
    /// Its status.
    pub status: HealthStatus,
    /// What it found (never a secret).
    pub detail: String,
    /// How long it took.
    #[serde(serialize_with = "millis", rename = "latency_ms")]
    pub latency: Duration,
    /// When its status last changed (RFC 3339, UTC).
    pub since: String,
}

/// The last `init` of this process, for `/metrics` and `/health`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitFacts {
    /// `ready` or `failed`.
    pub outcome: Outcome,
    /// How long it took.
    #[serde(serialize_with = "millis", rename = "duration_ms")]
    pub duration: Duration,
    /// Migrations recorded as applied after it.
    pub migrations_applied: usize,
    /// Of those, applied by that run.
    pub migrations_applied_now: usize,
}

impl From<&InitReport> for InitFacts {
    fn from(report: &InitReport) -> Self {
        let migrations = &report.migrations;
        InitFacts {
            outcome: report.outcome,
            duration: report.total,
            migrations_applied: migrations.already_applied + migrations.applied.len(),
            migrations_applied_now: migrations.applied.len(),
        }
    }
}

/// The latest summary: one overall status, readiness, every check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSnapshot {
    /// Every check combined ([`HealthStatus::overall`]).
    pub status: HealthStatus,
    /// No check is unhealthy, and at least one tick has completed.
    pub ready: bool,
    /// Why not ready: `check: detail` per unhealthy check.
    pub not_ready: Vec<String>,
    /// The database, redacted.
    pub database: String,
    /// Ticks completed.
    pub ticks: u64,
    /// The monitor's interval.
    #[serde(serialize_with = "millis", rename = "interval_ms")]
    pub interval: Duration,
    /// When the last tick completed (RFC 3339, UTC); empty before the first.
    pub checked_at: String,
    /// How long the last tick took (every check, side by side).
    #[serde(serialize_with = "millis", rename = "tick_ms")]
    pub tick: Duration,
    /// Every check, database checks first.
    pub checks: Vec<CheckState>,
    /// The last `init` of this process, when the application reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<InitFacts>,
    /// When the last tick completed, for staleness.
    #[serde(skip)]
    pub(crate) completed: Option<tokio::time::Instant>,
}

impl HealthSnapshot {
    /// Before the first tick: not ready.
    pub(crate) fn starting(database: String, interval: Duration, init: Option<InitFacts>) -> Self {
        HealthSnapshot {
            status: HealthStatus::Unhealthy,
            ready: false,
            not_ready: vec!["starting: no health check has completed yet".to_owned()],
            database,
            ticks: 0,
            interval,
            checked_at: String::new(),
            tick: Duration::ZERO,
            checks: Vec::new(),
            init,
            completed: None,
        }
    }

    /// The snapshot after a tick that found `checks`; a check keeps its
    /// `since` from `previous` while its status is unchanged.
    pub(crate) fn next(
        previous: &HealthSnapshot,
        mut checks: Vec<CheckState>,
        tick: Duration,
    ) -> Self {
        let now = rfc3339(SystemTime::now());
        for check in &mut checks {
            check.since = previous
                .checks
                .iter()
                .find(|c| c.name == check.name && c.status == check.status)
                .map_or_else(|| now.clone(), |c| c.since.clone());
        }
        let not_ready: Vec<String> = checks
            .iter()
            .filter(|c| c.status.blocks_readiness())
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        HealthSnapshot {
            status: HealthStatus::overall(checks.iter().map(|c| c.status)),
            ready: not_ready.is_empty(),
            not_ready,
            database: previous.database.clone(),
            ticks: previous.ticks + 1,
            interval: previous.interval,
            checked_at: now,
            tick,
            checks,
            init: previous.init.clone(),
            completed: Some(tokio::time::Instant::now()),
        }
    }

    /// Readiness as served: also not ready when the monitor has not
    /// completed a tick for more than two intervals and its time budget
    /// (stopped, or stuck), with the reason.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        match self.stale() {
            Some(reason) => Err(vec![reason]),
            None if self.ready => Ok(()),
            None => Err(self.not_ready.clone()),
        }
    }

    /// The snapshot as the routes serve it: a stale one is unhealthy and
    /// not ready, saying why, so that `/health`, `/readyz` and `/metrics`
    /// agree.
    pub fn served(&self) -> HealthSnapshot {
        let mut served = self.clone();
        if let Some(reason) = self.stale() {
            served.status = HealthStatus::Unhealthy;
            served.ready = false;
            served.not_ready.insert(0, reason);
        }
        served
    }

    fn stale(&self) -> Option<String> {
        let limit = self.interval * 2 + budget(self.interval);
        let age = self.completed?.elapsed();
        (age > limit).then(|| {
            format!(
                "monitor: the last check completed {:.0} s ago (interval {:.0} s)",
                age.as_secs_f64(),
                self.interval.as_secs_f64()
            )
        })
    }

    /// `name=status` of every check that is neither healthy nor disabled:
    /// stable across ticks of one condition (details, like latencies, may
    /// vary), so it keys the log's repeat collapsing.
    pub(crate) fn condition(&self) -> String {
        self.checks
            .iter()
            .filter(|c| !matches!(c.status, HealthStatus::Healthy | HealthStatus::Disabled))
            .map(|c| format!("{}={}", c.name, c.status.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `check (status): detail` of every check that is neither healthy nor
    /// disabled, for the log; the checks not run are named once at the end.
    pub(crate) fn problems(&self) -> String {
        let (skipped, checked): (Vec<&CheckState>, Vec<&CheckState>) = self
            .checks
            .iter()
            .filter(|c| !matches!(c.status, HealthStatus::Healthy | HealthStatus::Disabled))
            .partition(|c| c.detail == NOT_CHECKED);
        let mut parts: Vec<String> = checked
            .iter()
            .map(|c| format!("{} ({}): {}", c.name, c.status.as_str(), c.detail))
            .collect();
        if !skipped.is_empty() {
            let names: Vec<&str> = skipped.iter().map(|c| c.name.as_str()).collect();
            parts.push(format!("not checked: {}", names.join(", ")));
        }
        parts.join("; ")
    }
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// How long the database checks of one tick may take: `max(interval, 5 s)`.
pub(crate) fn budget(interval: Duration) -> Duration {
    interval.max(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stale_snapshot_is_served_unready_and_unhealthy_everywhere() {
        let interval = Duration::from_secs(1);
        let starting = HealthSnapshot::starting(String::new(), interval, None);
        assert!(!starting.served().ready, "not ready before the first tick");
        let fresh = HealthSnapshot::next(&starting, Vec::new(), Duration::ZERO);
        assert!(fresh.served().ready);
        assert_eq!(fresh.readiness(), Ok(()));
        // Two intervals and the 5 s budget pass with no tick.
        tokio::time::advance(Duration::from_secs(8)).await;
        let served = fresh.served();
        assert!(!served.ready);
        assert_eq!(served.status, HealthStatus::Unhealthy);
        assert!(served.not_ready[0].starts_with("monitor: the last check completed 8 s ago"));
        assert_eq!(fresh.readiness(), Err(served.not_ready.clone()));
    }
}
