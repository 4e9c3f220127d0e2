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

/// Whether `sql` may commit: everything but the statements known to run
/// inside a transaction (data changes, queries, `SET`, `DO`, temporary
/// tables). Unknown statements count as committing, which only costs the
/// journal a round trip: it commits before every such statement anyway.
pub(crate) fn commits_implicitly(sql: &str) -> bool {
    let (first, second) = first_words(sql);
    match first.as_str() {
        "CREATE" | "DROP" => second != "TEMPORARY",
        // `SET STATEMENT … FOR` runs a statement of any kind.
        "SET" => ["PASSWORD", "DEFAULT", "STATEMENT"].contains(&second.as_str()),
        "PREPARE" | "DEALLOCATE" => false,
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "SELECT" | "WITH" | "VALUES" | "TABLE"
        | "DO" | "HANDLER" | "EXPLAIN" | "DESCRIBE" | "DESC" | "SHOW" | "LOAD" | "(" => false,
        _ => true,
    }
}

/// What a statement leaves in the session alone, which a journaled script
/// that resumes in a new session does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionState {
    /// A setting or the current database (`SET sql_mode = …`, `SET NAMES`,
    /// `SET ROLE`, `USE`): the statement runs again, to the same effect.
    Replayed,
    /// A temporary table, a prepared statement or a user variable
    /// (`SET @x`, `SELECT … INTO @x`): running it again in a new session
    /// may give another value, so the script cannot resume after it.
    Lost,
}

/// What `sql` leaves in the session alone, if anything.
pub(crate) fn session_state(sql: &str) -> Option<SessionState> {
    let (first, second) = first_words(sql);
    let t: Vec<&str> = tokens(sql).collect();
    // `@x`, not `@@x` (a setting).
    let user_variable = (1..t.len())
        .any(|i| t[i] == "@" && t[i - 1] != "@" && t.get(i + 1).is_some_and(|n| *n != "@"));
    let reads_data = t.iter().any(|w| w.eq_ignore_ascii_case("SELECT"));
    match first.as_str() {
        "CREATE" | "DROP" if second == "TEMPORARY" => Some(SessionState::Lost),
        "PREPARE" | "DEALLOCATE" => Some(SessionState::Lost),
        "SET"
            if ["PASSWORD", "DEFAULT", "GLOBAL", "PERSIST", "STATEMENT"]
                .contains(&second.as_str()) =>
        {
            None
        }
        "SET" if user_variable || reads_data => Some(SessionState::Lost),
        "SET" | "USE" => Some(SessionState::Replayed),
        _ if user_variable && t.iter().any(|w| w.eq_ignore_ascii_case("INTO")) => {
            Some(SessionState::Lost)
        }
        _ => None,
    }
}

/// Whether `sql` leaves the session's settings and database as they were:
/// plain DDL and DML. A `SET`, `USE`, `CALL`, `EXECUTE` or anything else
/// may not, and the session is reset after the script.
pub(crate) fn keeps_session(sql: &str) -> bool {
    let (first, second) = first_words(sql);
    let plain = [
        "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "INSERT", "UPDATE", "DELETE", "REPLACE",
    ];
    plain.contains(&first.as_str()) && second != "TEMPORARY"
}

/// Transaction control and table locks, which would break the engine's
/// transaction and the journal: `BEGIN` (not MariaDB's `BEGIN NOT ATOMIC`
/// block), `START TRANSACTION`, `COMMIT`, `ROLLBACK`, savepoints, XA,
/// `LOCK TABLES` and `UNLOCK TABLES` (as `mysqldump` writes them), `FLUSH
/// TABLES WITH READ LOCK`, and `SET autocommit` or `completion_type`.
pub(crate) fn controls_transaction(sql: &str) -> bool {
    let (first, second) = first_words(sql);
    let mentions = |word: &str| {
        tokens(sql)
            .any(|t| t.eq_ignore_ascii_case(word) || t.eq_ignore_ascii_case(&format!("`{word}`")))
    };
    match first.as_str() {
        "BEGIN" => second != "NOT",
        "START" => second == "TRANSACTION",
        "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "XA" => true,
        "RELEASE" => second == "SAVEPOINT",
        "LOCK" | "UNLOCK" => ["TABLES", "TABLE"].contains(&second.as_str()),
        "FLUSH" => mentions("LOCK"),
        "SET" => mentions("autocommit") || mentions("completion_type"),
        _ => false,
    }
}

