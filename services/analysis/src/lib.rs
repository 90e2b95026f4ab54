//! The analysis service (port 8005, analysis_db): control effectiveness, risk correlation,
//! compliance gaps and predictions, as jobs, over the GRC data synced from ServiceNow.
//!
//! Built so far: the store of synced records (`IngestRecords`, called by the instance
//! service). The analysis jobs answer UNIMPLEMENTED with a message naming them.

mod ingest;

use std::pin::Pin;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::{Migration, ModuleDatabase};
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration};
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_server::{AnalysisService, AnalysisServiceServer};
use complianceiq_proto::complianceiq::analysis::v1::{IngestRecordsRequest, IngestRecordsResponse};
use tonic::{Request, Response, Status, Streaming};

const MIGRATIONS: &[Migration] = &[migration!(1, "0001_grc_records")];

struct AnalysisApi {
    database: ModuleDatabase,
}

#[tonic::async_trait]
impl AnalysisService for AnalysisApi {
    async fn ingest_records(
        &self,
        request: Request<Streaming<IngestRecordsRequest>>,
    ) -> Result<Response<IngestRecordsResponse>, Status> {
        let stream: Pin<Box<Streaming<IngestRecordsRequest>>> = Box::pin(request.into_inner());
        Ok(Response::new(ingest::ingest(&self.database, stream).await?))
    }
}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("analysis"),
        port: 8005,
        database: Some(DatabaseGroup::Analysis),
        calls: &[],
        migrations: MIGRATIONS,
        build: |context| {
            Box::pin(async move {
                let api = AnalysisApi { database: context.database()? };
                Ok(ModuleParts::new().service(AnalysisServiceServer::new(api)))
            })
        },
    }
}
