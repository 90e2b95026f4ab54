//! Instances as the service keeps them, and the rules for what a request may set.

use std::collections::BTreeSet;

use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::instance::v1::{
    AuthType, Credentials, HealthStatus, Instance, InstanceState, credentials,
};
use complianceiq_servicenow::{Credentials as SnCredentials, NetworkAccess, tables};
use prost_types::FieldMask;
use serde_json::json;

const MAX_SYNC_INTERVAL: i64 = 7 * 24 * 60;

/// An instance as stored (credentials stay sealed here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRecord {
    pub id: String,
    pub name: String,
    pub url: String,
    pub auth_type: String,
    pub credentials_sealed: Option<String>,
    pub state: String,
    pub health_status: String,
    pub sync_interval_minutes: i64,
    pub tables: Vec<String>,
    pub last_sync_at: Option<i64>,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl InstanceRecord {
    /// The version tag clients send back to update or delete safely.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }

    /// The contract's view: never the credentials.
    pub fn to_proto(&self, organization: &str) -> Instance {
        Instance {
            id: self.id.clone(),
            organization_id: organization.to_string(),
            name: self.name.clone(),
            url: self.url.clone(),
            auth_type: auth_type_from(&self.auth_type) as i32,
            credentials: None,
            has_credentials: self.credentials_sealed.is_some(),
            state: state_from(&self.state) as i32,
            health_status: health_from(&self.health_status) as i32,
            sync_interval_minutes: self.sync_interval_minutes as i32,
            tables: self.tables.clone(),
            last_sync_time: time::to_optional_timestamp(self.last_sync_at),
            create_time: Some(time::to_timestamp(self.created_at)),
            update_time: Some(time::to_timestamp(self.updated_at)),
            etag: self.etag(),
        }
    }

    /// The tables a sync or check reads: the configured ones, else every supported one.
    pub fn effective_tables(&self) -> Vec<&'static str> {
        if self.tables.is_empty() {
            return tables::ALL.iter().map(|table| table.name).collect();
        }
        tables::ALL.iter().map(|table| table.name).filter(|name| self.tables.iter().any(|t| t == name)).collect()
    }
}

fn auth_type_str(auth_type: AuthType) -> Option<&'static str> {
    match auth_type {
        AuthType::Basic => Some("basic"),
        AuthType::Oauth2ClientCredentials => Some("oauth2_client_credentials"),
        AuthType::Oauth2Password => Some("oauth2_password"),
        AuthType::Unspecified => None,
    }
}

fn auth_type_from(stored: &str) -> AuthType {
    match stored {
        "basic" => AuthType::Basic,
        "oauth2_client_credentials" => AuthType::Oauth2ClientCredentials,
        "oauth2_password" => AuthType::Oauth2Password,
        _ => AuthType::Unspecified,
    }
}

fn state_str(state: InstanceState) -> Option<&'static str> {
    match state {
        InstanceState::Active => Some("active"),
        InstanceState::Disabled => Some("disabled"),
        InstanceState::Error => Some("error"),
        InstanceState::Unspecified => None,
    }
}

fn state_from(stored: &str) -> InstanceState {
    match stored {
        "active" => InstanceState::Active,
        "disabled" => InstanceState::Disabled,
        "error" => InstanceState::Error,
        _ => InstanceState::Unspecified,
    }
}

/// The stored name of a health status.
pub fn health_str(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Healthy => "healthy",
        HealthStatus::Degraded => "degraded",
        HealthStatus::Unhealthy => "unhealthy",
        HealthStatus::Unspecified => "unknown",
    }
}

/// A stored health status.
pub fn health_from(stored: &str) -> HealthStatus {
    match stored {
        "healthy" => HealthStatus::Healthy,
        "degraded" => HealthStatus::Degraded,
        "unhealthy" => HealthStatus::Unhealthy,
        _ => HealthStatus::Unspecified,
    }
}

