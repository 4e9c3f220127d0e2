//! The pipeline, top to bottom:
//!
//! parse (done by the caller) → registry → create database if missing →
//! connect → **lock** → read history → validate → apply → schema steps →
//! seed → **unlock (on every path)** → health → report.
//!
//! A process that finds the lock taken waits for its holder, then verifies
//! the holder's work under a shared hold, in parallel with the other
//! waiters, and takes the lock itself only if work is left (see
//! [`lock_or_verify`]).
//!
//! Health checks run after the lock is released: they only read, and other
//! processes waiting for the lock should not wait for them too.

use std::time::{Duration, Instant};

use crate::report::{
    self, FallbackReport, HealthReport, InitReport, MigrationsReport, Outcome, SeedFilesReport,
    SeedStatus,
};
use dbinit_core::{engine, fault, registry};
use dbinit_core::{
    Connector, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind, HealthContext, InitLock,
    MigrationSet, RunFacts, Seeder, Session,
};

use crate::{seed_order, seeding, Initializer, RunnerError};

/// A connected session with everything resolved for one run.
pub(crate) struct Prepared {
    pub(crate) connector: Box<dyn Connector>,
    pub(crate) backend: &'static str,
    pub(crate) set: MigrationSet,
    pub(crate) seeders: Vec<Box<dyn Seeder>>,
    pub(crate) seed_files: Option<SeedFilesReport>,
    pub(crate) required_tables: Vec<String>,
}

impl Prepared {
    /// The seeders, in run order.
    pub(crate) fn seeders(&self) -> Vec<&dyn Seeder> {
        self.seeders.iter().map(AsRef::as_ref).collect()
    }
}

/// Resolves the backend, the migration set and the seeders. Touches nothing.
pub(crate) fn prepare(init: &Initializer, url: &DatabaseUrl) -> Result<Prepared, CoreError> {
    init.check_skips()?;
    let registration = registry::connector_for(url)?;
    let connector = registration.make();
    let set = init.migration_set(registration.name())?;
    let mut seeders = Vec::new();
    let mut seed_files = None;
    if init.seed {
        let enabled = registry::seeders()?
            .iter()
            .map(|r| r.make())
            .filter(|s| s.environments().contains(init.environment))
            .collect();
        seeders = seed_order::order(enabled)?;
        // Data files load after the registered seeders, in manifest order.
        if let Some(files) = &init.seed_files {
            seeders.extend(files.seeders(init.environment)?);
            seed_files = Some(SeedFilesReport {
                origin: files.origin().to_owned(),
                directories: files.directories(init.environment),
            });
        }
    }
    let seeder_tables: Vec<&'static str> = seeders
        .iter()
        .flat_map(|s| s.tables().iter().copied())
        .collect();
    Ok(Prepared {
        required_tables: init.required_tables(&seeder_tables),
        backend: registration.name(),
        connector,
        set,
        seeders,
        seed_files,
    })
}

pub(crate) async fn init(init: &Initializer) -> Result<InitReport, RunnerError> {
    let started = Instant::now();
    let mut report = InitReport::new(
        init.url.redacted().to_owned(),
        init.environment,
        init.used_default_url,
    );
    let mut result = match init.fallback_allowed() {
        Ok(()) => run(init, &init.url, &mut report).await,
        Err(e) => Err(e),
    };
    if let (Err(primary), Some(fallback)) = (&result, &init.fallback) {
        // Only an unreachable primary (refused, timed out; never a TLS or
        // certificate failure), before anything was done to it.
        if primary.kind() == ErrorKind::Unreachable && report.steps.is_empty() {
            tracing::warn!(
                primary = %init.url,
                fallback = %fallback,
                error = %primary,
                "PRIMARY DATABASE UNREACHABLE: USING THE CONFIGURED FALLBACK DATABASE"
            );
            let reason = primary.to_string();
            report = InitReport::new(fallback.redacted().to_owned(), init.environment, false);
            report.fallback = Some(FallbackReport {
                primary: init.url.redacted().to_owned(),
                reason,
            });
            result = run(init, fallback, &mut report).await;
        }
    }
    report.total = started.elapsed();
    match result {
        Ok(()) => {
            report.outcome = Outcome::Ready;
            tracing::info!(
                total_ms = report.total.as_secs_f64() * 1e3,
                "database ready"
            );
            Ok(report)
        }
        Err(error) => {
            let error = init.interrupt.explain(error);
            report.error = Some((&error).into());
            Err(RunnerError::new(report, error))
        }
    }
}

