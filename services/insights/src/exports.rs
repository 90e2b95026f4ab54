//! Exports: ExportInsight queues a job (kind `insight_export` on the kit's queue) that renders
//! the insight into object storage; GetExport tells its state and, when ready, hands out a
//! fresh download link that expires. On S3 the link is the bucket's presigned URL; with a
//! local directory it is the platform's own DownloadExport route, signed with a key derived
//! from the encryption keys (the signature and expiry are the link's authorization).

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::auth::Identity;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop};
use complianceiq_kit::objects::{LinkParts, Objects, SignedLinks};
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::common::v1::ExportFormat;
use complianceiq_proto::complianceiq::insights::v1::{
    DownloadExportRequest, Export, ExportInsightRequest, ExportState, GetExportRequest,
};
use complianceiq_proto::google::api::HttpBody;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::{render, store};

/// The queue's name for export jobs.
pub const KIND: &str = "insight_export";

/// Where an export's signed link leads.
pub const DOWNLOAD_ROUTE: &str = "/api/v1/insights/exports/{id}/download";

/// A stored export.
#[derive(Clone, Debug, Default)]
pub struct ExportRecord {
    pub id: String,
    pub insight_id: String,
    pub instance_id: String,
    pub format: i32,
    pub state: String,
    pub object_key: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub error: String,
    pub created_by: String,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

const EXPORT_COLUMNS: &str = "id, insight_id, instance_id, format, state, object_key, file_name, content_type, \
                              size_bytes, error, created_by, created_at, ended_at";

fn export_record(row: &sqlx::any::AnyRow) -> Result<ExportRecord, ApiError> {
    Ok(ExportRecord {
        id: row.try_get(0)?,
        insight_id: row.try_get(1)?,
        instance_id: row.try_get(2)?,
        format: row.try_get::<i64, _>(3)? as i32,
        state: row.try_get(4)?,
        object_key: row.try_get(5)?,
        file_name: row.try_get(6)?,
        content_type: row.try_get(7)?,
        size_bytes: row.try_get(8)?,
        error: row.try_get(9)?,
        created_by: row.try_get(10)?,
        created_at: row.try_get(11)?,
        ended_at: row.try_get(12)?,
    })
}

/// The export store: every query filters by the transaction's tenant.
pub mod exports_store {
    use super::*;

    pub async fn insert(tx: &mut TenantTx, record: &ExportRecord) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO insight_exports (organization_id, {EXPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14)"
        )))
        .bind(tenant)
        .bind(&record.id)
        .bind(&record.insight_id)
        .bind(&record.instance_id)
        .bind(i64::from(record.format))
        .bind(&record.state)
        .bind(&record.object_key)
        .bind(&record.file_name)
        .bind(&record.content_type)
        .bind(record.size_bytes)
        .bind(&record.error)
        .bind(&record.created_by)
        .bind(record.created_at)
        .bind(record.ended_at)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<ExportRecord>, ApiError> {
        let tenant = tx.tenant().to_string();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLUMNS} FROM insight_exports WHERE organization_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
        row.as_ref().map(export_record).transpose()
    }

    /// Writes the rendering's outcome.
    pub async fn save(tx: &mut TenantTx, record: &ExportRecord) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(
            "UPDATE insight_exports SET state = $3, content_type = $4, size_bytes = $5, error = $6, ended_at = $7 \
             WHERE organization_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(&record.id)
        .bind(&record.state)
        .bind(&record.content_type)
        .bind(record.size_bytes)
        .bind(&record.error)
        .bind(record.ended_at)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    /// Removes an instance's exports; returns their files' keys.
    pub async fn purge(tx: &mut TenantTx, instance: &str) -> Result<Vec<String>, ApiError> {
        let tenant = tx.tenant().to_string();
        let rows = sqlx::query(
            "DELETE FROM insight_exports WHERE organization_id = $1 AND instance_id = $2 RETURNING object_key",
        )
        .bind(tenant)
        .bind(instance)
        .fetch_all(tx.connection())
        .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }
}

/// A file name people can keep: the record's number and the format, ASCII only.
fn file_name(display: &str, extension: &str) -> String {
    let stem: String = display
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(60)
        .collect();
    let stem = stem.trim_matches('-');
    format!("insight-{}.{extension}", if stem.is_empty() { "export" } else { stem })
}

fn extension(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Pdf => "pdf",
        ExportFormat::Csv => "csv",
        ExportFormat::Xlsx => "xlsx",
        ExportFormat::Json => "json",
        ExportFormat::Unspecified => "bin",
    }
}

/// The export RPCs and the job that renders.
#[derive(Clone)]
pub struct Exports {
    pub database: ModuleDatabase,
    pub objects: Objects,
    pub links: SignedLinks,
}

impl Exports {
    async fn to_proto(&self, organization: &str, record: &ExportRecord) -> Result<Export, ApiError> {
        let state = match record.state.as_str() {
            "ready" => ExportState::Ready,
            "failed" => ExportState::Failed,
            _ => ExportState::Pending,
        };
        let (download_uri, expire_time) = if state == ExportState::Ready {
            let (uri, expires) = self.links.link(&self.objects, &record.object_key, organization, &record.id).await?;
            (uri, Some(prost_types::Timestamp { seconds: expires, nanos: 0 }))
        } else {
            (String::new(), None)
        };
        Ok(Export {
            id: record.id.clone(),
            organization_id: organization.to_string(),
            insight_id: record.insight_id.clone(),
            format: record.format,
            state: state as i32,
            download_uri,
            size_bytes: record.size_bytes,
            expire_time,
            create_time: Some(time::to_timestamp(record.created_at)),
            error: record.error.clone(),
            file_name: record.file_name.clone(),
        })
    }

