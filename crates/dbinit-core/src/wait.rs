//! Delay schedules for polling (locks) and retrying (connections), and
//! [`Poll`], the wait for a lock held elsewhere that every backend shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::{CoreError, ErrorKind};

/// Delays between attempts to take a busy lock: 2 ms doubling to 25 ms,
/// jittered so that waiting processes do not poll in lockstep. A try is one
/// cheap system call; a long delay would make every waiter notice a released
/// lock late (a storm of 32 took 5x one run with a 250 ms cap). Endless: the
/// caller stops at its deadline.
pub fn lock_poll_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(25))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Polling for a lock held elsewhere: stops on a cancel or at the
/// deadline, else pauses with backoff.
pub struct Poll<'a> {
    started: Instant,
    wait: Duration,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    cancelled: &'a AtomicBool,
}

impl<'a> Poll<'a> {
    /// Polling that gives up after `wait`, or when `cancelled` is set.
    pub fn new(wait: Duration, cancelled: &'a AtomicBool) -> Self {
        Poll {
            started: Instant::now(),
            wait,
            delays: Box::new(lock_poll_delays()),
            cancelled,
        }
    }

    /// Time since polling started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What is left of the wait.
    pub fn left(&self) -> Duration {
        self.wait.saturating_sub(self.elapsed())
    }

    /// Pauses before the next look.
    ///
    /// # Errors
    ///
    /// Interrupted when cancelled; [`CoreError::LockTimeout`] naming `lock`
    /// and `holder` once the wait is over.
    pub async fn pause(&mut self, lock: &str, holder: Option<String>) -> Result<(), CoreError> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(CoreError::backend(
                ErrorKind::Interrupted,
                "cancelled while waiting for the initialization lock",
            ));
        }
        let elapsed = self.elapsed();
        if elapsed >= self.wait {
            return Err(CoreError::LockTimeout {
                lock: lock.to_owned(),
                waited: elapsed,
                holder,
            });
        }
        let delay = self.delays.next().unwrap_or(Duration::from_millis(100));
        tokio::time::sleep(delay.min(self.wait - elapsed)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_poll_delays_grow_and_are_capped() {
        let delays: Vec<Duration> = lock_poll_delays().take(20).collect();
        assert_eq!(delays.len(), 20, "the schedule must not end by itself");
        assert!(delays[0] < Duration::from_millis(5), "{delays:?}");
        // Jitter adds at most one current delay on top of the cap.
        assert!(
            delays.iter().all(|d| *d <= Duration::from_millis(50)),
            "{delays:?}"
        );
        assert!(delays[19] >= Duration::from_millis(25), "{delays:?}");
    }
}
