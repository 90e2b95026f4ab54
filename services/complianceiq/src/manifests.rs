//! The Kubernetes manifests that follow from the module table and the mesh policy, rendered
//! by `complianceiq manifests` into k8s/ (a test fails when the committed files differ):
//! one ServiceAccount, Service, Deployment and PodDisruptionBudget per module, HPAs for the
//! busy ones, cert-manager Certificates carrying each module's SPIFFE identity, and the Istio
//! policy. Everything else in k8s/ is written by hand.

use std::path::Path;

use complianceiq_kit::Module;
use complianceiq_kit::mesh::{MeshPolicy, TrustScope};
use serde_json::{Value, json};

use crate::mesh_policy::{OPS_PORT, istio_manifests, workload_labels};
use crate::nats_policy::{ServerTls, password_variable, server_config};

/// Generated files, relative to the repository root.
pub const WORKLOADS_PATH: &str = "k8s/base/workloads.yaml";
/// cert-manager Certificates for built-in mutual TLS.
pub const CERTIFICATES_PATH: &str = "k8s/components/cert-manager/certificates.yaml";
/// Istio PeerAuthentication and AuthorizationPolicy, for sidecar mode.
pub const ISTIO_PATH: &str = "k8s/components/istio/istio-policy.yaml";
/// The development NATS server's configuration: a user per module, TLS.
pub const NATS_CONFIG_PATH: &str = "k8s/data/nats-config.yaml";
/// Placeholders of the modules' NATS passwords.
pub const NATS_USERS_PATH: &str = "k8s/base/nats-users.yaml";
/// The development overlay's NATS passwords.
pub const DEV_NATS_USERS_PATH: &str = "k8s/overlays/dev/nats-users.yaml";
/// The platform's subjects and stream on NATS (the defaults of `serve`).
const NATS_SUBJECT_PREFIX: &str = "complianceiq";
const NATS_STREAM: &str = "COMPLIANCEIQ_EVENTS";
/// Where the NATS server's CA certificate is mounted (dev: the nats-tls secret).
const NATS_CA_DIR: &str = "/etc/complianceiq/nats";

/// Where a container finds its mesh certificate (`<dir>/<module>/{tls.crt,tls.key,ca.crt}`).
const MESH_CERT_DIR: &str = "/etc/complianceiq/mesh";
const JWT_KEYS_DIR: &str = "/etc/complianceiq/jwt";
const IMAGE: &str = "ghcr.io/complianceiq/complianceiq:latest";

/// How a module runs in the cluster.
struct Sizing {
    /// Replicas from the design (the gateway, which replaces Kong, gets three).
    replicas: u32,
    /// Busy modules scale out on CPU between `replicas` and this.
    max_replicas: Option<u32>,
    requests: (&'static str, &'static str),
    limits: (&'static str, &'static str),
}

fn sizing(module: &str) -> Sizing {
    let standard =
        |replicas| Sizing { replicas, max_replicas: None, requests: ("100m", "128Mi"), limits: ("1", "512Mi") };
    match module {
        "analysis" => Sizing { replicas: 5, max_replicas: Some(15), requests: ("500m", "512Mi"), limits: ("2", "2Gi") },
        "ml" => Sizing { replicas: 2, max_replicas: None, requests: ("500m", "512Mi"), limits: ("2", "2Gi") },
        "insights" | "dashboard" => Sizing { max_replicas: Some(10), ..standard(3) },
        "gateway" => Sizing { max_replicas: Some(12), requests: ("250m", "256Mi"), ..standard(3) },
        "auth" | "user" | "organization" | "instance" => standard(3),
        _ => standard(2),
    }
}

fn labels(module: &str) -> Value {
    let mut labels = workload_labels(module);
    labels["app.kubernetes.io/part-of"] = json!("complianceiq");
    labels["app.kubernetes.io/component"] = json!(module);
    labels
}

fn service_account(module: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": format!("{module}-service"), "labels": labels(module)},
        "automountServiceAccountToken": false,
    })
}

