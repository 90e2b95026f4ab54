//! The rules of users and roles, without I/O.

use std::collections::BTreeSet;

use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_proto::PERMISSIONS;
use complianceiq_proto::complianceiq::user::v1::{User, UserPreferences};
use prost_types::FieldMask;

/// The role every organization's creator gets, with every permission.
pub const ORGANIZATION_ADMIN: &str = "Organization Admin";
/// The role a member gets when the invitation named none.
pub const ORGANIZATION_MEMBER: &str = "Organization Member";

/// A built-in role, seeded into every organization.
pub struct DefaultRole {
    pub name: &'static str,
    pub description: &'static str,
    pub permissions: Vec<&'static str>,
}

/// The design's default roles (Super Admin is ComplianceIQ staff, not an organization role).
pub fn default_roles() -> Vec<DefaultRole> {
    let read = ["organizations:read", "instances:read", "analysis:read", "insights:read", "widgets:read"];
    vec![
        DefaultRole {
            name: ORGANIZATION_ADMIN,
            description: "Full access to the organization",
            permissions: PERMISSIONS.to_vec(),
        },
        DefaultRole {
            name: ORGANIZATION_MEMBER,
            description: "Read access to the organization's resources and members",
            permissions: read.iter().copied().chain(["users:read"]).collect(),
        },
        DefaultRole {
            name: "Analyst",
            description: "Runs analyses and exports insights; reads instances",
            permissions: vec![
                "organizations:read",
                "instances:read",
                "analysis:create",
                "analysis:read",
                "insights:read",
                "insights:export",
                "widgets:read",
            ],
        },
        DefaultRole { name: "Viewer", description: "Read-only access", permissions: read.to_vec() },
    ]
}

/// Permissions granted by a set of roles, sorted and without repeats.
pub fn union<'a>(permission_lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let set: BTreeSet<&String> = permission_lists.into_iter().flatten().collect();
    set.into_iter().cloned().collect()
}

