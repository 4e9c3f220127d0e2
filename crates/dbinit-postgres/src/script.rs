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
pub(crate) fn split(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut has_code = false;
    // Inside a `BEGIN ATOMIC ... END` body: the depth of BEGIN/CASE ... END.
    let mut atomic = 0usize;
    let mut words: Vec<String> = Vec::new();
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
                let escapes =
                    i > 0 && matches!(bytes[i - 1], b'E' | b'e') && !is_word(bytes, i - 1);
                i = skip_quoted(bytes, i, b'\'', escapes);
                has_code = true;
                continue;
            }
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false);
                has_code = true;
                continue;
            }
            b'$' => {
                if let Some(end) = skip_dollar_quoted(sql, i) {
                    i = end;
                    has_code = true;
                    continue;
                }
            }
            b';' if atomic == 0 => {
                if has_code {
                    out.push(Statement {
                        text: &sql[start..=i],
                        start,
                    });
                }
                start = i + 1;
                has_code = false;
                words.clear();
                i += 1;
                continue;
            }
            _ => {}
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let end = i + bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'$')
                .count();
            let word = sql[i..end].to_ascii_uppercase();
            if atomic > 0 {
                match word.as_str() {
                    "BEGIN" | "CASE" => atomic += 1,
                    "END" => atomic -= 1,
                    _ => {}
                }
            } else if word == "ATOMIC" && words.last().is_some_and(|w| w == "BEGIN") {
                atomic = 1;
            }
            if words.len() < 8 {
                words.push(word);
            }
            has_code = true;
            i = end;
            continue;
        }
        if !c.is_ascii_whitespace() {
            has_code = true;
        }
        i += 1;
    }
    if has_code {
        out.push(Statement {
            text: &sql[start..],
            start,
        });
    }
    out
}

fn is_word(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
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
    if is_word(bytes, i) {
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
    }

    #[test]
    fn lines_are_counted_from_the_file() {
        let sql = "SELECT 1;\nSELECT 2;\nCOMMIT;";
        let (_, at) = transaction_control(&split(sql)).unwrap();
        assert_eq!(line_of(sql, at), 3);
    }
}
