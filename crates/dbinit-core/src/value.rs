//! Backend-neutral parameter and result values.

use std::sync::Arc;

use crate::{CoreError, ErrorKind};

/// A SQL value passed as a parameter or read from a row.
///
/// Parameters are written `$1`, `$2`, ... in SQL for every backend.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A boolean (`INTEGER` 0/1 on SQLite).
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double-precision float.
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row: column names shared across the rows of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// Builds a row; `values` must be in `columns` order.
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        debug_assert_eq!(columns.len(), values.len());
        Row { columns, values }
    }

    /// The value of the named column.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Database`] when the query returned no such column.
    pub fn get(&self, column: &str) -> Result<&Value, CoreError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| &self.values[i])
            .ok_or_else(|| {
                CoreError::backend(
                    ErrorKind::Database,
                    format!("no column `{column}` in result"),
                )
            })
    }

    /// The named column as an integer.
    ///
    /// # Errors
    ///
    /// When the column is missing or not an integer.
    pub fn get_i64(&self, column: &str) -> Result<i64, CoreError> {
        match self.get(column)? {
            Value::Int(v) => Ok(*v),
            Value::Bool(b) => Ok(i64::from(*b)),
            other => Err(type_error(column, "an integer", other)),
        }
    }

    /// The named column as text (`None` for `NULL`).
    ///
    /// # Errors
    ///
    /// When the column is missing or not text.
    pub fn get_opt_str(&self, column: &str) -> Result<Option<&str>, CoreError> {
        match self.get(column)? {
            Value::Text(v) => Ok(Some(v)),
            Value::Null => Ok(None),
            other => Err(type_error(column, "text", other)),
        }
    }

    /// The values in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

fn type_error(column: &str, wanted: &str, got: &Value) -> CoreError {
    CoreError::backend(
        ErrorKind::Database,
        format!("column `{column}` is not {wanted}: {got:?}"),
    )
}
