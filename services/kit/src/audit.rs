//! The audit layer every module server runs: each call to a mutating RPC (the contracts say
//! which: `RpcAccess::mutating`) becomes one `audit.recorded` event, written to the module's
//! outbox after the call ends, with who called (the person the access layer accepted, or the
//! calling module), from where (the client address and user agent the gateway vouches for),
//! what (the RPC, the action and resource it names, the resource's id from the request or,
//! for a creation, from the response), the result's gRPC code, and the request id. The audit
//! service appends it to the organization's hash chain. Services write no code for it.
//!
//! The entry is written after the response, in a transaction of its own: a process that dies
//! between the two loses that one entry (the change itself is committed). Calls outside any
//! organization (registration, login) have no chain and are not recorded here; the auth
//! service records a sign-in into an organization itself (`session.sign_in`, with the
//! session), and its security alerts cover failures. Calls the mesh policy refuses come before
//! any identity is checked: [`MeshRefusals`] records them in the platform's own trail.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use complianceiq_proto::complianceiq::audit::v1::{Actor, AuditLog, Outcome};
use complianceiq_proto::complianceiq::events::v1::AuditRecorded;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use futures::future::BoxFuture;
use http_body::Frame;
use http_body_util::BodyExt;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::auth::Identity;
use crate::context::{ClientAddress, RequestContext};
use crate::db::ModuleDatabase;
use crate::ids::OrganizationId;
use crate::mesh::CallerModule;
use crate::time;

/// The header in which the gateway passes on the client's user agent (trusted from the
/// gateway only; the edge removes it from what clients send).
pub const CLIENT_USER_AGENT_HEADER: &str = "x-ciq-client-user-agent";

/// The largest request the layer reads to find the resource's id: tonic's own default limit
/// for a decoded message, plus the frame header.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024 + 5;
/// Of a response, only the start of its first message is read (for a created resource's id).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// User agents are clipped to this many characters.
const MAX_USER_AGENT: usize = 256;

/// The caller whose token the access layer verified (whether or not its rule then let the
/// call through), handed out to the audit layer outside it.
#[derive(Clone, Default)]
pub(crate) struct VerifiedCaller(pub(crate) Arc<OnceLock<Identity>>);

fn descriptors() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(complianceiq_proto::FILE_DESCRIPTOR_SET).expect("the contracts' descriptors decode")
    })
}

fn method_of(path: &str) -> Option<MethodDescriptor> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    descriptors().get_service_by_name(service)?.methods().find(|candidate| candidate.name() == method)
}

/// `UpdateInstance` → (`instance`, `update`); a name of one word (`Login`) acts on the
/// service's own resource.
fn action_of(service_package: &str, method: &str) -> (String, String) {
    let mut words: Vec<String> = Vec::new();
    for character in method.chars() {
        if character.is_ascii_uppercase() || words.is_empty() {
            words.push(String::new());
        }
        if let Some(word) = words.last_mut() {
            word.push(character.to_ascii_lowercase());
        }
    }
    let verb = words.first().cloned().unwrap_or_default();
    let resource = if words.len() > 1 { words[1..].join("_") } else { service_package.to_string() };
    (resource, verb)
}

/// Records mutating calls; see the module documentation.
#[derive(Clone)]
pub struct AuditLayer {
    database: ModuleDatabase,
}

impl AuditLayer {
    /// The layer of a module whose outbox is in `database`.
    pub fn new(database: ModuleDatabase) -> Self {
        Self { database }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService { inner, database: self.database.clone() }
    }
}

/// See [`AuditLayer`].
#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    database: ModuleDatabase,
}

impl<S> Service<http::Request<Body>> for AuditService<S>
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
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let path = request.uri().path().to_string();
        // Staff calls are recorded even when they only read: the tenant sees what support saw.
        let audited = complianceiq_proto::rpc_access(&path).is_some_and(|rule| rule.mutating || rule.staff);
        let Some(method) = method_of(&path).filter(|_| audited) else {
            return Box::pin(inner.call(request));
        };
        let caller = VerifiedCaller::default();
        request.extensions_mut().insert(caller.clone());
        let pending = Pending::new(&request, path, method, caller, self.database.clone());
        Box::pin(async move {
            let (request, request_message) = if pending.method.is_client_streaming() {
                (request, None)
            } else {
                let (parts, body) = request.into_parts();
                match http_body_util::Limited::new(body, MAX_REQUEST_BYTES).collect().await {
                    Ok(collected) => {
                        let bytes = collected.to_bytes();
                        let message = first_message(&bytes, pending.method.input());
                        (http::Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes))), message)
                    }
                    Err(error) => {
                        let status = Status::resource_exhausted(format!("the request could not be read: {error}"));
                        pending.finish(status.code() as i32, None, None);
                        return Ok(status.into_http());
                    }
                }
            };
            let response = inner.call(request).await?;
            let early_code =
                response.headers().get("grpc-status").and_then(|value| value.to_str().ok()?.parse::<i32>().ok());
            if let Some(code) = early_code {
                pending.finish(code, request_message, None);
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let recording = Recording {
                inner: body,
                captured: Vec::new(),
                wants_response: request_message.as_ref().is_none_or(|message| named_id(message, false).is_none()),
                pending: Some((pending, request_message)),
            };
            Ok(http::Response::from_parts(parts, Body::new(recording)))
        })
    }
}

