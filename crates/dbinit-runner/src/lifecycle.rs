//! Everything but `init`: `status` and `health` (read-only, no lock), and
//! the migration lifecycle — `plan`, `rollback`, `baseline`, `repair` —
//! each under the init lock, each refusing bad input before it changes
//! anything. The logic is the core engine's; this module connects, locks,
//! and reports.

use crate::report::{
    HealthSummary, LifecycleReport, MigrationsReport, PlanReport, PlannedMigration, SeedReport,
    SeedState, StatusReport,
};
use std::sync::Arc;

use dbinit_core::engine::{self, RollbackTarget};
use dbinit_core::{CoreError, Seeder, Session};

use crate::context::Context;
use crate::health::{check_dependencies, run_checks, Occasion};
use crate::seeding;
use crate::settings::Settings;

/// What [`Initializer::run_seed`](crate::Initializer::run_seed) runs.
#[derive(Debug, Clone, Default)]
pub struct SeedOptions {
    /// Only these seeders (by name; a data file's is `<dir>/<path>`), in
    /// dependency order; empty: all. Seeders they depend on do not run.
    pub only: Vec<String>,
    /// Run each seeder, report what it wrote, and roll it back.
    pub dry_run: bool,
}

/// The context of a run on the configured database.
fn resolve(settings: &Arc<Settings>) -> Result<Context, CoreError> {
    Context::resolve(settings, &settings.url)
}

/// Whether each enabled seeder's data is present. Read-only: missing tables
/// mean "not seeded yet"; any other failure is an error.
async fn seed_states(cx: &Context, session: &mut dyn Session) -> Result<Vec<SeedState>, CoreError> {
    let tables = session.tables().await?;
    let history = seeding::history(&cx.seeders(), session).await?;
    let mut states = Vec::with_capacity(cx.seeders.len());
    for seeder in &cx.seeders {
        let has_tables = seeder
            .tables()
            .iter()
            .all(|t| tables.iter().any(|have| have == t));
        let seeded = has_tables
            && seeding::is_done(seeder.as_ref(), &history, &mut cx.seed_context(session)).await?;
        states.push(SeedState {
            name: seeder.name().to_owned(),
            seeded,
        });
    }
    Ok(states)
}

pub(crate) async fn status(settings: &Arc<Settings>) -> Result<StatusReport, CoreError> {
    let cx = resolve(settings)?;
    let mut session = cx.connect().await?;
    let applied = engine::history(&mut *session).await?;
    let pending = cx
        .set
        .pending(&applied)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let seeders = seed_states(&cx, &mut *session).await?;
    Ok(StatusReport {
        database: cx.url.redacted().to_owned(),
        backend: cx.backend.to_owned(),
        migrations: MigrationsReport {
            source: cx.set.origin().to_owned(),
            already_applied: applied.len(),
            applied,
            pending,
            notes: Vec::new(),
        },
        seeders,
    })
}

pub(crate) async fn health(settings: &Arc<Settings>) -> Result<HealthSummary, CoreError> {
    // A configuration error first: it is what to fix, whatever the database.
    let dependencies = settings.dependency_checks()?;
    let cx = resolve(settings)?;
    let mut session = cx.connect().await?;
    let mut checks = run_checks(&cx, &mut *session, Occasion::OnDemand).await?;
    checks.extend(check_dependencies(settings, &dependencies).await);
    Ok(HealthSummary {
        database: cx.url.redacted().to_owned(),
        backend: cx.backend.to_owned(),
        status: dbinit_core::HealthStatus::overall(checks.iter().map(|c| c.status)),
        checks,
    })
}

pub(crate) async fn plan(settings: &Arc<Settings>) -> Result<PlanReport, CoreError> {
    let cx = resolve(settings)?;
    let (already_applied, pending, seeders) = cx
        .under_lock(true, async |session| {
            let plan = engine::plan(session, &cx.set).await?;
            let pending = plan
                .pending
                .iter()
                .map(|m| PlannedMigration {
                    migration: m.to_string(),
                    path: m.path().map(str::to_owned),
                    in_transaction: m.runs_in_transaction(),
                    sql: m.sql().to_owned(),
                })
                .collect();
            let seeders = seed_states(&cx, session).await?;
            Ok((plan.applied.len(), pending, seeders))
        })
        .await?;
    Ok(PlanReport {
        database: cx.url.redacted().to_owned(),
        backend: cx.backend.to_owned(),
        source: cx.set.origin().to_owned(),
        already_applied,
        pending,
        seeders,
    })
}

