//! The insights service (port 8006, analysis_db): analysis results with history, trends, comparison, search and exports.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::insights::v1::insights_service_server::{InsightsService, InsightsServiceServer};

struct InsightsApi;

#[tonic::async_trait]
impl InsightsService for InsightsApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("insights"),
        port: 8006,
        database: Some(DatabaseGroup::Analysis),
        calls: &[],
        migrations: &[],
        reseal: None,
        build: |_context| Box::pin(async { Ok(ModuleParts::new().service(InsightsServiceServer::new(InsightsApi))) }),
    }
}
