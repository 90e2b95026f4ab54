//! Audit reports: CreateAuditReport queues a job (kind `audit-report`) that reads the period's
//! entries in chain order, verifies the whole trail, and renders a file (CSV, PDF or JSON)
//! into object storage; GetAuditReport tells its state and, when ready, hands out a download
//! link that expires (kit `SignedLinks`). The file names the chain position and hash of its
//! last entry, and whether the trail verified, so whoever holds it can check later that the
//! trail still leads to what it shows.

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::auth::Identity;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::document::{CONTENT_WIDTH, Pages, wrap};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::{OrganizationId, parse_uuid};
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop};
use complianceiq_kit::objects::{LinkParts, Objects, SignedLinks};
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::{time, validate};
use complianceiq_proto::complianceiq::audit::v1::{
    AuditLog, AuditReport, AuditReportState, CreateAuditReportRequest, DownloadAuditReportRequest,
    ListAuditReportsRequest, ListAuditReportsResponse,
};
use complianceiq_proto::complianceiq::common::v1::{ExportFormat, TimeRange};
use complianceiq_proto::google::api::HttpBody;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::store;
use crate::{COMPLIANCE_PREFIX, SECURITY_PREFIX};

/// The queue's name for report jobs.
pub const KIND: &str = "audit-report";
/// Where a report's signed link leads.
pub const DOWNLOAD_ROUTE: &str = "/api/v1/audit/reports/{id}/download";
/// Most entries one report holds: a longer period is refused at the end of reading, with a
/// message to narrow it, rather than exhausting memory.
pub const MAX_ENTRIES: usize = 200_000;
/// Entries read per query.
const READ_BATCH: i64 = 2_000;
const MAX_TITLE: usize = 200;

/// A stored report.
#[derive(Clone, Debug, Default)]
struct ReportRecord {
    id: String,
    title: String,
    period: (i64, i64),
    format: i32,
    include_security: bool,
    include_compliance: bool,
    state: String,
    object_key: String,
    file_name: String,
    content_type: String,
    size_bytes: i64,
    entry_count: i64,
    first_sequence: i64,
    last_sequence: i64,
    last_hash: String,
    trail_intact: bool,
    error: String,
    created_by: String,
    created_at: i64,
    ended_at: Option<i64>,
}

const COLUMNS: &str = "id, title, period_start, period_end, format, include_security, include_compliance, state, \
                       object_key, file_name, content_type, size_bytes, entry_count, first_sequence, last_sequence, \
                       last_hash, trail_intact, error, created_by, created_at, ended_at";

impl ReportRecord {
    fn read(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            title: row.try_get(1)?,
            period: (row.try_get(2)?, row.try_get(3)?),
            format: row.try_get::<i64, _>(4)? as i32,
            include_security: row.try_get::<i64, _>(5)? != 0,
            include_compliance: row.try_get::<i64, _>(6)? != 0,
            state: row.try_get(7)?,
            object_key: row.try_get(8)?,
            file_name: row.try_get(9)?,
            content_type: row.try_get(10)?,
            size_bytes: row.try_get(11)?,
            entry_count: row.try_get(12)?,
            first_sequence: row.try_get(13)?,
            last_sequence: row.try_get(14)?,
            last_hash: row.try_get(15)?,
            trail_intact: row.try_get::<i64, _>(16)? != 0,
            error: row.try_get(17)?,
            created_by: row.try_get(18)?,
            created_at: row.try_get(19)?,
            ended_at: row.try_get(20)?,
        })
    }

    /// Whether the report holds `entry`: every recorded call, and security or compliance
    /// events when asked for.
    fn holds(&self, entry: &AuditLog) -> bool {
        if entry.action.starts_with(SECURITY_PREFIX) {
            self.include_security
        } else if entry.action.starts_with(COMPLIANCE_PREFIX) {
            self.include_compliance
        } else {
            true
        }
    }
}

/// The report store: every query filters by the transaction's tenant.
mod reports_store {
    use super::*;

