//! Memberships and invitations.

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::paging::PageRequest;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// A membership as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipRecord {
    pub id: String,
    pub user_id: Option<String>,
    pub email: String,
    /// `invited`, `active` or `removed`.
    pub state: String,
    pub role_ids: Vec<String>,
    pub team_ids: Vec<String>,
    pub invited_by: String,
    pub invited_at: Option<i64>,
    pub invite_expires_at: Option<i64>,
    pub joined_at: Option<i64>,
    pub removed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, user_id, email, state, role_ids, team_ids, invited_by, invited_at, invite_expires_at, \
                       joined_at, removed_at, created_at, updated_at";

fn list(text: String) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

fn record(row: &AnyRow) -> Result<MembershipRecord, ApiError> {
    Ok(MembershipRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        state: row.try_get("state")?,
        role_ids: list(row.try_get("role_ids")?),
        team_ids: list(row.try_get("team_ids")?),
        invited_by: row.try_get("invited_by")?,
        invited_at: row.try_get("invited_at")?,
        invite_expires_at: row.try_get("invite_expires_at")?,
        joined_at: row.try_get("joined_at")?,
        removed_at: row.try_get("removed_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts a membership; false when the email already has an open one here.
pub async fn insert(tx: &mut TenantTx, membership: &MembershipRecord) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO memberships (organization_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (organization_id, email) WHERE state <> 'removed' DO NOTHING"
    )))
    .bind(tenant)
    .bind(&membership.id)
    .bind(&membership.user_id)
    .bind(&membership.email)
    .bind(&membership.state)
    .bind(membership.role_ids.join(" "))
    .bind(membership.team_ids.join(" "))
    .bind(&membership.invited_by)
    .bind(membership.invited_at)
    .bind(membership.invite_expires_at)
    .bind(membership.joined_at)
    .bind(membership.removed_at)
    .bind(membership.created_at)
    .bind(membership.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A membership by id, any state.
pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<MembershipRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row =
        sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM memberships WHERE organization_id = $1 AND id = $2")))
            .bind(tenant)
            .bind(id)
            .fetch_optional(tx.connection())
            .await?;
    row.as_ref().map(record).transpose()
}

/// The active membership of a user.
pub async fn active_of_user(tx: &mut TenantTx, user: &str) -> Result<Option<MembershipRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM memberships WHERE organization_id = $1 AND user_id = $2 AND state = 'active'"
    )))
    .bind(tenant)
    .bind(user)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(record).transpose()
}

/// The open (invited or active) membership of an email.
pub async fn open_by_email(tx: &mut TenantTx, email: &str) -> Result<Option<MembershipRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM memberships WHERE organization_id = $1 AND email = $2 AND state <> 'removed'"
    )))
    .bind(tenant)
    .bind(email)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(record).transpose()
}

/// Writes a membership's mutable columns.
pub async fn update(tx: &mut TenantTx, membership: &MembershipRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE memberships SET user_id = $3, state = $4, role_ids = $5, team_ids = $6, joined_at = $7, removed_at = $8, \
         updated_at = $9 WHERE organization_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&membership.id)
    .bind(&membership.user_id)
    .bind(&membership.state)
    .bind(membership.role_ids.join(" "))
    .bind(membership.team_ids.join(" "))
    .bind(membership.joined_at)
    .bind(membership.removed_at)
    .bind(membership.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Members and pending invitations (the plan's member limit counts both).
pub async fn count_open(tx: &mut TenantTx) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT COUNT(*) FROM memberships WHERE organization_id = $1 AND state <> 'removed'")
        .bind(tenant)
        .fetch_one(tx.connection())
        .await?;
    Ok(row.try_get(0)?)
}

/// Memberships in `state` (`active`, `invited`).
pub async fn count_in_state(tx: &mut TenantTx, state: &str) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT COUNT(*) FROM memberships WHERE organization_id = $1 AND state = $2")
        .bind(tenant)
        .bind(state)
        .fetch_one(tx.connection())
        .await?;
    Ok(row.try_get(0)?)
}

/// A page of memberships in join order, with the total matching.
pub async fn list_page(
    tx: &mut TenantTx,
    state: Option<&str>,
    page: &PageRequest,
) -> Result<(Vec<MembershipRecord>, i64), ApiError> {
    let tenant = tx.tenant().to_string();
    let (after_created, after_id) = match &page.after {
        Some(key) if key.len() == 2 => (key[0].parse::<i64>().ok(), key[1].clone()),
        _ => (None, String::new()),
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM memberships WHERE organization_id = $1 \
         AND (($2 IS NULL AND state <> 'removed') OR state = $2) \
         AND ($3 IS NULL OR created_at > $3 OR (created_at = $3 AND id > $4)) \
         ORDER BY created_at, id LIMIT $5"
    )))
    .bind(&tenant)
    .bind(state)
    .bind(after_created)
    .bind(after_id)
    .bind(page.fetch_limit())
    .fetch_all(tx.connection())
    .await?;
    let total: i64 = sqlx::query(
        "SELECT COUNT(*) FROM memberships WHERE organization_id = $1 AND (($2 IS NULL AND state <> 'removed') OR state = $2)",
    )
    .bind(&tenant)
    .bind(state)
    .fetch_one(tx.connection())
    .await?
    .try_get(0)?;
    Ok((rows.iter().map(record).collect::<Result<_, _>>()?, total))
}
