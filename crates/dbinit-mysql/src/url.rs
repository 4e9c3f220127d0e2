//! MySQL's URL forms: `mysql://USER:PASSWORD@HOST[:PORT]/DATABASE?…` and
//! `mariadb://…`, read by the standard rules core applies to every server
//! URL. The parameters dbinit honours are listed; any other is refused
//! rather than ignored (an ignored `ssl-mode` would mean plain text).

use std::time::Duration;

use dbinit_core::url::{decode, invalid, is_secret_key, standard};
use dbinit_core::CoreError;

use crate::lock::Choice;

/// How the connection uses TLS (`?ssl-mode=`, MySQL's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain text.
    Disabled,
    /// TLS, the server's certificate not checked.
    Required,
    /// TLS, the certificate checked against the CA (`ssl-ca=`) or the
    /// system roots.
    VerifyCa,
    /// As `VerifyCa`, and the host name checked too.
    VerifyIdentity,
}

/// What a MySQL URL says.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) database: String,
    pub(crate) ssl_mode: SslMode,
    pub(crate) ssl_ca: Option<String>,
    pub(crate) charset: String,
    pub(crate) collation: Option<String>,
    /// `?dbinit_lock=`: `GET_LOCK`, the lease, or chosen by the server.
    pub(crate) lock: Choice,
    /// `?dbinit_lease_ttl=`.
    pub(crate) lease_ttl: Duration,
}

/// The character set a database is made with unless `?charset=` says.
pub(crate) const DEFAULT_CHARSET: &str = "utf8mb4";

/// `raw` checked; returns how it is shown.
pub(crate) fn check(raw: &str) -> Result<String, CoreError> {
    let (_, shown) = standard(raw)?;
    parse(raw)?;
    Ok(shown)
}

/// Reads `raw` (a URL the registry gave this backend).
pub(crate) fn parse(raw: &str) -> Result<Target, CoreError> {
    let (url, _) = standard(raw)?;
    let bad = |reason: &str| invalid(raw, reason);
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("a MySQL URL names a host: mysql://USER@HOST[:PORT]/DATABASE"))?;
    let database = decode(url.path().trim_start_matches('/')).into_owned();
    if database.is_empty() {
        return Err(bad(
            "a MySQL URL names its database: mysql://USER@HOST[:PORT]/DATABASE",
        ));
    }
    if database.contains('/') {
        return Err(bad("a database name has no `/`"));
    }
    // The server's rules, said before connecting.
    if database.contains('\0') || database.ends_with(' ') {
        return Err(bad(
            "a MySQL database name has no NUL character and does not end with a space",
        ));
    }
    // MySQL's limit: a longer name is refused by the server, after a
    // connection; say it before.
    if database.chars().count() > 64 {
        return Err(bad("a MySQL database name has at most 64 characters"));
    }
    let user = decode(url.username()).into_owned();
    if user.is_empty() {
        return Err(bad(
            "a MySQL URL names its user: mysql://USER@HOST/DATABASE",
        ));
    }
    let mut target = Target {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: url.port().unwrap_or(3306),
        user,
        password: url.password().map(|p| decode(p).into_owned()),
        database,
        ssl_mode: SslMode::Disabled,
        ssl_ca: None,
        charset: DEFAULT_CHARSET.to_owned(),
        collation: None,
        lock: Choice::Auto,
        lease_ttl: dbinit_core::lease::DEFAULT_TTL,
    };
    let mut ssl_mode = None;
    let mut seen = std::collections::HashSet::new();
    for (key, value) in url.query_pairs() {
        if is_secret_key(&key) {
            return Err(bad(
                "a secret parameter belongs in the user information (USER:PASSWORD@HOST)",
            ));
        }
        // `ssl-mode`, `sslmode` and `ssl_mode` are one parameter.
        if !seen.insert(key.replace(['-', '_'], "")) {
            return Err(bad(&format!(
                "`{key}` is given twice: say it once, so that no one has to guess which counts"
            )));
        }
        match key.as_ref() {
            "ssl-mode" | "sslmode" | "ssl_mode" => {
                ssl_mode = Some(
                    match value.to_ascii_uppercase().replace('-', "_").as_str() {
                        "DISABLED" => SslMode::Disabled,
                        "REQUIRED" | "PREFERRED" => SslMode::Required,
                        "VERIFY_CA" => SslMode::VerifyCa,
                        "VERIFY_IDENTITY" => SslMode::VerifyIdentity,
                        _ => {
                            return Err(bad(
                                "ssl-mode is DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY",
                            ))
                        }
                    },
                );
            }
            "ssl-ca" | "sslrootcert" | "ssl_ca" => target.ssl_ca = Some(value.into_owned()),
            "charset" => {
                target.charset =
                    identifier(&value).ok_or_else(|| bad("charset is a name such as utf8mb4"))?
            }
            "collation" => {
                target.collation = Some(
                    identifier(&value)
                        .ok_or_else(|| bad("collation is a name such as utf8mb4_unicode_ci"))?,
                );
            }
            "dbinit_lock" => {
                target.lock = match value.as_ref() {
                    "auto" => Choice::Auto,
                    "advisory" => Choice::Advisory,
                    "lease" => Choice::Lease,
                    other => {
                        return Err(bad(&format!(
                            "unknown dbinit_lock `{other}` (auto, advisory for GET_LOCK, or lease)"
                        )))
                    }
                };
            }
            "dbinit_lease_ttl" => {
                target.lease_ttl = dbinit_core::lease::parse_ttl(&value).map_err(|e| bad(&e))?;
            }
            other => {
                return Err(bad(&format!(
                    "`{other}` is not a parameter dbinit's MySQL backend reads; it reads \
                     ssl-mode, ssl-ca, charset, collation, dbinit_lock and dbinit_lease_ttl"
                )))
            }
        }
    }
    // A CA file alone asks for a checked certificate.
    target.ssl_mode = ssl_mode.unwrap_or(if target.ssl_ca.is_some() {
        SslMode::VerifyCa
    } else {
        SslMode::Disabled
    });
    if target.ssl_mode == SslMode::Disabled && target.ssl_ca.is_some() {
        return Err(bad("ssl-ca with ssl-mode=DISABLED: say which one is meant"));
    }
    Ok(target)
}

/// A character set or collation name: letters, digits and `_` only (it is
/// written into `CREATE DATABASE`).
fn identifier(value: &str) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| value.to_ascii_lowercase())
}
