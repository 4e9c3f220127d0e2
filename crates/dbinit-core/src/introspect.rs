//! [`Introspect`]: what the database holds — tables, columns, indexes —
//! as the engine, seeders and health checks need to know it.

use async_trait::async_trait;
use serde::Serialize;

use crate::query::Query;
use crate::{CoreError, Row};

/// A column, as introspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Declared type, as the database reports it.
    pub data_type: String,
    /// Whether `NULL` is allowed.
    pub nullable: bool,
    /// Whether the column is part of the primary key.
    pub primary_key: bool,
}

/// An index, as introspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    /// Index name.
    pub name: String,
    /// Indexed columns, in order.
    pub columns: Vec<String>,
    /// Whether the index enforces uniqueness.
    pub unique: bool,
    /// Whether it covers only the rows a `WHERE` clause selects.
    pub partial: bool,
}

/// Reading the schema. A backend provides the listings; the defaults answer
/// the questions built on them.
#[async_trait]
pub trait Introspect: Query {
    /// Whether `table` exists (in the session's schema).
    async fn table_exists(&mut self, table: &str) -> Result<bool, CoreError>;

    /// The user tables of the database (no internal or dbinit tables), sorted.
    async fn tables(&mut self) -> Result<Vec<String>, CoreError>;

    /// The columns of `table`, in declaration order.
    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, CoreError>;

    /// The indexes of `table`, sorted by name.
    async fn indexes(&mut self, table: &str) -> Result<Vec<Index>, CoreError>;

    /// Which of `tables` do not exist. The default lists every table; a
    /// backend overrides it to look the names up in one round trip.
    async fn missing_tables(&mut self, tables: &[String]) -> Result<Vec<String>, CoreError> {
        let present = self.tables().await?;
        Ok(tables
            .iter()
            .filter(|t| !present.contains(t))
            .cloned()
            .collect())
    }

    /// `query`, or `None` when `table` does not exist. A backend overrides
    /// it to do both in one round trip (the no-op `init` reads the history
    /// this way).
    async fn query_table(&mut self, table: &str, sql: &str) -> Result<Option<Vec<Row>>, CoreError> {
        if !self.table_exists(table).await? {
            return Ok(None);
        }
        self.query(sql, &[]).await.map(Some)
    }
}
