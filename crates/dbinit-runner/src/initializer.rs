//! [`Initializer`]: the builder for one call that makes the database ready.

use std::sync::Arc;
use std::time::Duration;

use crate::report::{
    HealthSummary, InitReport, LifecycleReport, PlanReport, SeedReport, StatusReport,
};
use dbinit_core::engine::RollbackTarget;
use dbinit_core::{
    ConnectOptions, CoreError, DatabaseUrl, DependencyCheck, Environment, ErrorKind, HealthOutcome,
    HealthStatus, MigrationSet, MigrationSets, NoProgress, Progress, SecretSink, StderrSecretSink,
};
use dbinit_datafiles::SeedFiles;

use crate::{lifecycle, pipeline, Interrupt, RunnerError};

/// What [`Initializer::run_seed`] runs.
#[derive(Debug, Clone, Default)]
pub struct SeedOptions {
    /// Only these seeders (by name; a data file's is `<dir>/<path>`), in
    /// dependency order; empty: all. Seeders they depend on do not run.
    pub only: Vec<String>,
    /// Run each seeder, report what it wrote, and roll it back.
    pub dry_run: bool,
}

/// Makes a database ready: connect, create if missing, lock, migrate, seed,
/// check. Cheap when the database is already ready, so call it on every start.
///
/// # Examples
///
/// ```no_run
/// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
/// use dbinit_runner::Initializer;
///
/// dbinit_runner::link_builtin_backends();
/// let report = Initializer::new("sqlite://data/app.db".parse()?)
///     .lock_timeout(std::time::Duration::from_secs(30))
///     .run()
///     .await?;
/// println!("ready in {:?}", report.total);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Initializer {
    pub(crate) url: DatabaseUrl,
    pub(crate) used_default_url: bool,
    pub(crate) environment: Environment,
    pub(crate) migrations: Option<MigrationSet>,
    pub(crate) migration_sets: Option<MigrationSets>,
    pub(crate) lock_timeout: Duration,
    pub(crate) connect: ConnectOptions,
    pub(crate) seed: bool,
    pub(crate) required_tables: Vec<String>,
    pub(crate) skip_checks: Vec<String>,
    pub(crate) secrets: Arc<dyn SecretSink>,
    pub(crate) fallback: Option<DatabaseUrl>,
    pub(crate) interrupt: Interrupt,
    pub(crate) seed_files: Option<SeedFiles>,
    pub(crate) progress: Arc<dyn Progress>,
    pub(crate) dependencies: Vec<Arc<dyn DependencyCheck>>,
    /// Dependency name → what the application does without it.
    pub(crate) fallbacks: Vec<(String, String)>,
}

impl std::fmt::Debug for Initializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initializer")
            .field("url", &self.url)
            .field("environment", &self.environment)
            .field("migrations", &self.migrations)
            .field("lock_timeout", &self.lock_timeout)
            .field("seed", &self.seed)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

impl Initializer {
    /// An initializer for `url` with defaults: development environment, no
    /// migrations (give it yours), a 60 s lock timeout, seeding on (the
    /// seeders your binary links), every health check.
    pub fn new(url: DatabaseUrl) -> Self {
        Initializer {
            url,
            used_default_url: false,
            environment: Environment::Development,
            migrations: None,
            migration_sets: None,
            lock_timeout: Duration::from_secs(60),
            connect: ConnectOptions::default(),
            seed: true,
            required_tables: Vec::new(),
            skip_checks: Vec::new(),
            secrets: Arc::new(StderrSecretSink),
            fallback: None,
            interrupt: Interrupt::new(),
            seed_files: None,
            progress: Arc::new(NoProgress),
            dependencies: Vec::new(),
            fallbacks: Vec::new(),
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
    /// dbinit_runner::link_builtin_backends();
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
        let (url, used_default) = resolve_url(None, default_url, environment)?;
        let init = Initializer::new(url)
            .used_default_url(used_default)
            .environment(environment);
        Ok(match resolve_fallback(None)? {
            Some(fallback) => init.fallback(fallback),
            None => init,
        })
    }

    /// Marks the URL as the built-in default (reported, so it is never silent).
    pub fn used_default_url(mut self, yes: bool) -> Self {
        self.used_default_url = yes;
        self
    }

    /// The environment; selects seeders.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// One migration set, whatever the backend.
    pub fn migrations(mut self, set: MigrationSet) -> Self {
        self.migrations = Some(set);
        self
    }

    /// One migration set per backend (`dbinit_core::migration::embed_all`
    /// embeds `migrations/<backend>/`): the run uses the set of the backend
    /// the URL selects, and refuses a backend without one. Without either
    /// this or [`Initializer::migrations`] there is nothing to apply.
    pub fn migration_sets(mut self, sets: MigrationSets) -> Self {
        self.migration_sets = Some(sets);
        self
    }

    /// How long to wait for another process's initialization lock.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Connection options (timeouts, application name).
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.connect = options;
        self
    }

