//! Boots the whole platform in-process on free ports, on embedded defaults or on real
//! PostgreSQL, Redis and NATS (each test gets its own database, key prefix and stream),
//! and tears it down afterwards, even when the test fails.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use complianceiq_kit::bus::NatsBus;
use complianceiq_kit::config::{DatabaseGroup, LogFormat, PlatformConfig, TelemetryConfig};
use complianceiq_kit::runtime::{self, RunningPlatform};
use complianceiq_kit::telemetry;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use futures::FutureExt;
use sqlx::{AnyConnection, Connection, Row};
use tonic::transport::Channel;

/// Which infrastructure a platform runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite files, in-process bus and cache.
    Embedded,
    /// PostgreSQL, Redis, NATS JetStream from `CIQ_TEST_*`.
    Servers,
}

/// The role services connect as in `servers` tests; created by the migrations.
pub const APPLICATION_ROLE: &str = "complianceiq_app";

struct ServerUrls {
    postgres: String,
    redis: String,
    nats: String,
}

impl ServerUrls {
    fn from_env() -> Self {
        let read = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let (postgres, redis, nats) =
            (read("CIQ_TEST_POSTGRES_URL"), read("CIQ_TEST_REDIS_URL"), read("CIQ_TEST_NATS_URL"));
        let missing: Vec<&str> = [
            ("CIQ_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres)", &postgres),
            ("CIQ_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379)", &redis),
            ("CIQ_TEST_NATS_URL (e.g. nats://127.0.0.1:4222)", &nats),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name)
        .collect();
        assert!(missing.is_empty(), "this test needs real servers; set {}", missing.join(", "));
        Self { postgres: postgres.unwrap(), redis: redis.unwrap(), nats: nats.unwrap() }
    }
}

pub struct PostgresDatabase {
    maintenance_url: String,
    name: String,
}

/// A running platform for one test.
pub struct TestPlatform {
    pub config: PlatformConfig,
    platform: Option<RunningPlatform>,
    postgres: Option<PostgresDatabase>,
}

pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

impl TestPlatform {
    /// Boots every module with migrations applied.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Boots every module after `customize` adjusted the configuration.
    pub async fn start_with(backend: Backend, customize: impl FnOnce(&mut PlatformConfig)) -> Self {
        let filter = std::env::var("CIQ_TEST_LOG").unwrap_or_else(|_| "warn".into());
        let telemetry =
            TelemetryConfig { filter, format: Some(LogFormat::Pretty), otlp_endpoint: None, trace_sample_ratio: 1.0 };
        // The process keeps the first subscriber; its pipeline lives as long as the process.
        std::mem::forget(telemetry::init(&telemetry, LogFormat::Pretty, "complianceiq-e2e"));

        let suffix = unique_suffix();
        let data_dir = std::env::temp_dir().join(format!("ciq-e2e-{suffix}"));
        let mut config = PlatformConfig::embedded(&data_dir);
        config.listen.ephemeral_ports = true;
        let postgres = match backend {
            Backend::Servers => Some(provision_servers(&mut config, &suffix).await),
            Backend::Embedded => None,
        };
        customize(&mut config);
        let options = complianceiq::start_options(vec!["all".into()], true);
        let platform = runtime::start(config.clone(), complianceiq::modules(), options)
            .await
            .unwrap_or_else(|error| panic!("the platform did not start on {backend:?}: {error}"));
        Self { config, platform: Some(platform), postgres }
    }

    /// The running modules.
    pub fn platform(&self) -> &RunningPlatform {
        self.platform.as_ref().expect("running")
    }

    /// Where a module listens.
    pub fn address(&self, module: &str) -> SocketAddr {
        *self.platform().addresses.get(module).unwrap_or_else(|| panic!("no module {module}"))
    }

