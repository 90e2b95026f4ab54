//! Starting modules: resolve the targets, connect databases (and migrate them when asked),
//! the cache and the bus, bind every listener, build each module with its context, then
//! run servers, workers, subscriptions and one outbox relay per database. The same code
//! runs every module in one process (`dev`) or a few per process (`serve --target`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::layer::AccessControl;
use crate::auth::revocations::Revocations;
use crate::auth::verifier::TokenVerifier;
use crate::bus::{EventBus, InProcessBus, NatsBus};
use crate::cache::{Cache, MemoryCache, RedisCache};
use crate::config::{DatabaseGroup, PlatformConfig, RunMode};
use crate::db::migrate::{self, KIT_MIGRATIONS, MigrationReport, MigrationSet};
use crate::db::{Backend, Database, ModuleDatabase, redact_url};
use crate::mesh::{Mesh, MeshPolicy};
use crate::module::{Module, ModuleContext};
use crate::ops::Operations;
use crate::outbox::OutboxRelay;
use crate::secrets::SecretBox;

/// The module that issues access tokens, publishes their keys and announces their revocations.
pub const TOKEN_ISSUER: &str = "auth";

/// A start-up failure, worded for the person running the binary.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn fail(context: impl std::fmt::Display) -> impl FnOnce(Box<dyn std::fmt::Display>) -> StartError {
    move |error| StartError(format!("{context}: {error}"))
}

/// How to start.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Module names to run; `all` runs every module.
    pub targets: Vec<String>,
    /// Apply pending migrations of the targeted modules first.
    pub migrate: bool,
    /// Which module may call which method of which other.
    pub policy: Arc<MeshPolicy>,
    /// Which module owns (alone may publish) each event type.
    pub event_owner: crate::subscription::EventOwner,
}

/// The running modules of this process.
pub struct RunningPlatform {
    /// Where each module's gRPC server listens.
    pub addresses: BTreeMap<&'static str, SocketAddr>,
    /// The event bus.
    pub bus: Arc<dyn EventBus>,
    /// The cache.
    pub cache: Arc<dyn Cache>,
    /// Databases by group.
    pub databases: BTreeMap<DatabaseGroup, Database>,
    /// Time from the start call until every server accepted connections.
    pub startup_time: Duration,
    /// The mesh as this process takes part in it (for channels to its modules).
    pub mesh: Arc<Mesh>,
    /// Where the operations port (health for probes, `/metrics`) listens.
    pub ops_address: SocketAddr,
    shutdown: CancellationToken,
    tasks: JoinSet<Result<(), String>>,
}

impl RunningPlatform {
    /// Waits until a task fails (returns its error) or all end.
    pub async fn wait(&mut self) -> Result<(), String> {
        while let Some(result) = self.tasks.join_next().await {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error),
                Err(join) => return Err(format!("a task panicked: {join}")),
            }
        }
        Ok(())
    }

    /// Stops servers (draining in-flight calls), workers and relays, then closes pools.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let drained =
            tokio::time::timeout(Duration::from_secs(15), async { while self.tasks.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            tracing::warn!("some tasks did not stop within 15 s; aborting them");
            self.tasks.abort_all();
        }
        for database in self.databases.values() {
            database.close().await;
        }
    }

    /// A token cancelled when the platform shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// The modules named by `targets` (`all` means every one), in declaration order.
