//! The route table: every `google.api.http` binding (primary and additional) of the routed
//! services, checked at start-up (path variables and body fields must exist), and each
//! RPC's access rule, read from the same descriptors.

use std::collections::HashMap;
use std::sync::Arc;

use complianceiq_proto::RpcAccess;
use complianceiq_proto::google::api::{HttpRule, http_rule::Pattern};
use prost_reflect::{
    DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, ServiceDescriptor, Value,
};

use crate::template::{Bindings, PathTemplate};

/// Where the HTTP body goes in the request message.
#[derive(Clone, Debug)]
pub enum BodyMapping {
    /// No body; every field not in the path comes from query parameters.
    None,
    /// `body: "*"`: the body is the request message (minus path fields).
    Whole,
    /// `body: "<field>"`: the body is that field; other fields come from the path and query.
    Field(FieldDescriptor),
}

/// One HTTP binding of an RPC.
#[derive(Clone, Debug)]
pub struct Route {
    pub verb: http::Method,
    pub template: PathTemplate,
    pub method: MethodDescriptor,
    pub body: BodyMapping,
    /// `response_body`: the response field sent as the HTTP body.
    pub response_body: Option<FieldDescriptor>,
    /// `/package.Service/Method`.
    pub rpc_path: String,
    /// 0 for the primary binding, then additional bindings in order.
    pub binding: usize,
}

/// The outcome of looking a request up.
pub enum Lookup {
    Found(Arc<Route>, Bindings),
    /// The path exists for other verbs.
    MethodNotAllowed(Vec<http::Method>),
    NotFound,
}

/// All routes, and the access rule of every routed RPC.
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
    access: HashMap<String, &'static RpcAccess>,
}

/// Resolves `a.b.c` to the chain of fields from `message`.
pub fn resolve_field_path(message: &MessageDescriptor, path: &str) -> Result<Vec<FieldDescriptor>, String> {
    let mut chain = Vec::new();
    let mut current = message.clone();
    let parts: Vec<&str> = path.split('.').collect();
    for (index, part) in parts.iter().enumerate() {
        let field = current
            .get_field_by_name(part)
            .or_else(|| current.get_field_by_json_name(part))
            .ok_or_else(|| format!("{} has no field {part:?}", current.full_name()))?;
        if index + 1 < parts.len() {
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
                _ => return Err(format!("{}.{part} is not a message", current.full_name())),
            }
        }
        chain.push(field);
    }
    Ok(chain)
}

fn access_rule(pool: &DescriptorPool, method: &MethodDescriptor) -> Option<RpcAccess> {
    let extension = pool.get_extension_by_name("complianceiq.common.v1.access")?;
    let options = method.options();
    if !options.has_extension(&extension) {
        return None;
    }
    let Value::Message(access) = options.get_extension(&extension).into_owned() else { return None };
    let field = |name: &str| access.get_field_by_name(name).map(|value| value.into_owned());
    let permission = field("permission").and_then(|v| v.as_str().map(str::to_string)).filter(|p| !p.is_empty());
    // Start-up data, a few hundred bytes per RPC for the life of the process.
    let path: &'static str =
        Box::leak(format!("/{}/{}", method.parent_service().full_name(), method.name()).into_boxed_str());
    Some(RpcAccess {
        path,
        public: field("public").and_then(|v| v.as_bool()).unwrap_or(false),
        permission: permission.map(|p| &*Box::leak(p.into_boxed_str())),
        allow_unscoped: field("allow_unscoped").and_then(|v| v.as_bool()).unwrap_or(false),
        internal: field("internal").and_then(|v| v.as_bool()).unwrap_or(false),
        staff: field("staff").and_then(|v| v.as_bool()).unwrap_or(false),
        open_to_staff: field("open_to_staff").and_then(|v| v.as_bool()).unwrap_or(false),
        edge: pool.get_extension_by_name("google.api.http").is_some_and(|http| options.has_extension(&http)),
        // The edge does not record calls (the module serving one does): unknown RPCs count
        // as mutating, the safe side.
        mutating: complianceiq_proto::rpc_access(path).is_none_or(|rule| rule.mutating),
    })
}

fn http_rule(pool: &DescriptorPool, method: &MethodDescriptor) -> Result<Option<HttpRule>, String> {
    let Some(extension) = pool.get_extension_by_name("google.api.http") else { return Ok(None) };
    let options = method.options();
    if !options.has_extension(&extension) {
        return Ok(None);
    }
    let Value::Message(rule) = options.get_extension(&extension).into_owned() else {
        return Err(format!("{}: google.api.http is not a message", method.full_name()));
    };
    rule.transcode_to::<HttpRule>().map(Some).map_err(|e| format!("{}: {e}", method.full_name()))
}

impl RouteTable {
    /// Builds the table for the services `routed` selects.
    pub fn from_pool(pool: &DescriptorPool, routed: impl Fn(&ServiceDescriptor) -> bool) -> Result<Self, String> {
        let mut routes = Vec::new();
        let mut access = HashMap::new();
        for service in pool.services().filter(|service| routed(service)) {
            for method in service.methods() {
                let rpc_path = format!("/{}/{}", service.full_name(), method.name());
                let rule = access_rule(pool, &method).ok_or_else(|| format!("{rpc_path} states no access rule"))?;
                access.insert(rpc_path.clone(), &*Box::leak(Box::new(rule)));
                let Some(primary) = http_rule(pool, &method)? else { continue };
                let mut rules = vec![primary.clone()];
                rules.extend(primary.additional_bindings.iter().cloned());
                for (binding, rule) in rules.into_iter().enumerate() {
                    routes.push(Arc::new(Self::route(&method, &rpc_path, binding, rule)?));
                }
            }
        }
        Ok(Self { routes, access })
    }

