//! Running seeders, each in its own transaction, with the seed history:
//! a [`SeedPolicy::Once`] seeder whose version and input are recorded is
//! skipped without touching its tables; any other runs, and its history
//! row commits with its data (or neither does).

use std::time::{Duration, Instant};

use crate::report::{SeedStatus, SeederReport};
use crate::seed_history::SeedHistory;
use dbinit_core::{
    fault, CoreError, SecretSink, SeedContext, SeedOutcome, SeedPolicy, Seeder, Session,
};

use crate::context::Context;

/// Whether `seeder` has nothing to do: the history records its version
/// and input ([`SeedPolicy::Once`]), or its own check finds its data
/// ([`SeedPolicy::Converge`]). Read-only.
pub(crate) async fn is_done(
    seeder: &dyn Seeder,
    history: &SeedHistory,
    cx: &mut SeedContext<'_>,
) -> Result<bool, CoreError> {
    match seeder.policy() {
        SeedPolicy::Once { .. } => Ok(history.is_current(seeder)),
        SeedPolicy::Converge => seeder.is_seeded(cx).await,
    }
}

fn is_once(seeder: &dyn Seeder) -> bool {
    matches!(seeder.policy(), SeedPolicy::Once { .. })
}

/// The seed history, read only when a once-per-version seeder needs it:
/// a start without one spares the query (converging seeders may still
/// record).
pub(crate) async fn history(
    seeders: &[&dyn Seeder],
    session: &mut dyn Session,
) -> Result<SeedHistory, CoreError> {
    if seeders.iter().any(|s| is_once(*s)) {
        SeedHistory::load(session).await
    } else {
        Ok(SeedHistory::default())
    }
}

/// Every seeder's prerequisites, before the first write.
pub(crate) async fn preflight(
    cx: &Context,
    seeders: &[&dyn Seeder],
    session: &mut dyn Session,
) -> Result<(), CoreError> {
    for seeder in seeders {
        seeder
            .preflight(&mut cx.seed_context(session))
            .await
            .map_err(|e| failed(seeder.name(), e))?;
    }
    Ok(())
}

/// Runs `seeders` in order, each in its own transaction, adding each one's
/// report to `reports` as it ends. A `dry_run` runs them all in one
/// transaction (later seeders see what earlier ones would write) that it
/// rolls back, and shows no secret: the report says what would be written.
pub(crate) async fn run(
    cx: &Context,
    seeders: &[&dyn Seeder],
    session: &mut dyn Session,
    dry_run: bool,
    reports: &mut Vec<SeederReport>,
) -> Result<(), CoreError> {
    if !dry_run {
        return run_each(cx, seeders, session, false, reports).await;
    }
    session.begin().await?;
    let result = run_each(cx, seeders, session, true, reports).await;
    let rolled_back = session.rollback().await;
    result.and(rolled_back)
}

async fn run_each(
    cx: &Context,
    seeders: &[&dyn Seeder],
    session: &mut dyn Session,
    dry_run: bool,
    reports: &mut Vec<SeederReport>,
) -> Result<(), CoreError> {
    let mut history = history(seeders, session).await?;
    for seeder in seeders {
        cx.settings
            .interrupt
            .check(&format!("seeder `{}`", seeder.name()))?;
        if history.is_current(*seeder) {
            reports.push(report(*seeder, SeedStatus::Recorded));
            continue;
        }
        // A converging seeder whose data is there needs no transaction:
        // under the lock, nobody else writes between the check and now.
        let present = !is_once(*seeder)
            && (seeder.is_seeded(&mut cx.seed_context(session)).await)
                .map_err(|e| failed(seeder.name(), e))?;
        if present {
            reports.push(report(*seeder, SeedStatus::Present));
            continue;
        }
        reports.push(seed_one(cx, *seeder, session, &mut history, dry_run).await?);
    }
    Ok(())
}

/// A report for a seeder that did not run.
pub(crate) fn report(seeder: &dyn Seeder, status: SeedStatus) -> SeederReport {
    SeederReport {
        name: seeder.name().to_owned(),
        status,
        version: match seeder.policy() {
            SeedPolicy::Once { version } => Some(version),
            SeedPolicy::Converge => None,
        },
        checksum: seeder.checksum(),
        outcome: SeedOutcome::default(),
        duration: Duration::ZERO,
        secrets_shown: Vec::new(),
    }
}

/// A seeder's own failure, named after it (unless it already is).
pub(crate) fn failed(seeder: &str, error: CoreError) -> CoreError {
    match error {
        e @ CoreError::SeedFailed { .. } => e,
        e => CoreError::SeedFailed {
            seeder: seeder.to_owned(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
    }
}

/// Runs one seeder inside its own transaction (a dry run's is the
/// caller's) and records it in the history (a converging seeder only when
/// it wrote, or was never recorded: a no-op start writes nothing).
async fn seed_one(
    cx: &Context,
    seeder: &dyn Seeder,
    session: &mut dyn Session,
    history: &mut SeedHistory,
    dry_run: bool,
) -> Result<SeederReport, CoreError> {
    let recorded = history.get(seeder.name()).is_some();
    let started = Instant::now();
    // The transaction's own failures (a locked database, a lost
    // connection) keep their kind; only the seeder's are SeedFailed.
    if !dry_run {
        session.begin().await?;
    }
    // Secrets are shown only once what they unlock is committed: a failed
    // seeder must not leave the operator a password that was never stored.
    let deferred = DeferredSecrets::default();
    let mut seed_cx = SeedContext {
        secrets: &deferred,
        ..cx.seed_context(session)
    };
    let outcome = match seeder.seed(&mut seed_cx).await {
        Ok(outcome) => outcome,
        Err(error) => {
            if !dry_run {
                let _ = session.rollback().await;
            }
            return Err(failed(seeder.name(), error));
        }
    };
    let mut done = SeederReport {
        outcome,
        ..report(seeder, SeedStatus::Ran)
    };
    if dry_run {
        done.status = SeedStatus::DryRun;
        done.duration = started.elapsed();
        return Ok(done);
    }
    if is_once(seeder) || outcome.wrote() || !recorded {
        let record = history
            .record(session, seeder, cx.settings.environment, outcome)
            .await;
        if let Err(e) = record {
            let _ = session.rollback().await;
            return Err(e);
        }
    }
    // Secrets are shown before the commit: one nobody saw must not unlock
    // anything, so a failure to show it rolls the seeder back.
    let shown = match deferred.show(cx.settings.secrets.as_ref()) {
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
            cx.settings.secrets.retract(label);
        }
        return Err(e);
    }
    history.committed();
    fault::point("seed.committed");
    if outcome.wrote() {
        tracing::info!(
            seeder = seeder.name(),
            created = outcome.created,
            updated = outcome.updated,
            "seeded"
        );
    }
    done.duration = started.elapsed();
    done.secrets_shown = shown;
    Ok(done)
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
