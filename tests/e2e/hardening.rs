//! What a penetration tester tried, as tests: each fails on the code before its fix.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use complianceiq_kit::config::{DatabaseGroup, PlatformConfig};
use complianceiq_proto::complianceiq::instance::v1::*;
use complianceiq_servicenow::sim::SimConfig;
use prost_types::FieldMask;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::harness::{Backend, TestPlatform, reason, violations};
use crate::instances::{basic, client, connect, simulator};
use crate::people::authorized;
use crate::platform_tests;

platform_tests!(credentials_never_follow_a_changed_url, a_hostile_instance_can_neither_flood_nor_be_read_back,);

/// A TCP server that counts connections and answers each with `response` (then closes).
struct Listener {
    url: String,
    connections: Arc<AtomicUsize>,
}

/// The operations port's metrics exposition.
async fn metrics(platform: &TestPlatform) -> String {
    let address = platform.platform().ops_address;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: ops\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
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
    let mut client = client(platform).await;

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
    let mut client = client(platform).await;
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

    crate::configured_platform_tests!(production, refused);

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

mod people_and_sessions {
    use complianceiq_auth::totp;
    use complianceiq_proto::complianceiq::auth::v1::{
        EnableMfaRequest, LoginRequest, RefreshRequest, VerifyMfaRequest, login_response,
    };
    use complianceiq_proto::complianceiq::organization::v1::{
        Organization, OrganizationSettings, RemoveMemberRequest, UpdateOrganizationRequest,
    };
    use complianceiq_proto::complianceiq::user::v1::{
        CreateRoleRequest, GetCurrentUserRequest, RemoveRoleRequest, Role,
    };

    use super::*;
    use crate::people::{PASSWORD, Person, claims};

    platform_tests!(
        the_second_factor_cannot_be_guessed_across_challenges,
        an_organization_that_requires_mfa_admits_only_members_with_it,
        members_are_removed_only_by_someone_as_privileged_and_never_the_last_admin,
        a_demotion_cuts_off_live_tokens,
    );

    fn now_seconds() -> i64 {
        complianceiq_kit::auth::verifier::now_seconds()
    }

    fn login(email: &str, organization_id: &str) -> LoginRequest {
        LoginRequest { email: email.into(), password: PASSWORD.into(), organization_id: organization_id.into() }
    }

    /// Enrolls `person` in MFA; returns the TOTP secret.
    async fn enroll(platform: &TestPlatform, person: &Person) -> Vec<u8> {
        let mut auth = platform.auth().await;
        let enrollment = auth
            .enable_mfa(authorized(EnableMfaRequest { password: PASSWORD.into() }, person.token()))
            .await
            .unwrap()
            .into_inner();
        let secret = crate::identity::decode_base32(&enrollment.secret);
        let code = totp::code_at(&secret, now_seconds() / 30);
        auth.verify_mfa(authorized(VerifyMfaRequest { challenge_token: String::new(), code }, person.token()))
            .await
            .unwrap();
        secret
    }

    async fn challenge(platform: &TestPlatform, email: &str) -> Result<String, tonic::Status> {
        match platform.auth().await.login(login(email, "")).await?.into_inner().result {
            Some(login_response::Result::MfaChallenge(challenge)) => Ok(challenge.challenge_token),
            other => panic!("expected an MFA challenge, got {other:?}"),
        }
    }

    /// Finding 5: each correct password gave five fresh guesses, without end.
    async fn the_second_factor_cannot_be_guessed_across_challenges(platform: &TestPlatform) {
        let person = platform.person("guessed@example.com").await;
        let secret = enroll(platform, &person).await;
        let mut auth = platform.auth().await;
        let wrong = |token: &str| VerifyMfaRequest { challenge_token: token.into(), code: "000000".into() };
        let mut refused_at = None;
        for attempt in 1..=20 {
            // A fresh challenge every three guesses: under the per-challenge limit.
            let token = challenge(platform, &person.email).await;
            let token = match token {
                Ok(token) => token,
                Err(status) => {
                    assert_eq!(reason(&status), "TOO_MANY_MFA_FAILURES", "{status:?}");
                    refused_at = Some(attempt);
                    break;
                }
            };
            let mut locked = false;
            for _ in 0..3 {
                let status = auth.verify_mfa(wrong(&token)).await.unwrap_err();
                if reason(&status) == "TOO_MANY_MFA_FAILURES" {
                    assert_eq!(status.code(), Code::ResourceExhausted);
                    locked = true;
                    break;
                }
                assert_eq!(reason(&status), "MFA_CODE_INVALID");
            }
            if locked {
                refused_at = Some(attempt);
                break;
            }
        }
        assert!(refused_at.is_some_and(|attempt| attempt <= 4), "locked after ten wrong codes: {refused_at:?}");
        // Locked: even the right code, even after a correct password, waits.
        let status = challenge(platform, &person.email).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::ResourceExhausted, "TOO_MANY_MFA_FAILURES"));
        let _ = totp::code_at(&secret, now_seconds() / 30);
        let alerts = platform
            .stored_count(DatabaseGroup::Auth, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'security.alert'")
            .await;
        assert_eq!(alerts, 9 + 1, "each of the nine wrong codes (low), then one for the lock");
    }

    /// Finding 6: `require_mfa` was stored and never enforced.
    async fn an_organization_that_requires_mfa_admits_only_members_with_it(platform: &TestPlatform) {
        let mut tenant = platform.tenant("Strict").await;
        let (member, _) = platform.member(&tenant, "member@strict.example.com", &[]).await;
        // The admin enrolls first, then requires it of everyone.
        enroll(platform, &tenant.admin).await;
        let update = UpdateOrganizationRequest {
            org_id: tenant.id().into(),
            organization: Some(Organization {
                settings: Some(OrganizationSettings { require_mfa: true, ..Default::default() }),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["settings.require_mfa".into()] }),
        };
        platform.organizations().await.update_organization(authorized(update, tenant.token())).await.unwrap();

        let mut auth = platform.auth().await;
        let refresh = |refresh_token: &str| RefreshRequest {
            refresh_token: refresh_token.into(),
            organization_id: tenant.organization.id.clone(),
        };
        // The policy reaches the auth service by event; from then on a refresh is refused.
        let mut member = member;
        let mut refused = None;
        for _ in 0..200 {
            match auth.refresh(refresh(&member.tokens.refresh_token)).await {
                Ok(tokens) => {
                    member.tokens = tokens.into_inner();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => {
                    refused = Some(status);
                    break;
                }
            }
        }
        let status = refused.expect("refused within ten seconds");
        assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "MFA_REQUIRED"), "{status:?}");
        // Asking for the organization at sign-in: a clear refusal that says what to do.
        let status = auth.login(login(&member.email, tenant.id())).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "MFA_REQUIRED"));
        assert!(status.message().contains("EnableMfa"), "{}", status.message());
        // Not asking: signed in, but outside the organization, so MFA can be enrolled.
        let signed_in = match auth.login(login(&member.email, "")).await.unwrap().into_inner().result {
            Some(login_response::Result::Tokens(tokens)) => tokens,
            other => panic!("{other:?}"),
        };
        assert!(signed_in.organization_id.is_empty(), "{signed_in:?}");
        let mut enrolled = Person { tokens: signed_in, ..member };
        let secret = enroll(platform, &enrolled).await;
        // With MFA, the member gets in after the second factor.
        let token = challenge(platform, &enrolled.email).await.unwrap();
        let code = totp::code_at(&secret, now_seconds() / 30 + 1);
        let verified = auth.verify_mfa(VerifyMfaRequest { challenge_token: token, code }).await.unwrap().into_inner();
        enrolled.tokens = verified.tokens.unwrap();
        platform.switch(&mut enrolled, tenant.id()).await;
        assert_eq!(claims(enrolled.token())["organization_id"], tenant.id());
        // The admin, enrolled, keeps access too.
        let admin_token = tenant.admin.tokens.refresh_token.clone();
        tenant.admin.tokens = auth.refresh(refresh(&admin_token)).await.unwrap().into_inner();
    }

    async fn create_role(platform: &TestPlatform, token: &str, name: &str, permissions: Vec<String>) -> Role {
        let role = Role { name: name.into(), permissions, ..Default::default() };
        platform
            .users()
            .await
            .create_role(authorized(CreateRoleRequest { role: Some(role) }, token))
            .await
            .unwrap()
            .into_inner()
    }

    /// Finding 7: a custom role holding only `users:delete` could remove every admin.
    async fn members_are_removed_only_by_someone_as_privileged_and_never_the_last_admin(platform: &TestPlatform) {
        let tenant = platform.tenant("Guarded Members").await;
        let admin_member = platform
            .organizations()
            .await
            .list_members(authorized(
                complianceiq_proto::complianceiq::organization::v1::ListMembersRequest {
                    org_id: tenant.id().into(),
                    ..Default::default()
                },
                tenant.token(),
            ))
            .await
            .unwrap()
            .into_inner()
            .members
            .into_iter()
            .find(|member| member.user_id == tenant.admin.user_id)
            .unwrap();
        let remover =
            create_role(platform, tenant.token(), "Remover", vec!["users:read".into(), "users:delete".into()]).await;
        let (remover, _) = platform.member(&tenant, "remover@guarded.example.com", &[remover.id]).await;
        let remove = |member_id: &str| RemoveMemberRequest { org_id: tenant.id().into(), member_id: member_id.into() };
        let mut organizations = platform.organizations().await;
        let status =
            organizations.remove_member(authorized(remove(&admin_member.id), remover.token())).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::PermissionDenied, "MEMBER_MORE_PRIVILEGED"));

        // A deputy holding every permission still cannot remove the only Organization Admin.
        let every: Vec<String> = claims(tenant.token())["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        let deputy = create_role(platform, tenant.token(), "Deputy", every).await;
        let (deputy, _) = platform.member(&tenant, "deputy@guarded.example.com", &[deputy.id]).await;
        let status =
            organizations.remove_member(authorized(remove(&admin_member.id), deputy.token())).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "LAST_ADMIN"));
        let members =
            platform.stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM memberships WHERE state = 'active'").await;
        assert_eq!(members, 3, "nobody was removed");
    }

    /// Lower: taking a role away left tokens carrying it alive until they expired.
    async fn a_demotion_cuts_off_live_tokens(platform: &TestPlatform) {
        let tenant = platform.tenant("Demoting").await;
        let role = create_role(platform, tenant.token(), "Reader", vec!["users:read".into()]).await;
        let (mut member, _) = platform.member(&tenant, "demoted@demoting.example.com", &[role.id.clone()]).await;
        platform
            .refresh_until(&mut member, |tokens| {
                claims(&tokens.access_token)["permissions"].to_string().contains("users:read")
            })
            .await;
        let mut users = platform.users().await;
        users.get_current_user(authorized(GetCurrentUserRequest {}, member.token())).await.unwrap();
        let demote = RemoveRoleRequest { user_id: member.user_id.clone(), role_id: role.id.clone() };
        users.remove_role(authorized(demote, tenant.token())).await.unwrap();
        let mut revoked = false;
        for _ in 0..200 {
            match users.get_current_user(authorized(GetCurrentUserRequest {}, member.token())).await {
                Err(status) if reason(&status) == "TOKEN_REVOKED" => {
                    revoked = true;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        assert!(revoked, "the demoted member's live token was cut off");
        // The session goes on, with what is left.
        platform
            .refresh_until(&mut member, |tokens| {
                !claims(&tokens.access_token)["permissions"].to_string().contains("users:read")
            })
            .await;
        users.get_current_user(authorized(GetCurrentUserRequest {}, member.token())).await.unwrap();
    }
}

mod events {
    use complianceiq_kit::bus::DeadLetter;
    use complianceiq_proto::complianceiq::auth::v1::RefreshRequest;
    use complianceiq_proto::complianceiq::events::v1::event::Payload;
    use complianceiq_proto::complianceiq::events::v1::{OrganizationCreated, UserAuthorizationChanged};
    use complianceiq_proto::complianceiq::organization::v1::Organization;

    use super::*;
    use crate::harness::bus_message;
    use crate::observability::sample;

    platform_tests!(events_from_a_module_that_does_not_own_them_are_refused);

    /// The dead letters of `consumer` once there are at least `count`, within ten seconds.
    async fn dead_letters(platform: &TestPlatform, consumer: &str, count: usize) -> Vec<DeadLetter> {
        for _ in 0..200 {
            let letters: Vec<DeadLetter> = platform
                .platform()
                .bus
                .dead_letters(1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|letter| letter.consumer.starts_with(consumer))
                .collect();
            if letters.len() >= count {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {count} dead letters of {consumer} within ten seconds");
    }

    /// Finding 2: any module (or anything that reaches the bus) could publish
    /// `user.authorization_changed` and make someone an admin of any organization.
    async fn events_from_a_module_that_does_not_own_them_are_refused(platform: &TestPlatform) {
        let tenant = platform.tenant("Victim").await;
        let intruder = platform.person("intruder@example.com").await;
        let grant = Payload::UserAuthorizationChanged(UserAuthorizationChanged {
            user_id: intruder.user_id.clone(),
            email: intruder.email.clone(),
            roles: vec!["Organization Admin".into()],
            permissions: vec!["users:read".into(), "users:delete".into()],
            active: true,
            version: i64::MAX / 2,
            ..Default::default()
        });
        let bus = &platform.platform().bus;
        // From the instance module, which does not own the type.
        bus.publish(bus_message(tenant.id(), grant.clone(), "instance")).await.unwrap();
        // Routed as a type the publisher owns, carrying another type's payload.
        let mut disguised = bus_message(tenant.id(), grant.clone(), "organization");
        disguised.event_type = "organization.deleted".into();
        bus.publish(disguised).await.unwrap();

        let letters = dead_letters(platform, "auth-memberships", 2).await;
        assert!(letters.iter().all(|letter| letter.reason.starts_with("refused:")), "{letters:?}");
        assert!(letters.iter().any(|letter| letter.reason.contains("published by user only")), "{letters:?}");
        let exposition = metrics(platform).await;
        let refused = "events_consumed_total{consumer=\"auth-memberships\",event_type=\"user.authorization_changed\",outcome=\"refused\"}";
        assert_eq!(sample(&exposition, refused), 1.0, "{exposition}");

        let mut auth = platform.auth().await;
        let switch = |refresh_token: &str| RefreshRequest {
            refresh_token: refresh_token.into(),
            organization_id: tenant.id().into(),
        };
        let status = auth.refresh(switch(&intruder.tokens.refresh_token)).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::PermissionDenied, "NOT_A_MEMBER"));

        // The same event from its owner is applied: the check refuses the publisher, not the event.
        bus.publish(bus_message(tenant.id(), grant, "user")).await.unwrap();
        let mut intruder = intruder;
        platform.switch(&mut intruder, tenant.id()).await;
    }

    /// The rule for events a handler cannot process: bounded redelivery with backoff, then
    /// the dead-letter stream, while the events behind it go on being handled.
    mod a_poison_event_is_dead_lettered_and_the_next_one_handled {
        use super::*;

        fn quick_retries(config: &mut PlatformConfig) {
            config.events.max_deliver = 3;
            config.events.retry_backoff_ms = 50;
        }

        crate::configured_platform_tests!(quick_retries, poisoned);

        async fn poisoned(platform: &TestPlatform) {
            // The user directory cannot seed roles for an organization id that is no id.
            let malformed = Payload::OrganizationCreated(OrganizationCreated {
                organization: Some(Organization { id: "not-an-id".into(), ..Default::default() }),
                creator_user_id: "nobody".into(),
                creator_email: "nobody@example.com".into(),
            });
            let poison = bus_message("not-an-id", malformed, "organization");
            let poison_id = poison.event_id.clone();
            platform.platform().bus.publish(poison).await.unwrap();
            // The next organization is set up as usual (its admin's token needs the directory).
            let tenant = platform.tenant("After The Poison").await;
            assert_eq!(crate::people::claims(tenant.token())["organization_id"], tenant.id());

            let letters = dead_letters(platform, "user-directory", 1).await;
            assert_eq!(letters.len(), 1, "{letters:?}");
            assert_eq!(letters[0].event_id, poison_id);
            assert!(letters[0].reason.starts_with("failed 3 times"), "{}", letters[0].reason);
            let exposition = metrics(platform).await;
            let series = |outcome: &str| {
                format!(
                    "events_consumed_total{{consumer=\"user-directory\",event_type=\"organization.created\",outcome=\"{outcome}\"}}"
                )
            };
            assert_eq!(sample(&exposition, &series("retried")), 2.0, "{exposition}");
            assert_eq!(sample(&exposition, &series("dead_lettered")), 1.0);
            // And it stays dead: nothing loops.
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(sample(&metrics(platform).await, &series("dead_lettered")), 1.0);
        }
    }
}

/// Finding 2, at the broker: a real nats-server on the configuration `complianceiq
/// manifests` renders lets each module do what the platform needs and nothing more: publish
/// the events it owns, consume, write its dead letters; never publish another's events.
mod nats_permissions_follow_event_ownership {
    use complianceiq_kit::auth::revocations::{RevocationNews, RevokedToken};
    use complianceiq_kit::bus::{BusMessage, DeadLetter, EventBus, NatsBus, SubscriptionSpec};
    use complianceiq_kit::config::EventsConfig;
    use complianceiq_proto::complianceiq::events::v1::event::Payload;
    use complianceiq_proto::complianceiq::events::v1::{InstanceCreated, UserAuthorizationChanged};
    use futures::StreamExt;

    use super::*;
    use crate::harness::bus_message;

    struct NatsServer {
        child: std::process::Child,
        url: String,
        directory: std::path::PathBuf,
    }

    impl Drop for NatsServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.directory);
        }
    }

    async fn start_server() -> NatsServer {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let directory = std::env::temp_dir().join(format!("ciq-nats-{}", crate::harness::unique_suffix()));
        std::fs::create_dir_all(&directory).unwrap();
        let config = complianceiq::nats_policy::server_config(
            &complianceiq::modules(),
            "complianceiq",
            "CIQ_PERMISSIONS",
            &format!("127.0.0.1:{port}"),
            &directory.join("store").display().to_string(),
            |module| format!("\"password-of-{module}\""),
            None,
        );
        let path = directory.join("nats.conf");
        std::fs::write(&path, config).unwrap();
        let mut child = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server (Debian's nats-server package; .ci/run installs it) must be on PATH");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return NatsServer { child, url: format!("nats://127.0.0.1:{port}"), directory };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nats-server did not listen within five seconds");
    }

    async fn connect(server: &NatsServer, module: &str, password: &str) -> Result<NatsBus, String> {
        let config = EventsConfig {
            nats_url: Some(server.url.clone()),
            stream: "CIQ_PERMISSIONS".into(),
            subject_prefix: "complianceiq".into(),
            nats_user: Some(module.into()),
            nats_password: Some(password.into()),
            ..EventsConfig::default()
        };
        NatsBus::connect(&server.url, &config).await.map_err(|error| error.to_string())
    }

    async fn publish(bus: &NatsBus, message: BusMessage) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(15), bus.publish(message)).await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(_) => Err("no answer".into()),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        let server = start_server().await;
        assert!(connect(&server, "instance", "wrong").await.is_err(), "a wrong password is refused");
        let instance = connect(&server, "instance", "password-of-instance").await.expect("instance connects");
        let organization =
            connect(&server, "organization", "password-of-organization").await.expect("organization connects");

        // A consumer of another module's events attaches and receives them.
        let spec = SubscriptionSpec {
            module: "organization".into(),
            pattern: "instance.created".into(),
            durable_name: Some("organization-usage-instance_created".into()),
        };
        let mut deliveries = organization.subscribe(spec).await.expect("organization may consume");
        let created = bus_message("org-1", Payload::InstanceCreated(InstanceCreated::default()), "instance");
        publish(&instance, created.clone()).await.expect("instance publishes its own event");
        let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next()).await.unwrap().unwrap();
        assert_eq!((delivery.publisher.as_str(), delivery.event.id.as_str()), ("instance", created.event_id.as_str()));
        delivery.ack().await.expect("organization may acknowledge");
        let letter = DeadLetter {
            module: "organization".into(),
            consumer: "organization-usage".into(),
            event_id: created.event_id.clone(),
            event_type: "instance.created".into(),
            publisher: "instance".into(),
            reason: "test".into(),
            payload: created.payload.clone(),
        };
        organization.dead_letter(letter.clone()).await.expect("a module writes its own dead letters");
        let kept = organization.dead_letters(10).await.expect("dead letters can be read");
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].module.as_str(), kept[0].consumer.as_str()), ("organization", "organization-usage"));

        // What the penetration test did: instance credentials publishing as the user service.
        let grant = Payload::UserAuthorizationChanged(UserAuthorizationChanged::default());
        let forged = publish(&instance, bus_message("org-1", grant.clone(), "user")).await;
        assert!(forged.is_err(), "NATS refuses instance publishing user's events");
        // Nor under its own name: only the types it owns.
        let renamed = publish(&instance, bus_message("org-1", grant, "instance")).await;
        assert!(renamed.is_err(), "NATS refuses a type instance does not own");
        let foreign_letter = DeadLetter { module: "auth".into(), ..letter };
        assert!(instance.dead_letter(foreign_letter).await.is_err(), "nor another module's dead letters");

        // Revocations: the issuer announces them, every module follows them, no other announces.
        let auth = connect(&server, "auth", "password-of-auth").await.expect("auth connects");
        let mut feed = instance.follow_revocations().await.expect("every module follows revocations");
        let expires_at = complianceiq_kit::auth::verifier::now_seconds() + 900;
        let revoked = RevokedToken { token_id: "jti-announced".into(), expires_at };
        auth.publish_revocation(revoked.clone()).await.expect("the issuer announces a revocation");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let news = tokio::time::timeout_at(deadline, feed.next()).await.expect("the revocation arrives").unwrap();
            if news == RevocationNews::Revoked(revoked.clone()) {
                break;
            }
        }
        let forged = RevokedToken { token_id: "jti-forged".into(), expires_at };
        let announced = tokio::time::timeout(Duration::from_secs(3), instance.publish_revocation(forged)).await;
        assert!(!matches!(announced, Ok(Ok(()))), "NATS refuses a revocation from another module");
    }
}

