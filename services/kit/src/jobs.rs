//! Durable jobs: the one machinery behind sync runs, analyses and every later kind of
//! background work (exports, report rendering, model training, webhook deliveries).
//!
//! A kind of job keeps its own record (state, progress, result) in a tenant table of its
//! module; the kit keeps the queue (`ciq_jobs`: kind, id, organization, lease, attempts) in
//! the same database, so a job is enqueued in the transaction that creates its record. Workers
//! in any number of processes claim due jobs with a lease and extend it at every checkpoint; a
//! job whose worker dies becomes due again when its lease runs out and resumes from its last
//! checkpoint. At shutdown a worker gives its job back at once. A transient failure
//! ([`Stop::Retry`]) is retried with exponential backoff up to a number of attempts; any other
//! end is recorded by the kind's [`JobHandler::record_end`] in the transaction that removes
//! the job from the queue, so a job ends exactly once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::db::{GlobalTx, ModuleDatabase, TenantTx};
use crate::error::ApiError;
use crate::ids::OrganizationId;
use crate::metrics::Metrics;
use crate::time;

/// A claimed job.
#[derive(Clone, Debug)]
pub struct Job {
    /// The kind's own id for it (its record's primary key).
    pub id: String,
    pub organization: OrganizationId,
    /// Earlier attempts that ended in [`Stop::Retry`].
    pub attempts: u32,
    kind: &'static str,
    lease: Duration,
}

impl Job {
    /// Extends the lease from now, in the transaction that saves a checkpoint: while a worker
    /// checkpoints, no other takes the job.
    pub async fn extend_lease(&self, tx: &mut TenantTx) -> Result<(), ApiError> {
        set_lease(tx, self.kind, &self.id, time::now_micros() + self.lease.as_micros() as i64).await
    }
}

/// Why a job stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// Cancelled by a user.
    Cancelled,
    /// The process is shutting down: the job is given back and resumes elsewhere.
    Shutdown,
    /// A failure that another attempt will not fix.
    Failed(String),
    /// A failure worth another attempt later (a dependency unavailable).
    Retry(String),
    /// Nothing to do until then (a webhook delivery's next attempt): the job waits on the
    /// queue, across restarts, without counting an attempt.
    Later(Duration),
}

impl From<ApiError> for Stop {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Unavailable { .. } => Stop::Retry(error.to_string()),
            error => Stop::Failed(error.to_string()),
        }
    }
}

/// How a job ended, for its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    Cancelled,
    Failed(String),
}

impl Ending {
    /// Why the job did not succeed (`cancelled`, or its error); `None` when it did.
    pub fn failure(&self) -> Option<String> {
        match self {
            Self::Succeeded => None,
            Self::Cancelled => Some("cancelled".into()),
            Self::Failed(error) => Some(error.clone()),
        }
    }
}

/// One kind of job.
pub trait JobHandler: Send + Sync + 'static {
    /// The kind's name in the queue (`sync`, `analysis` ...).
    const KIND: &'static str;

    /// Does the work from the job's last checkpoint on. Between steps it returns
    /// [`Stop::Shutdown`] when `stop` is cancelled and [`Stop::Cancelled`] when a user asked;
    /// each checkpoint calls [`Job::extend_lease`].
    fn execute(&self, job: &Job, stop: &CancellationToken) -> impl Future<Output = Result<(), Stop>> + Send;

    /// Writes the end into the job's record (and its event), in `tx`, which has taken the job
    /// off the queue (so the kind may queue it again). A record already over is left as it is.
    fn record_end(
        &self,
        tx: &mut TenantTx,
        job: &Job,
        ending: &Ending,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// A claimed job is another worker's after this long without a checkpoint.
    pub lease: Duration,
    /// How often the queue is read.
    pub poll: Duration,
    /// Jobs a worker runs at once. A worker claims only what it can start: a claimed job
    /// waiting behind a long one would lose its lease to another process and run twice.
    pub concurrency: usize,
    /// Attempts before a job that keeps asking to be retried fails.
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            concurrency: 4,
            max_attempts: 5,
            retry_backoff: Duration::from_secs(5),
        }
    }
}

/// Queues a job of `kind`, due at once, in the transaction that creates its record.
pub async fn enqueue(tx: &mut TenantTx, kind: &str, job_id: &str) -> Result<(), ApiError> {
    enqueue_at(tx, kind, job_id, 0).await
}

