//! The edge: one listener serving REST/JSON (transcoded from the contracts), grpc-web (binary
//! and text, through tonic-web) and native gRPC (passed through to the owning service), with
//! one edge policy for all three (the layers of [`crate::edge`]). Server reflection and health for every public service are served here, so
//! `grpcurl <gateway> list` shows the whole public API.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use complianceiq_kit::audit::CLIENT_USER_AGENT_HEADER;
use complianceiq_kit::auth::layer::AccessControl;
use complianceiq_kit::cache::{Cache, LeasedLimits};
use complianceiq_kit::context::{CLIENT_ADDRESS_HEADER, REQUEST_ID_HEADER};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::mesh::MeshChannel;
use complianceiq_kit::metrics::Metrics;
use futures::StreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::metadata::{MetadataMap, MetadataValue};
use tower::{Layer, ServiceExt};

use crate::api_keys::ApiKeyExchange;
use crate::codec::BytesCodec;
use crate::edge::{
    Admission, BodyLimit, Cors, Deadline, EdgeService, Facts, Peer, Protocol, RecentPlans, RequestLog, Resolve, Step,
    Target, header_value, json_response, over_body_limit, refusal,
};
use crate::failures::TokenFailures;
use crate::routes::{Route, RouteTable};
use crate::status::status_json;
use crate::transcode;

/// Headers a client may not set: identities are established by the gateway from the token,
/// the client address from the connection, and a module's identity from its certificate
/// (a client's `x-forwarded-client-cert` would claim one in sidecar mode).
const IDENTITY_HEADERS: [&str; 9] = [
    "x-user-id",
    "x-organization-id",
    "x-roles",
    "x-permissions",
    "x-authenticated-user",
    "x-forwarded-for",
    CLIENT_ADDRESS_HEADER,
    CLIENT_USER_AGENT_HEADER,
    "x-forwarded-client-cert",
];
/// Headers copied from a REST request to the gRPC call (besides `Grpc-Metadata-*`).
/// The service that exchanges API keys for tokens.
const AUTH_SERVICE: &str = "complianceiq.auth.v1.AuthService";
const FORWARDED_HEADERS: [&str; 4] = ["authorization", "x-request-id", "traceparent", "tracestate"];
/// Headers of the HTTP/2 hop itself, never taken from a client's `Grpc-Metadata-*`.
const TRANSPORT_HEADERS: [&str; 7] =
    ["te", "content-type", "content-length", "host", "connection", "user-agent", "cookie"];
/// Edge settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cors_allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub timeout: Duration,
    pub client_limit: u32,
    pub tenant_limit: u32,
    pub rate_period: Duration,
    /// Proxies in front of the gateway that append to X-Forwarded-For.
    pub trusted_proxies: usize,
}

/// The gateway.
pub struct Gateway {
    pool: DescriptorPool,
    routes: Arc<RouteTable>,
    openapi: Bytes,
    backends: HashMap<String, MeshChannel>,
    access: Arc<AccessControl>,
    cache: Arc<dyn Cache>,
    settings: Settings,
    edge_services: tonic::service::Routes,
    metrics: Arc<Metrics>,
    token_failures: Arc<TokenFailures>,
    recent_plans: Arc<RecentPlans>,
    limits: Arc<LeasedLimits>,
    api_keys: Arc<ApiKeyExchange>,
}

