//! AIP-158 pagination: `page_size` (0 means the default, larger than the maximum is
//! lowered to it, negative is an error) and opaque `page_token`s. Tokens carry a keyset
//! cursor — the sort key of the last row served — so pages stay stable while rows are added,
//! and a fingerprint of the query's filters, so a token cannot be replayed against a
//! different query.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::sha256_hex;
use crate::error::{ApiError, FieldViolations};

/// Page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page served.
pub const MAX_PAGE_SIZE: i64 = 1000;

const SEPARATOR: char = '\u{1f}';

/// A validated page request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows to return.
    pub size: i64,
    /// Sort key of the last row of the previous page.
    pub after: Option<Vec<String>>,
    fingerprint: String,
}

impl PageRequest {
    /// Validates `page_size` and `page_token` for a query whose filters are `filters`.
    pub fn parse(page_size: i32, page_token: &str, filters: &str) -> Result<Self, ApiError> {
        let mut violations = FieldViolations::default();
        if page_size < 0 {
            violations.add("page_size", "OUT_OF_RANGE", "page_size must not be negative");
        }
        let size = match i64::from(page_size) {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };
        let fingerprint = sha256_hex(filters.as_bytes())[..16].to_string();
        let mut after = None;
        if !page_token.is_empty() {
            let decoded = URL_SAFE_NO_PAD.decode(page_token).ok().and_then(|bytes| String::from_utf8(bytes).ok());
            let mut parts: Vec<String> =
                decoded.map(|text| text.split(SEPARATOR).map(str::to_string).collect()).unwrap_or_default();
            if parts.len() < 3 || parts[0] != "v1" {
                violations.add("page_token", "INVALID", "page_token is not a token this API issued");
            } else if parts[1] != fingerprint {
                violations.add("page_token", "MISMATCH", "page_token was issued for a query with other filters");
            } else {
                after = Some(parts.split_off(2));
            }
        }
        violations.check()?;
        Ok(Self { size, after, fingerprint })
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.size + 1
    }

    /// The cursor of a query whose sort key is one number (a sequence): `None` on the first
    /// page, an error for a token whose key is not a number.
    pub fn after_number(&self) -> Result<Option<i64>, ApiError> {
        let Some(key) = &self.after else { return Ok(None) };
        key.first().and_then(|number| number.parse().ok()).map(Some).ok_or_else(|| {
            ApiError::invalid_field("page_token", "INVALID", "page_token is not a token this API issued")
        })
    }

    /// Trims fetched rows to the page and returns the next page token (empty on the last page).
    pub fn finish<T>(&self, rows: &mut Vec<T>, sort_key: impl Fn(&T) -> Vec<String>) -> String {
        if rows.len() as i64 <= self.size {
            return String::new();
        }
        rows.truncate(self.size as usize);
        let last = rows.last().map(sort_key).unwrap_or_default();
        let mut parts = vec!["v1".to_string(), self.fingerprint.clone()];
        parts.extend(last);
        URL_SAFE_NO_PAD.encode(parts.join(&SEPARATOR.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_cap() {
        assert_eq!(PageRequest::parse(0, "", "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::parse(5000, "", "").unwrap().size, MAX_PAGE_SIZE);
        assert_eq!(PageRequest::parse(-1, "", "").unwrap_err().field_violations()[0].field, "page_size");
    }

    #[test]
    fn tokens_carry_the_cursor_and_belong_to_their_query() {
        let page = PageRequest::parse(2, "", "state=active").unwrap();
        let mut rows = vec![1, 2, 3];
        let token = page.finish(&mut rows, |row| vec![row.to_string(), "x".into()]);
        assert_eq!(rows, [1, 2]);
        let next = PageRequest::parse(2, &token, "state=active").unwrap();
        assert_eq!(next.after, Some(vec!["2".to_string(), "x".to_string()]));
        let other = PageRequest::parse(2, &token, "state=invited").unwrap_err();
        assert_eq!(other.field_violations()[0].reason, "MISMATCH");
        assert!(PageRequest::parse(2, "garbage!", "").is_err());
        let mut last = vec![1];
        assert_eq!(next.finish(&mut last, |row| vec![row.to_string()]), "");
        assert_eq!(next.after_number().unwrap(), Some(2));
        assert_eq!(page.after_number().unwrap(), None);
    }
}
