//! Migrations written for PostgreSQL 16, 17 and 18 (issue 9). `cargo xtask
//! test` runs this file against the installed server and against the newest
//! one the package registries carry: on 18 they apply and their results are
//! read back; on an older server the first one fails cleanly, named with
//! its line, and nothing of it stays.

use dbinit_tests::cli::{exit_code, stderr, stdout_json};
use dbinit_tests::pg::psql;
use dbinit_tests::{pg_url, unique_database};

/// 18: `uuidv7()`, virtual generated columns, `RETURNING old/new`;
/// 16: `IS JSON`, `JSON_OBJECT`, `any_value`.
const V10: &str = "-- PostgreSQL 16+ and 18 features
CREATE TABLE events (
    id uuid PRIMARY KEY DEFAULT uuidv7(),
    payload jsonb NOT NULL CHECK (payload::text IS JSON OBJECT),
    kind text GENERATED ALWAYS AS (payload->>'kind') VIRTUAL
);
INSERT INTO events (payload)
SELECT JSON_OBJECT('kind': 'boot', 'n': g)::jsonb FROM generate_series(1, 3) AS g;
CREATE TABLE kinds AS
SELECT kind, any_value(id) AS sample, count(*) AS n FROM events GROUP BY kind;
UPDATE kinds SET n = n RETURNING old.n AS before, new.n AS after;
";

/// 17: `MERGE ... RETURNING` with `merge_action()`, `JSON_TABLE`.
const V11: &str = "MERGE INTO kinds AS k
USING (SELECT 'boot' AS kind) AS s ON k.kind = s.kind
WHEN MATCHED THEN UPDATE SET n = k.n + 1
WHEN NOT MATCHED THEN INSERT (kind, n) VALUES (s.kind, 1)
RETURNING merge_action(), k.kind;
CREATE VIEW event_numbers AS
SELECT jt.n FROM events, JSON_TABLE(payload, '$' COLUMNS (n int PATH '$.n')) AS jt;
";

#[test]
fn migrations_in_newer_postgresql_syntax_apply_on_the_newer_server() {
    let migrations = dbinit_tests::cli::migration_dir(
        "postgres",
        &[("V10__pg18_features", V10), ("V11__pg17_merge", V11)],
    );
    let database = unique_database("newer_pg");
    let url = pg_url(&database);
    let out = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args(["init", "--json", "--database-url", &url, "--migrations"])
        .arg(migrations.path())
        .output()
        .unwrap();
    let version: u32 = psql(&pg_url("postgres"), "SHOW server_version_num")
        .parse()
        .unwrap();
    if version >= 180_000 {
        assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
        let applied = stdout_json(&out)["migrations"]["applied"].to_string();
        assert!(applied.contains("pg17_merge"), "{applied}");
        assert_eq!(psql(&url, "SELECT kind || ':' || n FROM kinds"), "boot:4");
        assert_eq!(psql(&url, "SELECT sum(n) FROM event_numbers"), "6");
        assert_eq!(
            psql(
                &url,
                "SELECT count(DISTINCT id) FROM events WHERE kind = 'boot'"
            ),
            "3"
        );
    } else {
        // An older server: the first unknown feature stops the migration,
        // named with its line, and it leaves nothing behind.
        let err = stderr(&out);
        assert_eq!(exit_code(&out), 41, "{err}");
        assert!(err.contains("V10__pg18_features.sql"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        assert_eq!(psql(&url, "SELECT to_regclass('events') IS NULL"), "t");
    }
}
