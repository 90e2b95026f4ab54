//! Who may call each RPC, as the contracts state it (`complianceiq.common.v1.access`).

/// The access rule of one RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RpcAccess {
    /// gRPC path, `/complianceiq.organization.v1.OrganizationService/GetOrganization`.
    pub path: &'static str,
    /// Callable without an access token.
    pub public: bool,
    /// Permission the caller's token must carry; `None`: any authenticated caller.
    pub permission: Option<&'static str>,
    /// Callable with a token scoped to no organization.
    pub allow_unscoped: bool,
    /// Called by other modules only, without a person's token; the mesh policy names them.
    pub internal: bool,
    /// Called by platform staff only, with a staff token; audited even when it reads.
    pub staff: bool,
    /// A staff token may call it too (the caller's own session).
    pub open_to_staff: bool,
    /// Served at the edge: the RPC has a `google.api.http` binding, so the gateway may
    /// forward it.
    pub edge: bool,
    /// Changes something: bound to an HTTP verb other than GET, or an internal call whose
    /// name does not say it reads. Every mutating call is recorded in the audit trail.
    pub mutating: bool,
}

include!(concat!(env!("OUT_DIR"), "/rpc_access.rs"));

/// The rule of an RPC path; `None` for a path the contracts do not define (deny it).
pub fn rpc_access(path: &str) -> Option<&'static RpcAccess> {
    RPC_ACCESS.binary_search_by(|rule| rule.path.cmp(path)).ok().map(|index| &RPC_ACCESS[index])
}

/// Every permission the platform knows: the design's list, plus `roles:create`,
/// `notifications:send`, `audit:read`, `audit:write`, `webhooks:*` and `api_keys:*` for the services
/// the design's list does not cover.
pub const PERMISSIONS: &[&str] = &[
    "organizations:create",
    "organizations:read",
    "organizations:update",
    "organizations:delete",
    "instances:create",
    "instances:read",
    "instances:update",
    "instances:delete",
    "analysis:create",
    "analysis:read",
    "analysis:delete",
    "insights:read",
    "insights:export",
    "widgets:create",
    "widgets:read",
    "widgets:update",
    "widgets:delete",
    "users:create",
    "users:read",
    "users:update",
    "users:delete",
    "roles:create",
    "notifications:send",
    "audit:read",
    "audit:write",
    "webhooks:create",
    "webhooks:read",
    "webhooks:update",
    "webhooks:delete",
    "api_keys:create",
    "api_keys:read",
    "api_keys:delete",
];
