//! Getting events to endpoints: the fan-out consumer turns each event into a pending delivery
//! per webhook that wants it; one durable job per webhook (kind `webhook-delivery`, id the
//! webhook's) sends its pending deliveries in sequence order, each attempt signed afresh,
//! and waits on the queue (across restarts) until a failed delivery's next attempt is due.
//! A delivery that fails its last attempt fails; an endpoint that has failed every attempt
//! for too long is paused (FAILING) when one does. Either way `webhook.delivery_failed`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use complianceiq_kit::address::{AddressError, CheckingResolver, NetworkAccess, check_literal};
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop};
use complianceiq_kit::secrets::SecretBox;
use complianceiq_kit::subscription::EventHandler;
use complianceiq_kit::time;
use complianceiq_proto::EventPayloadExt;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{Event, WebhookDeliveryFailed};
use complianceiq_proto::complianceiq::webhook::v1::{DeliveryOutcome, WebhookState};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use tokio_util::sync::CancellationToken;

use crate::signing;
use crate::store::{self, DeliveryRecord, WebhookRecord};

/// The queue's name for a webhook's delivery job.
pub const KIND: &str = "webhook-delivery";

/// Bytes of an endpoint's answer kept, for the delivery log's error: enough to say why.
const ANSWER_KEPT: usize = 512;

/// The sealing context of a webhook's secrets: bound to it, so a sealed secret copied into
/// another row does not open there.
pub fn sealing_context(organization: &str, webhook_id: &str) -> String {
    format!("webhook-secret:{organization}:{webhook_id}")
}

/// The JSON body of a message: the Standard Webhooks structure (`type`, `timestamp`,
/// `data`), plus the organization.
pub fn message_body(event_type: &str, occurred_at: i64, organization: &str, data: serde_json::Value) -> String {
    let timestamp = time::to_timestamp(occurred_at);
    let timestamp = ::time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos),
    )
    .ok()
    .and_then(|at| at.format(&::time::format_description::well_known::Rfc3339).ok())
    .unwrap_or_default();
    serde_json::json!({
        "type": event_type,
        "timestamp": timestamp,
        "organization_id": organization,
        "data": data,
    })
    .to_string()
}

/// Events as webhook messages: the payload in proto3 JSON, through the contracts' descriptors.
pub struct Messages {
    event: prost_reflect::MessageDescriptor,
}

impl Messages {
    pub fn new() -> Self {
        let pool =
            DescriptorPool::decode(complianceiq_proto::FILE_DESCRIPTOR_SET).expect("the contracts' descriptors decode");
        let event =
            pool.get_message_by_name("complianceiq.events.v1.Event").expect("the event envelope is in the pool");
        Self { event }
    }

    /// The event's payload as JSON (empty object when it has none).
    pub fn data(&self, event: &Event) -> serde_json::Value {
        let Ok(dynamic) = DynamicMessage::decode(self.event.clone(), event.encode_to_vec().as_slice()) else {
            return serde_json::json!({});
        };
        let options = SerializeOptions::new().stringify_64_bit_integers(true).skip_default_fields(true);
        self.event
            .oneofs()
            .flat_map(|oneof| oneof.fields().collect::<Vec<_>>())
            .filter(|field| dynamic.has_field(field))
            .find_map(|field| match dynamic.get_field(&field).as_ref() {
                prost_reflect::Value::Message(payload) => {
                    payload.serialize_with_options(serde_json::value::Serializer, &options).ok()
                }
                _ => None,
            })
            .unwrap_or_else(|| serde_json::json!({}))
    }
}

/// Whether `event_type` may be subscribed to: every event type but the audit layer's own
/// records (one per mutating call, the trail's raw material).
pub fn deliverable(event_type: &str) -> bool {
    complianceiq_proto::EventType::parse(event_type)
        .is_some_and(|kind| kind != complianceiq_proto::EventType::AuditRecorded)
}

/// Turns events into pending deliveries, one per webhook that wants each.
pub struct Fanout {
    pub database: ModuleDatabase,
    pub messages: Messages,
}

/// Events fanned out per transaction when they wait.
const FANOUT_BATCH: usize = 100;

