//! The instance service's queries: one SQL path for SQLite and PostgreSQL, every tenant
//! query bound to the transaction's organization.

use std::collections::BTreeMap;

use complianceiq_kit::db::{GlobalTx, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::paging::PageRequest;
use sqlx::Row;

use crate::domain::InstanceRecord;

/// The instance columns, as a literal so queries stay literal SQL.
macro_rules! columns {
    () => {
        "id, name, url, auth_type, credentials_sealed, state, health_status, sync_interval_minutes, \
         tables, last_sync_at, revision, created_at, updated_at"
    };
}

fn record(row: &sqlx::any::AnyRow) -> Result<InstanceRecord, ApiError> {
    let tables: String = row.try_get("tables")?;
    Ok(InstanceRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        auth_type: row.try_get("auth_type")?,
        credentials_sealed: row.try_get("credentials_sealed")?,
        state: row.try_get("state")?,
        health_status: row.try_get("health_status")?,
        sync_interval_minutes: row.try_get("sync_interval_minutes")?,
        tables: tables.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
        last_sync_at: row.try_get("last_sync_at")?,
        revision: row.try_get("revision")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts an instance; false when its name is taken in the organization.
pub async fn insert(tx: &mut TenantTx, instance: &InstanceRecord) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(
        "INSERT INTO instances (id, organization_id, name, url, auth_type, credentials_sealed, state, health_status, \
         sync_interval_minutes, tables, last_sync_at, revision, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (organization_id, name) DO NOTHING",
    )
    .bind(&instance.id)
    .bind(tenant)
    .bind(&instance.name)
    .bind(&instance.url)
    .bind(&instance.auth_type)
    .bind(&instance.credentials_sealed)
    .bind(&instance.state)
    .bind(&instance.health_status)
    .bind(instance.sync_interval_minutes)
    .bind(instance.tables.join(","))
    .bind(instance.last_sync_at)
    .bind(instance.revision)
    .bind(instance.created_at)
    .bind(instance.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// An instance of the organization.
pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<InstanceRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM instances WHERE organization_id = $1 AND id = $2"))
        .bind(tenant)
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
    row.as_ref().map(record).transpose()
}

/// Writes `next` if the stored revision is still `expected`; false if someone else won.
pub async fn update(tx: &mut TenantTx, next: &InstanceRecord, expected: i64) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let updated = sqlx::query(
        "UPDATE instances SET name = $1, url = $2, auth_type = $3, credentials_sealed = $4, state = $5, \
         health_status = $6, sync_interval_minutes = $7, tables = $8, last_sync_at = $9, revision = $10, updated_at = $11 \
         WHERE organization_id = $12 AND id = $13 AND revision = $14",
    )
    .bind(&next.name)
    .bind(&next.url)
    .bind(&next.auth_type)
    .bind(&next.credentials_sealed)
    .bind(&next.state)
    .bind(&next.health_status)
    .bind(next.sync_interval_minutes)
    .bind(next.tables.join(","))
    .bind(next.last_sync_at)
    .bind(next.revision)
    .bind(next.updated_at)
    .bind(tenant)
    .bind(&next.id)
    .bind(expected)
    .execute(tx.connection())
    .await;
    match updated {
        Ok(done) => Ok(done.rows_affected() == 1),
        // A rename onto a name the organization already uses.
        Err(error) if complianceiq_kit::error::is_unique_violation(&error) => Err(ApiError::AlreadyExists {
            resource_type: "Instance",
            name: next.name.clone(),
            message: format!("the organization already has an instance named {:?}", next.name),
        }),
        Err(error) => Err(error.into()),
    }
}

/// Deletes an instance, its checks and its sync history; false if it did not exist.
pub async fn delete(tx: &mut TenantTx, id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let runs: Vec<String> =
        sqlx::query_scalar("SELECT id FROM sync_runs WHERE organization_id = $1 AND instance_id = $2")
            .bind(&tenant)
            .bind(id)
            .fetch_all(tx.connection())
            .await?;
    complianceiq_kit::jobs::remove(tx, <crate::sync::SyncJobs as complianceiq_kit::jobs::JobHandler>::KIND, &runs)
        .await?;
    for statement in [
        "DELETE FROM sync_runs WHERE organization_id = $1 AND instance_id = $2",
        "DELETE FROM sync_watermarks WHERE organization_id = $1 AND instance_id = $2",
        "DELETE FROM instance_health_checks WHERE organization_id = $1 AND instance_id = $2",
    ] {
        sqlx::query(statement).bind(&tenant).bind(id).execute(tx.connection()).await?;
    }
    let deleted = sqlx::query("DELETE FROM instances WHERE organization_id = $1 AND id = $2")
        .bind(&tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// A page of instances, oldest first, optionally in one state; and the total.
pub async fn list_page(
    tx: &mut TenantTx,
    state: Option<&str>,
    page: &PageRequest,
) -> Result<(Vec<InstanceRecord>, i64), ApiError> {
    let tenant = tx.tenant().to_string();
    let (after_created, after_id) = match &page.after {
        Some(key) if key.len() == 2 => (key[0].parse::<i64>().ok(), key[1].clone()),
        _ => (None, String::new()),
    };
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM instances WHERE organization_id = $1 AND ($2 IS NULL OR state = $2) \
         AND ($3 IS NULL OR created_at > $3 OR (created_at = $3 AND id > $4)) ORDER BY created_at, id LIMIT $5"
    ))
    .bind(&tenant)
    .bind(state)
    .bind(after_created)
    .bind(after_id)
    .bind(page.fetch_limit())
    .fetch_all(tx.connection())
    .await?;
    let total: i64 =
        sqlx::query("SELECT COUNT(*) FROM instances WHERE organization_id = $1 AND ($2 IS NULL OR state = $2)")
            .bind(&tenant)
            .bind(state)
            .fetch_one(tx.connection())
            .await?
            .try_get(0)?;
    Ok((rows.iter().map(record).collect::<Result<_, _>>()?, total))
}

/// One stored connection check.
#[derive(Clone, Debug)]
pub struct HealthCheckRecord {
    pub id: String,
    pub instance_id: String,
    pub status: String,
    pub latency_ms: i64,
    pub error: String,
    pub report: String,
    pub checked_at: i64,
}

/// Records a check.
pub async fn insert_check(tx: &mut TenantTx, check: &HealthCheckRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO instance_health_checks (id, organization_id, instance_id, status, latency_ms, error, report, checked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&check.id)
    .bind(tenant)
    .bind(&check.instance_id)
    .bind(&check.status)
    .bind(check.latency_ms)
    .bind(&check.error)
    .bind(&check.report)
    .bind(check.checked_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The newest `limit` checks of an instance.
pub async fn recent_checks(tx: &mut TenantTx, instance: &str, limit: i64) -> Result<Vec<HealthCheckRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT id, instance_id, status, latency_ms, error, report, checked_at FROM instance_health_checks \
         WHERE organization_id = $1 AND instance_id = $2 ORDER BY checked_at DESC, id DESC LIMIT $3",
    )
    .bind(tenant)
    .bind(instance)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(HealthCheckRecord {
                id: row.try_get("id")?,
                instance_id: row.try_get("instance_id")?,
                status: row.try_get("status")?,
                latency_ms: row.try_get("latency_ms")?,
                error: row.try_get("error")?,
                report: row.try_get("report")?,
                checked_at: row.try_get("checked_at")?,
            })
        })
        .collect()
}

