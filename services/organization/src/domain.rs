//! The rules of organizations, free of I/O: validation, slugs, settings defaults and how
//! an update with a field mask changes a record.

use std::collections::BTreeSet;

use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::time::{self, Micros};
use complianceiq_proto::complianceiq::organization::v1::{Organization, OrganizationSettings, OrganizationState, Plan};
use prost_types::FieldMask;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 200;
/// Retention when none is given.
pub const DEFAULT_RETENTION_DAYS: i64 = 365;
/// The residual score above which a risk is high, for an organization that set none.
pub const DEFAULT_RISK_APPETITE: i64 = 50;
/// Allowed retention, days.
pub const RETENTION_DAYS: std::ops::RangeInclusive<i64> = 30..=3650;
/// Time zone when none is given.
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// Most allowed email domains.
pub const MAX_EMAIL_DOMAINS: usize = 50;
/// How long a deleted organization's data is kept before purging, days.
pub const PURGE_AFTER_DAYS: u64 = 30;

/// Lifecycle as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Suspended,
    Deleted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(stored: &str) -> Result<Self, ApiError> {
        match stored {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "deleted" => Ok(Self::Deleted),
            other => Err(ApiError::internal(format!("unknown stored organization state {other:?}"))),
        }
    }

    pub fn to_proto(self) -> OrganizationState {
        match self {
            Self::Active => OrganizationState::Active,
            Self::Suspended => OrganizationState::Suspended,
            Self::Deleted => OrganizationState::Deleted,
        }
    }
}

/// Plan as stored; the subscription owns it, the organization shows it.
pub fn plan_as_str(plan: Plan) -> &'static str {
    match plan {
        Plan::Unspecified | Plan::Free => "free",
        Plan::Starter => "starter",
        Plan::Professional => "professional",
        Plan::Enterprise => "enterprise",
    }
}

/// A stored plan.
pub fn parse_plan(stored: &str) -> Result<Plan, ApiError> {
    match stored {
        "free" => Ok(Plan::Free),
        "starter" => Ok(Plan::Starter),
        "professional" => Ok(Plan::Professional),
        "enterprise" => Ok(Plan::Enterprise),
        other => Err(ApiError::internal(format!("unknown stored plan {other:?}"))),
    }
}

/// Organization-wide settings, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub default_timezone: String,
    pub data_retention_days: i64,
    pub require_mfa: bool,
    pub allowed_email_domains: Vec<String>,
    pub risk_appetite: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_timezone: DEFAULT_TIMEZONE.into(),
            data_retention_days: DEFAULT_RETENTION_DAYS,
            require_mfa: false,
            allowed_email_domains: Vec::new(),
            risk_appetite: DEFAULT_RISK_APPETITE,
        }
    }
}

/// An organization as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationRecord {
    pub id: OrganizationId,
    pub display_name: String,
    pub slug: String,
    pub state: State,
    pub plan: Plan,
    pub settings: Settings,
    /// Incremented on every change; the etag.
    pub revision: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub deleted_at: Option<Micros>,
    pub purge_at: Option<Micros>,
}

impl OrganizationRecord {
    /// The etag clients send back to detect lost updates.
    pub fn etag(&self) -> String {
        format!("r{}", self.revision)
    }

    /// The API view.
    pub fn to_proto(&self) -> Organization {
        Organization {
            id: self.id.to_string(),
            display_name: self.display_name.clone(),
            slug: self.slug.clone(),
            state: self.state.to_proto() as i32,
            settings: Some(OrganizationSettings {
                default_timezone: self.settings.default_timezone.clone(),
                data_retention_days: self.settings.data_retention_days as i32,
                require_mfa: self.settings.require_mfa,
                allowed_email_domains: self.settings.allowed_email_domains.clone(),
                risk_appetite: Some(self.settings.risk_appetite as i32),
            }),
            plan: self.plan as i32,
            create_time: Some(time::to_timestamp(self.created_at)),
            update_time: Some(time::to_timestamp(self.updated_at)),
            delete_time: time::to_optional_timestamp(self.deleted_at),
            purge_time: time::to_optional_timestamp(self.purge_at),
            etag: self.etag(),
        }
    }
}