/// Finding 4: per-address brute-force limits never fired behind the mesh, and with
/// forwarding trusted, the client chose its own address with the left-most X-Forwarded-For.
mod the_gateway_decides_the_client_address {
    use serde_json::json;

    use super::*;

    fn behind_one_proxy(config: &mut PlatformConfig) {
        config.security.trusted_proxies = 1;
    }

    crate::configured_platform_tests!(behind_one_proxy, decided);

    /// A failed login through the edge, from `client` as the ingress saw it, with whatever
    /// the client itself claims in front of it.
    async fn failed_login(platform: &TestPlatform, attempt: usize, client: &str) -> (u16, String) {
        complianceiq_kit::crypto::install_tls_crypto_provider();
        let response = reqwest::Client::new()
            .post(format!("http://{}/api/v1/auth/login", platform.address("gateway")))
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("6.6.{}.{}, {client}", attempt / 250, attempt % 250))
            .header("grpc-metadata-x-ciq-client-address", format!("9.9.9.{}", attempt % 250))
            .header(
                "grpc-metadata-x-forwarded-client-cert",
                "URI=spiffe://cluster.local/ns/complianceiq/sa/auth-service",
            )
            .body(json!({"email": format!("nobody{attempt}@example.com"), "password": "wrong password"}).to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default();
        let reason = body["details"]
            .as_array()
            .and_then(|details| details.iter().find_map(|detail| detail["reason"].as_str()))
            .unwrap_or_default()
            .to_string();
        (status, reason)
    }

