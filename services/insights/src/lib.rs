//! The insights service (port 8006, analysis_db): analysis findings kept as insights with
//! history, trends, comparison, search and saved reports.
//!
//! Each finding of a succeeded analysis job becomes an insight under a stable id (finding kind +
//! subject record of an instance; `complianceiq_analysis::findings`). On `analysis.completed`
//! the service reads the job's results from the analysis store (the same database, as the
//! design has it) and applies them: found again → persisting, found first → new, no longer
//! found within the job's scope → resolved. Each job leaves a history entry with the posture
//! after it. Exports render an insight to CSV, XLSX, PDF or JSON in object storage, as jobs,
//! behind download links that expire (`exports.rs`).

mod derive;
mod exports;
mod render;
mod store;
mod trends;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use complianceiq_analysis::findings;
use complianceiq_kit::auth::caller;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{Migration, ModuleDatabase};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration};
use complianceiq_kit::{time, validate};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::common::v1::{Interval, Metric, Severity};
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{Event, InsightOpened};
use complianceiq_proto::complianceiq::insights::v1::insights_service_server::{InsightsService, InsightsServiceServer};
use complianceiq_proto::complianceiq::insights::v1::*;
use tonic::{Request, Response, Status};

use crate::store::Snapshot;

const MIGRATIONS: &[Migration] =
    &[migration!(1, "0001_insights"), migration!(2, "0002_exports"), migration!(3, "0003_search_by_rowid")];

/// Longest saved report name.
const MAX_REPORT_NAME: usize = 200;
/// Longest saved report notes.
const MAX_REPORT_NOTES: usize = 10_000;
/// Longest search text, and most words it may hold.
const MAX_QUERY: usize = 500;
const MAX_QUERY_WORDS: usize = 32;
/// The trends' period when none is given.
const DEFAULT_TREND_DAYS: i64 = 90;

/// An instance's posture as its analyses left it at a point in time, for the dashboards.
#[derive(Clone, Debug, Default)]
pub struct InstancePosture {
    /// `posture_score` first, then each analysis type's headline score, `open_insights` and
    /// `open_insights_<severity>` (the instance insights' headline metrics).
    pub metrics: Vec<Metric>,
    /// Each analysis type's latest summary metrics (`control_effectiveness` → `effective`).
    pub summaries: BTreeMap<String, BTreeMap<String, f64>>,
    /// When its latest analysis that counts ended; `None` before any.
    pub analysed_at: Option<i64>,
}

/// The posture of `instance` now (`at` = `None`) or at a past time.
pub async fn instance_posture(
    tx: &mut complianceiq_kit::db::TenantTx,
    instance: &str,
    at: Option<i64>,
) -> Result<InstancePosture, ApiError> {
    let open = store::open_insights(tx, instance, at).await?;
    let latest = store::latest_snapshots(tx, instance, at.unwrap_or(i64::MAX)).await?;
    Ok(InstancePosture {
        metrics: headline_metrics(&latest, &open),
        summaries: latest.iter().map(|s| (s.analysis_type.clone(), s.metrics.clone())).collect(),
        analysed_at: latest.iter().map(|snapshot| snapshot.created_at).max(),
    })
}

/// Whether the insights of analysis job `job_id` were taken (its `analysis.completed` was
/// applied), so what depends on them can wait for it.
pub async fn insights_taken(tx: &mut complianceiq_kit::db::TenantTx, job_id: &str) -> Result<bool, ApiError> {
    store::has_snapshot(tx, job_id).await
}

/// What a request for metric series asks: metrics (named as the trends name them), period
/// and bucket width. Shared by the insights trends and the dashboards' analytics.
#[derive(Clone, Debug)]
pub struct SeriesRequest {
    metrics: Vec<trends::MetricName>,
    period: (i64, i64),
    interval: Interval,
}

