//! The organization service's gRPC surface: each handler takes the verified caller from the
//! access layer and delegates to the concept it belongs to (organizations, members, teams,
//! subscription).

use std::sync::Arc;

use complianceiq_kit::auth::caller;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::mail::Mailer;
use complianceiq_kit::mesh::MeshChannel;
use complianceiq_kit::secrets::SecretBox;
use complianceiq_proto::complianceiq::organization::v1::organization_service_server::OrganizationService;
use complianceiq_proto::complianceiq::organization::v1::*;
use complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient;
use tonic::{Request, Response, Status};

use crate::billing::BillingProvider;

/// The organization service (and the staff API, which shares its state).
#[derive(Clone)]
pub struct OrganizationApi {
    pub(crate) database: ModuleDatabase,
    pub(crate) users: UserServiceClient<MeshChannel>,
    pub(crate) billing: Arc<dyn BillingProvider>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) secrets: Arc<SecretBox>,
    pub(crate) public_url: String,
}

/// Calls a method with the caller's identity and context; maps errors to statuses.
macro_rules! handle {
    ($self:ident, $request:ident, $method:ident) => {{
        let identity = caller(&$request)?;
        let context = RequestContext::of(&$request);
        let authorization = $request.metadata().get("authorization").cloned();
        let result = $self.$method(&identity, &context, authorization, $request.into_inner()).await?;
        Ok(Response::new(result))
    }};
}

#[tonic::async_trait]
impl OrganizationService for OrganizationApi {
    async fn create_organization(
        &self,
        request: Request<CreateOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        handle!(self, request, create)
    }

    async fn get_organization(
        &self,
        request: Request<GetOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        handle!(self, request, get)
    }

    async fn update_organization(
        &self,
        request: Request<UpdateOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        handle!(self, request, update)
    }

    async fn delete_organization(&self, request: Request<DeleteOrganizationRequest>) -> Result<Response<()>, Status> {
        handle!(self, request, delete)
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        handle!(self, request, list_members)
    }

    async fn add_member(&self, request: Request<AddMemberRequest>) -> Result<Response<Member>, Status> {
        handle!(self, request, add_member)
    }

    async fn remove_member(&self, request: Request<RemoveMemberRequest>) -> Result<Response<()>, Status> {
        handle!(self, request, remove_member)
    }

    async fn provision_sso_member(
        &self,
        request: Request<ProvisionSsoMemberRequest>,
    ) -> Result<Response<Member>, Status> {
        let context = RequestContext::of(&request);
        Ok(Response::new(self.provision_sso_member(&context, request.into_inner()).await?))
    }

    async fn accept_invitation(&self, request: Request<AcceptInvitationRequest>) -> Result<Response<Member>, Status> {
        handle!(self, request, accept_invitation)
    }

    async fn create_team(&self, request: Request<CreateTeamRequest>) -> Result<Response<Team>, Status> {
        handle!(self, request, create_team)
    }

    async fn list_teams(&self, request: Request<ListTeamsRequest>) -> Result<Response<ListTeamsResponse>, Status> {
        handle!(self, request, list_teams)
    }

    async fn delete_team(&self, request: Request<DeleteTeamRequest>) -> Result<Response<()>, Status> {
        handle!(self, request, delete_team)
    }

    async fn add_team_member(&self, request: Request<AddTeamMemberRequest>) -> Result<Response<Team>, Status> {
        handle!(self, request, add_team_member)
    }

    async fn remove_team_member(&self, request: Request<RemoveTeamMemberRequest>) -> Result<Response<Team>, Status> {
        handle!(self, request, remove_team_member)
    }

    async fn get_subscription(
        &self,
        request: Request<GetSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        handle!(self, request, get_subscription)
    }

    async fn update_subscription(
        &self,
        request: Request<UpdateSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        handle!(self, request, update_subscription)
    }

    async fn get_usage(&self, request: Request<GetUsageRequest>) -> Result<Response<Usage>, Status> {
        handle!(self, request, get_usage)
    }
}