impl Gateway {
    /// A gateway routing the services `routed` selects of `pool` to `backends` (service full
    /// name → channel).
    pub fn new(
        pool: DescriptorPool,
        routed: impl Fn(&prost_reflect::ServiceDescriptor) -> bool,
        backends: HashMap<String, MeshChannel>,
        access: Arc<AccessControl>,
        cache: Arc<dyn Cache>,
        settings: Settings,
        encoded_descriptor_sets: &[&'static [u8]],
    ) -> Result<Self, String> {
        // Error bodies (google.rpc.Status and its details) need the platform's own descriptors,
        // whatever else is routed; files already in the pool are skipped.
        let mut pool = pool;
        pool.decode_file_descriptor_set(complianceiq_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())?;
        let routes = RouteTable::from_pool(&pool, &routed)?;
        let openapi = serde_json::to_vec_pretty(&crate::openapi::document(&pool, &routes, "ComplianceIQ API", "v1"))
            .map_err(|e| e.to_string())?;
        let services: BTreeSet<String> =
            pool.services().filter(|s| routed(s)).map(|s| s.full_name().to_string()).collect();
        for service in &services {
            if !backends.contains_key(service) {
                return Err(format!("no backend for {service}"));
            }
        }
        let edge_services = edge_services(&services, encoded_descriptor_sets)?;
        let backends_auth = backends.get(AUTH_SERVICE).cloned();
        let metrics = Arc::new(Metrics::new());
        Ok(Self {
            pool,
            routes: Arc::new(routes),
            openapi: openapi.into(),
            backends,
            access,
            cache: cache.clone(),
            settings,
            edge_services,
            metrics: metrics.clone(),
            token_failures: Arc::default(),
            recent_plans: Arc::default(),
            limits: Arc::new(LeasedLimits::new(cache, metrics)),
            api_keys: Arc::new(ApiKeyExchange::new(backends_auth)),
        })
    }

    /// The plans this gateway reuses, for the plan events to update.
    pub(crate) fn recent_plans(&self) -> Arc<RecentPlans> {
        self.recent_plans.clone()
    }

    /// Records requests into the process's metrics instead of private ones.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.limits = Arc::new(LeasedLimits::new(self.cache.clone(), metrics.clone()));
        self.metrics = metrics;
        self
    }

    /// The OpenAPI document.
    pub fn openapi(&self) -> &Bytes {
        &self.openapi
    }

