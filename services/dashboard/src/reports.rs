//! Custom reports: a definition (metrics of the standard set, instances, format, comparison
//! period), an optional schedule (cron in a time zone), and its recipients.
//!
//! Two kinds of durable job (the kit's queue) do the work:
//! - `report_schedule`, one per scheduled report (its id the report's), due at the next
//!   firing: it starts a run and, as it ends, queues itself at the following firing. Changing
//!   the schedule requeues it.
//! - `report_run`, one per run: renders the file into object storage (a checkpoint), then
//!   mails it to each recipient through the notification service's DeliverReport, recording
//!   each recipient as delivered, so a retried run mails nobody twice.
//!
//! A run's file stays until its report is deleted; links to it expire.

use std::collections::BTreeSet;
use std::time::Duration;

use complianceiq_kit::auth::Identity;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop};
use complianceiq_kit::mesh::MeshChannel;
use complianceiq_kit::objects::{LinkParts, Objects, SignedLinks};
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::{time, validate};
use complianceiq_proto::complianceiq::common::v1::ExportFormat;
use complianceiq_proto::complianceiq::dashboard::v1::*;
use complianceiq_proto::complianceiq::notification::v1::notification_service_client::NotificationServiceClient;
use complianceiq_proto::complianceiq::notification::v1::{
    DeliverReportRequest, ReportAttachment, deliver_report_request,
};
use complianceiq_proto::google::api::HttpBody;
use prost::Message;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::render::{self, Content, Section};
use crate::schedule::Schedule;
use crate::{DashboardApi, instance_name, metrics};

/// The queue's kinds.
pub const SCHEDULE_KIND: &str = "report_schedule";
pub const RUN_KIND: &str = "report_run";
/// Where a run's signed link leads.
pub const DOWNLOAD_ROUTE: &str = "/api/v1/dashboard/reports/runs/{id}/download";
/// How long a link mailed to recipients works.
pub const MAILED_LINK_VALID: Duration = Duration::from_secs(7 * 24 * 3600);
/// The largest file mailed as an attachment; a larger one is mailed as a link.
pub const MAX_ATTACHMENT: usize = 10 * 1024 * 1024;

const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 2000;
const MAX_METRICS: usize = 60;
const MAX_RECIPIENTS: usize = 50;
const MAX_INSTANCES: usize = 100;
const DEFAULT_COMPARISON_DAYS: i32 = 30;
const UPDATABLE: [&str; 11] = [
    "name",
    "description",
    "metrics",
    "instance_ids",
    "format",
    "frequency",
    "recipients",
    "schedule",
    "time_zone",
    "delivery",
    "comparison_days",
];

/// The cron a frequency stands for when a report names no schedule of its own.
fn frequency_schedule(frequency: ReportFrequency) -> &'static str {
    match frequency {
        ReportFrequency::Unspecified => "",
        ReportFrequency::Daily => "0 6 * * *",
        ReportFrequency::Weekly => "0 6 * * 1",
        ReportFrequency::Monthly => "0 6 1 * *",
        ReportFrequency::Quarterly => "0 6 1 1,4,7,10 *",
    }
}

