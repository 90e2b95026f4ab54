//! gRPC statuses as HTTP responses: grpc-gateway's status table, and the body a JSON
//! `google.rpc.Status` with its details (ErrorInfo, BadRequest, ...).

use http::StatusCode;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use tonic::Code;

use crate::transcode::output_options;

/// grpc-gateway's `HTTPStatusFromCode`.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a status code"),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The JSON body of an error: the `google.rpc.Status` the service sent (details expanded),
/// or code and message when it sent none.
pub fn status_json(pool: &DescriptorPool, status: &tonic::Status) -> Vec<u8> {
    let fallback = || {
        serde_json::to_vec(
            &serde_json::json!({"code": status.code() as i32, "message": status.message(), "details": []}),
        )
        .unwrap_or_default()
    };
    let Some(descriptor) = pool.get_message_by_name("google.rpc.Status") else { return fallback() };
    if status.details().is_empty() {
        return fallback();
    }
    let Ok(mut message) = DynamicMessage::decode(descriptor, status.details()) else { return fallback() };
    // The status line is authoritative for the code, as gRPC clients read it.
    message.set_field_by_name("code", Value::I32(status.code() as i32));
    message
        .serialize_with_options(serde_json::value::Serializer, &output_options())
        .ok()
        .and_then(|json| serde_json::to_vec(&json).ok())
        .unwrap_or_else(fallback)
}

/// The retry delay a RESOURCE_EXHAUSTED or UNAVAILABLE status carries, in whole seconds.
pub fn retry_after_seconds(status: &tonic::Status) -> Option<u64> {
    let info: complianceiq_proto::google::rpc::RetryInfo =
        complianceiq_kit::error::detail(status, "google.rpc.RetryInfo")?;
    let delay = info.retry_delay?;
    Some((delay.seconds.max(0) as u64) + u64::from(delay.nanos > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_grpc_gateways() {
        let expected = [
            (Code::NotFound, 404),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::InvalidArgument, 400),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::DeadlineExceeded, 504),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::Internal, 500),
            (Code::Cancelled, 499),
        ];
        for (code, http) in expected {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn error_bodies_expand_their_details() {
        let pool = DescriptorPool::decode(complianceiq_proto::FILE_DESCRIPTOR_SET).unwrap();
        let status: tonic::Status =
            complianceiq_kit::error::ApiError::invalid_field("email", "REQUIRED", "email is required").into();
        let json: serde_json::Value = serde_json::from_slice(&status_json(&pool, &status)).unwrap();
        assert_eq!(json["code"], 3);
        assert_eq!(json["message"], "invalid request: email is required");
        let details = json["details"].as_array().unwrap();
        assert_eq!(details[0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
        assert_eq!(details[0]["reason"], "INVALID_REQUEST");
        assert_eq!(details[1]["@type"], "type.googleapis.com/google.rpc.BadRequest");
        assert_eq!(details[1]["fieldViolations"][0]["field"], "email");
    }
}
