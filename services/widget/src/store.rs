//! The widget store: every query filters by the transaction's tenant.

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_proto::complianceiq::widget::v1::{Widget, WidgetTemplate};
use prost::Message;
use sqlx::Row;

/// A widget's row: its current version and state (the definition is the version's).
#[derive(Clone, Debug)]
pub struct WidgetRow {
    pub id: String,
    pub name: String,
    pub version: i64,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version: the widget's definition then.
#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: i64,
    pub definition: Widget,
    pub created_by: String,
    pub created_at: i64,
}

/// One deployment.
#[derive(Clone, Debug, Default)]
pub struct DeploymentRow {
    pub id: String,
    pub widget_id: String,
    pub widget_version: i64,
    pub instance_id: String,
    pub state: String,
    pub action: String,
    pub sys_id: String,
    pub error: String,
    pub deployed_by: String,
    pub created_at: i64,
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, ApiError> {
    M::decode(bytes).map_err(|e| ApiError::internal(format!("a stored widget definition does not decode: {e}")))
}

fn widget_row(row: &sqlx::any::AnyRow) -> Result<WidgetRow, ApiError> {
    Ok(WidgetRow {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        version: row.try_get(2)?,
        state: row.try_get(3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

const WIDGET_COLUMNS: &str = "id, name, version, state, created_at, updated_at";
const DEPLOYMENT_COLUMNS: &str =
    "id, widget_id, widget_version, instance_id, state, action, sys_id, error, deployed_by, created_at";

fn deployment_row(row: &sqlx::any::AnyRow) -> Result<DeploymentRow, ApiError> {
    Ok(DeploymentRow {
        id: row.try_get(0)?,
        widget_id: row.try_get(1)?,
        widget_version: row.try_get(2)?,
        instance_id: row.try_get(3)?,
        state: row.try_get(4)?,
        action: row.try_get(5)?,
        sys_id: row.try_get(6)?,
        error: row.try_get(7)?,
        deployed_by: row.try_get(8)?,
        created_at: row.try_get(9)?,
    })
}

/// Whether the organization has a widget named `name` other than `except`.
pub async fn name_taken(tx: &mut TenantTx, name: &str, except: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT 1 FROM widgets WHERE organization_id = $1 AND name = $2 AND id <> $3")
        .bind(tenant)
        .bind(name)
        .bind(except)
        .fetch_optional(tx.connection())
        .await?;
    Ok(row.is_some())
}

pub async fn insert_widget(tx: &mut TenantTx, widget: &WidgetRow) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO widgets (organization_id, {WIDGET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )))
    .bind(tenant)
    .bind(&widget.id)
    .bind(&widget.name)
    .bind(widget.version)
    .bind(&widget.state)
    .bind(widget.created_at)
    .bind(widget.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

pub async fn save_widget(tx: &mut TenantTx, widget: &WidgetRow) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE widgets SET name = $3, version = $4, state = $5, updated_at = $6 WHERE organization_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&widget.id)
    .bind(&widget.name)
    .bind(widget.version)
    .bind(&widget.state)
    .bind(widget.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

pub async fn widget(tx: &mut TenantTx, id: &str) -> Result<Option<WidgetRow>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {WIDGET_COLUMNS} FROM widgets WHERE organization_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(widget_row).transpose()
}

/// Widgets newest first (ids are time-ordered) after the id `after`, each with its current
/// version's definition (one query).
pub async fn widgets_page(tx: &mut TenantTx, after: &str, limit: i64) -> Result<Vec<(WidgetRow, Widget)>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT w.id, w.name, w.version, w.state, w.created_at, w.updated_at, v.definition FROM widgets w \
         JOIN widget_versions v ON v.organization_id = w.organization_id AND v.widget_id = w.id \
         AND v.version = w.version WHERE w.organization_id = $1 AND ($2 = '' OR w.id < $2) \
         ORDER BY w.id DESC LIMIT $3",
    )
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((widget_row(row)?, decode(&row.try_get::<Vec<u8>, _>(6)?)?))).collect()
}

/// Deletes a widget with its versions and deployment history.
pub async fn delete_widget(tx: &mut TenantTx, id: &str) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    for table in ["widget_deployments", "widget_versions"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE organization_id = $1 AND widget_id = $2")))
            .bind(&tenant)
            .bind(id)
            .execute(tx.connection())
            .await?;
    }
    sqlx::query("DELETE FROM widgets WHERE organization_id = $1 AND id = $2")
        .bind(&tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

pub async fn insert_version(tx: &mut TenantTx, widget_id: &str, version: &VersionRow) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO widget_versions (organization_id, widget_id, version, definition, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant)
    .bind(widget_id)
    .bind(version.version)
    .bind(version.definition.encode_to_vec())
    .bind(&version.created_by)
    .bind(version.created_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// A widget's versions newest first, below `before` (0: from the newest).
pub async fn versions(
    tx: &mut TenantTx,
    widget_id: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<VersionRow>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT version, definition, created_by, created_at FROM widget_versions WHERE organization_id = $1 \
         AND widget_id = $2 AND ($3 = 0 OR version < $3) ORDER BY version DESC LIMIT $4",
    )
    .bind(tenant)
    .bind(widget_id)
    .bind(before)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter()
        .map(|row| {
            let bytes: Vec<u8> = row.try_get(1)?;
            Ok(VersionRow {
                version: row.try_get(0)?,
                definition: decode(&bytes)?,
                created_by: row.try_get(2)?,
                created_at: row.try_get(3)?,
            })
        })
        .collect()
}

/// Version `version` of a widget.
pub async fn version(tx: &mut TenantTx, widget_id: &str, version: i64) -> Result<Option<VersionRow>, ApiError> {
    Ok(versions(tx, widget_id, version + 1, 1).await?.into_iter().find(|found| found.version == version))
}

pub async fn insert_deployment(tx: &mut TenantTx, deployment: &DeploymentRow) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO widget_deployments (organization_id, {DEPLOYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
         $8, $9, $10, $11)"
    )))
    .bind(tenant)
    .bind(&deployment.id)
    .bind(&deployment.widget_id)
    .bind(deployment.widget_version)
    .bind(&deployment.instance_id)
    .bind(&deployment.state)
    .bind(&deployment.action)
    .bind(&deployment.sys_id)
    .bind(&deployment.error)
    .bind(&deployment.deployed_by)
    .bind(deployment.created_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// A widget's deployments newest first after the id `after`.
pub async fn deployments(
    tx: &mut TenantTx,
    widget_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<DeploymentRow>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM widget_deployments WHERE organization_id = $1 AND widget_id = $2 \
         AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
    )))
    .bind(tenant)
    .bind(widget_id)
    .bind(after)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(deployment_row).collect()
}

