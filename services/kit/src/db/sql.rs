//! Statement text for set-wise writes: many rows or ids per statement, every value bound.

use super::Backend;

/// The text of a statement with many parameters, for `backend`. On SQLite, `$1 … $n` written
/// once each and in order become bare `?`: sqlx binds a named SQLite parameter after looking
/// its name up in the statement's list, a linear search, so binding a statement of thousands
/// of `$n` costs time quadratic in them; bare ones it binds by position. Text that uses a
/// parameter twice or out of order is left as it is (correct, only slower to bind).
pub fn statement(backend: Backend, text: String) -> String {
    if backend != Backend::Sqlite {
        return text;
    }
    let bytes = text.as_bytes();
    let mut positional = String::with_capacity(text.len());
    let (mut expected, mut copied, mut at, mut in_literal) = (1usize, 0, 0, false);
    while at < bytes.len() {
        match bytes[at] {
            b'\'' => in_literal = !in_literal,
            b'$' if !in_literal => {
                let digits = bytes[at + 1..].iter().take_while(|byte| byte.is_ascii_digit()).count();
                if digits > 0 {
                    if text[at + 1..at + 1 + digits].parse::<usize>().ok() != Some(expected) {
                        return text;
                    }
                    positional.push_str(&text[copied..at]);
                    positional.push('?');
                    expected += 1;
                    at += 1 + digits;
                    copied = at;
                    continue;
                }
            }
            _ => {}
        }
        at += 1;
    }
    positional.push_str(&text[copied..]);
    positional
}

/// `($first, $first+1, …)` for `rows` rows of `columns` parameters.
pub fn placeholders(first: usize, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> =
                (0..columns).map(|column| format!("${}", first + row * columns + column)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds `ids` after the parameters already bound (the `IN (…)` list of [`list`]).
pub fn bind_ids<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ids: &'q [&'q str],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for id in ids {
        query = query.bind(*id);
    }
    query
}

/// `$first, …` for a list of `count`.
pub fn list(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_and_lists_in_order() {
        assert_eq!(placeholders(1, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(list(4, 3), "$4, $5, $6");
    }

    #[test]
    fn sqlite_statements_bind_by_position_only_when_that_binds_the_same() {
        let text = || format!("SELECT a FROM t WHERE b = $1 AND c = '$9' AND d IN ({})", list(2, 2));
        assert_eq!(statement(Backend::Sqlite, text()), "SELECT a FROM t WHERE b = ? AND c = '$9' AND d IN (?, ?)");
        assert_eq!(statement(Backend::Postgres, text()), text());
        for kept in ["UPDATE t SET a = $2 WHERE b = $1", "SELECT $1, $2 WHERE $1 > 0", "SELECT $1, $3"] {
            assert_eq!(statement(Backend::Sqlite, kept.to_string()), kept);
        }
    }
}
