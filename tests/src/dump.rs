//! A normalized dump of a database: what must be identical after a crash and
//! a rerun as after one uninterrupted run.

use std::fmt::Write as _;

use dbinit_runner::dbinit_core::{ConnectOptions, DatabaseUrl};

/// Tables, columns, indexes, row counts, the seeded rows' keys and the
/// seed history (name, version, checksum) and the migration history
/// (version, name, checksum), as sorted text.
///
/// # Panics
///
/// When the database cannot be read: the test cannot go on.
pub async fn dump(url: &str) -> String {
    crate::link();
    let url = DatabaseUrl::parse(url).expect("valid url");
    let connector = url.connector().expect("backend").make();
    let mut s = connector
        .connect(&url, &ConnectOptions::default())
        .await
        .expect("connect for the dump");
    let mut out = String::new();
    for table in s.tables().await.expect("tables") {
        let _ = writeln!(out, "table {table}");
        for c in s.columns(&table).await.expect("columns") {
            let _ = writeln!(
                out,
                "  column {} {} null={} pk={}",
                c.name, c.data_type, c.nullable, c.primary_key
            );
        }
        for i in s.indexes(&table).await.expect("indexes") {
            let _ = writeln!(
                out,
                "  index {} ({}) unique={}",
                i.name,
                i.columns.join(", "),
                i.unique
            );
        }
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let rows = s
            .query(&format!("SELECT count(*) AS n FROM {quoted}"), &[])
            .await
            .expect("count");
        let _ = writeln!(out, "  rows {}", rows[0].get::<i64>("n").expect("count"));
    }
    for (sql, what) in [
        ("SELECT slug AS k FROM tenants ORDER BY slug", "tenant"),
        ("SELECT name AS k FROM roles ORDER BY name", "role"),
        ("SELECT username AS k FROM users ORDER BY username", "user"),
    ] {
        if let Ok(rows) = s.query(sql, &[]).await {
            for r in rows {
                let _ = writeln!(
                    out,
                    "{what} {}",
                    r.get::<Option<String>>("k")
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| "NULL".to_owned())
                );
            }
        }
    }
    let seeds = dbinit_runner::seed_history::SeedHistory::load(&mut *s)
        .await
        .expect("seed history");
    for r in seeds.records() {
        let _ = writeln!(
            out,
            "seed history {} {:?} {:?}",
            r.name, r.version, r.checksum
        );
    }
    for m in dbinit_runner::dbinit_core::engine::history(&mut *s)
        .await
        .expect("history")
    {
        let _ = writeln!(out, "history {} {} {}", m.version, m.name, m.checksum);
    }
    out
}

/// [`dump`] from synchronous code.
pub fn dump_blocking(url: &str) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(dump(url))
}
