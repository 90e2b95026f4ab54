//! The dashboard service (port 8008, analysis_db): the organization's summary, per-instance and
//! organization metrics from the standard metric set (`metrics.rs`), read from the analysis
//! store the analyses, the insights service and the sync keep.
//!
//! Answers are cached (the kit cache: Redis in production) under the organization's cache
//! generation. `sync.completed`, `analysis.completed` and `instance.deleted` start a new
//! generation once what they change is readable (the sync's point is recorded, the job's
//! insights are taken, the instance is purged; until then the event is redelivered), so a
//! dashboard never keeps numbers older than the last sync, analysis or deletion. A time to live bounds what a lost event could leave behind.
//!
//! Analytics are the insights trends' series (the same code), per instance, uncached.
//!
//! Custom reports (`reports.rs`) render the same metric set on a schedule (`schedule.rs`) into
//! files (`render.rs`) mailed through the notification service.

mod metrics;
mod render;
mod reports;
mod schedule;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::auth::caller;
use complianceiq_kit::cache::Cache;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::jobs;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration, time, validate};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::common::v1::TimeRange;
use complianceiq_proto::complianceiq::dashboard::v1::dashboard_service_server::{
    DashboardService, DashboardServiceServer,
};
use complianceiq_proto::complianceiq::dashboard::v1::*;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::notification::v1::notification_service_client::NotificationServiceClient;
use prost::Message;
use tonic::{Request, Response, Status};

use crate::metrics::Values;

/// The comparison period when a request names none.
const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a cached answer may live if no event ends its generation first.
const CACHED_FOR: Duration = Duration::from_secs(300);
/// How long an organization's generation counter is kept.
pub(crate) const GENERATION_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);
const MICROS_PER_HOUR: f64 = 3_600_000_000.0;

pub(crate) fn generation_key(organization: OrganizationId) -> String {
    format!("dashboard:generation:{organization}")
}

/// One instance's values now and at the period's start.
struct InstanceValues {
    instance: complianceiq_analysis::StoredInstance,
    now: Values,
    then: Values,
    frameworks: Vec<FrameworkCoverage>,
}

struct DashboardApi {
    database: ModuleDatabase,
    cache: Arc<dyn Cache>,
    reports: reports::Reports,
}

impl DashboardApi {
    /// The cached answer for `what` in the organization's current generation, or `compute`'s
    /// (then cached). A cache that fails is passed over: numbers are computed, never refused.
    async fn cached<M: Message + Default>(
        &self,
        organization: OrganizationId,
        what: &str,
        compute: impl Future<Output = Result<M, ApiError>>,
    ) -> Result<M, ApiError> {
        let generation = match self.cache.get(&generation_key(organization)).await {
            Ok(value) => value.and_then(|bytes| String::from_utf8(bytes).ok()).unwrap_or_else(|| "0".into()),
            Err(error) => {
                tracing::debug!(%error, "dashboard cache unavailable");
                return compute.await;
            }
        };
        let key = format!("dashboard:{organization}:{generation}:{what}");
        if let Ok(Some(bytes)) = self.cache.get(&key).await
            && let Ok(message) = M::decode(bytes.as_slice())
        {
            return Ok(message);
        }
        let message = compute.await?;
        if let Err(error) = self.cache.set(&key, &message.encode_to_vec(), CACHED_FOR).await {
            tracing::debug!(%error, "caching a dashboard answer");
        }
        Ok(message)
    }

    /// The period asked for (default: the last 30 days), and the cache key part naming it.
    fn period(violations: &mut FieldViolations, period: Option<&TimeRange>) -> ((i64, i64), String) {
        let now = time::now_micros();
        let default = (now - DEFAULT_PERIOD.as_micros() as i64, now);
        let range = validate::period(violations, period, default);
        let named = match period {
            Some(period) if period.start_time.is_some() || period.end_time.is_some() => {
                format!("{}-{}", range.0, range.1)
            }
            _ => "default".into(),
        };
        (range, named)
    }

