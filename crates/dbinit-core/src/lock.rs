//! [`Locking`]: the lock that serializes initialization across
//! processes, and [`InitLock`], the proof that it is held.

use std::time::Duration;

use async_trait::async_trait;

use crate::query::Query;
use crate::CoreError;

/// Proof that the initialization lock is held; give it back to
/// [`Locking::release_init_lock`].
#[derive(Debug)]
#[must_use = "release the lock with Locking::release_init_lock"]
pub struct InitLock {
    /// What was locked, and how: a lock file path, an advisory lock key, a
    /// lease row.
    pub name: String,
    /// How long acquiring it took.
    pub waited: Duration,
    /// A shared hold, from [`Locking::acquire_or_share_init_lock`]: another
    /// process initialized while this one waited. Readers may verify; any
    /// write needs the exclusive lock.
    pub shared: bool,
    /// Who held the lock while this process waited, when known (`pid 42`,
    /// `host web-1 pid 42`).
    pub waited_for: Option<String>,
}

impl InitLock {
    /// An exclusive hold, taken after `waited`.
    pub fn exclusive(name: impl Into<String>, waited: Duration) -> Self {
        InitLock {
            name: name.into(),
            waited,
            shared: false,
            waited_for: None,
        }
    }

    /// A shared hold, taken after `waited` for `waited_for`.
    pub fn shared(name: impl Into<String>, waited: Duration, waited_for: Option<String>) -> Self {
        InitLock {
            shared: true,
            waited_for,
            ..Self::exclusive(name, waited)
        }
    }
}

/// The initialization lock of a backend: an OS file lock, an advisory
/// lock, a lease row.
#[async_trait]
pub trait Locking: Query {
    /// Takes the lock that serializes initialization across processes,
    /// waiting at most `wait`.
    ///
    /// # Errors
    ///
    /// [`CoreError::LockTimeout`] when another holder keeps it longer.
    async fn acquire_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError>;

    /// Takes the lock exclusively if it is free. Otherwise waits until its
    /// holder is done and returns a shared hold ([`InitLock::shared`]), so
    /// that the processes that lost the race verify the holder's work in
    /// parallel instead of repeating it one after another. A shared hold
    /// keeps any new exclusive holder out while it lasts, where the backend
    /// can (a lease cannot: it returns a hold on nothing).
    ///
    /// The default takes the exclusive lock.
    ///
    /// # Errors
    ///
    /// [`CoreError::LockTimeout`] when another holder keeps it longer.
    async fn acquire_or_share_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.acquire_init_lock(wait).await
    }

    /// Releases a lock taken by [`Locking::acquire_init_lock`] or
    /// [`Locking::acquire_or_share_init_lock`].
    async fn release_init_lock(&mut self, lock: InitLock) -> Result<(), CoreError>;
}
