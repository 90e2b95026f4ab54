//! Prometheus metrics of a process: calls started, handled by status code, and their
//! latency, per module, service and method (the go-grpc-prometheus names, plus `module`),
//! and the gateway's requests by protocol and status. The kit's servers record them through
//! [`MetricsLayer`]; the operations port serves them.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::body::Body;
use tower::{Layer, Service};

/// Latency buckets in seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    module: &'static str,
    grpc_service: String,
    grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    module: &'static str,
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EdgeLabels {
    protocol: &'static str,
    http_status: u16,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EdgeLatencyLabels {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobKindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    consumer: &'static str,
    event_type: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabels {
    dependency: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The metrics of one process.
pub struct Metrics {
    registry: Mutex<Registry>,
    started: Family<RpcLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling_seconds: Family<RpcLabels, Histogram, fn() -> Histogram>,
    edge_requests: Family<EdgeLabels, Counter>,
    edge_seconds: Family<EdgeLatencyLabels, Histogram, fn() -> Histogram>,
    events: Family<EventLabels, Counter>,
    degraded: Family<DependencyLabels, Gauge>,
    local_rate_decisions: Counter,
    jobs: Family<JobLabels, Counter>,
    jobs_running: Family<JobKindLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let started = Family::<RpcLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let handling_seconds =
            Family::<RpcLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let edge_requests = Family::<EdgeLabels, Counter>::default();
        let edge_seconds =
            Family::<EdgeLatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("grpc_server_started", "RPCs started on the server", started.clone());
        registry.register("grpc_server_handled", "RPCs completed on the server, by status code", handled.clone());
        registry.register(
            "grpc_server_handling_seconds",
            "Time from the request until the last response byte or status",
            handling_seconds.clone(),
        );
        registry.register("gateway_requests", "Requests at the edge, by protocol and status", edge_requests.clone());
        registry.register(
            "gateway_request_duration_seconds",
            "Time from the request until the response headers, at the edge",
            edge_seconds.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events_consumed",
            "Events a consumer received, by outcome: handled, retried, dead_lettered, refused (publisher \
             does not own the type)",
            events.clone(),
        );
        let degraded = Family::<DependencyLabels, Gauge>::default();
        registry.register(
            "dependency_degraded",
            "1 while the process works around a dependency: `redis` (rate limits on per-process budgets), \
             `revocation_feed` (authenticated calls refused until revocations are complete)",
            degraded.clone(),
        );
        let local_rate_decisions = Counter::default();
        registry.register(
            "rate_limit_local_decisions",
            "Rate-limit decisions taken on per-process budgets because the shared store was unreachable",
            local_rate_decisions.clone(),
        );
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Durable jobs by how an attempt went: succeeded, failed, cancelled, retried (to run again \
             later), given_back (at shutdown), waiting (until a time it chose)",
            jobs.clone(),
        );
        let jobs_running = Family::<JobKindLabels, Gauge>::default();
        registry.register("jobs_running", "Durable jobs this process is running, by kind", jobs_running.clone());
        Self {
            registry: Mutex::new(registry),
            started,
            handled,
            handling_seconds,
            edge_requests,
            edge_seconds,
            events,
            degraded,
            local_rate_decisions,
            jobs,
            jobs_running,
        }
    }

    /// Counts how an attempt of a job of `kind` went.
    pub fn record_job(&self, kind: &'static str, outcome: &'static str) {
        self.jobs.get_or_create(&JobLabels { kind, outcome }).inc();
    }

    /// Moves the number of running jobs of `kind` by `change`.
    pub fn add_running_jobs(&self, kind: &'static str, change: i64) {
        self.jobs_running.get_or_create(&JobKindLabels { kind }).inc_by(change);
    }

    /// The text exposition (OpenMetrics, which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// Records what a consumer did with an event: `handled`, `retried`, `dead_lettered` or
    /// `refused`.
    pub fn record_event(&self, consumer: &'static str, event_type: &str, outcome: &'static str) {
        self.events.get_or_create(&EventLabels { consumer, event_type: event_type.to_string(), outcome }).inc();
    }

    /// Marks a dependency worked around (`true`) or back to normal.
    pub fn set_degraded(&self, dependency: &'static str, degraded: bool) {
        self.degraded.get_or_create(&DependencyLabels { dependency }).set(i64::from(degraded));
    }

    /// Counts a rate-limit decision taken without the shared store.
    pub fn record_local_rate_decision(&self) {
        self.local_rate_decisions.inc();
    }

    /// Records one request at the edge.
    pub fn record_edge(&self, protocol: &'static str, http_status: u16, grpc_code: Option<&str>, elapsed_seconds: f64) {
        let grpc_code = grpc_code.and_then(|code| code.parse().ok()).map(code_name).unwrap_or("");
        self.edge_requests.get_or_create(&EdgeLabels { protocol, http_status, grpc_code }).inc();
        self.edge_seconds.get_or_create(&EdgeLatencyLabels { protocol }).observe(elapsed_seconds);
    }
}

/// The canonical name of a gRPC status code (`OK`, `NOT_FOUND`, ...).
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

fn status_code(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status").and_then(|value| value.to_str().ok()).and_then(|value| value.parse().ok())
}

/// Measures every call of a module's server.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    module: &'static str,
}

