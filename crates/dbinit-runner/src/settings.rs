//! [`Settings`]: what the user asked for, as the [`Initializer`](crate::Initializer)
//! collected it, and the rules that read it (which migration set, which
//! checks, which fallback). Runs read it through their
//! [`Context`](crate::context::Context).

use std::sync::Arc;
use std::time::Duration;

use dbinit_core::{
    ConnectOptions, CoreError, DatabaseUrl, DependencyCheck, Environment, ErrorKind, HealthOutcome,
    HealthStatus, MigrationSet, MigrationSets, NoProgress, Progress, SecretSink,
};
use dbinit_datafiles::SeedFiles;

use crate::Interrupt;

/// What a run was asked to do.
#[derive(Clone)]
pub(crate) struct Settings {
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

impl Settings {
    pub(crate) fn new(url: DatabaseUrl) -> Self {
        Settings {
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
            secrets: Arc::new(crate::StderrSecretSink),
            fallback: None,
            interrupt: Interrupt::new(),
            seed_files: None,
            progress: Arc::new(NoProgress),
            dependencies: Vec::new(),
            fallbacks: Vec::new(),
        }
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
