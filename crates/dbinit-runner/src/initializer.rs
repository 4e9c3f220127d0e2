//! [`Initializer`]: the builder for one call that makes the database ready.

use std::sync::Arc;
use std::time::Duration;

use crate::report::{
    HealthSummary, InitReport, LifecycleReport, PlanReport, SeedReport, StatusReport,
};
use dbinit_core::engine::RollbackTarget;
use dbinit_core::{
    ConnectOptions, CoreError, DatabaseUrl, DependencyCheck, Environment, MigrationSet,
    MigrationSets, Progress, SecretSink,
};
use dbinit_datafiles::SeedFiles;

use crate::lifecycle::{self, SeedOptions};
use crate::settings::{self, Settings};
use crate::{pipeline, Interrupt, RunnerError};

/// Makes a database ready: connect, create if missing, lock, migrate, seed,
/// check. Cheap when the database is already ready, so call it on every start.
///
/// # Examples
///
/// ```no_run
/// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
/// use dbinit_runner::Initializer;
///
/// dbinit_runner::link_builtin_plugins();
/// let report = Initializer::new("sqlite://data/app.db".parse()?)
///     .lock_timeout(std::time::Duration::from_secs(30))
///     .run()
///     .await?;
/// println!("ready in {:?}", report.total);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Initializer {
    settings: Arc<Settings>,
}

impl std::fmt::Debug for Initializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initializer")
            .field("url", &self.settings.url)
            .field("environment", &self.settings.environment)
            .field("migrations", &self.settings.migrations)
            .field("lock_timeout", &self.settings.lock_timeout)
            .field("seed", &self.settings.seed)
            .field("fallback", &self.settings.fallback)
            .finish_non_exhaustive()
    }
}

impl Initializer {
    /// An initializer for `url` with defaults: development environment, no
    /// migrations (give it yours), a 60 s lock timeout, seeding on (the
    /// seeders your binary links), every health check.
    pub fn new(url: DatabaseUrl) -> Self {
        Initializer {
            settings: Arc::new(Settings::new(url)),
        }
    }

