//! The auth service's copy of memberships, kept from events so tokens can be issued
//! without calling the user or organization services (which may be down or slow).

use std::sync::Arc;

use complianceiq_kit::auth::revocations::Revocations;
use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::{OrganizationId, UserId};
use complianceiq_kit::subscription::EventHandler;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{Event, OrganizationCreated, OrganizationUpdated};
use complianceiq_proto::complianceiq::organization::v1::OrganizationState;

use crate::api_keys;
use crate::store::{self, Membership};

/// Applies `user.authorization_changed`, the organizations' sign-in policy and suspension
/// (`organization.created`/`updated`) and `organization.deleted`. Leaving an
/// organization (or its deletion) also ends the sessions scoped to it, and cuts off their
/// live access tokens, so a removed member loses access at once rather than at expiry.
pub struct MembershipProjection {
    pub database: ModuleDatabase,
    pub revocations: Arc<Revocations>,
}

impl MembershipProjection {
    async fn revoke(&self, issued: Vec<store::IssuedAccess>) -> Result<(), ApiError> {
        for access in issued {
            self.revocations.revoke(&access.token_id, access.expires_at).await?;
        }
        Ok(())
    }

    /// Starts a new generation of the organization's keys (`creator`'s, or all) and cuts off
    /// their live tokens.
    async fn renew_keys(
        &self,
        organization: OrganizationId,
        creator: Option<UserId>,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut tx = self.database.write(organization).await?;
        let token_ids = api_keys::renew_keys(&mut tx, creator).await?;
        tx.commit().await?;
        let horizon = api_keys::revocation_horizon(now);
        for token_id in token_ids {
            self.revocations.revoke(&token_id, horizon).await?;
        }
        Ok(())
    }
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
                    requires_mfa: false,
                    suspended: false,
                    requires_sso: false,
                };
                let mut tx = self.database.global_write().await?;
                let before = store::recorded_permissions(tx.connection(), user, &event.organization_id).await?;
                let lost = before.as_ref().is_some_and(|(permissions, version)| {
                    *version < change.version
                        && (!change.active || permissions.iter().any(|held| !change.permissions.contains(held)))
                });
                store::upsert_membership(&mut tx, user, &membership, now).await?;
                let issued = if change.active {
                    // A demotion cuts off live tokens that carry the lost permissions; the
                    // sessions stay, and their next refresh carries what is left.
                    match before {
                        Some((permissions, version))
                            if version < change.version
                                && permissions.iter().any(|held| !change.permissions.contains(held)) =>
                        {
                            store::live_access(&mut tx, user, &event.organization_id, now / 1_000_000).await?
                        }
                        _ => Vec::new(),
                    }
                } else {
                    store::revoke(
                        &mut tx,
                        store::Sessions::Organization { organization: &event.organization_id, user: Some(user) },
                        "membership_ended",
                        now,
                    )
                    .await?
                };
                tx.commit().await?;
                self.revoke(issued).await?;
                // The creator's keys hold at most what the creator holds: their live tokens
                // go too, and the next exchange reflects the change.
                if lost && let Ok(organization) = OrganizationId::from_stored(&event.organization_id) {
                    self.renew_keys(organization, Some(user), now).await?;
                }
                Ok(())
            }
            Some(Payload::OrganizationCreated(OrganizationCreated { organization: Some(organization), .. }))
            | Some(Payload::OrganizationUpdated(OrganizationUpdated { organization: Some(organization), .. })) => {
                let suspended = organization.state() == OrganizationState::Suspended;
                let policy = store::OrganizationPolicy {
                    organization: &organization.id,
                    display_name: &organization.display_name,
                    require_mfa: organization.settings.as_ref().is_some_and(|settings| settings.require_mfa),
                    suspended,
                    version: organization.update_time.as_ref().map(time::from_timestamp).unwrap_or(now),
                };
                let mut tx = self.database.global_write().await?;
                let recorded = store::upsert_organization_policy(&mut tx, &policy, now).await?;
                if !(recorded && suspended) {
                    return tx.commit().await;
                }
                // Suspended: every session in it ends now, and its API keys' live tokens too
                // (their next exchange is refused while it stays suspended).
                let issued = store::revoke(
                    &mut tx,
                    store::Sessions::Organization { organization: &organization.id, user: None },
                    "organization_suspended",
                    now,
                )
                .await?;
                tx.commit().await?;
                self.revoke(issued).await?;
                let organization = OrganizationId::from_stored(&organization.id)?;
                self.renew_keys(organization, None, now).await
            }
            Some(Payload::OrganizationDeleted(deleted)) => {
                let mut tx = self.database.global_write().await?;
                store::deactivate_organization(&mut tx, &deleted.organization_id, now).await?;
                let issued = store::revoke(
                    &mut tx,
                    store::Sessions::Organization { organization: &deleted.organization_id, user: None },
                    "organization_deleted",
                    now,
                )
                .await?;
                tx.commit().await?;
                self.revoke(issued).await
            }
            _ => Ok(()),
        }
    }
}