    /// The values of every instance (or of `only`), now (or at the period's end, when it
    /// names one in the past) and at the period's start.
    async fn instance_values(
        tx: &mut TenantTx,
        (start, end): (i64, i64),
        only: Option<&str>,
        frameworks: bool,
    ) -> Result<Vec<InstanceValues>, ApiError> {
        let now = time::now_micros();
        let current = (end < now).then_some(end);
        let appetite = settings::risk_appetite(tx).await?;
        let mut found = Vec::new();
        for instance in complianceiq_analysis::instances(tx).await? {
            if only.is_some_and(|only| only != instance.instance_id) {
                continue;
            }
            let id = instance.instance_id.clone();
            let mut values = metrics::of_posture(&complianceiq_insights::instance_posture(tx, &id, current).await?);
            metrics::add_open_issues(&mut values, &complianceiq_analysis::open_issues_by_priority(tx, &id).await?);
            let hours = (current.unwrap_or(now) - instance.synced_at).max(0) as f64 / MICROS_PER_HOUR;
            values.insert("hours_since_sync".into(), (10.0 * hours).round() / 10.0);
            let risks = complianceiq_analysis::latest_results(tx, &id, "risk_correlation", current).await?;
            metrics::add_high_risks(&mut values, &risks, appetite);
            let mut then = metrics::of_posture(&complianceiq_insights::instance_posture(tx, &id, Some(start)).await?);
            let risks = complianceiq_analysis::latest_results(tx, &id, "risk_correlation", Some(start)).await?;
            metrics::add_high_risks(&mut then, &risks, appetite);
            // Read only by those who show them (the summary does not).
            let frameworks = if frameworks {
                metrics::framework_coverage(
                    &complianceiq_analysis::latest_results(tx, &id, "compliance_gap", current).await?,
                )
            } else {
                Vec::new()
            };
            found.push(InstanceValues { instance, now: values, then, frameworks });
        }
        Ok(found)
    }

    async fn summary(&self, organization: OrganizationId, period: (i64, i64)) -> Result<DashboardSummary, ApiError> {
        let mut tx = self.database.read(organization).await?;
        let instances = Self::instance_values(&mut tx, period, None, false).await?;
        tx.commit().await?;
        let now = metrics::combine(instances.iter().map(|values| &values.now));
        let then = metrics::combine(instances.iter().map(|values| &values.then));
        let findings_by_severity = now
            .iter()
            .filter_map(|(name, value)| Some((name.strip_prefix("open_insights_")?.to_string(), *value as i64)))
            .collect();
        let value = |values: &Values, name: &str| values.get(name).copied().unwrap_or(0.0);
        Ok(DashboardSummary {
            organization_id: organization.to_string(),
            posture_score: value(&now, "posture_score"),
            metrics: metrics::with_previous(&now, &then),
            instances: instances
                .iter()
                .map(|values| InstanceSummary {
                    instance_id: values.instance.instance_id.clone(),
                    instance_name: instance_name(&values.instance),
                    posture_score: value(&values.now, "posture_score"),
                    critical_findings: (value(&values.now, "open_insights_critical")
                        + value(&values.now, "open_insights_high")) as i32,
                    last_sync_time: Some(time::to_timestamp(values.instance.synced_at)),
                })
                .collect(),
            findings_by_severity,
            compute_time: Some(time::to_timestamp(time::now_micros())),
        })
    }

    async fn organization_metrics(
        &self,
        organization: OrganizationId,
        period: (i64, i64),
    ) -> Result<OrganizationMetrics, ApiError> {
        let mut tx = self.database.read(organization).await?;
        let instances = Self::instance_values(&mut tx, period, None, true).await?;
        tx.commit().await?;
        let now = metrics::combine(instances.iter().map(|values| &values.now));
        let then = metrics::combine(instances.iter().map(|values| &values.then));
        let computed = time::now_micros();
        Ok(OrganizationMetrics {
            organization_id: organization.to_string(),
            instance_count: instances.len() as i32,
            totals: Some(instance_metrics(String::new(), &now, &then, computed)),
            instances: instances
                .iter()
                .map(|values| InstanceMetrics {
                    framework_coverage: values.frameworks.clone(),
                    ..instance_metrics(values.instance.instance_id.clone(), &values.now, &values.then, computed)
                })
                .collect(),
            compute_time: Some(time::to_timestamp(computed)),
        })
    }

