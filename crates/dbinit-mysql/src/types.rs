//! Values between dbinit and MySQL: parameters out, rows in, typed by the
//! column (the text protocol sends every value as bytes).

use std::sync::Arc;

use dbinit_core::{CoreError, ErrorKind, Row, Value};
use mysql_async::consts::ColumnType;
use mysql_async::Params;

/// The binary collation's id: a byte string, not text.
const BINARY_CHARSET: u16 = 63;

/// Positional parameters.
pub(crate) fn params(values: &[Value]) -> Params {
    Params::Positional(values.iter().map(param).collect())
}

fn param(value: &Value) -> mysql_async::Value {
    use mysql_async::Value as My;
    match value {
        Value::Null => My::NULL,
        Value::Bool(b) => My::Int(i64::from(*b)),
        Value::Int(i) => My::Int(*i),
        Value::Float(f) => My::Double(*f),
        Value::Text(s) => My::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => My::Bytes(b.clone()),
        // `Value` is non-exhaustive; a new kind goes as its text.
        other => My::Bytes(format!("{other:?}").into_bytes()),
    }
}

/// Rows as dbinit's, columns named as the server sent them.
pub(crate) fn rows(rows: Vec<mysql_async::Row>) -> Result<Vec<Row>, CoreError> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns = first.columns();
    let names: Arc<[String]> = columns.iter().map(|c| c.name_str().into_owned()).collect();
    rows.into_iter()
        .map(|row| {
            let values = row
                .unwrap()
                .into_iter()
                .zip(columns.iter())
                .map(|(v, c)| value(v, c))
                .collect::<Result<_, _>>()?;
            Ok(Row::new(names.clone(), values))
        })
        .collect()
}

fn value(v: mysql_async::Value, column: &mysql_async::Column) -> Result<Value, CoreError> {
    use mysql_async::Value as My;
    let ty = column.column_type();
    Ok(match v {
        My::NULL => Value::Null,
        My::Int(i) => Value::Int(i),
        My::UInt(u) => i64::try_from(u).map_or_else(|_| Value::Text(u.to_string()), Value::Int),
        My::Float(f) => Value::Float(f64::from(f)),
        My::Double(f) => Value::Float(f),
        My::Bytes(bytes) => from_bytes(bytes, ty, column)?,
        My::Date(y, mo, d, h, mi, s, us) => Value::Text(if ty == ColumnType::MYSQL_TYPE_DATE {
            format!("{y:04}-{mo:02}-{d:02}")
        } else {
            format!(
                "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}",
                fraction(us, column)
            )
        }),
        My::Time(negative, days, h, mi, s, us) => {
            let hours = u32::from(h) + days * 24;
            let sign = if negative { "-" } else { "" };
            Value::Text(format!(
                "{sign}{hours:02}:{mi:02}:{s:02}{}",
                fraction(us, column)
            ))
        }
    })
}

/// Microseconds as the text protocol writes them: as many digits as the
/// column's precision (`DATETIME(3)`: `.345`), none for a precision of 0.
fn fraction(us: u32, column: &mysql_async::Column) -> String {
    let digits = usize::from(column.decimals().min(6));
    if digits == 0 {
        return String::new();
    }
    format!(".{:06}", us)[..=digits].to_owned()
}

/// A value the text protocol sent as bytes, typed by its column.
fn from_bytes(
    bytes: Vec<u8>,
    ty: ColumnType,
    column: &mysql_async::Column,
) -> Result<Value, CoreError> {
    use ColumnType::*;
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| {
            CoreError::backend(
                ErrorKind::Database,
                format!("column {} holds text that is not UTF-8", column.name_str()),
            )
        })
    };
    Ok(match ty {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_INT24
        | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => {
            let s = text(bytes)?;
            match s.parse::<i64>() {
                Ok(i) => Value::Int(i),
                // An unsigned BIGINT past i64: kept exact, as text.
                Err(_) => Value::Text(s),
            }
        }
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => {
            let s = text(bytes)?;
            s.parse::<f64>().map_or(Value::Text(s), Value::Float)
        }
        MYSQL_TYPE_BIT => Value::Int(bytes.iter().fold(0i64, |n, b| (n << 8) | i64::from(*b))),
        // Byte strings: the binary character set on a string type (dates,
        // decimals and the like are "binary" too, but text).
        MYSQL_TYPE_STRING
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
            if column.character_set() == BINARY_CHARSET =>
        {
            Value::Bytes(bytes)
        }
        _ => Value::Text(text(bytes)?),
    })
}
