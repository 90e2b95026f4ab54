//! The tower layer every server runs: it applies each RPC's access rule from the contracts
//! (`complianceiq_proto::rpc_access`) before any handler sees the request. Public RPCs pass
//! (a token, if sent, must still be valid); the rest need a valid, unrevoked access token,
//! an organization scope unless the RPC allows none, and the stated permission. RPCs the
//! contracts do not define are refused. The caller's [`Identity`] rides in the request
//! extensions for the handler.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use super::Identity;
use super::revocations::Revocations;
use super::verifier::TokenVerifier;
use crate::error::ApiError;
use complianceiq_proto::RpcAccess;

/// Infrastructure every client may use without a token.
const OPEN_PREFIXES: [&str; 3] = ["/grpc.health.v1.", "/grpc.reflection.v1.", "/grpc.reflection.v1alpha."];

/// Shared state of the layer.
pub struct AccessControl {
    verifier: Arc<TokenVerifier>,
    revocations: Arc<Revocations>,
}

impl AccessControl {
    /// Access control verifying with `verifier` and refusing what `revocations` holds.
    pub fn new(verifier: Arc<TokenVerifier>, revocations: Arc<Revocations>) -> Self {
        Self { verifier, revocations }
    }

    /// Decides on a request: `Ok(Some(identity))` to pass with a caller, `Ok(None)` to pass
    /// anonymously, `Err` to answer at once.
    pub async fn authorize(&self, path: &str, headers: &http::HeaderMap) -> Result<Option<Identity>, ApiError> {
        self.authorize_noting(path, headers, |_| {}).await
    }

    /// Like [`authorize`](Self::authorize); `verified` sees the caller as soon as the token
    /// checks out, before the RPC's rule (so a refusal can still say who was refused).
    async fn authorize_noting(
        &self,
        path: &str,
        headers: &http::HeaderMap,
        verified: impl FnOnce(&Identity),
    ) -> Result<Option<Identity>, ApiError> {
        if OPEN_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
            return Ok(None);
        }
        self.authorize_with(path, complianceiq_proto::rpc_access(path), headers, verified).await
    }

    /// Like [`authorize`](Self::authorize), with the RPC's rule given (the gateway reads rules
    /// from the descriptors it routes). `None`: the RPC is not in the contracts; refused.
    pub async fn authorize_rule(
        &self,
        path: &str,
        rule: Option<&RpcAccess>,
        headers: &http::HeaderMap,
    ) -> Result<Option<Identity>, ApiError> {
        self.authorize_with(path, rule, headers, |_| {}).await
    }

    async fn authorize_with(
        &self,
        path: &str,
        rule: Option<&RpcAccess>,
        headers: &http::HeaderMap,
        verified: impl FnOnce(&Identity),
    ) -> Result<Option<Identity>, ApiError> {
        let Some(rule) = rule else {
            return Err(ApiError::PermissionDenied {
                reason: "RPC_UNKNOWN",
                message: format!("{path} is not an RPC of the ComplianceIQ contracts"),
            });
        };
        // Module-to-module work without a person: the mesh policy decided who may call.
        if rule.internal {
            return Ok(None);
        }
        let token = bearer_token(headers)?;
        let token = match (token, rule.public) {
            (None, true) => return Ok(None),
            (None, false) => {
                return Err(ApiError::Unauthenticated {
                    reason: "TOKEN_MISSING",
                    message: "this call needs an access token: send `authorization: Bearer <token>`".into(),
                });
            }
            (Some(token), _) => token,
        };
        let claims = self
            .verifier
            .verify(token)
            .await?
            .map_err(|error| ApiError::Unauthenticated { reason: error.reason(), message: error.to_string() })?;
        if self.revocations.check(&claims.jti)? {
            return Err(ApiError::Unauthenticated {
                reason: "TOKEN_REVOKED",
                message: "the access token was revoked; log in again".into(),
            });
        }
        let identity = Identity::from_claims(claims).map_err(|_| ApiError::Unauthenticated {
            reason: "TOKEN_MALFORMED",
            message: "the access token carries malformed ids".into(),
        })?;
        verified(&identity);
        // Staff tokens and tenant tokens open disjoint sets of RPCs.
        if identity.staff && !(rule.staff || rule.open_to_staff || rule.public) {
            return Err(ApiError::PermissionDenied {
                reason: "STAFF_TOKEN",
                message: "a staff token is for the staff API only; tenant calls need a member's token".into(),
            });
        }
        if rule.staff {
            if !identity.staff {
                return Err(ApiError::PermissionDenied {
                    reason: "STAFF_ONLY",
                    message: "this call is for ComplianceIQ platform staff".into(),
                });
            }
            return Ok(Some(identity));
        }
        if !rule.public {
            if identity.organization_id.is_none() && !rule.allow_unscoped {
                return Err(ApiError::PermissionDenied {
                    reason: "ORGANIZATION_REQUIRED",
                    message:
                        "this call acts in an organization; get a token scoped to one (Refresh with organization_id)"
                            .into(),
                });
            }
            if let Some(permission) = rule.permission
                && !identity.has_permission(permission)
            {
                return Err(ApiError::PermissionDenied {
                    reason: "PERMISSION_MISSING",
                    message: format!("this call needs the permission {permission}"),
                });
            }
        }
        Ok(Some(identity))
    }
}

fn bearer_token(headers: &http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::Unauthenticated {
        reason: "TOKEN_MALFORMED",
        message: "the authorization header must be `Bearer <access token>`".into(),
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(Some(token.trim()))
}

/// Applies [`AccessControl`] to a service.
#[derive(Clone)]
pub struct AccessLayer {
    control: Arc<AccessControl>,
}

impl AccessLayer {
    /// The layer.
    pub fn new(control: Arc<AccessControl>) -> Self {
        Self { control }
    }
}

impl<S> Layer<S> for AccessLayer {
    type Service = AccessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessService { inner, control: self.control.clone() }
    }
}

/// See [`AccessLayer`].
#[derive(Clone)]
pub struct AccessService<S> {
    inner: S,
    control: Arc<AccessControl>,
}

impl<S> Service<http::Request<Body>> for AccessService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The ready clone stays in `self`; this call takes the one that was polled ready.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let control = self.control.clone();
        Box::pin(async move {
            // The audit layer outside learns who called, refused or not.
            let accepted = request.extensions().get::<crate::audit::VerifiedCaller>().cloned();
            let note = |identity: &Identity| {
                if let Some(accepted) = accepted {
                    let _ = accepted.0.set(identity.clone());
                }
            };
            match control.authorize_noting(request.uri().path(), request.headers(), note).await {
                Ok(identity) => {
                    if let Some(identity) = identity {
                        request.extensions_mut().insert(identity);
                    }
                    inner.call(request).await
                }
                Err(error) => Ok(Status::from(error).into_http()),
            }
        })
    }
}
