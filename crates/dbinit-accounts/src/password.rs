//! Where the admin password comes from, and how it is stored (argon2id).

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
use dbinit_core::{CoreError, Environment, SecretSink};
use rand::distributions::{Alphanumeric, DistString};

/// Variable holding the admin password.
pub(crate) const PASSWORD_VAR: &str = "DBINIT_ADMIN_PASSWORD";
/// Variable naming a file that holds the admin password.
pub(crate) const PASSWORD_FILE_VAR: &str = "DBINIT_ADMIN_PASSWORD_FILE";

/// Shortest password accepted from the environment or a file.
const MIN_LENGTH: usize = 12;
/// Length of a generated password: 24 alphanumerics, about 142 bits.
const GENERATED_LENGTH: usize = 24;

/// A password that must not be printed. Deliberately no `Debug`.
pub(crate) struct Password(String);

fn seed_error(message: String) -> CoreError {
    CoreError::SeedFailed {
        seeder: "admin_user".to_owned(),
        message,
        source: None,
    }
}

/// The password configured in [`PASSWORD_VAR`], else in the file named by
/// [`PASSWORD_FILE_VAR`]; `None` when neither is set.
///
/// # Errors
///
/// A value that is not UTF-8, a file that cannot be read or holds more
/// than one line, a password shorter than [`MIN_LENGTH`].
pub(crate) fn configured() -> Result<Option<Password>, CoreError> {
    let (value, from) = match std::env::var(PASSWORD_VAR) {
        Ok(value) => (value, PASSWORD_VAR.to_owned()),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(seed_error(format!("{PASSWORD_VAR} is not valid UTF-8")))
        }
        Err(std::env::VarError::NotPresent) => match std::env::var_os(PASSWORD_FILE_VAR) {
            None => return Ok(None),
            Some(path) => (
                read_file(std::path::Path::new(&path))?,
                PASSWORD_FILE_VAR.to_owned(),
            ),
        },
    };
    if value.chars().count() < MIN_LENGTH {
        return Err(seed_error(format!(
            "the admin password from {from} is shorter than {MIN_LENGTH} characters"
        )));
    }
    Ok(Some(Password(value)))
}

/// The most a password file may hold: a password, not a device or a log.
const MAX_FILE_BYTES: u64 = 4096;

/// The one line of a password file, without its line ending. Only a regular
/// file is read (a FIFO would block, `/dev/zero` never ends).
fn read_file(path: &std::path::Path) -> Result<String, CoreError> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let shown = path.display();
    let cannot = |e: &dyn std::fmt::Display| {
        seed_error(format!("cannot read {PASSWORD_FILE_VAR} ({shown}): {e}"))
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| cannot(&e))?;
    let meta = file.metadata().map_err(|e| cannot(&e))?;
    if !meta.is_file() {
        return Err(cannot(&"not a regular file"));
    }
    let mut text = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| cannot(&e))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(cannot(&format_args!("longer than {MAX_FILE_BYTES} bytes")));
    }
    let text = String::from_utf8(text)
        .map_err(|_| seed_error(format!("{PASSWORD_FILE_VAR} ({shown}) is not valid UTF-8")))?;
    let line = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if line.contains(['\n', '\r']) {
        return Err(seed_error(format!(
            "{PASSWORD_FILE_VAR} ({shown}) holds more than one line; it must hold the password alone"
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            file = %shown,
            "the admin password file can be read by other users; chmod 0600 it"
        );
    }
    Ok(line.to_owned())
}

/// The error for production without a configured password.
pub(crate) fn production_needs_one() -> CoreError {
    seed_error(format!(
        "production needs the admin password in {PASSWORD_VAR} or {PASSWORD_FILE_VAR}; \
         it is never generated there"
    ))
}

/// The configured password, or a generated one shown once through `sink`.
/// In production a password is never generated: the console of a production
/// service is usually a log collector.
pub(crate) fn obtain(
    sink: &dyn SecretSink,
    username: &str,
    environment: Environment,
) -> Result<Password, CoreError> {
    if let Some(password) = configured()? {
        return Ok(password);
    }
    if environment == Environment::Production {
        return Err(production_needs_one());
    }
    let generated = Alphanumeric.sample_string(&mut OsRng, GENERATED_LENGTH);
    // The runner holds it until the seeder succeeds, then shows it before
    // committing; an error here cannot happen with the runner's sink.
    sink.show_once(
        &format!("generated password for admin user `{username}`"),
        &generated,
    )
    .map_err(|e| seed_error(format!("cannot show the generated password: {e}")))?;
    tracing::warn!(
        user = username,
        "admin password generated and shown once on the terminal; \
         set {PASSWORD_VAR} to choose it"
    );
    Ok(Password(generated))
}

/// The argon2id PHC string for `password`, with a random salt.
pub(crate) fn hash(password: &Password) -> Result<String, CoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| seed_error(format!("cannot hash the admin password: {e}")))
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let password = Password("correct horse battery".to_owned());
        let phc = hash(&password).unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
    }
}
