//! The mesh policy: which module may call which methods of which service, as one table.
//! Everything not written here is refused. `complianceiq mesh-manifests` renders the same
//! table as Istio policy (k8s/base/mesh), and a test keeps the committed manifests equal to it.

use complianceiq_kit::mesh::MeshPolicy;
use complianceiq_kit::mesh::policy::{ANY_SERVICE, Caller, Methods, Rule};

const AUTH: &str = "complianceiq.auth.v1.AuthService";
const USER: &str = "complianceiq.user.v1.UserService";

/// The platform's mesh policy.
pub fn policy() -> MeshPolicy {
    MeshPolicy::new(vec![
        // The edge forwards what the contracts expose over HTTP, and nothing else; each call
        // still carries the user's token, which the service checks.
        Rule { caller: Caller::Module("gateway"), service: ANY_SERVICE, methods: Methods::Edge },
        // Every module verifies access tokens with the keys auth publishes.
        Rule { caller: Caller::AnyModule, service: AUTH, methods: Methods::Only(&["GetJwks"]) },
        // Inviting a member checks the roles offered against the user service.
        Rule { caller: Caller::Module("organization"), service: USER, methods: Methods::Only(&["ListRoles"]) },
        // Probes and tooling inside the mesh.
        Rule { caller: Caller::AnyModule, service: "grpc.health.v1.Health", methods: Methods::All },
        Rule { caller: Caller::AnyModule, service: "grpc.reflection.v1.ServerReflection", methods: Methods::All },
        Rule { caller: Caller::AnyModule, service: "grpc.reflection.v1alpha.ServerReflection", methods: Methods::All },
    ])
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
    fn the_gateway_reaches_every_edge_rpc_and_nothing_internal() {
        let policy = policy();
        for access in complianceiq_proto::RPC_ACCESS {
            assert_eq!(policy.allows("gateway", access.path), access.edge, "{}", access.path);
        }
        assert!(!policy.allows("user", "/complianceiq.organization.v1.OrganizationService/GetOrganization"));
        assert!(policy.allows("webhook", "/complianceiq.auth.v1.AuthService/GetJwks"));
        assert!(!policy.allows("webhook", "/complianceiq.auth.v1.AuthService/Login"));
    }
}
