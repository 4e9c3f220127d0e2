//! Typing a data file's fields by the table's actual columns: text (CSV)
//! or JSON in, a checked [`Value`] out, or a sentence saying why not.

use dbinit_core::literal::{parse_date, parse_timestamp, parse_uuid, Decimal};
use dbinit_core::{excerpt, Column, Value};
use serde_json::value::RawValue;

/// What a column holds, from its declared type (SQLite), `format_type`
/// (PostgreSQL) or `COLUMN_TYPE` (MySQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Float,
    Bool,
    Text,
    Timestamp,
    Date,
    Json,
    Uuid,
    /// `numeric(precision, scale)`: what is declared of them.
    Numeric {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Bytes,
    /// Anything else (an enum, an interval, a column without a type): sent
    /// as text for the database to convert.
    Other,
}

impl Kind {
    pub(crate) fn of(data_type: &str) -> Kind {
        let t = data_type.to_ascii_lowercase();
        let t = t.trim();
        if t.ends_with("[]") || t.starts_with('_') || t.contains("array") {
            // An array: the database parses its text form.
            Kind::Other
        } else if t.starts_with("timestamp") || t.starts_with("datetime") {
            Kind::Timestamp
        } else if t == "date" {
            Kind::Date
        } else if t.starts_with("interval")
            || ["point", "linestring", "polygon", "geometry"]
                .iter()
                .any(|g| t.contains(g))
        {
            Kind::Other
        } else if t.starts_with("tinyint(1)") {
            // MySQL's BOOLEAN.
            Kind::Bool
        } else if t.contains("int") || t.contains("serial") {
            // SQLite's affinity rule: "INT" anywhere makes an integer.
            Kind::Int
        } else if t.starts_with("bool") {
            Kind::Bool
        } else if t.contains("char") || t.contains("clob") || t.contains("text") {
            Kind::Text
        } else if t.contains("real") || t.contains("floa") || t.contains("doub") {
            Kind::Float
        } else if t == "json" || t == "jsonb" {
            Kind::Json
        } else if t == "uuid" {
            Kind::Uuid
        } else if t.starts_with("numeric") || t.starts_with("decimal") {
            // `numeric(10,2)`: the database rounds to the scale silently.
            // `decimal(10,2) unsigned zerofill`: what is between the brackets.
            let declared = t.split_once('(').map_or("", |(_, rest)| rest);
            let declared = declared
                .split_once(')')
                .map_or(declared, |(inside, _)| inside);
            let mut numbers = declared.split(',').map(|n| n.trim().parse::<u32>().ok());
            let precision = numbers.next().flatten();
            Kind::Numeric {
                precision,
                scale: precision.map(|_| numbers.next().flatten().unwrap_or(0)),
            }
        } else if t == "bytea" || t.ends_with("blob") || t.contains("binary(") {
            Kind::Bytes
        } else {
            Kind::Other
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Int => "an integer",
            Kind::Float => "a number",
            Kind::Bool => "a boolean (true/false, t/f, yes/no, 1/0)",
            Kind::Timestamp => "a timestamp (2024-05-01 12:30:00, or RFC 3339)",
            Kind::Date => "a date (2024-05-01)",
            Kind::Json => "JSON",
            Kind::Uuid => "a UUID",
            Kind::Numeric { .. } => "a decimal number",
            Kind::Bytes => "bytes as \\x followed by hex digits",
            Kind::Text | Kind::Other => "text",
        }
    }
}

/// How one field of the file becomes a value of its column.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) nullable: bool,
    pub(crate) key: bool,
}

impl Target {
    pub(crate) fn new(column: &Column, key: bool) -> Self {
        Target {
            name: column.name.clone(),
            kind: Kind::of(&column.data_type),
            nullable: column.nullable,
            key,
        }
    }

    /// A CSV field. Empty is `NULL`, except in a `NOT NULL` text column,
    /// where it is the empty string.
    pub(crate) fn text(&self, field: &str) -> Result<Value, String> {
        if field.is_empty() {
            return match self.kind {
                Kind::Text if !self.nullable && !self.key => Ok(Value::Text(String::new())),
                _ => self.null(),
            };
        }
        self.convert(field)
    }

