//! SIGINT and SIGTERM during `init`: cancel the running statement, let the
//! pipeline roll back and release the lock, exit 130 / 143. A second signal
//! exits at once.
//!
//! The handler runs on its own thread, not on the CLI's runtime: SQLite
//! statements run inline on the runtime's thread and would block a signal
//! task until they finish.
//!
//! No exit cuts a cancel request short (PgBouncer 1.18 aborts, with all
//! its clients, on a cancel connection closed before it has handled it):
//! a forced exit and the normal end of the process first wait, briefly,
//! for the one in flight.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::Interrupt;

/// How often the cancel is re-sent: a statement that started just after a
/// cancel arrived would otherwise run to its end.
const RESEND: Duration = Duration::from_millis(500);
/// How long the run may take to stop after the first signal before the
/// process exits anyway (something that cannot be cancelled, like a
/// blocking read, would otherwise keep it alive).
const GRACE: Duration = Duration::from_secs(30);
/// Held while a cancel request is being sent.
static SENDING: Mutex<()> = Mutex::new(());
/// How long an exit waits for a cancel request in flight.
const SETTLE: Duration = Duration::from_secs(2);

/// Waits (at most [`SETTLE`]) for a cancel request in flight to finish.
pub(crate) fn settle() {
    let started = Instant::now();
    while started.elapsed() < SETTLE {
        match SENDING.try_lock() {
            Ok(_) | Err(std::sync::TryLockError::Poisoned(_)) => return,
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Installs the handlers for the rest of the process; `stopping` is what
/// the first signal's log line says happens.
pub(crate) fn cancel_on_signal(
    interrupt: Interrupt,
    stopping: &'static str,
) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("dbinit-signals".to_owned())
        .spawn(move || {
            let mut first = true;
            for signal in signals.forever() {
                if !first {
                    settle();
                    std::process::exit(128 + signal);
                }
                first = false;
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                tracing::warn!(
                    signal = name,
                    "interrupted: {stopping} (send it again to exit at once)"
                );
                let interrupt = interrupt.clone();
                let _ = std::thread::Builder::new()
                    .name("dbinit-cancel".to_owned())
                    .spawn(move || cancel_until_exit(&interrupt, name));
            }
        })?;
    Ok(())
}

/// Sends the cancel now and again every [`RESEND`] until the process exits,
/// or exits it after [`GRACE`].
fn cancel_until_exit(interrupt: &Interrupt, name: &str) {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok();
    while started.elapsed() < GRACE {
        if let Some(runtime) = &runtime {
            let _sending = SENDING.lock();
            runtime.block_on(interrupt.interrupt(name));
        }
        std::thread::sleep(RESEND);
    }
    tracing::error!(
        signal = name,
        "the run did not stop within 30 s of the signal; exiting"
    );
    settle();
    std::process::exit(i32::from(exit_code(name)));
}

/// The exit code for a run interrupted by `by`.
pub(crate) fn exit_code(by: &str) -> u8 {
    if by == "SIGTERM" {
        (128 + SIGTERM) as u8
    } else {
        super::exit::code(dbinit_core::ErrorKind::Interrupted)
    }
}
