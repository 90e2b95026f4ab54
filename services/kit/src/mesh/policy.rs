//! Which module may call which service and method: one table (the binary states it), deny by
//! default, enforced by a tower layer on every module server. The caller is the module named
//! by the client certificate, or, behind a sidecar that was explicitly trusted, by the
//! `X-Forwarded-Client-Cert` header the sidecar sets.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;

use super::identity::TrustScope;
use super::tls::MeshPeer;
use crate::config::MeshMode;

/// Services every module serves beside its own, for health checks and tooling.
pub const SERVICES_OF_EVERY_SERVER: [&str; 3] =
    ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

/// Who a rule admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// One module.
    Module(&'static str),
    /// Every module of the platform.
    AnyModule,
}

/// Which methods of the service a rule opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Methods {
    /// Every method.
    All,
    /// The methods served at the edge (those with a `google.api.http` binding): what the
    /// gateway may forward.
    Edge,
    /// These method names.
    Only(&'static [&'static str]),
}

/// One permission: `caller` may call `methods` of `service` (a full service name, or
/// [`ANY_SERVICE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Who.
    pub caller: Caller,
    /// The service, `complianceiq.user.v1.UserService`.
    pub service: &'static str,
    /// Which of its methods.
    pub methods: Methods,
}

/// Matches every service in [`Rule::service`].
pub const ANY_SERVICE: &str = "*";

/// The mesh policy: a call is allowed when a rule admits it.
#[derive(Clone, Debug)]
pub struct MeshPolicy {
    rules: Vec<Rule>,
}

impl MeshPolicy {
    /// A policy of these rules.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether module `caller` may call `path` (`/package.Service/Method`).
    pub fn allows(&self, caller: &str, path: &str) -> bool {
        let Some((service, method)) = path.strip_prefix('/').and_then(|path| path.split_once('/')) else {
            return false;
        };
        self.rules.iter().any(|rule| {
            let caller_matches = match rule.caller {
                Caller::AnyModule => true,
                Caller::Module(name) => name == caller,
            };
            let service_matches = rule.service == ANY_SERVICE || rule.service == service;
            let method_matches = match rule.methods {
                Methods::All => true,
                Methods::Edge => complianceiq_proto::rpc_access(path).is_some_and(|access| access.edge),
                Methods::Only(names) => names.contains(&method),
            };
            caller_matches && service_matches && method_matches
        })
    }

    /// The methods of `service` that `caller` may call, out of `methods` (for rendering).
    pub fn allowed_methods<'a>(&self, caller: &str, service: &str, methods: &'a [&'a str]) -> Vec<&'a str> {
        methods.iter().copied().filter(|method| self.allows(caller, &format!("/{service}/{method}"))).collect()
    }
}

/// The module of this process a call comes from when it did not cross the network: set only
/// by [`super::MeshChannel`] (an extension, which nothing remote can set), and believed as a
/// certificate would be.
#[derive(Clone, Debug)]
pub(crate) struct InProcessCaller(pub String);

/// The module a verified call comes from, for handlers that care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerModule(pub String);

/// The `URI=` of the closest hop in an `X-Forwarded-Client-Cert` header (Envoy's format:
/// elements separated by `,`, pairs by `;`, values optionally quoted).
pub fn forwarded_client_uri(header: &str) -> Option<String> {
    let mut elements = Vec::new();
    let (mut current, mut quoted, mut escaped) = (String::new(), false, false);
    for c in header.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => elements.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    elements.push(current);
    let last = elements.pop()?;
    last.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("uri").then(|| value.trim().to_string()).filter(|value| !value.is_empty())
    })
}

/// The header a sidecar sets.
pub const FORWARDED_CLIENT_CERT: &str = "x-forwarded-client-cert";

/// Applies a [`MeshPolicy`] to every call a module server receives.
#[derive(Clone)]
pub struct MeshPolicyLayer {
    inner: Arc<Enforcement>,
}

struct Enforcement {
    policy: Arc<MeshPolicy>,
    scope: TrustScope,
    mode: MeshMode,
    module: &'static str,
    refusals: Option<crate::audit::MeshRefusals>,
}

impl MeshPolicyLayer {
    /// Enforcement for `module`'s server.
    pub fn new(policy: Arc<MeshPolicy>, scope: TrustScope, mode: MeshMode, module: &'static str) -> Self {
        Self { inner: Arc::new(Enforcement { policy, scope, mode, module, refusals: None }) }
    }

    /// Also records each refusal in the platform's audit trail, through the outbox of
    /// `database` (the module's).
    pub(crate) fn recording_refusals_in(self, database: crate::db::ModuleDatabase) -> Self {
        let Enforcement { policy, scope, mode, module, .. } = &*self.inner;
        let refusals = Some(crate::audit::MeshRefusals::new(database));
        Self {
            inner: Arc::new(Enforcement {
                policy: policy.clone(),
                scope: scope.clone(),
                mode: *mode,
                module,
                refusals,
            }),
        }
    }
}

impl<S> tower::Layer<S> for MeshPolicyLayer {
    type Service = MeshPolicyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MeshPolicyService { enforcement: self.inner.clone(), inner }
    }
}

/// The service [`MeshPolicyLayer`] makes.
#[derive(Clone)]
pub struct MeshPolicyService<S> {
    enforcement: Arc<Enforcement>,
    inner: S,
}

