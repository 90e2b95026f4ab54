//! The insights store: every query filters by the transaction's tenant. Full-text search is
//! the one place the backends differ (a generated tsvector on PostgreSQL, FTS5 on SQLite).

use std::collections::{BTreeMap, HashMap};

use complianceiq_kit::db::{Backend, TenantTx, sql};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::insights::v1::{Insight, InsightStatus, SavedReport};
use prost::Message;
use sqlx::Row;

const INSIGHT_COLUMNS: &str =
    "i.body, i.status, i.analysis_job_id, i.first_seen_at, i.last_seen_at, i.resolved_at, i.organization_id";

fn insight(row: &sqlx::any::AnyRow) -> Result<Insight, ApiError> {
    let body: Vec<u8> = row.try_get(0)?;
    let mut insight =
        Insight::decode(body.as_slice()).map_err(|e| ApiError::internal(format!("stored insight: {e}")))?;
    let status: String = row.try_get(1)?;
    insight.status = if status == "open" { InsightStatus::Open } else { InsightStatus::Resolved } as i32;
    insight.analysis_job_id = row.try_get(2)?;
    insight.create_time = Some(time::to_timestamp(row.try_get(3)?));
    insight.last_seen_time = Some(time::to_timestamp(row.try_get(4)?));
    insight.resolve_time = time::to_optional_timestamp(row.try_get(5)?);
    insight.organization_id = row.try_get(6)?;
    Ok(insight)
}

/// Whether the job's insights were taken already (a redelivered analysis.completed).
pub async fn has_snapshot(tx: &mut TenantTx, job_id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT 1 FROM insight_snapshots WHERE organization_id = $1 AND analysis_job_id = $2")
        .bind(tenant)
        .bind(job_id)
        .fetch_optional(tx.connection())
        .await?;
    Ok(row.is_some())
}

/// When the newest applied job of this type on the instance ended.
pub async fn newest_applied(tx: &mut TenantTx, instance: &str, analysis_type: &str) -> Result<Option<i64>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT MAX(created_at) FROM insight_snapshots WHERE organization_id = $1 AND instance_id = $2 \
         AND analysis_type = $3 AND applied = 1",
    )
    .bind(tenant)
    .bind(instance)
    .bind(analysis_type)
    .fetch_one(tx.connection())
    .await?;
    Ok(row.try_get(0)?)
}

/// The open insights of a category on an instance: id → subject sys_id.
pub async fn open_of_category(
    tx: &mut TenantTx,
    instance: &str,
    category: i32,
) -> Result<BTreeMap<String, String>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT id, subject_sys_id FROM insights WHERE organization_id = $1 AND instance_id = $2 \
         AND category = $3 AND status = 'open'",
    )
    .bind(tenant)
    .bind(instance)
    .bind(i64::from(category))
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

/// Rows per multi-row statement: a job of 100,000 findings is a few thousand statements, not
/// 100,000 round trips inside one write transaction (SQLite's writer lock is held throughout).
const ROWS_PER_STATEMENT: usize = 50;

/// Keeps the insights a job found as open, with the job's wording and numbers. An insight's
/// first sighting stays when it was seen before (also when it had been resolved meanwhile).
/// Ids are unique in `insights` (one statement cannot update a row twice).
pub async fn keep_open(tx: &mut TenantTx, insights: &[&Insight], at: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    for chunk in insights.chunks(ROWS_PER_STATEMENT) {
        let sql = sql::statement(
            tx.backend(),
            format!(
                "INSERT INTO insights (organization_id, id, instance_id, category, finding, subject_sys_id, severity, \
                 status, analysis_job_id, score, title, summary, recommendations, body, first_seen_at, last_seen_at, \
                 resolved_at) VALUES {} \
                 ON CONFLICT (organization_id, id) DO UPDATE SET status = 'open', severity = excluded.severity, \
                 analysis_job_id = excluded.analysis_job_id, score = excluded.score, title = excluded.title, \
                 summary = excluded.summary, recommendations = excluded.recommendations, body = excluded.body, \
                 last_seen_at = excluded.last_seen_at, resolved_at = NULL",
                sql::placeholders(1, chunk.len(), 17)
            ),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for insight in chunk {
            let subject = insight.subject.as_ref().map(|s| s.sys_id.clone()).unwrap_or_default();
            query = query
                .bind(tenant.clone())
                .bind(insight.id.clone())
                .bind(insight.instance_id.clone())
                .bind(i64::from(insight.category))
                .bind(insight.finding.clone())
                .bind(subject)
                .bind(i64::from(insight.severity))
                .bind("open")
                .bind(insight.analysis_job_id.clone())
                .bind(insight.score)
                .bind(insight.title.clone())
                .bind(insight.summary.clone())
                .bind(insight.recommendations.join("\n"))
                .bind(insight.encode_to_vec())
                .bind(at)
                .bind(at)
                .bind(None::<i64>);
        }
        query.execute(tx.connection()).await?;
    }
    Ok(())
}

/// Marks insights resolved by a job.
pub async fn resolve(tx: &mut TenantTx, ids: &[&str], job_id: &str, at: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let sql = sql::statement(
            tx.backend(),
            format!(
                "UPDATE insights SET status = 'resolved', analysis_job_id = $1, resolved_at = $2 \
                 WHERE organization_id = $3 AND id IN ({})",
                sql::list(4, chunk.len())
            ),
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(job_id).bind(at).bind(tenant.clone());
        sql::bind_ids(query, chunk).execute(tx.connection()).await?;
    }
    Ok(())
}

/// What a job did to an insight.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub analysis_job_id: String,
    pub insight_id: String,
    /// new, persisting or resolved.
    pub change: &'static str,
    /// The insight's score in that job; none when resolved.
    pub score: Option<f64>,
    pub at: i64,
}

