//! Everything but `init`: `status` and `health` (read-only, no lock), and
//! the migration lifecycle — `plan`, `rollback`, `baseline`, `repair` —
//! each under the init lock, each refusing bad input before it changes
//! anything. The logic is the core engine's; this module connects, locks,
//! and reports.

use crate::report::{
    HealthSummary, LifecycleReport, MigrationsReport, PlanReport, PlannedMigration, SeedReport,
    SeedState, StatusReport,
};
use dbinit_core::engine::{self, RollbackTarget};
use dbinit_core::{CoreError, Seeder, Session};

use crate::pipeline::{prepare, run_checks, Occasion, Prepared};
use crate::{seeding, Initializer, SeedOptions};

/// Connects to an existing database without creating anything.
async fn connect_existing(init: &Initializer) -> Result<(Prepared, Box<dyn Session>), CoreError> {
    let prepared = prepare(init, &init.url)?;
    let session = init
        .interrupt
        .unless_interrupted(
            "connecting",
            prepared.connector.connect(&init.url, &init.connect),
        )
        .await?;
    Ok((prepared, session))
}

/// Connects, takes the init lock, runs `step`, and releases the lock on
/// every path (the step's error wins over the release's, unless the lock
/// was lost).
///
/// A `read_only` step may run under a shared hold (after waiting for a
/// holder): it needs no more, and a role that cannot take the lock
/// exclusively (a read-only role through a pooler) can still run it.
async fn under_lock<T>(
    init: &Initializer,
    read_only: bool,
    step: impl AsyncFnOnce(&Prepared, &mut dyn Session) -> Result<T, CoreError>,
) -> Result<(Prepared, T), CoreError> {
    let (prepared, mut session) = connect_existing(init).await?;
    init.interrupt.attach(session.canceller());
    let acquire = async {
        if read_only {
            session.acquire_or_share_init_lock(init.lock_timeout).await
        } else {
            session.acquire_init_lock(init.lock_timeout).await
        }
    };
    let lock = init
        .interrupt
        .unless_interrupted("waiting for the initialization lock", acquire)
        .await?;
    let result = step(&prepared, &mut *session).await;
    // From here on a signal must not cancel the unlock itself.
    init.interrupt.attach(None);
    let released = session.release_init_lock(lock).await;
    let result = result.map_err(|e| init.interrupt.explain(e));
    let value = crate::pipeline::lost_lock_first(result, released)?;
    Ok((prepared, value))
}

/// Whether each enabled seeder's data is present. Read-only: missing tables
/// mean "not seeded yet"; any other failure is an error.
async fn seed_states(
    init: &Initializer,
    prepared: &Prepared,
    session: &mut dyn Session,
) -> Result<Vec<SeedState>, CoreError> {
    let tables = session.tables().await?;
    let history = seeding::history(&prepared.seeders(), session).await?;
    let mut states = Vec::with_capacity(prepared.seeders.len());
    for seeder in &prepared.seeders {
        let has_tables = seeder
            .tables()
            .iter()
            .all(|t| tables.iter().any(|have| have == t));
        let mut cx = seeding::context(init, session);
        let seeded = has_tables && seeding::is_done(seeder.as_ref(), &history, &mut cx).await?;
        states.push(SeedState {
            name: seeder.name().to_owned(),
            seeded,
        });
    }
    Ok(states)
}

pub(crate) async fn status(init: &Initializer) -> Result<StatusReport, CoreError> {
    let (prepared, mut session) = connect_existing(init).await?;
    let applied = engine::history(&mut *session).await?;
    let pending = prepared
        .set
        .pending(&applied)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let seeders = seed_states(init, &prepared, &mut *session).await?;
    Ok(StatusReport {
        database: init.url.redacted().to_owned(),
        backend: prepared.backend.to_owned(),
        migrations: MigrationsReport {
            source: prepared.set.origin().to_owned(),
            already_applied: applied.len(),
            applied,
            pending,
            notes: Vec::new(),
        },
        seeders,
    })
}

