//! The user service's SQL, one function per query; tenant tables through [`TenantTx`].

use complianceiq_kit::db::{GlobalTx, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::UserId;
use complianceiq_kit::paging::PageRequest;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::domain::Editable;

/// A role as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub built_in: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A profile as stored (full name resolved against the people directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRecord {
    pub user_id: UserId,
    pub email: String,
    pub state: String,
    pub editable: Editable,
    pub authorization_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Records a registered person's name and email.
pub async fn upsert_person(
    tx: &mut GlobalTx,
    user: &str,
    email: &str,
    full_name: &str,
    now: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO people (user_id, email, full_name, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, full_name = excluded.full_name, updated_at = excluded.updated_at",
    )
    .bind(user)
    .bind(email)
    .bind(full_name)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

fn role(row: &AnyRow) -> Result<RoleRecord, ApiError> {
    Ok(RoleRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        permissions: row.try_get::<String, _>("permissions")?.split_whitespace().map(str::to_string).collect(),
        built_in: row.try_get::<i64, _>("built_in")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const ROLE_COLUMNS: &str = "id, name, description, permissions, built_in, created_at, updated_at";

/// Inserts a role; false when the organization already has one of that name.
pub async fn insert_role(tx: &mut TenantTx, role: &RoleRecord) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(
        "INSERT INTO roles (id, organization_id, name, description, permissions, built_in, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (organization_id, name) DO NOTHING",
    )
    .bind(&role.id)
    .bind(tenant)
    .bind(&role.name)
    .bind(&role.description)
    .bind(role.permissions.join(" "))
    .bind(i64::from(role.built_in))
    .bind(role.created_at)
    .bind(role.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A role of the organization by id.
pub async fn role_by_id(tx: &mut TenantTx, id: &str) -> Result<Option<RoleRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row =
        sqlx::query(AssertSqlSafe(format!("SELECT {ROLE_COLUMNS} FROM roles WHERE organization_id = $1 AND id = $2")))
            .bind(tenant)
            .bind(id)
            .fetch_optional(tx.connection())
            .await?;
    row.as_ref().map(role).transpose()
}

/// A role of the organization by name.
pub async fn role_by_name(tx: &mut TenantTx, name: &str) -> Result<Option<RoleRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ROLE_COLUMNS} FROM roles WHERE organization_id = $1 AND name = $2"
    )))
    .bind(tenant)
    .bind(name)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(role).transpose()
}

/// A page of roles ordered by name.
pub async fn list_roles(tx: &mut TenantTx, page: &PageRequest) -> Result<Vec<RoleRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let (after_name, after_id) = match &page.after {
        Some(key) if key.len() == 2 => (Some(key[0].clone()), key[1].clone()),
        _ => (None, String::new()),
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ROLE_COLUMNS} FROM roles WHERE organization_id = $1 \
         AND ($2 IS NULL OR name > $2 OR (name = $2 AND id > $3)) ORDER BY name, id LIMIT $4"
    )))
    .bind(tenant)
    .bind(after_name)
    .bind(after_id)
    .bind(page.fetch_limit())
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(role).collect()
}

/// The roles a user holds.
pub async fn roles_of(tx: &mut TenantTx, user: UserId) -> Result<Vec<RoleRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT r.id, r.name, r.description, r.permissions, r.built_in, r.created_at, r.updated_at \
         FROM user_roles ur JOIN roles r ON r.id = ur.role_id AND r.organization_id = ur.organization_id \
         WHERE ur.organization_id = $1 AND ur.user_id = $2 ORDER BY r.name",
    )
    .bind(tenant)
    .bind(user.to_string())
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(role).collect()
}

/// Grants a role; false if the user held it already.
pub async fn assign(
    tx: &mut TenantTx,
    user: UserId,
    role_id: &str,
    assigned_by: &str,
    now: i64,
) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(
        "INSERT INTO user_roles (organization_id, user_id, role_id, assigned_by, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (organization_id, user_id, role_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(user.to_string())
    .bind(role_id)
    .bind(assigned_by)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// When and by whom a role was granted.
pub async fn assignment(tx: &mut TenantTx, user: UserId, role_id: &str) -> Result<Option<(String, i64)>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT assigned_by, created_at FROM user_roles WHERE organization_id = $1 AND user_id = $2 AND role_id = $3",
    )
    .bind(tenant)
    .bind(user.to_string())
    .bind(role_id)
    .fetch_optional(tx.connection())
    .await?;
    row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).transpose()
}

