//! The user service (port 8002, core_db): profiles, roles and permissions (RBAC), preferences.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::user::v1::user_service_server::{
    UserService, UserServiceServer,
};

struct UserApi;

#[tonic::async_trait]
impl UserService for UserApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("user"),
        port: 8002,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: &[],
        build: |_context| {
            Box::pin(async { Ok(ModuleParts::new().service(UserServiceServer::new(UserApi))) })
        },
    }
}
