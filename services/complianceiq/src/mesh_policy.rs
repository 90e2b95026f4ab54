//! The mesh policy: which module may call which methods of which service, as one table.
//! Everything not written here is refused. `complianceiq manifests` renders the same
//! table as Istio policy (k8s/components/istio), and a test keeps the committed manifests equal to it.

use std::collections::BTreeMap;

use complianceiq_kit::mesh::policy::{ANY_SERVICE, Caller, Methods, Rule, SERVICES_OF_EVERY_SERVER};
use complianceiq_kit::mesh::{MeshPolicy, TrustScope};
use serde_json::{Value, json};

const AUTH: &str = "complianceiq.auth.v1.AuthService";
const USER: &str = "complianceiq.user.v1.UserService";
const ANALYSIS: &str = "complianceiq.analysis.v1.AnalysisService";
const INSTANCE: &str = "complianceiq.instance.v1.InstanceService";
const NOTIFICATION: &str = "complianceiq.notification.v1.NotificationService";
const ML: &str = "complianceiq.ml.v1.MlService";
const ORGANIZATION: &str = "complianceiq.organization.v1.OrganizationService";

/// The platform's mesh policy.
pub fn policy() -> MeshPolicy {
    MeshPolicy::new(vec![
        // The edge forwards what the contracts expose over HTTP, and nothing else; each call
        // still carries the user's token, which the service checks.
        Rule { caller: Caller::Module("gateway"), service: ANY_SERVICE, methods: Methods::Edge },
        // Every module verifies access tokens with the keys auth publishes.
        Rule { caller: Caller::AnyModule, service: AUTH, methods: Methods::Only(&["GetJwks"]) },
        // The edge exchanges API keys for short tokens.
        Rule { caller: Caller::Module("gateway"), service: AUTH, methods: Methods::Only(&["ExchangeApiKey"]) },
        // Inviting a member checks the roles offered against the user service.
        Rule { caller: Caller::Module("organization"), service: USER, methods: Methods::Only(&["ListRoles"]) },
        // Removing a member applies the user service's role rules (privilege, last admin).
        Rule { caller: Caller::Module("organization"), service: USER, methods: Methods::Only(&["CheckMemberRemoval"]) },
        // A person's first single sign-on makes them a member of the organization.
        Rule { caller: Caller::Module("auth"), service: ORGANIZATION, methods: Methods::Only(&["ProvisionSsoMember"]) },
        // Later sign-ins bring provider-managed roles in line with the person's groups; a
        // configuration's roles are checked against the user service as its admin.
        Rule {
            caller: Caller::Module("auth"),
            service: USER,
            methods: Methods::Only(&["ApplyProviderRoles", "ListRoles"]),
        },
        // Syncs hand the records they fetch to the analysis store.
        Rule { caller: Caller::Module("instance"), service: ANALYSIS, methods: Methods::Only(&["IngestRecords"]) },
        // Scheduled reports are mailed through the notification service.
        Rule { caller: Caller::Module("dashboard"), service: NOTIFICATION, methods: Methods::Only(&["DeliverReport"]) },
        // Widgets are deployed with the instance's credentials, which stay in the instance service.
        Rule { caller: Caller::Module("widget"), service: INSTANCE, methods: Methods::Only(&["WriteWidgetRecord"]) },
        // The predictive analysis scores controls with the organization's trained model.
        Rule { caller: Caller::Module("analysis"), service: ML, methods: Methods::Only(&["ScoreControls"]) },
        // Probes and tooling inside the mesh.
        Rule { caller: Caller::AnyModule, service: "grpc.health.v1.Health", methods: Methods::All },
        Rule { caller: Caller::AnyModule, service: "grpc.reflection.v1.ServerReflection", methods: Methods::All },
        Rule { caller: Caller::AnyModule, service: "grpc.reflection.v1alpha.ServerReflection", methods: Methods::All },
    ])
}

/// Port of every process's operations listener (gRPC health and Prometheus metrics), open
/// to probes and scrapers from outside the mesh.
pub const OPS_PORT: u16 = 9090;
/// The labels that select a module's pods.
pub fn workload_labels(module: &str) -> Value {
    json!({"app.kubernetes.io/name": format!("{module}-service")})
}