    async fn decided(platform: &TestPlatform) {
        // Fifty failures from one client, each claiming another address in every way it can.
        for attempt in 0..50 {
            let (status, _) = failed_login(platform, attempt, "203.0.113.7").await;
            assert_eq!(status, 401, "attempt {attempt}");
        }
        let (status, reason) = failed_login(platform, 50, "203.0.113.7").await;
        assert_eq!((status, reason.as_str()), (429, "TOO_MANY_FAILED_LOGINS"), "the address is locked");
        // Another client behind the same ingress is not.
        let (status, _) = failed_login(platform, 51, "203.0.113.8").await;
        assert_eq!(status, 401);
    }
}

mod sessions_and_links {
    use complianceiq_proto::complianceiq::auth::v1::{ForgotPasswordRequest, RefreshRequest, ResetPasswordRequest};

    use super::*;

    platform_tests!(a_newer_reset_link_retires_the_older_ones, a_session_ends_thirty_days_after_its_login);

    /// Lower: an old password-reset link stayed valid after a newer one was issued or used.
    async fn a_newer_reset_link_retires_the_older_ones(platform: &TestPlatform) {
        let person = platform.person("forgetful@example.com").await;
        let mut auth = platform.auth().await;
        let ask = || ForgotPasswordRequest { email: person.email.clone() };
        auth.forgot_password(ask()).await.unwrap();
        let first = platform.token_from_mail(&person.email, "Reset your ComplianceIQ password").await;
        auth.forgot_password(ask()).await.unwrap();
        let second = platform.token_from_mail(&person.email, "Reset your ComplianceIQ password").await;
        auth.forgot_password(ask()).await.unwrap();
        let third = platform.token_from_mail(&person.email, "Reset your ComplianceIQ password").await;
        let reset = |token: &str| ResetPasswordRequest {
            token: token.into(),
            new_password: "another fine passphrase 7".into(),
        };
        let stale = auth.reset_password(reset(&first)).await.unwrap_err();
        assert_eq!(violations(&stale), vec![("token".to_string(), "INVALID_OR_EXPIRED".to_string())]);
        auth.reset_password(reset(&second)).await.unwrap_err();
        auth.reset_password(reset(&third)).await.expect("the newest link works");
        // Used: no link from before works any more, the newest included.
        assert!(auth.reset_password(reset(&third)).await.is_err());
    }

