//! Reactions to other services' events: registered people, new organizations (seed the
//! default roles, make the creator admin), members joining and leaving.

use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::{OrganizationId, UserId};
use complianceiq_kit::subscription::EventHandler;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;

use crate::authorization;
use crate::domain::{self, ORGANIZATION_ADMIN, ORGANIZATION_MEMBER};
use crate::store::{self, RoleRecord};

/// The user service's consumer.
pub struct Directory {
    pub database: ModuleDatabase,
}

fn context_of(event: &Event) -> RequestContext {
    RequestContext {
        request_id: event.request_id.clone(),
        actor_user_id: UserId::from_stored(&event.actor_user_id).ok(),
        traceparent: (!event.traceparent.is_empty()).then(|| event.traceparent.clone()),
    }
}

#[tonic::async_trait]
impl EventHandler for Directory {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let now = time::now_micros();
        let context = context_of(event);
        match &event.payload {
            Some(Payload::UserRegistered(registered)) => {
                let mut tx = self.database.global_write().await?;
                store::upsert_person(&mut tx, &registered.user_id, &registered.email, &registered.full_name, now)
                    .await?;
                tx.commit().await
            }
            Some(Payload::OrganizationCreated(created)) => {
                let organization = OrganizationId::from_stored(&event.organization_id)?;
                let creator = UserId::from_stored(&created.creator_user_id)?;
                let mut tx = self.database.write(organization).await?;
                for role in domain::default_roles() {
                    let record = RoleRecord {
                        id: uuid_v7(),
                        name: role.name.to_string(),
                        description: role.description.to_string(),
                        permissions: role.permissions.iter().map(|p| p.to_string()).collect(),
                        built_in: true,
                        created_at: now,
                        updated_at: now,
                    };
                    store::insert_role(&mut tx, &record).await?;
                }
                let admin = store::role_by_name(&mut tx, ORGANIZATION_ADMIN)
                    .await?
                    .ok_or_else(|| ApiError::internal("admin role missing"))?;
                store::upsert_active_profile(&mut tx, creator, &created.creator_email, now).await?;
                store::assign(&mut tx, creator, &admin.id, "system", now).await?;
                authorization::publish(&mut tx, creator, &created.creator_email, true, &context).await?;
                tx.commit().await
            }
            Some(Payload::MemberJoined(joined)) => {
                let organization = OrganizationId::from_stored(&event.organization_id)?;
                let user = UserId::from_stored(&joined.user_id)?;
                let mut tx = self.database.write(organization).await?;
                store::upsert_active_profile(&mut tx, user, &joined.email, now).await?;
                let mut granted = 0;
                for role_id in &joined.role_ids {
                    if store::role_by_id(&mut tx, role_id).await?.is_some() {
                        store::assign(&mut tx, user, role_id, &event.actor_user_id, now).await?;
                        granted += 1;
                    } else {
                        tracing::warn!(%role_id, "a joining member's role no longer exists");
                    }
                }
                if granted == 0 {
                    let member = store::role_by_name(&mut tx, ORGANIZATION_MEMBER)
                        .await?
                        .ok_or_else(|| ApiError::internal("member role missing"))?;
                    store::assign(&mut tx, user, &member.id, "system", now).await?;
                }
                authorization::publish(&mut tx, user, &joined.email, true, &context).await?;
                tx.commit().await
            }
            Some(Payload::MemberRemoved(removed)) if !removed.user_id.is_empty() => {
                let organization = OrganizationId::from_stored(&event.organization_id)?;
                let user = UserId::from_stored(&removed.user_id)?;
                let mut tx = self.database.write(organization).await?;
                let Some(profile) = store::profile_of(&mut tx, user).await? else {
                    return tx.commit().await;
                };
                store::unassign_all(&mut tx, user).await?;
                store::remove_profile(&mut tx, user, now).await?;
                authorization::publish(&mut tx, user, &profile.email, false, &context).await?;
                tx.commit().await
            }
            _ => Ok(()),
        }
    }
}

fn uuid_v7() -> String {
    complianceiq_kit::uuid::Uuid::now_v7().to_string()
}
