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

use dbinit_core::report::{
    self, FallbackReport, HealthReport, InitReport, MigrationsReport, Outcome, SeederReport,
};
use dbinit_core::{engine, fault, registry};
use dbinit_core::{
    Connector, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind, HealthContext, HealthStatus,
    InitLock, MigrationSet, RunFacts, SecretSink, SeedContext, SeedOutcome, Seeder, Session,
};

use crate::{seed_order, Initializer, RunnerError};

/// A connected session with everything resolved for one run.
pub(crate) struct Prepared {
    pub(crate) connector: Box<dyn Connector>,
    pub(crate) backend: &'static str,
    pub(crate) set: MigrationSet,
    pub(crate) seeders: Vec<Box<dyn Seeder>>,
    pub(crate) required_tables: Vec<String>,
}

/// Resolves the backend, the migration set and the seeders. Touches nothing.
pub(crate) fn prepare(init: &Initializer, url: &DatabaseUrl) -> Result<Prepared, CoreError> {
    let registration = registry::connector_for(url)?;
    let connector = registration.make();
    let set = init.migration_set(registration.name())?;
    let seeders = if init.seed {
        let enabled = registry::seeders()?
            .iter()
            .map(|r| r.make())
            .filter(|s| s.environments().contains(init.environment))
            .collect();
        seed_order::order(enabled)?
    } else {
        Vec::new()
    };
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
    report.health = run_checks(init, &prepared, &mut *session, Some(&facts)).await?;
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
            report.seeders = prepared
                .seeders
                .iter()
                .map(|s| SeederReport {
                    name: s.name().to_owned(),
                    outcome: SeedOutcome::default(),
                    duration: Duration::ZERO,
                    secrets_shown: Vec::new(),
                })
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
        for seeder in &prepared.seeders {
            let mut cx = SeedContext {
                session: &mut *session,
                environment: init.environment,
                secrets: init.secrets.as_ref(),
            };
            seeder.preflight(&mut cx).await?;
            if !seeder.is_seeded(&mut cx).await? {
                return Ok(None);
            }
        }
        Ok(Some((
            plan.applied.len(),
            RunFacts {
                pending_migrations: Some(0),
                seeded: prepared.seeders.iter().map(|s| s.name()).collect(),
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
    // Every seeder's prerequisites, before the first write.
    for seeder in &prepared.seeders {
        let mut cx = SeedContext {
            session: &mut *session,
            environment: init.environment,
            secrets: init.secrets.as_ref(),
        };
        seeder
            .preflight(&mut cx)
            .await
            .map_err(|e| seed_failed(seeder.name(), e))?;
    }

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
    let mut facts = RunFacts {
        pending_migrations: Some(0),
        seeded: Vec::with_capacity(prepared.seeders.len()),
        wrote: !report.migrations.applied.is_empty(),
    };
    for seeder in &prepared.seeders {
        init.interrupt
            .check(&format!("seeder `{}`", seeder.name()))?;
        let outcome = seed_one(init, seeder.as_ref(), session).await?;
        facts.seeded.push(seeder.name());
        facts.wrote |= outcome.outcome.created > 0;
        report.seeders.push(outcome);
    }
    let totals = report.seed_totals();
    report.step(
        "seed",
        started.elapsed(),
        format!(
            "{} seeders: {} created, {} skipped",
            report.seeders.len(),
            totals.created,
            totals.skipped
        ),
    );
    Ok(facts)
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

/// A seeder's own failure, named after it (unless it already is).
fn seed_failed(seeder: &str, error: CoreError) -> CoreError {
    match error {
        e @ CoreError::SeedFailed { .. } => e,
        e => CoreError::SeedFailed {
            seeder: seeder.to_owned(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
    }
}

/// Runs one seeder inside its own transaction.
async fn seed_one(
    init: &Initializer,
    seeder: &dyn Seeder,
    session: &mut dyn Session,
) -> Result<SeederReport, CoreError> {
    let started = Instant::now();
    // The transaction's own failures (a locked database, a lost
    // connection) keep their kind; only the seeder's are SeedFailed.
    session.begin().await?;
    // Secrets are shown only once what they unlock is committed: a failed
    // seeder must not leave the operator a password that was never stored.
    let deferred = DeferredSecrets::default();
    let mut cx = SeedContext {
        session: &mut *session,
        environment: init.environment,
        secrets: &deferred,
    };
    let result = seeder.seed(&mut cx).await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => {
            let _ = session.rollback().await;
            return Err(seed_failed(seeder.name(), error));
        }
    };
    // Secrets are shown before the commit: one nobody saw must not unlock
    // anything, so a failure to show it rolls the seeder back.
    let shown = match deferred.show(init.secrets.as_ref()) {
        Ok(shown) => shown,
        Err((label, e)) => {
            let _ = session.rollback().await;
            return Err(CoreError::SeedFailed {
                seeder: seeder.name().to_owned(),
                message: format!(
                    "the {label} cannot be shown ({e}); nothing was stored. Configure the \
                     secret instead of having it generated, or run with a terminal on stderr"
                ),
                source: None,
            });
        }
    };
    fault::point("seed.before_commit");
    if let Err(e) = session.commit().await {
        let _ = session.rollback().await;
        for label in &shown {
            init.secrets.retract(label);
        }
        return Err(e);
    }
    fault::point("seed.committed");
    if outcome.created > 0 {
        tracing::info!(seeder = seeder.name(), created = outcome.created, "seeded");
    }
    Ok(SeederReport {
        name: seeder.name().to_owned(),
        outcome,
        duration: started.elapsed(),
        secrets_shown: shown,
    })
}

/// Runs every applicable, enabled health check.
pub(crate) async fn run_checks(
    init: &Initializer,
    prepared: &Prepared,
    session: &mut dyn Session,
    facts: Option<&RunFacts>,
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
                run: facts,
            };
            check.check(&mut cx).await.unwrap_or_else(|e| {
                dbinit_core::HealthOutcome::unhealthy(report::ErrorReport::from(&e).message)
            })
        };
        if outcome.status == HealthStatus::Unhealthy {
            tracing::warn!(check = check.name(), detail = %outcome.detail, "health check failed");
        }
        reports.push(HealthReport {
            name: check.name().to_owned(),
            status: outcome.status,
            detail: outcome.detail,
            latency: started.elapsed(),
        });
    }
    Ok(reports)
}

/// Holds the secrets a seeder generates until it has succeeded.
#[derive(Default)]
struct DeferredSecrets(std::sync::Mutex<Vec<(String, String)>>);

impl SecretSink for DeferredSecrets {
    fn show_once(&self, label: &str, secret: &str) -> std::io::Result<()> {
        if let Ok(mut pending) = self.0.lock() {
            pending.push((label.to_owned(), secret.to_owned()));
        }
        Ok(())
    }
}

impl DeferredSecrets {
    /// Shows every held secret; returns their labels, or the first label
    /// that could not be shown.
    fn show(self, sink: &dyn SecretSink) -> Result<Vec<String>, (String, std::io::Error)> {
        let mut shown = Vec::new();
        for (label, secret) in self.0.into_inner().unwrap_or_default() {
            match sink.show_once(&label, &secret) {
                Ok(()) => shown.push(label),
                Err(e) => {
                    for earlier in &shown {
                        sink.retract(earlier);
                    }
                    return Err((label, e));
                }
            }
        }
        Ok(shown)
    }
}
