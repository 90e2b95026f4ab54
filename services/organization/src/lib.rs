//! The organization service (port 8003, core_db): tenants and their settings, members and
//! invitations, teams, subscription with plans and limits, and usage.

mod api;
mod billing;
mod domain;
mod members;
mod organizations;
mod staff;
mod store;
mod subscription;

use std::sync::Arc;

use complianceiq_kit::config::{DatabaseGroup, RunMode};
use complianceiq_kit::db::Migration;
use complianceiq_kit::module::BuildError;
use complianceiq_kit::subscription::Subscription;
use complianceiq_kit::{Module, ModuleContext, ModuleName, ModuleParts, migration};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::organization::v1::organization_service_server::OrganizationServiceServer;
use complianceiq_proto::complianceiq::organization::v1::staff_service_server::StaffServiceServer;
use complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient;

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_organizations"),
    migration!(2, "0002_members"),
    migration!(3, "0003_risk_appetite"),
    migration!(4, "0004_directory"),
];

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("organization"),
        port: 8003,
        database: Some(DatabaseGroup::Core),
        // Invitations check the roles they grant with the user service, as the inviter.
        calls: &["user"],
        migrations: MIGRATIONS,
        build: |context| Box::pin(build(context)),
        reseal: None,
    }
}

async fn build(context: ModuleContext) -> Result<ModuleParts, BuildError> {
    let settings = &context.config.billing;
    let free_changes = settings.billing_disabled.unwrap_or(context.config.mode == RunMode::Development);
    let billing: Arc<dyn billing::BillingProvider> = match &settings.stripe_secret_key {
        Some(key) => Arc::new(billing::StripeBilling::from_config(settings, key.clone())?),
        None if free_changes => Arc::new(billing::InProcessBilling),
        None => Arc::new(billing::UnconfiguredBilling),
    };
    let database = context.database()?;
    let api = api::OrganizationApi {
        database: database.clone(),
        users: UserServiceClient::new(context.channel("user")?),
        billing,
        mailer: context.mailer.clone(),
        secrets: context.secrets.clone(),
        public_url: context.config.mail.public_url.clone(),
    };
    let usage = Subscription {
        consumer: "organization-usage",
        events: vec![
            EventType::InstanceCreated,
            EventType::InstanceDeleted,
            EventType::AnalysisStarted,
            EventType::SyncCompleted,
        ],
        handler: Arc::new(subscription::UsageCounter { database }),
    };
    Ok(ModuleParts::new()
        .service(OrganizationServiceServer::new(api.clone()))
        .service(StaffServiceServer::new(api))
        .subscription(usage))
}