    /// Lower: a session could be refreshed forever.
    async fn a_session_ends_thirty_days_after_its_login(platform: &TestPlatform) {
        let person = platform.person("long-lived@example.com").await;
        let mut auth = platform.auth().await;
        let refresh = |token: &str| RefreshRequest { refresh_token: token.into(), organization_id: String::new() };
        let fresh = auth.refresh(refresh(&person.tokens.refresh_token)).await.unwrap().into_inner();
        assert!(fresh.refresh_expires_in <= 7 * 24 * 3600);
        // Twenty-nine days in, the refresh token lives only as long as the session has left.
        let day = 24 * 3600 * 1_000_000i64;
        let age = |days: i64| {
            let started = complianceiq_kit::time::now_micros() - days * day;
            format!("UPDATE refresh_tokens SET session_started_at = {started}")
        };
        platform.execute_as_owner(DatabaseGroup::Auth, &age(29)).await;
        let late = auth.refresh(refresh(&fresh.refresh_token)).await.unwrap().into_inner();
        assert!((86_000..=86_400).contains(&late.refresh_expires_in), "{}", late.refresh_expires_in);
        // Past thirty days, the session is over however fresh its refresh token.
        platform.execute_as_owner(DatabaseGroup::Auth, &age(31)).await;
        let status = auth.refresh(refresh(&late.refresh_token)).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "SESSION_EXPIRED"));
    }
}