/// Healthy checks and all checks of an instance since `since`.
pub async fn availability(tx: &mut TenantTx, instance: &str, since: i64) -> Result<(i64, i64), ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN status = 'healthy' THEN 1 ELSE 0 END), 0), COUNT(*) FROM instance_health_checks \
         WHERE organization_id = $1 AND instance_id = $2 AND checked_at >= $3",
    )
    .bind(tenant)
    .bind(instance)
    .bind(since)
    .fetch_one(tx.connection())
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Sets the organization's allowance from its plan as of `as_of` (the subscription's update
/// time): an older change arriving late does not overwrite a newer one. The count held stays.
pub async fn set_allowance(tx: &mut TenantTx, plan: &str, max_instances: i64, as_of: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO instance_allowances (organization_id, plan, max_instances, instance_count, updated_at) \
         VALUES ($1, $2, $3, 0, $4) ON CONFLICT (organization_id) DO UPDATE SET plan = $2, max_instances = $3, updated_at = $4 \
         WHERE instance_allowances.updated_at <= $4",
    )
    .bind(tenant)
    .bind(plan)
    .bind(max_instances)
    .bind(as_of)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// What taking one more instance found.
pub enum Allowance {
    /// Taken.
    Taken,
    /// The plan allows no more: (plan, limit).
    Exhausted(String, i64),
    /// The organization's plan is not known here yet.
    Unknown,
}