    pub async fn insert(tx: &mut TenantTx, record: &ReportRecord) -> Result<(), ApiError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_reports (organization_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        )))
        .bind(tx.tenant().to_string())
        .bind(&record.id)
        .bind(&record.title)
        .bind(record.period.0)
        .bind(record.period.1)
        .bind(i64::from(record.format))
        .bind(i64::from(record.include_security))
        .bind(i64::from(record.include_compliance))
        .bind(&record.state)
        .bind(&record.object_key)
        .bind(&record.file_name)
        .bind(&record.content_type)
        .bind(record.size_bytes)
        .bind(record.entry_count)
        .bind(record.first_sequence)
        .bind(record.last_sequence)
        .bind(&record.last_hash)
        .bind(i64::from(record.trail_intact))
        .bind(&record.error)
        .bind(&record.created_by)
        .bind(record.created_at)
        .bind(record.ended_at)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<ReportRecord>, ApiError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_reports WHERE organization_id = $1 AND id = $2"
        )))
        .bind(tx.tenant().to_string())
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
        Ok(row.as_ref().map(ReportRecord::read).transpose()?)
    }

    /// Newest first (ids are time-ordered), after the report `before`.
    pub async fn page(tx: &mut TenantTx, before: Option<&str>, limit: i64) -> Result<Vec<ReportRecord>, ApiError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_reports WHERE organization_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        )))
        .bind(tx.tenant().to_string())
        .bind(before.unwrap_or("~"))
        .bind(limit)
        .fetch_all(tx.connection())
        .await?;
        Ok(rows.iter().map(ReportRecord::read).collect::<Result<_, _>>()?)
    }

    /// Writes the rendering's outcome.
    pub async fn save(tx: &mut TenantTx, record: &ReportRecord) -> Result<(), ApiError> {
        sqlx::query(
            "UPDATE audit_reports SET state = $3, content_type = $4, size_bytes = $5, entry_count = $6, \
             first_sequence = $7, last_sequence = $8, last_hash = $9, trail_intact = $10, error = $11, ended_at = $12 \
             WHERE organization_id = $1 AND id = $2",
        )
        .bind(tx.tenant().to_string())
        .bind(&record.id)
        .bind(&record.state)
        .bind(&record.content_type)
        .bind(record.size_bytes)
        .bind(record.entry_count)
        .bind(record.first_sequence)
        .bind(record.last_sequence)
        .bind(&record.last_hash)
        .bind(i64::from(record.trail_intact))
        .bind(&record.error)
        .bind(record.ended_at)
        .execute(tx.connection())
        .await?;
        Ok(())
    }
}

fn extension(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Pdf => "pdf",
        ExportFormat::Csv => "csv",
        _ => "json",
    }
}

fn date(micros: i64) -> String {
    let stamp = time::to_timestamp(micros).to_string();
    stamp.get(..10).unwrap_or(&stamp).to_string()
}

/// The report RPCs and the job that renders.
#[derive(Clone)]
pub struct Reports {
    pub keys: crate::retention::CheckpointKeys,
    pub database: ModuleDatabase,
    pub objects: Objects,
    pub links: SignedLinks,
}

impl Reports {
    async fn to_proto(&self, organization: &str, record: &ReportRecord) -> Result<AuditReport, ApiError> {
        let state = match record.state.as_str() {
            "ready" => AuditReportState::Ready,
            "failed" => AuditReportState::Failed,
            _ => AuditReportState::Pending,
        };
        let (download_uri, download_expire_time) = if state == AuditReportState::Ready {
            let (uri, expires) = self.links.link(&self.objects, &record.object_key, organization, &record.id).await?;
            (uri, Some(prost_types_timestamp(expires)))
        } else {
            (String::new(), None)
        };
        Ok(AuditReport {
            id: record.id.clone(),
            organization_id: organization.to_string(),
            title: record.title.clone(),
            period: Some(TimeRange {
                start_time: Some(time::to_timestamp(record.period.0)),
                end_time: Some(time::to_timestamp(record.period.1)),
            }),
            format: record.format,
            include_security_events: record.include_security,
            include_compliance_events: record.include_compliance,
            state: state as i32,
            download_uri,
            entry_count: record.entry_count,
            created_by: record.created_by.clone(),
            create_time: Some(time::to_timestamp(record.created_at)),
            error: record.error.clone(),
            download_expire_time,
            size_bytes: record.size_bytes,
            file_name: record.file_name.clone(),
            first_sequence: record.first_sequence,
            last_sequence: record.last_sequence,
            last_hash: record.last_hash.clone(),
            trail_intact: record.trail_intact,
        })
    }

