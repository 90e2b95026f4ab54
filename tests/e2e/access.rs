//! Authorization over every RPC of the auth, user and organization services: each refuses a
//! caller without its permission, and a second organization sees, changes and deletes
//! nothing of the first.

use std::collections::BTreeSet;
use std::time::Duration;

use complianceiq_proto::RPC_ACCESS;
use complianceiq_proto::complianceiq::auth::v1::{
    CreateApiKeyRequest, ListApiKeysRequest, LoginRequest, LogoutRequest, RefreshRequest, RevokeApiKeyRequest,
    login_response,
};
use complianceiq_proto::complianceiq::organization::v1::*;
use complianceiq_proto::complianceiq::user::v1::{
    AssignRoleRequest, CreateRoleRequest, GetCurrentUserRequest, GetUserRequest, ListRolesRequest, ListUsersRequest,
    RemoveRoleRequest, Role, UpdateCurrentUserRequest, User,
};
use tonic::Code;

use crate::harness::{TestPlatform, call_raw, reason};
use crate::people::{PASSWORD, Tenant, authorized, claims};
use crate::platform_tests;

platform_tests!(
    every_rpc_refuses_a_caller_without_its_permission,
    a_second_organization_sees_changes_and_deletes_nothing_of_the_first,
    permissions_flow_into_the_next_token_and_cannot_be_escalated,
);

const SERVICES: [&str; 4] = [
    "complianceiq.auth.v1.AuthService",
    "complianceiq.user.v1.UserService",
    "complianceiq.organization.v1.OrganizationService",
    "complianceiq.organization.v1.StaffService",
];

