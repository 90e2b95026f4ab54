//! Daily digests: email for the topics a person gathers (their preference, or the route's
//! default: analysis.completed) waits as a `digest` delivery, and one job per person and
//! organization (kind `notification-digest`, id `<organization>/<user>`) due at their next
//! digest time (`digest_time` in their time zone) sends all that waited as one mail. Up to
//! 500 items go in one digest; whatever arrived while it was being sent, or did not fit,
//! goes in the next.

use std::sync::Arc;

use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop};
use complianceiq_kit::mail::Mailer;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::notification::v1::DeliveryState;
use tokio_util::sync::CancellationToken;

use crate::email::{Templates, sent};
use crate::{quiet, store};

pub const KIND: &str = "notification-digest";

/// The digest job of `user_id` in the transaction's organization.
pub fn job_id(tx: &TenantTx, user_id: &str) -> String {
    format!("{}/{user_id}", tx.tenant())
}

fn user_of(job: &Job) -> &str {
    job.id.split_once('/').map_or("", |(_, user)| user)
}

/// Makes sure `user_id`'s next digest is queued, at their digest time.
pub async fn schedule(tx: &mut TenantTx, user_id: &str, digest_time: &str, time_zone: &str) -> Result<(), ApiError> {
    let due = quiet::next_at(digest_time, time_zone, time::now_micros())
        .or_else(|| quiet::next_at("", "", time::now_micros()))
        .unwrap_or(0);
    let id = job_id(tx, user_id);
    jobs::enqueue_unless_queued(tx, KIND, &id, due).await?;
    Ok(())
}

/// The digest jobs.
pub struct Digests {
    pub database: ModuleDatabase,
    pub mailer: Arc<dyn Mailer>,
    pub templates: Arc<Templates>,
}

impl JobHandler for Digests {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, _stop: &CancellationToken) -> Result<(), Stop> {
        let user_id = user_of(job);
        let mut tx = self.database.read(job.organization).await?;
        let waiting = store::digest_deliveries(&mut tx, user_id).await?;
        tx.commit().await?;
        let Some((last, _)) = waiting.last() else { return Ok(()) };
        let notifications: Vec<_> = waiting.iter().map(|(_, notification)| notification.clone()).collect();
        let custom = store::custom_template(&self.database, job.organization, "digest").await?;
        let mail = self.templates.digest(&last.address, &notifications, custom.as_ref())?;
        self.mailer.send(mail).await.map_err(|error| Stop::Retry(error.to_string()))?;
        let mut tx = self.database.write(job.organization).await?;
        for (delivery, notification) in &waiting {
            store::finish_delivery(&mut tx, &delivery.id, DeliveryState::Sent, "").await?;
            sent(&mut tx, notification, "email").await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        let user_id = user_of(job).to_string();
        let waiting = store::digest_deliveries(tx, &user_id).await?;
        if let Ending::Failed(error) = ending {
            tracing::warn!(job_id = %job.id, %error, "a notification digest could not be sent");
            for (delivery, _) in &waiting {
                store::finish_delivery(tx, &delivery.id, DeliveryState::Failed, error).await?;
            }
            return Ok(());
        }
        // What arrived while this one was sent waits for the next digest time.
        if !waiting.is_empty() {
            let preferences = store::preferences(tx, &user_id).await?.unwrap_or_default();
            let zone = match preferences.time_zone {
                zone if zone.is_empty() => store::profile_time_zone(tx, &user_id).await?,
                zone => zone,
            };
            schedule(tx, &user_id, &preferences.digest_time, &zone).await?;
        }
        Ok(())
    }
}
