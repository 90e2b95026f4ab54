//! The webhook service (port 8012, core_db): partner endpoints subscribed to platform
//! events, deliveries signed per the Standard Webhooks specification (`signing`), durable and
//! in order per endpoint, retried on the specification's schedule (`delivery`), and their log.

mod delivery;
mod signing;
mod store;

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::address::{AddressError, NetworkAccess, check_url};
use complianceiq_kit::auth::caller;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::{Migration, ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::{OrganizationId, parse_uuid};
use complianceiq_kit::jobs;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::retention::Retention;
use complianceiq_kit::secrets::SecretBox;
use complianceiq_kit::subscription::Subscription;
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration, time};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::webhook::v1::webhook_service_server::{WebhookService, WebhookServiceServer};
use complianceiq_proto::complianceiq::webhook::v1::*;
use tonic::{Request, Response, Status};

use crate::delivery::{Deliveries, Fanout, Messages, RetryPolicy, Sender};
use crate::store::{DeliveryRecord, WebhookRecord};

pub use signing::signature_header;

const MIGRATIONS: &[Migration] = &[migration!(1, "0001_webhooks")];

/// Webhooks an organization may have.
pub const MAX_WEBHOOKS: i64 = 50;
/// Event types one webhook may name.
const MAX_EVENT_TYPES: usize = 64;
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 500;

struct WebhookApi {
    database: ModuleDatabase,
    secrets: Arc<SecretBox>,
    deliveries: Arc<Deliveries>,
    access: NetworkAccess,
    secret_grace: Duration,
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("Webhook", id)
}

/// The fields an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mutable {
    Url,
    Description,
    EventTypes,
    Secret,
    State,
}

impl Mutable {
    const ALL: [Mutable; 5] = [Self::Url, Self::Description, Self::EventTypes, Self::Secret, Self::State];

    fn path(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::Description => "description",
            Self::EventTypes => "event_types",
            Self::Secret => "secret",
            Self::State => "state",
        }
    }
}

const OUTPUT_ONLY_PATHS: [&str; 7] = [
    "id",
    "organization_id",
    "consecutive_failures",
    "create_time",
    "update_time",
    "etag",
    "previous_secret_expire_time",
];