mod forged_tokens {
    use complianceiq_auth::KeyRing;
    use complianceiq_kit::auth::jwt::{self, Claims};

    use super::*;

    platform_tests!(a_flood_of_forged_tokens_is_cut_off_before_any_is_checked);

    /// Lower: a token with an unknown key id made its caller wait about a second behind a
    /// global lock (one forged request a second stalled everyone with a stale key cache),
    /// and nothing limited an address presenting bad tokens.
    async fn a_flood_of_forged_tokens_is_cut_off_before_any_is_checked(platform: &TestPlatform) {
        let tenant = platform.tenant("Flooded").await;
        let genuine: Claims = serde_json::from_value(crate::people::claims(tenant.token())).unwrap();
        let foreign_dir = platform.config.data_dir.join("forger-keys");
        KeyRing::generate_into(&foreign_dir).unwrap();
        let foreign = KeyRing::load(&foreign_dir).unwrap();
        let client = reqwest::Client::new();
        let me = format!("http://{}/api/v1/users/me", platform.address("gateway"));
        let get = |token: String| client.get(&me).bearer_auth(token).send();
        // Each with its own made-up key id: every one is unknown, none waits for a refetch.
        let flood = async {
            for attempt in 0..100 {
                let forged = jwt::sign(&genuine, &format!("made-up-{attempt}"), &foreign.active().pair);
                let response = get(forged).await.unwrap();
                assert_eq!(response.status().as_u16(), 401, "attempt {attempt}");
            }
        };
        // Bounded by the deadline, not timed: before the fix this took a hundred seconds.
        tokio::time::timeout(Duration::from_secs(60), flood).await.expect("forged tokens are refused without waiting");
        let refused = get(jwt::sign(&genuine, "made-up-last", &foreign.active().pair)).await.unwrap();
        assert_eq!(refused.status().as_u16(), 429);
        assert!(refused.headers().contains_key("retry-after"));
        let body = refused.text().await.unwrap();
        assert!(body.contains("TOO_MANY_INVALID_TOKENS"), "{body}");
    }
}

