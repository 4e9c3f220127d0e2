//! Data files and the `seed` command, through the real binary, on SQLite
//! files and the test PostgreSQL cluster: loaded by environment, once per
//! content, reloaded when edited; bad files refused with file, line and
//! column and nothing written; dry runs; `--only`; progress lines.

use std::path::Path;
use std::process::Output;

use dbinit_tests::cli::{self, exit_code, rows_csv, stderr, stdout_json};
use dbinit_tests::dump::dump_blocking;
use dbinit_tests::{pg_url, unique_database, Backend};

/// The tables the data files load: typed columns, an index, a CHECK.
const TABLES: &str = "\
CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL, amount REAL CHECK (amount >= 0), active BOOLEAN, at TIMESTAMP);
CREATE INDEX items_label ON items (label);
CREATE UNIQUE INDEX items_active_label ON items (label) WHERE active;
CREATE TABLE plans (code TEXT PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(10, 2));
CREATE TABLE notes (slug TEXT NOT NULL, lang TEXT NOT NULL, body TEXT, UNIQUE (slug, lang));
";

/// [`TABLES`] as MySQL writes them: indexed text has a length, and there
/// is no partial index.
const MYSQL_TABLES: &str = "\
CREATE TABLE items (id INTEGER PRIMARY KEY, label VARCHAR(255) NOT NULL, amount REAL CHECK (amount >= 0), active BOOLEAN, at DATETIME);
CREATE INDEX items_label ON items (label);
CREATE TABLE plans (code VARCHAR(64) PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(10, 2));
CREATE TABLE notes (slug VARCHAR(64) NOT NULL, lang VARCHAR(16) NOT NULL, body TEXT, UNIQUE (slug, lang));
";

fn migrations(backend: Backend) -> tempfile::TempDir {
    let tables = match backend {
        Backend::Mysql => MYSQL_TABLES,
        Backend::Sqlite | Backend::Postgres => TABLES,
    };
    cli::migration_dir(backend.name(), &[("V6__seeded_tables", tables)])
}

const MANIFEST_COMMON: &str =
    "[[file]]\npath = \"plans.csv\"\ntable = \"plans\"\nkey = [\"code\"]\n";
const MANIFEST_DEVELOPMENT: &str = "\
[[file]]\npath = \"items.csv\"\ntable = \"items\"\nkey = [\"id\"]\n\
[[file]]\npath = \"notes.json\"\ntable = \"notes\"\nkey = [\"slug\", \"lang\"]\n";
const MANIFEST_PRODUCTION: &str =
    "[[file]]\npath = \"notes.jsonl\"\ntable = \"notes\"\nkey = [\"slug\", \"lang\"]\n";
const PLANS: &str = "code,name,price\nfree,Free,0\npro,\"Pro, yearly\",99.50\n";
const NOTES_JSON: &str = r#"[
  {"slug": "welcome", "lang": "en", "body": "Hello"},
  {"slug": "welcome", "lang": "fr", "body": null}
]"#;
const NOTES_JSONL: &str = "{\"slug\": \"prod-only\", \"lang\": \"en\", \"body\": \"live\"}\n";
/// Rows of the development items file.
const ITEMS: usize = 5000;

fn seeds(items: &str) -> tempfile::TempDir {
    cli::seeds_dir(&[
        ("common/seeds.toml", MANIFEST_COMMON),
        ("common/plans.csv", PLANS),
        ("development/seeds.toml", MANIFEST_DEVELOPMENT),
        ("development/items.csv", items),
        ("development/notes.json", NOTES_JSON),
        ("production/seeds.toml", MANIFEST_PRODUCTION),
        ("production/notes.jsonl", NOTES_JSONL),
        ("README.md", "Seeds of the test application."),
    ])
}

fn dbinit(args: &[&str], url: &str, migrations: &Path, seeds: &Path) -> Output {
    cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args(args)
        .args(["--json", "--database-url", url, "--migrations"])
        .arg(migrations)
        .arg("--seeds")
        .arg(seeds)
        .env("DBINIT_LOG", "warn")
        .output()
        .expect("run dbinit-demo")
}

fn ok(out: &Output) -> serde_json::Value {
    assert_eq!(exit_code(out), 0, "{}", stderr(out));
    stdout_json(out)
}

/// One value of a one-row query, as text.
fn scalar(url: &str, sql: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let value: rusqlite::types::Value = conn.query_row(sql, [], |r| r.get(0)).unwrap();
            match value {
                rusqlite::types::Value::Null => String::new(),
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Real(f) => f.to_string(),
                rusqlite::types::Value::Text(t) => t,
                rusqlite::types::Value::Blob(b) => format!("{b:?}"),
            }
        }
        None if url.starts_with("mysql://") => dbinit_tests::dump::scalar_blocking(url, sql),
        None => dbinit_tests::pg::psql(url, sql).trim().to_owned(),
    }
}