#[tonic::async_trait]
impl EventHandler for Fanout {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        self.handle_batch(&[event]).await
    }

    fn batch_size(&self) -> usize {
        FANOUT_BATCH
    }

    /// One transaction per organization, its events in the order they came.
    async fn handle_batch(&self, events: &[&Event]) -> Result<(), ApiError> {
        let mut by_organization: Vec<(OrganizationId, Vec<&Event>)> = Vec::new();
        for event in events {
            let Some(payload) = &event.payload else { continue };
            if !deliverable(payload.event_type()) {
                continue;
            }
            let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else { continue };
            match by_organization.iter_mut().find(|(known, _)| *known == organization) {
                Some((_, listed)) => listed.push(event),
                None => by_organization.push((organization, vec![event])),
            }
        }
        for (organization, events) in by_organization {
            let mut tx = self.database.write(organization).await?;
            let webhooks = store::active_webhooks(&mut tx).await?;
            if webhooks.is_empty() {
                continue;
            }
            let mut touched: Vec<&str> = Vec::new();
            for event in events {
                let Some(payload) = &event.payload else { continue };
                let event_type = payload.event_type();
                let occurred_at = event.occur_time.as_ref().map(time::from_timestamp).unwrap_or_else(time::now_micros);
                let body = message_body(event_type, occurred_at, tx.tenant(), self.messages.data(event));
                for webhook in webhooks.iter().filter(|webhook| webhook.wants(event_type)) {
                    // An endpoint's own failure is news for the others, never for itself: a
                    // failing endpoint would feed itself forever.
                    if let Payload::WebhookDeliveryFailed(failed) = payload
                        && failed.webhook_id == webhook.id
                    {
                        continue;
                    }
                    let mut delivery =
                        DeliveryRecord::pending(&webhook.id, &event.id, event_type, body.clone(), time::now_micros());
                    if store::insert_delivery(&mut tx, &mut delivery).await? && !touched.contains(&webhook.id.as_str())
                    {
                        touched.push(&webhook.id);
                    }
                }
            }
            for webhook_id in touched {
                wake(&mut tx, webhook_id).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Queues the webhook's delivery job unless it is queued (it then finds the new deliveries
/// itself). Called with the webhook's row locked (see `store::next_sequence`).
pub async fn wake(tx: &mut TenantTx, webhook_id: &str) -> Result<(), ApiError> {
    if !jobs::is_queued(tx, KIND, webhook_id).await? {
        jobs::enqueue(tx, KIND, webhook_id).await?;
    }
    Ok(())
}

/// What an attempt came to.
#[derive(Debug)]
pub struct Attempt {
    pub response_status: i64,
    pub latency_ms: i64,
    /// Empty when the endpoint answered 2xx.
    pub error: String,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_empty()
    }
}

/// Sends signed messages to endpoints: public addresses only (checked at each connection),
/// no redirects, a deadline, and only the start of an answer read.
pub struct Sender {
    http: reqwest::Client,
    access: NetworkAccess,
}

impl Sender {
    pub fn new(access: NetworkAccess, timeout: Duration) -> Result<Self, String> {
        complianceiq_kit::crypto::install_tls_crypto_provider();
        let http = reqwest::Client::builder()
            .dns_resolver(CheckingResolver { access })
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ComplianceIQ-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("webhook HTTP client: {error}"))?;
        Ok(Self { http, access })
    }

    /// One attempt: `message_id` and `body` signed with each of `keys` at the current time.
    pub async fn send(&self, url: &str, message_id: &str, body: &str, keys: &[Vec<u8>]) -> Attempt {
        let started = Instant::now();
        let mut attempt = self.try_send(url, message_id, body, keys).await;
        attempt.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        attempt
    }

    async fn try_send(&self, url: &str, message_id: &str, body: &str, keys: &[Vec<u8>]) -> Attempt {
        let failed = |error: String| Attempt { response_status: 0, latency_ms: 0, error };
        let Ok(parsed) = url::Url::parse(url) else { return failed("the URL does not parse".into()) };
        // IP literals never reach the resolver, which checks names as it resolves them.
        if let Err(refused) = check_literal(&parsed, self.access) {
            return failed(format!("refused: {refused}"));
        }
        let timestamp = time::now_micros() / 1_000_000;
        let response = self
            .http
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signing::signature_header(keys, message_id, timestamp, body.as_bytes()))
            .body(body.to_string())
            .send()
            .await;
        let mut response = match response {
            Ok(response) => response,
            Err(error) => return failed(transport_error(error)),
        };
        let status = response.status();
        let response_status = i64::from(status.as_u16());
        if status.is_success() {
            return Attempt { response_status, latency_ms: 0, error: String::new() };
        }
        // The start of the answer says why; the rest is not read.
        let mut answer = Vec::new();
        while answer.len() < ANSWER_KEPT {
            match response.chunk().await {
                Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                _ => break,
            }
        }
        answer.truncate(ANSWER_KEPT);
        let answer = String::from_utf8_lossy(&answer);
        let answer: String = answer.chars().filter(|c| !c.is_control()).collect();
        let error = if status.is_redirection() {
            format!("HTTP {status} (redirects are not followed)")
        } else if answer.trim().is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {}", answer.trim())
        };
        Attempt { response_status, latency_ms: 0, error }
    }
}

