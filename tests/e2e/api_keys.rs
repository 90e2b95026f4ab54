//! Organization API keys: created with some of the creator's permissions and shown once,
//! accepted at the edge as a bearer or in X-API-Key in every protocol, held to the same access
//! rules and audit as a person, refused within a second of their revocation, and never more
//! than their creator holds now.

use std::time::{Duration, Instant};

use complianceiq_proto::complianceiq::audit::v1::ListAuditLogsRequest;
use complianceiq_proto::complianceiq::audit::v1::audit_service_client::AuditServiceClient;
use complianceiq_proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use complianceiq_proto::complianceiq::auth::v1::{
    CreateApiKeyRequest, ExchangeApiKeyRequest, ListApiKeysRequest, RevokeApiKeyRequest,
};
use complianceiq_proto::complianceiq::organization::v1::RemoveMemberRequest;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::Code;

use crate::harness::{TestPlatform, reason};
use crate::people::{Tenant, authorized};
use crate::platform_tests;

platform_tests!(
    a_key_reads_what_it_was_given_and_nothing_else,
    a_revoked_key_is_refused_within_a_second,
    a_key_holds_no_more_than_its_creator_now_does,
);

/// How a request presents the key.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Presented {
    Bearer,
    Header,
}

/// A REST call through the gateway with `key`: the status and the body.
pub(crate) async fn call(
    platform: &TestPlatform,
    key: &str,
    presented: Presented,
    method: Method,
    path: &str,
) -> (StatusCode, Value) {
    call_with(platform, key, presented, method, path, json!({})).await
}

