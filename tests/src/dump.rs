//! A normalized dump of a database: what must be identical after a crash and
//! a rerun as after one uninterrupted run.

use std::fmt::Write as _;

use dbinit_runner::dbinit_core::{ConnectOptions, DatabaseUrl, Session, Value};

/// Tables, columns, indexes, row counts, the seeded rows' keys and the
/// seed history (name, version, checksum) and the migration history
/// (version, name, checksum), as sorted text.
///
/// # Panics
///
/// When the database cannot be read: the test cannot go on.
pub async fn dump(url: &str) -> String {
    let mut s = connect(url).await;
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
        let quoted = s.dialect().quote_ident(&table);
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

/// A session on `url`, which must exist.
async fn connect(url: &str) -> Box<dyn Session> {
    crate::link();
    let url = DatabaseUrl::parse(url).expect("valid url");
    let connector = url.connector().expect("backend").make();
    connector
        .connect(&url, &ConnectOptions::default())
        .await
        .expect("connect for the dump")
}

/// A session on `url`, made if it is missing.
async fn open(url: &str) -> Box<dyn Session> {
    crate::link();
    let url = DatabaseUrl::parse(url).expect("valid url");
    let connector = url.connector().expect("backend").make();
    let (session, _) = connector
        .open(&url, &ConnectOptions::default())
        .await
        .expect("open");
    session
}

fn blocking<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(work)
}

/// [`dump`] from synchronous code.
pub fn dump_blocking(url: &str) -> String {
    blocking(dump(url))
}

/// The first value of `sql`'s first row on `url`, as text (`""` for
/// NULL or no row), through its backend, whichever it is.
///
/// # Panics
///
/// When the query fails.
pub fn scalar_blocking(url: &str, sql: &str) -> String {
    blocking(async {
        let mut s = connect(url).await;
        let rows = s
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        match rows.first().and_then(|r| r.values().first()) {
            None | Some(Value::Null) => String::new(),
            Some(Value::Int(n)) => n.to_string(),
            Some(Value::Float(f)) => f.to_string(),
            Some(Value::Text(t)) => t.clone(),
            Some(other) => format!("{other:?}"),
        }
    })
}

/// Runs `sql` on `url` through its backend, whichever it is (making the
/// database if it is missing).
///
/// # Panics
///
/// When it fails.
pub fn execute_blocking(url: &str, sql: &str) {
    blocking(async {
        let mut s = open(url).await;
        s.execute_batch(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}
