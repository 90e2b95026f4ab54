//! What a service knows about the request it is serving, beyond the message itself.

use tonic::metadata::MetadataMap;

use crate::ids::UserId;

/// The request id header, accepted from callers and generated when absent.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Correlation and identity of one request, carried into events and logs.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// The caller's request id, or a generated one.
    pub request_id: String,
    /// The authenticated user, once authentication is in place.
    pub actor_user_id: Option<UserId>,
    /// W3C traceparent of the incoming call.
    pub traceparent: Option<String>,
}

impl RequestContext {
    /// Reads the context from gRPC metadata. A request id that is too long or not printable
    /// ASCII is replaced, so logs and events never carry caller-controlled garbage.
    pub fn from_metadata(metadata: &MetadataMap) -> Self {
        let request_id = metadata
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_printable_token(id, 128))
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let traceparent = metadata
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .filter(|value| is_printable_token(value, 55))
            .map(str::to_string);
        Self { request_id, actor_user_id: None, traceparent }
    }

    /// The context of a request, with the caller the access layer verified.
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        let mut context = Self::from_metadata(request.metadata());
        context.actor_user_id = request.extensions().get::<crate::auth::Identity>().map(|identity| identity.user_id);
        context
    }
}

/// The client's IP address: the first X-Forwarded-For entry when the platform sits behind a
/// proxy that sets it (`trust_forwarded_for`), else the TCP peer.
pub fn client_address<T>(request: &tonic::Request<T>, trust_forwarded_for: bool) -> Option<std::net::IpAddr> {
    if trust_forwarded_for
        && let Some(first) = request
            .metadata()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .and_then(|value| value.trim().parse().ok())
    {
        return Some(first);
    }
    request.remote_addr().map(|address| address.ip())
}

fn is_printable_token(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane_and_replaced_otherwise() {
        let mut metadata = MetadataMap::new();
        metadata.insert(REQUEST_ID_HEADER, "req-123".parse().unwrap());
        assert_eq!(RequestContext::from_metadata(&metadata).request_id, "req-123");

        metadata.insert(REQUEST_ID_HEADER, "x".repeat(200).parse().unwrap());
        let replaced = RequestContext::from_metadata(&metadata).request_id;
        assert_eq!(replaced.len(), 36);

        assert_eq!(RequestContext::from_metadata(&MetadataMap::new()).request_id.len(), 36);
    }
}