/// Records what a job did to insights.
pub async fn record_changes(tx: &mut TenantTx, instance: &str, changes: &[Change]) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        let sql = sql::statement(
            tx.backend(),
            format!(
                "INSERT INTO insight_changes (organization_id, instance_id, analysis_job_id, insight_id, change, score, at) \
                 VALUES {}",
                sql::placeholders(1, chunk.len(), 7)
            ),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for change in chunk {
            query = query
                .bind(tenant.clone())
                .bind(instance.to_string())
                .bind(change.analysis_job_id.clone())
                .bind(change.insight_id.clone())
                .bind(change.change)
                .bind(change.score)
                .bind(change.at);
        }
        query.execute(tx.connection()).await?;
    }
    Ok(())
}

/// The open insights of an instance, counted by severity (lower-case names).
pub async fn open_by_severity(tx: &mut TenantTx, instance: &str) -> Result<BTreeMap<String, i64>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT severity, COUNT(*) FROM insights WHERE organization_id = $1 AND instance_id = $2 AND status = 'open' \
         GROUP BY severity",
    )
    .bind(tenant)
    .bind(instance)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((crate::derive::severity_key(row.try_get(0)?), row.try_get(1)?))).collect()
}

/// A history entry as stored.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub analysis_job_id: String,
    pub instance_id: String,
    pub analysis_type: String,
    pub score: f64,
    pub posture_score: f64,
    pub metrics: BTreeMap<String, f64>,
    pub open_by_severity: BTreeMap<String, i64>,
    pub applied: bool,
    pub created_at: i64,
}

const SNAPSHOT_COLUMNS: &str = "analysis_job_id, instance_id, analysis_type, score, posture_score, metrics, \
                                open_by_severity, applied, created_at";

fn snapshot(row: &sqlx::any::AnyRow) -> Result<Snapshot, ApiError> {
    let json = |index: usize| -> Result<String, ApiError> { Ok(row.try_get(index)?) };
    let decode_error = |e: serde_json::Error| ApiError::internal(format!("stored snapshot: {e}"));
    Ok(Snapshot {
        analysis_job_id: row.try_get(0)?,
        instance_id: row.try_get(1)?,
        analysis_type: row.try_get(2)?,
        score: row.try_get(3)?,
        posture_score: row.try_get(4)?,
        metrics: serde_json::from_str(&json(5)?).map_err(decode_error)?,
        open_by_severity: serde_json::from_str(&json(6)?).map_err(decode_error)?,
        applied: row.try_get::<i64, _>(7)? == 1,
        created_at: row.try_get(8)?,
    })
}

