//! A service that calls dbinit before it binds its listener: the database
//! is ready (migrated, seeded, checked) or the process exits with dbinit's
//! error and exit code, and never serves a request against missing tables.
//!
//! `dbinit-example-service ADDR` serves `GET /notes/{slug}` on ADDR
//! (`127.0.0.1:0` picks a port; the bound address is printed on stdout).
//! A second argument, `--bench-without-dbinit`, skips the dbinit call: the
//! baseline of `cargo xtask bench`.
//! Several processes may start at once on one new database (a pre-fork
//! server's workers): dbinit's lock lets one initialize, the others find
//! nothing to do.

use std::process::ExitCode;
use std::sync::Arc;

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
dbinit_core::inventory::submit! { dbinit_core::SeederRegistration::new(|| Box::new(WelcomeNote)) }

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
    if !skip_init {
        match init.run().await {
            Ok(report) => eprintln!("{report}"),
            Err(e) => return fail(&e.to_string(), 70),
        }
    }
    // 2. A session for the handlers (a real service would keep a pool).
    let url = init.url().clone();
    let session = match dbinit_core::registry::connector_for(&url) {
        Ok(connector) => connector.make().connect(&url, &Default::default()).await,
        Err(e) => Err(e),
    };
    let session = match session {
        Ok(session) => session,
        Err(e) => return fail(&e.to_string(), 20),
    };
    // 3. Only now: listen and serve.
    let app = Router::new()
        .route("/notes/{slug}", get(note))
        .with_state(Arc::new(Mutex::new(session)));
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on {addr}: {e}"), 71),
    };
    if let Ok(bound) = listener.local_addr() {
        println!("listening on {bound}");
    }
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string(), 71),
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}
