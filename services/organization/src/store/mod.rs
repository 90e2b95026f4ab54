//! The organization service's SQL, one function per query. Every query runs in a
//! [`TenantTx`] and is filtered by its tenant (for this table, the row's own id).

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::{OrganizationRecord, Settings, State, parse_plan, plan_as_str};

macro_rules! columns {
    () => {
        "id, display_name, slug, state, plan, default_timezone, data_retention_days, require_mfa, \
         allowed_email_domains, revision, created_at, updated_at, deleted_at, purge_at, risk_appetite"
    };
}

fn record(row: &AnyRow) -> Result<OrganizationRecord, ApiError> {
    let domains: String = row.try_get("allowed_email_domains")?;
    Ok(OrganizationRecord {
        id: OrganizationId::from_stored(&row.try_get::<String, _>("id")?)?,
        display_name: row.try_get("display_name")?,
        slug: row.try_get("slug")?,
        state: State::parse(&row.try_get::<String, _>("state")?)?,
        plan: parse_plan(&row.try_get::<String, _>("plan")?)?,
        settings: Settings {
            default_timezone: row.try_get("default_timezone")?,
            data_retention_days: row.try_get("data_retention_days")?,
            require_mfa: row.try_get::<i64, _>("require_mfa")? != 0,
            // Domain names cannot contain spaces, so a space-separated list is unambiguous.
            allowed_email_domains: domains.split_whitespace().map(str::to_string).collect(),
            risk_appetite: row.try_get("risk_appetite")?,
        },
        revision: row.try_get("revision")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deleted_at: row.try_get("deleted_at")?,
        purge_at: row.try_get("purge_at")?,
    })
}

/// Inserts the organization the transaction is scoped to. Returns false, changing nothing,
/// when its slug is taken (by any organization, including ones this tenant cannot see).
pub async fn insert(tx: &mut TenantTx, organization: &OrganizationRecord) -> Result<bool, ApiError> {
    if organization.id != tx.organization_id() {
        return Err(ApiError::internal("inserting an organization outside its own tenant scope"));
    }
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(concat!(
        "INSERT INTO organizations (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (slug) DO NOTHING"
    ))
    .bind(tenant)
    .bind(&organization.display_name)
    .bind(&organization.slug)
    .bind(organization.state.as_str())
    .bind(plan_as_str(organization.plan))
    .bind(&organization.settings.default_timezone)
    .bind(organization.settings.data_retention_days)
    .bind(i64::from(organization.settings.require_mfa))
    .bind(organization.settings.allowed_email_domains.join(" "))
    .bind(organization.revision)
    .bind(organization.created_at)
    .bind(organization.updated_at)
    .bind(organization.deleted_at)
    .bind(organization.purge_at)
    .bind(organization.settings.risk_appetite)
    .execute(tx.connection())
    .await?;
    let inserted = inserted.rows_affected() == 1;
    if inserted {
        directory::mirror(tx, organization).await?;
    }
    Ok(inserted)
}

/// The tenant's organization unless it was deleted.
pub async fn find_live(tx: &mut TenantTx) -> Result<Option<OrganizationRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM organizations WHERE id = $1 AND state <> 'deleted'"))
        .bind(tenant)
        .fetch_optional(tx.connection())
        .await?;
    row.as_ref().map(record).transpose()
}

/// Writes `organization` if the stored revision is still `expected_revision`; false when a
/// concurrent change got there first.
pub async fn update(
    tx: &mut TenantTx,
    organization: &OrganizationRecord,
    expected_revision: i64,
) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let updated = sqlx::query(
        "UPDATE organizations SET display_name = $2, state = $3, default_timezone = $4, \
         data_retention_days = $5, require_mfa = $6, allowed_email_domains = $7, revision = $8, \
         updated_at = $9, deleted_at = $10, purge_at = $11, risk_appetite = $13 \
         WHERE id = $1 AND revision = $12",
    )
    .bind(tenant)
    .bind(&organization.display_name)
    .bind(organization.state.as_str())
    .bind(&organization.settings.default_timezone)
    .bind(organization.settings.data_retention_days)
    .bind(i64::from(organization.settings.require_mfa))
    .bind(organization.settings.allowed_email_domains.join(" "))
    .bind(organization.revision)
    .bind(organization.updated_at)
    .bind(organization.deleted_at)
    .bind(organization.purge_at)
    .bind(expected_revision)
    .bind(organization.settings.risk_appetite)
    .execute(tx.connection())
    .await?;
    let updated = updated.rows_affected() == 1;
    if updated {
        directory::mirror(tx, organization).await?;
    }
    Ok(updated)
}

pub mod directory;
pub mod members;
pub mod subscriptions;
pub mod teams;

/// Records the plan an organization is on (the subscription owns it).
pub async fn set_plan(tx: &mut TenantTx, plan: &str, now: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("UPDATE organizations SET plan = $2, updated_at = $3, revision = revision + 1 WHERE id = $1")
        .bind(tenant)
        .bind(plan)
        .bind(now)
        .execute(tx.connection())
        .await?;
    directory::set_plan(tx, plan, now).await
}
