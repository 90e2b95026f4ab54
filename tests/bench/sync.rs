//! Sync throughput: a full sync of the simulator's instance (Table API over HTTP, the
//! instance service, IngestRecords over the mesh, the analysis store) against inserting the
//! same rows into the same store directly, in transactions of one page. Prints a Markdown
//! table for BENCHMARKS.md.
//!
//! `cargo bench -p complianceiq-e2e --bench sync` (part of `make bench`). `CIQ_BENCH_CONTROLS`
//! sizes the instance (default 1000 controls, about 13 000 records); with `CIQ_TEST_*` set it
//! also runs on PostgreSQL, Redis and NATS.

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../e2e/people.rs"]
mod people;

use std::time::{Duration, Instant};

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::*;
use complianceiq_servicenow::sim::{self, SimConfig, Simulator};
use complianceiq_servicenow::tables;
use harness::{Backend, TestPlatform};
use people::authorized;
use sqlx::{AnyConnection, Connection};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

struct Measured {
    backend: &'static str,
    records: usize,
    sync: Duration,
    direct: Duration,
}

async fn measure(backend: Backend, controls: usize) -> Measured {
    let simulator = std::sync::Arc::new(Simulator::new(SimConfig { controls, ..SimConfig::default() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(sim::serve(simulator.clone(), listener, stop.clone()));
    let records: usize = simulator.counts().values().sum();

    let platform = TestPlatform::start_with(backend, |config| {
        // The simulator is local: no need to spare it.
        config.instance.requests_per_second = 10_000.0;
    })
    .await;
    let tenant = platform.tenant("Bench Sync").await;
    let config = simulator.config();
    let instance = Instance {
        name: "bench".into(),
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
    let instance = loop {
        let request = CreateInstanceRequest { instance: Some(instance.clone()), validate_connection: false };
        match instances.create_instance(authorized(request, tenant.token())).await {
            Ok(created) => break created.into_inner(),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };

    let started = Instant::now();
    let request = SyncInstanceRequest { instance_id: instance.id.clone(), mode: SyncMode::Full as i32, tables: vec![] };
    let run = instances.sync_instance(authorized(request, tenant.token())).await.unwrap().into_inner();
    let run = loop {
        let request = GetSyncRunRequest { instance_id: instance.id.clone(), sync_run_id: run.id.clone() };
        // A process saturated by the sync may refuse a call for a moment (UNAVAILABLE with a
        // RetryInfo, e.g. while its revocation feed lags); a client retries those.
        match instances.get_sync_run(authorized(request, tenant.token())).await {
            Ok(current) if !matches!(current.get_ref().state(), SyncState::Pending | SyncState::Running) => {
                break current.into_inner();
            }
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::Unavailable => {
                eprintln!("GetSyncRun refused for now, retrying: {}", status.message());
            }
            Err(status) => panic!("GetSyncRun: {status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let sync = started.elapsed();
    assert_eq!(run.state(), SyncState::Succeeded, "{run:?}");
    // Every record is fetched; users no GRC record references are not kept.
    let fetched: i64 = run.tables.iter().map(|table| table.fetched).sum();
    assert!(fetched as usize >= records, "{run:?}");

    // The same rows straight into the same table, a page per transaction.
    let rows: Vec<(&str, &str, String, String, String)> = tables::ALL
        .iter()
        .flat_map(|table| {
            let simulator = &simulator;
            simulator.ids(table.name).into_iter().map(move |id| {
                let record = simulator.record(table.name, &id).unwrap();
                let fields = serde_json::to_string(&record).unwrap();
                (table.name, table.kind, id, record["sys_updated_on"].clone(), fields)
            })
        })
        .collect();
    sqlx::any::install_default_drivers();
    let mut connection = AnyConnection::connect(&platform.owner_database_url(DatabaseGroup::Analysis)).await.unwrap();
    let other_instance = uuid::Uuid::now_v7().to_string();
    let started = Instant::now();
    for page in rows.chunks(500) {
        let mut tx = connection.begin().await.unwrap();
        for (table, kind, id, updated, fields) in page {
            sqlx::query(
                "INSERT INTO grc_records (organization_id, instance_id, table_name, sys_id, kind, updated_on, fields, \
                 content_hash, first_synced_at, synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0)",
            )
            .bind(tenant.id())
            .bind(&other_instance)
            .bind(*table)
            .bind(id)
            .bind(*kind)
            .bind(updated)
            .bind(fields)
            .bind(complianceiq_kit::crypto::sha256_hex(fields.as_bytes()))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let direct = started.elapsed();
    connection.close().await.ok();
    platform.stop().await;
    stop.cancel();
    Measured { backend: if backend == Backend::Embedded { "SQLite" } else { "PostgreSQL" }, records, sync, direct }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let controls = setting("CIQ_BENCH_CONTROLS", 1000) as usize;
        let mut results = vec![measure(Backend::Embedded, controls).await];
        if std::env::var("CIQ_TEST_POSTGRES_URL").is_ok() {
            results.push(measure(Backend::Servers, controls).await);
        }
        println!("| store | records | full sync s | sync records/s | direct insert rows/s | sync ÷ direct |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for result in results {
            let sync_rate = result.records as f64 / result.sync.as_secs_f64();
            let direct_rate = result.records as f64 / result.direct.as_secs_f64();
            println!(
                "| {} | {} | {:.2} | {:.0} | {:.0} | {:.2} |",
                result.backend,
                result.records,
                result.sync.as_secs_f64(),
                sync_rate,
                direct_rate,
                sync_rate / direct_rate
            );
        }
    });
}