/// The schedule a definition runs on: its own, else its frequency's; empty when on demand.
fn effective_schedule(definition: &Report) -> String {
    if definition.schedule.trim().is_empty() {
        frequency_schedule(definition.frequency()).to_string()
    } else {
        definition.schedule.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The definition's fields only (what a caller sets), normalized.
fn definition_of(report: &Report) -> Report {
    Report {
        name: report.name.trim().to_string(),
        description: report.description.trim().to_string(),
        metrics: report.metrics.clone(),
        instance_ids: report.instance_ids.iter().map(|id| id.trim().to_ascii_lowercase()).collect(),
        format: report.format,
        frequency: report.frequency,
        recipients: report.recipients.clone(),
        schedule: report.schedule.clone(),
        time_zone: report.time_zone.trim().to_string(),
        delivery: report.delivery,
        comparison_days: report.comparison_days,
        ..Default::default()
    }
}

/// Checks a definition, filling defaults (PDF, UTC, attachment, 30 days) and normalizing
/// recipients; its schedule when it has one.
fn check(definition: &mut Report, violations: &mut FieldViolations) -> Option<Schedule> {
    if definition.name.is_empty() {
        violations.required("report.name");
    } else if definition.name.chars().count() > MAX_NAME {
        violations.add("report.name", "TOO_LONG", format!("at most {MAX_NAME} characters"));
    }
    if definition.description.chars().count() > MAX_DESCRIPTION {
        violations.add("report.description", "TOO_LONG", format!("at most {MAX_DESCRIPTION} characters"));
    }
    if definition.metrics.is_empty() {
        violations.required("report.metrics");
    } else if definition.metrics.len() > MAX_METRICS {
        violations.add("report.metrics", "TOO_MANY", format!("at most {MAX_METRICS} metrics"));
    }
    let mut seen = BTreeSet::new();
    for (index, name) in definition.metrics.iter().enumerate() {
        if !metrics::is_known(name) {
            violations.add(
                &format!("report.metrics[{index}]"),
                "UNKNOWN_METRIC",
                format!("{name:?} is not a metric of the standard set (see the dashboard metrics)"),
            );
        } else if !seen.insert(name.clone()) {
            violations.add(&format!("report.metrics[{index}]"), "DUPLICATE", format!("{name} is listed twice"));
        }
    }
    if definition.instance_ids.len() > MAX_INSTANCES {
        violations.add("report.instance_ids", "TOO_MANY", format!("at most {MAX_INSTANCES} instances"));
    }
    for (index, id) in definition.instance_ids.iter().enumerate() {
        violations.uuid(&format!("report.instance_ids[{index}]"), id);
    }
    match ExportFormat::try_from(definition.format) {
        Ok(ExportFormat::Unspecified) => definition.format = ExportFormat::Pdf as i32,
        Ok(_) => {}
        Err(_) => violations.add("report.format", "INVALID", "format must be PDF, CSV, XLSX or JSON"),
    }
    if ReportFrequency::try_from(definition.frequency).is_err() {
        violations.add("report.frequency", "INVALID", "frequency must be DAILY, WEEKLY, MONTHLY or QUARTERLY");
    }
    match ReportDelivery::try_from(definition.delivery) {
        Ok(ReportDelivery::Unspecified) => definition.delivery = ReportDelivery::Attachment as i32,
        Ok(_) => {}
        Err(_) => violations.add("report.delivery", "INVALID", "delivery must be ATTACHMENT or LINK"),
    }
    match definition.comparison_days {
        0 => definition.comparison_days = DEFAULT_COMPARISON_DAYS,
        1..=366 => {}
        days => violations.add("report.comparison_days", "OUT_OF_RANGE", format!("{days} is not within 1 to 366")),
    }
    if definition.recipients.len() > MAX_RECIPIENTS {
        violations.add("report.recipients", "TOO_MANY", format!("at most {MAX_RECIPIENTS} recipients"));
    }
    let mut recipients = Vec::new();
    for (index, address) in definition.recipients.iter().enumerate() {
        let address = validate::email(&format!("report.recipients[{index}]"), address, violations);
        if !recipients.contains(&address) {
            recipients.push(address);
        }
    }
    definition.recipients = recipients;
    if definition.time_zone.is_empty() {
        definition.time_zone = "UTC".into();
    }
    let schedule = effective_schedule(definition);
    if schedule.is_empty() {
        return None;
    }
    match Schedule::parse(&schedule, &definition.time_zone) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let field = if error.contains("time zone") { "report.time_zone" } else { "report.schedule" };
            violations.add(field, "INVALID", error);
            None
        }
    }
}

/// A stored report.
#[derive(Clone, Debug)]
struct StoredReport {
    id: String,
    definition: Report,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    next_run_at: Option<i64>,
}

/// A stored run.
#[derive(Clone, Debug, Default)]
struct StoredRun {
    id: String,
    report_id: String,
    trigger: ReportTrigger,
    state: String,
    format: i32,
    object_key: String,
    file_name: String,
    content_type: String,
    size_bytes: i64,
    rendered: bool,
    delivered_to: Vec<String>,
    error: String,
    created_at: i64,
    ended_at: Option<i64>,
}

/// The report store: every query filters by the transaction's tenant.
mod store {
    use super::*;

    const REPORT_COLUMNS: &str = "id, definition, created_by, created_at, updated_at, next_run_at";
    const RUN_COLUMNS: &str = "id, report_id, run_trigger, state, format, object_key, file_name, content_type, \
                               size_bytes, rendered, delivered_to, error, created_at, ended_at";

    fn report(row: &sqlx::any::AnyRow) -> Result<StoredReport, ApiError> {
        let bytes: Vec<u8> = row.try_get(1)?;
        Ok(StoredReport {
            id: row.try_get(0)?,
            definition: Report::decode(bytes.as_slice())
                .map_err(|e| ApiError::internal(format!("a stored report does not decode: {e}")))?,
            created_by: row.try_get(2)?,
            created_at: row.try_get(3)?,
            updated_at: row.try_get(4)?,
            next_run_at: row.try_get(5)?,
        })
    }

