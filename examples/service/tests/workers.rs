//! The example service as a pre-fork server starts it: four worker
//! processes at once against one new database. All four serve real HTTP
//! requests, the schema is applied once and the seed row exists once.

use dbinit_tests::http::Served;

const WORKERS: usize = 4;

/// Starts the workers on `url`, all at once.
fn start(url: &str) -> Vec<Served> {
    // Spawned together, then each waited for (Served::spawn waits for the
    // address line): threads keep the starts concurrent.
    std::thread::scope(|scope| {
        let starting: Vec<_> = (0..WORKERS)
            .map(|_| {
                let mut command =
                    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-example-service"));
                command.arg("127.0.0.1:0").env("DATABASE_URL", url);
                scope.spawn(move || Served::spawn(command, "listening on "))
            })
            .collect();
        starting
            .into_iter()
            .map(|s| s.join().expect("a worker started"))
            .collect()
    })
}

fn every_worker_serves(workers: &[Served]) {
    for worker in workers {
        let response = worker.get("/notes/welcome");
        assert_eq!(response.status, 200, "{}: {response:?}", worker.addr);
        assert_eq!(response.body, "Hello from dbinit", "{}", worker.addr);
        assert_eq!(worker.get("/notes/missing").status, 404);
        worker.wait_for("/readyz", "ready", |r| r.status == 200);
    }
}

#[test]
fn four_workers_on_a_new_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("service.db");
    let workers = start(&format!("sqlite://{}", db.display()));
    every_worker_serves(&workers);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM refinery_schema_history"), 1);
    assert_eq!(count("SELECT count(*) FROM notes"), 1);
}

#[test]
fn four_workers_on_a_new_postgres_database() {
    let url = dbinit_tests::pg_url(&dbinit_tests::unique_database("service"));
    let workers = start(&url);
    every_worker_serves(&workers);
    let count = |sql: &str| dbinit_tests::pg::psql(&url, sql);
    assert_eq!(count("SELECT count(*) FROM refinery_schema_history"), "1");
    assert_eq!(count("SELECT count(*) FROM notes"), "1");
}
