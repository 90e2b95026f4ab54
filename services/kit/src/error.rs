//! Errors as callers see them: one enum, mapped to `tonic::Status` in one place with
//! `google.rpc` details (ErrorInfo with a stable reason, BadRequest field violations,
//! ResourceInfo, RetryInfo). Internal failures are logged with a reference and never
//! described to the caller, so no SQL, path or secret leaks out.

use std::time::Duration;

use complianceiq_proto::google::rpc;
use prost::Message;
use tonic::{Code, Status};

/// The `ErrorInfo.domain` of every error this platform raises.
pub const ERROR_DOMAIN: &str = "complianceiq.io";

/// One problem with one request field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request, e.g. `organization.display_name`.
    pub field: String,
    /// UPPER_SNAKE_CASE reason, e.g. `REQUIRED`, `TOO_LONG`, `INVALID_FORMAT`.
    pub reason: String,
    /// What is wrong, in words.
    pub description: String,
}

/// Collects every violation of a request before answering, so a caller fixes them all at once.
#[derive(Debug, Default)]
pub struct FieldViolations(Vec<FieldViolation>);

impl FieldViolations {
    /// Records a violation.
    pub fn add(&mut self, field: &str, reason: &str, description: impl Into<String>) {
        self.0.push(FieldViolation { field: field.into(), reason: reason.into(), description: description.into() });
    }

    /// Records that a required field is missing.
    pub fn required(&mut self, field: &str) {
        self.add(field, "REQUIRED", format!("{field} is required"));
    }

