//! Splitting a MySQL script into statements, as the `mysql` client does:
//! `;` (or the `DELIMITER` in force) ends a statement outside strings,
//! quoted identifiers and comments. `/*! … */` executable comments are
//! statement text. Each statement keeps its text exactly (the journal
//! checksums it) and the line it starts on (errors name it).
//!
//! Written here rather than taken from a SQL parser: a parser must
//! understand a statement to find its end and rejects what it does not
//! know (and has no `DELIMITER`, a client command), where the server is
//! the judge of what a statement means.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    /// Its text, without the delimiter, trimmed.
    pub(crate) sql: String,
    /// The 1-based line it starts on.
    pub(crate) line: usize,
}

/// The statements of `script`, in order; comments and blank text between
/// them are dropped.
///
/// # Errors
///
/// An unterminated string, quoted identifier or comment (naming the line
/// it starts on), or a `DELIMITER` line without a delimiter.
pub(crate) fn split(script: &str) -> Result<Vec<Statement>, String> {
    let mut out = Vec::new();
    let mut delimiter = ";".to_owned();
    let bytes = script.as_bytes();
    let (mut i, mut line) = (0usize, 1usize);
    let mut start: Option<(usize, usize)> = None;
    let mut at_line_start = true;
    while i < bytes.len() {
        if at_line_start {
            if let Some((new, next)) = delimiter_command(script, i)? {
                // As the client does: what was open is a statement.
                if let Some((from, first)) = start.take() {
                    push(&mut out, &script[from..i], first);
                }
                delimiter = new;
                line += 1;
                i = next;
                continue;
            }
        }
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
            at_line_start = true;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        at_line_start = false;
        // A comment that is not executable, outside a statement or inside
        // one, is skipped as a unit (it may hold the delimiter).
        let first_line = line;
        if let Some(end) = comment_end(bytes, i, &mut line)? {
            if start.is_some() || is_executable_comment(bytes, i) {
                start.get_or_insert((i, first_line));
            }
            i = end;
            continue;
        }
        if bytes[i..].starts_with(delimiter.as_bytes()) {
            if let Some((from, first)) = start.take() {
                push(&mut out, &script[from..i], first);
            }
            i += delimiter.len();
            continue;
        }
        start.get_or_insert((i, first_line));
        i = match c {
            b'\'' | b'"' | b'`' => quoted_end(bytes, i, &mut line)
                .ok_or_else(|| format!("line {first_line}: a {} is never closed", name(c)))?,
            // A whole character: every index stays on a boundary.
            _ => i + char_len(c),
        };
    }
    if let Some((from, first)) = start {
        push(&mut out, &script[from..], first);
    }
    Ok(out)
}

/// The length of the UTF-8 character whose first byte is `lead`.
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

fn push(out: &mut Vec<Statement>, text: &str, line: usize) {
    let sql = text.trim();
    if !sql.is_empty() {
        out.push(Statement {
            sql: sql.to_owned(),
            line,
        });
    }
}

fn name(quote: u8) -> &'static str {
    match quote {
        b'`' => "quoted identifier (`)",
        b'"' => "string (\")",
        _ => "string (')",
    }
}

/// A `DELIMITER x` line at `i` (a line start): the new delimiter and
/// where the next line begins.
fn delimiter_command(script: &str, i: usize) -> Result<Option<(String, usize)>, String> {
    let rest = &script[i..];
    let line_end = rest.find('\n').map_or(script.len(), |n| i + n + 1);
    let text = script[i..line_end].trim();
    let Some(keyword) = text.get(..9) else {
        return Ok(None);
    };
    let after = &text[9..];
    if !keyword.eq_ignore_ascii_case("delimiter")
        || !(after.is_empty() || after.starts_with(char::is_whitespace))
    {
        return Ok(None);
    }
    match after.split_whitespace().next() {
        Some(new) => Ok(Some((new.to_owned(), line_end))),
        None => Err("a DELIMITER line names no delimiter".to_owned()),
    }
}

