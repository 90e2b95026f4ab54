//! Logs and traces. Logs are readable in a terminal or one JSON object per line in
//! production. Every span also gets an OpenTelemetry context, so W3C `traceparent` crosses
//! every hop (see [`remote_context`] and [`inject_current`]); spans are exported over OTLP
//! (gRPC) when an endpoint is configured.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, TelemetryConfig};

/// Keeps the trace pipeline alive; dropping it (or [`Telemetry::shutdown`]) flushes spans
/// still queued for export.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter.
    pub fn shutdown(mut self) {
        self.flush_and_stop();
    }

    fn flush_and_stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.force_flush();
            if let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5)) {
                eprintln!("trace export did not shut down cleanly: {error}");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

/// Installs the global subscriber, naming this process `service_name` in exported spans. A
/// second call (tests booting several platforms in one process) keeps the first. Must run
/// inside the Tokio runtime when an OTLP endpoint is configured (the exporter's channel
/// lives on it).
pub fn init(config: &TelemetryConfig, default_format: LogFormat, service_name: &str) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|error| {
        eprintln!("invalid log filter {:?} ({error}); using \"info\"", config.filter);
        EnvFilter::new("info")
    });
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match config.format.unwrap_or(default_format) {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_target(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().with_target(true).boxed(),
    };

    if !(0.0..=1.0).contains(&config.trace_sample_ratio) {
        return Err(format!("CIQ_TRACE_SAMPLE_RATIO must be between 0 and 1, not {}", config.trace_sample_ratio));
    }
    // A caller's sampling decision wins, so one trace is never half recorded.
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.trace_sample_ratio)));
    let resource = Resource::builder().with_service_name(service_name.to_string()).build();
    let mut builder = SdkTracerProvider::builder().with_sampler(sampler).with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| format!("OTLP exporter for {endpoint}: {error}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let traces = tracing_opentelemetry::layer().with_tracer(provider.tracer("complianceiq"));

    let installed = tracing_subscriber::registry().with(logs).with(traces).with(filter).try_init().is_ok();
    Ok(Telemetry { provider: installed.then_some(provider) })
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// The caller's trace context from `traceparent`/`tracestate` (empty when absent or malformed).
pub fn remote_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes `span` a child of the caller's trace, when the request carries one.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = remote_context(headers);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Writes the current span's trace context into outgoing headers. Without a recorded span
/// (no subscriber installed) the headers are left as they are.
pub fn inject_current(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// The current trace id, for logs and error reports (`None` outside a recorded trace).
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}
