//! What each module may do on NATS, rendered from the event ownership table: a user per
//! module that may publish exactly the event subjects of the types it owns, its own
//! dead letters, and the JetStream API calls a consumer needs on the platform's streams.
//! Every module follows the revocation stream; only the token issuer announces revocations.
//! The server enforces it, so a compromised module cannot publish as another; consumers
//! check the same table (defence in depth). `complianceiq manifests` renders it into the
//! NATS configuration in k8s/, and a test runs a real nats-server on it.

use complianceiq_kit::Module;
use complianceiq_kit::runtime::TOKEN_ISSUER;

use crate::event_owners::events_of;

/// The subjects `module` may publish to, for events under `prefix` in `stream`.
pub fn publish_allowed(module: &str, prefix: &str, stream: &str) -> Vec<String> {
    let dead_letters = format!("{stream}_DEAD_LETTERS");
    let revocations = format!("{stream}_REVOCATIONS");
    let mut subjects: Vec<String> =
        events_of(module).iter().map(|event| format!("{prefix}.events.{module}.{}", event.as_str())).collect();
    subjects.push(format!("{prefix}.deadletter.{module}.>"));
    if module == TOKEN_ISSUER {
        subjects.push(format!("{prefix}.revocations"));
    }
    for name in [stream, dead_letters.as_str(), revocations.as_str()] {
        // Created by whichever module starts first; an existing stream cannot be changed.
        subjects.push(format!("$JS.API.STREAM.INFO.{name}"));
        subjects.push(format!("$JS.API.STREAM.CREATE.{name}"));
    }
    subjects.extend([
        format!("$JS.API.STREAM.MSG.GET.{dead_letters}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.>"),
        format!("$JS.ACK.{stream}.>"),
        // The revocation feed: an ordered consumer, no acknowledgements.
        format!("$JS.API.CONSUMER.CREATE.{revocations}.>"),
        format!("$JS.API.CONSUMER.CREATE.{revocations}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{revocations}.>"),
    ]);
    subjects
}

/// The server's TLS files, when it terminates TLS.
pub struct ServerTls {
    pub cert_file: String,
    pub key_file: String,
}

/// A nats-server configuration: JetStream in `store_dir`, listening on `listen`, a user
/// per module with `password(module)` (a literal in quotes, or `$VARIABLE` read from the
/// server's environment), TLS when given.
pub fn server_config(
    modules: &[Module],
    prefix: &str,
    stream: &str,
    listen: &str,
    store_dir: &str,
    password: impl Fn(&str) -> String,
    tls: Option<&ServerTls>,
) -> String {
    let quoted = |items: &[String]| items.iter().map(|item| format!("\"{item}\"")).collect::<Vec<_>>().join(", ");
    let mut config = format!("listen: \"{listen}\"\njetstream {{\n  store_dir: \"{store_dir}\"\n}}\n");
    if let Some(tls) = tls {
        config.push_str(&format!("tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n", tls.cert_file, tls.key_file));
    }
    config.push_str("authorization {\n  users = [\n");
    for module in modules {
        let name = module.name.0;
        config.push_str(&format!(
            "    {{\n      user: \"{name}\"\n      password: {}\n      permissions: {{\n        publish: {{ allow: [{}] }}\n        subscribe: {{ allow: [\"_INBOX.>\"] }}\n      }}\n    }}\n",
            password(name),
            quoted(&publish_allowed(name, prefix, stream)),
        ));
    }
    config.push_str("  ]\n}\n");
    config
}

/// The environment variable the server reads `module`'s password from.
pub fn password_variable(module: &str) -> String {
    format!("NATS_PASSWORD_{}", module.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_publishes_only_the_events_it_owns() {
        let allowed = publish_allowed("instance", "complianceiq", "EVENTS");
        assert!(allowed.contains(&"complianceiq.events.instance.sync.completed".to_string()));
        assert!(allowed.iter().all(|subject| !subject.contains("authorization_changed")));
        assert!(allowed.iter().all(|subject| !subject.starts_with("complianceiq.events.user.")));
        // No wildcard over event subjects, and no stream deletion or update.
        assert!(allowed.iter().filter(|s| s.contains(".events.")).all(|s| !s.ends_with('>') && !s.contains('*')));
        assert!(allowed.iter().all(|s| !s.contains("DELETE") && !s.contains("UPDATE") && !s.contains("PURGE")));
        let gateway = publish_allowed("gateway", "complianceiq", "EVENTS");
        assert!(gateway.iter().all(|subject| !subject.contains(".events.")), "the edge owns no event");
        assert!(!gateway.contains(&"complianceiq.revocations".to_string()), "only the issuer revokes");
        assert!(gateway.contains(&"$JS.API.CONSUMER.MSG.NEXT.EVENTS_REVOCATIONS.>".to_string()), "all follow");
        assert!(publish_allowed("auth", "complianceiq", "EVENTS").contains(&"complianceiq.revocations".to_string()));
    }
}
