//! Subscriptions and usage counters.

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use sqlx::Row;

/// A subscription as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub plan: String,
    pub state: String,
    pub billing_provider: String,
    pub billing_email: String,
    pub external_customer_id: Option<String>,
    pub external_subscription_id: Option<String>,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Inserts or replaces the organization's subscription.
pub async fn save(tx: &mut TenantTx, subscription: &SubscriptionRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO subscriptions (organization_id, plan, state, billing_provider, billing_email, external_customer_id, \
           external_subscription_id, current_period_start, current_period_end, cancel_at_period_end, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (organization_id) DO UPDATE SET plan = excluded.plan, state = excluded.state, \
           billing_provider = excluded.billing_provider, billing_email = excluded.billing_email, \
           external_customer_id = excluded.external_customer_id, external_subscription_id = excluded.external_subscription_id, \
           current_period_start = excluded.current_period_start, current_period_end = excluded.current_period_end, \
           cancel_at_period_end = excluded.cancel_at_period_end, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(&subscription.plan)
    .bind(&subscription.state)
    .bind(&subscription.billing_provider)
    .bind(&subscription.billing_email)
    .bind(&subscription.external_customer_id)
    .bind(&subscription.external_subscription_id)
    .bind(subscription.current_period_start)
    .bind(subscription.current_period_end)
    .bind(i64::from(subscription.cancel_at_period_end))
    .bind(subscription.created_at)
    .bind(subscription.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The organization's subscription.
pub async fn get(tx: &mut TenantTx) -> Result<Option<SubscriptionRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT plan, state, billing_provider, billing_email, external_customer_id, external_subscription_id, \
         current_period_start, current_period_end, cancel_at_period_end, created_at, updated_at \
         FROM subscriptions WHERE organization_id = $1",
    )
    .bind(tenant)
    .fetch_optional(tx.connection())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(SubscriptionRecord {
        plan: row.try_get("plan")?,
        state: row.try_get("state")?,
        billing_provider: row.try_get("billing_provider")?,
        billing_email: row.try_get("billing_email")?,
        external_customer_id: row.try_get("external_customer_id")?,
        external_subscription_id: row.try_get("external_subscription_id")?,
        current_period_start: row.try_get("current_period_start")?,
        current_period_end: row.try_get("current_period_end")?,
        cancel_at_period_end: row.try_get::<i64, _>("cancel_at_period_end")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    }))
}

/// Adds `delta` to a counter.
pub async fn add_usage(tx: &mut TenantTx, metric: &str, period_start: i64, delta: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO usage_counters (organization_id, metric, period_start, value) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (organization_id, metric, period_start) DO UPDATE SET value = usage_counters.value + excluded.value",
    )
    .bind(tenant)
    .bind(metric)
    .bind(period_start)
    .bind(delta)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// A counter's value (0 when never counted).
pub async fn usage(tx: &mut TenantTx, metric: &str, period_start: i64) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT value FROM usage_counters WHERE organization_id = $1 AND metric = $2 AND period_start = $3",
    )
    .bind(tenant)
    .bind(metric)
    .bind(period_start)
    .fetch_optional(tx.connection())
    .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?.unwrap_or(0))
}
