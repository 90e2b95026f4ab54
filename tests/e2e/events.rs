//! Events leave through the outbox and reach the bus: the in-process bus in dev, NATS
//! JetStream on servers.

use std::time::Duration;

use complianceiq_kit::bus::{DeliveryStream, SubscriptionSpec};
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::outbox;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::organization::v1::{
    CreateOrganizationRequest, DeleteOrganizationRequest, Organization, UpdateOrganizationRequest,
};
use futures::StreamExt;

use crate::harness::TestPlatform;
use crate::people::authorized;
use crate::platform_tests;

platform_tests!(creating_an_organization_publishes_its_event, changes_are_published_in_order);

async fn subscribe(platform: &TestPlatform, pattern: &str) -> DeliveryStream {
    let spec = SubscriptionSpec { module: "e2e".into(), pattern: pattern.into(), durable_name: None };
    platform.platform().bus.subscribe(spec).await.expect("subscribe")
}

async fn next_event(deliveries: &mut DeliveryStream) -> Event {
    let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
        .await
        .expect("an event within 10 s")
        .expect("the subscription is open");
    delivery.ack().await.expect("ack");
    delivery.event
}

async fn creating_an_organization_publishes_its_event(platform: &TestPlatform) {
    let person = platform.person("founder@example.com").await;
    let mut deliveries = subscribe(platform, "organization.*").await;
    let mut request = authorized(
        CreateOrganizationRequest {
            organization: Some(Organization { display_name: "Evented".into(), ..Default::default() }),
        },
        person.token(),
    );
    request.metadata_mut().insert("x-request-id", "e2e-request-1".parse().unwrap());
    let created = platform.organizations().await.create_organization(request).await.unwrap().into_inner();

    let event = next_event(&mut deliveries).await;
    assert_eq!(event.r#type, "organization.created");
    assert_eq!(event.organization_id, created.id);
    assert_eq!(event.source, "organization");
    assert_eq!(event.request_id, "e2e-request-1");
    assert_eq!(event.actor_user_id, person.user_id);
    assert_eq!(event.id.len(), 36);
    assert!(event.occur_time.is_some());
    match event.payload {
        Some(Payload::OrganizationCreated(payload)) => {
            assert_eq!(payload.organization, Some(created));
            assert_eq!(payload.creator_user_id, person.user_id);
            assert_eq!(payload.creator_email, person.email);
        }
        other => panic!("unexpected payload {other:?}"),
    }

    // Once published, nothing is left pending in the outbox.
    let core = &platform.platform().databases[&DatabaseGroup::Core];
    let mut pending = outbox::pending_count(core).await.unwrap();
    for _ in 0..50 {
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        pending = outbox::pending_count(core).await.unwrap();
    }
    assert_eq!(pending, 0);
}

async fn changes_are_published_in_order(platform: &TestPlatform) {
    let mut deliveries = subscribe(platform, "organization.*").await;
    let tenant = platform.tenant("Ordered").await;
    let mut client = platform.organizations().await;
    client
        .update_organization(authorized(
            UpdateOrganizationRequest {
                org_id: tenant.id().into(),
                organization: Some(Organization { display_name: "Ordered Two".into(), ..Default::default() }),
                update_mask: None,
            },
            tenant.token(),
        ))
        .await
        .unwrap();
    client
        .delete_organization(authorized(
            DeleteOrganizationRequest { org_id: tenant.id().into(), etag: String::new() },
            tenant.token(),
        ))
        .await
        .unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_event(&mut deliveries).await);
    }
    let types: Vec<&str> = seen.iter().map(|event| event.r#type.as_str()).collect();
    assert_eq!(types, ["organization.created", "organization.updated", "organization.deleted"]);
    match &seen[1].payload {
        Some(Payload::OrganizationUpdated(updated)) => {
            assert_eq!(updated.changed_fields, ["display_name"]);
            assert_eq!(updated.organization.as_ref().unwrap().display_name, "Ordered Two");
        }
        other => panic!("unexpected payload {other:?}"),
    }
    match &seen[2].payload {
        Some(Payload::OrganizationDeleted(deleted)) => {
            assert_eq!(deleted.organization_id, tenant.organization.id);
            assert!(deleted.purge_time.is_some());
        }
        other => panic!("unexpected payload {other:?}"),
    }
}
