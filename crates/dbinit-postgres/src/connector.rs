//! The PostgreSQL [`Connector`]: pool, wait, create the database if missing.

use dbinit_core::{
    async_trait, ConnectOptions, Connector, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind,
    Session,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{self, LockChoice, Target};
use crate::session::PostgresSession;
use crate::wait::{self, GetError};
use crate::{error, tls};

/// The PostgreSQL backend. Claims `postgres://`, `postgresql://` and libpq
/// `key=value` strings.
#[derive(Debug, Default, Clone, Copy)]
pub struct PostgresConnector;

/// A pool for `target`, and its TLS connector (for cancel requests).
/// Creating it does not connect.
fn pool(
    target: &Target,
    config: tokio_postgres::Config,
) -> Result<(Pool, MakeRustlsConnect), CoreError> {
    let tls = tls::connector(target.tls, target.root_cert.as_ref())?;
    let manager = Manager::from_config(
        config,
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(4).build().map_err(|e| {
        CoreError::backend(ErrorKind::Database, format!("cannot build the pool: {e}"))
    })?;
    Ok((pool, tls))
}

/// A pooler cannot create a database, and the creators' advisory lock would
/// be stranded on a pooled connection: say so, unless `dbinit_lock=advisory`
/// vouches that this is the server (or a session pooler).
async fn refuse_through_a_pooler(
    client: &tokio_postgres::Client,
    target: &Target,
    name: &str,
    what: &str,
) -> Result<(), CoreError> {
    let port: Option<i32> = client
        .query_typed_one("SELECT inet_server_port()", &[])
        .await
        .map_err(|e| error::classify(what, e))?
        .get(0);
    match crate::lock::proxied(&target.config, port) {
        None => Ok(()),
        Some(why) => Err(CoreError::backend(
            ErrorKind::Unreachable,
            format!("database `{name}` does not exist, and dbinit does not create databases through a pooler ({why})"),
        )
        .with_hint(format!(
            "create it directly on the server: CREATE DATABASE {}; then initialize through the pooler",
            dbinit_core::quote_ident(name)
        ))),
    }
}

impl PostgresConnector {
    /// Connects to the target database; `Ok(None)` when it does not exist.
    async fn try_connect(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<Result<PostgresSession, tokio_postgres::Error>, CoreError> {
        let target = config::parse(url, &options.application_name)?;
        let (pool, tls) = pool(&target, target.config.clone())?;
        match wait::get(&pool, options.connect_timeout, url.redacted()).await {
            Ok(client) => Ok(Ok(PostgresSession::new(pool, client, tls, &target))),
            Err(GetError::MissingDatabase(e)) => Ok(Err(e)),
            Err(GetError::Fatal(e)) => Err(e),
        }
    }

    /// Creates the database through the maintenance database.
    async fn create(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<DatabaseCreated, CoreError> {
        let target = config::parse(url, &options.application_name)?;
        let name = target.database();
        let mut last = None;
        // `postgres` is the usual maintenance database; `template1` always exists.
        for maintenance in ["postgres", "template1"] {
            let (pool, _) = pool(&target, config::maintenance(&target.config, maintenance))?;
            let what = format!("the maintenance database `{maintenance}` of {url}");
            let client = match wait::get(&pool, options.connect_timeout, &what).await {
                Ok(client) => client,
                Err(GetError::MissingDatabase(e)) => {
                    last = Some(error::classify(&what, e));
                    continue;
                }
                Err(GetError::Fatal(e)) => return Err(e),
            };
            if target.lock != LockChoice::Advisory {
                refuse_through_a_pooler(&client, &target, &name, &what).await?;
            }
            // Creators queue on an advisory lock and re-check: concurrent
            // CREATE DATABASEs each copy the whole template before all but
            // one fail, which made a 16-process start 2x slower.
            let bound = options
                .connect_timeout
                .as_millis()
                .clamp(1, i32::MAX as u128);
            client
                .batch_execute(&format!("SET lock_timeout = {bound}"))
                .await
                .map_err(|e| error::classify(&what, e))?;
            client
                .execute_typed(
                    "SELECT pg_advisory_lock(hashtextextended('dbinit-create:' || $1, 0))",
                    &[(&name, Type::TEXT)],
                )
                .await
                .map_err(|e| error::classify(format!("cannot create database `{name}`"), e))?;
            let exists = client
                .query_typed_opt(
                    "SELECT 1 FROM pg_database WHERE datname = $1",
                    &[(&name, Type::TEXT)],
                )
                .await
                .map_err(|e| error::classify(format!("cannot create database `{name}`"), e))?
                .is_some();
            if exists {
                return Ok(DatabaseCreated::Existed);
            }
            // Sessions queued on template1 would make copying it fail.
            let template = if maintenance == "template1" {
                " TEMPLATE template0"
            } else {
                ""
            };
            let sql = format!(
                "CREATE DATABASE {}{template}",
                dbinit_core::quote_ident(&name)
            );
            return match client.batch_execute(&sql).await {
                Ok(()) => {
                    tracing::info!(database = %name, "created database");
                    Ok(DatabaseCreated::Created)
                }
                // Another process created it first (concurrent creations can
                // also trip pg_database's unique index).
                Err(e)
                    if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                        || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
                {
                    Ok(DatabaseCreated::Existed)
                }
                Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                    let user = target.config.get_user().unwrap_or("USER");
                    Err(error::classify(
                        format!("database `{name}` does not exist and cannot be created"),
                        e,
                    )
                    .with_hint(format!(
                        "ask an administrator to run: CREATE DATABASE {} OWNER {};",
                        dbinit_core::quote_ident(&name),
                        dbinit_core::quote_ident(user)
                    )))
                }
                Err(e) => Err(error::classify(
                    format!("cannot create database `{name}`"),
                    e,
                )),
            };
        }
        Err(last.unwrap_or_else(|| {
            CoreError::backend(ErrorKind::Unreachable, "no maintenance database")
        }))
    }
}

#[async_trait]
impl Connector for PostgresConnector {
    fn name(&self) -> &'static str {
        crate::session::NAME
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["postgres", "postgresql"]
    }

    fn keyword_strings(&self) -> bool {
        true
    }

    fn check_url(&self, raw: &str, keywords: bool) -> Result<String, CoreError> {
        crate::conninfo::check(raw, keywords)
    }

    async fn ensure_database(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<DatabaseCreated, CoreError> {
        match self.try_connect(url, options).await? {
            Ok(_) => Ok(DatabaseCreated::Existed),
            Err(_) => self.create(url, options).await,
        }
    }

    async fn connect(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Session>, CoreError> {
        match self.try_connect(url, options).await? {
            Ok(session) => Ok(Box::new(session)),
            Err(e) => Err(error::classify(format!("cannot connect to {url}"), e)),
        }
    }

    /// One connection when the database exists; create it only when the
    /// server says it is missing.
    async fn open(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<(Box<dyn Session>, DatabaseCreated), CoreError> {
        if let Ok(session) = self.try_connect(url, options).await? {
            return Ok((Box::new(session), DatabaseCreated::Existed));
        }
        let created = self.create(url, options).await?;
        Ok((self.connect(url, options).await?, created))
    }
}
