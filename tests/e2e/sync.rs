//! Syncing ServiceNow into the analysis store, against the simulator over HTTP: full syncs
//! under throttling and churn store exactly what ServiceNow holds, incremental syncs pick up
//! exactly the changes, full syncs detect deletions, references resolve, a sync stopped
//! halfway resumes to the same result, cancellation, failures named in the history, and
//! nothing for another organization.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use complianceiq_kit::config::{DatabaseGroup, PlatformConfig};
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::*;
use complianceiq_servicenow::sim::{Churn, SimConfig};
use complianceiq_servicenow::tables;
use tonic::Code;

use crate::harness::{Backend, TestPlatform, reason};
use crate::instances::{RunningSimulator, connect, kept_records, referenced_users, simulator};
use crate::people::{Tenant, authorized};
use crate::platform_tests;

platform_tests!(syncs_store_what_servicenow_holds_and_follow_its_changes, sync_failures_cancellation_and_tenants,);

async fn client(platform: &TestPlatform) -> InstanceServiceClient<tonic::transport::Channel> {
    InstanceServiceClient::new(platform.channel("instance").await)
}

pub(crate) async fn connected(platform: &TestPlatform, tenant: &Tenant, running: &RunningSimulator) -> Instance {
    let config = running.simulator.config();
    let instance = Instance {
        name: "prod".into(),
        url: running.url.clone(),
        auth_type: AuthType::Basic as i32,
        credentials: Some(Credentials {
            kind: Some(credentials::Kind::Basic(BasicCredentials {
                username: config.username.clone(),
                password: config.password.clone(),
            })),
        }),
        ..Default::default()
    };
    connect(platform, tenant, instance, false).await.expect("connected")
}

async fn start(platform: &TestPlatform, tenant: &Tenant, instance: &str, mode: SyncMode) -> SyncRun {
    let request = SyncInstanceRequest { instance_id: instance.into(), mode: mode as i32, tables: vec![] };
    client(platform).await.sync_instance(authorized(request, tenant.token())).await.expect("sync started").into_inner()
}

