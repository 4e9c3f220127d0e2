//! Converting dbinit [`Value`]s to and from PostgreSQL.
//!
//! Statements go out unnamed with parameters in text format and types left
//! to the server, as libpq's `PQexecParams` does: nothing named outlives the
//! statement, so a pooler that hands the server connection to another client
//! between statements finds nothing of ours on it, and the server converts
//! `'…'` to a uuid, an enum or a domain exactly as it would a literal. `COPY`
//! knows its column types and uses the binary format.

use std::error::Error;

use bytes::BytesMut;
use dbinit_core::{literal, CoreError, ErrorKind, Value};
use time::format_description::well_known::Rfc3339;
use tokio_postgres::types::{to_sql_checked, Format, IsNull, Kind, ToSql, Type};
use tokio_postgres::Row;

type BoxError = Box<dyn Error + Sync + Send>;

/// A parameter that serializes itself as whatever type the server expects.
#[derive(Debug)]
pub(crate) struct Param<'a>(pub(crate) &'a Value);

/// The parameter type "unspecified" (OID 0): the server infers it.
pub(crate) fn unspecified() -> Type {
    Type::new("unspecified".into(), 0, Kind::Simple, "pg_catalog".into())
}

/// `params` with their types left to the server.
pub(crate) fn typed(params: &[Value]) -> Vec<(Param<'_>, Type)> {
    params.iter().map(|p| (Param(p), unspecified())).collect()
}

/// What tokio-postgres's `*_typed` calls take.
pub(crate) fn refs<'a>(params: &'a [(Param<'a>, Type)]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|(p, t)| (p as &(dyn ToSql + Sync), t.clone()))
        .collect()
}

/// `value` in PostgreSQL's text input format.
fn text(value: &Value, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    use std::fmt::Write;
    match value {
        Value::Null => return Ok(IsNull::Yes),
        Value::Bool(b) => out.write_str(if *b { "t" } else { "f" }),
        Value::Int(i) => write!(out, "{i}"),
        Value::Float(f) if f.is_infinite() => {
            out.write_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Float(f) => write!(out, "{f}"),
        Value::Text(s) => out.write_str(s),
        Value::Bytes(b) => {
            out.extend_from_slice(b"\\x");
            b.iter().try_for_each(|byte| write!(out, "{byte:02x}"))
        }
        other => return Err(mismatch(other, ty)),
    }?;
    Ok(IsNull::No)
}

/// `f` as a `real`, when that is the same number: a value with more
/// digits than a 4-byte float holds would be stored as another.
pub(crate) fn float4(f: f64) -> Result<f32, BoxError> {
    let narrow = f as f32;
    // The same number: held exactly, or written no more precisely than a
    // `real` reads back (0.1).
    let same =
        !f.is_finite() || f64::from(narrow) == f || format!("{f:e}") == format!("{narrow:e}");
    if !same {
        return Err(format!(
            "`{f}` has more digits than a 4-byte float (real) holds: it would be stored as \
             {narrow}; round it, or use double precision"
        )
        .into());
    }
    Ok(narrow)
}

/// A timestamp as data files write it (RFC 3339, or without an offset:
/// UTC).
fn timestamp(s: &str) -> Result<literal::Timestamp, BoxError> {
    literal::parse_timestamp(s)
        .ok_or_else(|| format!("`{s}` is not a timestamp (2024-05-01 12:30:00)").into())
}

fn mismatch(value: &Value, ty: &Type) -> BoxError {
    format!("cannot send {value:?} as {ty}; cast the parameter in SQL (e.g. $1::text)").into()
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if ty.oid() == 0 {
            return text(self.0, ty, out);
        }
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Bool(b), &Type::BOOL) => b.to_sql(ty, out),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::OID) => u32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Bool(b), &Type::INT8 | &Type::INT4 | &Type::INT2) => {
                Param(&Value::Int(i64::from(*b))).to_sql(ty, out)
            }
            (Value::Float(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Float(f), &Type::FLOAT4) => float4(*f)?.to_sql(ty, out),
            // As written: through serde_json's Value, numbers would pass
            // through f64 and lose digits.
            (Value::Text(s), &Type::JSON | &Type::JSONB) => {
                serde_json::from_str::<&serde_json::value::RawValue>(s)?;
                if *ty == Type::JSONB {
                    out.extend_from_slice(&[1]);
                }
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), &Type::TIMESTAMPTZ) => timestamp(s)?.0.to_sql(ty, out),
            (Value::Text(s), &Type::TIMESTAMP) => timestamp(s)?.naive().to_sql(ty, out),
            (Value::Text(s), &Type::DATE) => literal::parse_date(s)
                .ok_or_else(|| format!("`{s}` is not a date (2024-05-01)"))?
                .to_sql(ty, out),
            (Value::Text(s), &Type::UUID) => {
                let bytes = literal::parse_uuid(s).ok_or_else(|| format!("`{s}` is not a UUID"))?;
                out.extend_from_slice(&bytes);
                Ok(IsNull::No)
            }
            (Value::Text(s), _) if <&str as ToSql>::accepts(ty) => s.as_str().to_sql(ty, out),
            (Value::Bytes(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (value, ty) => Err(mismatch(value, ty)),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        if ty.oid() == 0 {
            Format::Text
        } else {
            Format::Binary
        }
    }

    to_sql_checked!();
}

/// Reads column `i` of `row` as a [`Value`].
pub(crate) fn read(row: &Row, i: usize) -> Result<Value, CoreError> {
    let column = &row.columns()[i];
    let ty = column.type_();
    let failed = |e: tokio_postgres::Error| {
        CoreError::backend(
            ErrorKind::Database,
            format!("cannot read column `{}` ({ty}): {e}", column.name()),
        )
    };
    let value = match *ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(failed)?
            .map(Value::Bool),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(failed)?
            .map(|v| Value::Int(v.into())),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(failed)?
            .map(|v| Value::Int(v.into())),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(failed)?
            .map(Value::Int),
        Type::OID => row
            .try_get::<_, Option<u32>>(i)
            .map_err(failed)?
            .map(|v| Value::Int(v.into())),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(failed)?
            .map(|v| Value::Float(v.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(failed)?
            .map(Value::Float),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(failed)?
            .map(Value::Bytes),
        Type::JSON | Type::JSONB => row
            .try_get::<_, Option<serde_json::Value>>(i)
            .map_err(failed)?
            .map(|v| Value::Text(v.to_string())),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<time::OffsetDateTime>>(i)
            .map_err(failed)?
            .map(|v| Value::Text(v.format(&Rfc3339).unwrap_or_default())),
        ref other if <String as tokio_postgres::types::FromSql>::accepts(other) => row
            .try_get::<_, Option<String>>(i)
            .map_err(failed)?
            .map(Value::Text),
        ref other => {
            return Err(CoreError::backend(
                ErrorKind::Database,
                format!(
                "column `{}` has type {other}, which dbinit does not read; cast it to text in SQL",
                column.name()
            ),
            ))
        }
    };
    Ok(value.unwrap_or(Value::Null))
}