    async fn one_instance(
        &self,
        organization: OrganizationId,
        instance: &str,
        period: (i64, i64),
    ) -> Result<InstanceMetrics, ApiError> {
        let mut tx = self.database.read(organization).await?;
        let found = Self::instance_values(&mut tx, period, Some(instance), true).await?;
        tx.commit().await?;
        let values = found.first().ok_or_else(|| ApiError::not_found("Instance", instance))?;
        Ok(InstanceMetrics {
            framework_coverage: values.frameworks.clone(),
            ..instance_metrics(instance.to_string(), &values.now, &values.then, time::now_micros())
        })
    }
}

/// The instance's name as its people gave it; for data synced before the store kept names,
/// its URL's host.
fn instance_name(instance: &complianceiq_analysis::StoredInstance) -> String {
    if !instance.name.is_empty() {
        return instance.name.clone();
    }
    let url = &instance.url;
    url.split("://").nth(1).unwrap_or(url).split('/').next().unwrap_or_default().to_string()
}

fn instance_metrics(instance_id: String, now: &Values, then: &Values, computed: i64) -> InstanceMetrics {
    let count = |name: &str| now.get(name).copied().unwrap_or(0.0) as i64;
    InstanceMetrics {
        instance_id,
        control_count: count("controls_analyzed"),
        effective_control_count: count("controls_effective"),
        risk_count: count("risks_analyzed"),
        high_risk_count: count("high_risks"),
        open_issue_count: count("open_issues"),
        compliance_gap_count: count("compliance_gaps"),
        metrics: metrics::with_previous(now, then),
        compute_time: Some(time::to_timestamp(computed)),
        framework_coverage: Vec::new(),
    }
}

#[tonic::async_trait]
impl DashboardService for DashboardApi {
    async fn get_dashboard_summary(
        &self,
        request: Request<GetDashboardSummaryRequest>,
    ) -> Result<Response<DashboardSummary>, Status> {
        let organization = caller(&request)?.tenant()?;
        let mut violations = FieldViolations::default();
        let (period, named) = Self::period(&mut violations, request.get_ref().period.as_ref());
        violations.check()?;
        let summary = self.summary(organization, period);
        Ok(Response::new(self.cached(organization, &format!("summary:{named}"), summary).await?))
    }

