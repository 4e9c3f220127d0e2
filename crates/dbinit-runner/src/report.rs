//! Typed reports, for humans (see the runner's renderer) and machines (serde).
//!
//! Reports hold only redacted URLs: they are safe to print, log and store.

use std::time::Duration;

use serde::{Serialize, Serializer};

use dbinit_core::{
    bounded, AppliedMigration, CoreError, DatabaseCreated, Environment, ErrorKind, HealthStatus,
    InitLock, SeedOutcome, MAX_MESSAGE_CHARS,
};

/// Serializes a duration as fractional milliseconds.
pub fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// Whether the run finished with the database ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything succeeded and every health check passed.
    Ready,
    /// The run stopped at an error; see [`InitReport::error`].
    Failed,
}

/// One step of the pipeline and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Step name: `connect`, `lock`, `migrate`, `seed`, `health`, ...
    pub name: String,
    /// Wall time.
    #[serde(serialize_with = "millis", rename = "duration_ms")]
    pub duration: Duration,
    /// One-line summary.
    pub detail: String,
}

/// The migration step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrationsReport {
    /// Where the migration set came from.
    pub source: String,
    /// Migrations applied in this run.
    pub applied: Vec<AppliedMigration>,
    /// Migrations that were already applied before this run.
    pub already_applied: usize,
    /// Migrations still pending (after the run; non-zero only on failure or status).
    pub pending: Vec<String>,
    /// Things worth knowing that are not errors (an empty migration, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What became of a seeder in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedStatus {
    /// It ran and committed.
    Ran,
    /// Skipped without touching its tables: the seed history records its
    /// version and input.
    Recorded,
    /// A converging seeder whose check found its data: nothing to write,
    /// no transaction opened.
    Present,
    /// Another process seeded; this one checked that it had.
    Verified,
    /// A dry run: it ran and was rolled back.
    DryRun,
}

/// One seeder.
#[derive(Debug, Clone, Serialize)]
pub struct SeederReport {
    /// Seeder name (a data file's is `<directory>/<path>`).
    pub name: String,
    /// Whether it ran.
    pub status: SeedStatus,
    /// Its version, for a seeder that runs once per version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The checksum of its input (a data file's content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Records created, updated and skipped (what would be, in a dry run).
    #[serde(flatten)]
    pub outcome: SeedOutcome,
    /// Wall time, inside its transaction.
    #[serde(serialize_with = "millis", rename = "duration_ms")]
    pub duration: Duration,
    /// Labels of the secrets it generated and showed once (never the
    /// secrets themselves).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets_shown: Vec<String>,
}

/// One health check.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// Check name.
    pub name: String,
    /// Verdict.
    pub status: HealthStatus,
    /// What was found.
    pub detail: String,
    /// How long the check took.
    #[serde(serialize_with = "millis", rename = "latency_ms")]
    pub latency: Duration,
}

/// The error that stopped a run, as shown in reports.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    /// Stable kind.
    pub kind: ErrorKind,
    /// The message (no secrets: URLs are redacted at the source).
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<&CoreError> for ErrorReport {
    /// Every [`CoreError`] message already says what its cause said (the
    /// cause is printed once); the source chain stays for programs.
    fn from(err: &CoreError) -> Self {
        ErrorReport {
            kind: err.kind(),
            message: bounded(&err.to_string(), MAX_MESSAGE_CHARS),
            hint: err.hint(),
        }
    }
}

/// The primary database was unreachable and the configured fallback was used.
#[derive(Debug, Clone, Serialize)]
pub struct FallbackReport {
    /// The primary database, redacted.
    pub primary: String,
    /// Why it was given up.
    pub reason: String,
}

/// How the initialization lock was held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockReport {
    /// The lock and its strategy: `advisory lock 42`, `lease dbinit_lock
    /// (ttl 30s), because …`, a lock file's path.
    pub name: String,
    /// `exclusive`: this process did the work. `shared`: another process
    /// did it while this one waited, and this one verified it.
    pub mode: &'static str,
    /// How long this process waited for it.
    #[serde(serialize_with = "millis", rename = "waited_ms")]
    pub waited: Duration,
    /// Who held it meanwhile, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_for: Option<String>,
}

impl From<&InitLock> for LockReport {
    fn from(lock: &InitLock) -> Self {
        LockReport {
            name: lock.name.clone(),
            mode: if lock.shared { "shared" } else { "exclusive" },
            waited: lock.waited,
            waited_for: lock.waited_for.clone(),
        }
    }
}

impl LockReport {
    /// `advisory lock 42, shared (waited 3.1 ms for pid 7 (dbinit))`.
    pub fn describe(&self) -> String {
        let how = if self.mode == "shared" {
            "shared"
        } else {
            "held"
        };
        let waited_for = (self.waited_for.as_deref())
            .map(|h| format!(" for {h}"))
            .unwrap_or_default();
        format!(
            "{}, {how} (waited {:.1} ms{waited_for})",
            self.name,
            self.waited.as_secs_f64() * 1e3
        )
    }
}

