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

/// Appends `value` to `sql` as an SQL literal; `no_backslash_escapes`:
/// the session's `sql_mode` has it (a backslash is then a plain character).
/// Text is UTF-8, as the connection is: no byte of a character can be
/// taken for a quote or a backslash.
///
/// # Errors
///
/// A NaN or infinite float, which MySQL cannot store.
pub(crate) fn push_literal(
    sql: &mut String,
    value: &Value,
    no_backslash_escapes: bool,
) -> Result<(), CoreError> {
    use std::fmt::Write as _;
    match value {
        Value::Null => sql.push_str("NULL"),
        Value::Bool(b) => sql.push(if *b { '1' } else { '0' }),
        Value::Int(i) => {
            let _ = write!(sql, "{i}");
        }
        Value::Float(f) if !f.is_finite() => {
            return Err(CoreError::backend(
                ErrorKind::Database,
                format!("`{f}` cannot be stored: MySQL has no NaN or infinite floats"),
            ))
        }
        // `{:?}` keeps a float a float: `1.0`, `1e300`.
        Value::Float(f) => {
            let _ = write!(sql, "{f:?}");
        }
        Value::Text(text) => {
            sql.push('\'');
            for c in text.chars() {
                match c {
                    '\'' => sql.push_str("''"),
                    '\\' if !no_backslash_escapes => sql.push_str("\\\\"),
                    c => sql.push(c),
                }
            }
            sql.push('\'');
        }
        Value::Bytes(bytes) => {
            sql.push_str("X'");
            for b in bytes {
                let _ = write!(sql, "{b:02X}");
            }
            sql.push('\'');
        }
        other => sql.push_str(&param(other).as_sql(no_backslash_escapes)),
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(value: Value, no_backslash_escapes: bool) -> String {
        let mut sql = String::new();
        push_literal(&mut sql, &value, no_backslash_escapes).unwrap();
        sql
    }

    #[test]
    fn literals_are_escaped_as_the_sql_mode_reads_them() {
        let text = || Value::Text("it's a \\' test".into());
        assert_eq!(literal(text(), false), r"'it''s a \\'' test'");
        assert_eq!(literal(text(), true), r"'it''s a \'' test'");
        assert_eq!(literal(Value::Bytes(vec![0, 39, 255]), false), "X'0027FF'");
        assert_eq!(literal(Value::Float(1.0), false), "1.0");
        assert_eq!(literal(Value::Bool(true), false), "1");
        assert!(push_literal(&mut String::new(), &Value::Float(f64::NAN), false).is_err());
    }
}
