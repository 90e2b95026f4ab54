//! What the benchmarks share: settings, medians, and the control analysis timed beside the one
//! SQL aggregate a person would write by hand over the same rows.

use std::time::{Duration, Instant};

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_client::AnalysisServiceClient;
use complianceiq_proto::complianceiq::analysis::v1::*;
use complianceiq_proto::complianceiq::insights::v1::GetInsightHistoryRequest;
use complianceiq_proto::complianceiq::insights::v1::insights_service_client::InsightsServiceClient;
use sqlx::{AnyConnection, Connection};

use crate::harness::{Backend, TestPlatform};
use crate::people::{Tenant, authorized};

/// Runs of each timed step; the median is reported.
pub const ROUNDS: usize = 5;

pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// What [`analysis_beside_aggregate`] measured.
pub struct Compared {
    /// Median of the jobs' own times (start to end; the worker's pickup is not counted).
    pub analysis: Duration,
    /// Median of the aggregate's times.
    pub aggregate: Duration,
    /// Rows the aggregate returned (controls with results in the window).
    pub rows: usize,
    /// The last job.
    pub job: AnalysisJob,
}

/// [`ROUNDS`] rounds of one control analysis of `instance`, then the one SQL aggregate a
/// person would write by hand over the same rows: passed and total results per control with
/// `collection_date` in the window (`window` of the job), over `grc_indicator_results`, as the
/// application role with the tenant set. Interleaved, so both meet the store in the same
/// state (autovacuum after a sync, caches), and each job starts once the platform has taken
/// in the one before (its insights, and a moment for the audit trail's compliance events).
pub async fn analysis_beside_aggregate(
    platform: &TestPlatform,
    backend: Backend,
    tenant: &Tenant,
    instance: &str,
    window: impl Fn(&AnalysisJob) -> (String, String),
) -> Compared {
    let mut analysis = AnalysisServiceClient::new(platform.channel("analysis").await);
    let mut insights = InsightsServiceClient::new(platform.channel("insights").await);
    let mut app = AnyConnection::connect(&platform.app_database_url(DatabaseGroup::Analysis)).await.unwrap();
    let (mut job_times, mut aggregate_times, mut rows, mut last) = (Vec::new(), Vec::new(), 0, None);
    for _ in 0..ROUNDS {
        let request = AnalyzeControlsRequest { instance_id: instance.into(), ..Default::default() };
        let job = analysis.analyze_controls(authorized(request, tenant.token())).await.unwrap().into_inner();
        let job = loop {
            let request = GetAnalysisJobRequest { job_id: job.id.clone() };
            let current = analysis.get_analysis_job(authorized(request, tenant.token())).await.unwrap().into_inner();
            if !matches!(current.state(), JobState::Queued | JobState::Running) {
                break current;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
        let micros =
            |time: &Option<prost_types::Timestamp>| complianceiq_kit::time::from_timestamp(time.as_ref().unwrap());
        job_times.push(Duration::from_micros((micros(&job.end_time) - micros(&job.start_time)) as u64));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let request = GetInsightHistoryRequest { instance_id: instance.into(), page_size: 1, ..Default::default() };
            let history = insights.get_insight_history(authorized(request, tenant.token())).await.unwrap().into_inner();
            if history.entries.first().is_some_and(|entry| entry.analysis_job_id == job.id) {
                break;
            }
            assert!(Instant::now() < deadline, "the insights of job {} were not taken in", job.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;

        let (start, end) = window(&job);
        let mut tx = app.begin().await.unwrap();
        if backend == Backend::Servers {
            sqlx::query("SELECT set_config('app.current_organization_id', $1, true)")
                .bind(tenant.id())
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        let started = Instant::now();
        let found = sqlx::query(
            "SELECT control_sys_id, CAST(COUNT(*) AS BIGINT), CAST(SUM(passed) AS BIGINT) FROM grc_indicator_results \
             WHERE organization_id = $1 AND instance_id = $2 AND collection_date >= $3 AND collection_date <= $4 \
             GROUP BY control_sys_id",
        )
        .bind(tenant.id())
        .bind(instance)
        .bind(start)
        .bind(end)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        aggregate_times.push(started.elapsed());
        rows = found.len();
        tx.rollback().await.unwrap();
        last = Some(job);
    }
    app.close().await.ok();
    Compared { analysis: median(job_times), aggregate: median(aggregate_times), rows, job: last.unwrap() }
}