/// Lower: without a Stripe key, production handed out paid plans for free.
mod paid_plans_need_billing_in_production {
    use complianceiq_proto::complianceiq::organization::v1::{Plan, Subscription, UpdateSubscriptionRequest};

    use super::*;

    fn production_without_stripe(config: &mut PlatformConfig) {
        config.billing.billing_disabled = Some(false);
    }

    crate::configured_platform_tests!(production_without_stripe, refused);

    async fn refused(platform: &TestPlatform) {
        let tenant = platform.tenant("Freeloader").await;
        let upgrade = UpdateSubscriptionRequest {
            org_id: tenant.id().into(),
            subscription: Some(Subscription { plan: Plan::Enterprise as i32, ..Default::default() }),
            update_mask: None,
        };
        let status =
            platform.organizations().await.update_subscription(authorized(upgrade, tenant.token())).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "BILLING_NOT_CONFIGURED"));
        assert!(status.message().contains("CIQ_STRIPE_SECRET_KEY"), "{}", status.message());
    }
}

/// Lower: rotating the encryption key never re-encrypted anything, so old keys could never
/// be retired. `complianceiq rotate-encryption-key` re-seals every stored secret.
mod rotating_the_encryption_key_reseals_every_secret {
    use base64::Engine;
    use complianceiq_auth::totp;
    use complianceiq_proto::complianceiq::auth::v1::{
        EnableMfaRequest, LoginRequest, VerifyMfaRequest, login_response,
    };