    /// A JSON field, as written: `null`, a boolean, a number (its digits
    /// as written, never through a binary float), a string (converted as
    /// text is), or, for a JSON column, anything.
    pub(crate) fn json(&self, raw: &RawValue) -> Result<Value, String> {
        let written = raw.get();
        match (JsonField::of(written)?, self.kind) {
            (JsonField::Null, _) => self.null(),
            // A JSON value for a JSON column, as written, strings included.
            (_, Kind::Json) => Ok(Value::Text(written.to_owned())),
            (JsonField::String(s), _) => self.convert(&s),
            (JsonField::Number, Kind::Bool) if written == "0" || written == "1" => {
                Ok(Value::Bool(written == "1"))
            }
            // SQLite keeps JSON in text columns.
            (JsonField::Composite, Kind::Text | Kind::Other) => Ok(Value::Text(written.to_owned())),
            (JsonField::Bool(b), Kind::Bool | Kind::Other) => Ok(Value::Bool(b)),
            (JsonField::Number, Kind::Int | Kind::Float | Kind::Numeric { .. }) => {
                self.convert(written)
            }
            (JsonField::Number, Kind::Text | Kind::Other) => Ok(Value::Text(written.to_owned())),
            _ => Err(self.refuse(written)),
        }
    }

    fn null(&self) -> Result<Value, String> {
        if self.key {
            Err("is empty, but it is part of the key".to_owned())
        } else if !self.nullable {
            Err("is empty, but the column is NOT NULL".to_owned())
        } else {
            Ok(Value::Null)
        }
    }

    fn refuse(&self, field: &str) -> String {
        format!("`{}` is not {}", excerpt(field), self.kind.describe())
    }

    fn convert(&self, s: &str) -> Result<Value, String> {
        let ok = match self.kind {
            Kind::Text | Kind::Other => return Ok(Value::Text(s.to_owned())),
            Kind::Int => return self.integer(s),
            Kind::Float => return self.float(s),
            Kind::Bool => return parse_bool(s).map(Value::Bool).ok_or_else(|| self.refuse(s)),
            Kind::Bytes => return parse_hex(s).map(Value::Bytes).ok_or_else(|| self.refuse(s)),
            // Written the same way whatever the file said: UTC, ISO 8601.
            Kind::Timestamp => {
                return parse_timestamp(s)
                    .map(|t| Value::Text(t.canonical()))
                    .ok_or_else(|| self.refuse(s))
            }
            Kind::Date => {
                return parse_date(s)
                    .map(|d| Value::Text(d.to_string()))
                    .ok_or_else(|| self.refuse(s))
            }
            Kind::Json => serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok(),
            Kind::Uuid => parse_uuid(s).is_some(),
            Kind::Numeric { precision, scale } => return self.numeric(s, precision, scale),
        };
        if ok {
            Ok(Value::Text(s.to_owned()))
        } else {
            Err(self.refuse(s))
        }
    }

    fn integer(&self, s: &str) -> Result<Value, String> {
        let t = s.trim();
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        let literal = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        t.parse().map(Value::Int).map_err(|_| {
            if literal {
                format!(
                    "`{}` is beyond the range of a 64-bit integer ({} to {})",
                    excerpt(s),
                    i64::MIN,
                    i64::MAX
                )
            } else {
                self.refuse(s)
            }
        })
    }

    /// A binary float, only when it is the number written: one with more
    /// digits than a 64-bit float holds would be stored as another.
    fn float(&self, s: &str) -> Result<Value, String> {
        let t = s.trim();
        let f: f64 = t.parse().map_err(|_| self.refuse(s))?;
        let special = [
            "inf",
            "+inf",
            "-inf",
            "infinity",
            "+infinity",
            "-infinity",
            "nan",
        ]
        .contains(&t.to_ascii_lowercase().as_str());
        if !special && Decimal::parse(t) != Decimal::parse(&format!("{f:e}")) {
            return Err(format!(
                "`{}` has more digits than a 64-bit float holds (it would be stored as {f:e}); \
                 round it, or use a numeric column",
                excerpt(s)
            ));
        }
        Ok(Value::Float(f))
    }

