//! The mesh: module servers speak mutual TLS only, with certificates of the platform's CA,
//! admit only the callers the mesh policy names, and take rotated certificates while calls
//! run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::mesh::DevAuthority;
use complianceiq_kit::mesh::certs::{CA_FILE, CERT_FILE, KEY_FILE};
use complianceiq_kit::mesh::policy::FORWARDED_CLIENT_CERT;
use complianceiq_proto::complianceiq::audit::v1::ListAuditLogsRequest;
use complianceiq_proto::complianceiq::audit::v1::audit_service_client::AuditServiceClient;
use complianceiq_proto::complianceiq::auth::v1::GetJwksRequest;
use complianceiq_proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use complianceiq_proto::complianceiq::organization::v1::GetOrganizationRequest;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::user::v1::ListRolesRequest;
use complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::harness::TestPlatform;
use crate::people::authorized;
use crate::platform_tests;

platform_tests!(
    a_connection_without_a_client_certificate_is_refused,
    certificates_of_another_ca_are_refused_both_ways,
    the_mesh_policy_refuses_what_it_does_not_name,
    mesh_refusals_are_chained_in_the_platform_trail,
    calls_within_the_process_meet_the_same_policy_and_access_rules,
);

fn pem_certificates(path: &std::path::Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path).unwrap().collect::<Result<_, _>>().unwrap()
}

/// A TLS client trusting `ca`, presenting `identity` (certificate and key files) if given.
fn tls_client(ca: &std::path::Path, identity: Option<&std::path::Path>) -> tokio_rustls::TlsConnector {
    complianceiq_kit::crypto::install_tls_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for certificate in pem_certificates(ca) {
        roots.add(certificate).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(dir) => builder
            .with_client_auth_cert(
                pem_certificates(&dir.join(CERT_FILE)),
                PrivateKeyDer::from_pem_file(dir.join(KEY_FILE)).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Opens TLS to `module` and starts HTTP/2; Ok with the server's leaf certificate when the
/// server answers with its SETTINGS, Err with what went wrong otherwise.
async fn speak(
    platform: &TestPlatform,
    module: &str,
    client: tokio_rustls::TlsConnector,
) -> Result<CertificateDer<'static>, String> {
    let tcp = tokio::net::TcpStream::connect(platform.address(module)).await.unwrap();
    let name = ServerName::try_from(format!("{module}-service")).unwrap();
    let mut stream = client.connect(name, tcp).await.map_err(|error| format!("handshake: {error}"))?;
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.map_err(|e| e.to_string())?;
    let mut frame = [0u8; 9];
    match tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut frame)).await {
        Ok(Ok(_)) if frame[3] == 0x4 => Ok(leaf),
        Ok(Ok(_)) => Err(format!("unexpected frame {frame:?}")),
        Ok(Err(error)) => Err(format!("after the handshake: {error}")),
        Err(_) => Err("no answer".into()),
    }
}

fn mesh_dir(platform: &TestPlatform) -> std::path::PathBuf {
    platform.config.mesh_cert_dir()
}

async fn a_connection_without_a_client_certificate_is_refused(platform: &TestPlatform) {
    let ca = mesh_dir(platform).join("ca").join(CA_FILE);
    for module in ["auth", "organization", "webhook"] {
        let refused = speak(platform, module, tls_client(&ca, None)).await.unwrap_err();
        assert!(refused.contains("CertificateRequired") || refused.contains("certificate"), "{module}: {refused}");
        let accepted = speak(platform, module, tls_client(&ca, Some(&mesh_dir(platform).join("gateway")))).await;
        assert!(accepted.is_ok(), "{module} with the gateway's certificate: {accepted:?}");
    }
    // Nor does plain HTTP/2 get anywhere.
    let status = OrganizationServiceClient::new(
        tonic::transport::Channel::from_shared(format!("http://{}", platform.address("organization")))
            .unwrap()
            .connect_lazy(),
    )
    .get_organization(GetOrganizationRequest { org_id: uuid::Uuid::now_v7().to_string() })
    .await
    .unwrap_err();
    // The TLS server's alert is no HTTP/2 the client can read: a transport failure, never an
    // answer from the service.
    assert!(std::error::Error::source(&status).is_some(), "a transport error, not an answer: {status:?}");
}

