//! Analysis jobs: their records (`analysis_jobs`, `analysis_results`), the RPCs that start,
//! read, cancel and delete them, and the worker that runs them on the kit's job queue.
//!
//! A job reads the instance's data as of its last completed sync (`grc_instances`, kept from
//! each run's `CompleteSync`); the window of indicator results ends at that sync's ServiceNow
//! time.

use std::collections::BTreeMap;
use std::sync::Arc;

use complianceiq_kit::auth::Identity;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::UserId;
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop};
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::analysis::v1::*;
use complianceiq_proto::complianceiq::common::v1::{Metric, Severity};
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{AnalysisCompleted, AnalysisFailed, AnalysisStarted};
use complianceiq_servicenow::datetime;
use prost::Message;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use complianceiq_kit::mesh::MeshChannel;
use complianceiq_proto::complianceiq::ml::v1::ml_service_client::MlServiceClient;
use complianceiq_proto::complianceiq::ml::v1::{ScoreControlsRequest, ScoreControlsResponse};

use crate::controls::{self, ControlData, Links, Snapshot};
use crate::{anomalies, compliance, findings, predictive, risks};

/// Days of indicator results an analysis reads when no period is given.
pub const DEFAULT_PERIOD_DAYS: i64 = 90;

/// Risk pairs reported when no `min_correlation` is given.
pub const DEFAULT_MIN_CORRELATION: f64 = 0.3;

/// The queue's name for analysis jobs.
pub const KIND: &str = "analysis";

/// Results stored to a row (`analysis_result_pages`).
const RESULTS_PER_PAGE: usize = 250;

/// A stored page of results: encoded like a message whose field 1 repeats `AnalysisResult`,
/// which is the concatenation of each result as field 1, so a page of one is a stored
/// result behind a tag and a length (the 0012 migration made pages of the older rows so).
#[derive(Clone, PartialEq, prost::Message)]
struct ResultPage {
    #[prost(message, repeated, tag = "1")]
    results: Vec<AnalysisResult>,
}

/// The key of `ResultPage.results`: field 1, wire type 2 (length-delimited).
const RESULT_PAGE_FIELD_TAG: u8 = 0x0A;

/// A stored job.
#[derive(Clone, Debug, Default)]
pub struct JobRecord {
    pub id: String,
    pub instance_id: String,
    pub analysis_type: String,
    pub state: String,
    pub progress_percent: i64,
    pub parameters: BTreeMap<String, String>,
    pub summary: Option<AnalysisSummary>,
    pub error: String,
    pub created_by: String,
    pub cancel_requested: bool,
    pub data_as_of_sync_run_id: String,
    pub data_as_of: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl JobRecord {
    pub fn is_over(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }

    pub fn to_proto(&self, organization: &str) -> AnalysisJob {
        let analysis_type = analysis_type(&self.analysis_type);
        AnalysisJob {
            id: self.id.clone(),
            organization_id: organization.to_string(),
            instance_id: self.instance_id.clone(),
            r#type: analysis_type as i32,
            state: state_of(&self.state) as i32,
            progress_percent: self.progress_percent as i32,
            parameters: self.parameters.clone().into_iter().collect(),
            summary: self.summary.clone(),
            error: self.error.clone(),
            created_by: self.created_by.clone(),
            create_time: Some(time::to_timestamp(self.created_at)),
            start_time: time::to_optional_timestamp(self.started_at),
            end_time: time::to_optional_timestamp(self.ended_at),
            data_as_of_sync_run_id: self.data_as_of_sync_run_id.clone(),
            data_as_of_time: datetime::parse(&self.data_as_of)
                .map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
        }
    }
}

fn state_of(state: &str) -> JobState {
    match state {
        "queued" => JobState::Queued,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "failed" => JobState::Failed,
        "cancelled" => JobState::Cancelled,
        _ => JobState::Unspecified,
    }
}

fn state_name(state: JobState) -> Option<&'static str> {
    match state {
        JobState::Unspecified => None,
        JobState::Queued => Some("queued"),
        JobState::Running => Some("running"),
        JobState::Succeeded => Some("succeeded"),
        JobState::Failed => Some("failed"),
        JobState::Cancelled => Some("cancelled"),
    }
}

/// The contract's type of a stored type name (the inverse of `type_name`).
pub fn analysis_type(name: &str) -> AnalysisType {
    match name {
        "control_effectiveness" => AnalysisType::ControlEffectiveness,
        "risk_correlation" => AnalysisType::RiskCorrelation,
        "compliance_gap" => AnalysisType::ComplianceGap,
        "predictive" => AnalysisType::Predictive,
        "anomaly_detection" => AnalysisType::AnomalyDetection,
        _ => AnalysisType::Unspecified,
    }
}

fn type_name(analysis_type: AnalysisType) -> Option<&'static str> {
    match analysis_type {
        AnalysisType::Unspecified => None,
        AnalysisType::ControlEffectiveness => Some("control_effectiveness"),
        AnalysisType::RiskCorrelation => Some("risk_correlation"),
        AnalysisType::ComplianceGap => Some("compliance_gap"),
        AnalysisType::Predictive => Some("predictive"),
        AnalysisType::AnomalyDetection => Some("anomaly_detection"),
    }
}

const JOB_COLUMNS: &str = "id, instance_id, analysis_type, state, progress_percent, parameters, summary, error, \
                           created_by, cancel_requested, data_as_of_sync_run_id, data_as_of, created_at, started_at, \
                           ended_at";

fn job_record(row: &sqlx::any::AnyRow) -> Result<JobRecord, ApiError> {
    let parameters: String = row.try_get(5)?;
    let summary: Vec<u8> = row.try_get(6)?;
    Ok(JobRecord {
        id: row.try_get(0)?,
        instance_id: row.try_get(1)?,
        analysis_type: row.try_get(2)?,
        state: row.try_get(3)?,
        progress_percent: row.try_get(4)?,
        parameters: serde_json::from_str(&parameters)
            .map_err(|e| ApiError::internal(format!("job parameters: {e}")))?,
        summary: if summary.is_empty() {
            None
        } else {
            Some(AnalysisSummary::decode(summary.as_slice()).map_err(|e| ApiError::internal(format!("summary: {e}")))?)
        },
        error: row.try_get(7)?,
        created_by: row.try_get(8)?,
        cancel_requested: row.try_get::<i64, _>(9)? != 0,
        data_as_of_sync_run_id: row.try_get(10)?,
        data_as_of: row.try_get(11)?,
        created_at: row.try_get(12)?,
        started_at: row.try_get(13)?,
        ended_at: row.try_get(14)?,
    })
}

