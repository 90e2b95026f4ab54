//! The ml service (port 8011, analysis_db (model metadata) and object storage (models)): model training, versioned models, predictions and evaluation.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::ml::v1::ml_service_server::{MlService, MlServiceServer};

struct MlApi;

#[tonic::async_trait]
impl MlService for MlApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("ml"),
        port: 8011,
        database: Some(DatabaseGroup::Analysis),
        calls: &[],
        migrations: &[],
        reseal: None,
        build: |_context| Box::pin(async { Ok(ModuleParts::new().service(MlServiceServer::new(MlApi))) }),
    }
}
