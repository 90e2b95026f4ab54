//! The OpenAPI 3.0 document of the REST API, generated from the same descriptors the
//! gateway routes with: nothing is restated by hand. Message schemas mark OUTPUT_ONLY fields
//! readOnly and INPUT_ONLY ones writeOnly; request bodies and parameters mark REQUIRED
//! fields required; operations that are not public require the bearer JWT.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value};
use serde_json::{Map, json};

use crate::routes::{BodyMapping, Route, RouteTable};

const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
const INPUT_ONLY: i32 = 4;

/// Leading comments of messages, fields and methods, by full name.
fn comments(pool: &DescriptorPool) -> HashMap<String, String> {
    fn walk_message(
        prefix: &str,
        path: &[i32],
        message: &prost_types::DescriptorProto,
        locations: &HashMap<Vec<i32>, String>,
        out: &mut HashMap<String, String>,
    ) {
        let name = format!("{prefix}.{}", message.name());
        if let Some(comment) = locations.get(path) {
            out.insert(name.clone(), comment.clone());
        }
        for (index, field) in message.field.iter().enumerate() {
            let mut field_path = path.to_vec();
            field_path.extend([2, index as i32]);
            if let Some(comment) = locations.get(&field_path) {
                out.insert(format!("{name}.{}", field.name()), comment.clone());
            }
        }
        for (index, nested) in message.nested_type.iter().enumerate() {
            let mut nested_path = path.to_vec();
            nested_path.extend([3, index as i32]);
            walk_message(&name, &nested_path, nested, locations, out);
        }
    }
    let mut out = HashMap::new();
    for file in pool.files() {
        let proto = file.file_descriptor_proto();
        let locations: HashMap<Vec<i32>, String> = proto
            .source_code_info
            .iter()
            .flat_map(|info| info.location.iter())
            .filter_map(|loc| loc.leading_comments.as_ref().map(|c| (loc.path.clone(), c.trim().to_string())))
            .collect();
        if locations.is_empty() {
            continue;
        }
        let package = proto.package();
        for (index, message) in proto.message_type.iter().enumerate() {
            walk_message(package, &[4, index as i32], message, &locations, &mut out);
        }
        for (service_index, service) in proto.service.iter().enumerate() {
            for (index, method) in service.method.iter().enumerate() {
                if let Some(comment) = locations.get(&vec![6, service_index as i32, 2, index as i32]) {
                    out.insert(format!("{package}.{}.{}", service.name(), method.name()), comment.clone());
                }
            }
        }
    }
    out
}

fn behaviors(pool: &DescriptorPool, field: &FieldDescriptor) -> Vec<i32> {
    let Some(extension) = pool.get_extension_by_name("google.api.field_behavior") else { return Vec::new() };
    let options = field.options();
    if !options.has_extension(&extension) {
        return Vec::new();
    }
    match options.get_extension(&extension).as_ref() {
        Value::List(values) => values.iter().filter_map(|value| value.as_enum_number()).collect(),
        _ => Vec::new(),
    }
}

fn browser_redirect(pool: &DescriptorPool, method: &MethodDescriptor) -> bool {
    let Some(extension) = pool.get_extension_by_name("complianceiq.common.v1.browser_redirect") else { return false };
    let options = method.options();
    options.has_extension(&extension) && options.get_extension(&extension).as_bool() == Some(true)
}

struct Generator<'a> {
    pool: &'a DescriptorPool,
    comments: HashMap<String, String>,
    schemas: BTreeMap<String, serde_json::Value>,
    pending: Vec<MessageDescriptor>,
}

fn reference(message: &MessageDescriptor) -> serde_json::Value {
    json!({ "$ref": format!("#/components/schemas/{}", message.full_name()) })
}

