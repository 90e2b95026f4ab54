//! Insights from analyses: each finding of a job becomes an insight under a stable id; a second
//! run tells new, persisting and resolved; trends, comparison over time, full-text search,
//! saved reports; bad input named; nothing for another tenant; a disconnected instance's
//! insights go.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::analysis::v1::{AnalysisJob, AnalysisResult, AnalyzeControlsRequest, JobState};
use complianceiq_proto::complianceiq::audit::v1::ComplianceEvent;
use complianceiq_proto::complianceiq::common::v1::{ExportFormat, Interval, Severity, TimeRange};
use complianceiq_proto::complianceiq::insights::v1::insights_service_client::InsightsServiceClient;
use complianceiq_proto::complianceiq::insights::v1::*;
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::{DeleteInstanceRequest, SyncMode};
use complianceiq_servicenow::sim::SimConfig;
use tonic::Code;

use crate::analysis::{all_results, ended, start_controls};
use crate::harness::{TestPlatform, violations};
use crate::instances::simulator;
use crate::people::{Tenant, authorized};
use crate::platform_tests;
use crate::sync::{connected, sync};

platform_tests!(
    a_second_run_tells_new_persisting_and_resolved_insights,
    insights_are_searched_saved_refused_when_malformed_and_private_to_their_tenant,
    exports_open_in_real_readers_with_the_numbers_of_the_api,
);

async fn client(platform: &TestPlatform) -> InsightsServiceClient<tonic::transport::Channel> {
    InsightsServiceClient::new(platform.channel("insights").await)
}

/// The (finding, subject sys_id) pairs of a job's results: the insights it must produce.
fn finding_keys(results: &[AnalysisResult]) -> BTreeSet<(String, String)> {
    results
        .iter()
        .flat_map(|result| {
            let subject = result.subject.as_ref().unwrap().sys_id.clone();
            result.findings.iter().map(move |finding| (finding.clone(), subject.clone()))
        })
        .collect()
}

fn key(insight: &Insight) -> (String, String) {
    (insight.finding.clone(), insight.subject.as_ref().unwrap().sys_id.clone())
}