/// The first message of a gRPC body (uncompressed), decoded as `descriptor`.
fn first_message(bytes: &[u8], descriptor: MessageDescriptor) -> Option<DynamicMessage> {
    let mut frame = bytes;
    if frame.len() < 5 || frame[0] != 0 {
        return None;
    }
    frame.advance(1);
    let length = frame.get_u32() as usize;
    DynamicMessage::decode(descriptor, frame.get(..length)?).ok()
}

/// Whether a field names the organization a call acts in (its scope, not its target).
fn is_scope(field: &str) -> bool {
    matches!(field, "organization_id" | "org_id")
}

/// The resource a message names: its first `*_id` field that is set, passing over the
/// organization's (`scope`: true for only the organization's).
fn named_id(message: &DynamicMessage, scope: bool) -> Option<String> {
    message
        .fields()
        .filter(|(field, _)| field.name().ends_with("_id") && is_scope(field.name()) == scope)
        .find_map(|(_, value)| value.as_str().filter(|value| !value.is_empty()).map(str::to_string))
}

/// What the layer knows of a call before its result.
struct Pending {
    path: String,
    method: MethodDescriptor,
    caller: VerifiedCaller,
    module_caller: Option<String>,
    address: Option<String>,
    user_agent: String,
    context: RequestContext,
    at: i64,
    database: ModuleDatabase,
}

impl Pending {
    fn new(
        request: &http::Request<Body>,
        path: String,
        method: MethodDescriptor,
        caller: VerifiedCaller,
        database: ModuleDatabase,
    ) -> Self {
        let module_caller = request.extensions().get::<CallerModule>().map(|caller| caller.0.clone());
        let from_gateway = module_caller.as_deref() == Some("gateway");
        let header = |name: &str| request.headers().get(name).and_then(|value| value.to_str().ok());
        let user_agent = if from_gateway { header(CLIENT_USER_AGENT_HEADER) } else { header("user-agent") };
        Self {
            path,
            method,
            caller,
            module_caller,
            address: request.extensions().get::<ClientAddress>().map(|ClientAddress(address)| address.to_string()),
            user_agent: user_agent.unwrap_or_default().chars().take(MAX_USER_AGENT).collect(),
            context: RequestContext::from_headers(request.headers()),
            at: time::now_micros(),
            database,
        }
    }

    /// Writes the entry (in the background: the response does not wait for it).
    fn finish(self, code: i32, request: Option<DynamicMessage>, response: Option<DynamicMessage>) {
        let identity = self.caller.0.get().cloned();
        let staff = identity.as_ref().is_some_and(|identity| identity.staff);
        let organization = if staff {
            staff_trail(request.as_ref(), code)
        } else if let Some(organization) = identity.as_ref().and_then(|identity| identity.organization_id) {
            organization
        } else {
            tracing::debug!(rpc = %self.path, code, "a call outside any organization: no audit trail to record it in");
            return;
        };
        let package = self.method.parent_service().package_name().to_string();
        let module = package.strip_prefix("complianceiq.").and_then(|rest| rest.split('.').next()).unwrap_or_default();
        let (resource_type, verb) = action_of(module, self.method.name());
        // What the request targets, else what the call created, else the organization.
        let resource = request
            .as_ref()
            .and_then(|message| named_id(message, false))
            .or_else(|| response.as_ref()?.get_field_by_name("id")?.as_str().map(str::to_string))
            .or_else(|| named_id(request.as_ref()?, true));
        let mut context = self.context;
        context.actor_user_id = identity.as_ref().map(|identity| identity.user_id);
        let outcome = match code {
            0 => Outcome::Success,
            7 | 16 => Outcome::Denied,
            _ => Outcome::Failure,
        };
        let entry = AuditLog {
            actor: Some(Actor {
                user_id: identity.as_ref().map(|identity| identity.user_id.to_string()).unwrap_or_default(),
                email: identity.as_ref().map(|identity| identity.email.clone()).unwrap_or_default(),
                service: self.module_caller.filter(|caller| caller != "gateway").unwrap_or_default(),
                ip_address: self.address.unwrap_or_default(),
                user_agent: self.user_agent,
            }),
            action: format!("{resource_type}.{verb}"),
            resource_type,
            resource_id: resource.unwrap_or_default(),
            outcome: outcome as i32,
            request_id: context.request_id.clone(),
            event_time: Some(time::to_timestamp(self.at)),
            rpc: self.path,
            status_code: code,
            metadata: if staff { staff_metadata(request.as_ref()) } else { Default::default() },
            ..Default::default()
        };
        write_entry(self.database, organization, entry, context);
    }
}

