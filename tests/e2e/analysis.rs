//! Analyses of synced data, checked against the same definitions computed here from the
//! simulator's own records (never from the store): control effectiveness with NOT_TESTED,
//! controls without indicators, penalties of open issues, rollups and findings; jobs that
//! start, end, list, page, delete and refuse bad parameters; nothing for another tenant.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_client::AnalysisServiceClient;
use complianceiq_proto::complianceiq::analysis::v1::*;
use complianceiq_proto::complianceiq::common::v1::TimeRange;
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::{DeleteInstanceRequest, Instance, SyncMode, SyncRun};
use complianceiq_servicenow::datetime;
use complianceiq_servicenow::sim::{SimConfig, Simulator};
use tonic::Code;

use complianceiq_proto::complianceiq::organization::v1::{
    Organization, OrganizationSettings, UpdateOrganizationRequest,
};

use crate::harness::{TestPlatform, reason, violations};
use crate::instances::{RunningSimulator, simulator};
use crate::people::{Tenant, authorized};
use crate::platform_tests;
use crate::sync::{connected, sync};

platform_tests!(
    control_effectiveness_equals_the_definitions_computed_from_the_instance,
    risks_gaps_and_predictions_equal_the_definitions_computed_from_the_instance,
    the_plan_allows_its_analyses_per_billing_period,
    risk_scores_that_are_not_numbers_read_as_none,
    a_replay_on_a_past_sync_reads_the_data_as_it_stood_then,
    retention_removes_analyses_and_versions_past_the_setting_and_nothing_else,
    an_anomaly_planted_in_indicator_values_is_found_and_becomes_an_insight,
    results_stored_a_row_each_read_the_same_after_the_pages_migration,
);

pub async fn client(platform: &TestPlatform) -> AnalysisServiceClient<tonic::transport::Channel> {
    AnalysisServiceClient::new(platform.channel("analysis").await)
}

