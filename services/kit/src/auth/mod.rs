//! Who is calling: access tokens, their verification, and the layer that enforces the
//! contracts' access rules on every server.

pub mod jwt;
pub mod layer;
pub mod revocations;
pub mod verifier;

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
    /// Platform staff (see [`jwt::Claims::staff`]).
    pub staff: bool,
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
            staff: claims.staff,
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
