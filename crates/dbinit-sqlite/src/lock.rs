//! The initialization lock: an OS file lock on `<database>.lock`.
//!
//! The lock dies with the process (the kernel drops it when the descriptor
//! closes), so a killed `init` never blocks the next one. The lock file is
//! kept, not deleted: deleting lock files races with processes that opened
//! them.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbinit_core::wait::lock_poll_delays;
use dbinit_core::{CoreError, ErrorKind, InitLock};

use crate::error;

/// Takes the exclusive lock, polling with backoff for at most `wait`, and
/// records our pid in the file so a waiter that times out can name us.
///
/// With `share_if_busy`, a process that finds the lock taken waits for a
/// shared lock instead: it is granted to every waiter at once when the
/// holder is done.
pub(crate) fn acquire(
    path: &Path,
    wait: Duration,
    share_if_busy: bool,
    cancelled: &AtomicBool,
) -> Result<(File, InitLock), CoreError> {
    let mut file = crate::files::open_lock_file(path)?;
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
            waited_for = Some(read_holder(&mut file));
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
                holder: read_holder(&mut file),
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
    // Best effort: the pid only improves a waiter's error message. Fixed
    // width, written in place: truncating first cost a metadata journal
    // write on every run (half a millisecond of a no-op `init`).
    let holder = format!("pid={:>10}\n", std::process::id());
    let _ = file.write_all_at(holder.as_bytes(), 0);
    Ok((file, held))
}

pub(crate) fn release(file: File, name: &str) -> Result<(), CoreError> {
    file.unlock()
        .map_err(|e| error::io("unlock", Path::new(name), e))
}

fn read_holder(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    let pid = text.lines().next()?.strip_prefix("pid=")?.trim();
    Some(format!("pid {pid}"))
}
