//! Members, invitations, teams, the subscription with its limits, and usage.

use std::time::Duration;

use complianceiq_kit::bus::BusMessage;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::secrets::SecretBox;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{AnalysisStarted, InstanceCreated, InstanceDeleted};
use complianceiq_proto::complianceiq::organization::v1::*;
use prost_types::FieldMask;
use tonic::Code;

use crate::harness::{TestPlatform, reason, violations};
use crate::people::{Tenant, authorized};
use crate::platform_tests;

platform_tests!(
    invitations_are_signed_single_use_and_for_their_email,
    plans_limit_members_and_plan_changes_go_through_billing,
    usage_counts_what_other_services_report,
    teams_group_members,
    a_person_lists_the_organizations_they_belong_to_and_nothing_else,
);

fn invite(tenant: &Tenant, email: &str) -> tonic::Request<AddMemberRequest> {
    authorized(
        AddMemberRequest { org_id: tenant.id().into(), email: email.into(), ..Default::default() },
        tenant.token(),
    )
}

async fn invitations_are_signed_single_use_and_for_their_email(platform: &TestPlatform) {
    let tenant = platform.tenant("Invites").await;
    let mut organizations = platform.organizations().await;
    let team = organizations
        .create_team(authorized(
            CreateTeamRequest {
                org_id: tenant.id().into(),
                team: Some(Team { name: "Risk".into(), ..Default::default() }),
            },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let invited = organizations
        .add_member(authorized(
            AddMemberRequest {
                org_id: tenant.id().into(),
                email: "Joiner@Example.com".into(),
                role_ids: vec![],
                team_ids: vec![team.id.clone()],
            },
            tenant.token(),
        ))
        .await
        .expect("invite")
        .into_inner();
    assert_eq!((invited.email.as_str(), invited.state()), ("joiner@example.com", MemberState::Invited));
    assert!(invited.invite_expire_time.is_some());
    let token = platform.token_from_mail("joiner@example.com", "You are invited").await;

    // Only the invited address may accept; a changed or made-up token is refused.
    let stranger = platform.person("stranger@example.com").await;
    let wrong_person = organizations
        .accept_invitation(authorized(AcceptInvitationRequest { token: token.clone() }, stranger.token()))
        .await
        .unwrap_err();
    assert_eq!(
        (wrong_person.code(), reason(&wrong_person).as_str()),
        (Code::PermissionDenied, "INVITATION_FOR_ANOTHER_EMAIL")
    );
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [tampered, "v1:dev:abc".into(), "garbage".into()] {
        let error = organizations
            .accept_invitation(authorized(AcceptInvitationRequest { token: bad }, stranger.token()))
            .await
            .unwrap_err();
        assert_eq!(violations(&error), [("token".to_string(), "INVALID".to_string())]);
    }
    // An expired invitation, sealed with the platform's own keys.
    let secrets = SecretBox::load_or_create(&platform.config.data_dir.join("keys").join("encryption-keys")).unwrap();
    let expired = secrets.seal(format!("{}|{}|1", invited.id, tenant.id()).as_bytes(), "organization-invitation");
    let error = organizations
        .accept_invitation(authorized(AcceptInvitationRequest { token: expired }, stranger.token()))
        .await
        .unwrap_err();
    assert_eq!(violations(&error), [("token".to_string(), "EXPIRED".to_string())]);

    let mut joiner = platform.person("joiner@example.com").await;
    let member = organizations
        .accept_invitation(authorized(AcceptInvitationRequest { token: token.clone() }, joiner.token()))
        .await
        .expect("accept")
        .into_inner();
    assert_eq!((member.state(), member.user_id.as_str()), (MemberState::Active, joiner.user_id.as_str()));
    assert_eq!(member.team_ids, [team.id.clone()]);
    let again = organizations
        .accept_invitation(authorized(AcceptInvitationRequest { token }, joiner.token()))
        .await
        .unwrap_err();
    assert_eq!(reason(&again), "INVITATION_NOT_OPEN");
    platform.switch(&mut joiner, tenant.id()).await;

    // The same email cannot be invited twice; bad invitations name their fields.
    let twice = organizations.add_member(invite(&tenant, "joiner@example.com")).await.unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);
    let bad = organizations
        .add_member(authorized(
            AddMemberRequest {
                org_id: tenant.id().into(),
                email: "nope".into(),
                role_ids: vec!["not-a-role".into()],
                team_ids: vec![uuid::Uuid::now_v7().to_string()],
            },
            tenant.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violations(&bad),
        [
            ("email".to_string(), "INVALID_FORMAT".to_string()),
            ("role_ids[0]".to_string(), "INVALID_FORMAT".to_string())
        ]
    );
    let unknown_role = organizations
        .add_member(authorized(
            AddMemberRequest {
                org_id: tenant.id().into(),
                email: "x@example.com".into(),
                role_ids: vec![uuid::Uuid::now_v7().to_string()],
                team_ids: vec![],
            },
            tenant.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&unknown_role), [("role_ids[0]".to_string(), "NOT_FOUND".to_string())]);

    // Allowed email domains restrict invitations.
    organizations
        .update_organization(authorized(
            UpdateOrganizationRequest {
                org_id: tenant.id().into(),
                organization: Some(Organization {
                    settings: Some(OrganizationSettings {
                        allowed_email_domains: vec!["example.com".into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask { paths: vec!["settings.allowed_email_domains".into()] }),
            },
            tenant.token(),
        ))
        .await
        .unwrap();
    let outside = organizations.add_member(invite(&tenant, "someone@elsewhere.org")).await.unwrap_err();
    assert_eq!(violations(&outside), [("email".to_string(), "DOMAIN_NOT_ALLOWED".to_string())]);

    // Members page through in join order; a token belongs to its filter.
    let list = |page_token: &str, state: MemberState| {
        authorized(
            ListMembersRequest {
                org_id: tenant.id().into(),
                page_size: 1,
                page_token: page_token.into(),
                state: state as i32,
            },
            tenant.token(),
        )
    };
    let first = organizations.list_members(list("", MemberState::Active)).await.unwrap().into_inner();
    assert_eq!((first.members.len(), first.total_size), (1, 2));
    assert_eq!(first.members[0].user_id, tenant.admin.user_id);
    let second =
        organizations.list_members(list(&first.next_page_token, MemberState::Active)).await.unwrap().into_inner();
    assert_eq!(second.members[0].user_id, joiner.user_id);
    assert!(second.next_page_token.is_empty());
    let mismatch = organizations.list_members(list(&first.next_page_token, MemberState::Invited)).await.unwrap_err();
    assert_eq!(violations(&mismatch), [("page_token".to_string(), "MISMATCH".to_string())]);
}

async fn plans_limit_members_and_plan_changes_go_through_billing(platform: &TestPlatform) {
    let tenant = platform.tenant("Limited").await;
    let mut organizations = platform.organizations().await;
    let subscription = organizations
        .get_subscription(authorized(GetSubscriptionRequest { org_id: tenant.id().into() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (subscription.plan(), subscription.state(), subscription.billing_provider.as_str()),
        (Plan::Free, SubscriptionState::Active, "internal")
    );
    assert_eq!(subscription.limits.unwrap().max_members, 5);
    assert_eq!(subscription.billing_email, tenant.admin.email);

    for index in 0..4 {
        organizations
            .add_member(invite(&tenant, &format!("person{index}@example.com")))
            .await
            .expect("within the plan");
    }
    let over = organizations.add_member(invite(&tenant, "one-too-many@example.com")).await.unwrap_err();
    assert_eq!((over.code(), reason(&over).as_str()), (Code::ResourceExhausted, "PLAN_LIMIT_REACHED"));

    let update = |plan: Plan, paths: &[&str]| {
        authorized(
            UpdateSubscriptionRequest {
                org_id: tenant.id().into(),
                subscription: Some(Subscription { plan: plan as i32, ..Default::default() }),
                update_mask: Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
            },
            tenant.token(),
        )
    };
    let bad = organizations.update_subscription(update(Plan::Starter, &["plan", "price"])).await.unwrap_err();
    assert_eq!(violations(&bad), [("update_mask".to_string(), "UNKNOWN_FIELD".to_string())]);
    let upgraded =
        organizations.update_subscription(update(Plan::Starter, &["plan"])).await.expect("upgrade").into_inner();
    assert_eq!((upgraded.plan(), upgraded.limits.unwrap().max_members), (Plan::Starter, 25));
    let organization = organizations
        .get_organization(authorized(GetOrganizationRequest { org_id: tenant.id().into() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(organization.plan(), Plan::Starter);
    organizations.add_member(invite(&tenant, "one-too-many@example.com")).await.expect("room on the new plan");

    let downgrade = organizations.update_subscription(update(Plan::Free, &["plan"])).await.unwrap_err();
    assert_eq!((downgrade.code(), reason(&downgrade).as_str()), (Code::FailedPrecondition, "USAGE_ABOVE_PLAN"));
    let usage = organizations
        .get_usage(authorized(GetUsageRequest { org_id: tenant.id().into() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    let members = usage.members.unwrap();
    assert_eq!((members.used, members.limit), (6, 25));
    let changed = platform
        .stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'subscription.changed'")
        .await;
    // One as the organization began (on the free plan), one for the upgrade; the refused
    // downgrade raised none.
    assert_eq!(changed, 2);
}

/// An event from the module that owns its type.
fn event(organization: &str, payload: Payload) -> BusMessage {
    let owner = complianceiq::event_owner(complianceiq_proto::EventPayloadExt::kind(&payload));
    crate::harness::bus_message(organization, payload, owner)
}

async fn usage_counts_what_other_services_report(platform: &TestPlatform) {
    let tenant = platform.tenant("Counted").await;
    let bus = &platform.platform().bus;
    let mut organizations = platform.organizations().await;
    let usage = |organizations: &mut complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient<tonic::transport::Channel>| {
        let request = authorized(GetUsageRequest { org_id: tenant.id().into() }, tenant.token());
        let mut organizations = organizations.clone();
        async move { organizations.get_usage(request).await.unwrap().into_inner() }
    };
    let mut expect = async |instances: i64, analyses: i64| {
        for _ in 0..100 {
            let current = usage(&mut organizations).await;
            if current.instances.unwrap().used == instances && current.analyses.unwrap().used == analyses {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("usage never reached {instances} instances and {analyses} analyses");
    };
    expect(0, 0).await;
    for _ in 0..2 {
        bus.publish(event(tenant.id(), Payload::InstanceCreated(InstanceCreated::default()))).await.unwrap();
    }
    bus.publish(event(tenant.id(), Payload::AnalysisStarted(AnalysisStarted::default()))).await.unwrap();
    expect(2, 1).await;
    bus.publish(event(tenant.id(), Payload::InstanceDeleted(InstanceDeleted::default()))).await.unwrap();
    expect(1, 1).await;
}

async fn teams_group_members(platform: &TestPlatform) {
    let tenant = platform.tenant("Teams").await;
    let (member, _) = platform.member(&tenant, "analyst@teams.example.com", &[]).await;
    let mut organizations = platform.organizations().await;
    let create = |name: &str| {
        authorized(
            CreateTeamRequest {
                org_id: tenant.id().into(),
                team: Some(Team { name: name.into(), description: "Second line".into(), ..Default::default() }),
            },
            tenant.token(),
        )
    };
    let team = organizations.create_team(create("Risk Office")).await.expect("create").into_inner();
    assert_eq!(organizations.create_team(create("Risk Office")).await.unwrap_err().code(), Code::AlreadyExists);
    let blank = organizations.create_team(create("  ")).await.unwrap_err();
    assert_eq!(violations(&blank), [("team.name".to_string(), "REQUIRED".to_string())]);

    let join = |user: &str| {
        authorized(
            AddTeamMemberRequest { org_id: tenant.id().into(), team_id: team.id.clone(), user_id: user.into() },
            tenant.token(),
        )
    };
    let outsider = uuid::Uuid::now_v7().to_string();
    assert_eq!(organizations.add_team_member(join(&outsider)).await.unwrap_err().code(), Code::NotFound);
    organizations.add_team_member(join(&tenant.admin.user_id)).await.unwrap();
    let with_both = organizations.add_team_member(join(&member.user_id)).await.unwrap().into_inner();
    assert_eq!(with_both.member_user_ids, [tenant.admin.user_id.clone(), member.user_id.clone()]);
    let listed = organizations
        .list_teams(authorized(ListTeamsRequest { org_id: tenant.id().into(), ..Default::default() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.teams, [with_both.clone()]);

    let leave = authorized(
        RemoveTeamMemberRequest {
            org_id: tenant.id().into(),
            team_id: team.id.clone(),
            user_id: member.user_id.clone(),
        },
        tenant.token(),
    );
    let after = organizations.remove_team_member(leave).await.unwrap().into_inner();
    assert_eq!(after.member_user_ids, [tenant.admin.user_id.clone()]);
    organizations
        .delete_team(authorized(
            DeleteTeamRequest { org_id: tenant.id().into(), team_id: team.id.clone() },
            tenant.token(),
        ))
        .await
        .unwrap();
    let gone = organizations
        .delete_team(authorized(
            DeleteTeamRequest { org_id: tenant.id().into(), team_id: team.id.clone() },
            tenant.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let empty = organizations
        .list_teams(authorized(ListTeamsRequest { org_id: tenant.id().into(), ..Default::default() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.teams.is_empty());
}

/// ListAccountOrganizations: every organization of the caller with its name and the caller's
/// roles, the latest first; another tenant's person, an API key and an anonymous caller see
/// nothing of them.
async fn a_person_lists_the_organizations_they_belong_to_and_nothing_else(platform: &TestPlatform) {
    use complianceiq_proto::complianceiq::auth::v1::{ExchangeApiKeyRequest, ListAccountOrganizationsRequest};

    let tenant = platform.tenant("Switcher One").await;
    let other = platform.tenant("Switcher Other").await;
    let second = platform
        .organizations()
        .await
        .create_organization(authorized(
            CreateOrganizationRequest {
                organization: Some(Organization { display_name: "Switcher Two".into(), ..Default::default() }),
            },
            tenant.token(),
        ))
        .await
        .expect("a second organization")
        .into_inner();
    let mut auth = platform.auth().await;
    let list = |token: &str| authorized(ListAccountOrganizationsRequest {}, token);
    // The second membership reaches the auth service by event.
    let mut listed = Vec::new();
    for _ in 0..200 {
        listed =
            auth.list_account_organizations(list(tenant.token())).await.expect("listed").into_inner().organizations;
        if listed.len() == 2 && listed.iter().all(|o| !o.display_name.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names: Vec<(&str, &str)> =
        listed.iter().map(|o| (o.organization_id.as_str(), o.display_name.as_str())).collect();
    assert_eq!(names, [(second.id.as_str(), "Switcher Two"), (tenant.id(), "Switcher One")], "{listed:?}");
    assert!(listed.iter().all(|o| o.roles == ["Organization Admin"]), "the creator administers both: {listed:?}");

    let others = auth.list_account_organizations(list(other.token())).await.unwrap().into_inner().organizations;
    assert_eq!(others.iter().map(|o| o.organization_id.as_str()).collect::<Vec<_>>(), [other.id()]);

    let (_, secret) = crate::api_keys::create_key(platform, tenant.token(), "lister", &["insights:read"]).await;
    let key_token = auth.exchange_api_key(ExchangeApiKeyRequest { secret }).await.unwrap().into_inner().access_token;
    let of_key = auth.list_account_organizations(list(&key_token)).await.unwrap().into_inner().organizations;
    assert!(of_key.is_empty(), "an API key is no member of anything: {of_key:?}");

    let anonymous = auth.list_account_organizations(ListAccountOrganizationsRequest {}).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}