/// Everything an `init` run did. Also returned (partially filled) on failure.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The database, redacted.
    pub database: String,
    /// The backend that served it (empty if none was chosen).
    pub backend: String,
    /// The environment.
    pub environment: Environment,
    /// Whether `DATABASE_URL` was unset and the embedded default was used.
    pub used_default_url: bool,
    /// Set when the primary was unreachable and the fallback was used: this
    /// run's `database` is the fallback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackReport>,
    /// Whether the database had to be created (`None` if not reached).
    pub database_created: Option<DatabaseCreated>,
    /// The initialization lock, once held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockReport>,
    /// The pipeline's steps, in order.
    pub steps: Vec<StepReport>,
    /// The migration step.
    pub migrations: MigrationsReport,
    /// The seeders, in the order they ran.
    pub seeders: Vec<SeederReport>,
    /// The data files, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_files: Option<SeedFilesReport>,
    /// The health checks.
    pub health: Vec<HealthReport>,
    /// Total wall time.
    #[serde(serialize_with = "millis", rename = "total_ms")]
    pub total: Duration,
    /// Ready or failed.
    pub outcome: Outcome,
    /// The error, when failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

impl InitReport {
    /// An empty report for a run that is about to start.
    pub fn new(database: String, environment: Environment, used_default_url: bool) -> Self {
        InitReport {
            database,
            backend: String::new(),
            environment,
            used_default_url,
            fallback: None,
            database_created: None,
            lock: None,
            steps: Vec::new(),
            migrations: MigrationsReport::default(),
            seeders: Vec::new(),
            seed_files: None,
            health: Vec::new(),
            total: Duration::ZERO,
            outcome: Outcome::Failed,
            error: None,
        }
    }

    /// Records a finished step.
    pub fn step(&mut self, name: &str, duration: Duration, detail: impl Into<String>) {
        self.steps.push(StepReport {
            name: name.to_owned(),
            duration,
            detail: detail.into(),
        });
    }

    /// Records created and skipped across all seeders.
    pub fn seed_totals(&self) -> SeedOutcome {
        self.seeders
            .iter()
            .fold(SeedOutcome::default(), |acc, s| acc + s.outcome)
    }
}

/// Whether one seeder's data is present (read-only `status`).
#[derive(Debug, Clone, Serialize)]
pub struct SeedState {
    /// Seeder name.
    pub name: String,
    /// Whether its data is present.
    pub seeded: bool,
}

/// Where data files came from, and which of their directories loaded.
#[derive(Debug, Clone, Serialize)]
pub struct SeedFilesReport {
    /// A directory, or `embedded:<name>`.
    pub origin: String,
    /// The directories that loaded (`common`, and the environment's).
    pub directories: Vec<String>,
}

/// What `seed` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// The database, password redacted.
    pub database: String,
    /// The backend's registered name.
    pub backend: String,
    /// The environment whose seeders ran.
    pub environment: Environment,
    /// Everything was rolled back.
    pub dry_run: bool,
    /// The data files, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_files: Option<SeedFilesReport>,
    /// Every seeder selected, in run order.
    pub seeders: Vec<SeederReport>,
    /// Wall time.
    #[serde(serialize_with = "millis", rename = "total_ms")]
    pub total: Duration,
}

impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "database  {} ({}, {})",
            self.database, self.backend, self.environment
        )?;
        seeder_lines(f, self.seed_files.as_ref(), &self.seeders)?;
        let totals = self
            .seeders
            .iter()
            .fold(SeedOutcome::default(), |acc, s| acc + s.outcome);
        let verb = if self.dry_run {
            "dry run, rolled back: would have"
        } else {
            "seeded:"
        };
        writeln!(
            f,
            "{verb} {} created, {} updated, {} skipped in {}",
            totals.created,
            totals.updated,
            totals.skipped,
            ms(self.total)
        )
    }
}

/// One line per seeder (and the data files' origin), for the reports.
fn seeder_lines(
    f: &mut impl std::fmt::Write,
    files: Option<&SeedFilesReport>,
    seeders: &[SeederReport],
) -> std::fmt::Result {
    if let Some(files) = files {
        let dirs = if files.directories.is_empty() {
            "none for this environment".to_owned()
        } else {
            files.directories.join(", ")
        };
        writeln!(f, "  seeds      {} ({dirs})", files.origin)?;
    }
    for s in seeders {
        let counts = format!(
            "{} created, {} updated, {} skipped",
            s.outcome.created, s.outcome.updated, s.outcome.skipped
        );
        match s.status {
            SeedStatus::Ran => writeln!(
                f,
                "  seeded     {:>9}  {}: {counts}",
                ms(s.duration),
                s.name
            )?,
            SeedStatus::DryRun => writeln!(
                f,
                "  would seed {:>9}  {}: {counts} (rolled back)",
                ms(s.duration),
                s.name
            )?,
            SeedStatus::Recorded => writeln!(
                f,
                "  recorded              {}: unchanged since it ran (version {})",
                s.name,
                s.version.unwrap_or_default()
            )?,
            SeedStatus::Verified => writeln!(f, "  verified              {}", s.name)?,
            SeedStatus::Present => {
                writeln!(f, "  present               {}: its data is there", s.name)?
            }
        }
        for label in &s.secrets_shown {
            writeln!(f, "                        {label}: shown once on stderr")?;
        }
    }
    Ok(())
}

