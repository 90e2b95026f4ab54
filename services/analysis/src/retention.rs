//! Retention: an organization's `data_retention_days` bounds how long the analysis module
//! keeps its analyses and the past versions of records. A purge removes, for one
//! organization, what ended or stopped being current before the cutoff:
//! - analysis jobs that ended before it, with their results;
//! - sync points stored before it, except each instance's latest and any a kept job read
//!   (a replay on a removed point is refused with POINT_NOT_STORED);
//! - past record versions replaced before it that no kept point can see (a version is seen
//!   at point T when `valid_from <= T < valid_to`, so one replaced at or before the earliest
//!   kept point is seen by none).
//!
//! Current records, running jobs and everything of other organizations stay. A purge runs
//! when the setting arrives (organization.created, organization.updated) and every
//! [`SWEEP_EVERY`] for every organization the module has heard of.

use std::time::Duration;

use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::subscription::EventHandler;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

/// The organization module's default, for an organization whose setting is unset (0).
pub const DEFAULT_DAYS: i64 = 365;

/// How often every organization is swept: retention is counted in days, so an hour late is
/// within its precision.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// What one purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub jobs: u64,
    pub sync_points: u64,
    pub record_versions: u64,
}

/// Removes what ended before `now_micros - days` for the transaction's organization.
pub async fn purge(tx: &mut TenantTx, days: i64, now_micros: i64) -> Result<Purged, ApiError> {
    let cutoff = now_micros.saturating_sub(days.max(1).saturating_mul(DAY_MICROS));
    let tenant = tx.tenant().to_string();
    let run = |sql: &'static str| sqlx::query(sql).bind(tenant.clone()).bind(cutoff);
    run("DELETE FROM analysis_results WHERE organization_id = $1 AND job_id IN ( \
           SELECT id FROM analysis_jobs WHERE organization_id = $1 AND ended_at IS NOT NULL AND ended_at < $2)")
    .execute(tx.connection())
    .await?;
    let jobs = run("DELETE FROM analysis_jobs WHERE organization_id = $1 AND ended_at IS NOT NULL AND ended_at < $2")
        .execute(tx.connection())
        .await?
        .rows_affected();
    let sync_points = run("DELETE FROM grc_sync_points WHERE organization_id = $1 AND stored_through < $2 \
           AND stored_through < (SELECT MAX(latest.stored_through) FROM grc_sync_points latest \
             WHERE latest.organization_id = $1 AND latest.instance_id = grc_sync_points.instance_id) \
           AND NOT EXISTS (SELECT 1 FROM analysis_jobs kept \
             WHERE kept.organization_id = $1 AND kept.data_as_of_sync_run_id = grc_sync_points.sync_run_id)")
    .execute(tx.connection())
    .await?
    .rows_affected();
    let record_versions = run("DELETE FROM grc_record_history WHERE organization_id = $1 AND valid_to < $2 \
           AND NOT EXISTS (SELECT 1 FROM grc_sync_points kept WHERE kept.organization_id = $1 \
             AND kept.instance_id = grc_record_history.instance_id AND kept.stored_through < grc_record_history.valid_to)")
    .execute(tx.connection())
    .await?
    .rows_affected();
    Ok(Purged { jobs, sync_points, record_versions })
}

/// Notes an organization's retention and purges it at once (a shorter retention applies
/// when it is set, not an hour later).
pub struct RetentionSetting {
    pub database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for RetentionSetting {
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
        // Events of one organization can arrive again or late: the newest setting wins.
        sqlx::query(
            "INSERT INTO analysis_retention (organization_id, retention_days, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (organization_id) DO UPDATE SET retention_days = excluded.retention_days, \
             updated_at = excluded.updated_at WHERE analysis_retention.updated_at <= excluded.updated_at",
        )
        .bind(tenant.to_string())
        .bind(days)
        .bind(as_of)
        .execute(tx.connection())
        .await?;
        tx.commit().await?;
        purge_organization(&self.database, tenant).await
    }
}

/// Purges one organization under the retention it has now.
async fn purge_organization(database: &ModuleDatabase, organization: OrganizationId) -> Result<(), ApiError> {
    let mut tx = database.global_read().await?;
    let days: Option<i64> = sqlx::query("SELECT retention_days FROM analysis_retention WHERE organization_id = $1")
        .bind(organization.to_string())
        .fetch_optional(tx.connection())
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    tx.commit().await?;
    let days = days.unwrap_or(DEFAULT_DAYS);
    let mut tx = database.write(organization).await?;
    let purged = purge(&mut tx, days, time::now_micros()).await?;
    tx.commit().await?;
    if purged != Purged::default() {
        tracing::info!(
            organization_id = %organization,
            retention_days = days,
            jobs = purged.jobs,
            sync_points = purged.sync_points,
            record_versions = purged.record_versions,
            "analysis data past its retention removed"
        );
    }
    Ok(())
}

/// Purges every organization the module has a retention for.
pub async fn sweep(database: &ModuleDatabase) -> Result<(), ApiError> {
    let mut tx = database.global_read().await?;
    let organizations: Vec<String> =
        sqlx::query("SELECT organization_id FROM analysis_retention ORDER BY organization_id")
            .fetch_all(tx.connection())
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
    tx.commit().await?;
    for organization in organizations {
        purge_organization(database, OrganizationId::from_stored(&organization)?).await?;
    }
    Ok(())
}

/// The periodic sweep, for the module's parts.
pub fn worker(database: ModuleDatabase) -> complianceiq_kit::module::Worker {
    complianceiq_kit::module::Worker {
        name: "analysis-retention",
        run: Box::new(move |stop: CancellationToken| {
            Box::pin(async move {
                loop {
                    if let Err(error) = sweep(&database).await {
                        tracing::warn!(%error, "retention sweep failed; the next one retries");
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
