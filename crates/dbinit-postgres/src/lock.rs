//! The initialization lock: which strategy, and the hold.
//!
//! `dbinit_lock=advisory` takes a session advisory lock (see
//! [`crate::advisory`]): it dies with the session and wakes waiters at once,
//! but a transaction-pooling proxy strands it on a pooled server connection.
//! `dbinit_lock=lease` writes a row with an expiry (see [`crate::lease`]),
//! safe through any pooler and on engines without advisory locks.
//! `dbinit_lock=auto`, the default, looks at the server: the lease when it
//! is not PostgreSQL itself, or when the port the server listens on is not
//! the one dbinit connected to (a pooler or proxy is in between); the
//! advisory lock otherwise.

use dbinit_core::CoreError;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};

use crate::config::LockChoice;
use crate::error;
use crate::lease::Lease;

/// The strategy in use, with why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Strategy {
    Advisory,
    Lease { why: String },
}

/// A hold on the lock, to give back on release.
pub(crate) enum Held {
    Advisory {
        key: i64,
        shared: bool,
    },
    Lease(Lease),
    /// A shared hold on a lease: nothing is held.
    Nothing,
}

/// Who holds the other strategy's lock on this database, if anyone: a live
/// lease when this process holds the advisory lock, an exclusive advisory
/// lock when it holds the lease. Each strategy takes its own lock first and
/// then looks at the other's, so a replica connected directly and one
/// going through a pooler never work at once (if both look at the same
/// time, both let go and try again).
pub(crate) async fn rival(
    client: &Client,
    strategy: &Strategy,
) -> Result<Option<String>, CoreError> {
    match strategy {
        Strategy::Advisory => crate::lease::live_holder(client).await,
        Strategy::Lease { .. } => crate::advisory::exclusive_holder(client).await,
    }
}

/// Resolves `choice` for the server behind `client`.
pub(crate) async fn strategy(
    client: &Client,
    config: &Config,
    choice: LockChoice,
) -> Result<Strategy, CoreError> {
    if choice == LockChoice::Lease {
        return Ok(Strategy::Lease {
            why: "dbinit_lock=lease".to_owned(),
        });
    }
    match (choice, detect(client, config).await?) {
        (LockChoice::Advisory, Some(why)) => {
            tracing::warn!(
                "dbinit_lock=advisory, but {why}; behind transaction pooling the lock would be \
                 stranded on a pooled connection"
            );
            Ok(Strategy::Advisory)
        }
        (_, Some(why)) => Ok(Strategy::Lease { why }),
        (_, None) => Ok(Strategy::Advisory),
    }
}

/// Why the advisory lock would be unsafe here, if it would.
async fn detect(client: &Client, config: &Config) -> Result<Option<String>, CoreError> {
    let row = client
        .query_typed_one("SELECT version(), inet_server_port()", &[])
        .await
        .map_err(|e| error::classify("cannot identify the server", e))?;
    let version: String = row.get(0);
    if !version.starts_with("PostgreSQL ") {
        let engine = version
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        return Ok(Some(format!(
            "the server is {engine}, whose advisory locks dbinit does not rely on"
        )));
    }
    Ok(proxied(config, row.get(1)))
}

/// Why the connection looks proxied, if it does: dbinit dialed a TCP port
/// the server does not listen on. Over a Unix socket nothing is concluded.
pub(crate) fn proxied(config: &Config, server_port: Option<i32>) -> Option<String> {
    if config
        .get_hosts()
        .iter()
        .any(|h| matches!(h, Host::Unix(_)))
    {
        return None;
    }
    let dialed: Vec<i32> = match config.get_ports() {
        [] => vec![5432],
        ports => ports.iter().map(|p| i32::from(*p)).collect(),
    };
    let listens = match server_port {
        Some(port) if dialed.contains(&port) => return None,
        Some(port) => format!("port {port}"),
        None => "a Unix socket".to_owned(),
    };
    Some(format!(
        "dbinit dialed port {} but the server listens on {listens}: a pooler or proxy is in \
         between, where a session advisory lock could be stranded",
        dialed[0]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn a_port_the_server_does_not_listen_on_means_a_proxy() {
        let config = Config::from_str("postgres://u@db.example:6432/app").unwrap();
        assert_eq!(proxied(&config, Some(6432)), None);
        assert!(proxied(&config, Some(5432)).unwrap().contains("port 5432"));
        assert!(proxied(&config, None).unwrap().contains("Unix socket"));
        let default_port = Config::from_str("postgres://u@db.example/app").unwrap();
        assert_eq!(proxied(&default_port, Some(5432)), None);
        let socket = Config::from_str("host=/run/postgresql dbname=app").unwrap();
        assert_eq!(proxied(&socket, None), None);
    }
}