/// An instance URL: https (http only to this machine, for development and the simulator),
/// a host, no credentials, query or fragment; link-local addresses (cloud metadata) refused.
fn check_url(field: &str, value: &str, violations: &mut FieldViolations) -> String {
    let trimmed = value.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        violations.required(field);
        return String::new();
    }
    let Ok(url) = url::Url::parse(trimmed) else {
        violations.add(field, "INVALID_URL", format!("{field} must be a URL such as https://acme.service-now.com"));
        return String::new();
    };
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    // Addresses refused on every network setting; the rest depends on the setting and on
    // what a name resolves to, checked by the service (connect::check_address).
    let never_reachable = host
        .parse::<std::net::IpAddr>()
        .ok()
        .and_then(|ip| complianceiq_servicenow::address::refusal(ip, NetworkAccess::AllowPrivate));
    if host.is_empty() {
        violations.add(field, "INVALID_URL", format!("{field} must name a host"));
    } else if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        violations.add(field, "INSECURE_URL", format!("{field} must use https"));
    } else if !url.username().is_empty() || url.password().is_some() {
        violations.add(field, "CREDENTIALS_IN_URL", format!("{field} must not contain credentials; use credentials"));
    } else if url.query().is_some() || url.fragment().is_some() {
        violations.add(field, "INVALID_URL", format!("{field} must not have a query or fragment"));
    } else if let Some(reason) = never_reachable {
        violations.add(field, "FORBIDDEN_HOST", format!("{field} must not be {reason}"));
    }
    trimmed.to_string()
}

fn check_tables(field: &str, values: &[String], violations: &mut FieldViolations) -> Vec<String> {
    let mut seen = BTreeSet::new();
    for value in values {
        if tables::by_name(value).is_none() {
            let known: Vec<&str> = tables::ALL.iter().map(|table| table.name).collect();
            violations.add(
                field,
                "UNKNOWN_TABLE",
                format!("{value:?} is not a supported table; supported: {}", known.join(", ")),
            );
        } else {
            seen.insert(value.clone());
        }
    }
    // Stored in sync order, so the order a client sent does not matter.
    tables::ALL.iter().map(|table| table.name.to_string()).filter(|name| seen.contains(name)).collect()
}

fn check_interval(field: &str, value: i32, violations: &mut FieldViolations) -> i64 {
    let value = i64::from(value);
    if value != 0 && !(5..=MAX_SYNC_INTERVAL).contains(&value) {
        violations.add(
            field,
            "OUT_OF_RANGE",
            format!("{field} must be 0 (no scheduled syncs) or 5 to {MAX_SYNC_INTERVAL} minutes"),
        );
    }
    value
}

/// Credentials that match the authentication type, as the ServiceNow client takes them.
fn check_credentials(
    auth_type: AuthType,
    given: Option<&Credentials>,
    violations: &mut FieldViolations,
) -> Option<SnCredentials> {
    let field = "instance.credentials";
    let Some(kind) = given.and_then(|credentials| credentials.kind.as_ref()) else {
        violations.required(field);
        return None;
    };
    let mut require = |name: &str, value: &str| {
        if value.is_empty() {
            violations.required(&format!("{field}.{name}"));
        } else if value.chars().count() > 1024 || value.chars().any(char::is_control) {
            violations.add(&format!("{field}.{name}"), "INVALID", format!("{field}.{name} is not a usable value"));
        }
        value.to_string()
    };
    match (auth_type, kind) {
        (AuthType::Basic, credentials::Kind::Basic(basic)) => Some(SnCredentials::Basic {
            username: require("basic.username", &basic.username),
            password: require("basic.password", &basic.password),
        }),
        (AuthType::Oauth2ClientCredentials, credentials::Kind::Oauth(oauth)) => {
            Some(SnCredentials::ClientCredentials {
                client_id: require("oauth.client_id", &oauth.client_id),
                client_secret: require("oauth.client_secret", &oauth.client_secret),
            })
        }
        (AuthType::Oauth2Password, credentials::Kind::Oauth(oauth)) => Some(SnCredentials::Password {
            client_id: require("oauth.client_id", &oauth.client_id),
            client_secret: require("oauth.client_secret", &oauth.client_secret),
            username: require("oauth.username", &oauth.username),
            password: require("oauth.password", &oauth.password),
        }),
        (AuthType::Unspecified, _) => None,
        _ => {
            violations.add(field, "AUTH_TYPE_MISMATCH", "instance.credentials do not match instance.auth_type");
            None
        }
    }
}

