//! The instance service (port 8004, core_db): ServiceNow connections, encrypted credentials, health and data sync.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::instance::v1::instance_service_server::{InstanceService, InstanceServiceServer};

struct InstanceApi;

#[tonic::async_trait]
impl InstanceService for InstanceApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("instance"),
        port: 8004,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: &[],
        build: |_context| Box::pin(async { Ok(ModuleParts::new().service(InstanceServiceServer::new(InstanceApi))) }),
    }
}
