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

/// The configured password, or a generated one shown once through `sink`.
/// In production a password is never generated: the console of a production
/// service is usually a log collector.
pub(crate) fn obtain(
    sink: &dyn SecretSink,
    username: &str,
    environment: Environment,
) -> Result<Password, CoreError> {
    let configured = match (
        std::env::var(PASSWORD_VAR),
        std::env::var_os(PASSWORD_FILE_VAR),
    ) {
        (Ok(value), _) => Some((value, PASSWORD_VAR.to_owned())),
        (Err(_), Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                seed_error(format!(
                    "cannot read {PASSWORD_FILE_VAR} ({}): {e}",
                    std::path::Path::new(&path).display()
                ))
            })?;
            Some((
                text.trim_end_matches(['\r', '\n']).to_owned(),
                PASSWORD_FILE_VAR.to_owned(),
            ))
        }
        (Err(_), None) => None,
    };
    match configured {
        Some((value, from)) if value.chars().count() < MIN_LENGTH => Err(seed_error(format!(
            "the admin password from {from} is shorter than {MIN_LENGTH} characters"
        ))),
        Some((value, _)) => Ok(Password(value)),
        None if environment == Environment::Production => Err(seed_error(format!(
            "production needs the admin password in {PASSWORD_VAR} or {PASSWORD_FILE_VAR}; \
             it is never generated there"
        ))),
        None => {
            let generated = Alphanumeric.sample_string(&mut OsRng, GENERATED_LENGTH);
            sink.show_once(
                &format!("generated password for admin user `{username}`"),
                &generated,
            );
            tracing::warn!(
                user = username,
                "admin password generated and shown once on the terminal; \
                 set {PASSWORD_VAR} to choose it"
            );
            Ok(Password(generated))
        }
    }
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