    /// Queues a report.
    pub async fn create(
        &self,
        identity: &Identity,
        request: CreateAuditReportRequest,
    ) -> Result<AuditReport, ApiError> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let Some(report) = request.audit_report else {
            violations.required("audit_report");
            return Err(violations.check().expect_err("a violation"));
        };
        violations.text("audit_report.title", &report.title, MAX_TITLE);
        let format = match ExportFormat::try_from(report.format) {
            Ok(format @ (ExportFormat::Pdf | ExportFormat::Csv | ExportFormat::Json)) => format,
            Ok(ExportFormat::Unspecified) => {
                violations.required("audit_report.format");
                ExportFormat::Unspecified
            }
            _ => {
                violations.add("audit_report.format", "UNSUPPORTED", "audit reports are PDF, CSV or JSON");
                ExportFormat::Unspecified
            }
        };
        if report.period.as_ref().and_then(|period| period.start_time.as_ref()).is_none() {
            violations.add("audit_report.period.start_time", "REQUIRED", "a report covers a period with a start");
        }
        let now = time::now_micros();
        let period = validate::period(&mut violations, report.period.as_ref(), (0, now));
        violations.check()?;
        let id = uuid::Uuid::now_v7().to_string();
        let extension = extension(format);
        let record = ReportRecord {
            id: id.clone(),
            title: report.title.trim().to_string(),
            period,
            format: format as i32,
            include_security: report.include_security_events,
            include_compliance: report.include_compliance_events,
            state: "pending".into(),
            object_key: format!("audit-reports/{organization}/{id}.{extension}"),
            file_name: format!("audit-{}-{}.{extension}", date(period.0), date(period.1)),
            created_by: identity.user_id.to_string(),
            created_at: now,
            ..Default::default()
        };
        let mut tx = self.database.write(organization).await?;
        reports_store::insert(&mut tx, &record).await?;
        jobs::enqueue(&mut tx, KIND, &id).await?;
        tx.commit().await?;
        self.to_proto(&organization.to_string(), &record).await
    }

    pub async fn get(&self, organization: OrganizationId, report_id: &str) -> Result<AuditReport, ApiError> {
        let id = parse_uuid("report_id", report_id)?.to_string();
        let mut tx = self.database.read(organization).await?;
        let record =
            reports_store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("AuditReport", &id))?;
        tx.commit().await?;
        self.to_proto(&organization.to_string(), &record).await
    }

    pub async fn list(
        &self,
        organization: OrganizationId,
        request: ListAuditReportsRequest,
    ) -> Result<ListAuditReportsResponse, ApiError> {
        let page = PageRequest::parse(request.page_size, &request.page_token, "audit-reports")?;
        let before = page.after.as_ref().and_then(|key| key.first().cloned());
        let mut tx = self.database.read(organization).await?;
        let records = reports_store::page(&mut tx, before.as_deref(), page.fetch_limit()).await?;
        tx.commit().await?;
        let mut audit_reports = Vec::with_capacity(records.len());
        for record in &records {
            audit_reports.push(self.to_proto(&organization.to_string(), record).await?);
        }
        let next_page_token = page.finish(&mut audit_reports, |report| vec![report.id.clone()]);
        Ok(ListAuditReportsResponse { audit_reports, next_page_token })
    }

    /// The file behind a signed link, and its name.
    pub async fn download(&self, request: DownloadAuditReportRequest) -> Result<(HttpBody, String), ApiError> {
        let (id, organization) = self.links.open(
            "report_id",
            LinkParts {
                organization_id: request.organization_id,
                id: request.report_id,
                expires: request.expires,
                signature: request.signature,
            },
        )?;
        let mut tx = self.database.read(organization).await?;
        let record =
            reports_store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("AuditReport", &id))?;
        tx.commit().await?;
        if record.state != "ready" {
            return Err(ApiError::FailedPrecondition {
                reason: "REPORT_NOT_READY",
                message: format!("audit report {id} is {}", record.state),
            });
        }
        let bytes =
            self.objects.get(&record.object_key).await?.ok_or_else(|| ApiError::not_found("AuditReport file", &id))?;
        Ok((
            HttpBody { content_type: record.content_type, data: bytes.to_vec(), extensions: Vec::new() },
            record.file_name,
        ))
    }

    /// The report's entries, in chain order.
    async fn entries(&self, job: &Job, record: &ReportRecord) -> Result<Vec<AuditLog>, Stop> {
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let mut tx = self.database.read(job.organization).await?;
            let batch = store::in_period(&mut tx, record.period, after, READ_BATCH).await?;
            tx.commit().await?;
            let Some(last) = batch.last() else { return Ok(entries) };
            after = last.sequence;
            let full = batch.len() as i64 == READ_BATCH;
            entries.extend(batch.into_iter().filter(|entry| record.holds(entry)));
            if entries.len() > MAX_ENTRIES {
                return Err(Stop::Failed(format!(
                    "the period holds more than {MAX_ENTRIES} entries; make one report per shorter period"
                )));
            }
            if !full {
                return Ok(entries);
            }
        }
    }
}