impl Enforcement {
    /// The calling module, or the status to refuse with.
    fn caller(&self, request: &mut http::Request<Body>) -> Result<String, tonic::Status> {
        if let Some(InProcessCaller(module)) = request.extensions().get::<InProcessCaller>().cloned() {
            request.headers_mut().remove(FORWARDED_CLIENT_CERT);
            return Ok(module);
        }
        let presented = match self.mode {
            MeshMode::Mtls => {
                // Only the certificate speaks for the caller here; a header claiming otherwise
                // must not reach a handler that might read it.
                request.headers_mut().remove(FORWARDED_CLIENT_CERT);
                request.extensions().get::<MeshPeer>().and_then(|peer| peer.certificate_identity.clone())
            }
            MeshMode::Sidecar => request
                .headers()
                .get(FORWARDED_CLIENT_CERT)
                .and_then(|value| value.to_str().ok())
                .and_then(forwarded_client_uri),
        };
        let Some(presented) = presented else {
            return Err(tonic::Status::unauthenticated(format!(
                "calls to {} must come from a module of the mesh; no identity was presented",
                self.module
            )));
        };
        self.scope.module_of(&presented).ok_or_else(|| {
            tonic::Status::unauthenticated(format!(
                "{presented} is not a module identity of spiffe://{}/ns/{}",
                self.scope.trust_domain, self.scope.namespace
            ))
        })
    }
}

impl<S> tower::Service<http::Request<Body>> for MeshPolicyService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let enforcement = self.enforcement.clone();
        let path = request.uri().path().to_string();
        // The client address is context only the gateway may give; it never reaches a handler
        // as a header.
        let client_address = request
            .headers_mut()
            .remove(crate::context::CLIENT_ADDRESS_HEADER)
            .and_then(|value| value.to_str().ok()?.parse::<std::net::IpAddr>().ok());
        let address = request.extensions().get::<MeshPeer>().and_then(|peer| peer.address);
        let refusal = match enforcement.caller(&mut request) {
            Err(status) => {
                tracing::warn!(
                    target: "security",
                    event = "mesh.call_unauthenticated",
                    module = enforcement.module,
                    method = %path,
                    address = ?address,
                    reason = %status.message(),
                    "a call without a module identity was refused"
                );
                Some((None, status))
            }
            Ok(caller) if !enforcement.policy.allows(&caller, &path) => {
                tracing::warn!(
                    target: "security",
                    event = "mesh.call_denied",
                    module = enforcement.module,
                    caller = %caller,
                    method = %path,
                    "the mesh policy refused a call"
                );
                let status =
                    tonic::Status::permission_denied(format!("the mesh policy does not let {caller} call {path}"));
                Some((Some(caller), status))
            }
            Ok(caller) => {
                if caller == "gateway"
                    && let Some(address) = client_address
                {
                    request.extensions_mut().insert(crate::context::ClientAddress(address));
                }
                request.extensions_mut().insert(CallerModule(caller));
                None
            }
        };
        // Take the service that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if let (Some((caller, status)), Some(refusals)) = (&refusal, &enforcement.refusals) {
            refusals.record(&request, &path, caller.as_deref(), address, status);
        }
        Box::pin(async move {
            match refusal {
                Some((_, status)) => Ok(status.into_http()),
                None => inner.call(request).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> MeshPolicy {
        MeshPolicy::new(vec![
            Rule { caller: Caller::Module("gateway"), service: ANY_SERVICE, methods: Methods::Edge },
            Rule {
                caller: Caller::Module("organization"),
                service: "complianceiq.user.v1.UserService",
                methods: Methods::Only(&["ListRoles"]),
            },
            Rule { caller: Caller::AnyModule, service: "grpc.health.v1.Health", methods: Methods::All },
        ])
    }

    #[test]
    fn calls_are_denied_unless_a_rule_admits_them() {
        let policy = policy();
        assert!(policy.allows("gateway", "/complianceiq.organization.v1.OrganizationService/GetOrganization"));
        assert!(!policy.allows("gateway", "/complianceiq.organization.v1.OrganizationService/NoSuchMethod"));
        assert!(policy.allows("organization", "/complianceiq.user.v1.UserService/ListRoles"));
        assert!(!policy.allows("organization", "/complianceiq.user.v1.UserService/AssignRole"));
        assert!(!policy.allows("user", "/complianceiq.user.v1.UserService/ListRoles"));
        assert!(policy.allows("webhook", "/grpc.health.v1.Health/Check"));
        assert!(!policy.allows("gateway", "not a path"));
        assert!(!policy.allows("gateway", "/"));
    }

    #[test]
    fn the_closest_hop_of_a_forwarded_client_cert_names_the_caller() {
        let header = "By=spiffe://cluster.local/ns/complianceiq/sa/user-service;Hash=abc;\
                      URI=spiffe://cluster.local/ns/complianceiq/sa/organization-service";
        assert_eq!(
            forwarded_client_uri(header).as_deref(),
            Some("spiffe://cluster.local/ns/complianceiq/sa/organization-service")
        );
        let two_hops = "URI=spiffe://cluster.local/ns/x/sa/first;Subject=\"CN=a,O=b\",\
                        By=spiffe://b;URI=spiffe://cluster.local/ns/x/sa/second";
        assert_eq!(forwarded_client_uri(two_hops).as_deref(), Some("spiffe://cluster.local/ns/x/sa/second"));
        assert_eq!(forwarded_client_uri("Hash=abc;Subject=\"CN=x\""), None);
        assert_eq!(forwarded_client_uri(""), None);
    }
}
