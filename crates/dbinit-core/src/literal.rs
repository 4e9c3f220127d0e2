//! The text forms of values, as data files and SQL write them: exact
//! decimals, timestamps, dates and UUIDs. Loaders parse with them; a backend
//! binds text to a typed column with them, so both read a value alike.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The largest power of ten [`Decimal`] takes.
const MAX_EXPONENT: u64 = 1_000_000;

/// A decimal number by its value: `-0012.500` and `-1.25e1` are one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    /// The significant digits, without leading or trailing zeros.
    digits: String,
    /// The power of ten of the last digit.
    exponent: i64,
}

impl Decimal {
    /// `[+-]digits[.digits][e[+-]digits]`, as SQL and JSON write numbers.
    pub fn parse(s: &str) -> Option<Decimal> {
        let (negative, rest) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let all = format!("{int}{frac}");
        let significant = all.trim_start_matches('0');
        let digits = significant.trim_end_matches('0');
        let trailing = (significant.len() - digits.len()) as i64;
        let exponent = exponent
            .checked_sub(frac.len() as i64)?
            .checked_add(trailing)?;
        // Far beyond what any column holds (PostgreSQL's numeric: 131,072
        // digits before the point): not a number to load.
        if exponent.unsigned_abs() > MAX_EXPONENT {
            return None;
        }
        Some(if digits.is_empty() {
            Decimal {
                negative: false,
                digits: String::new(),
                exponent: 0,
            }
        } else {
            Decimal {
                negative,
                digits: digits.to_owned(),
                exponent,
            }
        })
    }

    /// How many significant digits it has.
    pub fn significant_digits(&self) -> usize {
        self.digits.len()
    }

    /// One spelling per value, for comparing keys.
    pub fn canonical(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        format!("{sign}{}e{}", self.digits, self.exponent)
    }

    /// How many digits it has after the point.
    pub fn fraction_digits(&self) -> u64 {
        (-self.exponent).max(0) as u64
    }

    /// How many digits it has before the point.
    pub fn integer_digits(&self) -> i64 {
        (self.digits.len() as i64 + self.exponent).max(0)
    }
}

/// A timestamp as files and SQL write it: RFC 3339 (`2024-05-01T12:30:00Z`), or
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

/// A date as files and SQL write it: `2024-05-01`.
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

    #[test]
    fn decimals_compare_by_value() {
        assert_eq!(Decimal::parse("-0012.500"), Decimal::parse("-1.25e1"));
        assert_eq!(Decimal::parse("0.0"), Decimal::parse("-0"));
        assert_eq!(Decimal::parse("1e"), None);
        assert_eq!(Decimal::parse("."), None);
        assert_eq!(Decimal::parse("1e99999999999999999999"), None);
        assert_eq!(Decimal::parse("1e-9223372036854775808"), None);
        assert_eq!(Decimal::parse("12e9223372036854775807"), None);
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
    }
}
