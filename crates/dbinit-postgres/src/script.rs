//! Migration scripts on PostgreSQL: what only PostgreSQL needs around the
//! engine's `execute_migration`.
//!
//! A small lexer (quotes, dollar quotes, comments, `BEGIN ATOMIC` bodies)
//! splits a script into statements, so that
//! - a script that controls transactions itself (`COMMIT`, `BEGIN`, ...) is
//!   refused before it runs: it would commit part of a migration without
//!   its history row;
//! - a `-- dbinit:no-transaction` script runs statement by statement, as
//!   `psql` does (a multi-statement simple query is one implicit transaction,
//!   where `CREATE INDEX CONCURRENTLY` is not allowed);
//! - an error names the line of the file.
//!
//! Hand-written: SQL parser crates refuse PostgreSQL syntax they do not know
//! (and a migration must not be refused for that); only statement
//! boundaries are needed here.

use dbinit_core::{CoreError, Script};
use tokio_postgres::Client;

use crate::error;

/// One statement of a script: its text and where it starts (byte offset).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Statement<'a> {
    pub(crate) text: &'a str,
    pub(crate) start: usize,
}

/// The script's statements, without the ones that hold only comments.
///
/// A `;` ends a statement only outside quotes, comments, parentheses (a
/// multi-action `CREATE RULE`) and a SQL-standard function body: `BEGIN
/// ATOMIC`, as two adjacent words of a `CREATE` statement, opens one; its
/// `END` (after any `CASE ... END`) closes it.
pub(crate) fn split(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut has_code = false;
    let mut parens = 0usize;
    // Inside a `BEGIN ATOMIC ... END` body: 1 + open `CASE`s.
    let mut atomic = 0usize;
    let mut first_word: Option<String> = None;
    // The previous token, when it was a word (punctuation clears it).
    let mut prev_word: Option<String> = None;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match c {
            b'-' if next == Some(b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'E' | b'e') && !is_word(sql, i - 1);
                i = skip_quoted(bytes, i, b'\'', escapes);
                (has_code, prev_word) = (true, None);
                continue;
            }
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false);
                (has_code, prev_word) = (true, None);
                continue;
            }
            b'$' => {
                if let Some(end) = skip_dollar_quoted(sql, i) {
                    i = end;
                    (has_code, prev_word) = (true, None);
                    continue;
                }
            }
            b'(' => parens += 1,
            b')' => parens = parens.saturating_sub(1),
            b';' if atomic == 0 && parens == 0 => {
                if has_code {
                    out.push(Statement {
                        text: &sql[start..=i],
                        start,
                    });
                }
                start = i + 1;
                (has_code, first_word, prev_word) = (false, None, None);
                i += 1;
                continue;
            }
            _ => {}
        }
        let ch = sql[i..].chars().next().unwrap_or(' ');
        if ch.is_alphabetic() || ch == '_' {
            let end = i + sql[i..]
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '$'))
                .map_or(sql.len() - i, |(n, _)| n);
            let word = sql[i..end].to_ascii_uppercase();
            if atomic > 0 {
                // `begin` may be a column name; `case` and `end` are reserved.
                match word.as_str() {
                    "CASE" => atomic += 1,
                    "END" => atomic -= 1,
                    _ => {}
                }
            } else if word == "ATOMIC"
                && prev_word.as_deref() == Some("BEGIN")
                && first_word.as_deref() == Some("CREATE")
            {
                atomic = 1;
            }
            first_word.get_or_insert_with(|| word.clone());
            prev_word = Some(word);
            has_code = true;
            i = end;
            continue;
        }
        if !c.is_ascii_whitespace() {
            has_code = true;
            prev_word = None;
        }
        i += ch.len_utf8().max(1);
    }
    if has_code {
        out.push(Statement {
            text: &sql[start..],
            start,
        });
    }
    out
}

/// Whether the character before byte `i` belongs to an identifier (Unicode
/// letters included: `café$$x` is an identifier, not a dollar quote).
fn is_word(sql: &str, i: usize) -> bool {
    sql[..i]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash_escapes => i += 2,
            b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `$tag$ ... $tag$`: the end of the quoted text, or `None` when the `$` at
/// `i` does not open a dollar quote (a parameter like `$1`).
fn skip_dollar_quoted(sql: &str, i: usize) -> Option<usize> {
    let bytes = sql.as_bytes();
    if is_word(sql, i) {
        return None;
    }
    let tag_len = bytes[i + 1..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b >= 0x80)
        .count();
    if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) || bytes.get(i + 1 + tag_len) != Some(&b'$')
    {
        return None;
    }
    let tag = &sql[i..i + tag_len + 2];
    let body = i + tag.len();
    Some(
        sql[body..]
            .find(tag)
            .map_or(sql.len(), |n| body + n + tag.len()),
    )
}

