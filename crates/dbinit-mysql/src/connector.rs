//! The MySQL [`Connector`]: wait for the server, create the database,
//! connect.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use dbinit_core::dialect::Dialect as _;
use dbinit_core::{
    url::invalid, ConnectOptions, Connector, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind,
    Session,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, SslOpts};

use crate::dialect::MysqlDialect;
use crate::error::{self, code};
use crate::session::MysqlSession;
use crate::url::{self, SslMode, Target};

/// The MySQL and MariaDB backend (`mysql://`, `mariadb://`).
#[derive(Debug, Default)]
pub struct MysqlConnector;

#[async_trait]
impl Connector for MysqlConnector {
    fn name(&self) -> &str {
        "mysql"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["mysql", "mariadb"]
    }

    fn check_url(&self, raw: &str, keywords: bool) -> Result<String, CoreError> {
        if keywords {
            return Err(invalid(raw, "a MySQL URL starts mysql:// or mariadb://"));
        }
        url::check(raw)
    }

    async fn ensure_database(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<DatabaseCreated, CoreError> {
        let target = url::parse(url.expose_secret())?;
        let mut conn = wait(&target, None, options, url).await?;
        let created = create(&mut conn, &target, url).await;
        let _ = conn.disconnect().await;
        created
    }

    async fn connect(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Session>, CoreError> {
        let target = url::parse(url.expose_secret())?;
        let conn = wait(&target, Some(&target.database), options, url).await?;
        Ok(Box::new(MysqlSession::new(
            conn,
            &target,
            &options.application_name,
        )))
    }

    /// Connects to the database first and creates it only when the server
    /// says it is missing: a ready database costs one connection.
    async fn open(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<(Box<dyn Session>, DatabaseCreated), CoreError> {
        let target = url::parse(url.expose_secret())?;
        match wait(&target, Some(&target.database), options, url).await {
            Ok(conn) => Ok((
                Box::new(MysqlSession::new(conn, &target, &options.application_name)),
                DatabaseCreated::Existed,
            )),
            Err(e) if missing_database(&e) => {
                let mut server = wait(&target, None, options, url).await?;
                let created = create(&mut server, &target, url).await;
                let _ = server.disconnect().await;
                let created = created?;
                let conn = wait(&target, Some(&target.database), options, url).await?;
                Ok((
                    Box::new(MysqlSession::new(conn, &target, &options.application_name)),
                    created,
                ))
            }
            Err(e) => Err(e),
        }
    }
}

fn missing_database(e: &CoreError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<mysql_async::Error>())
        .and_then(error::server_code)
        == Some(code::BAD_DB)
}

/// `CREATE DATABASE IF NOT EXISTS` with the URL's character set and
/// collation; says whether this call made it (a warning means it existed).
async fn create(
    conn: &mut Conn,
    target: &Target,
    url: &DatabaseUrl,
) -> Result<DatabaseCreated, CoreError> {
    let name = MysqlDialect.quote_ident(&target.database);
    let mut sql = format!(
        "CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET {}",
        target.charset
    );
    if let Some(collation) = &target.collation {
        sql.push_str(&format!(" COLLATE {collation}"));
    }
    conn.query_drop(&sql).await.map_err(|e| {
        let denied = matches!(error::server_code(&e), Some(c) if c == code::DB_ACCESS_DENIED || code::PRIVILEGE.contains(&c));
        let err = error::classify(format!("cannot create the database of {url}"), e);
        if denied {
            err.with_hint(format!(
                "the user may not create databases: create it once as an administrator \
                 (CREATE DATABASE {name} CHARACTER SET {}) and grant the user ALL on it",
                target.charset
            ))
        } else {
            err
        }
    })?;
    Ok(if conn.get_warnings() > 0 {
        DatabaseCreated::Existed
    } else {
        tracing::info!(database = %target.database, "created the database");
        DatabaseCreated::Created
    })
}

fn opts(target: &Target, database: Option<&str>, options: &ConnectOptions) -> Opts {
    let ssl = match target.ssl_mode {
        SslMode::Disabled => None,
        mode => {
            let mut ssl = SslOpts::default();
            if let Some(ca) = &target.ssl_ca {
                // That CA alone: the built-in roots would also accept any
                // publicly signed certificate.
                ssl = ssl
                    .with_root_certs(vec![std::path::PathBuf::from(ca).into()])
                    .with_disable_built_in_roots(true);
            }
            Some(match mode {
                SslMode::Required => ssl
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
                SslMode::VerifyCa => ssl.with_danger_skip_domain_validation(true),
                _ => ssl,
            })
        }
    };
    let mut attributes = std::collections::HashMap::new();
    attributes.insert("program_name".to_owned(), options.application_name.clone());
    OptsBuilder::default()
        .ip_or_hostname(target.host.clone())
        .tcp_port(target.port)
        .user(Some(target.user.clone()))
        .pass(target.password.clone())
        .db_name(database.map(str::to_owned))
        // Not the socket the server names: the host connected to is the
        // host the URL shows.
        .prefer_socket(false)
        .ssl_opts(ssl)
        .connect_attributes(attributes)
        .into()
}

/// Connects, retrying what waiting may cure (a server still starting, too
/// many connections) with backoff until `options.connect_timeout`; never a
/// wrong password.
async fn wait(
    target: &Target,
    database: Option<&str>,
    options: &ConnectOptions,
    url: &DatabaseUrl,
) -> Result<Conn, CoreError> {
    // The driver reads the CA file at every attempt: a missing one is a
    // mistake to report, not a server to wait for.
    if let Some(ca) = &target.ssl_ca {
        if let Err(e) = std::fs::metadata(ca) {
            return Err(CoreError::backend(
                ErrorKind::Tls,
                format!("cannot read ssl-ca {ca}: {e}"),
            )
            .with_hint("ssl-ca names a PEM file with the server's CA certificate"));
        }
    }
    let started = Instant::now();
    let timeout = options.connect_timeout;
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(100));
        let err = match tokio::time::timeout(left, Conn::new(opts(target, database, options))).await
        {
            Ok(Ok(conn)) => {
                if attempts > 1 {
                    tracing::info!(
                        waited_ms = started.elapsed().as_millis() as u64,
                        attempts,
                        "database reachable"
                    );
                }
                return Ok(conn);
            }
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(CoreError::backend(
                    ErrorKind::Unreachable,
                    format!(
                        "cannot connect to {url}: no answer within {:.1}s",
                        timeout.as_secs_f64()
                    ),
                )
                .with_hint("is the server running, and the host and port right?"))
            }
        };
        let elapsed = started.elapsed();
        if !error::is_transient(&err) || elapsed >= timeout {
            let context = if attempts > 1 {
                format!(
                    "cannot connect to {url} after {:.1}s and {attempts} attempts",
                    elapsed.as_secs_f64()
                )
            } else {
                format!("cannot connect to {url}")
            };
            return Err(error::classify(context, err));
        }
        if attempts == 1 {
            tracing::info!(url = %url, "waiting for the database server");
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(delay.min(timeout.saturating_sub(elapsed))).await;
    }
}
