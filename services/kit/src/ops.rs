//! The operations port of a process: plain HTTP (no mesh certificate needed, so the kubelet
//! and Prometheus can reach it) serving gRPC health for probes, `GET /metrics` and
//! `GET /healthz`. It speaks HTTP/1.1 and HTTP/2 on one listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic_health::server::HealthReporter;
use tower::Service;

use crate::metrics::Metrics;

/// Health and metrics of this process.
pub struct Operations {
    /// Per-service and overall (`""`) serving status, as the probes see it.
    pub health: HealthReporter,
    health_service: tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
    /// Call metrics.
    pub metrics: Arc<Metrics>,
}

impl Operations {
    /// Everything NOT_SERVING until modules report in.
    pub fn new() -> Self {
        let health = HealthReporter::new();
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        Self { health, health_service, metrics: Arc::new(Metrics::new()) }
    }

    /// Serves `listener` until `stop`.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) -> Result<(), String> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "accepting an operations connection");
                        continue;
                    }
                },
            };
            let operations = self.clone();
            let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let operations = operations.clone();
                async move { Ok::<_, Infallible>(operations.handle(request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "operations connection ended");
                }
            });
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
        Ok(())
    }

    async fn handle(&self, request: http::Request<hyper::body::Incoming>) -> http::Response<Body> {
        let path = request.uri().path();
        if path.starts_with("/grpc.health.v1.Health/") {
            let mut health = self.health_service.clone();
            let request = request.map(Body::new);
            return match health.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
        }
        match (request.method(), path) {
            (&http::Method::GET, "/metrics") => text(
                http::StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics.encode(),
            ),
            (&http::Method::GET, "/healthz") => text(http::StatusCode::OK, "text/plain", "ok\n".into()),
            (_, "/metrics" | "/healthz") => {
                text(http::StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n".into())
            }
            _ => text(
                http::StatusCode::NOT_FOUND,
                "text/plain",
                "the operations port serves /metrics, /healthz and grpc.health.v1.Health\n".into(),
            ),
        }
    }
}

impl Default for Operations {
    fn default() -> Self {
        Self::new()
    }
}

fn text(status: http::StatusCode, content_type: &'static str, body: String) -> http::Response<Body> {
    let mut response = http::Response::new(Body::new(Full::new(bytes::Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}
