//! The example service as a pre-fork server starts it: four worker
//! processes at once against one new database. All four serve real HTTP
//! requests, the schema is applied once and the seed row exists once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

const WORKERS: usize = 4;

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the workers on `url`; returns them with the addresses they bound.
fn start(url: &str) -> Vec<(Worker, String)> {
    let children: Vec<Worker> = (0..WORKERS)
        .map(|_| {
            let child = Command::new(env!("CARGO_BIN_EXE_dbinit-example-service"))
                .arg("127.0.0.1:0")
                .env("DATABASE_URL", url)
                .env_remove("DBINIT_ENV")
                .env_remove("DBINIT_FALLBACK_URL")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a worker");
            Worker(child)
        })
        .collect();
    children
        .into_iter()
        .map(|mut worker| {
            let mut line = String::new();
            let stdout = worker.0.stdout.take().expect("stdout");
            BufReader::new(stdout).read_line(&mut line).expect("read");
            let Some(addr) = line.trim().strip_prefix("listening on ") else {
                let mut err = String::new();
                let _ = worker
                    .0
                    .stderr
                    .take()
                    .map(|mut e| e.read_to_string(&mut err));
                panic!("a worker did not start: {line:?} {err}");
            };
            let addr = addr.to_owned();
            (worker, addr)
        })
        .collect()
}

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

fn every_worker_serves(workers: &[(Worker, String)]) {
    for (_, addr) in workers {
        let response = get(addr, "/notes/welcome");
        assert!(response.starts_with("HTTP/1.1 200"), "{addr}: {response}");
        assert!(
            response.ends_with("Hello from dbinit"),
            "{addr}: {response}"
        );
        assert!(get(addr, "/notes/missing").starts_with("HTTP/1.1 404"));
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
