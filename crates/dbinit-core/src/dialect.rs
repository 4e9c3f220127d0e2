//! [`Dialect`]: how a backend writes SQL. The engine, the seed history and
//! bulk loads build their statements through it, so that a backend whose
//! SQL differs (placeholders, identifier quotes, upserts, column types)
//! fits without a change here.

/// How a backend writes the SQL dbinit itself runs. Handed out by
/// [`Query::dialect`](crate::Query::dialect).
///
/// Migrations, seeders and health checks that users write are in their
/// backend's SQL already; this covers what dbinit writes for them.
pub trait Dialect: Send + Sync {
    /// The `n`-th parameter of a statement (from 1), as SQL writes it:
    /// `$1`, `?`.
    fn placeholder(&self, n: usize) -> String;

    /// `name` quoted as an identifier. The default is standard SQL: double
    /// quotes, a `"` inside doubled.
    fn quote_ident(&self, name: &str) -> String {
        quote_ident(name)
    }

    /// The type of a column of dbinit's own tables (the migration history,
    /// the audit trail, the seed history). The defaults are the ones
    /// refinery's history table is written with, so refinery reads what
    /// dbinit writes.
    fn column_type(&self, ty: ColumnType) -> String {
        match ty {
            ColumnType::Int32 => "INT4".to_owned(),
            ColumnType::Int64 => "BIGINT".to_owned(),
            ColumnType::Text => "TEXT".to_owned(),
            ColumnType::KeyText => "TEXT".to_owned(),
            ColumnType::Varchar(n) => format!("VARCHAR({n})"),
        }
    }

    /// The clause that follows `INSERT INTO t (…) VALUES (…)` (or `INSERT
    /// … SELECT`) so that a row whose key exists updates it instead:
    /// `ON CONFLICT … DO UPDATE …`, `ON DUPLICATE KEY UPDATE …`. The
    /// statement's affected-row count must count an updated row and not an
    /// untouched one (see [`OnConflict::only_if_changed`]).
    fn on_conflict(&self, conflict: &OnConflict<'_>) -> String;
}

/// A column type of dbinit's own tables, named by what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnType {
    /// A 32-bit integer (a migration version).
    Int32,
    /// A 64-bit integer (a row count).
    Int64,
    /// Text of any length.
    Text,
    /// Text that is (part of) a primary key: some databases index text
    /// only up to a length.
    KeyText,
    /// Text of at most this many characters.
    Varchar(u16),
}

/// What an upsert does to a row whose key exists.
#[derive(Debug, Clone, Copy)]
pub struct OnConflict<'a> {
    /// The table inserted into, unquoted.
    pub table: &'a str,
    /// The key columns: a primary key or unique index on exactly these.
    pub key: &'a [&'a str],
    /// The columns set from the new row. Empty: the existing row is kept
    /// as it is.
    pub update: &'a [&'a str],
    /// Leave a row whose `update` columns already hold the new values
    /// untouched, so that it does not count as affected.
    pub only_if_changed: bool,
    /// A column incremented by one on every conflict (a run counter).
    pub increment: Option<&'a str>,
}

/// A column of one of dbinit's own tables.
#[derive(Debug, Clone, Copy)]
pub struct OwnColumn {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub ty: ColumnType,
    /// `NOT NULL`.
    pub not_null: bool,
}

impl OwnColumn {
    /// A column that may be `NULL`.
    pub const fn null(name: &'static str, ty: ColumnType) -> Self {
        OwnColumn {
            name,
            ty,
            not_null: false,
        }
    }

    /// A `NOT NULL` column.
    pub const fn required(name: &'static str, ty: ColumnType) -> Self {
        OwnColumn {
            name,
            ty,
            not_null: true,
        }
    }
}

/// `CREATE TABLE IF NOT EXISTS table (…)` for one of dbinit's own tables,
/// the first column its primary key when `keyed`. Names are quoted, as in
/// every statement dbinit writes: a dialect that folds unquoted names to
/// upper case sees the same table everywhere.
pub fn create_table(d: &dyn Dialect, table: &str, columns: &[OwnColumn], keyed: bool) -> String {
    let defs: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let constraint = if keyed && i == 0 {
                " PRIMARY KEY"
            } else if c.not_null {
                " NOT NULL"
            } else {
                ""
            };
            format!(
                "{} {}{constraint}",
                d.quote_ident(c.name),
                d.column_type(c.ty)
            )
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        d.quote_ident(table),
        defs.join(", ")
    )
}

/// `SELECT a, b FROM table`, names quoted by `d`.
pub fn select<S: AsRef<str>>(d: &dyn Dialect, table: &str, columns: &[S]) -> String {
    format!(
        "SELECT {} FROM {}",
        idents(d, columns),
        d.quote_ident(table)
    )
}

/// `INSERT INTO table (a, b) VALUES (p1, p2)`, names quoted and
/// placeholders written by `d`.
pub fn insert<S: AsRef<str>>(d: &dyn Dialect, table: &str, columns: &[S]) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        d.quote_ident(table),
        idents(d, columns),
        placeholders(d, 1..=columns.len())
    )
}

/// `p1, p2, …` for the parameters in `range`.
fn placeholders(d: &dyn Dialect, range: std::ops::RangeInclusive<usize>) -> String {
    range
        .map(|n| d.placeholder(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names quoted by `d`, comma-separated.
pub fn idents<S: AsRef<str>>(d: &dyn Dialect, names: &[S]) -> String {
    names
        .iter()
        .map(|c| d.quote_ident(c.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Quotes an identifier as standard SQL does (`"` doubled): the
/// [`Dialect::quote_ident`] default. Use it for every name that comes from
/// configuration.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Numbered;
    impl Dialect for Numbered {
        fn placeholder(&self, n: usize) -> String {
            format!(":{n}")
        }
        fn on_conflict(&self, _: &OnConflict<'_>) -> String {
            String::new()
        }
    }

    #[test]
    fn statements_are_written_in_the_dialect() {
        assert_eq!(quote_ident("my \"odd\" db"), "\"my \"\"odd\"\" db\"");
        assert_eq!(
            insert(&Numbered, "t", &["a", "b\"c"]),
            "INSERT INTO \"t\" (\"a\", \"b\"\"c\") VALUES (:1, :2)"
        );
        assert_eq!(
            create_table(
                &Numbered,
                "h",
                &[
                    OwnColumn::null("v", ColumnType::Int32),
                    OwnColumn::required("n", ColumnType::Varchar(9)),
                    OwnColumn::null("c", ColumnType::Text),
                ],
                true
            ),
            "CREATE TABLE IF NOT EXISTS \"h\" (\"v\" INT4 PRIMARY KEY, \"n\" VARCHAR(9) NOT NULL, \"c\" TEXT)"
        );
    }
}
