//! The contracts against the product design: every design endpoint is an RPC whose
//! `google.api.http` annotation maps exactly to the design's method and path.

use std::collections::BTreeSet;

use prost_reflect::{DescriptorPool, Value};

use crate::google::api::{HttpRule, http_rule::Pattern};

/// Section 2 of the design, verbatim (method, path), in the design's order.
const DESIGN_ENDPOINTS: &str = "
POST   /api/v1/auth/register
POST   /api/v1/auth/login
POST   /api/v1/auth/logout
POST   /api/v1/auth/refresh
POST   /api/v1/auth/forgot-password
POST   /api/v1/auth/reset-password
POST   /api/v1/auth/verify-email
POST   /api/v1/auth/mfa/enable
POST   /api/v1/auth/mfa/verify
GET    /api/v1/users/me
PUT    /api/v1/users/me
GET    /api/v1/users/{user_id}
GET    /api/v1/users
POST   /api/v1/users/{user_id}/roles
DELETE /api/v1/users/{user_id}/roles/{role_id}
GET    /api/v1/roles
POST   /api/v1/roles
POST   /api/v1/organizations
GET    /api/v1/organizations/{org_id}
PUT    /api/v1/organizations/{org_id}
DELETE /api/v1/organizations/{org_id}
GET    /api/v1/organizations/{org_id}/members
POST   /api/v1/organizations/{org_id}/members
GET    /api/v1/organizations/{org_id}/subscription
PUT    /api/v1/organizations/{org_id}/subscription
GET    /api/v1/organizations/{org_id}/usage
POST   /api/v1/instances
GET    /api/v1/instances
GET    /api/v1/instances/{instance_id}
PUT    /api/v1/instances/{instance_id}
DELETE /api/v1/instances/{instance_id}
POST   /api/v1/instances/{instance_id}/test-connection
POST   /api/v1/instances/{instance_id}/sync
GET    /api/v1/instances/{instance_id}/sync-history
GET    /api/v1/instances/{instance_id}/health
POST   /api/v1/analysis/controls
POST   /api/v1/analysis/risks
POST   /api/v1/analysis/compliance
POST   /api/v1/analysis/predictive
GET    /api/v1/analysis/jobs
GET    /api/v1/analysis/jobs/{job_id}
DELETE /api/v1/analysis/jobs/{job_id}
POST   /api/v1/analysis/{instance_id}/replay
GET    /api/v1/insights/{instance_id}
GET    /api/v1/insights/{instance_id}/history
GET    /api/v1/insights/{instance_id}/trends
GET    /api/v1/insights/compare
POST   /api/v1/insights/{insight_id}/export
GET    /api/v1/insights/search
POST   /api/v1/insights/{insight_id}/save
GET    /api/v1/insights/saved
POST   /api/v1/widgets
GET    /api/v1/widgets
GET    /api/v1/widgets/{widget_id}
PUT    /api/v1/widgets/{widget_id}
DELETE /api/v1/widgets/{widget_id}
POST   /api/v1/widgets/{widget_id}/deploy
GET    /api/v1/widgets/templates
POST   /api/v1/widgets/templates
GET    /api/v1/dashboard/summary
GET    /api/v1/dashboard/instances/{instance_id}/metrics
GET    /api/v1/dashboard/organization/metrics
GET    /api/v1/dashboard/analytics
POST   /api/v1/dashboard/reports
GET    /api/v1/dashboard/reports
GET    /api/v1/dashboard/reports/{report_id}
POST   /api/v1/notifications/send
GET    /api/v1/notifications
GET    /api/v1/notifications/{notification_id}
PUT    /api/v1/notifications/{notification_id}/read
DELETE /api/v1/notifications/{notification_id}
GET    /api/v1/notifications/preferences
PUT    /api/v1/notifications/preferences
POST   /api/v1/audit/log
GET    /api/v1/audit/logs
GET    /api/v1/audit/logs/{log_id}
GET    /api/v1/audit/security-events
GET    /api/v1/audit/compliance-events
POST   /api/v1/audit/reports
GET    /api/v1/audit/reports
POST   /api/v1/ml/train
GET    /api/v1/ml/models
GET    /api/v1/ml/models/{model_id}
POST   /api/v1/ml/predict
POST   /api/v1/ml/evaluate
DELETE /api/v1/ml/models/{model_id}
POST   /api/v1/webhooks
GET    /api/v1/webhooks
GET    /api/v1/webhooks/{webhook_id}
PUT    /api/v1/webhooks/{webhook_id}
DELETE /api/v1/webhooks/{webhook_id}
GET    /api/v1/webhooks/{webhook_id}/deliveries
POST   /api/v1/webhooks/{webhook_id}/test
";