fn service(module: &Module) -> Value {
    let name = module.name.0;
    // Istio picks the protocol from the port name.
    let (port_name, app_protocol) = if name == "gateway" { ("http", "http") } else { ("grpc", "grpc") };
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": format!("{name}-service"), "labels": labels(name)},
        "spec": {
            "type": "ClusterIP",
            "selector": workload_labels(name),
            "ports": [
                {"name": port_name, "port": module.port, "targetPort": port_name, "appProtocol": app_protocol},
                {"name": "http-ops", "port": OPS_PORT, "targetPort": "http-ops", "appProtocol": "http"},
            ],
        },
    })
}

fn deployment(module: &Module) -> Value {
    let name = module.name.0;
    let sizing = sizing(name);
    let main_port = if name == "gateway" { "http" } else { "grpc" };
    let mut env = vec![
        json!({"name": "CIQ_TARGET", "value": name}),
        json!({"name": "CIQ_MESH_CERT_DIR", "value": MESH_CERT_DIR}),
        json!({"name": "OTEL_SERVICE_NAME", "value": format!("{name}-service")}),
        // The module's own NATS user: the server lets it publish only its own events.
        json!({"name": "CIQ_NATS_USER", "value": name}),
        json!({"name": "CIQ_NATS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "complianceiq-nats-users", "key": password_variable(name)}}}),
    ];
    let mut mounts = vec![
        json!({"name": "mesh-certificate", "mountPath": format!("{MESH_CERT_DIR}/{name}"), "readOnly": true}),
        json!({"name": "nats-ca", "mountPath": NATS_CA_DIR, "readOnly": true}),
        json!({"name": "data", "mountPath": "/var/lib/complianceiq"}),
    ];
    let mut volumes = vec![
        // Optional: behind an Istio sidecar (CIQ_MESH_MODE=sidecar) no certificate is mounted.
        json!({"name": "mesh-certificate", "secret": {"secretName": format!("{name}-service-mesh-tls"), "optional": true}}),
        // The CA of the in-cluster NATS server (k8s/data); CIQ_NATS_CA_FILE points into it.
        json!({"name": "nats-ca", "secret": {"secretName": "nats-tls", "optional": true, "items": [{"key": "ca.crt", "path": "ca.crt"}]}}),
        json!({"name": "data", "emptyDir": {"sizeLimit": "256Mi"}}),
    ];
    if name == "auth" {
        env.push(json!({"name": "CIQ_JWT_KEYS_DIR", "value": JWT_KEYS_DIR}));
        mounts.push(json!({"name": "jwt-keys", "mountPath": JWT_KEYS_DIR, "readOnly": true}));
        volumes.push(json!({"name": "jwt-keys", "secret": {"secretName": "complianceiq-jwt-keys"}}));
    }
    let probe = |period: u32, failures: u32| json!({"grpc": {"port": OPS_PORT}, "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": failures});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": format!("{name}-service"), "labels": labels(name)},
        "spec": {
            "replicas": sizing.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": workload_labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels(name),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": OPS_PORT.to_string(),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": format!("{name}-service"),
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": workload_labels(name)},
                    }],
                    "containers": [{
                        "name": name,
                        "image": IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["serve"],
                        "envFrom": [
                            {"configMapRef": {"name": "complianceiq-config"}},
                            {"secretRef": {"name": "complianceiq-secrets"}},
                        ],
                        "env": env,
                        "ports": [
                            {"name": main_port, "containerPort": module.port, "protocol": "TCP"},
                            {"name": "http-ops", "containerPort": OPS_PORT, "protocol": "TCP"},
                        ],
                        "startupProbe": probe(2, 30),
                        "readinessProbe": probe(5, 3),
                        "livenessProbe": probe(10, 3),
                        "resources": {
                            "requests": {"cpu": sizing.requests.0, "memory": sizing.requests.1},
                            "limits": {"cpu": sizing.limits.0, "memory": sizing.limits.1},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    })
}

fn disruption_budget(module: &str) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": format!("{module}-service"), "labels": labels(module)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": workload_labels(module)}},
    })
}

fn autoscaler(module: &str, min: u32, max: u32) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": format!("{module}-service"), "labels": labels(module)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("{module}-service")},
            "minReplicas": min,
            "maxReplicas": max,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            }],
            // Scale in slowly: analysis runs are long.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    })
}

