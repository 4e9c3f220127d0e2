//! What a DDL statement changes, and those objects' definitions: the
//! journal records them before a statement that commits, so that a rerun
//! after a crash can tell whether that statement ran (the definitions
//! changed) or not (they did not), instead of guessing from an error.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use dbinit_core::CoreError;

use crate::error::{self, code, server_code};
use crate::split::tokens;

/// A schema object, as `SHOW CREATE` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Object {
    /// A table, view or sequence.
    Table(String),
    Trigger(String),
    Procedure(String),
    Function(String),
}

/// The objects `sql` creates, alters, drops or renames; `None` for a
/// statement whose effect cannot be read back this way (`GRANT`, `CALL`,
/// `CREATE USER`, …).
pub(crate) fn targets(sql: &str) -> Option<Vec<Object>> {
    let t: Vec<&str> = tokens(sql).take(64).collect();
    let is = |i: usize, word: &str| t.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    // The kind keyword names what the statement is about; only modifiers
    // may come before it: `OR REPLACE`, `DEFINER = user@host`,
    // `ALGORITHM = …`, `SQL SECURITY …`, `UNIQUE`, `ONLINE`, …
    let kinds = [
        "TABLE",
        "VIEW",
        "SEQUENCE",
        "INDEX",
        "TRIGGER",
        "PROCEDURE",
        "FUNCTION",
    ];
    let modifiers = [
        "OR",
        "REPLACE",
        "DEFINER",
        "=",
        "@",
        "CURRENT_USER",
        "(",
        ")",
        "ALGORITHM",
        "MERGE",
        "TEMPTABLE",
        "UNDEFINED",
        "SQL",
        "SECURITY",
        "INVOKER",
        "UNIQUE",
        "FULLTEXT",
        "SPATIAL",
        "ONLINE",
        "OFFLINE",
        "IGNORE",
        "AGGREGATE",
    ];
    let modifier = |w: &str| {
        modifiers.iter().any(|m| w.eq_ignore_ascii_case(m)) || w.starts_with(['`', '\'', '"'])
    };
    let verb = t.first()?.to_ascii_uppercase();
    let (at, kind) = match verb.as_str() {
        "CREATE" | "ALTER" | "DROP" => {
            // A bare value after `=` or `@`: `ALGORITHM = MERGE`, `root@localhost`.
            let value = |i: usize| i > 1 && (t[i - 1] == "=" || t[i - 1] == "@");
            let at = (1..t.len()).find(|&i| !modifier(t[i]) && !value(i))?;
            (at, *kinds.iter().find(|k| is(at, k))?)
        }
        "RENAME" if is(1, "TABLE") => (1, "TABLE"),
        "TRUNCATE" => (usize::from(is(1, "TABLE")), "TABLE"),
        _ => return None,
    };
    if t.iter().any(|w| w.eq_ignore_ascii_case("SONAME")) {
        // A loadable function: `SHOW CREATE FUNCTION` does not show it.
        return None;
    }
    let mut i = at + 1;
    while is(i, "IF") || is(i, "NOT") || is(i, "EXISTS") {
        i += 1;
    }
    let mut names = Vec::new();
    if kind == "INDEX" {
        // `… INDEX name [USING …] ON table`: the table changes.
        i = (i..t.len()).find(|&j| is(j, "ON"))? + 1;
    }
    loop {
        let (name, next) = name_at(&t, i)?;
        names.push(name);
        // `DROP TABLE a, b`; `RENAME TABLE a TO b, c TO d`.
        i = if is(next, "TO") || t.get(next) == Some(&",") {
            next + 1
        } else {
            break;
        };
    }
    Some(
        names
            .into_iter()
            .map(|n| match kind {
                "TRIGGER" => Object::Trigger(n),
                "PROCEDURE" => Object::Procedure(n),
                "FUNCTION" => Object::Function(n),
                _ => Object::Table(n),
            })
            .collect(),
    )
}

/// The possibly qualified name at token `i` (`t`, `` `t` ``, `db.t`), and
/// the index after it.
fn name_at(t: &[&str], i: usize) -> Option<(String, usize)> {
    let name = |j: usize| {
        t.get(j).copied().filter(|s| {
            s.starts_with('`')
                || s.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        })
    };
    let first = name(i)?;
    if t.get(i + 1) == Some(&".") {
        return Some((format!("{first}.{}", name(i + 2)?), i + 3));
    }
    Some((first.to_owned(), i + 1))
}

