//! The PostgreSQL backend against the real server `cargo xtask test` starts
//! (and, for TLS, one this test starts with a certificate it generates).

use std::time::Duration;

use dbinit_runner::dbinit_core::engine;
use dbinit_runner::dbinit_core::migration::MigrationBatchError;
use dbinit_runner::dbinit_core::{
    ConnectOptions, Connector, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind, MigrationSet,
    Session, Value,
};
use dbinit_tests::pg::{test_certificates, Cluster, ClusterOptions};
use dbinit_tests::{pg_url, unique_database};

fn connector() -> Box<dyn Connector> {
    dbinit_tests::link();
    let url = DatabaseUrl::parse(&pg_url("postgres")).unwrap();
    url.connector().expect("postgres is linked").make()
}

fn options() -> ConnectOptions {
    let mut o = ConnectOptions::default();
    o.connect_timeout = Duration::from_secs(10);
    o
}

/// A new database of its own, created through the connector.
async fn fresh() -> (DatabaseUrl, Box<dyn Session>) {
    let url = DatabaseUrl::parse(&pg_url(&unique_database("backend"))).unwrap();
    let (session, created) = connector().open(&url, &options()).await.unwrap();
    assert_eq!(created, DatabaseCreated::Created);
    (url, session)
}

fn set(files: &[(&str, &str)]) -> MigrationSet {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        std::fs::write(dir.path().join(format!("{name}.sql")), sql).unwrap();
    }
    MigrationSet::from_dir(dir.path()).unwrap()
}

async fn apply(
    session: &mut dyn Session,
    set: &MigrationSet,
) -> Result<usize, MigrationBatchError> {
    let applied = engine::history(session).await?;
    let pending = set.pending(&applied)?;
    Ok(engine::apply(session, &pending).await?.len())
}

