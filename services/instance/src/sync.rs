//! Syncing an instance's GRC data into the analysis store, as a durable job.
//!
//! A run first takes a ceiling two seconds before ServiceNow's clock (the second being
//! written), then reads each table in keyset pages and hands every page to the analysis
//! service (one `IngestRecords` stream, one transaction there) before it checkpoints its
//! cursor and counts. No record is skipped or counted twice by shifting offsets.
//! - Incremental runs read the records changed from a few seconds before the last watermark
//!   (late commits) up to the ceiling, by (`sys_updated_on`, `sys_id`). Records changing
//!   meanwhile move past the ceiling: the next run takes them.
//! - Full runs read every record by sys_id, and each page reconciles its range of ids, so
//!   records deleted in ServiceNow are removed in the same pass.
//!
//! A run resumes from its checkpoint after a crash (its lease expires) and stops at a page
//! boundary when cancelled.

use std::collections::BTreeMap;
use std::sync::Arc;

use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::{OrganizationId, UserId};
use complianceiq_kit::jobs::{Ending, Job, JobHandler, Stop};
use complianceiq_kit::mesh::MeshChannel;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_client::AnalysisServiceClient;
use complianceiq_proto::complianceiq::analysis::v1::ingest_records_request::Item;
use complianceiq_proto::complianceiq::analysis::v1::{
    CompleteSync, GrcRecord, IngestHeader, IngestRecordsRequest, IngestRecordsResponse, MissingReferences, PresentIds,
    ReconcileTable, RecordBatch,
};
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{SyncCompleted, SyncFailed, SyncStarted};
use complianceiq_proto::complianceiq::instance::v1::{SyncMode, SyncRun, SyncState, TableSyncStats};
use complianceiq_servicenow::query::{Condition, Op, Query};
use complianceiq_servicenow::{Client, ClientSettings, PageRequest, datetime, tables};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::InstanceApi;
use crate::store;

/// Records per Table API page.
pub const PAGE_SIZE: u32 = 500;
/// Records per message of an ingest stream.
const BATCH: usize = 250;
/// How far before the last watermark an incremental sync starts again.
const OVERLAP_SECONDS: i64 = 5;
/// How far behind ServiceNow's clock the ceiling stays (the second being written).
const SETTLE_SECONDS: i64 = 2;

/// A table's progress in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProgress {
    /// Incremental runs: the last (`sys_updated_on`, `sys_id`) stored. Full runs: the
    /// ceiling and the last sys_id, once stored (the table's next watermark).
    pub cursor: Option<(String, String)>,
    /// Full runs: the last sys_id stored (their pages go in sys_id order).
    #[serde(default)]
    pub last_sys_id: Option<String>,
    /// Every page read.
    pub done: bool,
    /// Ids reconciled (full runs).
    pub reconciled: bool,
    pub fetched: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
}

impl TableProgress {
    /// Adds a page: `fetched` records read, and what the analysis store made of them.
    fn count(&mut self, fetched: usize, stored: &IngestRecordsResponse) {
        self.fetched += fetched as i64;
        for stats in &stored.tables {
            self.created += stats.created;
            self.updated += stats.updated;
            self.unchanged += stats.unchanged;
            self.deleted += stats.deleted;
        }
    }
}

/// A run's checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The newest `sys_updated_on` this run reads.
    pub ceiling: Option<String>,
    /// Per table, in sync order.
    pub tables: BTreeMap<String, TableProgress>,
}

