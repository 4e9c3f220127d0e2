//! [`Seeder`]: idempotent initial data, run in dependency order.

use async_trait::async_trait;
use serde::Serialize;

use crate::load::LoadOutcome;
use crate::{CoreError, Environment, Environments, Session};

/// What a seeder did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeedOutcome {
    /// Records written in this run.
    pub created: u64,
    /// Existing records changed in this run (a data file's edited rows).
    pub updated: u64,
    /// Records that already existed and were left alone.
    pub skipped: u64,
}

impl SeedOutcome {
    /// `n` records created.
    pub fn created(n: u64) -> Self {
        SeedOutcome {
            created: n,
            ..Self::default()
        }
    }

    /// `n` records already present.
    pub fn skipped(n: u64) -> Self {
        SeedOutcome {
            skipped: n,
            ..Self::default()
        }
    }

    /// Whether the run wrote anything.
    pub fn wrote(&self) -> bool {
        self.created + self.updated > 0
    }
}

impl From<LoadOutcome> for SeedOutcome {
    fn from(load: LoadOutcome) -> Self {
        SeedOutcome {
            created: load.created,
            updated: load.updated,
            skipped: load.unchanged,
        }
    }
}

impl std::ops::AddAssign for SeedOutcome {
    fn add_assign(&mut self, rhs: SeedOutcome) {
        self.created += rhs.created;
        self.updated += rhs.updated;
        self.skipped += rhs.skipped;
    }
}

impl std::ops::Add for SeedOutcome {
    type Output = SeedOutcome;
    fn add(mut self, rhs: SeedOutcome) -> SeedOutcome {
        self += rhs;
        self
    }
}

/// When a seeder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedPolicy {
    /// On every run: [`Seeder::is_seeded`] decides, so data deleted by hand
    /// comes back. The default.
    Converge,
    /// Once per version and input ([`Seeder::checksum`]): skipped without
    /// touching its tables while the seed history records both, re-run
    /// when either changes. A seeder added in a later release runs on
    /// databases seeded long before.
    Once {
        /// Bump it to run the seeder again.
        version: u32,
    },
}

/// Where long seeding work reports how far it got: a progress bar on a
/// terminal, periodic lines otherwise, nothing in `--json` mode.
pub trait Progress: Send + Sync {
    /// `label` (a data file) has loaded `rows` rows, `bytes` of its
    /// `total_bytes` input.
    fn update(&self, label: &str, rows: u64, bytes: u64, total_bytes: u64);
    /// `label` is done.
    fn finish(&self, label: &str, rows: u64) {
        let _ = (label, rows);
    }
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: &str, _: u64, _: u64, _: u64) {}
}

/// Where a seeder shows a secret it generated (an initial password), once.
///
/// Never tracing: logs are kept and shipped; a terminal is not. The runner
/// shows a secret after the seeder succeeded and before its transaction
/// commits: a secret that could not be shown is never stored, and one whose
/// transaction then fails is [retracted](SecretSink::retract).
pub trait SecretSink: Send + Sync {
    /// Shows `secret` to the operator, labelled.
    ///
    /// # Errors
    ///
    /// When nobody can see it (a closed or full stream, `/dev/null`): the
    /// runner then rolls back what the secret belongs to.
    fn show_once(&self, label: &str, secret: &str) -> std::io::Result<()>;

    /// Says that the secret shown under `label` was not stored after all.
    fn retract(&self, label: &str) {
        let _ = label;
    }
}

/// What a seeder receives: the session (inside a transaction the runner
/// opened), the environment, where to show generated secrets, and where
/// to report progress.
pub struct SeedContext<'a> {
    /// The session, inside the seeder's transaction.
    pub session: &'a mut dyn Session,
    /// The environment being initialized.
    pub environment: Environment,
    /// Where to show generated secrets.
    pub secrets: &'a dyn SecretSink,
    /// Where to report progress on long loads.
    pub progress: &'a dyn Progress,
}

impl SeedContext<'_> {
    /// Whether `sql` returns a row: the usual body of [`Seeder::is_seeded`].
    ///
    /// # Errors
    ///
    /// The query's.
    pub async fn exists(&mut self, sql: &str, params: &[crate::Value]) -> Result<bool, CoreError> {
        Ok(!self.session.query(sql, params).await?.is_empty())
    }

    /// Runs `sql` unless `seeder` says its data is present: the usual body
    /// of [`Seeder::seed`]. Reports one record skipped, or the rows written.
    ///
    /// # Errors
    ///
    /// The check's or the statement's.
    pub async fn insert_unless_seeded(
        &mut self,
        seeder: &dyn Seeder,
        sql: &str,
        params: &[crate::Value],
    ) -> Result<SeedOutcome, CoreError> {
        if seeder.is_seeded(self).await? {
            return Ok(SeedOutcome::skipped(1));
        }
        Ok(SeedOutcome::created(
            self.session.execute(sql, params).await?,
        ))
    }
}

/// Initial data. Must be idempotent: a second run creates nothing.
#[async_trait]
pub trait Seeder: Send + Sync + 'static {
    /// Unique name; other seeders refer to it in [`Seeder::depends_on`],
    /// and the seed history records it.
    fn name(&self) -> &str;

    /// Seeders that must run first.
    fn depends_on(&self) -> &'static [&'static str] {
        &[]
    }

    /// Environments this seeder runs in.
    fn environments(&self) -> Environments {
        Environments::ALL
    }

    /// When it runs: on every start ([`SeedPolicy::Converge`], the
    /// default), or once per version and input ([`SeedPolicy::Once`]).
    fn policy(&self) -> SeedPolicy {
        SeedPolicy::Converge
    }

    /// A checksum of the seeder's input (the data it loads), recorded in
    /// the seed history; with [`SeedPolicy::Once`], a new one re-runs the
    /// seeder.
    fn checksum(&self) -> Option<String> {
        None
    }

    /// Tables the seeder writes; the "required tables" health check expects them.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks, before the run changes anything, that this seeder will be able
    /// to do its work: configuration it needs, secrets it must not generate.
    /// Runs under the initialization lock, before migrations, so tables may
    /// not exist yet. Read-only. The default has nothing to check.
    ///
    /// # Errors
    ///
    /// What is missing; the run stops with nothing written.
    async fn preflight(&self, cx: &mut SeedContext<'_>) -> Result<(), CoreError> {
        let _ = cx;
        Ok(())
    }

    /// Whether this seeder's data is present. Read-only. With
    /// [`SeedPolicy::Once`] the seed history answers instead.
    async fn is_seeded(&self, cx: &mut SeedContext<'_>) -> Result<bool, CoreError>;

    /// Writes what is missing. Runs inside a transaction that the runner
    /// commits on `Ok` and rolls back on `Err`.
    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError>;
}
