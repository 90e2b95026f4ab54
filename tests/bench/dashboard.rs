//! The dashboard summary under load: an organization with `CIQ_BENCH_DASHBOARD_INSTANCES`
//! simulated instances (default 3, 200 controls each), each synced and analysed (control
//! effectiveness, risk correlation, compliance gaps); then `CIQ_BENCH_DASHBOARD_CLIENTS`
//! concurrent callers (default 8) ask GetDashboardSummary of the dashboard module over the
//! mesh: cached (the default period, one cache entry), and uncached (each call names its own
//! period, so each is computed). Prints a Markdown table for BENCHMARKS.md.
//!
//! `cargo bench -p complianceiq-e2e --bench dashboard` (part of `make bench`). With
//! `CIQ_TEST_*` set it also runs on PostgreSQL, Redis and NATS.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../e2e/people.rs"]
mod people;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use complianceiq_proto::complianceiq::analysis::v1::analysis_service_client::AnalysisServiceClient;
use complianceiq_proto::complianceiq::analysis::v1::*;
use complianceiq_proto::complianceiq::common::v1::TimeRange;
use complianceiq_proto::complianceiq::dashboard::v1::GetDashboardSummaryRequest;
use complianceiq_proto::complianceiq::dashboard::v1::dashboard_service_client::DashboardServiceClient;
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::*;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{Plan, Subscription, UpdateSubscriptionRequest};
use complianceiq_servicenow::sim::{self, SimConfig, Simulator};
use harness::{Backend, TestPlatform};
use people::{Tenant, authorized};
use tokio_util::sync::CancellationToken;

use common::setting;

