//! Webhooks: deliveries a Standard Webhooks reference implementation verifies (and a tampered
//! or stale one it refuses), secret rotation without a lost delivery, every event delivered in
//! order and once to a receiver that was down across a platform restart, deliveries that keep
//! failing fail and pause their endpoint, endpoints checked against server-side request
//! forgery, and a second organization that sees and receives nothing of the first's.

use std::time::Duration;

use complianceiq_kit::config::PlatformConfig;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{Organization, UpdateOrganizationRequest};
use complianceiq_proto::complianceiq::webhook::v1::webhook_service_client::WebhookServiceClient;
use complianceiq_proto::complianceiq::webhook::v1::*;
use tonic::Code;

use crate::harness::{Backend, TestPlatform, violations};
use crate::people::{Tenant, authorized};
use crate::platform_tests;
use crate::receiver::Receiver;

platform_tests!(signed_deliveries_verify_and_rotate_and_stay_in_their_organization);

pub async fn webhooks(platform: &TestPlatform) -> WebhookServiceClient<tonic::transport::Channel> {
    WebhookServiceClient::new(platform.channel("webhook").await)
}

pub async fn create(platform: &TestPlatform, tenant: &Tenant, webhook: Webhook) -> Result<Webhook, tonic::Status> {
    let request = CreateWebhookRequest { webhook: Some(webhook) };
    webhooks(platform).await.create_webhook(authorized(request, tenant.token())).await.map(tonic::Response::into_inner)
}

/// A webhook of `event_types` to the receiver, whose secret the receiver then trusts.
pub async fn subscribe(platform: &TestPlatform, tenant: &Tenant, receiver: &Receiver, event_types: &[&str]) -> Webhook {
    let webhook = Webhook {
        url: receiver.url(),
        event_types: event_types.iter().map(|name| name.to_string()).collect(),
        ..Default::default()
    };
    let created = create(platform, tenant, webhook).await.expect("create a webhook");
    assert!(created.secret.starts_with("whsec_"), "a generated secret is returned once");
    receiver.trust(&created.secret);
    created
}

/// Renames the tenant's organization: one `organization.updated` event.
pub async fn rename(platform: &TestPlatform, tenant: &Tenant, name: &str) {
    let request = UpdateOrganizationRequest {
        org_id: tenant.id().into(),
        organization: Some(Organization { display_name: name.into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["display_name".into()] }),
    };
    OrganizationServiceClient::new(platform.channel("organization").await)
        .update_organization(authorized(request, tenant.token()))
        .await
        .expect("rename the organization");
}

async fn deliveries(platform: &TestPlatform, tenant: &Tenant, webhook_id: &str) -> Vec<WebhookDelivery> {
    let request = ListWebhookDeliveriesRequest { webhook_id: webhook_id.into(), page_size: 1000, ..Default::default() };
    webhooks(platform)
        .await
        .list_webhook_deliveries(authorized(request, tenant.token()))
        .await
        .expect("list deliveries")
        .into_inner()
        .deliveries
}

/// The webhook's deliveries once `done` holds for them (20 s at most).
async fn deliveries_until(
    platform: &TestPlatform,
    tenant: &Tenant,
    webhook_id: &str,
    done: impl Fn(&[WebhookDelivery]) -> bool,
) -> Vec<WebhookDelivery> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listed = deliveries(platform, tenant, webhook_id).await;
        if done(&listed) {
            return listed;
        }
        assert!(tokio::time::Instant::now() < deadline, "deliveries never got there: {listed:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(platform: &TestPlatform, tenant: &Tenant, webhook_id: &str) -> Result<Webhook, tonic::Status> {
    let request = GetWebhookRequest { webhook_id: webhook_id.into() };
    webhooks(platform).await.get_webhook(authorized(request, tenant.token())).await.map(tonic::Response::into_inner)
}

