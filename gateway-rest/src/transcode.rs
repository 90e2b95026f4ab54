//! REST ⇄ gRPC: a request's path variables, query parameters and JSON body become the RPC's
//! request message; the response message becomes proto3 JSON (camelCase names, 64-bit
//! integers as strings, enums by name). Unknown JSON fields and unknown query parameters are
//! refused with INVALID_ARGUMENT naming them.

use base64::Engine;
use complianceiq_kit::error::{ApiError, FieldViolations};
use prost::Message;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, SerializeOptions,
    Value,
};

use crate::routes::{BodyMapping, Route, resolve_field_path};

/// JSON as grpc-gateway writes it (protojson defaults): camelCase, 64-bit as strings, enum
/// names, unpopulated fields omitted.
pub fn output_options() -> SerializeOptions {
    SerializeOptions::new()
        .stringify_64_bit_integers(true)
        .use_enum_numbers(false)
        .use_proto_field_name(false)
        .skip_default_fields(true)
}

fn invalid(field: &str, reason: &str, description: impl Into<String>) -> ApiError {
    ApiError::invalid_field(field, reason, description)
}

/// Parses one textual value (path variable or query parameter) for a field.
fn parse_value(field: &FieldDescriptor, name: &str, raw: &str) -> Result<Value, ApiError> {
    let bad = |expected: &str| invalid(name, "INVALID_VALUE", format!("{name} must be {expected}, not {raw:?}"));
    Ok(match field.kind() {
        Kind::String => Value::String(raw.to_string()),
        Kind::Bool => match raw {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(raw.parse().map_err(|_| bad("a 32-bit integer"))?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(raw.parse().map_err(|_| bad("a 64-bit integer"))?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(raw.parse().map_err(|_| bad("an unsigned 32-bit integer"))?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(raw.parse().map_err(|_| bad("an unsigned 64-bit integer"))?),
        Kind::Float => Value::F32(raw.parse().map_err(|_| bad("a number"))?),
        Kind::Double => Value::F64(raw.parse().map_err(|_| bad("a number"))?),
        Kind::Bytes => Value::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(raw))
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
                .map_err(|_| bad("base64"))?
                .into(),
        ),
        Kind::Enum(descriptor) => {
            let number = descriptor
                .get_value_by_name(raw)
                .map(|value| value.number())
                .or_else(|| raw.parse::<i32>().ok().filter(|n| descriptor.get_value(*n).is_some()));
            let names: Vec<String> = descriptor.values().map(|v| v.name().to_string()).collect();
            Value::EnumNumber(number.ok_or_else(|| bad(&format!("one of {}", names.join(", "))))?)
        }
        Kind::Message(message) => Value::Message(parse_well_known(&message, name, raw)?),
    })
}

/// Timestamps, durations, field masks and wrappers from their JSON string forms.
fn parse_well_known(message: &MessageDescriptor, name: &str, raw: &str) -> Result<DynamicMessage, ApiError> {
    match message.full_name() {
        "google.protobuf.FieldMask" => {
            let mut mask = DynamicMessage::new(message.clone());
            let paths: Vec<Value> =
                raw.split(',').filter(|p| !p.is_empty()).map(|p| Value::String(snake_case(p.trim()))).collect();
            mask.set_field_by_name("paths", Value::List(paths));
            Ok(mask)
        }
        "google.protobuf.Timestamp"
        | "google.protobuf.Duration"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => json_value(message, name, serde_json::Value::String(raw.to_string())),
        full if full.starts_with("google.protobuf.") && full.ends_with("Value") => {
            let literal: serde_json::Value =
                serde_json::from_str(raw).unwrap_or(serde_json::Value::String(raw.to_string()));
            json_value(message, name, literal)
        }
        other => Err(invalid(
            name,
            "UNSUPPORTED",
            format!("{name} is a {other}, which cannot be set from the path or query"),
        )),
    }
}

fn json_value(message: &MessageDescriptor, name: &str, json: serde_json::Value) -> Result<DynamicMessage, ApiError> {
    DynamicMessage::deserialize(message.clone(), json)
        .map_err(|e| invalid(name, "INVALID_VALUE", format!("{name}: {e}")))
}

fn snake_case(path: &str) -> String {
    let mut out = String::new();
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Sets `path` in `message` to a parsed value; lists get the value appended.
fn set_path(message: &mut DynamicMessage, path: &str, raw: &str) -> Result<(), ApiError> {
    let chain = resolve_field_path(&message.descriptor(), path).map_err(|_| {
        invalid(path, "UNKNOWN_FIELD", format!("{path} is not a field of {}", message.descriptor().name()))
    })?;
    let (last, parents) = chain.split_last().expect("a path has a field");
    let mut current = message;
    for field in parents {
        let Value::Message(inner) = current.get_field_mut(field) else {
            return Err(ApiError::internal(format!("{path}: a message field holds another value")));
        };
        current = inner;
    }
    if last.is_map() {
        return Err(invalid(path, "UNSUPPORTED", format!("{path} is a map, which cannot be set from the query")));
    }
    let value = parse_value(last, path, raw)?;
    if last.is_list() {
        if let Value::List(items) = current.get_field_mut(last) {
            items.push(value);
        }
    } else {
        if current.has_field(last) {
            return Err(invalid(path, "REPEATED_PARAMETER", format!("{path} is given more than once")));
        }
        current.set_field(last, value);
    }
    Ok(())
}

/// Builds the request message of a route from the path bindings, the query and the body: JSON,
/// or the raw bytes with their `content_type` where the body is a `google.api.HttpBody` field
/// (grpc-gateway's rule for uploads).
pub fn request_message(
    route: &Route,
    bindings: &[(String, String)],
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let input = route.method.input();
    let deserialize = |json: serde_json::Value| {
        // The path tracker names the offending field (`nested.id`), not just the problem.
        let mut track = serde_path_to_error::Track::new();
        let result = DynamicMessage::deserialize_with_options(
            input.clone(),
            serde_path_to_error::Deserializer::new(json, &mut track),
            &DeserializeOptions::new().deny_unknown_fields(true),
        );
        result.map_err(|e| {
            let path = track.path().to_string();
            let field = if path.is_empty() || path == "." { "body".to_string() } else { path };
            invalid(&field, "INVALID_JSON", format!("the request body does not fit {}: {field}: {e}", input.name()))
        })
    };
    let body_json = || -> Result<Option<serde_json::Value>, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| invalid("body", "INVALID_JSON", format!("the request body is not JSON: {e}")))
    };
    let mut message = match &route.body {
        BodyMapping::None => {
            if !body.iter().all(u8::is_ascii_whitespace) {
                return Err(invalid(
                    "body",
                    "UNEXPECTED_BODY",
                    format!("{} {} takes no body", route.verb, route.template.as_str()),
                ));
            }
            DynamicMessage::new(input.clone())
        }
        BodyMapping::Whole => match body_json()? {
            Some(json) => deserialize(json)?,
            None => DynamicMessage::new(input.clone()),
        },
        BodyMapping::Field(field) if is_http_body(field) => {
            let mut message = DynamicMessage::new(input.clone());
            if let Kind::Message(descriptor) = field.kind() {
                let mut raw = DynamicMessage::new(descriptor);
                raw.set_field_by_name("content_type", Value::String(content_type.unwrap_or_default().to_string()));
                raw.set_field_by_name("data", Value::Bytes(bytes::Bytes::copy_from_slice(body)));
                message.set_field(field, Value::Message(raw));
            }
            message
        }
        BodyMapping::Field(field) => match body_json()? {
            Some(json) => deserialize(serde_json::json!({ field.json_name(): json }))?,
            None => DynamicMessage::new(input.clone()),
        },
    };
    // Path variables win over the body (grpc-gateway's rule).
    for (path, value) in bindings {
        let chain = resolve_field_path(&input, path).map_err(ApiError::internal)?;
        clear_path(&mut message, &chain);
        set_path(&mut message, path, value)?;
    }
    let bound: Vec<&str> = bindings.iter().map(|(path, _)| path.as_str()).collect();
    let mut violations = FieldViolations::default();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let canonical = resolve_field_path(&input, &key)
            .map(|chain| chain.iter().map(|f| f.name().to_string()).collect::<Vec<_>>().join("."))
            .unwrap_or_else(|_| key.to_string());
        let in_body = match &route.body {
            BodyMapping::Whole => true,
            BodyMapping::Field(field) => {
                canonical == field.name() || canonical.starts_with(&format!("{}.", field.name()))
            }
            BodyMapping::None => false,
        };
        if in_body {
            violations.add(&key, "UNEXPECTED_PARAMETER", format!("{key} belongs in the request body"));
        } else if bound.contains(&canonical.as_str()) {
            violations.add(&key, "UNEXPECTED_PARAMETER", format!("{key} is already given in the path"));
        } else if let Err(error) = set_path(&mut message, &key, &value) {
            for violation in error.field_violations() {
                violations.add(&violation.field, &violation.reason, violation.description.clone());
            }
        }
    }
    violations.check()?;
    Ok(message)
}