impl SeriesRequest {
    /// Reads the request's fields (`metrics` empty: the standard set; period default the last
    /// 90 days; interval default from the period's length), naming what is wrong.
    pub fn parse(
        violations: &mut FieldViolations,
        names: &[String],
        period: Option<&complianceiq_proto::complianceiq::common::v1::TimeRange>,
        interval: i32,
    ) -> Self {
        let now = time::now_micros();
        let period = validate::period(violations, period, (now - DEFAULT_TREND_DAYS * 86_400_000_000, now + 1));
        let names: Vec<String> = if names.is_empty() {
            trends::STANDARD.iter().map(|(name, ..)| name.to_string()).collect()
        } else {
            names.to_vec()
        };
        let mut metrics = Vec::new();
        for (index, name) in names.iter().enumerate() {
            match trends::MetricName::parse(name) {
                Some(metric) => metrics.push(metric),
                None => violations.add(
                    &format!("metrics[{index}]"),
                    "UNKNOWN_METRIC",
                    format!(
                        "{name:?} is not a metric: use {} or <analysis type>.<summary metric>",
                        trends::STANDARD.iter().map(|(name, ..)| *name).collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
        let interval = match Interval::try_from(interval) {
            Ok(Interval::Unspecified) => trends::default_interval(period),
            Ok(interval) => interval,
            Err(_) => {
                violations.add("interval", "INVALID", "not an interval");
                Interval::Day
            }
        };
        Self { metrics, period, interval }
    }

    /// One series per metric of `instance`, from its history entries of the analyses that
    /// counted (labelled with the instance's id).
    pub async fn series(
        &self,
        tx: &mut complianceiq_kit::db::TenantTx,
        instance: &str,
    ) -> Result<Vec<complianceiq_proto::complianceiq::common::v1::TimeSeries>, ApiError> {
        let mut snapshots = store::snapshots(tx, instance, self.period, None).await?;
        snapshots.retain(|snapshot| snapshot.applied);
        Ok(trends::series(&self.metrics, &snapshots, self.interval, instance))
    }
}

/// Takes a succeeded job's findings as insights, once per job (redeliveries change nothing).
pub async fn take_insights(
    database: &ModuleDatabase,
    organization: OrganizationId,
    job_id: &str,
) -> Result<(), ApiError> {
    let started = std::time::Instant::now();
    // Read and derive before taking the writer: on SQLite the write transaction holds the one
    // writer lock, and a job's results can be 100,000 rows.
    let mut read = database.read(organization).await?;
    if store::has_snapshot(&mut read, job_id).await? {
        return Ok(());
    }
    // A job deleted before its event arrived leaves nothing to take.
    let Some((job, results)) = complianceiq_analysis::job_with_results(&mut read, job_id).await? else {
        return Ok(());
    };
    read.commit().await?;
    if job.state != "succeeded" {
        return Ok(());
    }
    let found = derive::observe(&job.id, &job.instance_id, &job.analysis_type, &results);
    let derived = started.elapsed();
    let mut tx = database.write(organization).await?;
    // Checked again under the writer: a concurrent redelivery, or the job deleted meanwhile.
    if store::has_snapshot(&mut tx, job_id).await? || complianceiq_analysis::job(&mut tx, job_id).await?.is_none() {
        return Ok(());
    }
    let at = job.ended_at.unwrap_or_else(time::now_micros);
    let instance = job.instance_id.as_str();
    // A job that ended before one of its type already applied is history, and changes nothing.
    let applied = store::newest_applied(&mut tx, instance, &job.analysis_type).await?.is_none_or(|newest| newest <= at);
    if applied {
        let category = findings::category_of(&job.analysis_type) as i32;
        let open = store::open_of_category(&mut tx, instance, category).await?;
        let changes = derive::changes(&open, &found, derive::scope(&job.parameters, &results).as_ref());
        // One row per insight id: the last finding of an id wins, as it would row by row.
        let mut kept: Vec<&Insight> = Vec::with_capacity(found.len());
        let mut position: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for insight in &found {
            match position.get(insight.id.as_str()) {
                Some(&index) => kept[index] = insight,
                None => {
                    position.insert(insight.id.as_str(), kept.len());
                    kept.push(insight);
                }
            }
        }
        store::keep_open(&mut tx, &kept, at).await?;
        let resolved: Vec<&str> = changes.resolved.iter().map(String::as_str).collect();
        store::resolve(&mut tx, &resolved, &job.id, at).await?;
        let score_of = |id: &String| position.get(id.as_str()).map(|&index| kept[index].score);
        let mut recorded = Vec::new();
        for (ids, change) in
            [(&changes.new, "new"), (&changes.persisting, "persisting"), (&changes.resolved, "resolved")]
        {
            recorded.extend(ids.iter().map(|id| store::Change {
                analysis_job_id: job.id.clone(),
                insight_id: id.clone(),
                change,
                score: score_of(id),
                at,
            }));
        }
        store::record_changes(&mut tx, instance, &recorded).await?;
        // What is new is news: the audit trail's compliance events, notifications.
        let context = RequestContext { request_id: job.id.clone(), ..Default::default() };
        for id in &changes.new {
            if let Some(&index) = position.get(id.as_str()) {
                let opened = InsightOpened { insight: Some(kept[index].clone()) };
                tx.emit(Payload::InsightOpened(opened), &context).await?;
            }
        }
    }
    let summary = job.summary.clone().unwrap_or_default();
    let mut latest: BTreeMap<String, f64> = store::latest_snapshots(&mut tx, instance, at)
        .await?
        .into_iter()
        .map(|snapshot| (snapshot.analysis_type, snapshot.score))
        .collect();
    if applied {
        latest.insert(job.analysis_type.clone(), summary.score);
    }
    let snapshot = Snapshot {
        analysis_job_id: job.id.clone(),
        instance_id: instance.to_string(),
        analysis_type: job.analysis_type.clone(),
        score: summary.score,
        posture_score: derive::posture(&latest),
        metrics: summary.metrics.iter().map(|metric| (metric.name.clone(), metric.value)).collect(),
        open_by_severity: store::open_by_severity(&mut tx, instance).await?,
        applied,
        created_at: at,
    };
    store::insert_snapshot(&mut tx, &snapshot).await?;
    tx.commit().await?;
    tracing::info!(organization_id = %organization, analysis_job_id = %job.id, insights = found.len(), applied,
        read_ms = derived.as_millis() as u64, written_ms = (started.elapsed() - derived).as_millis() as u64,
        "insights taken");
    Ok(())
}

/// Turns each succeeded analysis into insights.
struct Completions {
    database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for Completions {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Some(Payload::AnalysisCompleted(completed)) = &event.payload else { return Ok(()) };
        let (Some(job), Ok(organization)) = (&completed.job, OrganizationId::from_stored(&event.organization_id))
        else {
            tracing::warn!(event_id = %event.id, "analysis.completed without a job or an organization");
            return Ok(());
        };
        take_insights(&self.database, organization, &job.id).await
    }
}

/// Forgets a disconnected instance's insights and history (saved reports stay: they are
/// snapshots people chose to keep).
struct InstancePurge {
    database: ModuleDatabase,
    objects: complianceiq_kit::objects::Objects,
}

#[tonic::async_trait]
impl EventHandler for InstancePurge {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Some(Payload::InstanceDeleted(deleted)) = &event.payload else { return Ok(()) };
        let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else {
            tracing::warn!(event_id = %event.id, "instance.deleted without an organization");
            return Ok(());
        };
        let mut tx = self.database.write(organization).await?;
        let removed = store::purge(&mut tx, &deleted.instance_id).await?;
        let files = exports::exports_store::purge(&mut tx, &deleted.instance_id).await?;
        tx.commit().await?;
        // After the commit: a failed delete leaves an orphan file, never a row without its file.
        for key in &files {
            if let Err(error) = self.objects.delete(key).await {
                tracing::warn!(object_key = %key, error = %error, "an export file of a disconnected instance stayed");
            }
        }
        tracing::info!(organization_id = %organization, instance_id = %deleted.instance_id, removed, "insights of a disconnected instance removed");
        Ok(())
    }
}

fn categories_field(violations: &mut FieldViolations, field: &str, values: &[i32]) -> Vec<i64> {
    let mut categories = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match InsightCategory::try_from(*value) {
            Ok(category) if category != InsightCategory::Unspecified => categories.push(i64::from(*value)),
            _ => violations.add(&format!("{field}[{index}]"), "INVALID", "not an insight category"),
        }
    }
    categories
}

fn severity_field(violations: &mut FieldViolations, value: i32) -> i64 {
    if Severity::try_from(value).is_err() {
        violations.add("min_severity", "INVALID", "not a severity");
    }
    i64::from(value)
}

/// The keyset `(created_at, id)` of a page token this API issued.
fn keyset(page: &PageRequest) -> Result<Option<(i64, String)>, ApiError> {
    let Some(key) = &page.after else { return Ok(None) };
    match (key.first().and_then(|time| time.parse().ok()), key.get(1)) {
        (Some(time), Some(id)) => Ok(Some((time, id.clone()))),
        _ => Err(ApiError::invalid_field("page_token", "INVALID", "page_token is not a token this API issued")),
    }
}

/// The standard metric an analysis type's headline score is.
fn score_metric(analysis_type: &str) -> Option<&'static str> {
    trends::STANDARD.iter().find(|(_, standard_type, _)| *standard_type == analysis_type).map(|(name, ..)| *name)
}

/// The headline metrics of an instance from the latest entry of each analysis type, and the
/// open insights by severity.
fn headline_metrics(latest: &[Snapshot], open: &[Insight]) -> Vec<Metric> {
    let mut metrics = vec![Metric {
        name: "posture_score".into(),
        value: derive::posture(&latest.iter().map(|s| (s.analysis_type.clone(), s.score)).collect()),
        unit: "score".into(),
        ..Default::default()
    }];
    for snapshot in latest {
        if let Some(name) = score_metric(&snapshot.analysis_type) {
            metrics.push(Metric {
                name: name.into(),
                value: snapshot.score,
                unit: "score".into(),
                ..Default::default()
            });
        }
    }
    metrics.push(Metric {
        name: "open_insights".into(),
        value: open.len() as f64,
        unit: "insights".into(),
        ..Default::default()
    });
    for severity in [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info] {
        let count = open.iter().filter(|insight| insight.severity() == severity).count();
        metrics.push(Metric {
            name: format!("open_insights_{}", findings::severity_name(severity)),
            value: count as f64,
            unit: "insights".into(),
            ..Default::default()
        });
    }
    metrics
}

struct InsightsApi {
    database: ModuleDatabase,
    exports: exports::Exports,
}

impl InsightsApi {
    /// NOT_FOUND unless the analysis store knows the instance (it was synced and not disconnected).
    async fn known_instance(&self, tx: &mut complianceiq_kit::db::TenantTx, instance: &str) -> Result<(), ApiError> {
        if complianceiq_analysis::knows_instance(tx, instance).await? {
            Ok(())
        } else {
            Err(ApiError::not_found("Instance", instance))
        }
    }

