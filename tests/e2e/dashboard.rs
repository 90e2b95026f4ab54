//! Dashboards: a number on the dashboard is the analysis it summarizes, the answer is cached,
//! and the next analysis shows (the cache ends with `analysis.completed`, once its insights
//! are taken); analytics are the insights trends; another tenant sees nothing; bad requests
//! say what is wrong.

use std::time::Duration;

use complianceiq_proto::complianceiq::analysis::v1::{
    AnalysisJob, AnalysisType, AnalyzeComplianceRequest, AnalyzeControlsRequest, AnalyzeRisksRequest, JobState,
};
use complianceiq_proto::complianceiq::common::v1::TimeRange;
use complianceiq_proto::complianceiq::dashboard::v1::dashboard_service_client::DashboardServiceClient;
use complianceiq_proto::complianceiq::dashboard::v1::*;
use complianceiq_proto::complianceiq::insights::v1::insights_service_client::InsightsServiceClient;
use complianceiq_proto::complianceiq::insights::v1::{GetInsightTrendsRequest, GetInstanceInsightsRequest};
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::{DeleteInstanceRequest, SyncMode};
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{
    Organization, OrganizationSettings, UpdateOrganizationRequest,
};
use complianceiq_servicenow::sim::SimConfig;
use tonic::Code;

use crate::analysis::{client as analysis, ended, start_controls};
use crate::harness::{TestPlatform, violations};
use crate::instances::simulator;
use crate::people::{Tenant, authorized};
use crate::platform_tests;
use crate::sync::{connected, sync};

platform_tests!(a_dashboard_number_is_the_analysis_it_summarizes_and_follows_the_next);

pub(crate) async fn dashboard(platform: &TestPlatform) -> DashboardServiceClient<tonic::transport::Channel> {
    DashboardServiceClient::new(platform.channel("dashboard").await)
}

async fn summary(platform: &TestPlatform, tenant: &Tenant) -> DashboardSummary {
    let request = authorized(GetDashboardSummaryRequest::default(), tenant.token());
    dashboard(platform).await.get_dashboard_summary(request).await.expect("the summary").into_inner()
}

async fn instance_posture(platform: &TestPlatform, tenant: &Tenant, instance: &str) -> f64 {
    let request = GetInstanceInsightsRequest { instance_id: instance.into(), ..Default::default() };
    let insights = InsightsServiceClient::new(platform.channel("insights").await)
        .get_instance_insights(authorized(request, tenant.token()))
        .await
        .expect("the instance's insights");
    insights.into_inner().posture_score
}

fn summary_metric(job: &AnalysisJob, name: &str) -> f64 {
    let summary = job.summary.as_ref().expect("a summary");
    summary.metrics.iter().find(|metric| metric.name == name).map_or(0.0, |metric| metric.value)
}

