//! Regulations uploaded for ScanRegulation through object storage, for files larger than a
//! request takes: CreateDocumentUpload records the document and answers a link that takes its
//! file by PUT (S3's presigned URL, or the platform's signed UploadDocument route with a local
//! directory); a job queued for the document's expiry purges the row and the file.

use std::time::Duration;

use complianceiq_kit::auth::Identity;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop};
use complianceiq_kit::objects::{LinkParts, Objects, SignedLinks};
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::ml::v1::{
    CreateDocumentUploadRequest, Document, DocumentUpload, ScanRegulationRequest, UploadDocumentRequest,
};
use tokio_util::sync::CancellationToken;

use crate::store::{self, DocumentRecord};

/// How long a document is kept after its upload was started.
pub const DOCUMENT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Largest uploaded PDF scanned, and largest text.
pub const MAX_PDF_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_TEXT_BYTES: usize = crate::MAX_TEXT_BYTES;
/// The route UploadDocument answers at, which the platform's own upload links sign.
pub const UPLOAD_ROUTE: &str = "/api/v1/ml/documents/{id}/content";
/// The queue's name for a document's purge at its expiry.
const KIND: &str = "ml_document_expiry";
const MAX_FILE_NAME: usize = 255;
/// Documents an organization keeps at once (each up to 16 MiB of storage).
const MAX_DOCUMENTS: i64 = 100;
pub const PDF: &str = "application/pdf";
pub const TEXT: &str = "text/plain";

#[derive(Clone)]
pub struct Documents {
    pub database: ModuleDatabase,
    pub objects: Objects,
    pub links: SignedLinks,
    /// The largest body the platform's own upload route takes (the edge's request limit).
    pub max_request_bytes: usize,
}

/// A document's file, read for a scan.
pub enum Source {
    Pdf(Vec<u8>),
    Text(String),
}

impl Documents {
    fn to_proto(organization: &str, record: &DocumentRecord) -> Document {
        Document {
            id: record.id.clone(),
            organization_id: organization.to_string(),
            file_name: record.file_name.clone(),
            content_type: record.content_type.clone(),
            create_time: Some(time::to_timestamp(record.created_at)),
            expire_time: Some(time::to_timestamp(record.expires_at)),
        }
    }

    /// The largest file a document of `content_type` holds.
    fn max_bytes(content_type: &str) -> usize {
        if content_type == PDF { MAX_PDF_BYTES } else { MAX_TEXT_BYTES }
    }

