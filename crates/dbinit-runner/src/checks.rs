//! The built-in health checks: connectivity, migrations, tables, seed data.
//! Registered at the crate root; backends add their own (`sqlite_quick_check`).

use std::time::Instant;

use dbinit_core::{async_trait, CoreError, HealthCheck, HealthContext, HealthOutcome, SeedContext};

/// The name of [`Connectivity`], which the monitor reads to tell an
/// unreachable database from a failing check.
pub(crate) const CONNECTIVITY: &str = "connectivity";

/// A round trip to the database, with its latency.
pub(crate) struct Connectivity;

#[async_trait]
impl HealthCheck for Connectivity {
    fn name(&self) -> &'static str {
        CONNECTIVITY
    }

    async fn check(&self, cx: &mut HealthContext<'_>) -> Result<HealthOutcome, CoreError> {
        let started = Instant::now();
        cx.session.ping().await?;
        Ok(HealthOutcome::healthy(format!(
            "round trip {:.2} ms",
            started.elapsed().as_secs_f64() * 1e3
        )))
    }
}

/// No pending, divergent or missing migrations.
pub(crate) struct MigrationsCurrent;

#[async_trait]
impl HealthCheck for MigrationsCurrent {
    fn name(&self) -> &'static str {
        "migrations_current"
    }

    async fn check(&self, cx: &mut HealthContext<'_>) -> Result<HealthOutcome, CoreError> {
        // Within `init` the migration step has just validated the history.
        let (applied, pending) = match cx.run.and_then(|r| r.pending_migrations) {
            Some(pending) => (None, pending),
            None => {
                let applied = dbinit_core::engine::history(&mut *cx.session).await?;
                let pending = cx.migrations.pending(&applied)?.len();
                (Some(applied.len()), pending)
            }
        };
        Ok(match (pending, applied) {
            (0, Some(n)) => HealthOutcome::healthy(format!("{n} applied, none pending")),
            (0, None) => HealthOutcome::healthy("none pending"),
            (1, _) => HealthOutcome::unhealthy("1 migration pending"),
            (n, _) => HealthOutcome::unhealthy(format!("{n} migrations pending")),
        })
    }
}

/// Every table the schema and the seeders need exists.
pub(crate) struct RequiredTables;

#[async_trait]
impl HealthCheck for RequiredTables {
    fn name(&self) -> &'static str {
        "required_tables"
    }

    async fn check(&self, cx: &mut HealthContext<'_>) -> Result<HealthOutcome, CoreError> {
        if cx.required_tables.is_empty() {
            return Ok(HealthOutcome::disabled("no tables required"));
        }
        let missing = cx.session.missing_tables(cx.required_tables).await?;
        Ok(if missing.is_empty() {
            HealthOutcome::healthy(format!("{} tables present", cx.required_tables.len()))
        } else {
            HealthOutcome::unhealthy(format!("missing: {}", missing.join(", ")))
        })
    }
}

/// Every enabled seeder's data is present.
pub(crate) struct SeedData;

#[async_trait]
impl HealthCheck for SeedData {
    fn name(&self) -> &'static str {
        "seed_data"
    }

    async fn check(&self, cx: &mut HealthContext<'_>) -> Result<HealthOutcome, CoreError> {
        if cx.seeders.is_empty() {
            return Ok(HealthOutcome::disabled("no seeders enabled"));
        }
        // A seeder that completed in this run needs no second look.
        let unproven: Vec<&dyn dbinit_core::Seeder> = cx
            .seeders
            .iter()
            .map(AsRef::as_ref)
            .filter(|s| {
                !cx.run
                    .is_some_and(|r| r.seeded.iter().any(|n| n == s.name()))
            })
            .collect();
        let history = crate::seeding::history(&unproven, &mut *cx.session).await?;
        let mut missing = Vec::new();
        for seeder in unproven {
            let mut seed_cx = SeedContext {
                session: &mut *cx.session,
                environment: cx.environment,
                secrets: &crate::StderrSecretSink,
                progress: &dbinit_core::NoProgress,
            };
            if !crate::seeding::is_done(seeder, &history, &mut seed_cx).await? {
                missing.push(seeder.name());
            }
        }
        Ok(if missing.is_empty() {
            HealthOutcome::healthy(format!("{} seeders' data present", cx.seeders.len()))
        } else {
            HealthOutcome::unhealthy(format!("not seeded: {}", missing.join(", ")))
        })
    }
}
