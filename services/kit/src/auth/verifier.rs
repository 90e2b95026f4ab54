//! Verifies access tokens against the auth service's JWKS, cached. The cache is refreshed
//! when it is old, and at once for a key id it does not know (a key just rotated in), but at
//! most once a second: a token with a made-up key id is refused at once rather than queued
//! behind a refetch, so such tokens can neither hammer the auth service nor hold up others.
//!
//! A token verified once is remembered (by its SHA-256, with its claims, until it expires), so
//! the edge and the module serving the same call, and a client's next calls, pay for one RSA
//! check, not one each. An entry is only as good as its key: when a key leaves the JWKS, the
//! tokens it signed are forgotten. Revocation is checked on every call, after this.

use std::collections::HashMap;
use std::sync::Mutex as SyncMutex;
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
/// Verified tokens remembered at most; past that, expired ones go, then all (a flood of
/// valid tokens costs re-verification, never memory).
const VERIFIED_KEPT: usize = 100_000;

/// A token verified earlier: its claims, and the key that signed it.
struct Verified {
    claims: Claims,
    kid: String,
}

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
    verified: SyncMutex<HashMap<[u8; 32], Verified>>,
}

impl TokenVerifier {
    /// Fetches keys from the auth service behind `auth` (lazily, on first use).
    pub fn new(auth: MeshChannel) -> Self {
        Self {
            auth: AuthServiceClient::new(auth),
            cached: RwLock::default(),
            last_attempt: Mutex::new(None),
            verified: SyncMutex::default(),
        }
    }

    /// Verifies a token; `Err(Unavailable)` only if keys are needed and cannot be fetched.
    pub async fn verify(&self, token: &str) -> Result<Result<Claims, TokenError>, ApiError> {
        let digest = token_digest(token);
        let now = now_seconds();
        if let Some(claims) = self.remembered(&digest, now) {
            return Ok(Ok(claims));
        }
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
        let verified = {
            let cached = self.cached.read().await;
            jwt::verify(token, |kid| cached.keys.get(kid), now)
        };
        if let Ok(claims) = &verified {
            self.remember(digest, claims.clone(), kid, now);
        }
        Ok(verified)
    }

    /// The claims of a token verified before, while it has not expired.
    fn remembered(&self, digest: &[u8; 32], now: i64) -> Option<Claims> {
        let verified = self.verified.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The same expiry rule as a full check.
        verified
            .get(digest)
            .filter(|entry| entry.claims.exp > now - jwt::LEEWAY_SECONDS)
            .map(|entry| entry.claims.clone())
    }

    fn remember(&self, digest: [u8; 32], claims: Claims, kid: String, now: i64) {
        let mut verified = self.verified.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if verified.len() >= VERIFIED_KEPT {
            verified.retain(|_, entry| entry.claims.exp > now - jwt::LEEWAY_SECONDS);
            if verified.len() >= VERIFIED_KEPT {
                verified.clear();
            }
        }
        verified.insert(digest, Verified { claims, kid });
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
                // Tokens of a key no longer published are no longer good.
                self.verified
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .retain(|_, entry| keys.contains_key(&entry.kid));
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

fn token_digest(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(digest.as_ref());
    bytes
}

/// Seconds since the epoch.
pub fn now_seconds() -> i64 {
    crate::time::now_micros() / 1_000_000
}
