//! How a service declares itself to the binary: name, design port, database group, the
//! modules it calls, its migrations, and a build function that returns its gRPC services,
//! background workers and event subscriptions. The binary composes modules from these
//! declarations only (Loki/Mimir style); nothing else lists the services.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::auth::layer::AccessControl;
use crate::auth::revocations::Revocations;
use crate::bus::EventBus;
use crate::cache::Cache;
use crate::config::{DatabaseGroup, PlatformConfig};
use crate::db::{Database, Migration, ModuleDatabase};
use crate::ids::ModuleName;
use crate::mail::Mailer;
use crate::mesh::{Mesh, MeshChannel};
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::subscription::Subscription;

/// Errors while building a module at start-up.
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// A module's declaration.
pub struct Module {
    /// `auth`, `organization`, ...
    pub name: ModuleName,
    /// Port from the design (auth 8001 ... webhook 8012).
    pub port: u16,
    /// The database group it stores in, if any.
    pub database: Option<DatabaseGroup>,
    /// Modules whose gRPC APIs it calls.
    pub calls: &'static [&'static str],
    /// Its schema, in version order.
    pub migrations: &'static [Migration],
    /// Builds its services, workers and subscriptions.
    pub build: fn(ModuleContext) -> BoxFuture<'static, Result<ModuleParts, BuildError>>,
    /// Encrypts the secrets it stores again under the current key (after a key rotation),
    /// in committed batches, so an interrupted run resumes; returns how many it re-sealed.
    pub reseal: Option<Reseal>,
}

/// A module's re-sealing of its stored secrets (see [`Module::reseal`]).
pub type Reseal = fn(ModuleDatabase, Arc<SecretBox>) -> BoxFuture<'static, Result<u64, crate::error::ApiError>>;

/// What a module gets to build itself.
pub struct ModuleContext {
    /// This module's name.
    pub name: ModuleName,
    /// Platform configuration.
    pub config: Arc<PlatformConfig>,
    pub(crate) database: Option<Database>,
    /// Cache: single-use tokens, counters, rate limits.
    pub cache: Arc<dyn Cache>,
    /// Verification of access tokens and the contracts' access rules, shared by the process.
    pub access: Arc<AccessControl>,
    /// The process's revoked tokens; the auth module revokes through it.
    pub revocations: Arc<Revocations>,
    /// Event bus (subscriptions are declared in [`ModuleParts`]; this is for the rare direct use).
    pub bus: Arc<dyn EventBus>,
    /// Encryption of secrets at rest.
    pub secrets: Arc<SecretBox>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// This process's metrics (the kit's servers record their calls; a module serving its
    /// own listener records into it).
    pub metrics: Arc<Metrics>,
    pub(crate) peers: BTreeMap<&'static str, String>,
    pub(crate) mesh: Arc<Mesh>,
}

impl ModuleContext {
    /// The module's database, scoped per tenant. An error if the module declared none.
    pub fn database(&self) -> Result<ModuleDatabase, BuildError> {
        self.database
            .as_ref()
            .map(|database| database.for_module(self.name))
            .ok_or_else(|| format!("module {} declares no database", self.name).into())
    }

    /// A lazily connecting channel to a module this one declared in `calls`, over the mesh
    /// as this module's identity.
    pub fn channel(&self, module: &str) -> Result<MeshChannel, BuildError> {
        let address = self
            .peers
            .get(module)
            .ok_or_else(|| format!("module {} calls {module} without declaring it in `calls`", self.name))?;
        Ok(self.mesh.channel(self.name.0, module, address)?)
    }
}

/// A background task, stopped by cancelling its token.
pub struct Worker {
    /// Name for logs.
    pub name: &'static str,
    /// The task.
    pub run: Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>,
}

/// Serves a module's listener itself (the gateway, which speaks REST and grpc-web as well as
/// gRPC), until the token is cancelled.
pub type Server = Box<dyn FnOnce(TcpListener, CancellationToken) -> BoxFuture<'static, Result<(), String>> + Send>;

/// What a module runs.
#[derive(Default)]
pub struct ModuleParts {
    pub(crate) routes: Routes,
    pub(crate) service_names: Vec<&'static str>,
    pub(crate) workers: Vec<Worker>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) server: Option<Server>,
}

impl ModuleParts {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a gRPC service (a generated `*Server`).
    pub fn service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    /// Serves the listener with `server` instead of the kit's gRPC server. Such a module adds
    /// no gRPC services and applies its own access control.
    pub fn server(mut self, server: Server) -> Self {
        self.server = Some(server);
        self
    }

    /// Adds a background worker.
    pub fn worker(mut self, worker: Worker) -> Self {
        self.workers.push(worker);
        self
    }

    /// Adds an event subscription.
    pub fn subscription(mut self, subscription: Subscription) -> Self {
        self.subscriptions.push(subscription);
        self
    }

    /// The fully qualified names of the gRPC services.
    pub fn service_names(&self) -> &[&'static str] {
        &self.service_names
    }
}
