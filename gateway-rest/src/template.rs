//! Path templates of `google.api.http` (grpc-gateway's grammar):
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;   Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;   Verb = ":" LITERAL ;
//! ```
//!
//! A variable without a pattern matches one segment; `**` matches the rest of the path and
//! must come last. When several templates match, the one with literals earlier wins, so
//! `/insights/compare` beats `/insights/{instance_id}`.

use std::fmt;

/// What one path segment of a template accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: the rest of the path (zero or more segments).
    Rest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Unit {
    matcher: Matcher,
    /// Index into `variables` when this segment belongs to one.
    variable: Option<usize>,
}

/// Field paths bound by a matched template, in template order, with their decoded values.
pub type Bindings = Vec<(String, String)>;

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    source: String,
    units: Vec<Unit>,
    variables: Vec<String>,
    verb: Option<String>,
}

/// A template the grammar does not allow.
#[derive(Debug, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_field_path(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn parse_plain_segment(segment: &str, source: &str) -> Result<Matcher, TemplateError> {
    match segment {
        "*" => Ok(Matcher::One),
        "**" => Ok(Matcher::Rest),
        "" => Err(TemplateError(format!("{source}: empty segment"))),
        literal if literal.contains(['{', '}', '=', '*']) => {
            Err(TemplateError(format!("{source}: malformed segment {literal:?}")))
        }
        literal => Ok(Matcher::Literal(literal.to_string())),
    }
}

