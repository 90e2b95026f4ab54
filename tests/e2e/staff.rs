//! Platform staff (the design's Super Admin): accounts an operator makes (`complianceiq staff
//! add`, the same function here), always with a second factor, short tokens that open the
//! staff API and nothing of any tenant's; suspension that refuses an organization's members
//! until it is restored; a member's second factor reset on request; and every staff call,
//! reads included, in the organization's own audit trail with its reason.

use std::time::Duration;

use complianceiq_auth::totp;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::runtime;
use complianceiq_proto::complianceiq::auth::v1::{
    EnableMfaRequest, ForgotPasswordRequest, LoginRequest, LogoutRequest, RefreshRequest, ResetMemberMfaRequest,
    TokenPair, VerifyMfaRequest, login_response,
};
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::staff_service_client::StaffServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{
    CreateOrganizationRequest, GetOrganizationHealthRequest, GetOrganizationRequest, ListOrganizationsRequest,
    Organization, OrganizationState, RestoreOrganizationRequest, SuspendOrganizationRequest,
};
use tonic::Code;

use crate::harness::{TestPlatform, reason, violations};
use crate::people::{PASSWORD, Person, authorized, claims};
use crate::platform_tests;

platform_tests!(
    staff_sign_in_with_a_second_factor_and_reach_only_the_staff_api,
    a_suspended_organization_refuses_its_members_until_restored_and_its_trail_shows_what_support_did,
    staff_reset_a_members_second_factor_on_request,
);

const STAFF_EMAIL: &str = "support@complianceiq.example.com";

fn now_seconds() -> i64 {
    complianceiq_kit::auth::verifier::now_seconds()
}

/// A staff account made as the operator command makes it; returns its password and TOTP seed.
async fn add_staff(platform: &TestPlatform, email: &str) -> Result<(String, Vec<u8>), String> {
    let (database, secrets) =
        runtime::operator_access(&platform.config, &complianceiq_auth::module()).await.map_err(|e| e.to_string())?;
    let added = complianceiq_auth::staff::add(&database, &secrets, email, "Support Engineer").await;
    database.close().await;
    let added = added.map_err(|error| error.to_string())?;
    let secret = added.provisioning_uri.split("secret=").nth(1).unwrap().split('&').next().unwrap();
    Ok((added.password, crate::identity::decode_base32(secret)))
}

/// Signs staff in: password, then the code of the step after the last one used (a code is
/// good once).
async fn staff_login(platform: &TestPlatform, email: &str, password: &str, seed: &[u8], step: i64) -> TokenPair {
    let mut auth = platform.auth().await;
    let login = LoginRequest { email: email.into(), password: password.into(), organization_id: String::new() };
    let challenge = match auth.login(login).await.expect("staff login").into_inner().result {
        Some(login_response::Result::MfaChallenge(challenge)) => challenge.challenge_token,
        other => panic!("a staff login must ask for the second factor, got {other:?}"),
    };
    let code = totp::code_at(seed, step);
    let verified = auth.verify_mfa(VerifyMfaRequest { challenge_token: challenge, code }).await.expect("verify MFA");
    verified.into_inner().tokens.expect("tokens")
}

async fn staff_api(platform: &TestPlatform) -> StaffServiceClient<tonic::transport::Channel> {
    StaffServiceClient::new(platform.channel("organization").await)
}