/// Takes one instance of the allowance, atomically (a limit of 0 is unlimited).
pub async fn take_allowance(tx: &mut TenantTx) -> Result<Allowance, ApiError> {
    let tenant = tx.tenant().to_string();
    let taken = sqlx::query(
        "UPDATE instance_allowances SET instance_count = instance_count + 1 \
         WHERE organization_id = $1 AND (max_instances = 0 OR instance_count < max_instances)",
    )
    .bind(&tenant)
    .execute(tx.connection())
    .await?;
    if taken.rows_affected() == 1 {
        return Ok(Allowance::Taken);
    }
    let row = sqlx::query("SELECT plan, max_instances FROM instance_allowances WHERE organization_id = $1")
        .bind(&tenant)
        .fetch_optional(tx.connection())
        .await?;
    Ok(match row {
        Some(row) => Allowance::Exhausted(row.try_get(0)?, row.try_get(1)?),
        None => Allowance::Unknown,
    })
}

/// Gives one instance back.
pub async fn release_allowance(tx: &mut TenantTx) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE instance_allowances SET instance_count = instance_count - 1 WHERE organization_id = $1 AND instance_count > 0",
    )
    .bind(tenant)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Schedules the instance's next check (inserting or moving it).
pub async fn schedule(tx: &mut TenantTx, instance: &str, at: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO instance_schedule (instance_id, organization_id, next_check_at) VALUES ($1, $2, $3) \
         ON CONFLICT (instance_id) DO UPDATE SET next_check_at = $3",
    )
    .bind(instance)
    .bind(tenant)
    .bind(at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Stops scheduling an instance.
pub async fn unschedule(tx: &mut TenantTx, instance: &str) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM instance_schedule WHERE instance_id = $1").bind(instance).execute(tx.connection()).await?;
    Ok(())
}