impl WebhookApi {
    /// Checks a URL: https (http only where private networks are allowed), a host, no
    /// credentials, and every address it resolves to one the platform may reach.
    async fn check_url(&self, violations: &mut FieldViolations, field: &str, value: &str) -> String {
        let value = value.trim();
        if value.is_empty() {
            violations.required(field);
            return String::new();
        }
        if value.chars().count() > MAX_URL {
            violations.add(field, "TOO_LONG", format!("{field} must be at most {MAX_URL} characters"));
            return String::new();
        }
        let Ok(url) = url::Url::parse(value) else {
            violations.add(field, "INVALID_FORMAT", format!("{field} must be an absolute https URL"));
            return String::new();
        };
        let insecure_allowed = self.access == NetworkAccess::AllowPrivate;
        match url.scheme() {
            "https" => {}
            "http" if insecure_allowed => {}
            _ => {
                violations.add(field, "INSECURE", format!("{field} must be an https URL"));
                return String::new();
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            violations.add(field, "CREDENTIALS", format!("{field} must not carry a user or password"));
        } else if url.host_str().is_none_or(str::is_empty) {
            violations.add(field, "INVALID_FORMAT", format!("{field} must name a host"));
        } else if let Err(AddressError::Forbidden(message)) = check_url(&url, self.access).await {
            // A name that does not resolve yet is accepted: each attempt checks again.
            violations.add(field, "FORBIDDEN_HOST", format!("{field}: {message}"));
        }
        url.to_string()
    }

    fn check_event_types(violations: &mut FieldViolations, field: &str, values: &[String]) -> Vec<String> {
        if values.is_empty() {
            violations.required(field);
        }
        if values.len() > MAX_EVENT_TYPES {
            violations.add(field, "TOO_MANY", format!("{field} may name at most {MAX_EVENT_TYPES} types"));
        }
        let mut types: Vec<String> = Vec::new();
        for value in values {
            let value = value.trim();
            if value != "*" && !delivery::deliverable(value) {
                violations.add(
                    field,
                    "UNKNOWN_EVENT_TYPE",
                    format!("{field}: {value:?} is not an event type a webhook can receive (`*` means all)"),
                );
            } else if !types.iter().any(|known| known == value) {
                types.push(value.to_string());
            }
        }
        types
    }

    /// The secret to store (sealed) and the one to return once (when generated).
    fn secret(
        &self,
        violations: &mut FieldViolations,
        organization: &str,
        webhook_id: &str,
        given: &str,
    ) -> (String, String) {
        let (secret, shown) = if given.is_empty() {
            let generated = signing::generate_secret();
            (generated.clone(), generated)
        } else {
            if let Err(problem) = signing::key_of(given) {
                violations.add("webhook.secret", "INVALID_FORMAT", format!("webhook.secret: {problem}"));
            }
            (given.to_string(), String::new())
        };
        (self.secrets.seal(secret.as_bytes(), &delivery::sealing_context(organization, webhook_id)), shown)
    }

    async fn create(&self, request: Request<CreateWebhookRequest>) -> Result<Webhook, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let input = request.into_inner().webhook.unwrap_or_default();
        let mut violations = FieldViolations::default();
        let url = self.check_url(&mut violations, "webhook.url", &input.url).await;
        violations.max_chars("webhook.description", &input.description, MAX_DESCRIPTION);
        let event_types = Self::check_event_types(&mut violations, "webhook.event_types", &input.event_types);
        let state = match WebhookState::try_from(input.state) {
            Ok(WebhookState::Unspecified | WebhookState::Active) => WebhookState::Active,
            Ok(WebhookState::Disabled) => WebhookState::Disabled,
            _ => {
                violations.add("webhook.state", "INVALID", "webhook.state may be ACTIVE or DISABLED");
                WebhookState::Active
            }
        };
        let id = uuid::Uuid::now_v7().to_string();
        let tenant = organization.to_string();
        let (sealed, shown) = self.secret(&mut violations, &tenant, &id, &input.secret);
        violations.check()?;
        let now = time::now_micros();
        let record = WebhookRecord {
            id,
            url,
            description: input.description.trim().to_string(),
            event_types,
            secret: sealed,
            previous_secret: String::new(),
            previous_secret_until: 0,
            state,
            consecutive_failures: 0,
            failing_since: 0,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut tx = self.database.write(organization).await?;
        store::lock_organization(&mut tx).await?;
        if store::count_webhooks(&mut tx).await? >= MAX_WEBHOOKS {
            return Err(ApiError::ResourceExhausted {
                reason: "WEBHOOK_LIMIT",
                message: format!("an organization may have {MAX_WEBHOOKS} webhooks; delete one first"),
                retry_after: None,
            });
        }
        store::insert_webhook(&mut tx, &record).await?;
        tx.commit().await?;
        tracing::info!(webhook_id = %record.id, organization_id = %tenant, "webhook created");
        Ok(Webhook { secret: shown, ..record.proto(&tenant) })
    }

    async fn update(&self, request: Request<UpdateWebhookRequest>) -> Result<Webhook, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let id = parse_uuid("webhook_id", &request.webhook_id)?.to_string();
        let input = request.webhook.unwrap_or_default();
        let fields = fields_to_update(request.update_mask.as_ref(), &input)?;
        let tenant = organization.to_string();
        let mut tx = self.database.write(organization).await?;
        let current = store::webhook(&mut tx, &id).await?.ok_or_else(|| not_found(&id))?;
        if !input.etag.is_empty() && input.etag != current.etag() {
            return Err(ApiError::Aborted {
                reason: "ETAG_MISMATCH",
                message: format!(
                    "the webhook changed since it was read (etag {:?}, now {:?}); read it again and retry",
                    input.etag,
                    current.etag()
                ),
            });
        }
        let now = time::now_micros();
        let mut next = current.clone();
        let mut violations = FieldViolations::default();
        let mut shown = String::new();
        for field in &fields {
            match field {
                Mutable::Url => next.url = self.check_url(&mut violations, "webhook.url", &input.url).await,
                Mutable::Description => {
                    violations.max_chars("webhook.description", &input.description, MAX_DESCRIPTION);
                    next.description = input.description.trim().to_string();
                }
                Mutable::EventTypes => {
                    next.event_types =
                        Self::check_event_types(&mut violations, "webhook.event_types", &input.event_types)
                }
                Mutable::Secret => {
                    let (sealed, generated) = self.secret(&mut violations, &tenant, &id, &input.secret);
                    // The outgoing secret keeps signing for the grace period, so receivers
                    // can switch without losing a delivery.
                    next.previous_secret = current.secret.clone();
                    next.previous_secret_until = time::after(now, self.secret_grace);
                    next.secret = sealed;
                    shown = generated;
                }
                Mutable::State => match WebhookState::try_from(input.state) {
                    Ok(WebhookState::Active) => {
                        next.state = WebhookState::Active;
                        next.consecutive_failures = 0;
                        next.failing_since = 0;
                    }
                    Ok(WebhookState::Disabled) => next.state = WebhookState::Disabled,
                    _ => violations.add("webhook.state", "INVALID", "webhook.state may be set to ACTIVE or DISABLED"),
                },
            }
        }
        violations.check()?;
        next.updated_at = now;
        next.version = current.version + 1;
        if !store::update_webhook(&mut tx, &next, current.version).await? {
            return Err(ApiError::Aborted {
                reason: "CONCURRENT_MODIFICATION",
                message: "the webhook changed while it was being updated; read it again and retry".into(),
            });
        }
        // Deliveries held while it was paused go out now.
        if next.state == WebhookState::Active && current.state != WebhookState::Active {
            store::lock_webhook(&mut tx, &id).await?;
            if store::next_pending(&mut tx, &id).await?.is_some() {
                delivery::wake(&mut tx, &id).await?;
            }
        }
        tx.commit().await?;
        Ok(Webhook { secret: shown, ..next.proto(&tenant) })
    }

