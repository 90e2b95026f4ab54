//! REST mapping conformance: a test-only contract (tests/proto) with one RPC per feature,
//! served by an echoing implementation behind a gateway built from its descriptors. Each
//! test exercises one feature as a REST client would.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use complianceiq_gateway::{Gateway, Settings};
use complianceiq_kit::auth::layer::AccessControl;
use complianceiq_kit::auth::revocations::Revocations;
use complianceiq_kit::auth::verifier::TokenVerifier;
use complianceiq_kit::bus::InProcessBus;
use complianceiq_kit::cache::MemoryCache;
use complianceiq_kit::metrics::Metrics;
use prost::Message;
use prost_reflect::DescriptorPool;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

#[allow(clippy::all, dead_code)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/conformance.v1.rs"));
}

use proto::conformance_service_server::{ConformanceService, ConformanceServiceServer};
use proto::*;

const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/conformance.bin"));

struct Echo;

type Streamed = std::pin::Pin<Box<dyn futures::Stream<Item = Result<CountResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ConformanceService for Echo {
    async fn echo(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    async fn get_resource(&self, request: Request<GetResourceRequest>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(Everything { text: request.into_inner().name, ..Default::default() }))
    }
    async fn get_nested(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    async fn get_file(&self, request: Request<GetFileRequest>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(Everything { text: request.into_inner().path, ..Default::default() }))
    }
    async fn update_item(&self, request: Request<UpdateItemRequest>) -> Result<Response<UpdateItemRequest>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    async fn search(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    async fn compare_things(&self, _request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(Everything { text: "CompareThings".into(), ..Default::default() }))
    }
    async fn get_thing(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    async fn wrapped(&self, request: Request<WrappedRequest>) -> Result<Response<WrappedResponse>, Status> {
        let payload = Everything { text: request.into_inner().id, ..Default::default() };
        Ok(Response::new(WrappedResponse { payload: Some(payload), ignored: "not in the body".into() }))
    }
    async fn bound(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    type CountStream = Streamed;
    async fn count(&self, request: Request<CountRequest>) -> Result<Response<Streamed>, Status> {
        let request = request.into_inner();
        let items: Vec<Result<CountResponse, Status>> = (1..=request.to)
            .map(|n| {
                if request.fail_at > 0 && n > request.fail_at {
                    Err(Status::aborted("stopped on purpose"))
                } else {
                    Ok(CountResponse { n })
                }
            })
            .take_while(|item| item.is_ok())
            .chain(
                (request.fail_at > 0 && request.fail_at < request.to)
                    .then(|| Err(Status::aborted("stopped on purpose"))),
            )
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(items))))
    }
    async fn fail(&self, request: Request<FailRequest>) -> Result<Response<Everything>, Status> {
        let code = tonic::Code::from_i32(request.into_inner().code);
        let error = match code {
            tonic::Code::InvalidArgument => {
                complianceiq_kit::ApiError::invalid_field("text", "REQUIRED", "text is required").into()
            }
            tonic::Code::ResourceExhausted => complianceiq_kit::ApiError::ResourceExhausted {
                reason: "RATE_LIMITED",
                message: "slow down".into(),
                retry_after: Some(Duration::from_secs(7)),
            }
            .into(),
            code => Status::new(code, format!("failed with {code:?}")),
        };
        Err(error)
    }
    async fn archive(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    async fn remove(&self, _request: Request<Everything>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
    async fn slow(&self, request: Request<SlowRequest>) -> Result<Response<Everything>, Status> {
        tokio::time::sleep(Duration::from_millis(request.into_inner().millis as u64)).await;
        Ok(Response::new(Everything::default()))
    }
    async fn private(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    async fn headers(&self, request: Request<HeadersRequest>) -> Result<Response<HeadersResponse>, Status> {
        let metadata = request
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(key, value) => {
                    Some((key.to_string(), value.to_str().ok()?.to_string()))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        Ok(Response::new(HeadersResponse { metadata }))
    }
}

struct Edge {
    base: String,
    client: reqwest::Client,
    stop: CancellationToken,
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn edge() -> Edge {
    complianceiq_kit::crypto::install_tls_crypto_provider();
    let stop = CancellationToken::new();
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_address = backend.local_addr().unwrap();
    let server_stop = stop.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(ConformanceServiceServer::new(Echo))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(backend),
                server_stop.cancelled(),
            )
            .await
            .unwrap();
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{backend_address}")).unwrap().connect_lazy();
    let nowhere = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
    let revocations =
        Revocations::follow(Arc::new(InProcessBus::new()), Arc::new(Metrics::new()), CancellationToken::new())
            .await
            .unwrap();
    let access = Arc::new(AccessControl::new(Arc::new(TokenVerifier::new(nowhere.into())), revocations));
    let pool = DescriptorPool::decode(DESCRIPTORS).unwrap();
    let settings = Settings {
        cors_allowed_origins: vec!["https://app.example.com".into()],
        max_body_bytes: 64 * 1024,
        timeout: Duration::from_millis(500),
        client_limit: 10_000,
        tenant_limit: 10_000,
        rate_period: Duration::from_secs(60),
        trusted_proxies: 0,
    };
    let gateway = Gateway::new(
        pool,
        |service| service.package_name() == "conformance.v1",
        HashMap::from([("conformance.v1.ConformanceService".to_string(), channel.into())]),
        access,
        Arc::new(MemoryCache::new()),
        settings,
        &[DESCRIPTORS],
    )
    .expect("a gateway over the conformance contract");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(Arc::new(gateway).serve(listener, None, stop.clone()));
    Edge { base, client: reqwest::Client::new(), stop }
}

impl Edge {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.expect("the gateway answers");
        let (status, headers) = (response.status(), response.headers().clone());
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, json)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, json) = self.call(reqwest::Method::GET, path, None).await;
        (status, json)
    }
}

