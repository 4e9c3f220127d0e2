//! SQLite's URL forms: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`
//! and `file:` URIs, with their parameters (`mode=ro`). A path is taken as
//! written (relative to the working directory), percent-decoded.

use std::path::PathBuf;

use dbinit_core::url::{decode, holds_secret_pair, invalid, is_secret_key, redact_loose};
use dbinit_core::CoreError;

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqlitePath {
    /// A private in-memory database.
    Memory,
    /// A database file.
    File(PathBuf),
}

/// The URL as shown: `raw` checked, its secrets hidden.
pub(crate) fn check(raw: &str) -> Result<String, CoreError> {
    parse(raw).map_err(|reason| invalid(raw, &reason))?;
    Ok(redact_loose(raw))
}

/// Where the database of `raw` is, and its parameters (secret ones left
/// out: they stay in the raw string only).
pub(crate) fn parse(raw: &str) -> Result<(SqlitePath, Vec<(String, String)>), String> {
    let (scheme, rest) = raw.split_once(':').ok_or("not a SQLite URL")?;
    if !(scheme.eq_ignore_ascii_case("sqlite") || scheme.eq_ignore_ascii_case("file")) {
        return Err(format!("`{scheme}:` is not a SQLite URL"));
    }
    parse_rest(rest)
}

/// Reads what follows `sqlite:` or `file:`.
fn parse_rest(rest: &str) -> Result<(SqlitePath, Vec<(String, String)>), String> {
    // A `#` would end up in the file name while every message hides it as
    // a fragment: refuse it, as server URLs do.
    if rest.contains('#') {
        return Err(
            "a `#` starts a URL fragment; percent-encode it (%23) in a file name".to_owned(),
        );
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    // `sqlite://user:pw@/x.db` (or `sqlite:user:pw@/x.db`) would otherwise
    // become a file named after the password: created on disk and shown in
    // every message. A `:` and later an `@` is that shape (a password may
    // hold `/`); write them percent-encoded in a file name.
    let credentials = path
        .split_once(':')
        .is_some_and(|(_, after)| after.contains('@'));
    let authority = path
        .strip_prefix("//")
        .map(|p| p.split('/').next().unwrap_or(""));
    if authority.is_some_and(|a| a.contains('@')) || credentials {
        return Err(
            "a SQLite URL has no user, password or host; write sqlite:///ABSOLUTE/PATH \
             or sqlite://RELATIVE/PATH"
                .to_owned(),
        );
    }
    if holds_secret_pair(&decode(path)) {
        return Err(
            "a secret parameter (`password=`, `key=`, ...) is inside the path; a SQLite file \
             takes no password"
                .to_owned(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> SqlitePath {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).0
    }

    fn file(s: &str) -> SqlitePath {
        SqlitePath::File(PathBuf::from(s))
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(path("sqlite://data/app.db"), file("data/app.db"));
        assert_eq!(path("sqlite:///var/lib/app.db"), file("/var/lib/app.db"));
        assert_eq!(path("sqlite:app.db"), file("app.db"));
        assert_eq!(path("SQLite:app.db"), file("app.db"));
        assert_eq!(path("sqlite::memory:"), SqlitePath::Memory);
        assert_eq!(path("sqlite://:memory:"), SqlitePath::Memory);
        assert_eq!(path("file:app.db?mode=rwc"), file("app.db"));
        assert_eq!(path("file:///tmp/a%20b.db"), file("/tmp/a b.db"));
        assert_eq!(path("file::memory:?cache=shared"), SqlitePath::Memory);
        let (_, params) = parse("sqlite://x.db?mode=ro").unwrap();
        assert_eq!(params, vec![("mode".to_owned(), "ro".to_owned())]);
        assert!(parse("sqlite:").is_err());
        assert!(parse("sqlite://").is_err());
    }

    #[test]
    fn credentials_are_refused_unshown() {
        for input in [
            "sqlite://user:Zqzz-secret@/tmp/x.db",
            "sqlite://:Zqzz-secret@/tmp/x.db",
            "sqlite://u:Zqzz-secret@host/x.db",
            "file://u:Zqzz-secret@/tmp/x.db",
        ] {
            let err = check(input).expect_err(input).to_string();
            assert!(!err.contains("Zqzz"), "{input}: {err}");
        }
        for input in [
            "sqlite:user:Zqzz-secret@/tmp/x.db",
            "sqlite:/u:Zqzz/secret@/tmp/y.db",
            "sqlite:///tmp/frag.db#Zqzz-secret",
            "sqlite:///tmp/p;password=Zqzz-secret.db",
            "sqlite:///tmp/x.db?mode=ro#Zqzz-secret",
        ] {
            let err = check(input).expect_err(input).to_string();
            assert!(!err.contains("Zqzz"), "{input}: {err}");
        }
        let shown = check("sqlite:///tmp/x.db?mode=bogus&pw=Zqzz-secret").unwrap();
        assert!(!shown.contains("Zqzz"), "{shown}");
        assert!(check("sqlite:///tmp/a@b.db").is_ok());
    }

    #[test]
    fn secret_parameters_are_not_in_the_parsed_form() {
        let (_, params) = parse("sqlite://app.db?key=Secret1&mode=rwc").unwrap();
        assert!(!format!("{params:?}").contains("Secret1"));
        assert!(!check("sqlite://app.db?key=Secret1&mode=rwc")
            .unwrap()
            .contains("Secret1"));
    }
}