/// Polls `check` until it holds, for at most 20 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn staff_sign_in_with_a_second_factor_and_reach_only_the_staff_api(platform: &TestPlatform) {
    let acme = platform.tenant("Acme Assurance").await;
    platform.tenant("Borealis Bank").await;
    // A tenant's email cannot become staff: staff belong to no organization.
    let refused = add_staff(platform, &acme.admin.email).await.unwrap_err();
    assert!(refused.contains("tenant account"), "{refused}");

    let (password, seed) = add_staff(platform, STAFF_EMAIL).await.unwrap();
    let tokens = staff_login(platform, STAFF_EMAIL, &password, &seed, now_seconds() / 30).await;
    let staff = claims(&tokens.access_token);
    assert_eq!(staff["staff"], true);
    assert!(staff["organization_id"].is_null(), "{staff}");
    assert_eq!(staff["roles"], serde_json::json!(["super_admin"]));
    assert_eq!(staff["permissions"], serde_json::json!([]));
    assert_eq!(staff["exp"].as_i64().unwrap() - staff["iat"].as_i64().unwrap(), 600, "staff tokens last 10 minutes");
    assert_eq!(tokens.expires_in, 600);
    assert!(claims(acme.token()).get("staff").is_none(), "tenant tokens carry no staff claim");
    let token = tokens.access_token.as_str();

    // Nothing of a tenant's API: not reading one, not founding one.
    let mut organizations = OrganizationServiceClient::new(platform.channel("organization").await);
    let read = organizations
        .get_organization(authorized(GetOrganizationRequest { org_id: acme.id().into() }, token))
        .await
        .unwrap_err();
    assert_eq!((read.code(), reason(&read).as_str()), (Code::PermissionDenied, "STAFF_TOKEN"));
    let founding = CreateOrganizationRequest {
        organization: Some(Organization { display_name: "Staff Corp".into(), ..Default::default() }),
    };
    let founded = organizations.create_organization(authorized(founding, token)).await.unwrap_err();
    assert_eq!(reason(&founded), "STAFF_TOKEN");

    // The directory across tenants, with a reason.
    let mut api = staff_api(platform).await;
    let unexplained = api
        .list_organizations(authorized(ListOrganizationsRequest { query: "acme".into(), ..Default::default() }, token))
        .await
        .unwrap_err();
    assert_eq!(unexplained.code(), Code::InvalidArgument);
    assert_eq!(violations(&unexplained), [("reason".to_string(), "REQUIRED".to_string())]);
    let search = |query: &str, state: OrganizationState| ListOrganizationsRequest {
        query: query.into(),
        state: state as i32,
        reason: "TICKET-1001 customer cannot find their workspace".into(),
        ..Default::default()
    };
    let found = api
        .list_organizations(authorized(search("ACME", OrganizationState::Unspecified), token))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = found.organizations.iter().map(|o| o.display_name.as_str()).collect();
    assert_eq!(names, ["Acme Assurance"]);
    let by_id = api.list_organizations(authorized(search(acme.id(), OrganizationState::Active), token)).await.unwrap();
    assert_eq!(by_id.into_inner().organizations.len(), 1);
    let everyone = api
        .list_organizations(authorized(
            ListOrganizationsRequest { page_size: 1, ..search("", OrganizationState::Unspecified) },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(everyone.organizations[0].display_name, "Borealis Bank", "newest first");
    let next = ListOrganizationsRequest {
        page_size: 1,
        page_token: everyone.next_page_token.clone(),
        ..search("", OrganizationState::Unspecified)
    };
    let second = api.list_organizations(authorized(next, token)).await.unwrap().into_inner();
    assert_eq!(second.organizations[0].display_name, "Acme Assurance");
    let suspended_only =
        api.list_organizations(authorized(search("", OrganizationState::Suspended), token)).await.unwrap().into_inner();
    assert!(suspended_only.organizations.is_empty());
    // Wildcards in the text are text.
    let literal = api.list_organizations(authorized(search("%", OrganizationState::Unspecified), token)).await.unwrap();
    assert!(literal.into_inner().organizations.is_empty());

    let health = api
        .get_organization_health(authorized(
            GetOrganizationHealthRequest {
                organization_id: acme.id().into(),
                reason: "TICKET-1001 checking the plan".into(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.organization.unwrap().display_name, "Acme Assurance");
    assert_eq!((health.active_members, health.pending_invitations), (1, 0));
    assert_eq!(health.usage.unwrap().members.unwrap().used, 1);
    assert!(health.subscription.is_some() && health.last_sync_time.is_none());
    let unknown = api
        .get_organization_health(authorized(
            GetOrganizationHealthRequest {
                organization_id: uuid::Uuid::new_v4().to_string(),
                reason: "TICKET-1001 checking the plan".into(),
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Searches across organizations are in the platform's own trail (the seven above, the
    // refused one included), as is the read of an organization that does not exist.
    let platform_trail =
        "SELECT count(*) FROM audit_logs WHERE organization_id = '00000000-0000-0000-0000-000000000000'";
    let searches = format!("{platform_trail} AND action = 'organizations.list'");
    platform.stored_count_reaches(DatabaseGroup::Audit, &searches, 7).await;
    let unknown_read = format!("{platform_trail} AND action = 'organization_health.get'");
    platform.stored_count_reaches(DatabaseGroup::Audit, &unknown_read, 1).await;

    // Staff passwords come from an operator, never from a mailed link.
    let mut auth = platform.auth().await;
    auth.forgot_password(ForgotPasswordRequest { email: STAFF_EMAIL.into() }).await.expect("the usual answer");
    let mailbox = platform.config.data_dir.join("mailbox");
    let mail = crate::people::mail_from_mailbox(&mailbox, STAFF_EMAIL, "Your ComplianceIQ staff password").await;
    assert!(mail.contains("complianceiq staff add") && !mail.contains("Token:"), "{mail}");

    // A staff session ends like anyone's.
    auth.logout(authorized(LogoutRequest { refresh_token: tokens.refresh_token.clone(), all_sessions: false }, token))
        .await
        .expect("staff log out");
    let refreshed = auth
        .refresh(RefreshRequest { refresh_token: tokens.refresh_token.clone(), organization_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(refreshed.code(), Code::Unauthenticated);
}

async fn a_suspended_organization_refuses_its_members_until_restored_and_its_trail_shows_what_support_did(
    platform: &TestPlatform,
) {
    let since = complianceiq_kit::time::now_micros();
    let tenant = platform.tenant("Cobalt Controls").await;
    let (member, _) = platform.member(&tenant, "analyst@cobalt.example.com", &[]).await;
    let (password, seed) = add_staff(platform, STAFF_EMAIL).await.unwrap();
    let staff = staff_login(platform, STAFF_EMAIL, &password, &seed, now_seconds() / 30).await;
    let (_, key) = crate::api_keys::create_key(platform, tenant.token(), "Partner", &["organizations:read"]).await;
    let read_with_key = || async {
        let url = format!("http://{}/api/v1/organizations/{}", platform.address("gateway"), tenant.id());
        let response = reqwest::Client::new().get(url).bearer_auth(&key).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(read_with_key().await.0, 200);

    // A tenant's own admin cannot suspend (or restore) anything.
    let mut api = staff_api(platform).await;
    let suspend = SuspendOrganizationRequest {
        organization_id: tenant.id().into(),
        reason: "TICKET-2002 payment fraud under review".into(),
    };
    let own = api.suspend_organization(authorized(suspend.clone(), tenant.token())).await.unwrap_err();
    assert_eq!(reason(&own), "STAFF_ONLY");

    // Staff suspend it through the edge, as a support tool would.
    let suspended: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/api/v1/staff/organizations/{}:suspend", platform.address("gateway"), tenant.id()))
        .bearer_auth(&staff.access_token)
        .header("content-type", "application/json")
        .body(serde_json::json!({"reason": suspend.reason}).to_string())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .map(|body| serde_json::from_str(&body).unwrap())
        .unwrap();
    assert_eq!(suspended["state"], "ORGANIZATION_STATE_SUSPENDED");
    let again = api.suspend_organization(authorized(suspend, &staff.access_token)).await.unwrap_err();
    assert_eq!((again.code(), reason(&again).as_str()), (Code::FailedPrecondition, "ALREADY_SUSPENDED"));

    // Its members' live tokens stop working, their sessions end, and sign-in refuses it.
    let get = |person: &Person| GetOrganizationRequest { org_id: person_org(person) };
    for person in [&tenant.admin, &member] {
        eventually("the suspension reaching live tokens", || async {
            let mut organizations = OrganizationServiceClient::new(platform.channel("organization").await);
            organizations
                .get_organization(authorized(get(person), person.token()))
                .await
                .is_err_and(|status| status.code() == Code::Unauthenticated && reason(&status) == "TOKEN_REVOKED")
        })
        .await;
        let refresh =
            RefreshRequest { refresh_token: person.tokens.refresh_token.clone(), organization_id: String::new() };
        let refused = platform.auth().await.refresh(refresh).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{}", person.email);
        let login = LoginRequest {
            email: person.email.clone(),
            password: PASSWORD.into(),
            organization_id: tenant.id().into(),
        };
        let refused = platform.auth().await.login(login).await.unwrap_err();
        assert_eq!((refused.code(), reason(&refused).as_str()), (Code::PermissionDenied, "ORGANIZATION_SUSPENDED"));
    }
    // Its API keys too: their live tokens are revoked and the next exchange is refused.
    eventually("the suspension reaching the API key", || async {
        let (status, body) = read_with_key().await;
        status == 403 && body.contains("ORGANIZATION_SUSPENDED")
    })
    .await;
    // Signing in without naming it gives a token for no organization, not for it.
    let login = LoginRequest { email: member.email.clone(), password: PASSWORD.into(), organization_id: String::new() };
    let tokens = match platform.auth().await.login(login).await.unwrap().into_inner().result {
        Some(login_response::Result::Tokens(tokens)) => tokens,
        other => panic!("{other:?}"),
    };
    assert!(tokens.organization_id.is_empty());
    let directory = api
        .list_organizations(authorized(
            ListOrganizationsRequest {
                state: OrganizationState::Suspended as i32,
                reason: "TICKET-2002 listing suspended accounts".into(),
                ..Default::default()
            },
            &staff.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(directory.organizations.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [tenant.id()]);

    // Restored, its members sign in to it again.
    let restore =
        RestoreOrganizationRequest { organization_id: tenant.id().into(), reason: "TICKET-2002 review cleared".into() };
    let restored = api.restore_organization(authorized(restore, &staff.access_token)).await.unwrap().into_inner();
    assert_eq!(restored.state(), OrganizationState::Active);
    let mut admin = tenant.admin.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let login =
            LoginRequest { email: admin.email.clone(), password: PASSWORD.into(), organization_id: tenant.id().into() };
        if let Ok(Some(login_response::Result::Tokens(tokens))) =
            platform.auth().await.login(login).await.map(|response| response.into_inner().result)
        {
            admin.tokens = tokens;
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no sign-in into the restored organization within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    eventually("the API key working again", || async { read_with_key().await.0 == 200 }).await;

    // The tenant sees each staff call, with who, why and how it ended; the refused attempt
    // of its own admin is there too.
    let entries = staff_entries(platform, admin.token(), since, 3).await;
    // Each entry is written in the background after its call: their order in the chain is
    // not the calls' order.
    let mut by_staff: Vec<(String, i32, String)> = entries
        .iter()
        .filter(|entry| entry.metadata.get("actor_role").map(String::as_str) == Some("platform_staff"))
        .map(|entry| {
            assert_eq!(entry.actor.as_ref().unwrap().email, STAFF_EMAIL);
            (entry.action.clone(), entry.status_code, entry.metadata["reason"].clone())
        })
        .collect();
    by_staff.sort();
    assert_eq!(
        by_staff,
        [
            ("organization.restore".to_string(), 0, "TICKET-2002 review cleared".to_string()),
            ("organization.suspend".to_string(), 0, "TICKET-2002 payment fraud under review".to_string()),
            (
                "organization.suspend".to_string(),
                Code::FailedPrecondition as i32,
                "TICKET-2002 payment fraud under review".to_string()
            ),
        ],
        "{entries:#?}"
    );
    assert!(
        entries.iter().any(|entry| entry.action == "organization.suspend"
            && entry.status_code == Code::PermissionDenied as i32
            && entry.actor.as_ref().unwrap().email == tenant.admin.email),
        "{entries:#?}"
    );
    // The search across organizations went to the platform's trail, not this one.
    assert!(!entries.iter().any(|entry| entry.action.starts_with("organizations.list")), "{entries:#?}");
}

/// The trail as `token` reads it from `since`, once it holds `count` entries of staff calls
/// (they are written after each call, in the background).
async fn staff_entries(
    platform: &TestPlatform,
    token: &str,
    since: i64,
    count: usize,
) -> Vec<complianceiq_proto::complianceiq::audit::v1::AuditLog> {
    let is_staff = |entry: &complianceiq_proto::complianceiq::audit::v1::AuditLog| {
        entry.metadata.get("actor_role").map(String::as_str) == Some("platform_staff")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let entries = crate::audit::trail(platform, token, since, 0).await;
        if entries.iter().filter(|entry| is_staff(entry)).count() >= count {
            return entries;
        }
        assert!(tokio::time::Instant::now() < deadline, "{count} staff entries not in the trail after 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn person_org(person: &Person) -> String {
    claims(person.token())["organization_id"].as_str().unwrap_or_default().to_string()
}

async fn staff_reset_a_members_second_factor_on_request(platform: &TestPlatform) {
    let since = complianceiq_kit::time::now_micros();
    let tenant = platform.tenant("Delta Diligence").await;
    let other = platform.tenant("Echo Ethics").await;
    let (member, _) = platform.member(&tenant, "auditor@delta.example.com", &[]).await;
    let mut auth = platform.auth().await;
    let enrollment =
        auth.enable_mfa(authorized(EnableMfaRequest { password: PASSWORD.into() }, member.token())).await.unwrap();
    let member_seed = crate::identity::decode_base32(&enrollment.into_inner().secret);
    let code = totp::code_at(&member_seed, now_seconds() / 30);
    auth.verify_mfa(authorized(VerifyMfaRequest { challenge_token: String::new(), code }, member.token()))
        .await
        .unwrap();

    let (password, seed) = add_staff(platform, STAFF_EMAIL).await.unwrap();
    let staff = staff_login(platform, STAFF_EMAIL, &password, &seed, now_seconds() / 30).await;
    let reset = |organization: &str| ResetMemberMfaRequest {
        organization_id: organization.into(),
        user_id: member.user_id.clone(),
        reason: "TICKET-3003 lost phone, identity checked by the org admin".into(),
    };
    // Only through an organization the person belongs to.
    let elsewhere = auth.reset_member_mfa(authorized(reset(other.id()), &staff.access_token)).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);
    let unexplained = ResetMemberMfaRequest { reason: "lost".into(), ..reset(tenant.id()) };
    let unexplained = auth.reset_member_mfa(authorized(unexplained, &staff.access_token)).await.unwrap_err();
    assert_eq!(violations(&unexplained), [("reason".to_string(), "REQUIRED".to_string())]);

    let done = auth.reset_member_mfa(authorized(reset(tenant.id()), &staff.access_token)).await.unwrap().into_inner();
    assert!(!done.account.unwrap().mfa_enabled);
    assert!(done.sessions_revoked >= 1);
    // Signed out everywhere, told by mail, and back in with the password alone.
    let refresh = RefreshRequest { refresh_token: member.tokens.refresh_token.clone(), organization_id: String::new() };
    assert_eq!(auth.refresh(refresh).await.unwrap_err().code(), Code::Unauthenticated);
    let mailbox = platform.config.data_dir.join("mailbox");
    let mail =
        crate::people::mail_from_mailbox(&mailbox, &member.email, "Two-factor authentication was turned off").await;
    assert!(mail.contains("TICKET-3003"), "{mail}");
    let login =
        LoginRequest { email: member.email.clone(), password: PASSWORD.into(), organization_id: tenant.id().into() };
    match auth.login(login).await.unwrap().into_inner().result {
        Some(login_response::Result::Tokens(tokens)) => assert_eq!(tokens.organization_id, tenant.id()),
        other => panic!("expected tokens without a challenge, got {other:?}"),
    }
    // A second reset has nothing to reset.
    let twice = auth.reset_member_mfa(authorized(reset(tenant.id()), &staff.access_token)).await.unwrap_err();
    assert_eq!(reason(&twice), "MFA_NOT_ENABLED");

    let entries = staff_entries(platform, tenant.token(), since, 1).await;
    let resets: Vec<&str> = entries
        .iter()
        .filter(|entry| entry.rpc.ends_with("/ResetMemberMfa") && entry.status_code == 0)
        .map(|entry| entry.metadata["reason"].as_str())
        .collect();
    assert_eq!(resets, ["TICKET-3003 lost phone, identity checked by the org admin"], "{entries:#?}");
    // The attempt through Echo named no member of Echo's: refused as not found, it went to the
    // platform's trail, and nothing of Delta's member shows in Echo's.
    let echo = crate::audit::trail(platform, other.token(), since, 0).await;
    assert!(!echo.iter().any(|entry| entry.metadata.get("reason").is_some_and(|r| r.contains("TICKET-3003"))));
}