/// The store's functions: every query filters by the transaction's tenant.
pub mod store {
    use super::*;

    /// Notes an instance the store receives records of, with its URL and name when the ingest
    /// header carries them.
    pub async fn note_instance(tx: &mut TenantTx, instance: &str, url: &str, name: &str) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(
            "INSERT INTO grc_instances (organization_id, instance_id, url, name, last_sync_run_id, data_as_of, updated_at) \
             VALUES ($1, $2, $3, $5, '', '', $4) ON CONFLICT (organization_id, instance_id) DO UPDATE SET \
             url = CASE WHEN excluded.url <> '' THEN excluded.url ELSE grc_instances.url END, \
             name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE grc_instances.name END, \
             updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(instance)
        .bind(url)
        .bind(time::now_micros())
        .bind(name)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    /// Analyses a plan allows per billing period when no subscription event has arrived yet:
    /// the free plan's.
    pub const DEFAULT_ANALYSES_PER_MONTH: i64 = 50;
    /// A billing period, when the analysis service has to start one itself.
    pub const PERIOD_MICROS: i64 = 30 * 86_400 * 1_000_000;

    /// Keeps an organization's allowance from its subscription; older news is ignored. The
    /// count starts over when a known plan's period changes.
    pub async fn set_allowance(
        tx: &mut TenantTx,
        plan: &str,
        max_per_month: i64,
        period: (i64, i64),
        as_of: i64,
    ) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(
            "INSERT INTO analysis_allowances (organization_id, plan, max_per_month, period_start, period_end, used, \
             updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (organization_id) DO UPDATE SET \
             used = CASE WHEN analysis_allowances.plan <> '' AND analysis_allowances.period_start <> excluded.period_start \
                    THEN 0 ELSE analysis_allowances.used END, \
             plan = excluded.plan, max_per_month = excluded.max_per_month, period_start = excluded.period_start, \
             period_end = excluded.period_end, updated_at = excluded.updated_at \
             WHERE analysis_allowances.updated_at <= excluded.updated_at",
        )
        .bind(tenant)
        .bind(plan)
        .bind(max_per_month)
        .bind(period.0)
        .bind(period.1)
        .bind(as_of)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    /// Takes one analysis from the organization's allowance, or says what the limit is.
    pub async fn take_allowance(tx: &mut TenantTx, now: i64) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        // A period that ended without news from billing: the next one begins now.
        sqlx::query(
            "UPDATE analysis_allowances SET used = 0, period_start = $1, period_end = $2 \
             WHERE organization_id = $3 AND period_end <= $1",
        )
        .bind(now)
        .bind(now + PERIOD_MICROS)
        .bind(&tenant)
        .execute(tx.connection())
        .await?;
        sqlx::query(
            "INSERT INTO analysis_allowances (organization_id, plan, max_per_month, period_start, period_end, used, \
             updated_at) VALUES ($1, '', $2, $3, $4, 0, 0) ON CONFLICT (organization_id) DO NOTHING",
        )
        .bind(&tenant)
        .bind(DEFAULT_ANALYSES_PER_MONTH)
        .bind(now)
        .bind(now + PERIOD_MICROS)
        .execute(tx.connection())
        .await?;
        let taken = sqlx::query(
            "UPDATE analysis_allowances SET used = used + 1 \
             WHERE organization_id = $1 AND (max_per_month = 0 OR used < max_per_month)",
        )
        .bind(&tenant)
        .execute(tx.connection())
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(());
        }
        let row =
            sqlx::query("SELECT plan, max_per_month, period_end FROM analysis_allowances WHERE organization_id = $1")
                .bind(&tenant)
                .fetch_one(tx.connection())
                .await?;
        let (plan, limit, period_end): (String, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let plan = if plan.is_empty() { "free".to_string() } else { plan };
        let wait = std::time::Duration::from_micros(u64::try_from(period_end - now).unwrap_or(0));
        Err(ApiError::ResourceExhausted {
            reason: "ANALYSIS_QUOTA",
            message: format!(
                "the {plan} plan allows {limit} analyses per billing period and they are used; the next period \
                 begins at {}",
                datetime::format(period_end / 1_000_000)
            ),
            retry_after: Some(wait),
        })
    }

    /// Notes a completed sync: the data analyses read from now on. Only for an instance the
    /// store holds (its records were ingested before the run completed): a late stream about
    /// an instance disconnected meanwhile changes nothing.
    pub async fn note_completed_sync(
        tx: &mut TenantTx,
        instance: &str,
        sync_run: &str,
        data_as_of: &str,
    ) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        let now = time::now_micros();
        sqlx::query(
            "UPDATE grc_instances SET last_sync_run_id = $1, data_as_of = $2, updated_at = $3 \
             WHERE organization_id = $4 AND instance_id = $5",
        )
        .bind(sync_run)
        .bind(data_as_of)
        .bind(now)
        .bind(&tenant)
        .bind(instance)
        .execute(tx.connection())
        .await?;
        sqlx::query(
            "UPDATE grc_sync_points SET data_as_of = $1, completed_at = $2 \
             WHERE organization_id = $3 AND instance_id = $4 AND sync_run_id = $5",
        )
        .bind(data_as_of)
        .bind(now)
        .bind(&tenant)
        .bind(instance)
        .bind(sync_run)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    /// Notes that a sync run's records are stored through ingest time `now` (its point grows
    /// with each of its ingest streams).
    pub async fn note_stored(tx: &mut TenantTx, instance: &str, sync_run: &str, now: i64) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query(
            "INSERT INTO grc_sync_points (organization_id, instance_id, sync_run_id, stored_through) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (organization_id, instance_id, sync_run_id) DO UPDATE SET \
             stored_through = CASE WHEN excluded.stored_through > grc_sync_points.stored_through \
             THEN excluded.stored_through ELSE grc_sync_points.stored_through END",
        )
        .bind(tenant)
        .bind(instance)
        .bind(sync_run)
        .bind(now)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    /// The ingest time through which a completed sync run's data was stored: the point its
    /// analyses read as of. None for a run that did not complete or ran before points were
    /// kept.
    pub async fn point(tx: &mut TenantTx, instance: &str, sync_run: &str) -> Result<Option<(i64, String)>, ApiError> {
        let tenant = tx.tenant().to_string();
        let row = sqlx::query(
            "SELECT stored_through, data_as_of FROM grc_sync_points WHERE organization_id = $1 AND instance_id = $2 \
             AND sync_run_id = $3 AND completed_at IS NOT NULL",
        )
        .bind(tenant)
        .bind(instance)
        .bind(sync_run)
        .fetch_optional(tx.connection())
        .await?;
        Ok(match row {
            Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
            None => None,
        })
    }