/// A transport error's causes, without the URL (it may carry a receiver's token).
fn transport_error(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer in time".into();
    }
    let error = error.without_url();
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(refused @ AddressError::Forbidden(_)) = cause.downcast_ref::<AddressError>() {
            return format!("refused: {refused}");
        }
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.dedup();
    chain.join(": ")
}

/// The signing keys of a webhook now: its secret's, and the previous one's during its grace.
pub fn signing_keys(
    secrets: &SecretBox,
    organization: &str,
    webhook: &WebhookRecord,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let context = sealing_context(organization, &webhook.id);
    let open = |sealed: &str| {
        let secret = secrets
            .open(sealed, &context)
            .map_err(|error| ApiError::internal(format!("webhook {}: {error}", webhook.id)))?;
        let secret =
            String::from_utf8(secret).map_err(|_| ApiError::internal("a stored webhook secret is not text"))?;
        signing::key_of(&secret).map_err(ApiError::internal)
    };
    let mut keys = vec![open(&webhook.secret)?];
    if !webhook.previous_secret.is_empty() && webhook.previous_secret_until > time::now_micros() {
        keys.push(open(&webhook.previous_secret)?);
    }
    Ok(keys)
}

/// How deliveries are retried and endpoints paused.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// The wait before each attempt (the first from the event).
    pub schedule: Vec<Duration>,
    /// How long an endpoint may fail every attempt before a final failure pauses it.
    pub disable_after: Duration,
}

impl RetryPolicy {
    /// When attempt number `attempts + 1` is due, after `attempts` failed ones; `None` when
    /// they were the last.
    fn next_attempt(&self, attempts: i64, now: i64) -> Option<i64> {
        let wait = self.schedule.get(usize::try_from(attempts).ok()?)?;
        Some(time::after(now, *wait))
    }
}

/// The delivery jobs.
pub struct Deliveries {
    pub database: ModuleDatabase,
    pub secrets: Arc<SecretBox>,
    pub sender: Sender,
    pub policy: RetryPolicy,
}

/// When a job that stopped on an error looks again, if deliveries are pending.
const AFTER_AN_ERROR: Duration = Duration::from_secs(60);

impl JobHandler for Deliveries {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, stop: &CancellationToken) -> Result<(), Stop> {
        let organization = job.organization.to_string();
        loop {
            if stop.is_cancelled() {
                return Err(Stop::Shutdown);
            }
            let mut tx = self.database.read(job.organization).await?;
            let webhook = store::webhook(&mut tx, &job.id).await?;
            let head = store::next_pending(&mut tx, &job.id).await?;
            tx.commit().await?;
            // Deleted, paused, or nothing left: the job ends (see record_end).
            let (Some(webhook), Some(mut delivery)) = (webhook, head) else { return Ok(()) };
            if webhook.state != WebhookState::Active {
                return Ok(());
            }
            let now = time::now_micros();
            if delivery.next_attempt_at > now {
                return Err(Stop::Later(Duration::from_micros((delivery.next_attempt_at - now) as u64)));
            }
            let keys = signing_keys(&self.secrets, &organization, &webhook)?;
            // An attempt is not interrupted by shutdown: it is bounded by the timeout, and
            // recording it keeps a delivery the receiver has from being sent again.
            let attempt = self.sender.send(&webhook.url, &delivery.message_id, &delivery.body, &keys).await;
            let mut tx = self.database.write(job.organization).await?;
            self.record(&mut tx, &webhook, &mut delivery, attempt).await?;
            job.extend_lease(&mut tx).await?;
            tx.commit().await?;
        }
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        if let Ending::Failed(error) = ending {
            tracing::warn!(webhook_id = %job.id, %error, "webhook delivery job stopped");
        }
        // Taken off the queue in this transaction: with the webhook locked, deliveries the
        // fan-out added since the job last looked are seen here, and queued again.
        store::lock_webhook(tx, &job.id).await?;
        let Some(webhook) = store::webhook(tx, &job.id).await? else { return Ok(()) };
        if webhook.state == WebhookState::Active && store::next_pending(tx, &job.id).await?.is_some() {
            let due = match ending {
                Ending::Failed(_) => time::after(time::now_micros(), AFTER_AN_ERROR),
                _ => 0,
            };
            jobs::enqueue_at(tx, KIND, &job.id, due).await?;
        }
        Ok(())
    }
}