fn prost_types_timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

impl JobHandler for Reports {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, stop: &CancellationToken) -> Result<(), Stop> {
        if stop.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        let mut tx = self.database.read(job.organization).await?;
        let Some(mut record) = reports_store::by_id(&mut tx, &job.id).await? else { return Ok(()) };
        tx.commit().await?;
        if record.state != "pending" {
            return Ok(());
        }
        let entries = self.entries(job, &record).await?;
        let verification = self.keys.verify(&self.database, job.organization).await?;
        record.entry_count = entries.len() as i64;
        record.first_sequence = entries.first().map_or(0, |entry| entry.sequence);
        record.last_sequence = entries.last().map_or(0, |entry| entry.sequence);
        record.last_hash = entries.last().map(|entry| entry.hash.clone()).unwrap_or_default();
        record.trail_intact = verification.intact;
        let format = ExportFormat::try_from(record.format).unwrap_or(ExportFormat::Unspecified);
        let document = Document {
            organization_id: job.organization.to_string(),
            record: &record,
            entries: &entries,
            verification_problem: if verification.intact {
                String::new()
            } else {
                format!(
                    "entry {} ({}) {}",
                    verification.first_broken_sequence, verification.first_broken_log_id, verification.problem
                )
            },
            checkpoint_sequence: verification.checkpoint_sequence,
            generated_at: time::now_micros(),
        };
        let (bytes, content_type) = render(&document, format).map_err(Stop::Failed)?;
        record.size_bytes = bytes.len() as i64;
        record.content_type = content_type.to_string();
        self.objects.put(&record.object_key, bytes).await?;
        let mut tx = self.database.write(job.organization).await?;
        reports_store::save(&mut tx, &record).await?;
        job.extend_lease(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        let Some(mut record) = reports_store::by_id(tx, &job.id).await? else { return Ok(()) };
        if record.state != "pending" {
            return Ok(());
        }
        match ending.failure() {
            None => record.state = "ready".into(),
            Some(error) => {
                record.state = "failed".into();
                record.error = error;
            }
        }
        record.ended_at = Some(time::now_micros());
        reports_store::save(tx, &record).await?;
        tracing::info!(report_id = %record.id, state = %record.state, error = %record.error, "audit report ended");
        Ok(())
    }
}

