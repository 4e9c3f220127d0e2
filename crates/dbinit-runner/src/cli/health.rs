//! `health`: once, `--watch` (the monitor, logging), or `--serve` (the
//! monitor behind its HTTP routes until a signal or `--ticks`).

use std::process::ExitCode;
use std::time::Duration;

use dbinit_core::{CoreError, ErrorKind};

use super::args::HealthArgs;
use super::outcome::fail;
use super::{exit, render};
use crate::dependency::Endpoint;
use crate::{CancellationToken, Initializer, Interrupt, Monitor, MonitorStats};

/// The interval of `--serve` without `--watch`.
#[cfg(feature = "http")]
const SERVE_INTERVAL: Duration = Duration::from_secs(30);

pub(super) async fn run(
    args: &HealthArgs,
    init: Initializer,
    json: bool,
    interrupt: Interrupt,
) -> ExitCode {
    let init = match configure(args, init) {
        Ok(init) => init,
        Err(e) => return fail(&e, json),
    };
    #[cfg(feature = "http")]
    if let Some(addr) = &args.serve {
        let monitor = match monitor(args, init, args.watch.unwrap_or(SERVE_INTERVAL)) {
            Ok(m) => m,
            Err(e) => return fail(&e, json),
        };
        return serve(monitor, addr, args.ticks.is_some(), json, interrupt).await;
    }
    #[cfg(not(feature = "http"))]
    let _ = interrupt; // only a server stops on it
    if let Some(interval) = args.watch {
        let stats = match monitor(args, init, interval) {
            Ok(m) => m.run(CancellationToken::new()).await,
            Err(e) => return fail(&e, json),
        };
        if json {
            render::json(&serde_json::json!({
                "ticks": stats.ticks, "failing": stats.failing, "log_lines": stats.lines
            }));
        }
        return verdict(&stats);
    }
    match init.health().await {
        Ok(summary) => {
            render::health(&summary, json);
            if summary.failures().is_empty() {
                ExitCode::from(exit::OK)
            } else {
                ExitCode::from(exit::code(ErrorKind::Unhealthy))
            }
        }
        Err(e) => fail(&e, json),
    }
}

/// The initializer with the dependencies and fallbacks of the flags, or
/// else of `DBINIT_DEPENDS_ON` (whitespace-separated: URLs hold no spaces
/// but may hold commas) and `DBINIT_DEPENDENCY_FALLBACK` (`;`-separated:
/// descriptions are prose). Empty entries are ignored, so an empty variable
/// means none.
///
/// Specs are checked here rather than by clap, whose refusal would echo the
/// value, secrets included.
pub(super) fn configure(
    args: &HealthArgs,
    mut init: Initializer,
) -> Result<Initializer, CoreError> {
    let from_env = |var: &str, split: fn(&str) -> Vec<String>| {
        std::env::var(var).map(|v| split(&v)).unwrap_or_default()
    };
    let depends_on = match args.depends_on.is_empty() {
        true => from_env("DBINIT_DEPENDS_ON", |v| {
            v.split_whitespace().map(str::to_owned).collect()
        }),
        false => args.depends_on.clone(),
    };
    let fallbacks = match args.dependency_fallback.is_empty() {
        true => from_env("DBINIT_DEPENDENCY_FALLBACK", |v| {
            v.split(';').map(str::to_owned).collect()
        }),
        false => args.dependency_fallback.clone(),
    };
    for spec in depends_on
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        init = init.dependency(Endpoint::parse(spec)?);
    }
    for spec in fallbacks.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (name, what) = spec
            .split_once('=')
            .unwrap_or((spec, "no description given"));
        init = init.dependency_fallback(name.trim(), what.trim());
    }
    Ok(init)
}

fn monitor(args: &HealthArgs, init: Initializer, interval: Duration) -> Result<Monitor, CoreError> {
    let mut monitor = Monitor::new(init, interval)?.repeat_window(args.repeat_window);
    if let Some(n) = args.ticks {
        monitor = monitor.max_ticks(n);
    }
    Ok(monitor)
}

/// Exit 0 when no tick was unhealthy, else the unhealthy code.
fn verdict(stats: &MonitorStats) -> ExitCode {
    if stats.failing == 0 {
        ExitCode::from(exit::OK)
    } else {
        ExitCode::from(exit::code(ErrorKind::Unhealthy))
    }
}

/// How long a stop waits for requests in flight: a client that never
/// finishes its request must not hold the process past the orchestrator's
/// grace period.
#[cfg(feature = "http")]
const DRAIN: Duration = Duration::from_secs(5);

/// Serves the routes until a signal (exit 0) or, with `--ticks`, until the
/// monitor is done (exit as `--watch` would).
#[cfg(feature = "http")]
async fn serve(
    monitor: Monitor,
    addr: &str,
    counted: bool,
    json: bool,
    interrupt: Interrupt,
) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            let e = CoreError::backend(ErrorKind::Io, format!("cannot listen on {addr}: {e}"));
            return fail(&e, json);
        }
    };
    let bound = match listener.local_addr() {
        Ok(bound) => bound.to_string(),
        Err(_) => addr.to_owned(),
    };
    // Scripts and tests read the address (the port picked for `:0`).
    if json {
        render::json(&serde_json::json!({ "serving": format!("http://{bound}") }));
    } else {
        println!("serving health on http://{bound}");
    }
    tracing::info!("serving /livez /readyz /health /metrics on http://{bound}");
    let stop = CancellationToken::new();
    let app = crate::http::router::<()>(monitor.subscribe());
    let checks = tokio::spawn({
        let stop = stop.clone();
        async move {
            let stats = monitor.run(stop.clone()).await;
            // `--ticks` done: stop serving too.
            stop.cancel();
            stats
        }
    });
    tokio::spawn({
        let stop = stop.clone();
        async move {
            interrupt.interrupted().await;
            stop.cancel();
        }
    });
    let server = crate::http::serve(listener, app, crate::http::Limits::default(), stop.clone());
    let served = tokio::select! {
        served = server => served,
        () = async { stop.cancelled().await; tokio::time::sleep(DRAIN).await } => {
            tracing::warn!("requests still open {} s after the stop; exiting", DRAIN.as_secs());
            Ok(())
        }
    };
    stop.cancel();
    let stats = checks.await.unwrap_or_default();
    match served {
        Err(e) => {
            let e = CoreError::backend(ErrorKind::Io, format!("serving on {bound} failed: {e}"));
            fail(&e, json)
        }
        Ok(()) if counted => verdict(&stats),
        Ok(()) => ExitCode::from(exit::OK),
    }
}
