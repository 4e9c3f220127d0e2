//! `init`, top to bottom:
//!
//! resolve → connect (creating the database if missing) → **lock** →
//! migrate → schema steps → seed → **unlock (on every path)** → health.
//!
//! Each step goes through [`Run::step`], which refuses to start it after
//! an interrupt, times it and records it in the report.
//!
//! A process that finds the lock taken waits for its holder, then verifies
//! the holder's work under a shared hold, in parallel with the other
//! waiters, and takes the lock itself only if work is left: its report has
//! a `verify` step where a holder's has `migrate` and `seed`.
//!
//! Health checks run after the lock is released: they only read, and other
//! processes waiting for the lock should not wait for them too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dbinit_core::{
    engine, fault, registry, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind, InitLock,
    MigrationSet, RunFacts, Session,
};

use crate::context::Context;
use crate::health::{run_checks, Occasion};
use crate::report::{
    self, FallbackReport, InitReport, LockReport, MigrationsReport, Outcome, SeedStatus,
};
use crate::settings::Settings;
use crate::{seeding, RunnerError};

pub(crate) async fn init(settings: &Arc<Settings>) -> Result<InitReport, RunnerError> {
    let started = Instant::now();
    let mut report = InitReport::new(
        settings.url.redacted().to_owned(),
        settings.environment,
        settings.used_default_url,
    );
    let mut result = match settings.fallback_allowed() {
        Ok(()) => run(settings, &settings.url, &mut report).await,
        Err(e) => Err(e),
    };
    if let (Err(primary), Some(fallback)) = (&result, &settings.fallback) {
        // Only an unreachable primary (refused, timed out; never a TLS or
        // certificate failure), before anything was done to it.
        if primary.kind() == ErrorKind::Unreachable && report.steps.is_empty() {
            tracing::warn!(
                primary = %settings.url,
                fallback = %fallback,
                error = %primary,
                "PRIMARY DATABASE UNREACHABLE: USING THE CONFIGURED FALLBACK DATABASE"
            );
            let reason = primary.to_string();
            report = InitReport::new(fallback.redacted().to_owned(), settings.environment, false);
            report.fallback = Some(FallbackReport {
                primary: settings.url.redacted().to_owned(),
                reason,
            });
            result = run(settings, fallback, &mut report).await;
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
            let error = settings.interrupt.explain(error);
            report.error = Some((&error).into());
            Err(RunnerError::new(report, error))
        }
    }
}

/// One `init` of the database at `url`.
async fn run(
    settings: &Arc<Settings>,
    url: &DatabaseUrl,
    report: &mut InitReport,
) -> Result<(), CoreError> {
    let cx = Context::resolve(settings, url)?;
    report.backend = cx.backend.to_owned();
    report.migrations.source = cx.set.origin().to_owned();
    report.seed_files.clone_from(&cx.seed_files);
    let mut run = Run { cx: &cx, report };

    let mut session = run
        .step("connect", Some("connecting"), async |report| {
            let (session, created) = cx.open().await?;
            fault::point("init.connected");
            report.database_created = Some(created);
            let detail = match created {
                DatabaseCreated::Created => "database created",
                DatabaseCreated::Existed => "existing database",
            };
            Ok((session, detail.to_owned()))
        })
        .await?;

    let locked = run
        .step(
            "lock",
            Some("taking the initialization lock"),
            async |report| {
                // Waiting holds nothing: an interruption stops it at once, even
                // when the wait is a statement queued in a pooler.
                let waiting = lock_or_verify(&cx, &mut *session);
                let locked = (cx.settings.interrupt)
                    .unless_interrupted("waiting for the initialization lock", waiting)
                    .await?;
                let lock = match &locked {
                    Locked::Exclusive(lock) => LockReport::from(lock),
                    Locked::Verified(verified) => verified.lock.clone(),
                };
                let detail = lock.describe();
                report.lock = Some(lock);
                Ok((locked, detail))
            },
        )
        .await?;

    let facts = match locked {
        Locked::Verified(verified) => run.verified(verified),
        Locked::Exclusive(lock) => {
            fault::point("init.locked");
            cx.holding(&mut *session, lock, async |session| {
                let done = run.locked_steps(session).await;
                fault::point("init.before_unlock");
                done
            })
            .await?
        }
    };

    let failures = run
        .step("health", None, async |report| {
            report.health = run_checks(&cx, &mut *session, Occasion::Init(&facts)).await?;
            let failures = report::failures(&report.health);
            let detail = format!(
                "{} checks, {} unhealthy",
                report.health.len(),
                failures.len()
            );
            Ok((failures, detail))
        })
        .await?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Unhealthy { checks: failures })
    }
}

/// A run of `init` in progress: its context and the report it fills.
struct Run<'a> {
    cx: &'a Context,
    report: &'a mut InitReport,
}