    async fn instance_insights(
        &self,
        organization: OrganizationId,
        request: GetInstanceInsightsRequest,
    ) -> Result<InstanceInsights, ApiError> {
        let mut violations = FieldViolations::default();
        let instance = violations.uuid("instance_id", &request.instance_id);
        let categories = categories_field(&mut violations, "categories", &request.categories);
        let min_severity = severity_field(&mut violations, request.min_severity);
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        self.known_instance(&mut tx, &instance).await?;
        let open = store::open_insights(&mut tx, &instance, None).await?;
        let latest = store::latest_snapshots(&mut tx, &instance, i64::MAX).await?;
        tx.commit().await?;
        let metrics = headline_metrics(&latest, &open);
        let insights = open
            .into_iter()
            .filter(|insight| categories.is_empty() || categories.contains(&i64::from(insight.category)))
            .filter(|insight| i64::from(insight.severity) >= min_severity)
            .collect();
        Ok(InstanceInsights {
            instance_id: instance,
            posture_score: metrics[0].value,
            insights,
            metrics,
            generate_time: latest.iter().map(|snapshot| snapshot.created_at).max().map(time::to_timestamp),
        })
    }

    async fn history(
        &self,
        organization: OrganizationId,
        request: GetInsightHistoryRequest,
    ) -> Result<GetInsightHistoryResponse, ApiError> {
        let mut violations = FieldViolations::default();
        let instance = violations.uuid("instance_id", &request.instance_id);
        let period = validate::period(&mut violations, request.period.as_ref(), (i64::MIN, i64::MAX));
        let analysis_type = match request.category() {
            InsightCategory::Unspecified => None,
            category => match findings::KINDS.iter().find(|kind| kind.category == category) {
                Some(kind) => Some(kind.analysis_type),
                None => {
                    violations.add("category", "INVALID", "no analysis produces insights of this category yet");
                    None
                }
            },
        };
        violations.check()?;
        let filters = format!("{instance}|{period:?}|{}", analysis_type.unwrap_or(""));
        let page = PageRequest::parse(request.page_size, &request.page_token, &filters)?;
        let after = keyset(&page)?;
        let mut tx = self.database.read(organization).await?;
        self.known_instance(&mut tx, &instance).await?;
        let mut snapshots =
            store::history_page(&mut tx, &instance, period, analysis_type, after, page.fetch_limit()).await?;
        let next_page_token =
            page.finish(&mut snapshots, |s| vec![s.created_at.to_string(), s.analysis_job_id.clone()]);
        // One read for the whole page, not one per entry.
        let span = snapshots.iter().map(|s| s.created_at).fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let changes = store::changes_between(&mut tx, &instance, span).await?;
        tx.commit().await?;
        let mut entries = Vec::with_capacity(snapshots.len());
        for snapshot in snapshots {
            let made = changes.get(&snapshot.analysis_job_id).map(Vec::as_slice).unwrap_or_default();
            let of = |kind: &str| made.iter().filter(|(_, change)| change == kind).map(|(id, _)| id.clone()).collect();
            entries.push(InsightHistoryEntry {
                analysis_job_id: snapshot.analysis_job_id.clone(),
                posture_score: snapshot.posture_score,
                insights_by_severity: snapshot.open_by_severity.clone().into_iter().collect(),
                new_insight_ids: of("new"),
                resolved_insight_ids: of("resolved"),
                persisting_insight_ids: of("persisting"),
                create_time: Some(time::to_timestamp(snapshot.created_at)),
                analysis_type: complianceiq_analysis::analysis_type(&snapshot.analysis_type) as i32,
                score: snapshot.score,
            });
        }
        Ok(GetInsightHistoryResponse { entries, next_page_token })
    }