    /// Requires text with at least one non-blank character and at most `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.required(field);
        } else {
            self.max_chars(field, value, max);
        }
    }

    /// Limits text to `max` characters (not bytes) and rejects control characters.
    pub fn max_chars(&mut self, field: &str, value: &str, max: usize) {
        let chars = value.chars().count();
        if chars > max {
            self.add(field, "TOO_LONG", format!("{field} has {chars} characters; at most {max} are allowed"));
        } else if value.chars().any(|c| c.is_control()) {
            self.add(field, "INVALID_CHARACTERS", format!("{field} must not contain control characters"));
        }
    }

    /// Requires the reason a staff call gives (it goes into the tenant's audit trail): 5 to
    /// 500 characters, something a person reading the trail can follow up on.
    pub fn reason(&mut self, field: &str, value: &str) {
        if value.trim().chars().count() < 5 {
            self.add(
                field,
                "REQUIRED",
                format!("{field} is required: say why, e.g. the support ticket (5-500 characters)"),
            );
        } else {
            self.max_chars(field, value, 500);
        }
    }

    /// Parses an optional UUID field: empty gives `None`, a malformed value a violation.
    pub fn optional_uuid(&mut self, field: &str, value: &str) -> Option<uuid::Uuid> {
        if value.is_empty() {
            return None;
        }
        match crate::ids::parse_uuid(field, value) {
            Ok(uuid) => Some(uuid),
            Err(error) => {
                self.0.extend(error.field_violations().iter().cloned());
                None
            }
        }
    }

    /// Parses a required UUID field into its canonical text; a missing or malformed value is
    /// recorded (and an empty string returned, to be discarded by `check`).
    pub fn uuid(&mut self, field: &str, value: &str) -> String {
        match crate::ids::parse_uuid(field, value) {
            Ok(uuid) => uuid.to_string(),
            Err(error) => {
                self.0.extend(error.field_violations().iter().cloned());
                String::new()
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ok when nothing was recorded, else INVALID_ARGUMENT with every violation.
    pub fn check(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(self.into_error()) }
    }

    /// INVALID_ARGUMENT carrying the violations; the message lists them too, for clients
    /// that do not read details.
    pub fn into_error(self) -> ApiError {
        let summary: Vec<&str> = self.0.iter().map(|v| v.description.as_str()).collect();
        ApiError::InvalidArgument { message: format!("invalid request: {}", summary.join("; ")), violations: self.0 }
    }
}

/// Every way an RPC can fail, as the caller should learn it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the violations say where.
    #[error("{message}")]
    InvalidArgument { message: String, violations: Vec<FieldViolation> },
    /// The resource does not exist in the caller's organization.
    #[error("{resource_type} {name} was not found")]
    NotFound { resource_type: &'static str, name: String },
    /// A resource with the same unique key exists.
    #[error("{message}")]
    AlreadyExists { resource_type: &'static str, name: String, message: String },
    /// The system is not in the state the operation requires.
    #[error("{message}")]
    FailedPrecondition { reason: &'static str, message: String },
    /// A concurrent change won (etag mismatch, transaction conflict).
    #[error("{message}")]
    Aborted { reason: &'static str, message: String },
    /// The caller is known but not allowed.
    #[error("{message}")]
    PermissionDenied { reason: &'static str, message: String },
    /// The caller is not known.
    #[error("{message}")]
    Unauthenticated { reason: &'static str, message: String },
    /// A quota or rate limit was hit.
    #[error("{message}")]
    ResourceExhausted { reason: &'static str, message: String, retry_after: Option<Duration> },
    /// A dependency (database, broker, another service) is unavailable; retrying may help.
    #[error("{message}")]
    Unavailable { reason: &'static str, message: String, retry_after: Option<Duration> },
    /// A bug or an unexpected failure. The text goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// An unexpected failure; `detail` is logged, never returned.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal(detail.into())
    }

    /// Logs what caused this error (which the caller does not see) and returns it.
    pub fn log_cause(self, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%cause, reason = self.reason(), "request failed on a dependency");
        self
    }

    /// NOT_FOUND for a resource of the caller's organization.
    pub fn not_found(resource_type: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound { resource_type, name: name.into() }
    }

    /// A single field violation as INVALID_ARGUMENT.
    pub fn invalid_field(field: &str, reason: &str, description: impl Into<String>) -> Self {
        let mut violations = FieldViolations::default();
        violations.add(field, reason, description);
        violations.into_error()
    }

    /// The field violations, if this is INVALID_ARGUMENT.
    pub fn field_violations(&self) -> &[FieldViolation] {
        match self {
            Self::InvalidArgument { violations, .. } => violations,
            _ => &[],
        }
    }

    fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::Aborted { .. } => Code::Aborted,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::ResourceExhausted { .. } => Code::ResourceExhausted,
            Self::Unavailable { .. } => Code::Unavailable,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// The stable reason a client can match on (`ErrorInfo.reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "INVALID_REQUEST",
            Self::NotFound { .. } => "RESOURCE_NOT_FOUND",
            Self::AlreadyExists { .. } => "RESOURCE_ALREADY_EXISTS",
            Self::FailedPrecondition { reason, .. }
            | Self::Aborted { reason, .. }
            | Self::PermissionDenied { reason, .. }
            | Self::Unauthenticated { reason, .. }
            | Self::ResourceExhausted { reason, .. }
            | Self::Unavailable { reason, .. } => reason,
            Self::Internal(_) => "INTERNAL",
        }
    }
}

// A status travels in HTTP/2 trailers (message percent-encoded, details base64), and peers
// refuse header blocks over 16 KiB; user input echoed into errors must not push it past.
const MAX_MESSAGE_BYTES: usize = 1024;
const MAX_VIOLATIONS: usize = 10;
const MAX_FIELD_BYTES: usize = 120;
const MAX_DESCRIPTION_BYTES: usize = 400;

/// `text` cut to at most `max` bytes on a character boundary, marked with an ellipsis.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn any<M: Message>(type_name: &str, message: &M) -> prost_types::Any {
    prost_types::Any { type_url: format!("type.googleapis.com/{type_name}"), value: message.encode_to_vec() }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        let mut details = vec![any(
            "google.rpc.ErrorInfo",
            &rpc::ErrorInfo {
                reason: error.reason().into(),
                domain: ERROR_DOMAIN.into(),
                metadata: Default::default(),
            },
        )];
        let message = match &error {
            ApiError::InvalidArgument { violations, message } => {
                let request = rpc::BadRequest {
                    field_violations: violations
                        .iter()
                        .take(MAX_VIOLATIONS)
                        .map(|v| rpc::bad_request::FieldViolation {
                            field: bounded(&v.field, MAX_FIELD_BYTES),
                            description: bounded(&v.description, MAX_DESCRIPTION_BYTES),
                            reason: v.reason.clone(),
                            localized_message: None,
                        })
                        .collect(),
                };
                details.push(any("google.rpc.BadRequest", &request));
                match violations.len().checked_sub(MAX_VIOLATIONS) {
                    Some(more) if more > 0 => {
                        let suffix = format!(" (and {more} more violations)");
                        format!("{}{suffix}", bounded(message, MAX_MESSAGE_BYTES - suffix.len()))
                    }
                    _ => message.clone(),
                }
            }
            ApiError::NotFound { resource_type, name } | ApiError::AlreadyExists { resource_type, name, .. } => {
                let info = rpc::ResourceInfo {
                    resource_type: format!("{ERROR_DOMAIN}/{resource_type}"),
                    resource_name: bounded(name, MAX_FIELD_BYTES),
                    owner: String::new(),
                    description: String::new(),
                };
                details.push(any("google.rpc.ResourceInfo", &info));
                error.to_string()
            }
            ApiError::ResourceExhausted { retry_after: Some(delay), .. }
            | ApiError::Unavailable { retry_after: Some(delay), .. } => {
                let retry = rpc::RetryInfo {
                    retry_delay: Some(prost_types::Duration {
                        seconds: delay.as_secs() as i64,
                        nanos: delay.subsec_nanos() as i32,
                    }),
                };
                details.push(any("google.rpc.RetryInfo", &retry));
                error.to_string()
            }
            ApiError::Internal(detail) => {
                let reference = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(%reference, detail = %detail, "internal error");
                format!("internal error (reference {reference})")
            }
            _ => error.to_string(),
        };
        let message = bounded(&message, MAX_MESSAGE_BYTES);
        let status = rpc::Status { code: code as i32, message: message.clone(), details };
        Status::with_details(code, message, status.encode_to_vec().into())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => ApiError::Unavailable {
                reason: "DATABASE_UNAVAILABLE",
                message: "the database is unavailable; try again".into(),
                retry_after: Some(Duration::from_secs(1)),
            },
            sqlx::Error::Database(database) if is_contention(database.code().as_deref()) => {
                // Nothing is wrong with the request: another writer held what it needed for
                // longer than the wait allows (SQLite has one writer at a time). A retry works.
                tracing::warn!(error = %database, "a database write waited too long for a lock");
                ApiError::Unavailable {
                    reason: "DATABASE_BUSY",
                    message: "the database is busy with another write; try again".into(),
                    retry_after: Some(Duration::from_secs(1)),
                }
            }
            _ => ApiError::Internal(format!("database: {error}")),
        }
    }
}

/// Whether a database error code means contention that passes: SQLite's BUSY and LOCKED
/// (primary codes 5 and 6, whatever the extended code), PostgreSQL's serialization failure,
/// deadlock and lock timeout.
fn is_contention(code: Option<&str>) -> bool {
    match code {
        Some("40001" | "40P01" | "55P03") => true,
        Some(code) => code.parse::<i64>().is_ok_and(|code| matches!(code & 0xff, 5 | 6)),
        None => false,
    }
}

/// Whether a database error is a unique-constraint violation (either backend).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The `google.rpc.Status` carried in a status's details, for clients and tests.
pub fn rpc_status(status: &Status) -> Option<rpc::Status> {
    rpc::Status::decode(status.details()).ok()
}

/// Decodes the first detail of type `type_name` (e.g. `google.rpc.BadRequest`).
pub fn detail<M: Message + Default>(status: &Status, type_name: &str) -> Option<M> {
    let wanted = format!("type.googleapis.com/{type_name}");
    rpc_status(status)?
        .details
        .into_iter()
        .find(|any| any.type_url == wanted)
        .and_then(|any| M::decode(any.value.as_slice()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field_violation_and_error_info() {
        let mut violations = FieldViolations::default();
        violations.required("organization.display_name");
        violations.max_chars("organization.slug", &"x".repeat(70), 63);
        let status = Status::from(violations.into_error());
        assert_eq!(status.code(), Code::InvalidArgument);
        let request: rpc::BadRequest = detail(&status, "google.rpc.BadRequest").unwrap();
        let fields: Vec<_> = request.field_violations.iter().map(|v| (v.field.as_str(), v.reason.as_str())).collect();
        assert_eq!(fields, [("organization.display_name", "REQUIRED"), ("organization.slug", "TOO_LONG")]);
        let info: rpc::ErrorInfo = detail(&status, "google.rpc.ErrorInfo").unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("INVALID_REQUEST", ERROR_DOMAIN));
        assert!(status.message().contains("organization.display_name is required"));
    }

    #[test]
    fn echoed_input_cannot_outgrow_the_trailers() {
        let mut violations = FieldViolations::default();
        for index in 0..500 {
            let huge = "é\u{10e5a}".repeat(2000);
            violations.add(&format!("role.permissions[{index}].{huge}"), "UNKNOWN", format!("{huge:?} is unknown"));
        }
        let status = Status::from(violations.into_error());
        let response = status.clone().into_http::<tonic::body::Body>();
        let header_bytes: usize =
            response.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
        assert!(header_bytes < 12 * 1024, "{header_bytes} bytes of trailers");
        assert!(status.message().ends_with("(and 490 more violations)"), "{}", status.message());
        let request: rpc::BadRequest = detail(&status, "google.rpc.BadRequest").unwrap();
        assert_eq!(request.field_violations.len(), 10);
        assert!(request.field_violations[0].field.starts_with("role.permissions[0].é"));
        assert!(request.field_violations[0].description.ends_with('…'));

        let long_name = ApiError::not_found("role", "r".repeat(100_000));
        assert!(Status::from(long_name).message().len() <= 1024);
    }

    #[tokio::test]
    async fn a_write_that_waits_too_long_for_sqlites_lock_is_unavailable_not_internal() {
        use sqlx::{Connection, Executor};
        sqlx::any::install_default_drivers();
        let directory = std::env::temp_dir().join(format!("ciq-busy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&directory).unwrap();
        let url = format!("sqlite://{}?mode=rwc", directory.join("busy.db").display());
        let mut holder = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut waiter = sqlx::AnyConnection::connect(&url).await.unwrap();
        holder.execute("PRAGMA journal_mode = WAL; CREATE TABLE t (x BIGINT); BEGIN IMMEDIATE").await.unwrap();
        waiter.execute("PRAGMA busy_timeout = 0").await.unwrap();
        let busy = waiter.execute("BEGIN IMMEDIATE").await.unwrap_err();
        let status = Status::from(ApiError::from(busy));
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("busy"), "{}", status.message());
        std::fs::remove_dir_all(&directory).ok();

        assert!(is_contention(Some("40P01")) && is_contention(Some("517")) && !is_contention(Some("23505")));
        assert!(!is_contention(Some("19")) && !is_contention(None));
    }

    #[test]
    fn internal_errors_never_reveal_their_detail() {
        let status = Status::from(ApiError::internal("password=hunter2 in SELECT * FROM secrets"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
        assert!(status.message().starts_with("internal error (reference "));
        assert!(!format!("{:?}", rpc_status(&status)).contains("hunter2"));
    }

    #[test]
    fn retry_delay_travels_as_retry_info() {
        let status = Status::from(ApiError::ResourceExhausted {
            reason: "RATE_LIMITED",
            message: "slow down".into(),
            retry_after: Some(Duration::from_millis(1500)),
        });
        let retry: rpc::RetryInfo = detail(&status, "google.rpc.RetryInfo").unwrap();
        let delay = retry.retry_delay.unwrap();
        assert_eq!((delay.seconds, delay.nanos), (1, 500_000_000));
    }

    #[test]
    fn text_rules_reject_blank_long_and_control_characters() {
        let mut violations = FieldViolations::default();
        violations.text("a", "   ", 10);
        violations.text("b", "ééééééééééé", 10);
        violations.text("c", "line\nbreak", 100);
        violations.text("d", "fine", 10);
        let reasons: Vec<_> = match violations.into_error() {
            ApiError::InvalidArgument { violations, .. } => violations.into_iter().map(|v| v.reason).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(reasons, ["REQUIRED", "TOO_LONG", "INVALID_CHARACTERS"]);
    }
}
