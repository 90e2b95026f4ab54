//! The service mesh: every call between modules goes over mutual TLS 1.3 with a SPIFFE
//! identity per module, and every module server admits only the callers the mesh policy
//! names. Certificates come from files (cert-manager in Kubernetes, generated into the data
//! directory in development) and are reloaded while the process runs. Behind a sidecar that
//! terminates mutual TLS itself (`--mesh-mode sidecar`), servers and clients speak plain
//! HTTP/2 and the sidecar's `X-Forwarded-Client-Cert` names the caller.
//!
//! Where caller and callee run in one process (`dev`, `serve --target all`), a call skips the
//! network: the channel hands it to the callee's server stack in the process, through the same
//! layers (metrics, the mesh policy, the access rules) that a call over the network meets, with
//! the caller's identity as an extension no remote peer can set.

pub mod certs;
pub mod identity;
pub mod policy;
mod tls;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::config::{MeshMode, PlatformConfig, RunMode};
pub use certs::{CertStore, DevAuthority, ensure_dev_certificates};
pub use identity::{ServiceIdentity, TrustScope};
pub(crate) use policy::InProcessCaller;
pub use policy::{CallerModule, MeshPolicy, MeshPolicyLayer};
pub use tls::MeshPeer;

/// A mesh set-up problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("mesh: {0}")]
pub struct MeshError(pub String);

/// A module's server stack, callable in the process.
pub type LocalService =
    tower::util::BoxCloneSyncService<http::Request<tonic::body::Body>, http::Response<tonic::body::Body>, Infallible>;

/// The server stacks of this process's modules, by module, while they serve.
type LocalServices = Arc<RwLock<HashMap<&'static str, LocalService>>>;

/// The mesh as this process takes part in it.
pub struct Mesh {
    mode: MeshMode,
    scope: TrustScope,
    stores: BTreeMap<String, Arc<CertStore>>,
    reload_interval: Duration,
    local_modules: BTreeSet<String>,
    local_services: LocalServices,
}

impl Mesh {
    /// Sets up the mesh for the modules this process runs (`local`). In development, a CA
    /// and certificates for every module of the platform (`all`) are created first.
    pub fn start(config: &PlatformConfig, local: &[&str], all: &[&str]) -> Result<Self, MeshError> {
        let scope =
            TrustScope { trust_domain: config.mesh.trust_domain.clone(), namespace: config.mesh.namespace.clone() };
        let reload_interval = Duration::from_millis(config.mesh.reload_ms.max(10));
        let local_modules = local.iter().map(|module| module.to_string()).collect();
        let local_services = LocalServices::default();
        if config.mesh.mode == MeshMode::Sidecar {
            let stores = BTreeMap::new();
            return Ok(Self { mode: MeshMode::Sidecar, scope, stores, reload_interval, local_modules, local_services });
        }
        let provider = provider();
        let dir = config.mesh_cert_dir();
        if config.mode == RunMode::Development {
            ensure_dev_certificates(&dir, &scope, all, &provider)?;
        }
        let mut stores = BTreeMap::new();
        for module in local {
            let store = CertStore::load(scope.identity(module), dir.join(module), provider.clone())
                .map_err(|error| MeshError(format!("module {module}: {}", error.0)))?;
            stores.insert(module.to_string(), Arc::new(store));
        }
        Ok(Self { mode: MeshMode::Mtls, scope, stores, reload_interval, local_modules, local_services })
    }

    /// Makes `module`'s server stack callable in the process (while it serves).
    pub(crate) fn serve_locally(&self, module: &'static str, service: LocalService) {
        self.local_services.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(module, service);
    }

    /// Stops in-process calls to `module` (it is draining): they go over the network again.
    pub(crate) fn stop_serving_locally(&self, module: &str) {
        self.local_services.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(module);
    }

    /// Mutual TLS or sidecar.
    pub fn mode(&self) -> MeshMode {
        self.mode
    }

    /// Trust domain and namespace of identities.
    pub fn scope(&self) -> &TrustScope {
        &self.scope
    }

    fn store(&self, module: &str) -> Result<&Arc<CertStore>, MeshError> {
        self.stores.get(module).ok_or_else(|| MeshError(format!("this process holds no certificate for {module}")))
    }

    /// A lazily connecting channel from `caller` (a module of this process) to `target` at
    /// `address` (`http://host:port`), carrying the trace context of each call.
    /// When `target` serves in this process, calls skip the network (see the module docs).
    pub fn channel(&self, caller: &str, target: &str, address: &str) -> Result<MeshChannel, MeshError> {
        let local = self.local_modules.contains(caller).then(|| LocalRoute {
            services: self.local_services.clone(),
            target: target.to_string(),
            caller: caller.to_string(),
        });
        Ok(MeshChannel { inner: self.connect(caller, target, address)?, local, ready_local: None })
    }