impl MetricsLayer {
    /// Records into `metrics` under `module`.
    pub fn new(metrics: Arc<Metrics>, module: &'static str) -> Self {
        Self { metrics, module }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner, layer: self.clone() }
    }
}

/// The service [`MetricsLayer`] wraps around a server.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    layer: MetricsLayer,
}

impl<S> Service<http::Request<Body>> for MetricsService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (service, method) = match request.uri().path().trim_start_matches('/').split_once('/') {
            Some((service, method)) => (service.to_string(), method.to_string()),
            None => (String::new(), request.uri().path().to_string()),
        };
        let labels = RpcLabels { module: self.layer.module, grpc_service: service, grpc_method: method };
        self.layer.metrics.started.get_or_create(&labels).inc();
        let observation =
            Observation { metrics: self.layer.metrics.clone(), labels: Some(labels), started: Instant::now() };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let (parts, body) = response.into_parts();
            let mut observation = observation;
            // A trailers-only response carries its status in the headers.
            if let Some(code) = status_code(&parts.headers) {
                observation.finish(code);
            }
            Ok(http::Response::from_parts(parts, Body::new(ObservedBody { inner: body, observation })))
        })
    }
}

/// One call being measured; recorded once, when its status is known or its body dropped.
struct Observation {
    metrics: Arc<Metrics>,
    labels: Option<RpcLabels>,
    started: Instant,
}

impl Observation {
    fn finish(&mut self, code: i32) {
        let Some(labels) = self.labels.take() else { return };
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics.handling_seconds.get_or_create(&labels).observe(seconds);
        let RpcLabels { module, grpc_service, grpc_method } = labels;
        let handled = HandledLabels { module, grpc_service, grpc_method, grpc_code: code_name(code) };
        self.metrics.handled.get_or_create(&handled).inc();
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        // The peer went away before the status was sent.
        self.finish(1);
    }
}

struct ObservedBody {
    inner: Body,
    observation: Observation,
}

impl HttpBody for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_code) {
                    self.observation.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.observation.finish(status.code() as i32),
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_requests_and_status_names_are_exposed() {
        let metrics = Metrics::new();
        metrics.record_edge("rest", 404, Some("5"), 0.003);
        let text = metrics.encode();
        assert!(
            text.contains(r#"gateway_requests_total{protocol="rest",http_status="404",grpc_code="NOT_FOUND"} 1"#),
            "{text}"
        );
        assert!(text.contains("gateway_request_duration_seconds_bucket"), "{text}");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}
