//! Errors as the platform states them: the gRPC code and message with the `google.rpc`
//! details decoded (the reason, the fields at fault, when to retry, the resource).

use std::fmt;
use std::time::Duration;

use complianceiq_proto::google::rpc;
use prost::Message;
use tonic::Code;

/// One field of a request the platform refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `credentials.basic.username`.
    pub field: String,
    /// A stable, machine-readable reason such as `REQUIRED` or `TOO_LONG`.
    pub reason: String,
    pub description: String,
}

/// A failed call.
#[derive(Clone, Debug)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// `google.rpc.ErrorInfo.reason`: what to branch on (`TRAINING_LIMIT`, `LINK_EXPIRED` ...).
    pub reason: Option<String>,
    /// `google.rpc.BadRequest`: each field at fault.
    pub field_violations: Vec<FieldViolation>,
    /// `google.rpc.RetryInfo`: how long the platform asks the caller to wait.
    pub retry_after: Option<Duration>,
    /// `google.rpc.ResourceInfo`: the resource not found or already there, as (type, name).
    pub resource: Option<(String, String)>,
}

impl Error {
    /// The reason, or "" when the platform gave none.
    pub fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or_default()
    }

    /// Whether another attempt may succeed: the platform was unavailable or asked to slow down.
    pub fn is_retryable(&self) -> bool {
        matches!(self.code, Code::Unavailable | Code::ResourceExhausted)
    }

    pub(crate) fn local(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
            field_violations: Vec::new(),
            retry_after: None,
            resource: None,
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let mut error = Self::local(status.code(), status.message());
        let Ok(details) = rpc::Status::decode(status.details()) else { return error };
        for any in details.details {
            let value = any.value.as_slice();
            match any.type_url.rsplit('/').next().unwrap_or_default() {
                "google.rpc.ErrorInfo" => {
                    if let Ok(info) = rpc::ErrorInfo::decode(value) {
                        error.reason = Some(info.reason);
                    }
                }
                "google.rpc.BadRequest" => {
                    if let Ok(request) = rpc::BadRequest::decode(value) {
                        error.field_violations = request
                            .field_violations
                            .into_iter()
                            .map(|violation| FieldViolation {
                                field: violation.field,
                                reason: violation.reason,
                                description: violation.description,
                            })
                            .collect();
                    }
                }
                "google.rpc.RetryInfo" => {
                    let delay = rpc::RetryInfo::decode(value).ok().and_then(|info| info.retry_delay);
                    error.retry_after = delay.and_then(|delay| {
                        Some(Duration::new(u64::try_from(delay.seconds).ok()?, u32::try_from(delay.nanos).ok()?))
                    });
                }
                "google.rpc.ResourceInfo" => {
                    if let Ok(info) = rpc::ResourceInfo::decode(value) {
                        error.resource = Some((info.resource_type, info.resource_name));
                    }
                }
                _ => {}
            }
        }
        error
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(error: tonic::transport::Error) -> Self {
        Self::local(Code::Unavailable, format!("connecting to the platform: {error}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)?;
        if let Some(reason) = &self.reason {
            write!(f, " [{reason}]")?;
        }
        for violation in &self.field_violations {
            write!(f, "; {}: {} ({})", violation.field, violation.description, violation.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