/// The objects' definitions now, as one checksum: `SHOW CREATE` of each,
/// or a mark for one that does not exist.
///
/// # Errors
///
/// Any other error (a lock wait, `KILL QUERY`): what it would hash says
/// nothing of the definitions.
pub(crate) async fn fingerprint(conn: &mut Conn, objects: &[Object]) -> Result<String, CoreError> {
    let mut text = String::new();
    for object in objects {
        let (sql, missing) = match object {
            Object::Table(n) => (format!("SHOW CREATE TABLE {n}"), code::NO_SUCH_TABLE),
            Object::Trigger(n) => (format!("SHOW CREATE TRIGGER {n}"), 1360),
            Object::Procedure(n) => (format!("SHOW CREATE PROCEDURE {n}"), 1305),
            Object::Function(n) => (format!("SHOW CREATE FUNCTION {n}"), 1305),
        };
        match conn.query_first::<mysql_async::Row, _>(sql).await {
            Ok(row) => {
                for value in row.map(mysql_async::Row::unwrap).unwrap_or_default() {
                    text.push_str(&without_counters(&value.as_sql(true)));
                    text.push('\u{1f}');
                }
            }
            Err(e) if server_code(&e) == Some(missing) => text.push_str("(none)"),
            Err(e) => return Err(error::classify("cannot read what a statement changes", e)),
        }
        text.push('\u{1e}');
    }
    Ok(format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    ))
}

/// A definition without what data changes move: ` AUTO_INCREMENT=N`.
fn without_counters(definition: &str) -> String {
    match definition.find(" AUTO_INCREMENT=") {
        Some(at) => {
            let rest = &definition[at + 16..];
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            format!("{}{}", &definition[..at], &rest[digits..])
        }
        None => definition.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(names: &[&str]) -> Option<Vec<Object>> {
        Some(
            names
                .iter()
                .map(|n| Object::Table((*n).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn the_objects_a_statement_changes_are_read_from_its_head() {
        assert_eq!(
            targets("CREATE TABLE IF NOT EXISTS `a b` (x INT)"),
            tables(&["`a b`"])
        );
        assert_eq!(
            targets("alter online table db.t add c int"),
            tables(&["db.t"])
        );
        assert_eq!(
            targets("DROP TABLE IF EXISTS a, `b`"),
            tables(&["a", "`b`"])
        );
        assert_eq!(
            targets("RENAME TABLE a TO b, c TO d"),
            tables(&["a", "b", "c", "d"])
        );
        assert_eq!(
            targets("CREATE UNIQUE INDEX i USING BTREE ON t (x)"),
            tables(&["t"])
        );
        assert_eq!(targets("DROP INDEX IF EXISTS i ON t"), tables(&["t"]));
        assert_eq!(targets("TRUNCATE t"), tables(&["t"]));
        assert_eq!(
            targets("CREATE OR REPLACE ALGORITHM=MERGE DEFINER=`u`@`%` VIEW v AS SELECT 1"),
            tables(&["v"])
        );
        assert_eq!(
            targets("CREATE DEFINER = 'table'@'%' TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @x = 1"),
            Some(vec![Object::Trigger("tr".to_owned())])
        );
        assert_eq!(
            targets("CREATE DEFINER=root@localhost SQL SECURITY INVOKER VIEW v AS SELECT 1"),
            tables(&["v"])
        );
        assert_eq!(
            targets("/*!50003 CREATE PROCEDURE p() BEGIN END */"),
            Some(vec![Object::Procedure("p".to_owned())])
        );
        for unknown in [
            "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO TRUNCATE TABLE log",
            "CREATE FUNCTION f RETURNS INTEGER SONAME 'f.so'",
            "GRANT SELECT ON t TO u",
            "CALL p()",
            "CREATE USER u",
            "CREATE TEMPORARY TABLE t (x INT)",
            "ANALYZE TABLE t",
        ] {
            assert_eq!(targets(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn counters_do_not_change_a_definition() {
        assert_eq!(
            without_counters(
                "CREATE TABLE t (…) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=x"
            ),
            "CREATE TABLE t (…) ENGINE=InnoDB DEFAULT CHARSET=x"
        );
    }
}