/// Instances due for a check (ids only, across organizations), claimed by moving their next
/// time `lease` ahead so another process does not take them too.
pub async fn claim_due(tx: &mut GlobalTx, now: i64, lease: i64, limit: i64) -> Result<Vec<(String, String)>, ApiError> {
    let rows = sqlx::query(
        "UPDATE instance_schedule SET next_check_at = $1 WHERE instance_id IN ( \
           SELECT instance_id FROM instance_schedule WHERE next_check_at <= $2 ORDER BY next_check_at LIMIT $3) \
         AND next_check_at <= $2 RETURNING instance_id, organization_id",
    )
    .bind(now + lease)
    .bind(now)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

/// The instance's last successful sync time.
pub async fn set_last_sync(tx: &mut TenantTx, instance: &str, at: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("UPDATE instances SET last_sync_at = $1 WHERE organization_id = $2 AND id = $3")
        .bind(at)
        .bind(tenant)
        .bind(instance)
        .execute(tx.connection())
        .await?;
    Ok(())
}

fn run_record(row: &sqlx::any::AnyRow) -> Result<crate::sync::RunRecord, ApiError> {
    let tables: String = row.try_get("tables")?;
    let progress: String = row.try_get("progress")?;
    Ok(crate::sync::RunRecord {
        id: row.try_get("id")?,
        instance_id: row.try_get("instance_id")?,
        mode: row.try_get("mode")?,
        state: row.try_get("state")?,
        tables: tables.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
        progress: serde_json::from_str(&progress).map_err(|e| ApiError::internal(format!("sync progress: {e}")))?,
        triggered_by: row.try_get("triggered_by")?,
        error: row.try_get("error")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? == 1,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

macro_rules! run_columns {
    () => {
        "id, instance_id, mode, state, tables, progress, triggered_by, error, cancel_requested, created_at, started_at, ended_at"
    };
}

fn progress_json(run: &crate::sync::RunRecord) -> Result<String, ApiError> {
    serde_json::to_string(&run.progress).map_err(|e| ApiError::internal(format!("sync progress: {e}")))
}

/// Stores a new run and queues it for a worker.
pub async fn insert_run(tx: &mut TenantTx, run: &crate::sync::RunRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO sync_runs (id, organization_id, instance_id, mode, state, tables, progress, triggered_by, error, \
         cancel_requested, created_at, started_at, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&run.id)
    .bind(&tenant)
    .bind(&run.instance_id)
    .bind(&run.mode)
    .bind(&run.state)
    .bind(run.tables.join(","))
    .bind(progress_json(run)?)
    .bind(&run.triggered_by)
    .bind(&run.error)
    .bind(i64::from(run.cancel_requested))
    .bind(run.created_at)
    .bind(run.started_at)
    .bind(run.ended_at)
    .execute(tx.connection())
    .await?;
    complianceiq_kit::jobs::enqueue(tx, <crate::sync::SyncJobs as complianceiq_kit::jobs::JobHandler>::KIND, &run.id)
        .await
}

/// Writes a run's state, progress and times (never its cancel request, which a user sets).
pub async fn save_run(tx: &mut TenantTx, run: &crate::sync::RunRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE sync_runs SET state = $1, progress = $2, error = $3, started_at = $4, ended_at = $5 \
         WHERE organization_id = $6 AND id = $7",
    )
    .bind(&run.state)
    .bind(progress_json(run)?)
    .bind(&run.error)
    .bind(run.started_at)
    .bind(run.ended_at)
    .bind(tenant)
    .bind(&run.id)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Whether someone asked the run to stop (read between pages, so kept to one column).
pub async fn cancel_requested(tx: &mut TenantTx, run: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT cancel_requested FROM sync_runs WHERE organization_id = $1 AND id = $2")
        .bind(tenant)
        .bind(run)
        .fetch_optional(tx.connection())
        .await?;
    Ok(row.map(|row| row.try_get::<i64, _>(0)).transpose()?.is_some_and(|flag| flag == 1))
}

/// Asks a run to stop; false when it has already ended.
pub async fn request_cancel(tx: &mut TenantTx, run: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let updated = sqlx::query(
        "UPDATE sync_runs SET cancel_requested = 1 WHERE organization_id = $1 AND id = $2 AND state IN ('pending', 'running')",
    )
    .bind(tenant)
    .bind(run)
    .execute(tx.connection())
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// A run of the organization.
pub async fn run_by_id(tx: &mut TenantTx, id: &str) -> Result<Option<crate::sync::RunRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(concat!("SELECT ", run_columns!(), " FROM sync_runs WHERE organization_id = $1 AND id = $2"))
        .bind(tenant)
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
    row.as_ref().map(run_record).transpose()
}

/// The instance's run that has not ended, if any.
pub async fn active_run(tx: &mut TenantTx, instance: &str) -> Result<Option<crate::sync::RunRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM sync_runs WHERE organization_id = $1 AND instance_id = $2 AND state IN ('pending', 'running') LIMIT 1"
    ))
    .bind(tenant)
    .bind(instance)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(run_record).transpose()
}

/// A page of an instance's runs, newest first, optionally in one state.
pub async fn list_runs(
    tx: &mut TenantTx,
    instance: &str,
    state: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<crate::sync::RunRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let (before_created, before_id) = match &page.after {
        Some(key) if key.len() == 2 => (key[0].parse::<i64>().ok(), key[1].clone()),
        _ => (None, String::new()),
    };
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM sync_runs WHERE organization_id = $1 AND instance_id = $2 AND ($3 IS NULL OR state = $3) \
         AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5)) ORDER BY created_at DESC, id DESC LIMIT $6"
    ))
    .bind(tenant)
    .bind(instance)
    .bind(state)
    .bind(before_created)
    .bind(before_id)
    .bind(page.fetch_limit())
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(run_record).collect()
}

