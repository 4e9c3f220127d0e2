//! Which tables a run of migrations leaves, read from their SQL: what a
//! `baseline` checks a database against before it records them as applied.
//!
//! A lexical scan, not a parser: `CREATE TABLE`, `DROP TABLE` and
//! `ALTER TABLE … RENAME TO` outside comments, strings and dollar-quoted
//! bodies (a function that creates a table at call time does not count).
//! Temporary tables and schema-qualified ones (`audit.log` may live in
//! another schema than the one introspection lists) do not count either;
//! `ALTER TABLE … SET SCHEMA` moves one out. A table made some other way
//! (`SELECT … INTO`, a procedure) is not seen. A table dropped or moved
//! where the scan cannot see it (inside `DO` or `EXECUTE`, or after a `SET
//! search_path`) is expected all the same: `baseline` then names it.

/// A token of SQL that matters here.
#[derive(Debug, PartialEq)]
enum Token {
    /// A bare word, upper-cased for keywords; the original spelling too.
    Word(String, String),
    /// A `"quoted"` identifier, unquoted.
    Quoted(String),
    Punct(char),
}

fn tokens(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'\'' => {
                // '' inside a string is a quote; a backslash may escape one
                // (E'' strings, MySQL): skip both kinds conservatively.
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                        b'\'' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'"' | b'`' => {
                let end = sql[i + 1..]
                    .find(c as char)
                    .map_or(bytes.len(), |n| i + 1 + n);
                out.push(Token::Quoted(sql[(i + 1).min(end)..end].to_owned()));
                i = end + 1;
            }
            b'$' => {
                // `$tag$ … $tag$`; a lone `$1` is a parameter.
                let tag_end = sql[i + 1..]
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(t)
                        if bytes[t] == b'$'
                            && !sql[i + 1..t].starts_with(|ch: char| ch.is_ascii_digit()) =>
                    {
                        let tag = &sql[i..=t];
                        i = sql[t + 1..]
                            .find(tag)
                            .map_or(bytes.len(), |n| t + 1 + n + tag.len());
                    }
                    _ => i += 1,
                }
            }
            _ => {
                let ch = sql[i..].chars().next().unwrap_or(' ');
                if ch.is_alphabetic() || ch == '_' {
                    let end = sql[i..]
                        .char_indices()
                        .find(|(_, ch)| !(ch.is_alphanumeric() || *ch == '_' || *ch == '$'))
                        .map_or(sql.len(), |(n, _)| i + n);
                    let word = &sql[i..end];
                    out.push(Token::Word(word.to_ascii_uppercase(), word.to_owned()));
                    i = end;
                } else {
                    if !ch.is_whitespace() {
                        out.push(Token::Punct(ch));
                    }
                    i += ch.len_utf8();
                }
            }
        }
    }
    out
}

/// The tables that `scripts`, run in order, leave in the schema: lower-case
/// unless created quoted, schema qualifiers dropped.
pub(crate) fn tables_left_by<'a>(scripts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut tables: Vec<String> = Vec::new();
    for sql in scripts {
        let tokens = tokens(sql);
        let mut i = 0;
        while i < tokens.len() {
            let at = |n: usize| match tokens.get(n) {
                Some(Token::Word(upper, _)) => upper.as_str(),
                _ => "",
            };
            // Only at the start of a statement.
            let starts = i == 0 || tokens[i - 1] == Token::Punct(';');
            if !starts {
                i += 1;
                continue;
            }
            match at(i) {
                "CREATE" => {
                    let mut j = i + 1;
                    if at(j) == "OR" && at(j + 1) == "REPLACE" {
                        j += 2;
                    }
                    if matches!(at(j), "GLOBAL" | "LOCAL") {
                        j += 1;
                    }
                    let temporary = matches!(at(j), "TEMP" | "TEMPORARY");
                    if temporary || at(j) == "UNLOGGED" {
                        j += 1;
                    }
                    if at(j) == "TABLE" {
                        j += 1;
                        if at(j) == "IF" && at(j + 1) == "NOT" && at(j + 2) == "EXISTS" {
                            j += 3;
                        }
                        // `other.t` may be in another schema than the one
                        // introspection lists: not checked.
                        let qualified = tokens.get(j + 1) == Some(&Token::Punct('.'));
                        if let (Some(name), false, false) =
                            (name_at(&tokens, j).0, temporary, qualified)
                        {
                            if !tables.contains(&name) {
                                tables.push(name);
                            }
                        }
                    }
                }
                "DROP" if at(i + 1) == "TABLE" => {
                    let mut j = i + 2;
                    if at(j) == "IF" && at(j + 1) == "EXISTS" {
                        j += 2;
                    }
                    loop {
                        let (name, next) = name_at(&tokens, j);
                        let Some(name) = name else { break };
                        tables.retain(|t| *t != name);
                        if tokens.get(next) != Some(&Token::Punct(',')) {
                            break;
                        }
                        j = next + 1;
                    }
                }
                "ALTER" if at(i + 1) == "TABLE" => {
                    let mut j = i + 2;
                    if at(j) == "IF" && at(j + 1) == "EXISTS" {
                        j += 2;
                    }
                    if at(j) == "ONLY" {
                        j += 1;
                    }
                    let (old, next) = name_at(&tokens, j);
                    match (old, at(next), at(next + 1)) {
                        (Some(old), "RENAME", "TO") => {
                            if let Some(new) = name_at(&tokens, next + 2).0 {
                                if let Some(t) = tables.iter_mut().find(|t| **t == old) {
                                    *t = new;
                                }
                            }
                        }
                        (Some(old), "SET", "SCHEMA") => tables.retain(|t| *t != old),
                        _ => {}
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    tables
}

/// The (possibly schema-qualified) name starting at token `i`, its last
/// part normalized, and the index after it.
fn name_at(tokens: &[Token], mut i: usize) -> (Option<String>, usize) {
    let mut last = None;
    loop {
        last = match tokens.get(i) {
            Some(Token::Word(_, original)) => Some(original.to_lowercase()),
            Some(Token::Quoted(name)) => Some(name.clone()),
            _ => return (last, i),
        };
        i += 1;
        if tokens.get(i) != Some(&Token::Punct('.')) {
            return (last, i);
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_drops_and_renames_are_followed_in_order() {
        let scripts = [
            "CREATE TABLE tenants (id INT); -- CREATE TABLE commented (x INT);\n\
             create table if not exists Users (id int, note text default 'CREATE TABLE no (x)');\n\
             CREATE TABLE audit.log (x INT);\n\
             CREATE TEMP TABLE scratch (x INT);\n\
             CREATE UNLOGGED TABLE \"Mixed Case\" (x INT);",
            "CREATE FUNCTION f() RETURNS void AS $$ CREATE TABLE inside (x INT); $$ LANGUAGE sql;\n\
             CREATE TABLE old_name (x INT);\nALTER TABLE old_name RENAME TO new_name;\n\
             ALTER TABLE tenants RENAME COLUMN id TO tenant_id;\n\
             CREATE TABLE moved (x INT); ALTER TABLE moved SET SCHEMA archive;",
            "DROP TABLE IF EXISTS gone, \"Mixed Case\"; /* DROP TABLE tenants; */\n\
             CREATE INDEX tenants_id ON tenants (id);",
        ];
        assert_eq!(tables_left_by(scripts), ["tenants", "users", "new_name"]);
        assert!(tables_left_by(["SELECT 'unterminated"]).is_empty());
        assert!(tables_left_by(["CREATE TABLE"]).is_empty());
    }
}