    async fn delete(&self, request: Request<DeleteWebhookRequest>) -> Result<(), ApiError> {
        let organization = caller(&request)?.tenant()?;
        let id = parse_uuid("webhook_id", &request.get_ref().webhook_id)?.to_string();
        let mut tx = self.database.write(organization).await?;
        if !store::delete_webhook(&mut tx, &id).await? {
            return Err(not_found(&id));
        }
        jobs::remove(&mut tx, delivery::KIND, std::slice::from_ref(&id)).await?;
        tx.commit().await
    }

    async fn list(&self, request: Request<ListWebhooksRequest>) -> Result<ListWebhooksResponse, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token, "")?;
        let after = page.after.as_ref().and_then(|key| key.first().cloned());
        let mut tx = self.database.read(organization).await?;
        let mut records = store::webhooks(&mut tx, after.as_deref(), page.fetch_limit()).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut records, |record| vec![record.id.clone()]);
        let tenant = organization.to_string();
        Ok(ListWebhooksResponse {
            webhooks: records.iter().map(|record| record.proto(&tenant)).collect(),
            next_page_token,
        })
    }

    /// The webhook, or NotFound, in `tx`.
    async fn existing(tx: &mut TenantTx, id: &str) -> Result<WebhookRecord, ApiError> {
        store::webhook(tx, id).await?.ok_or_else(|| not_found(id))
    }

    async fn deliveries(
        &self,
        request: Request<ListWebhookDeliveriesRequest>,
    ) -> Result<ListWebhookDeliveriesResponse, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let id = parse_uuid("webhook_id", &request.webhook_id)?.to_string();
        let outcome = DeliveryOutcome::try_from(request.outcome)
            .map_err(|_| ApiError::invalid_field("outcome", "INVALID", "outcome is not a delivery outcome"))?;
        let page = PageRequest::parse(request.page_size, &request.page_token, &format!("{id}:{outcome:?}"))?;
        let before = page.after_number()?;
        let mut tx = self.database.read(organization).await?;
        Self::existing(&mut tx, &id).await?;
        let mut records = store::deliveries(&mut tx, &id, outcome, before, page.fetch_limit()).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut records, |record| vec![record.sequence.to_string()]);
        Ok(ListWebhookDeliveriesResponse {
            deliveries: records.iter().map(DeliveryRecord::proto).collect(),
            next_page_token,
        })
    }

    /// Sends a `webhook.test` message now, once, and records it in the log.
    async fn test(&self, request: Request<TestWebhookRequest>) -> Result<WebhookDelivery, ApiError> {
        let identity = caller(&request)?;
        let organization = identity.tenant()?;
        let id = parse_uuid("webhook_id", &request.get_ref().webhook_id)?.to_string();
        let tenant = organization.to_string();
        let mut tx = self.database.read(organization).await?;
        let webhook = Self::existing(&mut tx, &id).await?;
        tx.commit().await?;
        let data = serde_json::json!({ "webhookId": id, "requestedBy": identity.user_id.to_string() });
        let now = time::now_micros();
        let body = delivery::message_body("webhook.test", now, &tenant, data);
        let message_id = uuid::Uuid::now_v7().to_string();
        let keys = delivery::signing_keys(&self.secrets, &tenant, &webhook)?;
        let attempt = self.deliveries.sender.send(&webhook.url, &message_id, &body, &keys).await;
        let mut record = DeliveryRecord::pending(&id, &message_id, "webhook.test", body, now);
        record.attempt_count = 1;
        record.response_status = attempt.response_status;
        record.latency_ms = attempt.latency_ms;
        record.outcome = if attempt.succeeded() { DeliveryOutcome::Succeeded } else { DeliveryOutcome::Failed };
        record.error = attempt.error;
        let mut tx = self.database.write(organization).await?;
        if !store::insert_delivery(&mut tx, &mut record).await? {
            return Err(not_found(&id));
        }
        tx.commit().await?;
        Ok(record.proto())
    }

    async fn redeliver(&self, request: Request<RedeliverWebhookDeliveryRequest>) -> Result<WebhookDelivery, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let id = violations.uuid("webhook_id", &request.webhook_id);
        let delivery_id = violations.uuid("delivery_id", &request.delivery_id);
        violations.check()?;
        let mut tx = self.database.write(organization).await?;
        Self::existing(&mut tx, &id).await?;
        let source = store::delivery(&mut tx, &id, &delivery_id)
            .await?
            .ok_or_else(|| ApiError::not_found("WebhookDelivery", &delivery_id))?;
        let mut record =
            DeliveryRecord::pending(&id, &source.message_id, &source.event_type, source.body, time::now_micros());
        record.redelivery_of = source.id;
        store::insert_delivery(&mut tx, &mut record).await?;
        delivery::wake(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(record.proto())
    }
}