impl PathTemplate {
    /// Parses a template.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let body = source.strip_prefix('/').ok_or_else(|| TemplateError(format!("{source}: must start with /")))?;
        // A verb follows the last `:` outside braces.
        let (path, verb) = match body.rfind(':') {
            Some(index) if !body[index..].contains('}') => (&body[..index], Some(body[index + 1..].to_string())),
            _ => (body, None),
        };
        if verb.as_deref() == Some("") {
            return Err(TemplateError(format!("{source}: empty verb")));
        }
        let mut units = Vec::new();
        let mut variables = Vec::new();
        let mut rest = path;
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('{') {
                let end = inner.find('}').ok_or_else(|| TemplateError(format!("{source}: unclosed variable")))?;
                let (field, pattern) = match inner[..end].split_once('=') {
                    Some((field, pattern)) => (field, pattern),
                    None => (&inner[..end], "*"),
                };
                if !is_field_path(field) {
                    return Err(TemplateError(format!("{source}: {field:?} is not a field path")));
                }
                if variables.iter().any(|known| known == field) {
                    return Err(TemplateError(format!("{source}: {field} bound twice")));
                }
                variables.push(field.to_string());
                for segment in pattern.split('/') {
                    units.push(Unit {
                        matcher: parse_plain_segment(segment, source)?,
                        variable: Some(variables.len() - 1),
                    });
                }
                rest = &inner[end + 1..];
            } else {
                let end = rest.find('/').unwrap_or(rest.len());
                units.push(Unit { matcher: parse_plain_segment(&rest[..end], source)?, variable: None });
                rest = &rest[end..];
            }
            match rest.strip_prefix('/') {
                Some("") => return Err(TemplateError(format!("{source}: trailing /"))),
                Some(next) => rest = next,
                None if rest.is_empty() => {}
                None => return Err(TemplateError(format!("{source}: expected / after a variable"))),
            }
        }
        if let Some(position) = units.iter().position(|unit| unit.matcher == Matcher::Rest)
            && position != units.len() - 1
        {
            return Err(TemplateError(format!("{source}: ** must be the last segment")));
        }
        Ok(Self { source: source.to_string(), units, variables, verb })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Field paths of the variables, in order.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// The template in OpenAPI form: every variable as `{field.path}`.
    pub fn openapi_path(&self) -> String {
        let mut out = String::new();
        let mut index = 0;
        while index < self.units.len() {
            out.push('/');
            match self.units[index].variable {
                Some(variable) => {
                    out.push_str(&format!("{{{}}}", self.variables[variable]));
                    while index + 1 < self.units.len() && self.units[index + 1].variable == Some(variable) {
                        index += 1;
                    }
                }
                None => match &self.units[index].matcher {
                    Matcher::Literal(literal) => out.push_str(literal),
                    Matcher::One => out.push('*'),
                    Matcher::Rest => out.push_str("**"),
                },
            }
            index += 1;
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        out
    }

    /// How specific the template is, for choosing among matches: per segment, a literal
    /// outranks a one-segment wildcard, which outranks `**`; earlier segments weigh more.
    pub fn specificity(&self) -> Vec<u8> {
        let mut rank: Vec<u8> = self
            .units
            .iter()
            .map(|unit| match unit.matcher {
                Matcher::Literal(_) => 2,
                Matcher::One => 1,
                Matcher::Rest => 0,
            })
            .collect();
        rank.push(u8::from(self.verb.is_some()));
        rank
    }

    /// Matches a request path (already without query), returning each variable's value,
    /// percent-decoded (multi-segment values keep their `/`).
    pub fn matches(&self, path: &str) -> Option<Bindings> {
        let body = path.strip_prefix('/')?;
        let body = match &self.verb {
            Some(verb) => body.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => body,
        };
        let segments: Vec<&str> = if body.is_empty() { Vec::new() } else { body.split('/').collect() };
        let mut values: Vec<Vec<String>> = vec![Vec::new(); self.variables.len()];
        let mut position = 0;
        for unit in &self.units {
            let taken: Vec<&str> = match &unit.matcher {
                Matcher::Rest => {
                    let rest = segments[position..].to_vec();
                    position = segments.len();
                    rest
                }
                matcher => {
                    let segment = *segments.get(position)?;
                    position += 1;
                    if segment.is_empty() {
                        return None;
                    }
                    if let Matcher::Literal(literal) = matcher
                        && literal != segment
                    {
                        return None;
                    }
                    vec![segment]
                }
            };
            if let Some(variable) = unit.variable {
                for segment in taken {
                    values[variable].push(percent_decode(segment)?);
                }
            }
        }
        if position != segments.len() {
            return None;
        }
        Some(self.variables.iter().cloned().zip(values.into_iter().map(|parts| parts.join("/"))).collect())
    }
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        PathTemplate::parse(template).unwrap().matches(path)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn literals_and_simple_variables() {
        assert_eq!(
            bound("/api/v1/organizations/{org_id}", "/api/v1/organizations/abc"),
            Some(pairs(&[("org_id", "abc")]))
        );
        assert_eq!(bound("/api/v1/organizations/{org_id}", "/api/v1/organizations/abc/members"), None);
        assert_eq!(bound("/api/v1/organizations/{org_id}", "/api/v1/organizations/"), None);
        assert_eq!(bound("/api/v1/users", "/api/v1/users"), Some(vec![]));
        assert_eq!(bound("/api/v1/users", "/api/v1/users/x"), None);
    }

    #[test]
    fn nested_fields_patterns_and_trailing_double_wildcards() {
        assert_eq!(
            bound("/v1/parents/{parent.id}/items", "/v1/parents/p%2F1/items"),
            Some(pairs(&[("parent.id", "p/1")]))
        );
        assert_eq!(
            bound("/v1/{name=orgs/*/things/*}", "/v1/orgs/a/things/b"),
            Some(pairs(&[("name", "orgs/a/things/b")]))
        );
        assert_eq!(bound("/v1/{name=orgs/*/things/*}", "/v1/orgs/a/others/b"), None);
        assert_eq!(bound("/v1/files/{path=**}", "/v1/files/a/b/c.txt"), Some(pairs(&[("path", "a/b/c.txt")])));
        assert_eq!(bound("/v1/files/{path=**}", "/v1/files"), Some(pairs(&[("path", "")])));
        assert_eq!(bound("/v1/items/{id}:archive", "/v1/items/7:archive"), Some(pairs(&[("id", "7")])));
        assert_eq!(bound("/v1/items/{id}:archive", "/v1/items/7"), None);
    }

    #[test]
    fn literal_segments_outrank_variables() {
        let literal = PathTemplate::parse("/api/v1/insights/compare").unwrap();
        let variable = PathTemplate::parse("/api/v1/insights/{instance_id}").unwrap();
        assert!(literal.specificity() > variable.specificity());
        assert!(variable.matches("/api/v1/insights/compare").is_some(), "both match; specificity decides");
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in ["api", "/a//b", "/a/", "/{1x}", "/{a}/{a}", "/a/**/b", "/{a", "/x:", "/a{b}"] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn openapi_paths_collapse_patterns_into_their_variable() {
        let template = PathTemplate::parse("/v1/{name=orgs/*/things/*}/x:run").unwrap();
        assert_eq!(template.openapi_path(), "/v1/{name}/x:run");
    }
}
