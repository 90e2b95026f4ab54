//! API keys at the edge: a request that presents one (`Authorization: Bearer ciq_…` or
//! `X-API-Key: ciq_…`) goes on with a short access token the auth service exchanged the key
//! for, so the access rules, rate limits and audit behind the edge treat it as any token.
//! Each gateway keeps the tokens it was given until shortly before they expire (a minute at
//! most), by the key's hash: one exchange per key and minute, not one per request. A revoked
//! key's tokens are refused by the revocation set within a second; the copy is then dropped
//! and the next exchange says why.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use complianceiq_kit::crypto::sha256_hex;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::mesh::MeshChannel;
use complianceiq_proto::complianceiq::auth::v1::ExchangeApiKeyRequest;
use complianceiq_proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use complianceiq_proto::google::rpc::ErrorInfo;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue};

/// The header a key may come in instead of `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";
/// What every key starts with.
const KEY_PREFIX: &str = "ciq_";
/// A token is exchanged again this long before it expires, so none expires in flight.
const RENEW_BEFORE: Duration = Duration::from_secs(10);
/// Keys whose tokens one gateway keeps; beyond it the copies start over (a flood of distinct
/// keys costs exchanges, never memory).
const KEPT: usize = 10_000;

/// The key a request presents, if any; the header it came in is removed either way, so it
/// never travels past the edge.
pub fn take_presented_key(headers: &mut HeaderMap) -> Option<String> {
    let from_header = headers.remove(API_KEY_HEADER).and_then(|value| value.to_str().ok().map(str::to_string));
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|token| token.starts_with(KEY_PREFIX))
        .map(str::to_string);
    match (bearer, from_header) {
        (Some(key), _) => Some(key),
        // An Authorization header that is not a key wins over X-API-Key.
        (None, Some(_)) if headers.contains_key(AUTHORIZATION) => None,
        (None, from_header) => from_header.map(|key| key.trim().to_string()),
    }
}

/// Sets the exchanged token as the request's credentials.
pub fn present_token(headers: &mut HeaderMap, token: &str) -> Result<(), ApiError> {
    let value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ApiError::internal("an exchanged access token is not a header value"))?;
    headers.insert(AUTHORIZATION, value);
    Ok(())
}

/// Exchanges keys for tokens through the auth service, and keeps the tokens.
pub struct ApiKeyExchange {
    auth: Option<MeshChannel>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl ApiKeyExchange {
    /// Exchanges through `auth` (`None`: the gateway routes no auth service, and keys are
    /// refused).
    pub fn new(auth: Option<MeshChannel>) -> Self {
        Self { auth, tokens: Mutex::default() }
    }

    /// A token for `key`: the one kept, else a fresh exchange.
    pub async fn token_for(&self, key: &str) -> Result<String, ApiError> {
        let hash = sha256_hex(key.as_bytes());
        let now = Instant::now();
        if let Some((token, renew_at)) = self.lock().get(&hash)
            && *renew_at > now
        {
            return Ok(token.clone());
        }
        let Some(auth) = &self.auth else {
            return Err(ApiError::Unauthenticated {
                reason: "API_KEYS_UNSUPPORTED",
                message: "this gateway does not accept API keys".into(),
            });
        };
        let response = AuthServiceClient::new(auth.clone())
            .exchange_api_key(ExchangeApiKeyRequest { secret: key.to_string() })
            .await
            .map_err(|status| refused_exchange(&status))?
            .into_inner();
        let lifetime = Duration::from_secs(u64::try_from(response.expires_in).unwrap_or(0));
        let renew_at = now + lifetime.saturating_sub(RENEW_BEFORE);
        let mut tokens = self.lock();
        if tokens.len() >= KEPT {
            tokens.clear();
        }
        tokens.insert(hash, (response.access_token.clone(), renew_at));
        Ok(response.access_token)
    }

    /// Drops the token kept for `key` (it was refused: revoked, or its permissions changed).
    pub fn forget(&self, key: &str) {
        self.lock().remove(&sha256_hex(key.as_bytes()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Why the auth service refused a key, as the edge answers it.
fn refused_exchange(status: &tonic::Status) -> ApiError {
    const REASONS: [&str; 5] =
        ["API_KEY_MALFORMED", "API_KEY_INVALID", "API_KEY_REVOKED", "API_KEY_EXPIRED", "API_KEY_CREATOR_LEFT"];
    match status.code() {
        tonic::Code::Unauthenticated => {
            let reason = complianceiq_kit::error::detail::<ErrorInfo>(status, "google.rpc.ErrorInfo")
                .and_then(|info| REASONS.into_iter().find(|known| *known == info.reason))
                .unwrap_or("API_KEY_INVALID");
            ApiError::Unauthenticated { reason, message: status.message().to_string() }
        }
        // The key is fine, its organization is not open (staff suspended it).
        tonic::Code::PermissionDenied
            if complianceiq_kit::error::detail::<ErrorInfo>(status, "google.rpc.ErrorInfo")
                .is_some_and(|info| info.reason == "ORGANIZATION_SUSPENDED") =>
        {
            ApiError::PermissionDenied {
                reason: "ORGANIZATION_SUSPENDED",
                message: "the API key's organization is suspended; contact ComplianceIQ support".into(),
            }
        }
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::ResourceExhausted => {
            ApiError::Unavailable {
                reason: "AUTH_UNAVAILABLE",
                message: "API keys cannot be checked right now; retry shortly".into(),
                retry_after: Some(Duration::from_secs(1)),
            }
        }
        _ => ApiError::internal(format!("exchanging an API key: {status:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (http::HeaderName::from_static(name), value.parse().unwrap())).collect()
    }

    #[test]
    fn a_key_comes_as_a_bearer_or_in_its_own_header_and_never_travels_on() {
        let mut bearer = headers(&[("authorization", "Bearer ciq_abc")]);
        assert_eq!(take_presented_key(&mut bearer).as_deref(), Some("ciq_abc"));
        let mut own = headers(&[("x-api-key", " ciq_def ")]);
        assert_eq!(take_presented_key(&mut own).as_deref(), Some("ciq_def"));
        assert!(!own.contains_key(API_KEY_HEADER));
        let mut token_wins = headers(&[("authorization", "Bearer eyJ.x.y"), ("x-api-key", "ciq_def")]);
        assert_eq!(take_presented_key(&mut token_wins), None);
        assert!(!token_wins.contains_key(API_KEY_HEADER), "the unused key is dropped too");
        let mut token = headers(&[("authorization", "Bearer eyJ.x.y")]);
        assert_eq!(take_presented_key(&mut token), None);
    }
}
