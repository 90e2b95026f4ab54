//! The staff API (platform Super Admin): find organizations across tenants, read one's health,
//! suspend and restore it. The access layer lets only staff tokens in; the audit layer records
//! every call, with its reason, in the organization's own trail. Searches read the directory
//! (names and states, no tenant data); everything about one organization is read in a
//! transaction scoped to it, under the same row-level security as its members' own calls.

use complianceiq_kit::auth::{Identity, caller};
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::OrganizationUpdated;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::organization::v1::staff_service_server::StaffService;
use complianceiq_proto::complianceiq::organization::v1::{
    GetOrganizationHealthRequest, ListOrganizationsRequest, ListOrganizationsResponse, Organization,
    OrganizationHealth, OrganizationState, OrganizationSummary, RestoreOrganizationRequest, SuspendOrganizationRequest,
};
use tonic::{Request, Response, Status};

use crate::api::OrganizationApi;
use crate::domain::{State, parse_plan};
use crate::organizations::{concurrent_change, not_found};
use crate::store::directory::{self, DirectoryEntry, Search};
use crate::store::{self, members};

/// The organization a staff request names, with its reason checked.
fn target(organization_id: &str, reason: &str) -> Result<OrganizationId, ApiError> {
    let mut violations = FieldViolations::default();
    let organization = violations.uuid("organization_id", organization_id);
    violations.reason("reason", reason);
    violations.check()?;
    OrganizationId::from_stored(&organization)
}

fn summary(entry: DirectoryEntry) -> Result<OrganizationSummary, ApiError> {
    let state = State::parse(&entry.state)?.to_proto();
    Ok(OrganizationSummary {
        id: entry.id,
        display_name: entry.display_name,
        slug: entry.slug,
        state: state as i32,
        plan: parse_plan(&entry.plan)? as i32,
        create_time: Some(time::to_timestamp(entry.created_at)),
        update_time: Some(time::to_timestamp(entry.updated_at)),
        last_sync_time: time::to_optional_timestamp(entry.last_sync_at),
    })
}

impl OrganizationApi {
    async fn list_across(&self, request: ListOrganizationsRequest) -> Result<ListOrganizationsResponse, ApiError> {
        let mut violations = FieldViolations::default();
        violations.reason("reason", &request.reason);
        violations.max_chars("query", &request.query, 200);
        let state = match request.state() {
            OrganizationState::Unspecified => "",
            OrganizationState::Active => State::Active.as_str(),
            OrganizationState::Suspended => State::Suspended.as_str(),
            OrganizationState::Deleted => State::Deleted.as_str(),
        };
        violations.check()?;
        let filters = format!("{}\u{1f}{state}", request.query.trim().to_lowercase());
        let page = PageRequest::parse(request.page_size, &request.page_token, &filters)?;
        let invalid = || ApiError::invalid_field("page_token", "INVALID", "page_token is not a token this API issued");
        let after = match page.after.as_deref() {
            None => None,
            Some([created, id]) => Some((created.parse().map_err(|_| invalid())?, id.clone())),
            Some(_) => return Err(invalid()),
        };
        let search = Search { text: &request.query, state, after, limit: page.fetch_limit() };
        let mut tx = self.database.global_read().await?;
        let mut entries = directory::search(&mut tx, &search).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut entries, |entry| vec![entry.created_at.to_string(), entry.id.clone()]);
        let organizations = entries.into_iter().map(summary).collect::<Result<_, _>>()?;
        Ok(ListOrganizationsResponse { organizations, next_page_token })
    }

    async fn health(&self, request: GetOrganizationHealthRequest) -> Result<OrganizationHealth, ApiError> {
        let organization = target(&request.organization_id, &request.reason)?;
        // Scoped to the one organization, exactly as its own members read it.
        let mut tx = self.database.read(organization).await?;
        let record = store::find_live(&mut tx).await?.ok_or_else(|| not_found(organization))?;
        let subscription = crate::subscription::current(&mut tx).await?;
        let usage = crate::subscription::usage_of(&mut tx, &subscription).await?;
        let active_members = members::count_in_state(&mut tx, "active").await?;
        let pending_invitations = members::count_in_state(&mut tx, "invited").await?;
        let last_sync_at = directory::entry(&mut tx).await?.and_then(|entry| entry.last_sync_at);
        tx.commit().await?;
        Ok(OrganizationHealth {
            organization: Some(record.to_proto()),
            subscription: Some(crate::subscription::message(&subscription, organization)?),
            usage: Some(usage),
            active_members,
            pending_invitations,
            last_sync_time: time::to_optional_timestamp(last_sync_at),
        })
    }

    /// Moves an organization from `from` to `to`; the `organization.updated` event carries the
    /// new state to the auth service, which refuses (or admits again) its members.
    async fn change_state(
        &self,
        staff: &Identity,
        context: &RequestContext,
        organization: OrganizationId,
        from: State,
        to: State,
    ) -> Result<Organization, ApiError> {
        let mut tx = self.database.write(organization).await?;
        let current = store::find_live(&mut tx).await?.ok_or_else(|| not_found(organization))?;
        if current.state != from {
            return Err(ApiError::FailedPrecondition {
                reason: if to == State::Suspended { "ALREADY_SUSPENDED" } else { "NOT_SUSPENDED" },
                message: format!("organization {organization} is {}, not {}", current.state.as_str(), from.as_str()),
            });
        }
        let mut next = current.clone();
        next.state = to;
        next.revision += 1;
        next.updated_at = time::now_micros().max(current.updated_at + 1);
        if !store::update(&mut tx, &next, current.revision).await? {
            return Err(concurrent_change());
        }
        let organization_message = next.to_proto();
        let updated = OrganizationUpdated {
            organization: Some(organization_message.clone()),
            changed_fields: vec!["state".into()],
        };
        tx.emit(Payload::OrganizationUpdated(updated), context).await?;
        tx.commit().await?;
        tracing::warn!(target: "security", %organization, staff = %staff.user_id, state = to.as_str(), "organization state changed by staff");
        Ok(organization_message)
    }
}

#[tonic::async_trait]
impl StaffService for OrganizationApi {
    async fn list_organizations(
        &self,
        request: Request<ListOrganizationsRequest>,
    ) -> Result<Response<ListOrganizationsResponse>, Status> {
        Ok(Response::new(self.list_across(request.into_inner()).await?))
    }

    async fn get_organization_health(
        &self,
        request: Request<GetOrganizationHealthRequest>,
    ) -> Result<Response<OrganizationHealth>, Status> {
        Ok(Response::new(self.health(request.into_inner()).await?))
    }

    async fn suspend_organization(
        &self,
        request: Request<SuspendOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let (staff, context) = (caller(&request)?, RequestContext::of(&request));
        let request = request.into_inner();
        let organization = target(&request.organization_id, &request.reason)?;
        Ok(Response::new(self.change_state(&staff, &context, organization, State::Active, State::Suspended).await?))
    }

    async fn restore_organization(
        &self,
        request: Request<RestoreOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let (staff, context) = (caller(&request)?, RequestContext::of(&request));
        let request = request.into_inner();
        let organization = target(&request.organization_id, &request.reason)?;
        Ok(Response::new(self.change_state(&staff, &context, organization, State::Suspended, State::Active).await?))
    }
}
