//! Audit writes with the hash chain: `CIQ_BENCH_AUDIT_ENTRIES` entries (default 2,000)
//! appended to one organization's chain through CreateAuditLog by `CIQ_BENCH_AUDIT_CLIENTS`
//! concurrent callers (default 8), each append a transaction that locks the chain's head,
//! reads the last hash and inserts (the layer's entries for those calls, appended meanwhile,
//! are not counted); then the same number recorded by the kit's layer for
//! mutating calls (CreateTeam), from the call until the audit service appended the last one
//! (outbox, bus, consumer, chain); then one VerifyAuditTrail over the whole chain. Prints a
//! Markdown table for BENCHMARKS.md.
//!
//! `cargo bench -p complianceiq-e2e --bench audit` (part of `make bench`). With `CIQ_TEST_*`
//! set it also runs on PostgreSQL, Redis and NATS.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../e2e/people.rs"]
mod people;

use std::sync::Arc;
use std::time::{Duration, Instant};

use complianceiq_proto::complianceiq::audit::v1::audit_service_client::AuditServiceClient;
use complianceiq_proto::complianceiq::audit::v1::*;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{CreateTeamRequest, Team};
use harness::{Backend, TestPlatform};
use people::{Tenant, authorized};

use common::setting;

struct Measured {
    backend: Backend,
    entries: usize,
    clients: usize,
    direct: Duration,
    layered: Duration,
    verify: Duration,
    verified: i64,
}

/// Runs `calls` calls of `call` on `clients` tasks at once.
async fn concurrently<F, Fut>(calls: usize, clients: usize, call: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (call, next) = (call.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= calls {
                    return;
                }
                call(index).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a client task");
    }
    started.elapsed()
}

async fn chain_length(platform: &TestPlatform, tenant: &Tenant) -> i64 {
    let request = ListAuditLogsRequest { page_size: 1, ..Default::default() };
    let newest = AuditServiceClient::new(platform.channel("audit").await)
        .list_audit_logs(authorized(request, tenant.token()))
        .await
        .expect("list")
        .into_inner();
    newest.audit_logs.first().map_or(0, |entry| entry.sequence)
}

async fn measure(backend: Backend, entries: usize, clients: usize) -> Measured {
    let platform = TestPlatform::start_with(backend, |config| {
        config.gateway.client_per_minute = u32::MAX;
        config.gateway.tenant_per_minute = u32::MAX;
    })
    .await;
    let tenant = Arc::new(platform.tenant("Bench Audit").await);
    let audit = AuditServiceClient::new(platform.channel("audit").await);
    let direct = {
        let (audit, tenant) = (audit.clone(), tenant.clone());
        concurrently(entries, clients, move |index| {
            let (mut audit, tenant) = (audit.clone(), tenant.clone());
            async move {
                let entry = AuditLog {
                    action: "bench.write".into(),
                    resource_type: "bench".into(),
                    resource_id: index.to_string(),
                    ..Default::default()
                };
                let request = CreateAuditLogRequest { audit_log: Some(entry) };
                audit.create_audit_log(authorized(request, tenant.token())).await.expect("create audit log");
            }
        })
        .await
    };
    // CreateAuditLog is itself a mutating call: the layer records each one too. Wait until
    // those have all arrived, so the next phase counts only its own.
    let mut before = chain_length(&platform, &tenant).await;
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let now = chain_length(&platform, &tenant).await;
        if now == before {
            break;
        }
        before = now;
    }
    let organizations = OrganizationServiceClient::new(platform.channel("organization").await);
    let started = Instant::now();
    {
        let tenant = tenant.clone();
        concurrently(entries, clients, move |index| {
            let (mut organizations, tenant) = (organizations.clone(), tenant.clone());
            async move {
                let team = Team { name: format!("Team {index}"), ..Default::default() };
                let request = CreateTeamRequest { org_id: tenant.id().into(), team: Some(team) };
                organizations.create_team(authorized(request, tenant.token())).await.expect("create team");
            }
        })
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while chain_length(&platform, &tenant).await < before + entries as i64 {
        assert!(Instant::now() < deadline, "the layer's entries did not all arrive within 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let layered = started.elapsed();
    let started = Instant::now();
    let verification = audit
        .clone()
        .verify_audit_trail(authorized(VerifyAuditTrailRequest {}, tenant.token()))
        .await
        .expect("verify")
        .into_inner();
    let verify = started.elapsed();
    assert!(verification.intact, "{verification:?}");
    Measured { backend, entries, clients, direct, layered, verify, verified: verification.entries_checked }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let entries = setting("CIQ_BENCH_AUDIT_ENTRIES", 2000) as usize;
        let clients = setting("CIQ_BENCH_AUDIT_CLIENTS", 8) as usize;
        let mut results = vec![measure(Backend::Embedded, entries, clients).await];
        if std::env::var("CIQ_TEST_POSTGRES_URL").is_ok() {
            results.push(measure(Backend::Servers, entries, clients).await);
        }
        println!(
            "| store | entries | clients | CreateAuditLog appends/s | mutating calls recorded/s (call to chain) | verify: entries, ms | verified entries/s |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for result in results {
            let rate = |duration: Duration| result.entries as f64 / duration.as_secs_f64();
            println!(
                "| {} | {} | {} | {:.0} | {:.0} | {}, {:.0} | {:.0} |",
                if result.backend == Backend::Servers { "PostgreSQL" } else { "SQLite" },
                result.entries,
                result.clients,
                rate(result.direct),
                rate(result.layered),
                result.verified,
                result.verify.as_secs_f64() * 1e3,
                result.verified as f64 / result.verify.as_secs_f64()
            );
        }
    });
}
