//! Teams and their members.

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::paging::PageRequest;
use sqlx::Row;

/// A team as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn record(row: &sqlx::any::AnyRow) -> Result<TeamRecord, ApiError> {
    Ok(TeamRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts a team; false when the name is taken in the organization.
pub async fn insert(tx: &mut TenantTx, team: &TeamRecord) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(
        "INSERT INTO teams (id, organization_id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (organization_id, name) DO NOTHING",
    )
    .bind(&team.id)
    .bind(tenant)
    .bind(&team.name)
    .bind(&team.description)
    .bind(team.created_at)
    .bind(team.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A team by id.
pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<TeamRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT id, name, description, created_at, updated_at FROM teams WHERE organization_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(record).transpose()
}

/// A page of teams by name.
pub async fn list_page(tx: &mut TenantTx, page: &PageRequest) -> Result<Vec<TeamRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let (after_name, after_id) = match &page.after {
        Some(key) if key.len() == 2 => (Some(key[0].clone()), key[1].clone()),
        _ => (None, String::new()),
    };
    let rows = sqlx::query(
        "SELECT id, name, description, created_at, updated_at FROM teams WHERE organization_id = $1 \
         AND ($2 IS NULL OR name > $2 OR (name = $2 AND id > $3)) ORDER BY name, id LIMIT $4",
    )
    .bind(tenant)
    .bind(after_name)
    .bind(after_id)
    .bind(page.fetch_limit())
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(record).collect()
}

/// Deletes a team; false if it did not exist.
pub async fn delete(tx: &mut TenantTx, id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("DELETE FROM team_members WHERE organization_id = $1 AND team_id = $2")
        .bind(&tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    let deleted = sqlx::query("DELETE FROM teams WHERE organization_id = $1 AND id = $2")
        .bind(&tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// User ids of a team's members.
pub async fn members(tx: &mut TenantTx, team: &str) -> Result<Vec<String>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT user_id FROM team_members WHERE organization_id = $1 AND team_id = $2 ORDER BY created_at, user_id",
    )
    .bind(tenant)
    .bind(team)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| row.try_get(0).map_err(ApiError::from)).collect()
}

/// Team ids a user belongs to.
pub async fn teams_of(tx: &mut TenantTx, user: &str) -> Result<Vec<String>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows =
        sqlx::query("SELECT team_id FROM team_members WHERE organization_id = $1 AND user_id = $2 ORDER BY team_id")
            .bind(tenant)
            .bind(user)
            .fetch_all(tx.connection())
            .await?;
    rows.iter().map(|row| row.try_get(0).map_err(ApiError::from)).collect()
}

/// Adds a member to a team; false if already in it.
pub async fn add_member(tx: &mut TenantTx, team: &str, user: &str, now: i64) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(
        "INSERT INTO team_members (organization_id, team_id, user_id, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (team_id, user_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(team)
    .bind(user)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Removes a member from a team (`None`: from every team); false if nothing was removed.
pub async fn remove_member(tx: &mut TenantTx, team: Option<&str>, user: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let removed = sqlx::query(
        "DELETE FROM team_members WHERE organization_id = $1 AND user_id = $2 AND ($3 IS NULL OR team_id = $3)",
    )
    .bind(tenant)
    .bind(user)
    .bind(team)
    .execute(tx.connection())
    .await?;
    Ok(removed.rows_affected() > 0)
}
