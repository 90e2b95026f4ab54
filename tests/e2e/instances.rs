//! ServiceNow instances against the simulator over HTTP: connect with sealed credentials,
//! check the connection table by table, keep health history, plan limits, every failure
//! named by stage, bad input refused whole, and nothing visible to another organization.

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::*;
use complianceiq_servicenow::sim::{self, SimConfig, Simulator};
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::harness::{TestPlatform, reason, violations};
use crate::people::{Tenant, authorized};
use crate::platform_tests;

platform_tests!(
    an_instance_is_connected_checked_and_its_health_kept,
    connection_failures_are_named_by_stage,
    bad_instances_are_refused_whole_and_nothing_is_written,
    another_organization_sees_no_instance,
);

/// Scheduled checks need a short interval; each backend gets its own run.
mod scheduled_health_checks_run_until_an_instance_is_disabled {
    fn every_second(config: &mut complianceiq_kit::config::PlatformConfig) {
        config.instance.health_interval_seconds = 1;
    }

    crate::configured_platform_tests!(every_second, super::scheduled_checks);
}

async fn scheduled_checks(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 5, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Watched").await;
    let scheduled = Instance { sync_interval_minutes: 5, ..instance_of(&running, "prod") };
    let instance = connect(platform, &tenant, scheduled, false).await.unwrap();
    let mut instances = client(platform).await;
    let health = |instances: &mut InstanceServiceClient<tonic::transport::Channel>| {
        let request = GetInstanceHealthRequest { instance_id: instance.id.clone(), history_size: 100 };
        let (mut instances, request) = (instances.clone(), authorized(request, tenant.token()));
        async move { instances.get_instance_health(request).await.unwrap().into_inner() }
    };
    // Nobody asks: the scheduler checks on its own, again and again.
    let mut waited = 0;
    while health(&mut instances).await.checks.len() < 2 {
        waited += 1;
        assert!(waited < 100, "no scheduled checks within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = health(&mut instances).await;
    assert_eq!(seen.status(), HealthStatus::Healthy);
    // With a sync interval, the first sync runs at once, on the scheduler's behalf.
    let mut runs = Vec::new();
    for _ in 0..200 {
        let request = ListSyncRunsRequest { instance_id: instance.id.clone(), ..Default::default() };
        runs = instances.list_sync_runs(authorized(request, tenant.token())).await.unwrap().into_inner().sync_runs;
        if runs.first().is_some_and(|run| run.state() == SyncState::Succeeded) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0].state(), runs[0].mode(), runs[0].triggered_by.as_str()),
        (SyncState::Succeeded, SyncMode::Full, "schedule")
    );
    assert!((seen.availability_percent - 100.0).abs() < 1e-9);

    // Disabled: no more checks.
    let disable = UpdateInstanceRequest {
        instance_id: instance.id.clone(),
        instance: Some(Instance { state: InstanceState::Disabled as i32, ..Default::default() }),
        update_mask: None,
    };
    instances.update_instance(authorized(disable, tenant.token())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = health(&mut instances).await.checks.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(health(&mut instances).await.checks.len(), settled, "a disabled instance is not checked");
}

/// The users the simulator's GRC records reference: the only users a sync keeps.
pub fn referenced_users(simulator: &Simulator) -> std::collections::BTreeSet<String> {
    let users = simulator.ids(complianceiq_servicenow::tables::USERS.name);
    let mut referenced = std::collections::BTreeSet::new();
    for table in complianceiq_servicenow::tables::ALL {
        let fields: Vec<&str> =
            table.references().filter(|(_, target)| *target == "sys_user").map(|(field, _)| field).collect();
        if fields.is_empty() {
            continue;
        }
        for id in simulator.ids(table.name) {
            let record = simulator.record(table.name, &id).unwrap();
            referenced.extend(
                fields.iter().filter_map(|field| record.get(field)).filter(|user| users.contains(*user)).cloned(),
            );
        }
    }
    referenced
}

/// Records a sync keeps of the simulator: everything but unreferenced users.
pub fn kept_records(simulator: &Simulator) -> i64 {
    let counts = simulator.counts();
    let users = counts.get("sys_user").copied().unwrap_or(0);
    (counts.values().sum::<usize>() - users + referenced_users(simulator).len()) as i64
}

/// A simulator serving on a local port until dropped.
pub struct RunningSimulator {
    pub simulator: Arc<Simulator>,
    pub url: String,
    stop: CancellationToken,
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn simulator(config: SimConfig) -> RunningSimulator {
    let simulator = Arc::new(Simulator::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(sim::serve(simulator.clone(), listener, stop.clone()));
    RunningSimulator { simulator, url, stop }
}

pub fn basic(username: &str, password: &str) -> Option<Credentials> {
    Some(Credentials {
        kind: Some(credentials::Kind::Basic(BasicCredentials { username: username.into(), password: password.into() })),
    })
}

fn instance_of(running: &RunningSimulator, name: &str) -> Instance {
    let config = running.simulator.config();
    Instance {
        name: name.into(),
        url: running.url.clone(),
        auth_type: AuthType::Basic as i32,
        credentials: basic(&config.username, &config.password),
        ..Default::default()
    }
}

pub async fn client(platform: &TestPlatform) -> InstanceServiceClient<tonic::transport::Channel> {
    InstanceServiceClient::new(platform.channel("instance").await)
}

/// Creates an instance, waiting (as a client honouring RetryInfo would) until the
/// organization's plan has reached the instance service.
pub async fn connect(
    platform: &TestPlatform,
    tenant: &Tenant,
    instance: Instance,
    validate: bool,
) -> Result<Instance, tonic::Status> {
    let mut instances = client(platform).await;
    for _ in 0..100 {
        let request = CreateInstanceRequest { instance: Some(instance.clone()), validate_connection: validate };
        match instances.create_instance(authorized(request, tenant.token())).await {
            Err(status) if reason(&status) == "PLAN_NOT_KNOWN_YET" => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => return other.map(tonic::Response::into_inner),
        }
    }
    panic!("the plan never reached the instance service");
}

async fn an_instance_is_connected_checked_and_its_health_kept(platform: &TestPlatform) {
    let running =
        simulator(SimConfig { controls: 30, denied_tables: vec!["sn_grc_issue".into()], ..SimConfig::default() }).await;
    let tenant = platform.tenant("Instance Owner").await;
    let instance = connect(platform, &tenant, instance_of(&running, "prod"), false).await.expect("connected");
    assert!(instance.has_credentials && instance.credentials.is_none());
    assert_eq!((instance.state(), instance.health_status()), (InstanceState::Active, HealthStatus::Unspecified));
    assert_eq!(instance.organization_id, tenant.id());
    // The password is stored sealed, never in clear.
    let clear = platform
        .stored_count(
            DatabaseGroup::Core,
            "SELECT COUNT(*) FROM instances WHERE credentials_sealed LIKE '%complianceiq-sim%'",
        )
        .await;
    assert_eq!(clear, 0);

    let mut instances = client(platform).await;
    let request = || authorized(TestConnectionRequest { instance_id: instance.id.clone() }, tenant.token());
    let report = instances.test_connection(request()).await.unwrap().into_inner();
    assert!(report.reachable && report.authenticated && !report.success, "{report:?}");
    let counts = running.simulator.counts();
    for table in &report.tables {
        if table.table == "sn_grc_issue" {
            assert!(!table.readable && table.error.contains("may not read sn_grc_issue"), "{table:?}");
        } else {
            assert!(table.readable, "{table:?}");
            assert_eq!(table.record_count, counts[table.table.as_str()] as i64, "{}", table.table);
        }
    }
    assert_eq!(report.tables.len(), complianceiq_servicenow::tables::ALL.len());

    // Without the unreadable table, the instance is healthy.
    let update = UpdateInstanceRequest {
        instance_id: instance.id.clone(),
        instance: Some(Instance {
            tables: vec!["sn_compliance_control".into(), "sn_risk_risk".into(), "sys_user".into()],
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["tables".into()] }),
    };
    let updated = instances.update_instance(authorized(update, tenant.token())).await.unwrap().into_inner();
    assert_eq!(updated.tables, vec!["sn_compliance_control", "sn_risk_risk", "sys_user"], "stored in sync order");
    assert_ne!(updated.etag, instance.etag);
    let report = instances.test_connection(request()).await.unwrap().into_inner();
    assert!(report.success && report.error.is_empty(), "{report:?}");

    let health = instances
        .get_instance_health(authorized(
            GetInstanceHealthRequest { instance_id: instance.id.clone(), history_size: 0 },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), HealthStatus::Healthy);
    let statuses: Vec<HealthStatus> = health.checks.iter().map(|check| check.status()).collect();
    assert_eq!(statuses, vec![HealthStatus::Healthy, HealthStatus::Degraded], "newest first");
    assert!((health.availability_percent - 50.0).abs() < 1e-9);

    // The free plan allows one instance; disconnecting gives the place back.
    let second = connect(platform, &tenant, instance_of(&running, "staging"), false).await.unwrap_err();
    assert_eq!((second.code(), reason(&second).as_str()), (Code::FailedPrecondition, "PLAN_LIMIT_REACHED"));
    let stale = DeleteInstanceRequest { instance_id: instance.id.clone(), etag: instance.etag.clone() };
    let refused = instances.delete_instance(authorized(stale, tenant.token())).await.unwrap_err();
    assert_eq!(refused.code(), Code::Aborted, "an old etag does not delete");
    let delete = DeleteInstanceRequest { instance_id: instance.id.clone(), etag: updated.etag.clone() };
    instances.delete_instance(authorized(delete, tenant.token())).await.unwrap();
    connect(platform, &tenant, instance_of(&running, "staging"), false).await.expect("room again");
    let listed = instances
        .list_instances(authorized(ListInstancesRequest::default(), tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.instances.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), vec!["staging"]);
    assert_eq!(listed.total_size, 1);
}

async fn connection_failures_are_named_by_stage(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 10, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Failing Connections").await;

    // Checked before saving: wrong credentials fail the create, and nothing is stored.
    let wrong = Instance { credentials: basic("complianceiq", "wrong"), ..instance_of(&running, "prod") };
    let refused = connect(platform, &tenant, wrong.clone(), true).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "CONNECTION_FAILED"));
    assert!(refused.message().contains("refused the credentials"), "{}", refused.message());
    assert_eq!(platform.stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM instances").await, 0);

    let instance = connect(platform, &tenant, wrong, false).await.expect("saved without the check");
    let mut instances = client(platform).await;
    let check = |instances: &mut InstanceServiceClient<_>| {
        let request = authorized(TestConnectionRequest { instance_id: instance.id.clone() }, tenant.token());
        let mut instances = instances.clone();
        async move { instances.test_connection(request).await.unwrap().into_inner() }
    };
    let report = check(&mut instances).await;
    assert!(report.reachable && !report.authenticated && !report.success, "{report:?}");
    assert!(report.error.starts_with("ServiceNow refused the credentials"), "{}", report.error);
    assert!(report.tables.is_empty(), "no table report past a refusal");

    // Nothing listens there.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let move_to = |url: String| UpdateInstanceRequest {
        instance_id: instance.id.clone(),
        instance: Some(Instance { url, credentials: basic("complianceiq", "wrong"), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["url".into(), "credentials".into()] }),
    };
    instances.update_instance(authorized(move_to(nowhere), tenant.token())).await.unwrap();
    let report = check(&mut instances).await;
    assert!(!report.reachable && !report.authenticated, "{report:?}");
    assert!(report.error.starts_with("cannot reach the instance"), "{}", report.error);

    // A certificate the platform does not trust.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified = rcgen_self_signed();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let stop = CancellationToken::new();
    tokio::spawn(sim::serve_tls(running.simulator.clone(), listener, Some(certified), stop.clone()));
    instances.update_instance(authorized(move_to(url), tenant.token())).await.unwrap();
    let report = check(&mut instances).await;
    assert!(!report.reachable, "{report:?}");
    assert!(report.error.starts_with("TLS handshake with the instance failed"), "{}", report.error);
    stop.cancel();

    let health = instances
        .get_instance_health(authorized(
            GetInstanceHealthRequest { instance_id: instance.id.clone(), history_size: 10 },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.checks.len(), 3);
    assert!(health.checks.iter().all(|check| check.status() == HealthStatus::Unhealthy && !check.error.is_empty()));
    assert_eq!(health.status(), HealthStatus::Unhealthy);
    // No credential appears in any answer.
    assert!(!format!("{health:?}{report:?}").contains("wrong"));
}

/// A TLS acceptor with a self-signed certificate for localhost (made like the mesh's dev CA).
fn rcgen_self_signed() -> tokio_rustls::TlsAcceptor {
    let dir = std::env::temp_dir().join(format!("ciq-snow-tls-{}", uuid::Uuid::new_v4().simple()));
    let scope = complianceiq_kit::mesh::TrustScope { trust_domain: "example.test".into(), namespace: "x".into() };
    let authority = complianceiq_kit::mesh::DevAuthority::open_or_create(&dir).unwrap();
    authority.issue("localhost", &scope.identity("localhost")).unwrap();
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<rustls::pki_types::CertificateDer<'static>> =
        rustls::pki_types::CertificateDer::pem_file_iter(dir.join("localhost/tls.crt"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("localhost/tls.key")).unwrap();
    let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let _ = std::fs::remove_dir_all(dir);
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn bad_instances_are_refused_whole_and_nothing_is_written(platform: &TestPlatform) {
    let tenant = platform.tenant("Careless").await;
    let bad = Instance {
        name: "".into(),
        url: "http://acme.service-now.com".into(),
        auth_type: AuthType::Oauth2Password as i32,
        credentials: basic("u", "p"),
        sync_interval_minutes: 1,
        tables: vec!["incident".into()],
        ..Default::default()
    };
    let status = connect(platform, &tenant, bad, false).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(
        fields,
        vec![
            "instance.name",
            "instance.url",
            "instance.credentials",
            "instance.sync_interval_minutes",
            "instance.tables"
        ]
    );
    let mut instances = client(platform).await;
    let missing = instances
        .get_instance(authorized(GetInstanceRequest { instance_id: "not-an-id".into() }, tenant.token()))
        .await
        .unwrap_err();
    assert_eq!((missing.code(), violations(&missing)[0].0.as_str()), (Code::InvalidArgument, "instance_id"));
    let page = instances
        .list_instances(authorized(ListInstancesRequest { page_size: -1, ..Default::default() }, tenant.token()))
        .await
        .unwrap_err();
    assert_eq!(page.code(), Code::InvalidArgument);
    assert_eq!(platform.stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM instances").await, 0);
}

async fn another_organization_sees_no_instance(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 5, ..SimConfig::default() }).await;
    let owner = platform.tenant("Owner Org").await;
    let other = platform.tenant("Other Org").await;
    let instance = connect(platform, &owner, instance_of(&running, "prod"), false).await.unwrap();
    let mut instances = client(platform).await;
    let id = instance.id.clone();
    let token = other.token();
    let not_found = |status: tonic::Status| assert_eq!(status.code(), Code::NotFound, "{status:?}");
    not_found(
        instances.get_instance(authorized(GetInstanceRequest { instance_id: id.clone() }, token)).await.unwrap_err(),
    );
    not_found(
        instances
            .test_connection(authorized(TestConnectionRequest { instance_id: id.clone() }, token))
            .await
            .unwrap_err(),
    );
    not_found(
        instances
            .get_instance_health(authorized(
                GetInstanceHealthRequest { instance_id: id.clone(), history_size: 0 },
                token,
            ))
            .await
            .unwrap_err(),
    );
    let rename = UpdateInstanceRequest {
        instance_id: id.clone(),
        instance: Some(Instance { name: "mine".into(), ..Default::default() }),
        update_mask: None,
    };
    not_found(instances.update_instance(authorized(rename, token)).await.unwrap_err());
    not_found(
        instances
            .delete_instance(authorized(DeleteInstanceRequest { instance_id: id.clone(), etag: String::new() }, token))
            .await
            .unwrap_err(),
    );
    let listed =
        instances.list_instances(authorized(ListInstancesRequest::default(), token)).await.unwrap().into_inner();
    assert!(listed.instances.is_empty() && listed.total_size == 0);
    // The owner's instance is untouched.
    let mine = instances
        .get_instance(authorized(GetInstanceRequest { instance_id: id }, owner.token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine, instance);
}