    pub async fn create_upload(
        &self,
        identity: &Identity,
        request: CreateDocumentUploadRequest,
    ) -> Result<DocumentUpload, ApiError> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let file_name = request.file_name.trim();
        if file_name.is_empty() {
            violations.required("file_name");
        } else if file_name.chars().any(char::is_control) {
            violations.add("file_name", "INVALID", "a file name holds no control characters");
        }
        violations.max_chars("file_name", file_name, MAX_FILE_NAME);
        let content_type = media_type(&request.content_type);
        if content_type.is_empty() {
            violations.required("content_type");
        } else if content_type != PDF && content_type != TEXT {
            violations.add("content_type", "UNSUPPORTED", format!("a document is {PDF} or {TEXT}"));
        }
        violations.check()?;
        let now = time::now_micros();
        let record = DocumentRecord {
            id: uuid::Uuid::now_v7().to_string(),
            file_name: file_name.to_string(),
            content_type,
            created_by: identity.user_id.to_string(),
            created_at: now,
            expires_at: now + DOCUMENT_TTL.as_micros() as i64,
        };
        let mut tx = self.database.write(organization).await?;
        tx.serialize_on("ml-documents").await?;
        let kept = store::count_documents(&mut tx, now).await?;
        if kept >= MAX_DOCUMENTS {
            return Err(ApiError::ResourceExhausted {
                reason: "DOCUMENT_LIMIT",
                message: format!(
                    "this organization keeps {kept} documents and at most {MAX_DOCUMENTS}: each goes {} hours after \
                     its upload began",
                    DOCUMENT_TTL.as_secs() / 3600
                ),
                retry_after: None,
            });
        }
        store::insert_document(&mut tx, &record).await?;
        jobs::enqueue_at(&mut tx, KIND, &record.id, record.expires_at).await?;
        tx.commit().await?;
        let tenant = organization.to_string();
        let key = record.key(&tenant);
        let (upload_uri, expires) = self.links.upload_link(&self.objects, &key, &tenant, &record.id).await?;
        let most = Self::max_bytes(&record.content_type);
        // Through the platform's own route, the edge's request limit bounds the file too.
        let max_bytes = if self.objects.signs_links() { most } else { most.min(self.max_request_bytes) };
        Ok(DocumentUpload {
            document: Some(Self::to_proto(&tenant, &record)),
            upload_uri,
            upload_expire_time: Some(time::to_timestamp(expires.saturating_mul(1_000_000))),
            max_bytes: max_bytes as i64,
        })
    }

    /// Stores the file sent to the platform's own upload link.
    pub async fn upload(&self, request: UploadDocumentRequest) -> Result<Document, ApiError> {
        let (id, organization) = self.links.open(
            "document_id",
            LinkParts {
                organization_id: request.organization_id,
                id: request.document_id,
                expires: request.expires,
                signature: request.signature,
            },
        )?;
        let record = self.find(organization, &id).await?;
        let content = request.content.unwrap_or_default();
        let sent_type = media_type(&content.content_type);
        if sent_type != record.content_type {
            return Err(ApiError::invalid_field(
                "content",
                "CONTENT_TYPE_MISMATCH",
                format!("document {id} takes {}, not {sent_type:?}", record.content_type),
            ));
        }
        if content.data.is_empty() {
            return Err(ApiError::invalid_field("content", "REQUIRED", "the request's body is the file"));
        }
        check_size(&record, content.data.len())?;
        self.objects.put(&record.key(&organization.to_string()), content.data).await?;
        Ok(Self::to_proto(&organization.to_string(), &record))
    }

    async fn find(&self, organization: OrganizationId, id: &str) -> Result<DocumentRecord, ApiError> {
        let mut tx = self.database.read(organization).await?;
        let record = store::document(&mut tx, id, time::now_micros()).await?;
        tx.commit().await?;
        record.ok_or_else(|| ApiError::not_found("Document", id))
    }

    /// The uploaded file a scan names in `document_id`, if it names one (then only that).
    pub async fn for_scan(
        &self,
        organization: OrganizationId,
        request: &ScanRegulationRequest,
    ) -> Result<Option<Source>, ApiError> {
        if request.document_id.is_empty() {
            return Ok(None);
        }
        if !request.text.trim().is_empty() || !request.pdf.is_empty() {
            return Err(ApiError::invalid_field(
                "document_id",
                "ONE_OF",
                "give the regulation as text, as a pdf or as a document_id, only one",
            ));
        }
        let mut violations = FieldViolations::default();
        let id = violations.uuid("document_id", &request.document_id);
        violations.check()?;
        Ok(Some(self.read(organization, &id).await?))
    }

    /// The file of document `id` (the field `document_id` of a scan) as it was uploaded.
    async fn read(&self, organization: OrganizationId, id: &str) -> Result<Source, ApiError> {
        let record = self.find(organization, id).await?;
        let bytes = self.objects.get(&record.key(&organization.to_string())).await?.ok_or_else(|| {
            ApiError::FailedPrecondition {
                reason: "DOCUMENT_NOT_UPLOADED",
                message: format!("document {id} has no file yet: PUT it to the upload link first"),
            }
        })?;
        // A presigned upload bypasses the platform, so its size is checked here.
        check_size(&record, bytes.len())?;
        if record.content_type == PDF {
            return Ok(Source::Pdf(bytes.to_vec()));
        }
        String::from_utf8(bytes.to_vec())
            .map(Source::Text)
            .map_err(|_| ApiError::invalid_field("document_id", "NOT_UTF8", format!("document {id} is not UTF-8 text")))
    }

    /// The worker that purges documents at their expiry.
    pub fn expiry_worker(
        self,
        settings: jobs::WorkerSettings,
        metrics: std::sync::Arc<complianceiq_kit::metrics::Metrics>,
    ) -> complianceiq_kit::module::Worker {
        jobs::worker("ml-document-expiry", self.database.clone(), std::sync::Arc::new(self), settings, metrics)
    }
}

/// A content type without its parameters (`text/plain; charset=utf-8` is `text/plain`).
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn check_size(record: &DocumentRecord, size: usize) -> Result<(), ApiError> {
    let most = Documents::max_bytes(&record.content_type);
    if size > most {
        return Err(ApiError::invalid_field(
            "content",
            "TOO_LARGE",
            format!("a {} document has at most {most} bytes; this file has {size}", record.content_type),
        ));
    }
    Ok(())
}

impl JobHandler for Documents {
    const KIND: &'static str = KIND;

    /// Removes the file, then the row: a failure in between leaves a row whose file is gone,
    /// which a scan refuses like any expired document, and the job retries.
    async fn execute(&self, job: &Job, _stop: &CancellationToken) -> Result<(), Stop> {
        let key = store::document_key(&job.organization.to_string(), &job.id);
        self.objects.delete(&key).await.map_err(|error| Stop::Retry(error.to_string()))?;
        let mut tx = self.database.write(job.organization).await?;
        store::delete_document(&mut tx, &job.id).await?;
        tx.commit().await?;
        tracing::debug!(document_id = %job.id, "expired document purged");
        Ok(())
    }

    async fn record_end(&self, _tx: &mut TenantTx, _job: &Job, _ending: &Ending) -> Result<(), ApiError> {
        Ok(())
    }
}