    async fn trends(
        &self,
        organization: OrganizationId,
        request: GetInsightTrendsRequest,
    ) -> Result<GetInsightTrendsResponse, ApiError> {
        let mut violations = FieldViolations::default();
        let instance = violations.uuid("instance_id", &request.instance_id);
        let asked = SeriesRequest::parse(&mut violations, &request.metrics, request.period.as_ref(), request.interval);
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        self.known_instance(&mut tx, &instance).await?;
        let series = asked.series(&mut tx, &instance).await?;
        tx.commit().await?;
        Ok(GetInsightTrendsResponse { series })
    }

    async fn compare(
        &self,
        organization: OrganizationId,
        request: CompareInsightsRequest,
    ) -> Result<CompareInsightsResponse, ApiError> {
        let mut violations = FieldViolations::default();
        let left = violations.uuid("left_instance_id", &request.left_instance_id);
        let right = if request.right_instance_id.is_empty() {
            left.clone()
        } else {
            violations.uuid("right_instance_id", &request.right_instance_id)
        };
        violations.check()?;
        let at = |time: &Option<prost_types::Timestamp>| time.as_ref().map(time::from_timestamp);
        let mut tx = self.database.read(organization).await?;
        let mut sides = Vec::new();
        for (instance, moment) in [(&left, at(&request.left_time)), (&right, at(&request.right_time))] {
            self.known_instance(&mut tx, instance).await?;
            let open = store::open_insights(&mut tx, instance, moment).await?;
            let latest = store::latest_snapshots(&mut tx, instance, moment.unwrap_or(i64::MAX)).await?;
            sides.push((headline_metrics(&latest, &open), open));
        }
        tx.commit().await?;
        let (right_metrics, right_open) = sides.pop().unwrap_or_default();
        let (left_metrics, left_open) = sides.pop().unwrap_or_default();
        let mut names: Vec<&str> = left_metrics.iter().map(|m| m.name.as_str()).collect();
        names.extend(
            right_metrics.iter().map(|m| m.name.as_str()).filter(|name| !left_metrics.iter().any(|m| m.name == *name)),
        );
        let value = |metrics: &[Metric], name: &str| metrics.iter().find(|m| m.name == name).map_or(0.0, |m| m.value);
        let metrics = names
            .iter()
            .map(|name| {
                let (left_value, right_value) = (value(&left_metrics, name), value(&right_metrics, name));
                MetricComparison { metric: name.to_string(), left_value, right_value, delta: right_value - left_value }
            })
            .collect();
        // Sides match by the stable key's parts: a finding on the same record (clones of an
        // instance share sys_ids).
        let key = |insight: &Insight| (insight.finding.clone(), insight.subject.as_ref().map(|s| s.sys_id.clone()));
        let left_keys: HashSet<_> = left_open.iter().map(key).collect();
        let right_keys: HashSet<_> = right_open.iter().map(key).collect();
        Ok(CompareInsightsResponse {
            metrics,
            only_left: left_open.iter().filter(|insight| !right_keys.contains(&key(insight))).cloned().collect(),
            only_right: right_open.iter().filter(|insight| !left_keys.contains(&key(insight))).cloned().collect(),
        })
    }