/// Validates a create request's organization and builds the record to insert. The slug is
/// derived from the display name when not given.
pub fn new_organization(input: &Organization, now: Micros) -> Result<OrganizationRecord, ApiError> {
    let mut violations = FieldViolations::default();
    violations.text("organization.display_name", &input.display_name, MAX_DISPLAY_NAME);
    let slug = if input.slug.is_empty() {
        derive_slug(&input.display_name)
    } else {
        check_slug("organization.slug", &input.slug, &mut violations);
        input.slug.clone()
    };
    let settings = match &input.settings {
        Some(given) => {
            settings_from(given, &Mutable::SETTINGS.into_iter().collect(), &Settings::default(), &mut violations)
        }
        None => Settings::default(),
    };
    violations.check()?;
    Ok(OrganizationRecord {
        id: OrganizationId::generate(),
        display_name: input.display_name.trim().to_string(),
        slug,
        state: State::Active,
        plan: Plan::Free,
        settings,
        revision: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        purge_at: None,
    })
}

fn check_slug(field: &str, slug: &str, violations: &mut FieldViolations) {
    let shape_ok = (3..=63).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--");
    if !shape_ok {
        violations.add(
            field,
            "INVALID_FORMAT",
            format!("{field} must be 3 to 63 lowercase letters, digits and single hyphens, not starting or ending with a hyphen"),
        );
    }
}

/// A slug from a display name: lowercase ASCII letters and digits, other runs become one
/// hyphen; padded to three characters, cut to 63.
pub fn derive_slug(display_name: &str) -> String {
    let mut slug = String::new();
    for c in display_name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_end_matches('-').chars().take(56).collect();
    slug = slug.trim_end_matches('-').to_string();
    if slug.len() < 3 {
        slug = if slug.is_empty() { "org".into() } else { format!("{slug}-org") };
    }
    slug
}

/// A derived slug made unique with a short random suffix, for when the plain one is taken.
pub fn slug_with_suffix(slug: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{slug}-{}", &random[..6])
}

/// The fields an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mutable {
    DisplayName,
    DefaultTimezone,
    DataRetentionDays,
    RequireMfa,
    AllowedEmailDomains,
    RiskAppetite,
}

impl Mutable {
    const SETTINGS: [Mutable; 5] = [
        Self::DefaultTimezone,
        Self::DataRetentionDays,
        Self::RequireMfa,
        Self::AllowedEmailDomains,
        Self::RiskAppetite,
    ];
    const ALL: [Mutable; 6] = [
        Self::DisplayName,
        Self::DefaultTimezone,
        Self::DataRetentionDays,
        Self::RequireMfa,
        Self::AllowedEmailDomains,
        Self::RiskAppetite,
    ];

    /// Mask path.
    pub fn path(self) -> &'static str {
        match self {
            Self::DisplayName => "display_name",
            Self::DefaultTimezone => "settings.default_timezone",
            Self::DataRetentionDays => "settings.data_retention_days",
            Self::RequireMfa => "settings.require_mfa",
            Self::AllowedEmailDomains => "settings.allowed_email_domains",
            Self::RiskAppetite => "settings.risk_appetite",
        }
    }
}

/// Output-only fields: named in a mask, they are ignored (AIP-203).
const OUTPUT_ONLY_PATHS: [&str; 8] =
    ["id", "state", "plan", "create_time", "update_time", "delete_time", "purge_time", "etag"];