impl Generator<'_> {
    fn well_known(message: &MessageDescriptor) -> Option<serde_json::Value> {
        Some(match message.full_name() {
            "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
            "google.protobuf.Duration" => json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"}),
            "google.protobuf.FieldMask" => json!({"type": "string", "description": "Comma-separated field paths."}),
            "google.protobuf.Empty" => json!({"type": "object"}),
            "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
            "google.protobuf.Value" => json!({}),
            "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
            "google.protobuf.Any" => json!({
                "type": "object",
                "properties": {"@type": {"type": "string"}},
                "required": ["@type"],
                "additionalProperties": true
            }),
            "google.protobuf.StringValue" => json!({"type": "string"}),
            "google.protobuf.BytesValue" => json!({"type": "string", "format": "byte"}),
            "google.protobuf.BoolValue" => json!({"type": "boolean"}),
            "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => json!({"type": "number"}),
            "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({"type": "integer"}),
            "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
                json!({"type": "string", "format": "int64"})
            }
            _ => return None,
        })
    }

    fn message_ref(&mut self, message: &MessageDescriptor) -> serde_json::Value {
        if let Some(schema) = Self::well_known(message) {
            return schema;
        }
        if !self.schemas.contains_key(message.full_name()) && !self.pending.iter().any(|m| m == message) {
            self.pending.push(message.clone());
        }
        reference(message)
    }

    fn kind_schema(&mut self, kind: &Kind) -> serde_json::Value {
        match kind {
            Kind::String => json!({"type": "string"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({"type": "integer", "format": "int32"}),
            Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int64", "minimum": 0}),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Enum(descriptor) => {
                json!({"type": "string", "enum": descriptor.values().map(|v| v.name().to_string()).collect::<Vec<_>>()})
            }
            Kind::Message(message) => self.message_ref(message),
        }
    }

    fn field_schema(&mut self, field: &FieldDescriptor) -> serde_json::Value {
        let mut schema = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { unreachable!("a map field is a message of entries") };
            let value = entry.map_entry_value_field();
            json!({"type": "object", "additionalProperties": self.kind_schema(&value.kind())})
        } else if field.is_list() {
            json!({"type": "array", "items": self.kind_schema(&field.kind())})
        } else {
            self.kind_schema(&field.kind())
        };
        let behaviors = behaviors(self.pool, field);
        let mut extra = Map::new();
        if behaviors.contains(&OUTPUT_ONLY) {
            extra.insert("readOnly".into(), json!(true));
        }
        if behaviors.contains(&INPUT_ONLY) {
            extra.insert("writeOnly".into(), json!(true));
        }
        if let Some(comment) = self.comments.get(field.full_name()) {
            extra.insert("description".into(), json!(comment));
        }
        if extra.is_empty() {
            return schema;
        }
        // Keywords beside a $ref are ignored in OpenAPI 3.0; wrap the reference.
        if schema.get("$ref").is_some() {
            schema = json!({"allOf": [schema]});
        }
        let object = schema.as_object_mut().expect("schemas are objects");
        object.extend(extra);
        schema
    }

    fn build_schema(&mut self, message: &MessageDescriptor) -> serde_json::Value {
        let mut properties = Map::new();
        for field in message.fields() {
            let schema = self.field_schema(&field);
            properties.insert(field.json_name().to_string(), schema);
        }
        let mut schema = json!({"type": "object", "properties": properties, "additionalProperties": false});
        if let Some(comment) = self.comments.get(message.full_name()) {
            schema["description"] = json!(comment);
        }
        schema
    }

    fn drain(&mut self) {
        while let Some(message) = self.pending.pop() {
            if self.schemas.contains_key(message.full_name()) {
                continue;
            }
            // Placeholder first, so self-referencing messages terminate.
            self.schemas.insert(message.full_name().to_string(), json!({}));
            let schema = self.build_schema(&message);
            self.schemas.insert(message.full_name().to_string(), schema);
        }
    }

    /// Query parameters: leaf fields not bound by the path or the body, nested messages
    /// flattened with dots (`period.startTime`), named by their JSON names.
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: &str,
        excluded: &BTreeSet<String>,
        depth: usize,
        out: &mut Vec<serde_json::Value>,
    ) {
        for field in message.fields() {
            let proto_path =
                if prefix.is_empty() { field.name().to_string() } else { format!("{prefix}.{}", field.name()) };
            if excluded.contains(&proto_path) || field.is_map() {
                continue;
            }
            let json_path = proto_path.split('.').map(json_name).collect::<Vec<_>>().join(".");
            match field.kind() {
                Kind::Message(inner) if Self::well_known(&inner).is_none() => {
                    if !field.is_list() && depth < 3 {
                        self.query_parameters(&inner, &proto_path, excluded, depth + 1, out);
                    }
                }
                _ => {
                    let mut schema = self.field_schema(&field);
                    if let Some(object) = schema.as_object_mut() {
                        object.remove("readOnly");
                    }
                    let required = depth == 0 && behaviors(self.pool, &field).contains(&REQUIRED);
                    let mut parameter =
                        json!({"name": json_path, "in": "query", "required": required, "schema": schema});
                    if field.is_list() {
                        parameter["style"] = json!("form");
                        parameter["explode"] = json!(true);
                    }
                    if behaviors(self.pool, &field).contains(&OUTPUT_ONLY) {
                        continue;
                    }
                    out.push(parameter);
                }
            }
        }
    }

    fn operation(&mut self, route: &Route, public: bool, seen_ids: &mut BTreeSet<String>) -> serde_json::Value {
        let method = &route.method;
        let service = method.parent_service();
        let mut operation_id = format!("{}_{}", service.name(), method.name());
        if route.binding > 0 || seen_ids.contains(&operation_id) {
            operation_id = format!("{operation_id}_{}", route.binding + 1);
        }
        seen_ids.insert(operation_id.clone());
        let input = method.input();
        let mut parameters = Vec::new();
        let mut excluded: BTreeSet<String> = BTreeSet::new();
        for variable in route.template.variables() {
            let chain = crate::routes::resolve_field_path(&input, variable).expect("checked when routing");
            let last = chain.last().expect("a field");
            let schema = self.field_schema(last);
            parameters.push(json!({"name": variable, "in": "path", "required": true, "schema": schema}));
            excluded.insert(chain.iter().map(|f| f.name().to_string()).collect::<Vec<_>>().join("."));
        }
        let mut request_body = None;
        match &route.body {
            BodyMapping::Whole => {
                let mut properties = Map::new();
                let mut required = Vec::new();
                for field in input.fields().filter(|f| !excluded.contains(f.name())) {
                    if behaviors(self.pool, &field).contains(&REQUIRED) {
                        required.push(json!(field.json_name()));
                    }
                    let schema = self.field_schema(&field);
                    properties.insert(field.json_name().to_string(), schema);
                }
                let mut schema = json!({"type": "object", "properties": properties, "additionalProperties": false});
                if !required.is_empty() {
                    schema["required"] = json!(required);
                }
                request_body = Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}));
            }
            BodyMapping::Field(field) => {
                excluded.insert(field.name().to_string());
                let required = behaviors(self.pool, field).contains(&REQUIRED);
                let content = if crate::transcode::is_http_body(field) {
                    // An upload: the body is the file itself.
                    json!({"*/*": {"schema": {"type": "string", "format": "binary"}}})
                } else {
                    json!({"application/json": {"schema": self.field_schema(field)}})
                };
                request_body = Some(json!({"required": required, "content": content}));
                self.query_parameters(&input, "", &excluded, 0, &mut parameters);
            }
            BodyMapping::None => self.query_parameters(&input, "", &excluded, 0, &mut parameters),
        }
        let response_schema = match &route.response_body {
            Some(field) => self.field_schema(field),
            None => self.message_ref(&method.output()),
        };
        let status = self.pool.get_message_by_name("google.rpc.Status").expect("google.rpc.Status is in the pool");
        let error_schema = self.message_ref(&status);
        let comment = self.comments.get(method.full_name()).cloned().unwrap_or_default();
        // A google.api.HttpBody answer is the file itself, of the type it names.
        let success = if method.output().full_name() == crate::transcode::HTTP_BODY {
            json!({"description": "The file.", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}})
        } else if method.is_server_streaming() {
            // The gateway's framing of a server stream: one JSON object per line.
            let line = json!({"type": "object", "properties": {"result": response_schema, "error": error_schema}});
            json!({
                "description": "A stream: one line per message, `{\"result\": …}`, or `{\"error\": …}` if it fails.",
                "content": {"application/x-ndjson": {"schema": line}}
            })
        } else {
            json!({"description": "The response.", "content": {"application/json": {"schema": response_schema}}})
        };
        let mut operation = json!({
            "operationId": operation_id,
            "tags": [service.name()],
            "summary": comment.lines().next().unwrap_or(method.name()),
            "parameters": parameters,
            "responses": {
                "200": success,
                "default": {
                    "description": "An error: a google.rpc.Status with details.",
                    "content": {"application/json": {"schema": error_schema}}
                }
            }
        });
        if !comment.is_empty() {
            operation["description"] = json!(comment);
        }
        if let Some(body) = request_body {
            operation["requestBody"] = body;
        }
        if public {
            operation["security"] = json!([]);
        }
        if browser_redirect(self.pool, method) {
            operation["responses"]["303"] = json!({
                "description": "The browser is sent on to `Location`.",
                "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
                "content": {"text/plain": {"schema": {"type": "string"}}}
            });
        }
        operation
    }
}