    /// Whether to run the seeders (default true).
    pub fn seed(mut self, yes: bool) -> Self {
        self.seed = yes;
        self
    }

    /// Tables the `required_tables` check expects, besides the seeders' own.
    pub fn require_tables<I, S>(mut self, tables: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_tables
            .extend(tables.into_iter().map(Into::into));
        self
    }

    /// Turns off a health check by name (e.g. `sqlite_quick_check` on a large file).
    pub fn skip_check(mut self, name: impl Into<String>) -> Self {
        self.skip_checks.push(name.into());
        self
    }

    /// Another service the application leans on, checked by the
    /// [`Monitor`](crate::Monitor) next to the registered ones (a plugin
    /// crate such as `dbinit-redis` registers its own): for example
    /// [`dependency::Tcp`](crate::dependency::Tcp).
    pub fn dependency(mut self, check: impl DependencyCheck) -> Self {
        self.dependencies.push(Arc::new(check));
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
        self.fallbacks.push((name.into(), description.into()));
        self
    }

    /// The registered dependency checks and those given, validated: each
    /// configuration valid, names unique among every check, every declared
    /// fallback naming one of them.
    pub(crate) fn dependency_checks(&self) -> Result<Vec<Arc<dyn DependencyCheck>>, CoreError> {
        let mut checks: Vec<Arc<dyn DependencyCheck>> = dbinit_core::registry::dependency_checks()?
            .iter()
            .map(|r| Arc::from(r.make()))
            .collect();
        checks.extend(self.dependencies.iter().cloned());
        let mut names: Vec<String> = dbinit_core::registry::health_checks()?
            .iter()
            .map(|r| r.name())
            .collect();
        for check in &checks {
            check.validate()?;
            if names.iter().any(|n| n == check.name()) {
                return Err(CoreError::InvalidConfig {
                    setting: "dependency checks".to_owned(),
                    reason: format!(
                        "two health checks are named `{}`: give the dependency another name",
                        check.name()
                    ),
                });
            }
            names.push(check.name().to_owned());
        }
        if let Some((name, _)) = self
            .fallbacks
            .iter()
            .find(|(name, _)| !checks.iter().any(|c| c.name() == name))
        {
            let known: Vec<&str> = checks.iter().map(|c| c.name()).collect();
            // Echoed only when it looks like a name: it could be anything.
            let name_like = name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            let what = if name_like {
                format!("`{name}` is not a dependency")
            } else {
                "a fallback must name a dependency".to_owned()
            };
            return Err(CoreError::InvalidConfig {
                setting: "dependency fallback".to_owned(),
                reason: format!(
                    "{what} (dependencies: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
        Ok(checks)
    }

    /// Refuses a `skip_check` name that is no check's: a typo would
    /// otherwise leave the check on, silently.
    pub(crate) fn check_skips(&self) -> Result<(), CoreError> {
        let Some(unknown) = self.skip_checks.iter().find(|name| !self.is_check(name)) else {
            return Ok(());
        };
        Err(CoreError::InvalidConfig {
            setting: "--skip-check".to_owned(),
            reason: format!(
                "`{}` is not a health check or dependency of this binary",
                dbinit_core::bounded(unknown, 64)
            ),
        })
    }

    fn is_check(&self, name: &str) -> bool {
        let registered = |names: Vec<String>| names.iter().any(|n| n == name);
        let health = dbinit_core::registry::health_checks()
            .map(|r| r.iter().map(|c| c.name()).collect())
            .unwrap_or_default();
        let dependencies = dbinit_core::registry::dependency_checks()
            .map(|r| r.iter().map(|c| c.name()).collect())
            .unwrap_or_default();
        registered(health)
            || registered(dependencies)
            || self.dependencies.iter().any(|d| d.name() == name)
    }

    /// `outcome` of dependency `name`, as `fallback` when it is unhealthy
    /// and the application declared a fallback for it.
    pub(crate) fn with_fallback(&self, name: &str, outcome: HealthOutcome) -> HealthOutcome {
        match self.fallbacks.iter().find(|(n, _)| n == name) {
            Some((_, description)) if outcome.status == HealthStatus::Unhealthy => HealthOutcome {
                status: HealthStatus::Fallback,
                detail: format!("{}; running on the fallback: {description}", outcome.detail),
            },
            _ => outcome,
        }
    }

    /// A database to use when the primary is unreachable. Never used in
    /// production (the run fails before touching anything), and loudly
    /// reported when used. There is no implicit fallback.
    pub fn fallback(mut self, url: DatabaseUrl) -> Self {
        self.fallback = Some(url);
        self
    }

    /// Refuses a configured fallback in production.
    pub(crate) fn fallback_allowed(&self) -> Result<(), CoreError> {
        match &self.fallback {
            Some(fallback) if self.environment == Environment::Production => Err(CoreError::backend(
                ErrorKind::InvalidUrl,
                format!("a fallback database ({fallback}) is refused in production"),
            )
            .with_hint("remove --fallback-url / DBINIT_FALLBACK_URL: production must reach its own database")),
            _ => Ok(()),
        }
    }

    /// A handle that interrupts this initializer's runs (a signal handler's,
    /// or the application's shutdown path).
    pub fn interrupt(mut self, handle: Interrupt) -> Self {
        self.interrupt = handle;
        self
    }

    /// Where generated secrets (the admin password) are shown. Default: stderr.
    pub fn secret_sink(mut self, sink: Arc<dyn SecretSink>) -> Self {
        self.secrets = sink;
        self
    }

    /// Data files to load after the registered seeders: `seeds/common/`
    /// and the environment's directory ([`SeedFiles`]).
    pub fn seed_files(mut self, files: SeedFiles) -> Self {
        self.seed_files = Some(files);
        self
    }

    /// Where long loads report progress. Default: nowhere.
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The database URL (redacted when shown).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Runs the whole pipeline.
    ///
    /// # Errors
    ///
    /// [`RunnerError`] with the partial report; its [`kind`](RunnerError::kind)
    /// says what failed.
    pub async fn run(&self) -> Result<InitReport, RunnerError> {
        pipeline::init(self).await
    }

    /// Reports applied and pending migrations and seed state. Changes nothing.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached or its history is invalid.
    pub async fn status(&self) -> Result<StatusReport, CoreError> {
        lifecycle::status(self).await
    }

    /// Runs the health checks only. Changes nothing.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached. Failing checks are not errors:
    /// see [`HealthSummary::failures`].
    pub async fn health(&self) -> Result<HealthSummary, CoreError> {
        lifecycle::health(self).await
    }

    /// What `run` would do: pending migrations with their SQL, and the
    /// seeders with their state. Under the init lock; changes nothing.
    ///
    /// # Errors
    ///
    /// An unreachable database, a lock timeout, or an invalid history.
    pub async fn plan(&self) -> Result<PlanReport, CoreError> {
        lifecycle::plan(self).await
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
        lifecycle::seed(self, options).await
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
        lifecycle::rollback(self, target).await
    }

    /// Adopts a database made before dbinit: records every versioned
    /// migration up to `version` as applied without running it.
    ///
    /// # Errors
    ///
    /// Refused when the database already has a history, or `version` is not
    /// in the migration set.
    pub async fn baseline(&self, version: i64) -> Result<LifecycleReport, CoreError> {
        lifecycle::baseline(self, version).await
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
        lifecycle::repair(self, version).await
    }

    /// The migration set for the backend registered as `backend`: the one
    /// set configured, that backend's of the configured sets, or none.
    pub(crate) fn migration_set(&self, backend: &str) -> Result<MigrationSet, CoreError> {
        if let Some(set) = &self.migrations {
            return Ok(set.clone());
        }
        match &self.migration_sets {
            Some(sets) => {
                sets.get(backend)
                    .cloned()
                    .ok_or_else(|| CoreError::InvalidMigrationSet {
                        reason: format!(
                            "{} has no `{backend}` migrations (it has: {})",
                            sets.origin(),
                            sets.backends().collect::<Vec<_>>().join(", ")
                        ),
                    })
            }
            None => MigrationSet::new("none configured", Vec::new()),
        }
    }

    /// Required tables: the configured ones and every enabled seeder's.
    pub(crate) fn required_tables(&self, seeder_tables: &[&'static str]) -> Vec<String> {
        let mut tables: Vec<String> = self.required_tables.clone();
        tables.extend(seeder_tables.iter().map(|t| (*t).to_owned()));
        tables.sort();
        tables.dedup();
        tables
    }
}

/// The database URL: `explicit` (a flag), else `DATABASE_URL`, else
/// `default_url`; whether the default was used. Production refuses the
/// default; set-but-empty or non-UTF-8 `DATABASE_URL` is an error.
pub(crate) fn resolve_url(
    explicit: Option<&str>,
    default_url: &str,
    environment: Environment,
) -> Result<(DatabaseUrl, bool), CoreError> {
    let (raw, used_default) = match (explicit, std::env::var("DATABASE_URL")) {
        (Some(flag), _) => (flag.to_owned(), false),
        // Set but empty is an error, not a reason to fall back to the default.
        (None, Ok(env)) => (env, false),
        (None, Err(std::env::VarError::NotPresent)) => (default_url.to_owned(), true),
        // Set but not UTF-8: an error too, never the default.
        (None, Err(std::env::VarError::NotUnicode(_))) => {
            return Err(CoreError::InvalidUrl {
                url: "DATABASE_URL".to_owned(),
                reason: "DATABASE_URL is not valid UTF-8".to_owned(),
            })
        }
    };
    let url = DatabaseUrl::parse(&raw)?;
    if used_default {
        if environment == Environment::Production {
            return Err(CoreError::InvalidUrl {
                url: url.redacted().to_owned(),
                reason: "DATABASE_URL is not set, and production never falls back to the \
                         embedded default database"
                    .to_owned(),
            });
        }
        tracing::info!(url = %url, "DATABASE_URL is not set; using the embedded default");
    }
    Ok((url, used_default))
}

/// The fallback database: `explicit` (a flag), else `DBINIT_FALLBACK_URL`.
pub(crate) fn resolve_fallback(explicit: Option<&str>) -> Result<Option<DatabaseUrl>, CoreError> {
    let raw = match (explicit, std::env::var("DBINIT_FALLBACK_URL")) {
        (Some(flag), _) => flag.to_owned(),
        (None, Ok(env)) => env,
        (None, Err(std::env::VarError::NotPresent)) => return Ok(None),
        (None, Err(std::env::VarError::NotUnicode(_))) => {
            return Err(CoreError::InvalidUrl {
                url: "DBINIT_FALLBACK_URL".to_owned(),
                reason: "DBINIT_FALLBACK_URL is not valid UTF-8".to_owned(),
            })
        }
    };
    DatabaseUrl::parse(&raw).map(Some)
}