fn clear_path(message: &mut DynamicMessage, chain: &[FieldDescriptor]) {
    let (last, parents) = chain.split_last().expect("a path has a field");
    let mut current = message;
    for field in parents {
        let Value::Message(inner) = current.get_field_mut(field) else { return };
        current = inner;
    }
    current.clear_field(last);
}

/// The request as protobuf bytes.
pub fn encode(message: &DynamicMessage) -> Vec<u8> {
    message.encode_to_vec()
}

/// A response message as the HTTP body: the whole message, or its `response_body` field.
pub fn response_json(route: &Route, bytes: &[u8]) -> Result<Vec<u8>, ApiError> {
    let message = DynamicMessage::decode(route.method.output(), bytes).map_err(|e| {
        ApiError::internal(format!("{} answered an undecodable {}: {e}", route.rpc_path, route.method.output().name()))
    })?;
    message_json(&message, route.response_body.as_ref())
}

/// The full name of the message whose responses are raw HTTP bodies (grpc-gateway's rule).
pub const HTTP_BODY: &str = "google.api.HttpBody";

/// Whether a request field takes the body raw.
pub fn is_http_body(field: &FieldDescriptor) -> bool {
    matches!(field.kind(), Kind::Message(message) if message.full_name() == HTTP_BODY)
}

