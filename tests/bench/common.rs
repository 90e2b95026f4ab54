//! What the benchmarks share: settings, medians, and the control analysis timed beside the one
//! SQL aggregate a person would write by hand over the same rows.

use std::time::{Duration, Instant};

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_client::AnalysisServiceClient;
use complianceiq_proto::complianceiq::analysis::v1::*;
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

/// The median of [`ROUNDS`] control analyses of `instance`, each the job's own time from start
/// to end (the worker's pickup is not counted), and the last job.
pub async fn control_analysis(platform: &TestPlatform, tenant: &Tenant, instance: &str) -> (Duration, AnalysisJob) {
    let mut analysis = AnalysisServiceClient::new(platform.channel("analysis").await);
    let mut job_times = Vec::new();
    let mut last = None;
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
        last = Some(job);
    }
    (median(job_times), last.unwrap())
}

/// The median of [`ROUNDS`] runs of one aggregate over the same rows the analysis reads:
/// passed and total results per control with `collection_date` in [`start`, `end`], over
/// `grc_indicator_results`, as the application role with the tenant set; and its row count.
pub async fn one_aggregate(
    platform: &TestPlatform,
    backend: Backend,
    tenant: &Tenant,
    instance: &str,
    (start, end): (&str, &str),
) -> (Duration, usize) {
    let mut app = AnyConnection::connect(&platform.app_database_url(DatabaseGroup::Analysis)).await.unwrap();
    let mut aggregate_times = Vec::new();
    let mut rows = 0;
    for _ in 0..ROUNDS {
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
    }
    app.close().await.ok();
    (median(aggregate_times), rows)
}