    /// (url, last completed sync run, its data_as_of) of an instance the store knows.
    pub async fn instance(tx: &mut TenantTx, instance: &str) -> Result<Option<(String, String, String)>, ApiError> {
        let tenant = tx.tenant().to_string();
        let row = sqlx::query(
            "SELECT url, last_sync_run_id, data_as_of FROM grc_instances WHERE organization_id = $1 AND instance_id = $2",
        )
        .bind(tenant)
        .bind(instance)
        .fetch_optional(tx.connection())
        .await?;
        Ok(match row {
            Some(row) => Some((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)),
            None => None,
        })
    }

    pub async fn insert(tx: &mut TenantTx, job: &JobRecord) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        let parameters = serde_json::to_string(&job.parameters).map_err(|e| ApiError::internal(e.to_string()))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO analysis_jobs (organization_id, {JOB_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        )))
        .bind(tenant)
        .bind(&job.id)
        .bind(&job.instance_id)
        .bind(&job.analysis_type)
        .bind(&job.state)
        .bind(job.progress_percent)
        .bind(parameters)
        .bind(Vec::<u8>::new())
        .bind(&job.error)
        .bind(&job.created_by)
        .bind(i64::from(job.cancel_requested))
        .bind(&job.data_as_of_sync_run_id)
        .bind(&job.data_as_of)
        .bind(job.created_at)
        .bind(job.started_at)
        .bind(job.ended_at)
        .execute(tx.connection())
        .await?;
        jobs::enqueue(tx, KIND, &job.id).await
    }

    /// Writes a job's state, progress, summary, error and times (never its cancel request).
    pub async fn save(tx: &mut TenantTx, job: &JobRecord) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        let summary = job.summary.as_ref().map(Message::encode_to_vec).unwrap_or_default();
        // Parameters change once: a predictive job notes the model it used.
        let parameters = serde_json::to_string(&job.parameters).map_err(|e| ApiError::internal(e.to_string()))?;
        sqlx::query(
            "UPDATE analysis_jobs SET state = $1, progress_percent = $2, summary = $3, error = $4, started_at = $5, \
             ended_at = $6, parameters = $9 WHERE organization_id = $7 AND id = $8",
        )
        .bind(&job.state)
        .bind(job.progress_percent)
        .bind(summary)
        .bind(&job.error)
        .bind(job.started_at)
        .bind(job.ended_at)
        .bind(tenant)
        .bind(&job.id)
        .bind(parameters)
        .execute(tx.connection())
        .await?;
        Ok(())
    }

    pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<JobRecord>, ApiError> {
        let tenant = tx.tenant().to_string();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM analysis_jobs WHERE organization_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
        row.as_ref().map(job_record).transpose()
    }

    pub async fn request_cancel(tx: &mut TenantTx, id: &str) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query("UPDATE analysis_jobs SET cancel_requested = 1 WHERE organization_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(tx.connection())
            .await?;
        Ok(())
    }

    /// Deletes an ended job and its results.
    pub async fn delete(tx: &mut TenantTx, id: &str) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        for statement in [
            "DELETE FROM analysis_result_pages WHERE organization_id = $1 AND job_id = $2",
            "DELETE FROM analysis_jobs WHERE organization_id = $1 AND id = $2",
        ] {
            sqlx::query(statement).bind(&tenant).bind(id).execute(tx.connection()).await?;
        }
        Ok(())
    }

    /// A page of jobs, newest first.
    pub async fn list(
        tx: &mut TenantTx,
        instance: Option<&str>,
        analysis_type: Option<&str>,
        state: Option<&str>,
        page: &PageRequest,
    ) -> Result<Vec<JobRecord>, ApiError> {
        let tenant = tx.tenant().to_string();
        let (before_created, before_id) = match &page.after {
            Some(key) if key.len() == 2 => (key[0].parse::<i64>().ok(), key[1].clone()),
            _ => (None, String::new()),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM analysis_jobs WHERE organization_id = $1 AND ($2 IS NULL OR instance_id = $2) \
             AND ($3 IS NULL OR analysis_type = $3) AND ($4 IS NULL OR state = $4) \
             AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
             ORDER BY created_at DESC, id DESC LIMIT $7"
        )))
        .bind(tenant)
        .bind(instance)
        .bind(analysis_type)
        .bind(state)
        .bind(before_created)
        .bind(before_id)
        .bind(page.fetch_limit())
        .fetch_all(tx.connection())
        .await?;
        rows.iter().map(job_record).collect()
    }

    /// The parameters of the latest job of each type on an instance.
    pub async fn latest_parameters(
        tx: &mut TenantTx,
        instance: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, ApiError> {
        let tenant = tx.tenant().to_string();
        let rows = sqlx::query(
            "SELECT analysis_type, parameters FROM analysis_jobs WHERE organization_id = $1 AND instance_id = $2 \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(tenant)
        .bind(instance)
        .fetch_all(tx.connection())
        .await?;
        let mut latest = BTreeMap::new();
        for row in &rows {
            let analysis_type: String = row.try_get(0)?;
            if latest.contains_key(&analysis_type) {
                continue;
            }
            let parameters: String = row.try_get(1)?;
            let parameters =
                serde_json::from_str(&parameters).map_err(|e| ApiError::internal(format!("job parameters: {e}")))?;
            latest.insert(analysis_type, parameters);
        }
        Ok(latest)
    }

    /// Replaces a job's results (a resumed job writes them again), [`RESULTS_PER_PAGE`] to a
    /// row: a job of thousands of controls would otherwise write a row, and bind four
    /// parameters, per result.
    pub async fn save_results(tx: &mut TenantTx, job: &str, results: &[AnalysisResult]) -> Result<(), ApiError> {
        let tenant = tx.tenant().to_string();
        sqlx::query("DELETE FROM analysis_result_pages WHERE organization_id = $1 AND job_id = $2")
            .bind(&tenant)
            .bind(job)
            .execute(tx.connection())
            .await?;
        const PAGES_PER_STATEMENT: usize = 16;
        let pages: Vec<(i64, Vec<u8>)> = results
            .chunks(RESULTS_PER_PAGE)
            .enumerate()
            .map(|(index, page)| {
                // A `ResultPage`, written field by field rather than from a copy of the results.
                let mut encoded = Vec::with_capacity(page.iter().map(|result| result.encoded_len() + 4).sum());
                for result in page {
                    encoded.push(RESULT_PAGE_FIELD_TAG);
                    result.encode_length_delimited(&mut encoded).expect("a Vec grows as needed");
                }
                ((index * RESULTS_PER_PAGE) as i64, encoded)
            })
            .collect();
        for statement_pages in pages.chunks(PAGES_PER_STATEMENT) {
            let sql = complianceiq_kit::db::sql::statement(
                tx.backend(),
                format!(
                    "INSERT INTO analysis_result_pages (organization_id, job_id, first_position, results) VALUES {}",
                    complianceiq_kit::db::sql::placeholders(1, statement_pages.len(), 4)
                ),
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (first_position, encoded) in statement_pages {
                query = query.bind(&tenant).bind(job).bind(*first_position).bind(encoded.as_slice());
            }
            query.execute(tx.connection()).await?;
        }
        Ok(())
    }

    /// Up to `limit` of a job's results after position `after`, in position order:
    /// (position, result). Reads the pages that hold them: the one holding the first, and
    /// those starting before the last.
    pub async fn results(
        tx: &mut TenantTx,
        job: &str,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, AnalysisResult)>, ApiError> {
        let tenant = tx.tenant().to_string();
        let first = after.map_or(0, |after| after.saturating_add(1));
        let last = first.saturating_add(limit.max(1) - 1);
        let rows = sqlx::query(
            "SELECT first_position, results FROM analysis_result_pages WHERE organization_id = $1 AND job_id = $2 \
             AND first_position <= $3 AND first_position >= COALESCE((SELECT MAX(holding.first_position) \
             FROM analysis_result_pages holding WHERE holding.organization_id = $4 AND holding.job_id = $5 \
             AND holding.first_position <= $6), 0) ORDER BY first_position",
        )
        .bind(&tenant)
        .bind(job)
        .bind(last)
        .bind(&tenant)
        .bind(job)
        .bind(first)
        .fetch_all(tx.connection())
        .await?;
        let mut results = Vec::new();
        for row in &rows {
            let first_position: i64 = row.try_get(0)?;
            let bytes: Vec<u8> = row.try_get(1)?;
            let page =
                ResultPage::decode(bytes.as_slice()).map_err(|e| ApiError::internal(format!("stored results: {e}")))?;
            results
                .extend((first_position..).zip(page.results).filter(|(position, _)| (first..=last).contains(position)));
        }
        Ok(results)
    }
}

fn job_id(value: &str) -> Result<String, ApiError> {
    complianceiq_kit::ids::parse_uuid("job_id", value).map(|id| id.to_string())
}

/// The instance a request names, or a violation.
fn instance_field(violations: &mut FieldViolations, value: &str) -> String {
    match complianceiq_kit::ids::parse_uuid("instance_id", value) {
        Ok(id) => id.to_string(),
        Err(_) => {
            violations.add("instance_id", "INVALID", "instance_id must be an instance's id (a UUID)");
            String::new()
        }
    }
}

/// A completed sync whose data a job reads: (sync run id, its data_as_of).
type DataPoint = (String, String);

/// Creates and queues a job of `analysis_type` on `point`, else on the instance's last
/// completed sync, taking one from the plan's allowance, in `tx`.
async fn queue(
    tx: &mut TenantTx,
    identity: &Identity,
    instance: &str,
    analysis_type: &str,
    parameters: BTreeMap<String, String>,
    point: Option<DataPoint>,
) -> Result<JobRecord, ApiError> {
    let Some((_, last_sync_run, last_data_as_of)) = store::instance(tx, instance).await? else {
        return Err(ApiError::not_found("Instance", instance));
    };
    let (sync_run, data_as_of) = point.unwrap_or((last_sync_run, last_data_as_of));
    if sync_run.is_empty() {
        return Err(ApiError::FailedPrecondition {
            reason: "NOT_SYNCED",
            message: format!("no sync of instance {instance} has completed yet; sync it, then analyse"),
        });
    }
    store::take_allowance(tx, time::now_micros()).await?;
    let job = JobRecord {
        id: uuid::Uuid::now_v7().to_string(),
        instance_id: instance.to_string(),
        analysis_type: analysis_type.into(),
        state: "queued".into(),
        parameters,
        created_by: identity.user_id.to_string(),
        data_as_of_sync_run_id: sync_run,
        data_as_of,
        created_at: time::now_micros(),
        ..Default::default()
    };
    store::insert(tx, &job).await?;
    Ok(job)
}

/// Checks a list of ServiceNow sys_ids and keeps it as a parameter.
fn sys_ids(violations: &mut FieldViolations, parameters: &mut BTreeMap<String, String>, field: &str, ids: &[String]) {
    for (index, id) in ids.iter().enumerate() {
        if !complianceiq_servicenow::is_sys_id(id) {
            violations.add(
                &format!("{field}[{index}]"),
                "INVALID",
                "a ServiceNow record id is a sys_id: 32 hexadecimal characters",
            );
        }
    }
    if !ids.is_empty() {
        parameters.insert(field.to_string(), ids.join(","));
    }
}

/// The RPCs' work.
pub struct Jobs {
    pub database: ModuleDatabase,
}

impl Jobs {
    /// Starts a control effectiveness analysis.
    pub async fn analyze_controls(
        &self,
        identity: &Identity,
        request: AnalyzeControlsRequest,
    ) -> Result<AnalysisJob, ApiError> {
        let mut violations = FieldViolations::default();
        let mut parameters = BTreeMap::new();
        sys_ids(&mut violations, &mut parameters, "control_ids", &request.control_ids);
        if let Some(period) = &request.period {
            match (&period.start_time, &period.end_time) {
                (Some(start), Some(end)) if time::from_timestamp(start) < time::from_timestamp(end) => {
                    parameters.insert("period_start".to_string(), datetime::format(start.seconds));
                    parameters.insert("period_end".to_string(), datetime::format(end.seconds));
                }
                (Some(_), Some(_)) => {
                    violations.add("period", "EMPTY", "period.start_time must be before period.end_time")
                }
                _ => violations.add("period", "INCOMPLETE", "a period needs both start_time and end_time"),
            }
        }
        self.start(identity, &request.instance_id, "control_effectiveness", parameters, violations).await
    }

    /// Starts a risk analysis.
    pub async fn analyze_risks(
        &self,
        identity: &Identity,
        request: AnalyzeRisksRequest,
    ) -> Result<AnalysisJob, ApiError> {
        let mut violations = FieldViolations::default();
        let mut parameters = BTreeMap::new();
        sys_ids(&mut violations, &mut parameters, "risk_ids", &request.risk_ids);
        let min_correlation = request.min_correlation;
        if !(0.0..=1.0).contains(&min_correlation) {
            violations.add("min_correlation", "OUT_OF_RANGE", "min_correlation must be between 0 and 1");
        } else if min_correlation > 0.0 {
            parameters.insert("min_correlation".to_string(), min_correlation.to_string());
        }
        self.start(identity, &request.instance_id, "risk_correlation", parameters, violations).await
    }

    /// Starts a compliance gap analysis.
    pub async fn analyze_compliance(
        &self,
        identity: &Identity,
        request: AnalyzeComplianceRequest,
    ) -> Result<AnalysisJob, ApiError> {
        let mut violations = FieldViolations::default();
        let mut parameters = BTreeMap::new();
        sys_ids(&mut violations, &mut parameters, "policy_ids", &request.policy_ids);
        self.start(identity, &request.instance_id, "compliance_gap", parameters, violations).await
    }

    /// Starts the predictive analysis (the baseline; trained models arrive with the ML service).
    pub async fn run_predictive(
        &self,
        identity: &Identity,
        request: RunPredictiveAnalysisRequest,
    ) -> Result<AnalysisJob, ApiError> {
        let mut violations = FieldViolations::default();
        let mut parameters = BTreeMap::new();
        match request.horizon_days {
            0 => {}
            1..=365 => {
                parameters.insert("horizon_days".to_string(), request.horizon_days.to_string());
            }
            _ => violations.add("horizon_days", "OUT_OF_RANGE", "horizon_days must be between 1 and 365"),
        }
        if !request.model_id.is_empty() {
            // Whether it is a ready control failure model is the ML service's to say when the
            // job runs (a job naming another model fails with the reason).
            let model = violations.uuid("model_id", &request.model_id);
            parameters.insert("model_id".to_string(), model);
        }
        self.start(identity, &request.instance_id, "predictive", parameters, violations).await
    }

    /// Starts the anomaly analysis of indicator values.
    pub async fn detect_anomalies(
        &self,
        identity: &Identity,
        request: DetectAnomaliesRequest,
    ) -> Result<AnalysisJob, ApiError> {
        let mut violations = FieldViolations::default();
        let mut parameters = BTreeMap::new();
        sys_ids(&mut violations, &mut parameters, "indicator_ids", &request.indicator_ids);
        match request.window_days {
            0 => {}
            1..=365 => {
                parameters.insert("window_days".to_string(), request.window_days.to_string());
            }
            _ => violations.add("window_days", "OUT_OF_RANGE", "window_days must be between 1 and 365"),
        }
        let threshold = request.threshold;
        if (2.0..=50.0).contains(&threshold) {
            parameters.insert("threshold".to_string(), threshold.to_string());
        } else if threshold != 0.0 {
            violations.add("threshold", "OUT_OF_RANGE", "threshold (a robust z-score) must be between 2 and 50");
        }
        self.start(identity, &request.instance_id, "anomaly_detection", parameters, violations).await
    }

    /// Queues a job of `analysis_type` on the instance's last completed sync.
    async fn start(
        &self,
        identity: &Identity,
        instance_id: &str,
        analysis_type: &str,
        parameters: BTreeMap<String, String>,
        mut violations: FieldViolations,
    ) -> Result<AnalysisJob, ApiError> {
        let tenant = identity.tenant()?;
        let instance = instance_field(&mut violations, instance_id);
        violations.check()?;
        let mut tx = self.database.write(tenant).await?;
        let job = queue(&mut tx, identity, &instance, analysis_type, parameters, None).await?;
        tx.commit().await?;
        Ok(job.to_proto(&tenant.to_string()))
    }

    /// Runs an instance's latest analyses again, of the types asked for (else of every type
    /// run before), with their parameters, on the instance's last completed sync or on the
    /// stored point asked for; all or none.
    pub async fn replay(
        &self,
        identity: &Identity,
        request: ReplayAnalysisRequest,
    ) -> Result<ReplayAnalysisResponse, ApiError> {
        let tenant = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let instance = instance_field(&mut violations, &request.instance_id);
        let mut asked = Vec::new();
        for (index, value) in request.types.iter().enumerate() {
            match AnalysisType::try_from(*value).ok().and_then(type_name) {
                Some(name) if !asked.contains(&name) => asked.push(name),
                Some(_) => {}
                None => violations.add(&format!("types[{index}]"), "INVALID", "not an analysis type"),
            }
        }
        let sync_run = violations.optional_uuid("sync_run_id", &request.sync_run_id).map(|id| id.to_string());
        violations.check()?;
        let mut tx = self.database.write(tenant).await?;
        if store::instance(&mut tx, &instance).await?.is_none() {
            return Err(ApiError::not_found("Instance", instance));
        }
        let point = if let Some(sync_run) = sync_run {
            let Some((_, data_as_of)) = store::point(&mut tx, &instance, &sync_run).await? else {
                return Err(ApiError::FailedPrecondition {
                    reason: "POINT_NOT_STORED",
                    message: format!(
                        "sync run {sync_run} of instance {instance} is not a stored point: it did not complete, or it \
                         completed before point-in-time history was kept"
                    ),
                });
            };
            Some((sync_run, data_as_of))
        } else {
            None
        };
        let latest = store::latest_parameters(&mut tx, &instance).await?;
        let types: Vec<&str> = if asked.is_empty() { latest.keys().map(String::as_str).collect() } else { asked };
        if types.is_empty() {
            return Err(ApiError::FailedPrecondition {
                reason: "NOTHING_TO_REPLAY",
                message: format!("no analysis of instance {instance} has run yet; name the types to run"),
            });
        }
        let mut jobs = Vec::new();
        for analysis_type in types {
            let parameters = latest.get(analysis_type).cloned().unwrap_or_default();
            jobs.push(queue(&mut tx, identity, &instance, analysis_type, parameters, point.clone()).await?);
        }
        tx.commit().await?;
        let organization = tenant.to_string();
        Ok(ReplayAnalysisResponse { jobs: jobs.iter().map(|job| job.to_proto(&organization)).collect() })
    }

    pub async fn get(&self, identity: &Identity, request: GetAnalysisJobRequest) -> Result<AnalysisJob, ApiError> {
        let tenant = identity.tenant()?;
        let id = job_id(&request.job_id)?;
        let mut tx = self.database.read(tenant).await?;
        let job = store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("AnalysisJob", &id))?;
        tx.commit().await?;
        Ok(job.to_proto(&tenant.to_string()))
    }

    pub async fn list(
        &self,
        identity: &Identity,
        request: ListAnalysisJobsRequest,
    ) -> Result<ListAnalysisJobsResponse, ApiError> {
        let tenant = identity.tenant()?;
        let instance = if request.instance_id.is_empty() {
            None
        } else {
            Some(complianceiq_kit::ids::parse_uuid("instance_id", &request.instance_id)?.to_string())
        };
        let analysis_type = type_name(request.r#type());
        let state = state_name(request.state());
        let filters =
            format!("{}|{}|{}", instance.as_deref().unwrap_or(""), analysis_type.unwrap_or(""), state.unwrap_or(""));
        let page = PageRequest::parse(request.page_size, &request.page_token, &filters)?;
        let mut tx = self.database.read(tenant).await?;
        let mut jobs = store::list(&mut tx, instance.as_deref(), analysis_type, state, &page).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut jobs, |job| vec![job.created_at.to_string(), job.id.clone()]);
        let organization = tenant.to_string();
        Ok(ListAnalysisJobsResponse {
            jobs: jobs.iter().map(|job| job.to_proto(&organization)).collect(),
            next_page_token,
        })
    }

    /// Cancels a queued or running job (it stops at its next step); deletes an ended one and
    /// its results.
    pub async fn delete(&self, identity: &Identity, request: DeleteAnalysisJobRequest) -> Result<(), ApiError> {
        let tenant = identity.tenant()?;
        let id = job_id(&request.job_id)?;
        let mut tx = self.database.write(tenant).await?;
        let job = store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("AnalysisJob", &id))?;
        if job.is_over() {
            store::delete(&mut tx, &id).await?;
        } else {
            store::request_cancel(&mut tx, &id).await?;
        }
        tx.commit().await
    }

    pub async fn results(
        &self,
        identity: &Identity,
        request: ListAnalysisResultsRequest,
    ) -> Result<ListAnalysisResultsResponse, ApiError> {
        let tenant = identity.tenant()?;
        let id = job_id(&request.job_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token, &id)?;
        let after = page.after_number()?;
        let mut tx = self.database.read(tenant).await?;
        store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("AnalysisJob", &id))?;
        let mut rows = store::results(&mut tx, &id, after, page.fetch_limit()).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut rows, |(position, _)| vec![position.to_string()]);
        Ok(ListAnalysisResultsResponse {
            results: rows.into_iter().map(|(_, result)| result).collect(),
            next_page_token,
        })
    }
}

