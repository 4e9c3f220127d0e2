//! From a [`DatabaseUrl`] to a tokio-postgres `Config` plus TLS settings.
//!
//! tokio-postgres parses URLs and conninfo strings itself; dbinit first takes
//! out the keys it handles: `sslmode` and `sslrootcert` (tokio-postgres
//! rejects `verify-ca` / `verify-full` and does not read root certificates),
//! and its own `dbinit_lock` and `dbinit_lease_ttl`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use dbinit_core::{CoreError, DatabaseUrl};

use crate::conninfo::{quote_conninfo, split_conninfo};
use tokio_postgres::config::SslMode;
use tokio_postgres::Config;

/// libpq's `sslmode`, all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// `dbinit_lock=`: which initialization lock to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockChoice {
    /// The advisory lock, unless a pooler or an engine without advisory
    /// locks is detected.
    Auto,
    /// The session advisory lock.
    Advisory,
    /// The lease row, renewed by a heartbeat.
    Lease,
}

/// What [`parse`] found.
pub(crate) struct Target {
    pub(crate) config: Config,
    pub(crate) tls: TlsMode,
    pub(crate) root_cert: Option<PathBuf>,
    pub(crate) lock: LockChoice,
    /// How long a lease lives without a heartbeat.
    pub(crate) lease_ttl: Duration,
}

impl Target {
    /// The database name tokio-postgres will use (libpq's default: the user).
    pub(crate) fn database(&self) -> String {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres")
            .to_owned()
    }
}

fn invalid(url: &DatabaseUrl, reason: impl Into<String>) -> CoreError {
    CoreError::InvalidUrl {
        url: url.redacted().to_owned(),
        reason: reason.into(),
    }
}

/// Parses `url` for tokio-postgres; `application_name` applies unless the
/// URL sets its own.
pub(crate) fn parse(url: &DatabaseUrl, application_name: &str) -> Result<Target, CoreError> {
    let raw = url.expose_secret();
    let (rest, own) = if url.is_keywords() {
        strip_conninfo_params(raw).map_err(|e| invalid(url, e))?
    } else {
        strip_url_params(raw)
    };
    let mut config = Config::from_str(&rest).map_err(|e| invalid(url, e.to_string()))?;
    let mut tls = TlsMode::Prefer;
    let mut root_cert = None;
    let mut lock = LockChoice::Auto;
    let mut lease_ttl = dbinit_core::lease::DEFAULT_TTL;
    for (key, value) in own {
        match key.as_str() {
            "dbinit_lock" => {
                lock = match value.as_str() {
                    "auto" => LockChoice::Auto,
                    "advisory" => LockChoice::Advisory,
                    "lease" => LockChoice::Lease,
                    other => {
                        return Err(invalid(
                            url,
                            format!("unknown dbinit_lock `{other}` (auto, advisory or lease)"),
                        ))
                    }
                }
            }
            "dbinit_lease_ttl" => {
                lease_ttl = dbinit_core::lease::parse_ttl(&value).map_err(|e| invalid(url, e))?
            }
            "sslmode" => {
                tls = match value.as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => return Err(invalid(url, format!("unknown sslmode `{other}`"))),
                }
            }
            "sslrootcert" => root_cert = Some(PathBuf::from(value)),
            _ => {} // is_own_key admits no other key
        }
    }
    config.ssl_mode(match tls {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    if config.get_application_name().is_none() {
        config.application_name(application_name);
    }
    crate::passfile::fill_password(&mut config);
    if config.get_hosts().is_empty() {
        return Err(invalid(url, "no host"));
    }
    let target = Target {
        config,
        tls,
        root_cert,
        lock,
        lease_ttl,
    };
    let name = target.database();
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(invalid(
            url,
            format!(
                "the database name is {} bytes long; PostgreSQL names are at most \
                 {MAX_IDENTIFIER_BYTES} bytes (longer ones are silently truncated)",
                name.len()
            ),
        ));
    }
    Ok(target)
}

/// PostgreSQL's `NAMEDATALEN - 1`.
const MAX_IDENTIFIER_BYTES: usize = 63;

fn is_own_key(key: &str) -> bool {
    matches!(
        key,
        "sslmode" | "sslrootcert" | "dbinit_lock" | "dbinit_lease_ttl"
    )
}

type Split = (String, Vec<(String, String)>);

