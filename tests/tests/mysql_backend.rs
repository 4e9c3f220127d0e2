//! The MySQL backend against the real MariaDB server `cargo xtask test`
//! starts (`DBINIT_TEST_MYSQL_URL`): creating the database, waiting,
//! refusing a wrong password, values both ways, upserts, the init lock
//! and introspection. Each test uses a database of its own.

use std::time::{Duration, Instant};

use dbinit_core::dialect::{Dialect, OnConflict};
use dbinit_core::load::{LoadSpec, RowBatches};
use dbinit_core::{
    ConnectOptions, Connector, DatabaseCreated, DatabaseUrl, ErrorKind, Script, Value,
};
use dbinit_mysql::MysqlConnector;
use dbinit_tests::{mysql_url, unique_database};

fn url(raw: &str) -> DatabaseUrl {
    dbinit_mysql::link();
    DatabaseUrl::parse(raw).expect("a valid URL")
}

fn options() -> ConnectOptions {
    let mut options = ConnectOptions::default();
    options.connect_timeout = Duration::from_secs(10);
    options
}

#[tokio::test]
async fn open_creates_a_utf8mb4_database_once() {
    let name = unique_database("my_create");
    let target = url(&mysql_url(&name));
    let (mut session, created) = MysqlConnector.open(&target, &options()).await.unwrap();
    assert_eq!(created, DatabaseCreated::Created);
    let rows = session
        .query(
            "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME = ?",
            &[Value::from(name.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].values()[0], Value::from("utf8mb4"));
    let (_, again) = MysqlConnector.open(&target, &options()).await.unwrap();
    assert_eq!(again, DatabaseCreated::Existed);
    assert_eq!(
        MysqlConnector
            .ensure_database(&target, &options())
            .await
            .unwrap(),
        DatabaseCreated::Existed
    );
}

#[tokio::test]
async fn charset_and_collation_come_from_the_url() {
    let name = unique_database("my_latin");
    let target = url(&format!(
        "{}?charset=latin1&collation=latin1_swedish_ci",
        mysql_url(&name)
    ));
    let (mut session, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    let rows = session
        .query(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
             FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            &[Value::from(name.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(
        rows[0].values(),
        &[Value::from("latin1"), Value::from("latin1_swedish_ci")]
    );
}

#[tokio::test]
async fn a_wrong_password_fails_at_once_and_is_never_shown() {
    let good = mysql_url("mysql");
    let bad = good.replacen(dbinit_tests::mariadb::PASSWORD, "Wrong-Secret-42", 1);
    assert_ne!(good, bad);
    let started = Instant::now();
    let err = MysqlConnector
        .connect(&url(&bad), &options())
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "it retried");
    let shown = format!("{err} {err:?} {}", err.hint().unwrap_or_default());
    assert!(!shown.contains("Wrong-Secret-42"), "{shown}");
}

#[tokio::test]
async fn a_server_that_is_not_there_is_waited_for_then_unreachable() {
    let port = dbinit_tests::pg::free_port();
    let raw = format!("mysql://u:p@127.0.0.1:{port}/x");
    let mut options = options();
    options.connect_timeout = Duration::from_millis(800);
    let started = Instant::now();
    let err = MysqlConnector
        .connect(&url(&raw), &options)
        .await
        .err()
        .expect("nothing listens");
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "it did not wait"
    );
}

#[tokio::test]
async fn values_go_in_and_come_back_typed() {
    let target = url(&mysql_url(&unique_database("my_values")));
    let (mut s, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    s.execute_batch(
        "CREATE TABLE v (id BIGINT PRIMARY KEY, f DOUBLE, t TEXT, b BLOB, n INT NULL, \
         d DECIMAL(10,2), ts DATETIME(3), u BIGINT UNSIGNED)",
    )
    .await
    .unwrap();
    let inserted = s
        .execute(
            "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                Value::Int(i64::MIN),
                Value::Float(1.5),
                Value::from("héllo ✓"),
                Value::Bytes(vec![0, 255, 10]),
                Value::Null,
                Value::from("12.30"),
                Value::from("2026-12-02 10:11:12.345"),
                Value::from("18446744073709551615"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    // Binary protocol (parameters) and text protocol (none) agree.
    for params in [vec![Value::Int(i64::MIN)], vec![]] {
        let sql = if params.is_empty() {
            "SELECT * FROM v"
        } else {
            "SELECT * FROM v WHERE id = ?"
        };
        let rows = s.query(sql, &params).await.unwrap();
        assert_eq!(
            rows[0].values(),
            &[
                Value::Int(i64::MIN),
                Value::Float(1.5),
                Value::from("héllo ✓"),
                Value::Bytes(vec![0, 255, 10]),
                Value::Null,
                Value::from("12.30"),
                Value::from("2026-12-02 10:11:12.345"),
                Value::from("18446744073709551615"),
            ],
            "{sql}"
        );
    }
}

#[tokio::test]
async fn the_dialect_upserts_and_counts_only_what_changed() {
    let target = url(&mysql_url(&unique_database("my_upsert")));
    let (mut s, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    s.execute_batch(
        "CREATE TABLE `we``ird` (k VARCHAR(20) PRIMARY KEY, v INT, runs INT DEFAULT 1)",
    )
    .await
    .unwrap();
    assert_eq!(s.dialect().placeholder(2), "?");
    let d = dbinit_mysql::MysqlDialect;
    let table = d.quote_ident("we`ird");
    assert_eq!(table, "`we``ird`");
    let upsert = format!(
        "INSERT INTO {table} (k, v) VALUES ({}, {}) {}",
        d.placeholder(1),
        d.placeholder(2),
        d.on_conflict(&OnConflict {
            table: "we`ird",
            key: &["k"],
            update: &["v"],
            only_if_changed: true,
            increment: None,
        })
    );
    let row = |v: i64| [Value::from("a"), Value::Int(v)];
    assert_eq!(s.execute(&upsert, &row(1)).await.unwrap(), 1, "inserted");
    assert_eq!(s.execute(&upsert, &row(1)).await.unwrap(), 0, "unchanged");
    assert!(s.execute(&upsert, &row(2)).await.unwrap() > 0, "changed");
    let keep = format!(
        "INSERT INTO {table} (k, v) VALUES (?, ?) {}",
        d.on_conflict(&OnConflict {
            table: "we`ird",
            key: &["k"],
            update: &[],
            only_if_changed: false,
            increment: Some("runs"),
        })
    );
    s.execute(&keep, &row(9)).await.unwrap();
    let rows = s.query("SELECT v, runs FROM `we``ird`", &[]).await.unwrap();
    assert_eq!(rows[0].values(), &[Value::Int(2), Value::Int(2)]);
}

#[tokio::test]
async fn the_init_lock_is_per_database_names_its_holder_and_is_released() {
    let name = unique_database("my_lock");
    let target = url(&mysql_url(&name));
    let (mut a, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    let mut b = MysqlConnector.connect(&target, &options()).await.unwrap();
    let held = a.acquire_init_lock(Duration::from_secs(1)).await.unwrap();
    assert!(held.name.contains(&name), "{}", held.name);
    // Another database on the same server has its own lock.
    let other = url(&mysql_url(&unique_database("my_lock_other")));
    let (mut c, _) = MysqlConnector.open(&other, &options()).await.unwrap();
    let elsewhere = c
        .acquire_init_lock(Duration::from_millis(200))
        .await
        .unwrap();
    c.release_init_lock(elsewhere).await.unwrap();

    let started = Instant::now();
    let err = b
        .acquire_init_lock(Duration::from_millis(300))
        .await
        .expect_err("held by a");
    assert_eq!(err.kind(), ErrorKind::LockTimeout, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let text = err.to_string();
    assert!(
        text.contains("connection") && text.contains("dbinit@"),
        "{text}"
    );
    a.release_init_lock(held).await.unwrap();
    let now = b.acquire_init_lock(Duration::from_secs(1)).await.unwrap();
    b.release_init_lock(now).await.unwrap();
}

#[tokio::test]
async fn a_long_database_name_gets_a_hashed_lock_name() {
    let name = format!("{}_{}", unique_database("my_long"), "x".repeat(40));
    let name: String = name.chars().take(64).collect();
    let target = url(&mysql_url(&name));
    let (mut s, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    let lock = s.acquire_init_lock(Duration::from_secs(1)).await.unwrap();
    assert!(lock.name.len() <= 64, "{}", lock.name);
    s.release_init_lock(lock).await.unwrap();
}

#[tokio::test]
async fn introspection_lists_tables_columns_and_indexes() {
    let target = url(&mysql_url(&unique_database("my_intro")));
    let (mut s, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    s.execute_batch(
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(200) NOT NULL, bio TEXT); \
         CREATE UNIQUE INDEX users_email ON users (email, id); \
         CREATE VIEW user_emails AS SELECT email FROM users;",
    )
    .await
    .unwrap();
    assert_eq!(s.tables().await.unwrap(), vec!["users".to_owned()]);
    assert!(s.table_exists("users").await.unwrap());
    assert!(!s.table_exists("nope").await.unwrap());
    let columns = s.columns("users").await.unwrap();
    let described: Vec<(&str, bool, bool)> = columns
        .iter()
        .map(|c| (c.name.as_str(), c.nullable, c.primary_key))
        .collect();
    assert_eq!(
        described,
        [
            ("id", false, true),
            ("email", false, false),
            ("bio", true, false)
        ]
    );
    let indexes = s.indexes("users").await.unwrap();
    let email = indexes.iter().find(|i| i.name == "users_email").unwrap();
    assert_eq!(email.columns, ["email", "id"]);
    assert!(email.unique);
}

#[test]
fn url_forms_are_checked_before_connecting() {
    dbinit_mysql::link();
    for (raw, reason) in [
        ("mysql://u:p@h", "names its database"),
        ("mysql://u:p@h/db?pool_max=3", "not a parameter"),
        ("mysql://u@h/db?password=x", "secret parameter"),
        ("mysql://u@h/db?ssl-mode=maybe", "ssl-mode is"),
        ("mysql://u@h/db?charset=utf8;drop", "charset is"),
        ("mariadb://h/db", "names its user"),
        ("mysql://u@h/a%00b", "no NUL character"),
        ("mysql://u@h/a%20", "does not end with a space"),
        (
            "mysql://u@h/db?ssl-mode=REQUIRED&sslmode=DISABLED",
            "given twice",
        ),
        (
            "mysql://u@h/db?dbinit_lock=lease&dbinit_lock=advisory",
            "given twice",
        ),
    ] {
        let err = DatabaseUrl::parse(raw)
            .err()
            .unwrap_or_else(|| panic!("{raw} accepted"));
        assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{raw}");
        assert!(err.to_string().contains(reason), "{raw}: {err}");
    }
    let url = DatabaseUrl::parse("mariadb://app:S3cret-pw@db.internal:3307/app?ssl-mode=REQUIRED")
        .unwrap();
    assert_eq!(url.scheme(), "mariadb");
    assert!(!url.redacted().contains("S3cret-pw"), "{}", url.redacted());
    assert!(!format!("{url:?}").contains("S3cret-pw"));
}

#[tokio::test]
async fn a_migration_runs_statement_by_statement_and_a_failure_names_its_line() {
    let target = url(&mysql_url(&unique_database("my_script")));
    let (mut s, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    let script = "CREATE TABLE a (x INT);\n\
                  DELIMITER $$\n\
                  CREATE TRIGGER a_bump BEFORE INSERT ON a FOR EACH ROW\n\
                  BEGIN\n  SET NEW.x = NEW.x + 1;\nEND$$\n\
                  DELIMITER ;\n\
                  /*!40101 SET @dbinit_test = 1 */;\n\
                  INSERT INTO a VALUES (1); -- the trigger adds one";
    s.execute_migration(Script {
        file: "V1__trigger.sql",
        version: 1,
        down: false,
        sql: script,
        in_transaction: false,
    })
    .await
    .unwrap();
    let rows = s.query("SELECT x, @dbinit_test FROM a", &[]).await.unwrap();
    assert_eq!(rows[0].values(), &[Value::Int(2), Value::Int(1)]);

    let err = s
        .execute_migration(Script {
            file: "V2__bad.sql",
            version: 2,
            down: false,
            sql: "INSERT INTO a VALUES (5);\n\nSELEC 1;",
            in_transaction: false,
        })
        .await
        .expect_err("a syntax error");
    assert_eq!(err.kind(), ErrorKind::MigrationFailed);
    let text = err.to_string();
    assert!(
        text.contains("V2__bad.sql") && text.contains("at line 3"),
        "{text}"
    );
    // Marked no-transaction: the statement before the failure committed.
    let rows = s.query("SELECT count(*) FROM a", &[]).await.unwrap();
    assert_eq!(rows[0].values(), &[Value::Int(2)]);
}

#[tokio::test]
async fn a_missing_ca_file_fails_at_once_as_a_tls_error() {
    let raw = format!("{}?ssl-ca=/nonexistent/ca.pem", mysql_url("mysql"));
    let started = Instant::now();
    let err = MysqlConnector
        .connect(&url(&raw), &options())
        .await
        .err()
        .expect("no CA file");
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "it waited");
}

#[tokio::test]
async fn loaded_text_comes_back_as_written_in_either_sql_mode() {
    let target = url(&mysql_url(&unique_database("my_literals")));
    let (mut s, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    s.execute_batch("CREATE TABLE t (id INT PRIMARY KEY, body TEXT, raw BLOB)")
        .await
        .unwrap();
    let hostile = [
        "it's",
        "back\\slash\\",
        "\\'; DROP TABLE t; --",
        "nul \0 byte",
        "東京 🚀 ''",
        "\\",
    ];
    for (mode, offset) in [("''", 0), ("'NO_BACKSLASH_ESCAPES'", 100)] {
        s.execute_batch(&format!("SET SESSION sql_mode = {mode}"))
            .await
            .unwrap();
        let rows: Vec<Vec<Value>> = hostile
            .iter()
            .enumerate()
            .map(|(i, text)| {
                vec![
                    Value::Int(offset + i as i64),
                    Value::from(*text),
                    Value::Bytes(text.as_bytes().to_vec()),
                ]
            })
            .collect();
        assert_eq!(
            s.bulk_insert("t", &["id", "body", "raw"], &rows)
                .await
                .unwrap(),
            6
        );
        for (i, text) in hostile.iter().enumerate() {
            let back = s
                .query(
                    "SELECT body, raw FROM t WHERE id = ?",
                    &[Value::Int(offset + i as i64)],
                )
                .await
                .unwrap();
            assert_eq!(
                back[0].values(),
                &[Value::from(*text), Value::Bytes(text.as_bytes().to_vec())],
                "{mode}: {text:?}"
            );
        }
    }
}

/// The test server speaks TLS with a certificate from a throwaway CA.
#[tokio::test]
async fn tls_is_negotiated_and_a_certificate_from_another_ca_is_refused() {
    let ca = std::env::var(dbinit_tests::MYSQL_CA_VAR).expect("cargo xtask test sets it");
    let cipher = async |query: &str| {
        let target = url(&format!("{}?{query}", mysql_url("mysql")));
        let (mut s, _) = MysqlConnector.open(&target, &options()).await?;
        let rows = s
            .query("SHOW SESSION STATUS LIKE 'Ssl_cipher'", &[])
            .await?;
        Ok::<_, dbinit_core::CoreError>(rows[0].values()[1].clone())
    };
    // REQUIRED: encrypted, the certificate not checked.
    let got = cipher("ssl-mode=REQUIRED").await.unwrap();
    assert!(matches!(&got, Value::Text(c) if !c.is_empty()), "{got:?}");
    // DISABLED: plain text.
    assert_eq!(cipher("ssl-mode=DISABLED").await.unwrap(), Value::from(""));
    // The server's CA verifies it (127.0.0.1 is in its certificate).
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let got = cipher(&format!("ssl-mode={mode}&ssl-ca={ca}"))
            .await
            .unwrap();
        assert!(
            matches!(&got, Value::Text(c) if !c.is_empty()),
            "{mode}: {got:?}"
        );
    }
    // Another CA's certificate is refused as a TLS error, at once.
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), dbinit_tests::pg::test_certificates().ca_pem).unwrap();
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let query = format!("ssl-mode={mode}&ssl-ca={}", other.path().display());
        let started = Instant::now();
        let err = cipher(&query).await.expect_err("another CA");
        assert_eq!(err.kind(), ErrorKind::Tls, "{mode}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{mode}: it retried"
        );
    }
}

/// Rows from memory, in batches.
struct Batches(std::collections::VecDeque<Vec<Vec<Value>>>);

#[dbinit_core::async_trait]
impl RowBatches for Batches {
    async fn next_batch(&mut self) -> Option<Result<Vec<Vec<Value>>, dbinit_core::CoreError>> {
        self.0.pop_front().map(Ok)
    }
}

fn spec(table: &str, into_empty: bool) -> LoadSpec {
    LoadSpec {
        table: table.to_owned(),
        columns: ["id", "body", "raw", "ratio"].map(str::to_owned).to_vec(),
        key: vec!["id".to_owned()],
        into_empty,
    }
}

/// Loads `batches` into two fresh tables, one through `LOAD DATA` (empty)
/// and one through `INSERT`; both must say and store the same.
async fn both_ways(s: &mut Box<dyn dbinit_core::Session>, batches: &[Vec<Vec<Value>>]) -> u64 {
    s.execute_batch(
        "DROP TABLE IF EXISTS streamed, inserted; \
         CREATE TABLE streamed (id INT PRIMARY KEY, body TEXT, raw BLOB, ratio DOUBLE); \
         CREATE TABLE inserted LIKE streamed",
    )
    .await
    .unwrap();
    let mut outcomes = Vec::new();
    for (table, into_empty) in [("streamed", true), ("inserted", false)] {
        s.begin().await.unwrap();
        let mut rows = Batches(batches.iter().cloned().collect());
        let spec = spec(table, into_empty);
        outcomes.push(s.load_rows(&spec, &mut rows).await.unwrap());
        s.commit().await.unwrap();
    }
    assert_eq!(outcomes[0], outcomes[1]);
    let dump = "SELECT id, HEX(body), HEX(raw), ratio FROM {} ORDER BY id";
    let streamed = s.query(&dump.replace("{}", "streamed"), &[]).await.unwrap();
    let inserted = s.query(&dump.replace("{}", "inserted"), &[]).await.unwrap();
    assert_eq!(streamed, inserted);
    outcomes[0].created
}

/// Into an empty table batches go through `LOAD DATA LOCAL INFILE`; what
/// comes back is what the `INSERT` path stores, byte for byte, in either
/// sql_mode. A refused row fails the load, named, and the transaction
/// leaves nothing.
#[tokio::test]
async fn batches_through_load_data_match_the_insert_path() {
    let target = url(&mysql_url(&unique_database("my_infile")));
    let (mut s, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    let hostile = [
        "tab\there",
        "new\nline",
        "cr\r\nlf",
        "back\\slash\\",
        "\\N",
        "nul \0 byte",
        "東京 🚀",
        "",
        "\\t\\n",
        "'quoted'",
    ];
    let rows: Vec<Vec<Value>> = hostile
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut raw = text.as_bytes().to_vec();
            raw.extend_from_slice(&[0xff, 0x00, b'\t', b'\n', b'\\', 0x80]);
            vec![
                Value::Int(i as i64),
                if i == 7 {
                    Value::Null
                } else {
                    Value::from(*text)
                },
                Value::Bytes(raw),
                Value::Float(i as f64 / 3.0),
            ]
        })
        .collect();
    let split = vec![rows[..4].to_vec(), rows[4..].to_vec()];
    for mode in ["''", "'NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES'"] {
        s.execute_batch(&format!("SET SESSION sql_mode = {mode}"))
            .await
            .unwrap();
        assert_eq!(both_ways(&mut s, &split).await, 10, "{mode}");
    }
    // One batch of long rows, longer than the server's max_allowed_packet
    // (16 MiB) in all.
    let long: Vec<Vec<Value>> = (0..2100)
        .map(|i| {
            vec![
                Value::Int(i),
                Value::Text("x".repeat(8500)),
                Value::Null,
                Value::Null,
            ]
        })
        .collect();
    assert_eq!(both_ways(&mut s, &[long]).await, 2100);

    // A value the column refuses, in the second batch, a key twice (an
    // empty table takes no upsert) and a float MySQL cannot store: named,
    // rolled back.
    s.execute_batch("SET SESSION sql_mode = DEFAULT; TRUNCATE streamed")
        .await
        .unwrap();
    let mut text = rows.clone();
    text[6][3] = Value::from("not a number");
    let mut twice = rows.clone();
    twice[5][0] = Value::Int(2);
    let mut nan = rows.clone();
    nan[3][3] = Value::Float(f64::NAN);
    for (bad, row) in [(text, 6), (twice, 5), (nan, 3)] {
        s.begin().await.unwrap();
        let mut batches = Batches(vec![bad[..4].to_vec(), bad[4..].to_vec()].into());
        let failure = s
            .load_rows(&spec("streamed", true), &mut batches)
            .await
            .expect_err("refused");
        s.rollback().await.unwrap();
        assert_eq!(failure.row, Some(row), "{}", failure.error);
    }
    let left = s.query("SELECT count(*) FROM streamed", &[]).await.unwrap();
    assert_eq!(left[0].values(), &[Value::Int(0)]);
}

/// Data files give timestamps in UTC: a `TIMESTAMP` column stores that
/// instant whatever the session's time zone, which the load leaves as it
/// was. An unknown `ENUM` label (SQLSTATE 01000 in strict mode) is named
/// by its row on both paths.
#[tokio::test]
async fn timestamps_load_as_utc_and_a_bad_enum_label_is_named() {
    let target = url(&mysql_url(&unique_database("my_tz")));
    let (mut s, _) = MysqlConnector.open(&target, &options()).await.unwrap();
    s.execute_batch(
        "CREATE TABLE t (id INT PRIMARY KEY, at TIMESTAMP NULL, e ENUM('a','b')); \
         SET time_zone = '+05:00'",
    )
    .await
    .unwrap();
    let spec = |into_empty| LoadSpec {
        table: "t".to_owned(),
        columns: ["id", "at", "e"].map(str::to_owned).to_vec(),
        key: vec!["id".to_owned()],
        into_empty,
    };
    let row = |id: i64, e: &str| {
        vec![
            Value::Int(id),
            Value::from("2024-05-01 12:30:00"),
            Value::from(e),
        ]
    };
    for into_empty in [true, false] {
        s.begin().await.unwrap();
        let mut rows = Batches(vec![vec![row(1, "a"), row(2, "b")]].into());
        s.load_rows(&spec(into_empty), &mut rows).await.unwrap();
        s.commit().await.unwrap();
        let back = s
            .query(
                "SELECT @@SESSION.time_zone, CONVERT_TZ(at, @@SESSION.time_zone, '+00:00') \
                 FROM t ORDER BY id",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            back[0].values(),
            &[Value::from("+05:00"), Value::from("2024-05-01 12:30:00")],
            "into_empty {into_empty}"
        );

        let bad: Vec<Vec<Value>> = (10..16)
            .map(|id| row(id, if id == 13 { "c" } else { "a" }))
            .collect();
        s.execute_batch("TRUNCATE t").await.unwrap();
        s.begin().await.unwrap();
        let mut rows = Batches(vec![bad].into());
        let failure = s
            .load_rows(&spec(into_empty), &mut rows)
            .await
            .expect_err("an unknown label");
        s.rollback().await.unwrap();
        assert_eq!(failure.row, Some(3), "{}", failure.error);
        s.execute_batch("TRUNCATE t").await.unwrap();
    }
}