/// The report's entry for the seeder named `name`.
fn seeder<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["seeders"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no seeder {name} in {report:#}"))
}

fn names(report: &serde_json::Value) -> Vec<String> {
    report["seeders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn loads_by_environment_once_per_content(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let set = migrations(backend);
    let files = seeds(&rows_csv(ITEMS, "first"));

    // Production gets common/ and production/, never development data.
    let prod = backend.fresh_url(dir.path(), "seed");
    let report = ok(&dbinit(
        &["init", "--env", "production"],
        &prod,
        set.path(),
        files.path(),
    ));
    assert_eq!(
        report["seed_files"]["directories"],
        serde_json::json!(["common", "production"])
    );
    assert!(
        !names(&report).iter().any(|n| n.starts_with("development/")),
        "{report:#}"
    );
    assert_eq!(scalar(&prod, "SELECT count(*) FROM items"), "0");
    assert_eq!(
        scalar(&prod, "SELECT count(*) FROM notes WHERE slug = 'prod-only'"),
        "1"
    );
    assert_eq!(scalar(&prod, "SELECT count(*) FROM plans"), "2");

    // Development: everything, typed by the table's columns.
    let dev = backend.fresh_url(dir.path(), "seed");
    let report = ok(&dbinit(&["init"], &dev, set.path(), files.path()));
    assert_eq!(
        report["seed_files"]["directories"],
        serde_json::json!(["common", "development"])
    );
    let items = seeder(&report, "development/items.csv");
    assert_eq!(items["status"], "ran");
    assert_eq!(items["created"], ITEMS);
    assert_eq!(items["version"], 1);
    assert_eq!(items["checksum"].as_str().map(str::len), Some(32));
    assert_eq!(
        scalar(&dev, "SELECT count(*) FROM items"),
        ITEMS.to_string()
    );
    assert_eq!(
        scalar(&dev, "SELECT label FROM items WHERE id = 7"),
        "first 7, quoted"
    );
    assert_eq!(
        scalar(&dev, "SELECT name FROM plans WHERE code = 'pro'"),
        "Pro, yearly"
    );
    assert_eq!(
        scalar(&dev, "SELECT count(*) FROM notes WHERE body IS NULL"),
        "1"
    );
    match backend {
        Backend::Sqlite => assert_eq!(
            scalar(
                &dev,
                "SELECT typeof(id) || typeof(amount) || typeof(active) || active FROM items WHERE id = 8"
            ),
            "integerrealinteger1"
        ),
        Backend::Postgres => assert_eq!(
            scalar(&dev, "SELECT active::text || ' ' || at::text FROM items WHERE id = 8"),
            "true 2024-05-09 12:08:00"
        ),
        Backend::Mysql => assert_eq!(
            scalar(&dev, "SELECT CONCAT(active, ' ', at) FROM items WHERE id = 8"),
            "1 2024-05-09 12:08:00"
        ),
    }

    // A second run reads the history, not the tables.
    let again = ok(&dbinit(&["init"], &dev, set.path(), files.path()));
    for file in [
        "common/plans.csv",
        "development/items.csv",
        "development/notes.json",
    ] {
        assert_eq!(seeder(&again, file)["status"], "recorded", "{again:#}");
    }
    let before = dump_blocking(&dev);

    // An edited file loads again: 10 labels changed, 5 rows added.
    let mut edited = rows_csv(ITEMS + 5, "first");
    for i in 1..=10 {
        edited = edited.replace(
            &format!("\n{i},\"first {i}, quoted\""),
            &format!("\n{i},\"second {i}\""),
        );
    }
    std::fs::write(files.path().join("development/items.csv"), edited).unwrap();
    let report = ok(&dbinit(&["init"], &dev, set.path(), files.path()));
    let items = seeder(&report, "development/items.csv");
    assert_eq!(
        (
            &items["status"],
            &items["created"],
            &items["updated"],
            &items["skipped"]
        ),
        (
            &serde_json::json!("ran"),
            &serde_json::json!(5),
            &serde_json::json!(10),
            &serde_json::json!(ITEMS - 10)
        ),
        "{report:#}"
    );
    assert_eq!(seeder(&report, "common/plans.csv")["status"], "recorded");
    assert_eq!(
        scalar(&dev, "SELECT label FROM items WHERE id = 3"),
        "second 3"
    );
    assert_eq!(
        scalar(&dev, "SELECT count(*) FROM items"),
        (ITEMS + 5).to_string()
    );
    assert_ne!(dump_blocking(&dev), before);
}

#[test]
fn sqlite_data_files_load_by_environment_once_per_content() {
    loads_by_environment_once_per_content(Backend::Sqlite);
}

#[test]
fn postgres_data_files_load_by_environment_once_per_content() {
    loads_by_environment_once_per_content(Backend::Postgres);
}

#[test]
fn mysql_data_files_load_by_environment_once_per_content() {
    loads_by_environment_once_per_content(Backend::Mysql);
}

/// Each bad file is refused naming its file, line and column, and the
/// database is exactly as before: earlier data files stay, nothing of the
/// bad one is written, the history does not move.
fn bad_files_change_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let set = migrations(backend);
    let good = rows_csv(20, "good");
    let files = seeds(&good);
    let url = backend.fresh_url(dir.path(), "seed");
    ok(&dbinit(&["init"], &url, set.path(), files.path()));
    let before = dump_blocking(&url);
    let items = files.path().join("development/items.csv");
    let file = items.display().to_string();
    let header = "id,label,amount,active,at\n";
    for (contents, says) in [
        (
            "id,labell\n1,a\n".to_owned(),
            format!("{file} line 1, column `labell`: table `items` has no such column"),
        ),
        (
            format!("{header}1,a,1,true,2024-01-01 00:00:00\n2,b,abc,true,2024-01-01 00:00:00\n"),
            format!("{file} line 3, column `amount`: `abc` is not a number"),
        ),
        (
            format!("{header}1,a,1,true,2024-01-01 00:00:00\n2,b,1,maybe,2024-01-01 00:00:00\n"),
            format!("{file} line 3, column `active`: `maybe` is not "),
        ),
        (
            format!("{header}1,a,1,true,2024-02-30 00:00:00\n"),
            format!("{file} line 2, column `at`: `2024-02-30 00:00:00` is not a timestamp"),
        ),
        (
            format!("{header}5,a,1,true,\n6,b,1,true,\n5,c,1,true,\n"),
            format!("{file} line 4: key (id = 5) is given twice: line 2 has it too"),
        ),
        (
            "label,amount\na,1\n".to_owned(),
            format!("{file} line 1, column `id`: is a key column, but the file does not give it"),
        ),
        (
            format!("{header}1,a\n"),
            format!("{file} line 2: 2 fields, but the header has 5"),
        ),
        (
            format!("{header},a,1,true,\n"),
            format!("{file} line 2, column `id`: is empty, but it is part of the key"),
        ),
        (
            format!("{header}1,\"multi\nline\",1,true,\n2,b,1,true,\n2,c,1,true,\n"),
            format!("{file} line 5: key (id = 2) is given twice: line 4 has it too"),
        ),
        (
            "id,id\n1,1\n".to_owned(),
            format!("{file} line 1, column `id`: is named twice"),
        ),
        (String::new(), format!("{file} line 1: the file is empty")),
        // RFC 4180 quoting, which the csv crate alone lets through.
        (
            format!("{header}1,\"open,1,true,\n2,b,1,true,\n"),
            format!("{file} line 2: the quoted field that starts here never closes"),
        ),
        (
            format!("{header}1,a,1,true,\n2,\"b\"c,1,true,\n"),
            format!("{file} line 3: text after the closing quote of a field"),
        ),
        (
            format!("{header}1,a\"b,1,true,\n"),
            format!("{file} line 2: a quote inside an unquoted field"),
        ),
        // Lines ended by CRLF or CR count as lines.
        (
            "id,label,amount,active,at\r\n1,a,1,true,\r\n2,b,x,true,\r\n".to_owned(),
            format!("{file} line 3, column `amount`: `x` is not a number"),
        ),
        (
            "id,label,amount,active,at\r1,a,1,true,\r2,b,x,true,\r".to_owned(),
            format!("{file} line 3, column `amount`: `x` is not a number"),
        ),
    ] {
        std::fs::write(&items, &contents).unwrap();
        let out = dbinit(&["seed"], &url, set.path(), files.path());
        assert_eq!(exit_code(&out), 50, "{contents:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&says),
            "{contents:?}\nwants: {says}\ngot: {}",
            stderr(&out)
        );
        assert_eq!(
            dump_blocking(&url),
            before,
            "{contents:?} changed the database"
        );
    }
    std::fs::write(&items, &good).unwrap();
    let notes = files.path().join("development/notes.json");
    let shown = notes.display().to_string();
    for (contents, says) in [
        (
            "[{\"slug\": \"a\", \"lang\": \"en\"},\n {\"slug\": \"b\"}]",
            format!("{shown} line 2: its keys differ from the first object's (missing: `lang`; extra: none)"),
        ),
        (
            "[{\"slug\": \"a\", \"lang\": \"en\", \"body\": [1, 2]},\n {\"slug\": \"b\", \"lang\": \"en\", \"body\": 3}\n",
            format!("{shown} line 3: expected `,` or `]` after an element"),
        ),
        ("{\"slug\": \"a\"}", format!("{shown} line 1: a .json data file is an array")),
        // A member given twice is refused, in the first object or a later one.
        (
            "[{\"slug\": \"a\", \"lang\": \"en\", \"body\": \"first\", \"body\": \"second\"}]",
            format!("{shown} line 1, column `body`: is given twice in this object"),
        ),
        (
            "[{\"slug\": \"a\", \"lang\": \"en\", \"body\": \"x\"},\n {\"slug\": \"b\", \"lang\": \"en\", \"body\": \"first\", \"body\": \"second\"}]",
            format!("{shown} line 2, column `body`: is given twice in this object"),
        ),
        // A header that may not be a list of names is named by its field.
        (
            "[{\"DBINIT_ADMIN_PASSWORD=Zq-hunter2\": 1}]",
            format!("{shown} line 1: field 1 of the header (a name that is not shown) is no column"),
        ),
        (
            "[{\"slug\\u0000x\": 1}]",
            format!("{shown} line 1: field 1 of the header holds control characters"),
        ),
        (
            "[{\"slug\": \"a\", \"lang\": \"en\", \"body\": null},\n]",
            format!("{shown} line 2: a comma before `]`"),
        ),
    ] {
        std::fs::write(&notes, contents).unwrap();
        let out = dbinit(&["seed"], &url, set.path(), files.path());
        assert_eq!(exit_code(&out), 50, "{contents:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&says), "{contents:?}\nwants: {says}\ngot: {}", stderr(&out));
        assert!(!stderr(&out).contains("Zq-hunter2"), "{}", stderr(&out));
        assert_eq!(dump_blocking(&url), before, "{contents:?} changed the database");
    }
    std::fs::write(&notes, NOTES_JSON).unwrap();

    // The database's own refusal (a CHECK) names the line of the row, on
    // a table the load fills from empty.
    let fresh = backend.fresh_url(dir.path(), "seed");
    ok(&dbinit(
        &["init", "--no-seed"],
        &fresh,
        set.path(),
        files.path(),
    ));
    let empty = dump_blocking(&fresh);
    std::fs::write(
        &items,
        format!("{header}1,a,1,true,\n2,b,2,true,\n3,c,-1,true,\n"),
    )
    .unwrap();
    let out = dbinit(&["seed"], &fresh, set.path(), files.path());
    assert_eq!(exit_code(&out), 50, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{file} line 4: ")),
        "{}",
        stderr(&out)
    );
    // The files before it committed; the refused one wrote nothing.
    let after = dump_blocking(&fresh);
    assert_ne!(after, empty);
    assert_eq!(scalar(&fresh, "SELECT count(*) FROM items"), "0");

    // A key without a unique index on every row (items_active_label is
    // partial) is refused up front.
    std::fs::write(
        files.path().join("development/seeds.toml"),
        "[[file]]\npath = \"items.csv\"\ntable = \"items\"\nkey = [\"label\"]\n\
         [[file]]\npath = \"notes.json\"\ntable = \"notes\"\nkey = [\"slug\", \"lang\"]\n",
    )
    .unwrap();
    std::fs::write(&items, &good).unwrap();
    let out = dbinit(&["seed"], &url, set.path(), files.path());
    assert_eq!(exit_code(&out), 50, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no primary key or unique index on exactly (label)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dump_blocking(&url), before);
}

#[test]
fn sqlite_bad_data_files_are_refused_and_change_nothing() {
    bad_files_change_nothing(Backend::Sqlite);
}

#[test]
fn postgres_bad_data_files_are_refused_and_change_nothing() {
    bad_files_change_nothing(Backend::Postgres);
}

#[test]
fn mysql_bad_data_files_are_refused_and_change_nothing() {
    bad_files_change_nothing(Backend::Mysql);
}

fn seed_command(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let set = migrations(backend);
    let files = seeds(&rows_csv(100, "first"));
    let url = backend.fresh_url(dir.path(), "seed");
    ok(&dbinit(
        &["init", "--no-seed"],
        &url,
        set.path(),
        files.path(),
    ));
    let empty = dump_blocking(&url);

    // A dry run says what it would write, and writes nothing.
    let report = ok(&dbinit(
        &["seed", "--dry-run"],
        &url,
        set.path(),
        files.path(),
    ));
    assert_eq!(report["dry_run"], true);
    let items = seeder(&report, "development/items.csv");
    assert_eq!(
        (&items["status"], &items["created"]),
        (&serde_json::json!("dry_run"), &serde_json::json!(100))
    );
    assert_eq!(seeder(&report, "admin_user")["status"], "dry_run");
    assert_eq!(dump_blocking(&url), empty);

    // --only runs the named seeders, and nothing else.
    let report = ok(&dbinit(
        &["seed", "--only", "common/plans.csv"],
        &url,
        set.path(),
        files.path(),
    ));
    assert_eq!(names(&report), ["common/plans.csv"]);
    assert_eq!(scalar(&url, "SELECT count(*) FROM plans"), "2");
    assert_eq!(scalar(&url, "SELECT count(*) FROM items"), "0");

    // Then everything; plans.csv is recorded already.
    let report = ok(&dbinit(&["seed"], &url, set.path(), files.path()));
    assert_eq!(seeder(&report, "common/plans.csv")["status"], "recorded");
    assert_eq!(seeder(&report, "development/items.csv")["created"], 100);

    let out = dbinit(&["seed", "--only", "nope"], &url, set.path(), files.path());
    assert_eq!(exit_code(&out), 13, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no seeder `nope` runs in development (these do: system_tenant"),
        "{}",
        stderr(&out)
    );

    // Seeding needs the schema: pending migrations stop it.
    let partial = backend.fresh_url(dir.path(), "seed");
    let older = cli::migration_dir(backend.name(), &[]);
    let out = cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args([
            "init",
            "--no-seed",
            "--database-url",
            &partial,
            "--migrations",
        ])
        .arg(older.path())
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let before = dump_blocking(&partial);
    let out = dbinit(&["seed"], &partial, set.path(), files.path());
    assert_eq!(exit_code(&out), 13, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 migrations are pending (V6__seeded_tables first)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dump_blocking(&partial), before);
}

#[test]
fn sqlite_seed_command_dry_run_and_only() {
    seed_command(Backend::Sqlite);
}

#[test]
fn postgres_seed_command_dry_run_and_only() {
    seed_command(Backend::Postgres);
}

#[test]
fn mysql_seed_command_dry_run_and_only() {
    seed_command(Backend::Mysql);
}

#[test]
fn sqlite_progress_is_logged_off_a_terminal_and_silent_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let set = migrations(Backend::Sqlite);
    let files = seeds(&rows_csv(20_000, "first"));
    let run = |url: &str, json: bool| {
        let mut cmd = cli::command(env!("CARGO_BIN_EXE_dbinit-demo"));
        cmd.args(["init", "--database-url", url, "--migrations"])
            .arg(set.path())
            .arg("--seeds")
            .arg(files.path())
            .env("DBINIT_PROGRESS_INTERVAL", "0s");
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let out = run(&Backend::Sqlite.fresh_url(dir.path(), "seed"), false);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("loading: ")
            && err.contains("file=\"development/items.csv\"")
            && err.contains(" loaded "),
        "{err}"
    );
    let out = run(&Backend::Sqlite.fresh_url(dir.path(), "seed"), true);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("loading"), "{}", stderr(&out));
}

/// PostgreSQL types without a binary encoding here (an enum, numeric) go
/// through text `COPY`; a file that gives identity values moves the
/// sequence past them.
#[test]
fn postgres_enum_numeric_and_identity_columns() {
    let set = cli::migration_dir(
        "postgres",
        &[(
            "V6__tickets",
            "CREATE TYPE mood AS ENUM ('happy', 'sad');\n\
             CREATE TABLE tickets (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             mood mood NOT NULL, price NUMERIC(8, 2), tags JSONB, seen DATE, ref UUID);\n",
        )],
    );
    let manifest = "[[file]]\npath = \"tickets.csv\"\ntable = \"tickets\"\nkey = [\"id\"]\n";
    let files = cli::seeds_dir(&[
        ("common/seeds.toml", manifest),
        (
            "common/tickets.csv",
            "id,mood,price,tags,seen,ref\n\
             1,happy,10.50,\"{\"\"a\"\": 1}\",2024-05-01,0190c5a4-1b2c-7d3e-8f40-123456789abc\n\
             7,sad,,,,\n",
        ),
    ]);
    let url = pg_url(&unique_database("tickets"));
    ok(&dbinit(
        &["init", "--no-seed"],
        &url,
        set.path(),
        files.path(),
    ));
    let report = ok(&dbinit(
        &["seed", "--only", "common/tickets.csv"],
        &url,
        set.path(),
        files.path(),
    ));
    assert_eq!(seeder(&report, "common/tickets.csv")["created"], 2);
    assert_eq!(
        scalar(&url, "SELECT mood || ' ' || price || ' ' || (tags->>'a') || ' ' || seen || ' ' || ref FROM tickets WHERE id = 1"),
        "happy 10.50 1 2024-05-01 0190c5a4-1b2c-7d3e-8f40-123456789abc"
    );
    assert_eq!(
        scalar(
            &url,
            "INSERT INTO tickets (mood) VALUES ('sad') RETURNING id"
        ),
        "8"
    );
    // Loaded again over existing rows (the staging path), same result.
    std::fs::write(
        files.path().join("common/tickets.csv"),
        "id,mood,price\n1,sad,11\n9,happy,1\n",
    )
    .unwrap();
    let report = ok(&dbinit(
        &["seed", "--only", "common/tickets.csv"],
        &url,
        set.path(),
        files.path(),
    ));
    let tickets = seeder(&report, "common/tickets.csv");
    assert_eq!(
        (&tickets["created"], &tickets["updated"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
    assert_eq!(
        scalar(
            &url,
            "SELECT mood || ' ' || price FROM tickets WHERE id = 1"
        ),
        "sad 11.00"
    );
    assert_eq!(
        scalar(
            &url,
            "INSERT INTO tickets (mood) VALUES ('sad') RETURNING id"
        ),
        "10"
    );
    // The server's own refusal of a value names the line.
    std::fs::write(
        files.path().join("common/tickets.csv"),
        "id,mood\n20,happy\n21,angry\n",
    )
    .unwrap();
    let before = dump_blocking(&url);
    let out = dbinit(
        &["seed", "--only", "common/tickets.csv"],
        &url,
        set.path(),
        files.path(),
    );
    assert_eq!(exit_code(&out), 50, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid input value for enum mood"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dump_blocking(&url), before);
}

/// A file may give a `GENERATED ALWAYS` identity column: inserted as given
/// (the sequence moved past it), never updated, also into a table that
/// already has rows (the system tenant).
#[test]
fn postgres_identity_columns_load_into_non_empty_tables() {
    let set = cli::migration_dir("postgres", &[]);
    let files = cli::seeds_dir(&[
        (
            "common/seeds.toml",
            "[[file]]\npath = \"tenants.csv\"\ntable = \"tenants\"\nkey = [\"slug\"]\n",
        ),
        ("common/tenants.csv", "id,slug,name\n100,acme,Acme\n"),
    ]);
    let url = pg_url(&unique_database("identity"));
    let report = ok(&dbinit(&["init"], &url, set.path(), files.path()));
    assert_eq!(
        seeder(&report, "common/tenants.csv")["created"],
        1,
        "{report:#}"
    );
    assert_eq!(
        scalar(&url, "SELECT id FROM tenants WHERE slug = 'acme'"),
        "100"
    );
    std::fs::write(
        files.path().join("common/tenants.csv"),
        "id,slug,name\n100,acme,Acme Corporation\n200,globex,Globex\n",
    )
    .unwrap();
    let report = ok(&dbinit(&["init"], &url, set.path(), files.path()));
    let tenants = seeder(&report, "common/tenants.csv");
    assert_eq!(
        (&tenants["created"], &tenants["updated"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
    assert_eq!(
        scalar(&url, "SELECT name FROM tenants WHERE id = 100"),
        "Acme Corporation"
    );
    assert_eq!(
        scalar(
            &url,
            "INSERT INTO tenants (slug, name) VALUES ('next', 'Next') RETURNING id"
        ),
        "201"
    );
}

/// SIGINT in the middle of a SQLite load: the load stops at the next row,
/// rolls back, and the process exits 130 with nothing of the file written.
#[test]
fn sqlite_interrupted_load_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let set = migrations(Backend::Sqlite);
    let files = seeds(&rows_csv(1_000_000, "big"));
    let url = Backend::Sqlite.fresh_url(dir.path(), "seed");
    ok(&dbinit(
        &["init", "--no-seed"],
        &url,
        set.path(),
        files.path(),
    ));
    let wal = format!("{}-wal", url.trim_start_matches("sqlite://"));
    let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let mut cmd = cli::command(env!("CARGO_BIN_EXE_dbinit-demo"));
    cmd.args([
        "seed",
        "--only",
        "development/items.csv",
        "--database-url",
        &url,
        "--migrations",
    ])
    .arg(set.path())
    .arg("--seeds")
    .arg(files.path());
    // Mid-load: the transaction's pages have started to reach the WAL.
    let (out, _) = cli::signal_when(
        &mut cmd,
        || std::fs::metadata(&wal).is_ok_and(|m| m.len() > before + (4 << 20)),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(exit_code(&out), 130, "{}", stderr(&out));
    assert_eq!(scalar(&url, "SELECT count(*) FROM items"), "0");
    // Not even the seed history's table: it was created in the same transaction.
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM sqlite_master WHERE name = 'dbinit_seed_history'"
        ),
        "0"
    );
}

/// Numbers reach exact columns as written, from CSV and JSON alike, and a
/// number a column would store as another is refused (file, line, column)
/// with nothing loaded.
fn numbers_arrive_exactly(backend: Backend) {
    let (float, numeric) = match backend {
        Backend::Sqlite => ("REAL", "TEXT"),
        Backend::Postgres => ("DOUBLE PRECISION", "NUMERIC"),
        Backend::Mysql => ("DOUBLE", "DECIMAL(65, 30)"),
    };
    let set = cli::migration_dir(
        backend.name(),
        &[(
            "V6__amounts",
            &format!(
                "CREATE TABLE amounts (id BIGINT PRIMARY KEY, exact {numeric}, money NUMERIC(10, 2), \
                 ratio {float}, label TEXT);\n\
                 CREATE TABLE rounded (id BIGINT PRIMARY KEY, amount NUMERIC);\n"
            ),
        )],
    );
    let manifest = "[[file]]\npath = \"amounts.jsonl\"\ntable = \"amounts\"\nkey = [\"id\"]\n\
                    [[file]]\npath = \"amounts.csv\"\ntable = \"amounts\"\nkey = [\"id\"]\n";
    let jsonl = "{\"id\": 1, \"exact\": 12345678901234567.89, \"money\": 12.50, \"ratio\": 0.1, \"label\": 123456789012345678901234567890}\n\
                 {\"id\": 2, \"exact\": 123456789012345678901234567890, \"money\": -0.01, \"ratio\": 1e3, \"label\": -0.000000000000000000001}\n";
    let csv = "id,exact,money,ratio\n3,98765432109876543210.123456789,99999999.99,2.5\n";
    let files = cli::seeds_dir(&[
        ("common/seeds.toml", manifest),
        ("common/amounts.jsonl", jsonl),
        ("common/amounts.csv", csv),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let url = backend.fresh_url(dir.path(), "numbers");
    ok(&dbinit(&["init"], &url, set.path(), files.path()));
    // The column's text, without the zeros MySQL pads its scale with.
    let exact_text = match backend {
        Backend::Sqlite => "exact",
        Backend::Postgres => "exact::text",
        Backend::Mysql => "TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM exact))",
    };
    for (id, exact, label) in [
        (1, "12345678901234567.89", "123456789012345678901234567890"),
        (
            2,
            "123456789012345678901234567890",
            "-0.000000000000000000001",
        ),
        (3, "98765432109876543210.123456789", ""),
    ] {
        assert_eq!(
            scalar(
                &url,
                &format!("SELECT {exact_text} FROM amounts WHERE id = {id}")
            ),
            exact
        );
        assert_eq!(
            scalar(
                &url,
                &format!("SELECT coalesce(label, '') FROM amounts WHERE id = {id}")
            ),
            label
        );
    }
    assert_eq!(
        scalar(&url, "SELECT ratio FROM amounts WHERE id = 2"),
        "1000"
    );

    let shown = |name: &str| files.path().join("common").join(name).display().to_string();
    let before = dump_blocking(&url);
    let jsonl_path = files.path().join("common/amounts.jsonl");
    for (line, says) in [
        (
            "{\"id\": 4, \"exact\": 1, \"money\": 1.005, \"ratio\": 1, \"label\": null}",
            "column `money`: `1.005` has 3 decimal places, but the column is numeric(10,2)",
        ),
        (
            "{\"id\": 4, \"exact\": 1, \"money\": 123456789, \"ratio\": 1, \"label\": null}",
            "column `money`: `123456789` does not fit numeric(10,2)",
        ),
        (
            "{\"id\": 4, \"exact\": 1, \"money\": 1, \"ratio\": 12345678901234567.89, \"label\": null}",
            "column `ratio`: `12345678901234567.89` has more digits than a 64-bit float holds",
        ),
        (
            "{\"id\": 123456789012345678901234567890, \"exact\": 1, \"money\": 1, \"ratio\": 1, \"label\": null}",
            "column `id`: `123456789012345678901234567890` is beyond the range of a 64-bit integer",
        ),
    ] {
        std::fs::write(&jsonl_path, format!("{line}\n")).unwrap();
        let out = dbinit(&["seed"], &url, set.path(), files.path());
        assert_eq!(exit_code(&out), 50, "{line}: {}", stderr(&out));
        let wants = format!("{} line 1, {says}", shown("amounts.jsonl"));
        assert!(stderr(&out).contains(&wants), "wants: {wants}\ngot: {}", stderr(&out));
        assert_eq!(dump_blocking(&url), before, "{line} changed the database");
    }
    std::fs::write(&jsonl_path, jsonl).unwrap();

    // SQLite keeps no NaN: it would be NULL.
    if backend == Backend::Sqlite {
        std::fs::write(
            jsonl_path.with_file_name("amounts.csv"),
            "id,exact,money,ratio\n9,1,1,NaN\n",
        )
        .unwrap();
        let out = dbinit(&["seed"], &url, set.path(), files.path());
        assert_eq!(exit_code(&out), 50, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("column `ratio`: SQLite stores NaN as NULL"),
            "{}",
            stderr(&out)
        );
        std::fs::write(jsonl_path.with_file_name("amounts.csv"), csv).unwrap();
    }

    // SQLite's NUMERIC keeps 15 significant digits; PostgreSQL's keeps all.
    std::fs::write(
        files.path().join("common/seeds.toml"),
        format!(
            "{manifest}[[file]]\npath = \"rounded.csv\"\ntable = \"rounded\"\nkey = [\"id\"]\n"
        ),
    )
    .unwrap();
    // Too many digits, or out of a float's range either way.
    for amount in ["12345678901234567.89", "1e400", "1e-400"] {
        std::fs::write(
            files.path().join("common/rounded.csv"),
            format!("id,amount\n1,{amount}\n"),
        )
        .unwrap();
        let out = dbinit(&["seed"], &url, set.path(), files.path());
        match backend {
            Backend::Sqlite => {
                assert_eq!(exit_code(&out), 50, "{}", stderr(&out));
                assert!(
                    stderr(&out).contains(&format!(
                        "{} line 2: column `amount`: `{amount}` would not be stored as written",
                        shown("rounded.csv")
                    )),
                    "{}",
                    stderr(&out)
                );
                assert_eq!(scalar(&url, "SELECT count(*) FROM rounded"), "0");
            }
            // NUMERIC is DECIMAL(10, 0): none of them fits.
            Backend::Mysql => {
                assert_eq!(exit_code(&out), 50, "{}", stderr(&out));
                assert_eq!(scalar(&url, "SELECT count(*) FROM rounded"), "0");
            }
            Backend::Postgres => {
                ok(&out);
                assert_eq!(
                    scalar(
                        &url,
                        "SELECT amount = $$AMOUNT$$::numeric FROM rounded"
                            .replace("AMOUNT", amount)
                            .as_str()
                    ),
                    "t"
                );
            }
        }
    }
}

#[test]
fn sqlite_numbers_arrive_exactly_or_are_refused() {
    numbers_arrive_exactly(Backend::Sqlite);
}

#[test]
fn postgres_numbers_arrive_exactly_or_are_refused() {
    numbers_arrive_exactly(Backend::Postgres);
}

#[test]
fn mysql_numbers_arrive_exactly_or_are_refused() {
    numbers_arrive_exactly(Backend::Mysql);
}

/// A `real` column holds fewer digits than a JSON or CSV number may give;
/// JSON columns keep numbers as written (not through a binary float).
#[test]
fn postgres_real_and_json_columns_keep_numbers_exact() {
    let set = cli::migration_dir(
        "postgres",
        &[(
            "V6__measures",
            // `price numeric` sends the rows through text COPY, `doc` through binary.
            "CREATE TABLE measures (id INT PRIMARY KEY, reading REAL, price NUMERIC);\n\
             CREATE TABLE docs (id INT PRIMARY KEY, doc JSONB, raw JSON);\n",
        )],
    );
    let manifest = "[[file]]\npath = \"docs.jsonl\"\ntable = \"docs\"\nkey = [\"id\"]\n\
                    [[file]]\npath = \"measures.csv\"\ntable = \"measures\"\nkey = [\"id\"]\n";
    let docs = "{\"id\": 1, \"doc\": {\"amount\": 12345678901234567.89}, \"raw\": [123456789012345678901234567890]}\n";
    let files = cli::seeds_dir(&[
        ("common/seeds.toml", manifest),
        ("common/docs.jsonl", docs),
        (
            "common/measures.csv",
            "id,reading,price\n1,0.1,1\n2,2.5,2\n",
        ),
    ]);
    let url = pg_url(&unique_database("measures"));
    ok(&dbinit(&["init"], &url, set.path(), files.path()));
    assert_eq!(
        scalar(
            &url,
            "SELECT (doc->'amount')::text || ' ' || raw::text FROM docs"
        ),
        "12345678901234567.89 [123456789012345678901234567890]"
    );
    assert_eq!(
        scalar(&url, "SELECT reading FROM measures WHERE id = 1"),
        "0.1"
    );
    let before = dump_blocking(&url);
    std::fs::write(
        files.path().join("common/measures.csv"),
        "id,reading,price\n1,0.1,1\n2,3.141592653589793,2\n",
    )
    .unwrap();
    let out = dbinit(&["seed"], &url, set.path(), files.path());
    assert_eq!(exit_code(&out), 50, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 3: column `reading` (float4): `3.141592653589793` has more digits than a 4-byte float (real) holds"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dump_blocking(&url), before);
}

/// A data file cut short (or otherwise changed) while it loads fails the
/// load: nothing of it is committed, and nothing records it as loaded.
fn a_file_changed_while_it_loads_commits_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let set = migrations(backend);
    let whole = rows_csv(200_000, "whole");
    let files = seeds(&whole);
    let items = files.path().join("development/items.csv");
    let url = backend.fresh_url(dir.path(), "cut");
    ok(&dbinit(
        &["init", "--no-seed"],
        &url,
        set.path(),
        files.path(),
    ));
    let mut child = cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args(["init", "--database-url", &url, "--migrations"])
        .arg(set.path())
        .arg("--seeds")
        .arg(files.path())
        .env("DBINIT_PROGRESS_INTERVAL", "0s")
        .env("DBINIT_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // At the first progress line the reader is a few batches in (it reads
    // at most four ahead of the database): cut the file in place there.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains("loading: ") && line.contains("development/items.csv") {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&items)
                .unwrap();
            file.set_len(whole.len() as u64 / 2).unwrap();
            break;
        }
    }
    for line in lines {
        seen += &line.unwrap();
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(50), "{seen}");
    assert!(
        seen.contains(&format!("{} changed while it loaded", items.display()))
            && seen.contains("nothing of it was committed"),
        "{seen}"
    );
    assert_eq!(scalar(&url, "SELECT count(*) FROM items"), "0");
    // Restored, it loads whole: the failed run recorded nothing.
    std::fs::write(&items, &whole).unwrap();
    let report = ok(&dbinit(&["init"], &url, set.path(), files.path()));
    assert_eq!(seeder(&report, "development/items.csv")["created"], 200_000);
    assert_eq!(scalar(&url, "SELECT count(*) FROM items"), "200000");
}

#[test]
fn sqlite_a_file_changed_while_it_loads_commits_nothing() {
    a_file_changed_while_it_loads_commits_nothing(Backend::Sqlite);
}

#[test]
fn postgres_a_file_changed_while_it_loads_commits_nothing() {
    a_file_changed_while_it_loads_commits_nothing(Backend::Postgres);
}

#[test]
fn mysql_a_file_changed_while_it_loads_commits_nothing() {
    a_file_changed_while_it_loads_commits_nothing(Backend::Mysql);
}

/// Data files and manifests are regular files inside the seeds directory:
/// a link out of it (to the process's environment, say) is refused before
/// anything is read, and nothing of the file is echoed.
#[test]
fn links_out_of_the_seeds_directory_are_refused_unread() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let set = migrations(Backend::Sqlite);
    let url = Backend::Sqlite.fresh_url(dir.path(), "links");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("items.csv"), rows_csv(3, "outside")).unwrap();
    for (link, target) in [
        (
            "development/items.csv",
            Path::new("/proc/self/environ").to_path_buf(),
        ),
        ("development/items.csv", outside.path().join("items.csv")),
        (
            "development/seeds.toml",
            Path::new("/proc/self/environ").to_path_buf(),
        ),
    ] {
        let files = seeds(&rows_csv(3, "inside"));
        std::fs::remove_file(files.path().join(link)).unwrap();
        symlink(&target, files.path().join(link)).unwrap();
        let out = dbinit(&["init"], &url, set.path(), files.path());
        assert_eq!(
            exit_code(&out),
            13,
            "{link} -> {target:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.contains(&format!("{link} is a link to")), "{err}");
        assert!(!err.contains(cli::ADMIN_PASSWORD), "{err}");
        assert!(!err.contains("DBINIT_ADMIN_PASSWORD="), "{err}");
    }
    // A link that stays inside is followed.
    let files = seeds(&rows_csv(3, "inside"));
    std::fs::rename(
        files.path().join("development/items.csv"),
        files.path().join("development/real.csv"),
    )
    .unwrap();
    symlink("real.csv", files.path().join("development/items.csv")).unwrap();
    std::fs::write(
        files.path().join("development/seeds.toml"),
        MANIFEST_DEVELOPMENT.replace("items.csv", "real.csv"),
    )
    .unwrap();
    let out = dbinit(&["init"], &url, set.path(), files.path());
    // items.csv is an unlisted data file now: refused as such, not as a link.
    assert_eq!(exit_code(&out), 13, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("items.csv is not listed"),
        "{}",
        stderr(&out)
    );
}

/// `seed` needs the schema: with migrations pending it says to run `init`,
/// in one readable sentence, and writes nothing.
#[test]
fn seed_with_migrations_pending_says_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let base = cli::migration_dir("sqlite", &[]);
    let url = Backend::Sqlite.fresh_url(dir.path(), "pending");
    let files = seeds(&rows_csv(3, "first"));
    ok(&dbinit(
        &["init", "--no-seed"],
        &url,
        base.path(),
        files.path(),
    ));
    let set = migrations(Backend::Sqlite);
    let before = dump_blocking(&url);
    let out = dbinit(&["seed"], &url, set.path(), files.path());
    assert_eq!(exit_code(&out), 13, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "1 migrations are pending (V6__seeded_tables first): seeders need the schema; run \
             `init`, which migrates and then seeds"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(dump_blocking(&url), before);
}
