//! Members, invitations and teams. An invitation is a membership in state `invited`; its
//! link carries a token sealed with the platform's encryption keys (authenticated and
//! opaque), naming the membership and its expiry, so it cannot be forged or extended.

use std::time::Duration;

use complianceiq_kit::auth::Identity;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::{OrganizationId, UserId, parse_uuid};
use complianceiq_kit::mail::Mail;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::{time, validate};
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{MemberInvited, MemberJoined, MemberRemoved};
use complianceiq_proto::complianceiq::organization::v1::{
    AcceptInvitationRequest, AddMemberRequest, AddTeamMemberRequest, CreateTeamRequest, DeleteTeamRequest,
    ListMembersRequest, ListMembersResponse, ListTeamsRequest, ListTeamsResponse, Member, MemberState,
    ProvisionSsoMemberRequest, RemoveMemberRequest, RemoveTeamMemberRequest, Team,
};
use complianceiq_proto::complianceiq::user::v1::CheckMemberRemovalRequest;

use crate::api::OrganizationApi;
use crate::billing;
use crate::domain::parse_plan;
use crate::organizations::{Authorization, path_tenant};
use crate::store::members::{self, MembershipRecord};
use crate::store::teams::{self, TeamRecord};
use crate::store::{self, subscriptions};

/// How long an invitation link works.
const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
const INVITATION_PURPOSE: &str = "organization-invitation";

/// A member not removed.
async fn current_member(
    tx: &mut complianceiq_kit::db::TenantTx,
    member_id: &str,
) -> Result<MembershipRecord, ApiError> {
    members::by_id(tx, member_id)
        .await?
        .filter(|record| record.state != "removed")
        .ok_or_else(|| ApiError::not_found("Member", member_id.to_string()))
}

fn member_state(stored: &str) -> MemberState {
    match stored {
        "invited" => MemberState::Invited,
        "active" => MemberState::Active,
        "removed" => MemberState::Removed,
        _ => MemberState::Unspecified,
    }
}

fn member_message(record: &MembershipRecord, organization: OrganizationId, team_ids: Vec<String>) -> Member {
    Member {
        id: record.id.clone(),
        organization_id: organization.to_string(),
        user_id: record.user_id.clone().unwrap_or_default(),
        email: record.email.clone(),
        full_name: String::new(),
        role_ids: record.role_ids.clone(),
        team_ids,
        state: member_state(&record.state) as i32,
        invited_by: record.invited_by.clone(),
        invite_time: time::to_optional_timestamp(record.invited_at),
        join_time: time::to_optional_timestamp(record.joined_at),
        invite_expire_time: time::to_optional_timestamp(record.invite_expires_at.filter(|_| record.state == "invited")),
    }
}

fn team_message(team: &TeamRecord, organization: OrganizationId, members: Vec<String>) -> Team {
    Team {
        id: team.id.clone(),
        organization_id: organization.to_string(),
        name: team.name.clone(),
        description: team.description.clone(),
        member_user_ids: members,
        create_time: Some(time::to_timestamp(team.created_at)),
        update_time: Some(time::to_timestamp(team.updated_at)),
    }
}

/// Member operations need the organization to still exist.
/// A membership just became active: its invited teams (those still there) take the person, and
/// `member.joined` tells the user service which roles to grant.
async fn joined(
    tx: &mut TenantTx,
    record: &MembershipRecord,
    user: String,
    now: i64,
    context: &RequestContext,
) -> Result<(), ApiError> {
    for team in &record.team_ids {
        if teams::by_id(tx, team).await?.is_some() {
            teams::add_member(tx, team, &user, now).await?;
        }
    }
    let joined = MemberJoined {
        user_id: user,
        role_ids: record.role_ids.clone(),
        member_id: record.id.clone(),
        email: record.email.clone(),
    };
    tx.emit(Payload::MemberJoined(joined), context).await?;
    Ok(())
}

