//! The edge: one listener serving REST/JSON (transcoded from the contracts), grpc-web (binary
//! and text, through tonic-web) and native gRPC (passed through to the owning service), with
//! one edge policy for all three: request ids, JWT validation with the public allowlist from
//! the contracts, per-client and per-tenant rate limits, CORS, body size limits, timeouts and
//! access logs. Server reflection and health for every public service are served here, so
//! `grpcurl <gateway> list` shows the whole public API.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use complianceiq_kit::auth::Identity;
use complianceiq_kit::auth::layer::AccessControl;
use complianceiq_kit::cache::{Cache, LeasedLimits, RateDecision};
use complianceiq_kit::context::{CLIENT_ADDRESS_HEADER, REQUEST_ID_HEADER, client_among_hops};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::mesh::MeshChannel;
use complianceiq_kit::metrics::Metrics;
use futures::StreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tower::{Layer, ServiceExt};
use tracing::Instrument;

use crate::codec::BytesCodec;
use crate::failures::TokenFailures;
use crate::routes::{Lookup, Route, RouteTable};
use crate::status::{http_status, retry_after_seconds, status_json};
use crate::transcode;

/// Headers a client may not set: identities are established by the gateway from the token,
/// the client address from the connection, and a module's identity from its certificate
/// (a client's `x-forwarded-client-cert` would claim one in sidecar mode).
const IDENTITY_HEADERS: [&str; 8] = [
    "x-user-id",
    "x-organization-id",
    "x-roles",
    "x-permissions",
    "x-authenticated-user",
    "x-forwarded-for",
    CLIENT_ADDRESS_HEADER,
    "x-forwarded-client-cert",
];
/// Headers copied from a REST request to the gRPC call (besides `Grpc-Metadata-*`).
const FORWARDED_HEADERS: [&str; 4] = ["authorization", "x-request-id", "traceparent", "tracestate"];
/// Headers of the HTTP/2 hop itself, never taken from a client's `Grpc-Metadata-*`.
const TRANSPORT_HEADERS: [&str; 7] =
    ["te", "content-type", "content-length", "host", "connection", "user-agent", "cookie"];
/// Headers browsers may read from responses.
const EXPOSED_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin, x-request-id, \
                               ratelimit-limit, ratelimit-remaining, ratelimit-reset, retry-after";
const ALLOWED_REQUEST_HEADERS: [&str; 8] = [
    "authorization",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "x-request-id",
    "traceparent",
    "accept",
];

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
    routes: RouteTable,
    openapi: Bytes,
    backends: HashMap<String, MeshChannel>,
    access: Arc<AccessControl>,
    cache: Arc<dyn Cache>,
    settings: Settings,
    edge_services: tonic::service::Routes,
    metrics: Arc<Metrics>,
    token_failures: TokenFailures,
    recent_plans: Arc<RecentPlans>,
    limits: LeasedLimits,
}

/// How a request is to be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Preflight,
    Health,
    Ready,
    OpenApi,
    Grpc,
    GrpcWeb,
    Rest,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::Health => "health",
            Self::Ready => "ready",
            Self::OpenApi => "openapi",
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Rest => "rest",
        }
    }
}

fn classify(request: &Request<Incoming>) -> Protocol {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return Protocol::Preflight;
    }
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => return Protocol::Health,
        (&Method::GET, "/readyz") => return Protocol::Ready,
        (&Method::GET, "/openapi.json") => return Protocol::OpenApi,
        _ => {}
    }
    if content_type.starts_with("application/grpc-web") {
        Protocol::GrpcWeb
    } else if content_type.starts_with("application/grpc") {
        Protocol::Grpc
    } else {
        Protocol::Rest
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Body::new(Full::new(bytes.into()).map_err(|never: Infallible| match never {}))
}

fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn header_value(value: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&value.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A request id the caller sent (printable, at most 128 bytes) or a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Rate-limit outcome to show the client.
#[derive(Clone, Copy, Debug)]
struct RateHeaders {
    limit: u32,
    decision: RateDecision,
}

impl RateHeaders {
    fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", header_value(self.limit));
        headers.insert("ratelimit-remaining", header_value(self.decision.remaining));
        headers.insert("ratelimit-reset", header_value(self.decision.reset_after.as_secs_f64().ceil() as u64));
        if !self.decision.allowed {
            headers.insert(
                header::RETRY_AFTER,
                header_value(self.decision.retry_after.as_secs_f64().ceil().max(1.0) as u64),
            );
        }
    }
}

/// Plans' share of the tenant rate limit.
fn plan_multiplier(plan: &str) -> u32 {
    match plan {
        "starter" => 5,
        "professional" => 25,
        "enterprise" => 100,
        _ => 1,
    }
}

/// The cache key holding an organization's plan (kept from subscription events).
pub fn plan_key(organization: &str) -> String {
    format!("plan:{organization}")
}

/// How long this process reuses an organization's plan read from the shared cache: a plan
/// change reaches every gateway's tenant limit within this time, without a cache read per
/// request.
const PLAN_REUSE: Duration = Duration::from_secs(5);
/// Plans kept at most; past that the map starts over.
const PLANS_KEPT: usize = 100_000;

/// Plans read recently, with when; the plan events this process handles update it at once.
#[derive(Default)]
pub(crate) struct RecentPlans {
    plans: std::sync::Mutex<HashMap<String, (String, std::time::Instant)>>,
}

impl RecentPlans {
    /// The plan if read recently, else (as the error) the plan last read, if any.
    fn get(&self, organization: &str, now: std::time::Instant) -> Result<String, Option<String>> {
        let plans = self.plans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match plans.get(organization) {
            Some((plan, read)) if now.duration_since(*read) < PLAN_REUSE => Ok(plan.clone()),
            known => Err(known.map(|(plan, _)| plan.clone())),
        }
    }

