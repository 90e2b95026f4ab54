//! Who is calling: access tokens, their verification, and the layer that enforces the
//! contracts' access rules on every server.

pub mod jwt;
pub mod layer;
pub mod verifier;

use std::time::Duration;

use crate::cache::Cache;
use crate::error::ApiError;
use crate::ids::{OrganizationId, UserId};

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user_id: UserId,
    /// The organization the token is scoped to.
    pub organization_id: Option<OrganizationId>,
    /// The user's email.
    pub email: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Permissions.
    pub permissions: Vec<String>,
    /// The token id (`jti`).
    pub token_id: String,
    /// Token expiry, seconds since the epoch.
    pub expires_at: i64,
}

impl Identity {
    /// From verified claims.
    pub fn from_claims(claims: jwt::Claims) -> Result<Self, ApiError> {
        let organization_id = match claims.organization_id.as_deref() {
            None | Some("") => None,
            Some(id) => Some(OrganizationId::from_stored(id)?),
        };
        Ok(Self {
            user_id: UserId::from_stored(&claims.user_id)?,
            organization_id,
            email: claims.email,
            roles: claims.roles,
            permissions: claims.permissions,
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }

    /// Whether the token carries `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|held| held == permission)
    }

    /// The organization the caller acts in.
    pub fn tenant(&self) -> Result<OrganizationId, ApiError> {
        self.organization_id.ok_or_else(|| ApiError::PermissionDenied {
            reason: "ORGANIZATION_REQUIRED",
            message: "this call acts in an organization; get a token scoped to one".into(),
        })
    }

    /// Checks that a resource path's organization is the caller's. Another organization is
    /// refused without revealing whether it exists.
    pub fn require_tenant(&self, organization: OrganizationId) -> Result<OrganizationId, ApiError> {
        let tenant = self.tenant()?;
        if tenant != organization {
            return Err(ApiError::PermissionDenied {
                reason: "ORGANIZATION_MISMATCH",
                message: "the access token is scoped to another organization".into(),
            });
        }
        Ok(tenant)
    }
}

/// The caller, as the access layer verified it. Fails only for public RPCs called anonymously.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Identity, ApiError> {
    request.extensions().get::<Identity>().cloned().ok_or_else(|| ApiError::Unauthenticated {
        reason: "TOKEN_MISSING",
        message: "this call needs an access token".into(),
    })
}

fn revocation_key(token_id: &str) -> String {
    format!("revoked-token:{token_id}")
}

/// How long a "not revoked" answer is reused in this process: the edge and the module
/// serving one call, and a client's calls in quick succession, ask the cache once. A
/// revocation elsewhere reaches this process within this time (revocations made in this
/// process apply at once).
const NOT_REVOKED_REUSE: Duration = Duration::from_millis(500);
/// Answers kept at most; past that the map starts over.
const NOT_REVOKED_KEPT: usize = 100_000;

/// Token ids found not revoked, and when.
static NOT_REVOKED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>> =
    std::sync::LazyLock::new(Default::default);

fn not_revoked() -> std::sync::MutexGuard<'static, std::collections::HashMap<String, std::time::Instant>> {
    NOT_REVOKED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Marks an access token revoked until it would have expired anyway.
pub async fn revoke(cache: &dyn Cache, token_id: &str, expires_at: i64) -> Result<(), ApiError> {
    not_revoked().remove(token_id);
    let remaining = expires_at - verifier::now_seconds() + jwt::LEEWAY_SECONDS;
    if remaining > 0 {
        cache.set(&revocation_key(token_id), b"1", Duration::from_secs(remaining as u64)).await?;
    }
    Ok(())
}

/// Whether an access token was revoked.
pub async fn is_revoked(cache: &dyn Cache, token_id: &str) -> Result<bool, ApiError> {
    let now = std::time::Instant::now();
    if not_revoked().get(token_id).is_some_and(|checked| now.duration_since(*checked) < NOT_REVOKED_REUSE) {
        return Ok(false);
    }
    let revoked = cache.get(&revocation_key(token_id)).await?.is_some();
    if !revoked {
        let mut answers = not_revoked();
        if answers.len() >= NOT_REVOKED_KEPT {
            answers.retain(|_, checked| now.duration_since(*checked) < NOT_REVOKED_REUSE);
            if answers.len() >= NOT_REVOKED_KEPT {
                answers.clear();
            }
        }
        answers.insert(token_id.to_string(), now);
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    #[tokio::test]
    async fn a_revocation_elsewhere_applies_within_half_a_second_and_here_at_once() {
        let cache = MemoryCache::new();
        let expires = verifier::now_seconds() + 900;
        assert!(!is_revoked(&cache, "jti-elsewhere").await.unwrap());
        // Another process revokes: it writes the shared cache only.
        cache.set(&revocation_key("jti-elsewhere"), b"1", Duration::from_secs(60)).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let started = std::time::Instant::now();
        while !is_revoked(&cache, "jti-elsewhere").await.unwrap() {
            assert!(std::time::Instant::now() < deadline, "never seen revoked");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(started.elapsed() <= NOT_REVOKED_REUSE + Duration::from_millis(100), "{:?}", started.elapsed());

        // Revoked in this process: refused at the next check, whatever was reused before.
        assert!(!is_revoked(&cache, "jti-here").await.unwrap());
        revoke(&cache, "jti-here", expires).await.unwrap();
        assert!(is_revoked(&cache, "jti-here").await.unwrap());
    }
}