    /// A channel to a module, over the mesh as the gateway (which is how clients' calls
    /// reach modules); the gateway itself is the public edge, without mutual TLS.
    pub async fn channel(&self, module: &str) -> Channel {
        self.channel_as("gateway", module)
    }

    /// A channel to a module over the mesh, presenting `caller`'s identity.
    pub fn channel_as(&self, caller: &str, module: &str) -> Channel {
        let address = format!("http://{}", self.address(module));
        // Behind a sidecar, the sidecar names the caller; tests have none, so their calls to
        // the public API go through the edge (whose calls stay in the process).
        let sidecar = self.config.mesh.mode == complianceiq_kit::config::MeshMode::Sidecar;
        if module == "gateway" || sidecar {
            let address = format!("http://{}", self.address("gateway"));
            return Channel::from_shared(address).expect("an address").connect_lazy();
        }
        self.platform().mesh.connect(caller, module, &address).unwrap_or_else(|error| panic!("{error}"))
    }

    /// A client of the organization service.
    pub async fn organizations(&self) -> OrganizationServiceClient<Channel> {
        OrganizationServiceClient::new(self.channel("organization").await)
    }

    /// The URL services use for a database group.
    pub fn app_database_url(&self, group: DatabaseGroup) -> String {
        self.config.database.url_for(group, &self.config.data_dir)
    }

    /// The same database as its owner (PostgreSQL superuser in tests), which row-level
    /// security does not filter: what is really stored.
    pub fn owner_database_url(&self, group: DatabaseGroup) -> String {
        let url = self.app_database_url(group);
        match &self.config.database.admin_user {
            Some(admin) if url.starts_with("postgres") => {
                let mut parsed = url::Url::parse(&url).unwrap();
                parsed.set_username(admin).unwrap();
                parsed.set_password(self.config.database.admin_password.as_deref()).unwrap();
                parsed.to_string()
            }
            _ => url,
        }
    }

    /// Runs a `SELECT COUNT(*) ...` as the owner: rows stored, whatever the tenant.
    pub async fn stored_count(&self, group: DatabaseGroup, sql: &str) -> i64 {
        sqlx::any::install_default_drivers();
        let mut connection = AnyConnection::connect(&self.owner_database_url(group)).await.expect("owner connection");
        let count: i64 =
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut connection).await.expect("count").get(0);
        connection.close().await.ok();
        count
    }

    /// Waits (10 s at most) until `stored_count` reads `expected`: for rows a consumer commits
    /// just after the side effect a test observes.
    pub async fn stored_count_reaches(&self, group: DatabaseGroup, sql: &str, expected: i64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let count = self.stored_count(group, sql).await;
            if count == expected {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{sql} counted {count}, expected {expected}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Runs a query of text columns as the owner: rows stored, whatever the tenant.
    pub async fn stored_rows(&self, group: DatabaseGroup, sql: &'static str) -> Vec<Vec<String>> {
        sqlx::any::install_default_drivers();
        let mut connection = AnyConnection::connect(&self.owner_database_url(group)).await.expect("owner connection");
        let rows = sqlx::query(sql).fetch_all(&mut connection).await.expect("query");
        connection.close().await.ok();
        rows.iter().map(|row| (0..row.len()).map(|index| row.get::<String, _>(index)).collect()).collect()
    }

    /// Runs a statement as the owner, past the services: what an attacker with database
    /// access, or a bug, could do.
    pub async fn execute_as_owner(&self, group: DatabaseGroup, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut connection = AnyConnection::connect(&self.owner_database_url(group)).await.expect("owner connection");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut connection).await.expect("statement");
        connection.close().await.ok();
    }

    /// Stops the modules and starts them again on the same databases, cache and bus, as a
    /// redeployed process would.
    pub async fn restart(&mut self) {
        if let Some(platform) = self.platform.take() {
            platform.shutdown().await;
        }
        let options = complianceiq::start_options(vec!["all".into()], true);
        let platform = runtime::start(self.config.clone(), complianceiq::modules(), options)
            .await
            .unwrap_or_else(|error| panic!("the platform did not start again: {error}"));
        self.platform = Some(platform);
    }

    /// Stops the platform and removes what the test created.
    pub async fn stop(mut self) {
        if let Some(platform) = self.platform.take() {
            platform.shutdown().await;
        }
        release(&self.config, self.postgres.take()).await;
    }
}

