//! The notification service (port 8009, core_db): email, SMS and in-app notifications with preferences.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::notification::v1::notification_service_server::{
    NotificationService, NotificationServiceServer,
};

struct NotificationApi;

#[tonic::async_trait]
impl NotificationService for NotificationApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("notification"),
        port: 8009,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: &[],
        reseal: None,
        build: |_context| {
            Box::pin(async { Ok(ModuleParts::new().service(NotificationServiceServer::new(NotificationApi))) })
        },
    }
}