fn json_name(proto_name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in proto_name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The OpenAPI document of every route in `table`.
pub fn document(pool: &DescriptorPool, table: &RouteTable, title: &str, version: &str) -> serde_json::Value {
    let mut generator = Generator { pool, comments: comments(pool), schemas: BTreeMap::new(), pending: Vec::new() };
    let mut paths: BTreeMap<String, Map<String, serde_json::Value>> = BTreeMap::new();
    let mut seen_ids = BTreeSet::new();
    let mut tags = BTreeSet::new();
    for route in table.routes() {
        let public = table.access(&route.rpc_path).is_some_and(|rule| rule.public);
        let operation = generator.operation(route, public, &mut seen_ids);
        tags.insert(route.method.parent_service().name().to_string());
        paths.entry(route.template.openapi_path()).or_default().insert(route.verb.as_str().to_lowercase(), operation);
        generator.drain();
    }
    generator.drain();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "Generated from the ComplianceIQ protobuf contracts (google.api.http). \
                            Errors are google.rpc.Status JSON; 64-bit integers are strings."
        },
        "servers": [{"url": "/"}],
        "tags": tags.into_iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "schemas": generator.schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT or API key",
                    "description": "A person's access token (JWT), or an organization API key (`ciq_...`)."
                },
                "apiKeyAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "An organization API key (`ciq_...`), instead of the Authorization header."
                }
            }
        },
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated() -> serde_json::Value {
        let pool = DescriptorPool::decode(complianceiq_proto::FILE_DESCRIPTOR_SET).unwrap();
        let table = RouteTable::from_pool(&pool, |s| s.package_name().starts_with("complianceiq.")).unwrap();
        document(&pool, &table, "ComplianceIQ", "v1")
    }

    #[test]
    fn every_design_endpoint_is_documented_with_security_where_needed() {
        let document = generated();
        let paths = document["paths"].as_object().unwrap();
        let operations: usize = paths.values().map(|item| item.as_object().unwrap().len()).sum();
        // Every RPC (156) but the seven internal ones without a binding (IngestRecords,
        // ExchangeApiKey, DeliverReport, WriteWidgetRecord, ScoreControls, ProvisionSsoMember,
        // ApplyProviderRoles),
        // plus the JWKS's second binding.
        assert_eq!(operations, 156 - 7 + 1, "every edge RPC, plus the JWKS's second binding");
        let login = &document["paths"]["/api/v1/auth/login"]["post"];
        assert_eq!(login["security"], json!([]));
        assert_eq!(
            login["requestBody"]["content"]["application/json"]["schema"]["required"],
            json!(["email", "password"])
        );
        let get = &document["paths"]["/api/v1/organizations/{org_id}"]["get"];
        assert!(get.get("security").is_none(), "protected by the global bearer requirement");
        let stream = &document["paths"]["/api/v1/notifications:stream"]["get"]["responses"]["200"]["content"];
        assert_eq!(
            stream["application/x-ndjson"]["schema"]["properties"]["result"]["$ref"],
            "#/components/schemas/complianceiq.notification.v1.StreamNotificationsResponse",
            "a server stream is documented as the gateway frames it"
        );
        let callback = &document["paths"]["/api/v1/auth/sso/oidc/callback"]["get"]["responses"];
        assert_eq!(callback["303"]["content"]["text/plain"]["schema"]["type"], "string", "a browser redirect");
        let download = &document["paths"]["/api/v1/insights/exports/{export_id}/download"]["get"]["responses"];
        assert!(download.get("303").is_none(), "a download never redirects");
        assert_eq!(
            get["parameters"][0],
            json!({"name": "org_id", "in": "path", "required": true, "schema": {"type": "string", "description": "The organization id."}})
        );
    }

    #[test]
    fn schemas_follow_the_proto3_json_mapping() {
        let document = generated();
        let organization =
            &document["components"]["schemas"]["complianceiq.organization.v1.Organization"]["properties"];
        assert_eq!(organization["displayName"]["type"], "string");
        assert_eq!(organization["createTime"]["format"], "date-time");
        assert_eq!(organization["createTime"]["readOnly"], true);
        assert_eq!(organization["state"]["enum"][1], "ORGANIZATION_STATE_ACTIVE");
        let usage = &document["components"]["schemas"]["complianceiq.organization.v1.UsageQuota"]["properties"];
        assert_eq!(
            usage["used"],
            json!({"type": "string", "format": "int64", "description": "Amount used in the period."})
        );
        let list = &document["paths"]["/api/v1/users"]["get"]["parameters"];
        let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["pageSize", "pageToken", "roleId", "state", "query"]);
        let search = &document["paths"]["/api/v1/insights/search"]["get"]["parameters"];
        let names: Vec<&str> = search.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"period.startTime") && names.contains(&"instanceIds"), "{names:?}");
    }
}
