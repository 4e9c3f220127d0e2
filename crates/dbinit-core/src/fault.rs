//! Crash points for the convergence tests.
//!
//! The pipeline and the backends call [`point`] at the places where a crash
//! matters (inside a migration's transaction, between migrations, around each
//! seeder's commit, ...). Normal builds compile it to nothing. With the
//! `fault-injection` feature (enabled only by test builds, as a
//! dev-dependency) and `DBINIT_CRASH_AT=NAME:N` in the environment, the Nth
//! time point `NAME` is reached the process kills itself with SIGKILL: no
//! destructor, no rollback, no unlock — a real crash.

/// Marks a crash point named `name`. A no-op unless the `fault-injection`
/// feature is enabled and `DBINIT_CRASH_AT` names this point.
#[inline(always)]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    injection::hit(name);
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

#[cfg(feature = "fault-injection")]
mod injection {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
    static HITS: AtomicUsize = AtomicUsize::new(0);

    fn target() -> &'static Option<(String, usize)> {
        TARGET.get_or_init(|| {
            let spec = std::env::var("DBINIT_CRASH_AT").ok()?;
            let (name, n) = spec.rsplit_once(':')?;
            Some((name.to_owned(), n.parse().ok()?))
        })
    }

    pub(super) fn hit(name: &str) {
        if let Some((target, n)) = target() {
            if target == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
                eprintln!("fault injection: SIGKILL at {name}:{n}");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::this(),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
