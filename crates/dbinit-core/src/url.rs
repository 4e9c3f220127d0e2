//! [`DatabaseUrl`]: one parser for every accepted form, with the password
//! redacted wherever the URL is shown.
//!
//! Accepted forms: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`,
//! `file:` URIs (SQLite), `postgres://` / `postgresql://` URLs, libpq
//! `key=value` strings, and any other `scheme://...` URL (so that an unknown
//! scheme can be reported as such by the registry rather than as garbage).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::CoreError;

/// Placeholder shown instead of a secret.
const REDACTED: &str = "***";

/// Query or conninfo keys whose values are secrets.
const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "pwd",
    "pw",
    "passwd",
    "sslpassword",
    "key",
    "hexkey",
    "secret",
    "token",
];

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key.trim()))
}

/// A parsed database URL.
///
/// The original string (which may hold a password) is private and only handed
/// out by [`DatabaseUrl::expose_secret`]; `Display` and `Debug` show the
/// redacted form.
#[derive(Clone)]
pub struct DatabaseUrl {
    raw: String,
    conninfo: bool,
    scheme: String,
    form: UrlForm,
    redacted: String,
}

/// The parts of a URL that a backend or a report needs. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlForm {
    /// `sqlite:`, `sqlite://`, `sqlite::memory:` or a `file:` URI.
    Sqlite {
        /// The database file, or memory.
        path: SqlitePath,
        /// Query parameters, such as `mode=ro`.
        params: Vec<(String, String)>,
    },
    /// A network URL (`postgres://...`) or a libpq `key=value` string.
    Server {
        /// Host name, IP address or socket directory.
        host: Option<String>,
        /// Port.
        port: Option<u16>,
        /// Database name.
        database: Option<String>,
        /// User name.
        user: Option<String>,
        /// Non-secret parameters (`sslmode`, `application_name`, ...).
        params: Vec<(String, String)>,
    },
}

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlitePath {
    /// A private in-memory database.
    Memory,
    /// A database file.
    File(PathBuf),
}