/// Takes dbinit's keys out of a URL's query. The other parameters are kept
/// byte for byte: re-encoding them would turn `%20` into `+`, which
/// tokio-postgres passes to the server as a literal plus sign.
fn strip_url_params(raw: &str) -> Split {
    let (head, fragment_free) = match raw.split_once('?') {
        Some((head, query)) => (head, query),
        None => return (raw.to_owned(), Vec::new()),
    };
    let mut kept = Vec::new();
    let mut own = Vec::new();
    for piece in fragment_free.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        let decoded = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        if is_own_key(&decoded(key)) {
            own.push((decoded(key), decoded(value)));
        } else {
            kept.push(piece);
        }
    }
    if kept.is_empty() {
        (head.to_owned(), own)
    } else {
        (format!("{head}?{}", kept.join("&")), own)
    }
}

fn strip_conninfo_params(raw: &str) -> Result<Split, String> {
    let (own, rest): (Vec<_>, Vec<_>) = split_conninfo(raw)?
        .into_iter()
        .partition(|(k, _)| is_own_key(k));
    let rebuilt = rest
        .iter()
        .map(|(k, v)| format!("{k}={}", quote_conninfo(v)))
        .collect::<Vec<_>>()
        .join(" ");
    Ok((rebuilt, own))
}

/// The same connection, to the maintenance database.
pub(crate) fn maintenance(config: &Config, dbname: &str) -> Config {
    let mut config = config.clone();
    config.dbname(dbname);
    config
}

#[cfg(test)]
mod tests {
    use dbinit_core::ErrorKind;

    use super::*;

    fn target(s: &str) -> Target {
        parse(&DatabaseUrl::parse(s).unwrap(), "dbinit").unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn urls_and_conninfo_with_every_sslmode() {
        let t = target("postgres://app:pw@db.example:6432/orders?sslmode=verify-full&sslrootcert=/ca.pem&application_name=svc");
        assert_eq!(t.tls, TlsMode::VerifyFull);
        assert_eq!(t.root_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(t.config.get_application_name(), Some("svc"));
        assert_eq!(t.database(), "orders");
        assert_eq!(t.config.get_ports(), [6432]);

        let t = target("host=/var/run/postgresql dbname='my db' user=app password='a b' sslmode=verify-ca connect_timeout=3");
        assert_eq!(t.tls, TlsMode::VerifyCa);
        assert_eq!(t.database(), "my db");
        assert_eq!(t.config.get_password(), Some(&b"a b"[..]));
        assert_eq!(t.config.get_application_name(), Some("dbinit"));
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );

        assert_eq!(target("postgresql://app@localhost").tls, TlsMode::Prefer);
        assert_eq!(target("postgresql://app@localhost").database(), "app");
        assert_eq!(
            target("postgres://localhost/x?sslmode=disable").tls,
            TlsMode::Disable
        );
    }

    #[test]
    fn query_values_reach_the_driver_as_encoded() {
        let t = target("postgres://u@h/db?options=-c%20search_path%3Dpublic&application_name=my%20app&sslmode=disable&password=Right%20Pass%2B1");
        assert_eq!(t.tls, TlsMode::Disable);
        assert_eq!(t.config.get_options(), Some("-c search_path=public"));
        assert_eq!(t.config.get_application_name(), Some("my app"));
        assert_eq!(t.config.get_password(), Some(&b"Right Pass+1"[..]));
    }

    #[test]
    fn conninfo_values_with_scheme_separators_stay_conninfo() {
        let t = target("host=h password=Sec://ret-1234 application_name=http://svc");
        assert_eq!(t.config.get_password(), Some(&b"Sec://ret-1234"[..]));
        assert_eq!(t.config.get_application_name(), Some("http://svc"));
    }

    #[test]
    fn database_names_longer_than_postgres_allows_are_url_errors() {
        let long = "d".repeat(64);
        let err = parse(
            &DatabaseUrl::parse(&format!("postgres://u@h/{long}")).unwrap(),
            "x",
        )
        .err()
        .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl);
        assert!(err.to_string().contains("at most 63 bytes"), "{err}");
        target(&format!("postgres://u@h/{}", "d".repeat(63)));
    }

    #[test]
    fn bad_options_are_invalid_urls_without_the_password() {
        for s in [
            "postgres://app:Secr3t@localhost/x?sslmode=sometimes",
            "postgres://app:Secr3t@localhost/x?no_such_option=1",
            "host=localhost password=Secr3t port=notaport",
        ] {
            let err = parse(&DatabaseUrl::parse(s).unwrap(), "dbinit")
                .err()
                .unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{s}: {err}");
            assert!(!err.to_string().contains("Secr3t"), "{err}");
        }
    }
}