pub async fn insert_snapshot(tx: &mut TenantTx, snapshot: &Snapshot) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO insight_snapshots (organization_id, {SNAPSHOT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         $9, $10)"
    )))
    .bind(tenant)
    .bind(&snapshot.analysis_job_id)
    .bind(&snapshot.instance_id)
    .bind(&snapshot.analysis_type)
    .bind(snapshot.score)
    .bind(snapshot.posture_score)
    .bind(json(&snapshot.metrics))
    .bind(json(&snapshot.open_by_severity))
    .bind(i64::from(snapshot.applied))
    .bind(snapshot.created_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

fn json<V: serde::Serialize>(map: &BTreeMap<String, V>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

/// The instance's applied snapshots in `[start, end)`, oldest first; with `analysis_type`,
/// only of that type.
pub async fn snapshots(
    tx: &mut TenantTx,
    instance: &str,
    (start, end): (i64, i64),
    analysis_type: Option<&str>,
) -> Result<Vec<Snapshot>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM insight_snapshots WHERE organization_id = $1 AND instance_id = $2 \
         AND created_at >= $3 AND created_at < $4 AND ($5 = '' OR analysis_type = $5) ORDER BY created_at, analysis_job_id"
    )))
    .bind(tenant)
    .bind(instance)
    .bind(start)
    .bind(end)
    .bind(analysis_type.unwrap_or(""))
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(snapshot).collect()
}

/// A page of history, newest first, after the keyset `(created_at, job id)`.
pub async fn history_page(
    tx: &mut TenantTx,
    instance: &str,
    (start, end): (i64, i64),
    analysis_type: Option<&str>,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Snapshot>, ApiError> {
    let tenant = tx.tenant().to_string();
    let (after_time, after_id) = after.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM insight_snapshots WHERE organization_id = $1 AND instance_id = $2 \
         AND created_at >= $3 AND created_at < $4 AND ($5 = '' OR analysis_type = $5) \
         AND (created_at < $6 OR (created_at = $6 AND ($7 = '' OR analysis_job_id < $7))) \
         ORDER BY created_at DESC, analysis_job_id DESC LIMIT $8"
    )))
    .bind(tenant)
    .bind(instance)
    .bind(start)
    .bind(end)
    .bind(analysis_type.unwrap_or(""))
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(snapshot).collect()
}

/// The changes an instance's jobs made in `[first, last]` (a history page's span: a job's
/// changes carry its end, as its entry does), by job id: (insight id, change) each, in id order.
pub async fn changes_between(
    tx: &mut TenantTx,
    instance: &str,
    (first, last): (i64, i64),
) -> Result<HashMap<String, Vec<(String, String)>>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT analysis_job_id, insight_id, change FROM insight_changes WHERE organization_id = $1 \
         AND instance_id = $2 AND at >= $3 AND at <= $4 ORDER BY insight_id",
    )
    .bind(tenant)
    .bind(instance)
    .bind(first)
    .bind(last)
    .fetch_all(tx.connection())
    .await?;
    let mut by_job: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for row in &rows {
        by_job.entry(row.try_get(0)?).or_default().push((row.try_get(1)?, row.try_get(2)?));
    }
    Ok(by_job)
}

/// Every change of one insight, oldest first.
pub async fn changes_of_insight(tx: &mut TenantTx, insight_id: &str) -> Result<Vec<Change>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT analysis_job_id, change, score, at FROM insight_changes WHERE organization_id = $1 AND insight_id = $2 \
         ORDER BY at, analysis_job_id",
    )
    .bind(tenant)
    .bind(insight_id)
    .fetch_all(tx.connection())
    .await?;
    rows.iter()
        .map(|row| {
            let change: String = row.try_get(1)?;
            Ok(Change {
                analysis_job_id: row.try_get(0)?,
                insight_id: insight_id.to_string(),
                change: match change.as_str() {
                    "new" => "new",
                    "persisting" => "persisting",
                    _ => "resolved",
                },
                score: row.try_get(2)?,
                at: row.try_get(3)?,
            })
        })
        .collect()
}

/// The latest applied snapshot of each analysis type on the instance at or before `at`.
pub async fn latest_snapshots(tx: &mut TenantTx, instance: &str, at: i64) -> Result<Vec<Snapshot>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY analysis_type \
         ORDER BY created_at DESC, analysis_job_id DESC) AS newest FROM insight_snapshots s \
         WHERE organization_id = $1 AND instance_id = $2 AND applied = 1 AND created_at <= $3) latest \
         WHERE newest = 1 ORDER BY analysis_type"
    )))
    .bind(tenant)
    .bind(instance)
    .bind(at)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(snapshot).collect()
}

