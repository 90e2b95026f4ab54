//! Validation shared by services.

use complianceiq_proto::complianceiq::common::v1::TimeRange;

use crate::error::FieldViolations;
use crate::time;

/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;

/// Lower-cases and checks an email address: one `@`, a plausible local part, a domain
/// name with a dot. Returns the normalized form.
pub fn email(field: &str, value: &str, violations: &mut FieldViolations) -> String {
    let normalized = value.trim().to_lowercase();
    if normalized.is_empty() {
        violations.required(field);
        return normalized;
    }
    let valid = normalized.len() <= MAX_EMAIL
        && normalized.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && !local.starts_with('.')
                && !local.ends_with('.')
                && !local.contains("..")
                && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
                && is_domain_name(domain)
        });
    if !valid {
        violations.add(field, "INVALID_FORMAT", format!("{field} must be an email address like name@example.com"));
    }
    normalized
}

/// A DNS name of at least two labels, letters, digits and inner hyphens.
pub fn is_domain_name(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels.last().is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_lowercase()))
}

/// A request's `period` as `[start, end)` in microseconds; an unset side is `default`'s.
pub fn period(violations: &mut FieldViolations, period: Option<&TimeRange>, default: (i64, i64)) -> (i64, i64) {
    let start = period.and_then(|p| p.start_time.as_ref()).map_or(default.0, time::from_timestamp);
    let end = period.and_then(|p| p.end_time.as_ref()).map_or(default.1, time::from_timestamp);
    if start >= end {
        violations.add("period", "INVALID", "period must end after it starts");
    }
    (start, end)
}

/// The words of `text`, lowercased, split at anything not a letter or digit: how full-text
/// search splits both what it stores and what it is asked, so every store tokenizes alike.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase).collect()
}

/// The words of a search `query` (field `query`), at most `max_chars` characters and
/// `max_words` words; a query of punctuation alone is refused.
pub fn search_words(violations: &mut FieldViolations, query: &str, max_chars: usize, max_words: usize) -> Vec<String> {
    let found = words(query);
    if query.chars().count() > max_chars || found.len() > max_words {
        violations.add(
            "query",
            "TOO_LONG",
            format!("query holds at most {max_chars} characters and {max_words} words"),
        );
    } else if !query.trim().is_empty() && found.is_empty() {
        violations.add("query", "NO_WORDS", "query has no words to search for");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_or_refused() {
        let mut violations = FieldViolations::default();
        assert_eq!(email("email", "  Ada@Example.COM ", &mut violations), "ada@example.com");
        assert!(violations.is_empty());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada..x@example.com",
            "ada@exa_mple.com",
        ] {
            let mut violations = FieldViolations::default();
            email("email", bad, &mut violations);
            assert!(!violations.is_empty(), "{bad:?}");
        }
    }
}
