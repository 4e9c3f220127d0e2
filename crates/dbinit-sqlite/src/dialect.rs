//! SQLite's SQL: `$n` parameters, standard identifier quotes, and
//! `ON CONFLICT … DO UPDATE` upserts (SQLite 3.24 and later).

use dbinit_core::dialect::{idents, Dialect, OnConflict};

/// How SQLite writes the SQL dbinit runs.
#[derive(Debug, Clone, Copy)]
pub struct SqliteDialect;

impl Dialect for SqliteDialect {
    fn placeholder(&self, n: usize) -> String {
        format!("${n}")
    }

    fn on_conflict(&self, c: &OnConflict<'_>) -> String {
        let key = idents(self, c.key);
        if c.update.is_empty() && c.increment.is_none() {
            return format!("ON CONFLICT ({key}) DO NOTHING");
        }
        let table = self.quote_ident(c.table);
        let mut set: Vec<String> = c
            .update
            .iter()
            .map(|col| format!("{0} = excluded.{0}", self.quote_ident(col)))
            .collect();
        if let Some(col) = c.increment {
            set.push(format!("{0} = {table}.{0} + 1", self.quote_ident(col)));
        }
        let mut clause = format!("ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "));
        if c.only_if_changed && !c.update.is_empty() {
            // `IS NOT` is SQLite's null-safe "differs".
            let differs: Vec<String> = c
                .update
                .iter()
                .map(|col| format!("{table}.{0} IS NOT excluded.{0}", self.quote_ident(col)))
                .collect();
            clause.push_str(" WHERE ");
            clause.push_str(&differs.join(" OR "));
        }
        clause
    }
}

#[cfg(test)]
mod tests {
    use dbinit_core::load::{upsert_sql, LoadSpec};

    use super::*;

    fn spec(into_empty: bool, columns: &[&str]) -> LoadSpec {
        LoadSpec {
            table: "t".into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            key: vec!["k".into()],
            into_empty,
        }
    }

    #[test]
    fn upserts_by_key_and_skips_identical_rows() {
        assert_eq!(
            upsert_sql(&SqliteDialect, &spec(false, &["k", "a"])),
            "INSERT INTO \"t\" (\"k\", \"a\") VALUES ($1, $2) ON CONFLICT (\"k\") DO UPDATE \
             SET \"a\" = excluded.\"a\" WHERE \"t\".\"a\" IS NOT excluded.\"a\""
        );
        assert_eq!(
            upsert_sql(&SqliteDialect, &spec(false, &["k"])),
            "INSERT INTO \"t\" (\"k\") VALUES ($1) ON CONFLICT (\"k\") DO NOTHING"
        );
        assert_eq!(
            upsert_sql(&SqliteDialect, &spec(true, &["k", "a"])),
            "INSERT INTO \"t\" (\"k\", \"a\") VALUES ($1, $2)"
        );
    }
}
