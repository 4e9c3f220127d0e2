//! [`Interrupt`]: stopping a run from outside — a signal handler, or an
//! application shutting down — so that the running statement is cancelled,
//! its transaction rolled back and the lock released, instead of leaving a
//! server backend running on with the lock held.

use std::sync::{Arc, Mutex};

use dbinit_core::{Canceller, CoreError};

/// A cloneable handle that interrupts the [`Initializer`](crate::Initializer)
/// runs it was given to.
///
/// # Examples
///
/// ```no_run
/// # async fn start(
/// #     url: dbinit_core::DatabaseUrl,
/// #     shutdown: impl std::future::Future<Output = ()> + Send + 'static,
/// # ) {
/// let interrupt = dbinit_runner::Interrupt::new();
/// let init = dbinit_runner::Initializer::new(url).interrupt(interrupt.clone());
/// tokio::spawn(async move {
///     shutdown.await;
///     interrupt.interrupt("shutdown").await;
/// });
/// let _ = init.run().await; // an error of kind `Interrupted` after shutdown
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Interrupt(Arc<State>);

struct State {
    reason: Mutex<Option<String>>,
    canceller: Mutex<Option<Arc<dyn Canceller>>>,
    /// Flips to true on the first interruption, for waits that hold no
    /// statement to cancel (connecting to a server that is not up).
    interrupted: tokio::sync::watch::Sender<bool>,
}

impl Default for State {
    fn default() -> Self {
        State {
            reason: Mutex::default(),
            canceller: Mutex::default(),
            interrupted: tokio::sync::watch::channel(false).0,
        }
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Interrupt").field(&self.reason()).finish()
    }
}

impl Interrupt {
    /// A handle that has not interrupted anything yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Interrupts the run: remembers `reason` (the first one counts) and
    /// cancels the statement running now. Calling it again re-sends the
    /// cancel, for a statement that started after the first call.
    pub async fn interrupt(&self, reason: &str) {
        if let Ok(mut r) = self.0.reason.lock() {
            r.get_or_insert_with(|| reason.to_owned());
        }
        self.0.interrupted.send_replace(true);
        let canceller = self.0.canceller.lock().ok().and_then(|c| c.clone());
        if let Some(canceller) = canceller {
            canceller.cancel().await;
        }
    }

    /// What interrupted the run, once something did.
    pub fn reason(&self) -> Option<String> {
        self.0.reason.lock().ok().and_then(|r| r.clone())
    }

    /// Runs `step` (a wait that holds no statement: connecting), unless the
    /// run is interrupted first; then nothing was changed.
    pub(crate) async fn unless_interrupted<T>(
        &self,
        stage: &str,
        step: impl std::future::Future<Output = Result<T, CoreError>>,
    ) -> Result<T, CoreError> {
        let mut interrupted = self.0.interrupted.subscribe();
        tokio::select! {
            result = step => result,
            _ = interrupted.wait_for(|yes| *yes) => Err(CoreError::Interrupted {
                by: self.reason().unwrap_or_else(|| "an interruption".to_owned()),
                what: format!("stopped while {stage}; nothing was changed"),
            }),
        }
    }

    /// Resolves once the run is interrupted.
    #[cfg(all(feature = "cli", feature = "http"))]
    pub(crate) async fn interrupted(&self) {
        let mut interrupted = self.0.interrupted.subscribe();
        let _ = interrupted.wait_for(|yes| *yes).await;
    }

    /// Points cancellation at the session now in use (`None`: none).
    pub(crate) fn attach(&self, canceller: Option<Arc<dyn Canceller>>) {
        if let Ok(mut c) = self.0.canceller.lock() {
            *c = canceller;
        }
    }

    /// After an interruption, whatever failed failed because of it (a
    /// cancelled statement, a refused wait): says so.
    pub(crate) fn explain(&self, error: CoreError) -> CoreError {
        match (self.reason(), error) {
            (_, e @ CoreError::Interrupted { .. }) => e,
            (Some(by), e) => CoreError::Interrupted {
                by,
                what: format!(
                    "the running step was cancelled and rolled back ({}), and the \
                     initialization lock released",
                    dbinit_core::bounded(&e.to_string(), 200)
                ),
            },
            (None, e) => e,
        }
    }

    /// Stops the run before `next` starts when it was interrupted.
    pub(crate) fn check(&self, next: &str) -> Result<(), CoreError> {
        match self.reason() {
            Some(by) => Err(CoreError::Interrupted {
                by,
                what: format!("stopped before {next}"),
            }),
            None => Ok(()),
        }
    }
}