/// Where a staff call is recorded: in the trail of the organization it names, so the tenant
/// sees it; a search across organizations, or a call naming none that exists (a malformed
/// or unknown id), in the platform's.
fn staff_trail(request: Option<&DynamicMessage>, code: i32) -> OrganizationId {
    const INVALID_ARGUMENT: i32 = 3;
    const NOT_FOUND: i32 = 5;
    request
        .and_then(|message| named_id(message, true))
        .filter(|_| code != INVALID_ARGUMENT && code != NOT_FOUND)
        .and_then(|id| OrganizationId::from_stored(&id).ok())
        .unwrap_or(OrganizationId::PLATFORM)
}

/// A staff call's entry says so, with the reason it gave.
fn staff_metadata(request: Option<&DynamicMessage>) -> std::collections::HashMap<String, String> {
    let reason = request
        .and_then(|message| message.get_field_by_name("reason"))
        .and_then(|value| value.as_str().map(|reason| reason.trim().chars().take(500).collect::<String>()))
        .unwrap_or_default();
    [("actor_role".to_string(), STAFF_ROLE.to_string()), ("reason".to_string(), reason)].into()
}

/// Writes an `audit.recorded` event to the module's outbox, in the background: the response
/// does not wait for it.
fn write_entry(database: ModuleDatabase, organization: OrganizationId, entry: AuditLog, context: RequestContext) {
    // A body dropped as the runtime shuts down has nowhere to write from.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(target: "security", rpc = %entry.rpc, "an audit entry was lost at shutdown");
        return;
    };
    runtime.spawn(async move {
        let rpc = entry.rpc.clone();
        let written = async {
            let mut tx = database.global_write().await?;
            let recorded = AuditRecorded { entry: Some(entry) };
            tx.emit(Some(organization), Payload::AuditRecorded(recorded), &context).await?;
            tx.commit().await
        };
        if let Err(error) = written.await {
            tracing::error!(target: "security", %rpc, %error, "an audit entry could not be written");
        }
    });
}

/// `actor_role` in the metadata of a staff call's entry.
pub const STAFF_ROLE: &str = "platform_staff";

/// The action of a mesh refusal in the platform's trail: the caller had no module identity.
pub const MESH_UNAUTHENTICATED: &str = "mesh.call_unauthenticated";
/// The action of a mesh refusal in the platform's trail: the policy does not name the call.
pub const MESH_DENIED: &str = "mesh.call_denied";
/// Mesh refusals recorded per second and module server; a flood beyond it is logged and
/// counted (as PERMISSION_DENIED and UNAUTHENTICATED calls) but not chained, so refused
/// callers cannot turn the trail into a write amplifier.
const MESH_REFUSALS_PER_SECOND: u32 = 20;
/// Longest path or reason kept in a refusal's entry (both come from the caller).
const MAX_REFUSAL_TEXT: usize = 512;

/// Records the mesh policy's refusals in the platform's trail ([`OrganizationId::PLATFORM`]):
/// a refusal comes before any person's identity is checked, so it belongs to no
/// organization's chain.
#[derive(Clone)]
pub(crate) struct MeshRefusals {
    database: ModuleDatabase,
    budget: Arc<RefusalBudget>,
}

#[derive(Default)]
struct RefusalBudget {
    second: std::sync::atomic::AtomicI64,
    recorded: std::sync::atomic::AtomicU32,
}

impl RefusalBudget {
    /// Whether one more refusal may be recorded in the current second.
    fn take(&self, now_micros: i64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let second = now_micros / 1_000_000;
        if self.second.swap(second, Relaxed) != second {
            self.recorded.store(0, Relaxed);
        }
        self.recorded.fetch_add(1, Relaxed) < MESH_REFUSALS_PER_SECOND
    }
}