/// A run as stored.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub id: String,
    pub instance_id: String,
    pub mode: String,
    pub state: String,
    pub tables: Vec<String>,
    pub progress: Progress,
    pub triggered_by: String,
    pub error: String,
    pub cancel_requested: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl RunRecord {
    /// Whether the run has ended.
    pub fn is_over(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }

    /// The contract's view.
    pub fn to_proto(&self, organization: &str) -> SyncRun {
        let total = self.tables.len().max(1) as f64;
        let finished = self
            .tables
            .iter()
            .filter(|table| {
                self.progress.tables.get(*table).is_some_and(|p| p.done && (self.mode != "full" || p.reconciled))
            })
            .count() as f64;
        let progress_percent = if self.state == "succeeded" { 100 } else { (finished * 100.0 / total) as i32 };
        SyncRun {
            id: self.id.clone(),
            organization_id: organization.to_string(),
            instance_id: self.instance_id.clone(),
            mode: if self.mode == "full" { SyncMode::Full } else { SyncMode::Incremental } as i32,
            state: match self.state.as_str() {
                "pending" => SyncState::Pending,
                "running" => SyncState::Running,
                "succeeded" => SyncState::Succeeded,
                "failed" => SyncState::Failed,
                "cancelled" => SyncState::Cancelled,
                _ => SyncState::Unspecified,
            } as i32,
            progress_percent,
            tables: self
                .tables
                .iter()
                .map(|table| {
                    let progress = self.progress.tables.get(table).cloned().unwrap_or_default();
                    TableSyncStats {
                        table: table.clone(),
                        fetched: progress.fetched,
                        created: progress.created,
                        updated: progress.updated,
                        deleted: progress.deleted,
                        watermark_time: progress
                            .cursor
                            .as_ref()
                            .and_then(|(updated, _)| datetime::parse(updated))
                            .map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
                    }
                })
                .collect(),
            triggered_by: self.triggered_by.clone(),
            error: self.error.clone(),
            create_time: Some(time::to_timestamp(self.created_at)),
            start_time: time::to_optional_timestamp(self.started_at),
            end_time: time::to_optional_timestamp(self.ended_at),
            data_as_of_time: self
                .progress
                .ceiling
                .as_deref()
                .and_then(datetime::parse)
                .map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
        }
    }
}

/// How sync workers run.
#[derive(Clone)]
pub struct SyncSettings {
    /// The ServiceNow client's pacing and retries.
    pub client: ClientSettings,
    /// Records per page.
    pub page_size: u32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self { client: ClientSettings::default(), page_size: PAGE_SIZE }
    }
}

/// Sync runs as jobs of the kit's queue.
pub struct SyncJobs {
    pub api: Arc<InstanceApi>,
    pub analysis: AnalysisServiceClient<MeshChannel>,
    pub settings: SyncSettings,
}

impl SyncJobs {
    fn runner(&self, job: &Job) -> Runner {
        Runner {
            api: self.api.clone(),
            analysis: self.analysis.clone(),
            settings: self.settings.clone(),
            organization: job.organization,
            job: job.clone(),
            instance: std::sync::OnceLock::new(),
        }
    }
}

impl JobHandler for SyncJobs {
    const KIND: &'static str = "sync";

    async fn execute(&self, job: &Job, stop: &CancellationToken) -> Result<(), Stop> {
        self.runner(job).execute(&job.id, stop).await
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        self.runner(job).record_end(tx, &job.id, ending).await
    }
}

struct Runner {
    api: Arc<InstanceApi>,
    analysis: AnalysisServiceClient<MeshChannel>,
    settings: SyncSettings,
    organization: OrganizationId,
    job: Job,
    /// The instance's (URL, name), set once the run has read it.
    instance: std::sync::OnceLock<(String, String)>,
}

impl Runner {
    fn database(&self) -> &ModuleDatabase {
        &self.api.database
    }

    fn context(&self, run: &RunRecord) -> RequestContext {
        RequestContext {
            request_id: run.id.clone(),
            actor_user_id: UserId::from_stored(&run.triggered_by).ok(),
            traceparent: None,
        }
    }

    async fn load(&self, run_id: &str) -> Result<RunRecord, ApiError> {
        let mut tx = self.database().read(self.organization).await?;
        let run = store::run_by_id(&mut tx, run_id).await?.ok_or_else(|| ApiError::not_found("SyncRun", run_id))?;
        tx.commit().await?;
        Ok(run)
    }

