//! Each backend's dialect writes the SQL dbinit runs as its database takes
//! it: an upsert that touches only rows whose values differ, a plain insert
//! into an empty table.

use dbinit_postgres::PostgresDialect;
use dbinit_runner::dbinit_core::dialect::Dialect;
use dbinit_runner::dbinit_core::load::{upsert_sql, LoadSpec};
use dbinit_sqlite::SqliteDialect;

fn spec(into_empty: bool, columns: &[&str]) -> LoadSpec {
    LoadSpec {
        table: "t".into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        key: vec!["k".into()],
        into_empty,
    }
}

#[test]
fn upserts_by_key_skip_identical_rows_and_empty_tables_take_plain_inserts() {
    let dialects: [(&dyn Dialect, &str); 2] = [
        (&SqliteDialect, "IS NOT"),
        (&PostgresDialect, "IS DISTINCT FROM"),
    ];
    for (dialect, differs) in dialects {
        assert_eq!(
            upsert_sql(dialect, &spec(false, &["k", "a"])),
            format!(
                "INSERT INTO \"t\" (\"k\", \"a\") VALUES ($1, $2) ON CONFLICT (\"k\") DO UPDATE \
                 SET \"a\" = excluded.\"a\" WHERE \"t\".\"a\" {differs} excluded.\"a\""
            )
        );
        assert_eq!(
            upsert_sql(dialect, &spec(false, &["k"])),
            "INSERT INTO \"t\" (\"k\") VALUES ($1) ON CONFLICT (\"k\") DO NOTHING"
        );
        assert_eq!(
            upsert_sql(dialect, &spec(true, &["k", "a"])),
            "INSERT INTO \"t\" (\"k\", \"a\") VALUES ($1, $2)"
        );
    }
}