/// Refuses granting permissions the caller does not hold: RBAC must not be a ladder.
pub fn check_can_grant(caller_permissions: &[String], granted: &[String]) -> Result<(), ApiError> {
    let missing: Vec<&String> = granted.iter().filter(|p| !caller_permissions.contains(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::PermissionDenied {
        reason: "CANNOT_GRANT",
        message: format!(
            "you cannot grant permissions you do not hold: {}",
            missing.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// Validates a custom role's name, description and permissions; returns the permissions
/// normalized (known, sorted, unique).
pub fn validate_role(name: &str, description: &str, permissions: &[String]) -> Result<Vec<String>, ApiError> {
    let mut violations = FieldViolations::default();
    violations.text("role.name", name, 100);
    violations.max_chars("role.description", description, 500);
    if permissions.is_empty() {
        violations.add("role.permissions", "REQUIRED", "role.permissions must name at least one permission");
    }
    let unknown = permissions.iter().enumerate().filter(|(_, permission)| !PERMISSIONS.contains(&permission.as_str()));
    for (position, (index, permission)) in unknown.enumerate() {
        // The known permissions are listed once, with the first unknown one.
        let known = if position == 0 { format!("; known: {}", PERMISSIONS.join(", ")) } else { String::new() };
        violations.add(
            &format!("role.permissions[{index}]"),
            "UNKNOWN_PERMISSION",
            format!("role.permissions[{index}] is {permission:?}, which is not a permission{known}"),
        );
    }
    if default_roles().iter().any(|role| role.name.eq_ignore_ascii_case(name.trim())) {
        violations.add("role.name", "RESERVED", "role.name is the name of a built-in role");
    }
    violations.check()?;
    Ok(union([permissions]))
}

/// Profile fields a user may change about themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProfileField {
    FullName,
    JobTitle,
    PhoneNumber,
    AvatarUri,
    Timezone,
    Locale,
    Theme,
    DefaultDashboardId,
    WeeklyDigest,
}

impl ProfileField {
    const ALL: [ProfileField; 9] = [
        Self::FullName,
        Self::JobTitle,
        Self::PhoneNumber,
        Self::AvatarUri,
        Self::Timezone,
        Self::Locale,
        Self::Theme,
        Self::DefaultDashboardId,
        Self::WeeklyDigest,
    ];
    const PREFERENCES: [ProfileField; 5] =
        [Self::Timezone, Self::Locale, Self::Theme, Self::DefaultDashboardId, Self::WeeklyDigest];

    fn path(self) -> &'static str {
        match self {
            Self::FullName => "full_name",
            Self::JobTitle => "job_title",
            Self::PhoneNumber => "phone_number",
            Self::AvatarUri => "avatar_uri",
            Self::Timezone => "preferences.timezone",
            Self::Locale => "preferences.locale",
            Self::Theme => "preferences.theme",
            Self::DefaultDashboardId => "preferences.default_dashboard_id",
            Self::WeeklyDigest => "preferences.weekly_digest",
        }
    }
}

/// Output-only fields are ignored in a mask (AIP-203).
const OUTPUT_ONLY: [&str; 9] = [
    "id",
    "organization_id",
    "email",
    "state",
    "role_ids",
    "permissions",
    "last_login_time",
    "create_time",
    "update_time",
];

/// The editable part of a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Editable {
    pub full_name: String,
    pub job_title: String,
    pub phone_number: String,
    pub avatar_uri: String,
    pub timezone: String,
    pub locale: String,
    pub theme: String,
    pub default_dashboard_id: String,
    pub weekly_digest: bool,
}

/// Applies an update of the caller's own profile: no mask means every populated field.
pub fn update_profile(current: &Editable, input: &User, mask: Option<&FieldMask>) -> Result<Editable, ApiError> {
    let preferences = input.preferences.clone().unwrap_or_default();
    let paths: Vec<&str> = mask.map(|m| m.paths.iter().map(String::as_str).collect()).unwrap_or_default();
    let mut fields = BTreeSet::new();
    let mut violations = FieldViolations::default();
    if paths.is_empty() {
        let populated = [
            (ProfileField::FullName, !input.full_name.is_empty()),
            (ProfileField::JobTitle, !input.job_title.is_empty()),
            (ProfileField::PhoneNumber, !input.phone_number.is_empty()),
            (ProfileField::AvatarUri, !input.avatar_uri.is_empty()),
            (ProfileField::Timezone, !preferences.timezone.is_empty()),
            (ProfileField::Locale, !preferences.locale.is_empty()),
            (ProfileField::Theme, !preferences.theme.is_empty()),
            (ProfileField::DefaultDashboardId, !preferences.default_dashboard_id.is_empty()),
            (ProfileField::WeeklyDigest, preferences.weekly_digest),
        ];
        fields.extend(populated.into_iter().filter(|(_, set)| *set).map(|(field, _)| field));
    }
    for path in paths {
        match path {
            "*" => fields.extend(ProfileField::ALL),
            "preferences" => fields.extend(ProfileField::PREFERENCES),
            other if OUTPUT_ONLY.contains(&other) => {}
            other => match ProfileField::ALL.into_iter().find(|field| field.path() == other) {
                Some(field) => {
                    fields.insert(field);
                }
                None => violations.add(
                    "update_mask",
                    "UNKNOWN_FIELD",
                    format!("update_mask names {other:?}, which cannot be updated"),
                ),
            },
        }
    }
    let mut next = current.clone();
    for field in fields {
        match field {
            ProfileField::FullName => {
                violations.max_chars("user.full_name", &input.full_name, 200);
                next.full_name = input.full_name.trim().to_string();
            }
            ProfileField::JobTitle => {
                violations.max_chars("user.job_title", &input.job_title, 100);
                next.job_title = input.job_title.trim().to_string();
            }
            ProfileField::PhoneNumber => {
                let phone = &input.phone_number;
                let e164 = phone.is_empty()
                    || (phone.starts_with('+')
                        && (8..=16).contains(&phone.len())
                        && phone[1..].bytes().all(|b| b.is_ascii_digit())
                        && !phone[1..].starts_with('0'));
                if !e164 {
                    violations.add(
                        "user.phone_number",
                        "INVALID_FORMAT",
                        "user.phone_number must be in E.164 form, like +4915112345678",
                    );
                }
                next.phone_number = phone.clone();
            }
            ProfileField::AvatarUri => {
                let uri = &input.avatar_uri;
                if !uri.is_empty()
                    && (!uri.starts_with("https://")
                        || uri.len() > 2048
                        || uri.chars().any(|c| c.is_whitespace() || c.is_control()))
                {
                    violations.add(
                        "user.avatar_uri",
                        "INVALID_FORMAT",
                        "user.avatar_uri must be an https:// URL of at most 2048 characters",
                    );
                }
                next.avatar_uri = uri.clone();
            }
            ProfileField::Timezone => {
                let zone = &preferences.timezone;
                let plausible = zone.is_empty()
                    || zone == "UTC"
                    || (zone.len() <= 64
                        && zone.split('/').count() >= 2
                        && zone.split('/').all(|part| {
                            part.starts_with(|c: char| c.is_ascii_uppercase())
                                && part.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
                        }));
                if !plausible {
                    violations.add(
                        "user.preferences.timezone",
                        "INVALID_FORMAT",
                        "user.preferences.timezone must be an IANA name such as Europe/Berlin",
                    );
                }
                next.timezone = zone.clone();
            }
            ProfileField::Locale => {
                let locale = &preferences.locale;
                let plausible = locale.is_empty()
                    || (locale.len() <= 35
                        && locale.split('-').enumerate().all(|(i, part)| {
                            !part.is_empty()
                                && part.len() <= 8
                                && part.chars().all(|c| c.is_ascii_alphanumeric())
                                && (i > 0 || part.chars().all(|c| c.is_ascii_lowercase()))
                        }));
                if !plausible {
                    violations.add(
                        "user.preferences.locale",
                        "INVALID_FORMAT",
                        "user.preferences.locale must be a BCP-47 tag such as en-US",
                    );
                }
                next.locale = locale.clone();
            }
            ProfileField::Theme => {
                if !["", "light", "dark", "system"].contains(&preferences.theme.as_str()) {
                    violations.add(
                        "user.preferences.theme",
                        "INVALID_VALUE",
                        "user.preferences.theme must be light, dark or system",
                    );
                }
                next.theme = preferences.theme.clone();
            }
            ProfileField::DefaultDashboardId => {
                let id = &preferences.default_dashboard_id;
                if !id.is_empty()
                    && complianceiq_kit::ids::parse_uuid("user.preferences.default_dashboard_id", id).is_err()
                {
                    violations.add(
                        "user.preferences.default_dashboard_id",
                        "INVALID_FORMAT",
                        "user.preferences.default_dashboard_id must be a UUID",
                    );
                }
                next.default_dashboard_id = id.clone();
            }
            ProfileField::WeeklyDigest => next.weekly_digest = preferences.weekly_digest,
        }
    }
    violations.check()?;
    Ok(next)
}

/// The preferences message of an editable profile.
pub fn preferences(editable: &Editable) -> UserPreferences {
    UserPreferences {
        timezone: editable.timezone.clone(),
        locale: editable.locale.clone(),
        theme: editable.theme.clone(),
        default_dashboard_id: editable.default_dashboard_id.clone(),
        weekly_digest: editable.weekly_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_role_holds_every_permission_and_the_others_a_subset() {
        let roles = default_roles();
        assert_eq!(roles[0].permissions.len(), PERMISSIONS.len());
        for role in &roles {
            assert!(role.permissions.iter().all(|p| PERMISSIONS.contains(p)), "{}", role.name);
        }
    }

    #[test]
    fn nobody_grants_what_they_do_not_hold() {
        let mine = vec!["users:read".to_string(), "users:update".to_string()];
        assert!(check_can_grant(&mine, &["users:read".into()]).is_ok());
        let error = check_can_grant(&mine, &["users:read".into(), "organizations:delete".into()]).unwrap_err();
        assert!(error.to_string().contains("organizations:delete"));
    }

    #[test]
    fn custom_roles_are_validated() {
        assert_eq!(
            validate_role("Auditor", "", &["insights:read".into(), "audit:read".into(), "insights:read".into()])
                .unwrap(),
            ["audit:read", "insights:read"]
        );
        let error = validate_role(" ", "", &["nope".into()]).unwrap_err();
        let fields: Vec<_> = error.field_violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["role.name", "role.permissions[0]"]);
        assert!(validate_role("viewer", "", &["insights:read".into()]).is_err(), "reserved");
    }

    #[test]
    fn profile_updates_follow_the_mask_and_validate() {
        let current = Editable { full_name: "Ada".into(), weekly_digest: true, ..Default::default() };
        let input = User { job_title: "CISO".into(), ..Default::default() };
        let next = update_profile(&current, &input, None).unwrap();
        assert_eq!((next.full_name.as_str(), next.job_title.as_str(), next.weekly_digest), ("Ada", "CISO", true));

        let mask = FieldMask { paths: vec!["preferences.weekly_digest".into(), "email".into()] };
        let next = update_profile(&current, &User::default(), Some(&mask)).unwrap();
        assert!(!next.weekly_digest);

        let bad = User {
            phone_number: "0151".into(),
            avatar_uri: "http://x".into(),
            preferences: Some(UserPreferences { theme: "pink".into(), locale: "EN_us".into(), ..Default::default() }),
            ..Default::default()
        };
        let error = update_profile(&current, &bad, None).unwrap_err();
        assert_eq!(error.field_violations().len(), 4);
    }
}