/// Which fields an update changes. No mask (or an empty one) means every populated field
/// (AIP-134); `*` means every mutable field, unset ones reset to their defaults.
pub fn fields_to_update(
    mask: Option<&FieldMask>,
    input: &Organization,
    current: &OrganizationRecord,
) -> Result<BTreeSet<Mutable>, ApiError> {
    let paths: Vec<&str> = mask.map(|m| m.paths.iter().map(String::as_str).collect()).unwrap_or_default();
    if paths.is_empty() {
        let mut implied = BTreeSet::new();
        if !input.display_name.is_empty() {
            implied.insert(Mutable::DisplayName);
        }
        if let Some(settings) = &input.settings {
            if !settings.default_timezone.is_empty() {
                implied.insert(Mutable::DefaultTimezone);
            }
            if settings.data_retention_days != 0 {
                implied.insert(Mutable::DataRetentionDays);
            }
            if settings.require_mfa {
                implied.insert(Mutable::RequireMfa);
            }
            if !settings.allowed_email_domains.is_empty() {
                implied.insert(Mutable::AllowedEmailDomains);
            }
            if settings.risk_appetite.is_some() {
                implied.insert(Mutable::RiskAppetite);
            }
        }
        return Ok(implied);
    }
    let mut fields = BTreeSet::new();
    let mut violations = FieldViolations::default();
    for path in paths {
        match path {
            "*" => fields.extend(Mutable::ALL),
            "settings" => fields.extend(Mutable::SETTINGS),
            "slug" => {
                if !input.slug.is_empty() && input.slug != current.slug {
                    violations.add(
                        "organization.slug",
                        "IMMUTABLE",
                        "organization.slug cannot be changed after creation",
                    );
                }
            }
            other if OUTPUT_ONLY_PATHS.contains(&other) => {}
            other => match Mutable::ALL.into_iter().find(|field| field.path() == other) {
                Some(field) => {
                    fields.insert(field);
                }
                None => violations.add(
                    "update_mask",
                    "UNKNOWN_FIELD",
                    format!(
                        "update_mask names {other:?}, which is not an updatable field; use {}",
                        Mutable::ALL.map(Mutable::path).join(", ")
                    ),
                ),
            },
        }
    }
    violations.check()?;
    Ok(fields)
}

/// Applies an update; returns the new record and the paths whose value changed.
pub fn apply_update(
    current: &OrganizationRecord,
    input: &Organization,
    fields: &BTreeSet<Mutable>,
    now: Micros,
) -> Result<(OrganizationRecord, Vec<&'static str>), ApiError> {
    let mut violations = FieldViolations::default();
    let mut next = current.clone();
    if fields.contains(&Mutable::DisplayName) {
        violations.text("organization.display_name", &input.display_name, MAX_DISPLAY_NAME);
        next.display_name = input.display_name.trim().to_string();
    }
    let empty = OrganizationSettings::default();
    next.settings =
        settings_from(input.settings.as_ref().unwrap_or(&empty), fields, &current.settings, &mut violations);
    violations.check()?;

    let changed: Vec<&'static str> = Mutable::ALL
        .into_iter()
        .filter(|field| match field {
            Mutable::DisplayName => next.display_name != current.display_name,
            Mutable::DefaultTimezone => next.settings.default_timezone != current.settings.default_timezone,
            Mutable::DataRetentionDays => next.settings.data_retention_days != current.settings.data_retention_days,
            Mutable::RequireMfa => next.settings.require_mfa != current.settings.require_mfa,
            Mutable::RiskAppetite => next.settings.risk_appetite != current.settings.risk_appetite,
            Mutable::AllowedEmailDomains => {
                next.settings.allowed_email_domains != current.settings.allowed_email_domains
            }
        })
        .map(Mutable::path)
        .collect();
    if !changed.is_empty() {
        next.revision += 1;
        next.updated_at = now;
    }
    Ok((next, changed))
}