    fn run(row: &sqlx::any::AnyRow) -> Result<StoredRun, ApiError> {
        let delivered: String = row.try_get(10)?;
        Ok(StoredRun {
            id: row.try_get(0)?,
            report_id: row.try_get(1)?,
            trigger: ReportTrigger::try_from(row.try_get::<i64, _>(2)? as i32).unwrap_or_default(),
            state: row.try_get(3)?,
            format: row.try_get::<i64, _>(4)? as i32,
            object_key: row.try_get(5)?,
            file_name: row.try_get(6)?,
            content_type: row.try_get(7)?,
            size_bytes: row.try_get(8)?,
            rendered: row.try_get::<i64, _>(9)? != 0,
            delivered_to: delivered.lines().map(str::to_string).collect(),
            error: row.try_get(11)?,
            created_at: row.try_get(12)?,
            ended_at: row.try_get(13)?,
        })
    }

    pub async fn insert_report(tx: &mut TenantTx, report: &StoredReport) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO dashboard_reports (organization_id, {REPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )))
        .bind(tenant)
        .bind(&report.id)
        .bind(report.definition.encode_to_vec())
        .bind(&report.created_by)
        .bind(report.created_at)
        .bind(report.updated_at)
        .bind(report.next_run_at)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    pub async fn save_report(tx: &mut TenantTx, report: &StoredReport) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(
            "UPDATE dashboard_reports SET definition = $3, updated_at = $4, next_run_at = $5 \
             WHERE organization_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(&report.id)
        .bind(report.definition.encode_to_vec())
        .bind(report.updated_at)
        .bind(report.next_run_at)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    pub async fn report_by_id(tx: &mut TenantTx, id: &str) -> Result<Option<StoredReport>, ApiError> {
        let tenant = tx.tenant().to_string();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPORT_COLUMNS} FROM dashboard_reports WHERE organization_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
        row.as_ref().map(report).transpose()
    }

    /// Reports newest first (ids are time-ordered) after the id `after`.
    pub async fn reports_page(tx: &mut TenantTx, after: &str, limit: i64) -> Result<Vec<StoredReport>, ApiError> {
        let tenant = tx.tenant().to_string();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPORT_COLUMNS} FROM dashboard_reports WHERE organization_id = $1 AND ($2 = '' OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(tenant)
        .bind(after)
        .bind(limit)
        .fetch_all(tx.connection())
        .await?;
        rows.iter().map(report).collect()
    }

    /// Deletes a report and its runs; returns the runs' ids and files' keys.
    pub async fn delete_report(tx: &mut TenantTx, id: &str) -> Result<Option<Vec<(String, String)>>, ApiError> {
        let tenant = tx.tenant().to_string();
        let runs = sqlx::query(
            "DELETE FROM dashboard_report_runs WHERE organization_id = $1 AND report_id = $2 RETURNING id, object_key",
        )
        .bind(&tenant)
        .bind(id)
        .fetch_all(tx.connection())
        .await?;
        let deleted = sqlx::query("DELETE FROM dashboard_reports WHERE organization_id = $1 AND id = $2")
            .bind(&tenant)
            .bind(id)
            .execute(tx.connection())
            .await?;
        if deleted.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(runs.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_, ApiError>>()?))
    }

    pub async fn insert_run(tx: &mut TenantTx, run: &StoredRun) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO dashboard_report_runs (organization_id, {RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15)"
        )))
        .bind(tenant)
        .bind(&run.id)
        .bind(&run.report_id)
        .bind(run.trigger as i64)
        .bind(&run.state)
        .bind(i64::from(run.format))
        .bind(&run.object_key)
        .bind(&run.file_name)
        .bind(&run.content_type)
        .bind(run.size_bytes)
        .bind(i64::from(run.rendered))
        .bind(run.delivered_to.join("\n"))
        .bind(&run.error)
        .bind(run.created_at)
        .bind(run.ended_at)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    pub async fn save_run(tx: &mut TenantTx, run: &StoredRun) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(
            "UPDATE dashboard_report_runs SET state = $3, file_name = $4, content_type = $5, size_bytes = $6, \
             rendered = $7, delivered_to = $8, error = $9, ended_at = $10 WHERE organization_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(&run.id)
        .bind(&run.state)
        .bind(&run.file_name)
        .bind(&run.content_type)
        .bind(run.size_bytes)
        .bind(i64::from(run.rendered))
        .bind(run.delivered_to.join("\n"))
        .bind(&run.error)
        .bind(run.ended_at)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    pub async fn run_by_id(tx: &mut TenantTx, id: &str) -> Result<Option<StoredRun>, ApiError> {
        let tenant = tx.tenant().to_string();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM dashboard_report_runs WHERE organization_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
        row.as_ref().map(run).transpose()
    }

    /// A report's runs newest first after the id `after` (empty: from the newest).
    pub async fn runs_page(
        tx: &mut TenantTx,
        report_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StoredRun>, ApiError> {
        let tenant = tx.tenant().to_string();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM dashboard_report_runs WHERE organization_id = $1 AND report_id = $2 \
             AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
        )))
        .bind(tenant)
        .bind(report_id)
        .bind(after)
        .bind(limit)
        .fetch_all(tx.connection())
        .await?;
        rows.iter().map(run).collect()
    }
}

