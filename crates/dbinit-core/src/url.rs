//! [`DatabaseUrl`]: the scheme that selects a backend, and the URL shown
//! with every secret hidden; and what every backend's reading of its URLs
//! shares: the standard (RFC 3986) reading a server URL starts from, the
//! names of secret parameters, and redaction that holds for any text,
//! parsed or not.
//!
//! Each backend reads the URLs it claims by its own rules
//! ([`Connector::check_url`](crate::Connector::check_url)); which backend
//! that is, is `resolve.rs`.

use std::fmt;
use std::str::FromStr;

use crate::CoreError;

/// Placeholder shown instead of a secret.
pub const REDACTED: &str = "***";

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

/// Whether a query or keyword parameter named `key` holds a secret.
pub fn is_secret_key(key: &str) -> bool {
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
    pub(crate) raw: String,
    pub(crate) scheme: String,
    pub(crate) keywords: bool,
    pub(crate) redacted: String,
}

impl DatabaseUrl {
    /// The scheme that selects the backend (`sqlite`, `postgres`, whatever
    /// an unknown URL names), lower case. A `key=value` string reports the
    /// first scheme of the backend that reads it.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the input is a scheme-less `key=value` string rather than a
    /// URL (a value may contain `://`, so only the parser can tell).
    pub fn is_keywords(&self) -> bool {
        self.keywords
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

/// [`CoreError::InvalidUrl`] for `input`, shown with [`redact_loose`].
pub fn invalid(input: &str, reason: &str) -> CoreError {
    CoreError::InvalidUrl {
        url: redact_loose(input),
        reason: reason.to_owned(),
    }
}

/// The scheme of `input` (RFC 3986: a letter, then letters, digits, `+`,
/// `-`, `.`), when it starts with one followed by `:`.
pub(crate) fn scheme_of(input: &str) -> Option<&str> {
    let (scheme, _) = input.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// True when the input starts like a `key=value` string.
pub(crate) fn looks_like_keywords(s: &str) -> bool {
    let Some((key, _)) = s.split_once('=') else {
        return false;
    };
    let key = key.trim();
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads `input` as a standard URL (RFC 3986) and returns it with the
/// URL shown, every secret hidden. Refused: a fragment (where a mistyped
/// `#password=` lands), an `@` after the host (an unencoded password
/// split in two), and a secret `key=value` pair inside the path, the user
/// name or another parameter's value (never created, shown or logged).
///
/// # Errors
///
/// [`CoreError::InvalidUrl`] saying why, the input redacted.
pub fn standard(input: &str) -> Result<(url::Url, String), CoreError> {
    let parsed = url::Url::parse(input).map_err(|e| invalid(input, &e.to_string()))?;
    if parsed.cannot_be_a_base() {
        return Err(invalid(
            input,
            "a server URL starts SCHEME://; write SCHEME://USER@HOST[:PORT]/DB",
        ));
    }
    // An unencoded `@`, `/` or `#` in a password splits it: part of it
    // would land in the path or the fragment, and be shown as a database
    // name. Refuse rather than guess.
    if parsed.fragment().is_some() {
        return Err(invalid(
            input,
            "a `#` starts a URL fragment; percent-encode it (%23) if it is part of the password",
        ));
    }
    // Drivers split user information at an `@` the standard reading leaves
    // in the path or the query: the host connected to would not be the
    // host shown.
    let after_host_has_at =
        parsed.path().contains('@') || parsed.query().is_some_and(|q| q.contains('@'));
    if after_host_has_at {
        return Err(invalid(
            input,
            "an `@` after the host is ambiguous; percent-encode `@` (%40) and `/` (%2F) in the password",
        ));
    }
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
    let shown = redact_url(&parsed);
    Ok((parsed, shown))
}

/// Percent-decodes `s` (invalid UTF-8 replaced).
pub fn decode(s: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
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
pub fn holds_secret_pair(text: &str) -> bool {
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
    let starts = match s[..at].find("://") {
        Some(i) => vec![i + 3],
        // `user:pw@host` (the segment after the last `/`), or
        // `scheme:user:pw/x@host` (everything after the scheme).
        None => {
            let segment = s[..at].rfind(['/', ' ']).map_or(0, |i| i + 1);
            let after_scheme = scheme_of(s).map(|scheme| scheme.len() + 1);
            std::iter::once(segment).chain(after_scheme).collect()
        }
    };
    for start in starts.into_iter().filter(|&start| start <= at) {
        if let Some(colon) = s[start..at].find(':') {
            return format!("{}{REDACTED}{}", &s[..=start + colon], &s[at..]);
        }
    }
    s.to_owned()
}

/// Best-effort redaction for strings that did not parse: hides the password
/// part of `user:password@` and the value of any secret `key=value`.
pub fn redact_loose(input: &str) -> String {
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
        let key_len = if at_key_start {
            chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '%')
                .count()
        } else {
            0
        };
        if key_len > 0 && chars.get(i + key_len) == Some(&'=') {
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
        // Not a secret: the whole run at once (one char at a time made a
        // long input quadratic).
        let run = key_len.max(1);
        out.extend(&chars[i..i + run]);
        i += run;
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
    use crate::redact;

    fn parse(s: &str) -> DatabaseUrl {
        DatabaseUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn password_in_query_is_redacted() {
        let url = parse("postgresql://app@localhost/db?password=hunter2&application_name=x");
        assert!(!url.to_string().contains("hunter2"), "{url}");
        assert!(url.to_string().contains("application_name=x"));
    }

    #[test]
    fn bad_inputs_are_errors_without_secrets() {
        for input in [
            "",
            "   ",
            "garbage",
            "/tmp",
            "./data/app.db",
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
    fn unknown_schemes_parse_so_the_registry_can_name_them() {
        let url = parse("mysql://root:pw@localhost/app");
        assert_eq!(url.scheme(), "mysql");
        assert_eq!(url.to_string(), "mysql://root:***@localhost/app");
    }

    /// Found by a hostile try: a driver that splits user information at
    /// the first `@` would connect to another host than the one shown.
    #[test]
    fn an_at_sign_after_the_host_or_no_authority_is_refused_unshown() {
        for input in [
            "postgres://127.0.0.1:1/db?application_name=x@127.0.0.1:5432",
            "postgres://u:12?Zq9Secret@127.0.0.1:1/db",
            "mysql://u:12?Zq9Secret@h/db",
            "postgres:u:Zq9/Secret@127.0.0.1:1/db",
            "mysql:/u:Zq9/Secret@h",
        ] {
            let err = standard(input).expect_err(input);
            assert!(!err.to_string().contains("Zq9"), "{input}: {err}");
            assert!(!redact(input).contains("Zq9"), "{input}: {}", redact(input));
        }
    }

    #[test]
    fn loose_redaction_is_linear_in_its_input() {
        let long = "a".repeat(1 << 20);
        assert_eq!(redact_loose(&long), long);
        let pairs = "x=1&".repeat(1 << 16);
        assert_eq!(redact_loose(&pairs), pairs);
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
        assert_eq!(redact_loose("postgres:u:pw/x@h/db"), "postgres:u:***@h/db");
        assert_eq!(redact_loose("sqlite:/tmp/a@b.db"), "sqlite:/tmp/a@b.db");
    }
}
