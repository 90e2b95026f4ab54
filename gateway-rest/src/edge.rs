//! The edge policy as a stack of single-purpose tower layers, one stack for REST/JSON,
//! grpc-web and native gRPC, outermost first:
//!
//! 1. [`RequestLog`]: request id, trace span, client address, metrics and the access log line;
//! 2. [`Cors`]: answers preflights, marks responses for allowed origins;
//! 3. [`Resolve`]: which RPC the request calls (a REST route is looked up; gRPC names it);
//! 4. [`Admission`]: who calls (the token against the RPC's access rule), then rate limits;
//! 5. [`Deadline`]: the edge's timeout;
//! 6. [`BodyLimit`]: the request body's size limit.
//!
//! A layer learns what the outer ones found from the request's extensions ([`Facts`],
//! [`Target`]) and answers a refusal in the caller's protocol ([`refusal`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use complianceiq_kit::auth::layer::AccessControl;
use complianceiq_kit::cache::{Cache, LeasedLimits, RateDecision};
use complianceiq_kit::context::{REQUEST_ID_HEADER, client_among_hops};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::metrics::Metrics;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use prost_reflect::DescriptorPool;
use tonic::body::Body;
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use crate::api_keys::{self, ApiKeyExchange};
use crate::failures::TokenFailures;
use crate::routes::{Lookup, Route, RouteTable};
use crate::status::{http_status, retry_after_seconds, status_json};
use crate::template::Bindings;

/// Headers browsers may read from responses.
const EXPOSED_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin, x-request-id, \
                               ratelimit-limit, ratelimit-remaining, ratelimit-reset, retry-after";
const ALLOWED_REQUEST_HEADERS: [&str; 9] = [
    "authorization",
    "x-api-key",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "x-request-id",
    "traceparent",
    "accept",
];

/// How a request is to be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Preflight,
    Health,
    Ready,
    OpenApi,
    Console,
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
            Self::Console => "console",
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Rest => "rest",
        }
    }

    fn of(request: &Request<Body>) -> Self {
        let headers = request.headers();
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if request.method() == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return Self::Preflight;
        }
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => return Self::Health,
            (&Method::GET, "/readyz") => return Self::Ready,
            (&Method::GET, "/openapi.json") => return Self::OpenApi,
            _ => {}
        }
        if crate::console::is_console(request) {
            return Self::Console;
        }
        if content_type.starts_with("application/grpc-web") {
            Self::GrpcWeb
        } else if content_type.starts_with("application/grpc") {
            Self::Grpc
        } else {
            Self::Rest
        }
    }
}

/// The connection's peer, set by the listener on every request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub SocketAddr);

/// What [`RequestLog`] establishes about every request.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    pub protocol: Protocol,
    pub request_id: String,
    pub client: IpAddr,
}

/// The RPC a request calls, set by [`Resolve`]; absent for the edge's own endpoints.
#[derive(Clone)]
pub(crate) struct Target {
    pub rpc_path: String,
    /// For REST: the route and the values its path template bound.
    pub rest: Option<(Arc<Route>, Bindings)>,
}

pub(crate) type EdgeFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// A service of the stack: never fails (refusals are responses) and always ready.
pub(crate) trait EdgeService:
    Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static> + Clone + Send + 'static
{
}

impl<T> EdgeService for T where
    T: Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}

/// One step of the edge policy, around the rest of the stack (`next`).
pub(crate) trait Policy: Send + Sync + 'static {
    fn apply<S: EdgeService>(self: Arc<Self>, request: Request<Body>, next: S) -> EdgeFuture;
}

/// The layer of a [`Policy`].
pub(crate) struct Step<P>(Arc<P>);

impl<P> Step<P> {
    pub(crate) fn new(policy: P) -> Self {
        Self(Arc::new(policy))
    }
}

impl<P, S> Layer<S> for Step<P> {
    type Service = Stepped<P, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Stepped { policy: self.0.clone(), inner }
    }
}

/// A [`Policy`] applied to a service.
pub(crate) struct Stepped<P, S> {
    policy: Arc<P>,
    inner: S,
}

impl<P, S: Clone> Clone for Stepped<P, S> {
    fn clone(&self) -> Self {
        Self { policy: self.policy.clone(), inner: self.inner.clone() }
    }
}

impl<P: Policy, S: EdgeService> Service<Request<Body>> for Stepped<P, S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = EdgeFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> EdgeFuture {
        self.policy.clone().apply(request, self.inner.clone())
    }
}

