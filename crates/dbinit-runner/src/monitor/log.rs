//! What the monitor logs, never a line per tick:
//!
//! - each transition once — but at most [`TRANSITIONS`] per window: a
//!   flapping check's further transitions are counted, and one line at the
//!   end of the window says how many and what the state is now;
//! - during a long condition, a "still …, repeated N times" line per window
//!   (the core's [`LogLimiter`]).

use std::time::{Duration, Instant};

use crate::ratelimit::{LogLimiter, Verdict};
use dbinit_core::HealthStatus;

use super::HealthSnapshot;

/// Transition lines logged per window before the rest are counted.
const TRANSITIONS: u32 = 3;

/// One line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// Warn (true) or info.
    pub warn: bool,
    pub text: String,
}

/// Transitions in the current window.
#[derive(Debug)]
struct Burst {
    started: Instant,
    logged: u32,
    counted: u64,
}

/// Decides the log lines, tick by tick.
#[derive(Debug)]
pub(crate) struct HealthLog {
    window: Duration,
    repeats: LogLimiter,
    burst: Option<Burst>,
    /// The condition of the last tick, and since when (`None`: none yet).
    last: Option<(HealthStatus, String, Instant)>,
}

impl HealthLog {
    pub(crate) fn new(window: Duration) -> Self {
        HealthLog {
            window,
            repeats: LogLimiter::new(window),
            burst: None,
            last: None,
        }
    }

    /// The line (if any) for the tick that produced `snapshot`, at `now`.
    pub(crate) fn observe(&mut self, snapshot: &HealthSnapshot, now: Instant) -> Option<Line> {
        let status = snapshot.status;
        let condition = snapshot.condition();
        let problems = snapshot.problems();
        let now_is = |status: HealthStatus| match status {
            HealthStatus::Healthy => format!("healthy ({} checks)", snapshot.checks.len()),
            _ => format!("{}: {problems}", status.as_str()),
        };
        // A window of counted transitions ended: say how many, and the state.
        let flapped = match &self.burst {
            Some(b) if now.duration_since(b.started) >= self.window => {
                self.burst.take().map(|b| b.counted).filter(|n| *n > 0)
            }
            _ => None,
        };
        let Some((was, was_condition, since)) = self.last.take() else {
            self.last = Some((status, condition.clone(), now));
            self.repeats.check(&condition, now);
            return Some(Line {
                warn: status != HealthStatus::Healthy,
                text: format!("health: {}", now_is(status)),
            });
        };
        if was != status || was_condition != condition {
            self.last = Some((status, condition.clone(), now));
            self.repeats.clear();
            self.repeats.check(&condition, now);
            let burst = self.burst.get_or_insert(Burst {
                started: now,
                logged: 0,
                counted: 0,
            });
            if burst.logged >= TRANSITIONS {
                burst.counted += 1;
                return None;
            }
            burst.logged += 1;
            let also = flapped.map_or(String::new(), |n| {
                format!(
                    " (after {n} more transitions in the last {})",
                    humanize(self.window)
                )
            });
            let text = match status {
                HealthStatus::Healthy => format!(
                    "health: healthy again after {} {}",
                    humanize(now.duration_since(since)),
                    was.as_str()
                ),
                _ => format!("health: {} → {}", was.as_str(), now_is(status)),
            } + &also;
            return Some(Line {
                warn: status == HealthStatus::Unhealthy || was == HealthStatus::Healthy,
                text,
            });
        }
        self.last = Some((was, was_condition, since));
        if let Some(n) = flapped {
            return Some(Line {
                warn: status != HealthStatus::Healthy,
                text: format!(
                    "health: flapping: {n} more transitions in the last {}; now {}",
                    humanize(self.window),
                    now_is(status)
                ),
            });
        }
        if status == HealthStatus::Healthy {
            return None;
        }
        match self.repeats.check(&condition, now) {
            Verdict::Suppress => None,
            Verdict::Log => Some(Line {
                warn: true,
                text: format!("health: still {}", now_is(status)),
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

impl HealthLog {
    /// The line (if any) when the monitor stops: transitions counted and
    /// not yet reported.
    pub(crate) fn finish(&mut self) -> Option<Line> {
        let counted = self.burst.take().map_or(0, |b| b.counted);
        let (status, ..) = self.last.as_ref()?;
        (counted > 0).then(|| Line {
            warn: true,
            text: format!(
                "health: flapping: {counted} more transitions before the monitor stopped; last {}",
                status.as_str()
            ),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{CheckKind, CheckState};

    fn snapshot(previous: &HealthSnapshot, status: HealthStatus) -> HealthSnapshot {
        let check = CheckState {
            name: "cache".to_owned(),
            kind: CheckKind::Dependency,
            status,
            detail: format!("answered in {} ms", previous.ticks % 7),
            latency: Duration::ZERO,
            since: String::new(),
        };
        HealthSnapshot::next(previous, vec![check], Duration::ZERO)
    }

    /// The lines logged over one tick a second with the statuses given.
    fn lines(statuses: impl Iterator<Item = HealthStatus>) -> Vec<Line> {
        let mut log = HealthLog::new(Duration::from_secs(60));
        let start = Instant::now();
        let mut previous = HealthSnapshot::starting(String::new(), Duration::from_secs(1), None);
        let mut lines = Vec::new();
        for (tick, status) in (0u64..).zip(statuses) {
            let next = snapshot(&previous, status);
            lines.extend(log.observe(&next, start + Duration::from_secs(tick)));
            previous = next;
        }
        lines
    }

    #[test]
    fn a_flapping_check_logs_a_bounded_number_of_lines_and_ends_with_the_state() {
        // Ten minutes, one tick a second, the check flipping every tick,
        // then a minute and a half steady and unhealthy.
        let lines = lines((0..690u64).map(|tick| match tick {
            0..600 if tick % 2 == 1 => HealthStatus::Unhealthy,
            0..600 => HealthStatus::Healthy,
            _ => HealthStatus::Unhealthy,
        }));
        // Per minute at most 3 transitions and one flapping summary.
        assert!(
            lines.len() <= 1 + 10 * 4 + 2,
            "{} lines: {lines:#?}",
            lines.len()
        );
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("more transitions in the last 1m 00s")),
            "{texts:#?}"
        );
        // The steady state after the flapping is said, then repeated per window.
        let last = texts.last().unwrap();
        assert!(last.starts_with("health: still unhealthy"), "{texts:#?}");
        assert!(last.contains("cache (unhealthy)"), "{last}");
    }

    #[test]
    fn a_changing_detail_is_not_a_new_condition() {
        let lines = lines(std::iter::repeat_n(HealthStatus::Degraded, 30));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0]
            .text
            .starts_with("health: degraded: cache (degraded)"));
    }
}
