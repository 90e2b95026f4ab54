//! The analysis service (port 8005, analysis_db): control effectiveness, risk correlation,
//! compliance gaps and predictions, as jobs, over the GRC data synced from ServiceNow.
//!
//! Built so far: the store of synced records (`IngestRecords`, called by the instance
//! service), analysis jobs on the kit's job queue (start, read, list, cancel, delete, results),
//! the control effectiveness, risk, compliance gap, predictive (baseline) and anomaly
//! analyses, and replay of an instance's latest analyses. Findings become insights in the insights service
//! (`findings` names their kinds and ids).

pub mod anomalies;
mod compliance;
pub mod controls;
pub mod findings;
mod ingest;
mod jobs;
pub mod predictive;
mod retention;
mod risks;

use std::pin::Pin;

use complianceiq_kit::auth::caller;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::{Migration, ModuleDatabase};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_server::{AnalysisService, AnalysisServiceServer};
use complianceiq_proto::complianceiq::analysis::v1::*;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::ml::v1::ml_service_client::MlServiceClient;
use tonic::{Request, Response, Status, Streaming};

pub use jobs::{JobRecord, analysis_type};

/// A job of the caller's organization with all its results, read in the transaction's tenant
/// by the insights service, which shares this database; `None` when the job is gone.
pub async fn job_with_results(
    tx: &mut complianceiq_kit::db::TenantTx,
    job_id: &str,
) -> Result<Option<(JobRecord, Vec<AnalysisResult>)>, ApiError> {
    let Some(job) = jobs::store::by_id(tx, job_id).await? else { return Ok(None) };
    let results = jobs::store::results(tx, job_id, None, i64::MAX).await?;
    Ok(Some((job, results.into_iter().map(|(_, result)| result).collect())))
}

/// A job of the caller's organization, without its results.
pub async fn job(tx: &mut complianceiq_kit::db::TenantTx, job_id: &str) -> Result<Option<JobRecord>, ApiError> {
    jobs::store::by_id(tx, job_id).await
}

/// The subject and rollup results of the instance's latest successful analysis of
/// `analysis_type` (`risk_correlation`, `compliance_gap` ...) that ended at or before `at`
/// (now when `None`); empty before any.
pub async fn latest_results(
    tx: &mut complianceiq_kit::db::TenantTx,
    instance_id: &str,
    analysis_type: &str,
    at: Option<i64>,
) -> Result<Vec<AnalysisResult>, ApiError> {
    let page = complianceiq_kit::paging::PageRequest::parse(100, "", "")?;
    let recent = jobs::store::list(tx, Some(instance_id), Some(analysis_type), Some("succeeded"), &page).await?;
    let Some(job) = recent.into_iter().find(|job| at.is_none_or(|at| job.ended_at.is_some_and(|ended| ended <= at)))
    else {
        return Ok(Vec::new());
    };
    let mut results = Vec::new();
    let mut after = None;
    loop {
        let batch = jobs::store::results(tx, &job.id, after, 1000).await?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(*last);
        results.extend(batch.into_iter().map(|(_, result)| result));
    }
    Ok(results)
}

/// Whether the analysis store knows the instance (it has received its records and it has not
/// been disconnected since).
pub async fn knows_instance(tx: &mut complianceiq_kit::db::TenantTx, instance_id: &str) -> Result<bool, ApiError> {
    Ok(jobs::store::instance(tx, instance_id).await?.is_some())
}

/// An instance as the analysis store holds it: where its records link to, and its last
/// completed sync (run id, ServiceNow's time the data reaches, when it completed).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredInstance {
    pub instance_id: String,
    pub url: String,
    /// Its name in ComplianceIQ as of its last sync (empty for data synced before names came).
    pub name: String,
    pub last_sync_run_id: String,
    pub data_as_of: String,
    pub synced_at: i64,
}

/// The instances of the transaction's organization the store holds (synced, not disconnected).
pub async fn instances(tx: &mut complianceiq_kit::db::TenantTx) -> Result<Vec<StoredInstance>, ApiError> {
    use sqlx::Row;
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT instance_id, url, last_sync_run_id, data_as_of, updated_at, name FROM grc_instances \
         WHERE organization_id = $1 ORDER BY instance_id",
    )
    .bind(tenant)
    .fetch_all(tx.connection())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredInstance {
                instance_id: row.try_get(0)?,
                url: row.try_get(1)?,
                last_sync_run_id: row.try_get(2)?,
                data_as_of: row.try_get(3)?,
                synced_at: row.try_get(4)?,
                name: row.try_get(5)?,
            })
        })
        .collect()
}