/// Queues a job of `kind`, due at `due` (microseconds since the epoch).
pub async fn enqueue_at(tx: &mut TenantTx, kind: &str, job_id: &str, due: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO ciq_jobs (kind, job_id, organization_id, lease_until, attempts) VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(kind)
    .bind(job_id)
    .bind(tenant)
    .bind(due)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Queues a job due at `due` unless one of that kind and id is already queued (or running):
/// for jobs that gather work, like a person's daily digest. Whether it queued one.
pub async fn enqueue_unless_queued(tx: &mut TenantTx, kind: &str, job_id: &str, due: i64) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let done = sqlx::query(
        "INSERT INTO ciq_jobs (kind, job_id, organization_id, lease_until, attempts) VALUES ($1, $2, $3, $4, 0) \
         ON CONFLICT (kind, job_id) DO NOTHING",
    )
    .bind(kind)
    .bind(job_id)
    .bind(tenant)
    .bind(due)
    .execute(tx.connection())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Takes jobs off the queue without recording an end (their records are being deleted).
pub async fn remove(tx: &mut TenantTx, kind: &str, job_ids: &[String]) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    for job_id in job_ids {
        sqlx::query("DELETE FROM ciq_jobs WHERE kind = $1 AND job_id = $2 AND organization_id = $3")
            .bind(kind)
            .bind(job_id)
            .bind(&tenant)
            .execute(tx.connection())
            .await?;
    }
    Ok(())
}

/// Whether a job of `kind` is queued (waiting, running or waiting for a retry).
pub async fn is_queued(tx: &mut TenantTx, kind: &str, job_id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT 1 FROM ciq_jobs WHERE kind = $1 AND job_id = $2 AND organization_id = $3")
        .bind(kind)
        .bind(job_id)
        .bind(tenant)
        .fetch_optional(tx.connection())
        .await?;
    Ok(row.is_some())
}

async fn set_lease(tx: &mut TenantTx, kind: &str, job_id: &str, until: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("UPDATE ciq_jobs SET lease_until = $1 WHERE kind = $2 AND job_id = $3 AND organization_id = $4")
        .bind(until)
        .bind(kind)
        .bind(job_id)
        .bind(tenant)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Due jobs of `kind`, claimed until `now + lease`: (id, organization, attempts).
async fn claim(
    tx: &mut GlobalTx,
    kind: &str,
    now: i64,
    lease: i64,
    limit: i64,
) -> Result<Vec<(String, String, i64)>, ApiError> {
    let rows = sqlx::query(
        "UPDATE ciq_jobs SET lease_until = $1 WHERE kind = $2 AND job_id IN ( \
           SELECT job_id FROM ciq_jobs WHERE kind = $2 AND lease_until <= $3 ORDER BY lease_until, job_id LIMIT $4) \
         AND lease_until <= $3 RETURNING job_id, organization_id, attempts",
    )
    .bind(now + lease)
    .bind(kind)
    .bind(now)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))).collect()
}

/// A module worker running [`work`] for `handler` until the process stops.
pub fn worker<H: JobHandler>(
    name: &'static str,
    database: ModuleDatabase,
    handler: Arc<H>,
    settings: WorkerSettings,
    metrics: Arc<Metrics>,
) -> crate::module::Worker {
    crate::module::Worker {
        name,
        run: Box::new(move |stop| Box::pin(work(database, handler, settings, metrics, stop))),
    }
}

/// Runs due jobs of `handler`'s kind until `stop`, then waits for the running ones to stop;
/// counts them in `metrics` (`jobs`, `jobs_running`).
pub async fn work<H: JobHandler>(
    database: ModuleDatabase,
    handler: Arc<H>,
    settings: WorkerSettings,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(settings.poll);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {}
            // A slot came free: look for more work at once.
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
        let free = settings.concurrency.saturating_sub(running.len());
        if free == 0 {
            continue;
        }
        let claimed = async {
            let mut tx = database.global_write().await?;
            let lease = settings.lease.as_micros() as i64;
            let claimed = claim(&mut tx, H::KIND, time::now_micros(), lease, free as i64).await?;
            tx.commit().await?;
            Ok::<_, ApiError>(claimed)
        };
        let claimed = match claimed.await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(kind = H::KIND, %error, "cannot read the job queue");
                continue;
            }
        };
        for (id, organization, attempts) in claimed {
            let Ok(organization) = OrganizationId::from_stored(&organization) else { continue };
            let job = Job {
                id,
                organization,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                kind: H::KIND,
                lease: settings.lease,
            };
            let (database, handler, settings, metrics, stop) =
                (database.clone(), handler.clone(), settings.clone(), metrics.clone(), stop.clone());
            metrics.add_running_jobs(H::KIND, 1);
            running.spawn(async move {
                let outcome = run_one(&database, handler.as_ref(), &settings, job, &stop).await;
                metrics.add_running_jobs(H::KIND, -1);
                metrics.record_job(H::KIND, outcome);
            });
        }
    }
    while running.join_next().await.is_some() {}
}

