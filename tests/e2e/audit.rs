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
    a_members_failed_logins_and_lockout_join_their_organizations_trail,
    reports_render_a_period_with_its_place_in_the_chain,
    mutating_calls_are_recorded_once_in_a_chain_that_names_what_was_tampered_with,
    every_mutating_rpc_of_every_service_leaves_one_entry,
);

async fn audit(platform: &TestPlatform) -> AuditServiceClient<tonic::transport::Channel> {
    AuditServiceClient::new(platform.channel("audit").await)
}

/// The tenant's trail as `token` reads it, oldest first, from `since` on (microseconds of
/// the calls' start), once it holds at least `count` entries.
pub(crate) async fn trail(platform: &TestPlatform, token: &str, since: i64, count: usize) -> Vec<AuditLog> {
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
    // Calls that end the admin's own session go last, Logout (which revokes the token) at the end.
    rules.sort_by_key(|rule| (rule.path.starts_with("/complianceiq.auth."), rule.path.ends_with("/Logout")));
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

/// `report` once its file is rendered (20 s at most).
async fn rendered(platform: &TestPlatform, token: &str, report: &AuditReport) -> AuditReport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let request = GetAuditReportRequest { report_id: report.id.clone() };
        let got = audit(platform).await.get_audit_report(authorized(request, token)).await.expect("get report");
        let got = got.into_inner();
        if got.state() != AuditReportState::Pending {
            return got;
        }
        assert!(tokio::time::Instant::now() < deadline, "report {} was never rendered", report.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reports_render_a_period_with_its_place_in_the_chain(platform: &TestPlatform) {
    use complianceiq_proto::complianceiq::common::v1::ExportFormat;
    use complianceiq_proto::complianceiq::events::v1::SecurityAlert;
    use complianceiq_proto::complianceiq::events::v1::event::Payload;

    let tenant = platform.tenant("Reported").await;
    let other = platform.tenant("Unreported").await;
    let since = complianceiq_kit::time::now_micros();
    create_team(platform, &tenant, "Internal Audit").await.expect("create team");
    create_team(platform, &tenant, "").await.unwrap_err();
    let alert = SecurityAlert {
        kind: "login_failed".into(),
        severity: "medium".into(),
        user_id: tenant.admin.user_id.clone(),
        ..Default::default()
    };
    let bus = platform.platform().bus.clone();
    bus.publish(crate::harness::bus_message(tenant.id(), Payload::SecurityAlert(alert), "auth")).await.unwrap();
    let entries = trail(platform, tenant.token(), since, 3).await;
    // Up to now: creating a report is itself recorded, after the period.
    let period = TimeRange {
        start_time: Some(complianceiq_kit::time::to_timestamp(since)),
        end_time: Some(complianceiq_kit::time::to_timestamp(complianceiq_kit::time::now_micros())),
    };

    let create = |format: ExportFormat, include_security_events: bool| {
        let report = AuditReport {
            title: "Q4 evidence".into(),
            period: Some(period),
            format: format as i32,
            include_security_events,
            ..Default::default()
        };
        CreateAuditReportRequest { audit_report: Some(report) }
    };
    let mut reports = Vec::new();
    for (format, security) in [(ExportFormat::Csv, false), (ExportFormat::Csv, true), (ExportFormat::Pdf, true)] {
        let mut client = audit(platform).await;
        let queued = client.create_audit_report(authorized(create(format, security), tenant.token())).await;
        let queued = queued.expect("create report").into_inner();
        assert_eq!(queued.state(), AuditReportState::Pending);
        reports.push(rendered(platform, tenant.token(), &queued).await);
    }
    for report in &reports {
        assert_eq!(report.state(), AuditReportState::Ready, "{}", report.error);
        assert!(report.trail_intact && report.download_expire_time.is_some());
    }

    // CSV: the period's calls, and its security event only when asked for, each with its hashes.
    for (report, expected) in [(&reports[0], 2), (&reports[1], 3)] {
        let (status, content_type, disposition, bytes) =
            crate::insights::download(platform, &report.download_uri).await;
        assert_eq!((status, content_type.as_str()), (200, "text/csv; charset=utf-8"));
        assert!(disposition.contains(&report.file_name) && report.file_name.ends_with(".csv"), "{disposition}");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!((rows.len(), report.entry_count), (expected, expected as i64), "{rows:?}");
        let last = rows.last().unwrap();
        let chained = entries.iter().rev().find(|entry| entry.sequence.to_string() == last[0]).unwrap();
        assert_eq!((&last[16], &last[15]), (chained.hash.as_str(), chained.previous_hash.as_str()));
        assert_eq!((report.last_sequence, report.last_hash.as_str()), (chained.sequence, chained.hash.as_str()));
        assert_eq!(rows.iter().filter(|row| row[7].starts_with("security.")).count(), expected - 2);
    }

    // PDF: a reader's text holds the title, the integrity statement and the last hash.
    let (status, _, _, bytes) = crate::insights::download(platform, &reports[2].download_uri).await;
    assert_eq!(status, 200);
    let document = lopdf::Document::load_mem(&bytes).expect("a PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    let text = document.extract_text(&pages).expect("text").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("Q4 evidence") && text.contains("trail verified"), "{text}");
    assert!(text.contains(&reports[2].last_hash[..16]), "the last hash is printed: {text}");

    let listed = audit(platform)
        .await
        .list_audit_reports(authorized(ListAuditReportsRequest::default(), tenant.token()))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed.audit_reports.iter().map(|report| report.id.as_str()).collect();
    assert_eq!(ids, [&reports[2].id, &reports[1].id, &reports[0].id], "newest first");

    // Bad requests name their fields; another organization sees nothing; a forged link fails.
    let bad = CreateAuditReportRequest {
        audit_report: Some(AuditReport { format: ExportFormat::Xlsx as i32, ..Default::default() }),
    };
    let status = audit(platform).await.create_audit_report(authorized(bad, tenant.token())).await.unwrap_err();
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["audit_report.title", "audit_report.format", "audit_report.period.start_time"]);
    let request = GetAuditReportRequest { report_id: reports[0].id.clone() };
    let status = audit(platform).await.get_audit_report(authorized(request, other.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let listed = audit(platform)
        .await
        .list_audit_reports(authorized(ListAuditReportsRequest::default(), other.token()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.audit_reports.is_empty());
    let forged = reports[0].download_uri.replace(tenant.id(), other.id());
    let (status, _, _, body) = crate::insights::download(platform, &forged).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
}

mod old_entries_leave_behind_a_signed_checkpoint {
    fn thirty_days_swept_every_second(config: &mut complianceiq_kit::config::PlatformConfig) {
        config.audit.retention_days = vec!["free=30".into()];
        config.audit.retention_sweep_seconds = 1;
    }

    crate::configured_platform_tests!(
        thirty_days_swept_every_second,
        super::old_entries_leave_behind_a_signed_checkpoint
    );
}

async fn old_entries_leave_behind_a_signed_checkpoint(platform: &TestPlatform) {
    use complianceiq_proto::complianceiq::events::v1::event::Payload;
    use complianceiq_proto::complianceiq::events::v1::{Event, SecurityAlert};
    use prost::Message;

    let tenant = platform.tenant("Retained").await;
    let other = platform.tenant("Untouched").await;
    // Three security events of two months ago begin the chain (a free plan keeps 30 days
    // here), then a call of today.
    let two_months_ago = complianceiq_kit::time::now_micros() - 60 * 86_400 * 1_000_000;
    let bus = platform.platform().bus.clone();
    for kind in ["login_failed", "mfa_failed", "login_failed"] {
        let alert = SecurityAlert { kind: kind.into(), user_id: tenant.admin.user_id.clone(), ..Default::default() };
        let mut message = crate::harness::bus_message(tenant.id(), Payload::SecurityAlert(alert), "auth");
        let mut event = Event::decode(message.payload.as_ref()).unwrap();
        event.occur_time = Some(complianceiq_kit::time::to_timestamp(two_months_ago));
        message.payload = event.encode_to_vec().into();
        bus.publish(message).await.unwrap();
    }
    trail(platform, tenant.token(), 0, 1).await;
    create_team(platform, &tenant, "Records Management").await.expect("create team");
    create_team(platform, &other, "Theirs").await.expect("their team");

    // The sweep removes the three, and only them, behind a checkpoint the chain verifies from.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let kept = loop {
        let request = ListAuditLogsRequest { page_size: 100, ..Default::default() };
        let page = audit(platform).await.list_audit_logs(authorized(request, tenant.token())).await.unwrap();
        let entries = page.into_inner().audit_logs;
        if entries.len() == 1 && entries[0].action == "team.create" {
            break entries;
        }
        assert!(tokio::time::Instant::now() < deadline, "never pruned to today's entry: {entries:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(kept[0].sequence, 4);
    let verification = verify(platform, tenant.token()).await;
    assert!(verification.intact, "{verification:?}");
    assert_eq!((verification.checkpoint_sequence, verification.entries_checked), (3, 1));
    assert!(verification.checkpoint_time.is_some());
    let theirs = verify(platform, other.token()).await;
    assert_eq!((theirs.intact, theirs.checkpoint_sequence), (true, 0), "another organization keeps its entries");

    // A checkpoint nobody signed, slipped in to cover entries someone wants gone, is named.
    platform
        .execute_as_owner(
            DatabaseGroup::Audit,
            &format!(
                "INSERT INTO audit_checkpoints (organization_id, through_sequence, hash, pruned, created_at, signature) \
                 VALUES ('{}', 4, '{}', 1, 0, 'k1:forged')",
                tenant.id(),
                kept[0].hash
            ),
        )
        .await;
    let forged = verify(platform, tenant.token()).await;
    assert!(!forged.intact);
    assert_eq!(forged.first_broken_sequence, 4);
    assert!(forged.problem.contains("not signed by the platform"), "{}", forged.problem);
}

/// Logins happen outside any organization; what they say about a member's account belongs in
/// each of the member's organizations' trails, and the person hears of the lockout once.
async fn a_members_failed_logins_and_lockout_join_their_organizations_trail(platform: &TestPlatform) {
    let tenant = platform.tenant("Guarded").await;
    let other = platform.tenant("Bystander").await;
    let mut auth = platform.auth().await;
    for _ in 0..5 {
        auth.login(crate::identity::login(&tenant.admin.email, "guessing the password")).await.unwrap_err();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let events = loop {
        let request = ListSecurityEventsRequest { page_size: 100, ..Default::default() };
        let events =
            audit(platform).await.list_security_events(authorized(request, tenant.token())).await.unwrap().into_inner();
        if events.security_events.len() >= 5 {
            break events.security_events;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of 5 security events", events.security_events.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut kinds: Vec<&str> = events.iter().map(|event| event.r#type.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["login.failed", "login.failed", "login.failed", "login.failed", "login.locked"]);
    assert!(events.iter().all(|event| event.actor.as_ref().unwrap().user_id == tenant.admin.user_id));
    assert!(verify(platform, tenant.token()).await.intact);
    let request = ListSecurityEventsRequest::default();
    let theirs = audit(platform).await.list_security_events(authorized(request, other.token())).await.unwrap();
    assert!(theirs.into_inner().security_events.is_empty(), "not in an organization the person is not in");
}