impl MeshRefusals {
    pub(crate) fn new(database: ModuleDatabase) -> Self {
        Self { database, budget: Arc::default() }
    }

    /// Records that `caller` (the module it proved to be, if any) was refused `path`.
    pub(crate) fn record(
        &self,
        request: &http::Request<Body>,
        path: &str,
        caller: Option<&str>,
        peer: Option<std::net::SocketAddr>,
        status: &Status,
    ) {
        let at = time::now_micros();
        if !self.budget.take(at) {
            tracing::debug!(target: "security", rpc = %path, "a mesh refusal beyond the recording budget");
            return;
        }
        let clip = |text: &str| text.chars().take(MAX_REFUSAL_TEXT).collect::<String>();
        let user_agent = request.headers().get("user-agent").and_then(|value| value.to_str().ok()).unwrap_or("");
        let action = if status.code() == tonic::Code::Unauthenticated { MESH_UNAUTHENTICATED } else { MESH_DENIED };
        let entry = AuditLog {
            actor: Some(Actor {
                service: caller.unwrap_or_default().to_string(),
                ip_address: peer.map(|peer| peer.ip().to_string()).unwrap_or_default(),
                user_agent: user_agent.chars().take(MAX_USER_AGENT).collect(),
                ..Default::default()
            }),
            action: action.to_string(),
            resource_type: "rpc".into(),
            resource_id: clip(path),
            outcome: Outcome::Denied as i32,
            metadata: [("reason".to_string(), clip(status.message()))].into(),
            event_time: Some(time::to_timestamp(at)),
            rpc: clip(path),
            status_code: status.code() as i32,
            ..Default::default()
        };
        let context = RequestContext::from_headers(request.headers());
        let entry = AuditLog { request_id: context.request_id.clone(), ..entry };
        write_entry(self.database.clone(), OrganizationId::PLATFORM, entry, context);
    }
}

/// A response body that records the call when its trailers (the gRPC status) pass, or when
/// it is dropped before them (the client went away: CANCELLED).
struct Recording {
    inner: Body,
    captured: Vec<u8>,
    wants_response: bool,
    pending: Option<(Pending, Option<DynamicMessage>)>,
}

impl Recording {
    fn finish(&mut self, code: i32) {
        if let Some((pending, request)) = self.pending.take() {
            let response =
                if self.wants_response { first_message(&self.captured, pending.method.output()) } else { None };
            pending.finish(code, request, response);
        }
    }
}

impl http_body::Body for Recording {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if self.wants_response && self.captured.len() < MAX_RESPONSE_BYTES {
                        let room = MAX_RESPONSE_BYTES - self.captured.len();
                        self.captured.extend_from_slice(&data[..data.len().min(room)]);
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok()?.parse::<i32>().ok())
                        .unwrap_or(tonic::Code::Unknown as i32);
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(tonic::Code::Internal as i32),
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_refusals_are_recorded_up_to_a_budget_per_second() {
        let budget = RefusalBudget::default();
        let second = 1_700_000_000_000_000;
        let recorded = (0..100).filter(|offset| budget.take(second + offset)).count();
        assert_eq!(recorded, MESH_REFUSALS_PER_SECOND as usize);
        assert!(budget.take(second + 1_000_000), "the next second starts a new budget");
    }

    #[test]
    fn actions_name_the_resource_and_the_verb() {
        assert_eq!(action_of("instance", "UpdateInstance"), ("instance".into(), "update".into()));
        assert_eq!(action_of("organization", "AddTeamMember"), ("team_member".into(), "add".into()));
        assert_eq!(action_of("auth", "Logout"), ("auth".into(), "logout".into()));
    }

    #[test]
    fn every_mutating_rpc_of_the_contracts_has_a_method_to_record() {
        let mutating: Vec<_> = complianceiq_proto::RPC_ACCESS.iter().filter(|rule| rule.mutating).collect();
        assert!(mutating.len() > 40, "{} mutating RPCs", mutating.len());
        for rule in mutating {
            assert!(method_of(rule.path).is_some(), "{} has no descriptor", rule.path);
        }
        let reads = [
            "/complianceiq.user.v1.UserService/GetCurrentUser",
            "/complianceiq.user.v1.UserService/CheckMemberRemoval",
        ];
        for path in reads {
            assert!(!complianceiq_proto::rpc_access(path).expect("in the contracts").mutating, "{path}");
        }
    }
}
