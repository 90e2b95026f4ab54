//! The kit's backends behave alike: the cache (in-process or Redis), migrations, and
//! durable consumers with de-duplication (in-process bus or NATS JetStream).

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::bus::BusMessage;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::{Database, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::{ModuleName, OrganizationId};
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop, WorkerSettings};
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
    durable_jobs_retry_resume_and_end_once,
    a_second_read_never_waits_for_the_pool,
    a_batch_with_a_bad_event_still_handles_the_others_once,
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

/// How the organization module's consumers run on this platform.
fn consumption(platform: &TestPlatform) -> subscription::Consumption {
    let running = platform.platform();
    subscription::Consumption {
        module: "organization",
        bus: running.bus.clone(),
        database: Some(running.databases[&DatabaseGroup::Core].clone()),
        owner: complianceiq::event_owner,
        settings: platform.config.events.clone(),
        metrics: Arc::new(complianceiq_kit::metrics::Metrics::new()),
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
        consumption(platform),
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
    platform
        .stored_count_reaches(
            DatabaseGroup::Core,
            "SELECT COUNT(*) FROM ciq_processed_events WHERE consumer = 'e2e-recorder'",
            2,
        )
        .await;

    stop.cancel();
    consumer.await.unwrap().expect("the consumer stops cleanly");
}

/// Handles events in batches; `poison` fails wherever it is. The first event takes a while,
/// so the ones published meanwhile wait and arrive together.
struct BatchRecorder {
    handled: mpsc::UnboundedSender<String>,
    batches: std::sync::Mutex<Vec<usize>>,
    poison: String,
    first: std::sync::atomic::AtomicBool,
}

#[tonic::async_trait]
impl EventHandler for BatchRecorder {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        if !self.first.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if event.id == self.poison {
            return Err(ApiError::internal("poison"));
        }
        self.handled.send(event.id.clone()).map_err(|_| ApiError::internal("recorder closed"))
    }

    fn batch_size(&self) -> usize {
        50
    }

    async fn handle_batch(&self, events: &[&Event]) -> Result<(), ApiError> {
        self.batches.lock().unwrap().push(events.len());
        if events.iter().any(|event| event.id == self.poison) {
            return Err(ApiError::internal("a poison event in the batch"));
        }
        for event in events {
            self.handled.send(event.id.clone()).map_err(|_| ApiError::internal("recorder closed"))?;
        }
        Ok(())
    }
}