/// The report RPCs and jobs.
#[derive(Clone)]
pub struct Reports {
    pub database: ModuleDatabase,
    pub objects: Objects,
    /// Links handed out by the API (the platform's download link lifetime).
    pub links: SignedLinks,
    /// Links mailed to recipients ([`MAILED_LINK_VALID`]).
    pub mailed_links: SignedLinks,
    pub notification: NotificationServiceClient<MeshChannel>,
}

fn file_name(report: &str, at: i64, extension: &str) -> String {
    let stem: String = report
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
        .take(60)
        .collect();
    let stem = stem.trim_matches('-');
    let date = time::to_timestamp(at).to_string().chars().take(10).collect::<String>();
    format!("report-{}-{date}.{extension}", if stem.is_empty() { "custom" } else { stem })
}

fn extension(format: i32) -> &'static str {
    match ExportFormat::try_from(format).unwrap_or_default() {
        ExportFormat::Csv => "csv",
        ExportFormat::Xlsx => "xlsx",
        ExportFormat::Json => "json",
        _ => "pdf",
    }
}

fn report_id(violations: &mut FieldViolations, id: &str) -> String {
    violations.uuid("report_id", id)
}

fn state_of(run: &StoredRun) -> ReportState {
    match run.state.as_str() {
        "ready" => ReportState::Ready,
        "failed" => ReportState::Failed,
        _ => ReportState::Pending,
    }
}

impl Reports {
    async fn run_to_proto(&self, organization: &str, run: &StoredRun) -> Result<ReportRun, ApiError> {
        let state = state_of(run);
        let (download_uri, expire_time) = if run.rendered {
            let (uri, expires) = self.links.link(&self.objects, &run.object_key, organization, &run.id).await?;
            (uri, Some(prost_types::Timestamp { seconds: expires, nanos: 0 }))
        } else {
            (String::new(), None)
        };
        Ok(ReportRun {
            id: run.id.clone(),
            report_id: run.report_id.clone(),
            trigger: run.trigger as i32,
            state: state as i32,
            format: run.format,
            file_name: run.file_name.clone(),
            size_bytes: run.size_bytes,
            download_uri,
            expire_time,
            delivered_to: run.delivered_to.clone(),
            error: run.error.clone(),
            create_time: Some(time::to_timestamp(run.created_at)),
            end_time: run.ended_at.map(time::to_timestamp),
        })
    }

    async fn to_proto(&self, tx: &mut TenantTx, report: &StoredReport) -> Result<Report, ApiError> {
        let organization = tx.tenant().to_string();
        let latest = store::runs_page(tx, &report.id, "", 1).await?.pop();
        let mut proto = Report {
            id: report.id.clone(),
            organization_id: organization.clone(),
            schedule: effective_schedule(&report.definition),
            created_by: report.created_by.clone(),
            create_time: Some(time::to_timestamp(report.created_at)),
            update_time: Some(time::to_timestamp(report.updated_at)),
            next_render_time: report.next_run_at.map(time::to_timestamp),
            ..report.definition.clone()
        };
        if let Some(latest) = latest {
            let run = self.run_to_proto(&organization, &latest).await?;
            proto.state = run.state;
            proto.download_uri = run.download_uri;
            proto.last_render_time = latest.ended_at.filter(|_| latest.rendered).map(time::to_timestamp);
        }
        Ok(proto)
    }

    /// Checks the instances a definition names against the organization's.
    async fn check_instances(tx: &mut TenantTx, definition: &Report) -> Result<(), ApiError> {
        let known: Vec<String> =
            complianceiq_analysis::instances(tx).await?.into_iter().map(|instance| instance.instance_id).collect();
        let mut violations = FieldViolations::default();
        for (index, id) in definition.instance_ids.iter().enumerate() {
            if !known.contains(id) {
                violations.add(
                    &format!("report.instance_ids[{index}]"),
                    "UNKNOWN_INSTANCE",
                    format!("the organization has no synced instance {id}"),
                );
            }
        }
        violations.check()
    }

    /// Queues the report's schedule job at its next firing (or takes it off the queue).
    async fn reschedule(
        tx: &mut TenantTx,
        report: &mut StoredReport,
        schedule: Option<&Schedule>,
    ) -> Result<(), ApiError> {
        jobs::remove(tx, SCHEDULE_KIND, std::slice::from_ref(&report.id)).await?;
        report.next_run_at = schedule.and_then(|schedule| schedule.next_after(time::now_micros()));
        if let Some(next) = report.next_run_at {
            jobs::enqueue_at(tx, SCHEDULE_KIND, &report.id, next).await?;
        }
        Ok(())
    }