    /// A decimal, sent as written; refused where the column would round it.
    fn numeric(
        &self,
        s: &str,
        precision: Option<u32>,
        scale: Option<u32>,
    ) -> Result<Value, String> {
        let t = s.trim();
        let Some(d) = Decimal::parse(t) else {
            let special = ["nan", "infinity", "+infinity", "-infinity"]
                .contains(&t.to_ascii_lowercase().as_str());
            return if special {
                Ok(Value::Text(s.to_owned()))
            } else {
                Err(self.refuse(s))
            };
        };
        if let (Some(precision), Some(scale)) = (precision, scale) {
            let declared = format!("numeric({precision},{scale})");
            if d.fraction_digits() > u64::from(scale) {
                return Err(format!(
                    "`{}` has {} decimal places, but the column is {declared}: it would be \
                     rounded",
                    excerpt(s),
                    d.fraction_digits()
                ));
            }
            if d.integer_digits() > i64::from(precision) - i64::from(scale) {
                return Err(format!(
                    "`{}` does not fit {declared} (at most {} digits before the point)",
                    excerpt(s),
                    i64::from(precision) - i64::from(scale)
                ));
            }
        }
        Ok(Value::Text(s.to_owned()))
    }
}

/// What a JSON value is, from its written form.
enum JsonField {
    Null,
    Bool(bool),
    Number,
    String(String),
    /// An object or an array.
    Composite,
}

