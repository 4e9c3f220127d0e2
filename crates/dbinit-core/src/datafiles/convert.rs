//! Typing a data file's fields by the table's actual columns: text (CSV)
//! or JSON in, a checked [`Value`] out, or a sentence saying why not.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::{Column, Value};

/// What a column holds, from its declared type (SQLite) or
/// `format_type` (PostgreSQL).
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
    Numeric,
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
        } else if t.starts_with("timestamp") || t == "datetime" {
            Kind::Timestamp
        } else if t == "date" {
            Kind::Date
        } else if t.starts_with("interval") || t == "point" {
            Kind::Other
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
            Kind::Numeric
        } else if t == "bytea" || t == "blob" {
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
            Kind::Numeric => "a decimal number",
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

    /// A JSON field: `null`, a boolean, a number, a string (converted as
    /// text is), or, for a JSON column, anything.
    pub(crate) fn json(&self, field: &serde_json::Value) -> Result<Value, String> {
        use serde_json::Value as J;
        match (field, self.kind) {
            (J::Null, _) => self.null(),
            // A JSON value for a JSON column, strings included.
            (J::String(s), Kind::Json) => Ok(Value::Text(J::String(s.clone()).to_string())),
            (J::String(s), _) => self.convert(s),
            (J::Number(n), Kind::Bool) if n.as_u64().is_some_and(|v| v <= 1) => {
                Ok(Value::Bool(n.as_u64() == Some(1)))
            }
            // SQLite keeps JSON in text columns.
            (other, Kind::Json | Kind::Text | Kind::Other)
                if other.is_object() || other.is_array() =>
            {
                Ok(Value::Text(other.to_string()))
            }
            (J::Bool(b), Kind::Bool | Kind::Other) => Ok(Value::Bool(*b)),
            (J::Number(n), Kind::Int) => n
                .as_i64()
                .map(Value::Int)
                .ok_or_else(|| self.refuse(&n.to_string())),
            (J::Number(n), Kind::Float) => n
                .as_f64()
                .map(Value::Float)
                .ok_or_else(|| self.refuse(&n.to_string())),
            (J::Number(n), Kind::Numeric | Kind::Other | Kind::Text) => {
                Ok(Value::Text(n.to_string()))
            }
            (other, _) => Err(self.refuse(&other.to_string())),
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
        let shown: String = field.chars().take(40).collect();
        let more = if shown.len() < field.len() { "…" } else { "" };
        format!("`{shown}{more}` is not {}", self.kind.describe())
    }

    fn convert(&self, s: &str) -> Result<Value, String> {
        let ok = match self.kind {
            Kind::Text | Kind::Other => return Ok(Value::Text(s.to_owned())),
            Kind::Int => return s.trim().parse().map(Value::Int).map_err(|_| self.refuse(s)),
            Kind::Float => {
                return s
                    .trim()
                    .parse()
                    .map(Value::Float)
                    .map_err(|_| self.refuse(s))
            }
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
            Kind::Json => serde_json::from_str::<serde_json::Value>(s).is_ok(),
            Kind::Uuid => parse_uuid(s).is_some(),
            Kind::Numeric => is_decimal(s) || s.trim().parse::<f64>().is_ok(),
        };
        if ok {
            Ok(Value::Text(s.to_owned()))
        } else {
            Err(self.refuse(s))
        }
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

fn is_decimal(s: &str) -> bool {
    let t = s.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// A timestamp in a data file: RFC 3339 (`2024-05-01T12:30:00Z`), or
/// `2024-05-01 12:30:00[.ffffff]` (a `T` instead of the space, too)
/// without an offset, which means UTC.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(Timestamp(t.to_offset(UtcOffset::UTC)));
    }
    let space = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let t = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(s, &space)
        .or_else(|_| PrimitiveDateTime::parse(s, &t))
        .ok()
        .map(|p| Timestamp(p.assume_utc()))
}

/// A parsed timestamp, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// The date and time without the offset.
    pub fn naive(self) -> PrimitiveDateTime {
        PrimitiveDateTime::new(self.0.date(), self.0.time())
    }

    /// `2024-05-01 12:30:00` (and `.ffffff` when there are fractions), in
    /// UTC: how loads write every timestamp, so that a column compares and
    /// sorts the same whatever format or offset the file used.
    pub fn canonical(self) -> String {
        let (date, time) = (self.0.date(), self.0.time());
        let micros = time.microsecond();
        let fraction = if micros == 0 {
            String::new()
        } else {
            format!(".{micros:06}")
        };
        format!(
            "{date} {:02}:{:02}:{:02}{fraction}",
            time.hour(),
            time.minute(),
            time.second()
        )
    }
}

/// A date in a data file: `2024-05-01`.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()
}

/// A UUID in its usual hyphenated form (or 32 hex digits), as 16 bytes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.trim().bytes().filter(|b| *b != b'-').collect();
    let hyphens = s.trim().len() - hex.len();
    if hex.len() != 32 || !(hyphens == 0 || hyphens == 4) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
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
    fn kinds_follow_both_backends_type_names() {
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
            ("timestamp with time zone", Kind::Timestamp),
            ("TIMESTAMP", Kind::Timestamp),
            ("date", Kind::Date),
            ("jsonb", Kind::Json),
            ("numeric(10,2)", Kind::Numeric),
            ("uuid", Kind::Uuid),
            ("mood", Kind::Other),
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

    #[test]
    fn json_fields() {
        use serde_json::json;
        assert_eq!(target("integer", true).json(&json!(7)), Ok(Value::Int(7)));
        assert!(target("integer", true).json(&json!(7.5)).is_err());
        assert_eq!(
            target("jsonb", true).json(&json!({"a": [1]})),
            Ok(Value::Text("{\"a\":[1]}".into()))
        );
        assert_eq!(
            target("text", true).json(&json!([1])),
            Ok(Value::Text("[1]".into()))
        );
        assert!(target("integer", true).json(&json!([1])).is_err());
        assert_eq!(target("text", true).json(&json!(null)), Ok(Value::Null));
    }

    #[test]
    fn timestamps_without_offset_are_utc() {
        let a = parse_timestamp("2024-05-01 12:30:00").unwrap();
        let b = parse_timestamp("2024-05-01T14:30:00+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.canonical(), "2024-05-01 12:30:00");
        assert_eq!(
            parse_timestamp("2024-05-01T12:30:00.5-01:00")
                .unwrap()
                .canonical(),
            "2024-05-01 13:30:00.500000"
        );
        assert_eq!(Kind::of("integer[]"), Kind::Other);
    }
}