#[tokio::test]
async fn creates_a_missing_database_once() {
    let name = unique_database("create \"quoted\"");
    let url = DatabaseUrl::parse(&format!(
        "{}?application_name=creator",
        pg_url(&urlencode(&name))
    ))
    .unwrap();
    let c = connector();
    assert_eq!(
        c.ensure_database(&url, &options()).await.unwrap(),
        DatabaseCreated::Created
    );
    assert_eq!(
        c.ensure_database(&url, &options()).await.unwrap(),
        DatabaseCreated::Existed
    );
    let mut session = c.connect(&url, &options()).await.unwrap();
    let rows = session
        .query("SELECT current_database() AS db", &[])
        .await
        .unwrap();
    assert_eq!(
        rows[0].get::<Option<String>>("db").unwrap(),
        Some(name.clone())
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn connect_to_a_missing_database_is_an_error_not_a_creation() {
    let url = DatabaseUrl::parse(&pg_url(&unique_database("missing"))).unwrap();
    let err = connector().connect(&url, &options()).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.hint().unwrap().contains("init"), "{err}");
}

#[tokio::test]
async fn a_failing_migration_leaves_no_trace_and_the_lock_is_released() {
    let (url, mut session) = fresh().await;
    let held = session
        .acquire_init_lock(Duration::from_secs(5))
        .await
        .unwrap();
    let broken = set(&[
        ("V1__ok", "CREATE TABLE a (id BIGINT PRIMARY KEY);"),
        (
            "V2__broken",
            "CREATE TABLE b (id INT);\nINSERT INTO a VALUES (1);\nSELEKT nonsense;\n",
        ),
    ]);
    let err = apply(&mut *session, &broken).await.unwrap_err();
    assert_eq!(err.applied.len(), 1);
    let message = err.error.to_string();
    assert!(message.contains("V2__broken.sql"), "{message}");
    assert!(
        message.contains("syntax error at or near \"SELEKT\""),
        "{message}"
    );
    assert!(message.contains("at line 3"), "{message}");
    assert_eq!(session.tables().await.unwrap(), ["a"]);
    let count = session
        .query("SELECT count(*) AS n FROM a", &[])
        .await
        .unwrap();
    assert_eq!(count[0].get::<i64>("n").unwrap(), 0);

    // The session is still alive: the lock must be free for others now.
    session.release_init_lock(held).await.unwrap();
    let mut other = connector().connect(&url, &options()).await.unwrap();
    let lock = other
        .acquire_init_lock(Duration::from_millis(500))
        .await
        .unwrap();
    other.release_init_lock(lock).await.unwrap();

    let fixed = set(&[
        ("V1__ok", "CREATE TABLE a (id BIGINT PRIMARY KEY);"),
        (
            "V2__broken",
            "CREATE TABLE b (id INT);\nINSERT INTO a VALUES (1);\n",
        ),
    ]);
    assert_eq!(apply(&mut *session, &fixed).await.unwrap(), 1);
    assert_eq!(session.tables().await.unwrap(), ["a", "b"]);
}

#[tokio::test]
async fn release_works_from_an_aborted_transaction() {
    let (url, mut session) = fresh().await;
    let held = session
        .acquire_init_lock(Duration::from_secs(5))
        .await
        .unwrap();
    session.begin().await.unwrap();
    assert!(session
        .execute("SELECT * FROM no_such_table", &[])
        .await
        .is_err());
    // Aborted transaction: a naive pg_advisory_unlock fails here and leaks.
    session.release_init_lock(held).await.unwrap();
    let mut other = connector().connect(&url, &options()).await.unwrap();
    let lock = other
        .acquire_init_lock(Duration::from_millis(500))
        .await
        .unwrap();
    other.release_init_lock(lock).await.unwrap();
}

#[tokio::test]
async fn a_dropped_session_never_returns_a_locked_connection() {
    let (url, mut session) = fresh().await;
    let _held = session
        .acquire_init_lock(Duration::from_secs(5))
        .await
        .unwrap();
    drop(session);
    // The connection was closed, so the server released the lock.
    let mut other = connector().connect(&url, &options()).await.unwrap();
    let lock = other
        .acquire_init_lock(Duration::from_secs(5))
        .await
        .unwrap();
    other.release_init_lock(lock).await.unwrap();
}

#[tokio::test]
async fn lock_timeout_names_the_holder() {
    let (url, mut holder) = fresh().await;
    holder
        .execute_batch("SET application_name = 'holder-under-test'")
        .await
        .unwrap();
    let held = holder
        .acquire_init_lock(Duration::from_secs(5))
        .await
        .unwrap();
    let mut waiter = connector().connect(&url, &options()).await.unwrap();
    let err = waiter
        .acquire_init_lock(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::LockTimeout { .. }), "{err}");
    let pid = holder
        .query("SELECT pg_backend_pid() AS pid", &[])
        .await
        .unwrap()[0]
        .get::<i64>("pid")
        .unwrap();
    assert!(
        err.to_string()
            .contains(&format!("pid {pid} (holder-under-test)")),
        "{err}"
    );
    holder.release_init_lock(held).await.unwrap();
}