/// Which fields an update changes, in a fixed order: the mask's (AIP-134), or every populated
/// field.
fn fields_to_update(mask: Option<&prost_types::FieldMask>, input: &Webhook) -> Result<Vec<Mutable>, ApiError> {
    let paths: Vec<&str> = mask.map(|m| m.paths.iter().map(String::as_str).collect()).unwrap_or_default();
    if paths.is_empty() {
        let populated = [
            (Mutable::Url, !input.url.is_empty()),
            (Mutable::Description, !input.description.is_empty()),
            (Mutable::EventTypes, !input.event_types.is_empty()),
            (Mutable::Secret, !input.secret.is_empty()),
            (Mutable::State, input.state != 0),
        ];
        return Ok(populated.into_iter().filter(|(_, set)| *set).map(|(field, _)| field).collect());
    }
    let mut named = Vec::new();
    let mut violations = FieldViolations::default();
    for path in paths {
        match path {
            "*" => named.extend(Mutable::ALL),
            other if OUTPUT_ONLY_PATHS.contains(&other) => {}
            other => match Mutable::ALL.into_iter().find(|field| field.path() == other) {
                Some(field) => named.push(field),
                None => violations.add(
                    "update_mask",
                    "UNKNOWN_FIELD",
                    format!(
                        "update_mask names {other:?}, which is not an updatable field; use {}",
                        Mutable::ALL.map(Mutable::path).join(", ")
                    ),
                ),
            },
        }
    }
    violations.check()?;
    // Each once, whatever the mask repeats: an update checks a URL's addresses once.
    Ok(Mutable::ALL.into_iter().filter(|field| named.contains(field)).collect())
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook(&self, request: Request<CreateWebhookRequest>) -> Result<Response<Webhook>, Status> {
        Ok(Response::new(self.create(request).await?))
    }

    async fn list_webhooks(
        &self,
        request: Request<ListWebhooksRequest>,
    ) -> Result<Response<ListWebhooksResponse>, Status> {
        Ok(Response::new(self.list(request).await?))
    }

    async fn get_webhook(&self, request: Request<GetWebhookRequest>) -> Result<Response<Webhook>, Status> {
        let organization = caller(&request)?.tenant()?;
        let id = parse_uuid("webhook_id", &request.get_ref().webhook_id)?.to_string();
        let mut tx = self.database.read(organization).await?;
        let record = Self::existing(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(Response::new(record.proto(&organization.to_string())))
    }

    async fn update_webhook(&self, request: Request<UpdateWebhookRequest>) -> Result<Response<Webhook>, Status> {
        Ok(Response::new(self.update(request).await?))
    }

    async fn delete_webhook(&self, request: Request<DeleteWebhookRequest>) -> Result<Response<()>, Status> {
        self.delete(request).await?;
        Ok(Response::new(()))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<ListWebhookDeliveriesRequest>,
    ) -> Result<Response<ListWebhookDeliveriesResponse>, Status> {
        Ok(Response::new(self.deliveries(request).await?))
    }

    async fn test_webhook(&self, request: Request<TestWebhookRequest>) -> Result<Response<WebhookDelivery>, Status> {
        Ok(Response::new(self.test(request).await?))
    }

    async fn redeliver_webhook_delivery(
        &self,
        request: Request<RedeliverWebhookDeliveryRequest>,
    ) -> Result<Response<WebhookDelivery>, Status> {
        Ok(Response::new(self.redeliver(request).await?))
    }
}

/// Re-seals webhook secrets not under the current key (`complianceiq
/// rotate-encryption-key`), an organization per transaction; returns how many webhooks.
async fn reseal(database: ModuleDatabase, secrets: Arc<SecretBox>) -> Result<u64, ApiError> {
    let mut tx = database.global_read().await?;
    let organizations = store::organizations_with_webhooks(&mut tx).await?;
    tx.commit().await?;
    let mut resealed = 0;
    for organization in organizations {
        let mut tx = database.write(OrganizationId::from_stored(&organization)?).await?;
        let mut after = None;
        loop {
            let page = store::webhooks(&mut tx, after.as_deref(), 100).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for webhook in &page {
                let context = delivery::sealing_context(&organization, &webhook.id);
                let again = |sealed: &str| -> Result<String, ApiError> {
                    if sealed.is_empty() {
                        return Ok(String::new());
                    }
                    let fresh = secrets.reseal(sealed, &context).map_err(|error| {
                        ApiError::internal(format!(
                            "webhook {}: {error} (is every old key still configured?)",
                            webhook.id
                        ))
                    })?;
                    Ok(fresh.unwrap_or_else(|| sealed.to_string()))
                };
                let fresh = (again(&webhook.secret)?, again(&webhook.previous_secret)?);
                if (fresh.0.as_str(), fresh.1.as_str()) != (webhook.secret.as_str(), webhook.previous_secret.as_str()) {
                    let old = (webhook.secret.as_str(), webhook.previous_secret.as_str());
                    store::replace_secrets(&mut tx, &webhook.id, old, (&fresh.0, &fresh.1)).await?;
                    resealed += 1;
                }
            }
        }
        tx.commit().await?;
    }
    Ok(resealed)
}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("webhook"),
        port: 8012,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: MIGRATIONS,
        reseal: Some(|database, secrets| Box::pin(reseal(database, secrets))),
        build: |context| {
            Box::pin(async move {
                let database = context.database()?;
                let settings = &context.config.webhook;
                let access = if settings.private_networks_allowed(context.config.mode) {
                    NetworkAccess::AllowPrivate
                } else {
                    NetworkAccess::PublicOnly
                };
                let sender = Sender::new(access, Duration::from_secs(settings.attempt_timeout_seconds.max(1)))?;
                let policy = RetryPolicy {
                    schedule: settings
                        .retry_schedule_seconds
                        .iter()
                        .map(|seconds| Duration::from_secs(*seconds))
                        .collect(),
                    disable_after: Duration::from_secs(settings.disable_after_hours.saturating_mul(3600)),
                };
                if policy.schedule.is_empty() {
                    return Err("the webhook retry schedule needs at least one attempt".into());
                }
                let deliveries = Arc::new(Deliveries {
                    database: database.clone(),
                    secrets: context.secrets.clone(),
                    sender,
                    policy,
                });
                let api = WebhookApi {
                    database: database.clone(),
                    secrets: context.secrets.clone(),
                    deliveries: deliveries.clone(),
                    access,
                    secret_grace: Duration::from_secs(settings.secret_grace_hours.saturating_mul(3600)),
                };
                let fanout = Subscription {
                    consumer: "webhook-fanout",
                    events: EventType::ALL
                        .iter()
                        .copied()
                        .filter(|kind| delivery::deliverable(kind.as_str()))
                        .collect(),
                    handler: Arc::new(Fanout { database: database.clone(), messages: Messages::new() }),
                };
                let retention = Retention { module: "webhook", database: database.clone(), purge: store::PURGE };
                let worker_settings = context.config.jobs.worker_settings();
                let sending = jobs::worker(
                    "webhook-deliveries",
                    database.clone(),
                    deliveries,
                    worker_settings,
                    context.metrics.clone(),
                );
                Ok(ModuleParts::new()
                    .service(WebhookServiceServer::new(api))
                    .subscription(fanout)
                    .subscription(retention.subscription("webhook-retention"))
                    .worker(retention.worker())
                    .worker(sending))
            })
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_changes_the_masked_or_the_populated_fields() {
        let input = Webhook { url: "https://example.com/hook".into(), state: 2, ..Default::default() };
        assert_eq!(fields_to_update(None, &input).unwrap(), [Mutable::Url, Mutable::State]);
        let mask = prost_types::FieldMask { paths: vec!["secret".into(), "etag".into()] };
        assert_eq!(fields_to_update(Some(&mask), &input).unwrap(), [Mutable::Secret]);
        let bad = prost_types::FieldMask { paths: vec!["organization".into()] };
        assert!(fields_to_update(Some(&bad), &input).is_err());
    }

    #[test]
    fn event_types_are_known_deduplicated_and_required() {
        let mut violations = FieldViolations::default();
        let types = WebhookApi::check_event_types(
            &mut violations,
            "webhook.event_types",
            &["sync.failed".into(), "sync.failed".into(), "*".into()],
        );
        assert!(violations.is_empty());
        assert_eq!(types, ["sync.failed", "*"]);
        for bad in [vec![], vec!["audit.recorded".to_string()], vec!["sync.exploded".to_string()]] {
            let mut violations = FieldViolations::default();
            WebhookApi::check_event_types(&mut violations, "webhook.event_types", &bad);
            assert!(!violations.is_empty(), "{bad:?}");
        }
    }
}
