//! Backend-neutral parameter and result values.

use std::sync::Arc;

use crate::{CoreError, ErrorKind};

/// A SQL value passed as a parameter or read from a row.
///
/// Parameters are written in SQL as the backend's
/// [`Dialect`](crate::Dialect) says (`$1`, `?`).
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
    pub fn value(&self, column: &str) -> Result<&Value, CoreError> {
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

    /// The named column as a Rust value: `i64`, `i32`, `bool`, `f64`,
    /// `String`, `Vec<u8>`, or an `Option` of one (`None` for `NULL`).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use dbinit_core::{Row, Value};
    /// let row = Row::new(Arc::from(vec!["id".to_owned(), "note".to_owned()]), vec![Value::Int(7), Value::Null]);
    /// let id: i64 = row.get("id")?;
    /// let note: Option<String> = row.get("note")?;
    /// assert_eq!((id, note), (7, None));
    /// # Ok::<(), dbinit_core::CoreError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When the column is missing or its value does not convert.
    pub fn get<T: FromValue>(&self, column: &str) -> Result<T, CoreError> {
        let value = self.value(column)?;
        T::from_value(value).ok_or_else(|| {
            CoreError::backend(
                ErrorKind::Database,
                format!("column `{column}` is not {}: {value:?}", T::WANTED),
            )
        })
    }

    /// The values in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// A Rust type a [`Value`] converts to, for [`Row::get`].
pub trait FromValue: Sized {
    /// What the type is called in errors ("an integer").
    const WANTED: &'static str;
    /// The value as `Self`, if it converts.
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    const WANTED: &'static str = "an integer";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(v) => Some(*v),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}

impl FromValue for i32 {
    const WANTED: &'static str = "a 32-bit integer";
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|v| i32::try_from(v).ok())
    }
}

impl FromValue for bool {
    const WANTED: &'static str = "a boolean";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            // SQLite stores booleans as 0 and 1.
            Value::Int(0) => Some(false),
            Value::Int(1) => Some(true),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    const WANTED: &'static str = "a number";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    const WANTED: &'static str = "text";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    const WANTED: &'static str = "bytes";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const WANTED: &'static str = T::WANTED;
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}