/// What `status` found. Produced without changing anything.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The database, redacted.
    pub database: String,
    /// The backend that served it.
    pub backend: String,
    /// Applied (from the history table) and pending migrations.
    pub migrations: MigrationsReport,
    /// Seed state per seeder, in run order.
    pub seeders: Vec<SeedState>,
}

/// A migration `init` would apply, with its SQL.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedMigration {
    /// `V{n}__{name}`.
    pub migration: String,
    /// Where it was read from, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Whether it runs inside a transaction with its history row.
    pub in_transaction: bool,
    /// The SQL it would run.
    pub sql: String,
}

/// What `init` would do, found under the init lock without changing anything.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// The database, redacted.
    pub database: String,
    /// The backend that served it.
    pub backend: String,
    /// Where the migration set came from.
    pub source: String,
    /// How many migrations are applied.
    pub already_applied: usize,
    /// The migrations it would apply, in order.
    pub pending: Vec<PlannedMigration>,
    /// The seeders it would run, in order, and whether their data is present.
    pub seeders: Vec<SeedState>,
}

/// What `rollback`, `baseline` or `repair` changed.
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleReport {
    /// The database, redacted.
    pub database: String,
    /// The backend that served it.
    pub backend: String,
    /// `rollback`, `baseline` or `repair`.
    pub action: &'static str,
    /// The migrations rolled back (newest first), baselined, or repaired.
    pub migrations: Vec<AppliedMigration>,
    /// For `repair`: the checksum change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<dbinit_core::engine::Repaired>,
}

/// What `health` found.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSummary {
    /// The database, redacted.
    pub database: String,
    /// The backend that served it.
    pub backend: String,
    /// Every check combined ([`HealthStatus::overall`]).
    pub status: HealthStatus,
    /// One entry per check.
    pub checks: Vec<HealthReport>,
}

impl HealthSummary {
    /// The names and details of the unhealthy checks.
    pub fn failures(&self) -> Vec<String> {
        failures(&self.checks)
    }
}

/// `name: detail` for each unhealthy check.
pub fn failures(checks: &[HealthReport]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.status == HealthStatus::Unhealthy)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// One line per health check, as the CLI prints them.
pub fn health_lines(out: &mut impl std::fmt::Write, checks: &[HealthReport]) -> std::fmt::Result {
    for c in checks {
        writeln!(
            out,
            "  check      {:>9}  {}: {} ({})",
            ms(c.latency),
            c.name,
            c.status.as_str(),
            c.detail
        )?;
    }
    Ok(())
}

/// The human rendering the CLI prints: database, steps, migrations,
/// seeders (and the labels of secrets shown), checks, outcome.
impl std::fmt::Display for InitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let created = match self.database_created {
            Some(DatabaseCreated::Created) => ", created",
            _ => "",
        };
        writeln!(
            f,
            "database  {} ({}{created}, {})",
            self.database, self.backend, self.environment
        )?;
        if let Some(fallback) = &self.fallback {
            writeln!(
                f,
                "WARNING   the primary database {} was unreachable ({});\n          \
                 THIS RUN USED THE FALLBACK DATABASE ABOVE",
                fallback.primary, fallback.reason
            )?;
        }
        if self.used_default_url {
            writeln!(
                f,
                "          DATABASE_URL is not set: this is the embedded default"
            )?;
        }
        for step in &self.steps {
            writeln!(
                f,
                "  {:<10} {:>9}  {}",
                step.name,
                ms(step.duration),
                step.detail
            )?;
        }
        for m in &self.migrations.applied {
            let took = m.duration.map(ms).unwrap_or_default();
            writeln!(f, "  applied    {:>9}  {}", took, m.file_stem())?;
        }
        for name in &self.migrations.pending {
            writeln!(f, "  pending               {name}")?;
        }
        for note in &self.migrations.notes {
            writeln!(f, "  note                  {note}")?;
        }
        seeder_lines(f, self.seed_files.as_ref(), &self.seeders)?;
        health_lines(f, &self.health)?;
        match self.outcome {
            Outcome::Ready => writeln!(f, "ready in {}", ms(self.total)),
            Outcome::Failed => writeln!(f, "failed after {}", ms(self.total)),
        }
    }
}
