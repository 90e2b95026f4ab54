//! Email: each notification as a multipart message (plain text and HTML from templates,
//! `minijinja`, HTML escaped), sent by a durable job per delivery (kind `notification-email`,
//! id the delivery's) through the kit's mailer (SMTP, or the dev mailbox). A failed send is
//! retried with the kit's backoff; after the last attempt the delivery is FAILED.

use std::sync::Arc;

use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::jobs::{Ending, Job, JobHandler, Stop};
use complianceiq_kit::mail::Mailer;
use complianceiq_proto::complianceiq::events::v1::NotificationSent;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::notification::v1::{DeliveryState, Notification};
use tokio_util::sync::CancellationToken;

use crate::store;
pub use crate::templates::Templates;

pub const KIND: &str = "notification-email";

/// The email jobs.
pub struct Emails {
    pub database: ModuleDatabase,
    pub mailer: Arc<dyn Mailer>,
    pub templates: Arc<Templates>,
}

impl JobHandler for Emails {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, _stop: &CancellationToken) -> Result<(), Stop> {
        let custom = store::custom_template(&self.database, job.organization, "notification").await?;
        deliver(&self.database, job, "email", async |delivery, notification| {
            let mail = self.templates.mail(&delivery.address, notification, custom.as_ref())?;
            self.mailer.send(mail).await.map_err(|error| Stop::Retry(error.to_string()))
        })
        .await
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        failed(tx, job, ending, "email").await
    }
}

/// One delivery job of a channel: the delivery and its notification read, `send` run if both
/// are still there and it is pending, then the delivery marked SENT and `notification.sent`
/// emitted together.
pub async fn deliver(
    database: &ModuleDatabase,
    job: &Job,
    channel: &str,
    send: impl AsyncFnOnce(&store::Delivery, &Notification) -> Result<(), Stop>,
) -> Result<(), Stop> {
    let mut tx = database.read(job.organization).await?;
    let Some(delivery) = store::delivery(&mut tx, &job.id).await? else { return Ok(()) };
    let notification = store::notification(&mut tx, None, &delivery.notification_id).await?;
    tx.commit().await?;
    // Deleted by its reader, or already sent (a resumed job): nothing to send.
    let Some(notification) = notification else { return Ok(()) };
    if delivery.state != DeliveryState::Pending {
        return Ok(());
    }
    send(&delivery, &notification).await?;
    let mut tx = database.write(job.organization).await?;
    store::finish_delivery(&mut tx, &delivery.id, DeliveryState::Sent, "").await?;
    sent(&mut tx, &notification, channel).await?;
    tx.commit().await?;
    Ok(())
}

/// A delivery job's end: FAILED with the reason after its last attempt.
pub async fn failed(tx: &mut TenantTx, job: &Job, ending: &Ending, channel: &str) -> Result<(), ApiError> {
    if let Ending::Failed(error) = ending {
        tracing::warn!(delivery_id = %job.id, channel, %error, "a notification could not be delivered");
        store::finish_delivery(tx, &job.id, DeliveryState::Failed, error).await?;
    }
    Ok(())
}

/// Emits `notification.sent` for a notification delivered on `channel`.
pub async fn sent(tx: &mut TenantTx, notification: &Notification, channel: &str) -> Result<(), ApiError> {
    let mut sent = NotificationSent {
        notification_id: notification.id.clone(),
        user_id: notification.user_id.clone(),
        topic: notification.topic.clone(),
        channels: vec![channel.to_string()],
        ..Default::default()
    };
    if channel == "webhook" {
        sent.title = notification.title.clone();
        sent.body = notification.body.clone();
        sent.link_uri = notification.link_uri.clone();
        sent.severity = notification.severity().as_str_name().trim_start_matches("SEVERITY_").to_string();
    }
    let payload = Payload::NotificationSent(sent);
    let context = RequestContext { request_id: notification.id.clone(), ..Default::default() };
    tx.emit(payload, &context).await?;
    Ok(())
}