const SERVICES: [&str; 12] = [
    "auth",
    "user",
    "organization",
    "instance",
    "analysis",
    "insights",
    "widget",
    "dashboard",
    "notification",
    "audit",
    "ml",
    "webhook",
];

fn pool() -> DescriptorPool {
    DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes")
}

fn design_endpoints() -> Vec<(String, String)> {
    DESIGN_ENDPOINTS
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next().unwrap().to_string(), parts.next().unwrap().to_string())
        })
        .collect()
}

/// (rpc full name, HTTP method, path) for the primary binding and every additional one.
fn annotated_bindings(pool: &DescriptorPool) -> Vec<(String, String, String)> {
    let http = pool.get_extension_by_name("google.api.http").expect("google.api.http is known");
    let mut bindings = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&http) {
                continue;
            }
            let Value::Message(rule) = options.get_extension(&http).into_owned() else {
                panic!("google.api.http on {} is not a message", method.full_name());
            };
            let rule: HttpRule = rule.transcode_to().expect("an HttpRule");
            let mut rules = vec![rule.clone()];
            rules.extend(rule.additional_bindings);
            for rule in rules {
                let (verb, path) = match rule.pattern.expect("a pattern") {
                    Pattern::Get(path) => ("GET", path),
                    Pattern::Put(path) => ("PUT", path),
                    Pattern::Post(path) => ("POST", path),
                    Pattern::Delete(path) => ("DELETE", path),
                    Pattern::Patch(path) => ("PATCH", path),
                    Pattern::Custom(custom) => panic!("custom verb {} not expected", custom.kind),
                };
                bindings.push((method.full_name().to_string(), verb.to_string(), path));
            }
        }
    }
    bindings
}

#[test]
fn design_has_93_endpoints() {
    assert_eq!(design_endpoints().len(), 93);
}

#[test]
fn every_design_endpoint_is_exactly_one_annotated_rpc() {
    let bindings = annotated_bindings(&pool());
    for (verb, path) in design_endpoints() {
        let owners: Vec<_> =
            bindings.iter().filter(|(_, v, p)| *v == verb && *p == path).map(|(rpc, _, _)| rpc).collect();
        assert_eq!(owners.len(), 1, "{verb} {path} must map to exactly one RPC, found {owners:?}");
    }
}