    fn route(method: &MethodDescriptor, rpc_path: &str, binding: usize, rule: HttpRule) -> Result<Route, String> {
        let (verb, path) = match rule.pattern.ok_or_else(|| format!("{rpc_path}: a binding without a pattern"))? {
            Pattern::Get(path) => (http::Method::GET, path),
            Pattern::Put(path) => (http::Method::PUT, path),
            Pattern::Post(path) => (http::Method::POST, path),
            Pattern::Delete(path) => (http::Method::DELETE, path),
            Pattern::Patch(path) => (http::Method::PATCH, path),
            Pattern::Custom(custom) => {
                (http::Method::from_bytes(custom.kind.as_bytes()).map_err(|e| format!("{rpc_path}: {e}"))?, custom.path)
            }
        };
        let template = PathTemplate::parse(&path).map_err(|e| format!("{rpc_path}: {e}"))?;
        let input = method.input();
        for variable in template.variables() {
            let chain = resolve_field_path(&input, variable).map_err(|e| format!("{rpc_path} {path}: {e}"))?;
            let last = chain.last().expect("a path has a field");
            if last.is_list() || last.is_map() || matches!(last.kind(), Kind::Message(_)) {
                return Err(format!("{rpc_path} {path}: {variable} must be a singular scalar field"));
            }
        }
        let body = match rule.body.as_str() {
            "" => BodyMapping::None,
            "*" => BodyMapping::Whole,
            field => BodyMapping::Field(
                input
                    .get_field_by_name(field)
                    .ok_or_else(|| format!("{rpc_path}: body field {field} does not exist"))?,
            ),
        };
        let response_body = match rule.response_body.as_str() {
            "" => None,
            field => Some(
                method
                    .output()
                    .get_field_by_name(field)
                    .ok_or_else(|| format!("{rpc_path}: response_body field {field} does not exist"))?,
            ),
        };
        Ok(Route {
            verb,
            template,
            method: method.clone(),
            body,
            response_body,
            rpc_path: rpc_path.to_string(),
            binding,
        })
    }

    /// The route for a request, preferring the most specific template.
    pub fn lookup(&self, verb: &http::Method, path: &str) -> Lookup {
        let mut best: Option<(&Arc<Route>, Bindings, Vec<u8>)> = None;
        let mut other_verbs = Vec::new();
        for route in &self.routes {
            let Some(bindings) = route.template.matches(path) else { continue };
            if route.verb != *verb {
                if !other_verbs.contains(&route.verb) {
                    other_verbs.push(route.verb.clone());
                }
                continue;
            }
            let specificity = route.template.specificity();
            if best.as_ref().is_none_or(|(_, _, current)| specificity > *current) {
                best = Some((route, bindings, specificity));
            }
        }
        match best {
            Some((route, bindings, _)) => Lookup::Found(route.clone(), bindings),
            None if !other_verbs.is_empty() => Lookup::MethodNotAllowed(other_verbs),
            None => Lookup::NotFound,
        }
    }

    /// Every route.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|route| &**route)
    }

    /// The access rule of a routed RPC (`/package.Service/Method`).
    pub fn access(&self, rpc_path: &str) -> Option<&'static RpcAccess> {
        self.access.get(rpc_path).copied()
    }

    /// Every routed RPC path.
    pub fn rpc_paths(&self) -> impl Iterator<Item = &str> {
        self.access.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let pool = DescriptorPool::decode(complianceiq_proto::FILE_DESCRIPTOR_SET).unwrap();
        RouteTable::from_pool(&pool, |service| service.package_name().starts_with("complianceiq.")).unwrap()
    }

    fn found(table: &RouteTable, verb: http::Method, path: &str) -> (String, Vec<(String, String)>) {
        match table.lookup(&verb, path) {
            Lookup::Found(route, bindings) => (route.rpc_path.clone(), bindings),
            _ => panic!("{verb} {path} has no route"),
        }
    }

    #[test]
    fn the_design_paths_route_to_their_rpcs_with_literals_first() {
        let table = table();
        assert_eq!(
            found(&table, http::Method::GET, "/api/v1/insights/compare").0,
            "/complianceiq.insights.v1.InsightsService/CompareInsights"
        );
        let (rpc, bindings) = found(&table, http::Method::GET, "/api/v1/insights/abc");
        assert_eq!(rpc, "/complianceiq.insights.v1.InsightsService/GetInstanceInsights");
        assert_eq!(bindings, [("instance_id".to_string(), "abc".to_string())]);
        assert_eq!(
            found(&table, http::Method::GET, "/api/v1/widgets/templates").0,
            "/complianceiq.widget.v1.WidgetService/ListWidgetTemplates"
        );
        assert_eq!(
            found(&table, http::Method::GET, "/api/v1/notifications/preferences").0,
            "/complianceiq.notification.v1.NotificationService/GetNotificationPreferences"
        );
        assert_eq!(
            found(&table, http::Method::GET, "/.well-known/jwks.json").0,
            "/complianceiq.auth.v1.AuthService/GetJwks"
        );
        assert_eq!(
            found(&table, http::Method::GET, "/api/v1/auth/jwks").0,
            "/complianceiq.auth.v1.AuthService/GetJwks"
        );
        assert!(matches!(table.lookup(&http::Method::PATCH, "/api/v1/users/me"), Lookup::MethodNotAllowed(_)));
        assert!(matches!(table.lookup(&http::Method::GET, "/api/v2/users"), Lookup::NotFound));
    }

    #[test]
    fn access_rules_from_the_descriptors_equal_the_generated_table() {
        let table = table();
        for rule in complianceiq_proto::RPC_ACCESS {
            assert_eq!(table.access(rule.path), Some(rule), "{}", rule.path);
        }
    }
}