/// Runs analysis jobs from the kit's queue.
pub struct AnalysisJobs {
    pub database: ModuleDatabase,
    /// The ML service, for the predictive analysis's trained model.
    pub ml: MlServiceClient<MeshChannel>,
}

impl AnalysisJobs {
    /// The ML service's scores for a predictive job: from the model the job names, else the
    /// organization's default; none without either (the job keeps to the baseline).
    async fn model_scores(&self, job: &Job, record: &JobRecord) -> Result<ScoreControlsResponse, Stop> {
        let request = ScoreControlsRequest {
            organization_id: job.organization.to_string(),
            instance_id: record.instance_id.clone(),
            model_id: record.parameters.get("model_id").cloned().unwrap_or_default(),
            data_as_of: record.data_as_of.clone(),
        };
        match self.ml.clone().score_controls(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
                Err(Stop::Retry(format!("the ML service is unavailable: {}", status.message())))
            }
            Err(status) => Err(Stop::Failed(format!("the model could not score the controls: {}", status.message()))),
        }
    }

    async fn load(&self, job: &Job) -> Result<JobRecord, ApiError> {
        let mut tx = self.database.read(job.organization).await?;
        let record =
            store::by_id(&mut tx, &job.id).await?.ok_or_else(|| ApiError::not_found("AnalysisJob", &job.id))?;
        tx.commit().await?;
        Ok(record)
    }

    /// Between steps: stop for shutdown, or for a cancellation asked meanwhile.
    async fn between_steps(&self, job: &Job, stop: &CancellationToken) -> Result<JobRecord, Stop> {
        if stop.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        let record = self.load(job).await?;
        if record.cancel_requested {
            return Err(Stop::Cancelled);
        }
        Ok(record)
    }

    async fn progress(&self, job: &Job, record: &JobRecord) -> Result<(), ApiError> {
        let mut tx = self.database.write(job.organization).await?;
        store::save(&mut tx, record).await?;
        job.extend_lease(&mut tx).await?;
        tx.commit().await
    }
}