fn certificate(module: &str, scope: &TrustScope) -> Value {
    let service = format!("{module}-service");
    let namespace = &scope.namespace;
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": format!("{service}-mesh"), "labels": labels(module)},
        "spec": {
            "secretName": format!("{service}-mesh-tls"),
            "issuerRef": {"name": "complianceiq-mesh-ca", "kind": "Issuer"},
            "duration": "720h",
            "renewBefore": "240h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
            "uris": [scope.identity(module).to_string()],
            "dnsNames": [service.clone(), format!("{service}.{namespace}"), format!("{service}.{namespace}.svc")],
        },
    })
}

fn header(what: &str) -> String {
    format!(
        "# Generated by `complianceiq manifests` ({what}).\n\
         # Do not edit: change the code and render again (a test compares this file with it).\n"
    )
}

fn documents(header: String, documents: impl IntoIterator<Item = Value>) -> String {
    let mut out = header;
    for document in documents {
        out.push_str("---\n");
        yaml(&document, 0, &mut out);
    }
    out
}

/// Deployments, Services, ServiceAccounts, PDBs and HPAs of every module.
pub fn workloads(modules: &[Module]) -> String {
    let mut all = Vec::new();
    for module in modules {
        let name = module.name.0;
        all.extend([service_account(name), service(module), deployment(module), disruption_budget(name)]);
        let sizing = sizing(name);
        if let Some(max) = sizing.max_replicas {
            all.push(autoscaler(name, sizing.replicas, max));
        }
    }
    documents(header("module table, services/complianceiq/src/manifests.rs"), all)
}

/// One cert-manager Certificate per module, with its SPIFFE identity.
pub fn certificates(modules: &[Module], scope: &TrustScope) -> String {
    documents(
        header("module table, services/complianceiq/src/manifests.rs"),
        modules.iter().map(|module| certificate(module.name.0, scope)),
    )
}

/// The development NATS server's configuration (a ConfigMap): JetStream, TLS with the
/// certificate cert-manager issues, a user per module with the permissions of
/// [`crate::nats_policy`], passwords from the server's environment.
fn nats_config(modules: &[Module]) -> String {
    let tls = ServerTls { cert_file: "/etc/nats/tls/tls.crt".into(), key_file: "/etc/nats/tls/tls.key".into() };
    let config = server_config(
        modules,
        NATS_SUBJECT_PREFIX,
        NATS_STREAM,
        "0.0.0.0:4222",
        "/data",
        |module| format!("${}", password_variable(module)),
        Some(&tls),
    );
    documents(
        header("event ownership, services/complianceiq/src/event_owners.rs"),
        [json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "nats-config", "labels": {"app.kubernetes.io/name": "nats"}},
            "data": {"nats.conf": format!("http: 8222\n{config}")},
        })],
    )
}

/// The modules' NATS passwords: placeholders in the base, obviously fake ones for dev.
fn nats_users(modules: &[Module], value: impl Fn(&str) -> String) -> String {
    let passwords: serde_json::Map<String, Value> =
        modules.iter().map(|module| (password_variable(module.name.0), Value::String(value(module.name.0)))).collect();
    documents(
        header("module table, services/complianceiq/src/manifests.rs"),
        [json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "complianceiq-nats-users", "labels": {"app.kubernetes.io/part-of": "complianceiq"}},
            "type": "Opaque",
            "stringData": passwords,
        })],
    )
}

/// Every generated file: (path relative to the repository root, contents).
pub fn render(modules: &[Module], policy: &MeshPolicy, scope: &TrustScope) -> Vec<(&'static str, String)> {
    vec![
        (NATS_CONFIG_PATH, nats_config(modules)),
        (NATS_USERS_PATH, nats_users(modules, |_| "REPLACE-ME".into())),
        (DEV_NATS_USERS_PATH, nats_users(modules, |module| format!("dev-only-{module}"))),
        (WORKLOADS_PATH, workloads(modules)),
        (CERTIFICATES_PATH, certificates(modules, scope)),
        (
            ISTIO_PATH,
            documents(header("mesh policy, services/complianceiq/src/mesh_policy.rs"), istio_manifests(policy, scope)),
        ),
    ]
}