/// Where each table's last successful sync ended.
pub async fn watermarks(tx: &mut TenantTx, instance: &str) -> Result<BTreeMap<String, (String, String)>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT table_name, updated_on, sys_id FROM sync_watermarks WHERE organization_id = $1 AND instance_id = $2",
    )
    .bind(tenant)
    .bind(instance)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?)))).collect()
}

/// Records where a table's sync ended.
pub async fn save_watermark(
    tx: &mut TenantTx,
    instance: &str,
    table: &str,
    updated_on: &str,
    sys_id: &str,
) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO sync_watermarks (organization_id, instance_id, table_name, updated_on, sys_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (organization_id, instance_id, table_name) \
         DO UPDATE SET updated_on = $4, sys_id = $5, updated_at = $6",
    )
    .bind(tenant)
    .bind(instance)
    .bind(table)
    .bind(updated_on)
    .bind(sys_id)
    .bind(complianceiq_kit::time::now_micros())
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Sets when the instance is next due for a scheduled sync (`None`: not scheduled).
pub async fn schedule_sync(tx: &mut TenantTx, instance: &str, at: Option<i64>) -> Result<(), ApiError> {
    sqlx::query("UPDATE instance_schedule SET next_sync_at = $1 WHERE instance_id = $2")
        .bind(at)
        .bind(instance)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Instances due for a scheduled sync, claimed like [`claim_due`].
pub async fn claim_due_syncs(
    tx: &mut GlobalTx,
    now: i64,
    lease: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, ApiError> {
    let rows = sqlx::query(
        "UPDATE instance_schedule SET next_sync_at = $1 WHERE instance_id IN ( \
           SELECT instance_id FROM instance_schedule WHERE next_sync_at <= $2 ORDER BY next_sync_at LIMIT $3) \
         AND next_sync_at <= $2 RETURNING instance_id, organization_id",
    )
    .bind(now + lease)
    .bind(now)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

/// When the instance's last successful full sync was requested.
pub async fn last_full_sync(tx: &mut TenantTx, instance: &str) -> Result<Option<i64>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT MAX(created_at) FROM sync_runs WHERE organization_id = $1 AND instance_id = $2 \
         AND mode = 'full' AND state = 'succeeded'",
    )
    .bind(tenant)
    .bind(instance)
    .fetch_one(tx.connection())
    .await?;
    Ok(row.try_get(0)?)
}

/// Organizations that have instances (from the schedule, which is not tenant-scoped).
pub async fn organizations_with_instances(tx: &mut GlobalTx) -> Result<Vec<String>, ApiError> {
    let rows = sqlx::query("SELECT DISTINCT organization_id FROM instance_schedule ORDER BY organization_id")
        .fetch_all(tx.connection())
        .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// (id, url, sealed credentials) of the tenant's instances whose credentials are not sealed
/// under a key matching `current` (a LIKE pattern).
pub async fn credentials_not_under(
    tx: &mut TenantTx,
    current: &str,
) -> Result<Vec<(String, String, String)>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT id, url, credentials_sealed FROM instances \
         WHERE organization_id = $1 AND credentials_sealed IS NOT NULL AND credentials_sealed NOT LIKE $2",
    )
    .bind(tenant)
    .bind(current)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))).collect()
}

/// Replaces sealed credentials, if they are still `old` (a concurrent update wins).
pub async fn replace_credentials(tx: &mut TenantTx, id: &str, old: &str, fresh: &str) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE instances SET credentials_sealed = $4 WHERE organization_id = $1 AND id = $2 AND credentials_sealed = $3",
    )
    .bind(tenant)
    .bind(id)
    .bind(old)
    .bind(fresh)
    .execute(tx.connection())
    .await?;
    Ok(())
}