/// Refuses one more member or invitation beyond the plan's limit.
async fn check_member_limit(tx: &mut TenantTx) -> Result<(), ApiError> {
    let plan = subscriptions::get(tx).await?.map(|s| s.plan).unwrap_or_else(|| "free".into());
    let limit = i64::from(billing::limits(parse_plan(&plan)?).max_members);
    if limit > 0 && members::count_open(tx).await? >= limit {
        return Err(ApiError::ResourceExhausted {
            reason: "PLAN_LIMIT_REACHED",
            message: format!("the {plan} plan allows {limit} members including invitations; upgrade the subscription"),
            retry_after: None,
        });
    }
    Ok(())
}

async fn require_live(tx: &mut TenantTx) -> Result<crate::domain::OrganizationRecord, ApiError> {
    let id = tx.organization_id();
    store::find_live(tx).await?.ok_or_else(|| ApiError::not_found("Organization", id.to_string()))
}

impl OrganizationApi {
    async fn member_with_teams(&self, tx: &mut TenantTx, record: &MembershipRecord) -> Result<Member, ApiError> {
        let team_ids = match &record.user_id {
            Some(user) if record.state == "active" => teams::teams_of(tx, user).await?,
            _ => record.team_ids.clone(),
        };
        Ok(member_message(record, tx.organization_id(), team_ids))
    }

