//! Sync at size: a full sync of simulated instances of growing size (Table API over HTTP, the
//! instance service, IngestRecords over the mesh, the analysis store), then an incremental sync
//! of 1,000 changes, then the control analysis beside one SQL aggregate over the synced rows.
//! The simulator is a process of its own (`complianceiq snow-sim`), so this process's CPU and
//! peak resident set are the platform's (and the bench's small client). PostgreSQL's CPU is
//! read from /proc for its processes. At the first size, the same rows are also inserted
//! into the store directly, a page per transaction, as a baseline. Prints Markdown tables for
//! BENCHMARKS.md.
//!
//! `cargo bench -p complianceiq-e2e --bench sync` (part of `make bench`; the release binary
//! must be built first, as `make bench` does). `CIQ_BENCH_CONTROLS` lists the sizes in
//! controls, comma-separated (about 13 records per control; default `760,7600`, about 10k and
//! 100k records; `76000` is about a million). With `CIQ_TEST_*` set it also runs on PostgreSQL,
//! Redis and NATS; `CIQ_BENCH_STORES=postgres` skips SQLite.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../e2e/people.rs"]
mod people;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::*;
use complianceiq_servicenow::client::{Client, ClientSettings, PageRequest};
use complianceiq_servicenow::{datetime, tables};
use harness::{Backend, TestPlatform};
use people::{Tenant, authorized};
use sqlx::{AnyConnection, Connection, Row};

const USERNAME: &str = "complianceiq";
const PASSWORD: &str = "complianceiq-sim";
const INCREMENTAL_CHANGES: usize = 1000;

/// The release binary beside this bench (target/release/deps/sync-… → target/release), or
/// `CIQ_TEST_BINARY`.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CIQ_TEST_BINARY") {
        return PathBuf::from(path);
    }
    let beside = std::env::current_exe().ok().and_then(|bench| Some(bench.parent()?.parent()?.join("complianceiq")));
    beside.filter(|path| path.exists()).expect("the release binary: cargo build --release --bin complianceiq")
}

/// CPU seconds of a process from the text of its /proc/<pid>/stat: its own user and system
/// time, and with `children` its reaped children's too (a PostgreSQL backend's time lands in
/// the postmaster's once it exits).
fn cpu_seconds(stat: &str, children: bool) -> f64 {
    // Fields after the command (which may hold spaces) in parentheses; relative to them, state
    // is 0, utime 11, stime 12, cutime 13, cstime 14, in ticks of 1/100 s.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after.split_whitespace().map(|field| field.parse().unwrap_or(0.0)).collect();
    let times = if children { 11..15 } else { 11..13 };
    fields.get(times).map_or(0.0, |times| times.iter().sum::<f64>() / 100.0)
}

/// CPU seconds of the process whose stat file this is, its own only.
fn process_cpu_seconds(stat_file: &str) -> f64 {
    cpu_seconds(&std::fs::read_to_string(stat_file).unwrap_or_default(), false)
}

fn own_cpu_seconds() -> f64 {
    // The simulator is this process's child, but not reaped during the run: not counted.
    process_cpu_seconds("/proc/self/stat")
}

/// CPU seconds of every `postgres` process on the machine.
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)"))
        .map(|stat| cpu_seconds(&stat, true))
        .sum()
}

/// Peak resident set of this process since the last [`reset_peak_rss`], in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