    async fn get_instance_metrics(
        &self,
        request: Request<GetInstanceMetricsRequest>,
    ) -> Result<Response<InstanceMetrics>, Status> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let instance = violations.uuid("instance_id", &request.instance_id);
        let (period, named) = Self::period(&mut violations, request.period.as_ref());
        violations.check()?;
        let metrics = self.one_instance(organization, &instance, period);
        Ok(Response::new(self.cached(organization, &format!("instance:{instance}:{named}"), metrics).await?))
    }

    async fn get_analytics(
        &self,
        request: Request<GetAnalyticsRequest>,
    ) -> Result<Response<GetAnalyticsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let asked = complianceiq_insights::SeriesRequest::parse(
            &mut violations,
            &request.metrics,
            request.period.as_ref(),
            request.interval,
        );
        let wanted: Vec<String> = request
            .instance_ids
            .iter()
            .enumerate()
            .map(|(index, id)| violations.uuid(&format!("instance_ids[{index}]"), id))
            .collect();
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        let known: Vec<String> =
            complianceiq_analysis::instances(&mut tx).await?.into_iter().map(|instance| instance.instance_id).collect();
        if let Some(unknown) = wanted.iter().find(|id| !known.contains(id)) {
            return Err(ApiError::not_found("Instance", unknown.clone()).into());
        }
        let mut series = Vec::new();
        for instance in known.iter().filter(|id| wanted.is_empty() || wanted.contains(id)) {
            series.extend(asked.series(&mut tx, instance).await?);
        }
        tx.commit().await?;
        Ok(Response::new(GetAnalyticsResponse { series }))
    }

    async fn create_report(&self, request: Request<CreateReportRequest>) -> Result<Response<Report>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.reports.create(&identity, request.into_inner()).await?))
    }

    async fn list_reports(
        &self,
        request: Request<ListReportsRequest>,
    ) -> Result<Response<ListReportsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports.list(organization, request.into_inner()).await?))
    }

    async fn get_report(&self, request: Request<GetReportRequest>) -> Result<Response<Report>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports.get(organization, request.into_inner()).await?))
    }

    async fn update_report(&self, request: Request<UpdateReportRequest>) -> Result<Response<Report>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports.update(organization, request.into_inner()).await?))
    }

    async fn delete_report(&self, request: Request<DeleteReportRequest>) -> Result<Response<()>, Status> {
        let organization = caller(&request)?.tenant()?;
        self.reports.delete(organization, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn run_report(&self, request: Request<RunReportRequest>) -> Result<Response<ReportRun>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports.run_now(organization, request.into_inner()).await?))
    }

    async fn list_report_runs(
        &self,
        request: Request<ListReportRunsRequest>,
    ) -> Result<Response<ListReportRunsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports.runs(organization, request.into_inner()).await?))
    }

    async fn download_report_run(
        &self,
        request: Request<DownloadReportRunRequest>,
    ) -> Result<Response<complianceiq_proto::google::api::HttpBody>, Status> {
        let (body, file_name) = self.reports.download(request.into_inner()).await?;
        Ok(complianceiq_kit::objects::attachment(body, &file_name))
    }

    async fn get_organization_metrics(
        &self,
        request: Request<GetOrganizationMetricsRequest>,
    ) -> Result<Response<OrganizationMetrics>, Status> {
        let organization = caller(&request)?.tenant()?;
        let mut violations = FieldViolations::default();
        let (period, named) = Self::period(&mut violations, request.get_ref().period.as_ref());
        violations.check()?;
        let metrics = self.organization_metrics(organization, period);
        Ok(Response::new(self.cached(organization, &format!("organization:{named}"), metrics).await?))
    }
}

/// Starts a new cache generation for the organization of a completed sync or analysis, or a
/// deleted instance, once its effect is readable.
struct Invalidation {
    database: ModuleDatabase,
    cache: Arc<dyn Cache>,
}

impl Invalidation {
    /// Whether what the event changed can be read yet: the sync's point recorded by the
    /// analysis service, the job's insights taken by the insights service.
    async fn readable(&self, organization: OrganizationId, event: &Event) -> Result<bool, ApiError> {
        let mut tx = self.database.read(organization).await?;
        let readable = match &event.payload {
            Some(Payload::SyncCompleted(completed)) => match &completed.sync_run {
                // Run ids are time-ordered (UUIDv7): a later run recorded counts too. An instance
                // the store no longer holds was disconnected: nothing to wait for.
                Some(run) => complianceiq_analysis::instances(&mut tx)
                    .await?
                    .iter()
                    .find(|instance| instance.instance_id == run.instance_id)
                    .is_none_or(|instance| instance.last_sync_run_id >= run.id),
                None => true,
            },
            // Purged from the analysis store.
            Some(Payload::InstanceDeleted(deleted)) => complianceiq_analysis::instances(&mut tx)
                .await?
                .iter()
                .all(|instance| instance.instance_id != deleted.instance_id),
            Some(Payload::AnalysisCompleted(completed)) => match &completed.job {
                // A job deleted since, or one whose insights are taken.
                Some(job) => {
                    complianceiq_analysis::job(&mut tx, &job.id).await?.is_none()
                        || complianceiq_insights::insights_taken(&mut tx, &job.id).await?
                }
                None => true,
            },
            _ => true,
        };
        tx.commit().await?;
        Ok(readable)
    }
}