    async fn search(
        &self,
        organization: OrganizationId,
        request: SearchInsightsRequest,
    ) -> Result<SearchInsightsResponse, ApiError> {
        let mut violations = FieldViolations::default();
        let words = validate::search_words(&mut violations, &request.query, MAX_QUERY, MAX_QUERY_WORDS);
        let mut instances = Vec::new();
        for (index, id) in request.instance_ids.iter().enumerate() {
            instances.push(violations.uuid(&format!("instance_ids[{index}]"), id));
        }
        let search = store::Search {
            words,
            instances,
            categories: categories_field(&mut violations, "categories", &request.categories),
            min_severity: severity_field(&mut violations, request.min_severity),
            period: validate::period(&mut violations, request.period.as_ref(), (i64::MIN, i64::MAX)),
        };
        violations.check()?;
        let page = PageRequest::parse(request.page_size, &request.page_token, &format!("{search:?}"))?;
        let offset = match &page.after {
            None => 0,
            Some(key) => {
                key.first().and_then(|offset| offset.parse::<i64>().ok()).filter(|o| *o >= 0).ok_or_else(|| {
                    ApiError::invalid_field("page_token", "INVALID", "page_token is not a token this API issued")
                })?
            }
        };
        let mut tx = self.database.read(organization).await?;
        let (mut insights, total) =
            store::search(&mut tx, self.database.backend(), &search, offset, page.fetch_limit()).await?;
        tx.commit().await?;
        let served = offset.saturating_add(page.size);
        let next_page_token = page.finish(&mut insights, |_| vec![served.to_string()]);
        Ok(SearchInsightsResponse { insights, next_page_token, total_size: i32::try_from(total).unwrap_or(i32::MAX) })
    }

