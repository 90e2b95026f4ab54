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
        Self::from_headers(metadata.as_ref())
    }

    /// [`from_metadata`](Self::from_metadata) over the HTTP headers of a call.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let request_id = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_printable_token(id, 128))
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let traceparent = headers
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

/// The header in which the gateway tells a module the client's address. Module servers
/// accept it from the gateway's mesh identity only (see `mesh::policy`), and the gateway
/// removes it from what clients send, so nobody else can choose the address limits key on.
pub const CLIENT_ADDRESS_HEADER: &str = "x-ciq-client-address";

/// The client address the gateway established, as authenticated request context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::IpAddr);

/// The client's IP address: as the gateway established it for a call through the edge,
/// else the TCP peer of a direct call.
pub fn client_address<T>(request: &tonic::Request<T>) -> Option<std::net::IpAddr> {
    match request.extensions().get::<ClientAddress>() {
        Some(ClientAddress(address)) => Some(*address),
        None => request.remote_addr().map(|address| address.ip()),
    }
}

/// The client among the hops of `X-Forwarded-For` (left to right, as proxies append them)
/// and the TCP `peer`, given how many proxies in front of the gateway are trusted: the
/// right-most address no trusted proxy added. Entries further left are whatever the client
/// wrote and are never used.
pub fn client_among_hops(
    forwarded_for: &[std::net::IpAddr],
    peer: std::net::IpAddr,
    trusted_proxies: usize,
) -> std::net::IpAddr {
    if trusted_proxies == 0 {
        return peer;
    }
    // The peer is the last trusted proxy; each further one appended the hop before it.
    let index = forwarded_for.len().saturating_sub(trusted_proxies);
    forwarded_for.get(index).copied().unwrap_or(peer)
}

fn is_printable_token(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_right_most_hop_no_trusted_proxy_added() {
        let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
        let (spoofed, client, ingress) = (ip("6.6.6.6"), ip("203.0.113.7"), ip("10.0.0.2"));
        // No proxy trusted: the TCP peer, whatever the header says.
        assert_eq!(client_among_hops(&[spoofed], ip("198.51.100.1"), 0), ip("198.51.100.1"));
        // Behind one ingress: the address it appended, not what the client wrote before it.
        assert_eq!(client_among_hops(&[spoofed, client], ingress, 1), client);
        // Behind two: the first proxy's view.
        assert_eq!(client_among_hops(&[spoofed, client, ip("10.0.0.9")], ingress, 2), client);
        // Fewer hops than proxies (a request that bypassed one): the earliest hop there is.
        assert_eq!(client_among_hops(&[], ingress, 1), ingress);
    }

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
