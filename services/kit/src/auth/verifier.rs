//! Verifies access tokens against the auth service's JWKS, cached. The cache is refreshed
//! when it is old, and at once for a key id it does not know (a key just rotated in), but at
//! most once a second: a token with a made-up key id is refused at once rather than queued
//! behind a refetch, so such tokens can neither hammer the auth service nor hold up others.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::mesh::MeshChannel;
use complianceiq_proto::complianceiq::auth::v1::GetJwksRequest;
use complianceiq_proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use tokio::sync::{Mutex, RwLock};

use super::jwt::{self, Claims, PublicKey, TokenError};
use crate::error::ApiError;

const MAX_AGE: Duration = Duration::from_secs(300);
/// At most one fetch per interval. Concurrent requests share the fetch in flight.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Cached {
    keys: HashMap<String, PublicKey>,
    fetched_at: Option<Instant>,
}

/// Token verification for one process.
pub struct TokenVerifier {
    auth: AuthServiceClient<MeshChannel>,
    cached: RwLock<Cached>,
    last_attempt: Mutex<Option<Instant>>,
}

impl TokenVerifier {
    /// Fetches keys from the auth service behind `auth` (lazily, on first use).
    pub fn new(auth: MeshChannel) -> Self {
        Self { auth: AuthServiceClient::new(auth), cached: RwLock::default(), last_attempt: Mutex::new(None) }
    }

    /// Verifies a token; `Err(Unavailable)` only if keys are needed and cannot be fetched.
    pub async fn verify(&self, token: &str) -> Result<Result<Claims, TokenError>, ApiError> {
        let kid = match jwt::key_id(token) {
            Ok(kid) => kid,
            Err(error) => return Ok(Err(error)),
        };
        let (known, stale) = {
            let cached = self.cached.read().await;
            (cached.keys.contains_key(&kid), cached.fetched_at.is_none_or(|at| at.elapsed() > MAX_AGE))
        };
        if !known {
            self.refresh(Some(&kid)).await?;
        } else if stale {
            self.refresh(None).await?;
        }
        let cached = self.cached.read().await;
        Ok(jwt::verify(token, |kid| cached.keys.get(kid), now_seconds()))
    }

    async fn refresh(&self, unknown_kid: Option<&str>) -> Result<(), ApiError> {
        let mut last_attempt = self.last_attempt.lock().await;
        if let Some(kid) = unknown_kid
            && self.cached.read().await.keys.contains_key(kid)
        {
            // Fetched by another request while this one waited for the lock.
            return Ok(());
        }
        if last_attempt.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL) {
            // Just fetched: a key id still unknown is not the auth service's.
            return Ok(());
        }
        *last_attempt = Some(Instant::now());
        let key_unknown = unknown_kid.is_some();
        match self.auth.clone().get_jwks(GetJwksRequest {}).await {
            Ok(response) => {
                let mut keys = HashMap::new();
                for jwk in response.into_inner().keys.into_iter().filter(|k| k.kty == "RSA" && k.alg == "RS256") {
                    match PublicKey::from_jwk(&jwk.kid, &jwk.n, &jwk.e) {
                        Ok(key) => {
                            keys.insert(jwk.kid.clone(), key);
                        }
                        Err(_) => tracing::warn!(kid = %jwk.kid, "ignoring a malformed JWK"),
                    }
                }
                *self.cached.write().await = Cached { keys, fetched_at: Some(Instant::now()) };
                Ok(())
            }
            Err(status) => {
                let have_keys = !self.cached.read().await.keys.is_empty();
                tracing::warn!(code = ?status.code(), message = status.message(), "fetching the JWKS from the auth service");
                if have_keys && !key_unknown {
                    Ok(())
                } else {
                    Err(ApiError::Unavailable {
                        reason: "AUTH_UNAVAILABLE",
                        message: "the auth service cannot be reached to verify the access token; try again".into(),
                        retry_after: Some(Duration::from_secs(1)),
                    })
                }
            }
        }
    }
}

/// Seconds since the epoch.
pub fn now_seconds() -> i64 {
    crate::time::now_micros() / 1_000_000
}
