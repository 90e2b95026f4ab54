//! The modules of ComplianceIQ, composed. This is the only list of them: `dev` runs them
//! all, `serve --target` some, and tests boot them in-process through [`modules`].

use std::sync::Arc;

use complianceiq_kit::Module;
use complianceiq_kit::runtime::StartOptions;

pub mod demo;
mod event_owners;
pub mod manifests;
mod mesh_policy;
pub mod nats_policy;
pub use event_owners::{event_owner, events_of};
pub use mesh_policy::{OPS_PORT, istio_manifests, policy as mesh_policy};

/// How to start `targets` (`all`, or module names) of this platform: its mesh policy and
/// event ownership.
pub fn start_options(targets: Vec<String>, migrate: bool) -> StartOptions {
    StartOptions { targets, migrate, policy: Arc::new(mesh_policy()), event_owner }
}

/// Every module, in design order (auth 8001 ... webhook 8012), then the gateway (8080).
pub fn modules() -> Vec<Module> {
    vec![
        complianceiq_auth::module(),
        complianceiq_user::module(),
        complianceiq_organization::module(),
        complianceiq_instance::module(),
        complianceiq_analysis::module(),
        complianceiq_insights::module(),
        complianceiq_widget::module(),
        complianceiq_dashboard::module(),
        complianceiq_notification::module(),
        complianceiq_audit::module(),
        complianceiq_ml::module(),
        complianceiq_webhook::module(),
        complianceiq_gateway::module(),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The stems of the `.sql` files in `dir`.
    fn files(dir: &Path) -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".sql").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A migration file its module does not list is never applied, and the mistake shows only
    /// at run time ("no such table"); the listed ones must exist for both stores (the
    /// `migration!` macro includes them), in version order.
    #[test]
    fn every_migration_file_is_listed_by_its_module_in_order() {
        let services = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let kit = complianceiq_kit::db::migrate::KIT_MIGRATIONS;
        let sets = super::modules()
            .into_iter()
            .map(|module| (module.name.0.to_string(), module.migrations))
            .chain([("kit".to_string(), kit.migrations)]);
        for (name, migrations) in sets {
            let listed: BTreeSet<String> = migrations.iter().map(|migration| migration.name.to_string()).collect();
            for store in ["postgres", "sqlite"] {
                let found = files(&services.join(&name).join("migrations").join(store));
                assert_eq!(found, listed, "{name}'s {store} migrations on disk and in its list");
            }
            let versions: Vec<i64> = migrations.iter().map(|migration| migration.version).collect();
            assert_eq!(versions, (1..=migrations.len() as i64).collect::<Vec<_>>(), "{name}'s versions");
        }
    }
}
