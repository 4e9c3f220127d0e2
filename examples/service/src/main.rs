//! A service that calls dbinit before it binds its listener: the database
//! is ready (migrated, seeded, checked) or the process exits with dbinit's
//! error and exit code, and never serves a request against missing tables.
//!
//! `dbinit-example-service ADDR` serves `GET /notes/{slug}` on ADDR
//! (`127.0.0.1:0` picks a port; the bound address is printed on stdout),
//! and dbinit's health routes: `/livez`, `/readyz`, `/health`, `/metrics`,
//! from a monitor checking every `HEALTH_INTERVAL_MS` (default 30000).
//! A second argument, `--bench-without-dbinit`, skips the dbinit call: the
//! baseline of `cargo xtask bench`.
//! Several processes may start at once on one new database (a pre-fork
//! server's workers): dbinit's lock lets one initialize, the others find
//! nothing to do.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use dbinit_core::migration::EmbeddedMigration;
use dbinit_core::{async_trait, CoreError, MigrationSets, SeedContext, SeedOutcome, Seeder};
use tokio::sync::Mutex;

static MIGRATIONS: &[(&str, &[EmbeddedMigration])] =
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The service's one seeder: the welcome note.
struct WelcomeNote;

#[async_trait]
impl Seeder for WelcomeNote {
    fn name(&self) -> &'static str {
        "welcome_note"
    }
    async fn is_seeded(&self, cx: &mut SeedContext<'_>) -> Result<bool, CoreError> {
        cx.exists("SELECT 1 FROM notes WHERE slug = $1", &["welcome".into()])
            .await
    }
    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
        let sql = "INSERT INTO notes (slug, body) VALUES ($1, $2)";
        cx.insert_unless_seeded(self, sql, &["welcome".into(), "Hello from dbinit".into()])
            .await
    }
}
dbinit_core::register! {
    SeederRegistration => WelcomeNote,
}

type Db = Arc<Mutex<Box<dyn dbinit_core::Session>>>;

async fn note(State(db): State<Db>, Path(slug): Path<String>) -> (StatusCode, String) {
    let mut session = db.lock().await;
    match session
        .query("SELECT body FROM notes WHERE slug = $1", &[slug.into()])
        .await
    {
        Ok(rows) => match rows.first().map(|r| r.get::<String>("body")) {
            Some(Ok(body)) => (StatusCode::OK, body),
            Some(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            None => (StatusCode::NOT_FOUND, "no such note".to_owned()),
        },
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // dbinit logs through `tracing`: the monitor's transitions among them.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // The backends this service uses, and nothing else: its own seeder is
    // in this crate (registered below), the demo's are not linked.
    #[cfg(feature = "sqlite")]
    dbinit_sqlite::link();
    #[cfg(feature = "postgres")]
    dbinit_postgres::link();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    // `cargo xtask bench` measures startup without dbinit's call too.
    let skip_init = std::env::args().nth(2).as_deref() == Some("--bench-without-dbinit");
    // 1. The database, ready — before anything listens.
    let sets = match MigrationSets::embedded("dbinit-example-service", MIGRATIONS) {
        Ok(sets) => sets,
        Err(e) => return fail(&e.to_string(), 1),
    };
    let init = match dbinit_runner::Initializer::from_env("sqlite://data/example.db") {
        Ok(init) => init.migration_sets(sets),
        Err(e) => return fail(&e.to_string(), 10),
    };
    let report = if skip_init {
        None
    } else {
        match init.run().await {
            Ok(report) => {
                eprintln!("{report}");
                Some(report)
            }
            Err(e) => return fail(&e.to_string(), 70),
        }
    };
    // 2. A session for the handlers (a real service would keep a pool).
    let url = init.url().clone();
    let session = match url.connector() {
        Ok(connector) => connector.make().connect(&url, &Default::default()).await,
        Err(e) => Err(e),
    };
    let session = match session {
        Ok(session) => session,
        Err(e) => return fail(&e.to_string(), 20),
    };
    // 3. Health: a monitor on its own connection, its routes mounted.
    let mut app = Router::new()
        .route("/notes/{slug}", get(note))
        .with_state(Arc::new(Mutex::new(session)));
    let stop = dbinit_runner::CancellationToken::new();
    if let Some(report) = &report {
        let interval = match std::env::var("HEALTH_INTERVAL_MS").map(|v| v.parse::<u64>()) {
            Err(_) => Duration::from_secs(30),
            Ok(Ok(ms)) if ms > 0 => Duration::from_millis(ms),
            Ok(_) => return fail("HEALTH_INTERVAL_MS must be a positive integer", 10),
        };
        let monitor = match dbinit_runner::Monitor::new(init, interval) {
            Ok(monitor) => monitor.init_report(report),
            Err(e) => return fail(&e.to_string(), 10),
        };
        app = app.merge(dbinit_runner::http::router(monitor.subscribe()));
        tokio::spawn(monitor.run(stop.clone()));
    }
    // 4. Only now: listen and serve.
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on {addr}: {e}"), 71),
    };
    if let Ok(bound) = listener.local_addr() {
        println!("listening on {bound}");
    }
    let served = axum::serve(listener, app).await;
    stop.cancel();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string(), 71),
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}