    async fn save(
        &self,
        identity: &complianceiq_kit::auth::Identity,
        request: SaveInsightRequest,
    ) -> Result<SavedReport, ApiError> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let insight_id = violations.uuid("insight_id", &request.insight_id);
        let name = request.name.trim().to_string();
        violations.text("name", &name, MAX_REPORT_NAME);
        if request.notes.chars().count() > MAX_REPORT_NOTES {
            violations.add("notes", "TOO_LONG", format!("notes hold at most {MAX_REPORT_NOTES} characters"));
        }
        violations.check()?;
        let mut tx = self.database.write(organization).await?;
        let insight =
            store::by_id(&mut tx, &insight_id).await?.ok_or_else(|| ApiError::not_found("Insight", &insight_id))?;
        let created_at = time::now_micros();
        let report = SavedReport {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: organization.to_string(),
            insight_id,
            name,
            notes: request.notes,
            insight: Some(insight),
            created_by: identity.user_id.to_string(),
            create_time: Some(time::to_timestamp(created_at)),
        };
        store::insert_report(&mut tx, &report, created_at).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn reports(
        &self,
        organization: OrganizationId,
        request: ListSavedReportsRequest,
    ) -> Result<ListSavedReportsResponse, ApiError> {
        let page = PageRequest::parse(request.page_size, &request.page_token, "saved")?;
        let after = keyset(&page)?;
        let mut tx = self.database.read(organization).await?;
        let mut saved_reports = store::reports_page(&mut tx, after, page.fetch_limit()).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut saved_reports, |report| {
            let created = report.create_time.as_ref().map_or(0, time::from_timestamp);
            vec![created.to_string(), report.id.clone()]
        });
        Ok(ListSavedReportsResponse { saved_reports, next_page_token })
    }

    fn report_id(value: &str) -> Result<String, ApiError> {
        Ok(complianceiq_kit::ids::parse_uuid("report_id", value)?.to_string())
    }
}