/// Credentials as sealed JSON (the secret box encrypts this).
pub fn credentials_json(credentials: &SnCredentials) -> Vec<u8> {
    let value = match credentials {
        SnCredentials::Basic { username, password } => {
            json!({"kind": "basic", "username": username, "password": password})
        }
        SnCredentials::ClientCredentials { client_id, client_secret } => {
            json!({"kind": "client_credentials", "client_id": client_id, "client_secret": client_secret})
        }
        SnCredentials::Password { client_id, client_secret, username, password } => json!({
            "kind": "password", "client_id": client_id, "client_secret": client_secret,
            "username": username, "password": password,
        }),
    };
    value.to_string().into_bytes()
}

/// The credentials back from [`credentials_json`].
pub fn credentials_from_json(bytes: &[u8]) -> Result<SnCredentials, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::internal("stored credentials are not readable"))?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    match value.get("kind").and_then(|v| v.as_str()) {
        Some("basic") => Ok(SnCredentials::Basic { username: text("username"), password: text("password") }),
        Some("client_credentials") => {
            Ok(SnCredentials::ClientCredentials { client_id: text("client_id"), client_secret: text("client_secret") })
        }
        Some("password") => Ok(SnCredentials::Password {
            client_id: text("client_id"),
            client_secret: text("client_secret"),
            username: text("username"),
            password: text("password"),
        }),
        _ => Err(ApiError::internal("stored credentials have an unknown kind")),
    }
}

/// What a valid create request holds.
pub struct NewInstance {
    pub record: InstanceRecord,
    pub credentials: SnCredentials,
}

/// Validates a new instance; every violation at once.
pub fn new_instance(input: &Instance, now: i64) -> Result<NewInstance, ApiError> {
    let mut violations = FieldViolations::default();
    violations.text("instance.name", &input.name, 100);
    let url = check_url("instance.url", &input.url, &mut violations);
    let auth_type = input.auth_type();
    let stored_auth = auth_type_str(auth_type);
    if stored_auth.is_none() {
        violations.add(
            "instance.auth_type",
            "REQUIRED",
            "instance.auth_type is required (BASIC or an OAuth 2.0 grant)",
        );
    }
    let credentials = check_credentials(auth_type, input.credentials.as_ref(), &mut violations);
    let state = match input.state() {
        InstanceState::Unspecified | InstanceState::Active => "active",
        InstanceState::Disabled => "disabled",
        InstanceState::Error => {
            violations.add("instance.state", "OUTPUT_ONLY", "instance.state ERROR is set by the service");
            "active"
        }
    };
    let interval = check_interval("instance.sync_interval_minutes", input.sync_interval_minutes, &mut violations);
    let tables = check_tables("instance.tables", &input.tables, &mut violations);
    violations.check()?;
    let (Some(auth_type), Some(credentials)) = (stored_auth, credentials) else {
        return Err(ApiError::internal("validated input without credentials"));
    };
    Ok(NewInstance {
        record: InstanceRecord {
            id: complianceiq_kit::uuid::Uuid::now_v7().to_string(),
            name: input.name.trim().to_string(),
            url,
            auth_type: auth_type.into(),
            credentials_sealed: None,
            state: state.into(),
            health_status: "unknown".into(),
            sync_interval_minutes: interval,
            tables,
            last_sync_at: None,
            revision: 1,
            created_at: now,
            updated_at: now,
        },
        credentials,
    })
}

/// An update's outcome: the next record, new credentials if given, and what changed.
pub struct Update {
    pub next: InstanceRecord,
    pub credentials: Option<SnCredentials>,
    pub changed: Vec<&'static str>,
}