/// The worker, for the module's parts.
pub fn worker(
    reports: Reports,
    settings: jobs::WorkerSettings,
    metrics: Arc<complianceiq_kit::metrics::Metrics>,
) -> complianceiq_kit::module::Worker {
    let database = reports.database.clone();
    let handler = Arc::new(reports);
    // A person waits for a report: the queue is read more often than the default.
    let settings = jobs::WorkerSettings { poll: Duration::from_millis(200), ..settings };
    jobs::worker("audit-reports", database, handler, settings, metrics)
}

/// What a report file holds.
struct Document<'a> {
    organization_id: String,
    record: &'a ReportRecord,
    entries: &'a [AuditLog],
    /// Empty when the trail verified.
    verification_problem: String,
    /// Where the verified chain starts after retention; 0 from the first entry.
    checkpoint_sequence: i64,
    generated_at: i64,
}

fn rfc3339(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp.map(|t| t.to_string()).unwrap_or_default()
}

fn outcome(entry: &AuditLog) -> &'static str {
    entry.outcome().as_str_name().trim_start_matches("OUTCOME_")
}

/// The entry's metadata as sorted `key=value` pairs.
fn metadata(entry: &AuditLog) -> String {
    let mut pairs: Vec<String> = entry.metadata.iter().map(|(key, value)| format!("{key}={value}")).collect();
    pairs.sort();
    pairs.join("; ")
}

fn render(document: &Document<'_>, format: ExportFormat) -> Result<(Vec<u8>, &'static str), String> {
    match format {
        ExportFormat::Csv => Ok((csv(document)?, "text/csv; charset=utf-8")),
        ExportFormat::Pdf => Ok((pdf(document), "application/pdf")),
        ExportFormat::Json => {
            Ok((serde_json::to_vec_pretty(&json(document)).map_err(|e| format!("json: {e}"))?, "application/json"))
        }
        _ => Err("audit reports are PDF, CSV or JSON".into()),
    }
}

const CSV_HEADER: [&str; 17] = [
    "sequence",
    "event_time",
    "actor_user_id",
    "actor_email",
    "actor_service",
    "ip_address",
    "user_agent",
    "action",
    "rpc",
    "resource_type",
    "resource_id",
    "outcome",
    "status_code",
    "request_id",
    "metadata",
    "previous_hash",
    "hash",
];

/// One row per entry, with both hashes, so the chain can be recomputed from the file's rows
/// alongside the trail.
fn csv(document: &Document<'_>) -> Result<Vec<u8>, String> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER).map_err(|e| format!("csv: {e}"))?;
    for entry in document.entries {
        let actor = entry.actor.clone().unwrap_or_default();
        writer
            .write_record([
                entry.sequence.to_string(),
                rfc3339(entry.event_time.as_ref()),
                actor.user_id,
                actor.email,
                actor.service,
                actor.ip_address,
                actor.user_agent,
                entry.action.clone(),
                entry.rpc.clone(),
                entry.resource_type.clone(),
                entry.resource_id.clone(),
                outcome(entry).to_string(),
                entry.status_code.to_string(),
                entry.request_id.clone(),
                metadata(entry),
                entry.previous_hash.clone(),
                entry.hash.clone(),
            ])
            .map_err(|e| format!("csv: {e}"))?;
    }
    writer.into_inner().map_err(|e| format!("csv: {e}"))
}

