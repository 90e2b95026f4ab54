//! Distributed mode for real: the binary as separate processes (the gateway and every
//! service on its own ports, over mutual TLS) on PostgreSQL, Redis and NATS JetStream. A flow
//! crosses gateway → organization → user; one trace of it reaches a test OTLP receiver from
//! all three; with the user process killed, what needs it fails fast with UNAVAILABLE and the
//! rest works; after a restart the flow passes and events written meanwhile are delivered.
//!
//! The binary is `CIQ_TEST_BINARY`, or `complianceiq` beside this test's target directory
//! (`make test` builds it first).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use complianceiq_kit::config::PlatformConfig;
use complianceiq_kit::mesh::{TrustScope, ensure_dev_certificates};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::gateway::rest_at;
use crate::harness::{PostgresDatabase, provision_servers, release, unique_suffix};
use crate::people::{PASSWORD, token_from_mailbox};

mod separate_processes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        super::separate_processes().await;
    }
}

/// Spans a process exported, with the process's `service.name`.
#[derive(Clone, Debug)]
struct ReceivedSpan {
    service: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    name: String,
}

/// An OTLP/gRPC trace receiver keeping every span it is sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| match attribute.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                kept.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                    name: span.name,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    async fn start() -> (Self, SocketAddr) {
        let receiver = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(receiver.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (receiver, address)
    }

    fn of_trace(&self, trace_id: &[u8]) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().iter().filter(|span| span.trace_id == trace_id).cloned().collect()
    }
}

pub(crate) fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CIQ_TEST_BINARY") {
        return PathBuf::from(path);
    }
    // target/debug/deps/e2e-<hash> → target/debug/complianceiq
    let beside = std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.join("complianceiq")))
        .filter(|path| path.exists());
    beside.unwrap_or_else(|| {
        panic!("the complianceiq binary is needed: `cargo build --bin complianceiq` (make test does) or set CIQ_TEST_BINARY")
    })
}

/// Ports the test holds for its lifetime: `offset` moves every port it asked for into a
/// slot of its own, below Linux's ephemeral range (32768 and up) so ports the OS hands to
/// other tests cannot take them. Slots are a stride wider than the ports' spread, so two
/// slots never share a port; a lock file per slot (released by the OS even if the test
/// dies) keeps two test processes out of the same slot.
pub(crate) struct PortLease {
    pub(crate) offset: u16,
    _slot: std::fs::File,
}

pub(crate) fn lease_ports(ports: &[u16]) -> PortLease {
    const EPHEMERAL: u32 = 32768;
    const FIRST_OFFSET: u32 = 1000;
    let lowest = u32::from(ports.iter().copied().min().expect("ports to lease"));
    let highest = u32::from(ports.iter().copied().max().expect("ports to lease"));
    let stride = highest - lowest + 1;
    let slots = (EPHEMERAL - FIRST_OFFSET - highest) / stride;
    assert!(slots > 0, "ports {lowest}..={highest} leave no room below the ephemeral range");
    for attempt in 0..slots {
        let slot = (std::process::id() + attempt) % slots;
        let offset = (FIRST_OFFSET + slot * stride) as u16;
        let lock = std::env::temp_dir().join(format!("complianceiq-test-ports-{stride}-{slot}.lock"));
        let Ok(file) = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        let free = ports.iter().all(|port| TcpListener::bind(("127.0.0.1", port + offset)).is_ok());
        if free {
            return PortLease { offset, _slot: file };
        }
    }
    panic!("no free slot of ports {lowest}..={highest} for the test");
}

struct Platform {
    binary: PathBuf,
    config: PlatformConfig,
    env: BTreeMap<String, String>,
    ports: BTreeMap<&'static str, (u16, u16)>,
    processes: BTreeMap<&'static str, Child>,
    logs: PathBuf,
}