pub(crate) async fn health(init: &Initializer) -> Result<HealthSummary, CoreError> {
    // A configuration error first: it is what to fix, whatever the database.
    let dependencies = init.dependency_checks()?;
    let (prepared, mut session) = connect_existing(init).await?;
    let mut checks = run_checks(init, &prepared, &mut *session, Occasion::OnDemand).await?;
    checks.extend(crate::monitor::check_dependencies(init, &dependencies).await);
    Ok(HealthSummary {
        database: init.url.redacted().to_owned(),
        backend: prepared.backend.to_owned(),
        status: dbinit_core::HealthStatus::overall(checks.iter().map(|c| c.status)),
        checks,
    })
}

pub(crate) async fn plan(init: &Initializer) -> Result<PlanReport, CoreError> {
    let (prepared, (already_applied, pending, seeders)) =
        under_lock(init, true, async |prepared, session| {
            let plan = engine::plan(session, &prepared.set).await?;
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
            let seeders = seed_states(init, prepared, session).await?;
            Ok((plan.applied.len(), pending, seeders))
        })
        .await?;
    Ok(PlanReport {
        database: init.url.redacted().to_owned(),
        backend: prepared.backend.to_owned(),
        source: prepared.set.origin().to_owned(),
        already_applied,
        pending,
        seeders,
    })
}

pub(crate) async fn seed(
    init: &Initializer,
    options: &SeedOptions,
) -> Result<SeedReport, CoreError> {
    let started = std::time::Instant::now();
    let (prepared, seeders) = under_lock(init, false, async |prepared, session| {
        let selected = select(init, prepared, &options.only)?;
        let plan = engine::plan(session, &prepared.set).await?;
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
        seeding::preflight(init, &selected, session).await?;
        let mut reports = Vec::with_capacity(selected.len());
        seeding::run(init, &selected, session, options.dry_run, &mut reports).await?;
        Ok(reports)
    })
    .await?;
    Ok(SeedReport {
        database: init.url.redacted().to_owned(),
        backend: prepared.backend.to_owned(),
        environment: init.environment,
        dry_run: options.dry_run,
        seed_files: prepared.seed_files.clone(),
        seeders,
        total: started.elapsed(),
    })
}

/// The seeders `only` names (all when empty), in run order.
fn select<'a>(
    init: &Initializer,
    prepared: &'a Prepared,
    only: &[String],
) -> Result<Vec<&'a dyn Seeder>, CoreError> {
    let all = prepared.seeders();
    if let Some(unknown) = only.iter().find(|n| !all.iter().any(|s| s.name() == *n)) {
        let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
        return Err(CoreError::InvalidConfig {
            setting: "--only".to_owned(),
            reason: format!(
                "no seeder `{unknown}` runs in {} (these do: {})",
                init.environment,
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
    init: &Initializer,
    target: RollbackTarget,
) -> Result<LifecycleReport, CoreError> {
    let (prepared, done) = under_lock(init, false, async |prepared, session| {
        let before = engine::history(session).await?;
        let range = engine::rollback_plan(session, &prepared.set, target).await?;
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
        engine::verify(session, &prepared.set, &expected).await?;
        Ok(done)
    })
    .await?;
    Ok(report(init, &prepared, "rollback", done))
}

pub(crate) async fn baseline(
    init: &Initializer,
    version: i64,
) -> Result<LifecycleReport, CoreError> {
    let (prepared, done) = under_lock(init, false, async |prepared, session| {
        engine::baseline(session, &prepared.set, version).await
    })
    .await?;
    Ok(report(init, &prepared, "baseline", done))
}

pub(crate) async fn repair(init: &Initializer, version: i64) -> Result<LifecycleReport, CoreError> {
    let (prepared, repaired) = under_lock(init, false, async |prepared, session| {
        engine::repair(session, &prepared.set, version).await
    })
    .await?;
    let mut report = report(init, &prepared, "repair", Vec::new());
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
    init: &Initializer,
    prepared: &Prepared,
    action: &'static str,
    migrations: Vec<dbinit_core::AppliedMigration>,
) -> LifecycleReport {
    LifecycleReport {
        database: init.url.redacted().to_owned(),
        backend: prepared.backend.to_owned(),
        action,
        migrations,
        repaired: None,
    }
}
