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