fn permissions(token: &str) -> Vec<String> {
    claims(token)["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

pub(crate) async fn create_role(platform: &TestPlatform, tenant: &Tenant, name: &str, permissions: &[&str]) -> Role {
    platform
        .users()
        .await
        .create_role(authorized(
            CreateRoleRequest {
                role: Some(Role {
                    name: name.into(),
                    permissions: permissions.iter().map(|p| p.to_string()).collect(),
                    ..Default::default()
                }),
            },
            tenant.token(),
        ))
        .await
        .expect("create role")
        .into_inner()
}

async fn every_rpc_refuses_a_caller_without_its_permission(platform: &TestPlatform) {
    let tenant = platform.tenant("Guarded").await;
    let role = create_role(platform, &tenant, "Insight Reader", &["insights:read"]).await;
    let (mut reader, _) = platform.member(&tenant, "reader@guarded.example.com", std::slice::from_ref(&role.id)).await;
    platform
        .refresh_until(&mut reader, |tokens| permissions(&tokens.access_token).contains(&"insights:read".to_string()))
        .await;
    let held = permissions(reader.token());
    assert_eq!(held, ["insights:read", "organizations:create"]);
    let unscoped = platform.person("drifter@example.com").await;

    let (mut public, mut permission_checked, mut scope_checked, mut staff_checked) = (0, 0, 0, 0);
    for rule in RPC_ACCESS.iter().filter(|rule| SERVICES.iter().any(|s| rule.path.starts_with(&format!("/{s}/")))) {
        let rpc = &rule.path[1..];
        let module = rpc.split('.').nth(1).unwrap();
        let channel = platform.channel(module).await;
        if rule.public {
            public += 1;
            continue;
        }
        if rule.internal {
            // Between modules only: the mesh refuses a module it does not name before any
            // token (no internal RPC names the webhook module).
            let refused = call_raw(platform.channel_as("webhook", module), rpc, None).await.unwrap_err();
            assert_eq!(refused.code(), Code::PermissionDenied, "{rpc}");
            continue;
        }
        let anonymous = call_raw(channel.clone(), rpc, None).await.unwrap_err();
        assert_eq!((anonymous.code(), reason(&anonymous).as_str()), (Code::Unauthenticated, "TOKEN_MISSING"), "{rpc}");
        if rule.staff {
            // No tenant token reaches the staff API: not its organization's admin, not a
            // person in none.
            for token in [tenant.token(), unscoped.token()] {
                let status = call_raw(channel.clone(), rpc, Some(token)).await.unwrap_err();
                assert_eq!((status.code(), reason(&status).as_str()), (Code::PermissionDenied, "STAFF_ONLY"), "{rpc}");
            }
            staff_checked += 1;
            continue;
        }
        if !rule.allow_unscoped {
            let status = call_raw(channel.clone(), rpc, Some(unscoped.token())).await.unwrap_err();
            assert_eq!(
                (status.code(), reason(&status).as_str()),
                (Code::PermissionDenied, "ORGANIZATION_REQUIRED"),
                "{rpc}"
            );
            scope_checked += 1;
        }
        match rule.permission {
            // Everyone may found an organization; every token carries it.
            Some("organizations:create") => {}
            Some(permission) => {
                assert!(!held.iter().any(|p| p == permission));
                let status = call_raw(channel.clone(), rpc, Some(reader.token())).await.unwrap_err();
                assert_eq!(
                    (status.code(), reason(&status).as_str()),
                    (Code::PermissionDenied, "PERMISSION_MISSING"),
                    "{rpc} needs {permission}"
                );
                assert!(status.message().contains(permission));
                permission_checked += 1;
            }
            None => {}
        }
    }
    assert_eq!(
        public, 13,
        "register, login, refresh, forgot/reset password, verify email, verify MFA, JWKS, and the five single \
         sign-on browser endpoints (start, OIDC callback, SAML ACS and metadata, ticket)"
    );
    assert_eq!(
        permission_checked, 29,
        "6 user, 14 organization, 3 API key and 6 single sign-on RPCs name a permission besides organizations:create"
    );
    assert_eq!(
        scope_checked, 31,
        "every user RPC, 14 organization RPCs, the API key and the single sign-on configuration RPCs act in an \
         organization"
    );
    assert_eq!(staff_checked, 5, "the staff service's four RPCs and ResetMemberMfa");
}

/// Everything of an organization its admin can read, to compare before and after.
async fn snapshot(platform: &TestPlatform, tenant: &Tenant) -> Vec<String> {
    let mut organizations = platform.organizations().await;
    let mut users = platform.users().await;
    let id = tenant.id().to_string();
    let token = tenant.token();
    vec![
        format!(
            "{:?}",
            organizations
                .get_organization(authorized(GetOrganizationRequest { org_id: id.clone() }, token))
                .await
                .unwrap()
                .into_inner()
        ),
        format!(
            "{:?}",
            organizations
                .list_members(authorized(ListMembersRequest { org_id: id.clone(), ..Default::default() }, token))
                .await
                .unwrap()
                .into_inner()
        ),
        format!(
            "{:?}",
            organizations
                .list_teams(authorized(ListTeamsRequest { org_id: id.clone(), ..Default::default() }, token))
                .await
                .unwrap()
                .into_inner()
        ),
        format!(
            "{:?}",
            organizations
                .get_subscription(authorized(GetSubscriptionRequest { org_id: id.clone() }, token))
                .await
                .unwrap()
                .into_inner()
        ),
        format!(
            "{:?}",
            organizations
                .get_usage(authorized(GetUsageRequest { org_id: id.clone() }, token))
                .await
                .unwrap()
                .into_inner()
        ),
        format!("{:?}", users.list_users(authorized(ListUsersRequest::default(), token)).await.unwrap().into_inner()),
        format!("{:?}", users.list_roles(authorized(ListRolesRequest::default(), token)).await.unwrap().into_inner()),
        format!(
            "{:?}",
            platform
                .auth()
                .await
                .list_api_keys(authorized(ListApiKeysRequest::default(), token))
                .await
                .unwrap()
                .into_inner()
        ),
    ]
}

fn denied(result: Result<impl std::fmt::Debug, tonic::Status>, expected: Code, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), expected, "{what}: {status:?}");
}