    pub(crate) async fn list_members(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: ListMembersRequest,
    ) -> Result<ListMembersResponse, ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let state = match request.state() {
            MemberState::Unspecified => None,
            MemberState::Invited => Some("invited"),
            MemberState::Active => Some("active"),
            MemberState::Removed => Some("removed"),
        };
        let page = PageRequest::parse(request.page_size, &request.page_token, &format!("{state:?}"))?;
        let mut tx = self.database.read(organization).await?;
        require_live(&mut tx).await?;
        let (mut records, total) = members::list_page(&mut tx, state, &page).await?;
        let next_page_token = page.finish(&mut records, |r| vec![r.created_at.to_string(), r.id.clone()]);
        let mut listed = Vec::with_capacity(records.len());
        for record in &records {
            listed.push(self.member_with_teams(&mut tx, record).await?);
        }
        tx.commit().await?;
        Ok(ListMembersResponse { members: listed, next_page_token, total_size: total as i32 })
    }

    /// Applies the user service's role rules to removing `user`: no one removes a member
    /// more privileged than themselves, and the last Organization Admin stays.
    async fn check_removal(
        &self,
        identity: &Identity,
        organization: OrganizationId,
        user: &str,
    ) -> Result<(), ApiError> {
        let request = CheckMemberRemovalRequest {
            organization_id: organization.to_string(),
            user_id: user.to_string(),
            remover_permissions: identity.permissions.clone(),
        };
        self.users.clone().check_member_removal(request).await.map(|_| ()).map_err(|status| match status.code() {
            tonic::Code::PermissionDenied => ApiError::PermissionDenied {
                reason: "MEMBER_MORE_PRIVILEGED",
                message: format!("you cannot remove this member: {}", status.message()),
            },
            tonic::Code::FailedPrecondition => {
                ApiError::FailedPrecondition { reason: "LAST_ADMIN", message: status.message().to_string() }
            }
            _ => ApiError::Unavailable {
                reason: "USER_SERVICE_UNAVAILABLE",
                message: "the member's roles cannot be checked right now; try again".into(),
                retry_after: Some(Duration::from_secs(1)),
            }
            .log_cause(&status.message().to_string()),
        })
    }

    /// Checks invited roles against the user service, as the caller: they must exist, and
    /// the caller must hold every permission they grant.
    async fn check_roles(
        &self,
        identity: &Identity,
        authorization: Authorization,
        role_ids: &[String],
    ) -> Result<(), ApiError> {
        if role_ids.is_empty() {
            return Ok(());
        }
        let known =
            complianceiq_kit::roles::as_caller(&self.users, authorization, "assigning roles to an invitation").await?;
        let mut violations = FieldViolations::default();
        for (index, role_id) in role_ids.iter().enumerate() {
            match known.iter().find(|role| role.id == *role_id) {
                None => violations.add(
                    &format!("role_ids[{index}]"),
                    "NOT_FOUND",
                    format!("role_ids[{index}] is not a role of this organization"),
                ),
                Some(role) => {
                    let missing: Vec<&String> =
                        role.permissions.iter().filter(|p| !identity.has_permission(p)).collect();
                    if !missing.is_empty() {
                        return Err(ApiError::PermissionDenied {
                            reason: "CANNOT_GRANT",
                            message: format!(
                                "you cannot invite with the role {:?}: it grants permissions you do not hold",
                                role.name
                            ),
                        });
                    }
                }
            }
        }
        violations.check()
    }

    pub(crate) async fn add_member(
        &self,
        identity: &Identity,
        context: &RequestContext,
        authorization: Authorization,
        request: AddMemberRequest,
    ) -> Result<Member, ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let mut violations = FieldViolations::default();
        let email = validate::email("email", &request.email, &mut violations);
        let mut role_ids = Vec::new();
        for (index, role) in request.role_ids.iter().enumerate() {
            match parse_uuid(&format!("role_ids[{index}]"), role) {
                Ok(id) if !role_ids.contains(&id.to_string()) => role_ids.push(id.to_string()),
                Ok(_) => {}
                Err(_) => violations.add(
                    &format!("role_ids[{index}]"),
                    "INVALID_FORMAT",
                    format!("role_ids[{index}] must be a role id (UUID)"),
                ),
            }
        }
        let mut team_ids = Vec::new();
        for (index, team) in request.team_ids.iter().enumerate() {
            match parse_uuid(&format!("team_ids[{index}]"), team) {
                Ok(id) if !team_ids.contains(&id.to_string()) => team_ids.push(id.to_string()),
                Ok(_) => {}
                Err(_) => violations.add(
                    &format!("team_ids[{index}]"),
                    "INVALID_FORMAT",
                    format!("team_ids[{index}] must be a team id (UUID)"),
                ),
            }
        }
        violations.check()?;
        self.check_roles(identity, authorization, &role_ids).await?;

        let now = time::now_micros();
        let mut tx = self.database.write(organization).await?;
        let live = require_live(&mut tx).await?;
        let domains = &live.settings.allowed_email_domains;
        if !domains.is_empty() && !domains.iter().any(|domain| email.ends_with(&format!("@{domain}"))) {
            return Err(ApiError::invalid_field(
                "email",
                "DOMAIN_NOT_ALLOWED",
                format!("email must be an address of {}", domains.join(", ")),
            ));
        }
        for (index, team) in team_ids.iter().enumerate() {
            if teams::by_id(&mut tx, team).await?.is_none() {
                return Err(ApiError::invalid_field(
                    &format!("team_ids[{index}]"),
                    "NOT_FOUND",
                    format!("team_ids[{index}] is not a team of this organization"),
                ));
            }
        }
        check_member_limit(&mut tx).await?;
        let expires = time::after(now, INVITATION_LIFETIME);
        let record = MembershipRecord {
            id: complianceiq_kit::uuid::Uuid::now_v7().to_string(),
            user_id: None,
            email: email.clone(),
            state: "invited".into(),
            role_ids: role_ids.clone(),
            team_ids,
            invited_by: identity.user_id.to_string(),
            invited_at: Some(now),
            invite_expires_at: Some(expires),
            joined_at: None,
            removed_at: None,
            created_at: now,
            updated_at: now,
        };
        if !members::insert(&mut tx, &record).await? {
            return Err(ApiError::AlreadyExists {
                resource_type: "Member",
                name: email,
                message: "this email is already a member or invited".into(),
            });
        }
        let invited = MemberInvited {
            email: email.clone(),
            role_ids,
            invited_by: identity.user_id.to_string(),
            member_id: record.id.clone(),
        };
        tx.emit(Payload::MemberInvited(invited), context).await?;
        tx.commit().await?;

        let token = self.secrets.seal(format!("{}|{organization}|{expires}", record.id).as_bytes(), INVITATION_PURPOSE);
        let link = format!("{}/invitations/accept?token={token}", self.public_url.trim_end_matches('/'));
        let mail = Mail {
            html: None,
            attachments: Vec::new(),
            to: email,
            subject: format!("You are invited to {} on ComplianceIQ", live.display_name),
            body: format!(
                "{} invited you to join {} on ComplianceIQ.\n\nAccept the invitation (log in or register with this \
                 address first):\n\n{link}\n\nThe link expires in 7 days.\n\nToken: {token}\n",
                identity.email, live.display_name
            ),
        };
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            if let Err(error) = mailer.send(mail).await {
                tracing::warn!(%error, "sending an invitation");
            }
        });
        Ok(member_message(&record, organization, record.team_ids.clone()))
    }

    pub(crate) async fn accept_invitation(
        &self,
        identity: &Identity,
        context: &RequestContext,
        _authorization: Authorization,
        request: AcceptInvitationRequest,
    ) -> Result<Member, ApiError> {
        let invalid = || ApiError::invalid_field("token", "INVALID", "token is not an invitation token");
        if request.token.is_empty() {
            return Err(ApiError::invalid_field("token", "REQUIRED", "token is required"));
        }
        let payload = self.secrets.open(&request.token, INVITATION_PURPOSE).map_err(|_| invalid())?;
        let payload = String::from_utf8(payload).map_err(|_| invalid())?;
        let mut parts = payload.split('|');
        let (Some(member_id), Some(organization), Some(expires)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let organization = OrganizationId::from_stored(organization).map_err(|_| invalid())?;
        let expires: i64 = expires.parse().map_err(|_| invalid())?;
        let now = time::now_micros();
        if expires <= now {
            return Err(ApiError::invalid_field("token", "EXPIRED", "the invitation expired; ask for a new one"));
        }
        let mut tx = self.database.write(organization).await?;
        require_live(&mut tx).await?;
        let mut record = members::by_id(&mut tx, member_id).await?.ok_or_else(invalid)?;
        if record.state != "invited" {
            return Err(ApiError::FailedPrecondition {
                reason: "INVITATION_NOT_OPEN",
                message: "this invitation was already accepted or withdrawn".into(),
            });
        }
        if !record.email.eq_ignore_ascii_case(&identity.email) {
            return Err(ApiError::PermissionDenied {
                reason: "INVITATION_FOR_ANOTHER_EMAIL",
                message: "this invitation was sent to another email address; log in with that address".into(),
            });
        }
        let user = identity.user_id.to_string();
        if members::active_of_user(&mut tx, &user).await?.is_some() {
            return Err(ApiError::AlreadyExists {
                resource_type: "Member",
                name: user,
                message: "you are already a member".into(),
            });
        }
        record.user_id = Some(user.clone());
        record.state = "active".into();
        record.joined_at = Some(now);
        record.updated_at = now;
        members::update(&mut tx, &record).await?;
        joined(&mut tx, &record, user, now, context).await?;
        let member = self.member_with_teams(&mut tx, &record).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %organization, user_id = %identity.user_id, "invitation accepted");
        Ok(member)
    }

    /// Just-in-time membership after a single sign-on (called by the auth module).
    pub(crate) async fn provision_sso_member(
        &self,
        context: &RequestContext,
        request: ProvisionSsoMemberRequest,
    ) -> Result<Member, ApiError> {
        let organization = OrganizationId::parse_field("organization_id", &request.organization_id)?;
        let user = UserId::parse_field("user_id", &request.user_id)?.to_string();
        let mut violations = FieldViolations::default();
        let email = validate::email("email", &request.email, &mut violations);
        let mut role_ids: Vec<String> = Vec::new();
        for (index, role) in request.role_ids.iter().enumerate() {
            let id = violations.uuid(&format!("role_ids[{index}]"), role);
            if !id.is_empty() && !role_ids.contains(&id) {
                role_ids.push(id);
            }
        }
        violations.check()?;
        let now = time::now_micros();
        let mut tx = self.database.write(organization).await?;
        require_live(&mut tx).await?;
        if let Some(record) = members::active_of_user(&mut tx, &user).await? {
            let member = self.member_with_teams(&mut tx, &record).await?;
            tx.commit().await?;
            return Ok(member);
        }
        let record = match members::open_by_email(&mut tx, &email).await? {
            // An invitation for the address is accepted, with its roles and the provider's.
            Some(mut invited) if invited.state == "invited" => {
                invited.user_id = Some(user.clone());
                invited.state = "active".into();
                invited.joined_at = Some(now);
                invited.updated_at = now;
                for role in role_ids {
                    if !invited.role_ids.contains(&role) {
                        invited.role_ids.push(role);
                    }
                }
                members::update(&mut tx, &invited).await?;
                invited
            }
            Some(_) => {
                return Err(ApiError::AlreadyExists {
                    resource_type: "Member",
                    name: email,
                    message: "this email is already a member under another account".into(),
                });
            }
            None => {
                check_member_limit(&mut tx).await?;
                let record = MembershipRecord {
                    id: complianceiq_kit::uuid::Uuid::now_v7().to_string(),
                    user_id: Some(user.clone()),
                    email: email.clone(),
                    state: "active".into(),
                    role_ids,
                    team_ids: Vec::new(),
                    invited_by: "single-sign-on".into(),
                    invited_at: None,
                    invite_expires_at: None,
                    joined_at: Some(now),
                    removed_at: None,
                    created_at: now,
                    updated_at: now,
                };
                if !members::insert(&mut tx, &record).await? {
                    return Err(ApiError::Aborted {
                        reason: "CONCURRENT_SIGN_IN",
                        message: "the membership is being made by another sign-in; try again".into(),
                    });
                }
                record
            }
        };
        joined(&mut tx, &record, user, now, context).await?;
        let member = self.member_with_teams(&mut tx, &record).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %organization, member_id = %record.id, "member joined by single sign-on");
        Ok(member)
    }

    pub(crate) async fn remove_member(
        &self,
        identity: &Identity,
        context: &RequestContext,
        _authorization: Authorization,
        request: RemoveMemberRequest,
    ) -> Result<(), ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let member_id = parse_uuid("member_id", &request.member_id)?.to_string();
        let now = time::now_micros();
        let mut tx = self.database.read(organization).await?;
        require_live(&mut tx).await?;
        let record = current_member(&mut tx, &member_id).await?;
        tx.commit().await?;
        if record.user_id.as_deref() == Some(identity.user_id.to_string().as_str()) {
            return Err(ApiError::FailedPrecondition {
                reason: "CANNOT_REMOVE_SELF",
                message: "you cannot remove yourself; another member with users:delete can".into(),
            });
        }
        if let Some(user) = &record.user_id {
            // Outside a transaction: the user service reads the same database.
            self.check_removal(identity, organization, user).await?;
        }
        let mut tx = self.database.write(organization).await?;
        let mut record = current_member(&mut tx, &member_id).await?;
        record.state = "removed".into();
        record.removed_at = Some(now);
        record.updated_at = now;
        members::update(&mut tx, &record).await?;
        if let Some(user) = &record.user_id {
            teams::remove_member(&mut tx, None, user).await?;
        }
        let removed =
            MemberRemoved { user_id: record.user_id.clone().unwrap_or_default(), member_id: record.id.clone() };
        tx.emit(Payload::MemberRemoved(removed), context).await?;
        tx.commit().await
    }

    pub(crate) async fn create_team(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: CreateTeamRequest,
    ) -> Result<Team, ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let input = request.team.ok_or_else(|| ApiError::invalid_field("team", "REQUIRED", "team is required"))?;
        let mut violations = FieldViolations::default();
        violations.text("team.name", &input.name, 100);
        violations.max_chars("team.description", &input.description, 500);
        violations.check()?;
        let now = time::now_micros();
        let team = TeamRecord {
            id: complianceiq_kit::uuid::Uuid::now_v7().to_string(),
            name: input.name.trim().to_string(),
            description: input.description.trim().to_string(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.database.write(organization).await?;
        require_live(&mut tx).await?;
        if !teams::insert(&mut tx, &team).await? {
            return Err(ApiError::AlreadyExists {
                resource_type: "Team",
                name: team.name.clone(),
                message: format!("a team named {:?} exists", team.name),
            });
        }
        tx.commit().await?;
        Ok(team_message(&team, organization, Vec::new()))
    }

    pub(crate) async fn list_teams(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: ListTeamsRequest,
    ) -> Result<ListTeamsResponse, ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token, "")?;
        let mut tx = self.database.read(organization).await?;
        require_live(&mut tx).await?;
        let mut records = teams::list_page(&mut tx, &page).await?;
        let next_page_token = page.finish(&mut records, |team| vec![team.name.clone(), team.id.clone()]);
        let mut listed = Vec::with_capacity(records.len());
        for team in &records {
            listed.push(team_message(team, organization, teams::members(&mut tx, &team.id).await?));
        }
        tx.commit().await?;
        Ok(ListTeamsResponse { teams: listed, next_page_token })
    }

    pub(crate) async fn delete_team(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: DeleteTeamRequest,
    ) -> Result<(), ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let team = parse_uuid("team_id", &request.team_id)?.to_string();
        let mut tx = self.database.write(organization).await?;
        require_live(&mut tx).await?;
        if !teams::delete(&mut tx, &team).await? {
            return Err(ApiError::not_found("Team", team));
        }
        tx.commit().await
    }

    async fn change_team_membership(
        &self,
        identity: &Identity,
        org_id: &str,
        team_id: &str,
        user_id: &str,
        add: bool,
    ) -> Result<Team, ApiError> {
        let organization = path_tenant(identity, org_id)?;
        let team_id = parse_uuid("team_id", team_id)?.to_string();
        let user = UserId::parse_field("user_id", user_id)?.to_string();
        let now = time::now_micros();
        let mut tx = self.database.write(organization).await?;
        require_live(&mut tx).await?;
        let team =
            teams::by_id(&mut tx, &team_id).await?.ok_or_else(|| ApiError::not_found("Team", team_id.clone()))?;
        if add {
            if members::active_of_user(&mut tx, &user).await?.is_none() {
                return Err(ApiError::not_found("Member", user));
            }
            teams::add_member(&mut tx, &team.id, &user, now).await?;
        } else if !teams::remove_member(&mut tx, Some(&team.id), &user).await? {
            return Err(ApiError::not_found("TeamMember", format!("{}/{user}", team.id)));
        }
        let members = teams::members(&mut tx, &team.id).await?;
        tx.commit().await?;
        Ok(team_message(&team, organization, members))
    }

    pub(crate) async fn add_team_member(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: AddTeamMemberRequest,
    ) -> Result<Team, ApiError> {
        self.change_team_membership(identity, &request.org_id, &request.team_id, &request.user_id, true).await
    }

    pub(crate) async fn remove_team_member(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: RemoveTeamMemberRequest,
    ) -> Result<Team, ApiError> {
        self.change_team_membership(identity, &request.org_id, &request.team_id, &request.user_id, false).await
    }
}
