//! Retention: an organization's `data_retention_days` setting bounds how long a module keeps
//! its history. The kit keeps each organization's setting per database (`ciq_retention`, from
//! organization.created and organization.updated) and runs the module's purge for it: at
//! once when the setting arrives (a shorter retention applies when it is set) and every
//! [`SWEEP_EVERY`] for every organization heard of. The module says what its purge removes
//! as DELETE statements, run in order in one tenant transaction with `$1` the organization
//! and `$2` the cutoff (µs: what ended before it goes).

use std::sync::Arc;
use std::time::Duration;

use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::db::ModuleDatabase;
use crate::error::ApiError;
use crate::ids::OrganizationId;
use crate::module::Worker;
use crate::subscription::{EventHandler, Subscription};
use crate::time;

/// The organization module's default, for an organization whose setting is unset (0).
pub const DEFAULT_DAYS: i64 = 365;

/// How often every organization is swept: retention is counted in days, so an hour late is
/// within its precision.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// One module's retention: its purge over its database, as (what it removes, DELETE
/// statement binding `$1` the organization and `$2` the cutoff), run in order.
#[derive(Clone)]
pub struct Retention {
    pub module: &'static str,
    pub database: ModuleDatabase,
    pub purge: &'static [(&'static str, &'static str)],
}

impl Retention {
    /// The consumer that notes each organization's setting and purges it at once.
    pub fn subscription(&self, consumer: &'static str) -> Subscription {
        Subscription {
            consumer,
            events: vec![EventType::OrganizationCreated, EventType::OrganizationUpdated],
            handler: Arc::new(self.clone()),
        }
    }

    /// The periodic sweep over every organization with a setting.
    pub fn worker(self) -> Worker {
        Worker {
            name: "retention",
            run: Box::new(move |stop: CancellationToken| {
                Box::pin(async move {
                    loop {
                        if let Err(error) = self.sweep().await {
                            tracing::warn!(module = self.module, %error, "retention sweep failed; the next one retries");
                        }
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(SWEEP_EVERY) => {}
                        }
                    }
                })
            }),
        }
    }

    /// Purges every organization with a setting.
    pub async fn sweep(&self) -> Result<(), ApiError> {
        let mut tx = self.database.global_read().await?;
        let settings =
            sqlx::query("SELECT organization_id, retention_days FROM ciq_retention ORDER BY organization_id")
                .fetch_all(tx.connection())
                .await?;
        tx.commit().await?;
        for row in &settings {
            let organization = OrganizationId::from_stored(&row.try_get::<String, _>(0)?)?;
            self.purge_organization(organization, row.try_get(1)?).await?;
        }
        Ok(())
    }

    /// Purges one organization under a retention of `days`.
    async fn purge_organization(&self, organization: OrganizationId, days: i64) -> Result<(), ApiError> {
        let cutoff = time::now_micros().saturating_sub(days.max(1).saturating_mul(DAY_MICROS));
        let mut tx = self.database.write(organization).await?;
        let mut removed = Vec::new();
        for &(what, statement) in self.purge {
            let done =
                sqlx::query(statement).bind(tx.tenant().to_string()).bind(cutoff).execute(tx.connection()).await?;
            if done.rows_affected() > 0 {
                removed.push(format!("{what}={}", done.rows_affected()));
            }
        }
        tx.commit().await?;
        if !removed.is_empty() {
            tracing::info!(
                module = self.module,
                organization_id = %organization,
                retention_days = days,
                removed = %removed.join(" "),
                "data past its retention removed"
            );
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl EventHandler for Retention {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let organization = match &event.payload {
            Some(Payload::OrganizationCreated(created)) => created.organization.as_ref(),
            Some(Payload::OrganizationUpdated(updated)) => updated.organization.as_ref(),
            _ => return Ok(()),
        };
        let (Some(organization), Ok(tenant)) = (organization, OrganizationId::from_stored(&event.organization_id))
        else {
            tracing::warn!(event_id = %event.id, "organization event without an organization");
            return Ok(());
        };
        let days = match organization.settings.as_ref().map(|settings| i64::from(settings.data_retention_days)) {
            Some(days) if days > 0 => days,
            _ => DEFAULT_DAYS,
        };
        let as_of = event.occur_time.as_ref().map(time::from_timestamp).unwrap_or_else(time::now_micros);
        let mut tx = self.database.global_write().await?;
        // An event can arrive again or late: the newest setting wins.
        sqlx::query(
            "INSERT INTO ciq_retention (organization_id, retention_days, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (organization_id) DO UPDATE SET retention_days = excluded.retention_days, \
             updated_at = excluded.updated_at WHERE ciq_retention.updated_at <= excluded.updated_at",
        )
        .bind(tenant.to_string())
        .bind(days)
        .bind(as_of)
        .execute(tx.connection())
        .await?;
        tx.commit().await?;
        self.purge_organization(tenant, days).await
    }
}