fn context(record: &JobRecord) -> RequestContext {
    RequestContext {
        request_id: record.id.clone(),
        actor_user_id: UserId::from_stored(&record.created_by).ok(),
        traceparent: None,
    }
}

/// The window: the job's period, else the 90 days up to the data's `data_as_of`.
fn window(record: &JobRecord) -> (String, String) {
    match (record.parameters.get("period_start"), record.parameters.get("period_end")) {
        (Some(start), Some(end)) => (start.clone(), end.clone()),
        _ => {
            let end = datetime::parse(&record.data_as_of).unwrap_or_default();
            (datetime::format(end - DEFAULT_PERIOD_DAYS * 86_400), record.data_as_of.clone())
        }
    }
}

fn metric(name: &str, value: f64, unit: &str) -> Metric {
    Metric { name: name.into(), value, previous_value: None, unit: unit.into() }
}

/// Findings counted by severity.
fn findings_by_severity(results: &[AnalysisResult]) -> std::collections::HashMap<String, i64> {
    let mut counts = std::collections::HashMap::new();
    for finding in results.iter().flat_map(|result| &result.findings) {
        let severity = findings::kind(finding).map_or(Severity::Medium, |kind| kind.severity);
        *counts.entry(findings::severity_name(severity)).or_default() += 1;
    }
    counts
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { controls::one_decimal(values.iter().sum::<f64>() / values.len() as f64) }
}