    /// An initializer configured from the environment by exactly the rules
    /// the CLI follows, so that a service's own startup need not copy them:
    ///
    /// - the URL is `DATABASE_URL`; unset, it is `default_url` (said in the
    ///   log and the report); set but empty or not UTF-8, an error — never
    ///   the default;
    /// - the environment is `DBINIT_ENV` (`development` when unset);
    ///   production refuses the default URL;
    /// - `DBINIT_FALLBACK_URL`, when set, is the fallback (refused in
    ///   production when the run starts).
    ///
    /// It reads the process environment only; load `.env` first if you use
    /// one (`dbinit_runner::cli::load_dotenv`).
    ///
    /// # Errors
    ///
    /// An invalid URL (exit code 10 in the CLI) or `DBINIT_ENV` (13).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
    /// dbinit_runner::link_builtin_plugins();
    /// let report = dbinit_runner::Initializer::from_env("sqlite://data/app.db")?
    ///     .run()
    ///     .await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    pub fn from_env(default_url: &str) -> Result<Self, CoreError> {
        let environment = match std::env::var("DBINIT_ENV") {
            Ok(value) => value.parse().map_err(|reason| CoreError::InvalidConfig {
                setting: "DBINIT_ENV".to_owned(),
                reason,
            })?,
            Err(std::env::VarError::NotPresent) => Environment::Development,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(CoreError::InvalidConfig {
                    setting: "DBINIT_ENV".to_owned(),
                    reason: "not valid UTF-8".to_owned(),
                })
            }
        };
        let (url, used_default) = settings::resolve_url(None, default_url, environment)?;
        let init = Initializer::new(url)
            .used_default_url(used_default)
            .environment(environment);
        Ok(match settings::resolve_fallback(None)? {
            Some(fallback) => init.fallback(fallback),
            None => init,
        })
    }

    /// Marks the URL as the built-in default (reported, so it is never silent).
    pub fn used_default_url(mut self, yes: bool) -> Self {
        self.settings_mut().used_default_url = yes;
        self
    }

    /// The environment; selects seeders.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.settings_mut().environment = environment;
        self
    }

    /// One migration set, whatever the backend.
    pub fn migrations(mut self, set: MigrationSet) -> Self {
        self.settings_mut().migrations = Some(set);
        self
    }

    /// One migration set per backend (`dbinit_core::migration::embed_all`
    /// embeds `migrations/<backend>/`): the run uses the set of the backend
    /// the URL selects, and refuses a backend without one. Without either
    /// this or [`Initializer::migrations`] there is nothing to apply.
    pub fn migration_sets(mut self, sets: MigrationSets) -> Self {
        self.settings_mut().migration_sets = Some(sets);
        self
    }

    /// How long to wait for another process's initialization lock.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.settings_mut().lock_timeout = timeout;
        self
    }

    /// Connection options (timeouts, application name).
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.settings_mut().connect = options;
        self
    }

    /// Whether to run the seeders (default true).
    pub fn seed(mut self, yes: bool) -> Self {
        self.settings_mut().seed = yes;
        self
    }

    /// Tables the `required_tables` check expects, besides the seeders' own.
    pub fn require_tables<I, S>(mut self, tables: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings_mut()
            .required_tables
            .extend(tables.into_iter().map(Into::into));
        self
    }

    /// Turns off a health check by name (e.g. `sqlite_quick_check` on a large file).
    pub fn skip_check(mut self, name: impl Into<String>) -> Self {
        self.settings_mut().skip_checks.push(name.into());
        self
    }

    /// Another service the application leans on, checked by the
    /// [`Monitor`](crate::Monitor) next to the registered ones (a plugin
    /// crate such as `dbinit-redis` registers its own): for example
    /// [`dependency::Tcp`](crate::dependency::Tcp).
    pub fn dependency(mut self, check: impl DependencyCheck) -> Self {
        self.settings_mut().dependencies.push(Arc::new(check));
        self
    }

    /// Declares that the application runs without the dependency `name`
    /// (`redis`) when it is down, doing `description` instead ("sessions
    /// are kept in process memory"): the monitor then reports it
    /// `fallback`, which does not make the service unready, instead of
    /// `unhealthy`, which does.
    pub fn dependency_fallback(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.settings_mut()
            .fallbacks
            .push((name.into(), description.into()));
        self
    }

    /// A database to use when the primary is unreachable. Never used in
    /// production (the run fails before touching anything), and loudly
    /// reported when used. There is no implicit fallback.
    pub fn fallback(mut self, url: DatabaseUrl) -> Self {
        self.settings_mut().fallback = Some(url);
        self
    }

    /// A handle that interrupts this initializer's runs (a signal handler's,
    /// or the application's shutdown path).
    pub fn interrupt(mut self, handle: Interrupt) -> Self {
        self.settings_mut().interrupt = handle;
        self
    }

    /// Where generated secrets (the admin password) are shown. Default: stderr.
    pub fn secret_sink(mut self, sink: Arc<dyn SecretSink>) -> Self {
        self.settings_mut().secrets = sink;
        self
    }

    /// Data files to load after the registered seeders: `seeds/common/`
    /// and the environment's directory ([`SeedFiles`]).
    pub fn seed_files(mut self, files: SeedFiles) -> Self {
        self.settings_mut().seed_files = Some(files);
        self
    }

    /// Where long loads report progress. Default: nowhere.
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.settings_mut().progress = progress;
        self
    }

    /// The settings, to change (copied first if a run shares them).
    fn settings_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    /// What was asked, for the runner's runs.
    pub(crate) fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// The database URL (redacted when shown).
    pub fn url(&self) -> &DatabaseUrl {
        &self.settings.url
    }

    /// Runs the whole pipeline.
    ///
    /// # Errors
    ///
    /// [`RunnerError`] with the partial report; its [`kind`](RunnerError::kind)
    /// says what failed.
    pub async fn run(&self) -> Result<InitReport, RunnerError> {
        pipeline::init(&self.settings).await
    }

    /// Reports applied and pending migrations and seed state. Changes nothing.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached or its history is invalid.
    pub async fn status(&self) -> Result<StatusReport, CoreError> {
        lifecycle::status(&self.settings).await
    }

    /// Runs the health checks only. Changes nothing.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached. Failing checks are not errors:
    /// see [`HealthSummary::failures`].
    pub async fn health(&self) -> Result<HealthSummary, CoreError> {
        lifecycle::health(&self.settings).await
    }

    /// What `run` would do: pending migrations with their SQL, and the
    /// seeders with their state. Under the init lock; changes nothing.
    ///
    /// # Errors
    ///
    /// An unreachable database, a lock timeout, or an invalid history.
    pub async fn plan(&self) -> Result<PlanReport, CoreError> {
        lifecycle::plan(&self.settings).await
    }

    /// Runs the seeders only (all of them, or those `options.only` names,
    /// in dependency order), on a database whose migrations are applied,
    /// under the init lock. A [`SeedPolicy::Once`](dbinit_core::SeedPolicy)
    /// seeder recorded at its version and input is skipped. With
    /// `options.dry_run`, every seeder runs and is rolled back: the report
    /// says what would be written.
    ///
    /// # Errors
    ///
    /// An unknown seeder name, pending migrations (run `init` first), a
    /// lock timeout, or the first seeder that fails (its transaction is
    /// rolled back; those before it stay committed).
    pub async fn run_seed(&self, options: &SeedOptions) -> Result<SeedReport, CoreError> {
        lifecycle::seed(&self.settings, options).await
    }

    /// Rolls back the newest applied migrations with their down scripts
    /// (`V{n}__{name}.down.sql`), each atomically with the removal of its
    /// history row, under the init lock.
    ///
    /// # Errors
    ///
    /// Refused before anything runs when a migration in the range has no
    /// down script, the history is invalid, or the target is beyond it; a
    /// failing down script stops the rollback (those before it stay rolled
    /// back).
    pub async fn rollback(&self, target: RollbackTarget) -> Result<LifecycleReport, CoreError> {
        lifecycle::rollback(&self.settings, target).await
    }

    /// Adopts a database made before dbinit: records every versioned
    /// migration up to `version` as applied without running it.
    ///
    /// # Errors
    ///
    /// Refused when the database already has a history, or `version` is not
    /// in the migration set.
    pub async fn baseline(&self, version: i64) -> Result<LifecycleReport, CoreError> {
        lifecycle::baseline(&self.settings, version).await
    }

    /// Accepts the edited file of applied migration `version` (a cosmetic
    /// edit): the history takes its checksum, and an audit record keeps the
    /// old one, when, and which host and user.
    ///
    /// # Errors
    ///
    /// Refused when `version` is not applied, its file is missing, or
    /// nothing differs.
    pub async fn repair(&self, version: i64) -> Result<LifecycleReport, CoreError> {
        lifecycle::repair(&self.settings, version).await
    }
}