    async fn execute(&self, run_id: &str, stop: &CancellationToken) -> Result<(), Stop> {
        let mut run = self.load(run_id).await?;
        if run.is_over() {
            return Ok(());
        }
        if run.cancel_requested {
            return Err(Stop::Cancelled);
        }
        let mut tx = self.database().read(self.organization).await?;
        let instance = store::by_id(&mut tx, &run.instance_id)
            .await?
            .ok_or_else(|| Stop::Failed("the instance was disconnected".into()))?;
        let watermarks = store::watermarks(&mut tx, &run.instance_id).await?;
        tx.commit().await?;
        let _ = self.instance.set((instance.url.clone(), instance.name.clone()));
        let credentials = self.api.open(&self.organization.to_string(), &instance)?;
        let client = Client::new(&instance.url, credentials, self.settings.client.clone())
            .map_err(|e| Stop::Failed(e.to_string()))?;

        if run.state == "pending" {
            run.state = "running".into();
            run.started_at = Some(time::now_micros());
            let mut tx = self.database().write(self.organization).await?;
            store::save_run(&mut tx, &run).await?;
            let started = SyncStarted { sync_run: Some(run.to_proto(&self.organization.to_string())) };
            tx.emit(Payload::SyncStarted(started), &self.context(&run)).await?;
            tx.commit().await?;
            tracing::info!(sync_run_id = %run.id, instance_id = %run.instance_id, mode = %run.mode, "sync started");
        }
        if run.progress.ceiling.is_none() {
            // ServiceNow's own clock decides what "now" is; ours may differ.
            let probe = client
                .page(tables::USERS.name, &PageRequest { fields: "sys_id".into(), limit: 1, ..Default::default() })
                .await
                .map_err(|e| Stop::Failed(e.to_string()))?;
            let now = probe.server_time.ok_or_else(|| Stop::Failed("ServiceNow sent no Date header".into()))?;
            run.progress.ceiling = Some(datetime::format(now - SETTLE_SECONDS));
            self.checkpoint(&run, None).await?;
        }
        let ceiling = run.progress.ceiling.clone().unwrap_or_default();

        for table_name in run.tables.clone() {
            let Some(table) = tables::by_name(&table_name) else { continue };
            let mut progress = run.progress.tables.get(&table_name).cloned().unwrap_or_default();
            // A full run's table is done once read and reconciled in one pass; a checkpoint
            // of an older run, read but not yet reconciled, reads the table again.
            if progress.done && (run.mode != "full" || progress.reconciled) {
                continue;
            }
            let walk = if run.mode == "full" {
                Walk::All { ceiling: &ceiling }
            } else {
                if progress.cursor.is_none() {
                    progress.cursor = watermarks.get(&table_name).map(|(updated, _)| {
                        let earlier = datetime::parse(updated).map(|s| datetime::format(s - OVERLAP_SECONDS));
                        (earlier.unwrap_or_else(|| updated.clone()), String::new())
                    });
                }
                Walk::Changes { ceiling: &ceiling }
            };
            self.read_pages(&mut run, &client, table, walk, stop, &mut progress).await?;
            if table.name == tables::USERS.name {
                self.fetch_missing_users(&run, &client, table, stop, &mut progress).await?;
            }
            progress.done = true;
            progress.reconciled = run.mode == "full";
            run.progress.tables.insert(table_name.clone(), progress.clone());
            self.checkpoint(&run, Some(&table_name)).await?;
        }
        // A last stream after everything the run stored: it marks the point in the analysis
        // store that the run's analyses read as of, and makes it the instance's current data
        // before the run is reported SUCCEEDED (`sync.completed` says the same, later).
        let complete =
            IngestRecordsRequest { item: Some(Item::Complete(CompleteSync { data_as_of: ceiling.clone() })) };
        self.ingest(&run, vec![header(&run, self.organization), complete]).await?;
        Ok(())
    }

    /// Users referenced by stored records that the store lacks (an owner set on a control
    /// since the last sync, say, whose own record has not changed): fetched by id.
    async fn fetch_missing_users(
        &self,
        run: &RunRecord,
        client: &Client,
        table: tables::Table,
        stop: &CancellationToken,
        progress: &mut TableProgress,
    ) -> Result<(), Stop> {
        let asked = vec![
            header(run, self.organization),
            IngestRecordsRequest { item: Some(Item::Missing(MissingReferences { target_table: table.name.into() })) },
        ];
        let missing = self.ingest(run, asked).await?.missing_sys_ids;
        for chunk in missing.chunks(100) {
            self.between_pages(&run.id, stop).await?;
            let query =
                Query { any_of: vec![vec![Condition::new("sys_id", Op::In, chunk.join(","))]], order_by: vec![] };
            let page = self.page(client, table, query, chunk.len() as u32).await?;
            let count = page.len();
            let records = page.iter().map(|fields| grc_record(table, fields)).collect();
            progress.count(count, &self.ingest(run, records_stream(run, self.organization, records)).await?);
        }
        Ok(())
    }

