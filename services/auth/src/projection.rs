//! The auth service's copy of memberships, kept from events so tokens can be issued
//! without calling the user or organization services (which may be down or slow).

use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::UserId;
use complianceiq_kit::subscription::EventHandler;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;

use crate::store::{self, Membership};

/// Applies `user.authorization_changed` and `organization.deleted`.
pub struct MembershipProjection {
    pub database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for MembershipProjection {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let now = time::now_micros();
        match &event.payload {
            Some(Payload::UserAuthorizationChanged(change)) => {
                let user = UserId::from_stored(&change.user_id)?;
                let membership = Membership {
                    organization_id: event.organization_id.clone(),
                    roles: change.roles.clone(),
                    permissions: change.permissions.clone(),
                    active: change.active,
                    version: change.version,
                };
                let mut tx = self.database.global_write().await?;
                store::upsert_membership(&mut tx, user, &membership, now).await?;
                tx.commit().await
            }
            Some(Payload::OrganizationDeleted(deleted)) => {
                let mut tx = self.database.global_write().await?;
                store::deactivate_organization(&mut tx, &deleted.organization_id, now).await?;
                tx.commit().await
            }
            _ => Ok(()),
        }
    }
}