fn violations(json: &Value) -> Vec<(String, String)> {
    json["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .flat_map(|d| d["fieldViolations"].as_array().cloned().unwrap_or_default())
        .map(|v| {
            (v["field"].as_str().unwrap_or_default().to_string(), v["reason"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[tokio::test]
async fn body_star_maps_every_json_type_both_ways() {
    let edge = edge().await;
    let sent = json!({
        "text": "hello", "big": "9007199254740993", "ubig": "18446744073709551615", "small": -5, "flag": true,
        "ratio": 0.25, "blob": "aGk=", "color": "COLOR_RED", "tags": ["a", "b"], "nested": {"id": "n1", "kind": "k"},
        "labels": {"x": "1"}, "when": "2026-01-02T03:04:05Z", "span": "1.500s", "mask": "a,bC",
        "maybe": 7, "colors": ["COLOR_GREEN", "COLOR_RED"], "bigs": ["1", "2"], "right": 3
    });
    let (status, _, echoed) = edge.call(reqwest::Method::POST, "/v1/echo", Some(&sent.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{echoed}");
    assert_eq!(echoed, sent, "proto3 JSON: 64-bit as strings, enums by name, WKTs in their JSON forms");
    // Proto field names are accepted on input; numbers for 64-bit and enums too.
    let (_, _, by_proto_name) =
        edge.call(reqwest::Method::POST, "/v1/echo", Some(r#"{"big": 5, "color": 2, "left": "l"}"#)).await;
    assert_eq!(by_proto_name, json!({"big": "5", "color": "COLOR_GREEN", "left": "l"}));
    // Default values are not written out.
    let (_, _, empty) = edge.call(reqwest::Method::POST, "/v1/echo", Some("{}")).await;
    assert_eq!(empty, json!({}));
}

#[tokio::test]
async fn unknown_and_malformed_bodies_are_a_clear_400() {
    let edge = edge().await;
    for (body, expected) in [
        (r#"{"text": "x", "nope": 1}"#, "unrecognized field name 'nope'"),
        (r#"{"big": "not a number"}"#, "big: invalid digit"),
        (r#"{"color": "COLOR_BLUE"}"#, "COLOR_BLUE"),
        ("{not json", "not JSON"),
    ] {
        let (status, _, json) = edge.call(reqwest::Method::POST, "/v1/echo", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json["code"], 3);
        assert!(json["message"].as_str().unwrap().contains(expected), "{body}: {json}");
        let field = &violations(&json)[0].0;
        assert!(field == "body" || field == "big" || field == "color", "{field}");
    }
}

#[tokio::test]
async fn path_templates_bind_variables() {
    let edge = edge().await;
    assert_eq!(edge.get("/v1/orgs/acme/resources/r%201").await.1["text"], "orgs/acme/resources/r 1");
    assert_eq!(edge.get("/v1/orgs/acme/things/r1").await.0, StatusCode::NOT_FOUND);
    let (_, nested) = edge.get("/v1/parents/p1/items/i1").await;
    assert_eq!(nested, json!({"text": "i1", "nested": {"id": "p1"}}));
    assert_eq!(edge.get("/v1/files/reports/2026/q1.pdf").await.1["text"], "reports/2026/q1.pdf");
    let (_, _, archived) = edge.call(reqwest::Method::POST, "/v1/items/x7:archive", Some("{}")).await;
    assert_eq!(archived["text"], "x7", "custom verb");
}

#[tokio::test]
async fn literal_segments_beat_variables() {
    let edge = edge().await;
    assert_eq!(edge.get("/v1/things/compare").await.1["text"], "CompareThings");
    assert_eq!(edge.get("/v1/things/other").await.1["text"], "other");
}

#[tokio::test]
async fn a_body_field_takes_the_body_and_the_rest_comes_from_path_and_query() {
    let edge = edge().await;
    let (status, _, json) = edge
        .call(
            reqwest::Method::PATCH,
            "/v1/items/abc?updateMask=kind,id&note=hi",
            Some(r#"{"kind": "k", "id": "ignored"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json,
        json!({"item": {"id": "abc", "kind": "k"}, "updateMask": "kind,id", "note": "hi"}),
        "the path wins over the body"
    );
    let (status, _, json) = edge.call(reqwest::Method::PATCH, "/v1/items/abc?item.kind=x", Some("{}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(violations(&json), [("item.kind".to_string(), "UNEXPECTED_PARAMETER".to_string())]);
}

#[tokio::test]
async fn query_parameters_fill_repeated_nested_enum_and_well_known_fields() {
    let edge = edge().await;
    let query = "text=a&big=9007199254740993&tags=x&tags=y&nested.kind=k&color=COLOR_RED&colors=COLOR_GREEN&colors=1\
                 &when=2026-01-02T03:04:05Z&span=1.5s&mask=a,b_c&maybe=7&flag=true&ratio=0.5&blob=aGk%3D&labels_ignored=1";
    let (status, json) = edge.get(&format!("/v1/search?{}", query.replace("&labels_ignored=1", ""))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json,
        json!({
            "text": "a", "big": "9007199254740993", "tags": ["x", "y"], "nested": {"kind": "k"}, "color": "COLOR_RED",
            "colors": ["COLOR_GREEN", "COLOR_RED"], "when": "2026-01-02T03:04:05Z", "span": "1.500s", "mask": "a,bC",
            "maybe": 7, "flag": true, "ratio": 0.5, "blob": "aGk="
        })
    );
    let (status, json) = edge.get("/v1/search?nope=1&color=COLOR_BLUE&small=x&labels=a&text=a&text=b").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reasons: Vec<(String, String)> = violations(&json);
    assert_eq!(
        reasons,
        [
            ("nope".to_string(), "UNKNOWN_FIELD".to_string()),
            ("color".to_string(), "INVALID_VALUE".to_string()),
            ("small".to_string(), "INVALID_VALUE".to_string()),
            ("labels".to_string(), "UNSUPPORTED".to_string()),
            ("text".to_string(), "REPEATED_PARAMETER".to_string()),
        ]
    );
    assert!(json["message"].as_str().unwrap().contains("COLOR_UNSPECIFIED, COLOR_RED, COLOR_GREEN"));
}

#[tokio::test]
async fn response_body_and_additional_bindings() {
    let edge = edge().await;
    assert_eq!(edge.get("/v1/wrapped/7").await.1, json!({"text": "7"}), "only the payload field");
    let (_, _, primary) = edge.call(reqwest::Method::POST, "/v1/primary", Some(r#"{"text": "p"}"#)).await;
    assert_eq!(primary, json!({"text": "p"}));
    assert_eq!(edge.get("/v1/alternate/q").await.1, json!({"text": "q"}));
}

#[tokio::test]
async fn server_streams_are_newline_delimited_json() {
    let edge = edge().await;
    let response = edge.client.get(format!("{}/v1/count/3", edge.base)).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = response.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, [json!({"result": {"n": 1}}), json!({"result": {"n": 2}}), json!({"result": {"n": 3}})]);
    let failing =
        edge.client.get(format!("{}/v1/count/3?failAt=1", edge.base)).send().await.unwrap().text().await.unwrap();
    let lines: Vec<Value> = failing.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0], json!({"result": {"n": 1}}));
    assert_eq!(lines[1]["error"]["code"], 10);
    assert_eq!(lines.len(), 2);
}

#[tokio::test]
async fn grpc_statuses_map_to_http_with_a_google_rpc_status_body() {
    let edge = edge().await;
    let table = [
        (1, 499),
        (2, 500),
        (3, 400),
        (4, 504),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (11, 400),
        (12, 501),
        (13, 500),
        (14, 503),
        (15, 500),
        (16, 401),
    ];
    for (code, http) in table {
        let (status, headers, json) = edge.call(reqwest::Method::GET, &format!("/v1/fail/{code}"), None).await;
        assert_eq!(status.as_u16(), http, "code {code}");
        assert_eq!(json["code"], code, "{json}");
        assert!(json["message"].is_string());
        if code == 3 {
            assert_eq!(violations(&json), [("text".to_string(), "REQUIRED".to_string())]);
            assert_eq!(json["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
        }
        if code == 8 {
            assert_eq!(headers["retry-after"], "7");
        }
    }
}

#[tokio::test]
async fn bodies_timeouts_methods_and_tokens_are_policed_at_the_edge() {
    let edge = edge().await;
    let (status, _, json) = edge.call(reqwest::Method::DELETE, "/v1/items/x", None).await;
    assert_eq!((status, json), (StatusCode::OK, json!({})));
    let (status, _, json) = edge.call(reqwest::Method::DELETE, "/v1/items/x", Some(r#"{"text":"y"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(violations(&json)[0].1, "UNEXPECTED_BODY");

    let huge = format!(r#"{{"text": "{}"}}"#, "x".repeat(100 * 1024));
    let (status, _, json) = edge.call(reqwest::Method::POST, "/v1/echo", Some(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");

    let (status, json) = edge.get("/v1/slow/2000").await;
    assert_eq!((status, json["code"].as_i64()), (StatusCode::GATEWAY_TIMEOUT, Some(4)));

    let (status, headers, _) = edge.call(reqwest::Method::PUT, "/v1/echo", Some("{}")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");

    let (status, json) = edge.get("/v1/private").await;
    assert_eq!((status, json["code"].as_i64()), (StatusCode::UNAUTHORIZED, Some(16)));

    let (status, headers, _) = edge.call(reqwest::Method::GET, "/v1/things/x", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-request-id"].len(), 36, "generated when not sent");
    let echoed =
        edge.client.get(format!("{}/v1/things/x", edge.base)).header("x-request-id", "client-42").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "client-42");
}

#[tokio::test]
async fn only_allowlisted_headers_reach_the_backend_and_identity_headers_never_do() {
    let edge = edge().await;
    let response = edge
        .client
        .get(format!("{}/v1/headers", edge.base))
        .header("grpc-metadata-tenant-hint", "blue")
        .header("grpc-metadata-x-user-id", "forged")
        .header("grpc-metadata-authorization", "Bearer smuggled")
        .header("grpc-metadata-grpc-timeout", "1n")
        .header("grpc-metadata-x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/complianceiq/sa/auth-service")
        .header("grpc-metadata-x-ciq-client-address", "198.51.100.1")
        .header("x-request-id", "r-1")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .header("x-user-id", "forged")
        .header("x-organization-id", "forged")
        .header("x-forwarded-for", "203.0.113.9")
        .header("cookie", "session=secret")
        .header("x-custom", "not on the list")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let metadata: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let metadata = &metadata["metadata"];
    assert_eq!(metadata["tenant-hint"], "blue", "Grpc-Metadata-* travels without its prefix");
    assert_eq!(metadata["x-request-id"], "r-1");
    assert_eq!(metadata["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_eq!(metadata["x-forwarded-for"], "127.0.0.1", "the edge says who called, not the client");
    assert_eq!(metadata["x-ciq-client-address"], "127.0.0.1");
    for absent in [
        "x-user-id",
        "x-organization-id",
        "authorization",
        "cookie",
        "x-custom",
        "grpc-timeout",
        "x-forwarded-client-cert",
    ] {
        assert!(metadata.get(absent).is_none(), "{absent} must not reach the backend: {metadata}");
    }

    // Native gRPC: the client's metadata passes, except identity headers and its own address claim.
    let channel = tonic::transport::Endpoint::from_shared(edge.base.clone()).unwrap().connect().await.unwrap();
    let mut request = Request::new(HeadersRequest {});
    for (key, value) in [
        ("x-user-id", "forged"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-ciq-client-address", "198.51.100.1"),
        ("x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/complianceiq/sa/auth-service"),
        ("tenant-hint", "green"),
    ] {
        request.metadata_mut().insert(key, value.parse().unwrap());
    }
    let metadata = proto::conformance_service_client::ConformanceServiceClient::new(channel)
        .headers(request)
        .await
        .unwrap()
        .into_inner()
        .metadata;
    assert_eq!(metadata.get("tenant-hint").map(String::as_str), Some("green"));
    assert_eq!(metadata.get("x-forwarded-for").map(String::as_str), Some("127.0.0.1"));
    assert!(!metadata.contains_key("x-user-id"));
    assert!(!metadata.contains_key("x-forwarded-client-cert"), "a client never claims a module's identity");
    assert_eq!(metadata.get("x-ciq-client-address").map(String::as_str), Some("127.0.0.1"));
    assert_eq!(metadata.get("x-request-id").map(String::len), Some(36), "a request id is assigned");
}

/// HTTP/2 servers close a connection whose peer makes them reset too many streams (h2 allows
/// 1024); a pass-through that ended request streams late did, and broke under load.
#[tokio::test]
async fn a_backend_connection_outlives_many_passthrough_calls() {
    let edge = edge().await;
    let channel = tonic::transport::Endpoint::from_shared(edge.base.clone()).unwrap().connect().await.unwrap();
    let mut client = proto::conformance_service_client::ConformanceServiceClient::new(channel);
    for n in 0..1500 {
        let sent = Everything { text: n.to_string(), ..Default::default() };
        let echoed = client.echo(sent.clone()).await.unwrap_or_else(|status| panic!("call {n}: {status:?}"));
        assert_eq!(echoed.into_inner(), sent);
    }
}

#[tokio::test]
async fn the_openapi_document_covers_the_conformance_features() {
    let edge = edge().await;
    let (status, document) = edge.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/v1/echo",
        "/v1/{name}",
        "/v1/parents/{nested.id}/items/{text}",
        "/v1/files/{path}",
        "/v1/items/{text}:archive",
        "/v1/alternate/{text}",
    ] {
        assert!(paths.contains_key(path), "{path} missing: {:?}", paths.keys().collect::<Vec<_>>());
    }
    let search: Vec<&str> = document["paths"]["/v1/search"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(search.contains(&"nested.kind") && search.contains(&"colors") && !search.contains(&"labels"), "{search:?}");
    let _ = Message::encode_to_vec(&Everything::default());
}

/// The console's files come from the binary under a policy that runs only the edge's own
/// script; the paths mailed links use lead to the console; nothing else is served as a file.
#[tokio::test]
async fn the_edge_serves_the_console_under_a_strict_policy() {
    let edge = edge().await;
    for (path, content_type, marker) in [
        ("/", "text/html", "/console/app.js"),
        ("/verify-email?token=abc", "text/html", "/console/app.js"),
        ("/invitations/accept?token=abc", "text/html", "/console/app.js"),
        ("/console/app.js", "text/javascript", "grpc-web"),
        ("/console/app.css", "text/css", "--accent"),
    ] {
        let (status, headers, body) = edge.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let served = headers["content-type"].to_str().unwrap();
        assert!(served.starts_with(content_type), "{path}: {served}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(body.as_str().unwrap().contains(marker), "{path} lacks {marker}");
    }
    let (status, headers, body) = edge.call(reqwest::Method::HEAD, "/console/app.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-length"].to_str().unwrap().parse::<usize>().unwrap() > 10_000);
    assert_eq!(body, Value::String(String::new()));
    // Not the console's: the REST router answers, as before.
    let (status, _) = edge.get("/console/other.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = edge.call(reqwest::Method::POST, "/", Some("{}")).await;
    assert_ne!(status, StatusCode::OK);
}
