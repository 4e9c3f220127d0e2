//! Keeps logs quiet under repeated failure: the first occurrence of a
//! message is logged, repeats within the window are counted, and the next
//! occurrence after the window logs once with "repeated N times in the last
//! W s". A database that is down for a minute, checked every second, makes
//! two lines, not sixty.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to do with one occurrence of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it: first time, or first time after a quiet window.
    Log,
    /// Log it with a summary: it repeated this many times (not logged)
    /// since it was last logged, `over` ago.
    LogWithSummary {
        /// Suppressed repeats.
        repeated: u64,
        /// Time since the message was last logged.
        over: Duration,
    },
    /// A repeat inside the window: count it, log nothing.
    Suppress,
}

#[derive(Debug)]
struct Entry {
    window_start: Instant,
    suppressed: u64,
}

/// A per-message rate limiter. Keys are the messages (or any stable id).
#[derive(Debug)]
pub struct LogLimiter {
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl LogLimiter {
    /// A limiter that logs each message at most once per `window`.
    pub fn new(window: Duration) -> Self {
        LogLimiter {
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Decides about one occurrence of `key` at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Verdict {
        let Ok(mut entries) = self.entries.lock() else {
            return Verdict::Log;
        };
        match entries.get_mut(key) {
            None => {
                entries.insert(
                    key.to_owned(),
                    Entry {
                        window_start: now,
                        suppressed: 0,
                    },
                );
                Verdict::Log
            }
            Some(entry) if now.duration_since(entry.window_start) < self.window => {
                entry.suppressed += 1;
                Verdict::Suppress
            }
            Some(entry) => {
                let repeated = std::mem::take(&mut entry.suppressed);
                let over = now.duration_since(entry.window_start);
                entry.window_start = now;
                if repeated == 0 {
                    Verdict::Log
                } else {
                    Verdict::LogWithSummary { repeated, over }
                }
            }
        }
    }

    /// Forgets every message, so that the next occurrence of any logs at
    /// once: call it when the condition clears (the next failure is news).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_failures_every_second_logs_twice() {
        let limiter = LogLimiter::new(Duration::from_secs(60));
        let start = Instant::now();
        let verdicts: Vec<Verdict> = (0..=60)
            .map(|s| limiter.check("db down", start + Duration::from_secs(s)))
            .collect();
        assert_eq!(verdicts[0], Verdict::Log);
        assert!(verdicts[1..60].iter().all(|v| *v == Verdict::Suppress));
        assert_eq!(
            verdicts[60],
            Verdict::LogWithSummary {
                repeated: 59,
                over: Duration::from_secs(60)
            }
        );
    }

    #[test]
    fn messages_are_limited_separately_and_clear_resets() {
        let limiter = LogLimiter::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(limiter.check("a", now), Verdict::Log);
        assert_eq!(limiter.check("b", now), Verdict::Log);
        assert_eq!(limiter.check("a", now), Verdict::Suppress);
        limiter.clear();
        assert_eq!(limiter.check("a", now), Verdict::Log);
        let later = now + Duration::from_secs(61);
        assert_eq!(
            limiter.check("b", later),
            Verdict::Log,
            "no repeats: no summary"
        );
    }
}
