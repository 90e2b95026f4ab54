//! The widget service (port 8007, core_db): dashboard widgets, templates, versions and deployment into ServiceNow.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::widget::v1::widget_service_server::{WidgetService, WidgetServiceServer};

struct WidgetApi;

#[tonic::async_trait]
impl WidgetService for WidgetApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("widget"),
        port: 8007,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: &[],
        reseal: None,
        build: |_context| Box::pin(async { Ok(ModuleParts::new().service(WidgetServiceServer::new(WidgetApi))) }),
    }
}