#[tonic::async_trait]
impl EventHandler for Invalidation {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else { return Ok(()) };
        if !self.readable(organization, event).await? {
            return Err(ApiError::Unavailable {
                reason: complianceiq_kit::subscription::NOT_YET_READABLE,
                message: "what the event changed is not readable yet; the dashboards wait for it".into(),
                retry_after: Some(Duration::from_secs(1)),
            });
        }
        self.cache.increment(&generation_key(organization), GENERATION_KEPT).await?;
        Ok(())
    }
}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("dashboard"),
        port: 8008,
        database: Some(DatabaseGroup::Analysis),
        // Reports are mailed through the notification service.
        calls: &["notification"],
        migrations: &[migration!(1, "0001_reports"), migration!(2, "0002_settings")],
        reseal: None,
        build: |context| {
            Box::pin(async move {
                let database = context.database()?;
                let database_for_settings = database.clone();
                let objects = complianceiq_kit::objects::Objects::from_url(&context.config.object_store_url())
                    .map_err(|e| format!("dashboard: {e}"))?;
                let link = |ttl| complianceiq_kit::objects::SignedLinks {
                    secrets: context.secrets.clone(),
                    public_url: context.config.mail.public_url.clone(),
                    ttl,
                    route: reports::DOWNLOAD_ROUTE,
                };
                let notification = NotificationServiceClient::new(context.channel("notification")?)
                    .max_encoding_message_size(2 * reports::MAX_ATTACHMENT);
                let reports = reports::Reports {
                    database: database.clone(),
                    objects,
                    links: link(Duration::from_secs(context.config.storage.download_link_seconds.max(1))),
                    mailed_links: link(reports::MAILED_LINK_VALID),
                    notification,
                };
                let (settings, metrics) = (context.config.jobs.worker_settings(), context.metrics.clone());
                // A person who asked for a run waits for it: the queue is read more often.
                let run_settings = jobs::WorkerSettings { poll: Duration::from_millis(200), ..settings.clone() };
                let runs = Arc::new(reports::RunJobs(reports.clone()));
                let running = jobs::worker("report-runs", database.clone(), runs, run_settings, metrics.clone());
                let scheduling = jobs::worker(
                    "report-schedules",
                    database.clone(),
                    Arc::new(reports::ScheduleJobs),
                    settings,
                    metrics,
                );
                let invalidation = Subscription {
                    consumer: "dashboard-cache",
                    events: vec![EventType::SyncCompleted, EventType::AnalysisCompleted, EventType::InstanceDeleted],
                    handler: Arc::new(Invalidation { database: database.clone(), cache: context.cache.clone() }),
                };
                Ok(ModuleParts::new()
                    .service(DashboardServiceServer::new(DashboardApi {
                        database,
                        cache: context.cache.clone(),
                        reports,
                    }))
                    .subscription(invalidation)
                    .subscription(settings::subscription(database_for_settings, context.cache.clone()))
                    .worker(running)
                    .worker(scheduling))
            })
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(url: &str, name: &str) -> complianceiq_analysis::StoredInstance {
        complianceiq_analysis::StoredInstance {
            instance_id: "i".into(),
            url: url.into(),
            name: name.into(),
            last_sync_run_id: String::new(),
            data_as_of: String::new(),
            synced_at: 0,
        }
    }

    #[test]
    fn an_instance_is_named_by_its_name_else_its_host() {
        assert_eq!(instance_name(&stored("https://acme.service-now.com", "Acme Production")), "Acme Production");
        assert_eq!(instance_name(&stored("https://acme.service-now.com", "")), "acme.service-now.com");
        assert_eq!(instance_name(&stored("http://127.0.0.1:8090/path", "")), "127.0.0.1:8090");
        assert_eq!(instance_name(&stored("", "")), "");
    }
}