    /// Serves `listener` (plain, or TLS when `tls` is given) until `stop`, then drains.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        stop: CancellationToken,
    ) -> Result<(), String> {
        let stack = self.clone().stack();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection");
                        continue;
                    }
                },
            };
            // Without it, a response's last small frames (trailers) wait for the client's
            // delayed ACK: a 40 ms floor per call for clients that do not ACK at once.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "setting TCP_NODELAY");
            }
            let stack = stack.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(Peer(peer));
                stack.clone().oneshot(request)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            match &tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service);
                    let connection = graceful.watch(connection.into_owned());
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "connection ended");
                        }
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let stream = match acceptor.accept(stream).await {
                            Ok(stream) => stream,
                            Err(error) => {
                                tracing::debug!(%error, %peer, "TLS handshake failed");
                                return;
                            }
                        };
                        let connection =
                            builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service);
                        if let Err(error) = watcher.watch(connection.into_owned()).await {
                            tracing::debug!(%error, "connection ended");
                        }
                    });
                }
            }
        }
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(Duration::from_secs(15)) => tracing::warn!("connections still open after 15 s; closing"),
        }
        Ok(())
    }

    /// Ready when every backend answers its health check.
    async fn readiness(&self) -> Response<Body> {
        let mut distinct: HashMap<String, MeshChannel> = HashMap::new();
        for (service, channel) in &self.backends {
            let module = service.split('.').nth(1).unwrap_or(service).to_string();
            distinct.entry(module).or_insert_with(|| channel.clone());
        }
        let checks = distinct.into_iter().map(|(module, channel)| async move {
            let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
            let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
            let serving = tokio::time::timeout(Duration::from_secs(2), client.check(request))
                .await
                .ok()
                .and_then(Result::ok)
                .is_some_and(|response| {
                    response.into_inner().status() == tonic_health::pb::health_check_response::ServingStatus::Serving
                });
            (module, serving)
        });
        let results = futures::future::join_all(checks).await;
        let mut down: Vec<String> = results.into_iter().filter(|(_, ok)| !ok).map(|(module, _)| module).collect();
        down.sort();
        if down.is_empty() {
            json_response(StatusCode::OK, r#"{"status":"READY"}"#)
        } else {
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "NOT_READY", "unavailable": down}).to_string(),
            )
        }
    }

    fn metadata_for(&self, headers: &HeaderMap, client: IpAddr, request_id: &str) -> MetadataMap {
        let mut forwarded = HeaderMap::new();
        for name in FORWARDED_HEADERS {
            if let Some(value) = headers.get(name) {
                forwarded.insert(HeaderName::from_static(name), value.clone());
            }
        }
        for (name, value) in headers {
            // Not a way around the allowlist: no identity, credentials, request id or
            // transport headers under the prefix.
            if let Some(key) = name.as_str().strip_prefix("grpc-metadata-")
                && !IDENTITY_HEADERS.contains(&key)
                && !FORWARDED_HEADERS.contains(&key)
                && !key.starts_with("grpc-")
                && !TRANSPORT_HEADERS.contains(&key)
                && let Ok(key) = HeaderName::from_bytes(key.as_bytes())
            {
                forwarded.insert(key, value.clone());
            }
        }
        forwarded.insert(REQUEST_ID_HEADER, header_value(request_id));
        forwarded.insert("x-forwarded-for", header_value(client));
        forwarded.insert(CLIENT_ADDRESS_HEADER, header_value(client));
        if let Some(agent) = headers.get(header::USER_AGENT) {
            forwarded.insert(CLIENT_USER_AGENT_HEADER, agent.clone());
        }
        MetadataMap::from_headers(forwarded)
    }

    async fn call_rest(
        &self,
        route: &Route,
        bindings: &[(String, String)],
        parts: &http::request::Parts,
        body: &[u8],
        client: IpAddr,
        request_id: &str,
    ) -> Result<Response<Body>, tonic::Status> {
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
        let message = transcode::request_message(route, bindings, parts.uri.query(), content_type, body)
            .map_err(tonic::Status::from)?;
        let channel = self.backend(&route.rpc_path)?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| unavailable(&route.rpc_path, &e))?;
        let mut request = tonic::Request::new(transcode::encode(&message));
        *request.metadata_mut() = self.metadata_for(&parts.headers, client, request_id);
        let raw = route.method.output().full_name() == transcode::HTTP_BODY;
        if raw
            && let Some(cookie) =
                parts.headers.get(header::COOKIE).and_then(|v| MetadataValue::try_from(v.as_bytes()).ok())
        {
            // Browser endpoints (HttpBody answers) see the browser's cookies: a single sign-on
            // binds its state to the browser that started it.
            request.metadata_mut().insert("cookie", cookie);
        }
        let path: http::uri::PathAndQuery = route.rpc_path.parse().map_err(|_| tonic::Status::internal("RPC path"))?;
        if route.method.is_client_streaming() {
            return Err(tonic::Status::unimplemented("client-streaming RPCs are not offered over REST; use gRPC"));
        }
        if route.method.is_server_streaming() {
            let stream = grpc
                .server_streaming(request, path, BytesCodec)
                .await
                .map_err(|status| backend_failure(&route.rpc_path, status))?
                .into_inner();
            return Ok(self.ndjson(route, stream));
        }
        let response =
            grpc.unary(request, path, BytesCodec).await.map_err(|status| backend_failure(&route.rpc_path, status))?;
        if raw {
            return raw_response(route, response);
        }
        let json = transcode::response_json(route, response.get_ref()).map_err(tonic::Status::from)?;
        Ok(json_response(StatusCode::OK, json))
    }

    /// A server stream as newline-delimited JSON: `{"result": …}` per message, and
    /// `{"error": …}` if the stream fails.
    fn ndjson(&self, route: &Route, stream: tonic::Streaming<Vec<u8>>) -> Response<Body> {
        let output = route.method.output();
        let field = route.response_body.clone();
        let pool = self.pool.clone();
        let lines = stream.map(move |item| {
            let line = match item {
                Ok(bytes) => prost_reflect::DynamicMessage::decode(output.clone(), bytes.as_slice())
                    .map_err(|e| ApiError::internal(e.to_string()))
                    .and_then(|message| transcode::message_json(&message, field.as_ref()))
                    .map(|json| format!(r#"{{"result":{}}}"#, String::from_utf8_lossy(&json)))
                    .unwrap_or_else(|error| {
                        let status: tonic::Status = error.into();
                        format!(r#"{{"error":{}}}"#, String::from_utf8_lossy(&status_json(&pool, &status)))
                    }),
                Err(status) => format!(r#"{{"error":{}}}"#, String::from_utf8_lossy(&status_json(&pool, &status))),
            };
            Ok::<_, Infallible>(Frame::data(Bytes::from(line + "\n")))
        });
        let mut response = Response::new(Body::new(StreamBody::new(lines)));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        response
    }

    fn backend(&self, rpc_path: &str) -> Result<MeshChannel, tonic::Status> {
        let service = rpc_path.trim_start_matches('/').split('/').next().unwrap_or_default();
        self.backends
            .get(service)
            .cloned()
            .ok_or_else(|| tonic::Status::unimplemented(format!("{rpc_path} is not routed by this gateway")))
    }

    /// The edge policy's layers around [`Gateway::dispatch`].
    fn stack(self: Arc<Self>) -> impl EdgeService {
        let settings = &self.settings;
        tower::ServiceBuilder::new()
            .layer(Step::new(RequestLog { metrics: self.metrics.clone(), trusted_proxies: settings.trusted_proxies }))
            .layer(Step::new(Cors { allowed_origins: settings.cors_allowed_origins.clone(), pool: self.pool.clone() }))
            .layer(Step::new(Resolve { routes: self.routes.clone(), pool: self.pool.clone() }))
            .layer(Step::new(Admission {
                routes: self.routes.clone(),
                api_keys: self.api_keys.clone(),
                access: self.access.clone(),
                cache: self.cache.clone(),
                limits: self.limits.clone(),
                token_failures: self.token_failures.clone(),
                recent_plans: self.recent_plans.clone(),
                pool: self.pool.clone(),
                client_limit: settings.client_limit,
                tenant_limit: settings.tenant_limit,
                rate_period: settings.rate_period,
            }))
            .layer(Step::new(Deadline { timeout: settings.timeout, pool: self.pool.clone() }))
            .layer(Step::new(BodyLimit { max_bytes: settings.max_body_bytes }))
            .service(tower::service_fn(move |request| {
                let gateway = self.clone();
                async move { Ok::<_, Infallible>(gateway.dispatch(request).await) }
            }))
    }

    /// Serves a request the layers let through.
    async fn dispatch(&self, mut request: Request<Body>) -> Response<Body> {
        let Some(facts) = request.extensions().get::<Facts>().cloned() else {
            return refusal(&self.pool, Protocol::Rest, &tonic::Status::internal("the edge stack is misassembled"));
        };
        let target = request.extensions_mut().remove::<Target>();
        match (facts.protocol, target) {
            (Protocol::Health, _) => json_response(StatusCode::OK, r#"{"status":"SERVING"}"#),
            (Protocol::Ready, _) => self.readiness().await,
            (Protocol::OpenApi, _) => json_response(StatusCode::OK, self.openapi.clone()),
            (Protocol::Console, _) => crate::console::serve(&request),
            (Protocol::Grpc, None) => match self.edge_services.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            (Protocol::Rest, Some(Target { rest: Some((route, bindings)), .. })) => {
                match self.rest(request, &route, &bindings, &facts).await {
                    Ok(response) => response,
                    Err(status) => refusal(&self.pool, Protocol::Rest, &status),
                }
            }
            (Protocol::Grpc | Protocol::GrpcWeb, Some(target)) => self.forward(request, &target.rpc_path, &facts).await,
            (protocol, _) => refusal(&self.pool, protocol, &tonic::Status::internal("the edge stack is misassembled")),
        }
    }

    async fn rest(
        &self,
        request: Request<Body>,
        route: &Route,
        bindings: &[(String, String)],
        facts: &Facts,
    ) -> Result<Response<Body>, tonic::Status> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(status) if over_body_limit(&status) => {
                let status: tonic::Status = ApiError::invalid_field(
                    "body",
                    "TOO_LARGE",
                    format!("the request body exceeds {} bytes", self.settings.max_body_bytes),
                )
                .into();
                let mut response = refusal(&self.pool, Protocol::Rest, &status);
                *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                return Ok(response);
            }
            Err(status) => {
                return Err(ApiError::invalid_field("body", "UNREADABLE", format!("the request body: {status}")).into());
            }
        };
        self.call_rest(route, bindings, &parts, &body, facts.client, &facts.request_id).await
    }

    /// Passes a gRPC or grpc-web call to the backend owning it.
    async fn forward(&self, request: Request<Body>, rpc_path: &str, facts: &Facts) -> Response<Body> {
        let channel = match self.backend(rpc_path) {
            Ok(channel) => channel,
            Err(status) => return refusal(&self.pool, facts.protocol, &status),
        };
        let (mut parts, body) = request.into_parts();
        for name in IDENTITY_HEADERS {
            parts.headers.remove(name);
        }
        // grpc-web arrives over HTTP/1.1; the backend hop is HTTP/2, which names the backend
        // in `:authority` (the channel sets it), so the client's `host` must not travel on.
        parts.headers.remove(header::HOST);
        parts.version = http::Version::HTTP_2;
        parts.headers.insert("x-forwarded-for", header_value(facts.client));
        parts.headers.insert(CLIENT_ADDRESS_HEADER, header_value(facts.client));
        if let Some(agent) = parts.headers.get(header::USER_AGENT).cloned() {
            parts.headers.insert(CLIENT_USER_AGENT_HEADER, agent);
        }
        parts.headers.insert(REQUEST_ID_HEADER, header_value(&facts.request_id));
        let request = Request::from_parts(parts, body);
        let forward = tower::service_fn(move |request: Request<Body>| {
            let channel = channel.clone();
            async move {
                let module = request.uri().path().split('.').nth(1).unwrap_or("backend").to_string();
                let request = request.map(|body| Body::new(UnsizedBody(body)));
                Ok::<_, Infallible>(match channel.oneshot(request).await {
                    Ok(response) => response,
                    Err(error) => unavailable(&module, &error).into_http(),
                })
            }
        });
        let response = if facts.protocol == Protocol::GrpcWeb {
            tonic_web::GrpcWebLayer::new().layer(forward).oneshot(request).await
        } else {
            forward.oneshot(request).await
        };
        match response {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// A body that announces no length. tonic-web passes the encoded body's exact size hint
/// through decoding, so the backend hop would announce a wrong content-length; the end of
/// the stream is still reported as soon as it is known, so no stream has to be reset.
struct UnsizedBody(Body);

impl hyper::body::Body for UnsizedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, tonic::Status>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

/// A status the backend sent passes as it is; one made from a transport failure (it keeps the
/// error as its source) gets a message naming what is unavailable, not the socket's words.
/// A `google.api.HttpBody` answer as the HTTP response itself, with the backend's
/// `content-disposition` (a download's file name) and `set-cookie` carried over; a
/// `location` makes it a redirect (303 See Other: browser endpoints such as single sign-on).
fn raw_response(route: &Route, response: tonic::Response<Vec<u8>>) -> Result<Response<Body>, tonic::Status> {
    let (content_type, data) = transcode::http_body(route, response.get_ref()).map_err(tonic::Status::from)?;
    let mut http = Response::new(crate::edge::full(data));
    let metadata = response.metadata();
    let headers = http.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, crate::edge::header_value(content_type));
    if let Some(disposition) = metadata.get("content-disposition").and_then(|v| v.to_str().ok()) {
        headers.insert(http::header::CONTENT_DISPOSITION, crate::edge::header_value(disposition));
    }
    for cookie in metadata.get_all("set-cookie").iter().filter_map(|v| http::HeaderValue::from_bytes(v.as_bytes()).ok())
    {
        headers.append(http::header::SET_COOKIE, cookie);
    }
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("private, no-store"));
    if let Some(location) = metadata.get("location").and_then(|v| http::HeaderValue::from_bytes(v.as_bytes()).ok()) {
        headers.insert(http::header::LOCATION, location);
        *http.status_mut() = StatusCode::SEE_OTHER;
    }
    Ok(http)
}

fn backend_failure(target: &str, status: tonic::Status) -> tonic::Status {
    match std::error::Error::source(&status) {
        Some(transport) => unavailable(target, transport),
        None => status,
    }
}

fn unavailable(target: &str, error: &(dyn std::error::Error + 'static)) -> tonic::Status {
    // The whole chain: "transport error" alone does not tell an operator what broke.
    let mut detail = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        source = cause.source();
    }
    tracing::warn!(%target, %detail, "backend unavailable");
    tonic::Status::unavailable(format!("{target} is unavailable; try again"))
}

/// Health (per public service) and reflection (v1 and v1alpha) at the edge.
fn edge_services(
    services: &BTreeSet<String>,
    encoded_sets: &[&'static [u8]],
) -> Result<tonic::service::Routes, String> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let names: Vec<String> = services.iter().cloned().chain([String::new()]).collect();
    tokio::spawn(async move {
        for name in names {
            reporter.set_service_status(name, tonic_health::ServingStatus::Serving).await;
        }
        // The reporter must outlive the statuses it set.
        std::future::pending::<()>().await;
    });
    let configure = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
            .include_reflection_service(false);
        for set in encoded_sets {
            builder = builder.register_encoded_file_descriptor_set(set);
        }
        for name in services.iter().map(String::as_str).chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]) {
            builder = builder.with_service_name(name);
        }
        builder
    };
    let v1 = configure().build_v1().map_err(|e| e.to_string())?;
    let v1alpha = configure().build_v1alpha().map_err(|e| e.to_string())?;
    Ok(tonic::service::Routes::new(health).add_service(v1).add_service(v1alpha).prepare())
}
