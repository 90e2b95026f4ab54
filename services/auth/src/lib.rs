//! The auth service (port 8001, auth_db): accounts, passwords, sessions (refresh tokens),
//! access tokens and the keys that sign them, email verification, password reset, MFA.

mod api;
mod api_keys;
mod keys;
mod password;
mod projection;
mod reseal;
mod sso;
pub mod staff;
mod store;
pub mod totp;

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::config::{DatabaseGroup, RunMode};
use complianceiq_kit::db::Migration;
use complianceiq_kit::module::{BuildError, Worker};
use complianceiq_kit::subscription::Subscription;
use complianceiq_kit::{Module, ModuleContext, ModuleName, ModuleParts, migration, time};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::auth::v1::auth_service_server::AuthServiceServer;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use tokio_util::sync::CancellationToken;

pub use keys::{KeyRing, KeyStore};

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_accounts"),
    migration!(2, "0002_organization_policies"),
    migration!(3, "0003_session_start"),
    migration!(4, "0004_api_keys"),
    migration!(5, "0005_organization_names"),
    migration!(6, "0006_staff_and_suspension"),
    migration!(7, "0007_single_sign_on"),
];
/// How often expired tokens are deleted.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(3600);

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("auth"),
        port: 8001,
        database: Some(DatabaseGroup::Auth),
        // Single sign-on makes a first-time person a member (just in time) and keeps the roles
        // its group mappings name in line with the person's groups.
        calls: &["organization", "user"],
        migrations: MIGRATIONS,
        build: |context| Box::pin(build(context)),
        reseal: Some(|database, secrets| Box::pin(reseal::reseal(database, secrets))),
    }
}

async fn build(context: ModuleContext) -> Result<ModuleParts, BuildError> {
    let key_dir = context.config.jwt_keys_dir();
    let has_keys = std::fs::read_dir(&key_dir)
        .map(|entries| entries.flatten().any(|entry| entry.path().extension().is_some_and(|ext| ext == "pem")))
        .unwrap_or(false);
    if !has_keys {
        if context.config.mode == RunMode::Production {
            return Err(format!(
                "no JWT signing key in {}; set CIQ_JWT_KEYS_DIR to a directory of PKCS#8 PEM keys",
                key_dir.display()
            )
            .into());
        }
        let id = KeyRing::generate_into(&key_dir)?;
        tracing::info!(kid = %id, dir = %key_dir.display(), "generated a development JWT signing key");
    }
    let keys = Arc::new(keys::KeyStore::open(&key_dir)?);
    let decoy_hash = password::hash(complianceiq_kit::crypto::random_token()).await?;
    let database = context.database()?;
    let api = api::AuthApi {
        database: database.clone(),
        keys: keys.clone(),
        cache: context.cache.clone(),
        revocations: context.revocations.clone(),
        mailer: context.mailer.clone(),
        secrets: context.secrets.clone(),
        public_url: context.config.mail.public_url.clone(),
        sso: sso::SsoParts {
            http: sso::oidc::ProviderHttp::new(if context.config.sso.private_networks_allowed(context.config.mode) {
                complianceiq_kit::address::NetworkAccess::AllowPrivate
            } else {
                complianceiq_kit::address::NetworkAccess::PublicOnly
            })?,
            dns_server: context.config.sso.dns_server.or_else(sso::dns::system_server),
            organizations: OrganizationServiceClient::new(context.channel("organization")?),
            users: complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient::new(
                context.channel("user")?,
            ),
        },
        decoy_hash,
    };

    let cleanup_database = database.clone();
    let cleanup = Worker {
        name: "auth-token-cleanup",
        run: Box::new(move |stop: CancellationToken| {
            Box::pin(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(CLEANUP_INTERVAL) => {}
                    }
                    // A day of grace keeps rotated tokens around long enough to detect reuse.
                    let cutoff = time::now_micros() - 24 * 3600 * 1_000_000;
                    let result = async {
                        let mut tx = cleanup_database.global_write().await?;
                        let deleted = store::delete_expired(&mut tx, cutoff).await?;
                        tx.commit().await?;
                        Ok::<u64, complianceiq_kit::ApiError>(deleted)
                    }
                    .await;
                    match result {
                        Ok(deleted) => tracing::debug!(deleted, "expired tokens deleted"),
                        Err(error) => tracing::warn!(%error, "deleting expired tokens"),
                    }
                }
            })
        }),
    };
    let projection = Subscription {
        consumer: "auth-memberships",
        events: vec![
            EventType::UserAuthorizationChanged,
            EventType::OrganizationCreated,
            EventType::OrganizationUpdated,
            EventType::OrganizationDeleted,
        ],
        handler: Arc::new(projection::MembershipProjection { database, revocations: context.revocations.clone() }),
    };
    Ok(ModuleParts::new().service(AuthServiceServer::new(api)).worker(cleanup).subscription(projection))
}