fn json(document: &Document<'_>) -> serde_json::Value {
    let record = document.record;
    let entries: Vec<serde_json::Value> = document
        .entries
        .iter()
        .map(|entry| {
            let actor = entry.actor.clone().unwrap_or_default();
            serde_json::json!({
                "sequence": entry.sequence,
                "id": entry.id,
                "eventTime": rfc3339(entry.event_time.as_ref()),
                "actor": {"userId": actor.user_id, "email": actor.email, "service": actor.service,
                          "ipAddress": actor.ip_address, "userAgent": actor.user_agent},
                "action": entry.action,
                "rpc": entry.rpc,
                "resourceType": entry.resource_type,
                "resourceId": entry.resource_id,
                "outcome": outcome(entry),
                "statusCode": entry.status_code,
                "requestId": entry.request_id,
                "metadata": entry.metadata,
                "previousHash": entry.previous_hash,
                "hash": entry.hash,
            })
        })
        .collect();
    serde_json::json!({
        "report": {
            "id": record.id,
            "organizationId": document.organization_id,
            "title": record.title,
            "periodStart": time::to_timestamp(record.period.0).to_string(),
            "periodEnd": time::to_timestamp(record.period.1).to_string(),
            "includeSecurityEvents": record.include_security,
            "includeComplianceEvents": record.include_compliance,
            "entryCount": record.entry_count,
            "firstSequence": record.first_sequence,
            "lastSequence": record.last_sequence,
            "lastHash": record.last_hash,
            "trailIntact": record.trail_intact,
            "trailProblem": document.verification_problem,
            "generatedAt": time::to_timestamp(document.generated_at).to_string(),
        },
        "entries": entries,
    })
}

/// Counts of `key` over the entries, most frequent first (ties by name).
fn tally<'a>(entries: &'a [AuditLog], key: impl Fn(&'a AuditLog) -> &'a str) -> Vec<(&'a str, usize)> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for entry in entries {
        *counts.entry(key(entry)).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
}