/// The insights of an instance open at `at` (by their changes up to then), with their latest
/// wording; `None` for now (by their status).
pub async fn open_insights(tx: &mut TenantTx, instance: &str, at: Option<i64>) -> Result<Vec<Insight>, ApiError> {
    let tenant = tx.tenant().to_string();
    let query = match at {
        None => format!(
            "SELECT {INSIGHT_COLUMNS} FROM insights i WHERE i.organization_id = $1 AND i.instance_id = $2 \
             AND i.status = 'open' AND $3 = $3 ORDER BY i.severity DESC, i.score, i.id"
        ),
        Some(_) => format!(
            "SELECT {INSIGHT_COLUMNS} FROM insights i JOIN (SELECT insight_id, change, ROW_NUMBER() OVER \
             (PARTITION BY insight_id ORDER BY at DESC) AS newest FROM insight_changes \
             WHERE organization_id = $1 AND instance_id = $2 AND at <= $3) c \
             ON c.insight_id = i.id AND c.newest = 1 AND c.change <> 'resolved' \
             WHERE i.organization_id = $1 AND i.instance_id = $2 ORDER BY i.severity DESC, i.score, i.id"
        ),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(tenant)
        .bind(instance)
        .bind(at.unwrap_or(0))
        .fetch_all(tx.connection())
        .await?;
    rows.iter().map(insight).collect()
}

pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<Insight>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INSIGHT_COLUMNS} FROM insights i WHERE i.organization_id = $1 AND i.id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(insight).transpose()
}

/// What a search asks for, validated.
#[derive(Debug, Default)]
pub struct Search {
    /// Words that must all match (already split; empty: no text condition).
    pub words: Vec<String>,
    pub instances: Vec<String>,
    pub categories: Vec<i64>,
    pub min_severity: i64,
    /// `[start, end)` on when the insight was last found.
    pub period: (i64, i64),
}

/// One page of matches (best first, then by id) and the number of all matches.
pub async fn search(
    tx: &mut TenantTx,
    backend: Backend,
    search: &Search,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Insight>, i64), ApiError> {
    let tenant = tx.tenant().to_string();
    // Filters are bound as comma-joined lists and matched with a delimiter test, so one
    // statement serves any number of them on both backends.
    let mut conditions = String::from(
        "i.organization_id = $1 AND ($2 = '' OR ',' || $2 || ',' LIKE '%,' || i.instance_id || ',%') \
         AND ($3 = '' OR ',' || $3 || ',' LIKE '%,' || CAST(i.category AS TEXT) || ',%') \
         AND i.severity >= $4 AND i.last_seen_at >= $5 AND i.last_seen_at < $6 AND $7 = $7",
    );
    let (from, rank) = if search.words.is_empty() {
        ("insights i".to_string(), "i.severity DESC, i.last_seen_at DESC".to_string())
    } else {
        match backend {
            Backend::Postgres => {
                conditions.push_str(" AND i.search @@ plainto_tsquery('english', $7)");
                ("insights i".to_string(), "ts_rank(i.search, plainto_tsquery('english', $7)) DESC".to_string())
            }
            Backend::Sqlite => {
                conditions.push_str(" AND s.organization_id = $1 AND insights_search MATCH $7");
                (
                    "insights i JOIN insights_search s ON s.rowid = i.search_rowid AND s.organization_id = i.organization_id"
                        .to_string(),
                    "bm25(insights_search)".to_string(),
                )
            }
        }
    };
    let text = match backend {
        Backend::Postgres => search.words.join(" "),
        // FTS5 query syntax: each word quoted is matched literally; words side by side must all match.
        Backend::Sqlite => {
            search.words.iter().map(|word| format!("\"{}\"", word.replace('"', ""))).collect::<Vec<_>>().join(" ")
        }
    };
    let join = |values: &[String]| values.join(",");
    let categories: Vec<String> = search.categories.iter().map(i64::to_string).collect();
    let bind = |query: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
        query
            .bind(tenant.clone())
            .bind(join(&search.instances))
            .bind(join(&categories))
            .bind(search.min_severity)
            .bind(search.period.0)
            .bind(search.period.1)
            .bind(text.clone())
    };
    let page_query = format!(
        "SELECT {INSIGHT_COLUMNS} FROM {from} WHERE {conditions} AND $8 >= 0 ORDER BY {rank}, i.id LIMIT $9 OFFSET $8"
    );
    let rows =
        bind(sqlx::query(sqlx::AssertSqlSafe(page_query))).bind(offset).bind(limit).fetch_all(tx.connection()).await?;
    let insights = rows.iter().map(insight).collect::<Result<Vec<_>, _>>()?;
    let count_query = format!("SELECT COUNT(*) FROM {from} WHERE {conditions}");
    let total: i64 =
        bind(sqlx::query(sqlx::AssertSqlSafe(count_query))).fetch_one(tx.connection()).await?.try_get(0)?;
    Ok((insights, total))
}

