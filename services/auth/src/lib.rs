//! The auth service (port 8001, auth_db): registration, login, tokens and the keys that sign them, password reset, MFA.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::auth::v1::auth_service_server::{
    AuthService, AuthServiceServer,
};

struct AuthApi;

#[tonic::async_trait]
impl AuthService for AuthApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("auth"),
        port: 8001,
        database: Some(DatabaseGroup::Auth),
        calls: &[],
        migrations: &[],
        build: |_context| {
            Box::pin(async { Ok(ModuleParts::new().service(AuthServiceServer::new(AuthApi))) })
        },
    }
}