async fn a_batch_with_a_bad_event_still_handles_the_others_once(platform: &TestPlatform) {
    let running = platform.platform();
    let (sender, mut handled) = mpsc::unbounded_channel();
    let ids: Vec<String> = (0..10).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let handler = Arc::new(BatchRecorder {
        handled: sender,
        batches: std::sync::Mutex::new(Vec::new()),
        poison: ids[5].clone(),
        first: std::sync::atomic::AtomicBool::new(false),
    });
    let stop = CancellationToken::new();
    let consumer = tokio::spawn(subscription::run(
        Subscription {
            consumer: "e2e-batches",
            events: vec![complianceiq_proto::EventType::OrganizationDeleted],
            handler: handler.clone(),
        },
        consumption(platform),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in &ids {
        running.bus.publish(message(id)).await.expect("publish");
    }
    let mut seen = Vec::new();
    while seen.len() < ids.len() - 1 {
        let id = tokio::time::timeout(Duration::from_secs(10), handled.recv()).await.expect("handled in time").unwrap();
        seen.push(id);
    }
    seen.sort();
    let mut good: Vec<String> = ids.iter().filter(|id| **id != ids[5]).cloned().collect();
    good.sort();
    assert_eq!(seen, good, "every good event once, the poison never");
    assert!(
        handler.batches.lock().unwrap().iter().any(|size| *size > 1),
        "events that waited were handed over together: {:?}",
        handler.batches.lock().unwrap()
    );
    // The handler's side effect comes before its marker's commit: wait for the commit.
    platform
        .stored_count_reaches(
            DatabaseGroup::Core,
            "SELECT COUNT(*) FROM ciq_processed_events WHERE consumer = 'e2e-batches'",
            9,
        )
        .await;
    stop.cancel();
    consumer.await.unwrap().expect("the consumer stops cleanly");
}

/// A kind of job for the test: what each job does is in its id.
#[derive(Default)]
struct TestJobs {
    ended: std::sync::Mutex<Vec<(String, Ending)>>,
    claimed: tokio::sync::Notify,
    /// Until set, the jobs without a rule hold on until their worker stops.
    release_held: std::sync::atomic::AtomicBool,
}

impl JobHandler for TestJobs {
    const KIND: &'static str = "kit-test";

    async fn execute(&self, job: &Job, stop: &CancellationToken) -> Result<(), Stop> {
        self.claimed.notify_one();
        match job.id.as_str() {
            "succeeds" => Ok(()),
            "fails" => Err(Stop::Failed("broken for good".into())),
            "retried-once" if job.attempts == 0 => Err(Stop::Retry("not yet".into())),
            "retried-once" => Ok(()),
            "always-retried" => Err(Stop::Retry("never".into())),
            _ if self.release_held.load(std::sync::atomic::Ordering::SeqCst) => Ok(()),
            _ => {
                stop.cancelled().await;
                Err(Stop::Shutdown)
            }
        }
    }

    async fn record_end(&self, _: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        self.ended.lock().unwrap().push((job.id.clone(), ending.clone()));
        Ok(())
    }
}

impl TestJobs {
    fn ended(&self) -> Vec<(String, Ending)> {
        let mut ended = self.ended.lock().unwrap().clone();
        ended.sort_by(|a, b| a.0.cmp(&b.0));
        ended
    }

    async fn wait_for(&self, count: usize) -> Vec<(String, Ending)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.ended.lock().unwrap().len() < count {
            assert!(tokio::time::Instant::now() < deadline, "jobs still running: {:?}", self.ended());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.ended()
    }
}

/// The kit's job queue on this backend: retries with backoff up to the attempts allowed, a
/// job given back at shutdown runs again at once, a job whose worker died runs again when its
/// lease passes, and each ends exactly once, off the queue.
async fn durable_jobs_retry_resume_and_end_once(platform: &TestPlatform) {
    let database = platform.platform().databases[&DatabaseGroup::Core].for_module(ModuleName("organization"));
    let organization = OrganizationId::generate();
    let enqueue = |ids: &'static [&'static str]| {
        let database = database.clone();
        async move {
            let mut tx = database.write(organization).await.unwrap();
            for id in ids {
                jobs::enqueue(&mut tx, TestJobs::KIND, id).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    };
    let settings = WorkerSettings {
        lease: Duration::from_millis(800),
        poll: Duration::from_millis(20),
        concurrency: 8,
        max_attempts: 3,
        retry_backoff: Duration::from_millis(50),
    };
    let handler = Arc::new(TestJobs::default());
    let metrics = Arc::new(complianceiq_kit::metrics::Metrics::new());
    let work = |stop: CancellationToken| {
        jobs::work(database.clone(), handler.clone(), settings.clone(), metrics.clone(), stop)
    };

    // A worker dies holding a job: its lease is left to run out.
    enqueue(&["orphaned"]).await;
    // (a process of its own: its metrics die with it).
    let own_metrics = Arc::new(complianceiq_kit::metrics::Metrics::new());
    let dying = tokio::spawn(jobs::work(
        database.clone(),
        handler.clone(),
        settings.clone(),
        own_metrics,
        CancellationToken::new(),
    ));
    tokio::time::timeout(Duration::from_secs(10), handler.claimed.notified()).await.expect("the job is claimed");
    dying.abort();

    enqueue(&["succeeds", "fails", "retried-once", "always-retried", "given-back"]).await;
    let stop = CancellationToken::new();
    let worker = tokio::spawn(work(stop.clone()));
    assert_eq!(
        handler.wait_for(4).await,
        [
            ("always-retried", Ending::Failed("never (gave up after 3 attempts)".into())),
            ("fails", Ending::Failed("broken for good".into())),
            ("retried-once", Ending::Succeeded),
            ("succeeds", Ending::Succeeded),
        ]
        .map(|(id, ending)| (id.to_string(), ending))
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker).await.expect("the worker stops").unwrap();
    let mut tx = database.read(organization).await.unwrap();
    for id in ["given-back", "orphaned"] {
        assert!(jobs::is_queued(&mut tx, TestJobs::KIND, id).await.unwrap(), "{id} is still queued");
    }
    for id in ["succeeds", "fails"] {
        assert!(!jobs::is_queued(&mut tx, TestJobs::KIND, id).await.unwrap(), "{id} left the queue");
    }
    tx.commit().await.unwrap();

    // The next worker finishes both: the one given back at once, the orphaned one whose lease
    // has passed.
    handler.release_held.store(true, std::sync::atomic::Ordering::SeqCst);
    let stop = CancellationToken::new();
    let worker = tokio::spawn(work(stop.clone()));
    let ended = handler.wait_for(6).await;
    stop.cancel();
    worker.await.unwrap();
    let ids: Vec<&str> = ended.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["always-retried", "fails", "given-back", "orphaned", "retried-once", "succeeds"], "each once");
    assert!(
        ended.iter().filter(|(id, _)| id == "given-back" || id == "orphaned").all(|(_, e)| *e == Ending::Succeeded)
    );
    let text = metrics.encode();
    for line in [
        r#"jobs_total{kind="kit-test",outcome="succeeded"} 4"#,
        r#"jobs_total{kind="kit-test",outcome="failed"} 2"#,
        r#"jobs_total{kind="kit-test",outcome="retried"} 3"#,
        r#"jobs_running{kind="kit-test"} 0"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

/// `try_read` takes a connection only when the pool has one idle: with every connection in
/// use it answers `None` at once (waiting could deadlock tasks that each hold one), and a
/// connection given back is taken again.
async fn a_second_read_never_waits_for_the_pool(platform: &TestPlatform) {
    let group = DatabaseGroup::Analysis;
    let pool = Database::connect(group, &platform.app_database_url(group), 2).await.unwrap();
    let database = pool.for_module(ModuleName("analysis"));
    let organization = OrganizationId::generate();
    let first = database.read(organization).await.unwrap();
    let second = database.read(organization).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(2), database.try_read(organization))
        .await
        .expect("try_read answers without waiting for a connection")
        .unwrap();
    assert!(refused.is_none(), "both connections are in use");
    first.commit().await.unwrap();
    // The pool takes a connection back in a task of its own, a moment after the commit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut third = loop {
        if let Some(tx) = database.try_read(organization).await.unwrap() {
            break tx;
        }
        assert!(tokio::time::Instant::now() < deadline, "the connection given back never became idle");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let one: i64 = sqlx::query_scalar("SELECT CAST(1 AS BIGINT)").fetch_one(third.connection()).await.unwrap();
    assert_eq!(one, 1);
    third.commit().await.unwrap();
    second.commit().await.unwrap();
}