/// An instance's open issues (state neither closed complete nor closed incomplete) by
/// ServiceNow priority (1 critical ... 5 planning; 0 when unset), as last synced.
pub async fn open_issues_by_priority(
    tx: &mut complianceiq_kit::db::TenantTx,
    instance_id: &str,
) -> Result<std::collections::BTreeMap<i64, i64>, ApiError> {
    use sqlx::Row;
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT COALESCE(priority, 0), COUNT(*) FROM grc_issues \
         WHERE organization_id = $1 AND instance_id = $2 AND is_open = 1 GROUP BY COALESCE(priority, 0)",
    )
    .bind(tenant)
    .bind(instance_id)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?))).collect()
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_grc_records"),
    migration!(2, "0002_typed_views"),
    migration!(3, "0003_checked_columns"),
    migration!(4, "0004_analysis_jobs"),
    migration!(5, "0005_analysis_allowances"),
    migration!(6, "0006_numeric_risk_scores"),
    migration!(7, "0007_ingest_plans"),
    migration!(8, "0008_record_versions"),
    migration!(9, "0009_parse_records_once"),
    migration!(10, "0010_numeric_indicator_values"),
    migration!(11, "0011_instance_names"),
    migration!(12, "0012_result_pages"),
];

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

/// Keeps each organization's allowance of analyses from its subscription.
struct Allowances {
    database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for Allowances {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Some(Payload::SubscriptionChanged(changed)) = &event.payload else { return Ok(()) };
        let (Some(subscription), Ok(organization)) =
            (&changed.subscription, OrganizationId::from_stored(&event.organization_id))
        else {
            tracing::warn!(event_id = %event.id, "subscription event without a subscription or an organization");
            return Ok(());
        };
        let micros = |time: &Option<prost_types::Timestamp>| time.as_ref().map(complianceiq_kit::time::from_timestamp);
        let limit = subscription.limits.as_ref().map(|limits| i64::from(limits.max_analyses_per_month)).unwrap_or(0);
        let plan = subscription.plan().as_str_name().trim_start_matches("PLAN_").to_ascii_lowercase();
        let as_of = micros(&subscription.update_time).unwrap_or_else(complianceiq_kit::time::now_micros);
        let start = micros(&subscription.current_period_start_time).unwrap_or(as_of);
        let end = micros(&subscription.current_period_end_time).unwrap_or(start + jobs::store::PERIOD_MICROS);
        let mut tx = self.database.write(organization).await?;
        jobs::store::set_allowance(&mut tx, &plan, limit, (start, end), as_of).await?;
        tx.commit().await
    }
}

struct AnalysisApi {
    database: ModuleDatabase,
    jobs: jobs::Jobs,
}

#[tonic::async_trait]
impl AnalysisService for AnalysisApi {
    async fn analyze_controls(
        &self,
        request: Request<AnalyzeControlsRequest>,
    ) -> Result<Response<AnalysisJob>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.analyze_controls(&identity, request.into_inner()).await?))
    }

    async fn analyze_risks(&self, request: Request<AnalyzeRisksRequest>) -> Result<Response<AnalysisJob>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.analyze_risks(&identity, request.into_inner()).await?))
    }

    async fn replay_analysis(
        &self,
        request: Request<ReplayAnalysisRequest>,
    ) -> Result<Response<ReplayAnalysisResponse>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.replay(&identity, request.into_inner()).await?))
    }

    async fn run_predictive_analysis(
        &self,
        request: Request<RunPredictiveAnalysisRequest>,
    ) -> Result<Response<AnalysisJob>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.run_predictive(&identity, request.into_inner()).await?))
    }

    async fn detect_anomalies(
        &self,
        request: Request<DetectAnomaliesRequest>,
    ) -> Result<Response<AnalysisJob>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.detect_anomalies(&identity, request.into_inner()).await?))
    }

    async fn analyze_compliance(
        &self,
        request: Request<AnalyzeComplianceRequest>,
    ) -> Result<Response<AnalysisJob>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.analyze_compliance(&identity, request.into_inner()).await?))
    }

    async fn get_analysis_job(&self, request: Request<GetAnalysisJobRequest>) -> Result<Response<AnalysisJob>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.get(&identity, request.into_inner()).await?))
    }

    async fn list_analysis_jobs(
        &self,
        request: Request<ListAnalysisJobsRequest>,
    ) -> Result<Response<ListAnalysisJobsResponse>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.list(&identity, request.into_inner()).await?))
    }

    async fn delete_analysis_job(&self, request: Request<DeleteAnalysisJobRequest>) -> Result<Response<()>, Status> {
        let identity = caller(&request)?;
        self.jobs.delete(&identity, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn list_analysis_results(
        &self,
        request: Request<ListAnalysisResultsRequest>,
    ) -> Result<Response<ListAnalysisResultsResponse>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.jobs.results(&identity, request.into_inner()).await?))
    }

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
        calls: &["ml"],
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
                let allowances = Subscription {
                    consumer: "analysis-allowances",
                    events: vec![EventType::SubscriptionChanged],
                    handler: std::sync::Arc::new(Allowances { database: database.clone() }),
                };
                let retention = complianceiq_kit::retention::Retention {
                    module: "analysis",
                    database: database.clone(),
                    purge: retention::PURGE,
                };
                let ml = MlServiceClient::new(context.channel("ml")?);
                let api = AnalysisApi { database: database.clone(), jobs: jobs::Jobs { database: database.clone() } };
                Ok(ModuleParts::new()
                    .service(AnalysisServiceServer::new(api))
                    .subscription(purge)
                    .subscription(allowances)
                    .subscription(retention.subscription("analysis-retention"))
                    .worker(retention.worker())
                    .worker(jobs::worker(database, ml, context.config.jobs.worker_settings(), context.metrics.clone())))
            })
        },
    }
}