fn pdf(document: &Document<'_>) -> Vec<u8> {
    let record = document.record;
    let mut pages = Pages::new();
    pages.line("ComplianceIQ audit report", 9.0, false);
    pages.gap(6.0);
    for line in wrap(&record.title, 16.0, CONTENT_WIDTH) {
        pages.line(&line, 16.0, true);
    }
    pages.gap(4.0);
    pages.paragraph(
        &format!(
            "Organization {} | Period {} to {} (end exclusive) | {} entries{}{}",
            document.organization_id,
            time::to_timestamp(record.period.0),
            time::to_timestamp(record.period.1),
            record.entry_count,
            if record.include_security { " | with security events" } else { "" },
            if record.include_compliance { " | with compliance events" } else { "" },
        ),
        9.0,
    );
    pages.gap(8.0);
    pages.line("Integrity", 12.0, true);
    let integrity = if document.verification_problem.is_empty() {
        let from = if document.checkpoint_sequence > 0 {
            format!("from the signed retention checkpoint after entry {}", document.checkpoint_sequence)
        } else {
            "from the first".to_string()
        };
        format!(
            "The organization's whole audit trail verified when this report was made: every entry links to the one \
             before it by SHA-256, {from}."
        )
    } else {
        format!(
            "WARNING: the organization's audit trail did NOT verify when this report was made: {}.",
            document.verification_problem
        )
    };
    pages.paragraph(&integrity, 10.0);
    if record.entry_count > 0 {
        pages.paragraph(
            &format!(
                "This report holds chain positions {} to {}; the hash at {} is {}.",
                record.first_sequence, record.last_sequence, record.last_sequence, record.last_hash
            ),
            9.0,
        );
    }
    pages.gap(8.0);
    pages.line("Summary", 12.0, true);
    let outcomes: Vec<Vec<String>> = tally(document.entries, |entry| outcome(entry))
        .into_iter()
        .map(|(name, n)| vec![name.to_string(), n.to_string()])
        .collect();
    pages.table(&["Outcome", "Entries"], &[200.0, 100.0], &outcomes);
    pages.gap(6.0);
    let actions: Vec<Vec<String>> = tally(document.entries, |entry| entry.action.as_str())
        .into_iter()
        .take(25)
        .map(|(name, n)| vec![name.to_string(), n.to_string()])
        .collect();
    pages.table(&["Action (25 most frequent)", "Entries"], &[300.0, 100.0], &actions);
    pages.gap(10.0);
    pages.line("Entries", 12.0, true);
    let rows: Vec<Vec<String>> = document
        .entries
        .iter()
        .map(|entry| {
            let actor = entry.actor.clone().unwrap_or_default();
            let who =
                [actor.email, actor.service, actor.user_id].into_iter().find(|s| !s.is_empty()).unwrap_or_default();
            let time = rfc3339(entry.event_time.as_ref());
            vec![
                entry.sequence.to_string(),
                time.get(..19).unwrap_or(&time).replace('T', " "),
                who,
                entry.action.clone(),
                format!("{} {}", entry.resource_type, entry.resource_id),
                outcome(entry).to_string(),
            ]
        })
        .collect();
    pages.table(
        &["#", "Time (UTC)", "Actor", "Action", "Resource", "Outcome"],
        &[35.0, 85.0, 110.0, 105.0, 110.0, 50.0],
        &rows,
    );
    pages.finish(&record.title, |page, count| {
        format!(
            "Generated {} by ComplianceIQ | audit report {} | page {page} of {count}",
            time::to_timestamp(document.generated_at),
            record.id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use complianceiq_proto::complianceiq::audit::v1::{Actor, Outcome};

    fn entry(sequence: i64, action: &str, outcome: Outcome) -> AuditLog {
        AuditLog {
            sequence,
            action: action.into(),
            resource_type: "instance".into(),
            resource_id: "i-1".into(),
            outcome: outcome as i32,
            actor: Some(Actor { email: "ada@example.com".into(), ..Default::default() }),
            metadata: [("b".to_string(), "2, \"two\"".to_string()), ("a".to_string(), "1".to_string())].into(),
            hash: format!("h{sequence}"),
            previous_hash: format!("h{}", sequence - 1),
            ..Default::default()
        }
    }

    #[test]
    fn every_format_carries_the_entries_and_their_hashes() {
        let record = ReportRecord {
            id: "r".into(),
            title: "Q4 access review".into(),
            period: (0, 86_400_000_000),
            entry_count: 2,
            first_sequence: 1,
            last_sequence: 2,
            last_hash: "h2".into(),
            trail_intact: true,
            ..Default::default()
        };
        let entries =
            [entry(1, "instance.update", Outcome::Success), entry(2, "security.login_failed", Outcome::Denied)];
        let document = Document {
            organization_id: "org".into(),
            record: &record,
            entries: &entries,
            verification_problem: String::new(),
            checkpoint_sequence: 0,
            generated_at: 0,
        };
        let (csv, _) = render(&document, ExportFormat::Csv).unwrap();
        let mut reader = ::csv::Reader::from_reader(csv.as_slice());
        let rows: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(reader.headers().unwrap().len(), CSV_HEADER.len());
        assert_eq!(
            (&rows[1][0], &rows[1][7], &rows[1][11], &rows[1][16]),
            ("2", "security.login_failed", "DENIED", "h2")
        );
        assert_eq!(&rows[0][14], "a=1; b=2, \"two\"", "metadata sorted, quoted by the CSV writer");
        let (json, _) = render(&document, ExportFormat::Json).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            (json["report"]["lastHash"].as_str(), json["entries"][1]["hash"].as_str()),
            (Some("h2"), Some("h2"))
        );
        let (pdf, content_type) = render(&document, ExportFormat::Pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-") && content_type == "application/pdf");
        assert!(render(&document, ExportFormat::Xlsx).is_err());
    }

    #[test]
    fn security_and_compliance_events_only_when_asked_for() {
        let mut record = ReportRecord::default();
        let call = entry(1, "instance.update", Outcome::Success);
        let (security, compliance) = (
            entry(2, "security.mfa_failed", Outcome::Denied),
            entry(3, "compliance.control_ineffective", Outcome::Success),
        );
        assert!(record.holds(&call) && !record.holds(&security) && !record.holds(&compliance));
        record.include_security = true;
        record.include_compliance = true;
        assert!(record.holds(&security) && record.holds(&compliance));
    }
}
