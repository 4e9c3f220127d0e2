//! Waiting for a locked database, cancellably.
//!
//! SQLite's own `busy_timeout` sleeps until the timeout and does not look
//! at `sqlite3_interrupt`: a SIGINT during a long wait would go unheard
//! until the other writer lets go. This busy handler waits with the same
//! budget, but stops as soon as the session is cancelled. SQLite's handler
//! is a plain function, so the session's budget and cancel flag reach it
//! through the thread the statement runs on.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long to sleep before retry N (SQLite's default schedule).
const STEPS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

struct Wait {
    budget: Duration,
    cancelled: Arc<AtomicBool>,
    started: Instant,
}

thread_local! {
    static WAIT: RefCell<Option<Wait>> = const { RefCell::new(None) };
}

/// Runs `f` (SQLite calls on this thread) with `budget` for busy waits that
/// `cancelled` can cut short.
pub(crate) fn with_budget<R>(
    budget: Duration,
    cancelled: &Arc<AtomicBool>,
    f: impl FnOnce() -> R,
) -> R {
    WAIT.with(|w| {
        *w.borrow_mut() = Some(Wait {
            budget,
            cancelled: cancelled.clone(),
            started: Instant::now(),
        });
    });
    let result = f();
    WAIT.with(|w| *w.borrow_mut() = None);
    result
}

/// The busy handler installed on every connection: `true` to retry.
pub(crate) fn handler(retries: i32) -> bool {
    WAIT.with(|w| {
        let mut w = w.borrow_mut();
        let Some(wait) = w.as_mut() else {
            return false;
        };
        if retries == 0 {
            wait.started = Instant::now();
        }
        let elapsed = wait.started.elapsed();
        if wait.cancelled.load(Ordering::SeqCst) || elapsed >= wait.budget {
            return false;
        }
        let step = STEPS_MS[usize::try_from(retries)
            .unwrap_or(0)
            .min(STEPS_MS.len() - 1)];
        std::thread::sleep(Duration::from_millis(step).min(wait.budget - elapsed));
        true
    })
}