#[tokio::test]
async fn values_round_trip_through_server_types() {
    let (_, mut s) = fresh().await;
    s.execute_batch(
        "CREATE TABLE t (i2 SMALLINT, i4 INT, i8 BIGINT, f FLOAT8, b BOOLEAN, t TEXT, \
         v VARCHAR(10), j JSONB, ts TIMESTAMPTZ, bin BYTEA)",
    )
    .await
    .unwrap();
    let row = vec![
        Value::Int(7),
        Value::Int(70_000),
        Value::Int(1 << 40),
        Value::Float(1.5),
        Value::Bool(true),
        Value::from("text"),
        Value::from("short"),
        Value::from(r#"{"a":1}"#),
        Value::from("2026-01-02T03:04:05Z"),
        Value::Bytes(vec![0, 255]),
    ];
    let n = s
        .execute(
            "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &row,
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let back = s.query("SELECT * FROM t", &[]).await.unwrap();
    assert_eq!(back[0].values(), row.as_slice());
    let err = s
        .execute("INSERT INTO t (i2) VALUES ($1)", &[Value::Int(1 << 20)])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("out of range for type smallint"),
        "{err}"
    );
    // Parameters go out as text with their types left to the server, as a
    // literal would: uuids, enums, domains, numerics and dates take text.
    s.execute_batch(
        "CREATE TYPE mood AS ENUM ('calm', 'busy'); CREATE DOMAIN short_code AS text \
         CHECK (length(VALUE) <= 4); CREATE TABLE typed (u uuid, m mood, c short_code, \
         n numeric(6, 2), d date, inf float8)",
    )
    .await
    .unwrap();
    let typed = vec![
        Value::from("0190f0e2-7b7c-7cc3-8d2f-5b8f6a1e2d3c"),
        Value::from("busy"),
        Value::from("ab"),
        Value::Float(12.5),
        Value::from("2026-11-22"),
        Value::Float(f64::NEG_INFINITY),
    ];
    s.execute("INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6)", &typed)
        .await
        .unwrap();
    let back = s
        .query(
            "SELECT u::text, m::text, c::text, n::text, d::text, inf FROM typed",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        back[0].values(),
        [
            Value::from("0190f0e2-7b7c-7cc3-8d2f-5b8f6a1e2d3c"),
            Value::from("busy"),
            Value::from("ab"),
            Value::from("12.50"),
            Value::from("2026-11-22"),
            Value::Float(f64::NEG_INFINITY),
        ]
    );
    let err = s
        .execute(
            "INSERT INTO typed (c) VALUES ($1)",
            &[Value::from("toolong")],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("short_code"), "{err}");
    let nulls = s
        .query("SELECT $1::int AS x", &[Value::Null])
        .await
        .unwrap();
    assert_eq!(nulls[0].values(), [Value::Null]);
}

#[tokio::test]
async fn introspection_and_binary_copy() {
    let (_, mut s) = fresh().await;
    apply(
        &mut *s,
        &set(&[(
            "V1__t",
            "CREATE TABLE \"odd name\" (id BIGINT PRIMARY KEY, email TEXT NOT NULL, note TEXT);
             CREATE UNIQUE INDEX odd_email ON \"odd name\" (email);
             CREATE INDEX odd_note_email ON \"odd name\" (note, email);",
        )]),
    )
    .await
    .unwrap();
    assert_eq!(s.tables().await.unwrap(), ["odd name"]);
    let columns = s.columns("odd name").await.unwrap();
    let shape: Vec<_> = columns
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.data_type.as_str(),
                c.nullable,
                c.primary_key,
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("id", "bigint", false, true),
            ("email", "text", false, false),
            ("note", "text", true, false)
        ]
    );
    let indexes = s.indexes("odd name").await.unwrap();
    let shape: Vec<_> = indexes
        .iter()
        .map(|i| (i.name.as_str(), i.columns.join(","), i.unique))
        .collect();
    assert_eq!(
        shape,
        [
            ("odd name_pkey", "id".into(), true),
            ("odd_email", "email".into(), true),
            ("odd_note_email", "note,email".into(), false)
        ]
    );
    let rows: Vec<Vec<Value>> = (0..5000)
        .map(|i| {
            vec![
                Value::Int(i),
                format!("u{i}@x").into(),
                if i % 2 == 0 { Value::Null } else { "n".into() },
            ]
        })
        .collect();
    assert_eq!(
        s.bulk_insert("odd name", &["id", "email", "note"], &rows)
            .await
            .unwrap(),
        5000
    );
    let dup = vec![
        vec![Value::Int(9000), "new@x".into(), Value::Null],
        vec![Value::Int(1), "dup@x".into(), Value::Null],
    ];
    assert!(s
        .bulk_insert("odd name", &["id", "email", "note"], &dup)
        .await
        .is_err());
    let count = s
        .query("SELECT count(*) AS n FROM \"odd name\"", &[])
        .await
        .unwrap();
    assert_eq!(
        count[0].get::<i64>("n").unwrap(),
        5000,
        "the failed COPY left nothing"
    );
}

