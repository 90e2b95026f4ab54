//! The analysis service (port 8005, analysis_db): control effectiveness, risk correlation,
//! compliance gaps and predictions, as jobs, over the GRC data synced from ServiceNow.
//!
//! Built so far: the store of synced records (`IngestRecords`, called by the instance
//! service). The analysis jobs answer UNIMPLEMENTED with a message naming them.

mod ingest;

use std::pin::Pin;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::{Migration, ModuleDatabase};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_server::{AnalysisService, AnalysisServiceServer};
use complianceiq_proto::complianceiq::analysis::v1::{IngestRecordsRequest, IngestRecordsResponse};
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use tonic::{Request, Response, Status, Streaming};

const MIGRATIONS: &[Migration] =
    &[migration!(1, "0001_grc_records"), migration!(2, "0002_typed_views"), migration!(3, "0003_checked_columns")];

/// Forgets an instance's records when it is disconnected.
struct InstancePurge {
    database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for InstancePurge {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Some(Payload::InstanceDeleted(deleted)) = &event.payload else { return Ok(()) };
        let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else {
            tracing::warn!(event_id = %event.id, "instance.deleted without an organization");
            return Ok(());
        };
        let removed = ingest::purge(&self.database, organization, &deleted.instance_id).await?;
        tracing::info!(organization_id = %organization, instance_id = %deleted.instance_id, removed, "records of a disconnected instance removed");
        Ok(())
    }
}

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
        reseal: None,
        build: |context| {
            Box::pin(async move {
                let database = context.database()?;
                let purge = Subscription {
                    consumer: "analysis-instance-purge",
                    events: vec![EventType::InstanceDeleted],
                    handler: std::sync::Arc::new(InstancePurge { database: database.clone() }),
                };
                Ok(ModuleParts::new().service(AnalysisServiceServer::new(AnalysisApi { database })).subscription(purge))
            })
        },
    }
}