/// The instances where the widget's record stands now: each instance's latest successful
/// deployment, unless that removed it.
pub async fn live_instances(tx: &mut TenantTx, widget_id: &str) -> Result<Vec<String>, ApiError> {
    let mut latest: Vec<(String, String)> = Vec::new();
    for deployment in deployments(tx, widget_id, "", i64::MAX).await? {
        if deployment.state == "succeeded" && !latest.iter().any(|(instance, _)| *instance == deployment.instance_id) {
            latest.push((deployment.instance_id, deployment.action));
        }
    }
    Ok(latest.into_iter().filter(|(_, action)| action != "removed").map(|(instance, _)| instance).collect())
}

pub async fn insert_template(tx: &mut TenantTx, template: &WidgetTemplate, created_at: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO widget_templates (organization_id, id, name, definition, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant)
    .bind(&template.id)
    .bind(&template.name)
    .bind(template.encode_to_vec())
    .bind(created_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The organization's own templates, oldest first.
pub async fn templates(tx: &mut TenantTx) -> Result<Vec<WidgetTemplate>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query("SELECT definition FROM widget_templates WHERE organization_id = $1 ORDER BY id")
        .bind(tenant)
        .fetch_all(tx.connection())
        .await?;
    rows.iter().map(|row| decode(&row.try_get::<Vec<u8>, _>(0)?)).collect()
}
