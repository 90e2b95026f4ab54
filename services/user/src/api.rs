//! The user service's RPCs. The access layer has already checked the token and the RPC's
//! permission; handlers scope every query to the caller's organization.

use complianceiq_kit::auth::{Identity, caller};
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::{OrganizationId, UserId};
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{UserRoleAssigned, UserRoleRemoved};
use complianceiq_proto::complianceiq::user::v1::user_service_server::UserService;
use complianceiq_proto::complianceiq::user::v1::{
    ApplyProviderRolesRequest, ApplyProviderRolesResponse, AssignRoleRequest, CheckMemberRemovalRequest,
    CreateRoleRequest, GetCurrentUserRequest, GetUserRequest, ListRolesRequest, ListRolesResponse, ListUsersRequest,
    ListUsersResponse, RemoveRoleRequest, Role, RoleAssignment, UpdateCurrentUserRequest, User, UserState,
};
use tonic::{Request, Response, Status};

use crate::authorization;
use crate::domain::{self, ORGANIZATION_ADMIN};
use crate::store::{self, ProfileRecord, RoleRecord, UserFilter};

/// The user service.
pub struct UserApi {
    pub database: ModuleDatabase,
}

fn state_of(stored: &str) -> UserState {
    match stored {
        "active" => UserState::Active,
        "suspended" => UserState::Suspended,
        _ => UserState::Unspecified,
    }
}

fn role_message(role: &RoleRecord, organization: &str) -> Role {
    Role {
        id: role.id.clone(),
        organization_id: organization.to_string(),
        name: role.name.clone(),
        description: role.description.clone(),
        permissions: role.permissions.clone(),
        built_in: role.built_in,
        create_time: Some(time::to_timestamp(role.created_at)),
        update_time: Some(time::to_timestamp(role.updated_at)),
    }
}

fn user_message(profile: &ProfileRecord, organization: &str, roles: &[RoleRecord]) -> User {
    User {
        id: profile.user_id.to_string(),
        organization_id: organization.to_string(),
        email: profile.email.clone(),
        full_name: profile.editable.full_name.clone(),
        job_title: profile.editable.job_title.clone(),
        phone_number: profile.editable.phone_number.clone(),
        avatar_uri: profile.editable.avatar_uri.clone(),
        state: state_of(&profile.state) as i32,
        role_ids: roles.iter().map(|role| role.id.clone()).collect(),
        permissions: domain::union(roles.iter().map(|role| role.permissions.as_slice())),
        preferences: Some(domain::preferences(&profile.editable)),
        last_login_time: None,
        create_time: Some(time::to_timestamp(profile.created_at)),
        update_time: Some(time::to_timestamp(profile.updated_at)),
    }
}

fn user_not_found(user: UserId) -> ApiError {
    ApiError::not_found("User", user.to_string())
}

impl UserApi {
    async fn load_user(&self, tx: &mut TenantTx, user: UserId) -> Result<User, ApiError> {
        let profile = store::profile_of(tx, user).await?.ok_or_else(|| user_not_found(user))?;
        let roles = store::roles_of(tx, user).await?;
        Ok(user_message(&profile, tx.tenant(), &roles))
    }