impl JsonField {
    fn of(written: &str) -> Result<JsonField, String> {
        Ok(match written.as_bytes().first() {
            Some(b'n') => JsonField::Null,
            Some(b't') => JsonField::Bool(true),
            Some(b'f') => JsonField::Bool(false),
            Some(b'"') => JsonField::String(
                serde_json::from_str(written).map_err(|e| format!("not JSON: {e}"))?,
            ),
            Some(b'{' | b'[') => JsonField::Composite,
            _ => JsonField::Number,
        })
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let hex = s.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(data_type: &str, nullable: bool) -> Target {
        Target {
            name: "c".into(),
            kind: Kind::of(data_type),
            nullable,
            key: false,
        }
    }

    #[test]
    fn kinds_follow_every_backends_type_names() {
        for (t, k) in [
            ("INTEGER", Kind::Int),
            ("bigint", Kind::Int),
            ("UNSIGNED BIG INT", Kind::Int),
            ("interval", Kind::Other),
            ("point", Kind::Other),
            ("character varying(20)", Kind::Text),
            ("double precision", Kind::Float),
            ("REAL", Kind::Float),
            ("boolean", Kind::Bool),
            ("tinyint(1)", Kind::Bool),
            ("tinyint(4)", Kind::Int),
            ("bigint(20) unsigned", Kind::Int),
            (
                "decimal(10,2) unsigned zerofill",
                Kind::Numeric {
                    precision: Some(10),
                    scale: Some(2),
                },
            ),
            ("datetime(6)", Kind::Timestamp),
            ("multilinestring", Kind::Other),
            ("longblob", Kind::Bytes),
            ("varbinary(16)", Kind::Bytes),
            ("timestamp with time zone", Kind::Timestamp),
            ("TIMESTAMP", Kind::Timestamp),
            ("date", Kind::Date),
            ("jsonb", Kind::Json),
            (
                "numeric(10,2)",
                Kind::Numeric {
                    precision: Some(10),
                    scale: Some(2),
                },
            ),
            (
                "NUMERIC",
                Kind::Numeric {
                    precision: None,
                    scale: None,
                },
            ),
            ("uuid", Kind::Uuid),
            ("mood", Kind::Other),
            ("integer[]", Kind::Other),
            ("", Kind::Other),
        ] {
            assert_eq!(Kind::of(t), k, "{t}");
        }
    }

    #[test]
    fn converts_or_says_why_not() {
        assert_eq!(target("integer", true).text(" 42"), Ok(Value::Int(42)));
        assert_eq!(
            target("integer", true).text("4x"),
            Err("`4x` is not an integer".to_owned())
        );
        assert_eq!(target("integer", true).text(""), Ok(Value::Null));
        assert!(target("integer", false).text("").is_err());
        assert_eq!(
            target("text", false).text(""),
            Ok(Value::Text(String::new()))
        );
        assert_eq!(target("boolean", true).text("Yes"), Ok(Value::Bool(true)));
        assert!(target("boolean", true).text("maybe").is_err());
        assert!(target("timestamp", true)
            .text("2024-05-01 12:30:00.25")
            .is_ok());
        assert!(target("timestamp", true)
            .text("2024-13-01 12:30:00")
            .is_err());
        assert!(target("date", true).text("2024-02-30").is_err());
        assert!(target("uuid", true)
            .text("0190c5a4-1b2c-7d3e-8f40-123456789abc")
            .is_ok());
        assert!(target("uuid", true).text("0190c5a4").is_err());
        assert!(target("numeric", true).text("-12.50").is_ok());
        assert!(target("numeric", true).text("1e5x").is_err());
        assert_eq!(
            target("bytea", true).text("\\x00ff"),
            Ok(Value::Bytes(vec![0, 255]))
        );
        assert!(target("jsonb", true).text("{\"a\":").is_err());
        let long = "x".repeat(100);
        assert!(target("integer", true)
            .text(&long)
            .unwrap_err()
            .contains('…'));
    }

    fn json(data_type: &str, written: &str) -> Result<Value, String> {
        let raw = RawValue::from_string(written.to_owned()).unwrap();
        target(data_type, true).json(&raw)
    }

    #[test]
    fn json_fields() {
        assert_eq!(json("integer", "7"), Ok(Value::Int(7)));
        assert!(json("integer", "7.5").is_err());
        assert_eq!(
            json("jsonb", "{\"a\": [1]}"),
            Ok(Value::Text("{\"a\": [1]}".into()))
        );
        assert_eq!(json("text", "[1]"), Ok(Value::Text("[1]".into())));
        assert!(json("integer", "[1]").is_err());
        assert_eq!(json("text", "null"), Ok(Value::Null));
        assert_eq!(json("boolean", "1"), Ok(Value::Bool(true)));
    }

    /// Numbers reach exact columns as written, and are refused where the
    /// column would store another number.
    #[test]
    fn numbers_arrive_exactly_or_not_at_all() {
        for written in [
            "12345678901234567.89",
            "123456789012345678901234567890",
            "-0.000000000000000000001",
        ] {
            assert_eq!(json("numeric", written), Ok(Value::Text(written.into())));
            assert_eq!(json("text", written), Ok(Value::Text(written.into())));
            assert_eq!(
                target("numeric", true).text(written),
                Ok(Value::Text(written.into()))
            );
        }
        assert_eq!(
            json("numeric(10,2)", "12.50"),
            Ok(Value::Text("12.50".into()))
        );
        let rounded = json("numeric(10,2)", "1.005").unwrap_err();
        assert!(
            rounded.contains("3 decimal places") && rounded.contains("numeric(10,2)"),
            "{rounded}"
        );
        assert!(json("numeric(4,2)", "123.4")
            .unwrap_err()
            .contains("at most 2 digits before"));
        let big = json("bigint", "123456789012345678901234567890").unwrap_err();
        assert!(
            big.contains("beyond the range of a 64-bit integer"),
            "{big}"
        );
        assert!(target("integer", true).text("9223372036854775808").is_err());
        assert_eq!(
            target("integer", true).text("1.0"),
            Err("`1.0` is not an integer".to_owned())
        );
        assert_eq!(json("double precision", "0.1"), Ok(Value::Float(0.1)));
        assert_eq!(json("double precision", "1e3"), Ok(Value::Float(1000.0)));
        let lossy = json("double precision", "12345678901234567.89").unwrap_err();
        assert!(
            lossy.contains("more digits than a 64-bit float holds"),
            "{lossy}"
        );
        assert!(target("real", true).text("1e400").is_err());
        assert_eq!(
            target("real", true).text("-Infinity"),
            Ok(Value::Float(f64::NEG_INFINITY))
        );
        assert!(json("numeric(10,2)", "12e9223372036854775807").is_err());
    }
}