impl DatabaseUrl {
    /// Parses `input`; see the module docs for the accepted forms.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidUrl`] (with the input redacted) when the input is
    /// empty, has no scheme, or is malformed for its scheme.
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        let trimmed = input.trim();
        let invalid = |reason: &str| CoreError::InvalidUrl {
            url: redact_loose(trimmed),
            reason: reason.to_owned(),
        };
        if trimmed.is_empty() {
            return Err(invalid("the url is empty"));
        }
        if let Some(rest) = strip_prefix_ci(trimmed, "sqlite:") {
            let (path, params) = parse_sqlite(rest).map_err(|r| invalid(&r))?;
            return Ok(Self::new(
                trimmed,
                "sqlite",
                UrlForm::Sqlite { path, params },
                redact_loose(trimmed),
            ));
        }
        if let Some(rest) = strip_prefix_ci(trimmed, "file:") {
            let (path, params) = parse_sqlite(rest).map_err(|r| invalid(&r))?;
            return Ok(Self::new(
                trimmed,
                "file",
                UrlForm::Sqlite { path, params },
                redact_loose(trimmed),
            ));
        }
        if !has_url_scheme(trimmed) && looks_like_conninfo(trimmed) {
            let pairs = split_conninfo(trimmed).map_err(|r| invalid(&r))?;
            if pairs
                .iter()
                .any(|(k, v)| !is_secret_key(k) && holds_secret_pair(v))
            {
                return Err(invalid(
                    "a value holds a secret parameter (`password=`, ...); quote values that \
                     contain spaces, and give the password its own `password=`",
                ));
            }
            let redacted = pairs
                .iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) { REDACTED } else { v };
                    format!("{k}={}", quote_conninfo(v))
                })
                .collect::<Vec<_>>()
                .join(" ");
            let mut url = Self::new(trimmed, "postgres", server_form(&pairs, None), redacted);
            url.conninfo = true;
            return Ok(url);
        }
        if !has_url_scheme(trimmed) {
            let reason = if trimmed.starts_with('/') || trimmed.starts_with('.') {
                "a bare path is not a url; for a SQLite file write sqlite://PATH"
            } else {
                "no scheme (expected something like sqlite://, postgres:// or key=value pairs)"
            };
            return Err(invalid(reason));
        }
        let parsed = url::Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
        // An unencoded `@`, `/` or `#` in a password splits it: part of it
        // would land in the path or the fragment, and be shown as a database
        // name. Refuse rather than guess.
        if parsed.fragment().is_some() {
            return Err(invalid(
                "a `#` starts a URL fragment; percent-encode it (%23) if it is part of the password",
            ));
        }
        let after_host_has_at =
            parsed.path().contains('@') || parsed.query().is_some_and(|q| q.contains('@'));
        if after_host_has_at && (parsed.password().is_some() || parsed.path().contains('@')) {
            return Err(invalid(
                "an `@` after the host is ambiguous; percent-encode `@` (%40) and `/` (%2F) in the password",
            ));
        }
        let scheme = parsed.scheme().to_ascii_lowercase();
        let redacted = redact_url(&parsed);
        // `/app;password=x` is a database name to the server and a secret to
        // the user who typed it: never create, show or log such a name (nor
        // such a user name or parameter value).
        let smuggled = holds_secret_pair(&decode(parsed.path()))
            || holds_secret_pair(&decode(parsed.username()))
            || parsed
                .query_pairs()
                .any(|(k, v)| !is_secret_key(&k) && holds_secret_pair(&v));
        if smuggled {
            let mut shown = parsed.clone();
            shown.set_path("/***");
            shown.set_query(None);
            let _ = shown.set_username("***");
            return Err(CoreError::InvalidUrl {
                url: redact_url(&shown),
                reason: "a secret parameter (`password=`, `key=`, ...) is inside the path, the \
                         user name or another parameter's value; give it its own query \
                         parameter: ?password=... (percent-encoded)"
                    .to_owned(),
            });
        }
        if parsed.host_str().is_none_or(str::is_empty)
            && !parsed.query_pairs().any(|(k, _)| k == "host")
            && matches!(scheme.as_str(), "postgres" | "postgresql")
        {
            return Err(CoreError::InvalidUrl {
                url: redacted,
                reason: "no host (write postgres://USER@HOST[:PORT]/DB)".to_owned(),
            });
        }
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let database = parsed
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(|s| decode(s).into_owned());
        let user = Some(parsed.username())
            .filter(|u| !u.is_empty())
            .map(|u| decode(u).into_owned());
        let mut form = server_form(&pairs, parsed.host_str().filter(|h| !h.is_empty()));
        if let UrlForm::Server {
            port,
            database: db,
            user: u,
            ..
        } = &mut form
        {
            *port = parsed.port().or(*port);
            *db = database.or(db.take());
            *u = user.or(u.take());
        }
        Ok(Self::new(trimmed, &scheme, form, redacted))
    }

    fn new(raw: &str, scheme: &str, form: UrlForm, redacted: String) -> Self {
        DatabaseUrl {
            raw: raw.to_owned(),
            conninfo: false,
            scheme: scheme.to_owned(),
            form,
            redacted,
        }
    }

    /// The scheme that selects the backend: `sqlite`, `file`, `postgres`,
    /// `postgresql`, or whatever an unknown URL names. A libpq `key=value`
    /// string reports `postgres`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the input is a libpq `key=value` string rather than a URL
    /// (a value may contain `://`, so only the parser can tell).
    pub fn is_conninfo(&self) -> bool {
        self.conninfo
    }

    /// The parsed, secret-free parts of the URL.
    pub fn form(&self) -> &UrlForm {
        &self.form
    }

    /// The SQLite location, when this is a SQLite URL.
    pub fn sqlite_path(&self) -> Option<&SqlitePath> {
        match &self.form {
            UrlForm::Sqlite { path, .. } => Some(path),
            UrlForm::Server { .. } => None,
        }
    }

    /// The URL with every secret replaced by `***`. Same as `Display`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The original input, password included. Hand it to a driver only;
    /// never log or format it.
    pub fn expose_secret(&self) -> &str {
        &self.raw
    }
}

