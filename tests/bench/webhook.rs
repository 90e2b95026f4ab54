//! Webhook deliveries to a local receiver: `CIQ_BENCH_WEBHOOK_EVENTS` events (default 1,000)
//! published on the bus at once, each fanned out to `E` webhooks (1 and 4) of one
//! organization, from the first publish until the receiver has accepted every delivery
//! (verified with the Standard Webhooks reference library, in order per endpoint). An
//! endpoint gets one delivery at a time (the order promise), so one endpoint's rate is its
//! round trip plus the bookkeeping; several endpoints are delivered to side by side. Prints a
//! Markdown table for BENCHMARKS.md.
//!
//! `cargo bench -p complianceiq-e2e --bench webhook` (part of `make bench`). With `CIQ_TEST_*`
//! set it also runs on PostgreSQL, Redis and NATS.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../e2e/people.rs"]
mod people;
#[allow(dead_code)]
#[path = "../e2e/receiver.rs"]
mod receiver;

use std::time::{Duration, Instant};

use complianceiq_proto::complianceiq::events::v1::OrganizationUpdated;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::organization::v1::Organization;
use complianceiq_proto::complianceiq::webhook::v1::webhook_service_client::WebhookServiceClient;
use complianceiq_proto::complianceiq::webhook::v1::{CreateWebhookRequest, Webhook};
use harness::{Backend, TestPlatform, bus_message};
use people::authorized;
use receiver::Receiver;

use common::setting;

struct Measured {
    backend: Backend,
    events: usize,
    endpoints: usize,
    elapsed: Duration,
}

async fn measure(backend: Backend, events: usize, endpoints: usize) -> Measured {
    let platform = TestPlatform::start(backend).await;
    let tenant = platform.tenant("Bench Webhooks").await;
    let mut webhooks = WebhookServiceClient::new(platform.channel("webhook").await);
    let mut receivers = Vec::new();
    for _ in 0..endpoints {
        let receiver = Receiver::start().await;
        let webhook =
            Webhook { url: receiver.url(), event_types: vec!["organization.updated".into()], ..Default::default() };
        let request = CreateWebhookRequest { webhook: Some(webhook) };
        let created = webhooks.create_webhook(authorized(request, tenant.token())).await.expect("create a webhook");
        receiver.trust(&created.into_inner().secret);
        receivers.push(receiver);
    }
    let bus = platform.platform().bus.clone();
    let started = Instant::now();
    for index in 0..events {
        let organization = Organization { display_name: format!("Bench {index}"), ..Default::default() };
        let payload = Payload::OrganizationUpdated(OrganizationUpdated {
            organization: Some(organization),
            ..Default::default()
        });
        bus.publish(bus_message(tenant.id(), payload, "organization")).await.expect("publish");
    }
    for receiver in &receivers {
        let accepted = receiver.accepted(events, Duration::from_secs(600)).await;
        let first = accepted[0].json()["data"]["organization"]["displayName"].as_str().unwrap().to_string();
        assert_eq!(first, "Bench 0", "in order");
    }
    let elapsed = started.elapsed();
    drop(receivers);
    platform.stop().await;
    Measured { backend, events, endpoints, elapsed }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let events = setting("CIQ_BENCH_WEBHOOK_EVENTS", 1000) as usize;
        let mut backends = vec![Backend::Embedded];
        if std::env::var("CIQ_TEST_POSTGRES_URL").is_ok() {
            backends.push(Backend::Servers);
        }
        let mut results = Vec::new();
        for backend in backends {
            for endpoints in [1, 4] {
                results.push(measure(backend, events, endpoints).await);
            }
        }
        println!("| store | events | endpoints | deliveries | seconds | deliveries/s |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for result in results {
            let deliveries = result.events * result.endpoints;
            println!(
                "| {} | {} | {} | {} | {:.1} | {:.0} |",
                if result.backend == Backend::Servers { "PostgreSQL" } else { "SQLite" },
                result.events,
                result.endpoints,
                deliveries,
                result.elapsed.as_secs_f64(),
                deliveries as f64 / result.elapsed.as_secs_f64()
            );
        }
    });
}