async fn call_next<S: EdgeService>(next: S, request: Request<Body>) -> Response<Body> {
    match next.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn facts(request: &Request<Body>) -> Facts {
    request.extensions().get::<Facts>().cloned().unwrap_or(Facts {
        protocol: Protocol::Rest,
        request_id: String::new(),
        client: IpAddr::from([0, 0, 0, 0]),
    })
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Body::new(Full::new(bytes.into()).map_err(|never: Infallible| match never {}))
}

pub(crate) fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn header_value(value: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&value.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A refusal in the caller's protocol: a JSON `google.rpc.Status` with the HTTP status of its
/// code (the code kept in the response's extensions for the log), or a trailers-only gRPC
/// answer.
pub(crate) fn refusal(pool: &DescriptorPool, protocol: Protocol, status: &tonic::Status) -> Response<Body> {
    let content_type = match protocol {
        Protocol::Grpc => "application/grpc",
        Protocol::GrpcWeb => "application/grpc-web+proto",
        _ => {
            let mut response = json_response(http_status(status.code()), status_json(pool, status));
            response.extensions_mut().insert(status.code());
            if let Some(seconds) = retry_after_seconds(status) {
                response.headers_mut().insert(header::RETRY_AFTER, header_value(seconds.max(1)));
            }
            return response;
        }
    };
    let mut response = status.clone().into_http::<Body>();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Request id, span, client address, metrics and the access log.
pub(crate) struct RequestLog {
    pub metrics: Arc<Metrics>,
    /// Proxies in front of the gateway that append to X-Forwarded-For.
    pub trusted_proxies: usize,
}

impl RequestLog {
    fn client_address(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        if self.trusted_proxies == 0 {
            return peer;
        }
        // Every X-Forwarded-For line, in order; an unparsable hop ends the chain there.
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map_while(|hop| hop.trim().parse().ok())
            .collect();
        client_among_hops(&hops, peer, self.trusted_proxies)
    }
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

impl Policy for RequestLog {
    fn apply<S: EdgeService>(self: Arc<Self>, mut request: Request<Body>, next: S) -> EdgeFuture {
        let span = tracing::info_span!(
            "request",
            otel.name = %format_args!("{} {}", request.method(), request.uri().path()),
            otel.kind = "server",
            module = "gateway",
            http.request.method = %request.method(),
            url.path = %request.uri().path(),
        );
        complianceiq_kit::telemetry::continue_trace(&span, request.headers());
        let peer = request.extensions().get::<Peer>().map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.0.ip());
        let facts = Facts {
            protocol: Protocol::of(&request),
            request_id: request_id(request.headers()),
            client: self.client_address(request.headers(), peer),
        };
        request.extensions_mut().insert(facts.clone());
        let (method, path) = (request.method().clone(), request.uri().path().to_string());
        Box::pin(
            async move {
                let started = Instant::now();
                let mut response = call_next(next, request).await;
                response.headers_mut().insert(REQUEST_ID_HEADER, header_value(&facts.request_id));
                // gRPC answers carry their code in headers (trailers-only) or trailers; REST
                // errors leave it in the response's extensions.
                let status = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .or_else(|| response.extensions().get::<tonic::Code>().map(|code| (*code as i32).to_string()))
                    .unwrap_or_default();
                let elapsed = started.elapsed();
                self.metrics.record_edge(
                    facts.protocol.label(),
                    response.status().as_u16(),
                    (!status.is_empty()).then_some(status.as_str()),
                    elapsed.as_secs_f64(),
                );
                tracing::info!(
                    target: "access",
                    request_id = %facts.request_id,
                    protocol = ?facts.protocol,
                    %method,
                    %path,
                    http_status = response.status().as_u16(),
                    grpc_status = %status,
                    client = %facts.client,
                    latency_ms = elapsed.as_secs_f64() * 1000.0,
                    trace_id = complianceiq_kit::telemetry::current_trace_id().unwrap_or_default(),
                    "request"
                );
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Cross-origin requests from the allowed origins.
pub(crate) struct Cors {
    pub allowed_origins: Vec<String>,
    pub pool: DescriptorPool,
}

impl Cors {
    fn allowed(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else { return false };
        self.allowed_origins.iter().any(|allowed| allowed == "*" || allowed == origin)
    }

    fn preflight(&self, request: &Request<Body>) -> Response<Body> {
        let refuse = |message: &str| {
            let status: tonic::Status =
                ApiError::PermissionDenied { reason: "CORS_REFUSED", message: message.into() }.into();
            json_response(StatusCode::FORBIDDEN, status_json(&self.pool, &status))
        };
        let Some(origin) = request.headers().get(header::ORIGIN).filter(|origin| self.allowed(origin)) else {
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
}

impl Policy for Cors {
    fn apply<S: EdgeService>(self: Arc<Self>, request: Request<Body>, next: S) -> EdgeFuture {
        if facts(&request).protocol == Protocol::Preflight {
            let response = self.preflight(&request);
            return Box::pin(async move { Ok(response) });
        }
        let origin = request.headers().get(header::ORIGIN).cloned();
        Box::pin(async move {
            let mut response = call_next(next, request).await;
            let headers = response.headers_mut();
            headers.append(header::VARY, HeaderValue::from_static("origin"));
            if let Some(origin) = origin.filter(|origin| self.allowed(origin)) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
            }
            Ok(response)
        })
    }
}

/// Finds the RPC a request calls.
pub(crate) struct Resolve {
    pub routes: Arc<RouteTable>,
    pub pool: DescriptorPool,
}

impl Policy for Resolve {
    fn apply<S: EdgeService>(self: Arc<Self>, mut request: Request<Body>, next: S) -> EdgeFuture {
        let path = request.uri().path();
        let target = match facts(&request).protocol {
            // Reflection and health of the public API are the edge's own.
            Protocol::Grpc if path.starts_with("/grpc.reflection.") || path.starts_with("/grpc.health.v1.") => None,
            Protocol::Grpc | Protocol::GrpcWeb => Some(Target { rpc_path: path.to_string(), rest: None }),
            Protocol::Rest => match self.routes.lookup(request.method(), path) {
                Lookup::Found(route, bindings) => {
                    Some(Target { rpc_path: route.rpc_path.clone(), rest: Some((route, bindings)) })
                }
                Lookup::MethodNotAllowed(allowed) => {
                    let status = tonic::Status::unimplemented(format!("{} is not allowed on {path}", request.method()));
                    let mut response = json_response(StatusCode::METHOD_NOT_ALLOWED, status_json(&self.pool, &status));
                    let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                    response.headers_mut().insert(header::ALLOW, header_value(allow.join(", ")));
                    return Box::pin(async move { Ok(response) });
                }
                Lookup::NotFound => {
                    let status: tonic::Status =
                        ApiError::NotFound { resource_type: "Route", name: format!("{} {path}", request.method()) }
                            .into();
                    let response = refusal(&self.pool, Protocol::Rest, &status);
                    return Box::pin(async move { Ok(response) });
                }
            },
            Protocol::Preflight | Protocol::Health | Protocol::Ready | Protocol::OpenApi | Protocol::Console => None,
        };
        if let Some(target) = target {
            request.extensions_mut().insert(target);
        }
        Box::pin(async move { Ok(call_next(next, request).await) })
    }
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
    plans: std::sync::Mutex<HashMap<String, (String, Instant)>>,
}

impl RecentPlans {
    /// The plan if read recently, else (as the error) the plan last read, if any.
    fn get(&self, organization: &str, now: Instant) -> Result<String, Option<String>> {
        let plans = self.plans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match plans.get(organization) {
            Some((plan, read)) if now.duration_since(*read) < PLAN_REUSE => Ok(plan.clone()),
            known => Err(known.map(|(plan, _)| plan.clone())),
        }
    }

    pub(crate) fn put(&self, organization: String, plan: String, now: Instant) {
        let mut plans = self.plans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if plans.len() >= PLANS_KEPT {
            plans.clear();
        }
        plans.insert(organization, (plan, now));
    }
}

/// Who calls (the token checked against the RPC's rule), then rate limits per client and per
/// tenant (its plan's share).
pub(crate) struct Admission {
    pub routes: Arc<RouteTable>,
    pub api_keys: Arc<ApiKeyExchange>,
    pub access: Arc<AccessControl>,
    pub cache: Arc<dyn Cache>,
    pub limits: Arc<LeasedLimits>,
    pub token_failures: Arc<TokenFailures>,
    pub recent_plans: Arc<RecentPlans>,
    pub pool: DescriptorPool,
    pub client_limit: u32,
    pub tenant_limit: u32,
    pub rate_period: Duration,
}

impl Admission {
    async fn admit(
        &self,
        rpc_path: &str,
        headers: &mut HeaderMap,
        client: IpAddr,
    ) -> Result<RateHeaders, (ApiError, Option<RateHeaders>)> {
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
        if let Some(wait) = self.token_failures.blocked(client, Instant::now()) {
            let error = ApiError::ResourceExhausted {
                reason: "TOO_MANY_INVALID_TOKENS",
                message: "too many invalid access tokens from this address; wait and sign in again".into(),
                retry_after: Some(wait),
            };
            return Err((error, None));
        }
        let key = api_keys::take_presented_key(headers);
        if let Some(key) = &key {
            self.exchange(key, headers, client).await?;
        }
        let mut verified = self.access.authorize_rule(rpc_path, rule, headers).await;
        // A key's kept token refused (the key was revoked, or its creator's permissions
        // changed): once more with a fresh exchange, which says why or reflects the change.
        if let (Some(key), Err(ApiError::Unauthenticated { .. })) = (&key, &verified) {
            self.api_keys.forget(key);
            self.exchange(key, headers, client).await?;
            verified = self.access.authorize_rule(rpc_path, rule, headers).await;
        }
        let identity = match verified {
            Ok(identity) => identity,
            Err(error) => {
                // Only tokens presented and refused: those cost a check each.
                if matches!(error, ApiError::Unauthenticated { reason, .. } if reason != "TOKEN_MISSING") {
                    self.token_failures.record(client, Instant::now());
                }
                return Err((error, None));
            }
        };
        let client_key = match &identity {
            Some(identity) => format!("rl:user:{}", identity.user_id),
            None => format!("rl:address:{client}"),
        };
        let client_decision = self.limits.check(&client_key, self.client_limit, self.rate_period).await;
        let mut shown = RateHeaders { limit: self.client_limit, decision: client_decision };
        if let Some(organization) = identity.as_ref().and_then(|i| i.organization_id) {
            let plan = self.plan(organization.to_string()).await;
            let limit = self.tenant_limit.saturating_mul(plan_multiplier(&plan));
            let tenant = self.limits.check(&format!("rl:tenant:{organization}"), limit, self.rate_period).await;
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
        Ok(shown)
    }

    /// Replaces the presented key by a token for it; a refused key counts as a bad token.
    async fn exchange(
        &self,
        key: &str,
        headers: &mut HeaderMap,
        client: IpAddr,
    ) -> Result<(), (ApiError, Option<RateHeaders>)> {
        let token = self.api_keys.token_for(key).await.map_err(|error| {
            if matches!(error, ApiError::Unauthenticated { .. }) {
                self.token_failures.record(client, Instant::now());
            }
            (error, None)
        })?;
        api_keys::present_token(headers, &token).map_err(|error| (error, None))
    }

    async fn plan(&self, organization: String) -> String {
        let now = Instant::now();
        let stale = match self.recent_plans.get(&organization, now) {
            Ok(plan) => return plan,
            Err(stale) => stale,
        };
        let plan = match self.cache.get(&plan_key(&organization)).await {
            Ok(stored) => stored.and_then(|p| String::from_utf8(p).ok()).unwrap_or_else(|| "free".into()),
            // The store is down: the plan last known, else the smallest. Never a refusal. Kept
            // for another reuse period, so an outage costs one probe per period.
            Err(error) => {
                tracing::debug!(%error, "reading an organization's plan");
                stale.unwrap_or_else(|| "free".into())
            }
        };
        self.recent_plans.put(organization, plan.clone(), now);
        plan
    }
}

impl Policy for Admission {
    fn apply<S: EdgeService>(self: Arc<Self>, request: Request<Body>, next: S) -> EdgeFuture {
        Box::pin(async move {
            let Some(target) = request.extensions().get::<Target>() else {
                return Ok(call_next(next, request).await);
            };
            let facts = facts(&request);
            let rpc_path = target.rpc_path.clone();
            let mut request = request;
            let (mut response, rate) = match self.admit(&rpc_path, request.headers_mut(), facts.client).await {
                Ok(rate) => (call_next(next, request).await, Some(rate)),
                Err((error, rate)) => (refusal(&self.pool, facts.protocol, &error.into()), rate),
            };
            if let Some(rate) = rate {
                rate.apply(response.headers_mut());
            }
            Ok(response)
        })
    }
}

/// The edge's timeout on a call.
pub(crate) struct Deadline {
    pub timeout: Duration,
    pub pool: DescriptorPool,
}

impl Policy for Deadline {
    fn apply<S: EdgeService>(self: Arc<Self>, request: Request<Body>, next: S) -> EdgeFuture {
        let protocol = facts(&request).protocol;
        Box::pin(async move {
            Ok(match tokio::time::timeout(self.timeout, call_next(next, request)).await {
                Ok(response) => response,
                Err(_) => {
                    let status =
                        tonic::Status::deadline_exceeded(format!("no answer within {} s", self.timeout.as_secs()));
                    refusal(&self.pool, protocol, &status)
                }
            })
        })
    }
}

/// The request body's size limit; reading past it fails with [`LengthLimitError`] as the
/// error's source.
///
/// [`LengthLimitError`]: http_body_util::LengthLimitError
pub(crate) struct BodyLimit {
    pub max_bytes: usize,
}

impl Policy for BodyLimit {
    fn apply<S: EdgeService>(self: Arc<Self>, request: Request<Body>, next: S) -> EdgeFuture {
        let request = request.map(|body| Body::new(Limited::new(body, self.max_bytes)));
        Box::pin(async move { Ok(call_next(next, request).await) })
    }
}

/// Whether reading a body failed at [`BodyLimit`].
pub(crate) fn over_body_limit(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}