impl Platform {
    fn gateway(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports["gateway"].0)
    }

    fn start(&mut self, module: &'static str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{module}.log")))
            .unwrap();
        let (_, ops) = self.ports[module];
        let child = Command::new(&self.binary)
            .args(["serve", "--target", module])
            .envs(&self.env)
            .env("CIQ_OPS_PORT", (ops - self.offset()).to_string())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.binary.display()));
        self.processes.insert(module, child);
    }

    fn offset(&self) -> u16 {
        self.env["CIQ_PORT_OFFSET"].parse().unwrap()
    }

    /// Waits until `module` answers SERVING on its operations port.
    async fn wait_ready(&mut self, module: &'static str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let address = format!("http://127.0.0.1:{}", self.ports[module].1);
        loop {
            if let Some(Ok(Some(status))) = self.processes.get_mut(module).map(Child::try_wait) {
                panic!("{module} exited with {status} during start-up:\n{}", self.log_tail(module));
            }
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(address.clone()).unwrap().connect().await {
                let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
                if answer.is_ok_and(|answer| answer.into_inner().status() == ServingStatus::Serving) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{module} not ready within 90 s:\n{}", self.log_tail(module));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn kill(&mut self, module: &'static str) {
        let mut child = self.processes.remove(module).expect("running");
        child.kill().await.unwrap();
    }

    fn log(&self, module: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{module}.log"))).unwrap_or_default()
    }

    fn log_tail(&self, module: &str) -> String {
        let text = self.log(module);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The last warnings and errors `module` logged.
    fn errors(&self, module: &str) -> String {
        let text = self.log(module);
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(r#""level":"ERROR""#) || line.contains(r#""level":"WARN""#))
            .collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    async fn stop(mut self, postgres: PostgresDatabase) {
        for (_, mut child) in std::mem::take(&mut self.processes) {
            let _ = child.kill().await;
        }
        release(&self.config, Some(postgres)).await;
    }
}

/// Runs the binary's `migrate` as the admin user, as a deployment's migration job would.
async fn migrate(binary: &Path, env: &BTreeMap<String, String>) {
    let output = Command::new(binary).args(["migrate", "--target", "all"]).envs(env).output().await.unwrap();
    assert!(output.status.success(), "migrate failed:\n{}", String::from_utf8_lossy(&output.stderr));
}

async fn call(
    platform: &Platform,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, _, body) = rest_at(&platform.gateway(), method, path, token, body).await;
    (status, body)
}

/// Registers, verifies and logs in `email` through the gateway; the access and refresh tokens.
async fn person(platform: &Platform, email: &str) -> (String, String) {
    let registration = json!({"email": email, "password": PASSWORD, "fullName": "Distributed Person"});
    let (status, body) = call(platform, Method::POST, "/api/v1/auth/register", None, Some(registration)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = token_from_mailbox(&platform.config.data_dir.join("mailbox"), email, "Verify your email").await;
    let (status, body) =
        call(platform, Method::POST, "/api/v1/auth/verify-email", None, Some(json!({"token": token}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        call(platform, Method::POST, "/api/v1/auth/login", None, Some(json!({"email": email, "password": PASSWORD})))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens = &body["tokens"];
    (tokens["accessToken"].as_str().unwrap().into(), tokens["refreshToken"].as_str().unwrap().into())
}

/// Creates an organization as the person; its id.
async fn create_organization(platform: &Platform, person: &(String, String), name: &str) -> String {
    let (status, created) =
        call(platform, Method::POST, "/api/v1/organizations", Some(&person.0), Some(json!({"displayName": name})))
            .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created["id"].as_str().unwrap().to_string()
}

/// An access token of the person scoped to `organization`, once their membership has reached
/// the auth service (by events, through the user service). The single-use refresh token is
/// replaced by the new one.
async fn switch(platform: &Platform, person: &mut (String, String), organization: &str) -> String {
    for _ in 0..600 {
        let refresh = json!({"refreshToken": person.1, "organizationId": organization});
        let (status, body) = call(platform, Method::POST, "/api/v1/auth/refresh", None, Some(refresh)).await;
        match status {
            StatusCode::OK => {
                person.1 = body["refreshToken"].as_str().unwrap().into();
                return body["accessToken"].as_str().unwrap().into();
            }
            // Not a member yet: the refresh token was not used up.
            StatusCode::FORBIDDEN => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => panic!("switching to {organization}: {status} {body}"),
        }
    }
    panic!("never became a member of {organization} within 30 s");
}

/// The organization's roles, once the user service has seeded them (by event).
async fn roles(platform: &Platform, token: &str, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = call(platform, Method::GET, "/api/v1/roles", Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let roles = body["roles"].as_array().cloned().unwrap_or_default();
        if !roles.is_empty() {
            return roles;
        }
        assert!(Instant::now() < deadline, "no roles seeded within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn invite(
    platform: &Platform,
    org: &str,
    token: &str,
    email: &str,
    role: &str,
    traceparent: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1/organizations/{org}/members", platform.gateway()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(json!({"email": email, "roleIds": [role]}).to_string());
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn separate_processes() {
    let binary = binary();
    let (receiver, otlp) = Receiver::start().await;
    let suffix = unique_suffix();
    let data_dir = std::env::temp_dir().join(format!("ciq-distributed-{suffix}"));
    let mut config = PlatformConfig::embedded(&data_dir);
    let postgres = provision_servers(&mut config, &suffix).await;

    let modules = complianceiq::modules();
    let names: Vec<&'static str> = modules.iter().map(|module| module.name.0).collect();
    let design_ports: Vec<u16> = modules.iter().map(|module| module.port).collect();
    const OPS_BASE: u16 = 9100;
    let ops_ports = (1..=design_ports.len() as u16).map(|index| OPS_BASE + index);
    let lease = lease_ports(&design_ports.iter().copied().chain(ops_ports).collect::<Vec<_>>());
    let offset = lease.offset;
    let ports: BTreeMap<&'static str, (u16, u16)> = modules
        .iter()
        .enumerate()
        .map(|(index, module)| (module.name.0, (module.port + offset, OPS_BASE + offset + 1 + index as u16)))
        .collect();

    // Certificates and keys as cert-manager and a secret store would mount them.
    let mesh_dir = data_dir.join("mesh");
    let scope = TrustScope { trust_domain: config.mesh.trust_domain.clone(), namespace: config.mesh.namespace.clone() };
    complianceiq_kit::crypto::install_tls_crypto_provider();
    let provider = rustls::crypto::CryptoProvider::get_default().expect("installed").clone();
    ensure_dev_certificates(&mesh_dir, &scope, &names, &provider).unwrap();
    let jwt_dir = data_dir.join("keys").join("jwt");
    complianceiq_auth::KeyRing::generate_into(&jwt_dir).unwrap();

    let mut env: BTreeMap<String, String> = BTreeMap::from([
        ("CIQ_DATA_DIR".into(), data_dir.display().to_string()),
        ("CIQ_DATABASE_URL".into(), config.database.url.clone().unwrap()),
        ("CIQ_DATABASE_ADMIN_USER".into(), config.database.admin_user.clone().unwrap()),
        ("CIQ_DATABASE_MAX_CONNECTIONS".into(), "3".into()),
        ("CIQ_REDIS_URL".into(), config.cache.redis_url.clone().unwrap()),
        ("CIQ_REDIS_KEY_PREFIX".into(), config.cache.key_prefix.clone()),
        ("CIQ_NATS_URL".into(), config.events.nats_url.clone().unwrap()),
        ("CIQ_NATS_STREAM".into(), config.events.stream.clone()),
        ("CIQ_NATS_SUBJECT_PREFIX".into(), config.events.subject_prefix.clone()),
        ("CIQ_MESH_CERT_DIR".into(), mesh_dir.display().to_string()),
        ("CIQ_JWT_KEYS_DIR".into(), jwt_dir.display().to_string()),
        ("CIQ_ENCRYPTION_KEYS".into(), format!("k1:{}", base64_key())),
        ("CIQ_PORT_OFFSET".into(), offset.to_string()),
        ("CIQ_LOG".into(), "info,sqlx=warn".into()),
        // Small pages and a short lease, so a sync can be killed halfway and resumed quickly.
        ("CIQ_SYNC_PAGE_SIZE".into(), "25".into()),
        ("CIQ_SYNC_LEASE_SECONDS".into(), "2".into()),
        // And an analysis killed while it runs is resumed after two seconds.
        ("CIQ_JOB_LEASE_SECONDS".into(), "2".into()),
        // The simulator runs on this machine, which `serve` refuses by default.
        ("CIQ_INSTANCE_ALLOW_PRIVATE_NETWORKS".into(), "true".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), format!("http://{otlp}")),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
    ]);
    if let Some(password) = &config.database.admin_password {
        env.insert("CIQ_DATABASE_ADMIN_PASSWORD".into(), password.clone());
    }
    for (module, (port, _)) in &ports {
        env.insert(format!("CIQ_{}_ENDPOINT", module.to_uppercase()), format!("http://127.0.0.1:{port}"));
    }
    // A module refuses a schema older than its code, naming the remedy.
    let early = Command::new(&binary).args(["serve", "--target", "organization"]).envs(&env).output().await.unwrap();
    let complaint = String::from_utf8_lossy(&early.stderr);
    assert!(!early.status.success(), "serve started on an unmigrated database");
    // (On a server no test has migrated yet, the application role is missing too.)
    assert!(
        complaint.contains("the core database lacks migrations") && complaint.contains("run `complianceiq migrate`"),
        "{complaint}"
    );
    migrate(&binary, &env).await;

    let logs = data_dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut platform = Platform { binary, config, env, ports, processes: BTreeMap::new(), logs };
    for &module in &names {
        platform.start(module);
    }
    for &module in &names {
        platform.wait_ready(module).await;
    }

    let outcome = std::panic::AssertUnwindSafe(exercise(&mut platform, &receiver));
    let outcome = futures::FutureExt::catch_unwind(outcome).await;
    if outcome.is_err() {
        for module in ["gateway", "organization", "user", "auth"] {
            eprintln!("--- {module} log ---\n{}", platform.log_tail(module));
        }
        // An internal error's cause is logged where it happened, by reference.
        for &module in &names {
            eprintln!("--- {module} errors ---\n{}", platform.errors(module));
        }
    }
    platform.stop(postgres).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn base64_key() -> String {
    use base64::Engine;
    let key: [u8; 32] = rand_bytes();
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn rand_bytes() -> [u8; 32] {
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key).unwrap();
    key
}

async fn exercise(platform: &mut Platform, receiver: &Receiver) {
    // The flow, through the gateway: gateway → auth, gateway → organization → user.
    let mut admin = person(platform, "admin@distributed.example.com").await;
    let org_a = create_organization(platform, &admin, "Distributed A").await;
    let token_a = switch(platform, &mut admin, &org_a).await;
    let role = roles(platform, &token_a, Duration::from_secs(30)).await[0]["id"].as_str().unwrap().to_string();

    let trace_id = *uuid::Uuid::new_v4().as_bytes();
    let parent = [7u8; 8];
    let traceparent = format!("00-{}-{}-01", hex(&trace_id), hex(&parent));
    let (status, body) =
        invite(platform, &org_a, &token_a, "first@distributed.example.com", &role, Some(&traceparent)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // One trace, from the three processes, each hop a child of the one before.
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = receiver.of_trace(&trace_id);
        let services: BTreeSet<&str> = spans.iter().map(|span| span.service.as_str()).collect();
        if ["gateway-service", "organization-service", "user-service"].iter().all(|name| services.contains(name)) {
            break spans;
        }
        assert!(Instant::now() < deadline, "the trace did not reach the receiver from all three: {spans:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let of = |service: &str| spans.iter().filter(|span| span.service == service).collect::<Vec<_>>();
    let ids = |service: &str| of(service).iter().map(|span| span.span_id.clone()).collect::<BTreeSet<_>>();
    let gateway_root = of("gateway-service").into_iter().find(|span| span.parent_span_id == parent);
    assert!(gateway_root.is_some(), "the gateway continues the caller's trace: {spans:#?}");
    let organization_server = of("organization-service")
        .into_iter()
        .find(|span| span.name.ends_with("/AddMember") && ids("gateway-service").contains(&span.parent_span_id));
    assert!(organization_server.is_some(), "organization's span is a child of the gateway's: {spans:#?}");
    let user_server = of("user-service")
        .into_iter()
        .find(|span| span.name.ends_with("/ListRoles") && ids("organization-service").contains(&span.parent_span_id));
    assert!(user_server.is_some(), "user's span is a child of organization's: {spans:#?}");

    // The user service goes away.
    platform.kill("user").await;
    let started = Instant::now();
    let (status, body) = invite(platform, &org_a, &token_a, "second@distributed.example.com", &role, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let reasons: Vec<&Value> =
        body["details"].as_array().into_iter().flatten().map(|detail| &detail["reason"]).collect();
    assert!(reasons.contains(&&json!("USER_SERVICE_UNAVAILABLE")), "{body}");
    let (status, body) = call(platform, Method::GET, "/api/v1/roles", Some(&token_a), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["message"], "/complianceiq.user.v1.UserService/ListRoles is unavailable; try again", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "failing took {:?}", started.elapsed());

    // Everything else works: organizations, sign-in, and writes that raise events for the
    // absent user service.
    let (status, body) =
        call(platform, Method::GET, &format!("/api/v1/organizations/{org_a}"), Some(&token_a), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let org_b = create_organization(platform, &admin, "Distributed B").await;
    person(platform, "newcomer@distributed.example.com").await;

    // Back again: the flow passes, and the events written meanwhile arrive.
    platform.start("user");
    platform.wait_ready("user").await;
    let (status, body) = invite(platform, &org_a, &token_a, "second@distributed.example.com", &role, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // organization.created and member.joined of B reach the user service now, and through
    // it the auth service: the admin's token for B carries the roles seeded meanwhile.
    let token_b = switch(platform, &mut admin, &org_b).await;
    let roles_b = roles(platform, &token_b, Duration::from_secs(30)).await;
    let role_b = roles_b[0]["id"].as_str().unwrap();
    let (status, body) = invite(platform, &org_b, &token_b, "third@distributed.example.com", role_b, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The admin's membership of B, raised while user was down, is known to it.
    let (status, body) = call(platform, Method::GET, "/api/v1/users/me", Some(&token_b), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "admin@distributed.example.com", "{body}");

    let instance = killed_sync_resumes(platform, &token_a).await;
    killed_analysis_resumes(platform, &token_a, &instance).await;
    revoked_everywhere_within_a_second(platform).await;
}

/// A logout at the auth process reaches every other process over the bus: each refuses the
/// token within a second, at the edge and when called directly over the mesh.
async fn revoked_everywhere_within_a_second(platform: &Platform) {
    let email = "leaving@distributed.example.com";
    let (token, refresh) = person(platform, email).await;
    let names: Vec<&'static str> = platform.ports.keys().copied().collect();
    let mesh = complianceiq_kit::mesh::Mesh::start(&platform.config, &["gateway"], &names).unwrap();
    // Per module, an RPC its access layer checks tokens for (any will do: the check comes first).
    let direct: Vec<(&str, tonic::transport::Channel, &str)> = names
        .iter()
        .filter(|module| **module != "gateway")
        .map(|module| {
            let package = format!("/complianceiq.{module}.v1.");
            let rule = complianceiq_proto::RPC_ACCESS
                .iter()
                .find(|rule| rule.path.starts_with(&package) && !rule.public && !rule.internal && rule.allow_unscoped)
                .or_else(|| {
                    complianceiq_proto::RPC_ACCESS
                        .iter()
                        .find(|rule| rule.path.starts_with(&package) && !rule.public && !rule.internal)
                })
                .unwrap_or_else(|| panic!("{module} has an authenticated RPC"));
            let address = format!("http://127.0.0.1:{}", platform.ports[module].0);
            (*module, mesh.connect("gateway", module, &address).unwrap(), &rule.path[1..])
        })
        .collect();
    let revoked_at = |status: &tonic::Status| {
        status.code() == tonic::Code::Unauthenticated && crate::harness::reason(status) == "TOKEN_REVOKED"
    };
    for (module, channel, rpc) in &direct {
        let answer = crate::harness::call_raw(channel.clone(), rpc, Some(&token)).await;
        assert!(!matches!(&answer, Err(status) if revoked_at(status)), "{module} refuses a live token: {answer:?}");
    }

    let (status, body) =
        call(platform, Method::POST, "/api/v1/auth/logout", Some(&token), Some(json!({"refreshToken": refresh}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let logged_out = Instant::now();
    let mut pending: BTreeSet<&str> = direct.iter().map(|(module, ..)| *module).chain(["gateway"]).collect();
    while !pending.is_empty() {
        assert!(logged_out.elapsed() < Duration::from_secs(5), "still accepted after 5 s by {pending:?}");
        for (module, channel, rpc) in &direct {
            if pending.contains(module)
                && let Err(status) = crate::harness::call_raw(channel.clone(), rpc, Some(&token)).await
                && revoked_at(&status)
            {
                assert!(logged_out.elapsed() <= Duration::from_secs(1), "{module}: {:?}", logged_out.elapsed());
                pending.remove(module);
            }
        }
        let (status, body) = call(platform, Method::GET, "/api/v1/users/me", Some(&token), None).await;
        if status == StatusCode::UNAUTHORIZED && body["details"].to_string().contains("TOKEN_REVOKED") {
            assert!(logged_out.elapsed() <= Duration::from_secs(1), "gateway: {:?}", logged_out.elapsed());
            pending.remove("gateway");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn number(value: &Value) -> i64 {
    // proto3 JSON writes 64-bit integers as strings, and omits zeros.
    value.as_str().and_then(|text| text.parse().ok()).or_else(|| value.as_i64()).unwrap_or(0)
}

/// A sync through gateway → instance → (ServiceNow, analysis): the instance process is
/// killed (SIGKILL) halfway, restarted, and the run resumes from its checkpoint to the same
/// result as an uninterrupted one. Returns the instance's id.
async fn killed_sync_resumes(platform: &mut Platform, token: &str) -> String {
    use complianceiq_servicenow::sim::SimConfig;
    let running = crate::instances::simulator(SimConfig {
        controls: 120,
        latency: Duration::from_millis(15),
        ..SimConfig::default()
    })
    .await;
    let (url, records) = (running.url.clone(), crate::instances::kept_records(&running.simulator));

    let config = running.simulator.config();
    let instance = json!({
        "name": "prod", "url": url, "authType": "AUTH_TYPE_BASIC",
        "credentials": {"basic": {"username": config.username, "password": config.password}},
    });
    let (status, created) = call(platform, Method::POST, "/api/v1/instances", Some(token), Some(instance)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (status, run) = call(
        platform,
        Method::POST,
        &format!("/api/v1/instances/{id}/sync"),
        Some(token),
        Some(json!({"mode": "SYNC_MODE_FULL"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let run_path = format!("/api/v1/instances/{id}/sync-runs/{}", run["id"].as_str().unwrap());
    let fetched =
        |run: &Value| run["tables"].as_array().into_iter().flatten().map(|t| number(&t["fetched"])).sum::<i64>();
    loop {
        let (_, run) = call(platform, Method::GET, &run_path, Some(token), None).await;
        assert_ne!(run["state"], "SYNC_STATE_SUCCEEDED", "the sync ended before it could be killed");
        if fetched(&run) >= 150 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    platform.kill("instance").await;
    platform.start("instance");
    platform.wait_ready("instance").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let (_, run) = call(platform, Method::GET, &run_path, Some(token), None).await;
        if !matches!(run["state"].as_str(), Some("SYNC_STATE_PENDING" | "SYNC_STATE_RUNNING")) {
            break run;
        }
        assert!(Instant::now() < deadline, "the killed sync did not resume: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["state"], "SYNC_STATE_SUCCEEDED", "{run}");
    // Every record stored once, however many pages were fetched twice across the kill. (The
    // run's own counts may miss a page the killed process stored but had not checkpointed:
    // fetched again, it counts as unchanged.)
    let stored = stored_records(platform).await;
    assert_eq!(stored, records, "{run}");
    let created: i64 = run["tables"].as_array().into_iter().flatten().map(|t| number(&t["created"])).sum();
    assert!(created <= records && fetched(&run) >= records, "{run}");
    id
}

/// An analysis through gateway → analysis: the analysis process is killed (SIGKILL) while the
/// job runs, restarted, and the job resumes once its lease has passed and ends once, with the
/// results of an uninterrupted run.
async fn killed_analysis_resumes(platform: &mut Platform, token: &str, instance: &str) {
    let start = json!({"instanceId": instance});
    // The job is held where it writes its results (a lock on their table that lets reads
    // through), so it is caught running however fast the machine computes it.
    let mut holder = owner_connection(platform).await;
    let mut hold = sqlx::Connection::begin(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE analysis_result_pages IN EXCLUSIVE MODE").execute(&mut *hold).await.unwrap();
    // The analysis store learns of the completed sync from its event, shortly after the run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let (status, job) =
            call(platform, Method::POST, "/api/v1/analysis/controls", Some(token), Some(start.clone())).await;
        if status == StatusCode::OK {
            break job;
        }
        assert!(Instant::now() < deadline, "{status} {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let job_path = format!("/api/v1/analysis/jobs/{}", job["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, job) = call(platform, Method::GET, &job_path, Some(token), None).await;
        match job["state"].as_str() {
            Some("JOB_STATE_RUNNING") => break,
            Some("JOB_STATE_QUEUED") => {}
            _ => panic!("the analysis ended before it could be killed: {job}"),
        }
        assert!(Instant::now() < deadline, "the analysis never started: {job}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    platform.kill("analysis").await;
    hold.rollback().await.unwrap();
    platform.start("analysis");
    platform.wait_ready("analysis").await;
    let resumed = job_ended(platform, token, &job_path).await;
    assert_eq!(resumed["state"], "JOB_STATE_SUCCEEDED", "{resumed}");
    let completed = "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'analysis.completed'";
    assert_eq!(analysis_count(platform, completed).await, 1, "the job ended once");

    // An uninterrupted run of the same analysis on the same data finds the same.
    let (status, again) = call(platform, Method::POST, "/api/v1/analysis/controls", Some(token), Some(start)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let again_path = format!("/api/v1/analysis/jobs/{}", again["id"].as_str().unwrap());
    let again = job_ended(platform, token, &again_path).await;
    let kept = job_results(platform, token, &job_path).await;
    assert!(kept.as_array().is_some_and(|results| !results.is_empty()), "{kept}");
    assert_eq!(kept, job_results(platform, token, &again_path).await);
    assert_eq!(resumed["summary"], again["summary"]);
}

/// The analysis job at `path` once it has ended (within a minute).
async fn job_ended(platform: &Platform, token: &str, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, job) = call(platform, Method::GET, path, Some(token), None).await;
        if !matches!(job["state"].as_str(), Some("JOB_STATE_QUEUED" | "JOB_STATE_RUNNING")) {
            return job;
        }
        assert!(Instant::now() < deadline, "the job did not end: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The results of the analysis job at `path` (one page).
async fn job_results(platform: &Platform, token: &str, path: &str) -> Value {
    let (status, page) = call(platform, Method::GET, &format!("{path}/results?pageSize=1000"), Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["nextPageToken"].as_str().unwrap_or_default(), "", "one page");
    page["results"].clone()
}

/// Records in the analysis store, counted as the schema owner.
async fn stored_records(platform: &Platform) -> i64 {
    analysis_count(platform, "SELECT COUNT(*) FROM grc_records").await
}

/// A count in the analysis store, as the schema owner.
/// A connection to the shared database as its owner (no row-level security).
async fn owner_connection(platform: &Platform) -> sqlx::AnyConnection {
    use sqlx::Connection;
    let mut url = url::Url::parse(platform.config.database.url.as_deref().unwrap()).unwrap();
    url.set_username(platform.config.database.admin_user.as_deref().unwrap()).unwrap();
    url.set_password(platform.config.database.admin_password.as_deref()).unwrap();
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url.as_str()).await.unwrap()
}

async fn analysis_count(platform: &Platform, sql: &'static str) -> i64 {
    use sqlx::{Connection, Row};
    let mut connection = owner_connection(platform).await;
    let count: i64 = sqlx::query(sql).fetch_one(&mut connection).await.unwrap().get(0);
    connection.close().await.ok();
    count
}