/// Takes a role away; false if the user did not hold it.
pub async fn unassign(tx: &mut TenantTx, user: UserId, role_id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let deleted = sqlx::query("DELETE FROM user_roles WHERE organization_id = $1 AND user_id = $2 AND role_id = $3")
        .bind(tenant)
        .bind(user.to_string())
        .bind(role_id)
        .execute(tx.connection())
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Takes every role away from a user.
pub async fn unassign_all(tx: &mut TenantTx, user: UserId) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("DELETE FROM user_roles WHERE organization_id = $1 AND user_id = $2")
        .bind(tenant)
        .bind(user.to_string())
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Active members holding a role.
pub async fn active_holders(tx: &mut TenantTx, role_id: &str) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT COUNT(*) FROM user_roles ur JOIN user_profiles p \
           ON p.organization_id = ur.organization_id AND p.user_id = ur.user_id \
         WHERE ur.organization_id = $1 AND ur.role_id = $2 AND p.state = 'active'",
    )
    .bind(tenant)
    .bind(role_id)
    .fetch_one(tx.connection())
    .await?;
    Ok(row.try_get(0)?)
}

/// Role ids of several users, as (user id, role id) pairs.
pub async fn role_ids_of(tx: &mut TenantTx, users: &[String]) -> Result<Vec<(String, String)>, ApiError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant().to_string();
    // Placeholders only; the values are bound.
    let placeholders: Vec<String> = (0..users.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT user_id, role_id FROM user_roles WHERE organization_id = $1 AND user_id IN ({}) ORDER BY user_id, role_id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
    for user in users {
        query = query.bind(user);
    }
    let rows = query.fetch_all(tx.connection()).await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

const PROFILE_SELECT: &str = "SELECT p.user_id, p.email, \
     COALESCE(NULLIF(p.full_name, ''), d.full_name, '') AS full_name, p.job_title, p.phone_number, p.avatar_uri, \
     p.state, p.timezone, p.locale, p.theme, p.default_dashboard_id, p.weekly_digest, p.authorization_version, \
     p.created_at, p.updated_at \
     FROM user_profiles p LEFT JOIN people d ON d.user_id = p.user_id";

fn profile(row: &AnyRow) -> Result<ProfileRecord, ApiError> {
    Ok(ProfileRecord {
        user_id: UserId::from_stored(&row.try_get::<String, _>("user_id")?)?,
        email: row.try_get("email")?,
        state: row.try_get("state")?,
        editable: Editable {
            full_name: row.try_get("full_name")?,
            job_title: row.try_get("job_title")?,
            phone_number: row.try_get("phone_number")?,
            avatar_uri: row.try_get("avatar_uri")?,
            timezone: row.try_get("timezone")?,
            locale: row.try_get("locale")?,
            theme: row.try_get("theme")?,
            default_dashboard_id: row.try_get("default_dashboard_id")?,
            weekly_digest: row.try_get::<i64, _>("weekly_digest")? != 0,
        },
        authorization_version: row.try_get("authorization_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A member's profile, unless removed.
pub async fn profile_of(tx: &mut TenantTx, user: UserId) -> Result<Option<ProfileRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(AssertSqlSafe(format!(
        "{PROFILE_SELECT} WHERE p.organization_id = $1 AND p.user_id = $2 AND p.state <> 'removed'"
    )))
    .bind(tenant)
    .bind(user.to_string())
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(profile).transpose()
}

/// Creates the profile of a member who joined, or reactivates a removed one.
pub async fn upsert_active_profile(tx: &mut TenantTx, user: UserId, email: &str, now: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO user_profiles (organization_id, user_id, email, full_name, job_title, phone_number, avatar_uri, \
           state, timezone, locale, theme, default_dashboard_id, weekly_digest, authorization_version, created_at, updated_at) \
         VALUES ($1, $2, $3, '', '', '', '', 'active', '', '', '', '', 0, 0, $4, $4) \
         ON CONFLICT (organization_id, user_id) DO UPDATE SET state = 'active', email = excluded.email, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(user.to_string())
    .bind(email)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Writes the editable fields of a profile.
pub async fn update_profile(tx: &mut TenantTx, user: UserId, editable: &Editable, now: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE user_profiles SET full_name = $3, job_title = $4, phone_number = $5, avatar_uri = $6, timezone = $7, \
         locale = $8, theme = $9, default_dashboard_id = $10, weekly_digest = $11, updated_at = $12 \
         WHERE organization_id = $1 AND user_id = $2",
    )
    .bind(tenant)
    .bind(user.to_string())
    .bind(&editable.full_name)
    .bind(&editable.job_title)
    .bind(&editable.phone_number)
    .bind(&editable.avatar_uri)
    .bind(&editable.timezone)
    .bind(&editable.locale)
    .bind(&editable.theme)
    .bind(&editable.default_dashboard_id)
    .bind(i64::from(editable.weekly_digest))
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Marks a profile removed.
pub async fn remove_profile(tx: &mut TenantTx, user: UserId, now: i64) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let updated = sqlx::query(
        "UPDATE user_profiles SET state = 'removed', updated_at = $3 WHERE organization_id = $1 AND user_id = $2 AND state <> 'removed'",
    )
    .bind(tenant)
    .bind(user.to_string())
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Increments and returns the version of a user's authorization in this organization.
pub async fn next_authorization_version(tx: &mut TenantTx, user: UserId) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "UPDATE user_profiles SET authorization_version = authorization_version + 1 \
         WHERE organization_id = $1 AND user_id = $2 RETURNING authorization_version",
    )
    .bind(tenant)
    .bind(user.to_string())
    .fetch_optional(tx.connection())
    .await?;
    row.map(|row| row.try_get(0).map_err(ApiError::from))
        .transpose()?
        .ok_or_else(|| ApiError::internal("authorization of a user without a profile"))
}

/// Filters of ListUsers.
pub struct UserFilter {
    pub role_id: Option<String>,
    pub state: Option<&'static str>,
    /// Lower-cased substring of name or email.
    pub query: Option<String>,
}

/// A page of profiles ordered by email, and the total matching.
pub async fn list_profiles(
    tx: &mut TenantTx,
    filter: &UserFilter,
    page: &PageRequest,
) -> Result<(Vec<ProfileRecord>, i64), ApiError> {
    let tenant = tx.tenant().to_string();
    let conditions = "p.organization_id = $1 AND p.state <> 'removed' \
         AND ($2 IS NULL OR EXISTS (SELECT 1 FROM user_roles ur WHERE ur.organization_id = p.organization_id \
                                    AND ur.user_id = p.user_id AND ur.role_id = $2)) \
         AND ($3 IS NULL OR p.state = $3) \
         AND ($4 IS NULL OR LOWER(p.email) LIKE $4 OR LOWER(COALESCE(NULLIF(p.full_name, ''), d.full_name, '')) LIKE $4)";
    let like = filter.query.as_ref().map(|q| format!("%{}%", q.replace(['\\', '%', '_'], "")));
    let (after_email, after_id) = match &page.after {
        Some(key) if key.len() == 2 => (Some(key[0].clone()), key[1].clone()),
        _ => (None, String::new()),
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{PROFILE_SELECT} WHERE {conditions} AND ($5 IS NULL OR p.email > $5 OR (p.email = $5 AND p.user_id > $6)) \
         ORDER BY p.email, p.user_id LIMIT $7"
    )))
    .bind(&tenant)
    .bind(&filter.role_id)
    .bind(filter.state)
    .bind(&like)
    .bind(after_email)
    .bind(after_id)
    .bind(page.fetch_limit())
    .fetch_all(tx.connection())
    .await?;
    let total: i64 = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM user_profiles p LEFT JOIN people d ON d.user_id = p.user_id WHERE {conditions}"
    )))
    .bind(&tenant)
    .bind(&filter.role_id)
    .bind(filter.state)
    .bind(&like)
    .fetch_one(tx.connection())
    .await?
    .try_get(0)?;
    Ok((rows.iter().map(profile).collect::<Result<_, _>>()?, total))
}