    /// Reads `table` page by page as `walk` says, hands each page to the analysis store and
    /// checkpoints after it.
    async fn read_pages(
        &self,
        run: &mut RunRecord,
        client: &Client,
        table: tables::Table,
        walk: Walk<'_>,
        stop: &CancellationToken,
        progress: &mut TableProgress,
    ) -> Result<(), Stop> {
        loop {
            self.between_pages(&run.id, stop).await?;
            let page = self.page(client, table, walk.query(progress), self.settings.page_size).await?;
            let last_page = page.len() < self.settings.page_size as usize;
            let reconciliation = walk.reconciliation(table, &page, progress, last_page);
            if page.is_empty() && reconciliation.is_empty() {
                return Ok(());
            }
            let records = page.iter().map(|fields| grc_record(table, fields)).collect();
            let mut messages = records_stream(run, self.organization, records);
            messages.extend(reconciliation);
            let stored = self.ingest(run, messages).await?;
            progress.count(page.len(), &stored);
            if let Some(last) = page.last() {
                walk.advance(progress, last);
            }
            run.progress.tables.insert(table.name.to_string(), progress.clone());
            self.checkpoint(run, None).await?;
            if last_page {
                return Ok(());
            }
        }
    }

    /// One Table API page of `table`'s synced fields.
    async fn page(
        &self,
        client: &Client,
        table: tables::Table,
        query: Query,
        limit: u32,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, Stop> {
        let request = PageRequest { query, fields: table.field_list(), limit, ..Default::default() };
        let page = client.page(table.name, &request).await.map_err(|e| Stop::Failed(format!("{}: {e}", table.name)))?;
        Ok(page.records)
    }

    async fn ingest(
        &self,
        run: &RunRecord,
        mut messages: Vec<IngestRecordsRequest>,
    ) -> Result<IngestRecordsResponse, Stop> {
        // The store links results to records through the instance's URL, and dashboards
        // name it.
        if let Some(Item::Header(header)) = messages.first_mut().and_then(|message| message.item.as_mut())
            && let Some((url, name)) = self.instance.get()
        {
            header.instance_url = url.clone();
            header.instance_name = name.clone();
        }
        let mut analysis = self.analysis.clone();
        analysis.ingest_records(tokio_stream::iter(messages)).await.map(tonic::Response::into_inner).map_err(|status| {
            Stop::Failed(format!("the analysis store refused the records of run {}: {}", run.id, status.message()))
        })
    }

    /// Between pages: stop for shutdown, or for a cancellation asked meanwhile.
    async fn between_pages(&self, run_id: &str, stop: &CancellationToken) -> Result<(), Stop> {
        if stop.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        let mut tx = self.database().read(self.organization).await?;
        let cancelled = store::cancel_requested(&mut tx, run_id).await?;
        tx.commit().await?;
        if cancelled { Err(Stop::Cancelled) } else { Ok(()) }
    }

    /// Saves the progress and extends the lease; with `table`, also its watermark.
    async fn checkpoint(&self, run: &RunRecord, finished_table: Option<&str>) -> Result<(), ApiError> {
        let mut tx = self.database().write(self.organization).await?;
        store::save_run(&mut tx, run).await?;
        if let Some(table) = finished_table
            && let Some((updated, id)) = run.progress.tables.get(table).and_then(|progress| progress.cursor.clone())
            && !id.is_empty()
        {
            store::save_watermark(&mut tx, &run.instance_id, table, &updated, &id).await?;
        }
        self.job.extend_lease(&mut tx).await?;
        tx.commit().await
    }

    /// Records the end of a run, with its event.
    async fn record_end(&self, tx: &mut TenantTx, run_id: &str, ending: &Ending) -> Result<(), ApiError> {
        let mut run = store::run_by_id(tx, run_id).await?.ok_or_else(|| ApiError::not_found("SyncRun", run_id))?;
        if run.is_over() {
            return Ok(());
        }
        let (state, error) = match ending {
            Ending::Succeeded => ("succeeded", String::new()),
            Ending::Cancelled => ("cancelled", String::new()),
            Ending::Failed(error) => ("failed", error.clone()),
        };
        run.state = state.into();
        run.error = error;
        run.ended_at = Some(time::now_micros());
        store::save_run(tx, &run).await?;
        let proto = run.to_proto(&self.organization.to_string());
        match ending {
            Ending::Succeeded => {
                store::set_last_sync(tx, &run.instance_id, time::now_micros()).await?;
                tx.emit(Payload::SyncCompleted(SyncCompleted { sync_run: Some(proto) }), &self.context(&run)).await?;
            }
            Ending::Failed(_) => {
                tx.emit(Payload::SyncFailed(SyncFailed { sync_run: Some(proto) }), &self.context(&run)).await?;
            }
            Ending::Cancelled => {}
        }
        tracing::info!(sync_run_id = %run.id, state = %run.state, error = %run.error, "sync ended");
        Ok(())
    }
}

/// How a run reads a table: which page follows which, and what a page's stream carries
/// besides its records.
#[derive(Clone, Copy)]
enum Walk<'a> {
    /// Incremental runs: the records changed after the cursor, up to the ceiling, in
    /// (`sys_updated_on`, `sys_id`) order.
    Changes { ceiling: &'a str },
    /// Full runs: every record the table holds as its page is read, in sys_id order. Each
    /// page also reconciles the range of ids it covers (the analysis store deletes what it
    /// holds there that the page lacks), so deletions cost no second pass. Arriving in key
    /// order, the records fill the store's indexes in order: a first sync of a large table
    /// writes each index page once, not once per record. A record changed after the ceiling
    /// is read as it is then; the next incremental run reads it again, unchanged.
    All { ceiling: &'a str },
}

impl Walk<'_> {
    /// The page after the table's progress.
    fn query(self, progress: &TableProgress) -> Query {
        match self {
            Walk::Changes { ceiling } => {
                let cursor = progress.cursor.as_ref().map(|(updated, id)| (updated.as_str(), id.as_str()));
                Query::changed_between(cursor, ceiling)
            }
            Walk::All { .. } => Query::ids_after(progress.last_sys_id.as_deref().filter(|id| !id.is_empty())),
        }
    }

    /// What follows a page's records in its stream: for a full run, the ids the page holds
    /// and the range they reconcile, from the previous page's last id through this page's
    /// last (to the end of the table on the last page, even an empty one).
    fn reconciliation(
        self,
        table: tables::Table,
        page: &[serde_json::Map<String, serde_json::Value>],
        progress: &TableProgress,
        last_page: bool,
    ) -> Vec<IngestRecordsRequest> {
        let Walk::All { ceiling } = self else { return Vec::new() };
        let ids: Vec<String> = page.iter().map(|fields| text(&fields["sys_id"])).collect();
        let through = if last_page { String::new() } else { ids.last().cloned().unwrap_or_default() };
        let mut messages: Vec<IngestRecordsRequest> = ids
            .chunks(1000)
            .map(|chunk| IngestRecordsRequest {
                item: Some(Item::Present(PresentIds { table: table.name.into(), sys_ids: chunk.to_vec() })),
            })
            .collect();
        messages.push(IngestRecordsRequest {
            item: Some(Item::Reconcile(ReconcileTable {
                table: table.name.into(),
                as_of: ceiling.to_string(),
                after_sys_id: progress.last_sys_id.clone().unwrap_or_default(),
                through_sys_id: through,
            })),
        });
        messages
    }

    /// Moves the progress past a page whose last record is `last`.
    fn advance(self, progress: &mut TableProgress, last: &serde_json::Map<String, serde_json::Value>) {
        let id = text(&last["sys_id"]);
        match self {
            Walk::Changes { .. } => progress.cursor = Some((text(&last["sys_updated_on"]), id)),
            Walk::All { ceiling } => {
                // What the next incremental run starts from: everything up to the ceiling is read.
                progress.cursor = Some((ceiling.to_string(), id.clone()));
                progress.last_sys_id = Some(id);
            }
        }
    }
}

fn text(value: &serde_json::Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// A record as the Table API gave it, for the analysis store.
fn grc_record(table: tables::Table, fields: &serde_json::Map<String, serde_json::Value>) -> GrcRecord {
    GrcRecord {
        table: table.name.into(),
        sys_id: text(&fields["sys_id"]),
        updated_on: text(&fields["sys_updated_on"]),
        fields: fields.iter().map(|(key, value)| (key.clone(), text(value))).collect(),
    }
}

fn header(run: &RunRecord, organization: OrganizationId) -> IngestRecordsRequest {
    IngestRecordsRequest {
        item: Some(Item::Header(IngestHeader {
            organization_id: organization.to_string(),
            instance_id: run.instance_id.clone(),
            sync_run_id: run.id.clone(),
            // Filled in by `Runner::ingest`, which knows the instance.
            instance_url: String::new(),
            instance_name: String::new(),
        })),
    }
}

fn records_stream(run: &RunRecord, organization: OrganizationId, records: Vec<GrcRecord>) -> Vec<IngestRecordsRequest> {
    let mut messages = vec![header(run, organization)];
    for chunk in records.chunks(BATCH) {
        messages.push(IngestRecordsRequest { item: Some(Item::Records(RecordBatch { records: chunk.to_vec() })) });
    }
    messages
}