async fn signed_deliveries_verify_and_rotate_and_stay_in_their_organization(platform: &TestPlatform) {
    let tenant = platform.tenant("Hooked").await;
    let other = platform.tenant("Nosy").await;
    let receiver = Receiver::start().await;
    let webhook = subscribe(platform, &tenant, &receiver, &["*"]).await;
    assert_eq!(webhook.state(), WebhookState::Active);
    assert!(get(platform, &tenant, &webhook.id).await.unwrap().secret.is_empty(), "the secret is never read back");

    rename(platform, &tenant, "Hooked Renamed").await;
    rename(platform, &other, "Nosy Renamed").await;
    let accepted = receiver.accepted(1, Duration::from_secs(20)).await;
    let message = &accepted[0];
    let body = message.json();
    assert_eq!(body["type"], "organization.updated");
    assert_eq!(body["organization_id"], tenant.id());
    assert_eq!(body["data"]["organization"]["displayName"], "Hooked Renamed");
    let now = complianceiq_kit::time::now_micros() / 1_000_000;
    assert!((now - message.timestamp).abs() < 60, "signed at the attempt: {}", message.timestamp);
    assert!(uuid::Uuid::parse_str(&message.id).is_ok(), "webhook-id is the event id");
    assert_eq!(message.headers["content-type"], "application/json");

    // The reference library refuses a tampered body, and the same message signed
    // outside its tolerance (a replay, 10 minutes later).
    let secret = webhook.secret.clone();
    let reference = standardwebhooks::Webhook::new(&secret).unwrap();
    reference.verify(message.body.as_bytes(), &message.headers).expect("the delivery verifies");
    let tampered = message.body.replace("Hooked Renamed", "Hooked Hijacked");
    assert!(matches!(
        reference.verify(tampered.as_bytes(), &message.headers),
        Err(standardwebhooks::WebhookError::InvalidSignature)
    ));
    let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &secret[6..]).unwrap();
    let stale = now - 600;
    let mut replayed = message.headers.clone();
    replayed.insert("webhook-timestamp", stale.to_string().parse().unwrap());
    let signature = complianceiq_webhook::signature_header(&[key], &message.id, stale, message.body.as_bytes());
    replayed.insert("webhook-signature", signature.parse().unwrap());
    assert!(matches!(
        reference.verify(message.body.as_bytes(), &replayed),
        Err(standardwebhooks::WebhookError::TimestampTooOldError)
    ));

    // The log has it, and a test message goes out now.
    let listed = deliveries_until(platform, &tenant, &webhook.id, |listed| {
        listed.iter().any(|delivery| delivery.outcome() == DeliveryOutcome::Succeeded)
    })
    .await;
    let delivered = listed.iter().find(|delivery| delivery.event_id == message.id).expect("the delivery is logged");
    assert_eq!(delivered.event_type, "organization.updated");
    assert_eq!((delivered.attempt_count, delivered.response_status), (1, 204));
    assert!(delivered.next_attempt_time.is_none() && delivered.error.is_empty());
    let test = TestWebhookRequest { webhook_id: webhook.id.clone() };
    let tested = webhooks(platform).await.test_webhook(authorized(test, tenant.token())).await.unwrap().into_inner();
    assert_eq!(
        (tested.outcome(), tested.response_status, tested.event_type.as_str()),
        (DeliveryOutcome::Succeeded, 204, "webhook.test")
    );
    let accepted = receiver.accepted(2, Duration::from_secs(5)).await;
    assert_eq!(accepted[1].json()["data"]["webhookId"], webhook.id.as_str());
    // A redirect is an answer, not a way elsewhere.
    receiver.answer_with(307);
    let test = TestWebhookRequest { webhook_id: webhook.id.clone() };
    let redirected = webhooks(platform).await.test_webhook(authorized(test, tenant.token())).await.unwrap();
    let redirected = redirected.into_inner();
    assert_eq!((redirected.outcome(), redirected.response_status), (DeliveryOutcome::Failed, 307));
    assert_eq!(redirected.error, "HTTP 307 Temporary Redirect (redirects are not followed)");
    receiver.answer_with(204);

    // A rotation: deliveries carry both signatures during the grace period, so a receiver
    // still on the old secret and one on the new both verify.
    let rotate = UpdateWebhookRequest {
        webhook_id: webhook.id.clone(),
        webhook: Some(Webhook::default()),
        update_mask: Some(prost_types::FieldMask { paths: vec!["secret".into()] }),
    };
    let rotated =
        webhooks(platform).await.update_webhook(authorized(rotate, tenant.token())).await.unwrap().into_inner();
    assert!(rotated.secret.starts_with("whsec_") && rotated.secret != secret);
    assert!(rotated.previous_secret_expire_time.is_some());
    rename(platform, &tenant, "Hooked Rotated").await;
    let accepted = receiver.accepted(3, Duration::from_secs(20)).await;
    let after = &accepted[2];
    assert_eq!(after.json()["data"]["organization"]["displayName"], "Hooked Rotated");
    assert_eq!(after.signature.split(' ').count(), 2, "{}", after.signature);
    standardwebhooks::Webhook::new(&rotated.secret).unwrap().verify(after.body.as_bytes(), &after.headers).unwrap();

    // The other organization: none of its events reached this endpoint, and it can neither
    // see nor touch the webhook.
    assert!(receiver.received().iter().all(|received| received.json()["organization_id"] == tenant.id()));
    let mut client = webhooks(platform).await;
    let listed = client.list_webhooks(authorized(ListWebhooksRequest::default(), other.token())).await.unwrap();
    assert!(listed.into_inner().webhooks.is_empty());
    assert_eq!(get(platform, &other, &webhook.id).await.unwrap_err().code(), Code::NotFound);
    let request = ListWebhookDeliveriesRequest { webhook_id: webhook.id.clone(), ..Default::default() };
    let status = client.list_webhook_deliveries(authorized(request, other.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let request = DeleteWebhookRequest { webhook_id: webhook.id.clone() };
    assert_eq!(client.delete_webhook(authorized(request, other.token())).await.unwrap_err().code(), Code::NotFound);
    let request = TestWebhookRequest { webhook_id: webhook.id.clone() };
    assert_eq!(client.test_webhook(authorized(request, other.token())).await.unwrap_err().code(), Code::NotFound);

    // Deleted, it gets nothing more.
    let request = DeleteWebhookRequest { webhook_id: webhook.id.clone() };
    client.delete_webhook(authorized(request, tenant.token())).await.unwrap();
    rename(platform, &tenant, "Hooked Unhooked").await;
    assert_eq!(get(platform, &tenant, &webhook.id).await.unwrap_err().code(), Code::NotFound);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 4, "three accepted, one redirected");
}