    pub async fn create(&self, identity: &Identity, request: CreateReportRequest) -> Result<Report, ApiError> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let Some(report) = request.report else {
            return Err(ApiError::invalid_field("report", "REQUIRED", "report is required"));
        };
        let mut definition = definition_of(&report);
        let schedule = check(&mut definition, &mut violations);
        violations.check()?;
        let mut tx = self.database.write(organization).await?;
        Self::check_instances(&mut tx, &definition).await?;
        let now = time::now_micros();
        let mut stored = StoredReport {
            id: uuid::Uuid::now_v7().to_string(),
            definition,
            created_by: identity.user_id.to_string(),
            created_at: now,
            updated_at: now,
            next_run_at: None,
        };
        Self::reschedule(&mut tx, &mut stored, schedule.as_ref()).await?;
        store::insert_report(&mut tx, &stored).await?;
        let proto = self.to_proto(&mut tx, &stored).await?;
        tx.commit().await?;
        Ok(proto)
    }

    pub async fn update(&self, organization: OrganizationId, request: UpdateReportRequest) -> Result<Report, ApiError> {
        let mut violations = FieldViolations::default();
        let id = report_id(&mut violations, &request.report_id);
        let Some(changes) = request.report else {
            return Err(ApiError::invalid_field("report", "REQUIRED", "report is required"));
        };
        let changes = definition_of(&changes);
        let paths: Vec<String> = match request.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths,
            // Every field the request sets.
            _ => {
                let defaults = Report::default();
                let set = |name: &str| match name {
                    "name" => changes.name != defaults.name,
                    "description" => changes.description != defaults.description,
                    "metrics" => !changes.metrics.is_empty(),
                    "instance_ids" => !changes.instance_ids.is_empty(),
                    "format" => changes.format != 0,
                    "frequency" => changes.frequency != 0,
                    "recipients" => !changes.recipients.is_empty(),
                    "schedule" => !changes.schedule.is_empty(),
                    "time_zone" => !changes.time_zone.is_empty(),
                    "delivery" => changes.delivery != 0,
                    _ => changes.comparison_days != 0,
                };
                UPDATABLE.iter().filter(|name| set(name)).map(|name| name.to_string()).collect()
            }
        };
        for path in &paths {
            if !UPDATABLE.contains(&path.as_str()) {
                violations.add(
                    "update_mask",
                    "NOT_UPDATABLE",
                    format!(
                        "update_mask names {path:?}, which is not an updatable field; use {}",
                        UPDATABLE.join(", ")
                    ),
                );
            }
        }
        violations.check()?;
        let mut tx = self.database.write(organization).await?;
        let mut stored = store::report_by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Report", &id))?;
        let definition = &mut stored.definition;
        for path in &paths {
            match path.as_str() {
                "name" => definition.name = changes.name.clone(),
                "description" => definition.description = changes.description.clone(),
                "metrics" => definition.metrics = changes.metrics.clone(),
                "instance_ids" => definition.instance_ids = changes.instance_ids.clone(),
                "format" => definition.format = changes.format,
                "frequency" => definition.frequency = changes.frequency,
                "recipients" => definition.recipients = changes.recipients.clone(),
                "schedule" => definition.schedule = changes.schedule.clone(),
                "time_zone" => definition.time_zone = changes.time_zone.clone(),
                "delivery" => definition.delivery = changes.delivery,
                _ => definition.comparison_days = changes.comparison_days,
            }
        }
        let mut violations = FieldViolations::default();
        let schedule = check(definition, &mut violations);
        violations.check()?;
        Self::check_instances(&mut tx, &stored.definition).await?;
        stored.updated_at = time::now_micros();
        if paths.iter().any(|path| ["schedule", "time_zone", "frequency"].contains(&path.as_str())) {
            Self::reschedule(&mut tx, &mut stored, schedule.as_ref()).await?;
        }
        store::save_report(&mut tx, &stored).await?;
        let proto = self.to_proto(&mut tx, &stored).await?;
        tx.commit().await?;
        Ok(proto)
    }

    pub async fn get(&self, organization: OrganizationId, request: GetReportRequest) -> Result<Report, ApiError> {
        let mut violations = FieldViolations::default();
        let id = report_id(&mut violations, &request.report_id);
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        let stored = store::report_by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Report", &id))?;
        let proto = self.to_proto(&mut tx, &stored).await?;
        tx.commit().await?;
        Ok(proto)
    }

    pub async fn list(
        &self,
        organization: OrganizationId,
        request: ListReportsRequest,
    ) -> Result<ListReportsResponse, ApiError> {
        let page = PageRequest::parse(request.page_size, &request.page_token, "reports")?;
        let after = page.after.as_ref().and_then(|key| key.first().cloned()).unwrap_or_default();
        let mut tx = self.database.read(organization).await?;
        let mut found = store::reports_page(&mut tx, &after, page.fetch_limit()).await?;
        let next_page_token = page.finish(&mut found, |report| vec![report.id.clone()]);
        let mut reports = Vec::with_capacity(found.len());
        for report in &found {
            reports.push(self.to_proto(&mut tx, report).await?);
        }
        tx.commit().await?;
        Ok(ListReportsResponse { reports, next_page_token })
    }

    pub async fn delete(&self, organization: OrganizationId, request: DeleteReportRequest) -> Result<(), ApiError> {
        let mut violations = FieldViolations::default();
        let id = report_id(&mut violations, &request.report_id);
        violations.check()?;
        let mut tx = self.database.write(organization).await?;
        let runs = store::delete_report(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Report", &id))?;
        jobs::remove(&mut tx, SCHEDULE_KIND, std::slice::from_ref(&id)).await?;
        let run_ids: Vec<String> = runs.iter().map(|(run, _)| run.clone()).collect();
        jobs::remove(&mut tx, RUN_KIND, &run_ids).await?;
        tx.commit().await?;
        for (_, key) in runs {
            // The record is gone; a file left behind by a failing store is unreachable.
            if let Err(error) = self.objects.delete(&key).await {
                tracing::warn!(%error, key, "a deleted report's file could not be removed");
            }
        }
        Ok(())
    }

    /// Starts a run of `report` in `tx`.
    async fn start_run(
        tx: &mut TenantTx,
        report: &StoredReport,
        trigger: ReportTrigger,
        at: i64,
    ) -> Result<StoredRun, ApiError> {
        let id = uuid::Uuid::now_v7().to_string();
        let extension = extension(report.definition.format);
        let run = StoredRun {
            object_key: format!("reports/{}/{id}.{extension}", tx.tenant()),
            file_name: file_name(&report.definition.name, at, extension),
            id,
            report_id: report.id.clone(),
            trigger,
            state: "pending".into(),
            format: report.definition.format,
            created_at: at,
            ..Default::default()
        };
        store::insert_run(tx, &run).await?;
        jobs::enqueue(tx, RUN_KIND, &run.id).await?;
        Ok(run)
    }

    pub async fn run_now(
        &self,
        organization: OrganizationId,
        request: RunReportRequest,
    ) -> Result<ReportRun, ApiError> {
        let mut violations = FieldViolations::default();
        let id = report_id(&mut violations, &request.report_id);
        violations.check()?;
        let mut tx = self.database.write(organization).await?;
        let report = store::report_by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Report", &id))?;
        let run = Self::start_run(&mut tx, &report, ReportTrigger::Manual, time::now_micros()).await?;
        tx.commit().await?;
        self.run_to_proto(&organization.to_string(), &run).await
    }

    pub async fn runs(
        &self,
        organization: OrganizationId,
        request: ListReportRunsRequest,
    ) -> Result<ListReportRunsResponse, ApiError> {
        let mut violations = FieldViolations::default();
        let id = report_id(&mut violations, &request.report_id);
        violations.check()?;
        let page = PageRequest::parse(request.page_size, &request.page_token, &id)?;
        let after = page.after.as_ref().and_then(|key| key.first().cloned()).unwrap_or_default();
        let mut tx = self.database.read(organization).await?;
        if store::report_by_id(&mut tx, &id).await?.is_none() {
            return Err(ApiError::not_found("Report", &id));
        }
        let mut found = store::runs_page(&mut tx, &id, &after, page.fetch_limit()).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut found, |run| vec![run.id.clone()]);
        let mut runs = Vec::with_capacity(found.len());
        for run in &found {
            runs.push(self.run_to_proto(&organization.to_string(), run).await?);
        }
        Ok(ListReportRunsResponse { runs, next_page_token })
    }

    /// The file behind a signed link, and its name.
    pub async fn download(&self, request: DownloadReportRunRequest) -> Result<(HttpBody, String), ApiError> {
        let (id, organization) = self.links.open(
            "run_id",
            LinkParts {
                organization_id: request.organization_id,
                id: request.run_id,
                expires: request.expires,
                signature: request.signature,
            },
        )?;
        let mut tx = self.database.read(organization).await?;
        let run = store::run_by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Report run", &id))?;
        tx.commit().await?;
        if !run.rendered {
            return Err(ApiError::FailedPrecondition {
                reason: "REPORT_NOT_RENDERED",
                message: format!("report run {id} has no file yet"),
            });
        }
        let bytes = self.objects.get(&run.object_key).await?.ok_or_else(|| ApiError::not_found("Report file", &id))?;
        Ok((HttpBody { content_type: run.content_type, data: bytes.to_vec(), extensions: Vec::new() }, run.file_name))
    }

    /// The report's numbers now, as the dashboard computes them.
    async fn content<'a>(
        &self,
        organization: OrganizationId,
        report: &'a StoredReport,
    ) -> Result<Content<'a>, ApiError> {
        let definition = &report.definition;
        let now = time::now_micros();
        let start = now - i64::from(definition.comparison_days.max(1)) * 24 * 3600 * 1_000_000;
        let mut tx = self.database.read(organization).await?;
        let instances = DashboardApi::instance_values(&mut tx, (start, now), None, true).await?;
        tx.commit().await?;
        let chosen: Vec<_> = instances
            .iter()
            .filter(|values| {
                definition.instance_ids.is_empty() || definition.instance_ids.contains(&values.instance.instance_id)
            })
            .collect();
        let mut sections = vec![Section {
            title: if definition.instance_ids.is_empty() { "All instances" } else { "Selected instances" }.into(),
            instance_id: String::new(),
            now: metrics::combine(chosen.iter().map(|values| &values.now)),
            then: metrics::combine(chosen.iter().map(|values| &values.then)),
            frameworks: Vec::new(),
        }];
        sections.extend(chosen.iter().map(|values| Section {
            title: instance_name(&values.instance),
            instance_id: values.instance.instance_id.clone(),
            now: values.now.clone(),
            then: values.then.clone(),
            frameworks: values.frameworks.clone(),
        }));
        Ok(Content {
            name: &definition.name,
            description: &definition.description,
            metrics: &definition.metrics,
            comparison_days: definition.comparison_days,
            sections,
            generated_at: now,
        })
    }

    /// Mails the run's file to each recipient not yet served, recording each one.
    async fn deliver(&self, job: &Job, report: &StoredReport, run: &mut StoredRun) -> Result<(), Stop> {
        let pending: Vec<String> =
            report.definition.recipients.iter().filter(|to| !run.delivered_to.contains(to)).cloned().collect();
        if pending.is_empty() {
            return Ok(());
        }
        let organization = job.organization.to_string();
        let as_link = report.definition.delivery() == ReportDelivery::Link || run.size_bytes as usize > MAX_ATTACHMENT;
        let (content, link_expire_time) = if as_link {
            let (uri, expires) = self.mailed_links.link(&self.objects, &run.object_key, &organization, &run.id).await?;
            (deliver_report_request::Content::LinkUri(uri), Some(prost_types::Timestamp { seconds: expires, nanos: 0 }))
        } else {
            let bytes = self
                .objects
                .get(&run.object_key)
                .await?
                .ok_or_else(|| Stop::Failed("the rendered file is missing from object storage".into()))?;
            let attachment = ReportAttachment {
                file_name: run.file_name.clone(),
                content_type: run.content_type.clone(),
                data: bytes.to_vec(),
            };
            (deliver_report_request::Content::Attachment(attachment), None)
        };
        for recipient in pending {
            let request = DeliverReportRequest {
                organization_id: organization.clone(),
                report_run_id: run.id.clone(),
                report_name: report.definition.name.clone(),
                recipient: recipient.clone(),
                render_time: Some(time::to_timestamp(run.created_at)),
                content: Some(content.clone()),
                link_expire_time,
            };
            if let Err(status) = self.notification.clone().deliver_report(request).await {
                return Err(match status.code() {
                    tonic::Code::InvalidArgument | tonic::Code::PermissionDenied | tonic::Code::NotFound => {
                        Stop::Failed(format!("delivering to {recipient}: {}", status.message()))
                    }
                    _ => Stop::Retry(format!("delivering to {recipient}: {}", status.message())),
                });
            }
            run.delivered_to.push(recipient);
            let mut tx = self.database.write(job.organization).await?;
            store::save_run(&mut tx, run).await?;
            job.extend_lease(&mut tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// The run jobs: render, then deliver.
pub struct RunJobs(pub Reports);

impl JobHandler for RunJobs {
    const KIND: &'static str = RUN_KIND;

    async fn execute(&self, job: &Job, stop: &CancellationToken) -> Result<(), Stop> {
        let reports = &self.0;
        let mut tx = reports.database.read(job.organization).await?;
        let run = store::run_by_id(&mut tx, &job.id).await?;
        let report = match &run {
            Some(run) => store::report_by_id(&mut tx, &run.report_id).await?,
            None => None,
        };
        tx.commit().await?;
        let (Some(mut run), Some(report)) = (run, report) else { return Ok(()) };
        if run.state != "pending" {
            return Ok(());
        }
        if !run.rendered {
            if stop.is_cancelled() {
                return Err(Stop::Shutdown);
            }
            let content = reports.content(job.organization, &report).await?;
            let format = ExportFormat::try_from(run.format).unwrap_or(ExportFormat::Pdf);
            let rendered = render::render(&content, format).map_err(Stop::Failed)?;
            run.size_bytes = rendered.bytes.len() as i64;
            run.content_type = rendered.content_type.to_string();
            reports.objects.put(&run.object_key, rendered.bytes).await?;
            run.rendered = true;
            let mut tx = reports.database.write(job.organization).await?;
            store::save_run(&mut tx, &run).await?;
            job.extend_lease(&mut tx).await?;
            tx.commit().await?;
        }
        reports.deliver(job, &report, &mut run).await
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        let Some(mut run) = store::run_by_id(tx, &job.id).await? else { return Ok(()) };
        if run.state != "pending" {
            return Ok(());
        }
        match ending.failure() {
            None => run.state = "ready".into(),
            Some(error) => {
                run.state = "failed".into();
                run.error = error;
            }
        }
        run.ended_at = Some(time::now_micros());
        store::save_run(tx, &run).await?;
        tracing::info!(report_run_id = %run.id, state = %run.state, error = %run.error, "report run ended");
        Ok(())
    }
}

/// The schedule jobs: each firing starts a run; the end queues the next firing.
pub struct ScheduleJobs;

impl JobHandler for ScheduleJobs {
    const KIND: &'static str = SCHEDULE_KIND;

    async fn execute(&self, _job: &Job, _stop: &CancellationToken) -> Result<(), Stop> {
        // The run is started in `record_end`, in the transaction that takes this firing off the
        // queue and queues the next: a firing starts exactly one run.
        Ok(())
    }

    /// The queue entry is the schedule's clock: whenever it comes due (at the firing, or
    /// later after downtime), one run starts.
    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        let Some(mut report) = store::report_by_id(tx, &job.id).await? else { return Ok(()) };
        let schedule = effective_schedule(&report.definition);
        let Ok(schedule) = Schedule::parse(&schedule, &report.definition.time_zone) else { return Ok(()) };
        let now = time::now_micros();
        if *ending == Ending::Succeeded {
            Reports::start_run(tx, &report, ReportTrigger::Scheduled, now).await?;
        }
        // Firings missed while the platform was down are not repeated: the next is after now.
        report.next_run_at = schedule.next_after(now);
        if let Some(next) = report.next_run_at
            && jobs::enqueue_unless_queued(tx, SCHEDULE_KIND, &report.id, next).await?
        {
            store::save_report(tx, &report).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Report {
        Report {
            name: " Board pack ".into(),
            metrics: vec!["posture_score".into(), "open_issues_p1".into()],
            recipients: vec!["CISO@Example.com".into(), "ciso@example.com".into()],
            frequency: ReportFrequency::Weekly as i32,
            time_zone: "Europe/Paris".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_definition_gets_its_defaults_and_its_frequencys_schedule() {
        let mut definition = definition_of(&valid());
        let mut violations = FieldViolations::default();
        let schedule = check(&mut definition, &mut violations);
        assert!(violations.is_empty(), "{violations:?}");
        assert!(schedule.is_some());
        assert_eq!(definition.name, "Board pack");
        assert_eq!(definition.format, ExportFormat::Pdf as i32);
        assert_eq!(definition.delivery, ReportDelivery::Attachment as i32);
        assert_eq!(definition.comparison_days, 30);
        assert_eq!(definition.recipients, ["ciso@example.com"]);
        assert_eq!(effective_schedule(&definition), "0 6 * * 1");
    }

    #[test]
    fn a_bad_definition_names_each_wrong_field() {
        let mut definition = definition_of(&Report {
            name: String::new(),
            metrics: vec!["posture_score".into(), "revenue".into(), "posture_score".into()],
            recipients: vec!["not an address".into()],
            schedule: "0 25 * * *".into(),
            comparison_days: 400,
            format: 42,
            ..Default::default()
        });
        let mut violations = FieldViolations::default();
        check(&mut definition, &mut violations);
        let fields: Vec<String> =
            violations.check().unwrap_err().field_violations().iter().map(|v| v.field.clone()).collect();
        for field in [
            "report.name",
            "report.metrics[1]",
            "report.metrics[2]",
            "report.recipients[0]",
            "report.schedule",
            "report.comparison_days",
            "report.format",
        ] {
            assert!(fields.contains(&field.to_string()), "{field} missing from {fields:?}");
        }
        let mut zone = definition_of(&Report { time_zone: "Nowhere/Town".into(), ..valid() });
        let mut violations = FieldViolations::default();
        check(&mut zone, &mut violations);
        assert_eq!(violations.check().unwrap_err().field_violations()[0].field, "report.time_zone");
    }

    #[test]
    fn file_names_carry_the_report_and_the_day() {
        assert_eq!(file_name("Board pack: Q4", 1_767_225_600_000_000, "pdf"), "report-board-pack--q4-2026-01-01.pdf");
        assert_eq!(file_name("***", 0, "csv"), "report-custom-1970-01-01.csv");
    }
}
