//! What the monitor logs: each transition once, and during a long condition
//! a "still …, repeated N times" line per window (the core's
//! [`LogLimiter`]), never a line per tick.

use std::time::{Duration, Instant};

use dbinit_core::ratelimit::{LogLimiter, Verdict};
use dbinit_core::HealthStatus;

use super::HealthSnapshot;

/// One line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// Warn (true) or info.
    pub warn: bool,
    pub text: String,
}

/// Decides the log lines, tick by tick.
#[derive(Debug)]
pub(crate) struct HealthLog {
    limiter: LogLimiter,
    /// The condition of the last tick, and since when (`None`: none yet).
    last: Option<(HealthStatus, String, Instant)>,
}

impl HealthLog {
    pub(crate) fn new(window: Duration) -> Self {
        HealthLog {
            limiter: LogLimiter::new(window),
            last: None,
        }
    }

    /// The line (if any) for the tick that produced `snapshot`, at `now`.
    pub(crate) fn observe(&mut self, snapshot: &HealthSnapshot, now: Instant) -> Option<Line> {
        let status = snapshot.status;
        let condition = snapshot.condition();
        let problems = snapshot.problems();
        let Some((was, was_condition, since)) = self.last.take() else {
            self.last = Some((status, condition.clone(), now));
            self.limiter.check(&condition, now);
            return Some(match status {
                HealthStatus::Healthy => Line {
                    warn: false,
                    text: format!("health: healthy ({} checks)", snapshot.checks.len()),
                },
                _ => Line {
                    warn: true,
                    text: format!("health: {}: {problems}", status.as_str()),
                },
            });
        };
        if was != status || was_condition != condition {
            // A transition: one line, and the next repeat window starts now.
            self.last = Some((status, condition.clone(), now));
            self.limiter.clear();
            self.limiter.check(&condition, now);
            let after = humanize(now.duration_since(since));
            return Some(match status {
                HealthStatus::Healthy => Line {
                    warn: false,
                    text: format!("health: healthy again after {after} {}", was.as_str()),
                },
                _ => Line {
                    warn: status == HealthStatus::Unhealthy || was == HealthStatus::Healthy,
                    text: format!("health: {} → {}: {problems}", was.as_str(), status.as_str()),
                },
            });
        }
        self.last = Some((was, was_condition, since));
        if status == HealthStatus::Healthy {
            return None;
        }
        match self.limiter.check(&condition, now) {
            Verdict::Suppress => None,
            Verdict::Log => Some(Line {
                warn: true,
                text: format!("health: still {}: {problems}", status.as_str()),
            }),
            Verdict::LogWithSummary { repeated, over } => Some(Line {
                warn: true,
                text: format!(
                    "health: still {} for {}: {problems} (repeated {repeated} times in the last {})",
                    status.as_str(),
                    humanize(now.duration_since(since)),
                    humanize(over)
                ),
            }),
        }
    }
}

/// `850 ms`, `12.5 s`, `3m 12s`.
fn humanize(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m {:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}
