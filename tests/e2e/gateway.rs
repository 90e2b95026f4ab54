//! The platform through its front door: the design's real paths over REST, the same call
//! over REST, grpc-web and native gRPC, edge authentication, rate limits and CORS.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{GetOrganizationRequest, Organization};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::TestPlatform;
use crate::people::{PASSWORD, authorized};
use crate::platform_tests;

platform_tests!(
    the_design_paths_work_over_rest,
    rest_grpc_web_and_grpc_return_the_same_and_fail_the_same,
    forged_tokens_are_refused_at_the_edge_in_every_protocol,
    cors_admits_configured_origins_only,
);

fn http() -> reqwest::Client {
    complianceiq_kit::crypto::install_tls_crypto_provider();
    reqwest::Client::new()
}

fn base(platform: &TestPlatform) -> String {
    format!("http://{}", platform.address("gateway"))
}

async fn rest(
    platform: &TestPlatform,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    rest_at(&base(platform), method, path, token, body).await
}

/// A REST call to the gateway at `base`: status, headers and the body as JSON (or as a
/// JSON string when it is not JSON).
pub async fn rest_at(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = http().request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("the gateway answers");
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn the_design_paths_work_over_rest(platform: &TestPlatform) {
    use reqwest::Method;
    let (status, _, registered) = rest(
        platform,
        Method::POST,
        "/api/v1/auth/register",
        None,
        Some(json!({"email": "rest@example.com", "password": PASSWORD, "fullName": "Rest User"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["emailVerificationRequired"], true);
    let token = platform.token_from_mail("rest@example.com", "Verify your email").await;
    let (status, _, verified) =
        rest(platform, Method::POST, "/api/v1/auth/verify-email", None, Some(json!({"token": token}))).await;
    assert_eq!((status, &verified["emailVerified"]), (StatusCode::OK, &json!(true)));
    let (_, _, login) = rest(
        platform,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "rest@example.com", "password": PASSWORD})),
    )
    .await;
    let access = login["tokens"]["accessToken"].as_str().unwrap().to_string();
    let refresh = login["tokens"]["refreshToken"].as_str().unwrap().to_string();

    let (status, _, organization) =
        rest(platform, Method::POST, "/api/v1/organizations", Some(&access), Some(json!({"displayName": "Rest Co"})))
            .await;
    assert_eq!(status, StatusCode::OK, "{organization}");
    let id = organization["id"].as_str().unwrap().to_string();
    // Switch the token to the new organization once the membership has propagated.
    let mut scoped = String::new();
    for _ in 0..200 {
        let (status, _, tokens) = rest(
            platform,
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refreshToken": refresh, "organizationId": id})),
        )
        .await;
        if status == StatusCode::OK {
            scoped = tokens["accessToken"].as_str().unwrap().to_string();
            break;
        }
        assert_eq!(status, StatusCode::FORBIDDEN, "{tokens}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!scoped.is_empty(), "the token was switched");

    let (status, _, fetched) =
        rest(platform, Method::GET, &format!("/api/v1/organizations/{id}"), Some(&scoped), None).await;
    assert_eq!((status, &fetched["slug"]), (StatusCode::OK, &json!("rest-co")));
    let (status, _, updated) = rest(
        platform,
        Method::PUT,
        &format!("/api/v1/organizations/{id}?updateMask=display_name"),
        Some(&scoped),
        Some(json!({"displayName": "Rest Company", "slug": "ignored-by-the-mask"})),
    )
    .await;
    assert_eq!(
        (status, &updated["displayName"], &updated["slug"]),
        (StatusCode::OK, &json!("Rest Company"), &json!("rest-co"))
    );
    let (_, _, me) = rest(platform, Method::GET, "/api/v1/users/me", Some(&scoped), None).await;
    assert_eq!(me["email"], "rest@example.com");
    let (_, _, roles) = rest(platform, Method::GET, "/api/v1/roles?pageSize=2", Some(&scoped), None).await;
    assert_eq!(roles["roles"].as_array().unwrap().len(), 2);
    assert!(roles["nextPageToken"].as_str().is_some_and(|t| !t.is_empty()));
    let (status, _, member) = rest(
        platform,
        Method::POST,
        &format!("/api/v1/organizations/{id}/members"),
        Some(&scoped),
        Some(json!({"email": "invitee@example.com"})),
    )
    .await;
    assert_eq!((status, &member["state"]), (StatusCode::OK, &json!("MEMBER_STATE_INVITED")));
    let (_, _, usage) =
        rest(platform, Method::GET, &format!("/api/v1/organizations/{id}/usage"), Some(&scoped), None).await;
    assert_eq!(usage["members"], json!({"used": "2", "limit": "5"}), "64-bit integers are strings");
    let (status, _, jwks) = rest(platform, Method::GET, "/.well-known/jwks.json", None, None).await;
    assert_eq!((status, &jwks["keys"][0]["alg"]), (StatusCode::OK, &json!("RS256")));
    let (status, _, instances) = rest(platform, Method::GET, "/api/v1/instances", Some(&scoped), None).await;
    assert_eq!((status, &instances["totalSize"]), (StatusCode::OK, &Value::Null), "none yet: zero is omitted");
    let (status, _, summary) = rest(platform, Method::GET, "/api/v1/dashboard/summary", Some(&scoped), None).await;
    assert_eq!((status, &summary["organizationId"]), (StatusCode::OK, &json!(id)));
    let report =
        json!({"name": "Weekly", "metrics": ["posture_score"], "schedule": "0 6 * * 1", "timeZone": "Europe/Paris"});
    let (status, _, created) =
        rest(platform, Method::POST, "/api/v1/dashboard/reports", Some(&scoped), Some(report)).await;
    assert_eq!(
        (status, &created["format"], &created["timeZone"]),
        (StatusCode::OK, &json!("EXPORT_FORMAT_PDF"), &json!("Europe/Paris"))
    );
    let runs = format!("/api/v1/dashboard/reports/{}/runs", created["id"].as_str().unwrap_or_default());
    let (status, _, listed) = rest(platform, Method::GET, &runs, Some(&scoped), None).await;
    assert_eq!((status, listed), (StatusCode::OK, json!({})), "no run yet");
    let evaluation = json!({"modelId": uuid::Uuid::now_v7().to_string(), "threshold": 0.3});
    let (status, _, unknown) =
        rest(platform, Method::POST, "/api/v1/ml/evaluate", Some(&scoped), Some(evaluation)).await;
    assert_eq!((status, &unknown["code"]), (StatusCode::NOT_FOUND, &json!(5)));
    let (status, _, deleted) =
        rest(platform, Method::DELETE, &format!("/api/v1/organizations/{id}"), Some(&scoped), None).await;
    assert_eq!((status, deleted), (StatusCode::OK, json!({})));
}

/// A grpc-web call (binary, or base64 text): the decoded message bytes, status and message.
async fn grpc_web(
    platform: &TestPlatform,
    path: &str,
    message: &[u8],
    token: &str,
    text: bool,
) -> (i32, Option<Vec<u8>>, String) {
    let mut frame = vec![0u8];
    frame.extend((message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let content_type = if text { "application/grpc-web-text+proto" } else { "application/grpc-web+proto" };
    let body = if text { STANDARD.encode(&frame).into_bytes() } else { frame };
    let response = http()
        .post(format!("{}{path}", base(platform)))
        .header("content-type", content_type)
        .header("accept", content_type)
        .header("x-grpc-web", "1")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "grpc-web answers 200 and carries the status inside");
    let header_status = response.headers().get("grpc-status").map(|v| v.to_str().unwrap().parse::<i32>().unwrap());
    let header_message = response.headers().get("grpc-message").map(|v| v.to_str().unwrap().to_string());
    let raw = response.bytes().await.unwrap().to_vec();
    let bytes = if text {
        // Each frame is base64 on its own; decode piece by piece.
        let text = String::from_utf8(raw).unwrap();
        let (mut out, mut chunk) = (Vec::new(), String::new());
        for group in text.as_bytes().chunks(4) {
            chunk.push_str(std::str::from_utf8(group).unwrap());
            if group.contains(&b'=') {
                out.extend(STANDARD.decode(&chunk).unwrap());
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            out.extend(STANDARD.decode(&chunk).unwrap());
        }
        out
    } else {
        raw
    };
    let (mut data, mut status, mut grpc_message, mut index) =
        (None, header_status, header_message.unwrap_or_default(), 0);
    while index + 5 <= bytes.len() {
        let flag = bytes[index];
        let length = u32::from_be_bytes(bytes[index + 1..index + 5].try_into().unwrap()) as usize;
        let payload = &bytes[index + 5..index + 5 + length];
        if flag & 0x80 != 0 {
            for line in String::from_utf8_lossy(payload).lines() {
                match line.split_once(':') {
                    Some(("grpc-status", value)) => status = Some(value.trim().parse().unwrap()),
                    Some(("grpc-message", value)) => grpc_message = value.trim().to_string(),
                    _ => {}
                }
            }
        } else {
            data = Some(payload.to_vec());
        }
        index += 5 + length;
    }
    (status.expect("a grpc-status"), data, grpc_message)
}

async fn rest_grpc_web_and_grpc_return_the_same_and_fail_the_same(platform: &TestPlatform) {
    let tenant = platform.tenant("Three Ways").await;
    let path = "/complianceiq.organization.v1.OrganizationService/GetOrganization";
    let request = GetOrganizationRequest { org_id: tenant.id().into() };

    let gateway = Channel::from_shared(base(platform)).unwrap().connect().await.unwrap();
    let over_grpc = OrganizationServiceClient::new(gateway.clone())
        .get_organization(authorized(request.clone(), tenant.token()))
        .await
        .expect("native gRPC through the gateway")
        .into_inner();
    let (status, web_bytes, message) = grpc_web(platform, path, &request.encode_to_vec(), tenant.token(), false).await;
    assert_eq!(status, 0, "{message}");
    let over_web = Organization::decode(web_bytes.unwrap().as_slice()).unwrap();
    let (status, text_bytes, message) = grpc_web(platform, path, &request.encode_to_vec(), tenant.token(), true).await;
    assert_eq!(status, 0, "{message}");
    let over_text = Organization::decode(text_bytes.unwrap().as_slice()).unwrap();
    let (http_status, _, over_rest) = rest(
        platform,
        reqwest::Method::GET,
        &format!("/api/v1/organizations/{}", tenant.id()),
        Some(tenant.token()),
        None,
    )
    .await;
    assert_eq!(http_status, StatusCode::OK);

    assert_eq!(over_grpc, tenant.organization);
    assert_eq!(over_web, over_grpc);
    assert_eq!(over_text, over_grpc);
    assert_eq!(over_rest["id"], over_grpc.id);
    assert_eq!(over_rest["displayName"], over_grpc.display_name);
    assert_eq!(over_rest["etag"], over_grpc.etag);
    assert_eq!(over_rest["state"], "ORGANIZATION_STATE_ACTIVE");

    // Another organization's id: PERMISSION_DENIED everywhere, 403 over REST.
    let other = GetOrganizationRequest { org_id: uuid::Uuid::now_v7().to_string() };
    let grpc_error = OrganizationServiceClient::new(gateway)
        .get_organization(authorized(other.clone(), tenant.token()))
        .await
        .unwrap_err();
    assert_eq!(grpc_error.code(), Code::PermissionDenied);
    let (web_status, _, web_message) = grpc_web(platform, path, &other.encode_to_vec(), tenant.token(), false).await;
    assert_eq!(web_status, Code::PermissionDenied as i32);
    let (http_status, _, rest_error) = rest(
        platform,
        reqwest::Method::GET,
        &format!("/api/v1/organizations/{}", other.org_id),
        Some(tenant.token()),
        None,
    )
    .await;
    assert_eq!(http_status, StatusCode::FORBIDDEN);
    assert_eq!(rest_error["code"], 7);
    assert_eq!(rest_error["message"], grpc_error.message());
    assert_eq!(percent_decode(&web_message), grpc_error.message());
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

async fn forged_tokens_are_refused_at_the_edge_in_every_protocol(platform: &TestPlatform) {
    let tenant = platform.tenant("Edge").await;
    let mut claims: Value = crate::people::claims(tenant.token());
    claims["exp"] = json!(1);
    claims["iat"] = json!(0);
    let keys = complianceiq_auth::KeyRing::load(&platform.config.jwt_keys_dir()).unwrap();
    let expired = complianceiq_kit::auth::jwt::sign(
        &serde_json::from_value(claims).unwrap(),
        &keys.active().id,
        &keys.active().pair,
    );
    let parts: Vec<&str> = tenant.token().split('.').collect();
    let unsigned = format!("{}.{}.", STANDARD.encode(r#"{"alg":"none"}"#).trim_end_matches('='), parts[1]);
    let request = GetOrganizationRequest { org_id: tenant.id().into() };
    let path = "/complianceiq.organization.v1.OrganizationService/GetOrganization";
    let gateway = Channel::from_shared(base(platform)).unwrap().connect().await.unwrap();
    for token in [expired.as_str(), unsigned.as_str(), "garbage"] {
        let (status, headers, body) =
            rest(platform, reqwest::Method::GET, &format!("/api/v1/organizations/{}", tenant.id()), Some(token), None)
                .await;
        assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!(16)), "{body}");
        assert!(headers.contains_key("x-request-id"));
        let grpc = OrganizationServiceClient::new(gateway.clone())
            .get_organization(authorized(request.clone(), token))
            .await
            .unwrap_err();
        assert_eq!(grpc.code(), Code::Unauthenticated);
        let (web, _, _) = grpc_web(platform, path, &request.encode_to_vec(), token, false).await;
        assert_eq!(web, Code::Unauthenticated as i32);
    }
}

async fn cors_admits_configured_origins_only(platform: &TestPlatform) {
    let preflight = |origin: &str| {
        http()
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/users/me", base(platform)))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization, x-grpc-web")
            .send()
    };
    let allowed = preflight("http://localhost:3000").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://localhost:3000");
    assert!(allowed.headers()["access-control-expose-headers"].to_str().unwrap().contains("grpc-status-details-bin"));
    assert!(allowed.headers()["access-control-allow-headers"].to_str().unwrap().contains("x-grpc-web"));
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!refused.headers().contains_key("access-control-allow-origin"));

    let actual = http()
        .get(format!("{}/.well-known/jwks.json", base(platform)))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(actual.headers()["access-control-allow-origin"], "http://localhost:3000");
    assert!(actual.headers()["access-control-expose-headers"].to_str().unwrap().contains("grpc-status"));
    let foreign = http()
        .get(format!("{}/.well-known/jwks.json", base(platform)))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(!foreign.headers().contains_key("access-control-allow-origin"));
}

/// Rate limits need a short window to observe recovery; each backend gets its own run.
mod rate_limits_trip_and_recover {
    use crate::harness::{Backend, run_with};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        run_with(Backend::Embedded, super::tight_limits, |platform| {
            Box::pin(super::rate_limits_trip_and_recover(platform))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        run_with(Backend::Servers, super::tight_limits, |platform| {
            Box::pin(super::rate_limits_trip_and_recover(platform))
        })
        .await;
    }
}

/// The window of the tight limits. The bursts below are sent concurrently, so they land well
/// within one emission interval (PERIOD / limit) even on a loaded machine.
const PERIOD: Duration = Duration::from_secs(3);

fn tight_limits(config: &mut complianceiq_kit::config::PlatformConfig) {
    config.gateway.client_per_minute = 4;
    config.gateway.tenant_per_minute = 6;
    config.gateway.rate_period_seconds = PERIOD.as_secs();
}

async fn burst(
    platform: &TestPlatform,
    path: &str,
    tokens: &[&str],
) -> Vec<(StatusCode, reqwest::header::HeaderMap, Value)> {
    futures::future::join_all(tokens.iter().map(|token| rest(platform, reqwest::Method::GET, path, Some(token), None)))
        .await
}

async fn rate_limits_trip_and_recover(platform: &TestPlatform) {
    let tenant = platform.tenant("Limited").await;
    let path = format!("/api/v1/organizations/{}", tenant.id());
    // Per client: 4 per window, so one of five is refused, with Retry-After and RateLimit headers.
    let answers = burst(platform, &path, &[tenant.token(); 5]).await;
    let refused: Vec<_> = answers.iter().filter(|(status, _, _)| *status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert_eq!(refused.len(), 1, "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    let (_, headers, body) = refused[0];
    assert_eq!(body["code"], json!(8), "{body}");
    assert_eq!(headers["ratelimit-limit"], "4");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["retry-after"], "1", "the next request fits in 750 ms");
    let grpc = OrganizationServiceClient::new(Channel::from_shared(base(platform)).unwrap().connect().await.unwrap())
        .get_organization(authorized(GetOrganizationRequest { org_id: tenant.id().into() }, tenant.token()))
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), Code::ResourceExhausted, "the same limit over gRPC");
    // It recovers once the emission interval has passed.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (status, headers, _) = rest(platform, reqwest::Method::GET, &path, Some(tenant.token()), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("ratelimit-remaining"));

    // Per tenant: two people of the organization share 6 per window on the free plan...
    let (member, _) = platform.member(&tenant, "second@limited.example.com", &[]).await;
    tokio::time::sleep(PERIOD).await;
    let answers = burst(
        platform,
        &path,
        &[
            tenant.token(),
            member.token(),
            tenant.token(),
            member.token(),
            tenant.token(),
            member.token(),
            tenant.token(),
        ],
    )
    .await;
    let statuses: Vec<_> = answers.iter().map(|answer| answer.0).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 1, "{statuses:?}");
    // ...and five times that on the starter plan (the gateway learns the plan from events).
    tokio::time::sleep(PERIOD).await;
    let (status, _, _) = rest(
        platform,
        reqwest::Method::PUT,
        &format!("/api/v1/organizations/{}/subscription?updateMask=plan", tenant.id()),
        Some(tenant.token()),
        Some(json!({"plan": "PLAN_STARTER"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let key = complianceiq_gateway::plan_key(tenant.id());
    for _ in 0..100 {
        if platform.platform().cache.get(&key).await.unwrap().as_deref() == Some(&b"starter"[..]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(PERIOD).await;
    let tokens: Vec<&str> = (0..8).map(|index| if index % 2 == 0 { tenant.token() } else { member.token() }).collect();
    let refused = burst(platform, &path, &tokens).await.iter().filter(|a| a.0 == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(refused, 0, "8 requests fit the starter plan's 30 per window (each person stays within 4)");
}