async fn certificates_of_another_ca_are_refused_both_ways(platform: &TestPlatform) {
    let elsewhere = std::env::temp_dir().join(format!("ciq-other-ca-{}", uuid::Uuid::new_v4().simple()));
    let identity = platform.platform().mesh.scope().identity("gateway");
    DevAuthority::open_or_create(&elsewhere).unwrap().issue("gateway", &identity).unwrap();
    // The right name, the wrong CA: the server refuses the client...
    let ours = mesh_dir(platform).join("ca").join(CA_FILE);
    let refused = speak(platform, "organization", tls_client(&ours, Some(&elsewhere.join("gateway")))).await;
    assert!(refused.is_err(), "a client certificate of another CA was accepted");
    // ...and a client trusting only the other CA refuses the server.
    let theirs = elsewhere.join("ca").join(CA_FILE);
    let refused = speak(platform, "organization", tls_client(&theirs, Some(&elsewhere.join("gateway")))).await;
    let refused = refused.expect_err("the server's certificate was trusted");
    assert!(refused.contains("invalid peer certificate"), "{refused}");
    std::fs::remove_dir_all(elsewhere).unwrap();
}

async fn the_mesh_policy_refuses_what_it_does_not_name(platform: &TestPlatform) {
    let tenant = platform.tenant("Mesh Policy").await;
    let request = || authorized(GetOrganizationRequest { org_id: tenant.id().into() }, tenant.token());
    // The gateway may forward edge RPCs.
    let organization = OrganizationServiceClient::new(platform.channel_as("gateway", "organization"))
        .get_organization(request())
        .await
        .expect("gateway -> organization is in the policy");
    assert_eq!(organization.into_inner().id, tenant.id());
    // A valid identity the table does not name for this method.
    for caller in ["user", "webhook", "auth"] {
        let status = OrganizationServiceClient::new(platform.channel_as(caller, "organization"))
            .get_organization(request())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{caller}: {status:?}");
        assert_eq!(
            status.message(),
            format!(
                "the mesh policy does not let {caller} call /complianceiq.organization.v1.OrganizationService/GetOrganization"
            )
        );
    }
    // Over mutual TLS only the certificate speaks: a forwarded identity header is ignored.
    let mut forged = request();
    forged.metadata_mut().insert(
        FORWARDED_CLIENT_CERT,
        "By=spiffe://cluster.local/ns/complianceiq/sa/organization-service;URI=spiffe://cluster.local/ns/complianceiq/sa/gateway-service"
            .parse()
            .unwrap(),
    );
    let status = OrganizationServiceClient::new(platform.channel_as("webhook", "organization"))
        .get_organization(forged)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // Organization may list roles at the user service (inviting checks them), nothing more.
    let mut users = UserServiceClient::new(platform.channel_as("organization", "user"));
    users
        .list_roles(authorized(ListRolesRequest::default(), tenant.token()))
        .await
        .expect("organization -> user.ListRoles");
    let status = users.get_current_user(authorized(Default::default(), tenant.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Internal RPCs (no person's token): only the modules the table names reach them, and
    // the edge never offers them.
    let ingest = "complianceiq.analysis.v1.AnalysisService/IngestRecords";
    for caller in ["webhook", "gateway", "organization"] {
        let status = crate::harness::call_raw(platform.channel_as(caller, "analysis"), ingest, None).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{caller}: {status:?}");
    }
    let edge = tonic::transport::Channel::from_shared(format!("http://{}", platform.address("gateway")))
        .unwrap()
        .connect_lazy();
    let status = crate::harness::call_raw(edge, ingest, Some(tenant.token())).await.unwrap_err();
    assert_eq!((status.code(), crate::harness::reason(&status).as_str()), (Code::PermissionDenied, "INTERNAL_RPC"));
    // The instance service may; an empty stream lacks the header it needs.
    let status = crate::harness::call_raw(platform.channel_as("instance", "analysis"), ingest, None).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

/// A refusal belongs to no organization (no person's identity was checked): the platform's own
/// trail chains it, with the caller, the path and the reason, where no tenant reads it.
async fn mesh_refusals_are_chained_in_the_platform_trail(platform: &TestPlatform) {
    let tenant = platform.tenant("Refusals").await;
    let request = authorized(GetOrganizationRequest { org_id: tenant.id().into() }, tenant.token());
    let status =
        OrganizationServiceClient::new(platform.channel_as("webhook", "organization")).get_organization(request).await;
    assert_eq!(status.unwrap_err().code(), Code::PermissionDenied);
    let ingest = "complianceiq.analysis.v1.AnalysisService/IngestRecords";
    let status = crate::harness::call_raw(platform.channel_as("gateway", "analysis"), ingest, None).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let platform_trail =
        "SELECT count(*) FROM audit_logs WHERE organization_id = '00000000-0000-0000-0000-000000000000'";
    platform.stored_count_reaches(DatabaseGroup::Audit, platform_trail, 2).await;
    let rows = platform
        .stored_rows(
            DatabaseGroup::Audit,
            "SELECT CAST(sequence AS TEXT), action, resource_id, previous_hash, hash FROM audit_logs \
             WHERE organization_id = '00000000-0000-0000-0000-000000000000' ORDER BY sequence",
        )
        .await;
    let seen: Vec<_> = rows.iter().map(|row| (row[0].as_str(), row[1].as_str(), row[2].as_str())).collect();
    // The two modules' outboxes relay independently: either may come first.
    assert!(
        seen.contains(&("1", "mesh.call_denied", "/complianceiq.organization.v1.OrganizationService/GetOrganization"))
            || seen.contains(&(
                "2",
                "mesh.call_denied",
                "/complianceiq.organization.v1.OrganizationService/GetOrganization"
            )),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(_, action, rpc)| *action == "mesh.call_denied" && *rpc == format!("/{ingest}")),
        "{seen:?}"
    );
    assert_eq!(rows[1][3], rows[0][4], "the second refusal is chained to the first");

    // Entries keep the reason and the refusing module, and are no tenant's.
    let mut trail = AuditServiceClient::new(platform.channel_as("gateway", "audit"));
    let listed = trail
        .list_audit_logs(authorized(ListAuditLogsRequest::default(), tenant.token()))
        .await
        .expect("the tenant's own trail")
        .into_inner();
    assert!(listed.audit_logs.iter().all(|entry| !entry.action.starts_with("mesh.")), "{listed:?}");
    let bodies = platform
        .stored_rows(
            DatabaseGroup::Audit,
            "SELECT search_text FROM audit_logs WHERE organization_id = '00000000-0000-0000-0000-000000000000' \
             AND action = 'mesh.call_denied' ORDER BY sequence",
        )
        .await;
    let text = bodies.concat().join(" ");
    // The reason names the caller; `refused_by` the module whose server refused.
    for expected in ["let webhook call", "let gateway call", "organization", "analysis"] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
}

/// Where caller and callee share the process, calls skip the network, not the checks. The
/// channels here point at an address nothing listens on: every answer comes from the process.
async fn calls_within_the_process_meet_the_same_policy_and_access_rules(platform: &TestPlatform) {
    let tenant = platform.tenant("In Process").await;
    let nowhere = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", probe.local_addr().unwrap())
    };
    let mesh = &platform.platform().mesh;
    let channel = |caller: &str, target: &str| mesh.channel(caller, target, &nowhere).unwrap();
    let request = || authorized(GetOrganizationRequest { org_id: tenant.id().into() }, tenant.token());

    let organization = OrganizationServiceClient::new(channel("gateway", "organization"))
        .get_organization(request())
        .await
        .expect("gateway -> organization, in the process");
    assert_eq!(organization.into_inner().id, tenant.id());
    // The mesh policy: a module it does not name is refused, as over the network.
    let status = OrganizationServiceClient::new(channel("webhook", "organization"))
        .get_organization(request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // The access rules: no token, a forged one, another tenant's organization.
    let mut organizations = OrganizationServiceClient::new(channel("gateway", "organization"));
    let anonymous =
        organizations.get_organization(GetOrganizationRequest { org_id: tenant.id().into() }).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    let forged = organizations
        .get_organization(authorized(GetOrganizationRequest { org_id: tenant.id().into() }, "not.a.token"))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated, "{forged:?}");
    let other = platform.tenant("In Process Other").await;
    let crossed = organizations
        .get_organization(authorized(GetOrganizationRequest { org_id: other.id().into() }, tenant.token()))
        .await
        .unwrap_err();
    assert_eq!(crossed.code(), Code::PermissionDenied, "{crossed:?}");
    // Internal RPCs stay with the modules the policy names.
    let ingest = "complianceiq.analysis.v1.AnalysisService/IngestRecords";
    let status = crate::harness::call_raw(channel("gateway", "analysis"), ingest, None).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}

/// Behind a sidecar that terminates mutual TLS, the servers speak plain HTTP/2 and take the
/// caller from the sidecar's X-Forwarded-Client-Cert, when (and only when) configured so.
/// The data backends play no part: embedded only.
mod sidecar_mode_takes_the_caller_from_the_forwarded_client_cert {
    use crate::harness::{Backend, run_with};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        let sidecar = |config: &mut complianceiq_kit::config::PlatformConfig| {
            config.mesh.mode = complianceiq_kit::config::MeshMode::Sidecar;
        };
        run_with(Backend::Embedded, sidecar, |platform| Box::pin(super::behind_a_sidecar(platform))).await;
    }
}

async fn behind_a_sidecar(platform: &TestPlatform) {
    let identity = |domain: &str, module: &str| {
        format!(
            "By=spiffe://{domain}/ns/complianceiq/sa/user-service;URI=spiffe://{domain}/ns/complianceiq/sa/{module}-service"
        )
    };
    let with_caller = |xfcc: Option<String>| {
        let mut request = tonic::Request::new(GetJwksRequest::default());
        if let Some(xfcc) = xfcc {
            request.metadata_mut().insert(FORWARDED_CLIENT_CERT, xfcc.parse().unwrap());
        }
        request
    };
    // Plain HTTP/2 reaches the server (the sidecar did the TLS).
    let plain = tonic::transport::Channel::from_shared(format!("http://{}", platform.address("auth"))).unwrap();
    let mut auth = AuthServiceClient::new(plain.connect_lazy());
    let keys = auth.get_jwks(with_caller(Some(identity("cluster.local", "gateway")))).await.expect("a named module");
    assert!(!keys.into_inner().keys.is_empty());

    let status = auth.get_jwks(with_caller(None)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("no identity was presented"), "{status:?}");
    let status = auth.get_jwks(with_caller(Some(identity("evil.example", "gateway")))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "another trust domain: {status:?}");

    // The forwarded identity is held to the policy like a certificate.
    let plain = tonic::transport::Channel::from_shared(format!("http://{}", platform.address("user"))).unwrap();
    let mut request = tonic::Request::new(ListRolesRequest::default());
    request.metadata_mut().insert(FORWARDED_CLIENT_CERT, identity("cluster.local", "webhook").parse().unwrap());
    let status = UserServiceClient::new(plain.connect_lazy()).list_roles(request).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        status.message(),
        "the mesh policy does not let webhook call /complianceiq.user.v1.UserService/ListRoles"
    );
    // Both kinds of refusal reach the platform's trail.
    let refusals = "SELECT count(*) FROM audit_logs WHERE organization_id = '00000000-0000-0000-0000-000000000000'";
    let unauthenticated = format!("{refusals} AND action = 'mesh.call_unauthenticated'");
    platform.stored_count_reaches(DatabaseGroup::Audit, &unauthenticated, 2).await;
    platform
        .stored_count_reaches(DatabaseGroup::Audit, &format!("{refusals} AND action = 'mesh.call_denied'"), 1)
        .await;
}