async fn run(
    init: &Initializer,
    url: &DatabaseUrl,
    report: &mut InitReport,
) -> Result<(), CoreError> {
    let started = Instant::now();
    let prepared = prepare(init, url)?;
    report.backend = prepared.backend.to_owned();
    report.migrations.source = prepared.set.origin().to_owned();
    report.seed_files.clone_from(&prepared.seed_files);
    init.interrupt.check("connecting")?;
    let (mut session, created) = init
        .interrupt
        .unless_interrupted("connecting", prepared.connector.open(url, &init.connect))
        .await?;
    init.interrupt.attach(session.canceller());
    fault::point("init.connected");
    report.database_created = Some(created);
    let detail = match created {
        DatabaseCreated::Created => "database created",
        DatabaseCreated::Existed => "existing database",
    };
    report.step("connect", started.elapsed(), detail);

    let started = Instant::now();
    init.interrupt.check("taking the initialization lock")?;
    // Waiting for the lock holds nothing: an interruption stops it at once,
    // even when the wait is a statement queued in a pooler.
    let waited = init.interrupt.unless_interrupted(
        "waiting for the initialization lock",
        lock_or_verify(init, &prepared, &mut *session, report),
    );
    let facts = match waited.await? {
        Locked::Verified(facts) => facts,
        Locked::Exclusive(lock) => {
            fault::point("init.locked");
            report.lock = Some((&lock).into());
            report.step("lock", started.elapsed(), describe(&lock));
            let locked = locked_steps(init, &prepared, &mut *session, report).await;
            fault::point("init.before_unlock");
            // From here on a signal must not cancel the unlock itself.
            init.interrupt.attach(None);
            let released = session.release_init_lock(lock).await;
            lost_lock_first(locked, released)?
        }
    };

    let started = Instant::now();
    report.health = run_checks(init, &prepared, &mut *session, Occasion::Init(&facts)).await?;
    let failures = report::failures(&report.health);
    report.step(
        "health",
        started.elapsed(),
        format!(
            "{} checks, {} unhealthy",
            report.health.len(),
            failures.len()
        ),
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Unhealthy { checks: failures })
    }
}

/// The run's result, unless the lock turned out lost: a lost lease (its
/// heartbeat cancelled the running statement) explains the failed step.
pub(crate) fn lost_lock_first<T>(
    locked: Result<T, CoreError>,
    released: Result<(), CoreError>,
) -> Result<T, CoreError> {
    match released {
        Err(lost) if lost.kind() == ErrorKind::LockTimeout => Err(lost),
        released => {
            let value = locked?;
            released?;
            Ok(value)
        }
    }
}

/// How [`lock_or_verify`] ended.
enum Locked {
    /// This process holds the lock: it does the work.
    Exclusive(InitLock),
    /// Another process did the work; this one verified it.
    Verified(RunFacts),
}

/// Takes the lock. A process that finds it taken waits for the holder, then
/// verifies under a shared hold that nothing is left to do; only if
/// something is does it come back for the lock, exclusively. Sixteen processes starting
/// together thus do the work once and check it side by side.
async fn lock_or_verify(
    init: &Initializer,
    prepared: &Prepared,
    session: &mut dyn Session,
    report: &mut InitReport,
) -> Result<Locked, CoreError> {
    let started = Instant::now();
    let lock = session
        .acquire_or_share_init_lock(init.lock_timeout)
        .await?;
    if !lock.shared {
        return Ok(Locked::Exclusive(lock));
    }
    let verified = verify(init, prepared, session).await;
    let (held, detail) = ((&lock).into(), describe(&lock));
    session.release_init_lock(lock).await?;
    match verified? {
        None => {
            tracing::info!("work is left after the other process; taking the lock");
            let left = init.lock_timeout.saturating_sub(started.elapsed());
            Ok(Locked::Exclusive(session.acquire_init_lock(left).await?))
        }
        Some((already_applied, facts)) => {
            report.lock = Some(held);
            report.step("lock", started.elapsed(), detail);
            report.migrations.already_applied = already_applied;
            report.step(
                "migrate",
                Duration::ZERO,
                format!("0 applied, {already_applied} already applied (verified)"),
            );
            report.seeders = (prepared.seeders.iter())
                .map(|s| seeding::report(s.as_ref(), SeedStatus::Verified))
                .collect();
            report.step(
                "seed",
                Duration::ZERO,
                format!(
                    "{} seeders: already seeded (verified)",
                    prepared.seeders.len()
                ),
            );
            Ok(Locked::Verified(facts))
        }
    }
}

/// `advisory lock 42, shared (waited 3.1 ms for pid 7 (dbinit))`.
fn describe(lock: &InitLock) -> String {
    let how = if lock.shared { "shared" } else { "held" };
    let waited_for = lock
        .waited_for
        .as_deref()
        .map(|h| format!(" for {h}"))
        .unwrap_or_default();
    format!(
        "{}, {how} (waited {:.1} ms{waited_for})",
        lock.name,
        lock.waited.as_secs_f64() * 1e3
    )
}