impl FromStr for DatabaseUrl {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.redacted).finish()
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn decode(s: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

/// Parses what follows `sqlite:` or `file:`.
fn parse_sqlite(rest: &str) -> Result<(SqlitePath, Vec<(String, String)>), String> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(authority) = path.strip_prefix("//") {
        // `sqlite://user:pw@/x.db` would otherwise become the relative path
        // `user:pw@/x.db`: created on disk and shown in every message.
        if authority.split('/').next().is_some_and(|a| a.contains('@')) {
            return Err(
                "a SQLite URL has no user, password or host; write sqlite:///ABSOLUTE/PATH \
                 or sqlite://RELATIVE/PATH"
                    .to_owned(),
            );
        }
    }
    let path = path.strip_prefix("//").unwrap_or(path);
    // Secret parameters (SQLCipher's `key`, ...) stay in the raw string only.
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| !is_secret_key(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let memory = matches!(path, ":memory:" | "")
        && (path == ":memory:" || params.iter().any(|(k, v)| k == "mode" && v == "memory"));
    if memory {
        return Ok((SqlitePath::Memory, params));
    }
    if path.is_empty() {
        return Err("no file path (write sqlite://PATH or sqlite::memory:)".to_owned());
    }
    let decoded = decode(path);
    if decoded.contains('\0') {
        return Err("the path contains a NUL byte".to_owned());
    }
    Ok((SqlitePath::File(PathBuf::from(decoded.as_ref())), params))
}

/// True when the input starts with `scheme://` (RFC 3986 scheme characters).
fn has_url_scheme(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// True when the input starts like a libpq `key=value` string.
fn looks_like_conninfo(s: &str) -> bool {
    let Some((key, _)) = s.split_once('=') else {
        return false;
    };
    let key = key.trim();
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits a libpq conninfo string into pairs: `key = value`, values optionally
/// single-quoted with backslash escapes (libpq's rules). The pairs include any
/// password: hand them to a driver, never show them.
///
/// # Errors
///
/// A description of the syntax error (never containing values).
pub fn split_conninfo(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("expected `=` after `{key}`"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or("unterminated quoted value")?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted value".to_owned()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    value.push(chars.next().ok_or("dangling backslash")?);
                    continue;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key, value));
    }
}

/// Quotes a conninfo value when it needs it (libpq's rules).
pub fn quote_conninfo(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return v.to_owned();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Builds a [`UrlForm::Server`] from libpq-style pairs (conninfo or URL query).
fn server_form(pairs: &[(String, String)], host: Option<&str>) -> UrlForm {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    UrlForm::Server {
        host: host
            .map(str::to_owned)
            .or_else(|| get("host").or_else(|| get("hostaddr"))),
        port: get("port").and_then(|p| p.parse().ok()),
        database: get("dbname"),
        user: get("user"),
        params: pairs
            .iter()
            .filter(|(k, _)| {
                !is_secret_key(k)
                    && !matches!(k.as_str(), "host" | "hostaddr" | "port" | "dbname" | "user")
            })
            .cloned()
            .collect(),
    }
}

fn redact_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: the URL already has a host, since it has a password.
        let _ = shown.set_password(Some(REDACTED));
    }
    if shown.query().is_some() {
        let pairs: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_key(&k) {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // Keep the stars readable rather than percent-encoded.
    shown.to_string().replace("%2A%2A%2A", REDACTED)
}

/// `input` with every secret hidden, whether or not it parses: for showing
/// a URL that came from the user before it was validated.
pub fn redact(input: &str) -> String {
    match DatabaseUrl::parse(input) {
        Ok(url) => url.redacted,
        // The parser's refusal already shows the input redacted, knowing why
        // it was refused (a secret in the path, say).
        Err(CoreError::InvalidUrl { url, .. }) => url,
        Err(_) => redact_loose(input.trim()),
    }
}

/// A service's URL (a cache, a queue, an HTTP endpoint: anything but a
/// database URL) as shown: everything before the last `@` of the address
/// (user names can be tokens; passwords may hold `/`, `?`, `#` or `@`
/// unencoded), every query value (a token may hide under any name, or be a
/// bare `?abc123`) and any fragment hidden. Without a scheme, all of it.
/// Over-hiding is the safe error.
pub fn redact_service_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return REDACTED.to_owned();
    };
    let rest = match rest.rfind('@') {
        Some(at) => format!("{REDACTED}@{}", &rest[at + 1..]),
        None => rest.to_owned(),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((before, _)) => (before.to_owned(), format!("#{REDACTED}")),
        None => (rest, String::new()),
    };
    let rest = match rest.split_once('?') {
        Some((before, query)) => {
            let hidden: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}={REDACTED}"),
                    None => REDACTED.to_owned(),
                })
                .collect();
            format!("{before}?{}", hidden.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}{fragment}")
}