pub(crate) async fn seed(
    settings: &Arc<Settings>,
    options: &SeedOptions,
) -> Result<SeedReport, CoreError> {
    let started = std::time::Instant::now();
    let cx = resolve(settings)?;
    let seeders = cx
        .under_lock(false, async |session| {
            let selected = select(&cx, &options.only)?;
            let plan = engine::plan(session, &cx.set).await?;
            if let Some(first) = plan.pending.first() {
                return Err(CoreError::InvalidConfig {
                    setting: "seed".to_owned(),
                    reason: format!(
                        "{} migrations are pending ({first} first): seeders need the schema; run \
                     `init`, which migrates and then seeds",
                        plan.pending.len()
                    ),
                });
            }
            seeding::preflight(&cx, &selected, session).await?;
            let mut reports = Vec::with_capacity(selected.len());
            seeding::run(&cx, &selected, session, options.dry_run, &mut reports).await?;
            Ok(reports)
        })
        .await?;
    Ok(SeedReport {
        database: cx.url.redacted().to_owned(),
        backend: cx.backend.to_owned(),
        environment: cx.settings.environment,
        dry_run: options.dry_run,
        seed_files: cx.seed_files.clone(),
        seeders,
        total: started.elapsed(),
    })
}

/// The seeders `only` names (all when empty), in run order.
fn select<'a>(cx: &'a Context, only: &[String]) -> Result<Vec<&'a dyn Seeder>, CoreError> {
    let all = cx.seeders();
    if let Some(unknown) = only.iter().find(|n| !all.iter().any(|s| s.name() == *n)) {
        let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
        return Err(CoreError::InvalidConfig {
            setting: "--only".to_owned(),
            reason: format!(
                "no seeder `{unknown}` runs in {} (these do: {})",
                cx.settings.environment,
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        });
    }
    Ok(all
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == s.name()))
        .collect())
}

pub(crate) async fn rollback(
    settings: &Arc<Settings>,
    target: RollbackTarget,
) -> Result<LifecycleReport, CoreError> {
    let cx = resolve(settings)?;
    let done = cx
        .under_lock(false, async |session| {
            let before = engine::history(session).await?;
            let range = engine::rollback_plan(session, &cx.set, target).await?;
            let done = engine::rollback(session, &range)
                .await
                .map_err(|batch| already_rolled_back(batch.error, &batch.applied))?;
            // A down script may have rewritten the history (PostgreSQL cannot
            // refuse it up front): this rollback fails, not the next run.
            let expected: Vec<i64> = before
                .iter()
                .map(|a| a.version)
                .filter(|v| !range.iter().any(|m| m.version() == *v))
                .collect();
            engine::verify(session, &cx.set, &expected).await?;
            Ok(done)
        })
        .await?;
    Ok(report(&cx, "rollback", done))
}

pub(crate) async fn baseline(
    settings: &Arc<Settings>,
    version: i64,
) -> Result<LifecycleReport, CoreError> {
    let cx = resolve(settings)?;
    let done = (cx.under_lock(false, async |session| {
        engine::baseline(session, &cx.set, version).await
    }))
    .await?;
    Ok(report(&cx, "baseline", done))
}

pub(crate) async fn repair(
    settings: &Arc<Settings>,
    version: i64,
) -> Result<LifecycleReport, CoreError> {
    let cx = resolve(settings)?;
    let repaired = (cx.under_lock(false, async |session| {
        engine::repair(session, &cx.set, version).await
    }))
    .await?;
    let mut report = report(&cx, "repair", Vec::new());
    report.repaired = Some(repaired);
    Ok(report)
}

/// A rollback that stopped part way says what it had already undone.
fn already_rolled_back(error: CoreError, done: &[dbinit_core::AppliedMigration]) -> CoreError {
    if done.is_empty() {
        return error;
    }
    let done: Vec<String> = done.iter().map(|m| m.file_stem()).collect();
    let done = done.join(", ");
    match error {
        CoreError::Interrupted { by, what } => CoreError::Interrupted {
            by,
            what: format!("{what}; already rolled back: {done}"),
        },
        CoreError::Backend {
            kind,
            message,
            hint,
            source,
        } => CoreError::Backend {
            kind,
            message: format!("{message}; already rolled back: {done}"),
            hint,
            source,
        },
        e => {
            tracing::warn!(rolled_back = %done, "rollback stopped part way");
            e
        }
    }
}

fn report(
    cx: &Context,
    action: &'static str,
    migrations: Vec<dbinit_core::AppliedMigration>,
) -> LifecycleReport {
    LifecycleReport {
        database: cx.url.redacted().to_owned(),
        backend: cx.backend.to_owned(),
        action,
        migrations,
        repaired: None,
    }
}
