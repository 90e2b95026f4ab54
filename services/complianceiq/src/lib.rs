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
