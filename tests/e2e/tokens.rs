//! Forged and broken access tokens are refused by every service, with a reason that says why.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use complianceiq_auth::KeyRing;
use complianceiq_kit::auth::jwt::{self, Claims};
use complianceiq_kit::auth::verifier::now_seconds;
use complianceiq_proto::complianceiq::auth::v1::LogoutRequest;
use tonic::Code;

use crate::harness::{TestPlatform, call_raw, call_raw_message, reason};
use crate::people::authorized;
use crate::platform_tests;
use prost::Message;

platform_tests!(forged_and_broken_tokens_are_refused_everywhere);

fn encode(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Where each forgery is tried: a user RPC, an organization RPC, and a public auth RPC (a
/// token sent to a public RPC must be valid too).
const TARGETS: [(&str, &str); 3] = [
    ("user", "complianceiq.user.v1.UserService/GetCurrentUser"),
    ("organization", "complianceiq.organization.v1.OrganizationService/GetSubscription"),
    ("auth", "complianceiq.auth.v1.AuthService/GetJwks"),
];

async fn forged_and_broken_tokens_are_refused_everywhere(platform: &TestPlatform) {
    let tenant = platform.tenant("Forgery").await;
    let valid = tenant.token().to_string();
    let keys = KeyRing::load(&platform.config.jwt_keys_dir()).unwrap();
    let real = keys.active();
    let now = now_seconds();
    let genuine: Claims = serde_json::from_value(crate::people::claims(&valid)).unwrap();
    let with = |change: &dyn Fn(&mut Claims)| {
        let mut claims = genuine.clone();
        change(&mut claims);
        jwt::sign(&claims, &real.id, &real.pair)
    };
    let header = |alg: &str| encode(&serde_json::json!({"alg": alg, "typ": "JWT", "kid": real.id}));
    let payload = encode(&serde_json::to_value(&genuine).unwrap());

    // `alg: none`, and HS256 keyed with the published public key (the classic confusion).
    let none = format!("{}.{payload}.", header("none"));
    let public_pem = format!("{}{}", keys.jwks(now)[0].n, keys.jwks(now)[0].e);
    let input = format!("{}.{payload}", header("HS256"));
    let hs256 = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(complianceiq_kit::crypto::hmac_sha256(public_pem.as_bytes(), input.as_bytes()))
    );
    // A key the platform never published.
    let other_dir = platform.config.data_dir.join("foreign-keys");
    KeyRing::generate_into(&other_dir).unwrap();
    let foreign = KeyRing::load(&other_dir).unwrap();
    let unknown_kid = jwt::sign(&genuine, "not-a-published-key", &foreign.active().pair);
    let wrong_key_same_kid = jwt::sign(&genuine, &real.id, &foreign.active().pair);
    // The genuine signature over a payload that grants more.
    let mut escalated = genuine.clone();
    escalated.permissions.push("super:admin".into());
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], encode(&serde_json::to_value(&escalated).unwrap()), parts[2]);

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "TOKEN_ALGORITHM_NOT_ALLOWED"),
        ("HS256 with the public key", hs256, "TOKEN_ALGORITHM_NOT_ALLOWED"),
        (
            "expired",
            with(&|c| {
                c.iat = now - 3_600;
                c.exp = now - 2_700;
            }),
            "TOKEN_EXPIRED",
        ),
        (
            "issued in the future",
            with(&|c| {
                c.iat = now + 3_600;
                c.exp = now + 4_500;
            }),
            "TOKEN_NOT_YET_VALID",
        ),
        ("not before in the future", with(&|c| c.nbf = Some(now + 3_600)), "TOKEN_NOT_YET_VALID"),
        ("wrong issuer", with(&|c| c.iss = "someone-else".into()), "TOKEN_ISSUER_INVALID"),
        ("unknown kid", unknown_kid, "TOKEN_KEY_UNKNOWN"),
        ("another key under the real kid", wrong_key_same_kid, "TOKEN_SIGNATURE_INVALID"),
        ("tampered payload", tampered, "TOKEN_SIGNATURE_INVALID"),
        ("garbage", "not.a.token".into(), "TOKEN_MALFORMED"),
        ("two segments", format!("{}.{}", parts[0], parts[1]), "TOKEN_MALFORMED"),
        ("larger than any real token", "a".repeat(10_000), "TOKEN_MALFORMED"),
    ];
    let subscription =
        complianceiq_proto::complianceiq::organization::v1::GetSubscriptionRequest { org_id: tenant.id().into() };
    for (module, rpc) in TARGETS {
        let channel = platform.channel(module).await;
        let message = if module == "organization" { subscription.encode_to_vec() } else { Vec::new() };
        call_raw_message(channel.clone(), rpc, message, Some(&valid))
            .await
            .unwrap_or_else(|e| panic!("the genuine token works on {rpc}: {e:?}"));
        for (name, token, expected) in &cases {
            let status = call_raw(channel.clone(), rpc, Some(token)).await.unwrap_err();
            assert_eq!(
                (status.code(), reason(&status).as_str()),
                (Code::Unauthenticated, *expected),
                "{name} on {rpc}"
            );
        }
    }

    // Revoked: after logout the same token is refused everywhere at once.
    platform
        .auth()
        .await
        .logout(authorized(
            LogoutRequest { refresh_token: tenant.admin.tokens.refresh_token.clone(), all_sessions: false },
            &valid,
        ))
        .await
        .expect("logout");
    for (module, rpc) in TARGETS {
        let status = call_raw(platform.channel(module).await, rpc, Some(&valid)).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "TOKEN_REVOKED"), "{rpc}");
    }

    // A missing token, or another scheme, on a protected RPC.
    let channel = platform.channel("user").await;
    let missing = call_raw(channel.clone(), TARGETS[0].1, None).await.unwrap_err();
    assert_eq!(reason(&missing), "TOKEN_MISSING");
    let mut grpc = complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient::new(channel);
    let mut request = tonic::Request::new(complianceiq_proto::complianceiq::user::v1::GetCurrentUserRequest {});
    request.metadata_mut().insert("authorization", "Basic YWRhOnBhc3N3b3Jk".parse().unwrap());
    assert_eq!(reason(&grpc.get_current_user(request).await.unwrap_err()), "TOKEN_MALFORMED");
}
