//! The background health monitor: runs the database's health checks on its
//! own connection and every dependency check, every interval; publishes a
//! [`HealthSnapshot`] on a `tokio::sync::watch` channel; logs transitions
//! once and long conditions once per window; stops on a cancellation token.

mod log;
mod snapshot;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::report::{ErrorReport, InitReport};
use dbinit_core::{Canceller, CoreError, DependencyCheck, HealthStatus, Session};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use snapshot::{CheckKind, CheckState, HealthSnapshot, InitFacts};

use snapshot::budget;

use crate::checks::CONNECTIVITY;
use crate::context::Context;
use crate::health::{check_dependencies, run_checks, Occasion};
use crate::Initializer;

/// Checks the database and the dependencies every interval, in the
/// background of a running service.
///
/// ```no_run
/// # async fn start(init: dbinit_runner::Initializer) -> Result<(), dbinit_core::CoreError> {
/// use std::time::Duration;
/// use dbinit_runner::{CancellationToken, Monitor};
///
/// let stop = CancellationToken::new();
/// let monitor = Monitor::new(init, Duration::from_secs(30))?;
/// let mut health = monitor.subscribe();
/// tokio::spawn(monitor.run(stop.clone()));
/// // Later: is the service ready?
/// let ready = health.borrow_and_update().readiness().is_ok();
/// # let _ = ready;
/// stop.cancel();
/// # Ok(()) }
/// ```
pub struct Monitor {
    cx: Context,
    /// The applicable database checks, by name (to report them when the
    /// database cannot be reached).
    database_checks: Vec<String>,
    dependencies: Vec<Arc<dyn DependencyCheck>>,
    interval: Duration,
    max_ticks: Option<u64>,
    window: Duration,
    tx: watch::Sender<Arc<HealthSnapshot>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("database", &self.cx.url)
            .field("interval", &self.interval)
            .field("database_checks", &self.database_checks)
            .field(
                "dependencies",
                &self
                    .dependencies
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What a monitor run saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Ticks run.
    pub ticks: u64,
    /// Ticks whose overall status was unhealthy.
    pub failing: u64,
    /// Lines logged (transitions and repeat summaries).
    pub lines: u64,
}

impl Monitor {
    /// A monitor of `init`'s database, its registered dependency checks
    /// (`dbinit-redis`, say) and those given to
    /// [`Initializer::dependency`], every `interval`. Repeats are collapsed
    /// per 60 s. Each tick connects with no retry wait when it has no
    /// connection: the next tick is the retry.
    ///
    /// # Errors
    ///
    /// A configuration that can never work, before anything runs: an
    /// invalid dependency (an unparsable `REDIS_URL`), two checks with one
    /// name, a fallback declared for no dependency, or what
    /// [`Initializer::run`] would refuse to start with (no backend for the
    /// URL, an invalid migration set).
    pub fn new(init: Initializer, interval: Duration) -> Result<Self, CoreError> {
        let mut options = init.settings().connect.clone();
        options.connect_timeout = Duration::ZERO;
        // A locked SQLite file: a check waits no longer than its tick may.
        options.busy_timeout = options.busy_timeout.min(budget(interval));
        let init = init.connect_options(options);
        let settings = init.settings();
        let cx = Context::resolve(settings, &settings.url)?;
        let database_checks = dbinit_core::registry::health_checks()?
            .iter()
            .map(|r| r.make())
            .filter(|c| c.applies_to(&cx.backend))
            .map(|c| c.name().to_owned())
            .collect();
        let dependencies = settings.dependency_checks()?;
        let starting = HealthSnapshot::starting(cx.url.redacted().to_owned(), interval, None);
        Ok(Monitor {
            cx,
            database_checks,
            dependencies,
            interval,
            max_ticks: None,
            window: Duration::from_secs(60),
            tx: watch::channel(Arc::new(starting)).0,
        })
    }

    /// Collapses repeats per `window` instead of 60 s.
    pub fn repeat_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Stops after `n` ticks (the CLI's `--ticks`).
    pub fn max_ticks(mut self, n: u64) -> Self {
        self.max_ticks = Some(n);
        self
    }

    /// Publishes the outcome of this process's `init` with every snapshot
    /// (`/metrics`: init duration, migrations applied, last outcome).
    pub fn init_report(self, report: &InitReport) -> Self {
        let facts = InitFacts::from(report);
        self.tx.send_modify(|s| Arc::make_mut(s).init = Some(facts));
        self
    }

    /// The channel the snapshots are published on; its first value says
    /// "starting" (not ready) until the first tick completes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<HealthSnapshot>> {
        self.tx.subscribe()
    }