async fn call_with(
    platform: &TestPlatform,
    key: &str,
    presented: Presented,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    complianceiq_kit::crypto::install_tls_crypto_provider();
    let url = format!("http://{}{path}", platform.address("gateway"));
    let mut request = reqwest::Client::new().request(method.clone(), url);
    request = match presented {
        Presented::Bearer => request.bearer_auth(key),
        Presented::Header => request.header("x-api-key", key),
    };
    if method != Method::GET && method != Method::DELETE {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The `google.rpc.ErrorInfo` reason of a REST error body.
fn rest_reason(body: &Value) -> String {
    body["details"]
        .as_array()
        .and_then(|details| details.iter().find_map(|detail| detail["reason"].as_str()))
        .unwrap_or_default()
        .to_string()
}

pub(crate) async fn create_key(
    platform: &TestPlatform,
    token: &str,
    name: &str,
    permissions: &[&str],
) -> (String, String) {
    let created = platform
        .auth()
        .await
        .create_api_key(authorized(
            CreateApiKeyRequest {
                name: name.into(),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
                expire_time: None,
            },
            token,
        ))
        .await
        .unwrap_or_else(|status| panic!("creating {name}: {status:?}"))
        .into_inner();
    (created.api_key.expect("the key").id, created.secret)
}

async fn a_key_reads_what_it_was_given_and_nothing_else(platform: &TestPlatform) {
    let tenant = platform.tenant("Keyed").await;
    let (reader_id, reader) = create_key(platform, tenant.token(), "Partner", &["insights:read"]).await;
    assert!(reader.starts_with("ciq_") && reader.len() == 132, "{reader}");

    // The key reads insights, as a bearer or in its own header...
    for presented in [Presented::Bearer, Presented::Header] {
        let (status, body) = call(platform, &reader, presented, Method::GET, "/api/v1/insights/saved").await;
        assert_eq!(status, StatusCode::OK, "{presented:?}: {body}");
    }
    // ...over native gRPC through the edge too...
    let edge = tonic::transport::Channel::from_shared(format!("http://{}", platform.address("gateway")))
        .unwrap()
        .connect_lazy();
    let listed =
        crate::harness::call_raw(edge, "complianceiq.insights.v1.InsightsService/ListSavedReports", Some(&reader))
            .await;
    assert!(listed.is_ok(), "{listed:?}");
    // ...and nothing else: neither other resources nor more keys.
    let organization = format!("/api/v1/organizations/{}", tenant.id());
    for (method, path) in
        [(Method::GET, organization.as_str()), (Method::GET, "/api/v1/instances"), (Method::POST, "/api/v1/api-keys")]
    {
        let (status, body) = call(platform, &reader, Presented::Bearer, method.clone(), path).await;
        assert_eq!(
            (status, rest_reason(&body).as_str()),
            (StatusCode::FORBIDDEN, "PERMISSION_MISSING"),
            "{method} {path}"
        );
    }

    // Shown once: the list has the hint, the last use and the creator, never the secret.
    let keys = platform
        .auth()
        .await
        .list_api_keys(authorized(ListApiKeysRequest::default(), tenant.token()))
        .await
        .expect("list")
        .into_inner()
        .api_keys;
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (key.id.as_str(), key.name.as_str(), key.permissions.as_slice()),
        (reader_id.as_str(), "Partner", &["insights:read".to_string()][..])
    );
    assert!(key.last_use_time.is_some(), "used: {key:?}");
    assert!(key.hint.ends_with(&reader[reader.len() - 4..]) && !format!("{key:?}").contains(&reader[40..]), "{key:?}");
    assert_eq!(key.creator_user_id, tenant.admin.user_id);

    // A key's calls are audited with the key as the actor; a key cannot make keys.
    let (updater_id, updater) =
        create_key(platform, tenant.token(), "Updater", &["organizations:update", "api_keys:create"]).await;
    let renamed = json!({"display_name": "Keyed, renamed by a key"});
    let (status, body) = call_with(platform, &updater, Presented::Header, Method::PUT, &organization, renamed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(platform, &updater, Presented::Header, Method::POST, "/api/v1/api-keys").await;
    assert_eq!((status, rest_reason(&body).as_str()), (StatusCode::FORBIDDEN, "API_KEY_CANNOT_CREATE_KEYS"), "{body}");
    let mut trail = AuditServiceClient::new(platform.channel("audit").await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = trail
            .list_audit_logs(authorized(ListAuditLogsRequest::default(), tenant.token()))
            .await
            .expect("the trail")
            .into_inner()
            .audit_logs;
        let by_key: Vec<_> = entries
            .iter()
            .filter(|entry| entry.actor.as_ref().is_some_and(|actor| actor.user_id == updater_id))
            .map(|entry| entry.action.as_str())
            .collect();
        if by_key.contains(&"organization.update") && by_key.contains(&"api_key.create") {
            break;
        }
        assert!(Instant::now() < deadline, "the key's calls were not audited: {by_key:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Keys belong to their organization: another tenant neither lists nor uses them.
    let other = platform.tenant("Keyless").await;
    let theirs = platform
        .auth()
        .await
        .list_api_keys(authorized(ListApiKeysRequest::default(), other.token()))
        .await
        .expect("list")
        .into_inner();
    assert!(theirs.api_keys.is_empty(), "{theirs:?}");
    let (status, _) =
        call(platform, &reader, Presented::Bearer, Method::GET, &format!("/api/v1/organizations/{}", other.id())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let revoked = platform
        .auth()
        .await
        .revoke_api_key(authorized(RevokeApiKeyRequest { api_key_id: reader_id.clone() }, other.token()))
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), Code::NotFound, "{revoked:?}");

    // Bad keys and bad requests say what is wrong.
    let (status, body) =
        call(platform, "ciq_not-a-key", Presented::Header, Method::GET, "/api/v1/insights/saved").await;
    assert_eq!((status, rest_reason(&body).as_str()), (StatusCode::UNAUTHORIZED, "API_KEY_MALFORMED"), "{body}");
    let forged = format!("{}{}", &reader[..reader.len() - 4], "0000");
    let (status, body) = call(platform, &forged, Presented::Bearer, Method::GET, "/api/v1/insights/saved").await;
    assert_eq!((status, rest_reason(&body).as_str()), (StatusCode::UNAUTHORIZED, "API_KEY_INVALID"), "{body}");
    let mut auth = platform.auth().await;
    let create = |permissions: &[&str]| {
        authorized(
            CreateApiKeyRequest {
                name: "x".into(),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
                expire_time: None,
            },
            tenant.token(),
        )
    };
    let unknown = auth.create_api_key(create(&["insights:write"])).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(
        crate::harness::violations(&unknown),
        [("permissions[0]".to_string(), "UNKNOWN_PERMISSION".to_string())]
    );
    let none = auth.create_api_key(create(&[])).await.unwrap_err();
    assert_eq!(none.code(), Code::InvalidArgument);
    // The gateway alone exchanges keys.
    let exchanged = AuthServiceClient::new(platform.channel_as("webhook", "auth"))
        .exchange_api_key(ExchangeApiKeyRequest { secret: updater.clone() })
        .await
        .unwrap_err();
    assert_eq!(exchanged.code(), Code::PermissionDenied);
}

/// Waits (a second at most) until `key` is refused, and answers the reason.
async fn refused_within_a_second(platform: &TestPlatform, key: &str, path: &str) -> String {
    let started = Instant::now();
    loop {
        let (status, body) = call(platform, key, Presented::Bearer, Method::GET, path).await;
        if status == StatusCode::UNAUTHORIZED {
            return rest_reason(&body);
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(started.elapsed() < Duration::from_secs(1), "still accepted {:?} later", started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_revoked_key_is_refused_within_a_second(platform: &TestPlatform) {
    let tenant = platform.tenant("Revoking").await;
    let (id, key) = create_key(platform, tenant.token(), "Short lived", &["insights:read"]).await;
    let path = "/api/v1/insights/saved";
    // Used, so the gateway keeps a token for it.
    assert_eq!(call(platform, &key, Presented::Bearer, Method::GET, path).await.0, StatusCode::OK);
    let revoked = platform
        .auth()
        .await
        .revoke_api_key(authorized(RevokeApiKeyRequest { api_key_id: id }, tenant.token()))
        .await
        .expect("revoke")
        .into_inner();
    assert!(revoked.revoke_time.is_some());
    assert_eq!(refused_within_a_second(platform, &key, path).await, "API_KEY_REVOKED");

    // A key that expires stops at its expiry.
    let expiring = platform
        .auth()
        .await
        .create_api_key(authorized(
            CreateApiKeyRequest {
                name: "Expiring".into(),
                permissions: vec!["insights:read".into()],
                expire_time: Some(complianceiq_kit::time::to_timestamp(
                    complianceiq_kit::time::now_micros() + 1_500_000,
                )),
            },
            tenant.token(),
        ))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(call(platform, &expiring.secret, Presented::Header, Method::GET, path).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let (status, body) = call(platform, &expiring.secret, Presented::Header, Method::GET, path).await;
    assert_eq!((status, rest_reason(&body).as_str()), (StatusCode::UNAUTHORIZED, "API_KEY_EXPIRED"), "{body}");
}

async fn a_key_holds_no_more_than_its_creator_now_does(platform: &TestPlatform) {
    let tenant: Tenant = platform.tenant("Creators").await;
    let role = crate::access::create_role(platform, &tenant, "Key Maker", &["api_keys:create", "insights:read"]).await;
    let (maker, membership) =
        platform.member(&tenant, "maker@creators.example.com", std::slice::from_ref(&role.id)).await;
    // Only what the creator holds.
    let refused = platform
        .auth()
        .await
        .create_api_key(authorized(
            CreateApiKeyRequest { name: "Too much".into(), permissions: vec!["audit:read".into()], expire_time: None },
            maker.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::PermissionDenied, "CANNOT_GRANT"));
    let (_, key) = create_key(platform, maker.token(), "Maker's", &["insights:read"]).await;
    let path = "/api/v1/insights/saved";
    assert_eq!(call(platform, &key, Presented::Bearer, Method::GET, path).await.0, StatusCode::OK);

    // The creator leaves: the key stops with them (the membership travels by event).
    OrganizationServiceClient::new(platform.channel("organization").await)
        .remove_member(authorized(
            RemoveMemberRequest { org_id: tenant.id().into(), member_id: membership.id.clone() },
            tenant.token(),
        ))
        .await
        .expect("remove the creator");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call(platform, &key, Presented::Bearer, Method::GET, path).await;
        // The short token the edge exchanged the key for may be revoked (the creator's tokens
        // are, on leaving) a moment before the exchange itself refuses: refused either way, and
        // the key's own refusal follows.
        if status == StatusCode::UNAUTHORIZED && rest_reason(&body) != "TOKEN_REVOKED" {
            assert_eq!(rest_reason(&body), "API_KEY_CREATOR_LEFT", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the key outlived its creator's membership: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
