//! The dashboard service (port 8008, analysis_db): aggregated metrics, analytics and custom reports.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::dashboard::v1::dashboard_service_server::{
    DashboardService, DashboardServiceServer,
};

struct DashboardApi;

#[tonic::async_trait]
impl DashboardService for DashboardApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("dashboard"),
        port: 8008,
        database: Some(DatabaseGroup::Analysis),
        calls: &[],
        migrations: &[],
        reseal: None,
        build: |_context| Box::pin(async { Ok(ModuleParts::new().service(DashboardServiceServer::new(DashboardApi))) }),
    }
}
