//! The audit service (port 8010, audit_db): the audit trail, security and compliance events, audit reports.
//!
//! Not built yet: every RPC answers UNIMPLEMENTED with a message naming it (the contract's
//! generated default), so callers and the gateway see exactly what is missing.

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::{Module, ModuleName, ModuleParts};
use complianceiq_proto::complianceiq::audit::v1::audit_service_server::{AuditService, AuditServiceServer};

struct AuditApi;

#[tonic::async_trait]
impl AuditService for AuditApi {}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("audit"),
        port: 8010,
        database: Some(DatabaseGroup::Audit),
        calls: &[],
        migrations: &[],
        reseal: None,
        build: |_context| Box::pin(async { Ok(ModuleParts::new().service(AuditServiceServer::new(AuditApi))) }),
    }
}