    /// The transport under [`Mesh::channel`], without trace propagation.
    pub fn connect(&self, caller: &str, target: &str, address: &str) -> Result<Channel, MeshError> {
        let endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|error| MeshError(format!("address {address:?} of {target}: {error}")))?
            .tcp_nodelay(true)
            // A peer that is gone must fail the call quickly, not hang it.
            .connect_timeout(Duration::from_secs(2));
        if self.mode == MeshMode::Sidecar {
            return Ok(endpoint.connect_lazy());
        }
        let config = tls::client_config(self.store(caller)?.clone(), self.scope.identity(target))
            .map_err(|error| MeshError(format!("client TLS for {caller}: {error}")))?;
        let server_name = ServerName::try_from(format!("{target}-service"))
            .map_err(|error| MeshError(format!("module name {target:?}: {error}")))?;
        let connector =
            tls::MeshConnector { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), server_name };
        Ok(endpoint.connect_with_connector_lazy(connector))
    }

    /// Connections to `module`'s server: mutual TLS handshakes done, or plain behind a sidecar.
    pub(crate) fn incoming(
        &self,
        module: &'static str,
        listener: TcpListener,
    ) -> Result<tokio_stream::wrappers::ReceiverStream<std::io::Result<tls::MeshStream>>, MeshError> {
        let acceptor = match self.mode {
            MeshMode::Sidecar => None,
            MeshMode::Mtls => {
                let config = tls::server_config(self.store(module)?.clone())
                    .map_err(|error| MeshError(format!("server TLS for {module}: {error}")))?;
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
            }
        };
        Ok(tls::incoming(listener, acceptor, module))
    }

    /// Re-reads certificate files until `stop`; a bad set is reported and the old one kept.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(self.reload_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = BTreeMap::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            for (module, store) in &self.stores {
                match store.reload() {
                    Ok(true) => {
                        tracing::info!(module = %module, identity = %store.identity(), "mesh certificate reloaded");
                        failing.remove(module);
                    }
                    Ok(false) => {
                        failing.remove(module);
                    }
                    Err(error) => {
                        // Once per distinct problem, not every tick.
                        if failing.get(module) != Some(&error.0) {
                            tracing::warn!(module = %module, %error, "mesh certificate files are not usable yet; keeping the current ones");
                            failing.insert(module.clone(), error.0);
                        }
                    }
                }
            }
        }
    }
}

/// The one crypto backend of the platform.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where a module of this process finds another one's server stack in the process.
#[derive(Clone)]
struct LocalRoute {
    services: LocalServices,
    target: String,
    caller: String,
}

impl LocalRoute {
    fn service(&self) -> Option<LocalService> {
        self.services.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(self.target.as_str()).cloned()
    }
}

/// A channel to another module that writes the current span's W3C trace context into every
/// call's metadata, so one trace follows a request across the mesh; in the process when the
/// other module serves here.
#[derive(Clone)]
pub struct MeshChannel {
    inner: Channel,
    local: Option<LocalRoute>,
    /// The in-process stack `poll_ready` chose for the next call, if any.
    ready_local: Option<LocalService>,
}

impl std::fmt::Debug for MeshChannel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = self.local.as_ref().map(|route| route.target.as_str());
        formatter.debug_struct("MeshChannel").field("in_process_target", &target).finish_non_exhaustive()
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for MeshChannel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.ready_local = self.local.as_ref().and_then(LocalRoute::service);
        if self.ready_local.is_some() {
            return Poll::Ready(Ok(()));
        }
        tower::Service::poll_ready(&mut self.inner, context)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        crate::telemetry::inject_current(request.headers_mut());
        match (self.ready_local.take(), &self.local) {
            (Some(service), Some(route)) => {
                request.extensions_mut().insert(InProcessCaller(route.caller.clone()));
                Box::pin(async move {
                    match tower::ServiceExt::oneshot(service, request).await {
                        Ok(response) => Ok(response),
                        Err(never) => match never {},
                    }
                })
            }
            _ => Box::pin(self.inner.call(request)),
        }
    }
}

impl From<Channel> for MeshChannel {
    /// A channel that skips the mesh's certificates (a test backend, or a plain peer behind a
    /// sidecar); calls still carry the trace context.
    fn from(inner: Channel) -> Self {
        Self { inner, local: None, ready_local: None }
    }
}