/// Points `config` at a fresh PostgreSQL database (as the application role, with the admin
/// user for migrations), Redis under a fresh key prefix and a fresh NATS stream.
pub async fn provision_servers(config: &mut PlatformConfig, suffix: &str) -> PostgresDatabase {
    let urls = ServerUrls::from_env();
    let database = create_postgres_database(&urls.postgres, suffix).await;
    let admin = url::Url::parse(&urls.postgres).expect("CIQ_TEST_POSTGRES_URL is a URL");
    let mut app = admin.clone();
    app.set_path(&format!("/{}", database.name));
    app.set_username(APPLICATION_ROLE).expect("a user");
    app.set_password(None).expect("no password");
    config.database.url = Some(app.to_string());
    config.database.admin_user = Some(admin.username().to_string());
    config.database.admin_password = admin.password().map(str::to_string);
    config.cache.redis_url = Some(urls.redis);
    config.cache.key_prefix = format!("ciq-e2e-{suffix}:");
    config.events.nats_url = Some(urls.nats);
    config.events.stream = format!("CIQ_E2E_{}", suffix.to_uppercase());
    config.events.subject_prefix = format!("ciqe2e{suffix}");
    database
}

/// Drops what [`provision_servers`] made, and the data directory.
pub async fn release(config: &PlatformConfig, postgres: Option<PostgresDatabase>) {
    if let Some(database) = postgres {
        drop_postgres_database(&database).await;
    }
    if let Some(url) = &config.events.nats_url
        && let Ok(bus) = NatsBus::connect(url, &config.events).await
    {
        let _ = bus.delete_stream().await;
    }
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

async fn create_postgres_database(maintenance_url: &str, suffix: &str) -> PostgresDatabase {
    sqlx::any::install_default_drivers();
    let name = format!("ciq_e2e_{suffix}");
    let mut connection = AnyConnection::connect(maintenance_url)
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL at CIQ_TEST_POSTGRES_URL is not reachable: {error}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("creating test database {name}: {error}"));
    connection.close().await.ok();
    PostgresDatabase { maintenance_url: maintenance_url.to_string(), name }
}

async fn drop_postgres_database(database: &PostgresDatabase) {
    if let Ok(mut connection) = AnyConnection::connect(&database.maintenance_url).await {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", database.name);
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut connection).await;
        connection.close().await.ok();
    }
}

/// An event as the outbox relay would publish it, claiming to come from `publisher`.
pub fn bus_message(
    organization: &str,
    payload: complianceiq_proto::complianceiq::events::v1::event::Payload,
    publisher: &str,
) -> complianceiq_kit::bus::BusMessage {
    use prost::Message;
    let event = complianceiq_proto::complianceiq::events::v1::Event {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: complianceiq_proto::EventPayloadExt::event_type(&payload).into(),
        organization_id: organization.into(),
        source: publisher.into(),
        payload: Some(payload),
        ..Default::default()
    };
    complianceiq_kit::bus::BusMessage {
        event_id: event.id.clone(),
        event_type: event.r#type.clone(),
        source: publisher.into(),
        payload: event.encode_to_vec().into(),
    }
}

