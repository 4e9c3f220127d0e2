//! The CLI's log output: stderr, filtered by `DBINIT_LOG` (else
//! `RUST_LOG`, else `info` for dbinit and `warn` for the rest), colours
//! only on a terminal, and no line of a dependency crate more than once per
//! window: dbinit reports a failing database itself, once per transition
//! and once per repeat window, and a driver's or pool's own line about the
//! same failure (deadpool's "Connection error" on every reconnect) must not
//! repeat it on every tick.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How often one line of a dependency crate may show.
const DEPENDENCY_WINDOW: Duration = Duration::from_secs(60);

/// Installs the subscriber, unless the host binary installed its own.
pub(crate) fn init() {
    let filter = EnvFilter::try_from_env("DBINIT_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| {
            EnvFilter::new(
                "warn,dbinit_runner=info,dbinit_sqlite=info,dbinit_postgres=info,dbinit_accounts=info",
            )
        });
    // tokio-postgres logs statement parameters (password hashes among them)
    // at debug level: nothing of it below info, whatever DBINIT_LOG says.
    let no_driver_debug = tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.target().starts_with("tokio_postgres") && *meta.level() > tracing::Level::INFO)
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .with_target(false)
        .with_filter(filter)
        .with_filter(no_driver_debug)
        .with_filter(OncePerWindow::new(DEPENDENCY_WINDOW));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Colours only on a terminal, and never with `NO_COLOR` set (no-color.org).
fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Lets each log statement of a crate other than dbinit's through at most
/// once per window. dbinit's own lines have their own limiter
/// (`crate::ratelimit`), which counts what it held back.
struct OncePerWindow {
    window: Duration,
    shown: Mutex<HashMap<Statement, Instant>>,
}

/// Which statement logged an event: its callsite, or, for a `log` record
/// (every one shares the callsite of its level), where it was written.
#[derive(Debug, Hash, PartialEq, Eq)]
enum Statement {
    Tracing(Identifier),
    Log(String),
}

impl Statement {
    fn of(event: &Event<'_>) -> Statement {
        /// The `log.target`, `log.file` and `log.line` fields tracing-log adds.
        struct Origin(String);
        impl tracing::field::Visit for Origin {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name().starts_with("log.") && field.name() != "log.module_path" {
                    self.0 += &format!("{value:?}|");
                }
            }
        }
        if event.metadata().target() != "log" {
            return Statement::Tracing(event.metadata().callsite());
        }
        let mut origin = Origin(String::new());
        event.record(&mut origin);
        Statement::Log(origin.0)
    }
}

impl OncePerWindow {
    fn new(window: Duration) -> Self {
        OncePerWindow {
            window,
            shown: Mutex::new(HashMap::new()),
        }
    }
}

impl<S> Filter<S> for OncePerWindow {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        if event.metadata().target().starts_with("dbinit") {
            return true;
        }
        let statement = Statement::of(event);
        let Ok(mut shown) = self.shown.lock() else {
            return true;
        };
        let now = Instant::now();
        match shown.get(&statement) {
            Some(at) if now.duration_since(*at) < self.window => false,
            _ => {
                shown.insert(statement, now);
                true
            }
        }
    }
}