fn control_summary(data: &ControlData, results: &[AnalysisResult]) -> AnalysisSummary {
    let controls: Vec<&AnalysisResult> = results.iter().filter(|result| result.rollup.is_empty()).collect();
    let scores: Vec<f64> = controls.iter().filter_map(|result| result.score).collect();
    let count = |rating: EffectivenessRating| controls.iter().filter(|result| result.rating() == rating).count() as f64;
    let mean_score = mean(&scores);
    AnalysisSummary {
        score: mean_score,
        records_analyzed: data.records_analyzed(),
        findings_by_severity: findings_by_severity(results),
        insight_ids: Vec::new(),
        metrics: vec![
            metric("controls_analyzed", controls.len() as f64, "controls"),
            metric("controls_tested", scores.len() as f64, "controls"),
            metric("effective", count(EffectivenessRating::Effective), "controls"),
            metric("partially_effective", count(EffectivenessRating::PartiallyEffective), "controls"),
            metric("ineffective", count(EffectivenessRating::Ineffective), "controls"),
            metric("not_tested", count(EffectivenessRating::NotTested), "controls"),
            metric("mean_score", mean_score, "score"),
        ],
    }
}

fn risk_summary(data: &ControlData, results: &[AnalysisResult]) -> AnalysisSummary {
    let risks: Vec<&AnalysisResult> = results.iter().filter(|result| result.rollup.is_empty()).collect();
    let effectiveness: Vec<f64> =
        risks.iter().map(|r| 100.0 * r.values.get("weighted_effectiveness").copied().unwrap_or(0.0)).collect();
    let understated = risks.iter().filter(|r| r.findings.iter().any(|f| f == risks::RISK_UNDERSTATED)).count();
    let without = risks.iter().filter(|r| r.values.get("linked_controls").copied().unwrap_or(0.0) == 0.0).count();
    AnalysisSummary {
        score: mean(&effectiveness),
        records_analyzed: data.records_analyzed() + (data.risks.len() + data.risk_controls.len()) as i64,
        findings_by_severity: findings_by_severity(results),
        insight_ids: Vec::new(),
        metrics: vec![
            metric("risks_analyzed", risks.len() as f64, "risks"),
            metric("understated", understated as f64, "risks"),
            metric("without_controls", without as f64, "risks"),
            metric("correlated_pairs", (results.len() - risks.len()) as f64, "pairs"),
        ],
    }
}