/// Waits (up to a minute) until the run has ended.
async fn ended(platform: &TestPlatform, tenant: &Tenant, run: &SyncRun) -> SyncRun {
    let mut instances = client(platform).await;
    for _ in 0..600 {
        let request = GetSyncRunRequest { instance_id: run.instance_id.clone(), sync_run_id: run.id.clone() };
        let current = instances.get_sync_run(authorized(request, tenant.token())).await.unwrap().into_inner();
        if !matches!(current.state(), SyncState::Pending | SyncState::Running) {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sync run {} did not end within a minute", run.id);
}

pub(crate) async fn sync(platform: &TestPlatform, tenant: &Tenant, instance: &str, mode: SyncMode) -> SyncRun {
    let run = ended(platform, tenant, &start(platform, tenant, instance, mode).await).await;
    assert_eq!(run.state(), SyncState::Succeeded, "{run:?}");
    run
}

fn stats(run: &SyncRun) -> BTreeMap<String, TableSyncStats> {
    run.tables.iter().map(|table| (table.table.clone(), table.clone())).collect()
}

/// What the analysis store holds: table -> sys_id -> fields JSON.
async fn stored(platform: &TestPlatform) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for row in platform.stored_rows(DatabaseGroup::Analysis, "SELECT table_name, sys_id, fields FROM grc_records").await
    {
        out.entry(row[0].clone()).or_default().insert(row[1].clone(), row[2].clone());
    }
    out
}

/// The store equals the simulator: the same ids per table, every record with the same fields.
async fn assert_store_is(platform: &TestPlatform, running: &RunningSimulator) {
    let stored = stored(platform).await;
    for table in tables::ALL {
        let ids = if table.name == tables::USERS.name {
            referenced_users(&running.simulator)
        } else {
            running.simulator.ids(table.name)
        };
        let held: BTreeSet<String> =
            stored.get(table.name).map(|records| records.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(held, ids, "{}: stored ids differ from ServiceNow's", table.name);
        for id in &ids {
            let record = running.simulator.record(table.name, id).unwrap();
            let fields: BTreeMap<String, String> = serde_json::from_str(&stored[table.name][id]).unwrap();
            let expected: BTreeMap<String, String> = record.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            assert_eq!(fields, expected, "{} {id}", table.name);
        }
    }
}

/// A sync reads up to two seconds before ServiceNow's clock (the second still being
/// written); changes made just now belong to the next one.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(2600)).await;
}

fn count(sets: &BTreeMap<&'static str, BTreeSet<String>>, table: &str) -> i64 {
    sets.get(table).map(|set| set.len() as i64).unwrap_or(0)
}

async fn syncs_store_what_servicenow_holds_and_follow_its_changes(platform: &TestPlatform) {
    let running =
        simulator(SimConfig { controls: 40, throttle_every: 4, retry_after_seconds: 0, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Synced").await;
    let instance = connected(platform, &tenant, &running).await;

    // A full sync while ServiceNow changes under it and throttles it.
    let churner = {
        let simulator = running.simulator.clone();
        tokio::spawn(async move {
            let mut deleted: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
            for _ in 0..40 {
                let churn = simulator.churn(3);
                for (table, ids) in churn.deleted {
                    deleted.entry(table).or_default().extend(ids);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            deleted
        })
    };
    let first = sync(platform, &tenant, &instance.id, SyncMode::Unspecified).await;
    let deleted_meanwhile = churner.await.unwrap();
    assert_eq!(first.mode(), SyncMode::Full, "the first sync of an instance is full");
    assert_eq!(first.progress_percent, 100);
    // What it stored is ServiceNow as of the time it read up to, nothing missed or doubled:
    // every record last changed by then is there with exactly its fields; a record changed
    // later may be there in an earlier version (the next sync's); a stored record ServiceNow
    // no longer has was deleted meanwhile; each stored record was created once (records created
    // during the sync and deleted before it reconciled are created but no longer stored).
    let as_of = complianceiq_servicenow::datetime::format(first.data_as_of_time.as_ref().expect("as of").seconds);
    let held = stored(platform).await;
    for table in tables::ALL.iter().filter(|table| table.name != tables::USERS.name) {
        let stored_table = held.get(table.name).cloned().unwrap_or_default();
        for id in running.simulator.ids(table.name) {
            let record = running.simulator.record(table.name, &id).unwrap();
            if record["sys_updated_on"].as_str() > as_of.as_str() {
                continue;
            }
            let fields: BTreeMap<String, String> =
                serde_json::from_str(stored_table.get(&id).unwrap_or_else(|| panic!("{} {id} missed", table.name)))
                    .unwrap();
            let expected: BTreeMap<String, String> = record.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            assert_eq!(fields, expected, "{} {id}", table.name);
        }
        let deleted_here = deleted_meanwhile.get(table.name).cloned().unwrap_or_default();
        for id in stored_table.keys() {
            assert!(
                running.simulator.record(table.name, id).is_some() || deleted_here.contains(id),
                "{} {id} stored but never in ServiceNow",
                table.name
            );
        }
        let created = stats(&first)[table.name].created;
        let reconciled_away = deleted_here.iter().filter(|id| !stored_table.contains_key(*id)).count() as i64;
        let stored = stored_table.len() as i64;
        assert!(
            created >= stored && created <= stored + reconciled_away,
            "{}: each record created once ({created} created, {stored} stored, {reconciled_away} deleted meanwhile)",
            table.name
        );
    }
    settle().await;
    // Whatever changed during it, the next full sync makes the store equal ServiceNow.
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    assert_store_is(platform, &running).await;
    let created_once: i64 = stored(platform).await.values().map(|records| records.len() as i64).sum();
    assert_eq!(created_once, kept_records(&running.simulator));
    assert!(
        referenced_users(&running.simulator).len() < running.simulator.ids("sys_user").len(),
        "some users unreferenced"
    );

    // Changes: an incremental sync picks up exactly them (and users they newly reference).
    let users_before = referenced_users(&running.simulator);
    let churn: Churn = running.simulator.churn(60);
    let newly_referenced = referenced_users(&running.simulator).difference(&users_before).count() as i64;
    settle().await;
    let incremental = sync(platform, &tenant, &instance.id, SyncMode::Unspecified).await;
    assert_eq!(incremental.mode(), SyncMode::Incremental);
    for (table, stats) in stats(&incremental) {
        let created = if table == "sys_user" { newly_referenced } else { count(&churn.created, &table) };
        assert_eq!(stats.created, created, "{table} created");
        assert_eq!(stats.updated, count(&churn.updated, &table), "{table} updated");
        assert_eq!(stats.deleted, 0, "{table}: an incremental sync does not reconcile");
    }
    // A full sync finds the deletions.
    let full = sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let users_after = referenced_users(&running.simulator);
    for (table, stats) in stats(&full) {
        // Users the deleted records alone referenced go too.
        let deleted = if table == "sys_user" {
            users_before.union(&users_after).count() as i64 - users_after.len() as i64
        } else {
            count(&churn.deleted, &table)
        };
        assert_eq!(stats.deleted, deleted, "{table} deleted");
        assert_eq!((stats.created, stats.updated), (0, 0), "{table}: nothing else changed");
    }
    assert_store_is(platform, &running).await;

    // Every reference points at a stored record.
    let dangling = platform
        .stored_count(
            DatabaseGroup::Analysis,
            "SELECT COUNT(*) FROM grc_references r WHERE NOT EXISTS (SELECT 1 FROM grc_records g WHERE \
             g.organization_id = r.organization_id AND g.instance_id = r.instance_id AND g.table_name = r.target_table \
             AND g.sys_id = r.target_sys_id)",
        )
        .await;
    assert_eq!(dangling, 0);
    assert!(platform.stored_count(DatabaseGroup::Analysis, "SELECT COUNT(*) FROM grc_references").await > 100);

    // The typed views the analyses read: numbers as numbers, references joinable.
    let risks = running.simulator.ids("sn_risk_risk").len() as i64;
    let consistent = platform
        .stored_count(
            DatabaseGroup::Analysis,
            "SELECT COUNT(*) FROM grc_risks WHERE inherent_score = inherent_likelihood * inherent_impact \
             AND residual_score <= inherent_score AND residual_score >= 1",
        )
        .await;
    assert_eq!(consistent, risks);
    let controls = running.simulator.ids("sn_compliance_control").len() as i64;
    let joined = platform
        .stored_count(
            DatabaseGroup::Analysis,
            "SELECT COUNT(*) FROM grc_controls c JOIN grc_requirements r ON r.organization_id = c.organization_id \
             AND r.instance_id = c.instance_id AND r.sys_id = c.requirement_sys_id",
        )
        .await;
    assert_eq!(joined, controls);
    let failing = platform
        .stored_count(
            DatabaseGroup::Analysis,
            "SELECT COUNT(*) FROM grc_indicator_results WHERE passed = 0 AND value < 90",
        )
        .await;
    assert!(failing > 0, "failed indicator results have values below the passing band");
    let weighted = platform
        .stored_count(DatabaseGroup::Analysis, "SELECT COUNT(*) FROM grc_controls WHERE weighting BETWEEN 1 AND 10")
        .await;
    assert_eq!(weighted, controls, "every control carries its weighting");
    // Each link names a stored risk and a stored control; each result reaches its control
    // through its indicator.
    let links = running.simulator.ids("sn_risk_m2m_risk_control").len() as i64;
    let linked = platform
        .stored_count(
            DatabaseGroup::Analysis,
            "SELECT COUNT(*) FROM grc_risk_controls l \
             JOIN grc_risks r ON r.organization_id = l.organization_id AND r.instance_id = l.instance_id \
             AND r.sys_id = l.risk_sys_id \
             JOIN grc_controls c ON c.organization_id = l.organization_id AND c.instance_id = l.instance_id \
             AND c.sys_id = l.control_sys_id",
        )
        .await;
    assert_eq!(linked, links);
    let results = running.simulator.ids("sn_grc_indicator_result").len() as i64;
    let reached = platform
        .stored_count(
            DatabaseGroup::Analysis,
            "SELECT COUNT(*) FROM grc_indicator_results res \
             JOIN grc_indicators i ON i.organization_id = res.organization_id AND i.instance_id = res.instance_id \
             AND i.sys_id = res.indicator_sys_id JOIN grc_controls c ON c.organization_id = res.organization_id \
             AND c.instance_id = res.instance_id AND c.sys_id = res.control_sys_id AND c.sys_id = i.control_sys_id",
        )
        .await;
    assert_eq!(reached, results);
    let entities = running.simulator.ids("sn_grc_profile").len() as i64;
    let owned = platform
        .stored_count(DatabaseGroup::Analysis, "SELECT COUNT(*) FROM grc_entities WHERE owner_sys_id IS NOT NULL")
        .await;
    assert_eq!(owned, entities, "every entity has its owner (owned_by)");
    let open =
        platform.stored_count(DatabaseGroup::Analysis, "SELECT COUNT(*) FROM grc_issues WHERE is_open = 1").await;
    let closed = platform
        .stored_count(DatabaseGroup::Analysis, "SELECT COUNT(*) FROM grc_issues WHERE state IN ('3', '4')")
        .await;
    assert!(open > 0 && closed > 0, "{open} open and {closed} closed issues");
    assert_eq!(open + closed, running.simulator.ids("sn_grc_issue").len() as i64);

    // History, newest first, and the events.
    let history = client(platform)
        .await
        .list_sync_runs(authorized(
            ListSyncRunsRequest { instance_id: instance.id.clone(), ..Default::default() },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.sync_runs.len(), 4);
    assert_eq!(history.sync_runs[0].id, full.id);
    let completed = platform
        .stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'sync.completed'")
        .await;
    assert_eq!(completed, 4);
    let synced = client(platform)
        .await
        .get_instance(authorized(GetInstanceRequest { instance_id: instance.id.clone() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert!(synced.last_sync_time.is_some());
}

async fn sync_failures_cancellation_and_tenants(platform: &TestPlatform) {
    // A table the user may not read: the run fails naming it, and says why in the history.
    let running =
        simulator(SimConfig { controls: 10, denied_tables: vec!["sn_risk_risk".into()], ..SimConfig::default() }).await;
    let tenant = platform.tenant("Failing Sync").await;
    let instance = connected(platform, &tenant, &running).await;
    let failed = ended(platform, &tenant, &start(platform, &tenant, &instance.id, SyncMode::Full).await).await;
    assert_eq!(failed.state(), SyncState::Failed);
    assert!(failed.error.contains("may not read sn_risk_risk"), "{}", failed.error);
    // What was stored is whole: tables before it, record for record.
    let stored = stored(platform).await;
    assert!(!stored.contains_key("sn_risk_risk"));
    assert_eq!(stored["sn_compliance_control"].len(), running.simulator.ids("sn_compliance_control").len());
    let events = platform
        .stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'sync.failed'")
        .await;
    assert_eq!(events, 1);

    // Only one run at a time; a run can be cancelled.
    let slow = simulator(SimConfig { controls: 40, latency: Duration::from_millis(150), ..SimConfig::default() }).await;
    let other = platform.tenant("Slow Sync").await;
    let slow_instance = connected(platform, &other, &slow).await;
    let run = start(platform, &other, &slow_instance.id, SyncMode::Full).await;
    let mut instances = client(platform).await;
    let again = SyncInstanceRequest { instance_id: slow_instance.id.clone(), mode: 0, tables: vec![] };
    let refused = instances.sync_instance(authorized(again.clone(), other.token())).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "SYNC_IN_PROGRESS"));

    // Another organization sees none of it.
    let lookup = GetSyncRunRequest { instance_id: slow_instance.id.clone(), sync_run_id: run.id.clone() };
    let hidden = instances.get_sync_run(authorized(lookup.clone(), tenant.token())).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let cancel = CancelSyncRunRequest { instance_id: slow_instance.id.clone(), sync_run_id: run.id.clone() };
    assert_eq!(
        instances.cancel_sync_run(authorized(cancel.clone(), tenant.token())).await.unwrap_err().code(),
        Code::NotFound
    );
    let history = ListSyncRunsRequest { instance_id: slow_instance.id.clone(), ..Default::default() };
    assert_eq!(instances.list_sync_runs(authorized(history, tenant.token())).await.unwrap_err().code(), Code::NotFound);

    let asked = instances.cancel_sync_run(authorized(cancel.clone(), other.token())).await.unwrap().into_inner();
    assert_eq!(asked.id, run.id);
    let cancelled = ended(platform, &other, &run).await;
    assert_eq!(cancelled.state(), SyncState::Cancelled);
    let late = instances.cancel_sync_run(authorized(cancel, other.token())).await.unwrap_err();
    assert_eq!(reason(&late), "SYNC_ENDED");
    instances.sync_instance(authorized(again, other.token())).await.expect("a new run once the last ended");
}

/// A sync stopped halfway (the process going away mid-run) resumes from its checkpoint on
/// the next start and ends with what an uninterrupted sync stores.
mod a_sync_stopped_halfway_resumes_to_the_same_result {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::resume(crate::harness::Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        super::resume(crate::harness::Backend::Servers).await;
    }
}

fn small_pages(config: &mut PlatformConfig) {
    config.instance.sync_page_size = 25;
}

async fn resume(backend: Backend) {
    let running =
        simulator(SimConfig { controls: 40, latency: Duration::from_millis(20), ..SimConfig::default() }).await;
    let mut platform = TestPlatform::start_with(backend, small_pages).await;
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let tenant = platform.tenant("Resumed").await;
        let instance = connected(&platform, &tenant, &running).await;
        let run = start(&platform, &tenant, &instance.id, SyncMode::Full).await;
        // Let it get part of the way.
        let mut instances = client(&platform).await;
        loop {
            let request = GetSyncRunRequest { instance_id: instance.id.clone(), sync_run_id: run.id.clone() };
            let current = instances.get_sync_run(authorized(request, tenant.token())).await.unwrap().into_inner();
            let fetched: i64 = current.tables.iter().map(|t| t.fetched).sum();
            assert!(current.state() != SyncState::Succeeded, "the sync ended before it could be stopped");
            if fetched >= 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        platform.restart().await;
        let finished = ended(&platform, &tenant, &run).await;
        assert_eq!(finished.state(), SyncState::Succeeded, "{finished:?}");
        assert_store_is(&platform, &running).await;
        // Every record stored once over both processes (the run's counts may miss a page
        // stored just before the stop and read again after: it counts as unchanged).
        let stored = platform.stored_count(DatabaseGroup::Analysis, "SELECT COUNT(*) FROM grc_records").await;
        assert_eq!(stored, kept_records(&running.simulator));
        let created: i64 = finished.tables.iter().map(|t| t.created).sum();
        assert!(created <= stored, "{finished:?}");
        let started = platform
            .stored_count(DatabaseGroup::Core, "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'sync.started'")
            .await;
        assert_eq!(started, 1, "a resumed run does not start again");

        // Deletions across many ranges of ids (each page of 25 reconciles its own): the next
        // full sync leaves exactly what ServiceNow holds, reading each table once (its pages,
        // plus the clock probe and one lookup of users newly referenced).
        let churn = running.simulator.churn(300);
        assert!(churn.deleted.values().map(|ids| ids.len()).sum::<usize>() >= 10, "{churn:?}");
        // One table ends on a full page, so only an empty page after it reconciles the ids
        // past its last one: delete the highest ids until a whole number of pages is left.
        let results = "sn_grc_indicator_result";
        let mut ids = running.simulator.ids(results);
        loop {
            let highest = ids.pop_last().expect("results left");
            assert!(running.simulator.delete(results, &highest));
            if ids.len() % 25 == 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pages: u64 = running.simulator.counts().values().map(|records| *records as u64 / 25 + 1).sum();
        let requests_before = running.simulator.requests();
        let again = ended(&platform, &tenant, &start(&platform, &tenant, &instance.id, SyncMode::Full).await).await;
        assert_eq!(again.state(), SyncState::Succeeded, "{again:?}");
        assert_store_is(&platform, &running).await;
        let requests = running.simulator.requests() - requests_before;
        assert!(requests <= pages + 2, "{requests} requests for {pages} pages");
    }))
    .await;
    platform.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