/// Whether `text` holds a `key=` pair whose key names a secret, after any
/// character that is not part of a key.
fn holds_secret_pair(text: &str) -> bool {
    let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if is_key(c) {
            continue;
        }
        if c == '=' && start < i && is_secret_key(&text[start..i]) {
            return true;
        }
        start = i + c.len_utf8();
    }
    false
}

/// Hides the password in a `user:password@host` segment, wherever it is.
///
/// With `scheme://`, everything from the first `:` after it to the last `@`
/// is hidden (a password may hold `/`, `@` or `:`); over-hiding is the safe
/// error. Without a scheme, the segment before the last `@` counts.
fn redact_userinfo(s: &str) -> String {
    let Some(at) = s.rfind('@') else {
        return s.to_owned();
    };
    let segment_start = match s[..at].find("://") {
        Some(i) => i + 3,
        None => s[..at].rfind(['/', ' ']).map_or(0, |i| i + 1),
    };
    match s[segment_start..at].find(':') {
        Some(colon) => format!("{}{REDACTED}{}", &s[..=segment_start + colon], &s[at..]),
        None => s.to_owned(),
    }
}

/// Best-effort redaction for strings that did not parse: hides the password
/// part of `user:password@` and the value of any secret `key=value`.
pub(crate) fn redact_loose(input: &str) -> String {
    // `password = x` is the same pair as `password=x` to libpq.
    let mut joined = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            let mut spaces = String::from(c);
            while chars.peek().is_some_and(|n| n.is_whitespace()) {
                spaces.push(chars.next().unwrap_or(' '));
            }
            if chars.peek() == Some(&'=') || joined.ends_with('=') {
                continue;
            }
            joined.push_str(&spaces);
        } else {
            joined.push(c);
        }
    }
    let mut rest = redact_userinfo(&joined);
    // A fragment is never needed to show which database is meant, and it is
    // where a mistyped `#password=...` lands: hide all of it.
    if let Some(hash) = rest.find('#') {
        rest.truncate(hash);
        rest.push('#');
        rest.push_str(REDACTED);
    }
    // Secret `key=value` pairs, the key after a separator (`&`, `?`, `;`,
    // white space) or at the start. A quoted value is hidden up to its
    // closing, unescaped quote; an unquoted one up to the next separator.
    let is_separator = |c: char| matches!(c, '&' | '?' | ';') || c.is_whitespace();
    let chars: Vec<char> = rest.chars().collect();
    let mut out = String::with_capacity(rest.len());
    let mut i = 0;
    while i < chars.len() {
        let at_key_start = i == 0 || is_separator(chars[i - 1]);
        // A key may be percent-encoded (`pass%77ord`): decode it to judge it.
        let key_len = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '%')
            .count();
        if at_key_start && key_len > 0 && chars.get(i + key_len) == Some(&'=') {
            let key: String = chars[i..i + key_len].iter().collect();
            if is_secret_key(&decode(&key)) {
                out.push_str(&key);
                out.push('=');
                out.push_str(REDACTED);
                i += key_len + 1;
                if chars.get(i) == Some(&'\'') {
                    i += 1;
                    while i < chars.len() && chars[i] != '\'' {
                        i += if chars[i] == '\\' { 2 } else { 1 };
                    }
                    i += 1;
                } else {
                    while i < chars.len() && !is_separator(chars[i]) {
                        i += 1;
                    }
                }
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn service_urls_hide_user_information_query_values_and_fragments() {
        for (url, shown) in [
            (
                "redis://:S3cret@127.0.0.1:6379/0",
                "redis://***@127.0.0.1:6379/0",
            ),
            ("redis://S3cret@cache", "redis://***@cache"),
            (
                "redis://default:12345#S3cret@h:6379/0",
                "redis://***@h:6379/0",
            ),
            (
                "redis://default:12345/S3cret@h:6379/0",
                "redis://***@h:6379/0",
            ),
            (
                "redis://default:12345?S3cret@h:6379/0",
                "redis://***@h:6379/0",
            ),
            ("redis://:a@b@S3cret@cache", "redis://***@cache"),
            (
                "redis+unix:///r.sock?db=1&pa%73s=S3cret",
                "redis+unix:///r.sock?db=***&pa%73s=***",
            ),
            (
                "http://h:9/x?access_token=S3cret&S3cret",
                "http://h:9/x?access_token=***&***",
            ),
            ("http://h:9/x#S3cret", "http://h:9/x#***"),
            ("no scheme S3cret", "***"),
        ] {
            assert_eq!(redact_service_url(url), shown, "{url}");
        }
    }

    use super::*;

    fn parse(s: &str) -> DatabaseUrl {
        DatabaseUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn file(s: &str) -> SqlitePath {
        SqlitePath::File(PathBuf::from(s))
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(
            parse("sqlite://data/app.db").sqlite_path(),
            Some(&file("data/app.db"))
        );
        assert_eq!(
            parse("sqlite:///var/lib/app.db").sqlite_path(),
            Some(&file("/var/lib/app.db"))
        );
        assert_eq!(parse("sqlite:app.db").sqlite_path(), Some(&file("app.db")));
        assert_eq!(parse("SQLite:app.db").scheme(), "sqlite");
        assert_eq!(
            parse("sqlite::memory:").sqlite_path(),
            Some(&SqlitePath::Memory)
        );
        assert_eq!(
            parse("sqlite://:memory:").sqlite_path(),
            Some(&SqlitePath::Memory)
        );
        assert_eq!(
            parse("file:app.db?mode=rwc").sqlite_path(),
            Some(&file("app.db"))
        );
        assert_eq!(
            parse("file:///tmp/a%20b.db").sqlite_path(),
            Some(&file("/tmp/a b.db"))
        );
        assert_eq!(
            parse("file::memory:?cache=shared").sqlite_path(),
            Some(&SqlitePath::Memory)
        );
        let UrlForm::Sqlite { params, .. } = parse("sqlite://x.db?mode=ro").form().clone() else {
            panic!("not sqlite")
        };
        assert_eq!(params, vec![("mode".to_owned(), "ro".to_owned())]);
    }

    #[test]
    fn postgres_url_parts_and_redaction() {
        let url = parse("postgres://app:s3cret@db.internal:6432/orders?sslmode=require");
        assert_eq!(url.scheme(), "postgres");
        assert_eq!(
            url.form(),
            &UrlForm::Server {
                host: Some("db.internal".into()),
                port: Some(6432),
                database: Some("orders".into()),
                user: Some("app".into()),
                params: vec![("sslmode".into(), "require".into())],
            }
        );
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db.internal:6432/orders?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(
            url.expose_secret(),
            "postgres://app:s3cret@db.internal:6432/orders?sslmode=require"
        );
    }

    #[test]
    fn password_in_query_is_redacted() {
        let url = parse("postgresql://app@localhost/db?password=hunter2&application_name=x");
        assert!(!url.to_string().contains("hunter2"), "{url}");
        assert!(url.to_string().contains("application_name=x"));
    }

    #[test]
    fn socket_directory_as_host() {
        let url = parse("postgres:///orders?host=/var/run/postgresql");
        let UrlForm::Server { host, database, .. } = url.form() else {
            panic!()
        };
        assert_eq!(host.as_deref(), Some("/var/run/postgresql"));
        assert_eq!(database.as_deref(), Some("orders"));
    }

    #[test]
    fn conninfo_strings() {
        let url = parse("host=127.0.0.1 port=5433 dbname='my db' user=app password='p w\\'d'");
        assert_eq!(url.scheme(), "postgres");
        let UrlForm::Server {
            host,
            port,
            database,
            user,
            ..
        } = url.form()
        else {
            panic!()
        };
        assert_eq!(host.as_deref(), Some("127.0.0.1"));
        assert_eq!(*port, Some(5433));
        assert_eq!(database.as_deref(), Some("my db"));
        assert_eq!(user.as_deref(), Some("app"));
        assert_eq!(
            url.to_string(),
            "host=127.0.0.1 port=5433 dbname='my db' user=app password=***"
        );
    }

    #[test]
    fn bad_inputs_are_errors_without_secrets() {
        for input in [
            "",
            "   ",
            "garbage",
            "/tmp",
            "./data/app.db",
            "sqlite:",
            "sqlite://",
            "postgres://",
            "host='unterminated password=x",
            "postgres//user:topsecret@host/db",
        ] {
            let err = DatabaseUrl::parse(input).expect_err(input);
            assert!(
                matches!(err, CoreError::InvalidUrl { .. }),
                "{input}: {err}"
            );
            assert!(!err.to_string().contains("topsecret"), "{err}");
        }
    }

    /// Found by the fuzzer: escaped quotes inside a quoted password, and a
    /// `://` inside a conninfo value.
    #[test]
    fn quoted_conninfo_secrets_with_escapes_stay_hidden() {
        let input = r"host=h password='Zq\'\';=:///Xv' x=1";
        assert_eq!(redact_loose(input), "host=h password=*** x=1");
        let shown = match DatabaseUrl::parse(input) {
            Ok(url) => format!("{url} {url:?}"),
            Err(e) => e.to_string(),
        };
        assert!(!shown.contains("Zq") && !shown.contains("Xv"), "{shown}");
    }

    #[test]
    fn secrets_in_the_path_or_fragment_are_never_shown() {
        for input in [
            "postgresql://postgres@127.0.0.1:5432/app;password=Zqzz",
            "postgresql://postgres@127.0.0.1:5432/app%3Bpassword%3DZqzz",
            "postgres://u@h/app#password=Zqzz",
            "postgres://u@h/app#Zqzz",
            "postgres://u:pw@h/app?x=1#token=Zqzz",
        ] {
            let err = DatabaseUrl::parse(input).expect_err(input);
            assert_eq!(err.kind(), crate::ErrorKind::InvalidUrl, "{input}");
            assert!(!err.to_string().contains("Zqzz"), "{input}: {err}");
            assert!(!redact(input).contains("Zqzz"), "{input}");
        }
    }

    #[test]
    fn secrets_behind_encoded_keys_or_inside_other_values_are_never_shown() {
        for input in [
            "sqlite:///tmp/x.db?%6Bey=Zqzz-secret",
            "postgres://postgres@127.0.0.1:99999/db?pass%77ord=Zqzz-secret",
            "postgres://127.0.0.1/db?user=postgres;password=Zqzz-secret",
            "postgres://u:p@h/a%2Fpassword=Zqzz-secret",
            "postgres://password=Zqzz-secret@h/db",
            "host=h user='postgres password=Zqzz-secret' dbname=x",
        ] {
            let shown = match DatabaseUrl::parse(input) {
                Ok(url) => format!("{url} {url:?}"),
                Err(e) => e.to_string(),
            };
            assert!(!shown.contains("Zqzz"), "{input}: {shown}");
            assert!(!redact(input).contains("Zqzz"), "{input}");
        }
    }

    #[test]
    fn sqlite_urls_with_credentials_are_refused_unshown() {
        for input in [
            "sqlite://user:Zqzz-secret@/tmp/x.db",
            "sqlite://:Zqzz-secret@/tmp/x.db",
            "sqlite://u:Zqzz-secret@host/x.db",
            "file://u:Zqzz-secret@/tmp/x.db",
            "sqlite:///tmp/x.db?mode=bogus&pw=Zqzz-secret",
        ] {
            let shown = match DatabaseUrl::parse(input) {
                Ok(url) => format!("{url} {url:?}"),
                Err(e) => e.to_string(),
            };
            assert!(!shown.contains("Zqzz"), "{input}: {shown}");
        }
        for input in ["sqlite://user:pw@/tmp/x.db", "file://u:pw@/tmp/x.db"] {
            assert!(DatabaseUrl::parse(input).is_err(), "{input}");
        }
        assert!(DatabaseUrl::parse("sqlite:///tmp/a@b.db").is_ok());
    }

    #[test]
    fn conninfo_values_with_any_white_space_are_quoted() {
        assert_eq!(quote_conninfo("qa7\tdbname=qa8"), "'qa7\tdbname=qa8'");
        assert_eq!(quote_conninfo("a\nb"), "'a\nb'");
        assert_eq!(quote_conninfo("plain"), "plain");
    }

    #[test]
    fn conninfo_values_may_hold_scheme_separators() {
        let url = parse("host=h password=Sec://ret-1234 application_name=http://svc");
        assert!(url.is_conninfo());
        assert!(!url.to_string().contains("ret-1234"), "{url}");
        assert!(!parse("postgres://h/db").is_conninfo());
    }

    #[test]
    fn sqlite_secret_parameters_are_not_in_the_parsed_form() {
        let url = parse("sqlite://app.db?key=Secret1&mode=rwc");
        assert!(!format!("{:?}", url.form()).contains("Secret1"));
        assert!(!url.to_string().contains("Secret1"));
        assert!(url.expose_secret().contains("Secret1"));
    }

    #[test]
    fn unknown_schemes_parse_so_the_registry_can_name_them() {
        let url = parse("mysql://root:pw@localhost/app");
        assert_eq!(url.scheme(), "mysql");
        assert_eq!(url.to_string(), "mysql://root:***@localhost/app");
    }

    #[test]
    fn loose_redaction() {
        assert_eq!(redact_loose("x://u:p@h/db"), "x://u:***@h/db");
        assert_eq!(redact_loose("host=h password=p"), "host=h password=***");
        assert_eq!(redact_loose("a?key=1&b=2"), "a?key=***&b=2");
        assert_eq!(redact_loose("user@host"), "user@host");
        assert_eq!(redact_loose("password='a b c' x=1"), "password=*** x=1");
        assert_eq!(
            redact_loose("postgres://u:pa/ss@h:x/db"),
            "postgres://u:***@h:x/db"
        );
        assert_eq!(
            redact_loose("postgres://u:p@ss:w@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_loose("host=h password = s3 port=x"),
            "host=h password=*** port=x"
        );
    }
}
