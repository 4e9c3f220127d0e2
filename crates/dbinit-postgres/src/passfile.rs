//! libpq's password conventions, which tokio-postgres does not follow: when
//! the URL has no password, `PGPASSWORD`, then the password file
//! (`PGPASSFILE`, else `~/.pgpass`). Without them users put passwords in
//! argv, where `ps` shows them to everyone.
//!
//! Written here rather than taken from a crate: the format is five
//! `:`-separated fields with `\` escapes, and no maintained crate reads it
//! with libpq's permission rule.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// Fills in the password from the environment or the password file when the
/// connection string has none.
pub(crate) fn fill_password(config: &mut Config) {
    // libpq treats an empty password as none given.
    if config.get_password().is_some_and(|p| !p.is_empty()) {
        return;
    }
    match std::env::var_os("PGPASSWORD") {
        Some(p) if !p.is_empty() => {
            config.password(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()));
            return;
        }
        _ => {}
    }
    let Some(path) = passfile_path() else { return };
    if let Some(password) = lookup(&path, config) {
        config.password(password);
    }
}

fn passfile_path() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")),
    }
}

/// The password of the first line matching this connection, as libpq does.
fn lookup(path: &std::path::Path, config: &Config) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        // libpq's rule: a file others can read is ignored, with a warning.
        tracing::warn!(
            file = %path.display(),
            "password file has group or world access; ignored (chmod 0600 it)"
        );
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(h) => h.clone(),
        // libpq matches a socket connection against `localhost`.
        Host::Unix(_) => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user()?;
    let database = config.get_dbname().unwrap_or(user);
    let wanted = [host.as_str(), port.as_str(), database, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(fields)
        .find(|f| {
            f[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want)
        })
        .map(|mut f| f.swap_remove(4))
}

/// The five fields of a line, unescaped; `None` for a malformed line.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    (out.len() == 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn lines_match_like_libpq() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pgpass");
        std::fs::write(
            &path,
            "# comment\nother:5432:*:app:wrong\n127.0.0.1:5433:orders:app:right\\:pw\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = |s: &str| Config::from_str(s).unwrap();
        assert_eq!(
            lookup(&path, &config("postgres://app@127.0.0.1:5433/orders")).as_deref(),
            Some("right:pw")
        );
        assert_eq!(
            lookup(&path, &config("postgres://bob@db/x")).as_deref(),
            Some("fallback")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(lookup(&path, &config("postgres://bob@db/x")), None);
    }
}