/// The history entry of `job`, once the insights service has taken it (shortly after the
/// job's analysis.completed); waits up to 30 s.
async fn entry_of(platform: &TestPlatform, tenant: &Tenant, instance: &str, job: &AnalysisJob) -> InsightHistoryEntry {
    let mut insights = client(platform).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let request = GetInsightHistoryRequest { instance_id: instance.into(), ..Default::default() };
        if let Ok(history) = insights.get_insight_history(authorized(request, tenant.token())).await
            && let Some(entry) = history.into_inner().entries.into_iter().find(|e| e.analysis_job_id == job.id)
        {
            return entry;
        }
        assert!(tokio::time::Instant::now() < deadline, "job {} never became insights", job.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a control analysis to its end and waits until its insights are taken.
async fn analysed(
    platform: &TestPlatform,
    tenant: &Tenant,
    request: AnalyzeControlsRequest,
) -> (AnalysisJob, Vec<AnalysisResult>, InsightHistoryEntry) {
    let job = ended(platform, tenant, &start_controls(platform, tenant, request.clone()).await).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let results = all_results(platform, tenant, &job.id).await;
    let entry = entry_of(platform, tenant, &request.instance_id, &job).await;
    (job, results, entry)
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

async fn a_second_run_tells_new_persisting_and_resolved_insights(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 60, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Insightful").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let mut insights = client(platform).await;
    let current = |request: GetInstanceInsightsRequest| {
        let mut insights = insights.clone();
        let token = tenant.token().to_string();
        async move { insights.get_instance_insights(authorized(request, &token)).await.unwrap().into_inner() }
    };

    // The first run: every finding is a new insight, under the id the job lists.
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let (first, first_results, first_entry) = analysed(platform, &tenant, request).await;
    let first_keys = finding_keys(&first_results);
    assert!(!first_keys.is_empty(), "the data has findings");
    let summary = first.summary.as_ref().unwrap();
    assert_eq!(sorted(&first_entry.new_insight_ids), sorted(&summary.insight_ids), "the job names its insights");
    assert!(first_entry.persisting_insight_ids.is_empty() && first_entry.resolved_insight_ids.is_empty());
    assert_eq!(first_entry.score, summary.score);
    assert_eq!(first_entry.posture_score, summary.score, "only the control analysis has run");

    let all = GetInstanceInsightsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let now = current(all.clone()).await;
    assert_eq!(now.insights.iter().map(key).collect::<BTreeSet<_>>(), first_keys);
    assert_eq!(now.posture_score, summary.score);
    for insight in &now.insights {
        assert_eq!(insight.status(), InsightStatus::Open);
        assert_eq!(insight.category(), InsightCategory::ControlEffectiveness);
        let subject = insight.subject.as_ref().unwrap();
        assert!(subject.url.starts_with(&running.url) && subject.url.ends_with(&subject.sys_id), "{subject:?}");
        assert!(insight.title.contains(&subject.display), "{}", insight.title);
        assert!(!insight.recommendations.is_empty());
        let expected = if insight.finding == "CONTROL_INEFFECTIVE" { Severity::High } else { Severity::Medium };
        assert_eq!(insight.severity(), expected);
    }
    let severities: Vec<Severity> = now.insights.iter().map(Insight::severity).collect();
    assert!(severities.windows(2).all(|pair| pair[0] >= pair[1]), "most severe first");
    let high = current(GetInstanceInsightsRequest { min_severity: Severity::High as i32, ..all.clone() }).await;
    assert!(high.insights.iter().all(|insight| insight.finding == "CONTROL_INEFFECTIVE"));
    assert_eq!(high.insights.len(), first_keys.iter().filter(|(finding, _)| finding == "CONTROL_INEFFECTIVE").count());
    let gaps =
        current(GetInstanceInsightsRequest { categories: vec![InsightCategory::ComplianceGap as i32], ..all.clone() })
            .await;
    assert!(gaps.insights.is_empty(), "no compliance analysis has run");

    // Someone in ServiceNow marks one ineffective control compliant and retires another; the
    // next run finds the first again with a new finding, and no longer finds the second.
    let ineffective: Vec<&String> =
        first_keys.iter().filter(|(finding, _)| finding == "CONTROL_INEFFECTIVE").map(|(_, id)| id).collect();
    let marked = |id: &String| first_keys.contains(&("STATUS_CONTRADICTS_SCORE".to_string(), id.clone()));
    let relabelled = *ineffective.iter().find(|id| !marked(id)).expect("an ineffective control not marked compliant");
    let retired = *ineffective.iter().find(|id| **id != relabelled).expect("two ineffective controls");
    assert!(running.simulator.edit("sn_compliance_control", relabelled, &[("status", "compliant")]));
    assert!(running.simulator.edit("sn_compliance_control", retired, &[("state", "retired")]));
    // A sync reads up to two seconds behind ServiceNow's clock (the second being written).
    tokio::time::sleep(Duration::from_secs(3)).await;
    sync(platform, &tenant, &instance.id, SyncMode::Incremental).await;
    let again = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let (second, second_results, second_entry) = analysed(platform, &tenant, again).await;
    let second_keys = finding_keys(&second_results);
    let now = current(all.clone()).await;
    let id_of: BTreeMap<(String, String), String> = {
        let request = SearchInsightsRequest { page_size: 1000, ..Default::default() };
        let found = insights.search_insights(authorized(request, tenant.token())).await.unwrap().into_inner();
        found.insights.iter().map(|insight| (key(insight), insight.id.clone())).collect()
    };
    let ids =
        |keys: BTreeSet<&(String, String)>| sorted(&keys.into_iter().map(|k| id_of[k].clone()).collect::<Vec<_>>());
    let new = ids(second_keys.difference(&first_keys).collect());
    let persisting = ids(second_keys.intersection(&first_keys).collect());
    let resolved = ids(first_keys.difference(&second_keys).collect());
    assert!(new.contains(&id_of[&("STATUS_CONTRADICTS_SCORE".to_string(), relabelled.clone())]));
    assert!(resolved.contains(&id_of[&("CONTROL_INEFFECTIVE".to_string(), retired.clone())]));
    assert!(!persisting.is_empty());
    assert_eq!(sorted(&second_entry.new_insight_ids), new);
    assert_eq!(sorted(&second_entry.persisting_insight_ids), persisting);
    assert_eq!(sorted(&second_entry.resolved_insight_ids), resolved);
    assert_eq!(now.insights.iter().map(key).collect::<BTreeSet<_>>(), second_keys, "open: what the latest run found");

    // Each newly found insight is a compliance event of the audit trail, once.
    let opened: Vec<String> = sorted(&[first_entry.new_insight_ids.clone(), new.clone()].concat());
    let events = crate::audit::compliance_events(platform, &tenant, &instance.id, opened.len()).await;
    let insight_of = |event: &ComplianceEvent| event.metadata["insight_id"].clone();
    assert_eq!(sorted(&events.iter().map(insight_of).collect::<Vec<_>>()), opened);
    let relabelled_id = &id_of[&("STATUS_CONTRADICTS_SCORE".to_string(), relabelled.clone())];
    let event = events.iter().find(|event| &insight_of(event) == relabelled_id).unwrap();
    assert_eq!((event.r#type.as_str(), event.severity()), ("status_contradicts_score", Severity::Medium));
    assert_eq!(event.record_ids.first(), Some(relabelled), "{event:?}");
    let history = insights
        .get_insight_history(authorized(
            GetInsightHistoryRequest { instance_id: instance.id.clone(), page_size: 1, ..Default::default() },
            tenant.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.entries[0].analysis_job_id, second.id, "newest first");
    assert!(!history.next_page_token.is_empty());

    // Compared with itself as of the first run: what was resolved is only on the left, what is
    // new only on the right.
    let first_end = first_entry.create_time;
    let compare =
        CompareInsightsRequest { left_instance_id: instance.id.clone(), left_time: first_end, ..Default::default() };
    let compared = insights.compare_insights(authorized(compare, tenant.token())).await.unwrap().into_inner();
    assert_eq!(sorted(&compared.only_left.iter().map(|i| i.id.clone()).collect::<Vec<_>>()), resolved);
    assert_eq!(sorted(&compared.only_right.iter().map(|i| i.id.clone()).collect::<Vec<_>>()), new);
    let score = compared.metrics.iter().find(|m| m.metric == "control_effectiveness_score").unwrap();
    let second_score = second.summary.as_ref().unwrap().score;
    assert_eq!((score.left_value, score.right_value), (summary.score, second_score));
    assert!((score.delta - (second_score - summary.score)).abs() < 1e-9);

    // Trends: both runs in the series, averaged per bucket.
    let trends = GetInsightTrendsRequest {
        instance_id: instance.id.clone(),
        metrics: vec!["control_effectiveness_score".into(), "control_effectiveness.ineffective".into()],
        interval: Interval::Day as i32,
        ..Default::default()
    };
    let series = insights.get_insight_trends(authorized(trends, tenant.token())).await.unwrap().into_inner().series;
    let points = &series[0].points;
    assert_eq!(points.iter().map(|p| p.sample_count).sum::<i64>(), 2);
    if points.len() == 1 {
        assert_eq!(points[0].value, ((summary.score + second_score) * 5.0).round() / 10.0);
    }
    let ineffective = |job: &AnalysisJob| {
        job.summary.as_ref().unwrap().metrics.iter().find(|m| m.name == "ineffective").unwrap().value
    };
    let total: f64 = series[1].points.iter().map(|p| p.value * p.sample_count as f64).sum();
    assert!((total - (ineffective(&first) + ineffective(&second))).abs() < 0.2, "{series:?}");

    // Disconnecting the instance removes its insights and history.
    let mut instances = InstanceServiceClient::new(platform.channel("instance").await);
    let delete = DeleteInstanceRequest { instance_id: instance.id.clone(), ..Default::default() };
    instances.delete_instance(authorized(delete, tenant.token())).await.unwrap();
    // Both stores forget it, each on its own consumer of instance.deleted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let search = SearchInsightsRequest { instance_ids: vec![instance.id.clone()], ..Default::default() };
        let left = insights.search_insights(authorized(search, tenant.token())).await.unwrap().into_inner();
        let gone = insights.get_instance_insights(authorized(all.clone(), tenant.token())).await;
        if left.total_size == 0 && gone.as_ref().is_err_and(|status| status.code() == Code::NotFound) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the insights of a disconnected instance stayed: {gone:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn insights_are_searched_saved_refused_when_malformed_and_private_to_their_tenant(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 60, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Searched").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let (_, results, _) = analysed(platform, &tenant, request).await;
    let mut insights = client(platform).await;
    let token = tenant.token();

    // Full text: a word of the titles of one kind finds exactly that kind, page by page.
    let ineffective: BTreeSet<(String, String)> =
        finding_keys(&results).into_iter().filter(|(finding, _)| finding == "CONTROL_INEFFECTIVE").collect();
    assert!(ineffective.len() >= 2, "the data has ineffective controls");
    let (mut found, mut page_token, mut totals) = (Vec::new(), String::new(), BTreeSet::new());
    loop {
        let request =
            SearchInsightsRequest { query: "Ineffective!".into(), page_size: 1, page_token, ..Default::default() };
        let page = insights.search_insights(authorized(request, token)).await.unwrap().into_inner();
        totals.insert(page.total_size);
        found.extend(page.insights);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(found.iter().map(key).collect::<BTreeSet<_>>(), ineffective);
    assert_eq!(found.len(), ineffective.len(), "each once");
    assert_eq!(totals, BTreeSet::from([ineffective.len() as i32]), "every page counts all matches");
    // A record's number finds the insights about it.
    let target = found[0].subject.clone().unwrap();
    let request = SearchInsightsRequest { query: target.display.clone(), ..Default::default() };
    let by_number = insights.search_insights(authorized(request, token)).await.unwrap().into_inner();
    assert!(!by_number.insights.is_empty());
    assert!(by_number.insights.iter().all(|i| i.subject.as_ref().unwrap().sys_id == target.sys_id), "{by_number:?}");
    // Filters without text.
    let request = SearchInsightsRequest {
        categories: vec![InsightCategory::ComplianceGap as i32],
        instance_ids: vec![instance.id.clone()],
        ..Default::default()
    };
    assert_eq!(insights.search_insights(authorized(request, token)).await.unwrap().into_inner().total_size, 0);

    // The same over REST at the edge: literal paths win over /insights/{instance_id}.
    let base = format!("http://{}", platform.address("gateway"));
    let (status, _, body) = crate::gateway::rest_at(
        &base,
        reqwest::Method::GET,
        "/api/v1/insights/search?query=ineffective",
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalSize"], ineffective.len() as i64);

    // The index follows the insights: analysed again, each is found once still; a title that
    // changes is found by its new words and no longer by its old ones.
    let again = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    analysed(platform, &tenant, again).await;
    let total_of = |query: &str| {
        let mut insights = insights.clone();
        let request = SearchInsightsRequest { query: query.into(), page_size: 1000, ..Default::default() };
        async move { insights.search_insights(authorized(request, token)).await.unwrap().into_inner() }
    };
    assert_eq!(total_of("ineffective").await.insights.len(), ineffective.len());
    let retitled = format!("UPDATE insights SET title = 'Control quarantined' WHERE id = '{}'", found[0].id);
    platform.execute_as_owner(DatabaseGroup::Analysis, &retitled).await;
    let quarantined = total_of("quarantined").await.insights;
    assert_eq!(quarantined.iter().map(|insight| insight.id.as_str()).collect::<Vec<_>>(), [found[0].id.as_str()]);
    assert_eq!(total_of("ineffective").await.total_size, ineffective.len() as i32 - 1);

    // Saved reports: a snapshot under a unique name; get, list, delete.
    let save = SaveInsightRequest {
        insight_id: found[0].id.clone(),
        name: " Q4 audit ".into(),
        notes: "for the auditor".into(),
    };
    let report = insights.save_insight(authorized(save.clone(), token)).await.unwrap().into_inner();
    assert_eq!(
        (report.name.as_str(), report.insight.as_ref().unwrap().id.as_str()),
        ("Q4 audit", found[0].id.as_str())
    );
    assert_eq!(report.created_by, tenant.admin.user_id);
    let again = insights.save_insight(authorized(save, token)).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    let get = GetSavedReportRequest { report_id: report.id.clone() };
    assert_eq!(insights.get_saved_report(authorized(get.clone(), token)).await.unwrap().into_inner(), report);
    let listed = insights.list_saved_reports(authorized(ListSavedReportsRequest::default(), token)).await.unwrap();
    assert_eq!(listed.into_inner().saved_reports, [report.clone()]);

    // Bad input, each field named.
    let bad = insights
        .get_instance_insights(authorized(
            GetInstanceInsightsRequest { instance_id: "nope".into(), categories: vec![42], min_severity: 9 },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&bad).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["instance_id", "categories[0]", "min_severity"]);
    let reversed = GetInsightTrendsRequest {
        instance_id: instance.id.clone(),
        metrics: vec!["posture_score".into(), "nonsense".into()],
        period: Some(TimeRange {
            start_time: Some(prost_types::Timestamp { seconds: 2_000_000_000, nanos: 0 }),
            end_time: Some(prost_types::Timestamp { seconds: 1_000_000_000, nanos: 0 }),
        }),
        ..Default::default()
    };
    let bad = insights.get_insight_trends(authorized(reversed, token)).await.unwrap_err();
    let fields: Vec<String> = violations(&bad).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["period", "metrics[1]"]);
    let no_words = SearchInsightsRequest { query: "!!! ???".into(), ..Default::default() };
    let bad = insights.search_insights(authorized(no_words, token)).await.unwrap_err();
    assert_eq!(violations(&bad), [("query".to_string(), "NO_WORDS".to_string())]);
    let unnamed = SaveInsightRequest { insight_id: found[0].id.clone(), name: "  ".into(), notes: String::new() };
    let bad = insights.save_insight(authorized(unnamed, token)).await.unwrap_err();
    assert_eq!(violations(&bad)[0].0, "name");
    let unknown =
        SaveInsightRequest { insight_id: uuid::Uuid::new_v4().to_string(), name: "x".into(), notes: String::new() };
    assert_eq!(insights.save_insight(authorized(unknown, token)).await.unwrap_err().code(), Code::NotFound);

    // Another tenant sees nothing of it.
    let other = platform.tenant("Nosy").await;
    let all = GetInstanceInsightsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let refused = insights.get_instance_insights(authorized(all, other.token())).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    let history = GetInsightHistoryRequest { instance_id: instance.id.clone(), ..Default::default() };
    assert_eq!(
        insights.get_insight_history(authorized(history, other.token())).await.unwrap_err().code(),
        Code::NotFound
    );
    let everything = SearchInsightsRequest { query: "ineffective".into(), ..Default::default() };
    let theirs = insights.search_insights(authorized(everything, other.token())).await.unwrap().into_inner();
    assert_eq!((theirs.total_size, theirs.insights.len()), (0, 0));
    assert_eq!(
        insights.get_saved_report(authorized(get.clone(), other.token())).await.unwrap_err().code(),
        Code::NotFound
    );
    let listed =
        insights.list_saved_reports(authorized(ListSavedReportsRequest::default(), other.token())).await.unwrap();
    assert!(listed.into_inner().saved_reports.is_empty());
    let steal = SaveInsightRequest { insight_id: found[0].id.clone(), name: "mine".into(), notes: String::new() };
    assert_eq!(insights.save_insight(authorized(steal, other.token())).await.unwrap_err().code(), Code::NotFound);
    let delete = DeleteSavedReportRequest { report_id: report.id.clone() };
    assert_eq!(
        insights.delete_saved_report(authorized(delete.clone(), other.token())).await.unwrap_err().code(),
        Code::NotFound
    );

    insights.delete_saved_report(authorized(delete.clone(), token)).await.unwrap();
    assert_eq!(insights.get_saved_report(authorized(get, token)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(insights.delete_saved_report(authorized(delete, token)).await.unwrap_err().code(), Code::NotFound);
}

/// Waits (up to 30 s) until an export has left PENDING.
async fn rendered(platform: &TestPlatform, tenant: &Tenant, export: &Export) -> Export {
    let mut insights = client(platform).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let request = GetExportRequest { export_id: export.id.clone() };
        let current = insights.get_export(authorized(request, tenant.token())).await.unwrap().into_inner();
        if current.state() != ExportState::Pending {
            return current;
        }
        assert!(tokio::time::Instant::now() < deadline, "export {} was never rendered", export.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET of a download link through this platform's edge (the link names the configured public
/// URL; the test's edge listens elsewhere): status, content type, disposition, bytes.
pub(crate) async fn download(platform: &TestPlatform, link: &str) -> (u16, String, String, Vec<u8>) {
    let url = url::Url::parse(link).expect("an absolute link");
    let local = format!("http://{}{}?{}", platform.address("gateway"), url.path(), url.query().unwrap_or_default());
    complianceiq_kit::crypto::install_tls_crypto_provider();
    let response = reqwest::Client::new().get(local).send().await.expect("the edge answers");
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    };
    let (content_type, disposition) =
        (header(reqwest::header::CONTENT_TYPE), header(reqwest::header::CONTENT_DISPOSITION));
    (response.status().as_u16(), content_type, disposition, response.bytes().await.unwrap().to_vec())
}

/// An insight's metrics, by name, as the API gives them.
fn api_metrics(insight: &Insight) -> BTreeMap<String, f64> {
    insight.metrics.iter().map(|metric| (metric.name.clone(), metric.value)).collect()
}

async fn exports_open_in_real_readers_with_the_numbers_of_the_api(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 60, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Exported").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    analysed(platform, &tenant, request).await;
    let mut insights = client(platform).await;
    let token = tenant.token();
    let all = GetInstanceInsightsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let current = insights.get_instance_insights(authorized(all, token)).await.unwrap().into_inner();
    let insight =
        current.insights.iter().find(|i| i.finding == "CONTROL_INEFFECTIVE").expect("an ineffective control").clone();
    let record = insight.subject.clone().unwrap();
    let expected = api_metrics(&insight);
    assert!(expected.contains_key("passed") && expected.contains_key("results"), "{expected:?}");

    let mut files = BTreeMap::new();
    for format in [ExportFormat::Csv, ExportFormat::Xlsx, ExportFormat::Pdf] {
        let request = ExportInsightRequest { insight_id: insight.id.clone(), format: format as i32 };
        let export = insights.export_insight(authorized(request, token)).await.unwrap().into_inner();
        assert_eq!((export.state(), export.format()), (ExportState::Pending, format));
        let export = rendered(platform, &tenant, &export).await;
        assert_eq!(export.state(), ExportState::Ready, "{export:?}");
        let expires = export.expire_time.as_ref().expect("an expiry").seconds;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!((now + 890..=now + 901).contains(&expires), "links last the configured 15 minutes");
        let (status, content_type, disposition, bytes) = download(platform, &export.download_uri).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(bytes.len() as i64, export.size_bytes);
        assert_eq!(disposition, format!("attachment; filename=\"{}\"", export.file_name));
        assert!(export.file_name.starts_with(&format!("insight-{}", record.display)), "{}", export.file_name);
        files.insert(format as i32, (content_type, bytes, export));
    }

    // CSV: one table; the insight's rows and its metrics equal the API's.
    let (content_type, bytes, _) = &files[&(ExportFormat::Csv as i32)];
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), ["section", "name", "value", "detail", "link"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cell =
        |section: &str, name: &str| rows.iter().find(|r| &r[0] == section && &r[1] == name).map(|r| r[2].to_string());
    assert_eq!(cell("insight", "title"), Some(insight.title.clone()));
    assert_eq!(cell("insight", "summary"), Some(insight.summary.clone()));
    assert_eq!(cell("insight", "record_link"), Some(record.url.clone()));
    let metrics: BTreeMap<String, f64> =
        rows.iter().filter(|r| &r[0] == "metric").map(|r| (r[1].to_string(), r[2].parse().unwrap())).collect();
    assert_eq!(metrics, expected);
    let history: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[0] == "history").collect();
    assert_eq!(history.len(), 1);
    assert_eq!((&history[0][2], &history[0][3]), (insight.score.to_string().as_str(), "new"));

    // XLSX: a sheet per part, numbers as numbers.
    use calamine::{Data, Reader};
    let (content_type, bytes, _) = &files[&(ExportFormat::Xlsx as i32)];
    assert_eq!(content_type, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.clone())).unwrap();
    assert_eq!(workbook.sheet_names(), ["Insight", "Metrics", "Records", "History"]);
    let sheet = workbook.worksheet_range("Metrics").unwrap();
    let metrics: BTreeMap<String, f64> = sheet
        .rows()
        .skip(1)
        .map(|row| match (&row[0], &row[1]) {
            (Data::String(name), Data::Float(value)) => (name.clone(), *value),
            other => panic!("a metric row: {other:?}"),
        })
        .collect();
    assert_eq!(metrics, expected);
    let sheet = workbook.worksheet_range("Insight").unwrap();
    let title = sheet.rows().find(|row| row[0] == Data::String("title".into())).map(|row| row[1].clone());
    assert_eq!(title, Some(Data::String(insight.title.clone())));
    let sheet = workbook.worksheet_range("Records").unwrap();
    assert_eq!(sheet.rows().nth(1).map(|row| row[2].clone()), Some(Data::String(record.sys_id.clone())));

    // PDF: the text a reader extracts holds the title, the record and every metric's value.
    let (content_type, bytes, _) = &files[&(ExportFormat::Pdf as i32)];
    assert_eq!(content_type, "application/pdf");
    let document = lopdf::Document::load_mem(bytes).expect("a PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    let text = document.extract_text(&pages).expect("text");
    let words = |text: &str| text.split_whitespace().map(str::to_string).collect::<Vec<_>>().join(" ");
    let text = words(&text);
    assert!(text.contains(&words(&insight.title)), "{text}");
    assert!(text.contains(&record.sys_id) && text.contains("Score at each analysis"), "{text}");
    for (name, value) in &expected {
        assert!(text.contains(&format!("{name} {value}")), "{name} {value} in {text}");
    }

    // A link is refused when tampered with; another tenant cannot see the export; bad input named.
    let (_, _, export) = &files[&(ExportFormat::Pdf as i32)];
    let forged = export.download_uri.replace("expires=", "expires=9");
    let (status, _, _, body) = download(platform, &forged).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("LINK_INVALID"));
    let other = platform.tenant("Curious").await;
    let theirs = GetExportRequest { export_id: export.id.clone() };
    assert_eq!(insights.get_export(authorized(theirs, other.token())).await.unwrap_err().code(), Code::NotFound);
    let unnamed = ExportInsightRequest { insight_id: insight.id.clone(), format: 0 };
    let bad = insights.export_insight(authorized(unnamed, token)).await.unwrap_err();
    assert_eq!(violations(&bad)[0].0, "format");
    let stolen = ExportInsightRequest { insight_id: insight.id.clone(), format: ExportFormat::Csv as i32 };
    assert_eq!(insights.export_insight(authorized(stolen, other.token())).await.unwrap_err().code(), Code::NotFound);
}