    /// Checks every interval until `stop` is cancelled (or `max_ticks`).
    /// A tick that runs late delays the next one rather than bunching
    /// them; the database checks of a tick get at most `max(interval, 5 s)`.
    pub async fn run(self, stop: CancellationToken) -> MonitorStats {
        let mut stats = MonitorStats::default();
        let mut session: Option<Kept> = None;
        let mut log = log::HealthLog::new(self.window);
        // tokio's interval panics on zero; a zero interval means "as often
        // as possible", which one millisecond stands for.
        let mut ticker = tokio::time::interval(self.interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let checking = AtomicBool::new(false);
        while self.max_ticks.is_none_or(|t| stats.ticks < t) {
            let (checks, took) = tokio::select! {
                () = stop.cancelled() => break,
                done = async {
                    ticker.tick().await;
                    let started = Instant::now();
                    checking.store(true, Ordering::Relaxed);
                    let checks = self.tick(&mut session).await;
                    checking.store(false, Ordering::Relaxed);
                    (checks, started.elapsed())
                } => done,
            };
            let snapshot = HealthSnapshot::next(&self.tx.borrow(), checks, took);
            stats.ticks += 1;
            if snapshot.status == HealthStatus::Unhealthy {
                stats.failing += 1;
            }
            if let Some(line) = log.observe(&snapshot, Instant::now().into_std()) {
                stats.lines += 1;
                if line.warn {
                    tracing::warn!("{}", line.text);
                } else {
                    tracing::info!("{}", line.text);
                }
            }
            self.tx.send_replace(Arc::new(snapshot));
        }
        // Stopped mid-tick: a statement may still run (on PostgreSQL, or a
        // SQLite call on another thread).
        if let Some(kept) = session.take().filter(|_| checking.load(Ordering::Relaxed)) {
            kept.cancel().await;
        }
        if let Some(line) = log.finish() {
            stats.lines += 1;
            tracing::warn!("{}", line.text);
        }
        stats
    }

    /// One tick: the database checks and the dependency checks, side by side.
    async fn tick(&self, session: &mut Option<Kept>) -> Vec<CheckState> {
        let (mut checks, dependencies) = tokio::join!(self.database(session), self.dependencies());
        checks.extend(dependencies);
        checks
    }

    /// The database checks on the kept connection. When it cannot connect,
    /// loses the connection or overruns its budget, `connectivity` says why
    /// and the other checks "not checked"; the connection is dropped, and
    /// the next tick connects again.
    async fn database(&self, slot: &mut Option<Kept>) -> Vec<CheckState> {
        let started = Instant::now();
        let budget = budget(self.interval);
        let work = async {
            // A kept connection is proven first, whichever checks run (even
            // with `connectivity` skipped): one that fails is replaced now.
            if let Some(kept) = slot.as_mut() {
                if kept.session.ping().await.is_err() {
                    *slot = None;
                }
            }
            let kept = match slot {
                Some(kept) => kept,
                None => {
                    // Not `Context::connect`: an interrupt stops a run, not
                    // the monitor's reconnects while it drains.
                    let cx = &self.cx;
                    let session = cx.connector.connect(&cx.url, &cx.settings.connect).await?;
                    slot.insert(Kept::new(session))
                }
            };
            run_checks(&self.cx, &mut *kept.session, Occasion::Periodic).await
        };
        let failure = match tokio::time::timeout(budget, work).await {
            Ok(Ok(reports)) => {
                // Whatever failed may have left the connection unusable
                // (even with `connectivity` skipped): the next tick takes
                // a fresh one.
                if reports.iter().any(|r| r.status == HealthStatus::Unhealthy) {
                    *slot = None;
                }
                // A lost connection: the other checks' errors say nothing
                // more, report them as the unreachable case does.
                match reports
                    .iter()
                    .find(|r| r.name == CONNECTIVITY && r.status == HealthStatus::Unhealthy)
                {
                    Some(lost) => lost.detail.clone(),
                    None => {
                        return reports
                            .into_iter()
                            .map(|r| {
                                state(r.name, CheckKind::Database, r.status, r.detail, r.latency)
                            })
                            .collect()
                    }
                }
            }
            Ok(Err(e)) => ErrorReport::from(&e).message,
            Err(_) => format!("no answer within {:.1} s", budget.as_secs_f64()),
        };
        // Past its budget a statement may still run (a SQLite call on its
        // thread, waiting for a lock): stop it rather than leave it behind.
        if let Some(kept) = slot.take() {
            kept.cancel().await;
        }
        let latency = started.elapsed();
        let previous = Arc::clone(&self.tx.borrow());
        self.database_checks
            .iter()
            .map(|name| {
                let was = previous.checks.iter().find(|c| &c.name == name);
                let (status, detail) = if name == CONNECTIVITY {
                    (HealthStatus::Unhealthy, failure.clone())
                } else if self.cx.settings.skip_checks.contains(name) {
                    (
                        HealthStatus::Disabled,
                        "skipped by configuration".to_owned(),
                    )
                } else if let Some(was) = was.filter(|c| c.status == HealthStatus::Disabled) {
                    // Disabled on a tick (a check that reads the whole
                    // file, no seeders): it would not have run anyway.
                    (HealthStatus::Disabled, was.detail.clone())
                } else {
                    (HealthStatus::Unhealthy, snapshot::NOT_CHECKED.to_owned())
                };
                state(name.clone(), CheckKind::Database, status, detail, latency)
            })
            .collect()
    }

    async fn dependencies(&self) -> Vec<CheckState> {
        check_dependencies(&self.cx.settings, &self.dependencies)
            .await
            .into_iter()
            .map(|report| {
                state(
                    report.name,
                    CheckKind::Dependency,
                    report.status,
                    report.detail,
                    report.latency,
                )
            })
            .collect()
    }
}

/// The monitor's connection, and what cancels a statement on it (taken
/// while the connection is idle: a SQLite call in flight holds it).
struct Kept {
    session: Box<dyn Session>,
    canceller: Option<Arc<dyn Canceller>>,
}

impl Kept {
    fn new(session: Box<dyn Session>) -> Self {
        let canceller = session.canceller();
        Kept { session, canceller }
    }

    async fn cancel(self) {
        if let Some(canceller) = self.canceller {
            canceller.cancel().await;
        }
    }
}

fn state(
    name: String,
    kind: CheckKind,
    status: HealthStatus,
    detail: String,
    latency: Duration,
) -> CheckState {
    CheckState {
        name,
        kind,
        status,
        detail,
        latency,
        since: String::new(),
    }
}
