//! MySQL's SQL: `?` parameters, backquoted identifiers, and
//! `ON DUPLICATE KEY UPDATE` upserts.

use dbinit_core::dialect::{ColumnType, Dialect, OnConflict};

/// How MySQL and MariaDB write the SQL dbinit runs.
#[derive(Debug, Clone, Copy)]
pub struct MysqlDialect;

impl Dialect for MysqlDialect {
    fn placeholder(&self, _n: usize) -> String {
        "?".to_owned()
    }

    fn quote_ident(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    fn column_type(&self, ty: ColumnType) -> String {
        match ty {
            // refinery's MySQL history table: `version INT4`.
            ColumnType::Int32 => "INT".to_owned(),
            ColumnType::Int64 => "BIGINT".to_owned(),
            ColumnType::Text => "TEXT".to_owned(),
            // InnoDB indexes at most 3072 bytes of a key: 768 utf8mb4
            // characters, so a key of two texts fits.
            ColumnType::KeyText => "VARCHAR(255)".to_owned(),
            ColumnType::Varchar(n) => format!("VARCHAR({n})"),
            _ => "TEXT".to_owned(),
        }
    }

    /// MySQL counts an inserted row 1, a changed one 2 and an unchanged
    /// one 0 (without `CLIENT_FOUND_ROWS`): an unchanged row is never
    /// counted, so `only_if_changed` needs no clause of its own.
    fn on_conflict(&self, c: &OnConflict<'_>) -> String {
        let mut set: Vec<String> = c
            .update
            .iter()
            .map(|col| format!("{0} = VALUES({0})", self.quote_ident(col)))
            .collect();
        if let Some(col) = c.increment {
            set.push(format!("{0} = {0} + 1", self.quote_ident(col)));
        }
        if set.is_empty() {
            // Nothing to update: a no-op assignment keeps the row (and
            // counts 0), where `INSERT IGNORE` would also swallow errors.
            let key = self.quote_ident(c.key.first().copied().unwrap_or_default());
            set.push(format!("{key} = {key}"));
        }
        format!("ON DUPLICATE KEY UPDATE {}", set.join(", "))
    }
}