/// Forgets an instance's insights and their history (it was disconnected).
pub async fn purge(tx: &mut TenantTx, instance: &str) -> Result<u64, ApiError> {
    let tenant = tx.tenant().to_string();
    let mut removed = 0;
    for table in ["insights", "insight_changes", "insight_snapshots"] {
        removed += sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE organization_id = $1 AND instance_id = $2"
        )))
        .bind(&tenant)
        .bind(instance)
        .execute(tx.connection())
        .await?
        .rows_affected();
    }
    Ok(removed)
}

/// Removes what is past the organization's retention (run by the kit's
/// [`complianceiq_kit::retention`]): changes and trend points from before the cutoff (each
/// instance keeps its latest point per analysis type, which decides whether a late job
/// applies) and insights resolved before it. Saved reports stay: a person saved them.
pub const PURGE_PAST: &[(&str, &str)] = &[
    ("insight_changes", "DELETE FROM insight_changes WHERE organization_id = $1 AND at < $2"),
    (
        "insight_snapshots",
        "DELETE FROM insight_snapshots WHERE organization_id = $1 AND created_at < $2 \
           AND created_at < (SELECT MAX(latest.created_at) FROM insight_snapshots latest \
             WHERE latest.organization_id = $1 AND latest.instance_id = insight_snapshots.instance_id \
             AND latest.analysis_type = insight_snapshots.analysis_type)",
    ),
    ("insights", "DELETE FROM insights WHERE organization_id = $1 AND status = 'resolved' AND resolved_at < $2"),
];

const REPORT_COLUMNS: &str = "id, insight_id, name, notes, snapshot, created_by, created_at, organization_id";

fn report(row: &sqlx::any::AnyRow) -> Result<SavedReport, ApiError> {
    let snapshot: Vec<u8> = row.try_get(4)?;
    Ok(SavedReport {
        id: row.try_get(0)?,
        insight_id: row.try_get(1)?,
        name: row.try_get(2)?,
        notes: row.try_get(3)?,
        insight: Some(
            Insight::decode(snapshot.as_slice()).map_err(|e| ApiError::internal(format!("stored report: {e}")))?,
        ),
        created_by: row.try_get(5)?,
        create_time: Some(time::to_timestamp(row.try_get(6)?)),
        organization_id: row.try_get(7)?,
    })
}

/// Saves a report; ALREADY_EXISTS when the organization has one of that name.
pub async fn insert_report(tx: &mut TenantTx, report: &SavedReport, created_at: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    let snapshot = report.insight.as_ref().map(Message::encode_to_vec).unwrap_or_default();
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO saved_reports ({REPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )))
    .bind(&report.id)
    .bind(&report.insight_id)
    .bind(&report.name)
    .bind(&report.notes)
    .bind(snapshot)
    .bind(&report.created_by)
    .bind(created_at)
    .bind(tenant)
    .execute(tx.connection())
    .await;
    match inserted {
        Err(error) if complianceiq_kit::error::is_unique_violation(&error) => Err(ApiError::AlreadyExists {
            resource_type: "SavedReport",
            name: report.name.clone(),
            message: format!("a saved report named {:?} exists; choose another name", report.name),
        }),
        other => other.map(|_| ()).map_err(ApiError::from),
    }
}

pub async fn report_by_id(tx: &mut TenantTx, id: &str) -> Result<Option<SavedReport>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REPORT_COLUMNS} FROM saved_reports WHERE organization_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(report).transpose()
}

/// Newest first, after the keyset `(created_at, id)`.
pub async fn reports_page(
    tx: &mut TenantTx,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<SavedReport>, ApiError> {
    let tenant = tx.tenant().to_string();
    let (after_time, after_id) = after.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REPORT_COLUMNS} FROM saved_reports WHERE organization_id = $1 \
         AND (created_at < $2 OR (created_at = $2 AND ($3 = '' OR id < $3))) ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(tenant)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(report).collect()
}

pub async fn delete_report(tx: &mut TenantTx, id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let deleted = sqlx::query("DELETE FROM saved_reports WHERE organization_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(deleted.rows_affected() > 0)
}