fn compliance_summary(data: &ControlData, results: &[AnalysisResult]) -> AnalysisSummary {
    let requirements: Vec<&AnalysisResult> = results.iter().filter(|result| result.rollup.is_empty()).collect();
    let gaps = |kind: &str| requirements.iter().filter(|r| r.findings.iter().any(|f| f == kind)).count() as f64;
    let covered = requirements.iter().filter(|r| r.values.get("effective_controls").copied().unwrap_or(0.0) > 0.0);
    let covered = covered.count() as u32;
    AnalysisSummary {
        score: compliance::coverage_percent(requirements.len() as u32, covered),
        records_analyzed: data.records_analyzed() + data.requirements.len() as i64,
        findings_by_severity: findings_by_severity(results),
        insight_ids: Vec::new(),
        metrics: vec![
            metric("requirements", requirements.len() as f64, "requirements"),
            metric("covered", f64::from(covered), "requirements"),
            metric("no_controls", gaps(compliance::NO_CONTROLS), "requirements"),
            metric("untested", gaps(compliance::UNTESTED), "requirements"),
            metric("no_effective_control", gaps(compliance::NO_EFFECTIVE_CONTROL), "requirements"),
        ],
    }
}

fn predictive_summary(
    results: &[AnalysisResult],
    backtest: &predictive::Backtest,
    history: &predictive::History,
    model: Option<&complianceiq_proto::complianceiq::ml::v1::Model>,
) -> AnalysisSummary {
    // The model's own scores on its held-out month, beside the baseline's backtest.
    let model_metrics = model.into_iter().flat_map(|model| {
        [
            ("auc", "model_auc", "auc"),
            ("brier", "model_brier", "brier"),
            ("auc_recency_baseline", "baseline_auc", "auc"),
        ]
        .into_iter()
        .filter_map(|(key, name, unit)| Some(metric(name, *model.metrics.get(key)?, unit)))
        .collect::<Vec<_>>()
    });
    let probabilities: Vec<f64> = results.iter().filter_map(|result| result.score).collect();
    let likely = results.iter().filter(|r| r.findings.iter().any(|f| f == predictive::LIKELY_FAILURE)).count();
    AnalysisSummary {
        score: mean(&probabilities),
        records_analyzed: history.values().map(Vec::len).sum::<usize>() as i64,
        findings_by_severity: findings_by_severity(results),
        insight_ids: Vec::new(),
        metrics: vec![
            metric("controls_predicted", results.len() as f64, "controls"),
            metric("likely_failures", likely as f64, "controls"),
            metric("backtest_results", backtest.scored as f64, "results"),
            metric("brier", backtest.brier, "brier"),
            metric("brier_base_rate", backtest.brier_base_rate, "brier"),
            metric("base_rate", backtest.base_rate, "ratio"),
        ]
        .into_iter()
        .chain(model_metrics)
        .collect(),
    }
}

fn anomaly_summary(results: &[AnalysisResult], counts: &anomalies::Summary, records: usize) -> AnalysisSummary {
    let scores: Vec<f64> = results.iter().filter_map(|result| result.score).collect();
    AnalysisSummary {
        score: mean(&scores),
        records_analyzed: records as i64,
        findings_by_severity: findings_by_severity(results),
        insight_ids: Vec::new(),
        metrics: vec![
            metric("indicators_examined", counts.indicators as f64, "indicators"),
            metric("indicators_with_anomalies", counts.with_anomalies as f64, "indicators"),
            metric("results_examined", counts.results as f64, "results"),
            metric("anomalies", counts.anomalies as f64, "results"),
            metric("indicators_without_baseline", counts.without_baseline as f64, "indicators"),
        ],
    }
}