    async fn get_current(&self, identity: &Identity) -> Result<User, ApiError> {
        let mut tx = self.database.read(identity.tenant()?).await?;
        let user = self.load_user(&mut tx, identity.user_id).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn update_current(
        &self,
        identity: &Identity,
        request: UpdateCurrentUserRequest,
        context: &RequestContext,
    ) -> Result<User, ApiError> {
        let input = request.user.ok_or_else(|| ApiError::invalid_field("user", "REQUIRED", "user is required"))?;
        let mut tx = self.database.write(identity.tenant()?).await?;
        let profile =
            store::profile_of(&mut tx, identity.user_id).await?.ok_or_else(|| user_not_found(identity.user_id))?;
        let next = domain::update_profile(&profile.editable, &input, request.update_mask.as_ref())?;
        if next != profile.editable {
            store::update_profile(&mut tx, identity.user_id, &next, time::now_micros()).await?;
            if next.timezone != profile.editable.timezone {
                authorization::publish(&mut tx, identity.user_id, &profile.email, true, context).await?;
            }
        }
        let user = self.load_user(&mut tx, identity.user_id).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn get(&self, identity: &Identity, request: GetUserRequest) -> Result<User, ApiError> {
        let user = UserId::parse_field("user_id", &request.user_id)?;
        let mut tx = self.database.read(identity.tenant()?).await?;
        let found = self.load_user(&mut tx, user).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn list(&self, identity: &Identity, request: ListUsersRequest) -> Result<ListUsersResponse, ApiError> {
        let role_id = if request.role_id.is_empty() {
            None
        } else {
            Some(complianceiq_kit::ids::parse_uuid("role_id", &request.role_id)?.to_string())
        };
        let state = match request.state() {
            UserState::Unspecified => None,
            UserState::Active => Some("active"),
            UserState::Suspended => Some("suspended"),
            UserState::Invited => {
                return Err(ApiError::invalid_field(
                    "state",
                    "UNSUPPORTED",
                    "invited people are listed by the organization service (ListMembers)",
                ));
            }
        };
        if request.query.chars().count() > 200 {
            return Err(ApiError::invalid_field("query", "TOO_LONG", "query has at most 200 characters"));
        }
        let query = (!request.query.trim().is_empty()).then(|| request.query.trim().to_lowercase());
        let filters = format!("{role_id:?}|{state:?}|{query:?}");
        let page = PageRequest::parse(request.page_size, &request.page_token, &filters)?;
        let filter = UserFilter { role_id, state, query };

        let mut tx = self.database.read(identity.tenant()?).await?;
        let (mut profiles, total) = store::list_profiles(&mut tx, &filter, &page).await?;
        let next_page_token =
            page.finish(&mut profiles, |profile| vec![profile.email.clone(), profile.user_id.to_string()]);
        let ids: Vec<String> = profiles.iter().map(|p| p.user_id.to_string()).collect();
        let assignments = store::role_ids_of(&mut tx, &ids).await?;
        let mut users = Vec::with_capacity(profiles.len());
        for profile in &profiles {
            let id = profile.user_id.to_string();
            let mut roles = Vec::new();
            for (_, role_id) in assignments.iter().filter(|(user, _)| *user == id) {
                if let Some(role) = store::role_by_id(&mut tx, role_id).await? {
                    roles.push(role);
                }
            }
            users.push(user_message(profile, tx.tenant(), &roles));
        }
        tx.commit().await?;
        Ok(ListUsersResponse { users, next_page_token, total_size: total as i32 })
    }

    async fn assign_role(
        &self,
        identity: &Identity,
        request: AssignRoleRequest,
        context: &RequestContext,
    ) -> Result<RoleAssignment, ApiError> {
        let user = UserId::parse_field("user_id", &request.user_id)?;
        let role_id = complianceiq_kit::ids::parse_uuid("role_id", &request.role_id)?.to_string();
        let now = time::now_micros();
        let mut tx = self.database.write(identity.tenant()?).await?;
        let profile = store::profile_of(&mut tx, user).await?.ok_or_else(|| user_not_found(user))?;
        let role =
            store::role_by_id(&mut tx, &role_id).await?.ok_or_else(|| ApiError::not_found("Role", role_id.clone()))?;
        domain::check_can_grant(&identity.permissions, &role.permissions)?;
        if store::assign(&mut tx, user, &role.id, &identity.user_id.to_string(), now).await? {
            let assigned = UserRoleAssigned {
                user_id: user.to_string(),
                role_id: role.id.clone(),
                assigned_by: identity.user_id.to_string(),
            };
            tx.emit(Payload::UserRoleAssigned(assigned), context).await?;
            authorization::publish(&mut tx, user, &profile.email, true, context).await?;
        }
        let (assigned_by, assigned_at) = store::assignment(&mut tx, user, &role.id)
            .await?
            .ok_or_else(|| ApiError::internal("assignment vanished"))?;
        tx.commit().await?;
        Ok(RoleAssignment {
            organization_id: identity.tenant()?.to_string(),
            user_id: user.to_string(),
            role_id: role.id,
            assigned_by,
            create_time: Some(time::to_timestamp(assigned_at)),
        })
    }

    async fn remove_role(
        &self,
        identity: &Identity,
        request: RemoveRoleRequest,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        let user = UserId::parse_field("user_id", &request.user_id)?;
        let role_id = complianceiq_kit::ids::parse_uuid("role_id", &request.role_id)?.to_string();
        let mut tx = self.database.write(identity.tenant()?).await?;
        let profile = store::profile_of(&mut tx, user).await?.ok_or_else(|| user_not_found(user))?;
        let role =
            store::role_by_id(&mut tx, &role_id).await?.ok_or_else(|| ApiError::not_found("Role", role_id.clone()))?;
        if store::assignment(&mut tx, user, &role.id).await?.is_none() {
            domain::check_can_grant(&identity.permissions, &role.permissions)?;
            return Err(ApiError::not_found("RoleAssignment", format!("{user}/{}", role.id)));
        }
        check_role_removal(&mut tx, &identity.permissions, &role).await?;
        store::unassign(&mut tx, user, &role.id).await?;
        tx.emit(
            Payload::UserRoleRemoved(UserRoleRemoved { user_id: user.to_string(), role_id: role.id.clone() }),
            context,
        )
        .await?;
        authorization::publish(&mut tx, user, &profile.email, true, context).await?;
        tx.commit().await
    }

    async fn list_roles(&self, identity: &Identity, request: ListRolesRequest) -> Result<ListRolesResponse, ApiError> {
        let page = PageRequest::parse(request.page_size, &request.page_token, "")?;
        let mut tx = self.database.read(identity.tenant()?).await?;
        let mut roles = store::list_roles(&mut tx, &page).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut roles, |role| vec![role.name.clone(), role.id.clone()]);
        let organization = identity.tenant()?.to_string();
        Ok(ListRolesResponse {
            roles: roles.iter().map(|role| role_message(role, &organization)).collect(),
            next_page_token,
        })
    }

    async fn create_role(&self, identity: &Identity, request: CreateRoleRequest) -> Result<Role, ApiError> {
        let input = request.role.ok_or_else(|| ApiError::invalid_field("role", "REQUIRED", "role is required"))?;
        let permissions = domain::validate_role(&input.name, &input.description, &input.permissions)?;
        domain::check_can_grant(&identity.permissions, &permissions)?;
        let now = time::now_micros();
        let role = RoleRecord {
            id: complianceiq_kit::uuid::Uuid::now_v7().to_string(),
            name: input.name.trim().to_string(),
            description: input.description.trim().to_string(),
            permissions,
            built_in: false,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.database.write(identity.tenant()?).await?;
        if !store::insert_role(&mut tx, &role).await? {
            return Err(ApiError::AlreadyExists {
                resource_type: "Role",
                name: role.name.clone(),
                message: format!("a role named {:?} exists", role.name),
            });
        }
        tx.commit().await?;
        Ok(role_message(&role, &identity.tenant()?.to_string()))
    }
}

/// Whether someone holding `remover_permissions` may take `role` from one of its holders:
/// only a role whose permissions they hold all of, and never the last Organization Admin.
async fn check_role_removal(
    tx: &mut TenantTx,
    remover_permissions: &[String],
    role: &store::RoleRecord,
) -> Result<(), ApiError> {
    domain::check_can_grant(remover_permissions, &role.permissions)?;
    if role.built_in && role.name == ORGANIZATION_ADMIN && store::active_holders(tx, &role.id).await? <= 1 {
        return Err(ApiError::FailedPrecondition {
            reason: "LAST_ADMIN",
            message: "the organization would have no Organization Admin left; grant the role to someone else first"
                .into(),
        });
    }
    Ok(())
}

impl UserApi {
    /// RemoveMember's rules, asked by the organization service: every role the member holds
    /// must be one the remover could take away.
    async fn check_member_removal(&self, request: CheckMemberRemovalRequest) -> Result<(), ApiError> {
        let organization = OrganizationId::parse_field("organization_id", &request.organization_id)?;
        let user = UserId::parse_field("user_id", &request.user_id)?;
        let mut tx = self.database.read(organization).await?;
        for role in store::roles_of(&mut tx, user).await? {
            check_role_removal(&mut tx, &request.remover_permissions, &role).await?;
        }
        tx.commit().await
    }

    /// ApplyProviderRoles: the member's provider-managed roles made to match their groups.
    async fn apply_provider_roles(
        &self,
        request: ApplyProviderRolesRequest,
        context: &RequestContext,
    ) -> Result<ApplyProviderRolesResponse, ApiError> {
        let organization = OrganizationId::parse_field("organization_id", &request.organization_id)?;
        let user = UserId::parse_field("user_id", &request.user_id)?;
        let mut violations = FieldViolations::default();
        let managed: Vec<String> = request
            .managed_role_ids
            .iter()
            .enumerate()
            .map(|(index, id)| violations.uuid(&format!("managed_role_ids[{index}]"), id))
            .collect();
        let mut granted = Vec::new();
        for (index, id) in request.granted_role_ids.iter().enumerate() {
            let id = violations.uuid(&format!("granted_role_ids[{index}]"), id);
            granted.push(id.clone());
            if !id.is_empty() && !managed.contains(&id) {
                violations.add(
                    &format!("granted_role_ids[{index}]"),
                    "NOT_MANAGED",
                    "a granted role must be one of managed_role_ids",
                );
            }
        }
        violations.check()?;
        let now = time::now_micros();
        let mut tx = self.database.write(organization).await?;
        let profile = store::profile_of(&mut tx, user).await?.ok_or_else(|| user_not_found(user))?;
        let held: Vec<String> = store::roles_of(&mut tx, user).await?.into_iter().map(|role| role.id).collect();
        let mut changed = false;
        for role_id in managed.iter().filter(|id| !id.is_empty()) {
            // A mapping may name a role deleted since: it is skipped.
            let Some(role) = store::role_by_id(&mut tx, role_id).await? else { continue };
            let granted = granted.contains(&role.id);
            if granted && !held.contains(&role.id) {
                store::assign(&mut tx, user, &role.id, PROVIDER, now).await?;
                let assigned = UserRoleAssigned {
                    user_id: user.to_string(),
                    role_id: role.id.clone(),
                    assigned_by: PROVIDER.into(),
                };
                tx.emit(Payload::UserRoleAssigned(assigned), context).await?;
                changed = true;
            } else if !granted && held.contains(&role.id) {
                if role.built_in
                    && role.name == ORGANIZATION_ADMIN
                    && store::active_holders(&mut tx, &role.id).await? <= 1
                {
                    tracing::warn!(%user, "the provider's groups no longer give the last Organization Admin the role; kept");
                    continue;
                }
                store::unassign(&mut tx, user, &role.id).await?;
                let removed = UserRoleRemoved { user_id: user.to_string(), role_id: role.id.clone() };
                tx.emit(Payload::UserRoleRemoved(removed), context).await?;
                changed = true;
            }
        }
        let authorization_version =
            if changed { authorization::publish(&mut tx, user, &profile.email, true, context).await? } else { 0 };
        let role_ids = store::roles_of(&mut tx, user).await?.into_iter().map(|role| role.id).collect();
        tx.commit().await?;
        if changed {
            tracing::info!(%user, organization_id = %organization, "roles follow the identity provider's groups");
        }
        Ok(ApplyProviderRolesResponse { role_ids, changed, authorization_version })
    }
}

/// Who grants a role a mapping of the identity provider's groups gave.
const PROVIDER: &str = "single-sign-on";

#[tonic::async_trait]
impl UserService for UserApi {
    async fn apply_provider_roles(
        &self,
        request: Request<ApplyProviderRolesRequest>,
    ) -> Result<Response<ApplyProviderRolesResponse>, Status> {
        let context = RequestContext::of(&request);
        Ok(Response::new(UserApi::apply_provider_roles(self, request.into_inner(), &context).await?))
    }

    async fn check_member_removal(&self, request: Request<CheckMemberRemovalRequest>) -> Result<Response<()>, Status> {
        UserApi::check_member_removal(self, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn get_current_user(&self, request: Request<GetCurrentUserRequest>) -> Result<Response<User>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.get_current(&identity).await?))
    }

    async fn update_current_user(&self, request: Request<UpdateCurrentUserRequest>) -> Result<Response<User>, Status> {
        let identity = caller(&request)?;
        let context = RequestContext::of(&request);
        Ok(Response::new(self.update_current(&identity, request.into_inner(), &context).await?))
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.get(&identity, request.into_inner()).await?))
    }

    async fn list_users(&self, request: Request<ListUsersRequest>) -> Result<Response<ListUsersResponse>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.list(&identity, request.into_inner()).await?))
    }

    async fn assign_role(&self, request: Request<AssignRoleRequest>) -> Result<Response<RoleAssignment>, Status> {
        let (identity, context) = (caller(&request)?, RequestContext::of(&request));
        Ok(Response::new(UserApi::assign_role(self, &identity, request.into_inner(), &context).await?))
    }

    async fn remove_role(&self, request: Request<RemoveRoleRequest>) -> Result<Response<()>, Status> {
        let (identity, context) = (caller(&request)?, RequestContext::of(&request));
        UserApi::remove_role(self, &identity, request.into_inner(), &context).await?;
        Ok(Response::new(()))
    }

    async fn list_roles(&self, request: Request<ListRolesRequest>) -> Result<Response<ListRolesResponse>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(UserApi::list_roles(self, &identity, request.into_inner()).await?))
    }

    async fn create_role(&self, request: Request<CreateRoleRequest>) -> Result<Response<Role>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(UserApi::create_role(self, &identity, request.into_inner()).await?))
    }
}
