//! [`Context`]: what one run works on, resolved from the settings before
//! anything is touched — the backend, its migration set, the seeders in
//! run order — and the moves every run makes with it: connect, take the
//! init lock and release it on every path, hand seeders their context.

use std::sync::Arc;

use dbinit_core::{
    registry, Connector, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind, InitLock,
    MigrationSet, SeedContext, Seeder, Session,
};

use crate::report::SeedFilesReport;
use crate::seed_order;
use crate::settings::Settings;

/// One run's resolved target and the settings it reads.
pub(crate) struct Context {
    /// What was asked.
    pub(crate) settings: Arc<Settings>,
    /// The database this run works on: the configured one or the fallback.
    pub(crate) url: DatabaseUrl,
    pub(crate) connector: Box<dyn Connector>,
    /// The registered name of the backend the URL selects.
    pub(crate) backend: String,
    pub(crate) set: MigrationSet,
    /// The enabled seeders, in run order (data files last).
    pub(crate) seeders: Vec<Box<dyn Seeder>>,
    pub(crate) seed_files: Option<SeedFilesReport>,
    /// What the `required_tables` check expects.
    pub(crate) required_tables: Vec<String>,
}

impl Context {
    /// Resolves the backend, the migration set and the seeders for `url`.
    /// Touches nothing.
    pub(crate) fn resolve(settings: &Arc<Settings>, url: &DatabaseUrl) -> Result<Self, CoreError> {
        settings.check_skips()?;
        let registration = url.connector()?;
        let connector = registration.make();
        let backend = connector.name().to_owned();
        let set = settings.migration_set(&backend)?;
        let mut seeders = Vec::new();
        let mut seed_files = None;
        if settings.seed {
            let enabled = registry::seeders()?
                .iter()
                .map(|r| r.make())
                .filter(|s| s.environments().contains(settings.environment))
                .collect();
            seeders = seed_order::order(enabled)?;
            // Data files load after the registered seeders, in manifest order.
            if let Some(files) = &settings.seed_files {
                seeders.extend(files.seeders(settings.environment)?);
                seed_files = Some(SeedFilesReport {
                    origin: files.origin().to_owned(),
                    directories: files.directories(settings.environment),
                });
            }
        }
        let seeder_tables: Vec<&'static str> = seeders
            .iter()
            .flat_map(|s| s.tables().iter().copied())
            .collect();
        Ok(Context {
            settings: Arc::clone(settings),
            url: url.clone(),
            connector,
            backend,
            required_tables: settings.required_tables(&seeder_tables),
            set,
            seeders,
            seed_files,
        })
    }

    /// The seeders, in run order.
    pub(crate) fn seeders(&self) -> Vec<&dyn Seeder> {
        self.seeders.iter().map(AsRef::as_ref).collect()
    }

    /// The seeders' names, in run order.
    pub(crate) fn seeder_names(&self) -> Vec<String> {
        self.seeders.iter().map(|s| s.name().to_owned()).collect()
    }

    /// Creates the database if it is missing, then connects; an interrupt
    /// stops the wait.
    pub(crate) async fn open(&self) -> Result<(Box<dyn Session>, DatabaseCreated), CoreError> {
        let interrupt = &self.settings.interrupt;
        let opened = self.connector.open(&self.url, &self.settings.connect);
        let (session, created) = interrupt.unless_interrupted("connecting", opened).await?;
        interrupt.attach(session.canceller());
        Ok((session, created))
    }

    /// Connects to an existing database without creating anything.
    pub(crate) async fn connect(&self) -> Result<Box<dyn Session>, CoreError> {
        let connecting = self.connector.connect(&self.url, &self.settings.connect);
        self.settings
            .interrupt
            .unless_interrupted("connecting", connecting)
            .await
    }

    /// A seeder's context on `session`, for read-only calls (`preflight`,
    /// `is_seeded`) and, with other secrets, for `seed`.
    pub(crate) fn seed_context<'a>(&'a self, session: &'a mut dyn Session) -> SeedContext<'a> {
        SeedContext {
            session,
            environment: self.settings.environment,
            secrets: self.settings.secrets.as_ref(),
            progress: self.settings.progress.as_ref(),
        }
    }

    /// Connects, takes the init lock, runs `step`, and releases the lock
    /// on every path.
    ///
    /// A `read_only` step may run under a shared hold (after waiting for a
    /// holder): it needs no more, and a role that cannot take the lock
    /// exclusively (a read-only role through a pooler) can still run it.
    pub(crate) async fn under_lock<T>(
        &self,
        read_only: bool,
        step: impl AsyncFnOnce(&mut dyn Session) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let mut session = self.connect().await?;
        let interrupt = &self.settings.interrupt;
        interrupt.attach(session.canceller());
        let timeout = self.settings.lock_timeout;
        let acquire = async {
            if read_only {
                session.acquire_or_share_init_lock(timeout).await
            } else {
                session.acquire_init_lock(timeout).await
            }
        };
        let lock = interrupt
            .unless_interrupted("waiting for the initialization lock", acquire)
            .await?;
        self.holding(&mut *session, lock, step).await
    }

    /// Runs `step` while `lock` is held, then releases it whatever the
    /// step did: the step's error wins over the release's, unless the lock
    /// turned out lost (a lost lease's heartbeat cancelled the running
    /// statement, which explains the failure).
    pub(crate) async fn holding<T>(
        &self,
        session: &mut dyn Session,
        lock: InitLock,
        step: impl AsyncFnOnce(&mut dyn Session) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let result = step(&mut *session).await;
        // From here on a signal must not cancel the unlock itself.
        let interrupt = &self.settings.interrupt;
        interrupt.attach(None);
        let released = session.release_init_lock(lock).await;
        let result = result.map_err(|e| interrupt.explain(e));
        match released {
            Err(lost) if lost.kind() == ErrorKind::LockTimeout => Err(lost),
            released => {
                let value = result?;
                released?;
                Ok(value)
            }
        }
    }
}