/// The first two tokens of `sql`, upper-cased.
fn first_words(sql: &str) -> (String, String) {
    let mut t = tokens(sql).map(str::to_ascii_uppercase);
    let first = t.next().unwrap_or_default();
    (first, t.next().unwrap_or_default())
}

/// The tokens of `sql` from its start: words (letters, digits, `_`, `$`),
/// quoted identifiers and strings as written, single punctuation marks.
/// Comments are skipped; an executable comment's text counts (MySQL runs
/// it).
pub(crate) fn tokens(sql: &str) -> impl Iterator<Item = &str> + '_ {
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
        if rest.starts_with("*/") {
            rest = &rest[2..];
            continue;
        }
        if rest.starts_with("/*") {
            rest = rest.find("*/").map_or("", |n| &rest[n + 2..]);
            continue;
        }
        let dash_comment = rest
            .strip_prefix("--")
            .is_some_and(|after| after.is_empty() || after.starts_with(char::is_whitespace));
        if rest.starts_with('#') || dash_comment {
            rest = rest.find('\n').map_or("", |n| &rest[n..]);
            continue;
        }
        let first = rest.chars().next()?;
        let end = match first {
            '`' | '\'' | '"' => quoted_end(rest.as_bytes(), 0, &mut 0).unwrap_or(rest.len()),
            c if c.is_alphanumeric() || c == '_' || c == '$' => rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(rest.len()),
            c => c.len_utf8(),
        };
        let (token, after) = rest.split_at(end);
        rest = after;
        return Some(token);
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
            "--\twhy\nALTER TABLE a ADD z INT",
            "CALL refill()",
            "SET PASSWORD = PASSWORD('x')",
        ] {
            assert!(commits_implicitly(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO a VALUES (1)",
            "UPDATE a SET x = 1",
            "CREATE TEMPORARY TABLE t (x INT)",
            "DROP TEMPORARY TABLE t",
            "SET FOREIGN_KEY_CHECKS = 0",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "LOAD DATA INFILE '/tmp/x' INTO TABLE a",
            "/*!40000 INSERT INTO a VALUES (2) */",
        ] {
            assert!(!commits_implicitly(sql), "{sql}");
        }
    }

    #[test]
    fn transaction_control_is_recognised() {
        for sql in [
            "BEGIN",
            "begin work",
            "START TRANSACTION READ WRITE",
            "COMMIT",
            "ROLLBACK TO SAVEPOINT s",
            "SAVEPOINT s",
            "RELEASE SAVEPOINT s",
            "XA START 'x'",
            "SET autocommit = 0",
            "SET @@session.AUTOCOMMIT = 0",
            "LOCK TABLES a WRITE",
            "UNLOCK TABLES",
            "FLUSH TABLES WITH READ LOCK",
            "SET completion_type = 2",
        ] {
            assert!(controls_transaction(sql), "{sql}");
        }
        for sql in [
            "BEGIN NOT ATOMIC SELECT 1; END",
            "SET FOREIGN_KEY_CHECKS = 0",
            "START SLAVE",
            "INSERT INTO a VALUES ('COMMIT')",
            "SET @x = 'autocommit'",
            "FLUSH TABLES a",
        ] {
            assert!(!controls_transaction(sql), "{sql}");
        }
    }

    #[test]
    fn session_statements_are_recognised() {
        use SessionState::{Lost, Replayed};
        for (sql, state) in [
            ("SET FOREIGN_KEY_CHECKS = 0", Some(Replayed)),
            ("SET @@session.sql_mode = ''", Some(Replayed)),
            ("SET NAMES utf8mb4", Some(Replayed)),
            ("USE other", Some(Replayed)),
            ("set @x = 1", Some(Lost)),
            ("SET sql_mode = (SELECT 'x')", Some(Lost)),
            ("CREATE TEMPORARY TABLE t AS SELECT 1", Some(Lost)),
            ("PREPARE s FROM @q", Some(Lost)),
            ("SELECT max(id) INTO @m FROM t", Some(Lost)),
            ("SET GLOBAL x = 1", None),
            (
                "SET STATEMENT max_statement_time = 1 FOR INSERT INTO t VALUES (1)",
                None,
            ),
            ("CREATE TABLE t (x INT)", None),
            ("INSERT INTO t VALUES (1)", None),
        ] {
            assert_eq!(session_state(sql), state, "{sql}");
        }
    }
}