/// Runs a job and records how it went; returns that, for the metrics.
async fn run_one<H: JobHandler>(
    database: &ModuleDatabase,
    handler: &H,
    settings: &WorkerSettings,
    job: Job,
    stop: &CancellationToken,
) -> &'static str {
    let span = tracing::info_span!("job", kind = H::KIND, job_id = %job.id, organization_id = %job.organization);
    let outcome = match tracing::Instrument::instrument(handler.execute(&job, stop), span).await {
        // Whatever broke while the process was stopping (its own servers going away) is the
        // stop itself: the job resumes on the next start.
        Err(Stop::Failed(error) | Stop::Retry(error)) if stop.is_cancelled() => {
            tracing::info!(kind = H::KIND, job_id = %job.id, %error, "job interrupted by shutdown; it will resume");
            Err(Stop::Shutdown)
        }
        other => other,
    };
    let (recorded, outcome) = match outcome {
        Ok(()) => (end(database, handler, &job, Ending::Succeeded).await, "succeeded"),
        Err(Stop::Cancelled) => (end(database, handler, &job, Ending::Cancelled).await, "cancelled"),
        Err(Stop::Failed(error)) => (end(database, handler, &job, Ending::Failed(error)).await, "failed"),
        Err(Stop::Retry(error)) if job.attempts + 1 < settings.max_attempts => {
            let backoff = settings.retry_backoff.saturating_mul(1 << job.attempts.min(16));
            tracing::warn!(kind = H::KIND, job_id = %job.id, %error, retry_in = ?backoff, "job will be retried");
            (retry_later(database, &job, time::now_micros() + backoff.as_micros() as i64).await, "retried")
        }
        Err(Stop::Retry(error)) => {
            let error = format!("{error} (gave up after {} attempts)", job.attempts + 1);
            (end(database, handler, &job, Ending::Failed(error)).await, "failed")
        }
        // Given back to be resumed at once by the next worker.
        Err(Stop::Shutdown) => (wait_until(database, &job, 0).await, "given_back"),
        Err(Stop::Later(wait)) => {
            (wait_until(database, &job, time::now_micros() + wait.as_micros() as i64).await, "waiting")
        }
    };
    if let Err(error) = recorded {
        tracing::warn!(kind = H::KIND, job_id = %job.id, %error, "cannot record how a job went; it will run again");
        return "unrecorded";
    }
    outcome
}

async fn end<H: JobHandler>(database: &ModuleDatabase, handler: &H, job: &Job, ending: Ending) -> Result<(), ApiError> {
    let mut tx = database.write(job.organization).await?;
    remove(&mut tx, job.kind, std::slice::from_ref(&job.id)).await?;
    handler.record_end(&mut tx, job, &ending).await?;
    tx.commit().await
}

async fn retry_later(database: &ModuleDatabase, job: &Job, at: i64) -> Result<(), ApiError> {
    let mut tx = database.write(job.organization).await?;
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE ciq_jobs SET lease_until = $1, attempts = $2 WHERE kind = $3 AND job_id = $4 AND organization_id = $5",
    )
    .bind(at)
    .bind(i64::from(job.attempts) + 1)
    .bind(job.kind)
    .bind(&job.id)
    .bind(tenant)
    .execute(tx.connection())
    .await?;
    tx.commit().await
}

/// Puts a job back on the queue, due at `at`, its attempts unchanged.
async fn wait_until(database: &ModuleDatabase, job: &Job, at: i64) -> Result<(), ApiError> {
    let mut tx = database.write(job.organization).await?;
    set_lease(&mut tx, job.kind, &job.id, at).await?;
    tx.commit().await
}
