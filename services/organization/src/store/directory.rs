//! The staff directory (`organization_directory`): one row per organization, mirrored in the
//! transaction that writes the organization, readable across organizations by the staff API.
//! Writes go through the organization's own [`TenantTx`]; only the search is global.

use complianceiq_kit::db::{GlobalTx, TenantTx};
use complianceiq_kit::error::ApiError;
use sqlx::Row;

use crate::domain::{OrganizationRecord, plan_as_str};

macro_rules! directory_columns {
    () => {
        "id, display_name, slug, state, plan, created_at, updated_at, last_sync_at"
    };
}

/// One directory row.
pub struct DirectoryEntry {
    pub id: String,
    pub display_name: String,
    pub slug: String,
    pub state: String,
    pub plan: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_sync_at: Option<i64>,
}

/// Writes the directory row of the transaction's organization.
pub async fn mirror(tx: &mut TenantTx, organization: &OrganizationRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO organization_directory (id, display_name, slug, state, plan, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, slug = excluded.slug, \
           state = excluded.state, plan = excluded.plan, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(&organization.display_name)
    .bind(&organization.slug)
    .bind(organization.state.as_str())
    .bind(plan_as_str(organization.plan))
    .bind(organization.created_at)
    .bind(organization.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Records the transaction's organization's plan.
pub async fn set_plan(tx: &mut TenantTx, plan: &str, now: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("UPDATE organization_directory SET plan = $2, updated_at = $3 WHERE id = $1")
        .bind(tenant)
        .bind(plan)
        .bind(now)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Records a completed sync of one of the organization's instances (the latest one wins).
pub async fn note_sync(tx: &mut TenantTx, at: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE organization_directory SET last_sync_at = $2 \
         WHERE id = $1 AND (last_sync_at IS NULL OR last_sync_at < $2)",
    )
    .bind(tenant)
    .bind(at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The directory row of one organization.
pub async fn entry(tx: &mut TenantTx) -> Result<Option<DirectoryEntry>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(concat!("SELECT ", directory_columns!(), " FROM organization_directory WHERE id = $1"))
        .bind(tenant)
        .fetch_optional(tx.connection())
        .await?;
    row.as_ref().map(read).transpose()
}

fn read(row: &sqlx::any::AnyRow) -> Result<DirectoryEntry, ApiError> {
    Ok(DirectoryEntry {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        slug: row.try_get("slug")?,
        state: row.try_get("state")?,
        plan: row.try_get("plan")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_sync_at: row.try_get("last_sync_at")?,
    })
}

/// A search of the directory, newest first.
pub struct Search<'a> {
    /// Part of the name or slug (any case), or an exact id; empty: everything.
    pub text: &'a str,
    /// Stored state, or empty for all.
    pub state: &'a str,
    /// The (created_at, id) of the last row of the previous page.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// Organizations matching `search`, across tenants.
pub async fn search(tx: &mut GlobalTx, search: &Search<'_>) -> Result<Vec<DirectoryEntry>, ApiError> {
    let text = search.text.trim().to_lowercase();
    // LIKE's wildcards in the text match themselves.
    let pattern = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let (after_created, after_id) = match &search.after {
        Some((created, id)) => (Some(*created), Some(id.clone())),
        None => (None, None),
    };
    let rows = sqlx::query(concat!(
        "SELECT ",
        directory_columns!(),
        " FROM organization_directory \
         WHERE ($1 = '' OR lower(display_name) LIKE $2 ESCAPE '\\' OR lower(slug) LIKE $2 ESCAPE '\\' OR id = $1) \
           AND ($3 = '' OR state = $3) \
           AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5)) \
         ORDER BY created_at DESC, id DESC LIMIT $6"
    ))
    .bind(&text)
    .bind(&pattern)
    .bind(search.state)
    .bind(after_created)
    .bind(after_id)
    .bind(search.limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(read).collect()
}
