//! Single sign-on end to end against a real OpenID Connect provider and a SAML identity
//! provider the test starts (identity_provider.rs), driven as a browser drives it: the edge's redirects followed by
//! hand, the binding cookie carried, the console's ticket exchanged. Domains are verified
//! through a DNS server the test runs.

use std::sync::Arc;

use base64::Engine;

use complianceiq_kit::config::PlatformConfig;
use complianceiq_proto::complianceiq::audit::v1::audit_service_client::AuditServiceClient;
use complianceiq_proto::complianceiq::audit::v1::{AuditLog, ListAuditLogsRequest};
use complianceiq_proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use complianceiq_proto::complianceiq::auth::v1::{
    AddSsoDomainRequest, GetSsoConfigRequest, GroupRoleMapping, LoginRequest, OidcProvider as OidcSettings,
    RefreshRequest, SamlProvider as SamlSettings, SsoConfig, SsoDomain, TokenPair, UpdateSsoConfigRequest,
    VerifySsoDomainRequest, login_response, sso_config,
};
use complianceiq_proto::complianceiq::organization::v1::ListMembersRequest;
use complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient;
use complianceiq_proto::complianceiq::user::v1::{
    ApplyProviderRolesRequest, CreateRoleRequest, ListRolesRequest, Role,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::{TestPlatform, reason, unique_suffix, violations};
use crate::identity_provider::{
    CLIENT_ID, CLIENT_SECRET, Misbehaviour, OidcProvider, ProviderUser, SamlMisbehaviour, SamlPost, SamlProvider,
    TestDns,
};
use crate::people::{PASSWORD, Tenant, authorized, claims};

fn configure(config: &mut PlatformConfig) {
    config.sso.dns_server = Some(TestDns::get().address);
}

mod people_sign_in_through_their_organizations_provider {
    crate::configured_platform_tests!(super::configure, super::people_sign_in_through_their_organizations_provider);
}

mod forged_replayed_and_misdirected_sign_ins_are_refused {
    crate::configured_platform_tests!(super::configure, super::forged_replayed_and_misdirected_sign_ins_are_refused);
}

fn start_url(gateway: &str, email: &str) -> String {
    let email: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
    format!("{gateway}/api/v1/auth/sso/start?email={email}")
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn location(response: &reqwest::Response) -> url::Url {
    let location = response.headers().get("location").unwrap_or_else(|| panic!("no redirect: {response:?}"));
    url::Url::parse(location.to_str().unwrap()).unwrap()
}

/// What the console's `/sso` page is given in its URL fragment.
fn fragment(url: &url::Url) -> std::collections::HashMap<String, String> {
    assert_eq!(url.path(), "/sso", "the callback sends the browser to the console: {url}");
    url::form_urlencoded::parse(url.fragment().unwrap_or_default().as_bytes()).into_owned().collect()
}

/// One browser sign-in: StartSso → provider → callback; returns the console's fragment and
/// the callback's path and query (to replay it).
struct SignIn {
    outcome: std::collections::HashMap<String, String>,
    callback: String,
    cookie: String,
}

async fn sign_in(platform: &TestPlatform, email: &str) -> SignIn {
    let gateway = format!("http://{}", platform.address("gateway"));
    let http = browser();
    let start = http.get(start_url(&gateway, email)).send().await.unwrap();
    assert_eq!(start.status(), 303, "StartSso redirects: {:?}", start.text().await);
    let cookie = start
        .headers()
        .get("set-cookie")
        .expect("StartSso binds the browser")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let at_provider = location(&start);
    assert_eq!(
        at_provider.query_pairs().find(|(k, _)| k == "login_hint").map(|(_, v)| v.into_owned()).as_deref(),
        Some(email)
    );
    let back = http.get(at_provider).send().await.unwrap();
    let back = location(&back);
    // The provider sends the browser to the registered redirect URI (the public URL); the
    // test's edge listens elsewhere.
    let callback = format!("{}?{}", back.path(), back.query().unwrap_or_default());
    let finished = http.get(format!("{gateway}{callback}")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(finished.status(), 303);
    SignIn { outcome: fragment(&location(&finished)), callback, cookie }
}

async fn exchange(platform: &TestPlatform, ticket: &str) -> (u16, serde_json::Value) {
    let gateway = format!("http://{}", platform.address("gateway"));
    let response = browser()
        .post(format!("{gateway}/api/v1/auth/sso/token"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "ticket": ticket }).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
}

async fn signed_in(platform: &TestPlatform, email: &str) -> TokenPair {
    let attempt = sign_in(platform, email).await;
    let ticket = attempt.outcome.get("ticket").unwrap_or_else(|| panic!("{email} refused: {:?}", attempt.outcome));
    let (status, body) = exchange(platform, ticket).await;
    assert_eq!(status, 200, "{body}");
    TokenPair {
        access_token: body["accessToken"].as_str().unwrap().into(),
        refresh_token: body["refreshToken"].as_str().unwrap().into(),
        organization_id: body["organizationId"].as_str().unwrap_or_default().into(),
        ..Default::default()
    }
}

fn person(email: &str, groups: &[&str]) -> ProviderUser {
    ProviderUser {
        subject: format!("sub-{email}"),
        email: email.into(),
        name: "Pat Example".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        email_verified: true,
    }
}

fn oidc(provider: &OidcProvider, secret: &str) -> Option<sso_config::Provider> {
    Some(sso_config::Provider::Oidc(OidcSettings {
        issuer: provider.issuer.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: secret.into(),
        ..Default::default()
    }))
}

async fn update(
    auth: &mut AuthServiceClient<Channel>,
    tenant: &Tenant,
    config: SsoConfig,
) -> Result<SsoConfig, tonic::Status> {
    auth.update_sso_config(authorized(
        UpdateSsoConfigRequest { org_id: tenant.id().into(), config: Some(config) },
        tenant.token(),
    ))
    .await
    .map(|response| response.into_inner())
}

/// Claims `domain` for the tenant and publishes its TXT record; returns it verified.
async fn verified_domain(auth: &mut AuthServiceClient<Channel>, tenant: &Tenant, domain: &str) -> SsoDomain {
    let claimed = auth
        .add_sso_domain(authorized(
            AddSsoDomainRequest { org_id: tenant.id().into(), domain: domain.into() },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let verify = VerifySsoDomainRequest { org_id: tenant.id().into(), domain: domain.into() };
    let early = auth.verify_sso_domain(authorized(verify.clone(), tenant.token())).await.unwrap_err();
    assert_eq!((early.code(), reason(&early).as_str()), (Code::FailedPrecondition, "DOMAIN_NOT_VERIFIED"));
    TestDns::get().publish_txt(&claimed.verification_record_name, &claimed.verification_record_value);
    let verified = auth.verify_sso_domain(authorized(verify, tenant.token())).await.unwrap().into_inner();
    assert!(verified.verified);
    verified
}

async fn role_id(platform: &TestPlatform, tenant: &Tenant, name: &str) -> String {
    let mut users = UserServiceClient::new(platform.channel("user").await);
    let roles = users.list_roles(authorized(ListRolesRequest::default(), tenant.token())).await.unwrap().into_inner();
    roles.roles.into_iter().find(|role| role.name == name).map(|role| role.id).unwrap()
}

async fn password_login(platform: &TestPlatform, email: &str) -> Result<TokenPair, tonic::Status> {
    let login = LoginRequest { email: email.into(), password: PASSWORD.into(), organization_id: String::new() };
    platform.auth().await.login(login).await.map(|response| match response.into_inner().result {
        Some(login_response::Result::Tokens(tokens)) => tokens,
        other => panic!("expected tokens, got {other:?}"),
    })
}

async fn people_sign_in_through_their_organizations_provider(platform: &TestPlatform) {
    let provider = OidcProvider::start().await;
    let acme = platform.tenant("Acme Identity").await;
    let mut auth = platform.auth().await;
    let domain = format!("acme-{}.test", unique_suffix());

    // Configuration is checked before it is kept.
    let bad = SsoConfig {
        provider: Some(sso_config::Provider::Oidc(OidcSettings::default())),
        default_role_ids: vec!["not-a-role".into()],
        ..Default::default()
    };
    let refused = update(&mut auth, &acme, bad).await.unwrap_err();
    let fields = violations(&refused);
    for field in
        ["config.oidc.issuer", "config.oidc.client_id", "config.oidc.client_secret", "config.default_role_ids[0]"]
    {
        assert!(fields.iter().any(|(f, _)| f == field), "{field} in {fields:?}");
    }
    let nowhere = SsoConfig {
        provider: Some(sso_config::Provider::Oidc(OidcSettings {
            issuer: "http://127.0.0.1:9/realms/none".into(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let refused = update(&mut auth, &acme, nowhere).await.unwrap_err();
    assert_eq!(reason(&refused), "IDENTITY_PROVIDER_ERROR", "{refused:?}");
    let premature = SsoConfig { provider: oidc(&provider, CLIENT_SECRET), require_sso: true, ..Default::default() };
    assert_eq!(reason(&update(&mut auth, &acme, premature).await.unwrap_err()), "NO_VERIFIED_DOMAIN");

    // The domain is proven by DNS, and only one organization may have it.
    verified_domain(&mut auth, &acme, &domain).await;
    let globex = platform.tenant("Globex Identity").await;
    let theirs = auth
        .add_sso_domain(authorized(
            AddSsoDomainRequest { org_id: globex.id().into(), domain: domain.clone() },
            globex.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    TestDns::get().publish_txt(&theirs.verification_record_name, &theirs.verification_record_value);
    let taken = auth
        .verify_sso_domain(authorized(
            VerifySsoDomainRequest { org_id: globex.id().into(), domain: domain.clone() },
            globex.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&taken), "DOMAIN_CLAIMED");

    // An existing password member, before single sign-on is required.
    let bob_email = format!("bob@{domain}");
    let (bob, _) = platform.member(&acme, &bob_email, &[]).await;
    // A password sign-in into the organization is in its trail too.
    assert_eq!(password_login(platform, &bob_email).await.unwrap().organization_id, acme.id());
    let bob_entry = sign_in_entry(platform, &acme, &bob.user_id, "password").await;
    assert_eq!(bob_entry.rpc, "/complianceiq.auth.v1.AuthService/Login");

    let analyst = role_id(platform, &acme, "Analyst").await;
    let config = SsoConfig {
        provider: oidc(&provider, CLIENT_SECRET),
        group_role_mappings: vec![GroupRoleMapping { group: "grc-analysts".into(), role_ids: vec![analyst.clone()] }],
        ..Default::default()
    };
    let saved = update(&mut auth, &acme, config).await.unwrap();
    let Some(sso_config::Provider::Oidc(settings)) = &saved.provider else { panic!("{saved:?}") };
    assert!(settings.client_secret.is_empty() && settings.client_secret_set, "the secret is never returned");
    assert!(saved.redirect_uri.ends_with("/api/v1/auth/sso/oidc/callback"));

    // Another tenant sees nothing of it.
    let foreign = auth
        .get_sso_config(authorized(GetSsoConfigRequest { org_id: acme.id().into() }, globex.token()))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);
    let own = auth
        .get_sso_config(authorized(GetSsoConfigRequest { org_id: globex.id().into() }, globex.token()))
        .await
        .unwrap()
        .into_inner();
    assert!(own.provider.is_none() && own.domains.iter().all(|d| !d.verified), "{own:?}");

    // A first sign-in makes the person and their membership, with their group's role.
    let alice_email = format!("alice@{domain}");
    provider.sign_in_as(person(&alice_email, &["grc-analysts", "unmapped"]));
    let alice = signed_in(platform, &alice_email).await;
    assert_eq!(alice.organization_id, acme.id());
    let alice_claims = claims(&alice.access_token);
    assert_eq!(alice_claims["email"], alice_email.as_str());
    assert_eq!(alice_claims["roles"], serde_json::json!(["Analyst"]), "{alice_claims}");
    let members = platform
        .organizations()
        .await
        .list_members(authorized(ListMembersRequest { org_id: acme.id().into(), ..Default::default() }, acme.token()))
        .await
        .unwrap()
        .into_inner();
    assert!(members.members.iter().any(|m| m.email == alice_email), "{members:?}");
    // Her tokens are the platform's own: they refresh, asking the provider each time (its
    // discovery document reused: only the grant is asked).
    let (before, discovered) = (provider.refreshes(), provider.discoveries());
    let alice =
        auth.refresh(RefreshRequest { refresh_token: alice.refresh_token, ..Default::default() }).await.unwrap();
    let alice = alice.into_inner();
    assert_eq!(provider.refreshes(), before + 1);
    assert_eq!(provider.discoveries(), discovered, "a refresh reuses the provider's metadata");

    // Her groups drive the mapped roles at each sign-in: out of the group, the role goes (the
    // token issued then already lacks it); back in, it returns.
    provider.sign_in_as(person(&alice_email, &["unmapped"]));
    let moved = signed_in(platform, &alice_email).await;
    assert_eq!(claims(&moved.access_token)["roles"], serde_json::json!([]), "left grc-analysts");
    provider.sign_in_as(person(&alice_email, &["grc-analysts"]));
    let back = signed_in(platform, &alice_email).await;
    assert_eq!(claims(&back.access_token)["roles"], serde_json::json!(["Analyst"]), "back in grc-analysts");

    // Required single sign-on stops password sign-ins and password sessions.
    let config = SsoConfig { provider: oidc(&provider, ""), require_sso: true, ..Default::default() };
    assert!(update(&mut auth, &acme, config).await.unwrap().require_sso, "an empty secret keeps the stored one");
    let refused = password_login(platform, &bob_email).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "SSO_REQUIRED"));
    let refused = auth
        .refresh(RefreshRequest { refresh_token: bob.tokens.refresh_token.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "SSO_REQUIRED");
    // Bob signs in through the provider into the account and membership he has.
    provider.sign_in_as(person(&bob_email, &[]));
    let bob_sso = signed_in(platform, &bob_email).await;
    assert_eq!(claims(&bob_sso.access_token)["user_id"], bob.user_id.as_str());
    // The admin of another organization is not affected.
    password_login(platform, &globex.admin.email).await.expect("Globex has no single sign-on");

    // Disabled at the provider: access ends at the next refresh.
    provider.disable(&alice_email);
    let ended = auth
        .refresh(RefreshRequest { refresh_token: alice.refresh_token.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((ended.code(), reason(&ended).as_str()), (Code::Unauthenticated, "SSO_ACCESS_ENDED"));
    let again = auth.refresh(RefreshRequest { refresh_token: alice.refresh_token, ..Default::default() }).await;
    assert_eq!(again.unwrap_err().code(), Code::Unauthenticated, "the session stays ended");
    provider.sign_in_as(person(&alice_email, &["grc-analysts"]));
    let attempt = sign_in(platform, &alice_email).await;
    assert_eq!(attempt.outcome.get("error").map(String::as_str), Some("SSO_PROVIDER_DENIED"));
}

async fn forged_replayed_and_misdirected_sign_ins_are_refused(platform: &TestPlatform) {
    let provider: Arc<OidcProvider> = OidcProvider::start().await;
    let tenant = platform.tenant("Initech Identity").await;
    let mut auth = platform.auth().await;
    let domain = format!("initech-{}.test", unique_suffix());
    verified_domain(&mut auth, &tenant, &domain).await;
    update(&mut auth, &tenant, SsoConfig { provider: oidc(&provider, CLIENT_SECRET), ..Default::default() })
        .await
        .unwrap();
    let email = format!("dana@{domain}");
    provider.sign_in_as(person(&email, &[]));

    let refusal = |attempt: &SignIn| attempt.outcome.get("error").cloned().unwrap_or_default();
    for (misbehaviour, what) in [
        (Misbehaviour { forged_signature: true, ..Default::default() }, "a forged signature"),
        (Misbehaviour { audience: Some("someone-else".into()), ..Default::default() }, "a wrong audience"),
        (Misbehaviour { nonce: Some("replayed-nonce".into()), ..Default::default() }, "another sign-in's nonce"),
    ] {
        provider.misbehave(misbehaviour);
        assert_eq!(refusal(&sign_in(platform, &email).await), "SSO_TOKEN_REFUSED", "{what}");
    }
    provider.misbehave(Misbehaviour::default());
    provider.sign_in_as(ProviderUser { email_verified: false, ..person(&email, &[]) });
    assert_eq!(refusal(&sign_in(platform, &email).await), "SSO_TOKEN_REFUSED", "an unverified email");
    // An address outside the organization's verified domains.
    provider.sign_in_as(person("mallory@elsewhere.test", &[]));
    assert_eq!(refusal(&sign_in(platform, &email).await), "SSO_EMAIL_DOMAIN");
    assert_eq!(
        platform
            .stored_count(
                complianceiq_kit::config::DatabaseGroup::Auth,
                "SELECT COUNT(*) FROM accounts WHERE email = 'mallory@elsewhere.test'"
            )
            .await,
        0,
        "a refused sign-in makes no account"
    );

    // A good sign-in; its callback replayed, its ticket redeemed twice.
    provider.sign_in_as(person(&email, &[]));
    let good = sign_in(platform, &email).await;
    let ticket = good.outcome.get("ticket").expect("signed in").clone();
    let gateway = format!("http://{}", platform.address("gateway"));
    let replayed =
        browser().get(format!("{gateway}{}", good.callback)).header("cookie", &good.cookie).send().await.unwrap();
    assert_eq!(fragment(&location(&replayed)).get("error").map(String::as_str), Some("SSO_STATE_INVALID"));
    assert_eq!(exchange(platform, &ticket).await.0, 200);
    let (status, body) = exchange(platform, &ticket).await;
    assert_eq!(status, 401, "{body}");

    // A callback in another browser (no binding cookie) is refused: login CSRF.
    let http = browser();
    let start = http.get(start_url(&gateway, &email)).send().await.unwrap();
    let back = location(&http.get(location(&start)).send().await.unwrap());
    let elsewhere = http.get(format!("{gateway}{}?{}", back.path(), back.query().unwrap())).send().await.unwrap();
    assert_eq!(fragment(&location(&elsewhere)).get("error").map(String::as_str), Some("SSO_BROWSER_MISMATCH"));

    // Unknown domains and bad requests get clear answers.
    let unknown = browser().get(start_url(&gateway, "someone@unconfigured.test")).send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("SSO_NOT_CONFIGURED"));
    let empty = browser().get(format!("{gateway}/api/v1/auth/sso/start")).send().await.unwrap();
    assert_eq!(empty.status(), 400);
}

mod saml_sign_in_accepts_only_signed_fresh_assertions_for_this_service {
    crate::configured_platform_tests!(
        super::configure,
        super::saml_sign_in_accepts_only_signed_fresh_assertions_for_this_service
    );
}

/// The tenant's audit entry of `user_id`'s latest sign-in by `method`, once the audit service
/// has it.
pub(crate) async fn sign_in_entry(platform: &TestPlatform, tenant: &Tenant, user_id: &str, method: &str) -> AuditLog {
    let mut trail = AuditServiceClient::new(platform.channel("audit").await);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let request = ListAuditLogsRequest { action: "session.sign_in".into(), ..Default::default() };
        let entries = trail.list_audit_logs(authorized(request, tenant.token())).await.unwrap().into_inner();
        if let Some(entry) = entries.audit_logs.into_iter().find(|entry| {
            entry.actor.as_ref().is_some_and(|actor| actor.user_id == user_id)
                && entry.metadata.get("method").is_some_and(|used| used == method)
        }) {
            return entry;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {method} sign-in entry for {user_id} after 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn saml(provider: &SamlProvider) -> Option<sso_config::Provider> {
    Some(sso_config::Provider::Saml(SamlSettings { idp_metadata_xml: provider.metadata(), ..Default::default() }))
}

/// One SAML sign-in as a browser makes it: StartSso → the provider (its AuthnRequest read and
/// answered) → the provider's form posted to the assertion consumer service with the cookie.
/// Returns the console's fragment and the posted form (to replay it).
async fn saml_sign_in(
    platform: &TestPlatform,
    provider: &SamlProvider,
    user: &ProviderUser,
    knobs: &SamlMisbehaviour,
) -> (std::collections::HashMap<String, String>, SamlPost, String) {
    let gateway = format!("http://{}", platform.address("gateway"));
    let http = browser();
    let start = http.get(start_url(&gateway, &user.email)).send().await.unwrap();
    assert_eq!(start.status(), 303, "StartSso redirects: {:?}", start.text().await);
    let set_cookie = start.headers().get("set-cookie").expect("StartSso binds the browser").to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "over http: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let post = provider.respond(&location(&start), user, knobs);
    assert!(post.acs_url.path().ends_with("/api/v1/auth/sso/saml/acs"), "{}", post.acs_url);
    let outcome = acs(&gateway, &post, Some(&cookie)).await;
    (outcome, post, cookie)
}

async fn acs(gateway: &str, post: &SamlPost, cookie: Option<&str>) -> std::collections::HashMap<String, String> {
    let mut request = browser()
        .post(format!("{gateway}{}", post.acs_url.path()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(post.form());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let finished = request.send().await.unwrap();
    assert_eq!(finished.status(), 303, "{:?}", finished.text().await);
    fragment(&location(&finished))
}

async fn saml_sign_in_accepts_only_signed_fresh_assertions_for_this_service(platform: &TestPlatform) {
    let mut provider = SamlProvider::start();
    let tenant = platform.tenant("Umbrella Identity").await;
    let mut auth = platform.auth().await;
    let domain = format!("umbrella-{}.test", unique_suffix());
    verified_domain(&mut auth, &tenant, &domain).await;

    // Metadata that is not an identity provider's, or lacks what a sign-in needs, is refused.
    for (metadata, what) in [
        ("not xml".to_string(), "garbage"),
        (provider.metadata().replace("HTTP-Redirect", "HTTP-Artifact"), "no redirect binding"),
        (provider.metadata().replace("use=\"signing\"", "use=\"encryption\""), "no signing certificate"),
    ] {
        let config = SsoConfig {
            provider: Some(sso_config::Provider::Saml(SamlSettings {
                idp_metadata_xml: metadata,
                ..Default::default()
            })),
            ..Default::default()
        };
        let refused = update(&mut auth, &tenant, config).await.unwrap_err();
        let fields = violations(&refused);
        assert!(fields.iter().any(|(f, _)| f == "config.saml.idp_metadata_xml"), "{what}: {fields:?}");
    }
    // The roles a configuration grants must be the organization's, and ones its admin could
    // grant: someone who may change the organization but not hold its admin role cannot map
    // a group to it.
    let unknown = SsoConfig {
        provider: saml(&provider),
        group_role_mappings: vec![GroupRoleMapping {
            group: "x".into(),
            role_ids: vec!["01800000-0000-7000-8000-000000000000".into()],
        }],
        ..Default::default()
    };
    let refused = update(&mut auth, &tenant, unknown).await.unwrap_err();
    assert_eq!(violations(&refused), [("config.group_role_mappings[0].role_ids[0]".into(), "NOT_FOUND".into())]);
    let mut users = UserServiceClient::new(platform.channel("user").await);
    let manager = Role {
        name: "SSO manager".into(),
        permissions: vec!["organizations:update".into(), "users:read".into()],
        ..Default::default()
    };
    let manager = users
        .create_role(authorized(CreateRoleRequest { role: Some(manager) }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    let (manager, _) = platform.member(&tenant, &format!("it-{}@example.com", unique_suffix()), &[manager.id]).await;
    let escalation = SsoConfig {
        provider: saml(&provider),
        group_role_mappings: vec![GroupRoleMapping {
            group: "it".into(),
            role_ids: vec![role_id(platform, &tenant, "Organization Admin").await],
        }],
        ..Default::default()
    };
    let refused = auth
        .update_sso_config(authorized(
            UpdateSsoConfigRequest { org_id: tenant.id().into(), config: Some(escalation) },
            manager.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::PermissionDenied, "CANNOT_GRANT"), "{refused:?}");

    let viewer = role_id(platform, &tenant, "Viewer").await;
    let config = SsoConfig {
        provider: saml(&provider),
        group_role_mappings: vec![GroupRoleMapping { group: "grc-auditors".into(), role_ids: vec![viewer] }],
        ..Default::default()
    };
    let saved = update(&mut auth, &tenant, config).await.unwrap();
    let Some(sso_config::Provider::Saml(settings)) = &saved.provider else { panic!("{saved:?}") };
    assert_eq!(settings.idp_entity_id, provider.entity_id);
    assert!(settings.sp_entity_id.ends_with(&format!("/api/v1/auth/sso/saml/{}/metadata", tenant.id())));
    assert!(settings.acs_url.ends_with("/api/v1/auth/sso/saml/acs"));

    // The service provider metadata an admin gives the identity provider.
    let gateway = format!("http://{}", platform.address("gateway"));
    let metadata =
        browser().get(format!("{gateway}/api/v1/auth/sso/saml/{}/metadata", tenant.id())).send().await.unwrap();
    assert_eq!(metadata.status(), 200);
    assert_eq!(metadata.headers()["content-type"], "application/samlmetadata+xml");
    let metadata = metadata.text().await.unwrap();
    assert!(metadata.contains(&format!("entityID=\"{}\"", settings.sp_entity_id)), "{metadata}");
    assert!(metadata.contains(&settings.acs_url) && metadata.contains("WantAssertionsSigned=\"true\""), "{metadata}");
    let bad = browser().get(format!("{gateway}/api/v1/auth/sso/saml/not-an-id/metadata")).send().await.unwrap();
    assert_eq!(bad.status(), 400);

    // A first sign-in: the person is made a member with the role of their group.
    let email = format!("jill@{domain}");
    let jill = person(&email, &["grc-auditors", "staff"]);
    let (outcome, used, cookie) = saml_sign_in(platform, &provider, &jill, &SamlMisbehaviour::default()).await;
    let ticket = outcome.get("ticket").unwrap_or_else(|| panic!("refused: {outcome:?}"));
    let (status, body) = exchange(platform, ticket).await;
    assert_eq!(status, 200, "{body}");
    let token = claims(body["accessToken"].as_str().unwrap());
    assert_eq!(token["email"], email.as_str());
    assert_eq!(body["organizationId"], tenant.id());
    assert_eq!(token["roles"], serde_json::json!(["Viewer"]), "{token}");
    let members = platform
        .organizations()
        .await
        .list_members(authorized(
            ListMembersRequest { org_id: tenant.id().into(), ..Default::default() },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(members.members.iter().any(|m| m.email == email), "{members:?}");
    // The organization's trail shows the sign-in, its protocol and the roles it came in with.
    let user_id = token["user_id"].as_str().unwrap().to_string();
    let entry = sign_in_entry(platform, &tenant, &user_id, "saml").await;
    assert_eq!(entry.metadata["roles"], "Viewer");
    assert_eq!(entry.rpc, "/complianceiq.auth.v1.AuthService/FinishSamlSso");
    // The session refreshes within the provider's session (SAML has no back channel to ask).
    let refresh = RefreshRequest { refresh_token: body["refreshToken"].as_str().unwrap().into(), ..Default::default() };
    auth.refresh(refresh).await.expect("within SessionNotOnOrAfter");

    // When the provider's session ends, so does the platform's: its refresh sends the person
    // back to the provider.
    let session = std::time::Duration::from_secs(3);
    let short = SamlMisbehaviour { session_seconds: Some(session.as_secs() as i64), ..Default::default() };
    let signing_in = tokio::time::Instant::now();
    let (outcome, _, _) = saml_sign_in(platform, &provider, &jill, &short).await;
    let (status, body) = exchange(platform, outcome.get("ticket").unwrap_or_else(|| panic!("{outcome:?}"))).await;
    assert_eq!(status, 200, "{body}");
    let refresh_token = body["refreshToken"].as_str().unwrap().to_string();
    tokio::time::sleep_until(signing_in + session + std::time::Duration::from_millis(200)).await;
    let ended = auth.refresh(RefreshRequest { refresh_token, ..Default::default() }).await.unwrap_err();
    assert_eq!((ended.code(), reason(&ended).as_str()), (Code::Unauthenticated, "SSO_REAUTHENTICATE"));

    // Replayed: the same post again, and the captured response in a new sign-in.
    let again = acs(&gateway, &used, Some(&cookie)).await;
    assert_eq!(again.get("error").map(String::as_str), Some("SSO_STATE_INVALID"), "{again:?}");
    let http = browser();
    let start = http.get(start_url(&gateway, &email)).send().await.unwrap();
    let fresh = provider.respond(&location(&start), &jill, &SamlMisbehaviour::default());
    let cookie = start.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let replayed = SamlPost { relay_state: fresh.relay_state.clone(), ..used };
    let refused = acs(&gateway, &replayed, Some(&cookie)).await;
    assert_eq!(refused.get("error").map(String::as_str), Some("SAML_RESPONSE_INVALID"), "{refused:?}");
    assert!(refused["message"].contains("does not answer this sign-in"), "{refused:?}");
    // Posted from another browser (no binding cookie).
    let start = http.get(start_url(&gateway, &email)).send().await.unwrap();
    let elsewhere = provider.respond(&location(&start), &jill, &SamlMisbehaviour::default());
    let refused = acs(&gateway, &elsewhere, None).await;
    assert_eq!(refused.get("error").map(String::as_str), Some("SSO_BROWSER_MISMATCH"), "{refused:?}");

    // Forged, tampered, unsigned, misdirected and stale assertions.
    for (knobs, what, says) in [
        (SamlMisbehaviour { forged_signature: true, ..Default::default() }, "a forged signature", "not signed"),
        (
            SamlMisbehaviour { tampered_email: Some(format!("mallory@{domain}")), ..Default::default() },
            "an assertion changed after signing",
            "changed after signing",
        ),
        (SamlMisbehaviour { unsigned: true, ..Default::default() }, "no signature", "not signed"),
        (
            SamlMisbehaviour { audience: Some("https://another-service.example.test".into()), ..Default::default() },
            "a wrong audience",
            "another service",
        ),
        (SamlMisbehaviour { expired_seconds_ago: Some(600), ..Default::default() }, "an expired assertion", "expired"),
        (SamlMisbehaviour { unrestricted: true, ..Default::default() }, "no audience restriction", "not restricted"),
    ] {
        let (outcome, _, _) = saml_sign_in(platform, &provider, &jill, &knobs).await;
        assert_eq!(outcome.get("error").map(String::as_str), Some("SAML_RESPONSE_INVALID"), "{what}: {outcome:?}");
        assert!(outcome.get("message").is_some_and(|m| m.contains(says)), "{what}: {outcome:?}");
    }
    assert_eq!(
        platform
            .stored_count(
                complianceiq_kit::config::DatabaseGroup::Auth,
                &format!("SELECT COUNT(*) FROM accounts WHERE email = 'mallory@{domain}'")
            )
            .await,
        0,
        "a tampered assertion makes no account"
    );

    // Entity expansion (a billion laughs) and external entities are not expanded: refused at once.
    let laughs =
        (1..=9).map(|n| format!("<!ENTITY l{n} \"{}\">", format!("&l{};", n - 1).repeat(10))).collect::<String>();
    let external = "<!ENTITY x SYSTEM \"file:///etc/passwd\">";
    for doctype in [format!("<!ENTITY l0 \"lol\">{laughs}"), external.to_string()] {
        let start = http.get(start_url(&gateway, &email)).send().await.unwrap();
        let cookie = start.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let honest = provider.respond(&location(&start), &jill, &SamlMisbehaviour::default());
        let xml = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&honest.saml_response).unwrap())
            .unwrap()
            .replacen("<samlp:Response", &format!("<!DOCTYPE samlp:Response [{doctype}]><samlp:Response"), 1)
            .replacen(&email, "&l9;&x;", 1);
        let bomb = SamlPost { saml_response: base64::engine::general_purpose::STANDARD.encode(xml), ..honest };
        let started = std::time::Instant::now();
        let refused = tokio::time::timeout(std::time::Duration::from_secs(20), acs(&gateway, &bomb, Some(&cookie)))
            .await
            .expect("answered without expanding");
        assert_eq!(refused.get("error").map(String::as_str), Some("SAML_RESPONSE_INVALID"), "{refused:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    // A form without a response, and one without state, are refused with a reason.
    let empty = SamlPost {
        saml_response: String::new(),
        ..provider.respond(
            &location(&http.get(start_url(&gateway, &email)).send().await.unwrap()),
            &jill,
            &SamlMisbehaviour::default(),
        )
    };
    assert_eq!(acs(&gateway, &empty, None).await.get("error").map(String::as_str), Some("SSO_BROWSER_MISMATCH"));
    let stateless = SamlPost { relay_state: String::new(), ..fresh };
    assert_eq!(acs(&gateway, &stateless, None).await.get("error").map(String::as_str), Some("SSO_STATE_INVALID"));

    // Roles following groups never take the last Organization Admin's role, and only the auth
    // module may ask.
    let admin_role = role_id(platform, &tenant, "Organization Admin").await;
    let request = ApplyProviderRolesRequest {
        organization_id: tenant.id().into(),
        user_id: tenant.admin.user_id.clone(),
        managed_role_ids: vec![admin_role.clone()],
        granted_role_ids: Vec::new(),
    };
    let mut as_auth = UserServiceClient::new(platform.channel_as("auth", "user"));
    let kept = as_auth.apply_provider_roles(request.clone()).await.unwrap().into_inner();
    assert!(!kept.changed && kept.role_ids.contains(&admin_role), "{kept:?}");
    let viewer = role_id(platform, &tenant, "Viewer").await;
    let stray = ApplyProviderRolesRequest { granted_role_ids: vec![viewer], ..request.clone() };
    let refused = as_auth.apply_provider_roles(stray).await.unwrap_err();
    assert_eq!(violations(&refused)[0], ("granted_role_ids[0]".to_string(), "NOT_MANAGED".to_string()));
    let mut as_gateway = UserServiceClient::new(platform.channel_as("gateway", "user"));
    assert_eq!(as_gateway.apply_provider_roles(request).await.unwrap_err().code(), Code::PermissionDenied);

    // Required SAML sign-in stops a member's password, not their SAML sign-in.
    let pat_email = format!("pat@{domain}");
    platform.member(&tenant, &pat_email, &[]).await;
    let required = SsoConfig { provider: saml(&provider), require_sso: true, ..Default::default() };
    assert!(update(&mut auth, &tenant, required).await.unwrap().require_sso);
    let refused = password_login(platform, &pat_email).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "SSO_REQUIRED"));
    let (outcome, _, _) =
        saml_sign_in(platform, &provider, &person(&pat_email, &[]), &SamlMisbehaviour::default()).await;
    assert!(outcome.contains_key("ticket"), "{outcome:?}");

    // Metadata the provider publishes at a URL: fetched when saved, and again when a response's
    // signature does not verify, so a rotated signing certificate works without the admin.
    let published = Arc::new(std::sync::Mutex::new(provider.metadata()));
    let url = SamlProvider::publish(published.clone()).await;
    let by_url = |url: String| SsoConfig {
        provider: Some(sso_config::Provider::Saml(SamlSettings { idp_metadata_url: url, ..Default::default() })),
        ..Default::default()
    };
    let refused = update(&mut auth, &tenant, by_url(url.replace("/saml/metadata", "/nothing"))).await.unwrap_err();
    assert_eq!(violations(&refused)[0].0, "config.saml.idp_metadata_url", "{refused:?}");
    let saved = update(&mut auth, &tenant, by_url(url.clone())).await.unwrap();
    let Some(sso_config::Provider::Saml(settings)) = &saved.provider else { panic!("{saved:?}") };
    assert!(settings.metadata_fetch_time.is_some() && settings.idp_entity_id == provider.entity_id, "{settings:?}");
    provider.rotate_key();
    *published.lock().unwrap() = provider.metadata();
    let (outcome, _, _) = saml_sign_in(platform, &provider, &jill, &SamlMisbehaviour::default()).await;
    assert!(outcome.contains_key("ticket"), "signed with the rotated key: {outcome:?}");
    let forged = SamlMisbehaviour { forged_signature: true, ..Default::default() };
    let (outcome, _, _) = saml_sign_in(platform, &provider, &jill, &forged).await;
    assert_eq!(outcome.get("error").map(String::as_str), Some("SAML_RESPONSE_INVALID"), "{outcome:?}");
}