fn reset_peak_rss() {
    // "5" resets VmHWM to the current resident set (Linux 4.0 and later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A simulator process serving an instance of `controls` controls.
struct SimulatorProcess {
    /// Killed when dropped.
    child: tokio::process::Child,
    url: String,
}

impl SimulatorProcess {
    async fn start(controls: usize) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new(binary())
            .args(["snow-sim", "--listen", &format!("127.0.0.1:{port}"), "--controls", &controls.to_string()])
            .env("CIQ_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("the simulator starts");
        // Generating a large instance takes a while before it listens.
        let deadline = Instant::now() + Duration::from_secs(600);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "the simulator never listened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }

    fn cpu_seconds(&self) -> f64 {
        self.child.id().map_or(0.0, |pid| process_cpu_seconds(&format!("/proc/{pid}/stat")))
    }

    fn client(&self) -> Client {
        let credentials = complianceiq_servicenow::client::Credentials::Basic {
            username: USERNAME.into(),
            password: PASSWORD.into(),
        };
        let settings = ClientSettings {
            requests_per_second: 10_000.0,
            network: complianceiq_servicenow::NetworkAccess::AllowPrivate,
            ..ClientSettings::default()
        };
        Client::new(&self.url, credentials, settings).unwrap()
    }

    /// Records the instance holds.
    async fn records(&self) -> u64 {
        let client = self.client();
        let mut total = 0;
        for table in tables::ALL {
            let request = PageRequest { fields: "sys_id".into(), limit: 1, count: true, ..Default::default() };
            total += client.page(table.name, &request).await.unwrap().total.unwrap();
        }
        total
    }

    /// Changes `changes` records in ServiceNow; how many changed.
    async fn churn(&self, changes: usize) -> u64 {
        let answer = reqwest::Client::new()
            .post(format!("{}/sim/churn?changes={changes}", self.url))
            .basic_auth(USERNAME, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        let counts: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
        ["updated", "created", "deleted"].iter().map(|key| counts[key].as_u64().unwrap()).sum()
    }
}

struct Measured {
    backend: &'static str,
    records: u64,
    sync: Duration,
    platform_cpu: f64,
    postgres_cpu: Option<f64>,
    simulator_cpu: f64,
    peak_rss_mb: f64,
    changes: u64,
    incremental: Duration,
    analysis: Duration,
    aggregate: Duration,
    /// Inserting the synced rows directly: the time and the rows.
    direct: Option<(Duration, usize)>,
}

async fn synced(platform: &TestPlatform, tenant: &mut Tenant, instance: &str, mode: SyncMode) -> SyncRun {
    let mut instances = InstanceServiceClient::new(platform.channel("instance").await);
    let request = SyncInstanceRequest { instance_id: instance.into(), mode: mode as i32, tables: vec![] };
    let run = instances.sync_instance(authorized(request, tenant.token())).await.unwrap().into_inner();
    let run = loop {
        let request = GetSyncRunRequest { instance_id: instance.into(), sync_run_id: run.id.clone() };
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
            // A sync of a million records on SQLite outlasts an access token (15 minutes).
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                let organization = tenant.id().to_string();
                platform.switch(&mut tenant.admin, &organization).await;
            }
            Err(status) => panic!("GetSyncRun: {status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(run.state(), SyncState::Succeeded, "{run:?}");
    run
}

async fn measure(backend: Backend, controls: usize, baseline: bool) -> Measured {
    let simulator = SimulatorProcess::start(controls).await;
    let records = simulator.records().await;
    let platform = TestPlatform::start_with(backend, |config| {
        // The simulator is local: no need to spare it.
        config.instance.requests_per_second = 10_000.0;
    })
    .await;
    let mut tenant = platform.tenant("Bench Sync").await;
    let instance = Instance {
        name: "bench".into(),
        url: simulator.url.clone(),
        auth_type: AuthType::Basic as i32,
        credentials: Some(Credentials {
            kind: Some(credentials::Kind::Basic(BasicCredentials {
                username: USERNAME.into(),
                password: PASSWORD.into(),
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

    reset_peak_rss();
    let (cpu_before, postgres_before, simulator_before) =
        (own_cpu_seconds(), postgres_cpu_seconds(), simulator.cpu_seconds());
    let started = Instant::now();
    let run = synced(&platform, &mut tenant, &instance.id, SyncMode::Full).await;
    let sync = started.elapsed();
    let (platform_cpu, postgres_cpu) = (own_cpu_seconds() - cpu_before, postgres_cpu_seconds() - postgres_before);
    let peak_rss_mb = peak_rss_mb();
    let simulator_cpu = simulator.cpu_seconds() - simulator_before;
    let fetched: i64 = run.tables.iter().map(|table| table.fetched).sum();
    assert!(fetched as u64 >= records, "every record is fetched: {run:?}");
    eprintln!(
        "full sync: {records} records in {:.1} s ({:.0} records/s), platform CPU {platform_cpu:.1} s, peak RSS {peak_rss_mb:.0} MB",
        sync.as_secs_f64(),
        records as f64 / sync.as_secs_f64()
    );

    if backend == Backend::Servers {
        explain_page_lookups(&platform, &tenant, &instance.id).await;
    }

    // 1,000 changes in ServiceNow, then an incremental sync (after the two seconds a sync
    // stays behind ServiceNow's clock).
    let changes = simulator.churn(INCREMENTAL_CHANGES).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (started, simulator_before, postgres_before) =
        (Instant::now(), simulator.cpu_seconds(), postgres_cpu_seconds());
    synced(&platform, &mut tenant, &instance.id, SyncMode::Incremental).await;
    let incremental = started.elapsed();
    eprintln!(
        "incremental: {:.2} s, simulator CPU {:.2} s, PostgreSQL CPU {:.2} s",
        incremental.as_secs_f64(),
        simulator.cpu_seconds() - simulator_before,
        postgres_cpu_seconds() - postgres_before
    );

    // The control analysis on the synced instance, beside one aggregate over its rows.
    let organization = tenant.id().to_string();
    platform.switch(&mut tenant.admin, &organization).await;
    let compared = common::analysis_beside_aggregate(&platform, backend, &tenant, &instance.id, |job| {
        let end =
            datetime::format(complianceiq_kit::time::from_timestamp(job.data_as_of_time.as_ref().unwrap()) / 1_000_000);
        let start = datetime::format(datetime::parse(&end).unwrap() - 90 * 86_400);
        (start, end)
    })
    .await;
    let (analysis, aggregate) = (compared.analysis, compared.aggregate);

    let direct = if baseline { Some(direct_insert(&platform, &tenant, &instance.id).await) } else { None };
    platform.stop().await;
    drop(simulator);
    Measured {
        backend: if backend == Backend::Embedded { "SQLite" } else { "PostgreSQL" },
        records,
        sync,
        platform_cpu,
        postgres_cpu: (backend == Backend::Servers).then_some(postgres_cpu),
        simulator_cpu,
        peak_rss_mb,
        changes,
        incremental,
        analysis,
        aggregate,
        direct,
    }
}

/// Prints (to stderr) the plans PostgreSQL runs a page's two lookups with on the synced store
/// (as the application role, tenant set): the stored hashes of 500 records and the delete of
/// their references, prepared with `$n` parameters and run as generic plans, as a sync's
/// cached statements are.
async fn explain_page_lookups(platform: &TestPlatform, tenant: &Tenant, instance: &str) {
    let mut app = AnyConnection::connect(&platform.app_database_url(DatabaseGroup::Analysis)).await.unwrap();
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.current_organization_id', $1, true)")
        .bind(tenant.id())
        .execute(&mut *tx)
        .await
        .unwrap();
    let table = "sn_grc_indicator_result";
    let ids: Vec<String> = sqlx::query(
        "SELECT sys_id FROM grc_records WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 \
         ORDER BY updated_on DESC LIMIT 500",
    )
    .bind(tenant.id())
    .bind(instance)
    .bind(table)
    .fetch_all(&mut *tx)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect();
    let list = (4..4 + ids.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
    let types = vec!["text"; 3 + ids.len()].join(", ");
    let values = [tenant.id(), instance, table]
        .into_iter()
        .chain(ids.iter().map(String::as_str))
        .map(|value| format!("'{value}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let statements =
        [("lookup", "SELECT sys_id, content_hash FROM grc_records"), ("unlink", "DELETE FROM grc_references")];
    sqlx::raw_sql("SET LOCAL plan_cache_mode = force_generic_plan").execute(&mut *tx).await.unwrap();
    for (name, head) in statements {
        let prepare = format!(
            "PREPARE {name} ({types}) AS {head} WHERE organization_id = $1 AND instance_id = $2 \
             AND table_name = $3 AND sys_id IN ({list})"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(prepare)).execute(&mut *tx).await.unwrap();
        let explain = format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE {name} ({values})");
        let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(explain))
            .fetch_all(&mut *tx)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        eprintln!("EXPLAIN {name} (500 ids):\n    {}", plan.join("\n    "));
    }
    tx.rollback().await.unwrap();
    app.close().await.ok();
}

/// The synced rows inserted again under another instance, straight into the same table of the
/// same database: one connection, a transaction per 500 rows, one INSERT per row.
async fn direct_insert(platform: &TestPlatform, tenant: &Tenant, instance: &str) -> (Duration, usize) {
    sqlx::any::install_default_drivers();
    let mut connection = AnyConnection::connect(&platform.owner_database_url(DatabaseGroup::Analysis)).await.unwrap();
    let rows: Vec<(String, String, String, String, String)> = sqlx::query(
        "SELECT table_name, kind, sys_id, updated_on, fields FROM grc_records \
         WHERE organization_id = $1 AND instance_id = $2",
    )
    .bind(tenant.id())
    .bind(instance)
    .fetch_all(&mut connection)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
    .collect();
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
            .bind(table)
            .bind(id)
            .bind(kind)
            .bind(updated)
            .bind(fields)
            .bind(complianceiq_kit::crypto::sha256_hex(fields.as_bytes()))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let elapsed = started.elapsed();
    connection.close().await.ok();
    (elapsed, rows.len())
}

/// One measurement in a process of its own, so each peak resident set is that run's alone.
fn measure_in_child(backend: Backend, controls: usize, baseline: bool) -> Measured {
    let store = if backend == Backend::Embedded { "sqlite" } else { "postgres" };
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env("CIQ_BENCH_ONE", format!("{store}:{controls}:{baseline}"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the measuring process runs");
    if !output.status.success() {
        // Its logs (an internal error's detail) went to its stdout.
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        panic!("measuring {store} at {controls} controls failed");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find_map(|line| line.strip_prefix("MEASURED ")).expect("a measurement");
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    let seconds = |key: &str| Duration::from_secs_f64(value[key].as_f64().unwrap());
    Measured {
        backend: if backend == Backend::Embedded { "SQLite" } else { "PostgreSQL" },
        records: value["records"].as_u64().unwrap(),
        sync: seconds("sync"),
        platform_cpu: value["platform_cpu"].as_f64().unwrap(),
        postgres_cpu: value["postgres_cpu"].as_f64(),
        simulator_cpu: value["simulator_cpu"].as_f64().unwrap(),
        peak_rss_mb: value["peak_rss_mb"].as_f64().unwrap(),
        changes: value["changes"].as_u64().unwrap(),
        incremental: seconds("incremental"),
        analysis: seconds("analysis"),
        aggregate: seconds("aggregate"),
        direct: value["direct"]
            .as_f64()
            .map(|direct| (Duration::from_secs_f64(direct), value["direct_rows"].as_u64().unwrap() as usize)),
    }
}

fn main() {
    if let Ok(one) = std::env::var("CIQ_BENCH_ONE") {
        let mut parts = one.split(':');
        let backend = if parts.next() == Some("postgres") { Backend::Servers } else { Backend::Embedded };
        let controls: usize = parts.next().and_then(|controls| controls.parse().ok()).expect("controls");
        let baseline = parts.next() == Some("true");
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
        let result = runtime.block_on(measure(backend, controls, baseline));
        let line = serde_json::json!({
            "records": result.records,
            "sync": result.sync.as_secs_f64(),
            "platform_cpu": result.platform_cpu,
            "postgres_cpu": result.postgres_cpu,
            "simulator_cpu": result.simulator_cpu,
            "peak_rss_mb": result.peak_rss_mb,
            "changes": result.changes,
            "incremental": result.incremental.as_secs_f64(),
            "analysis": result.analysis.as_secs_f64(),
            "aggregate": result.aggregate.as_secs_f64(),
            "direct": result.direct.map(|(direct, _)| direct.as_secs_f64()),
            "direct_rows": result.direct.map(|(_, rows)| rows),
        });
        println!("MEASURED {line}");
        return;
    }
    let sizes: Vec<usize> = std::env::var("CIQ_BENCH_CONTROLS")
        .unwrap_or_else(|_| "760,7600".into())
        .split(',')
        .map(|size| size.trim().parse().expect("CIQ_BENCH_CONTROLS: controls, comma-separated"))
        .collect();
    let stores = std::env::var("CIQ_BENCH_STORES").unwrap_or_default();
    let mut backends = Vec::new();
    if stores.is_empty() || stores.contains("sqlite") {
        backends.push(Backend::Embedded);
    }
    if std::env::var("CIQ_TEST_POSTGRES_URL").is_ok() && (stores.is_empty() || stores.contains("postgres")) {
        backends.push(Backend::Servers);
    }
    let mut results = Vec::new();
    for backend in backends {
        for (index, controls) in sizes.iter().enumerate() {
            results.push(measure_in_child(backend, *controls, index == 0));
        }
    }
    println!(
        "| store | records | full sync s | records/s | µs per record | platform CPU s | PostgreSQL CPU s | simulator CPU s | peak RSS MB | incremental: changes, s | analysis ms | aggregate ms | ÷ |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for result in &results {
        let seconds = result.sync.as_secs_f64();
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.0} | {:.1} | {} | {:.1} | {:.0} | {}, {:.2} | {:.0} | {:.0} | {:.2} |",
            result.backend,
            result.records,
            seconds,
            result.records as f64 / seconds,
            seconds * 1e6 / result.records as f64,
            result.platform_cpu,
            result.postgres_cpu.map_or("—".to_string(), |cpu| format!("{cpu:.1}")),
            result.simulator_cpu,
            result.peak_rss_mb,
            result.changes,
            result.incremental.as_secs_f64(),
            result.analysis.as_secs_f64() * 1e3,
            result.aggregate.as_secs_f64() * 1e3,
            result.analysis.as_secs_f64() / result.aggregate.as_secs_f64(),
        );
    }
    println!("\n| store | records | sync records/s | direct insert rows/s | sync ÷ direct |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for result in &results {
        let Some((direct, rows)) = result.direct else { continue };
        let sync_rate = result.records as f64 / result.sync.as_secs_f64();
        let direct_rate = rows as f64 / direct.as_secs_f64();
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} |",
            result.backend,
            result.records,
            sync_rate,
            direct_rate,
            sync_rate / direct_rate
        );
    }
}