/// Rotation needs a short reload interval; each backend gets its own run.
mod certificate_rotation_under_load_fails_no_call {
    crate::configured_platform_tests!(super::fast_reload, super::rotate_under_load);
}

fn fast_reload(config: &mut complianceiq_kit::config::PlatformConfig) {
    config.mesh.reload_ms = 100;
}

async fn rotate_under_load(platform: &TestPlatform) {
    let tenant = Arc::new(platform.tenant("Rotation").await);
    let (stop, calls, failures) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (stop, calls, failures, tenant) = (stop.clone(), calls.clone(), failures.clone(), tenant.clone());
        // A fresh channel every few calls, so handshakes keep happening during the rotation.
        let channels: Vec<_> = (0..200).map(|_| platform.channel_as("gateway", "organization")).collect();
        callers.push(tokio::spawn(async move {
            let mut channels = channels.into_iter();
            while !stop.load(Ordering::Relaxed) {
                let Some(channel) = channels.next() else { break };
                let mut client = OrganizationServiceClient::new(channel);
                for _ in 0..5 {
                    let request = GetOrganizationRequest { org_id: tenant.id().into() };
                    match client.get_organization(authorized(request, tenant.token())).await {
                        Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                        Err(status) => {
                            eprintln!("a call failed during rotation: {status:?}");
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_rotation = calls.load(Ordering::Relaxed);

    // Rotate the server's and the client's certificates, as cert-manager would.
    let dir = mesh_dir(platform);
    let authority = DevAuthority::open_or_create(&dir).unwrap();
    let scope = platform.platform().mesh.scope().clone();
    authority.issue("organization", &scope.identity("organization")).unwrap();
    authority.issue("gateway", &scope.identity("gateway")).unwrap();
    let rotated = pem_certificates(&dir.join("organization").join(CERT_FILE))[0].clone();

    // New handshakes get the new certificate once the files are reloaded.
    let ca = dir.join("ca").join(CA_FILE);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let served = speak(platform, "organization", tls_client(&ca, Some(&dir.join("gateway")))).await;
        if served.as_ref().is_ok_and(|leaf| *leaf == rotated) {
            break;
        }
        assert!(Instant::now() < deadline, "the rotated certificate was never served: {served:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }
    let (total, failed) = (calls.load(Ordering::Relaxed), failures.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "{failed} of {} calls failed", total + failed);
    assert!(
        total > before_rotation + 20,
        "calls kept flowing through the rotation ({before_rotation} before, {total} in all)"
    );
}
