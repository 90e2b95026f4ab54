//! The audit trail: every mutating call is recorded once by the kit's layer, whatever the
//! service; the chain is append-only in the database and its verification names an entry
//! edited or removed behind the platform's back; a second organization sees nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::RPC_ACCESS;
use complianceiq_proto::complianceiq::audit::v1::audit_service_client::AuditServiceClient;
use complianceiq_proto::complianceiq::audit::v1::*;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{CreateTeamRequest, ListTeamsRequest, Team};
use sqlx::{AnyConnection, Connection};
use tonic::Code;

use crate::harness::{TestPlatform, call_raw, violations};
use crate::people::{Tenant, authorized};
use crate::platform_tests;
use complianceiq_proto::complianceiq::common::v1::TimeRange;
use complianceiq_proto::complianceiq::user::v1::{CreateRoleRequest, Role};

platform_tests!(
    mutating_calls_are_recorded_once_in_a_chain_that_names_what_was_tampered_with,
    every_mutating_rpc_of_every_service_leaves_one_entry,
);

async fn audit(platform: &TestPlatform) -> AuditServiceClient<tonic::transport::Channel> {
    AuditServiceClient::new(platform.channel("audit").await)
}

/// The tenant's trail as `token` reads it, oldest first, from `since` on (microseconds of
/// the calls' start), once it holds at least `count` entries.
async fn trail(platform: &TestPlatform, token: &str, since: i64, count: usize) -> Vec<AuditLog> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let period = TimeRange { start_time: Some(complianceiq_kit::time::to_timestamp(since)), end_time: None };
    loop {
        let mut entries = Vec::new();
        let mut page_token = String::new();
        loop {
            let request =
                ListAuditLogsRequest { page_size: 1000, page_token, period: Some(period), ..Default::default() };
            let page =
                audit(platform).await.list_audit_logs(authorized(request, token)).await.expect("list audit logs");
            let page = page.into_inner();
            entries.extend(page.audit_logs);
            page_token = page.next_page_token;
            if page_token.is_empty() {
                break;
            }
        }
        entries.reverse();
        if entries.len() >= count {
            return entries;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {count} audit entries after 20 s", entries.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn verify(platform: &TestPlatform, token: &str) -> AuditTrailVerification {
    audit(platform)
        .await
        .verify_audit_trail(authorized(VerifyAuditTrailRequest {}, token))
        .await
        .expect("verify")
        .into_inner()
}

async fn create_team(platform: &TestPlatform, tenant: &Tenant, name: &str) -> Result<Team, tonic::Status> {
    OrganizationServiceClient::new(platform.channel("organization").await)
        .create_team(authorized(
            CreateTeamRequest {
                org_id: tenant.id().into(),
                team: Some(Team { name: name.into(), ..Default::default() }),
            },
            tenant.token(),
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn mutating_calls_are_recorded_once_in_a_chain_that_names_what_was_tampered_with(platform: &TestPlatform) {
    let tenant = platform.tenant("Audited").await;
    let other = platform.tenant("Elsewhere").await;
    let since = complianceiq_kit::time::now_micros();

    let team = create_team(platform, &tenant, "Risk Office").await.expect("create team");
    let refused = create_team(platform, &tenant, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    // A read is not recorded.
    OrganizationServiceClient::new(platform.channel("organization").await)
        .list_teams(authorized(ListTeamsRequest { org_id: tenant.id().into(), ..Default::default() }, tenant.token()))
        .await
        .expect("list teams");

    let entries = trail(platform, tenant.token(), since, 2).await;
    assert_eq!(entries.len(), 2, "one entry per mutating call, none for the read: {entries:#?}");
    let (created, invalid) = (&entries[0], &entries[1]);
    assert_eq!(created.rpc, "/complianceiq.organization.v1.OrganizationService/CreateTeam");
    assert_eq!((created.action.as_str(), created.resource_type.as_str()), ("team.create", "team"));
    assert_eq!(created.resource_id, team.id, "a creation names what it created");
    assert_eq!((created.status_code, created.outcome), (0, Outcome::Success as i32));
    let actor = created.actor.as_ref().expect("actor");
    assert_eq!(actor.user_id, tenant.admin.user_id);
    assert!(!actor.email.is_empty());
    assert_eq!((invalid.status_code, invalid.outcome), (Code::InvalidArgument as i32, Outcome::Failure as i32));
    assert!(!created.request_id.is_empty());
    let entries = trail(platform, tenant.token(), 0, 2).await;
    for (index, entry) in entries.iter().enumerate() {
        assert_eq!(entry.sequence, index as i64 + 1);
        assert_eq!(entry.organization_id, tenant.id());
        let previous = if index == 0 { "0".repeat(64) } else { entries[index - 1].hash.clone() };
        assert_eq!(entry.previous_hash, previous);
    }
    let got = audit(platform)
        .await
        .get_audit_log(authorized(GetAuditLogRequest { log_id: created.id.clone() }, tenant.token()))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(&got, created);

    // Filters: by resource, by outcome; a malformed filter is refused with its field.
    let by_resource = audit(platform)
        .await
        .list_audit_logs(authorized(
            ListAuditLogsRequest { resource_type: "team".into(), resource_id: team.id.clone(), ..Default::default() },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_resource.audit_logs.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), [created.id.clone()]);
    let failures = audit(platform)
        .await
        .list_audit_logs(authorized(
            ListAuditLogsRequest { outcome: Outcome::Failure as i32, ..Default::default() },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(failures.audit_logs.iter().all(|entry| entry.outcome == Outcome::Failure as i32));
    assert!(failures.audit_logs.iter().any(|entry| entry.id == invalid.id));
    let malformed = audit(platform)
        .await
        .list_audit_logs(authorized(
            ListAuditLogsRequest { user_id: "nobody".into(), ..Default::default() },
            tenant.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&malformed), [("user_id".to_string(), "INVALID_FORMAT".to_string())]);

    // Full text: every word must be there, whatever the case and punctuation.
    let search = |query: &str| {
        let request = ListAuditLogsRequest { query: query.into(), ..Default::default() };
        let token = tenant.token().to_string();
        async move { audit(platform).await.list_audit_logs(authorized(request, &token)).await }
    };
    let found = search("Team.CREATE").await.unwrap().into_inner().audit_logs;
    let mut found_ids: Vec<String> = found.iter().map(|entry| entry.id.clone()).collect();
    found_ids.sort();
    let mut expected_ids = vec![created.id.clone(), invalid.id.clone()];
    expected_ids.sort();
    assert_eq!(found_ids, expected_ids);
    let by_id = search(&team.id).await.unwrap().into_inner().audit_logs;
    assert_eq!(by_id.iter().map(|entry| entry.id.clone()).collect::<Vec<_>>(), [created.id.clone()]);
    assert!(search("team nowhere").await.unwrap().into_inner().audit_logs.is_empty());
    let wordless = search("!!!").await.unwrap_err();
    assert_eq!(violations(&wordless), [("query".to_string(), "NO_WORDS".to_string())]);

    // A second organization sees nothing of the first, and its own chain stands alone.
    create_team(platform, &other, "Their Team").await.expect("their team");
    let theirs = trail(platform, other.token(), 0, 1).await;
    assert!(theirs.iter().all(|entry| entry.organization_id == other.id()));
    assert!(!theirs.iter().any(|entry| entries.iter().any(|mine| mine.id == entry.id)));
    let hidden = audit(platform)
        .await
        .get_audit_log(authorized(GetAuditLogRequest { log_id: created.id.clone() }, other.token()))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    let intact = verify(platform, tenant.token()).await;
    assert!(intact.intact, "{intact:?}");
    assert_eq!(intact.entries_checked, entries.len() as i64);

    // The application's own connection cannot change the trail: no UPDATE or DELETE.
    let mut app = AnyConnection::connect(&platform.app_database_url(DatabaseGroup::Audit)).await.unwrap();
    let postgres = platform.app_database_url(DatabaseGroup::Audit).starts_with("postgres");
    if postgres {
        sqlx::query("SELECT set_config('app.current_organization_id', $1, false)")
            .bind(tenant.id())
            .execute(&mut app)
            .await
            .unwrap();
    }
    for statement in ["UPDATE audit_logs SET action = 'nothing'", "DELETE FROM audit_logs"] {
        let refused = sqlx::query(statement).execute(&mut app).await;
        assert!(refused.is_err(), "{statement} went through");
    }
    app.close().await.ok();

    // Someone with the database owner's rights edits the last entry, then removes the first.
    let unguard = if postgres {
        "ALTER TABLE audit_logs DISABLE TRIGGER USER"
    } else {
        "DROP TRIGGER audit_logs_append_only_update; DROP TRIGGER audit_logs_append_only_delete"
    };
    platform.execute_as_owner(DatabaseGroup::Audit, unguard).await;
    let last = entries.last().expect("entries");
    platform
        .execute_as_owner(
            DatabaseGroup::Audit,
            &format!("UPDATE audit_logs SET resource_id = 'someone-else' WHERE id = '{}'", last.id),
        )
        .await;
    let edited = verify(platform, tenant.token()).await;
    assert!(!edited.intact);
    assert_eq!(
        (edited.first_broken_log_id.as_str(), edited.first_broken_sequence, edited.problem.as_str()),
        (last.id.as_str(), last.sequence, "columns differ from the recorded entry")
    );
    platform
        .execute_as_owner(DatabaseGroup::Audit, &format!("DELETE FROM audit_logs WHERE id = '{}'", entries[0].id))
        .await;
    let removed = verify(platform, tenant.token()).await;
    assert_eq!(
        (removed.intact, removed.first_broken_log_id.as_str(), removed.problem.as_str()),
        (false, entries[1].id.as_str(), "an entry before it is missing")
    );
    // The other organization's chain is untouched.
    assert!(verify(platform, other.token()).await.intact);
}

/// Walks the access table: each mutating RPC a person can call in an organization, called
/// once with an empty request through the mesh as the gateway, leaves exactly one entry
/// naming it, whatever the service answers (success, a refusal of the input, UNIMPLEMENTED).
async fn every_mutating_rpc_of_every_service_leaves_one_entry(platform: &TestPlatform) {
    let tenant = platform.tenant("Walked").await;
    // Some calls end the admin's sessions: a member who may read the trail reads it.
    let role = platform
        .users()
        .await
        .create_role(authorized(
            CreateRoleRequest {
                role: Some(Role {
                    name: "Auditor".into(),
                    permissions: vec!["audit:read".into()],
                    ..Default::default()
                }),
            },
            tenant.token(),
        ))
        .await
        .expect("create role")
        .into_inner();
    let (mut auditor, _) = platform.member(&tenant, "auditor@walked.example.com", &[role.id]).await;
    platform.refresh_until(&mut auditor, |tokens| can_read_audit(&tokens.access_token)).await;
    let since = complianceiq_kit::time::now_micros();
    let mut rules: Vec<_> =
        RPC_ACCESS.iter().filter(|rule| rule.mutating && !rule.public && !rule.internal && rule.edge).collect();
    // Calls that end the admin's own session go last.
    rules.sort_by_key(|rule| rule.path.starts_with("/complianceiq.auth."));
    let mut answers = BTreeMap::new();
    for rule in &rules {
        let rpc = &rule.path[1..];
        let module = rpc.split('.').nth(1).unwrap();
        let code = match call_raw(platform.channel(module).await, rpc, Some(tenant.token())).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        answers.insert(rule.path, code as i32);
    }
    let entries = trail(platform, auditor.token(), since, rules.len()).await;
    let recorded: BTreeMap<&str, Vec<i32>> = entries.iter().fold(BTreeMap::new(), |mut by_rpc, entry| {
        by_rpc.entry(entry.rpc.as_str()).or_default().push(entry.status_code);
        by_rpc
    });
    for rule in &rules {
        assert_eq!(recorded.get(rule.path), Some(&vec![answers[rule.path]]), "{}", rule.path);
    }
    assert_eq!(entries.len(), rules.len(), "nothing else was recorded");
    assert!(rules.len() > 40, "{} mutating RPCs", rules.len());
    assert!(verify(platform, auditor.token()).await.intact);
}

fn can_read_audit(token: &str) -> bool {
    crate::people::claims(token)["permissions"].as_array().is_some_and(|held| held.iter().any(|p| p == "audit:read"))
}

/// The compliance events of an instance, once there are at least `count`.
pub async fn compliance_events(
    platform: &TestPlatform,
    tenant: &Tenant,
    instance: &str,
    count: usize,
) -> Vec<ComplianceEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let request =
            ListComplianceEventsRequest { instance_id: instance.into(), page_size: 1000, ..Default::default() };
        let events = audit(platform)
            .await
            .list_compliance_events(authorized(request, tenant.token()))
            .await
            .expect("compliance events")
            .into_inner()
            .compliance_events;
        if events.len() >= count {
            return events;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {count} compliance events after 20 s", events.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
