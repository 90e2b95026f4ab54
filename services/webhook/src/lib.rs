//! The webhook service (port 8012, core_db): partner webhooks: subscriptions, signed deliveries with retries, history.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::webhook::v1::webhook_service_server::{WebhookService, WebhookServiceServer};

struct WebhookApi;

#[tonic::async_trait]
impl WebhookService for WebhookApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("webhook"),
        port: 8012,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: &[],
        reseal: None,
        build: |_context| Box::pin(async { Ok(ModuleParts::new().service(WebhookServiceServer::new(WebhookApi))) }),
    }
}