/// Applies `input` under `mask` (empty: every field set in `input`).
pub fn apply_update(
    current: &InstanceRecord,
    input: &Instance,
    mask: Option<&FieldMask>,
    now: i64,
) -> Result<Update, ApiError> {
    let mut paths: Vec<String> = mask.map(|m| m.paths.clone()).unwrap_or_default();
    if paths.is_empty() {
        let implied = [
            ("name", !input.name.is_empty()),
            ("url", !input.url.is_empty()),
            ("auth_type", input.auth_type() != AuthType::Unspecified),
            ("credentials", input.credentials.is_some()),
            ("state", input.state() != InstanceState::Unspecified),
            ("sync_interval_minutes", input.sync_interval_minutes != 0),
            ("tables", !input.tables.is_empty()),
        ];
        paths = implied.iter().filter(|(_, set)| *set).map(|(path, _)| path.to_string()).collect();
    }
    let mut violations = FieldViolations::default();
    let mut next = current.clone();
    let mut credentials = None;
    let mut changed = Vec::new();
    let auth_changes = paths.iter().any(|path| path == "auth_type");
    for path in &paths {
        match path.as_str() {
            "name" => {
                violations.text("instance.name", &input.name, 100);
                next.name = input.name.trim().to_string();
            }
            "url" => next.url = check_url("instance.url", &input.url, &mut violations),
            "auth_type" => match auth_type_str(input.auth_type()) {
                Some(auth_type) => next.auth_type = auth_type.into(),
                None => violations.required("instance.auth_type"),
            },
            "credentials" => {}
            "state" => match input.state() {
                InstanceState::Active | InstanceState::Disabled => {
                    next.state = state_str(input.state()).unwrap_or("active").into();
                }
                InstanceState::Error => {
                    violations.add("instance.state", "OUTPUT_ONLY", "instance.state ERROR is set by the service")
                }
                InstanceState::Unspecified => violations.required("instance.state"),
            },
            "sync_interval_minutes" => {
                next.sync_interval_minutes =
                    check_interval("instance.sync_interval_minutes", input.sync_interval_minutes, &mut violations)
            }
            "tables" => next.tables = check_tables("instance.tables", &input.tables, &mut violations),
            other => violations.add(
                "update_mask",
                "UNKNOWN_FIELD",
                format!("{other:?} cannot be updated; updatable: name, url, auth_type, credentials, state, sync_interval_minutes, tables"),
            ),
        }
    }
    if paths.iter().any(|path| path == "credentials") || auth_changes {
        // New credentials must fit the (possibly new) authentication type.
        credentials = check_credentials(auth_type_from(&next.auth_type), input.credentials.as_ref(), &mut violations);
    }
    violations.check()?;
    if next.url != current.url && credentials.is_none() {
        // Credentials are only ever sent to the host they were given for: otherwise whoever
        // may edit the URL could point it at their own server and receive them.
        return Err(ApiError::FailedPrecondition {
            reason: "CREDENTIALS_REQUIRED",
            message: "changing instance.url needs the credentials for the new address too: set \
                      update_mask to url,credentials (with auth_type if it changes)"
                .into(),
        });
    }
    for (field, differs) in [
        ("name", next.name != current.name),
        ("url", next.url != current.url),
        ("auth_type", next.auth_type != current.auth_type),
        ("credentials", credentials.is_some()),
        ("state", next.state != current.state),
        ("sync_interval_minutes", next.sync_interval_minutes != current.sync_interval_minutes),
        ("tables", next.tables != current.tables),
    ] {
        if differs {
            changed.push(field);
        }
    }
    if !changed.is_empty() {
        next.revision += 1;
        next.updated_at = now;
    }
    Ok(Update { next, credentials, changed })
}

#[cfg(test)]
mod tests {
    use complianceiq_proto::complianceiq::instance::v1::{BasicCredentials, OAuthCredentials};

    use super::*;

    fn basic() -> Option<Credentials> {
        Some(Credentials {
            kind: Some(credentials::Kind::Basic(BasicCredentials { username: "u".into(), password: "p".into() })),
        })
    }

    fn valid() -> Instance {
        Instance {
            name: "prod".into(),
            url: "https://acme.service-now.com/".into(),
            auth_type: AuthType::Basic as i32,
            credentials: basic(),
            ..Default::default()
        }
    }