/// Retries a second apart, so a test sees a delivery through its schedule.
fn quick_retries(config: &mut PlatformConfig) {
    config.webhook.retry_schedule_seconds = vec![0, 1, 1, 1, 1, 1, 1, 1, 1, 1];
}

mod down_across_a_restart {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::down_across_a_restart(Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        super::down_across_a_restart(Backend::Servers).await;
    }
}

/// A receiver that is down while events happen, and comes back after the platform
/// restarted: every event arrives, in order, each webhook-id once.
async fn down_across_a_restart(backend: Backend) {
    let mut platform = TestPlatform::start_with(backend, quick_retries).await;
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let tenant = platform.tenant("Patient").await;
        let mut receiver = Receiver::start().await;
        let webhook = subscribe(&platform, &tenant, &receiver, &["organization.updated"]).await;
        receiver.go_down();
        let names: Vec<String> = (1..=5).map(|n| format!("Patient {n}")).collect();
        for name in &names {
            rename(&platform, &tenant, name).await;
        }
        // The first delivery has failed at least once: the endpoint is really down.
        deliveries_until(&platform, &tenant, &webhook.id, |listed| {
            listed.len() == names.len() && listed.iter().any(|delivery| delivery.attempt_count >= 1)
        })
        .await;
        assert!(receiver.received().is_empty());
        platform.restart().await;
        receiver.come_back().await;

        let accepted = receiver.accepted(names.len(), Duration::from_secs(30)).await;
        let arrived: Vec<String> = accepted
            .iter()
            .map(|received| received.json()["data"]["organization"]["displayName"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(arrived, names, "in the order the events happened");
        let listed = deliveries_until(&platform, &tenant, &webhook.id, |listed| {
            listed.iter().all(|delivery| delivery.outcome() == DeliveryOutcome::Succeeded)
        })
        .await;
        assert!(listed.iter().all(|delivery| delivery.attempt_count >= 1));
        // Nothing comes twice, even a little later.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut ids: Vec<String> = receiver.received().into_iter().map(|received| received.id).collect();
        assert_eq!(ids.len(), names.len(), "{ids:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), names.len(), "no webhook-id twice");
    }))
    .await;
    platform.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

mod failing_endpoints {
    use super::*;

    /// Two attempts, and an endpoint is paused by its first final failure.
    fn give_up_fast(config: &mut PlatformConfig) {
        config.webhook.retry_schedule_seconds = vec![0, 1];
        config.webhook.disable_after_hours = 0;
    }

    crate::configured_platform_tests!(give_up_fast, paused);

    /// Deliveries to an endpoint that keeps failing fail after the schedule, the endpoint is
    /// paused and another webhook hears of it; re-enabled, a redelivery goes through.
    async fn paused(platform: &TestPlatform) {
        let tenant = platform.tenant("Flaky").await;
        let (broken, watcher) = (Receiver::start().await, Receiver::start().await);
        broken.answer_with(500);
        let webhook = subscribe(platform, &tenant, &broken, &["organization.updated"]).await;
        let watching = subscribe(platform, &tenant, &watcher, &["webhook.delivery_failed"]).await;
        rename(platform, &tenant, "Flaky 1").await;

        let listed = deliveries_until(platform, &tenant, &webhook.id, |listed| {
            listed.first().is_some_and(|delivery| delivery.outcome() == DeliveryOutcome::Failed)
        })
        .await;
        let failed = &listed[0];
        assert_eq!((failed.attempt_count, failed.response_status), (2, 500));
        assert_eq!(failed.error, "HTTP 500 Internal Server Error: receiver says no");
        assert_eq!(broken.requests(2, Duration::from_secs(1)).await.len(), 2);
        let paused = get(platform, &tenant, &webhook.id).await.unwrap();
        assert_eq!((paused.state(), paused.consecutive_failures), (WebhookState::Failing, 2));

        let heard = watcher.accepted(1, Duration::from_secs(20)).await;
        let data = &heard[0].json()["data"];
        assert_eq!(data["webhookId"], webhook.id.as_str());
        assert_eq!(data["deliveryId"], failed.id.as_str());
        assert_eq!(data["webhookDisabled"], true);
        assert!(
            deliveries(platform, &tenant, &watching.id).await.iter().all(|d| d.event_type == "webhook.delivery_failed")
        );

        // Paused, it gets no new deliveries.
        rename(platform, &tenant, "Flaky 2").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(deliveries(platform, &tenant, &webhook.id).await.len(), 1);

        // Fixed and re-enabled, the failed delivery goes out again under its webhook-id.
        broken.answer_with(200);
        let enable = UpdateWebhookRequest {
            webhook_id: webhook.id.clone(),
            webhook: Some(Webhook { state: WebhookState::Active as i32, ..Default::default() }),
            update_mask: None,
        };
        let enabled = webhooks(platform).await.update_webhook(authorized(enable, tenant.token())).await.unwrap();
        assert_eq!(enabled.get_ref().consecutive_failures, 0);
        let redeliver =
            RedeliverWebhookDeliveryRequest { webhook_id: webhook.id.clone(), delivery_id: failed.id.clone() };
        let again =
            webhooks(platform).await.redeliver_webhook_delivery(authorized(redeliver, tenant.token())).await.unwrap();
        assert_eq!(again.get_ref().redelivery_of, failed.id);
        let accepted = broken.accepted(1, Duration::from_secs(20)).await;
        assert_eq!(accepted[0].id, failed.event_id, "a redelivery repeats the webhook-id");
        let listed = deliveries_until(platform, &tenant, &webhook.id, |listed| {
            listed.first().is_some_and(|delivery| delivery.outcome() == DeliveryOutcome::Succeeded)
        })
        .await;
        assert_eq!(listed.len(), 2);
        let only_failed = ListWebhookDeliveriesRequest {
            webhook_id: webhook.id.clone(),
            outcome: DeliveryOutcome::Failed as i32,
            ..Default::default()
        };
        let failed_only =
            webhooks(platform).await.list_webhook_deliveries(authorized(only_failed, tenant.token())).await.unwrap();
        assert_eq!(failed_only.get_ref().deliveries.len(), 1);
    }
}

mod endpoint_checks {
    use super::*;

    fn production(config: &mut PlatformConfig) {
        config.webhook.allow_private_networks = Some(false);
    }

    crate::configured_platform_tests!(production, refused);

    /// Plain http, the platform's own networks, credentials in the URL, malformed secrets and
    /// unknown event types are refused with the field that is wrong.
    async fn refused(platform: &TestPlatform) {
        let tenant = platform.tenant("Careful").await;
        let attempt = |url: &str, secret: &str, event_types: &[&str]| Webhook {
            url: url.into(),
            secret: secret.into(),
            event_types: event_types.iter().map(|name| name.to_string()).collect(),
            ..Default::default()
        };
        for (webhook, field, reason) in [
            (attempt("http://hooks.example.com/in", "", &["*"]), "webhook.url", "INSECURE"),
            (attempt("https://127.0.0.1/in", "", &["*"]), "webhook.url", "FORBIDDEN_HOST"),
            (attempt("https://localhost:8443/in", "", &["*"]), "webhook.url", "FORBIDDEN_HOST"),
            (attempt("https://169.254.169.254/latest", "", &["*"]), "webhook.url", "FORBIDDEN_HOST"),
            (attempt("https://[::ffff:10.0.0.1]/in", "", &["*"]), "webhook.url", "FORBIDDEN_HOST"),
            (attempt("https://user:pw@hooks.example.com/in", "", &["*"]), "webhook.url", "CREDENTIALS"),
            (attempt("not a url", "", &["*"]), "webhook.url", "INVALID_FORMAT"),
            (attempt("", "", &["*"]), "webhook.url", "REQUIRED"),
            (attempt("https://93.184.215.14/in", "whsec_c2hvcnQ=", &["*"]), "webhook.secret", "INVALID_FORMAT"),
            (
                attempt("https://93.184.215.14/in", "plain-text-secret-32-characters!", &["*"]),
                "webhook.secret",
                "INVALID_FORMAT",
            ),
            (attempt("https://93.184.215.14/in", "", &["audit.recorded"]), "webhook.event_types", "UNKNOWN_EVENT_TYPE"),
            (attempt("https://93.184.215.14/in", "", &["sync.exploded"]), "webhook.event_types", "UNKNOWN_EVENT_TYPE"),
            (attempt("https://93.184.215.14/in", "", &[]), "webhook.event_types", "REQUIRED"),
        ] {
            let status = create(platform, &tenant, webhook.clone()).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{webhook:?}");
            assert!(
                violations(&status).iter().any(|(f, r)| f == field && r == reason),
                "{webhook:?}: {:?}",
                violations(&status)
            );
        }
        // A public https endpoint with a secret of its own is fine.
        let secret = format!("whsec_{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]));
        let created = create(platform, &tenant, attempt("https://93.184.215.14/in", &secret, &["sync.failed"])).await;
        let created = created.expect("a public https endpoint");
        assert!(created.secret.is_empty(), "a secret the caller chose is not echoed");

        // At most MAX_WEBHOOKS per organization.
        for _ in 1..complianceiq_webhook::MAX_WEBHOOKS {
            create(platform, &tenant, attempt("https://93.184.215.14/in", "", &["*"])).await.expect("under the limit");
        }
        let status = create(platform, &tenant, attempt("https://93.184.215.14/in", "", &["*"])).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    }
}