    /// Queues the rendering of an insight.
    pub async fn start(&self, identity: &Identity, request: ExportInsightRequest) -> Result<Export, ApiError> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let insight_id = violations.uuid("insight_id", &request.insight_id);
        let format = match ExportFormat::try_from(request.format) {
            Ok(ExportFormat::Unspecified) => {
                violations.required("format");
                ExportFormat::Unspecified
            }
            Ok(format) => format,
            Err(_) => {
                violations.add("format", "INVALID", "format must be PDF, CSV, XLSX or JSON");
                ExportFormat::Unspecified
            }
        };
        violations.check()?;
        let mut tx = self.database.write(organization).await?;
        let insight =
            store::by_id(&mut tx, &insight_id).await?.ok_or_else(|| ApiError::not_found("Insight", &insight_id))?;
        let id = uuid::Uuid::now_v7().to_string();
        let extension = extension(format);
        let display = insight.subject.as_ref().map(|subject| subject.display.as_str()).unwrap_or_default();
        let record = ExportRecord {
            id: id.clone(),
            insight_id,
            instance_id: insight.instance_id.clone(),
            format: format as i32,
            state: "pending".into(),
            object_key: format!("exports/{organization}/{id}.{extension}"),
            file_name: file_name(display, extension),
            created_by: identity.user_id.to_string(),
            created_at: time::now_micros(),
            ..Default::default()
        };
        exports_store::insert(&mut tx, &record).await?;
        jobs::enqueue(&mut tx, KIND, &id).await?;
        tx.commit().await?;
        self.to_proto(&organization.to_string(), &record).await
    }

    pub async fn get(&self, organization: OrganizationId, request: GetExportRequest) -> Result<Export, ApiError> {
        let mut violations = FieldViolations::default();
        let id = violations.uuid("export_id", &request.export_id);
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        let record = exports_store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Export", &id))?;
        tx.commit().await?;
        self.to_proto(&organization.to_string(), &record).await
    }

    /// The file behind a signed link, and its name.
    pub async fn download(&self, request: DownloadExportRequest) -> Result<(HttpBody, String), ApiError> {
        let (id, organization) = self.links.open(
            "export_id",
            LinkParts {
                organization_id: request.organization_id,
                id: request.export_id,
                expires: request.expires,
                signature: request.signature,
            },
        )?;
        let mut tx = self.database.read(organization).await?;
        let record = exports_store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Export", &id))?;
        tx.commit().await?;
        if record.state != "ready" {
            return Err(ApiError::FailedPrecondition {
                reason: "EXPORT_NOT_READY",
                message: format!("export {id} is {}", record.state),
            });
        }
        let bytes =
            self.objects.get(&record.object_key).await?.ok_or_else(|| ApiError::not_found("Export file", &id))?;
        Ok((
            HttpBody { content_type: record.content_type, data: bytes.to_vec(), extensions: Vec::new() },
            record.file_name,
        ))
    }
}

impl JobHandler for Exports {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, stop: &CancellationToken) -> Result<(), Stop> {
        if stop.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        let mut tx = self.database.read(job.organization).await?;
        let Some(mut record) = exports_store::by_id(&mut tx, &job.id).await? else { return Ok(()) };
        if record.state != "pending" {
            return Ok(());
        }
        let Some(insight) = store::by_id(&mut tx, &record.insight_id).await? else {
            return Err(Stop::Failed("the insight no longer exists".into()));
        };
        let history = store::changes_of_insight(&mut tx, &record.insight_id).await?;
        tx.commit().await?;
        let format = ExportFormat::try_from(record.format).unwrap_or(ExportFormat::Unspecified);
        let document = render::Document { insight: &insight, history: &history, generated_at: time::now_micros() };
        let rendered = render::render(&document, format).map_err(Stop::Failed)?;
        record.size_bytes = rendered.bytes.len() as i64;
        record.content_type = rendered.content_type.to_string();
        self.objects.put(&record.object_key, rendered.bytes).await?;
        let mut tx = self.database.write(job.organization).await?;
        exports_store::save(&mut tx, &record).await?;
        job.extend_lease(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        let Some(mut record) = exports_store::by_id(tx, &job.id).await? else { return Ok(()) };
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
        exports_store::save(tx, &record).await?;
        tracing::info!(export_id = %record.id, state = %record.state, error = %record.error, "export ended");
        Ok(())
    }
}

/// The worker, for the module's parts.
pub fn worker(
    exports: Exports,
    settings: jobs::WorkerSettings,
    metrics: Arc<complianceiq_kit::metrics::Metrics>,
) -> complianceiq_kit::module::Worker {
    let database = exports.database.clone();
    let handler = Arc::new(exports);
    // A person waits for an export: the queue is read more often than the default.
    let settings = jobs::WorkerSettings { poll: Duration::from_millis(200), ..settings };
    jobs::worker("insight-exports", database, handler, settings, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_to_safe_characters() {
        assert_eq!(file_name("CTRL0001", "pdf"), "insight-CTRL0001.pdf");
        assert_eq!(file_name("Access/review \"Q4\"", "csv"), "insight-Access-review--Q4.csv");
        assert_eq!(file_name("", "xlsx"), "insight-export.xlsx");
    }
}