/// Reads the summary until `done` holds (30 s at most): the dashboard follows events.
pub(crate) async fn summary_once(
    platform: &TestPlatform,
    tenant: &Tenant,
    done: impl Fn(&DashboardSummary) -> bool,
) -> DashboardSummary {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let current = summary(platform, tenant).await;
        if done(&current) {
            return current;
        }
        assert!(tokio::time::Instant::now() < deadline, "the dashboard never showed it: {current:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_dashboard_number_is_the_analysis_it_summarizes_and_follows_the_next(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 40, seed: 11, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Dashboards").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let controls = ended(platform, &tenant, &start_controls(platform, &tenant, request).await).await;
    assert_eq!(controls.state(), JobState::Succeeded, "{controls:?}");

    // The dashboard's numbers are the analysis's.
    let first = summary_once(platform, &tenant, |s| s.instances.iter().any(|i| i.posture_score > 0.0)).await;
    let posture = instance_posture(platform, &tenant, &instance.id).await;
    assert_eq!(first.posture_score, posture);
    assert_eq!(first.instances.len(), 1);
    assert_eq!(first.instances[0].posture_score, posture);
    assert_eq!(first.instances[0].instance_name, instance.name, "named as its people named it");
    let score = controls.summary.as_ref().unwrap().score;
    let metric = |summary: &DashboardSummary, name: &str| summary.metrics.iter().find(|m| m.name == name).cloned();
    assert_eq!(metric(&first, "control_effectiveness_score").expect("a control score").value, score);
    let request = GetInstanceMetricsRequest { instance_id: instance.id.clone(), period: None };
    let metrics = dashboard(platform)
        .await
        .get_instance_metrics(authorized(request.clone(), tenant.token()))
        .await
        .expect("instance metrics")
        .into_inner();
    assert_eq!(metrics.control_count as f64, summary_metric(&controls, "controls_analyzed"));
    assert_eq!(metrics.effective_control_count as f64, summary_metric(&controls, "effective"));
    assert!(metrics.control_count > 0);
    let organization = dashboard(platform)
        .await
        .get_organization_metrics(authorized(GetOrganizationMetricsRequest::default(), tenant.token()))
        .await
        .expect("organization metrics")
        .into_inner();
    assert_eq!(organization.instance_count, 1);
    assert_eq!(organization.totals.unwrap().effective_control_count, metrics.effective_control_count);

    // Cached: the same answer until something changes.
    let again = summary(platform, &tenant).await;
    assert_eq!(again.compute_time, first.compute_time, "answered from the cache");

    // The next analysis moves the posture (it now averages two scores); the dashboard follows.
    let request = AnalyzeRisksRequest { instance_id: instance.id.clone(), ..Default::default() };
    let risks = analysis(platform).await.analyze_risks(authorized(request, tenant.token())).await.unwrap().into_inner();
    let risks = ended(platform, &tenant, &risks).await;
    assert_eq!((risks.state(), risks.r#type()), (JobState::Succeeded, AnalysisType::RiskCorrelation));
    let next = summary_once(platform, &tenant, |s| metric(s, "risk_mitigation_score").is_some()).await;
    assert_ne!(next.compute_time, first.compute_time);
    let posture = instance_posture(platform, &tenant, &instance.id).await;
    assert_eq!(next.posture_score, posture);
    assert_eq!(metric(&next, "risk_mitigation_score").unwrap().value, risks.summary.as_ref().unwrap().score);
    assert_eq!(metric(&next, "understated_risks").unwrap().value, summary_metric(&risks, "understated"));

    // High risks: computed residual above the organization's risk appetite (default 50); the
    // dashboard follows a change of the appetite at once.
    let residuals: Vec<f64> = crate::analysis::all_results(platform, &tenant, &risks.id)
        .await
        .iter()
        .filter(|result| result.rollup.is_empty())
        .filter_map(|result| result.values.get("computed_residual").copied())
        .collect();
    let above = |appetite: f64| residuals.iter().filter(|residual| **residual > appetite).count() as i64;
    assert!(above(0.0) > above(50.0), "the simulator's risks straddle the default appetite: {residuals:?}");
    let high_risks = async || {
        let request = GetInstanceMetricsRequest { instance_id: instance.id.clone(), period: None };
        let metrics = dashboard(platform).await.get_instance_metrics(authorized(request, tenant.token())).await;
        metrics.expect("instance metrics").into_inner().high_risk_count
    };
    assert_eq!(high_risks().await, above(50.0));
    let appetite = UpdateOrganizationRequest {
        org_id: tenant.id().into(),
        organization: Some(Organization {
            settings: Some(OrganizationSettings { risk_appetite: Some(0), ..Default::default() }),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["settings.risk_appetite".into()] }),
    };
    let updated = OrganizationServiceClient::new(platform.channel("organization").await)
        .update_organization(authorized(appetite, tenant.token()))
        .await
        .expect("the appetite is set")
        .into_inner();
    assert_eq!(updated.settings.and_then(|settings| settings.risk_appetite), Some(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while high_risks().await != above(0.0) {
        assert!(tokio::time::Instant::now() < deadline, "the dashboard never followed the new appetite");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Analytics: the instance's series, the same as its insights trends.
    let asked = GetAnalyticsRequest { metrics: vec!["posture_score".into()], ..Default::default() };
    let analytics = dashboard(platform)
        .await
        .get_analytics(authorized(asked, tenant.token()))
        .await
        .expect("analytics")
        .into_inner();
    let trends = InsightsServiceClient::new(platform.channel("insights").await)
        .get_insight_trends(authorized(
            GetInsightTrendsRequest {
                instance_id: instance.id.clone(),
                metrics: vec!["posture_score".into()],
                ..Default::default()
            },
            tenant.token(),
        ))
        .await
        .expect("trends")
        .into_inner();
    assert_eq!(analytics.series, trends.series);
    assert_eq!(analytics.series.len(), 1);
    assert_eq!(analytics.series[0].points.iter().map(|p| p.sample_count).sum::<i64>(), 2, "two analyses");
    let unknown = GetAnalyticsRequest { instance_ids: vec![uuid::Uuid::new_v4().to_string()], ..Default::default() };
    let status = dashboard(platform).await.get_analytics(authorized(unknown, tenant.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let bad = GetAnalyticsRequest { metrics: vec!["nonsense".into()], ..Default::default() };
    let status = dashboard(platform).await.get_analytics(authorized(bad, tenant.token())).await.unwrap_err();
    assert_eq!(violations(&status), [("metrics[0]".to_string(), "UNKNOWN_METRIC".to_string())]);

    // Coverage per framework: the compliance gap analysis's policy rollups.
    let request = AnalyzeComplianceRequest { instance_id: instance.id.clone(), ..Default::default() };
    let compliance = analysis(platform).await.analyze_compliance(authorized(request, tenant.token())).await.unwrap();
    let compliance = ended(platform, &tenant, compliance.get_ref()).await;
    assert_eq!(compliance.state(), JobState::Succeeded, "{compliance:?}");
    let expected: Vec<(String, i64, f64)> = crate::analysis::all_results(platform, &tenant, &compliance.id)
        .await
        .into_iter()
        .filter(|result| result.rollup == "policy")
        .map(|result| {
            (result.subject.unwrap_or_default().sys_id, result.values["covered"] as i64, result.score.unwrap_or(0.0))
        })
        .collect();
    assert!(!expected.is_empty(), "the simulator has policies");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let request = GetInstanceMetricsRequest { instance_id: instance.id.clone(), period: None };
        let metrics = dashboard(platform).await.get_instance_metrics(authorized(request, tenant.token())).await;
        let coverage: Vec<(String, i64, f64)> = metrics
            .expect("instance metrics")
            .into_inner()
            .framework_coverage
            .into_iter()
            .map(|framework| (framework.policy_sys_id, framework.covered_requirement_count, framework.coverage_percent))
            .collect();
        if coverage == expected {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{coverage:?} never became {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Another tenant sees none of it.
    let other = platform.tenant("Dashboardless").await;
    let theirs = summary(platform, &other).await;
    assert!(theirs.instances.is_empty() && theirs.posture_score == 0.0, "{theirs:?}");
    let theirs = dashboard(platform)
        .await
        .get_analytics(authorized(GetAnalyticsRequest::default(), other.token()))
        .await
        .expect("analytics")
        .into_inner();
    assert!(theirs.series.is_empty(), "{theirs:?}");
    let status = dashboard(platform)
        .await
        .get_instance_metrics(authorized(request_for(&instance.id), other.token()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // A deleted instance leaves the dashboard (the cache ends with instance.deleted).
    InstanceServiceClient::new(platform.channel("instance").await)
        .delete_instance(authorized(
            DeleteInstanceRequest { instance_id: instance.id.clone(), etag: String::new() },
            tenant.token(),
        ))
        .await
        .expect("delete the instance");
    let emptied = summary_once(platform, &tenant, |s| s.instances.is_empty()).await;
    assert_eq!(emptied.posture_score, 0.0);

    // Bad requests say what is wrong.
    let status = dashboard(platform)
        .await
        .get_instance_metrics(authorized(request_for("not-a-uuid"), tenant.token()))
        .await
        .unwrap_err();
    assert_eq!(violations(&status), [("instance_id".to_string(), "INVALID_FORMAT".to_string())]);
    let backwards = TimeRange {
        start_time: Some(complianceiq_kit::time::to_timestamp(2_000_000)),
        end_time: Some(complianceiq_kit::time::to_timestamp(1_000_000)),
    };
    let request = GetDashboardSummaryRequest { period: Some(backwards) };
    let status =
        dashboard(platform).await.get_dashboard_summary(authorized(request, tenant.token())).await.unwrap_err();
    assert_eq!(violations(&status), [("period".to_string(), "INVALID".to_string())]);
}

fn request_for(instance: &str) -> GetInstanceMetricsRequest {
    GetInstanceMetricsRequest { instance_id: instance.into(), period: None }
}