/// Where a comment starting at `i` ends, if one does; counts its lines.
fn comment_end(bytes: &[u8], i: usize, line: &mut usize) -> Result<Option<usize>, String> {
    let next = bytes.get(i + 1).copied();
    let to_line_end = |from: usize| {
        bytes[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |n| from + n)
    };
    match (bytes[i], next) {
        // `--` starts a comment only before a space or control character.
        (b'-', Some(b'-')) if bytes.get(i + 2).is_none_or(|b| *b <= b' ') => {
            Ok(Some(to_line_end(i)))
        }
        (b'#', _) => Ok(Some(to_line_end(i))),
        (b'/', Some(b'*')) => {
            let first = *line;
            let mut j = i + 2;
            while j + 1 < bytes.len() {
                if bytes[j] == b'*' && bytes[j + 1] == b'/' {
                    return Ok(Some(j + 2));
                }
                if bytes[j] == b'\n' {
                    *line += 1;
                }
                j += 1;
            }
            Err(format!("line {first}: a comment (/*) is never closed"))
        }
        _ => Ok(None),
    }
}

/// `/*! … */`, `/*!50100 … */` or MariaDB's `/*M!100401 … */`: SQL the
/// server runs.
fn is_executable_comment(bytes: &[u8], i: usize) -> bool {
    bytes.get(i..i + 3) == Some(b"/*!") || bytes.get(i..i + 4) == Some(b"/*M!")
}

/// The index just past the quoted text starting at `i`, counting lines;
/// `None` when it is never closed. A quote is escaped by doubling it, and
/// in strings by a backslash.
fn quoted_end(bytes: &[u8], i: usize, line: &mut usize) -> Option<usize> {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if quote != b'`' => {
                if bytes.get(j + 1) == Some(&b'\n') {
                    *line += 1;
                }
                j += 2;
                continue;
            }
            b'\n' => *line += 1,
            b if b == quote => {
                if bytes.get(j + 1) == Some(&quote) {
                    j += 2;
                    continue;
                }
                return Some(j + 1);
            }
            _ => {}
        }
        j += 1;
    }
    None
}

/// Whether MySQL commits the open transaction before (and after) running
/// `sql`: data definition and account statements do; `CREATE TEMPORARY
/// TABLE` and `DROP TEMPORARY TABLE` do not.
pub(crate) fn commits_implicitly(sql: &str) -> bool {
    let words: Vec<String> = words(sql).take(2).collect();
    let first = words.first().map(String::as_str).unwrap_or_default();
    let second = words.get(1).map(String::as_str).unwrap_or_default();
    match first {
        "CREATE" | "DROP" => second != "TEMPORARY",
        "ALTER" | "RENAME" | "TRUNCATE" | "GRANT" | "REVOKE" | "ANALYZE" | "OPTIMIZE"
        | "REPAIR" | "LOCK" | "UNLOCK" | "INSTALL" | "UNINSTALL" | "FLUSH" => true,
        _ => false,
    }
}

