//! [`Connector`]: a backend's entry point, claimed by URL scheme.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::{CoreError, DatabaseUrl, Session};

/// Options for [`Connector::connect`] and [`Connector::ensure_database`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long to keep retrying an unreachable server before giving up.
    pub connect_timeout: Duration,
    /// How long a statement waits for a locked database (SQLite `busy_timeout`).
    pub busy_timeout: Duration,
    /// Reported to the server where it supports it (PostgreSQL `application_name`).
    pub application_name: String,
    /// Run synchronous driver calls (SQLite) on the calling thread instead of
    /// tokio's blocking pool. Saves a thread hand-off per call, which is most
    /// of a no-op run's cost; right for a CLI whose runtime runs nothing else,
    /// wrong inside a server's runtime. Default: false.
    pub run_inline: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(5),
            application_name: "dbinit".to_owned(),
            run_inline: false,
        }
    }
}

/// Whether [`Connector::ensure_database`] had to create the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseCreated {
    /// It did not exist and was created.
    Created,
    /// It already existed.
    Existed,
}

/// A database backend. Registered with
/// [`ConnectorRegistration`](crate::ConnectorRegistration) and chosen by the
/// URL scheme.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The backend's name, e.g. `"sqlite"`: how the registry, reports and
    /// per-backend migration sets (`migrations/<name>/`) know it.
    fn name(&self) -> &str;

    /// The URL schemes this backend claims (`sqlite`, `file`), matched
    /// case-insensitively.
    fn schemes(&self) -> &'static [&'static str];

    /// Whether this backend also reads scheme-less `key=value` strings
    /// (libpq's keyword/value form). At most one registered backend should.
    fn keyword_strings(&self) -> bool {
        false
    }

    /// Checks `raw`, a URL whose scheme this backend claims (or, with
    /// `keywords`, a `key=value` string), by its own rules, and returns it
    /// as shown: every secret hidden. Called by [`DatabaseUrl::parse`], so
    /// a URL this backend would refuse never gets as far as a connection.
    /// The default reads a standard URL ([`url::standard`](crate::url::standard)).
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidUrl`] saying why, the input redacted.
    fn check_url(&self, raw: &str, keywords: bool) -> Result<String, CoreError> {
        if keywords {
            return Err(crate::url::invalid(raw, "this backend reads URLs only"));
        }
        crate::url::standard(raw).map(|(_, shown)| shown)
    }

    /// Creates the database when it does not exist; never touches an existing one.
    ///
    /// # Errors
    ///
    /// When the target exists but is not a database of this backend, or
    /// cannot be created (permissions, missing server, ...).
    async fn ensure_database(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<DatabaseCreated, CoreError>;

    /// Opens a session on an existing database.
    ///
    /// # Errors
    ///
    /// When the database does not exist or cannot be reached.
    async fn connect(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Session>, CoreError>;

    /// Creates the database if it is missing and opens a session on it: what
    /// `init` does. The default calls [`Connector::ensure_database`] then
    /// [`Connector::connect`]; a server backend overrides it to connect first
    /// and create only when the server says the database is missing, so that
    /// a ready database costs one connection.
    ///
    /// # Errors
    ///
    /// As [`Connector::ensure_database`] and [`Connector::connect`].
    async fn open(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<(Box<dyn Session>, DatabaseCreated), CoreError> {
        let created = self.ensure_database(url, options).await?;
        Ok((self.connect(url, options).await?, created))
    }
}