impl JobHandler for AnalysisJobs {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, stop: &CancellationToken) -> Result<(), Stop> {
        let mut record = self.between_steps(job, stop).await?;
        if record.is_over() {
            return Ok(());
        }
        if record.state == "queued" {
            record.state = "running".into();
            record.started_at = Some(time::now_micros());
            record.progress_percent = 5;
            let mut tx = self.database.write(job.organization).await?;
            store::save(&mut tx, &record).await?;
            job.extend_lease(&mut tx).await?;
            let started = AnalysisStarted { job: Some(record.to_proto(&job.organization.to_string())) };
            tx.emit(Payload::AnalysisStarted(started), &context(&record)).await?;
            tx.commit().await?;
        }
        let (start, end) = window(&record);
        let reading = std::time::Instant::now();
        let mut tx = self.database.read(job.organization).await?;
        let (url, ..) = store::instance(&mut tx, &record.instance_id).await?.unwrap_or_default();
        // The records as they stood when the job's sync completed, whatever synced since.
        let point = store::point(&mut tx, &record.instance_id, &record.data_as_of_sync_run_id).await?;
        let snapshot = Snapshot {
            instance: &record.instance_id,
            point: point.map_or(Snapshot::CURRENT, |(stored_through, _)| stored_through),
        };
        let with_risks = record.analysis_type == "risk_correlation";
        // A second transaction only helps a read at a stored point (see ControlData::load).
        let mut second = match snapshot.point {
            Snapshot::CURRENT => None,
            _ => self.database.try_read(job.organization).await?,
        };
        let parallel_reads = second.is_some();
        // The anomaly analysis reads indicator values only.
        let data = if record.analysis_type == "anomaly_detection" {
            ControlData::default()
        } else {
            ControlData::load(&mut tx, second.as_mut(), snapshot, (&start, &end), with_risks).await?
        };
        if let Some(second) = second {
            second.commit().await?;
        }
        let history = if record.analysis_type == "predictive" {
            predictive::load_history(&mut tx, snapshot, &record.data_as_of).await?
        } else {
            predictive::History::new()
        };
        let indicators = if record.analysis_type == "anomaly_detection" {
            anomalies::load(&mut tx, snapshot, &record.data_as_of).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        let read_ms = reading.elapsed().as_millis();
        let scored = if record.analysis_type == "predictive" {
            self.model_scores(job, &record).await?
        } else {
            ScoreControlsResponse::default()
        };
        let mut record = self.between_steps(job, stop).await?;
        if let Some(model) = scored.model.as_ref() {
            // The job says which model it used (a replay uses the same one).
            record.parameters.insert("model_id".into(), model.id.clone());
            record.parameters.insert("model".into(), format!("{} v{}", model.name, model.version));
        }
        record.progress_percent = 60;
        self.progress(job, &record).await?;

        let only = |field: &str| -> Vec<String> {
            record.parameters.get(field).map(|ids| ids.split(',').map(str::to_string).collect()).unwrap_or_default()
        };
        let links = Links { instance_url: &url };
        let computing = std::time::Instant::now();
        let (results, summary) = match record.analysis_type.as_str() {
            "control_effectiveness" => {
                let results = controls::analyze(&data, &only("control_ids"), &links);
                let summary = control_summary(&data, &results);
                (results, summary)
            }
            "risk_correlation" => {
                let min_correlation = record
                    .parameters
                    .get("min_correlation")
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(DEFAULT_MIN_CORRELATION);
                let results = risks::analyze(&data, &only("risk_ids"), min_correlation, &links);
                let summary = risk_summary(&data, &results);
                (results, summary)
            }
            "compliance_gap" => {
                let results = compliance::analyze(&data, &only("policy_ids"), &links);
                let summary = compliance_summary(&data, &results);
                (results, summary)
            }
            "predictive" => {
                let as_of = datetime::parse(&record.data_as_of).unwrap_or_default();
                let results = match &scored.model {
                    Some(model) => predictive::analyze_with_model(&data, &history, model, &scored.predictions, &links),
                    None => predictive::analyze(&data, &history, as_of, &links),
                };
                let backtest = predictive::backtest(&data, &history, as_of);
                let summary = predictive_summary(&results, &backtest, &history, scored.model.as_ref());
                (results, summary)
            }
            "anomaly_detection" => {
                let number = |name: &str, default: f64| {
                    record.parameters.get(name).and_then(|value| value.parse().ok()).unwrap_or(default)
                };
                let settings = anomalies::Settings {
                    as_of: datetime::parse(&record.data_as_of).unwrap_or_default(),
                    window_days: number("window_days", anomalies::DEFAULT_WINDOW_DAYS as f64) as i64,
                    threshold: number("threshold", anomalies::DEFAULT_THRESHOLD),
                };
                let (results, counts) = anomalies::analyze(&indicators, &only("indicator_ids"), settings, &links);
                let records = indicators.iter().map(|indicator| indicator.readings.len()).sum::<usize>();
                let summary = anomaly_summary(&results, &counts, records);
                (results, summary)
            }
            other => return Err(Stop::Failed(format!("analyses of type {other} are not built yet"))),
        };
        let compute_ms = computing.elapsed().as_millis();
        let mut record = self.between_steps(job, stop).await?;
        record.summary =
            Some(AnalysisSummary { insight_ids: findings::insight_ids(&record.instance_id, &results), ..summary });
        record.progress_percent = 100;
        let writing = std::time::Instant::now();
        let mut tx = self.database.write(job.organization).await?;
        store::save_results(&mut tx, &record.id, &results).await?;
        store::save(&mut tx, &record).await?;
        job.extend_lease(&mut tx).await?;
        tx.commit().await?;
        tracing::info!(
            analysis_job_id = %record.id,
            results = results.len(),
            read_ms,
            parallel_reads,
            compute_ms,
            write_ms = writing.elapsed().as_millis(),
            "analysis computed"
        );
        Ok(())
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        let Some(mut record) = store::by_id(tx, &job.id).await? else { return Ok(()) };
        if record.is_over() {
            return Ok(());
        }
        let (state, error) = match ending {
            Ending::Succeeded => ("succeeded", String::new()),
            Ending::Cancelled => ("cancelled", String::new()),
            Ending::Failed(error) => ("failed", error.clone()),
        };
        record.state = state.into();
        record.error = error;
        record.ended_at = Some(time::now_micros());
        if *ending != Ending::Succeeded {
            record.summary = None;
            store::save_results(tx, &record.id, &[]).await?;
        }
        store::save(tx, &record).await?;
        let proto = record.to_proto(&job.organization.to_string());
        match ending {
            Ending::Succeeded => {
                tx.emit(Payload::AnalysisCompleted(AnalysisCompleted { job: Some(proto) }), &context(&record)).await?;
            }
            Ending::Failed(_) => {
                tx.emit(Payload::AnalysisFailed(AnalysisFailed { job: Some(proto) }), &context(&record)).await?;
            }
            Ending::Cancelled => {}
        }
        tracing::info!(analysis_job_id = %record.id, state = %record.state, error = %record.error, "analysis ended");
        Ok(())
    }
}

/// The worker, for the module's parts.
pub fn worker(
    database: ModuleDatabase,
    ml: MlServiceClient<MeshChannel>,
    settings: jobs::WorkerSettings,
    metrics: Arc<complianceiq_kit::metrics::Metrics>,
) -> complianceiq_kit::module::Worker {
    let handler = Arc::new(AnalysisJobs { database: database.clone(), ml });
    jobs::worker("analysis-jobs", database, handler, settings, metrics)
}
