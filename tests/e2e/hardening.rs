//! What a penetration tester tried, as tests: each fails on the code before its fix.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use complianceiq_kit::config::{DatabaseGroup, PlatformConfig};
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::*;
use complianceiq_servicenow::sim::SimConfig;
use prost_types::FieldMask;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::harness::{Backend, TestPlatform, reason, run_with, violations};
use crate::instances::{connect, simulator};
use crate::people::authorized;
use crate::platform_tests;

platform_tests!(credentials_never_follow_a_changed_url, a_hostile_instance_can_neither_flood_nor_be_read_back,);

/// A TCP server that counts connections and answers each with `response` (then closes).
struct Listener {
    url: String,
    connections: Arc<AtomicUsize>,
}

async fn listener(response: &'static [u8], endless_body: bool) -> Listener {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                if stream.write_all(response).await.is_err() {
                    return;
                }
                // An "instance" that never stops sending: the client must stop reading.
                let chunk = vec![b' '; 1 << 20];
                for _ in 0..(if endless_body { 1024 } else { 0 }) {
                    if stream.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Listener { url, connections }
}

fn basic(username: &str, password: &str) -> Option<Credentials> {
    Some(Credentials {
        kind: Some(credentials::Kind::Basic(BasicCredentials { username: username.into(), password: password.into() })),
    })
}

async fn instances(platform: &TestPlatform) -> InstanceServiceClient<tonic::transport::Channel> {
    InstanceServiceClient::new(platform.channel("instance").await)
}

/// Finding 1: a tenant admin changed only the URL, then asked for a connection check, and
/// their own host received the organization's ServiceNow password.
async fn credentials_never_follow_a_changed_url(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 5, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Credential Owner").await;
    let config = running.simulator.config();
    let instance = Instance {
        name: "prod".into(),
        url: running.url.clone(),
        auth_type: AuthType::Basic as i32,
        credentials: basic(&config.username, &config.password),
        ..Default::default()
    };
    let instance = connect(platform, &tenant, instance, false).await.unwrap();
    let attacker = listener(b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{\"result\":[]}", false).await;
    let mut client = instances(platform).await;

    let url_only = UpdateInstanceRequest {
        instance_id: instance.id.clone(),
        instance: Some(Instance { url: attacker.url.clone(), ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["url".into()] }),
    };
    let refused = client.update_instance(authorized(url_only, tenant.token())).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "CREDENTIALS_REQUIRED"));
    assert!(refused.message().contains("credentials"), "{}", refused.message());
    let check = TestConnectionRequest { instance_id: instance.id.clone() };
    let report = client.test_connection(authorized(check.clone(), tenant.token())).await.unwrap().into_inner();
    assert!(report.success, "still checks the real instance: {report:?}");
    assert_eq!(attacker.connections.load(Ordering::SeqCst), 0, "nothing reached the new host");

    // Were the check to regress, the sealing still binds the credentials to their URL: a
    // URL changed behind the service's back (here, in the database) leaves them unopenable.
    let moved = format!("UPDATE instances SET url = '{}' WHERE id = '{}'", attacker.url, instance.id);
    platform.execute_as_owner(DatabaseGroup::Core, &moved).await;
    let status = client.test_connection(authorized(check, tenant.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(attacker.connections.load(Ordering::SeqCst), 0, "the credentials did not open for the new host");

    // With new credentials, moving is fine.
    let with_credentials = UpdateInstanceRequest {
        instance_id: instance.id.clone(),
        instance: Some(Instance {
            url: running.url.clone(),
            credentials: basic("someone", "else"),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["url".into(), "credentials".into()] }),
    };
    client.update_instance(authorized(with_credentials, tenant.token())).await.unwrap();
}

/// Finding 3, second half: an "instance" that answers with endless bytes is cut off, and
/// what a host serves is never repeated back (a connection check is no way to read pages
/// of another server).
async fn a_hostile_instance_can_neither_flood_nor_be_read_back(platform: &TestPlatform) {
    let flood = listener(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n", true).await;
    let secret_page =
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 35\r\nconnection: close\r\n\r\n<html>internal-admin-console</html>";
    let echo = listener(secret_page, false).await;
    let mut client = instances(platform).await;
    for (name, target, expected) in [("flood", &flood, "larger than"), ("echo", &echo, "500 Internal Server Error")] {
        // The free plan allows one instance: a tenant each.
        let tenant = platform.tenant(&format!("Hostile {name}")).await;
        let instance = Instance {
            name: name.into(),
            url: target.url.clone(),
            auth_type: AuthType::Basic as i32,
            credentials: basic("u", "p"),
            ..Default::default()
        };
        let instance = connect(platform, &tenant, instance, false).await.unwrap();
        let check = TestConnectionRequest { instance_id: instance.id.clone() };
        let report =
            tokio::time::timeout(Duration::from_secs(60), client.test_connection(authorized(check, tenant.token())))
                .await
                .expect("a check ends")
                .unwrap()
                .into_inner();
        assert!(!report.success, "{report:?}");
        let shown = format!("{report:?}");
        assert!(shown.contains(expected), "{name}: {shown}");
        assert!(!shown.contains("internal-admin-console"), "{name}: a body was repeated: {shown}");
    }
}

/// Finding 3: `serve` refuses instance URLs on the platform's own networks, in every
/// spelling, and names that resolve there.
mod private_networks_are_refused_in_production {
    use super::*;

    fn production(config: &mut PlatformConfig) {
        config.instance.allow_private_networks = Some(false);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        run_with(Backend::Embedded, production, |platform| Box::pin(refused(platform))).await;
    }

    async fn refused(platform: &TestPlatform) {
        let tenant = platform.tenant("Port Scanner").await;
        for url in [
            "https://0.0.0.0",
            "https://[::]",
            "http://127.0.0.1:8090",
            "https://10.0.0.5",
            "https://172.16.4.4",
            "https://192.168.1.10",
            "https://[::ffff:10.0.0.1]",
            "https://[::ffff:169.254.169.254]",
            "http://localhost:8090",
            "https://169.254.169.254",
        ] {
            let instance = Instance {
                name: "internal".into(),
                url: url.into(),
                auth_type: AuthType::Basic as i32,
                credentials: basic("u", "p"),
                ..Default::default()
            };
            let status = connect(platform, &tenant, instance, false).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{url}: {status:?}");
            assert_eq!(violations(&status), vec![("instance.url".to_string(), "FORBIDDEN_HOST".to_string())], "{url}");
        }
        assert_eq!(platform.stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM instances").await, 0);
    }
}