/// Writes the files under `root`, or (with `check`) lists those that differ.
pub fn write_or_check(root: &Path, files: &[(&'static str, String)], check: bool) -> Result<Vec<&'static str>, String> {
    let mut differing = Vec::new();
    for (path, contents) in files {
        let target = root.join(path);
        let current = std::fs::read_to_string(&target).unwrap_or_default();
        if current == *contents {
            continue;
        }
        differing.push(*path);
        if !check {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&target, contents).map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    Ok(differing)
}

/// Block-style YAML for JSON values (strings quoted, so no value is misread).
fn yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let key = yaml_key(key);
                match value {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml(value, indent + 2, out);
                    }
                    Value::Array(items) if !items.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml(value, indent, out);
                    }
                    // A file's text (a config) reads best as a literal block.
                    Value::String(text) if text.ends_with('\n') && !text.contains(['\t', '\r']) => {
                        out.push_str(&format!("{pad}{key}: |\n"));
                        for line in text.lines() {
                            let line = if line.is_empty() { String::new() } else { format!("{pad}  {line}") };
                            out.push_str(&format!("{line}\n"));
                        }
                    }
                    scalar => out.push_str(&format!("{pad}{key}: {}\n", inline(scalar))),
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                let mut nested = String::new();
                yaml(item, indent + 2, &mut nested);
                let nested = if matches!(item, Value::Object(map) if !map.is_empty())
                    || matches!(item, Value::Array(list) if !list.is_empty())
                {
                    nested
                } else {
                    format!("{}{}\n", " ".repeat(indent + 2), inline(item))
                };
                // The first line of the item goes after the dash.
                out.push_str(&format!("{pad}- {}", &nested[indent + 2..]));
            }
        }
        scalar => out.push_str(&format!("{pad}{}\n", inline(scalar))),
    }
}

/// A mapping key, quoted unless YAML would read it as a string anyway (`9090` would be
/// an integer, `on` a boolean).
fn yaml_key(key: &str) -> String {
    let plain = key.chars().next().is_some_and(|first| first.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain { key.to_string() } else { Value::String(key.to_string()).to_string() }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> TrustScope {
        TrustScope { trust_domain: "cluster.local".into(), namespace: "complianceiq".into() }
    }

    #[test]
    fn the_committed_manifests_are_the_rendered_ones() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let files = render(&crate::modules(), &crate::mesh_policy(), &scope());
        let differing = write_or_check(&root, &files, true).unwrap();
        assert!(
            differing.is_empty(),
            "{differing:?} differ from the code; run `cargo run --bin complianceiq -- manifests` and commit"
        );
    }

    #[test]
    fn replicas_follow_the_design_and_every_module_is_deployed() {
        let modules = crate::modules();
        let rendered = workloads(&modules);
        for module in &modules {
            assert!(rendered.contains(&format!("  name: \"{}-service\"\n", module.name.0)), "{}", module.name.0);
        }
        assert_eq!(sizing("analysis").replicas, 5);
        assert_eq!(sizing("auth").replicas, 3);
        assert_eq!(sizing("webhook").replicas, 2);
        // Only auth holds the token signing keys.
        assert_eq!(rendered.matches("complianceiq-jwt-keys").count(), 1);
    }

    #[test]
    fn keys_yaml_would_misread_are_quoted() {
        let mut out = String::new();
        yaml(&json!({"9090": {"mode": "PERMISSIVE"}, "on": 1, "app.kubernetes.io/name": "x"}), 0, &mut out);
        assert_eq!(out, "\"9090\":\n  mode: \"PERMISSIVE\"\napp.kubernetes.io/name: \"x\"\n\"on\": 1\n");
    }

    #[test]
    fn certificates_carry_the_identity_the_mesh_checks() {
        let rendered = certificates(&crate::modules(), &scope());
        assert!(rendered.contains("- \"spiffe://cluster.local/ns/complianceiq/sa/organization-service\""));
        assert!(rendered.contains("- \"organization-service.complianceiq.svc\""));
    }
}
