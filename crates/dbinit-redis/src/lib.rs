//! Redis as a dbinit dependency: a [`DependencyCheck`] named `redis`,
//! configured by `REDIS_URL` and registered through `inventory`.
//!
//! - `REDIS_URL` unset or empty: `disabled`.
//! - Redis answers `PING`: `healthy`, with the round trip.
//! - Otherwise `unhealthy`, which the monitor reports as `fallback` when
//!   the application declared it runs without Redis.
//!
//! The connection is kept between checks and made again after a failure.
//! Secrets in the URL (`redis://user:secret@host`, `?pass=secret`) are never
//! shown. Call [`link`] once from `main`, or the linker may drop the
//! registration.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::{Duration, Instant};

use dbinit_core::{async_trait, CoreError, DependencyCheck, DependencyRegistration, HealthOutcome};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::sync::Mutex;

dbinit_core::inventory::submit! {
    DependencyRegistration::new(|| Box::new(RedisCheck::from_env()))
}

/// Keeps this crate's registration in the final binary. Call it once from
/// `main`; it does nothing else.
#[inline(never)]
pub fn link() {}

/// The check of one Redis server.
pub struct RedisCheck {
    name: String,
    config: Config,
    connection: Mutex<Option<MultiplexedConnection>>,
}

enum Config {
    /// No URL: nothing to check.
    Disabled,
    /// A URL the redis crate refused: the reason (without secrets).
    Invalid(String),
    Ready {
        client: redis::Client,
        shown: String,
    },
}

impl std::fmt::Debug for RedisCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCheck")
            .field("name", &self.name)
            .field("target", &self.target())
            .finish_non_exhaustive()
    }
}

impl RedisCheck {
    /// `redis`, from `REDIS_URL` (disabled when unset, empty or not UTF-8
    /// — the last is refused by [`validate`](DependencyCheck::validate)).
    pub fn from_env() -> Self {
        match std::env::var("REDIS_URL") {
            Ok(url) => RedisCheck::new("redis", &url),
            Err(std::env::VarError::NotPresent) => RedisCheck::new("redis", ""),
            Err(std::env::VarError::NotUnicode(_)) => RedisCheck {
                name: "redis".to_owned(),
                config: Config::Invalid("REDIS_URL is not valid UTF-8".to_owned()),
                connection: Mutex::new(None),
            },
        }
    }

    /// A check named `name` of the Redis at `url` (`redis://`, `rediss://`
    /// needs TLS, which this build lacks; `redis+unix://`, `unix://`);
    /// an empty `url` disables it.
    pub fn new(name: &str, url: &str) -> Self {
        let url = url.trim();
        let config = if url.is_empty() {
            Config::Disabled
        } else {
            let shown = redact(url);
            match redis::Client::open(url) {
                Ok(client) => Config::Ready { client, shown },
                // The crate's message never holds the URL; ours shows it
                // redacted.
                Err(e) => Config::Invalid(format!("`{shown}` is not a usable Redis URL: {e}")),
            }
        };
        RedisCheck {
            name: name.to_owned(),
            config,
            connection: Mutex::new(None),
        }
    }

    async fn ping(&self, client: &redis::Client, timeout: Duration) -> Result<String, String> {
        let started = Instant::now();
        let mut slot = self.connection.lock().await;
        let connection = match &mut *slot {
            Some(connection) => connection,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout));
                let connection = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(|e| format!("cannot connect: {}", describe(&e)))?;
                slot.insert(connection)
            }
        };
        let answer: Result<String, _> = redis::cmd("PING").query_async(connection).await;
        match answer {
            Ok(pong) if pong == "PONG" => Ok(format!(
                "PONG in {:.2} ms",
                started.elapsed().as_secs_f64() * 1e3
            )),
            Ok(other) => {
                *slot = None;
                Err(format!("PING answered {other:?}"))
            }
            Err(e) => {
                // The next check connects again.
                *slot = None;
                Err(format!("PING failed: {}", describe(&e)))
            }
        }
    }
}

#[async_trait]
impl DependencyCheck for RedisCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self) -> String {
        match &self.config {
            Config::Disabled => "REDIS_URL not set".to_owned(),
            Config::Invalid(_) => "invalid REDIS_URL".to_owned(),
            Config::Ready { shown, .. } => shown.clone(),
        }
    }

    fn validate(&self) -> Result<(), CoreError> {
        match &self.config {
            Config::Invalid(reason) => Err(CoreError::InvalidConfig {
                setting: format!("{} URL (REDIS_URL)", self.name),
                reason: reason.clone(),
            }),
            _ => Ok(()),
        }
    }

    async fn check(&self, timeout: Duration) -> HealthOutcome {
        match &self.config {
            Config::Disabled => HealthOutcome::disabled("REDIS_URL is not set"),
            Config::Invalid(reason) => HealthOutcome::unhealthy(reason.clone()),
            Config::Ready { client, shown } => match self.ping(client, timeout).await {
                Ok(detail) => HealthOutcome::healthy(format!("{detail} ({shown})")),
                Err(detail) => HealthOutcome::unhealthy(format!("{shown}: {detail}")),
            },
        }
    }
}

/// A redis error in one line, without the server's echo of a command (it
/// could hold an AUTH argument: the crate never includes it, but say so in
/// code rather than trust it).
fn describe(e: &redis::RedisError) -> String {
    let text = e.to_string();
    dbinit_core::report::bounded(text.lines().next().unwrap_or(""), 200)
}

/// `url` with its user information and `pass`/`password` query values
/// hidden; an unparsable URL is hidden after its scheme.
fn redact(url: &str) -> String {
    const HIDDEN: &str = "***";
    let Ok(mut parsed) = url::Url::parse(url) else {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        return format!("{scheme}://{HIDDEN}");
    };
    // A lone `user@` may be a password written without its `:`: hide it too.
    if parsed.password().is_some() || !parsed.username().is_empty() {
        let _ = parsed.set_username("");
        let _ = parsed.set_password(Some(HIDDEN));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = matches!(k.to_ascii_lowercase().as_str(), "pass" | "password");
                let v = if secret {
                    HIDDEN.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string().replace("%2A%2A%2A", HIDDEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_secrets() {
        for (url, shown) in [
            (
                "redis://:S3cret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            ("redis://app:S3cret@cache:6380", "redis://:***@cache:6380"),
            ("redis://S3cret@cache", "redis://:***@cache"),
            (
                "redis+unix:///run/r.sock?db=1&pass=S3cret",
                "redis+unix:///run/r.sock?db=1&pass=***",
            ),
            ("redis://:S3cret@[bad", "redis://***"),
        ] {
            assert_eq!(redact(url), shown);
        }
    }

    #[tokio::test]
    async fn unset_is_disabled_and_an_invalid_url_is_refused_without_its_secret() {
        let unset = RedisCheck::new("redis", "  ");
        assert_eq!(
            unset.check(Duration::from_secs(1)).await.status,
            dbinit_core::HealthStatus::Disabled
        );
        assert!(unset.validate().is_ok());
        let invalid = RedisCheck::new("redis", "http://:S3cret@127.0.0.1:6379");
        let err = invalid.validate().unwrap_err().to_string();
        assert!(err.contains("not a usable Redis URL"), "{err}");
        assert!(!err.contains("S3cret"), "{err}");
        assert!(!format!("{invalid:?}").contains("S3cret"));
    }
}
