//! The organization's risk appetite, kept from organization.created and
//! organization.updated (`dashboard_settings`); a change starts a new cache generation, so
//! `high_risks` follows it at once.

use std::sync::Arc;

use complianceiq_kit::cache::Cache;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::time;
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use sqlx::Row;

/// The appetite of an organization that set none (the organization service's default).
pub const DEFAULT_RISK_APPETITE: i64 = 50;

/// The transaction's organization's risk appetite.
pub async fn risk_appetite(tx: &mut TenantTx) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT risk_appetite FROM dashboard_settings WHERE organization_id = $1")
        .bind(tenant)
        .fetch_optional(tx.connection())
        .await?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => DEFAULT_RISK_APPETITE,
    })
}

struct Settings {
    database: ModuleDatabase,
    cache: Arc<dyn Cache>,
}

/// The subscription that keeps the settings.
pub fn subscription(database: ModuleDatabase, cache: Arc<dyn Cache>) -> Subscription {
    Subscription {
        consumer: "dashboard-settings",
        events: vec![EventType::OrganizationCreated, EventType::OrganizationUpdated],
        handler: Arc::new(Settings { database, cache }),
    }
}

#[tonic::async_trait]
impl EventHandler for Settings {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let organization = match &event.payload {
            Some(Payload::OrganizationCreated(created)) => created.organization.as_ref(),
            Some(Payload::OrganizationUpdated(updated)) => updated.organization.as_ref(),
            _ => None,
        };
        let (Some(organization), Ok(tenant)) = (organization, OrganizationId::from_stored(&event.organization_id))
        else {
            return Ok(());
        };
        let appetite = organization
            .settings
            .as_ref()
            .and_then(|settings| settings.risk_appetite)
            .map_or(DEFAULT_RISK_APPETITE, i64::from);
        let as_of = event.occur_time.as_ref().map(time::from_timestamp).unwrap_or_else(time::now_micros);
        let mut tx = self.database.write(tenant).await?;
        // An event can arrive again or late: the newest setting wins.
        sqlx::query(
            "INSERT INTO dashboard_settings (organization_id, risk_appetite, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (organization_id) DO UPDATE SET risk_appetite = excluded.risk_appetite, \
             updated_at = excluded.updated_at WHERE dashboard_settings.updated_at <= excluded.updated_at",
        )
        .bind(tenant.to_string())
        .bind(appetite)
        .bind(as_of)
        .execute(tx.connection())
        .await?;
        tx.commit().await?;
        self.cache.increment(&crate::generation_key(tenant), crate::GENERATION_KEPT).await?;
        Ok(())
    }
}
