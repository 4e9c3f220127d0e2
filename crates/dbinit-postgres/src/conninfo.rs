//! libpq's keyword/value connection strings (`host=h dbname='my db'`):
//! split by libpq's rules, quoted back, and shown with the password
//! hidden; and the checks a `postgres://` URL gets beyond the standard
//! reading.

use dbinit_core::url::{holds_secret_pair, invalid, is_secret_key, standard, REDACTED};
use dbinit_core::CoreError;

/// The URL or keyword string as shown: checked, its secrets hidden.
pub(crate) fn check(raw: &str, keywords: bool) -> Result<String, CoreError> {
    if !keywords {
        let (parsed, shown) = standard(raw)?;
        if parsed.host_str().is_none_or(str::is_empty)
            && !parsed.query_pairs().any(|(k, _)| k == "host")
        {
            return Err(CoreError::InvalidUrl {
                url: shown,
                reason: "no host (write postgres://USER@HOST[:PORT]/DB)".to_owned(),
            });
        }
        return Ok(shown);
    }
    let pairs = split_conninfo(raw).map_err(|reason| {
        // Unparsed, a secret's value may run on past where loose redaction
        // stops (`password=two words`): show nothing after it.
        let mut error = invalid(raw, &reason);
        if let CoreError::InvalidUrl { url, .. } = &mut error {
            if let Some(at) = url.find("=***") {
                url.truncate(at + 4);
                url.push_str(" …");
            }
        }
        error
    })?;
    if pairs
        .iter()
        .any(|(k, v)| !is_secret_key(k) && holds_secret_pair(v))
    {
        return Err(invalid(
            raw,
            "a value holds a secret parameter (`password=`, ...); quote values that \
             contain spaces, and give the password its own `password=`",
        ));
    }
    Ok(pairs
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) { REDACTED } else { v };
            format!("{k}={}", quote_conninfo(v))
        })
        .collect::<Vec<_>>()
        .join(" "))
}

/// Splits a libpq conninfo string into pairs: `key = value`, values optionally
/// single-quoted with backslash escapes (libpq's rules). The pairs include any
/// password: hand them to a driver, never show them.
///
/// # Errors
///
/// A description of the syntax error (never containing values).
pub(crate) fn split_conninfo(s: &str) -> Result<Vec<(String, String)>, String> {
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
            // The word is not echoed: it may be half of a password.
            return Err("a word without `=`; quote values that contain spaces ('…')".to_owned());
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
pub(crate) fn quote_conninfo(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return v.to_owned();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_strings_are_split_and_shown_without_the_password() {
        let raw = "host=127.0.0.1 port=5433 dbname='my db' user=app password='p w\\'d'";
        let pairs = split_conninfo(raw).unwrap();
        assert_eq!(pairs[2], ("dbname".to_owned(), "my db".to_owned()));
        assert_eq!(pairs[4], ("password".to_owned(), "p w'd".to_owned()));
        assert_eq!(
            check(raw, true).unwrap(),
            "host=127.0.0.1 port=5433 dbname='my db' user=app password=***"
        );
    }

    #[test]
    fn values_with_any_white_space_are_quoted() {
        assert_eq!(quote_conninfo("qa7\tdbname=qa8"), "'qa7\tdbname=qa8'");
        assert_eq!(quote_conninfo("a\nb"), "'a\nb'");
        assert_eq!(quote_conninfo("plain"), "plain");
    }

    #[test]
    fn urls_need_a_host_and_keep_their_secrets() {
        assert!(check("postgres://", false).is_err());
        let shown = check(
            "postgres://app:s3cret@db.internal:6432/orders?sslmode=require",
            false,
        )
        .unwrap();
        assert_eq!(
            shown,
            "postgres://app:***@db.internal:6432/orders?sslmode=require"
        );
        assert!(check("postgres:///orders?host=/var/run/postgresql", false).is_ok());
        for bad in [
            "host='unterminated password=x",
            "host=h user='postgres password=Zqzz' dbname=x",
        ] {
            let err = check(bad, true).expect_err(bad).to_string();
            assert!(!err.contains("Zqzz") && !err.contains("=x'"), "{err}");
        }
    }
}
