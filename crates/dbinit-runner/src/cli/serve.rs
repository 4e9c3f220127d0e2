//! `health --serve ADDR`: the monitor and its HTTP routes, until a signal
//! (or `--ticks`).

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::{CancellationToken, Interrupt, Monitor};

use super::exit;

pub(super) async fn health(
    mut monitor: Monitor,
    addr: SocketAddr,
    ticks: Option<u64>,
    interrupt: Interrupt,
) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::from(exit::code(dbinit_core::ErrorKind::Io));
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    // Scripts and tests read the port picked for `:0` from stdout.
    println!("serving health on http://{bound}");
    tracing::info!("serving /livez /readyz /health /metrics on http://{bound}");
    if let Some(n) = ticks {
        monitor = monitor.max_ticks(n);
    }
    let stop = CancellationToken::new();
    let app = crate::http::router::<()>(monitor.subscribe());
    let checks = tokio::spawn({
        let stop = stop.clone();
        async move {
            monitor.run(stop.clone()).await;
            // `--ticks` done: stop serving too.
            stop.cancel();
        }
    });
    tokio::spawn({
        let stop = stop.clone();
        async move {
            interrupt.interrupted().await;
            stop.cancel();
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .await;
    stop.cancel();
    let _ = checks.await;
    match served {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: serving on {bound} failed: {e}");
            ExitCode::from(exit::INTERNAL)
        }
    }
}