/// A test body: borrows the platform for its duration.
pub type TestBody = for<'a> fn(&'a TestPlatform) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Boots a platform, runs `body`, tears down, then re-raises the body's panic if any.
pub async fn run(backend: Backend, body: TestBody) {
    let platform = TestPlatform::start(backend).await;
    let outcome = AssertUnwindSafe(body(&platform)).catch_unwind().await;
    platform.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Like [`run`], with the configuration adjusted first.
pub async fn run_with(backend: Backend, customize: impl FnOnce(&mut PlatformConfig), body: TestBody) {
    let platform = TestPlatform::start_with(backend, customize).await;
    let outcome = AssertUnwindSafe(body(&platform)).catch_unwind().await;
    platform.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares platform tests: for each `async fn name(platform: &TestPlatform)` in scope,
/// a module `name` with tests `embedded` and `servers`.
#[macro_export]
macro_rules! platform_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                $crate::harness::run($crate::harness::Backend::Embedded, |platform| Box::pin(super::$name(platform))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn servers() {
                $crate::harness::run($crate::harness::Backend::Servers, |platform| Box::pin(super::$name(platform))).await;
            }
        }
    )*};
}

/// Inside a test module: tests `embedded` and `servers` that run `body` on a platform
/// started after `customize` adjusted its configuration.
#[macro_export]
macro_rules! configured_platform_tests {
    ($customize:path, $body:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn embedded() {
            $crate::harness::run_with($crate::harness::Backend::Embedded, $customize, |platform| {
                Box::pin($body(platform))
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn servers() {
            $crate::harness::run_with($crate::harness::Backend::Servers, $customize, |platform| {
                Box::pin($body(platform))
            })
            .await;
        }
    };
}

/// Declares tests that need PostgreSQL, Redis and NATS only: `name::servers`.
#[macro_export]
macro_rules! server_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn servers() {
                $crate::harness::run($crate::harness::Backend::Servers, |platform| Box::pin(super::$name(platform))).await;
            }
        }
    )*};
}

/// The gRPC code and the `BadRequest` field violations `(field, reason)` of a failed call.
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    complianceiq_kit::error::detail::<complianceiq_proto::google::rpc::BadRequest>(status, "google.rpc.BadRequest")
        .map(|request| request.field_violations.into_iter().map(|v| (v.field, v.reason)).collect())
        .unwrap_or_default()
}

/// Sends and receives raw message bytes, so any RPC can be called without its types.
#[derive(Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buffer: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buffer, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, buffer: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = bytes::Buf::chunk(buffer).to_vec();
        bytes::Buf::advance(buffer, bytes.len());
        Ok(Some(bytes))
    }
}

/// Calls `rpc` (`package.Service/Method`) with an empty message, with or without a token.
pub async fn call_raw<C>(channel: C, rpc: &str, access_token: Option<&str>) -> Result<Vec<u8>, tonic::Status>
where
    C: tonic::client::GrpcService<tonic::body::Body>,
    C::Error: Into<tonic::codegen::StdError>,
    C::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <C::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    call_raw_message(channel, rpc, Vec::new(), access_token).await
}

/// Calls `rpc` with an encoded message.
pub async fn call_raw_message<C>(
    channel: C,
    rpc: &str,
    message: Vec<u8>,
    access_token: Option<&str>,
) -> Result<Vec<u8>, tonic::Status>
where
    C: tonic::client::GrpcService<tonic::body::Body>,
    C::Error: Into<tonic::codegen::StdError>,
    C::ResponseBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    <C::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| tonic::Status::unavailable(error.into().to_string()))?;
    let path: http::uri::PathAndQuery = format!("/{rpc}").parse().expect("an RPC path");
    let request = match access_token {
        Some(token) => crate::people::authorized(message, token),
        None => tonic::Request::new(message),
    };
    grpc.unary(request, path, RawCodec).await.map(tonic::Response::into_inner)
}

/// The `google.rpc.ErrorInfo` reason of a failed call.
pub fn reason(status: &tonic::Status) -> String {
    complianceiq_kit::error::detail::<complianceiq_proto::google::rpc::ErrorInfo>(status, "google.rpc.ErrorInfo")
        .map(|info| info.reason)
        .unwrap_or_default()
}