/// The leading words of `sql`, upper-cased, comments skipped (an
/// executable comment's words count: MySQL runs them).
fn words(sql: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = sql;
    std::iter::from_fn(move || loop {
        rest = rest.trim_start();
        if let Some(after) = rest
            .strip_prefix("/*!")
            .or_else(|| rest.strip_prefix("/*M!"))
        {
            rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
            continue;
        }
        if rest.starts_with("/*") {
            rest = rest.find("*/").map_or("", |n| &rest[n + 2..]);
            continue;
        }
        if rest.starts_with('#') || rest.starts_with("-- ") {
            rest = rest.find('\n').map_or("", |n| &rest[n..]);
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        let word = rest[..end].to_ascii_uppercase();
        rest = &rest[end..];
        return Some(word);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(script: &str) -> Vec<(String, usize)> {
        split(script)
            .unwrap()
            .into_iter()
            .map(|s| (s.sql, s.line))
            .collect()
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let script = "CREATE TABLE a (x TEXT DEFAULT ';');\n\
                      -- a comment; with a semicolon\n\
                      INSERT INTO a VALUES ('it''s;', \"q\\\";\", `we;ird`);\n\
                      # hash comment;\n\
                      /* block; \n comment */ SELECT 1;";
        assert_eq!(
            sqls(script),
            [
                ("CREATE TABLE a (x TEXT DEFAULT ';')".to_owned(), 1),
                (
                    "INSERT INTO a VALUES ('it''s;', \"q\\\";\", `we;ird`)".to_owned(),
                    3
                ),
                ("SELECT 1".to_owned(), 6),
            ]
        );
    }

    #[test]
    fn delimiter_lines_change_the_delimiter_for_routines() {
        let script = "  DELIMITER $$\n\
                      CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW\n\
                      BEGIN\n  SET NEW.x = 'y';\n  SET NEW.z = 1;\nEND$$\n\
                      delimiter ;\n\
                      SELECT 2;";
        let got = sqls(script);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].0.starts_with("CREATE TRIGGER") && got[0].0.ends_with("END"));
        assert_eq!(got[0].1, 2);
        assert_eq!(got[1], ("SELECT 2".to_owned(), 8));
    }

    #[test]
    fn executable_comments_are_statement_text() {
        let got = sqls("/*!40101 SET @old = @@sql_mode */;\n/* plain */;\nSELECT 1");
        assert_eq!(
            got,
            [
                ("/*!40101 SET @old = @@sql_mode */".to_owned(), 1),
                ("SELECT 1".to_owned(), 3)
            ]
        );
        assert!(!commits_implicitly("/*!40101 SET @old = @@sql_mode */"));
        assert!(commits_implicitly("/*!50100 ALTER TABLE a ADD b INT */"));
    }

    #[test]
    fn text_outside_quotes_may_be_any_utf8() {
        assert_eq!(
            sqls("CREATE TABLE café (x INT);SELECT 1\u{a0};\n/* ✓ */ SELECT 'ü'"),
            [
                ("CREATE TABLE café (x INT)".to_owned(), 1),
                ("SELECT 1".to_owned(), 1),
                ("SELECT 'ü'".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn a_statement_starts_where_its_executable_comment_does() {
        assert_eq!(
            sqls("\n/*!40101 SET\n@a = 1 */;\n/*M!100401 SET @b = 2 */;"),
            [
                ("/*!40101 SET\n@a = 1 */".to_owned(), 2),
                ("/*M!100401 SET @b = 2 */".to_owned(), 4),
            ]
        );
    }

    #[test]
    fn a_delimiter_line_ends_a_statement_left_open() {
        let got = sqls("CREATE TABLE a (x INT)\nDELIMITER $$\nSELECT 1$$\nDELIMITER ;\n");
        assert_eq!(
            got,
            [
                ("CREATE TABLE a (x INT)".to_owned(), 1),
                ("SELECT 1".to_owned(), 3)
            ]
        );
    }

    #[test]
    fn a_double_dash_without_a_space_is_an_operator() {
        assert_eq!(sqls("SELECT 1--1;"), [("SELECT 1--1".to_owned(), 1)]);
    }

    #[test]
    fn unterminated_text_is_refused_with_its_line() {
        for (script, expected) in [
            ("SELECT 1;\nSELECT 'open", "line 2: a string (')"),
            ("SELECT `x", "line 1: a quoted identifier"),
            ("SELECT 1; /* open", "line 1: a comment"),
        ] {
            let err = split(script).unwrap_err();
            assert!(err.starts_with(expected), "{script:?}: {err}");
        }
        assert!(split("DELIMITER\nSELECT 1").is_err());
    }

    #[test]
    fn ddl_commits_and_temporary_tables_and_dml_do_not() {
        for sql in [
            "CREATE TABLE a (x INT)",
            "alter table a add y int",
            "DROP INDEX i ON a",
            "RENAME TABLE a TO b",
            "TRUNCATE a",
            "-- why\nCREATE INDEX i ON a (x)",
        ] {
            assert!(commits_implicitly(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO a VALUES (1)",
            "UPDATE a SET x = 1",
            "CREATE TEMPORARY TABLE t (x INT)",
            "DROP TEMPORARY TABLE t",
            "SET FOREIGN_KEY_CHECKS = 0",
        ] {
            assert!(!commits_implicitly(sql), "{sql}");
        }
    }
}
