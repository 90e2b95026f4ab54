//! Encoded queries (`sysparm_query`), the subset the sync needs: conditions joined by `^`
//! (and), whole queries joined by `^NQ` (or), and `ORDERBY`/`ORDERBYDESC`. The client builds
//! them; the simulator parses and evaluates them, so both sides agree on one grammar.

use std::cmp::Ordering;
use std::fmt;

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `IN` a comma-separated list.
    In,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::In => "IN",
        }
    }
}

/// `field op value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// Column.
    pub field: String,
    /// Comparison.
    pub op: Op,
    /// Operand (for `IN`, comma-separated).
    pub value: String,
}

impl Condition {
    /// A condition.
    pub fn new(field: &str, op: Op, value: impl Into<String>) -> Self {
        Self { field: field.to_string(), op, value: value.into() }
    }

    /// Whether `actual` (the record's value, empty when absent) satisfies it. Values compare
    /// as text, which orders glide date-times and sys_ids correctly.
    pub fn holds(&self, actual: &str) -> bool {
        let ordering = actual.cmp(self.value.as_str());
        match self.op {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::In => self.value.split(',').any(|candidate| candidate == actual),
        }
    }
}

/// A query: any of `any_of` (each all of its conditions; none means every record), sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Alternatives joined by `^NQ`.
    pub any_of: Vec<Vec<Condition>>,
    /// Sort keys, `(field, descending)`.
    pub order_by: Vec<(String, bool)>,
}

impl Query {
    /// Records changed after the keyset position `after` (`sys_updated_on`, `sys_id`) and
    /// no later than `until`, oldest first and by sys_id within a second: pages that follow
    /// the last record seen cannot skip or repeat records when others change meanwhile.
    pub fn changed_between(after: Option<(&str, &str)>, until: &str) -> Self {
        let ceiling = Condition::new("sys_updated_on", Op::Le, until);
        let any_of = match after {
            None => vec![vec![ceiling]],
            Some((updated, id)) => vec![
                vec![Condition::new("sys_updated_on", Op::Gt, updated), ceiling.clone()],
                vec![Condition::new("sys_updated_on", Op::Eq, updated), Condition::new("sys_id", Op::Gt, id), ceiling],
            ],
        };
        Self { any_of, order_by: vec![("sys_updated_on".into(), false), ("sys_id".into(), false)] }
    }

    /// Every record with a sys_id after `after`, by sys_id (the id reconciliation's pages).
    pub fn ids_after(after: Option<&str>) -> Self {
        let any_of = after.map(|id| vec![vec![Condition::new("sys_id", Op::Gt, id)]]).unwrap_or_default();
        Self { any_of, order_by: vec![("sys_id".into(), false)] }
    }

    /// Parses an encoded query.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut query = Query::default();
        for alternative in text.split("^NQ") {
            let mut conditions = Vec::new();
            for term in alternative.split('^').filter(|term| !term.is_empty()) {
                if let Some(field) = term.strip_prefix("ORDERBYDESC") {
                    query.order_by.push((field_name(field)?, true));
                } else if let Some(field) = term.strip_prefix("ORDERBY") {
                    query.order_by.push((field_name(field)?, false));
                } else {
                    conditions.push(condition(term)?);
                }
            }
            if !conditions.is_empty() {
                query.any_of.push(conditions);
            }
        }
        Ok(query)
    }

    /// Whether a record matches; `value` reads a field of it.
    pub fn matches<'a>(&self, value: impl Fn(&str) -> &'a str) -> bool {
        self.any_of.is_empty()
            || self
                .any_of
                .iter()
                .any(|conditions| conditions.iter().all(|condition| condition.holds(value(&condition.field))))
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alternatives: Vec<String> = self
            .any_of
            .iter()
            .map(|conditions| {
                conditions
                    .iter()
                    .map(|c| format!("{}{}{}", c.field, c.op.symbol(), c.value))
                    .collect::<Vec<_>>()
                    .join("^")
            })
            .collect();
        let mut text = alternatives.join("^NQ");
        for (field, descending) in &self.order_by {
            if !text.is_empty() {
                text.push('^');
            }
            text.push_str(if *descending { "ORDERBYDESC" } else { "ORDERBY" });
            text.push_str(field);
        }
        f.write_str(&text)
    }
}

/// Column names are lowercase (custom ones too: `u_…`), so an operator such as `IN` ends one.
fn is_field_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'
}

fn field_name(text: &str) -> Result<String, String> {
    if !text.is_empty() && text.chars().all(is_field_char) {
        Ok(text.to_string())
    } else {
        Err(format!("invalid field name {text:?}"))
    }
}

fn condition(term: &str) -> Result<Condition, String> {
    let end = term.find(|c: char| !is_field_char(c)).unwrap_or(term.len());
    let (field, rest) = term.split_at(end);
    let field = field_name(field)?;
    for op in [Op::Ge, Op::Le, Op::Ne, Op::In, Op::Gt, Op::Lt, Op::Eq] {
        if let Some(value) = rest.strip_prefix(op.symbol()) {
            return Ok(Condition { field, op, value: value.to_string() });
        }
    }
    Err(format!("unsupported condition {term:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_queries_encode_and_parse_back() {
        let query = Query::changed_between(Some(("2024-01-01 10:00:00", "abc")), "2024-02-01 00:00:00");
        let text = query.to_string();
        assert_eq!(
            text,
            "sys_updated_on>2024-01-01 10:00:00^sys_updated_on<=2024-02-01 00:00:00^NQsys_updated_on=2024-01-01 10:00:00\
             ^sys_id>abc^sys_updated_on<=2024-02-01 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id"
        );
        assert_eq!(Query::parse(&text).unwrap(), query);
        assert_eq!(Query::parse(&Query::ids_after(None).to_string()).unwrap(), Query::ids_after(None));
    }

    #[test]
    fn conditions_evaluate_like_servicenow() {
        let query = Query::parse("sys_idINa,b^stateIN1^NQpriority>=3^ORDERBYDESCnumber").unwrap();
        assert_eq!(query.order_by, vec![("number".to_string(), true)]);
        let record = |id: &'static str, state: &'static str, priority: &'static str| {
            move |field: &str| match field {
                "sys_id" => id,
                "state" => state,
                "priority" => priority,
                _ => "",
            }
        };
        assert!(query.matches(record("a", "1", "1")));
        assert!(!query.matches(record("c", "1", "1")));
        assert!(query.matches(record("c", "2", "4")));
        assert!(Query::parse("na me=x").is_err());
        assert!(Query::parse("nameLIKEx").is_err());
        assert!(Query::parse("").unwrap().matches(|_| ""));
    }
}
