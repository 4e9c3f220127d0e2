//! A deterministic, realistic migration set for benchmarks: one table per
//! migration with foreign keys to earlier tables, two indexes on most tables,
//! and an `ALTER TABLE ... ADD COLUMN` every tenth migration. In SQLite's
//! and PostgreSQL's SQL, or MySQL's (indexed text has a length, a
//! timestamp is a `DATETIME`, foreign keys are table constraints).

use std::fmt::Write as _;
use std::path::Path;

/// What [`generate`] wrote.
pub(crate) struct Generated {
    /// Every migration's SQL, in order, for the one-transaction baseline.
    pub(crate) all_sql: String,
    pub(crate) tables: usize,
    pub(crate) indexes: usize,
    pub(crate) alters: usize,
}

/// A tiny LCG: the set must be identical on every run and machine.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// The SQL of migration `i` (1-based) of a set of `count`.
fn migration_sql(
    i: usize,
    count: usize,
    mysql: bool,
    rng: &mut Lcg,
    stats: &mut Generated,
) -> String {
    let mut sql = String::new();
    let (key, time) = if mysql {
        ("VARCHAR(64)", "DATETIME(6)")
    } else {
        ("TEXT", "TEXT")
    };
    let mut columns = vec![
        "id INTEGER PRIMARY KEY".to_owned(),
        "tenant_id INTEGER NOT NULL".to_owned(),
        format!("code {key} NOT NULL"),
        "name TEXT NOT NULL CHECK (length(name) <= 200)".to_owned(),
        format!("status {key} NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived'))"),
        "amount REAL NOT NULL DEFAULT 0".to_owned(),
        "payload TEXT".to_owned(),
        format!("created_at {time} NOT NULL DEFAULT CURRENT_TIMESTAMP"),
        format!("updated_at {time}"),
    ];
    let mut foreign = |column: &str, table: usize, action: &str| {
        if mysql {
            columns.push(format!("{column} INTEGER"));
            columns.push(format!(
                "FOREIGN KEY ({column}) REFERENCES t{table:03} (id) ON DELETE {action}"
            ));
        } else {
            columns.push(format!(
                "{column} INTEGER REFERENCES t{table:03} (id) ON DELETE {action}"
            ));
        }
    };
    if i > 1 {
        foreign("parent_id", 1 + rng.below(i - 1), "CASCADE");
    }
    if i > 10 {
        foreign("owner_id", 1 + rng.below(i - 1), "SET NULL");
    }
    columns.push("UNIQUE (tenant_id, code)".to_owned());
    let _ = writeln!(
        sql,
        "CREATE TABLE t{i:03} (\n    {}\n);",
        columns.join(",\n    ")
    );
    stats.tables += 1;
    if i > 1 {
        let _ = writeln!(sql, "CREATE INDEX t{i:03}_parent ON t{i:03} (parent_id);");
        stats.indexes += 1;
    }
    // 136 of 200 tables also get a composite index: 199 + 136 = 335 indexes.
    if i <= count * 68 / 100 {
        let _ = writeln!(
            sql,
            "CREATE INDEX t{i:03}_status_created ON t{i:03} (status, created_at);"
        );
        stats.indexes += 1;
    }
    if i.is_multiple_of(10) {
        let _ = writeln!(sql, "ALTER TABLE t{:03} ADD COLUMN note_{i} TEXT;", i - 5);
        stats.alters += 1;
    }
    sql
}

/// Writes `V{i}__create_t{i}.sql` for `i` in `1..=count` into `dir`.
pub(crate) fn generate(dir: &Path, count: usize) -> std::io::Result<Generated> {
    generate_in(dir, count, false)
}

/// [`generate`], in MySQL's SQL when `mysql`.
pub(crate) fn generate_in(dir: &Path, count: usize, mysql: bool) -> std::io::Result<Generated> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Lcg(0x5eed);
    let mut stats = Generated {
        all_sql: String::new(),
        tables: 0,
        indexes: 0,
        alters: 0,
    };
    for i in 1..=count {
        let sql = migration_sql(i, count, mysql, &mut rng, &mut stats);
        std::fs::write(dir.join(format!("V{i}__create_t{i:03}.sql")), &sql)?;
        stats.all_sql.push_str(&sql);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_is_deterministic_and_has_the_advertised_shape() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = generate(a.path(), 200).unwrap();
        let second = generate(b.path(), 200).unwrap();
        assert_eq!(first.all_sql, second.all_sql);
        assert_eq!((first.tables, first.indexes, first.alters), (200, 335, 20));
        assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 200);
        assert!(first.all_sql.contains("REFERENCES t"));
    }
}