impl Run<'_> {
    /// Runs one step: refuses to start it after an interrupt when it is
    /// `interruptible` (what it is doing, to say so), times it, and records
    /// it with the detail it returns. A failed step is not recorded: the
    /// report's error is. Steps whose parts check for themselves (each
    /// seeder) or that only read once the work is committed (health) are
    /// not interruptible here.
    async fn step<T>(
        &mut self,
        name: &str,
        interruptible: Option<&str>,
        work: impl AsyncFnOnce(&mut InitReport) -> Result<(T, String), CoreError>,
    ) -> Result<T, CoreError> {
        if let Some(doing) = interruptible {
            self.cx.settings.interrupt.check(doing)?;
        }
        let started = Instant::now();
        let (value, detail) = work(&mut *self.report).await?;
        self.report.step(name, started.elapsed(), detail);
        Ok(value)
    }

    /// Everything under the exclusive lock: migrate, schema steps, seed.
    async fn locked_steps(&mut self, session: &mut dyn Session) -> Result<RunFacts, CoreError> {
        let cx = self.cx;
        seeding::preflight(cx, &cx.seeders(), session).await?;

        self.step("migrate", Some("migrating"), async |report| {
            let migrations = &mut report.migrations;
            migrate(&cx.set, session, migrations).await?;
            let detail = format!(
                "{} applied, {} already applied",
                migrations.applied.len(),
                migrations.already_applied
            );
            Ok(((), detail))
        })
        .await?;

        let mut steps: Vec<_> = registry::schema_steps()?.iter().map(|r| r.make()).collect();
        steps.sort_by(|a, b| (a.order(), a.name()).cmp(&(b.order(), b.name())));
        for step in steps {
            self.step(step.name(), None, async |_| {
                session.begin().await?;
                match step.apply(session).await {
                    Ok(outcome) => session.commit().await.map(|()| ((), outcome.detail)),
                    Err(e) => {
                        let _ = session.rollback().await;
                        Err(e)
                    }
                }
            })
            .await?;
        }

        self.step("seed", None, async |report| {
            seeding::run(cx, &cx.seeders(), session, false, &mut report.seeders).await?;
            let totals = report.seed_totals();
            let detail = format!(
                "{} seeders: {} created, {} updated, {} skipped",
                report.seeders.len(),
                totals.created,
                totals.updated,
                totals.skipped
            );
            Ok(((), detail))
        })
        .await?;

        Ok(RunFacts {
            pending_migrations: Some(0),
            seeded: cx.seeder_names(),
            wrote: !self.report.migrations.applied.is_empty() || self.report.seed_totals().wrote(),
        })
    }

    /// Records what a waiter verified: another process did the work.
    fn verified(&mut self, verified: Verified) -> RunFacts {
        let cx = self.cx;
        self.report.migrations.already_applied = verified.applied;
        self.report.seeders = (cx.seeders.iter())
            .map(|s| seeding::report(s.as_ref(), SeedStatus::Verified))
            .collect();
        self.report.step(
            "verify",
            verified.took,
            format!(
                "another process initialized: {} migrations applied, {} seeders seeded",
                verified.applied,
                cx.seeders.len()
            ),
        );
        RunFacts {
            pending_migrations: Some(0),
            seeded: cx.seeder_names(),
            wrote: false,
        }
    }
}

/// How [`lock_or_verify`] ended.
enum Locked {
    /// This process holds the lock: it does the work.
    Exclusive(InitLock),
    /// Another process did the work; this one verified it.
    Verified(Verified),
}

/// What a waiter found under its shared hold.
struct Verified {
    /// The shared hold, released since.
    lock: LockReport,
    /// Applied migrations.
    applied: usize,
    /// How long verifying took.
    took: Duration,
}

/// Takes the lock. A process that finds it taken waits for the holder, then
/// verifies under a shared hold that nothing is left to do; only if
/// something is does it come back for the lock, exclusively. Sixteen
/// processes starting together thus do the work once and check it side by
/// side.
async fn lock_or_verify(cx: &Context, session: &mut dyn Session) -> Result<Locked, CoreError> {
    let started = Instant::now();
    let timeout = cx.settings.lock_timeout;
    let lock = session.acquire_or_share_init_lock(timeout).await?;
    if !lock.shared {
        return Ok(Locked::Exclusive(lock));
    }
    let verifying = Instant::now();
    let verified = verify(cx, session).await;
    let took = verifying.elapsed();
    let held = LockReport::from(&lock);
    session.release_init_lock(lock).await?;
    match verified? {
        Some(applied) => Ok(Locked::Verified(Verified {
            lock: held,
            applied,
            took,
        })),
        None => {
            match &held.waited_for {
                Some(other) => {
                    tracing::info!(holder = %other, "work is left after the other process; taking the lock")
                }
                None => tracing::info!("work is left; taking the lock"),
            }
            let left = timeout.saturating_sub(started.elapsed());
            Ok(Locked::Exclusive(session.acquire_init_lock(left).await?))
        }
    }
}

/// Read-only: whether the database is already what this run would make it:
/// every migration applied, every seeder's data present, and no schema
/// step (they have no read-only check) registered. Returns the number of
/// applied migrations. Errors other than an interrupt read as "work left":
/// the exclusive path reports them properly.
async fn verify(cx: &Context, session: &mut dyn Session) -> Result<Option<usize>, CoreError> {
    let result: Result<_, CoreError> = async {
        if !registry::schema_steps()?.is_empty() {
            return Ok(None);
        }
        let plan = engine::plan(session, &cx.set).await?;
        if !plan.pending.is_empty() {
            return Ok(None);
        }
        let seeders = cx.seeders();
        seeding::preflight(cx, &seeders, session).await?;
        let history = seeding::history(&seeders, session).await?;
        for seeder in seeders {
            if !seeding::is_done(seeder, &history, &mut cx.seed_context(session)).await? {
                return Ok(None);
            }
        }
        Ok(Some(plan.applied.len()))
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