/// The first statement that controls transactions, as `(keyword, start)`.
fn transaction_control<'a>(statements: &[Statement<'a>]) -> Option<(String, usize)> {
    statements.iter().find_map(|s| {
        let words = leading_words(s.text);
        let first = words.first()?.as_str();
        let second = words.get(1).map(String::as_str);
        let controls = match first {
            "BEGIN" => second != Some("ATOMIC"),
            "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => true,
            "START" => second == Some("TRANSACTION"),
            "PREPARE" => second == Some("TRANSACTION"),
            _ => false,
        };
        let leading = s.text.len() - s.text.trim_start().len();
        controls.then(|| (words.join(" "), s.start + leading))
    })
}

/// The first `COPY … FROM STDIN` or `… TO STDOUT`, by where it starts: its
/// rows would come from (or go to) psql, and over the protocol dbinit
/// speaks the server would wait for a copy stream that never comes.
fn copy_with_client(statements: &[Statement<'_>]) -> Option<usize> {
    statements.iter().find_map(|s| {
        if leading_words(s.text).first().map(String::as_str) != Some("COPY") {
            return None;
        }
        let bytes = s.text.as_bytes();
        let mut i = 0;
        // The word before this one: only `FROM STDIN` and `TO STDOUT` count
        // (a column may be named `stdin`).
        let mut previous = "";
        while i < bytes.len() {
            match bytes[i] {
                b'\'' | b'"' => i = skip_quoted(bytes, i, bytes[i], false),
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    i = s.text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
                c if c.is_ascii_alphanumeric() || c == b'_' => {
                    let end = (i..bytes.len())
                        .find(|&j| !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_'))
                        .unwrap_or(bytes.len());
                    let word = &s.text[i..end];
                    let streamed = (previous.eq_ignore_ascii_case("FROM")
                        && word.eq_ignore_ascii_case("STDIN"))
                        || (previous.eq_ignore_ascii_case("TO")
                            && word.eq_ignore_ascii_case("STDOUT"));
                    if streamed {
                        let leading = s.text.len() - s.text.trim_start().len();
                        return Some(s.start + leading);
                    }
                    previous = word;
                    i = end;
                }
                c if c.is_ascii_whitespace() => i += 1,
                _ => {
                    previous = "";
                    i += 1;
                }
            }
        }
        None
    })
}

/// The first two words of a statement, upper-cased, comments skipped.
fn leading_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = text;
    while words.len() < 2 {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if rest.starts_with("/*") {
            rest = &rest[skip_block_comment(rest.as_bytes(), 0)..];
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if word.is_empty() {
                break;
            }
            rest = &rest[word.len()..];
            words.push(word.to_ascii_uppercase());
        }
    }
    words
}

/// 1-based line of byte offset `at` in `sql`.
fn line_of(sql: &str, at: usize) -> usize {
    sql[..at.min(sql.len())].matches('\n').count() + 1
}

/// Runs a migration script (see the module docs).
pub(crate) async fn run(client: &Client, script: Script<'_>) -> Result<(), CoreError> {
    let statements = split(script.sql);
    if let Some((words, at)) = transaction_control(&statements) {
        return Err(CoreError::MigrationFailed {
            file: script.file.to_owned(),
            message: format!(
                "it controls transactions itself (`{words}` at line {}); dbinit runs every \
                 migration in its own transaction: remove those statements, or make the \
                 first line `-- dbinit:no-transaction` to run it statement by statement",
                line_of(script.sql, at)
            ),
            source: None,
        });
    }
    if let Some(at) = copy_with_client(&statements) {
        return Err(CoreError::MigrationFailed {
            file: script.file.to_owned(),
            message: format!(
                "`COPY … FROM STDIN` (or `TO STDOUT`) at line {} streams rows through psql, \
                 which a migration does not have; nothing of this file ran. Load the rows \
                 with a data file (seeds/), COPY … FROM a file on the server, or INSERT them",
                line_of(script.sql, at)
            ),
            source: None,
        });
    }
    if script.in_transaction {
        return client
            .batch_execute(script.sql)
            .await
            .map_err(|e| failure(&script, 0, e));
    }
    for statement in &statements {
        client
            .batch_execute(statement.text)
            .await
            .map_err(|e| failure(&script, statement.start, e))?;
    }
    Ok(())
}

/// The server's message for a failed script, with the line it points at
/// (`offset`: where the text sent to the server starts in the file).
fn failure(script: &Script<'_>, offset: usize, e: tokio_postgres::Error) -> CoreError {
    if e.as_db_error().is_none() {
        // The connection, not the script: keep its kind (unreachable, ...).
        return error::classify(format!("cannot run {}", script.file), e);
    }
    let mut message = error::describe(&e);
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) =
        e.as_db_error().and_then(|d| d.position())
    {
        // The server counts characters from 1.
        let chars = (*pos as usize).saturating_sub(1);
        let sent = &script.sql[offset..];
        let at = sent
            .char_indices()
            .nth(chars)
            .map_or(sent.len(), |(i, _)| i);
        message.push_str(&format!(" at line {}", line_of(script.sql, offset + at)));
    }
    CoreError::MigrationFailed {
        file: script.file.to_owned(),
        message,
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        split(sql)
            .iter()
            .map(|s| s.text.trim().to_owned())
            .collect()
    }

    #[test]
    fn statements_split_outside_quotes_comments_and_bodies() {
        let sql = "CREATE TABLE a (x TEXT DEFAULT 'a;b');\n\
            -- a comment; with a semicolon\n\
            /* block; /* nested; */ still */\n\
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END; $body$;\n\
            CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END;\n\
            SELECT E'it\\'s; fine', \"odd;name\", $1\n";
        let got = texts(sql);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[2].ends_with("SELECT 2; END;"), "{}", got[2]);
        assert!(got[3].starts_with("SELECT E'it"), "{}", got[3]);
        assert!(texts("-- only a comment\n/* and another */").is_empty());
        assert!(texts("").is_empty());
    }

    #[test]
    fn transaction_control_is_found_but_not_inside_bodies() {
        let found = |sql: &str| transaction_control(&split(sql)).map(|(w, _)| w);
        assert_eq!(
            found("CREATE TABLE a (x INT);\nCOMMIT;\n"),
            Some("COMMIT".into())
        );
        assert_eq!(found("begin; select 1;"), Some("BEGIN".into()));
        assert_eq!(
            found("START TRANSACTION;"),
            Some("START TRANSACTION".into())
        );
        assert_eq!(found("/* x */ END;"), Some("END".into()));
        assert_eq!(
            found("DO $$ BEGIN PERFORM 1; END $$; CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;"),
            None
        );
        assert_eq!(found("SELECT 'COMMIT;'; -- ROLLBACK;\n"), None);
        // Found by review: words that only look like a body's start.
        assert_eq!(
            found("CREATE TABLE begin(atomic int);\nCREATE TABLE kept(x int);\nCOMMIT;"),
            Some("COMMIT".into())
        );
        assert_eq!(
            found(
                "CREATE TABLE t(begin int);\nCREATE FUNCTION f() RETURNS int LANGUAGE sql \
                   BEGIN ATOMIC SELECT begin FROM t; END;\nCOMMIT;"
            ),
            Some("COMMIT".into())
        );
        assert_eq!(
            found("CREATE TABLE café$$x(a int); COMMIT; CREATE TABLE ü$$y(a int);"),
            Some("COMMIT".into())
        );
        // ... and a long function header is still a body, not a transaction.
        assert_eq!(
            found(
                "CREATE FUNCTION add2(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE \
                   BEGIN ATOMIC SELECT a + b; END;"
            ),
            None
        );
    }

    #[test]
    fn copy_through_the_client_is_found_only_in_a_copy() {
        let at = |sql: &str| copy_with_client(&split(sql)).map(|at| line_of(sql, at));
        assert_eq!(
            at("CREATE TABLE t (a int);\n  copy t (a) FROM stdin;\n1\n\\.\n"),
            Some(2)
        );
        assert_eq!(at("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv);"), Some(1));
        assert_eq!(at("COPY t FROM '/srv/stdin.csv';"), None);
        assert_eq!(at("COPY t FROM PROGRAM 'cat' -- stdin\n;"), None);
        assert_eq!(at("SELECT 'COPY t FROM STDIN';"), None);
        assert_eq!(at("CREATE TABLE stdin (a int);"), None);
        assert_eq!(at("COPY t (stdin, b) FROM '/srv/t.csv';"), None);
        assert_eq!(at("COPY t FROM 1stdin;"), None);
        assert_eq!(at("COPY t FROM /* psql's */ STDIN;"), Some(1));
    }

    #[test]
    fn parentheses_keep_multi_action_rules_whole() {
        let got = texts(
            "CREATE TABLE t(a int);\nCREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b);",
        );
        assert_eq!(got.len(), 2, "{got:#?}");
    }

    #[test]
    fn lines_are_counted_from_the_file() {
        let sql = "SELECT 1;\nSELECT 2;\nCOMMIT;";
        let (_, at) = transaction_control(&split(sql)).unwrap();
        assert_eq!(line_of(sql, at), 3);
    }
}
