//! The kit's backends behave alike: the cache (in-process or Redis), migrations, and
//! durable consumers with de-duplication (in-process bus or NATS JetStream).

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::bus::BusMessage;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::runtime;
use complianceiq_kit::subscription::{self, EventHandler, Subscription};
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{Event, OrganizationDeleted};
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::TestPlatform;
use crate::platform_tests;

platform_tests!(
    the_cache_keeps_values_until_they_expire,
    migrations_apply_once,
    a_consumer_handles_each_event_once,
    leased_rate_limits_hold_the_limit_in_the_shared_store,
);

/// Budgets leased in batches (Redis's script on `servers`) never admit more than the limit,
/// from two processes' worth of leases at once.
async fn leased_rate_limits_hold_the_limit_in_the_shared_store(platform: &TestPlatform) {
    use complianceiq_kit::cache::LeasedLimits;
    let cache = platform.platform().cache.clone();
    let metrics = Arc::new(complianceiq_kit::metrics::Metrics::new());
    let (first, second) =
        (LeasedLimits::new(cache.clone(), metrics.clone()), LeasedLimits::new(cache, metrics.clone()));
    let (limit, period) = (640, Duration::from_secs(3600));
    let mut admitted = 0u32;
    for round in 0..800 {
        let limits = if round % 2 == 0 { &first } else { &second };
        admitted += u32::from(limits.check("leased", limit, period).await.allowed);
    }
    assert!(metrics.encode().contains("rate_limit_local_decisions_total 0\n"), "every decision came from the store");
    assert!(admitted <= limit, "admitted {admitted} of {limit}");
    assert!(admitted >= limit - 2 * 9, "at most a batch less per process: {admitted}");
}

async fn the_cache_keeps_values_until_they_expire(platform: &TestPlatform) {
    let cache = &platform.platform().cache;
    let ttl = Duration::from_millis(400);

    assert_eq!(cache.get("absent").await.unwrap(), None);
    cache.set("token", b"value", ttl).await.unwrap();
    assert_eq!(cache.get("token").await.unwrap().as_deref(), Some(&b"value"[..]));

    assert!(cache.set_if_absent("once", b"first", ttl).await.unwrap());
    assert!(!cache.set_if_absent("once", b"second", ttl).await.unwrap());
    assert_eq!(cache.get("once").await.unwrap().as_deref(), Some(&b"first"[..]));

    assert!(cache.delete("once").await.unwrap());
    assert!(!cache.delete("once").await.unwrap());

    for expected in 1..=3 {
        assert_eq!(cache.increment("counter", ttl).await.unwrap(), expected);
    }

    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(cache.get("token").await.unwrap(), None, "expired");
    assert_eq!(cache.increment("counter", ttl).await.unwrap(), 1, "a new window after expiry");
    assert!(cache.set_if_absent("token", b"again", ttl).await.unwrap());
}

async fn migrations_apply_once(platform: &TestPlatform) {
    let modules = complianceiq::modules();
    let targets = runtime::resolve_targets(&modules, &["all".to_string()]).unwrap();
    let reports = runtime::migrate(&platform.config, &targets).await.expect("a second migration run");
    assert_eq!(reports.len(), 4, "auth, core, analysis and audit databases");
    for (group, report) in reports {
        assert!(report.applied.is_empty(), "{group:?} had nothing left to apply: {:?}", report.applied);
    }
    // One history row per migration: the kit's, then each module's whose group lives in the
    // same database as core (all of them when one URL serves every group).
    let core_url = platform.app_database_url(DatabaseGroup::Core);
    let declared: usize = complianceiq_kit::db::migrate::KIT_MIGRATIONS.migrations.len()
        + modules
            .iter()
            .filter(|module| module.database.is_some_and(|group| platform.app_database_url(group) == core_url))
            .map(|module| module.migrations.len())
            .sum::<usize>();
    let applied = platform.stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM ciq_schema_migrations").await;
    assert_eq!(applied, declared as i64);
}

struct Recorder(mpsc::UnboundedSender<String>);

#[tonic::async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        self.0.send(event.id.clone()).map_err(|_| ApiError::internal("recorder closed"))
    }
}

fn message(event_id: &str) -> BusMessage {
    let event = Event {
        id: event_id.into(),
        r#type: "organization.deleted".into(),
        source: "organization".into(),
        payload: Some(Payload::OrganizationDeleted(OrganizationDeleted::default())),
        ..Default::default()
    };
    BusMessage {
        event_id: event.id.clone(),
        event_type: event.r#type.clone(),
        source: event.source.clone(),
        payload: event.encode_to_vec().into(),
    }
}

async fn a_consumer_handles_each_event_once(platform: &TestPlatform) {
    let running = platform.platform();
    let (sender, mut handled) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let consumer = tokio::spawn(subscription::run(
        Subscription {
            consumer: "e2e-recorder",
            events: vec![complianceiq_proto::EventType::OrganizationDeleted],
            handler: Arc::new(Recorder(sender)),
        },
        subscription::Consumption {
            module: "organization",
            bus: running.bus.clone(),
            database: Some(running.databases[&DatabaseGroup::Core].clone()),
            owner: complianceiq::event_owner,
            settings: platform.config.events.clone(),
            metrics: Arc::new(complianceiq_kit::metrics::Metrics::new()),
        },
        stop.clone(),
    ));
    // Let the durable consumer attach before publishing.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let first = uuid::Uuid::now_v7().to_string();
    let second = uuid::Uuid::now_v7().to_string();
    for id in [&first, &first, &second] {
        running.bus.publish(message(id)).await.expect("publish");
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let id = tokio::time::timeout(Duration::from_secs(10), handled.recv()).await.expect("handled in time").unwrap();
        seen.push(id);
    }
    assert_eq!(seen, [first.clone(), second.clone()]);
    // The repeated publish of `first` never reaches the handler.
    assert!(tokio::time::timeout(Duration::from_millis(500), handled.recv()).await.is_err());
    let recorded = platform
        .stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM ciq_processed_events WHERE consumer = 'e2e-recorder'")
        .await;
    assert_eq!(recorded, 2);

    stop.cancel();
    consumer.await.unwrap().expect("the consumer stops cleanly");
}