    fn violations(result: Result<NewInstance, ApiError>) -> Vec<(String, String)> {
        match result {
            Err(error) => error.field_violations().iter().map(|v| (v.field.clone(), v.reason.clone())).collect(),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn a_valid_instance_is_normalised() {
        let created = new_instance(&valid(), 1).unwrap();
        assert_eq!(created.record.url, "https://acme.service-now.com");
        assert_eq!(created.record.sync_interval_minutes, 0, "0: no scheduled syncs, as the contract says");
        assert_eq!(created.record.effective_tables().len(), tables::ALL.len());
        let shown = created.record.to_proto("org");
        assert!(shown.credentials.is_none());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let input = Instance {
            name: " ".into(),
            url: "http://acme.service-now.com".into(),
            auth_type: AuthType::Oauth2ClientCredentials as i32,
            credentials: basic(),
            sync_interval_minutes: 2,
            state: InstanceState::Active as i32,
            tables: vec!["incident".into()],
            ..Default::default()
        };
        assert_eq!(
            violations(new_instance(&input, 1)),
            vec![
                ("instance.name".to_string(), "REQUIRED".to_string()),
                ("instance.url".into(), "INSECURE_URL".into()),
                ("instance.credentials".into(), "AUTH_TYPE_MISMATCH".into()),
                ("instance.sync_interval_minutes".into(), "OUT_OF_RANGE".into()),
                ("instance.tables".into(), "UNKNOWN_TABLE".into()),
            ]
        );
        for (url, reason) in [
            ("https://user:pw@acme.service-now.com", "CREDENTIALS_IN_URL"),
            ("https://169.254.169.254", "FORBIDDEN_HOST"),
            ("https://acme.service-now.com/?x=1", "INVALID_URL"),
            ("acme", "INVALID_URL"),
        ] {
            let input = Instance { url: url.into(), ..valid() };
            assert_eq!(
                violations(new_instance(&input, 1)),
                vec![("instance.url".to_string(), reason.to_string())],
                "{url}"
            );
        }
        assert!(new_instance(&Instance { url: "http://127.0.0.1:8090".into(), ..valid() }, 1).is_ok());
        let oauth = Instance {
            auth_type: AuthType::Oauth2Password as i32,
            credentials: Some(Credentials {
                kind: Some(credentials::Kind::Oauth(OAuthCredentials {
                    client_id: "c".into(),
                    client_secret: "s".into(),
                    ..Default::default()
                })),
            }),
            ..valid()
        };
        assert_eq!(
            violations(new_instance(&oauth, 1)),
            vec![
                ("instance.credentials.oauth.username".to_string(), "REQUIRED".to_string()),
                ("instance.credentials.oauth.password".into(), "REQUIRED".into()),
            ]
        );
    }

    #[test]
    fn credentials_survive_sealing_as_json() {
        let credentials = SnCredentials::Password {
            client_id: "c".into(),
            client_secret: "s".into(),
            username: "u".into(),
            password: "p\"w".into(),
        };
        let back = credentials_from_json(&credentials_json(&credentials)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{credentials:?}"));
        assert!(matches!(back, SnCredentials::Password { password, .. } if password == "p\"w"));
    }

    #[test]
    fn updates_follow_the_mask_and_count_changes() {
        let current = new_instance(&valid(), 1).unwrap().record;
        let input = Instance { name: "production".into(), tables: vec!["sn_grc_issue".into()], ..Default::default() };
        let update = apply_update(&current, &input, None, 2).unwrap();
        assert_eq!(update.changed, vec!["name", "tables"]);
        assert_eq!((update.next.revision, update.next.updated_at), (2, 2));
        let mask = FieldMask { paths: vec!["auth_type".into()] };
        let switch = Instance { auth_type: AuthType::Oauth2ClientCredentials as i32, ..Default::default() };
        let error = apply_update(&current, &switch, Some(&mask), 2).err().unwrap();
        assert_eq!(error.field_violations()[0].field, "instance.credentials");
        let unchanged =
            apply_update(&current, &Instance { name: "prod".into(), ..Default::default() }, None, 2).unwrap();
        assert!(unchanged.changed.is_empty());
        assert_eq!(unchanged.next.revision, 1);
    }

    #[test]
    fn a_new_url_needs_new_credentials() {
        let current = new_instance(&valid(), 1).unwrap().record;
        let moved = Instance { url: "https://elsewhere.example.com".into(), ..Default::default() };
        let mask = FieldMask { paths: vec!["url".into()] };
        let error = apply_update(&current, &moved, Some(&mask), 2).err().unwrap();
        assert!(matches!(error, ApiError::FailedPrecondition { reason: "CREDENTIALS_REQUIRED", .. }), "{error:?}");
        let with_credentials = Instance { credentials: basic(), ..moved };
        let mask = FieldMask { paths: vec!["url".into(), "credentials".into()] };
        let update = apply_update(&current, &with_credentials, Some(&mask), 2).unwrap();
        assert_eq!(update.changed, vec!["url", "credentials"]);
        // The same URL written again is no change and needs nothing.
        let same = Instance { url: current.url.clone(), ..Default::default() };
        assert!(apply_update(&current, &same, None, 2).unwrap().changed.is_empty());
    }
}