/// An instance served by a simulator, connected, synced and analysed.
async fn analysed_instance(platform: &TestPlatform, tenant: &Tenant, seed: u64, stop: &CancellationToken) {
    let simulator = Arc::new(Simulator::new(SimConfig { controls: 200, seed, ..SimConfig::default() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim::serve(simulator.clone(), listener, stop.clone()));
    let config = simulator.config();
    let instance = Instance {
        name: format!("sim {seed}"),
        url,
        auth_type: AuthType::Basic as i32,
        credentials: Some(Credentials {
            kind: Some(credentials::Kind::Basic(BasicCredentials {
                username: config.username.clone(),
                password: config.password.clone(),
            })),
        }),
        ..Default::default()
    };
    let mut instances = InstanceServiceClient::new(platform.channel("instance").await);
    let deadline = Instant::now() + Duration::from_secs(300);
    // The plan's instance allowance reaches the instance service by event: wait for it.
    let instance = loop {
        let request = CreateInstanceRequest { instance: Some(instance.clone()), validate_connection: false };
        match instances.create_instance(authorized(request, tenant.token())).await {
            Ok(created) => break created.into_inner(),
            Err(status) if Instant::now() < deadline && status.code() != tonic::Code::InvalidArgument => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(status) => panic!("connecting: {status:?}"),
        }
    };
    let request = SyncInstanceRequest { instance_id: instance.id.clone(), mode: SyncMode::Full as i32, tables: vec![] };
    let run = instances.sync_instance(authorized(request, tenant.token())).await.expect("sync").into_inner();
    loop {
        let request = GetSyncRunRequest { instance_id: instance.id.clone(), sync_run_id: run.id.clone() };
        let current = instances.get_sync_run(authorized(request, tenant.token())).await.unwrap().into_inner();
        if current.state() == SyncState::Succeeded {
            break;
        }
        assert!(matches!(current.state(), SyncState::Pending | SyncState::Running), "{current:?}");
        assert!(Instant::now() < deadline, "the sync did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut analysis = AnalysisServiceClient::new(platform.channel("analysis").await);
    let id = instance.id.clone();
    for kind in 0..3 {
        let job = loop {
            let started = match kind {
                0 => {
                    let request = AnalyzeControlsRequest { instance_id: id.clone(), ..Default::default() };
                    analysis.analyze_controls(authorized(request, tenant.token())).await
                }
                1 => {
                    let request = AnalyzeRisksRequest { instance_id: id.clone(), ..Default::default() };
                    analysis.analyze_risks(authorized(request, tenant.token())).await
                }
                _ => {
                    let request = AnalyzeComplianceRequest { instance_id: id.clone(), policy_ids: vec![] };
                    analysis.analyze_compliance(authorized(request, tenant.token())).await
                }
            };
            match started {
                Ok(job) => break job.into_inner(),
                // The store learns of the sync a moment after it ends.
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(status) => panic!("starting an analysis: {status:?}"),
            }
        };
        loop {
            let request = GetAnalysisJobRequest { job_id: job.id.clone() };
            let current = analysis.get_analysis_job(authorized(request, tenant.token())).await.unwrap().into_inner();
            if current.state() == JobState::Succeeded {
                break;
            }
            assert!(matches!(current.state(), JobState::Queued | JobState::Running), "{current:?}");
            assert!(Instant::now() < deadline, "the analysis did not end");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Load {
    calls: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// `calls` summaries on `clients` tasks; `period_of(i)` the period of call i.
async fn load(
    dashboard: DashboardServiceClient<tonic::transport::Channel>,
    tenant: Arc<Tenant>,
    calls: usize,
    clients: usize,
    period_of: fn(usize) -> Option<TimeRange>,
) -> Load {
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(calls)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (mut dashboard, tenant, next, latencies) =
            (dashboard.clone(), tenant.clone(), next.clone(), latencies.clone());
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= calls {
                    return;
                }
                let request = GetDashboardSummaryRequest { period: period_of(index) };
                let call = Instant::now();
                let summary =
                    dashboard.get_dashboard_summary(authorized(request, tenant.token())).await.expect("summary");
                assert!(!summary.into_inner().instances.is_empty());
                latencies.lock().unwrap().push(call.elapsed());
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a client task");
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let at = |quantile: f64| latencies[((latencies.len() as f64 * quantile) as usize).min(latencies.len() - 1)];
    Load { calls, elapsed, p50: at(0.5), p99: at(0.99) }
}

fn own_period(index: usize) -> Option<TimeRange> {
    let end = complianceiq_kit::time::now_micros() - index as i64;
    Some(TimeRange {
        start_time: Some(complianceiq_kit::time::to_timestamp(end - 30 * 86_400_000_000)),
        end_time: Some(complianceiq_kit::time::to_timestamp(end)),
    })
}

async fn measure(backend: Backend, instances: usize, clients: usize) -> (Backend, Load, Load) {
    let platform = TestPlatform::start_with(backend, |_| {}).await;
    let tenant = Arc::new(platform.tenant("Bench Dashboard").await);
    // Enterprise: room for the instances and their analyses (the in-process billing provider).
    let upgrade = UpdateSubscriptionRequest {
        org_id: tenant.id().into(),
        subscription: Some(Subscription { plan: Plan::Enterprise as i32, ..Default::default() }),
        update_mask: None,
    };
    OrganizationServiceClient::new(platform.channel("organization").await)
        .update_subscription(authorized(upgrade, tenant.token()))
        .await
        .expect("upgrade");
    let stop = CancellationToken::new();
    for seed in 0..instances {
        analysed_instance(&platform, &tenant, 100 + seed as u64, &stop).await;
    }
    let dashboard = DashboardServiceClient::new(platform.channel("dashboard").await);
    // The dashboard has taken in every analysis once the summary shows them all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let request = authorized(GetDashboardSummaryRequest { period: own_period(0) }, tenant.token());
        let summary = dashboard.clone().get_dashboard_summary(request).await.unwrap().into_inner();
        if summary.instances.len() == instances && summary.instances.iter().all(|i| i.posture_score > 0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the analyses never reached the dashboard");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let uncached = load(dashboard.clone(), tenant.clone(), 200, clients, own_period).await;
    let cached = load(dashboard, tenant, 5_000, clients, |_| None).await;
    stop.cancel();
    (backend, cached, uncached)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let instances = setting("CIQ_BENCH_DASHBOARD_INSTANCES", 3) as usize;
        let clients = setting("CIQ_BENCH_DASHBOARD_CLIENTS", 8) as usize;
        let mut results = vec![measure(Backend::Embedded, instances, clients).await];
        if std::env::var("CIQ_TEST_POSTGRES_URL").is_ok() {
            results.push(measure(Backend::Servers, instances, clients).await);
        }
        println!("| store (cache) | instances | clients | summary | calls | calls/s | p50 ms | p99 ms |");
        println!("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
        for (backend, cached, uncached) in results {
            let store = if backend == Backend::Servers { "PostgreSQL (Redis)" } else { "SQLite (in process)" };
            for (kind, load) in [("cached", cached), ("uncached", uncached)] {
                println!(
                    "| {store} | {instances} | {clients} | {kind} | {} | {:.0} | {:.2} | {:.2} |",
                    load.calls,
                    load.calls as f64 / load.elapsed.as_secs_f64(),
                    load.p50.as_secs_f64() * 1e3,
                    load.p99.as_secs_f64() * 1e3
                );
            }
        }
    });
}