#[tonic::async_trait]
impl InsightsService for InsightsApi {
    async fn get_instance_insights(
        &self,
        request: Request<GetInstanceInsightsRequest>,
    ) -> Result<Response<InstanceInsights>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.instance_insights(organization, request.into_inner()).await?))
    }

    async fn get_insight_history(
        &self,
        request: Request<GetInsightHistoryRequest>,
    ) -> Result<Response<GetInsightHistoryResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.history(organization, request.into_inner()).await?))
    }

    async fn get_insight_trends(
        &self,
        request: Request<GetInsightTrendsRequest>,
    ) -> Result<Response<GetInsightTrendsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.trends(organization, request.into_inner()).await?))
    }

    async fn compare_insights(
        &self,
        request: Request<CompareInsightsRequest>,
    ) -> Result<Response<CompareInsightsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.compare(organization, request.into_inner()).await?))
    }

    async fn export_insight(&self, request: Request<ExportInsightRequest>) -> Result<Response<Export>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.exports.start(&identity, request.into_inner()).await?))
    }

    async fn get_export(&self, request: Request<GetExportRequest>) -> Result<Response<Export>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.exports.get(organization, request.into_inner()).await?))
    }

    async fn download_export(
        &self,
        request: Request<DownloadExportRequest>,
    ) -> Result<Response<complianceiq_proto::google::api::HttpBody>, Status> {
        let (body, file_name) = self.exports.download(request.into_inner()).await?;
        Ok(complianceiq_kit::objects::attachment(body, &file_name))
    }

    async fn search_insights(
        &self,
        request: Request<SearchInsightsRequest>,
    ) -> Result<Response<SearchInsightsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.search(organization, request.into_inner()).await?))
    }

    async fn save_insight(&self, request: Request<SaveInsightRequest>) -> Result<Response<SavedReport>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.save(&identity, request.into_inner()).await?))
    }

    async fn list_saved_reports(
        &self,
        request: Request<ListSavedReportsRequest>,
    ) -> Result<Response<ListSavedReportsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports(organization, request.into_inner()).await?))
    }

    async fn get_saved_report(&self, request: Request<GetSavedReportRequest>) -> Result<Response<SavedReport>, Status> {
        let organization = caller(&request)?.tenant()?;
        let id = Self::report_id(&request.get_ref().report_id)?;
        let mut tx = self.database.read(organization).await?;
        let report = store::report_by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("SavedReport", &id))?;
        tx.commit().await?;
        Ok(Response::new(report))
    }

    async fn delete_saved_report(&self, request: Request<DeleteSavedReportRequest>) -> Result<Response<()>, Status> {
        let organization = caller(&request)?.tenant()?;
        let id = Self::report_id(&request.get_ref().report_id)?;
        let mut tx = self.database.write(organization).await?;
        if !store::delete_report(&mut tx, &id).await? {
            return Err(ApiError::not_found("SavedReport", &id).into());
        }
        tx.commit().await?;
        Ok(Response::new(()))
    }
}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("insights"),
        port: 8006,
        database: Some(DatabaseGroup::Analysis),
        calls: &[],
        migrations: MIGRATIONS,
        reseal: None,
        build: |context| {
            Box::pin(async move {
                let database = context.database()?;
                let completions = Subscription {
                    consumer: "insights-analysis-completions",
                    events: vec![EventType::AnalysisCompleted],
                    handler: Arc::new(Completions { database: database.clone() }),
                };
                let objects = complianceiq_kit::objects::Objects::from_url(&context.config.object_store_url())
                    .map_err(|e| format!("insights: {e}"))?;
                let purge = Subscription {
                    consumer: "insights-instance-purge",
                    events: vec![EventType::InstanceDeleted],
                    handler: Arc::new(InstancePurge { database: database.clone(), objects: objects.clone() }),
                };
                let exports = exports::Exports {
                    database: database.clone(),
                    objects,
                    links: complianceiq_kit::objects::SignedLinks {
                        secrets: context.secrets.clone(),
                        public_url: context.config.mail.public_url.clone(),
                        ttl: std::time::Duration::from_secs(context.config.storage.download_link_seconds.max(1)),
                        route: exports::DOWNLOAD_ROUTE,
                    },
                };
                let retention = complianceiq_kit::retention::Retention {
                    module: "insights",
                    database: database.clone(),
                    purge: store::PURGE_PAST,
                };
                Ok(ModuleParts::new()
                    .service(InsightsServiceServer::new(InsightsApi { database, exports: exports.clone() }))
                    .subscription(completions)
                    .subscription(purge)
                    .subscription(retention.subscription("insights-retention"))
                    .worker(retention.worker())
                    .worker(exports::worker(exports, context.config.jobs.worker_settings(), context.metrics.clone())))
            })
        },
    }
}
