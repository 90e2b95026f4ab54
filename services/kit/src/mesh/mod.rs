//! The service mesh: every call between modules goes over mutual TLS 1.3 with a SPIFFE
//! identity per module, and every module server admits only the callers the mesh policy
//! names. Certificates come from files (cert-manager in Kubernetes, generated into the data
//! directory in development) and are reloaded while the process runs. Behind a sidecar that
//! terminates mutual TLS itself (`--mesh-mode sidecar`), servers and clients speak plain
//! HTTP/2 and the sidecar's `X-Forwarded-Client-Cert` names the caller.

pub mod certs;
pub mod identity;
pub mod policy;
mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::config::{MeshMode, PlatformConfig, RunMode};
pub use certs::{CertStore, DevAuthority, ensure_dev_certificates};
pub use identity::{ServiceIdentity, TrustScope};
pub use policy::{CallerModule, MeshPolicy, MeshPolicyLayer};
pub use tls::MeshPeer;

/// A mesh set-up problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("mesh: {0}")]
pub struct MeshError(pub String);

/// The mesh as this process takes part in it.
pub struct Mesh {
    mode: MeshMode,
    scope: TrustScope,
    stores: BTreeMap<String, Arc<CertStore>>,
    reload_interval: Duration,
}

impl Mesh {
    /// Sets up the mesh for the modules this process runs (`local`). In development, a CA
    /// and certificates for every module of the platform (`all`) are created first.
    pub fn start(config: &PlatformConfig, local: &[&str], all: &[&str]) -> Result<Self, MeshError> {
        let scope =
            TrustScope { trust_domain: config.mesh.trust_domain.clone(), namespace: config.mesh.namespace.clone() };
        let reload_interval = Duration::from_millis(config.mesh.reload_ms.max(10));
        if config.mesh.mode == MeshMode::Sidecar {
            return Ok(Self { mode: MeshMode::Sidecar, scope, stores: BTreeMap::new(), reload_interval });
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
        Ok(Self { mode: MeshMode::Mtls, scope, stores, reload_interval })
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
    pub fn channel(&self, caller: &str, target: &str, address: &str) -> Result<MeshChannel, MeshError> {
        Ok(MeshChannel { inner: self.connect(caller, target, address)? })
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

/// A channel to another module that writes the current span's W3C trace context into every
/// call's metadata, so one trace follows a request across the mesh.
#[derive(Clone, Debug)]
pub struct MeshChannel {
    inner: Channel,
}

impl tower::Service<http::Request<tonic::body::Body>> for MeshChannel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, context: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, context)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        crate::telemetry::inject_current(request.headers_mut());
        self.inner.call(request)
    }
}

impl From<Channel> for MeshChannel {
    /// A channel that skips the mesh's certificates (a test backend, or a plain peer behind a
    /// sidecar); calls still carry the trace context.
    fn from(inner: Channel) -> Self {
        Self { inner }
    }
}