impl Deliveries {
    /// Writes an attempt into the delivery and its webhook.
    pub async fn record(
        &self,
        tx: &mut TenantTx,
        webhook: &WebhookRecord,
        delivery: &mut DeliveryRecord,
        attempt: Attempt,
    ) -> Result<(), ApiError> {
        let now = time::now_micros();
        delivery.attempt_count += 1;
        delivery.response_status = attempt.response_status;
        delivery.latency_ms = attempt.latency_ms;
        if attempt.succeeded() {
            delivery.outcome = DeliveryOutcome::Succeeded;
            delivery.error.clear();
            store::record_attempt(tx, delivery).await?;
            return store::set_failures(tx, &webhook.id, 0, 0, None).await;
        }
        delivery.error = attempt.error;
        let failing_since = if webhook.failing_since > 0 { webhook.failing_since } else { now };
        let mut paused = None;
        match self.policy.next_attempt(delivery.attempt_count, now) {
            Some(due) => delivery.next_attempt_at = due,
            None => {
                delivery.outcome = DeliveryOutcome::Failed;
                let disabled = now.saturating_sub(failing_since) >= self.policy.disable_after.as_micros() as i64;
                if disabled {
                    paused = Some(WebhookState::Failing);
                    tracing::warn!(webhook_id = %webhook.id, "webhook paused: its endpoint has failed for too long");
                }
                let failed = WebhookDeliveryFailed {
                    webhook_id: webhook.id.clone(),
                    delivery_id: delivery.id.clone(),
                    event_id: delivery.message_id.clone(),
                    error: delivery.error.clone(),
                    webhook_disabled: disabled,
                    url: webhook.url.clone(),
                };
                let context = RequestContext { request_id: delivery.message_id.clone(), ..Default::default() };
                tx.emit(Payload::WebhookDeliveryFailed(failed), &context).await?;
            }
        }
        store::record_attempt(tx, delivery).await?;
        store::set_failures(tx, &webhook.id, webhook.consecutive_failures + 1, failing_since, paused).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_follow_the_schedule_then_stop() {
        let policy = RetryPolicy {
            schedule: [0, 5, 300].map(Duration::from_secs).to_vec(),
            disable_after: Duration::from_secs(3600),
        };
        assert_eq!(policy.next_attempt(1, 0), Some(5_000_000));
        assert_eq!(policy.next_attempt(2, 0), Some(300_000_000));
        assert_eq!(policy.next_attempt(3, 0), None);
    }

    #[test]
    fn every_type_but_the_audit_records_is_deliverable() {
        assert!(deliverable("analysis.completed"));
        assert!(deliverable("webhook.delivery_failed"));
        assert!(!deliverable("audit.recorded"));
        assert!(!deliverable("webhook.test"));
        assert!(!deliverable("nonsense"));
    }

    #[test]
    fn a_message_carries_the_payload_as_json() {
        use complianceiq_proto::complianceiq::events::v1::InstanceDeleted;
        let event = Event {
            id: "e1".into(),
            payload: Some(Payload::InstanceDeleted(InstanceDeleted { instance_id: "i1".into() })),
            ..Default::default()
        };
        let data = Messages::new().data(&event);
        assert_eq!(data, serde_json::json!({"instanceId": "i1"}));
        let body: serde_json::Value = serde_json::from_str(&message_body("instance.deleted", 0, "o1", data)).unwrap();
        assert_eq!(body["type"], "instance.deleted");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:00Z");
        assert_eq!(body["organization_id"], "o1");
    }
}