    use super::*;
    use crate::people::PASSWORD;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        rotated(Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        rotated(Backend::Servers).await;
    }

    fn now_seconds() -> i64 {
        complianceiq_kit::auth::verifier::now_seconds()
    }

    async fn rotated(backend: Backend) {
        let mut platform = TestPlatform::start(backend).await;
        let outcome = std::panic::AssertUnwindSafe(body(&mut platform));
        let outcome = futures::FutureExt::catch_unwind(outcome).await;
        platform.stop().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    async fn body(platform: &mut TestPlatform) {
        // A secret of each kind under the first key: an MFA seed, ServiceNow credentials, a
        // webhook's signing secret.
        let running = simulator(SimConfig { controls: 3, ..SimConfig::default() }).await;
        let tenant = platform.tenant("Rotating Keys").await;
        let mut auth = platform.auth().await;
        let enrollment = auth
            .enable_mfa(authorized(EnableMfaRequest { password: PASSWORD.into() }, tenant.token()))
            .await
            .unwrap()
            .into_inner();
        let seed = crate::identity::decode_base32(&enrollment.secret);
        let code = totp::code_at(&seed, now_seconds() / 30);
        auth.verify_mfa(authorized(VerifyMfaRequest { challenge_token: String::new(), code }, tenant.token()))
            .await
            .unwrap();
        let config = running.simulator.config();
        let instance = Instance {
            name: "prod".into(),
            url: running.url.clone(),
            auth_type: AuthType::Basic as i32,
            credentials: basic(&config.username, &config.password),
            ..Default::default()
        };
        let instance = connect(platform, &tenant, instance, false).await.unwrap();
        let receiver = crate::receiver::Receiver::start().await;
        let webhook = crate::webhooks::subscribe(platform, &tenant, &receiver, &["sync.failed"]).await;
        // And a single sign-on provider's client secret.
        let provider = crate::identity_provider::OidcProvider::start().await;
        let sso = |secret: &str| complianceiq_proto::complianceiq::auth::v1::UpdateSsoConfigRequest {
            org_id: tenant.id().into(),
            config: Some(complianceiq_proto::complianceiq::auth::v1::SsoConfig {
                provider: Some(complianceiq_proto::complianceiq::auth::v1::sso_config::Provider::Oidc(
                    complianceiq_proto::complianceiq::auth::v1::OidcProvider {
                        issuer: provider.issuer.clone(),
                        client_id: crate::identity_provider::CLIENT_ID.into(),
                        client_secret: secret.into(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
        };
        auth.update_sso_config(authorized(sso(crate::identity_provider::CLIENT_SECRET), tenant.token())).await.unwrap();

        // The operator puts a new key first and keeps the old one, then re-seals.
        let old = std::fs::read_to_string(platform.config.data_dir.join("keys").join("encryption-keys")).unwrap();
        let new = format!("rotated:{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
        let mut both = platform.config.clone();
        both.security.encryption_keys = Some(format!("{new},{}", old.trim()));
        let counts = complianceiq_kit::runtime::reseal_secrets(&both, &complianceiq::modules()).await.unwrap();
        assert_eq!(counts, vec![("auth", 2), ("instance", 1), ("webhook", 1)]);
        // Nothing is left to do: a second run (as after an interruption) re-seals nothing.
        let again = complianceiq_kit::runtime::reseal_secrets(&both, &complianceiq::modules()).await.unwrap();
        assert_eq!(again, vec![("auth", 0), ("instance", 0), ("webhook", 0)]);
        let sealed = platform
            .stored_rows(DatabaseGroup::Auth, "SELECT mfa_secret FROM accounts WHERE mfa_secret IS NOT NULL")
            .await;
        assert!(sealed.iter().all(|row| row[0].starts_with("v1:rotated:")), "{sealed:?}");

        // With the old key gone, both secrets still open.
        platform.config.security.encryption_keys = Some(new);
        platform.restart().await;
        let check = TestConnectionRequest { instance_id: instance.id.clone() };
        let report =
            client(platform).await.test_connection(authorized(check, tenant.token())).await.unwrap().into_inner();
        assert!(report.success, "{report:?}");
        let test = complianceiq_proto::complianceiq::webhook::v1::TestWebhookRequest { webhook_id: webhook.id.clone() };
        let tested = crate::webhooks::webhooks(platform).await.test_webhook(authorized(test, tenant.token())).await;
        assert_eq!(tested.expect("the webhook secret opens under the new key alone").get_ref().response_status, 204);
        // Saving without a new secret opens the stored one to discover the provider.
        platform
            .auth()
            .await
            .update_sso_config(authorized(sso(""), tenant.token()))
            .await
            .expect("the SSO secret opens");
        let login = LoginRequest {
            email: tenant.admin.email.clone(),
            password: PASSWORD.into(),
            organization_id: String::new(),
        };
        let Some(login_response::Result::MfaChallenge(challenge)) =
            platform.auth().await.login(login).await.unwrap().into_inner().result
        else {
            panic!("expected an MFA challenge")
        };
        let code = totp::code_at(&seed, now_seconds() / 30 + 1);
        let verify = VerifyMfaRequest { challenge_token: challenge.challenge_token, code };
        platform.auth().await.verify_mfa(verify).await.expect("the seed opens under the new key alone");
        // A sign-in with a second factor is in the organization's trail as such.
        let entry = crate::sso::sign_in_entry(platform, &tenant, &tenant.admin.user_id, "password+mfa").await;
        assert_eq!(entry.rpc, "/complianceiq.auth.v1.AuthService/VerifyMfa");
    }
}

/// Redis is not a single point of failure: while it is down, signed-in people keep being
/// served (revocations come over the bus, rate limits fall back to per-process budgets), and
/// a metric says so until Redis is back.
mod redis_down_under_traffic {
    use std::panic::AssertUnwindSafe;

    use futures::FutureExt;
    use reqwest::{Method, StatusCode};

    use super::*;
    use crate::observability::sample;

    struct RedisServer {
        child: tokio::process::Child,
        port: u16,
    }

    impl RedisServer {
        async fn start(port: u16) -> Self {
            let child = tokio::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server (Debian's redis-server package; .ci/run installs it) must be on PATH");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                assert!(tokio::time::Instant::now() < deadline, "redis-server did not listen within five seconds");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Self { child, port }
        }

        async fn stop(mut self) {
            self.child.kill().await.expect("redis-server stops");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let redis = RedisServer::start(port).await;
        let platform = TestPlatform::start_with(crate::harness::Backend::Servers, |config| {
            config.cache.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        })
        .await;
        let outcome = AssertUnwindSafe(served_while_redis_is_down(&platform, redis)).catch_unwind().await;
        platform.stop().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    async fn served_while_redis_is_down(platform: &TestPlatform, redis: RedisServer) {
        let tenant = platform.tenant("Resilient").await;
        let base = format!("http://{}", platform.address("gateway"));
        let path = format!("/api/v1/organizations/{}", tenant.id());
        let read = || crate::gateway::rest_at(&base, Method::GET, &path, Some(tenant.token()), None);
        let (status, _, body) = read().await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(sample(&metrics(platform).await, "rate_limit_local_decisions_total"), 0.0);

        let port = redis.port;
        redis.stop().await;
        for attempt in 0..50 {
            let (status, headers, body) = read().await;
            assert_eq!(status, StatusCode::OK, "request {attempt} while Redis is down: {body}");
            assert!(headers.contains_key("ratelimit-remaining"), "limits still apply: {headers:?}");
        }
        // What Redis itself holds (lockouts, MFA challenges) still needs it: sign-in waits.
        let credentials = serde_json::json!({"email": tenant.admin.email, "password": crate::people::PASSWORD});
        let (status, _, body) =
            crate::gateway::rest_at(&base, Method::POST, "/api/v1/auth/login", None, Some(credentials)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let exposition = metrics(platform).await;
        assert_eq!(sample(&exposition, "dependency_degraded{dependency=\"redis\"}"), 1.0, "{exposition}");
        assert!(sample(&exposition, "rate_limit_local_decisions_total") > 0.0, "{exposition}");

        let redis = RedisServer::start(port).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, _, body) = read().await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if sample(&metrics(platform).await, "dependency_degraded{dependency=\"redis\"}") == 0.0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "still degraded 15 s after Redis came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        redis.stop().await;
    }
}