#[test]
fn every_public_rpc_is_annotated_and_matches_the_design_or_is_a_documented_extra() {
    let pool = pool();
    let design: BTreeSet<_> = design_endpoints().into_iter().collect();
    // RPCs beyond the design's list, each with a reason.
    let extras: BTreeSet<(&str, &str)> = [
        ("GET", "/.well-known/jwks.json"), // discovery of the token signing keys (RFC 8414 style)
        ("GET", "/api/v1/auth/jwks"),      // the same under the versioned API
        // Membership and teams, which the design's organization service owns without listing endpoints.
        ("DELETE", "/api/v1/organizations/{org_id}/members/{member_id}"),
        ("POST", "/api/v1/organizations/invitations/accept"),
        ("POST", "/api/v1/organizations/{org_id}/teams"),
        ("GET", "/api/v1/organizations/{org_id}/teams"),
        ("DELETE", "/api/v1/organizations/{org_id}/teams/{team_id}"),
        ("POST", "/api/v1/organizations/{org_id}/teams/{team_id}/members"),
        ("DELETE", "/api/v1/organizations/{org_id}/teams/{team_id}/members/{user_id}"),
        // A sync run's progress, and stopping one: the design's sync runs in the background.
        ("GET", "/api/v1/instances/{instance_id}/sync-runs/{sync_run_id}"),
        ("POST", "/api/v1/instances/{instance_id}/sync-runs/{sync_run_id}:cancel"),
        // A job's results, subject by subject: the design's jobs return only a summary.
        ("GET", "/api/v1/analysis/jobs/{job_id}/results"),
        // Anomalies in indicator values, and the regulatory text scan: the design's ML service
        // names both, without endpoints.
        ("POST", "/api/v1/analysis/anomalies"),
        ("POST", "/api/v1/ml/scan"),
        // Choosing the model the predictive analysis uses: the design keeps model versions.
        ("POST", "/api/v1/ml/models/{model_id}:setDefault"),
        // Stopping a training: the design's training runs as a job.
        ("POST", "/api/v1/ml/models/{model_id}:cancel"),
        // Uploading a regulation larger than a request takes, for the scan.
        ("POST", "/api/v1/ml/documents"),
        ("PUT", "/api/v1/ml/documents/{document_id}/content"),
        // One saved report, and deleting it: the design lists only save and list.
        ("GET", "/api/v1/insights/saved/{report_id}"),
        ("DELETE", "/api/v1/insights/saved/{report_id}"),
        // An export's state and its file: the design's export only starts one.
        ("GET", "/api/v1/insights/exports/{export_id}"),
        ("GET", "/api/v1/insights/exports/{export_id}/download"),
        // Checking the audit trail's hash chain: the design's trail is not tamper-evident.
        ("GET", "/api/v1/audit/logs:verify"),
        // Sending a delivery's message again: the design keeps a delivery history only.
        ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}:redeliver"),
        // An audit report's state and its file: the design's reports only start.
        ("GET", "/api/v1/audit/reports/{report_id}"),
        ("GET", "/api/v1/audit/reports/{report_id}/download"),
        // The organization's email templates, which the design's notification service keeps.
        ("GET", "/api/v1/notifications/templates/{name}"),
        ("PUT", "/api/v1/notifications/templates/{name}"),
        ("DELETE", "/api/v1/notifications/templates/{name}"),
        // In-app notifications as they arrive: the design's in-app channel needs polling otherwise.
        ("GET", "/api/v1/notifications:stream"),
        // Organization API keys for partners and widgets (service accounts).
        ("GET", "/api/v1/auth/organizations"),
        // The design's Super Admin: the platform staff's API across organizations.
        ("GET", "/api/v1/staff/organizations"),
        ("GET", "/api/v1/staff/organizations/{organization_id}/health"),
        ("POST", "/api/v1/staff/organizations/{organization_id}:suspend"),
        ("POST", "/api/v1/staff/organizations/{organization_id}:restore"),
        ("POST", "/api/v1/staff/organizations/{organization_id}/members/{user_id}:resetMfa"),
        // Single sign-on (the design's "OAuth2/SAML integration for enterprise SSO"): the
        // organization's provider and domains, and the browser endpoints of a sign-in.
        ("GET", "/api/v1/organizations/{org_id}/sso"),
        ("PUT", "/api/v1/organizations/{org_id}/sso"),
        ("DELETE", "/api/v1/organizations/{org_id}/sso"),
        ("POST", "/api/v1/organizations/{org_id}/sso/domains"),
        ("POST", "/api/v1/organizations/{org_id}/sso/domains/{domain}:verify"),
        ("DELETE", "/api/v1/organizations/{org_id}/sso/domains/{domain}"),
        ("GET", "/api/v1/auth/sso/start"),
        ("GET", "/api/v1/auth/sso/oidc/callback"),
        ("POST", "/api/v1/auth/sso/saml/acs"),
        ("GET", "/api/v1/auth/sso/saml/{organization_id}/metadata"),
        ("POST", "/api/v1/auth/sso/token"),
        ("POST", "/api/v1/api-keys"),
        ("GET", "/api/v1/api-keys"),
        ("DELETE", "/api/v1/api-keys/{api_key_id}"),
        // A custom report's lifecycle and its files: the design lists only create, list and get.
        ("PATCH", "/api/v1/dashboard/reports/{report_id}"),
        ("DELETE", "/api/v1/dashboard/reports/{report_id}"),
        ("POST", "/api/v1/dashboard/reports/{report_id}:run"),
        ("GET", "/api/v1/dashboard/reports/{report_id}/runs"),
        ("GET", "/api/v1/dashboard/reports/runs/{run_id}/download"),
        // A widget's versions and deployment history: the design versions widgets without listing them.
        ("GET", "/api/v1/widgets/{widget_id}/versions"),
        ("GET", "/api/v1/widgets/{widget_id}/deployments"),
    ]
    .into_iter()
    .collect();
    let bindings = annotated_bindings(&pool);
    for (rpc, verb, path) in &bindings {
        let known = design.contains(&(verb.clone(), path.clone())) || extras.contains(&(verb.as_str(), path.as_str()));
        assert!(known, "{rpc} maps to {verb} {path}, which is neither in the design nor a known extra");
    }
    let annotated: BTreeSet<_> = bindings.iter().map(|(rpc, _, _)| rpc.clone()).collect();
    for service in SERVICES {
        let package = format!("complianceiq.{service}.v1");
        let services: Vec<_> = pool.services().filter(|s| s.package_name() == package).collect();
        // One service per package; the organization package adds the staff API.
        let expected = if service == "organization" { 2 } else { 1 };
        assert_eq!(services.len(), expected, "services in {package}");
        for (service, method) in services.iter().flat_map(|service| service.methods().map(move |m| (service, m))) {
            // Internal RPCs (between modules, `access.internal`) are never at the edge.
            let path = format!("/{}/{}", service.full_name(), method.name());
            if crate::rpc_access(&path).is_some_and(|rule| rule.internal) {
                assert!(!annotated.contains(method.full_name()), "{} is internal and at the edge", method.full_name());
                continue;
            }
            assert!(annotated.contains(method.full_name()), "{} has no google.api.http", method.full_name());
        }
    }
}

