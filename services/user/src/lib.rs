//! The user service (port 8002, core_db): profiles, roles and permissions (RBAC),
//! preferences. It seeds the design's default roles into every new organization and
//! publishes each person's authorization for the auth service to put in tokens.

mod api;
mod authorization;
mod directory;
mod domain;
mod store;

use std::sync::Arc;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::Migration;
use complianceiq_kit::module::BuildError;
use complianceiq_kit::subscription::Subscription;
use complianceiq_kit::{Module, ModuleContext, ModuleName, ModuleParts, migration};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::user::v1::user_service_server::UserServiceServer;

pub use domain::{ORGANIZATION_ADMIN, ORGANIZATION_MEMBER};

const MIGRATIONS: &[Migration] = &[migration!(1, "0001_users")];

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("user"),
        port: 8002,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: MIGRATIONS,
        build: |context| Box::pin(build(context)),
        reseal: None,
    }
}

async fn build(context: ModuleContext) -> Result<ModuleParts, BuildError> {
    let database = context.database()?;
    let directory = Subscription {
        consumer: "user-directory",
        events: vec![
            EventType::UserRegistered,
            EventType::OrganizationCreated,
            EventType::MemberJoined,
            EventType::MemberRemoved,
        ],
        handler: Arc::new(directory::Directory { database: database.clone() }),
    };
    Ok(ModuleParts::new().service(UserServiceServer::new(api::UserApi { database })).subscription(directory))
}
