//! The gateway module (port 8080): the platform's front door for REST/JSON, grpc-web and
//! native gRPC, driven entirely by the contracts' descriptors. Adding an RPC with a
//! `google.api.http` annotation needs no gateway code.

mod api_keys;
mod codec;
mod console;
mod edge;
mod failures;
mod gateway;
pub mod openapi;
pub mod routes;
pub mod status;
pub mod template;
pub mod transcode;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::cache::Cache;
use complianceiq_kit::config::RunMode;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::module::BuildError;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleContext, ModuleName, ModuleParts};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::organization::v1::Plan;
use prost_reflect::DescriptorPool;

pub use edge::plan_key;
pub use gateway::{Gateway, Settings};

/// The modules whose public services the gateway routes.
const ROUTED_MODULES: &[&str] = &[
    "auth",
    "user",
    "organization",
    "instance",
    "analysis",
    "insights",
    "widget",
    "dashboard",
    "notification",
    "audit",
    "ml",
    "webhook",
];

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("gateway"),
        port: 8080,
        database: None,
        calls: ROUTED_MODULES,
        migrations: &[],
        build: |context| Box::pin(build(context)),
        reseal: None,
    }
}

/// Whether a service is one the gateway exposes: the platform's own v1 services.
pub fn is_public_service(service: &prost_reflect::ServiceDescriptor) -> bool {
    service.package_name().starts_with("complianceiq.") && service.package_name().ends_with(".v1")
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("gateway TLS: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn build(context: ModuleContext) -> Result<ModuleParts, BuildError> {
    let config = &context.config.gateway;
    if context.config.mode == RunMode::Production && config.cors_allowed_origins.iter().any(|origin| origin == "*") {
        return Err("CIQ_CORS_ALLOWED_ORIGINS must list origins in production, not *".into());
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        (None, None) => None,
        _ => return Err("set both CIQ_GATEWAY_TLS_CERT and CIQ_GATEWAY_TLS_KEY, or neither".into()),
    };
    let pool = DescriptorPool::decode(complianceiq_proto::FILE_DESCRIPTOR_SET)?;
    let mut backends = HashMap::new();
    for service in pool.services().filter(is_public_service) {
        let module = service.package_name().split('.').nth(1).unwrap_or_default();
        backends.insert(service.full_name().to_string(), context.channel(module)?);
    }
    let settings = Settings {
        cors_allowed_origins: config.cors_allowed_origins.clone(),
        max_body_bytes: config.max_body_bytes,
        timeout: Duration::from_secs(config.timeout_seconds.max(1)),
        client_limit: config.client_per_minute.max(1),
        tenant_limit: config.tenant_per_minute.max(1),
        rate_period: Duration::from_secs(config.rate_period_seconds.max(1)),
        trusted_proxies: usize::from(context.config.security.trusted_proxies),
    };
    let gateway = Arc::new(
        Gateway::new(
            pool,
            is_public_service,
            backends,
            context.access.clone(),
            context.cache.clone(),
            settings,
            &[complianceiq_proto::FILE_DESCRIPTOR_SET],
        )?
        .with_metrics(context.metrics.clone()),
    );
    let plans = Subscription {
        consumer: "gateway-plans",
        events: vec![EventType::OrganizationCreated, EventType::SubscriptionChanged],
        handler: Arc::new(PlanTracker { cache: context.cache.clone(), recent: gateway.recent_plans() }),
    };
    Ok(ModuleParts::new()
        .server(Box::new(move |listener, stop| Box::pin(gateway.serve(listener, tls, stop))))
        .subscription(plans))
}

/// Keeps each organization's plan in the cache for plan-aware rate limits.
struct PlanTracker {
    cache: Arc<dyn Cache>,
    /// This process's reused plans: a change it learns of applies here at once (other
    /// gateways reread the cache within seconds).
    recent: Arc<edge::RecentPlans>,
}

#[tonic::async_trait]
impl EventHandler for PlanTracker {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let plan = match &event.payload {
            Some(Payload::OrganizationCreated(_)) => Plan::Free,
            Some(Payload::SubscriptionChanged(changed)) => {
                changed.subscription.as_ref().map(|s| s.plan()).unwrap_or(Plan::Free)
            }
            _ => return Ok(()),
        };
        let name = match plan {
            Plan::Starter => "starter",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
            Plan::Free | Plan::Unspecified => "free",
        };
        // Kept until the next change: a plan does not lapse by itself, and a missing entry
        // would drop a paying tenant to the free limit.
        let ttl = Duration::from_secs(10 * 365 * 24 * 3600);
        self.cache.set(&plan_key(&event.organization_id), name.as_bytes(), ttl).await?;
        self.recent.put(event.organization_id.clone(), name.to_string(), std::time::Instant::now());
        Ok(())
    }
}