async fn a_second_organization_sees_changes_and_deletes_nothing_of_the_first(platform: &TestPlatform) {
    // Organization A: an admin, a custom role, a member holding it, a team, a pending invitation.
    let a = platform.tenant("Alpha").await;
    let role_a = create_role(platform, &a, "Alpha Readers", &["insights:read"]).await;
    let (member_a, membership_a) =
        platform.member(&a, "member@alpha.example.com", std::slice::from_ref(&role_a.id)).await;
    let mut organizations = platform.organizations().await;
    let team_a = organizations
        .create_team(authorized(
            CreateTeamRequest {
                org_id: a.id().into(),
                team: Some(Team { name: "Alpha Team".into(), ..Default::default() }),
            },
            a.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    organizations
        .add_team_member(authorized(
            AddTeamMemberRequest {
                org_id: a.id().into(),
                team_id: team_a.id.clone(),
                user_id: member_a.user_id.clone(),
            },
            a.token(),
        ))
        .await
        .unwrap();
    organizations
        .add_member(authorized(
            AddMemberRequest { org_id: a.id().into(), email: "pending@alpha.example.com".into(), ..Default::default() },
            a.token(),
        ))
        .await
        .unwrap();
    let invitation_a = platform.token_from_mail("pending@alpha.example.com", "You are invited").await;
    let key_a = platform
        .auth()
        .await
        .create_api_key(authorized(
            CreateApiKeyRequest {
                name: "Alpha key".into(),
                permissions: vec!["insights:read".into()],
                expire_time: None,
            },
            a.token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    let before = snapshot(platform, &a).await;

    // Organization B, with full rights in B.
    let b = platform.tenant("Beta").await;
    let (bt, at) = (b.token(), a.id().to_string());
    let mut users = platform.users().await;
    let mut auth = platform.auth().await;
    let mut covered = BTreeSet::new();
    let mut cover = |rpc: &str| assert!(covered.insert(rpc.to_string()), "{rpc} twice");

    // auth: a person's tokens only ever name organizations they belong to.
    cover("Login");
    let login = auth
        .login(LoginRequest { email: b.admin.email.clone(), password: PASSWORD.into(), organization_id: at.clone() })
        .await;
    denied(login, Code::PermissionDenied, "B logs in into A");
    cover("Refresh");
    denied(
        auth.refresh(RefreshRequest {
            refresh_token: b.admin.tokens.refresh_token.clone(),
            organization_id: at.clone(),
        })
        .await,
        Code::PermissionDenied,
        "B refreshes into A",
    );
    cover("Logout");
    let logout = auth
        .logout(authorized(
            LogoutRequest { refresh_token: a.admin.tokens.refresh_token.clone(), all_sessions: false },
            bt,
        ))
        .await;
    denied(logout, Code::InvalidArgument, "B logs A out");
    // Per-person RPCs hold no organization data: registration, verification, password reset,
    // MFA act on the caller (or the holder of a mailed token); JWKS is public keys.
    for rpc in ["Register", "VerifyEmail", "ForgotPassword", "ResetPassword", "EnableMfa", "VerifyMfa", "GetJwks"] {
        cover(rpc);
    }
    // A person's organizations are the caller's own memberships: B's admin sees B only.
    cover("ListAccountOrganizations");
    let listed = auth
        .list_account_organizations(authorized(
            complianceiq_proto::complianceiq::auth::v1::ListAccountOrganizationsRequest {},
            bt,
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed.organizations.iter().map(|o| o.organization_id.as_str()).collect();
    assert_eq!(ids, [b.id()], "B lists its own organization only");
    // API keys: B's are B's; A's are out of reach.
    cover("CreateApiKey");
    let key_b = auth
        .create_api_key(authorized(
            CreateApiKeyRequest {
                name: "Beta key".into(),
                permissions: vec!["insights:read".into()],
                expire_time: None,
            },
            bt,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(key_b.api_key.unwrap().organization_id, b.id());
    cover("ListApiKeys");
    let listed = auth.list_api_keys(authorized(ListApiKeysRequest::default(), bt)).await.unwrap().into_inner();
    assert!(listed.api_keys.iter().all(|key| key.organization_id == b.id() && key.id != key_a.id), "{listed:?}");
    cover("RevokeApiKey");
    denied(
        auth.revoke_api_key(authorized(RevokeApiKeyRequest { api_key_id: key_a.id.clone() }, bt)).await,
        Code::NotFound,
        "B revokes A's key",
    );

    // Single sign-on: A's configuration and domains are out of B's reach, whatever B sends.
    use complianceiq_proto::complianceiq::auth::v1 as sso;
    cover("GetSsoConfig");
    denied(
        auth.get_sso_config(authorized(sso::GetSsoConfigRequest { org_id: at.clone() }, bt)).await,
        Code::PermissionDenied,
        "B reads A's SSO",
    );
    cover("UpdateSsoConfig");
    denied(
        auth.update_sso_config(authorized(
            sso::UpdateSsoConfigRequest { org_id: at.clone(), config: Some(sso::SsoConfig::default()) },
            bt,
        ))
        .await,
        Code::PermissionDenied,
        "B configures A's SSO",
    );
    cover("DeleteSsoConfig");
    denied(
        auth.delete_sso_config(authorized(sso::DeleteSsoConfigRequest { org_id: at.clone() }, bt)).await,
        Code::PermissionDenied,
        "B removes A's SSO",
    );
    cover("AddSsoDomain");
    denied(
        auth.add_sso_domain(authorized(
            sso::AddSsoDomainRequest { org_id: at.clone(), domain: "alpha.example.com".into() },
            bt,
        ))
        .await,
        Code::PermissionDenied,
        "B claims a domain for A",
    );
    cover("VerifySsoDomain");
    denied(
        auth.verify_sso_domain(authorized(
            sso::VerifySsoDomainRequest { org_id: at.clone(), domain: "alpha.example.com".into() },
            bt,
        ))
        .await,
        Code::PermissionDenied,
        "B verifies A's domain",
    );
    cover("RemoveSsoDomain");
    denied(
        auth.remove_sso_domain(authorized(
            sso::RemoveSsoDomainRequest { org_id: at.clone(), domain: "alpha.example.com".into() },
            bt,
        ))
        .await,
        Code::PermissionDenied,
        "B removes A's domain",
    );
    // The browser endpoints act for whoever the provider vouches for, in the organization
    // their verified domain names (sso.rs covers them end to end); the SAML metadata is
    // public by nature (it names the organization's entity id and endpoint, nothing more).
    for rpc in ["StartSso", "FinishOidcSso", "FinishSamlSso", "GetSamlMetadata", "ExchangeSsoTicket"] {
        cover(rpc);
    }

    // user: B's calls see B only.
    cover("GetCurrentUser");
    let me = users.get_current_user(authorized(GetCurrentUserRequest {}, bt)).await.unwrap().into_inner();
    assert_eq!(me.organization_id, b.organization.id);
    cover("UpdateCurrentUser");
    let renamed = users
        .update_current_user(authorized(
            UpdateCurrentUserRequest {
                user: Some(User { full_name: "Beta Admin".into(), ..Default::default() }),
                update_mask: None,
            },
            bt,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((renamed.id.as_str(), renamed.organization_id.as_str()), (b.admin.user_id.as_str(), b.id()));
    cover("GetUser");
    for user in [&member_a.user_id, &a.admin.user_id] {
        denied(
            users.get_user(authorized(GetUserRequest { user_id: user.clone() }, bt)).await,
            Code::NotFound,
            "B reads a user of A",
        );
    }
    cover("ListUsers");
    let listed = users.list_users(authorized(ListUsersRequest::default(), bt)).await.unwrap().into_inner();
    assert_eq!(listed.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), [b.admin.user_id.as_str()]);
    cover("AssignRole");
    denied(
        users
            .assign_role(authorized(
                AssignRoleRequest { user_id: member_a.user_id.clone(), role_id: role_a.id.clone() },
                bt,
            ))
            .await,
        Code::NotFound,
        "B assigns in A",
    );
    denied(
        users
            .assign_role(authorized(
                AssignRoleRequest { user_id: b.admin.user_id.clone(), role_id: role_a.id.clone() },
                bt,
            ))
            .await,
        Code::NotFound,
        "B takes A's role",
    );
    cover("RemoveRole");
    denied(
        users
            .remove_role(authorized(
                RemoveRoleRequest { user_id: member_a.user_id.clone(), role_id: role_a.id.clone() },
                bt,
            ))
            .await,
        Code::NotFound,
        "B removes in A",
    );
    cover("ListRoles");
    let roles = users.list_roles(authorized(ListRolesRequest::default(), bt)).await.unwrap().into_inner();
    assert!(roles.roles.iter().all(|role| role.id != role_a.id && role.organization_id == b.organization.id));
    cover("CreateRole");
    let role_b = users
        .create_role(authorized(
            CreateRoleRequest {
                role: Some(Role {
                    name: "Alpha Readers".into(),
                    permissions: vec!["insights:read".into()],
                    ..Default::default()
                }),
            },
            bt,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(role_b.organization_id, b.organization.id, "the same name is B's own role");

    // organization: A's paths are refused; A's ids under B's path do not exist.
    cover("CreateOrganization");
    let c = organizations
        .create_organization(authorized(
            CreateOrganizationRequest {
                organization: Some(Organization { display_name: "Alpha".into(), ..Default::default() }),
            },
            bt,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(c.slug, a.organization.slug, "A's slug stays A's");
    cover("GetOrganization");
    denied(
        organizations.get_organization(authorized(GetOrganizationRequest { org_id: at.clone() }, bt)).await,
        Code::PermissionDenied,
        "get A",
    );
    cover("UpdateOrganization");
    let update = UpdateOrganizationRequest {
        org_id: at.clone(),
        organization: Some(Organization { display_name: "Owned".into(), ..Default::default() }),
        update_mask: None,
    };
    denied(organizations.update_organization(authorized(update, bt)).await, Code::PermissionDenied, "update A");
    cover("DeleteOrganization");
    denied(
        organizations
            .delete_organization(authorized(DeleteOrganizationRequest { org_id: at.clone(), etag: String::new() }, bt))
            .await,
        Code::PermissionDenied,
        "delete A",
    );
    cover("ListMembers");
    denied(
        organizations
            .list_members(authorized(ListMembersRequest { org_id: at.clone(), ..Default::default() }, bt))
            .await,
        Code::PermissionDenied,
        "list A's members",
    );
    cover("AddMember");
    denied(
        organizations
            .add_member(authorized(
                AddMemberRequest { org_id: at.clone(), email: "spy@beta.example.com".into(), ..Default::default() },
                bt,
            ))
            .await,
        Code::PermissionDenied,
        "invite into A",
    );
    cover("RemoveMember");
    denied(
        organizations
            .remove_member(authorized(
                RemoveMemberRequest { org_id: at.clone(), member_id: membership_a.id.clone() },
                bt,
            ))
            .await,
        Code::PermissionDenied,
        "remove from A",
    );
    denied(
        organizations
            .remove_member(authorized(
                RemoveMemberRequest { org_id: b.id().into(), member_id: membership_a.id.clone() },
                bt,
            ))
            .await,
        Code::NotFound,
        "A's member under B",
    );
    cover("AcceptInvitation");
    denied(
        organizations.accept_invitation(authorized(AcceptInvitationRequest { token: invitation_a }, bt)).await,
        Code::PermissionDenied,
        "B takes A's invitation",
    );
    cover("CreateTeam");
    denied(
        organizations
            .create_team(authorized(
                CreateTeamRequest {
                    org_id: at.clone(),
                    team: Some(Team { name: "Spies".into(), ..Default::default() }),
                },
                bt,
            ))
            .await,
        Code::PermissionDenied,
        "team in A",
    );
    cover("ListTeams");
    denied(
        organizations.list_teams(authorized(ListTeamsRequest { org_id: at.clone(), ..Default::default() }, bt)).await,
        Code::PermissionDenied,
        "A's teams",
    );
    let b_teams = organizations
        .list_teams(authorized(ListTeamsRequest { org_id: b.id().into(), ..Default::default() }, bt))
        .await
        .unwrap()
        .into_inner();
    assert!(b_teams.teams.is_empty());
    cover("DeleteTeam");
    denied(
        organizations
            .delete_team(authorized(DeleteTeamRequest { org_id: at.clone(), team_id: team_a.id.clone() }, bt))
            .await,
        Code::PermissionDenied,
        "delete A's team",
    );
    denied(
        organizations
            .delete_team(authorized(DeleteTeamRequest { org_id: b.id().into(), team_id: team_a.id.clone() }, bt))
            .await,
        Code::NotFound,
        "A's team under B",
    );
    cover("AddTeamMember");
    let join = |org: &str, user: &str| AddTeamMemberRequest {
        org_id: org.into(),
        team_id: team_a.id.clone(),
        user_id: user.into(),
    };
    denied(
        organizations.add_team_member(authorized(join(&at, &b.admin.user_id), bt)).await,
        Code::PermissionDenied,
        "join A's team",
    );
    denied(
        organizations.add_team_member(authorized(join(b.id(), &b.admin.user_id), bt)).await,
        Code::NotFound,
        "A's team under B",
    );
    cover("RemoveTeamMember");
    let leave = |org: &str| RemoveTeamMemberRequest {
        org_id: org.into(),
        team_id: team_a.id.clone(),
        user_id: member_a.user_id.clone(),
    };
    denied(
        organizations.remove_team_member(authorized(leave(&at), bt)).await,
        Code::PermissionDenied,
        "empty A's team",
    );
    denied(organizations.remove_team_member(authorized(leave(b.id()), bt)).await, Code::NotFound, "A's team under B");
    cover("GetSubscription");
    denied(
        organizations.get_subscription(authorized(GetSubscriptionRequest { org_id: at.clone() }, bt)).await,
        Code::PermissionDenied,
        "A's subscription",
    );
    cover("UpdateSubscription");
    let upgrade = UpdateSubscriptionRequest {
        org_id: at.clone(),
        subscription: Some(Subscription { plan: Plan::Enterprise as i32, ..Default::default() }),
        update_mask: None,
    };
    denied(organizations.update_subscription(authorized(upgrade, bt)).await, Code::PermissionDenied, "change A's plan");
    cover("GetUsage");
    denied(
        organizations.get_usage(authorized(GetUsageRequest { org_id: at.clone() }, bt)).await,
        Code::PermissionDenied,
        "A's usage",
    );

    // The staff API is no tenant's: B's admin reaches none of it, about A or anyone.
    for rpc in [
        "complianceiq.organization.v1.StaffService/ListOrganizations",
        "complianceiq.organization.v1.StaffService/GetOrganizationHealth",
        "complianceiq.organization.v1.StaffService/SuspendOrganization",
        "complianceiq.organization.v1.StaffService/RestoreOrganization",
        "complianceiq.auth.v1.AuthService/ResetMemberMfa",
    ] {
        cover(rpc.rsplit('/').next().unwrap());
        let module = rpc.split('.').nth(1).unwrap();
        let status = call_raw(platform.channel(module).await, rpc, Some(bt)).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::PermissionDenied, "STAFF_ONLY"), "{rpc}");
    }

    // The table covers every RPC of the four services.
    let all: BTreeSet<String> = RPC_ACCESS
        .iter()
        .filter(|rule| !rule.internal && SERVICES.iter().any(|s| rule.path.starts_with(&format!("/{s}/"))))
        .map(|rule| rule.path.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(covered, all);

    // A is exactly as it was, and its people still work.
    assert_eq!(snapshot(platform, &a).await, before);
    let mut a_admin = a.admin.clone();
    platform.refresh_until(&mut a_admin, |_| true).await;
    users
        .get_current_user(authorized(GetCurrentUserRequest {}, member_a.token()))
        .await
        .expect("A's member still works");
}

async fn permissions_flow_into_the_next_token_and_cannot_be_escalated(platform: &TestPlatform) {
    let tenant = platform.tenant("Flow").await;
    let admin_claims = claims(tenant.token());
    assert_eq!(admin_claims["roles"], serde_json::json!(["Organization Admin"]));
    assert_eq!(permissions(tenant.token()).len(), complianceiq_proto::PERMISSIONS.len());

    let (mut member, membership) = platform.member(&tenant, "member@flow.example.com", &[]).await;
    assert_eq!(claims(member.token())["roles"], serde_json::json!(["Organization Member"]));
    assert!(!permissions(member.token()).contains(&"analysis:create".to_string()));

    let mut users = platform.users().await;
    let roles =
        users.list_roles(authorized(ListRolesRequest::default(), tenant.token())).await.unwrap().into_inner().roles;
    let role = |name: &str| roles.iter().find(|r| r.name == name).unwrap().id.clone();
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Analyst", "Organization Admin", "Organization Member", "Viewer"]);

    // Granting a role reaches the member's next token; taking it away too.
    let assign = |user: &str, role: String| AssignRoleRequest { user_id: user.into(), role_id: role };
    users.assign_role(authorized(assign(&member.user_id, role("Analyst")), tenant.token())).await.expect("assign");
    platform
        .refresh_until(&mut member, |t| permissions(&t.access_token).contains(&"analysis:create".to_string()))
        .await;
    assert_eq!(claims(member.token())["roles"], serde_json::json!(["Analyst", "Organization Member"]));
    users
        .remove_role(authorized(
            RemoveRoleRequest { user_id: member.user_id.clone(), role_id: role("Analyst") },
            tenant.token(),
        ))
        .await
        .expect("remove");
    platform
        .refresh_until(&mut member, |t| !permissions(&t.access_token).contains(&"analysis:create".to_string()))
        .await;

    // A member cannot hand out roles; a role manager cannot hand out more than they hold.
    let refused = users
        .assign_role(authorized(assign(&member.user_id, role("Organization Admin")), member.token()))
        .await
        .unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::PermissionDenied, "PERMISSION_MISSING"));
    let manager = create_role(platform, &tenant, "Role Manager", &["users:read", "users:update"]).await;
    users.assign_role(authorized(assign(&member.user_id, manager.id.clone()), tenant.token())).await.unwrap();
    platform.refresh_until(&mut member, |t| permissions(&t.access_token).contains(&"users:update".to_string())).await;
    let escalation = users
        .assign_role(authorized(assign(&member.user_id, role("Organization Admin")), member.token()))
        .await
        .unwrap_err();
    assert_eq!((escalation.code(), reason(&escalation).as_str()), (Code::PermissionDenied, "CANNOT_GRANT"));
    let create = users
        .create_role(authorized(
            CreateRoleRequest {
                role: Some(Role {
                    name: "Everything".into(),
                    permissions: vec!["organizations:delete".into()],
                    ..Default::default()
                }),
            },
            member.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(create.code(), Code::PermissionDenied);

    // The last Organization Admin cannot be removed.
    let last = users
        .remove_role(authorized(
            RemoveRoleRequest { user_id: tenant.admin.user_id.clone(), role_id: role("Organization Admin") },
            tenant.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!((last.code(), reason(&last).as_str()), (Code::FailedPrecondition, "LAST_ADMIN"));

    // A removed member loses access at once: their live access token and their session.
    platform
        .organizations()
        .await
        .remove_member(authorized(
            RemoveMemberRequest { org_id: tenant.id().into(), member_id: membership.id.clone() },
            tenant.token(),
        ))
        .await
        .expect("remove member");
    let mut revoked = false;
    for _ in 0..100 {
        match users.get_current_user(authorized(GetCurrentUserRequest {}, member.token())).await {
            Err(status) if reason(&status) == "TOKEN_REVOKED" => {
                revoked = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(revoked, "the removed member's access token was revoked");
    let session = platform
        .auth()
        .await
        .refresh(RefreshRequest { refresh_token: member.tokens.refresh_token.clone(), organization_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(reason(&session), "REFRESH_TOKEN_REVOKED");
    let relogin = platform
        .auth()
        .await
        .login(LoginRequest { email: member.email.clone(), password: PASSWORD.into(), organization_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let Some(login_response::Result::Tokens(tokens)) = relogin.result else { panic!("tokens") };
    assert_eq!(tokens.organization_id, "", "no longer a member of anything");
}