    pub(crate) fn put(&self, organization: String, plan: String, now: std::time::Instant) {
        let mut plans = self.plans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if plans.len() >= PLANS_KEPT {
            plans.clear();
        }
        plans.insert(organization, (plan, now));
    }
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
        let metrics = Arc::new(Metrics::new());
        Ok(Self {
            pool,
            routes,
            openapi: openapi.into(),
            backends,
            access,
            cache: cache.clone(),
            settings,
            edge_services,
            metrics: metrics.clone(),
            token_failures: TokenFailures::default(),
            recent_plans: Arc::default(),
            limits: LeasedLimits::new(cache, metrics),
        })
    }

    /// The plans this gateway reuses, for the plan events to update.
    pub(crate) fn recent_plans(&self) -> Arc<RecentPlans> {
        self.recent_plans.clone()
    }

    /// Records requests into the process's metrics instead of private ones.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.limits = LeasedLimits::new(self.cache.clone(), metrics.clone());
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
            let gateway = self.clone();
            let service = hyper::service::service_fn(move |request| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(gateway.handle(request, peer).await) }
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

    /// Handles one request, in a span continuing the caller's trace.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let span = tracing::info_span!(
            "request",
            otel.name = %format_args!("{} {}", request.method(), request.uri().path()),
            otel.kind = "server",
            module = "gateway",
            http.request.method = %request.method(),
            url.path = %request.uri().path(),
        );
        complianceiq_kit::telemetry::continue_trace(&span, request.headers());
        self.respond(request, peer).instrument(span).await
    }

    async fn respond(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let id = request_id(request.headers());
        let origin = request.headers().get(header::ORIGIN).cloned();
        let (method, path) = (request.method().clone(), request.uri().path().to_string());
        let client = self.client_address(request.headers(), peer);
        let protocol = classify(&request);
        let mut response = match protocol {
            Protocol::Preflight => self.preflight(&request),
            Protocol::Health => json_response(StatusCode::OK, r#"{"status":"SERVING"}"#),
            Protocol::Ready => self.readiness().await,
            Protocol::OpenApi => json_response(StatusCode::OK, self.openapi.clone()),
            Protocol::Grpc | Protocol::GrpcWeb => self.grpc(request, client, &id, protocol).await,
            Protocol::Rest => self.rest(request, client, &id).await,
        };
        if protocol != Protocol::Preflight {
            self.cors(origin.as_ref(), response.headers_mut());
        }
        response.headers_mut().insert(REQUEST_ID_HEADER, header_value(&id));
        // gRPC answers carry their code in headers (trailers-only) or trailers; REST errors
        // leave it in the response's extensions.
        let status = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| response.extensions().get::<tonic::Code>().map(|code| (*code as i32).to_string()))
            .unwrap_or_default();
        let elapsed = started.elapsed();
        self.metrics.record_edge(
            protocol.label(),
            response.status().as_u16(),
            (!status.is_empty()).then_some(status.as_str()),
            elapsed.as_secs_f64(),
        );
        tracing::info!(
            target: "access",
            request_id = %id,
            protocol = ?protocol,
            %method,
            %path,
            http_status = response.status().as_u16(),
            grpc_status = %status,
            client = %client,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            trace_id = complianceiq_kit::telemetry::current_trace_id().unwrap_or_default(),
            "request"
        );
        response
    }

    fn client_address(&self, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
        if self.settings.trusted_proxies == 0 {
            return peer.ip();
        }
        // Every X-Forwarded-For line, in order; an unparsable hop ends the chain there.
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map_while(|hop| hop.trim().parse().ok())
            .collect();
        client_among_hops(&hops, peer.ip(), self.settings.trusted_proxies)
    }

    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else { return false };
        self.settings.cors_allowed_origins.iter().any(|allowed| allowed == "*" || allowed == origin)
    }

    fn cors(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = origin.filter(|origin| self.origin_allowed(origin)) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        }
    }

    fn preflight(&self, request: &Request<Incoming>) -> Response<Body> {
        let refuse = |message: &str| {
            let status: tonic::Status =
                ApiError::PermissionDenied { reason: "CORS_REFUSED", message: message.into() }.into();
            json_response(StatusCode::FORBIDDEN, status_json(&self.pool, &status))
        };
        let Some(origin) = request.headers().get(header::ORIGIN).filter(|origin| self.origin_allowed(origin)) else {
            return refuse("this origin may not call the API from a browser");
        };
        let requested_headers = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let unknown: Vec<&str> = requested_headers
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty() && !ALLOWED_REQUEST_HEADERS.contains(h) && !h.starts_with("grpc-metadata-"))
            .collect();
        if !unknown.is_empty() {
            return refuse(&format!("request headers not allowed: {}", unknown.join(", ")));
        }
        let mut response = Response::new(full(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, header_value(ALLOWED_REQUEST_HEADERS.join(", ")));
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
        response
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

    /// The edge policy: who calls (token checked against the RPC's rule), then rate limits
    /// per client and per tenant (its plan's share).
    async fn admit(
        &self,
        rpc_path: &str,
        headers: &HeaderMap,
        client: IpAddr,
    ) -> Result<(Option<Identity>, Option<RateHeaders>), (ApiError, Option<RateHeaders>)> {
        let rule = self.routes.access(rpc_path);
        // Calls between modules are never offered at the edge.
        if rule.is_some_and(|rule| rule.internal) {
            return Err((
                ApiError::PermissionDenied {
                    reason: "INTERNAL_RPC",
                    message: format!("{rpc_path} is called between modules only; it is not offered at the edge"),
                },
                None,
            ));
        }
        // An address that keeps presenting bad tokens is refused before any is checked.
        if let Some(wait) = self.token_failures.blocked(client, std::time::Instant::now()) {
            let error = ApiError::ResourceExhausted {
                reason: "TOO_MANY_INVALID_TOKENS",
                message: "too many invalid access tokens from this address; wait and sign in again".into(),
                retry_after: Some(wait),
            };
            return Err((error, None));
        }
        let identity = match self.access.authorize_rule(rpc_path, rule, headers).await {
            Ok(identity) => identity,
            Err(error) => {
                // Only tokens presented and refused: those cost a check each.
                if matches!(error, ApiError::Unauthenticated { reason, .. } if reason != "TOKEN_MISSING") {
                    self.token_failures.record(client, std::time::Instant::now());
                }
                return Err((error, None));
            }
        };
        let client_key = match &identity {
            Some(identity) => format!("rl:user:{}", identity.user_id),
            None => format!("rl:address:{client}"),
        };
        let period = self.settings.rate_period;
        let client_decision = self.limits.check(&client_key, self.settings.client_limit, period).await;
        let mut shown = RateHeaders { limit: self.settings.client_limit, decision: client_decision };
        if let Some(organization) = identity.as_ref().and_then(|i| i.organization_id) {
            let organization_key = organization.to_string();
            let now = std::time::Instant::now();
            let plan = match self.recent_plans.get(&organization_key, now) {
                Ok(plan) => plan,
                Err(stale) => match self.cache.get(&plan_key(&organization_key)).await {
                    Ok(stored) => {
                        let plan = stored.and_then(|p| String::from_utf8(p).ok()).unwrap_or_else(|| "free".into());
                        self.recent_plans.put(organization_key, plan.clone(), now);
                        plan
                    }
                    // The store is down: the plan last known, else the smallest. Never a refusal.
                    // Kept for another reuse period, so an outage costs one probe per period.
                    Err(error) => {
                        tracing::debug!(%error, "reading an organization's plan");
                        let plan = stale.unwrap_or_else(|| "free".into());
                        self.recent_plans.put(organization_key, plan.clone(), now);
                        plan
                    }
                },
            };
            let limit = self.settings.tenant_limit.saturating_mul(plan_multiplier(&plan));
            let tenant = self.limits.check(&format!("rl:tenant:{organization}"), limit, period).await;
            if !tenant.allowed || (client_decision.allowed && tenant.remaining < client_decision.remaining) {
                shown = RateHeaders { limit, decision: tenant };
            }
        }
        if !shown.decision.allowed {
            let error = ApiError::ResourceExhausted {
                reason: "RATE_LIMITED",
                message: "too many requests; slow down and retry after the delay given".into(),
                retry_after: Some(shown.decision.retry_after),
            };
            return Err((error, Some(shown)));
        }
        Ok((identity, Some(shown)))
    }

    fn rest_error(&self, status: &tonic::Status, rate: Option<RateHeaders>) -> Response<Body> {
        let mut response = json_response(http_status(status.code()), status_json(&self.pool, status));
        response.extensions_mut().insert(status.code());
        if let Some(rate) = rate {
            rate.apply(response.headers_mut());
        }
        if let Some(seconds) = retry_after_seconds(status) {
            response.headers_mut().insert(header::RETRY_AFTER, header_value(seconds.max(1)));
        }
        response
    }

    async fn rest(&self, request: Request<Incoming>, client: IpAddr, request_id: &str) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let route = match self.routes.lookup(&parts.method, parts.uri.path()) {
            Lookup::Found(route, bindings) => (route, bindings),
            Lookup::MethodNotAllowed(allowed) => {
                let status =
                    tonic::Status::unimplemented(format!("{} is not allowed on {}", parts.method, parts.uri.path()));
                let mut response = json_response(StatusCode::METHOD_NOT_ALLOWED, status_json(&self.pool, &status));
                let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                response.headers_mut().insert(header::ALLOW, header_value(allow.join(", ")));
                return response;
            }
            Lookup::NotFound => {
                let status: tonic::Status = ApiError::NotFound {
                    resource_type: "Route",
                    name: format!("{} {}", parts.method, parts.uri.path()),
                }
                .into();
                return self.rest_error(&status, None);
            }
        };
        let (route, bindings) = route;
        let rate = match self.admit(&route.rpc_path, &parts.headers, client).await {
            Ok((_, rate)) => rate,
            Err((error, rate)) => return self.rest_error(&error.into(), rate),
        };
        let bytes = match Limited::new(body, self.settings.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                let status: tonic::Status = ApiError::invalid_field(
                    "body",
                    "TOO_LARGE",
                    format!("the request body exceeds {} bytes", self.settings.max_body_bytes),
                )
                .into();
                let mut response = self.rest_error(&status, rate);
                *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                return response;
            }
        };
        let outcome = tokio::time::timeout(
            self.settings.timeout,
            self.call_rest(route, &bindings, &parts, &bytes, client, request_id),
        )
        .await;
        let mut response = match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(status)) => self.rest_error(&status, None),
            Err(_) => self.rest_error(
                &tonic::Status::deadline_exceeded(format!("no answer within {} s", self.settings.timeout.as_secs())),
                None,
            ),
        };
        if let Some(rate) = rate {
            rate.apply(response.headers_mut());
        }
        response
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
        let message =
            transcode::request_message(route, bindings, parts.uri.query(), body).map_err(tonic::Status::from)?;
        let channel = self.backend(&route.rpc_path)?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| unavailable(&route.rpc_path, &e))?;
        let mut request = tonic::Request::new(transcode::encode(&message));
        *request.metadata_mut() = self.metadata_for(&parts.headers, client, request_id);
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
        let response = grpc
            .unary(request, path, BytesCodec)
            .await
            .map_err(|status| backend_failure(&route.rpc_path, status))?
            .into_inner();
        let json = transcode::response_json(route, &response).map_err(tonic::Status::from)?;
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

    async fn grpc(
        &self,
        request: Request<Incoming>,
        client: IpAddr,
        request_id: &str,
        protocol: Protocol,
    ) -> Response<Body> {
        let path = request.uri().path().to_string();
        if protocol == Protocol::Grpc && (path.starts_with("/grpc.reflection.") || path.starts_with("/grpc.health.v1."))
        {
            let (parts, body) = request.into_parts();
            let request = Request::from_parts(parts, Body::new(body));
            return match self.edge_services.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
        }
        let web = protocol == Protocol::GrpcWeb;
        let content_type = if web { "application/grpc-web+proto" } else { "application/grpc" };
        let refuse = |status: tonic::Status, rate: Option<RateHeaders>| {
            let mut response = status.into_http::<Body>();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(rate) = rate {
                rate.apply(response.headers_mut());
            }
            response
        };
        let (_, rate) = match self.admit(&path, request.headers(), client).await {
            Ok(admitted) => admitted,
            Err((error, rate)) => return refuse(error.into(), rate),
        };
        let channel = match self.backend(&path) {
            Ok(channel) => channel,
            Err(status) => return refuse(status, rate),
        };
        let (mut parts, body) = request.into_parts();
        for name in IDENTITY_HEADERS {
            parts.headers.remove(name);
        }
        // grpc-web arrives over HTTP/1.1; the backend hop is HTTP/2, which names the backend
        // in `:authority` (the channel sets it), so the client's `host` must not travel on.
        parts.headers.remove(header::HOST);
        parts.version = http::Version::HTTP_2;
        parts.headers.insert("x-forwarded-for", header_value(client));
        parts.headers.insert(CLIENT_ADDRESS_HEADER, header_value(client));
        parts.headers.insert(REQUEST_ID_HEADER, header_value(request_id));
        let request = Request::from_parts(parts, Body::new(Limited::new(body, self.settings.max_body_bytes)));
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
        let call = async {
            if web {
                match tonic_web::GrpcWebLayer::new().layer(forward).oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            } else {
                match forward.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        };
        let mut response = match tokio::time::timeout(self.settings.timeout, call).await {
            Ok(response) => response,
            Err(_) => refuse(
                tonic::Status::deadline_exceeded(format!("no answer within {} s", self.settings.timeout.as_secs())),
                None,
            ),
        };
        if let Some(rate) = rate {
            rate.apply(response.headers_mut());
        }
        response
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
