//! The analysis service (port 8005, analysis_db): control effectiveness, risk correlation, compliance gaps and predictions, as jobs.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_server::{AnalysisService, AnalysisServiceServer};

struct AnalysisApi;

#[tonic::async_trait]
impl AnalysisService for AnalysisApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("analysis"),
        port: 8005,
        database: Some(DatabaseGroup::Analysis),
        calls: &[],
        migrations: &[],
        build: |_context| Box::pin(async { Ok(ModuleParts::new().service(AnalysisServiceServer::new(AnalysisApi))) }),
    }
}
