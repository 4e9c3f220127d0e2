//! Running health checks: the registered database checks on a session,
//! and the dependency checks side by side, each within its timeout. The
//! end of `init`, `health` and every monitor tick run them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dbinit_core::{
    fault, registry, CoreError, DependencyCheck, HealthContext, HealthOutcome, RunFacts, Session,
};

use crate::context::Context;
use crate::report::{ErrorReport, HealthReport};
use crate::settings::Settings;

/// How long one dependency check may take.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(5);

/// When health checks run.
#[derive(Clone, Copy)]
pub(crate) enum Occasion<'a> {
    /// At the end of `init`, with what it established.
    Init(&'a RunFacts),
    /// `health`, once.
    OnDemand,
    /// A monitor tick.
    Periodic,
}

/// Runs every applicable, enabled health check.
pub(crate) async fn run_checks(
    cx: &Context,
    session: &mut dyn Session,
    occasion: Occasion<'_>,
) -> Result<Vec<HealthReport>, CoreError> {
    let mut reports = Vec::new();
    for registration in registry::health_checks()? {
        let check = registration.make();
        if !check.applies_to(&cx.backend) {
            continue;
        }
        fault::point("health.check");
        let started = Instant::now();
        let outcome = if cx.settings.skip_checks.iter().any(|s| s == check.name()) {
            dbinit_core::HealthOutcome::disabled("skipped by configuration")
        } else {
            let mut cx = HealthContext {
                session: &mut *session,
                migrations: &cx.set,
                seeders: &cx.seeders,
                required_tables: &cx.required_tables,
                environment: cx.settings.environment,
                run: match occasion {
                    Occasion::Init(facts) => Some(facts),
                    Occasion::OnDemand | Occasion::Periodic => None,
                },
                periodic: matches!(occasion, Occasion::Periodic),
            };
            check.check(&mut cx).await.unwrap_or_else(|e| {
                dbinit_core::HealthOutcome::unhealthy(ErrorReport::from(&e).message)
            })
        };
        reports.push(HealthReport {
            name: check.name().to_owned(),
            status: outcome.status,
            detail: outcome.detail,
            latency: started.elapsed(),
        });
    }
    Ok(reports)
}

/// Every dependency check, concurrently, each within its timeout; an
/// unhealthy dependency with a declared fallback is `fallback`.
pub(crate) async fn check_dependencies(
    settings: &Settings,
    dependencies: &[Arc<dyn DependencyCheck>],
) -> Vec<HealthReport> {
    let mut set = tokio::task::JoinSet::new();
    let mut index = std::collections::HashMap::new();
    for (i, dependency) in dependencies.iter().enumerate() {
        if settings.skip_checks.iter().any(|s| s == dependency.name()) {
            continue;
        }
        let dependency = Arc::clone(dependency);
        let task = set.spawn(async move {
            // tokio's clock: paused test time moves the timeouts too.
            let started = tokio::time::Instant::now();
            let outcome =
                tokio::time::timeout(DEPENDENCY_TIMEOUT, dependency.check(DEPENDENCY_TIMEOUT))
                    .await
                    .unwrap_or_else(|_| {
                        HealthOutcome::unhealthy(format!(
                            "no answer within {:.0} s",
                            DEPENDENCY_TIMEOUT.as_secs_f64()
                        ))
                    });
            (outcome, started.elapsed())
        });
        index.insert(task.id(), i);
    }
    // A check that panics is unhealthy, and the monitor goes on.
    let mut results: Vec<(HealthOutcome, Duration)> = dependencies
        .iter()
        .map(
            |d| match settings.skip_checks.iter().any(|s| s == d.name()) {
                true => HealthOutcome::disabled("skipped by configuration"),
                false => HealthOutcome::unhealthy("the check panicked"),
            },
        )
        .map(|outcome| (outcome, Duration::ZERO))
        .collect();
    while let Some(joined) = set.join_next_with_id().await {
        if let Ok((id, result)) = joined {
            if let Some(&i) = index.get(&id) {
                results[i] = result;
            }
        }
    }
    results
        .into_iter()
        .zip(dependencies)
        .map(|((outcome, latency), dependency)| {
            let outcome = settings.with_fallback(dependency.name(), outcome);
            HealthReport {
                name: dependency.name().to_owned(),
                status: outcome.status,
                detail: outcome.detail,
                latency,
            }
        })
        .collect()
}
