//! Delay schedules for polling (locks) and retrying (connections).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

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