/// Starts a control analysis once the store has seen the instance's completed sync (the
/// event reaches it shortly after the run ends).
pub async fn start_controls(platform: &TestPlatform, tenant: &Tenant, request: AnalyzeControlsRequest) -> AnalysisJob {
    let mut analysis = client(platform).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match analysis.analyze_controls(authorized(request.clone(), tenant.token())).await {
            Ok(job) => return job.into_inner(),
            Err(status) if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => {
                assert!(tokio::time::Instant::now() < deadline, "the store never saw the sync: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("starting the analysis: {status:?}"),
        }
    }
}

/// Waits (up to a minute) until the job has ended.
pub async fn ended(platform: &TestPlatform, tenant: &Tenant, job: &AnalysisJob) -> AnalysisJob {
    let mut analysis = client(platform).await;
    for _ in 0..600 {
        let request = GetAnalysisJobRequest { job_id: job.id.clone() };
        let current = analysis.get_analysis_job(authorized(request, tenant.token())).await.unwrap().into_inner();
        if !matches!(current.state(), JobState::Queued | JobState::Running) {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("analysis job {} did not end within a minute", job.id);
}

/// Every result of a job, read in small pages.
pub async fn all_results(platform: &TestPlatform, tenant: &Tenant, job: &str) -> Vec<AnalysisResult> {
    let mut analysis = client(platform).await;
    let (mut results, mut token) = (Vec::new(), String::new());
    loop {
        let request = ListAnalysisResultsRequest { job_id: job.into(), page_size: 7, page_token: token };
        let page = analysis.list_analysis_results(authorized(request, tenant.token())).await.unwrap().into_inner();
        results.extend(page.results);
        if page.next_page_token.is_empty() {
            return results;
        }
        token = page.next_page_token;
    }
}

pub fn records(simulator: &Simulator, table: &str) -> Vec<BTreeMap<&'static str, String>> {
    simulator.ids(table).iter().filter_map(|id| simulator.record(table, id)).collect()
}

/// Per control sys_id: score, rating and findings.
type ControlOutcomes = BTreeMap<String, (Option<f64>, EffectivenessRating, Vec<String>)>;
/// Per (rollup kind or first risk, sys_id): the score.
type Rollups = BTreeMap<(String, String), f64>;

fn one_decimal(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Control effectiveness by the documented definitions, from the instance's records:
/// control sys_id → (score, rating), and the rollups (kind, sys_id) → mean score.
fn expected_controls(simulator: &Simulator, data_as_of: i64) -> (ControlOutcomes, Rollups) {
    let window = (data_as_of - 90 * 86_400)..=data_as_of;
    let control_of_indicator: HashMap<String, String> = records(simulator, "sn_grc_indicator")
        .into_iter()
        .map(|indicator| (indicator["sys_id"].clone(), indicator["item"].clone()))
        .collect();
    let mut tested: HashMap<String, (u32, u32)> = HashMap::new();
    for result in records(simulator, "sn_grc_indicator_result") {
        let collected = datetime::parse(&result["collection_date"]).expect("a collection date");
        let Some(control) = control_of_indicator.get(&result["indicator"]) else { continue };
        if window.contains(&collected) {
            let entry = tested.entry(control.clone()).or_default();
            entry.0 += 1;
            entry.1 += u32::from(result["passed"] == "true");
        }
    }
    let mut penalty: HashMap<String, f64> = HashMap::new();
    for issue in records(simulator, "sn_grc_issue") {
        if issue["state"] == "3" || issue["state"] == "4" {
            continue;
        }
        let cost = match issue["priority"].as_str() {
            "1" => 25.0,
            "2" => 15.0,
            "3" => 5.0,
            _ => 0.0,
        };
        *penalty.entry(issue["item"].clone()).or_default() += cost;
    }
    let policy_of_requirement: HashMap<String, String> = records(simulator, "sn_compliance_policy_statement")
        .into_iter()
        .map(|requirement| (requirement["sys_id"].clone(), requirement["document"].clone()))
        .collect();
    let mut controls = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for control in records(simulator, "sn_compliance_control") {
        if control["state"] == "draft" || control["state"] == "retired" {
            continue;
        }
        let id = control["sys_id"].clone();
        let score = tested.get(&id).map(|(all, passed)| {
            let pass_rate = f64::from(*passed) / f64::from(*all);
            one_decimal((100.0 * pass_rate - penalty.get(&id).copied().unwrap_or(0.0)).max(0.0))
        });
        let rating = match score {
            None => EffectivenessRating::NotTested,
            Some(s) if s >= 80.0 => EffectivenessRating::Effective,
            Some(s) if s >= 50.0 => EffectivenessRating::PartiallyEffective,
            Some(_) => EffectivenessRating::Ineffective,
        };
        let mut findings = Vec::new();
        if rating == EffectivenessRating::Ineffective {
            findings.push("CONTROL_INEFFECTIVE".to_string());
        }
        if control["status"] == "compliant" && score.is_some_and(|s| s < 50.0) {
            findings.push("STATUS_CONTRADICTS_SCORE".to_string());
        }
        if let Some(score) = score {
            let requirement = control["content"].clone();
            groups.entry(("policy".into(), policy_of_requirement[&requirement].clone())).or_default().push(score);
            groups.entry(("requirement".into(), requirement)).or_default().push(score);
            groups.entry(("entity".into(), control["profile"].clone())).or_default().push(score);
        }
        controls.insert(id, (score, rating, findings));
    }
    let rollups =
        groups.into_iter().map(|(key, scores)| (key, one_decimal(scores.iter().sum::<f64>() / scores.len() as f64)));
    (controls, rollups.collect())
}

async fn control_effectiveness_equals_the_definitions_computed_from_the_instance(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 60, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Analysed").await;
    let instance = connected(platform, &tenant, &running).await;
    let mut analysis = client(platform).await;
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };

    // Nothing synced yet: nothing to analyse.
    let refused = analysis.analyze_controls(authorized(request.clone(), tenant.token())).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");

    let run = sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let job = start_controls(platform, &tenant, request.clone()).await;
    assert_eq!((job.state(), job.r#type()), (JobState::Queued, AnalysisType::ControlEffectiveness));
    assert_eq!(job.data_as_of_sync_run_id, run.id, "the job reads the completed sync");
    let job = ended(platform, &tenant, &job).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    assert_eq!(job.progress_percent, 100);
    let data_as_of = job.data_as_of_time.as_ref().expect("data as of").seconds;
    assert_eq!(Some(data_as_of), run.data_as_of_time.as_ref().map(|time| time.seconds));

    let (expected, expected_rollups) = expected_controls(&running.simulator, data_as_of);
    let results = all_results(platform, &tenant, &job.id).await;
    let (subjects, rollups): (Vec<&AnalysisResult>, Vec<&AnalysisResult>) =
        results.iter().partition(|result| result.rollup.is_empty());
    let got: ControlOutcomes = subjects
        .iter()
        .map(|r| (r.subject.as_ref().unwrap().sys_id.clone(), (r.score, r.rating(), r.findings.clone())))
        .collect();
    assert_eq!(got, expected, "every active control, as the definitions say");
    let ratings: Vec<EffectivenessRating> = expected.values().map(|(_, rating, _)| *rating).collect();
    for rating in [EffectivenessRating::NotTested, EffectivenessRating::Effective, EffectivenessRating::Ineffective] {
        assert!(ratings.contains(&rating), "the data exercises {rating:?}");
    }
    let got_rollups: Rollups = rollups
        .iter()
        .map(|r| ((r.rollup.clone(), r.subject.as_ref().unwrap().sys_id.clone()), r.score.expect("a rollup score")))
        .collect();
    assert_eq!(got_rollups, expected_rollups, "rollups per policy, requirement and entity");
    let link = subjects[0].subject.as_ref().unwrap();
    assert_eq!(link.url, format!("{}/nav_to.do?uri=sn_compliance_control.do?sys_id={}", running.url, link.sys_id));

    let summary = job.summary.as_ref().expect("a summary");
    let scores: Vec<f64> = expected.values().filter_map(|(score, ..)| *score).collect();
    assert_eq!(summary.score, one_decimal(scores.iter().sum::<f64>() / scores.len() as f64), "mean of tested");
    let metric = |name: &str| summary.metrics.iter().find(|m| m.name == name).map(|m| m.value);
    assert_eq!(metric("controls_tested"), Some(scores.len() as f64));
    let not_tested = ratings.iter().filter(|r| **r == EffectivenessRating::NotTested).count();
    assert_eq!(metric("not_tested"), Some(not_tested as f64));

    // Only some controls, and a period of its own.
    let chosen: Vec<String> = expected.keys().take(3).cloned().collect();
    let narrow = AnalyzeControlsRequest {
        instance_id: instance.id.clone(),
        control_ids: chosen.clone(),
        period: Some(TimeRange {
            start_time: Some(prost_types::Timestamp { seconds: data_as_of - 400 * 86_400, nanos: 0 }),
            end_time: Some(prost_types::Timestamp { seconds: data_as_of, nanos: 0 }),
        }),
    };
    let narrow = ended(platform, &tenant, &start_controls(platform, &tenant, narrow).await).await;
    assert_eq!(narrow.state(), JobState::Succeeded);
    let subjects: Vec<String> = all_results(platform, &tenant, &narrow.id)
        .await
        .into_iter()
        .filter(|r| r.rollup.is_empty())
        .map(|r| r.subject.unwrap().sys_id)
        .collect();
    assert_eq!(subjects, chosen);

    // Bad parameters, each named.
    let bad = [
        (AnalyzeControlsRequest { instance_id: "nope".into(), ..Default::default() }, "instance_id"),
        (
            AnalyzeControlsRequest {
                instance_id: instance.id.clone(),
                control_ids: vec!["x".into()],
                ..Default::default()
            },
            "control_ids[0]",
        ),
        (
            AnalyzeControlsRequest {
                instance_id: instance.id.clone(),
                period: Some(TimeRange {
                    start_time: Some(prost_types::Timestamp { seconds: data_as_of, nanos: 0 }),
                    end_time: Some(prost_types::Timestamp { seconds: data_as_of, nanos: 0 }),
                }),
                ..Default::default()
            },
            "period",
        ),
    ];
    for (request, field) in bad {
        let status = analysis.analyze_controls(authorized(request, tenant.token())).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violations(&status)[0].0, field);
    }
    let unknown = AnalyzeControlsRequest { instance_id: uuid::Uuid::now_v7().to_string(), ..Default::default() };
    let status = analysis.analyze_controls(authorized(unknown, tenant.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Another organization sees nothing of it, and cannot analyse the instance.
    let stranger = platform.tenant("Stranger").await;
    let get = GetAnalysisJobRequest { job_id: job.id.clone() };
    assert_eq!(
        analysis.get_analysis_job(authorized(get.clone(), stranger.token())).await.unwrap_err().code(),
        Code::NotFound
    );
    let results = ListAnalysisResultsRequest { job_id: job.id.clone(), ..Default::default() };
    let hidden = analysis.list_analysis_results(authorized(results.clone(), stranger.token())).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let listed = analysis
        .list_analysis_jobs(authorized(ListAnalysisJobsRequest::default(), stranger.token()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.jobs.is_empty());
    let delete = DeleteAnalysisJobRequest { job_id: job.id.clone() };
    let refused = analysis.delete_analysis_job(authorized(delete.clone(), stranger.token())).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    let theirs = analysis.analyze_controls(authorized(request.clone(), stranger.token())).await.unwrap_err();
    assert_eq!(theirs.code(), Code::NotFound);

    // The owner lists both jobs, newest first, a page at a time; events were emitted.
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListAnalysisJobsRequest { page_size: 1, page_token: token, ..Default::default() };
        let page = analysis.list_analysis_jobs(authorized(request, tenant.token())).await.unwrap().into_inner();
        listed.extend(page.jobs.into_iter().map(|job| job.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed, [narrow.id.clone(), job.id.clone()]);
    for event in ["analysis.started", "analysis.completed"] {
        let sql = match event {
            "analysis.started" => "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'analysis.started'",
            _ => "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'analysis.completed'",
        };
        assert_eq!(platform.stored_count(DatabaseGroup::Analysis, sql).await, 2, "{event}");
    }

    // Deleting an ended job removes it and its results.
    analysis.delete_analysis_job(authorized(delete, tenant.token())).await.unwrap();
    assert_eq!(analysis.get_analysis_job(authorized(get, tenant.token())).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        analysis.list_analysis_results(authorized(results, tenant.token())).await.unwrap_err().code(),
        Code::NotFound
    );

    // Replay runs the latest analysis of each type again, with its parameters, on the last sync.
    let replay = ReplayAnalysisRequest { instance_id: instance.id.clone(), ..Default::default() };
    let replayed = analysis.replay_analysis(authorized(replay.clone(), tenant.token())).await.unwrap().into_inner();
    assert_eq!(replayed.jobs.len(), 1);
    let again = ended(platform, &tenant, &replayed.jobs[0]).await;
    assert_eq!((again.state(), again.r#type()), (JobState::Succeeded, AnalysisType::ControlEffectiveness));
    assert_eq!(again.parameters, narrow.parameters, "the latest job's parameters");
    assert_eq!(again.data_as_of_sync_run_id, run.id);
    let bad = ReplayAnalysisRequest { instance_id: instance.id.clone(), types: vec![0], ..Default::default() };
    let status = analysis.replay_analysis(authorized(bad, tenant.token())).await.unwrap_err();
    assert_eq!((status.code(), violations(&status)[0].0.as_str()), (Code::InvalidArgument, "types[0]"));
    let theirs = analysis.replay_analysis(authorized(replay, stranger.token())).await.unwrap_err();
    assert_eq!(theirs.code(), Code::NotFound);

    // A disconnected instance cannot be analysed any more; its jobs stay as history.
    let mut instances = InstanceServiceClient::new(platform.channel("instance").await);
    let delete = DeleteInstanceRequest { instance_id: instance.id.clone(), ..Default::default() };
    instances.delete_instance(authorized(delete, tenant.token())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match analysis.analyze_controls(authorized(request.clone(), tenant.token())).await {
            Err(status) if status.code() == Code::NotFound => break,
            outcome => {
                assert!(tokio::time::Instant::now() < deadline, "still analysable: {outcome:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

pub fn is_active(control: &BTreeMap<&'static str, String>) -> bool {
    control["state"] != "draft" && control["state"] != "retired"
}

/// Per risk: (computed residual to one decimal, understated); per pair of risks with
/// correlation ≥ 0.3: the correlation.
fn expected_risks(simulator: &Simulator, controls: &ControlOutcomes) -> (BTreeMap<String, (f64, bool)>, Rollups) {
    let weights: HashMap<String, f64> = records(simulator, "sn_compliance_control")
        .into_iter()
        .filter(is_active)
        .map(|control| (control["sys_id"].clone(), control["weighting"].parse().unwrap_or(1.0)))
        .collect();
    // Risk → control → (w, e).
    let mut linked: BTreeMap<String, BTreeMap<String, (f64, f64)>> = BTreeMap::new();
    for link in records(simulator, "sn_risk_m2m_risk_control") {
        let control = &link["sn_compliance_control"];
        let Some(weight) = weights.get(control) else { continue };
        let effectiveness = controls[control].0.unwrap_or(0.0) / 100.0;
        linked.entry(link["sn_risk_risk"].clone()).or_default().insert(control.clone(), (*weight, effectiveness));
    }
    let mut risks = BTreeMap::new();
    for risk in records(simulator, "sn_risk_risk") {
        let inherent: f64 = risk["inherent_score"].parse().unwrap();
        let residual: f64 = risk["residual_score"].parse().unwrap();
        let computed = match linked.get(&risk["sys_id"]) {
            Some(controls) => {
                let weight: f64 = controls.values().map(|(w, _)| w).sum();
                let weighted: f64 = controls.values().map(|(w, e)| w * e).sum();
                inherent * (1.0 - weighted / weight)
            }
            None => inherent,
        };
        risks.insert(risk["sys_id"].clone(), (one_decimal(computed), residual < 0.8 * computed));
    }
    let mut pairs = BTreeMap::new();
    let ids: Vec<&String> = risks.keys().collect();
    let empty = BTreeMap::new();
    for (index, a) in ids.iter().enumerate() {
        for b in &ids[index + 1..] {
            let (of_a, of_b) = (linked.get(*a).unwrap_or(&empty), linked.get(*b).unwrap_or(&empty));
            let weakness = |(w, e): &(f64, f64)| w * (1.0 - e);
            let shared: f64 = of_a.iter().filter(|(id, _)| of_b.contains_key(*id)).map(|(_, c)| weakness(c)).sum();
            let union: f64 = of_a.values().map(weakness).sum::<f64>()
                + of_b.iter().filter(|(id, _)| !of_a.contains_key(*id)).map(|(_, c)| weakness(c)).sum::<f64>();
            if shared > 0.0 && shared / union >= 0.3 {
                pairs.insert(((*a).clone(), (*b).clone()), one_decimal(100.0 * shared / union));
            }
        }
    }
    (risks, pairs)
}

/// Per active requirement: its gap, if any; per policy: coverage in percent.
fn expected_gaps(
    simulator: &Simulator,
    controls: &ControlOutcomes,
) -> (BTreeMap<String, Option<&'static str>>, BTreeMap<String, f64>) {
    let mut of_requirement: HashMap<String, Vec<Option<f64>>> = HashMap::new();
    for control in records(simulator, "sn_compliance_control").into_iter().filter(is_active) {
        of_requirement.entry(control["content"].clone()).or_default().push(controls[&control["sys_id"]].0);
    }
    let (mut gaps, mut coverage) = (BTreeMap::new(), BTreeMap::<String, (f64, f64)>::new());
    for requirement in records(simulator, "sn_compliance_policy_statement") {
        if requirement["active"] != "true" {
            continue;
        }
        let scores = of_requirement.get(&requirement["sys_id"]).cloned().unwrap_or_default();
        let effective = scores.iter().flatten().any(|score| *score >= 80.0);
        let gap = if scores.is_empty() {
            Some("NO_CONTROLS")
        } else if scores.iter().all(Option::is_none) {
            Some("UNTESTED")
        } else if !effective {
            Some("NO_EFFECTIVE_CONTROL")
        } else {
            None
        };
        gaps.insert(requirement["sys_id"].clone(), gap);
        let entry = coverage.entry(requirement["document"].clone()).or_default();
        entry.0 += 1.0;
        entry.1 += f64::from(u8::from(effective));
    }
    (gaps, coverage.into_iter().map(|(policy, (all, covered))| (policy, one_decimal(100.0 * covered / all))).collect())
}

async fn risks_gaps_and_predictions_equal_the_definitions_computed_from_the_instance(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 60, seed: 7, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Risks").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let mut analysis = client(platform).await;
    let controls_job = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let controls_job = ended(platform, &tenant, &start_controls(platform, &tenant, controls_job).await).await;
    let data_as_of = controls_job.data_as_of_time.as_ref().unwrap().seconds;
    let (controls, _) = expected_controls(&running.simulator, data_as_of);

    let request = AnalyzeRisksRequest { instance_id: instance.id.clone(), ..Default::default() };
    let job = analysis.analyze_risks(authorized(request, tenant.token())).await.unwrap().into_inner();
    let job = ended(platform, &tenant, &job).await;
    assert_eq!((job.state(), job.r#type()), (JobState::Succeeded, AnalysisType::RiskCorrelation), "{job:?}");
    let results = all_results(platform, &tenant, &job.id).await;
    let got: BTreeMap<String, (f64, bool)> = results
        .iter()
        .filter(|r| r.rollup.is_empty())
        .map(|r| {
            let understated = r.findings.iter().any(|f| f == "RISK_UNDERSTATED");
            (r.subject.as_ref().unwrap().sys_id.clone(), (r.values["computed_residual"], understated))
        })
        .collect();
    let pairs: Rollups = results
        .iter()
        .filter(|r| r.rollup == "correlation")
        .map(|r| ((r.subject.as_ref().unwrap().sys_id.clone(), r.sources[0].sys_id.clone()), r.score.unwrap()))
        .collect();
    let (expected_risks, expected_pairs) = expected_risks(&running.simulator, &controls);
    assert_eq!(got, expected_risks, "every risk's computed residual and finding");
    assert_eq!(pairs, expected_pairs, "risk pairs sharing weak controls");
    assert!(expected_risks.values().any(|(_, understated)| *understated), "the data has understated risks");
    assert!(!expected_pairs.is_empty(), "the data has correlated risks");

    let request = AnalyzeComplianceRequest { instance_id: instance.id.clone(), ..Default::default() };
    let job = analysis.analyze_compliance(authorized(request, tenant.token())).await.unwrap().into_inner();
    let job = ended(platform, &tenant, &job).await;
    assert_eq!((job.state(), job.r#type()), (JobState::Succeeded, AnalysisType::ComplianceGap), "{job:?}");
    let results = all_results(platform, &tenant, &job.id).await;
    let gaps: BTreeMap<String, Option<&'static str>> = results
        .iter()
        .filter(|r| r.rollup.is_empty())
        .map(|r| {
            let gap = ["NO_CONTROLS", "UNTESTED", "NO_EFFECTIVE_CONTROL"]
                .into_iter()
                .find(|kind| r.findings.iter().any(|f| f == kind));
            (r.subject.as_ref().unwrap().sys_id.clone(), gap)
        })
        .collect();
    let coverage: BTreeMap<String, f64> = results
        .iter()
        .filter(|r| r.rollup == "policy")
        .map(|r| (r.subject.as_ref().unwrap().sys_id.clone(), r.score.unwrap()))
        .collect();
    let (expected_gaps, expected_coverage) = expected_gaps(&running.simulator, &controls);
    assert_eq!(gaps, expected_gaps, "every active requirement's gap");
    assert_eq!(coverage, expected_coverage, "coverage per policy");
    let kinds: Vec<Option<&str>> = expected_gaps.values().copied().collect();
    assert!(kinds.contains(&None) && kinds.contains(&Some("NO_EFFECTIVE_CONTROL")), "{kinds:?}");

    // The predictive baseline and its backtest, recomputed from the records.
    let request = RunPredictiveAnalysisRequest { instance_id: instance.id.clone(), ..Default::default() };
    let job = analysis.run_predictive_analysis(authorized(request, tenant.token())).await.unwrap().into_inner();
    let job = ended(platform, &tenant, &job).await;
    assert_eq!((job.state(), job.r#type()), (JobState::Succeeded, AnalysisType::Predictive), "{job:?}");
    let predicted: BTreeMap<String, f64> = all_results(platform, &tenant, &job.id)
        .await
        .into_iter()
        .map(|r| (r.subject.unwrap().sys_id, r.score.unwrap()))
        .collect();
    let (expected_predictions, brier, brier_base) = expected_predictions(&running.simulator, data_as_of);
    assert_eq!(predicted, expected_predictions, "each control's failure probability in percent");
    let summary = job.summary.unwrap();
    let metric = |name: &str| summary.metrics.iter().find(|m| m.name == name).unwrap().value;
    assert!((metric("brier") - brier).abs() < 1e-9, "{} against {brier}", metric("brier"));
    assert!((metric("brier_base_rate") - brier_base).abs() < 1e-9);
    let request =
        RunPredictiveAnalysisRequest { instance_id: instance.id.clone(), horizon_days: 400, ..Default::default() };
    let status = analysis.run_predictive_analysis(authorized(request, tenant.token())).await.unwrap_err();
    assert_eq!((status.code(), violations(&status)[0].0.as_str()), (Code::InvalidArgument, "horizon_days"));
    let request =
        RunPredictiveAnalysisRequest { instance_id: instance.id.clone(), model_id: "m1".into(), ..Default::default() };
    let status = analysis.run_predictive_analysis(authorized(request, tenant.token())).await.unwrap_err();
    assert_eq!((status.code(), violations(&status)[0].0.as_str()), (Code::InvalidArgument, "model_id"));
    // A model the organization does not have fails the job, saying so.
    let missing = uuid::Uuid::now_v7().to_string();
    let request = RunPredictiveAnalysisRequest {
        instance_id: instance.id.clone(),
        model_id: missing.clone(),
        ..Default::default()
    };
    let job = analysis.run_predictive_analysis(authorized(request, tenant.token())).await.unwrap().into_inner();
    let job = ended(platform, &tenant, &job).await;
    assert_eq!(job.state(), JobState::Failed, "{job:?}");
    assert!(job.error.contains(&missing), "{}", job.error);

    // A job cancelled right after it was started (the worker looks every half second, and a
    // claimed job checks between its steps) ends CANCELLED with no results.
    let request = AnalyzeComplianceRequest { instance_id: instance.id.clone(), ..Default::default() };
    let job = analysis.analyze_compliance(authorized(request, tenant.token())).await.unwrap().into_inner();
    let cancel = DeleteAnalysisJobRequest { job_id: job.id.clone() };
    analysis.delete_analysis_job(authorized(cancel, tenant.token())).await.unwrap();
    let cancelled = ended(platform, &tenant, &job).await;
    assert_eq!(cancelled.state(), JobState::Cancelled, "{cancelled:?}");
    assert!(cancelled.summary.is_none() && all_results(platform, &tenant, &job.id).await.is_empty());

    // Parameters out of range are refused, naming the field.
    for min_correlation in [-0.1, 1.5, f64::NAN] {
        let request = AnalyzeRisksRequest { instance_id: instance.id.clone(), min_correlation, ..Default::default() };
        let status = analysis.analyze_risks(authorized(request, tenant.token())).await.unwrap_err();
        assert_eq!((status.code(), violations(&status)[0].0.as_str()), (Code::InvalidArgument, "min_correlation"));
    }
    let request = AnalyzeComplianceRequest { instance_id: instance.id.clone(), policy_ids: vec!["POL1".into()] };
    let status = analysis.analyze_compliance(authorized(request, tenant.token())).await.unwrap_err();
    assert_eq!((status.code(), violations(&status)[0].0.as_str()), (Code::InvalidArgument, "policy_ids[0]"));
}

/// The free plan's 50 analyses per period: the 51st is refused until the next period, and
/// deleting jobs gives none back.
async fn the_plan_allows_its_analyses_per_billing_period(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 3, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Quota").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let request = AnalyzeComplianceRequest { instance_id: instance.id.clone(), ..Default::default() };
    let mut analysis = client(platform).await;
    // The first waits until the store has seen the sync; it counts like the others.
    let first = start_controls(
        platform,
        &tenant,
        AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() },
    )
    .await;
    for _ in 1..50 {
        analysis.analyze_compliance(authorized(request.clone(), tenant.token())).await.expect("within the plan");
    }
    let refused = analysis.analyze_compliance(authorized(request.clone(), tenant.token())).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::ResourceExhausted, "ANALYSIS_QUOTA"), "{refused:?}");
    assert!(refused.message().contains("the free plan allows 50 analyses"), "{}", refused.message());
    let first = ended(platform, &tenant, &first).await;
    let delete = DeleteAnalysisJobRequest { job_id: first.id.clone() };
    analysis.delete_analysis_job(authorized(delete, tenant.token())).await.unwrap();
    let still = analysis.analyze_compliance(authorized(request, tenant.token())).await.unwrap_err();
    assert_eq!(still.code(), Code::ResourceExhausted, "a deleted job still counted");
}

/// Per active control with history: the recency-weighted failure rate (half-life 30 days) in
/// percent; and the backtest's Brier scores (the estimate at as-of − 30 days against the last
/// 30 days' results; the base rate of all results before).
fn expected_predictions(simulator: &Simulator, data_as_of: i64) -> (BTreeMap<String, f64>, f64, f64) {
    let active: HashMap<String, bool> = records(simulator, "sn_compliance_control")
        .into_iter()
        .map(|control| (control["sys_id"].clone(), is_active(&control)))
        .collect();
    let control_of_indicator: HashMap<String, String> = records(simulator, "sn_grc_indicator")
        .into_iter()
        .map(|indicator| (indicator["sys_id"].clone(), indicator["item"].clone()))
        .collect();
    let mut history: BTreeMap<String, Vec<(i64, bool)>> = BTreeMap::new();
    for result in records(simulator, "sn_grc_indicator_result") {
        let Some(control) = control_of_indicator.get(&result["indicator"]) else { continue };
        let collected = datetime::parse(&result["collection_date"]).unwrap();
        if active[control] && collected <= data_as_of {
            history.entry(control.clone()).or_default().push((collected, result["passed"] == "true"));
        }
    }
    let estimate = |results: &[(i64, bool)], at: i64| -> Option<f64> {
        let weighted: Vec<(f64, bool)> = results
            .iter()
            .filter(|(t, _)| *t <= at)
            .map(|(t, passed)| (0.5f64.powf((at - t) as f64 / 86_400.0 / 30.0), *passed))
            .collect();
        let total: f64 = weighted.iter().map(|(w, _)| w).sum();
        (total > 0.0).then(|| weighted.iter().filter(|(_, passed)| !passed).map(|(w, _)| w).sum::<f64>() / total)
    };
    let predictions = history
        .iter()
        .filter_map(|(control, results)| Some((control.clone(), one_decimal(100.0 * estimate(results, data_as_of)?))))
        .collect();
    let cutoff = data_as_of - 30 * 86_400;
    let before: Vec<bool> = history.values().flatten().filter(|(t, _)| *t <= cutoff).map(|(_, p)| *p).collect();
    let base = before.iter().filter(|passed| !**passed).count() as f64 / before.len() as f64;
    let (mut brier, mut brier_base, mut scored) = (0.0, 0.0, 0.0);
    for results in history.values() {
        let Some(p) = estimate(results, cutoff) else { continue };
        for (_, passed) in results.iter().filter(|(t, _)| *t > cutoff) {
            let failed = if *passed { 0.0 } else { 1.0 };
            brier += (p - failed) * (p - failed);
            brier_base += (base - failed) * (base - failed);
            scored += 1.0;
        }
    }
    (predictions, brier / scored, brier_base / scored)
}

/// A risk score that is a reference (a sys_id) or empty reads as no number; a decimal reads as
/// itself. A cast of every value used to fail the whole view on PostgreSQL.
async fn risk_scores_that_are_not_numbers_read_as_none(platform: &TestPlatform) {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut owner = sqlx::AnyConnection::connect(&platform.owner_database_url(DatabaseGroup::Analysis)).await.unwrap();
    let (tenant, instance) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    for (sys_id, score) in [("a", "0123456789abcdef0123456789abcdef"), ("b", "12.5"), ("c", ""), ("d", "7")] {
        sqlx::query(
            "INSERT INTO grc_records (organization_id, instance_id, table_name, sys_id, kind, updated_on, fields, \
             content_hash, first_synced_at, synced_at) VALUES ($1, $2, 'sn_risk_risk', $3, 'risk', '2026-01-01 00:00:00', \
             $4, 'h', 0, 0)",
        )
        .bind(&tenant)
        .bind(&instance)
        .bind(sys_id)
        .bind(serde_json::json!({"inherent_score": score, "residual_score": score}).to_string())
        .execute(&mut owner)
        .await
        .unwrap();
    }
    let rows = sqlx::query(
        "SELECT sys_id, inherent_score, residual_score FROM grc_risks WHERE organization_id = $1 ORDER BY sys_id",
    )
    .bind(&tenant)
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let scores: Vec<(String, Option<f64>, Option<f64>)> =
        rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect();
    let expected = [("a", None), ("b", Some(12.5)), ("c", None), ("d", Some(7.0))];
    assert_eq!(scores, expected.map(|(id, score)| (id.to_string(), score, score)));
    owner.close().await.unwrap();
}

/// Replays the latest control analysis as of `sync_run_id` and waits for its end.
async fn replayed_on(
    platform: &TestPlatform,
    tenant: &Tenant,
    instance: &str,
    sync_run_id: &str,
) -> (AnalysisJob, Vec<AnalysisResult>) {
    let request = ReplayAnalysisRequest {
        instance_id: instance.into(),
        types: vec![AnalysisType::ControlEffectiveness as i32],
        sync_run_id: sync_run_id.into(),
    };
    let replayed = client(platform).await.replay_analysis(authorized(request, tenant.token())).await.unwrap();
    let job = ended(platform, tenant, &replayed.into_inner().jobs[0]).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let results = all_results(platform, tenant, &job.id).await;
    (job, results)
}

/// A tenant with a simulated instance of `controls` controls, synced in full once, and a
/// control analysis of that sync that succeeded.
struct Analysed {
    running: RunningSimulator,
    tenant: Tenant,
    instance: Instance,
    run: SyncRun,
    job: AnalysisJob,
}

async fn synced_and_analysed(platform: &TestPlatform, name: &str, controls: usize) -> Analysed {
    let running = simulator(SimConfig { controls, ..SimConfig::default() }).await;
    let tenant = platform.tenant(name).await;
    let instance = connected(platform, &tenant, &running).await;
    let run = sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let job = ended(platform, &tenant, &start_controls(platform, &tenant, request).await).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    Analysed { running, tenant, instance, run, job }
}

async fn a_replay_on_a_past_sync_reads_the_data_as_it_stood_then(platform: &TestPlatform) {
    let Analysed { running, tenant, instance, run: first_run, job: first } =
        synced_and_analysed(platform, "Time Travel", 30).await;
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let first_results = all_results(platform, &tenant, &first.id).await;
    let history = "SELECT COUNT(*) FROM grc_record_history";
    assert_eq!(platform.stored_count(DatabaseGroup::Analysis, history).await, 0, "nothing replaced yet");

    // In ServiceNow, every indicator result of one control fails, a control is retired and
    // another's results are deleted; a full sync brings it all in.
    let sim = &running.simulator;
    let result_ids = sim.ids("sn_grc_indicator_result");
    let control_of = |result: &String| {
        let indicator = sim.record("sn_grc_indicator_result", result).unwrap()["indicator"].clone();
        sim.record("sn_grc_indicator", &indicator).unwrap()["item"].clone()
    };
    let tested: Vec<String> =
        result_ids.iter().map(control_of).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    assert!(tested.len() >= 3, "controls with results: {tested:?}");
    let (failing, emptied, retired) = (&tested[0], &tested[1], &tested[2]);
    let mut changed = 0;
    for result in &result_ids {
        let control = control_of(result);
        if &control == failing {
            assert!(sim.edit("sn_grc_indicator_result", result, &[("passed", "false")]));
            changed += 1;
        } else if &control == emptied {
            assert!(sim.delete("sn_grc_indicator_result", result));
            changed += 1;
        }
    }
    assert!(sim.edit("sn_compliance_control", retired, &[("state", "retired")]));
    changed += 1;
    // A sync reads up to two seconds behind ServiceNow's clock (the second being written).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second_run = sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let second = ended(platform, &tenant, &start_controls(platform, &tenant, request.clone()).await).await;
    let second_results = all_results(platform, &tenant, &second.id).await;
    assert_ne!(second_results, first_results, "the changes show in an analysis of the current data");
    let replaced = platform.stored_count(DatabaseGroup::Analysis, history).await;
    assert_eq!(replaced, changed, "each changed or deleted record keeps its past version once");

    // Replayed on the first sync: exactly the first job's results, after all that; replayed on
    // the second: the second's.
    let (then, then_results) = replayed_on(platform, &tenant, &instance.id, &first_run.id).await;
    assert_eq!(
        (then.data_as_of_sync_run_id.as_str(), &then.data_as_of_time),
        (first_run.id.as_str(), &first.data_as_of_time)
    );
    assert_eq!(then_results, first_results, "the data as of the first sync");
    assert_eq!(then.summary.as_ref().map(|s| s.score), first.summary.as_ref().map(|s| s.score));
    let (now, now_results) = replayed_on(platform, &tenant, &instance.id, &second_run.id).await;
    assert_eq!(now.data_as_of_sync_run_id, second_run.id);
    assert_eq!(now_results, second_results);

    // A sync of an unchanged instance adds no history: its cost follows the changes.
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    assert_eq!(platform.stored_count(DatabaseGroup::Analysis, history).await, replaced);

    // A point that is not stored, or not an id; another tenant sees nothing.
    let mut analysis = client(platform).await;
    let replay = |sync_run_id: &str| ReplayAnalysisRequest {
        instance_id: instance.id.clone(),
        types: vec![],
        sync_run_id: sync_run_id.into(),
    };
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = analysis.replay_analysis(authorized(replay(&unknown), tenant.token())).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "POINT_NOT_STORED"));
    assert!(status.message().contains(&unknown), "{}", status.message());
    let status = analysis.replay_analysis(authorized(replay("last week"), tenant.token())).await.unwrap_err();
    assert_eq!((status.code(), violations(&status)[0].0.as_str()), (Code::InvalidArgument, "sync_run_id"));
    let stranger = platform.tenant("Time Thief").await;
    let status = analysis.replay_analysis(authorized(replay(&first_run.id), stranger.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

/// Moves everything the analysis store holds for `tenant` `days` into the past, as if it had
/// been synced and analysed then.
async fn age(platform: &TestPlatform, tenant: &Tenant, days: i64) {
    let by = days * 86_400 * 1_000_000;
    let organization = tenant.id();
    platform
        .execute_as_owner(
            DatabaseGroup::Analysis,
            &format!(
                "UPDATE analysis_jobs SET created_at = created_at - {by}, started_at = started_at - {by}, \
                   ended_at = ended_at - {by} WHERE organization_id = '{organization}'; \
                 UPDATE grc_sync_points SET stored_through = stored_through - {by}, \
                   completed_at = completed_at - {by} WHERE organization_id = '{organization}'; \
                 UPDATE grc_records SET valid_from = valid_from - {by} WHERE organization_id = '{organization}'; \
                 UPDATE grc_record_history SET valid_from = valid_from - {by}, valid_to = valid_to - {by} \
                   WHERE organization_id = '{organization}'; \
                 UPDATE insight_snapshots SET created_at = created_at - {by} WHERE organization_id = '{organization}'; \
                 UPDATE insight_changes SET at = at - {by} WHERE organization_id = '{organization}'; \
                 UPDATE insights SET first_seen_at = first_seen_at - {by}, last_seen_at = last_seen_at - {by}, \
                   resolved_at = resolved_at - {by} WHERE organization_id = '{organization}';"
            ),
        )
        .await;
}

/// Rows of `table` about analysis job `job`, whatever the services say.
async fn rows_of_job(platform: &TestPlatform, table: &str, job: &AnalysisJob) -> i64 {
    let count = format!("SELECT COUNT(*) FROM {table} WHERE analysis_job_id = '{}'", job.id);
    platform.stored_count(DatabaseGroup::Analysis, &count).await
}

/// Waits until the insights module has taken in `job`'s completion (its trend point).
async fn insights_took_in(platform: &TestPlatform, job: &AnalysisJob) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rows_of_job(platform, "insight_snapshots", job).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "insights never took in {}", job.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (jobs, sync points, past record versions) stored for `tenant`, whatever the services say.
async fn kept(platform: &TestPlatform, tenant: &Tenant) -> (i64, i64, i64) {
    let count = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE organization_id = '{}'", tenant.id());
    (
        platform.stored_count(DatabaseGroup::Analysis, &count("analysis_jobs")).await,
        platform.stored_count(DatabaseGroup::Analysis, &count("grc_sync_points")).await,
        platform.stored_count(DatabaseGroup::Analysis, &count("grc_record_history")).await,
    )
}

async fn retention_removes_analyses_and_versions_past_the_setting_and_nothing_else(platform: &TestPlatform) {
    // Tenant one: a sync and an analysis, a change in ServiceNow and a second sync, all 40
    // days ago; then an analysis now.
    let Analysed { running, tenant, instance, run: first_run, job: old } =
        synced_and_analysed(platform, "Forgetful", 10).await;
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let result = running.simulator.ids("sn_grc_indicator_result").into_iter().next().expect("indicator results");
    assert!(running.simulator.edit("sn_grc_indicator_result", &result, &[("passed", "false")]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second_run = sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    insights_took_in(platform, &old).await;
    age(platform, &tenant, 40).await;
    let recent = ended(platform, &tenant, &start_controls(platform, &tenant, request).await).await;
    assert_eq!(recent.state(), JobState::Succeeded, "{recent:?}");
    insights_took_in(platform, &recent).await;
    let recent_changes = rows_of_job(platform, "insight_changes", &recent).await;
    assert!(rows_of_job(platform, "insight_changes", &old).await > 0, "the old job's findings are history");
    let recent_results = all_results(platform, &tenant, &recent.id).await;
    assert_eq!(kept(platform, &tenant).await, (2, 2, 1), "two jobs, two points, one replaced version");

    // Tenant two: the same age, under the default retention (365 days).
    let keeper = synced_and_analysed(platform, "Keeper", 5).await;
    let (other, other_job) = (&keeper.tenant, &keeper.job);
    insights_took_in(platform, other_job).await;
    age(platform, other, 40).await;

    // Thirty days: the old job, the first point and the replaced version go at once.
    let settings = OrganizationSettings { data_retention_days: 30, ..Default::default() };
    let update = UpdateOrganizationRequest {
        org_id: tenant.id().into(),
        organization: Some(Organization { settings: Some(settings), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["settings.data_retention_days".into()] }),
    };
    platform.organizations().await.update_organization(authorized(update, tenant.token())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while kept(platform, &tenant).await != (1, 1, 0) {
        assert!(tokio::time::Instant::now() < deadline, "never purged: {:?}", kept(platform, &tenant).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut analysis = client(platform).await;
    let get = |job: &AnalysisJob| GetAnalysisJobRequest { job_id: job.id.clone() };
    let status = analysis.get_analysis_job(authorized(get(&old), tenant.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(all_results(platform, &tenant, &recent.id).await, recent_results, "the recent job is whole");
    let replay = |sync_run_id: &str| ReplayAnalysisRequest {
        instance_id: instance.id.clone(),
        types: vec![],
        sync_run_id: sync_run_id.into(),
    };
    let status = analysis.replay_analysis(authorized(replay(&first_run.id), tenant.token())).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "POINT_NOT_STORED"));
    // The latest point stays, however old: a replay on it reads what the recent job read.
    let (_, replayed) = replayed_on(platform, &tenant, &instance.id, &second_run.id).await;
    assert_eq!(replayed, recent_results);

    // The insights' history from before goes with them (the insights module's purge); the
    // recent job's stays.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rows_of_job(platform, "insight_snapshots", &old).await + rows_of_job(platform, "insight_changes", &old).await
        > 0
    {
        assert!(tokio::time::Instant::now() < deadline, "the old job's insight history was never purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows_of_job(platform, "insight_snapshots", &recent).await, 1);
    assert_eq!(rows_of_job(platform, "insight_changes", &recent).await, recent_changes);

    // The other organization keeps everything.
    assert_eq!(kept(platform, other).await, (1, 1, 0));
    assert_eq!(rows_of_job(platform, "insight_snapshots", other_job).await, 1);
    assert!(rows_of_job(platform, "insight_changes", other_job).await > 0);
    analysis.get_analysis_job(authorized(get(other_job), other.token())).await.unwrap();
}

async fn an_anomaly_planted_in_indicator_values_is_found_and_becomes_an_insight(platform: &TestPlatform) {
    use complianceiq_proto::complianceiq::insights::v1::insights_service_client::InsightsServiceClient;
    use complianceiq_proto::complianceiq::insights::v1::{InsightCategory, SearchInsightsRequest};

    let running = simulator(SimConfig { controls: 40, seed: 11, ..SimConfig::default() }).await;
    // A passing result of the last ten days (usual values 90–100) reads 250: a feed gone wrong.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let planted = records(&running.simulator, "sn_grc_indicator_result")
        .into_iter()
        .find(|fields| {
            fields["passed"] == "true"
                && datetime::parse(&fields["collection_date"]).is_some_and(|at| at > now - 10 * 86_400)
        })
        .expect("a recent passing result");
    let (planted, indicator) = (planted["sys_id"].clone(), planted["indicator"].clone());
    assert!(running.simulator.edit("sn_grc_indicator_result", &planted, &[("value", "250")]));
    // Another indicator's recent result holds text, as ServiceNow allows: it is no reading (not
    // a 0, not a failed job).
    let garbled = records(&running.simulator, "sn_grc_indicator_result")
        .into_iter()
        .find(|fields| {
            fields["indicator"] != indicator
                && datetime::parse(&fields["collection_date"]).is_some_and(|at| at > now - 10 * 86_400)
        })
        .expect("a recent result of another indicator")["sys_id"]
        .clone();
    assert!(running.simulator.edit("sn_grc_indicator_result", &garbled, &[("value", "n/a")]));
    let tenant = platform.tenant("Anomalies").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    // The store sees the completed sync shortly after the run ends.
    ended(
        platform,
        &tenant,
        &start_controls(
            platform,
            &tenant,
            AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() },
        )
        .await,
    )
    .await;

    let mut analysis = client(platform).await;
    let request = DetectAnomaliesRequest { instance_id: instance.id.clone(), ..Default::default() };
    let job = analysis.detect_anomalies(authorized(request, tenant.token())).await.unwrap().into_inner();
    let job = ended(platform, &tenant, &job).await;
    assert_eq!((job.state(), job.r#type()), (JobState::Succeeded, AnalysisType::AnomalyDetection), "{job:?}");
    let results = all_results(platform, &tenant, &job.id).await;
    let found = results
        .iter()
        .find(|r| r.subject.as_ref().unwrap().sys_id == indicator)
        .expect("the planted result's indicator is judged");
    assert_eq!(found.findings, vec!["INDICATOR_ANOMALY"], "{found:?}");
    assert_eq!(found.sources[0].sys_id, planted, "the planted value is the most extreme: {found:?}");
    assert_eq!(found.values["worst_value"], 250.0);
    let sources: Vec<&str> = results.iter().flat_map(|r| &r.sources).map(|s| s.sys_id.as_str()).collect();
    assert!(!sources.contains(&garbled.as_str()), "a text value is no reading");
    // Judged against the median of the indicator's results before the 30-day window (too few
    // per weekday for a seasonal one).
    let window_start = job.data_as_of_time.as_ref().unwrap().seconds - 30 * 86_400;
    let mut earlier: Vec<f64> = records(&running.simulator, "sn_grc_indicator_result")
        .into_iter()
        .filter(|r| r["indicator"] == indicator)
        .filter(|r| datetime::parse(&r["collection_date"]).is_some_and(|at| at <= window_start))
        .map(|r| r["value"].parse().unwrap())
        .collect();
    earlier.sort_by(f64::total_cmp);
    let middle = earlier.len() / 2;
    let median = if earlier.len() % 2 == 1 { earlier[middle] } else { (earlier[middle - 1] + earlier[middle]) / 2.0 };
    assert_eq!((found.values["worst_median"], found.values["seasonal"]), (median, 0.0), "{:?}", found.values);
    assert!(found.values["worst_z"] >= 3.5, "{:?}", found.values);
    let summary = job.summary.clone().unwrap();
    let metric = |name: &str| summary.metrics.iter().find(|m| m.name == name).unwrap().value;
    assert!(metric("indicators_examined") >= results.len() as f64 && metric("anomalies") >= 1.0, "{summary:?}");

    // The finding becomes an anomaly insight naming the result.
    insights_took_in(platform, &job).await;
    let mut insights = InsightsServiceClient::new(platform.channel("insights").await);
    let search = SearchInsightsRequest {
        categories: vec![InsightCategory::Anomaly as i32],
        page_size: 1000,
        ..Default::default()
    };
    let found = insights.search_insights(authorized(search.clone(), tenant.token())).await.unwrap().into_inner();
    let insight = found
        .insights
        .iter()
        .find(|insight| insight.subject.as_ref().is_some_and(|s| s.sys_id == indicator))
        .expect("an anomaly insight on the indicator");
    assert!(insight.record_ids.contains(&planted), "{insight:?}");
    assert!(insight.summary.contains("250") && insight.title.contains("unusual"), "{insight:?}");
    // Another tenant sees none of it.
    let other = platform.tenant("Anomalies elsewhere").await;
    let theirs = insights.search_insights(authorized(search, other.token())).await.unwrap().into_inner();
    assert_eq!(theirs.total_size, 0);
    let request = GetAnalysisJobRequest { job_id: job.id.clone() };
    let status = analysis.get_analysis_job(authorized(request, other.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Parameters out of range are refused, naming the field.
    for (request, field) in [
        (DetectAnomaliesRequest { window_days: 400, ..Default::default() }, "window_days"),
        (DetectAnomaliesRequest { threshold: 1.0, ..Default::default() }, "threshold"),
        (DetectAnomaliesRequest { threshold: f64::NAN, ..Default::default() }, "threshold"),
        (DetectAnomaliesRequest { indicator_ids: vec!["x".into()], ..Default::default() }, "indicator_ids[0]"),
    ] {
        let request = DetectAnomaliesRequest { instance_id: instance.id.clone(), ..request };
        let status = analysis.detect_anomalies(authorized(request, tenant.token())).await.unwrap_err();
        assert_eq!((status.code(), violations(&status)[0].0.as_str()), (Code::InvalidArgument, field));
    }
}

/// Migration 0012 turns results stored a row each (before it) into pages of one, behind a tag
/// and a varint length: a job's results written the old way read back the same after it,
/// with lengths of one, two and three varint bytes, through pages of 7 that span rows.
async fn results_stored_a_row_each_read_the_same_after_the_pages_migration(platform: &TestPlatform) {
    use prost::Message;
    use sqlx::Connection;

    let analysed = synced_and_analysed(platform, "Legacy rows", 300).await;
    let mut expected = all_results(platform, &analysed.tenant, &analysed.job.id).await;
    // Stored 250 to a row, read 7 at a time: each control once, none lost at a row's edge.
    let data_as_of = analysed.job.data_as_of_time.as_ref().expect("data as of").seconds;
    let (controls, _) = expected_controls(&analysed.running.simulator, data_as_of);
    let subjects: Vec<&str> = expected
        .iter()
        .filter(|result| result.rollup.is_empty())
        .map(|result| result.subject.as_ref().expect("a subject").sys_id.as_str())
        .collect();
    assert!(expected.len() > 250, "more results than a row holds: {}", expected.len());
    assert_eq!(
        subjects.iter().copied().collect::<std::collections::BTreeSet<_>>(),
        controls.keys().map(String::as_str).collect()
    );
    assert_eq!(subjects.len(), controls.len());
    // Under 128 bytes, and over 16 KiB (a three-byte length).
    expected.push(AnalysisResult { rollup: "tiny".into(), ..Default::default() });
    expected.push(AnalysisResult { findings: vec!["x".repeat(20_000)], ..Default::default() });
    assert!(expected.iter().any(|result| (128..16_384).contains(&result.encoded_len())));

    let postgres = platform.owner_database_url(DatabaseGroup::Analysis).starts_with("postgres");
    let (blob, migration) = if postgres {
        ("BYTEA", include_str!("../../services/analysis/migrations/postgres/0012_result_pages.sql"))
    } else {
        ("BLOB", include_str!("../../services/analysis/migrations/sqlite/0012_result_pages.sql"))
    };
    let mut owner =
        sqlx::AnyConnection::connect(&platform.owner_database_url(DatabaseGroup::Analysis)).await.expect("owner");
    let legacy = format!(
        "DROP TABLE analysis_result_pages; CREATE TABLE analysis_results (organization_id TEXT NOT NULL, \
         job_id TEXT NOT NULL, position BIGINT NOT NULL, result {blob} NOT NULL, \
         PRIMARY KEY (organization_id, job_id, position))"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(legacy)).execute(&mut owner).await.expect("the table before 0012");
    for (position, result) in expected.iter().enumerate() {
        sqlx::query("INSERT INTO analysis_results (organization_id, job_id, position, result) VALUES ($1, $2, $3, $4)")
            .bind(analysed.tenant.id())
            .bind(&analysed.job.id)
            .bind(position as i64)
            .bind(result.encode_to_vec())
            .execute(&mut owner)
            .await
            .expect("a result stored the old way");
    }
    sqlx::raw_sql(migration).execute(&mut owner).await.expect("migration 0012");
    if postgres {
        // What every migration run ends with (the kit grants the application role its tables).
        let grant = format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON analysis_result_pages TO {}",
            crate::harness::APPLICATION_ROLE
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(grant)).execute(&mut owner).await.expect("the grant");
    }
    owner.close().await.ok();

    let migrated = all_results(platform, &analysed.tenant, &analysed.job.id).await;
    assert_eq!(migrated.len(), expected.len());
    assert!(migrated == expected, "the results read after the migration differ from those stored before it");
}
