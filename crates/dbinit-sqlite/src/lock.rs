//! The initialization lock: an OS file lock on `<database>.lock`.
//!
//! The lock dies with the process (the kernel drops it when the descriptor
//! closes), so a killed `init` never blocks the next one. The lock file is
//! kept, not deleted: deleting lock files races with processes that opened
//! them.
//!
//! The file also records who held the lock last and whether it was
//! writing: `pid=<pid> writing` from just before its first write (durably,
//! before SQLite makes a journal) until its release says `done`. A hot
//! journal beside the database while the file says `writing` is the
//! unfinished transaction of a dbinit that crashed: SQLite's own recovery
//! (rolling it back) is exactly right for it (see `files.rs`). The mark
//! itself is `mark.rs`.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbinit_core::wait::lock_poll_delays;
use dbinit_core::{CoreError, ErrorKind, InitLock};

use crate::{error, mark};

/// Takes the exclusive lock, polling with backoff for at most `wait`, and
/// records our pid in the file so a waiter that times out can name us.
///
/// With `share_if_busy`, a process that finds the lock taken waits for a
/// shared lock instead: it is granted to every waiter at once when the
/// holder is done.
pub(crate) fn acquire(
    path: &Path,
    journal: &Path,
    wait: Duration,
    share_if_busy: bool,
    cancelled: &AtomicBool,
) -> Result<(File, InitLock), CoreError> {
    let file = crate::files::open_lock_file(path)?;
    let started = Instant::now();
    let mut delays = lock_poll_delays();
    let mut announced = false;
    let mut waited_for = None;
    loop {
        let attempt = if waited_for.is_some() && share_if_busy {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match attempt {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(error::io("lock", path, e)),
        }
        if waited_for.is_none() {
            waited_for = Some(mark::read_holder(&file));
        }
        if cancelled.load(Ordering::SeqCst) {
            return Err(CoreError::backend(
                ErrorKind::Interrupted,
                "cancelled while waiting for the initialization lock",
            ));
        }
        let waited = started.elapsed();
        if waited >= wait {
            return Err(CoreError::LockTimeout {
                lock: path.display().to_string(),
                waited,
                holder: mark::read_holder(&file),
            });
        }
        if !announced {
            tracing::info!(lock = %path.display(), "another process is initializing; waiting");
            announced = true;
        }
        let delay = delays.next().unwrap_or(Duration::from_millis(100));
        std::thread::sleep(delay.min(wait - waited));
    }
    let waited = started.elapsed();
    let shared = share_if_busy && waited_for.is_some();
    if announced {
        tracing::info!(
            waited_ms = waited.as_millis() as u64,
            shared,
            "initialization lock acquired"
        );
    }
    let held = InitLock {
        name: path.display().to_string(),
        waited,
        shared,
        waited_for: waited_for.flatten(),
    };
    if shared {
        return Ok((file, held));
    }
    // Best effort: the pid only improves a waiter's error message. A crashed
    // writer's mark stays while its journal does (until a read recovers it).
    let state = match mark::first_line(&file)
        .as_deref()
        .and_then(mark::holder_line)
    {
        Some((_, mark::WRITING)) if journal.exists() => mark::WRITING,
        _ => mark::HELD,
    };
    let _ = mark::record(&file, state);
    Ok((file, held))
}

/// Releases the lock; after a write, says first that the write is over.
pub(crate) fn release(file: File, name: &str, wrote: bool) -> Result<(), CoreError> {
    if wrote {
        mark::record(&file, mark::DONE).map_err(|e| error::io("write", Path::new(name), e))?;
    }
    file.unlock()
        .map_err(|e| error::io("unlock", Path::new(name), e))
}
