//! One gRPC server per module: the module's services, gRPC health (per service and
//! overall) and server reflection in both v1 and v1alpha (older grpcurl speaks v1alpha).

use std::convert::Infallible;
use std::net::SocketAddr;

use complianceiq_proto::FILE_DESCRIPTOR_SET;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::audit::AuditLayer;
use crate::auth::layer::{AccessControl, AccessLayer};
use crate::ids::ModuleName;
use crate::mesh::{Mesh, MeshPolicy, MeshPolicyLayer};
use crate::metrics::MetricsLayer;
use crate::ops::Operations;
use std::sync::Arc;

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// What every module server enforces.
pub(crate) struct Guards {
    pub(crate) mesh: Arc<Mesh>,
    pub(crate) policy: Arc<MeshPolicy>,
    pub(crate) access: Arc<AccessControl>,
    pub(crate) operations: Arc<Operations>,
    /// The module's database, whose outbox takes the audit entries of its mutating calls.
    pub(crate) audit: Option<crate::db::ModuleDatabase>,
}

/// Serves until `shutdown`, then reports NOT_SERVING and drains in-flight calls. Callers
/// must pass the mesh (mutual TLS and the mesh policy), then the access rules.
pub(crate) async fn serve(
    module: ModuleName,
    listener: TcpListener,
    routes: Routes,
    service_names: Vec<&'static str>,
    guards: Guards,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let address: Option<SocketAddr> = listener.local_addr().ok();
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in service_names.iter().copied().chain([""]) {
        reporter.set_service_status(name, ServingStatus::Serving).await;
    }
    for name in service_names.iter().copied() {
        guards.operations.health.set_service_status(name, ServingStatus::Serving).await;
    }

    let reflection_names: Vec<&str> =
        service_names.iter().copied().chain([HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA]).collect();
    let configure = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
            .include_reflection_service(false);
        for name in &reflection_names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = configure().build_v1().map_err(|error| format!("reflection for {module}: {error}"))?;
    let reflection_v1alpha =
        configure().build_v1alpha().map_err(|error| format!("reflection for {module}: {error}"))?;

    let routes = routes.add_service(health).add_service(reflection_v1).add_service(reflection_v1alpha);
    let mut mesh_policy =
        MeshPolicyLayer::new(guards.policy, guards.mesh.scope().clone(), guards.mesh.mode(), module.0);
    if let Some(database) = &guards.audit {
        mesh_policy = mesh_policy.recording_refusals_in(database.clone());
    }
    // One stack for calls from the network and from this process alike.
    let stack = tower::ServiceBuilder::new()
        .layer(MetricsLayer::new(guards.operations.metrics.clone(), module.0))
        .layer(mesh_policy)
        // Outside the access rules, so a refused call is recorded too (with the caller the
        // access layer accepted, when it got that far).
        .option_layer(guards.audit.map(AuditLayer::new))
        .layer(AccessLayer::new(guards.access));
    let in_process = InProcess { module: module.0, inner: stack.service(routes.clone()) };
    guards.mesh.serve_locally(module.0, crate::mesh::LocalService::new(in_process));
    let draining = {
        let (shutdown, operations, mesh) = (shutdown.clone(), guards.operations.clone(), guards.mesh.clone());
        async move {
            shutdown.cancelled().await;
            mesh.stop_serving_locally(module.0);
            for name in service_names.iter().copied().chain([""]) {
                reporter.set_service_status(name, ServingStatus::NotServing).await;
                operations.health.set_service_status(name, ServingStatus::NotServing).await;
            }
        }
    };
    let incoming = guards.mesh.incoming(module.0, listener).map_err(|error| error.to_string())?;
    tonic::transport::Server::builder()
        .trace_fn(move |request| rpc_span(module.0, request.uri(), request.headers()))
        .layer(stack)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, draining)
        .await
        .map_err(|error| format!("{module} server on {address:?}: {error}"))
}

/// The span of one call a module serves, continuing the caller's trace.
fn rpc_span(module: &'static str, uri: &http::Uri, headers: &http::HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(
        "rpc",
        otel.name = %uri.path(),
        otel.kind = "server",
        rpc.system = "grpc",
        module = module,
        method = %uri.path(),
    );
    crate::telemetry::continue_trace(&span, headers);
    span
}

/// A module's server stack as called in the process: in the same span a call from the network
/// gets from the server.
#[derive(Clone)]
struct InProcess<S> {
    module: &'static str,
    inner: S,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for InProcess<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, context: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        use tracing::Instrument;
        let span = rpc_span(self.module, request.uri(), request.headers());
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(call.instrument(span))
    }
}