/// Read-only: whether the database is already what this run would make it:
/// every migration applied, every seeder's data present, and no schema
/// step (they have no read-only check) registered. Returns the number of
/// applied migrations. Errors other than an interrupt read as "work left":
/// the exclusive path reports them properly.
async fn verify(
    init: &Initializer,
    prepared: &Prepared,
    session: &mut dyn Session,
) -> Result<Option<(usize, RunFacts)>, CoreError> {
    let result: Result<_, CoreError> = async {
        if !registry::schema_steps()?.is_empty() {
            return Ok(None);
        }
        let plan = engine::plan(session, &prepared.set).await?;
        if !plan.pending.is_empty() {
            return Ok(None);
        }
        let seeders = prepared.seeders();
        seeding::preflight(init, &seeders, session).await?;
        let history = seeding::history(&seeders, session).await?;
        for seeder in &prepared.seeders {
            let mut cx = seeding::context(init, session);
            if !seeding::is_done(seeder.as_ref(), &history, &mut cx).await? {
                return Ok(None);
            }
        }
        Ok(Some((
            plan.applied.len(),
            RunFacts {
                pending_migrations: Some(0),
                seeded: names(&prepared.seeders),
                wrote: false,
            },
        )))
    }
    .await;
    match result {
        Err(e) if e.kind() == ErrorKind::Interrupted => Err(e),
        Err(e) => {
            tracing::debug!(error = %e, "verification found work left");
            Ok(None)
        }
        ok => ok,
    }
}

/// Everything that runs under the initialization lock.
async fn locked_steps(
    init: &Initializer,
    prepared: &Prepared,
    session: &mut dyn Session,
    report: &mut InitReport,
) -> Result<RunFacts, CoreError> {
    seeding::preflight(init, &prepared.seeders(), session).await?;

    let started = Instant::now();
    init.interrupt.check("migrating")?;
    migrate(&prepared.set, session, &mut report.migrations).await?;
    report.step(
        "migrate",
        started.elapsed(),
        format!(
            "{} applied, {} already applied",
            report.migrations.applied.len(),
            report.migrations.already_applied
        ),
    );

    let mut steps: Vec<_> = registry::schema_steps()?.iter().map(|r| r.make()).collect();
    steps.sort_by_key(|s| (s.order(), s.name()));
    for step in steps {
        let started = Instant::now();
        session.begin().await?;
        match step.apply(session).await {
            Ok(outcome) => {
                session.commit().await?;
                report.step(step.name(), started.elapsed(), outcome.detail);
            }
            Err(e) => {
                let _ = session.rollback().await;
                return Err(e);
            }
        }
    }

    let started = Instant::now();
    let seeders = prepared.seeders();
    seeding::run(init, &seeders, session, false, &mut report.seeders).await?;
    let totals = report.seed_totals();
    report.step(
        "seed",
        started.elapsed(),
        format!(
            "{} seeders: {} created, {} updated, {} skipped",
            report.seeders.len(),
            totals.created,
            totals.updated,
            totals.skipped
        ),
    );
    Ok(RunFacts {
        pending_migrations: Some(0),
        seeded: names(&prepared.seeders),
        wrote: !report.migrations.applied.is_empty() || totals.wrote(),
    })
}

fn names(seeders: &[Box<dyn Seeder>]) -> Vec<String> {
    seeders.iter().map(|s| s.name().to_owned()).collect()
}

/// Reads the history, refuses divergence before any change, applies the rest.
async fn migrate(
    set: &MigrationSet,
    session: &mut dyn Session,
    report: &mut MigrationsReport,
) -> Result<(), CoreError> {
    let plan = engine::plan(session, set).await?;
    report.already_applied = plan.applied.len();
    if plan.pending.is_empty() {
        return Ok(());
    }
    report.notes = plan
        .pending
        .iter()
        .filter(|m| m.is_empty())
        .map(|m| format!("{} has no SQL: recorded as applied", m.file_name()))
        .collect();
    tracing::info!(count = plan.pending.len(), "applying migrations");
    match engine::apply(session, &plan.pending).await {
        Ok(done) => {
            report.applied = done;
            let expected: Vec<i64> = (plan.applied.iter().map(|a| a.version))
                .chain(plan.pending.iter().map(|m| m.version()))
                .collect();
            engine::verify(session, set, &expected).await
        }
        Err(batch) => {
            report.pending = plan.pending[batch.applied.len()..]
                .iter()
                .map(ToString::to_string)
                .collect();
            report.applied = batch.applied;
            Err(batch.error)
        }
    }
}

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
    init: &Initializer,
    prepared: &Prepared,
    session: &mut dyn Session,
    occasion: Occasion<'_>,
) -> Result<Vec<HealthReport>, CoreError> {
    let mut reports = Vec::new();
    for registration in registry::health_checks()? {
        let check = registration.make();
        if !check.applies_to(prepared.backend) {
            continue;
        }
        fault::point("health.check");
        let started = Instant::now();
        let outcome = if init.skip_checks.iter().any(|s| s == check.name()) {
            dbinit_core::HealthOutcome::disabled("skipped by configuration")
        } else {
            let mut cx = HealthContext {
                session: &mut *session,
                migrations: &prepared.set,
                seeders: &prepared.seeders,
                required_tables: &prepared.required_tables,
                environment: init.environment,
                run: match occasion {
                    Occasion::Init(facts) => Some(facts),
                    Occasion::OnDemand | Occasion::Periodic => None,
                },
                periodic: matches!(occasion, Occasion::Periodic),
            };
            check.check(&mut cx).await.unwrap_or_else(|e| {
                dbinit_core::HealthOutcome::unhealthy(report::ErrorReport::from(&e).message)
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