/// Settings where `fields` come from `given` (zero values mean the default) and the rest
/// from `base`.
fn settings_from(
    given: &OrganizationSettings,
    fields: &BTreeSet<Mutable>,
    base: &Settings,
    violations: &mut FieldViolations,
) -> Settings {
    let mut settings = base.clone();
    if fields.contains(&Mutable::DefaultTimezone) {
        let field = "organization.settings.default_timezone";
        settings.default_timezone = if given.default_timezone.is_empty() {
            DEFAULT_TIMEZONE.into()
        } else {
            if !is_plausible_timezone(&given.default_timezone) {
                violations.add(
                    field,
                    "INVALID_FORMAT",
                    format!("{field} must be an IANA time zone name such as UTC or Europe/Berlin"),
                );
            }
            given.default_timezone.clone()
        };
    }
    if fields.contains(&Mutable::DataRetentionDays) {
        let field = "organization.settings.data_retention_days";
        let days = i64::from(given.data_retention_days);
        settings.data_retention_days = if days == 0 {
            DEFAULT_RETENTION_DAYS
        } else {
            if !RETENTION_DAYS.contains(&days) {
                violations.add(
                    field,
                    "OUT_OF_RANGE",
                    format!("{field} must be between {} and {} days", RETENTION_DAYS.start(), RETENTION_DAYS.end()),
                );
            }
            days
        };
    }
    if fields.contains(&Mutable::RequireMfa) {
        settings.require_mfa = given.require_mfa;
    }
    if fields.contains(&Mutable::RiskAppetite) {
        let field = "organization.settings.risk_appetite";
        settings.risk_appetite = match given.risk_appetite {
            None => DEFAULT_RISK_APPETITE,
            Some(appetite @ 0..=100) => i64::from(appetite),
            Some(appetite) => {
                violations.add(
                    field,
                    "OUT_OF_RANGE",
                    format!("{field} is a residual score from 0 to 100, not {appetite}"),
                );
                DEFAULT_RISK_APPETITE
            }
        };
    }
    if fields.contains(&Mutable::AllowedEmailDomains) {
        let field = "organization.settings.allowed_email_domains";
        if given.allowed_email_domains.len() > MAX_EMAIL_DOMAINS {
            violations.add(field, "TOO_MANY", format!("{field} may list at most {MAX_EMAIL_DOMAINS} domains"));
        }
        let mut domains: Vec<String> = Vec::new();
        for (index, domain) in given.allowed_email_domains.iter().enumerate() {
            let domain = domain.trim().to_ascii_lowercase();
            if !complianceiq_kit::validate::is_domain_name(&domain) {
                violations.add(
                    &format!("{field}[{index}]"),
                    "INVALID_FORMAT",
                    format!("{field}[{index}] is not a domain name like example.com"),
                );
            } else if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        settings.allowed_email_domains = domains;
    }
    settings
}

/// `UTC`, or `Area/Location[/Sub]` made of the characters IANA names use. The tz database
/// itself is not embedded; clients pick names from a list, this catches typos of shape.
fn is_plausible_timezone(name: &str) -> bool {
    if name == "UTC" {
        return true;
    }
    let parts: Vec<&str> = name.split('/').collect();
    name.len() <= 64
        && (2..=3).contains(&parts.len())
        && parts.iter().all(|part| {
            part.starts_with(|c: char| c.is_ascii_uppercase())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        })
}

/// Marks a record deleted, to be purged later.
pub fn delete(current: &OrganizationRecord, now: Micros) -> OrganizationRecord {
    let mut deleted = current.clone();
    deleted.state = State::Deleted;
    deleted.deleted_at = Some(now);
    deleted.purge_at = Some(time::after(now, std::time::Duration::from_secs(PURGE_AFTER_DAYS * 24 * 3600)));
    deleted.updated_at = now;
    deleted.revision += 1;
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn organization(display_name: &str) -> Organization {
        Organization { display_name: display_name.into(), ..Default::default() }
    }

    fn reasons(error: ApiError) -> Vec<(String, String)> {
        error.field_violations().iter().map(|v| (v.field.clone(), v.reason.clone())).collect()
    }

    #[test]
    fn slugs_are_derived_from_display_names() {
        assert_eq!(derive_slug("Acme Corp."), "acme-corp");
        assert_eq!(derive_slug("  Ünïcode & Co  "), "n-code-co");
        assert_eq!(derive_slug("AB"), "ab-org");
        assert_eq!(derive_slug("***"), "org");
        assert!(derive_slug(&"x".repeat(300)).len() <= 63);
        let suffixed = slug_with_suffix("acme");
        assert!(suffixed.starts_with("acme-") && suffixed.len() == 11);
    }

    #[test]
    fn a_new_organization_gets_defaults() {
        let record = new_organization(&organization("Acme"), 42).unwrap();
        assert_eq!(record.slug, "acme");
        assert_eq!(record.settings, Settings::default());
        assert_eq!((record.revision, record.created_at, record.state), (1, 42, State::Active));
        assert_eq!(record.etag(), "r1");
    }

    #[test]
    fn every_bad_field_of_a_create_is_reported_at_once() {
        let input = Organization {
            display_name: " ".into(),
            slug: "Bad Slug".into(),
            settings: Some(OrganizationSettings {
                default_timezone: "mars/base".into(),
                data_retention_days: 5,
                require_mfa: false,
                allowed_email_domains: vec!["ok.example".into(), "not a domain".into()],
                risk_appetite: Some(-1),
            }),
            ..Default::default()
        };
        let got = reasons(new_organization(&input, 0).unwrap_err());
        let expected = [
            ("organization.display_name", "REQUIRED"),
            ("organization.slug", "INVALID_FORMAT"),
            ("organization.settings.default_timezone", "INVALID_FORMAT"),
            ("organization.settings.data_retention_days", "OUT_OF_RANGE"),
            ("organization.settings.risk_appetite", "OUT_OF_RANGE"),
            ("organization.settings.allowed_email_domains[1]", "INVALID_FORMAT"),
        ];
        assert_eq!(got, expected.map(|(f, r)| (f.to_string(), r.to_string())));
    }

    #[test]
    fn an_update_without_mask_changes_only_populated_fields() {
        let current = new_organization(&organization("Acme"), 1).unwrap();
        let input = Organization {
            settings: Some(OrganizationSettings { data_retention_days: 90, ..Default::default() }),
            ..Default::default()
        };
        let fields = fields_to_update(None, &input, &current).unwrap();
        let (next, changed) = apply_update(&current, &input, &fields, 2).unwrap();
        assert_eq!(changed, ["settings.data_retention_days"]);
        assert_eq!(next.display_name, "Acme");
        assert_eq!(next.settings.data_retention_days, 90);
        assert_eq!((next.revision, next.updated_at), (2, 2));
    }

    #[test]
    fn a_mask_can_turn_a_flag_off_and_star_resets_unset_fields() {
        let mut current = new_organization(&organization("Acme"), 1).unwrap();
        current.settings.require_mfa = true;
        current.settings.data_retention_days = 90;
        let input = organization("Acme Two");
        let mask = FieldMask { paths: vec!["settings.require_mfa".into()] };
        let fields = fields_to_update(Some(&mask), &input, &current).unwrap();
        let (next, changed) = apply_update(&current, &input, &fields, 2).unwrap();
        assert_eq!(changed, ["settings.require_mfa"]);
        assert!(!next.settings.require_mfa);
        assert_eq!(next.display_name, "Acme");

        let star = FieldMask { paths: vec!["*".into()] };
        let fields = fields_to_update(Some(&star), &input, &current).unwrap();
        let (next, _) = apply_update(&current, &input, &fields, 3).unwrap();
        assert_eq!(next.display_name, "Acme Two");
        assert_eq!(next.settings, Settings::default());
    }

    #[test]
    fn unknown_and_immutable_paths_are_refused_and_output_only_ignored() {
        let current = new_organization(&organization("Acme"), 1).unwrap();
        let input = Organization { slug: "other".into(), ..Default::default() };
        let mask = FieldMask { paths: vec!["slug".into(), "nope".into(), "create_time".into()] };
        let got = reasons(fields_to_update(Some(&mask), &input, &current).unwrap_err());
        assert_eq!(
            got,
            [
                ("organization.slug".to_string(), "IMMUTABLE".to_string()),
                ("update_mask".to_string(), "UNKNOWN_FIELD".to_string())
            ]
        );
    }

    #[test]
    fn an_update_that_changes_nothing_keeps_the_revision() {
        let current = new_organization(&organization("Acme"), 1).unwrap();
        let fields = fields_to_update(None, &organization("Acme"), &current).unwrap();
        let (next, changed) = apply_update(&current, &organization("Acme"), &fields, 9).unwrap();
        assert!(changed.is_empty());
        assert_eq!(next, current);
    }

    #[test]
    fn email_domains_are_normalised_and_deduplicated() {
        let current = new_organization(&organization("Acme"), 1).unwrap();
        let input = Organization {
            settings: Some(OrganizationSettings {
                allowed_email_domains: vec!["Acme.COM".into(), "acme.com".into(), "sub.acme.io".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let fields = fields_to_update(None, &input, &current).unwrap();
        let (next, _) = apply_update(&current, &input, &fields, 2).unwrap();
        assert_eq!(next.settings.allowed_email_domains, ["acme.com", "sub.acme.io"]);
    }

    #[test]
    fn deleting_schedules_a_purge() {
        let current = new_organization(&organization("Acme"), 1).unwrap();
        let deleted = delete(&current, 1_000_000);
        assert_eq!(deleted.state, State::Deleted);
        assert_eq!(deleted.purge_at, Some(1_000_000 + 30 * 24 * 3600 * 1_000_000));
        assert_eq!(deleted.revision, 2);
    }
}