pub fn resolve_targets<'a>(modules: &'a [Module], targets: &[String]) -> Result<Vec<&'a Module>, StartError> {
    let known: BTreeSet<&str> = modules.iter().map(|module| module.name.0).collect();
    let mut wanted = BTreeSet::new();
    for target in targets.iter().flat_map(|t| t.split(',')).map(str::trim).filter(|t| !t.is_empty()) {
        if target == "all" {
            wanted.extend(known.iter().copied());
        } else if let Some(name) = known.get(target) {
            wanted.insert(*name);
        } else {
            return Err(StartError(format!(
                "unknown module {target:?}; known modules: all, {}",
                known.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    if wanted.is_empty() {
        return Err(StartError("no module to run; pass --target all or a list of modules".into()));
    }
    Ok(modules.iter().filter(|module| wanted.contains(module.name.0)).collect())
}

/// The URL migrations use: the service URL with the admin user's credentials, and the
/// role to grant data access to (the service URL's user), when they differ.
fn admin_connection(app_url: &str, config: &PlatformConfig) -> Result<(String, Option<String>), StartError> {
    let Some(admin_user) = &config.database.admin_user else {
        return Ok((app_url.to_string(), None));
    };
    if Backend::of_url(app_url).map_err(|e| StartError(e.to_string()))? != Backend::Postgres {
        return Ok((app_url.to_string(), None));
    }
    let mut url =
        url::Url::parse(app_url).map_err(|e| StartError(format!("database URL {}: {e}", redact_url(app_url))))?;
    let app_user = url.username().to_string();
    url.set_username(admin_user).map_err(|_| StartError("database URL cannot carry a user".into()))?;
    url.set_password(config.database.admin_password.as_deref())
        .map_err(|_| StartError("database URL cannot carry a password".into()))?;
    let role = (!app_user.is_empty() && app_user != *admin_user).then_some(app_user);
    Ok((url.to_string(), role))
}

fn migration_sets(group: DatabaseGroup, modules: &[&Module]) -> Vec<MigrationSet> {
    std::iter::once(KIT_MIGRATIONS)
        .chain(
            modules
                .iter()
                .filter(|module| module.database == Some(group))
                .map(|module| MigrationSet { owner: module.name.0, migrations: module.migrations }),
        )
        .collect()
}

fn groups_of(modules: &[&Module]) -> BTreeSet<DatabaseGroup> {
    modules.iter().filter_map(|module| module.database).collect()
}

/// Applies pending migrations of `modules` to their databases, connecting as the admin user.
pub async fn migrate(
    config: &PlatformConfig,
    modules: &[&Module],
) -> Result<BTreeMap<DatabaseGroup, MigrationReport>, StartError> {
    let mut reports = BTreeMap::new();
    for group in groups_of(modules) {
        let app_url = config.database.url_for(group, &config.data_dir);
        let (admin_url, role) = admin_connection(&app_url, config)?;
        let admin = Database::connect(group, &admin_url, 2).await.map_err(|e| StartError(e.to_string()))?;
        let report = migrate::apply(&admin, &migration_sets(group, modules), role.as_deref())
            .await
            .map_err(|e| StartError(e.to_string()));
        admin.close().await;
        reports.insert(group, report?);
    }
    Ok(reports)
}

/// Starts `targets` of `modules`.
pub async fn start(
    config: PlatformConfig,
    modules: Vec<Module>,
    options: StartOptions,
) -> Result<RunningPlatform, StartError> {
    let started = Instant::now();
    crate::crypto::install_tls_crypto_provider();
    let config = Arc::new(config);
    let targets = resolve_targets(&modules, &options.targets)?;

    if options.migrate {
        migrate(&config, &targets).await?;
    }
    let mut databases = BTreeMap::new();
    for group in groups_of(&targets) {
        let url = config.database.url_for(group, &config.data_dir);
        let database = Database::connect(group, &url, config.database.max_connections)
            .await
            .map_err(|e| StartError(e.to_string()))?;
        database
            .ensure_row_level_security_applies(config.database.allow_rls_bypass)
            .await
            .map_err(|e| StartError(e.to_string()))?;
        // A module must not serve on a schema older than its code.
        let pending = migrate::pending(&database, &migration_sets(group, &targets))
            .await
            .map_err(|e| StartError(e.to_string()))?;
        if !pending.is_empty() {
            return Err(StartError(format!(
                "the {} database lacks migrations {}; run `complianceiq migrate` (in Kubernetes, the complianceiq-migrate Job) first",
                group.name(),
                pending.join(", ")
            )));
        }
        databases.insert(group, database);
    }

    let cache: Arc<dyn Cache> = match &config.cache.redis_url {
        Some(url) => {
            Arc::new(RedisCache::connect(url, &config.cache.key_prefix).await.map_err(|e| fail("cache")(Box::new(e)))?)
        }
        None => Arc::new(MemoryCache::new()),
    };
    let bus: Arc<dyn EventBus> = match &config.events.nats_url {
        Some(url) => Arc::new(NatsBus::connect(url, &config.events).await.map_err(|e| fail("event bus")(Box::new(e)))?),
        None => Arc::new(InProcessBus::new()),
    };

    let local: Vec<&str> = targets.iter().map(|module| module.name.0).collect();
    let every: Vec<&str> = modules.iter().map(|module| module.name.0).collect();
    let mesh = Arc::new(Mesh::start(&config, &local, &every).map_err(|e| StartError(e.to_string()))?);

    let secrets = Arc::new(secret_box(&config)?);
    let mailer = crate::mail::from_config(&config).map_err(|e| StartError(e.to_string()))?;

    let mut listeners = Vec::new();
    let mut addresses = BTreeMap::new();
    for module in &targets {
        let requested = SocketAddr::new(config.listen.host, config.listen.port_for(module.port));
        let listener = TcpListener::bind(requested)
            .await
            .map_err(|e| StartError(format!("module {} cannot listen on {requested}: {e}", module.name)))?;
        let bound = listener.local_addr().map_err(|e| StartError(e.to_string()))?;
        addresses.insert(module.name.0, bound);
        listeners.push(listener);
    }

    let ops_requested = SocketAddr::new(
        config.listen.host,
        if config.listen.ephemeral_ports { 0 } else { config.listen.port_for(config.listen.ops_port) },
    );
    let ops_listener = TcpListener::bind(ops_requested)
        .await
        .map_err(|e| StartError(format!("the operations port cannot listen on {ops_requested}: {e}")))?;
    let ops_address = ops_listener.local_addr().map_err(|e| StartError(e.to_string()))?;
    let operations = Arc::new(Operations::new());
    operations.health.set_service_status("", tonic_health::ServingStatus::NotServing).await;

    let issuer = modules
        .iter()
        .find(|module| module.name.0 == TOKEN_ISSUER)
        .ok_or_else(|| StartError("no auth module: nothing can issue or verify access tokens".into()))?;
    let issuer_address = endpoint_of(issuer, &addresses);
    // Any module may fetch the token keys; the first one of this process asks.
    let issuer_channel =
        mesh.channel(local[0], TOKEN_ISSUER, &issuer_address).map_err(|e| StartError(e.to_string()))?;
    let shutdown = CancellationToken::new();
    let revocations = Revocations::follow(bus.clone(), operations.metrics.clone(), shutdown.clone())
        .await
        .map_err(|e| fail("revocation feed")(Box::new(e)))?;
    let access = Arc::new(AccessControl::new(Arc::new(TokenVerifier::new(issuer_channel)), revocations.clone()));

    let mut tasks = JoinSet::new();
    tasks.spawn(operations.clone().serve(ops_listener, shutdown.clone()));
    {
        let (mesh, stop) = (mesh.clone(), shutdown.clone());
        tasks.spawn(async move {
            mesh.watch(stop).await;
            Ok(())
        });
    }
    for (module, listener) in targets.iter().zip(listeners) {
        let context = ModuleContext {
            name: module.name,
            config: config.clone(),
            database: module.database.and_then(|group| databases.get(&group).cloned()),
            cache: cache.clone(),
            access: access.clone(),
            revocations: revocations.clone(),
            bus: bus.clone(),
            secrets: secrets.clone(),
            mailer: mailer.clone(),
            metrics: operations.metrics.clone(),
            peers: peer_addresses(module, &modules, &addresses),
            mesh: mesh.clone(),
        };
        let parts =
            (module.build)(context).await.map_err(|e| StartError(format!("building module {}: {e}", module.name)))?;
        let consumption = crate::subscription::Consumption {
            module: module.name.0,
            bus: bus.clone(),
            database: module.database.and_then(|group| databases.get(&group).cloned()),
            owner: options.event_owner,
            settings: config.events.clone(),
            metrics: operations.metrics.clone(),
        };
        for subscription in parts.subscriptions {
            tasks.spawn(crate::subscription::run(subscription, consumption.clone(), shutdown.clone()));
        }
        for worker in parts.workers {
            let token = shutdown.clone();
            let name = worker.name;
            tasks.spawn(async move {
                (worker.run)(token).await;
                tracing::debug!(worker = name, "worker stopped");
                Ok(())
            });
        }
        match parts.server {
            Some(server) => {
                tasks.spawn(server(listener, shutdown.clone()));
            }
            None => {
                let guards = crate::server::Guards {
                    mesh: mesh.clone(),
                    policy: options.policy.clone(),
                    access: access.clone(),
                    operations: operations.clone(),
                    audit: module
                        .database
                        .and_then(|group| databases.get(&group))
                        .map(|database| database.for_module(module.name)),
                };
                tasks.spawn(crate::server::serve(
                    module.name,
                    listener,
                    parts.routes,
                    parts.service_names,
                    guards,
                    shutdown.clone(),
                ));
            }
        }
    }
    for (group, database) in &databases {
        let sources =
            targets.iter().filter(|module| module.database == Some(*group)).map(|module| module.name.0).collect();
        let relay = OutboxRelay::new(database.clone(), bus.clone(), sources);
        let token = shutdown.clone();
        tasks.spawn(async move {
            relay.run(token).await;
            Ok(())
        });
    }

    // Every module is built and its server spawned: the process as a whole is ready.
    operations.health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    {
        let (operations, stop) = (operations.clone(), shutdown.clone());
        tasks.spawn(async move {
            stop.cancelled().await;
            operations.health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
            Ok(())
        });
    }

    Ok(RunningPlatform {
        addresses,
        bus,
        cache,
        databases,
        startup_time: started.elapsed(),
        mesh,
        ops_address,
        shutdown,
        tasks,
    })
}

/// Encrypts every stored secret of `modules` again under the current (first) encryption key,
/// module by module; returns how many each re-sealed. Safe to interrupt and run again.
pub async fn reseal_secrets(
    config: &PlatformConfig,
    modules: &[Module],
) -> Result<Vec<(&'static str, u64)>, StartError> {
    let mut counts = Vec::new();
    for module in modules {
        let Some(reseal) = module.reseal else { continue };
        let (database, secrets) = operator_access(config, module).await?;
        let resealed = reseal(database.clone(), secrets).await;
        database.close().await;
        let resealed =
            resealed.map_err(|error| StartError(format!("re-sealing the secrets of {}: {error:?}", module.name)))?;
        counts.push((module.name.0, resealed));
    }
    Ok(counts)
}

/// A module's database and the platform's encryption keys, for an operator command run beside
/// the platform (`rotate-encryption-key`, `staff add`). Close the database when done.
pub async fn operator_access(
    config: &PlatformConfig,
    module: &Module,
) -> Result<(ModuleDatabase, Arc<SecretBox>), StartError> {
    crate::crypto::install_tls_crypto_provider();
    let group = module.database.ok_or_else(|| StartError(format!("module {} has no database", module.name)))?;
    let secrets = Arc::new(secret_box(config)?);
    let url = config.database.url_for(group, &config.data_dir);
    let database = Database::connect(group, &url, 2).await.map_err(|e| StartError(e.to_string()))?;
    Ok((database.for_module(module.name), secrets))
}

/// The encryption keys: configured, or (in development) generated into the data directory.
fn secret_box(config: &PlatformConfig) -> Result<SecretBox, StartError> {
    match (&config.security.encryption_keys, config.mode) {
        (Some(keys), _) => SecretBox::from_config(keys).map_err(|e| StartError(e.to_string())),
        (None, RunMode::Development) => {
            SecretBox::load_or_create(&config.data_dir.join("keys").join("encryption-keys"))
                .map_err(|e| StartError(e.to_string()))
        }
        (None, RunMode::Production) => {
            Err(StartError("CIQ_ENCRYPTION_KEYS is required: secrets at rest are encrypted with it".into()))
        }
    }
}

/// Where to reach a module: in this process, its bound address; else
/// `CIQ_<MODULE>_ENDPOINT`, defaulting to the Kubernetes service name and design port.
fn endpoint_of(module: &Module, local: &BTreeMap<&'static str, SocketAddr>) -> String {
    match local.get(module.name.0) {
        Some(address) if address.ip().is_unspecified() => format!("http://127.0.0.1:{}", address.port()),
        Some(address) => format!("http://{address}"),
        None => std::env::var(format!("CIQ_{}_ENDPOINT", module.name.0.to_uppercase()))
            .unwrap_or_else(|_| format!("http://{}-service:{}", module.name.0, module.port)),
    }
}

/// Where a module finds the modules it calls.
fn peer_addresses(
    module: &Module,
    modules: &[Module],
    local: &BTreeMap<&'static str, SocketAddr>,
) -> BTreeMap<&'static str, String> {
    modules
        .iter()
        .filter(|candidate| module.calls.contains(&candidate.name.0))
        .map(|callee| (callee.name.0, endpoint_of(callee, local)))
        .collect()
}