/// The mesh policy as Istio resources: STRICT mutual TLS for the namespace (the operations
/// port excepted), nothing allowed by default, then per module exactly the paths the table
/// opens to each caller's principal. For `--mesh-mode sidecar`, where Istio's Envoy terminates
/// mutual TLS and can see paths; with `mtls` the modules enforce the same table themselves.
pub fn istio_manifests(policy: &MeshPolicy, scope: &TrustScope) -> Vec<Value> {
    let namespace = scope.namespace.as_str();
    let mut documents = vec![
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": namespace},
            "spec": {"mtls": {"mode": "STRICT"}},
        }),
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "operations-port", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/part-of": "complianceiq"}},
                "mtls": {"mode": "STRICT"},
                "portLevelMtls": {OPS_PORT.to_string(): {"mode": "PERMISSIVE"}},
            },
        }),
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "allow-nothing", "namespace": namespace},
            "spec": {},
        }),
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "operations-port", "namespace": namespace},
            "spec": {"action": "ALLOW", "rules": [{"to": [{"operation": {"ports": [OPS_PORT.to_string()]}}]}]},
        }),
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "gateway-service", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": workload_labels("gateway")},
                "action": "ALLOW",
                "rules": [{"to": [{"operation": {"ports": ["8080"]}}]}],
            },
        }),
    ];
    let modules = crate::modules();
    let callers: Vec<&str> = modules.iter().map(|module| module.name.0).collect();
    for module in modules.iter().filter(|module| module.name.0 != "gateway") {
        let name = module.name.0;
        let mut methods_by_service: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for access in complianceiq_proto::RPC_ACCESS {
            let (service, method) = access.path[1..].split_once('/').expect("a gRPC path");
            if service.strip_prefix("complianceiq.").and_then(|rest| rest.split('.').next()) == Some(name) {
                methods_by_service.entry(service.to_string()).or_default().push(method);
            }
        }
        let mut rules = Vec::new();
        for caller in &callers {
            let mut paths: Vec<String> = methods_by_service
                .iter()
                .flat_map(|(service, methods)| {
                    policy.allowed_methods(caller, service, methods).into_iter().map(move |m| format!("/{service}/{m}"))
                })
                .collect();
            // Rules for every module alike are rendered once, for every principal, below.
            paths.retain(|path| !callers.iter().all(|other| policy.allows(other, path)));
            if !paths.is_empty() {
                rules.push(json!({
                    "from": [{"source": {"principals": [scope.identity(caller).principal()]}}],
                    "to": [{"operation": {"paths": paths}}],
                }));
            }
        }
        let mut shared: Vec<String> = methods_by_service
            .iter()
            .flat_map(|(service, methods)| methods.iter().map(move |m| format!("/{service}/{m}")))
            .filter(|path| callers.iter().all(|caller| policy.allows(caller, path)))
            .collect();
        shared.extend(
            SERVICES_OF_EVERY_SERVER
                .iter()
                .filter(|service| callers.iter().all(|caller| policy.allows(caller, &format!("/{service}/Check"))))
                .map(|service| format!("/{service}/*")),
        );
        if !shared.is_empty() {
            let every_module = format!("{}/ns/{}/sa/*", scope.trust_domain, scope.namespace);
            rules.push(json!({
                "from": [{"source": {"principals": [every_module]}}],
                "to": [{"operation": {"paths": shared}}],
            }));
        }
        documents.push(json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": format!("{name}-service"), "namespace": namespace},
            "spec": {"selector": {"matchLabels": workload_labels(name)}, "action": "ALLOW", "rules": rules},
        }));
    }
    documents
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The module serving a service: `complianceiq.user.v1.UserService` -> `user`.
    fn module_of_service(service: &str) -> Option<&str> {
        service.strip_prefix("complianceiq.")?.split('.').next()
    }

    #[test]
    fn the_table_and_the_modules_declared_calls_agree() {
        let policy = policy();
        let modules = crate::modules();
        for module in &modules {
            let granted: BTreeSet<&str> = policy
                .rules()
                .iter()
                .filter(|rule| rule.caller == Caller::Module(module.name.0) && rule.service != ANY_SERVICE)
                .filter_map(|rule| module_of_service(rule.service))
                .collect();
            let declared: BTreeSet<&str> = module.calls.iter().copied().collect();
            if module.name.0 == "gateway" {
                continue; // it may call every edge RPC of every module it routes
            }
            // Auth's keys are open to every module; declaring auth is not required for them.
            let declared: BTreeSet<&str> = declared.into_iter().filter(|callee| *callee != "auth").collect();
            assert_eq!(granted, declared, "{}: policy grants vs declared calls", module.name.0);
        }
    }

    #[test]
    fn istio_policy_names_each_caller_and_its_methods() {
        let scope = TrustScope { trust_domain: "cluster.local".into(), namespace: "complianceiq".into() };
        let user = istio_manifests(&policy(), &scope)
            .into_iter()
            .find(|document| document["metadata"]["name"] == "user-service")
            .expect("user's policy");
        let rules = user["spec"]["rules"].as_array().unwrap();
        let from_organization = rules
            .iter()
            .find(|rule| {
                rule["from"][0]["source"]["principals"][0] == "cluster.local/ns/complianceiq/sa/organization-service"
            })
            .expect("a rule for organization");
        assert_eq!(
            from_organization["to"][0]["operation"]["paths"],
            json!([
                "/complianceiq.user.v1.UserService/CheckMemberRemoval",
                "/complianceiq.user.v1.UserService/ListRoles"
            ])
        );
        assert!(!rules.iter().any(
            |rule| rule["from"][0]["source"]["principals"][0] == "cluster.local/ns/complianceiq/sa/webhook-service"
        ));
    }

    #[test]
    fn the_gateway_reaches_every_edge_rpc_and_of_the_internal_ones_only_the_key_exchange() {
        let policy = policy();
        let exchange = "/complianceiq.auth.v1.AuthService/ExchangeApiKey";
        for access in complianceiq_proto::RPC_ACCESS {
            let expected = access.edge || access.path == exchange;
            assert_eq!(policy.allows("gateway", access.path), expected, "{}", access.path);
        }
        assert!(!policy.allows("webhook", exchange));
        assert!(!policy.allows("user", "/complianceiq.organization.v1.OrganizationService/GetOrganization"));
        assert!(policy.allows("webhook", "/complianceiq.auth.v1.AuthService/GetJwks"));
        assert!(!policy.allows("webhook", "/complianceiq.auth.v1.AuthService/Login"));
    }
}
