//! The organization service (port 8003, core_db): tenants and their settings, members,
//! subscription, limits and usage.

mod api;
mod domain;
mod store;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::Migration;
use complianceiq_kit::{Module, ModuleContext, ModuleName, ModuleParts, migration};
use complianceiq_proto::complianceiq::organization::v1::organization_service_server::OrganizationServiceServer;

const MIGRATIONS: &[Migration] = &[migration!(1, "0001_organizations")];

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("organization"),
        port: 8003,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: MIGRATIONS,
        build: |context| Box::pin(build(context)),
    }
}

async fn build(
    context: ModuleContext,
) -> Result<ModuleParts, complianceiq_kit::module::BuildError> {
    let api = api::OrganizationApi::new(context.database()?);
    Ok(ModuleParts::new().service(OrganizationServiceServer::new(api)))
}
