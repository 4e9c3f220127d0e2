//! The background health monitor: runs the health checks every interval and
//! logs failures quietly (each distinct failure once per window, then a
//! "repeated N times" summary), and recoveries once.

use std::time::{Duration, Instant};

use dbinit_core::ratelimit::{LogLimiter, Verdict};
use dbinit_core::report::HealthSummary;
use dbinit_core::CoreError;

use crate::Initializer;

/// Runs [`Initializer::health`] every `interval`.
///
/// ```no_run
/// # async fn start(init: dbinit_runner::Initializer) {
/// use std::time::Duration;
/// let monitor = dbinit_runner::Monitor::new(init, Duration::from_secs(30));
/// tokio::spawn(monitor.run(None));
/// # }
/// ```
#[derive(Debug)]
pub struct Monitor {
    init: Initializer,
    interval: Duration,
    limiter: LogLimiter,
}

/// What a monitor run saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Ticks run.
    pub ticks: u64,
    /// Ticks that found the database unreachable or unhealthy.
    pub failing: u64,
    /// Log lines written about failures (the rest were collapsed).
    pub lines: u64,
}

impl Monitor {
    /// A monitor checking every `interval`; repeats are collapsed per 60 s.
    /// Each check connects with no retry wait: the next tick is the retry.
    pub fn new(init: Initializer, interval: Duration) -> Self {
        let mut options = init.connect.clone();
        options.connect_timeout = Duration::ZERO;
        Monitor {
            init: init.connect_options(options),
            interval,
            limiter: LogLimiter::new(Duration::from_secs(60)),
        }
    }

    /// Collapses repeats per `window` instead of 60 s.
    pub fn repeat_window(mut self, window: Duration) -> Self {
        self.limiter = LogLimiter::new(window);
        self
    }

    /// Checks `ticks` times (forever with `None`), `interval` apart. A
    /// check that runs late delays the next one rather than bunching them,
    /// and a check gets at most `max(interval, 5 s)`.
    pub async fn run(self, ticks: Option<u64>) -> MonitorStats {
        let mut stats = MonitorStats::default();
        let mut failing_before = false;
        // tokio's interval panics on zero; a zero interval means "as often as
        // possible", which one millisecond stands for.
        let mut ticker = tokio::time::interval(self.interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let budget = self.interval.max(Duration::from_secs(5));
        while ticks.is_none_or(|t| stats.ticks < t) {
            ticker.tick().await;
            stats.ticks += 1;
            let result = match tokio::time::timeout(budget, self.init.health()).await {
                Ok(result) => failure(result),
                Err(_) => Some(format!(
                    "health check timed out after {:.1} s",
                    budget.as_secs_f64()
                )),
            };
            match result {
                None => {
                    if std::mem::take(&mut failing_before) {
                        self.limiter.clear();
                        tracing::info!("database healthy again");
                    }
                }
                Some(message) => {
                    stats.failing += 1;
                    failing_before = true;
                    match self.limiter.check(&message, Instant::now()) {
                        Verdict::Log => {
                            tracing::warn!("{message}");
                            stats.lines += 1;
                        }
                        Verdict::LogWithSummary { repeated, over } => {
                            tracing::warn!(
                                "{message} (repeated {repeated} times in the last {})",
                                seconds(over)
                            );
                            stats.lines += 1;
                        }
                        Verdict::Suppress => {}
                    }
                }
            }
        }
        stats
    }
}

fn seconds(d: Duration) -> String {
    match d.as_secs_f64() {
        s if s >= 10.0 => format!("{s:.0} s"),
        s => format!("{s:.1} s"),
    }
}

/// The failure a tick found, as one stable message (the key for collapsing).
fn failure(result: Result<HealthSummary, CoreError>) -> Option<String> {
    match result {
        Ok(summary) => {
            let failures = summary.failures();
            (!failures.is_empty()).then(|| format!("unhealthy: {}", failures.join("; ")))
        }
        Err(e) => Some(format!("health check failed: {e}")),
    }
}
