//! The health routes a service mounts (feature `http`): `/livez`,
//! `/readyz`, `/health` and `/metrics`, all served from the monitor's last
//! [`HealthSnapshot`] — a request never touches the database.
//!
//! ```no_run
//! # async fn serve(init: dbinit_runner::Initializer) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use dbinit_runner::{CancellationToken, Monitor};
//!
//! let stop = CancellationToken::new();
//! let monitor = Monitor::new(init, Duration::from_secs(30))?;
//! let app = axum::Router::new()
//!     // .route("/your/routes", ...)
//!     .merge(dbinit_runner::http::router(monitor.subscribe()));
//! tokio::spawn(monitor.run(stop.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // Or `axum::serve`, with bounds of your own: this one has a header-read
//! // timeout, an idle timeout and a connection cap (see [`Limits`]).
//! dbinit_runner::http::serve(listener, app, Default::default(), stop).await?;
//! # Ok(()) }
//! ```

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::report::Outcome;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dbinit_core::HealthStatus;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::watch;

use crate::monitor::HealthSnapshot;

mod server;

pub use server::{serve, Limits};

type Health = watch::Receiver<Arc<HealthSnapshot>>;

/// The four routes, over the snapshots `health` receives
/// ([`Monitor::subscribe`](crate::Monitor::subscribe)):
///
/// - `GET /livez`: 200 while the process serves; never looks at health.
/// - `GET /readyz`: 200 when no check is unhealthy (migrations current,
///   seed data present, required dependencies up) and the monitor is
///   ticking; 503 with a JSON body whose `not_ready` names what is missing.
/// - `GET /health`: the whole snapshot as JSON (200, or 503 when not ready).
/// - `GET /metrics`: Prometheus / OpenMetrics text.
pub fn router<S: Clone + Send + Sync + 'static>(health: Health) -> Router<S> {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/health", get(full))
        .route("/metrics", get(metrics))
        .with_state(health)
}

const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");

async fn livez() -> Response {
    ([NO_STORE], "ok\n").into_response()
}

/// The snapshot as served (a stale one turned unready).
fn current(health: &Health) -> HealthSnapshot {
    health.borrow().served()
}

async fn readyz(State(health): State<Health>) -> Response {
    // The hot path of every probe: no copy of the snapshot. Not ready means
    // an unhealthy check, no tick yet, or a stale monitor: unhealthy all.
    let snapshot = Arc::clone(&health.borrow());
    match snapshot.readiness() {
        Ok(()) => (
            StatusCode::OK,
            [NO_STORE],
            Json(serde_json::json!({ "ready": true, "status": snapshot.status })),
        )
            .into_response(),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [NO_STORE],
            Json(serde_json::json!({
                "ready": false, "status": HealthStatus::Unhealthy, "not_ready": reasons
            })),
        )
            .into_response(),
    }
}

async fn full(State(health): State<Health>) -> Response {
    let snapshot = current(&health);
    (status_code(&snapshot), [NO_STORE], Json(&snapshot)).into_response()
}

fn status_code(snapshot: &HealthSnapshot) -> StatusCode {
    match snapshot.ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn metrics(State(health): State<Health>) -> Response {
    let snapshot = current(&health);
    let mut text = String::new();
    match encode(&mut text, &registry(&snapshot)) {
        Ok(()) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                NO_STORE,
            ],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

type Labels = Vec<(&'static str, String)>;

/// The metrics of one snapshot (built per scrape: they are a function of it).
fn registry(snapshot: &HealthSnapshot) -> Registry {
    let mut registry = Registry::with_prefix("dbinit");
    let status = Family::<Labels, Gauge>::default();
    let latency = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for check in &snapshot.checks {
        for s in HealthStatus::ALL {
            status
                .get_or_create(&vec![
                    ("check", check.name.clone()),
                    ("kind", kind(check.kind).to_owned()),
                    ("status", s.as_str().to_owned()),
                ])
                .set(i64::from(check.status == s));
        }
        latency
            .get_or_create(&vec![("check", check.name.clone())])
            .set(check.latency.as_secs_f64());
    }
    registry.register(
        "health_check_status",
        "1 for the status each check is in, 0 for the others",
        status,
    );
    registry.register_with_unit(
        "health_check_latency",
        "How long each check took on the last tick",
        Unit::Seconds,
        latency,
    );
    let ready = Gauge::<i64>::default();
    ready.set(i64::from(snapshot.ready));
    registry.register("health_ready", "1 when /readyz answers 200", ready);
    let tick = Gauge::<f64, AtomicU64>::default();
    tick.set(snapshot.tick.as_secs_f64());
    registry.register_with_unit(
        "health_tick_duration",
        "How long the last monitor tick took (all checks)",
        Unit::Seconds,
        tick,
    );
    let ticks = Counter::<u64>::default();
    ticks.inc_by(snapshot.ticks);
    registry.register("health_ticks", "Monitor ticks completed", ticks);
    if let Some(init) = &snapshot.init {
        let duration = Gauge::<f64, AtomicU64>::default();
        duration.set(init.duration.as_secs_f64());
        registry.register_with_unit(
            "init_duration",
            "How long this process's init took",
            Unit::Seconds,
            duration,
        );
        let applied = Gauge::<i64>::default();
        applied.set(i64::try_from(init.migrations_applied).unwrap_or(i64::MAX));
        registry.register(
            "migrations_applied",
            "Migrations recorded as applied after this process's init",
            applied,
        );
        let success = Gauge::<i64>::default();
        success.set(i64::from(init.outcome == Outcome::Ready));
        registry.register(
            "init_success",
            "1 when this process's last init made the database ready",
            success,
        );
    }
    registry
}

fn kind(kind: crate::monitor::CheckKind) -> &'static str {
    match kind {
        crate::monitor::CheckKind::Database => "database",
        crate::monitor::CheckKind::Dependency => "dependency",
    }
}