/// A `google.api.HttpBody` response: its content type and bytes, sent as they are.
pub fn http_body(route: &Route, bytes: &[u8]) -> Result<(String, Vec<u8>), ApiError> {
    let message = DynamicMessage::decode(route.method.output(), bytes)
        .map_err(|e| ApiError::internal(format!("{} answered an undecodable HttpBody: {e}", route.rpc_path)))?;
    let content_type = match message.get_field_by_name("content_type").as_deref() {
        Some(Value::String(text)) if !text.is_empty() => text.clone(),
        _ => "application/octet-stream".to_string(),
    };
    let data = match message.get_field_by_name("data").as_deref() {
        Some(Value::Bytes(data)) => data.to_vec(),
        _ => Vec::new(),
    };
    Ok((content_type, data))
}

/// A message as JSON, or one field of it.
pub fn message_json(message: &DynamicMessage, field: Option<&FieldDescriptor>) -> Result<Vec<u8>, ApiError> {
    let serialize = |options: &SerializeOptions| {
        message
            .serialize_with_options(serde_json::value::Serializer, options)
            .map_err(|e| ApiError::internal(format!("JSON of {}: {e}", message.descriptor().name())))
    };
    let json = match field.map(|field| (field, message.get_field(field))) {
        None => serialize(&output_options())?,
        Some((_, value)) if matches!(value.as_ref(), Value::Message(_)) => {
            let Value::Message(inner) = value.as_ref() else { unreachable!() };
            return message_json(inner, None);
        }
        Some((field, _)) => {
            // Lists and scalars: unpopulated ones included, so an empty list is still a body.
            let whole = serialize(&output_options().skip_default_fields(false))?;
            whole.get(field.json_name()).cloned().unwrap_or(serde_json::Value::Null)
        }
    };
    serde_json::to_vec(&json).map_err(|e| ApiError::internal(e.to_string()))
}