#[test]
fn every_path_variable_is_a_field_of_the_request() {
    let pool = pool();
    for (rpc, verb, path) in annotated_bindings(&pool) {
        let method = pool.get_service_by_name(rpc.rsplit_once('.').unwrap().0).unwrap();
        let method = method.methods().find(|m| m.full_name() == rpc).unwrap();
        for variable in path.split('{').skip(1).map(|rest| rest.split('}').next().unwrap()) {
            let field = variable.split('=').next().unwrap();
            assert!(
                method.input().get_field_by_name(field).is_some(),
                "{verb} {path}: {field} is not a field of {}",
                method.input().full_name()
            );
        }
    }
}

#[test]
fn each_event_payload_is_named_by_its_type() {
    use crate::EventPayloadExt;
    use crate::complianceiq::events::v1::{Event, event::Payload};
    use prost::Message;

    // The comment on each oneof field states the type; event_type() must agree with it.
    let pool = pool();
    let event = pool.get_message_by_name("complianceiq.events.v1.Event").unwrap();
    let oneof = event.oneofs().find(|o| o.name() == "payload").unwrap();
    let file = event.parent_file().file_descriptor_proto().clone();
    let comments: Vec<(Vec<i32>, String)> = file
        .source_code_info
        .unwrap()
        .location
        .into_iter()
        .filter_map(|loc| loc.leading_comments.map(|c| (loc.path, c)))
        .collect();
    let message_index = file.message_type.iter().position(|m| m.name() == "Event").unwrap() as i32;
    for field in oneof.fields() {
        // Source locations index fields in declaration order.
        let field_index = file.message_type[message_index as usize]
            .field
            .iter()
            .position(|f| f.number() == field.number() as i32)
            .unwrap() as i32;
        let comment = comments
            .iter()
            .find(|(path, _)| *path == [4, message_index, 2, field_index])
            .map(|(_, c)| c.trim().trim_matches('`').to_string())
            .unwrap_or_else(|| panic!("{} has no comment", field.name()));
        // An empty payload message of the field's type, decoded through the oneof.
        let mut dynamic = prost_reflect::DynamicMessage::new(event.clone());
        dynamic.set_field(
            &field,
            Value::Message(prost_reflect::DynamicMessage::new(field.kind().as_message().unwrap().clone())),
        );
        let decoded = Event::decode(dynamic.encode_to_vec().as_slice()).unwrap();
        let payload: Payload = decoded.payload.expect("payload set");
        assert_eq!(payload.event_type(), comment, "field {}", field.name());
    }
}

#[test]
fn every_rpc_states_its_access_with_a_known_permission() {
    let pool = pool();
    let rpcs: Vec<String> = pool
        .services()
        .filter(|s| s.package_name().starts_with("complianceiq."))
        .flat_map(|s| {
            let service = s.full_name().to_string();
            s.methods().map(move |m| format!("/{service}/{}", m.name())).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(crate::RPC_ACCESS.len(), rpcs.len());
    for rpc in &rpcs {
        let rule = crate::rpc_access(rpc).unwrap_or_else(|| panic!("{rpc} has no access rule"));
        if let Some(permission) = rule.permission {
            assert!(crate::PERMISSIONS.contains(&permission), "{rpc} needs unknown permission {permission}");
        }
    }
    assert!(crate::rpc_access("/complianceiq.auth.v1.AuthService/Login").unwrap().public);
    assert_eq!(
        crate::rpc_access("/complianceiq.organization.v1.OrganizationService/GetOrganization").unwrap().permission,
        Some("organizations:read")
    );
    assert!(crate::rpc_access("/complianceiq.auth.v1.AuthService/Nope").is_none());
}
