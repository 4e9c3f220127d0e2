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

use dbinit_core::{async_trait, CoreError, DependencyCheck, HealthOutcome};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::sync::Mutex;

dbinit_core::register! {
    DependencyRegistration => RedisCheck::from_env(),
}

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
        /// The password, to scrub from anything a server replies.
        secrets: Vec<String>,
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
            let shown = dbinit_core::redact_service_url(url);
            match redis::Client::open(url) {
                Ok(client) => {
                    let info = client.get_connection_info().redis_settings();
                    let secrets = info
                        .password()
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .into_iter()
                        .collect();
                    Config::Ready {
                        client,
                        shown,
                        secrets,
                    }
                }
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

    async fn ping(
        &self,
        client: &redis::Client,
        secrets: &[String],
        timeout: Duration,
    ) -> Result<String, String> {
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
                    .map_err(|e| format!("cannot connect: {}", describe(&e, secrets)))?;
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
                Err(format!("PING failed: {}", describe(&e, secrets)))
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
            Config::Ready {
                client,
                shown,
                secrets,
            } => match self.ping(client, secrets, timeout).await {
                Ok(detail) => HealthOutcome::healthy(format!("{detail} ({shown})")),
                Err(detail) => HealthOutcome::unhealthy(format!("{shown}: {detail}")),
            },
        }
    }
}

/// A redis error in one line, without what a server echoed back: an
/// "unknown command" reply quotes the command's arguments, and when the
/// server lacks `HELLO` those are `AUTH`'s, password included.
fn describe(e: &redis::RedisError, secrets: &[String]) -> String {
    let text = e.to_string();
    let mut line = text.lines().next().unwrap_or("").to_owned();
    if let Some(echo) = line.find(", with args beginning with") {
        line.truncate(echo);
    }
    for secret in secrets {
        line = line.replace(secret.as_str(), "***");
    }
    dbinit_core::bounded(&line, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

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