#[tokio::test]
async fn tls_require_and_verify_full_against_a_server_with_a_generated_certificate() {
    dbinit_tests::link();
    let certs = test_certificates();
    let cluster = Cluster::new(ClusterOptions {
        tls: Some((certs.server_cert_pem.clone(), certs.server_key_pem.clone())),
        ..ClusterOptions::default()
    })
    .expect("initdb");
    cluster.start().expect("start a TLS server");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).unwrap();
    let wrong_ca = dir.path().join("wrong.pem");
    std::fs::write(&wrong_ca, test_certificates().ca_pem).unwrap();
    let base = cluster.url("postgres");
    let localhost = base.replace("127.0.0.1", "localhost");
    let ssl_in_use = "SELECT ssl::text AS on FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    for url in [
        format!("{base}?sslmode=require"),
        format!("{base}?sslmode=verify-ca&sslrootcert={}", ca.display()),
        format!(
            "{localhost}?sslmode=verify-full&sslrootcert={}",
            ca.display()
        ),
        format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display()),
    ] {
        let url = DatabaseUrl::parse(&url).unwrap();
        let mut s = connector()
            .connect(&url, &options())
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let rows = s.query(ssl_in_use, &[]).await.unwrap();
        assert_eq!(
            rows[0].get::<Option<String>>("on").unwrap(),
            Some("true".to_owned()),
            "{url}"
        );
    }
    let url = DatabaseUrl::parse(&format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        wrong_ca.display()
    ))
    .unwrap();
    let err = connector()
        .connect(&url, &options())
        .await
        .err()
        .expect("an untrusted certificate");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(!err
        .to_string()
        .contains(dbinit_tests::pg::SUPERUSER_PASSWORD));
}

#[tokio::test]
async fn a_socket_directory_works_as_host() {
    let socket =
        std::env::var(dbinit_tests::PG_SOCKET_VAR).expect("cargo xtask test sets the socket dir");
    let port = pg_url("postgres")
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next().map(str::to_owned))
        .unwrap();
    for raw in [
        format!("host={socket} port={port} user=postgres dbname=postgres"),
        format!("postgresql:///postgres?host={socket}&port={port}&user=postgres"),
    ] {
        let url = DatabaseUrl::parse(&raw).unwrap();
        let mut s = connector()
            .connect(&url, &options())
            .await
            .unwrap_or_else(|e| panic!("{raw}: {e}"));
        let rows = s
            .query("SELECT inet_server_addr() IS NULL AS unix", &[])
            .await
            .unwrap();
        assert_eq!(
            rows[0].values(),
            [Value::Bool(true)],
            "{raw} did not use the socket"
        );
    }
}

#[tokio::test]
async fn a_malformed_history_is_an_error_not_a_panic() {
    let (_, mut s) = fresh().await;
    s.execute_batch(
        "CREATE TABLE refinery_schema_history (version TEXT PRIMARY KEY, name TEXT, applied_on TEXT, checksum TEXT); \
         INSERT INTO refinery_schema_history VALUES ('one', 'x', 'then', 'abc');",
    )
    .await
    .unwrap();
    let err = engine::history(&mut *s).await.unwrap_err();
    assert!(matches!(err, CoreError::CorruptHistory { .. }), "{err}");
    // A new session: the server's cached plan of the history query has
    // the old column types.
    let (_, mut s) = fresh().await;
    s.execute_batch(
        "CREATE TABLE refinery_schema_history (version INT4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255)); \
         INSERT INTO refinery_schema_history VALUES (1, 'x', 'then', 'not-a-number');",
    )
    .await
    .unwrap();
    let err = engine::history(&mut *s).await.unwrap_err();
    assert!(
        err.to_string().contains("checksum is not a number"),
        "{err}"
    );
}
