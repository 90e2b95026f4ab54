//! Organizations: create (the creator becomes its first member and, through the user
//! service, its Organization Admin), read, update with a field mask, soft delete.

use complianceiq_kit::auth::Identity;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{
    OrganizationCreated, OrganizationDeleted, OrganizationUpdated, SubscriptionChanged,
};
use complianceiq_proto::complianceiq::organization::v1::{
    CreateOrganizationRequest, DeleteOrganizationRequest, GetOrganizationRequest, Organization, Plan,
    UpdateOrganizationRequest,
};
use tonic::metadata::{Ascii, MetadataValue};

use crate::api::OrganizationApi;
use crate::billing;
use crate::domain::{self, OrganizationRecord};
use crate::store::members::MembershipRecord;
use crate::store::subscriptions::SubscriptionRecord;
use crate::store::{self, members, subscriptions};

/// Attempts at a derived slug before giving up (each retry adds a random suffix).
const SLUG_ATTEMPTS: usize = 5;

pub(crate) type Authorization = Option<MetadataValue<Ascii>>;

pub(crate) fn not_found(id: OrganizationId) -> ApiError {
    ApiError::not_found("Organization", id.to_string())
}

fn check_etag(given: &str, current: &OrganizationRecord) -> Result<(), ApiError> {
    if !given.is_empty() && given != current.etag() {
        return Err(ApiError::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!(
                "the organization changed since it was read (etag {given:?}, now {:?}); read it again and retry",
                current.etag()
            ),
        });
    }
    Ok(())
}

pub(crate) fn concurrent_change() -> ApiError {
    ApiError::Aborted {
        reason: "CONCURRENT_MODIFICATION",
        message: "the organization was changed by another request at the same time; retry".into(),
    }
}

/// The organization named by a request path, which must be the caller's.
pub(crate) fn path_tenant(identity: &Identity, org_id: &str) -> Result<OrganizationId, ApiError> {
    identity.require_tenant(OrganizationId::parse_field("org_id", org_id)?)
}

impl OrganizationApi {
    pub(crate) async fn create(
        &self,
        identity: &Identity,
        context: &RequestContext,
        _authorization: Authorization,
        request: CreateOrganizationRequest,
    ) -> Result<Organization, ApiError> {
        let input = request
            .organization
            .ok_or_else(|| ApiError::invalid_field("organization", "REQUIRED", "organization is required"))?;
        let now = time::now_micros();
        let mut record = domain::new_organization(&input, now)?;
        let slug_was_given = !input.slug.is_empty();
        let base_slug = record.slug.clone();

        let mut tx = self.database.write(record.id).await?;
        let mut attempts = 0;
        while !store::insert(&mut tx, &record).await? {
            attempts += 1;
            if slug_was_given || attempts == SLUG_ATTEMPTS {
                return Err(ApiError::AlreadyExists {
                    resource_type: "Organization",
                    name: record.slug.clone(),
                    message: format!("the slug {:?} is taken; choose another", record.slug),
                });
            }
            record.slug = domain::slug_with_suffix(&base_slug);
        }
        let creator = MembershipRecord {
            id: complianceiq_kit::uuid::Uuid::now_v7().to_string(),
            user_id: Some(identity.user_id.to_string()),
            email: identity.email.clone(),
            state: "active".into(),
            role_ids: Vec::new(),
            team_ids: Vec::new(),
            invited_by: identity.user_id.to_string(),
            invited_at: None,
            invite_expires_at: None,
            joined_at: Some(now),
            removed_at: None,
            created_at: now,
            updated_at: now,
        };
        members::insert(&mut tx, &creator).await?;
        let subscription = SubscriptionRecord {
            plan: "free".into(),
            state: "active".into(),
            billing_provider: self.billing.name().into(),
            billing_email: identity.email.clone(),
            external_customer_id: None,
            external_subscription_id: None,
            current_period_start: now,
            current_period_end: time::after(now, billing::PERIOD),
            cancel_at_period_end: false,
            created_at: now,
            updated_at: now,
        };
        subscriptions::save(&mut tx, &subscription).await?;
        let organization = record.to_proto();
        let created = OrganizationCreated {
            organization: Some(organization.clone()),
            creator_user_id: identity.user_id.to_string(),
            creator_email: identity.email.clone(),
        };
        tx.emit(Payload::OrganizationCreated(created), context).await?;
        // The subscription began with the organization: services enforcing plan limits
        // (instances) learn the plan from this event as from every later change.
        let began = SubscriptionChanged {
            subscription: Some(crate::subscription::message(&subscription, record.id)?),
            previous_plan: Plan::Unspecified as i32,
        };
        tx.emit(Payload::SubscriptionChanged(began), context).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %record.id, slug = %record.slug, creator = %identity.user_id, "organization created");
        Ok(organization)
    }

    pub(crate) async fn get(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: GetOrganizationRequest,
    ) -> Result<Organization, ApiError> {
        let id = path_tenant(identity, &request.org_id)?;
        let mut tx = self.database.read(id).await?;
        let record = store::find_live(&mut tx).await?.ok_or_else(|| not_found(id))?;
        tx.commit().await?;
        Ok(record.to_proto())
    }

    pub(crate) async fn update(
        &self,
        identity: &Identity,
        context: &RequestContext,
        _authorization: Authorization,
        request: UpdateOrganizationRequest,
    ) -> Result<Organization, ApiError> {
        let id = path_tenant(identity, &request.org_id)?;
        let input = request
            .organization
            .ok_or_else(|| ApiError::invalid_field("organization", "REQUIRED", "organization is required"))?;
        let mut tx = self.database.write(id).await?;
        let current = store::find_live(&mut tx).await?.ok_or_else(|| not_found(id))?;
        check_etag(&input.etag, &current)?;
        let fields = domain::fields_to_update(request.update_mask.as_ref(), &input, &current)?;
        let (next, changed) = domain::apply_update(&current, &input, &fields, time::now_micros())?;
        if changed.is_empty() {
            tx.commit().await?;
            return Ok(current.to_proto());
        }
        if !store::update(&mut tx, &next, current.revision).await? {
            return Err(concurrent_change());
        }
        let organization = next.to_proto();
        let updated = OrganizationUpdated {
            organization: Some(organization.clone()),
            changed_fields: changed.iter().map(|path| path.to_string()).collect(),
        };
        tx.emit(Payload::OrganizationUpdated(updated), context).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %id, changed = ?changed, "organization updated");
        Ok(organization)
    }

    pub(crate) async fn delete(
        &self,
        identity: &Identity,
        context: &RequestContext,
        _authorization: Authorization,
        request: DeleteOrganizationRequest,
    ) -> Result<(), ApiError> {
        let id = path_tenant(identity, &request.org_id)?;
        let mut tx = self.database.write(id).await?;
        let current = store::find_live(&mut tx).await?.ok_or_else(|| not_found(id))?;
        check_etag(&request.etag, &current)?;
        let deleted = domain::delete(&current, time::now_micros());
        if !store::update(&mut tx, &deleted, current.revision).await? {
            return Err(concurrent_change());
        }
        let event = OrganizationDeleted {
            organization_id: id.to_string(),
            purge_time: time::to_optional_timestamp(deleted.purge_at),
        };
        tx.emit(Payload::OrganizationDeleted(event), context).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %id, "organization deleted");
        Ok(())
    }
}
