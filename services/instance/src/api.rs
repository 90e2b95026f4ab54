//! The instance service's gRPC surface: connect, list, read, change and disconnect
//! ServiceNow instances of the caller's organization, check their connection, and report
//! their health. Sync RPCs are not built yet (they answer UNIMPLEMENTED).

use std::sync::Arc;

use complianceiq_kit::auth::{Identity, caller};
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::secrets::SecretBox;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{InstanceCreated, InstanceDeleted, InstanceUpdated};
use complianceiq_proto::complianceiq::instance::v1::instance_service_server::InstanceService;
use complianceiq_proto::complianceiq::instance::v1::*;
use complianceiq_servicenow::{ClientSettings, Credentials as SnCredentials, NetworkAccess};
use tonic::{Request, Response, Status};

use crate::connect;
use crate::domain::{self, InstanceRecord};
use crate::store::{self, Allowance, HealthCheckRecord};

/// The instance service.
pub struct InstanceApi {
    pub(crate) database: ModuleDatabase,
    pub(crate) secrets: Arc<SecretBox>,
    /// Which networks instances may be on.
    pub(crate) network: NetworkAccess,
    pub(crate) check_settings: ClientSettings,
    /// Between scheduled health checks.
    pub(crate) health_interval: std::time::Duration,
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("Instance", id)
}

fn instance_id(value: &str) -> Result<String, ApiError> {
    complianceiq_kit::ids::parse_uuid("instance_id", value).map(|id| id.to_string())
}

fn check_etag(given: &str, current: &InstanceRecord) -> Result<(), ApiError> {
    if !given.is_empty() && given != current.etag() {
        return Err(ApiError::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!(
                "the instance changed since it was read (etag {given}, now {}); read it again",
                current.etag()
            ),
        });
    }
    Ok(())
}

/// What credentials are bound to: sealed credentials moved to another row, or left behind
/// when the instance's URL changes, do not open, so they can only ever reach the host they
/// were given for.
pub(crate) fn sealing_context(organization: &str, instance: &str, url: &str) -> String {
    format!("instance-credentials:{organization}:{instance}:{url}")
}

/// A refused or failed write to ServiceNow, as what a person must do about it.
fn servicenow_refused(error: complianceiq_servicenow::SnError) -> ApiError {
    use complianceiq_servicenow::SnError;
    match error {
        SnError::Unauthorized(_) => ApiError::FailedPrecondition {
            reason: "SERVICENOW_CREDENTIALS_REFUSED",
            message: format!(
                "{error}; the instance's stored credentials no longer work (a changed password?): update them"
            ),
        },
        SnError::Forbidden { .. } => ApiError::FailedPrecondition {
            reason: "SERVICENOW_WRITE_DENIED",
            message: format!("{error}; give the integration user write access to sp_widget (the sp_admin role)"),
        },
        error if error.is_transient() => ApiError::Unavailable {
            reason: "SERVICENOW_UNAVAILABLE",
            message: format!("{error}; try again later"),
            retry_after: Some(std::time::Duration::from_secs(30)),
        },
        error => ApiError::FailedPrecondition { reason: "SERVICENOW_ERROR", message: error.to_string() },
    }
}

impl InstanceApi {
    fn seal(&self, organization: &str, record: &InstanceRecord, credentials: &SnCredentials) -> String {
        let context = sealing_context(organization, &record.id, &record.url);
        self.secrets.seal(&domain::credentials_json(credentials), &context)
    }

    pub(crate) fn open(&self, organization: &str, record: &InstanceRecord) -> Result<SnCredentials, ApiError> {
        let sealed = record.credentials_sealed.as_deref().ok_or_else(|| ApiError::FailedPrecondition {
            reason: "NO_CREDENTIALS",
            message: "the instance has no credentials; set them with an update".into(),
        })?;
        let bytes =
            self.secrets.open(sealed, &sealing_context(organization, &record.id, &record.url)).map_err(|error| {
                ApiError::internal("stored credentials cannot be decrypted (is the key that sealed them configured?)")
                    .log_cause(&error)
            })?;
        domain::credentials_from_json(&bytes)
    }

    async fn create(
        &self,
        identity: &Identity,
        context: &RequestContext,
        request: CreateInstanceRequest,
    ) -> Result<Instance, ApiError> {
        let tenant = identity.tenant()?;
        let input =
            request.instance.ok_or_else(|| ApiError::invalid_field("instance", "REQUIRED", "instance is required"))?;
        let now = time::now_micros();
        let domain::NewInstance { mut record, credentials } = domain::new_instance(&input, now)?;
        connect::check_address(&record.url, self.network).await?;
        let organization = tenant.to_string();
        if request.validate_connection {
            let outcome = connect::check(
                &record.url,
                credentials.clone(),
                &record.effective_tables(),
                self.check_settings.clone(),
            )
            .await;
            if !outcome.report.success {
                return Err(ApiError::FailedPrecondition {
                    reason: "CONNECTION_FAILED",
                    message: format!("the connection check failed: {}", outcome.report.error),
                });
            }
            record.health_status = domain::health_str(outcome.status).into();
        }
        record.credentials_sealed = Some(self.seal(&organization, &record, &credentials));

        let mut tx = self.database.write(tenant).await?;
        match store::take_allowance(&mut tx).await? {
            Allowance::Taken => {}
            Allowance::Exhausted(plan, limit) => {
                return Err(ApiError::FailedPrecondition {
                    reason: "PLAN_LIMIT_REACHED",
                    message: format!("the {plan} plan allows {limit} instance(s); disconnect one or upgrade the plan"),
                });
            }
            Allowance::Unknown => {
                return Err(ApiError::Unavailable {
                    reason: "PLAN_NOT_KNOWN_YET",
                    message: "the organization's plan has not reached the instance service yet; try again".into(),
                    retry_after: Some(std::time::Duration::from_secs(1)),
                });
            }
        }
        if !store::insert(&mut tx, &record).await? {
            return Err(ApiError::AlreadyExists {
                resource_type: "Instance",
                name: record.name.clone(),
                message: format!("the organization already has an instance named {:?}", record.name),
            });
        }
        let first_check = self.health_interval.min(std::time::Duration::from_secs(60));
        store::schedule(&mut tx, &record.id, time::after(now, first_check)).await?;
        // The first sync right away, so the data is there; then every interval.
        let first_sync = (record.sync_interval_minutes > 0).then_some(now);
        store::schedule_sync(&mut tx, &record.id, first_sync).await?;
        let instance = record.to_proto(&organization);
        tx.emit(Payload::InstanceCreated(InstanceCreated { instance: Some(instance.clone()) }), context).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %tenant, instance_id = %record.id, url = %record.url, "instance connected");
        Ok(instance)
    }

    async fn load(&self, tx: &mut TenantTx, id: &str) -> Result<InstanceRecord, ApiError> {
        store::by_id(tx, id).await?.ok_or_else(|| not_found(id))
    }

    async fn get(&self, identity: &Identity, request: GetInstanceRequest) -> Result<Instance, ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        let mut tx = self.database.read(tenant).await?;
        let record = self.load(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(record.to_proto(&tenant.to_string()))
    }

    async fn list(
        &self,
        identity: &Identity,
        request: ListInstancesRequest,
    ) -> Result<ListInstancesResponse, ApiError> {
        let tenant = identity.tenant()?;
        let state = match request.state() {
            InstanceState::Unspecified => None,
            InstanceState::Active => Some("active"),
            InstanceState::Disabled => Some("disabled"),
            InstanceState::Error => Some("error"),
        };
        let page = PageRequest::parse(request.page_size, &request.page_token, state.unwrap_or(""))?;
        let mut tx = self.database.read(tenant).await?;
        let (mut records, total) = store::list_page(&mut tx, state, &page).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut records, |r| vec![r.created_at.to_string(), r.id.clone()]);
        let organization = tenant.to_string();
        Ok(ListInstancesResponse {
            instances: records.iter().map(|record| record.to_proto(&organization)).collect(),
            next_page_token,
            total_size: total as i32,
        })
    }

    async fn update(
        &self,
        identity: &Identity,
        context: &RequestContext,
        request: UpdateInstanceRequest,
    ) -> Result<Instance, ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        let input =
            request.instance.ok_or_else(|| ApiError::invalid_field("instance", "REQUIRED", "instance is required"))?;
        let organization = tenant.to_string();
        if !input.url.is_empty() {
            // Before the transaction: resolving a name can take a while.
            connect::check_address(input.url.trim().trim_end_matches('/'), self.network).await?;
        }
        let mut tx = self.database.write(tenant).await?;
        let current = self.load(&mut tx, &id).await?;
        check_etag(&input.etag, &current)?;
        let update = domain::apply_update(&current, &input, request.update_mask.as_ref(), time::now_micros())?;
        if update.changed.is_empty() {
            tx.commit().await?;
            return Ok(current.to_proto(&organization));
        }
        let mut next = update.next;
        if let Some(credentials) = &update.credentials {
            next.credentials_sealed = Some(self.seal(&organization, &next, credentials));
        }
        if !store::update(&mut tx, &next, current.revision).await? {
            return Err(ApiError::Aborted {
                reason: "CONCURRENT_MODIFICATION",
                message: "the instance was changed by another request at the same time; retry".into(),
            });
        }
        if update.changed.iter().any(|field| matches!(*field, "sync_interval_minutes" | "state")) {
            let interval = next.sync_interval_minutes;
            let at = (interval > 0 && next.state != "disabled")
                .then(|| time::after(time::now_micros(), std::time::Duration::from_secs(interval as u64 * 60)));
            store::schedule_sync(&mut tx, &id, at).await?;
        }
        let instance = next.to_proto(&organization);
        let changed_fields = update.changed.iter().map(|field| field.to_string()).collect();
        tx.emit(
            Payload::InstanceUpdated(InstanceUpdated { instance: Some(instance.clone()), changed_fields }),
            context,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(organization_id = %tenant, instance_id = %id, changed = ?update.changed, "instance updated");
        Ok(instance)
    }

    async fn delete(
        &self,
        identity: &Identity,
        context: &RequestContext,
        request: DeleteInstanceRequest,
    ) -> Result<(), ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        let mut tx = self.database.write(tenant).await?;
        let current = self.load(&mut tx, &id).await?;
        check_etag(&request.etag, &current)?;
        if !store::delete(&mut tx, &id).await? {
            return Err(not_found(&id));
        }
        store::release_allowance(&mut tx).await?;
        store::unschedule(&mut tx, &id).await?;
        tx.emit(Payload::InstanceDeleted(InstanceDeleted { instance_id: id.clone() }), context).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %tenant, instance_id = %id, "instance disconnected");
        Ok(())
    }

    /// Checks the stored connection, records the check and the instance's health.
    pub(crate) async fn run_check(
        &self,
        organization: complianceiq_kit::OrganizationId,
        id: &str,
    ) -> Result<TestConnectionResponse, ApiError> {
        let mut tx = self.database.read(organization).await?;
        let record = self.load(&mut tx, id).await?;
        tx.commit().await?;
        let credentials = self.open(&organization.to_string(), &record)?;
        let outcome =
            connect::check(&record.url, credentials, &record.effective_tables(), self.check_settings.clone()).await;
        let now = time::now_micros();
        let check = HealthCheckRecord {
            id: complianceiq_kit::uuid::Uuid::now_v7().to_string(),
            instance_id: id.to_string(),
            status: domain::health_str(outcome.status).into(),
            latency_ms: i64::from(outcome.report.latency_ms),
            error: outcome.report.error.clone(),
            report: serde_json::to_string(&outcome.report.tables.iter().map(|t| {
                serde_json::json!({"table": t.table, "readable": t.readable, "record_count": t.record_count, "error": t.error})
            }).collect::<Vec<_>>()).unwrap_or_default(),
            checked_at: now,
        };
        let mut tx = self.database.write(organization).await?;
        store::insert_check(&mut tx, &check).await?;
        // The instance may have changed meanwhile; only its health is written here.
        if let Some(mut current) = store::by_id(&mut tx, id).await?
            && current.health_status != check.status
        {
            let expected = current.revision;
            current.health_status = check.status.clone();
            store::update(&mut tx, &current, expected).await?;
        }
        tx.commit().await?;
        tracing::info!(organization_id = %organization, instance_id = %id, status = %check.status, latency_ms = check.latency_ms, "instance checked");
        Ok(outcome.report)
    }

    /// The scheduler's check: skipped while the instance is disabled.
    pub(crate) async fn scheduled_check(
        &self,
        organization: complianceiq_kit::OrganizationId,
        id: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.database.read(organization).await?;
        let record = self.load(&mut tx, id).await?;
        tx.commit().await?;
        if record.state != "disabled" {
            self.run_check(organization, id).await?;
        }
        Ok(())
    }

    async fn test_connection(
        &self,
        identity: &Identity,
        request: TestConnectionRequest,
    ) -> Result<TestConnectionResponse, ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        self.run_check(tenant, &id).await
    }

    /// Writes (or deletes) a widget's sp_widget record with the instance's own credentials.
    async fn write_widget_record(
        &self,
        request: WriteWidgetRecordRequest,
    ) -> Result<WriteWidgetRecordResponse, ApiError> {
        let mut violations = complianceiq_kit::error::FieldViolations::default();
        let organization = violations.uuid("organization_id", &request.organization_id);
        let id = violations.uuid("instance_id", &request.instance_id);
        let key = request.widget_key.trim();
        if key.is_empty() || key.len() > 100 || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
            violations.add("widget_key", "INVALID", "widget_key must be 1 to 100 letters, digits, - or _");
        }
        if !request.delete && request.fields.is_empty() {
            violations.required("fields");
        }
        violations.check()?;
        let organization = complianceiq_kit::OrganizationId::from_stored(&organization)?;
        let mut tx = self.database.read(organization).await?;
        let record = self.load(&mut tx, &id).await?;
        tx.commit().await?;
        let credentials = self.open(&organization.to_string(), &record)?;
        let client = complianceiq_servicenow::Client::new(&record.url, credentials, self.check_settings.clone())
            .map_err(servicenow_refused)?;
        const TABLE: &str = "sp_widget";
        if request.delete {
            let deleted = client.delete_by_key(TABLE, "id", key).await.map_err(servicenow_refused)?;
            let write = if deleted.is_some() { WidgetRecordWrite::Deleted } else { WidgetRecordWrite::Absent };
            return Ok(WriteWidgetRecordResponse { sys_id: deleted.unwrap_or_default(), write: write as i32 });
        }
        let fields = request.fields.into_iter().map(|(name, value)| (name, serde_json::Value::String(value))).collect();
        let upserted = client.upsert(TABLE, "id", key, &fields).await.map_err(servicenow_refused)?;
        let write = match upserted.written {
            complianceiq_servicenow::Written::Created => WidgetRecordWrite::Created,
            complianceiq_servicenow::Written::Updated => WidgetRecordWrite::Updated,
            complianceiq_servicenow::Written::Unchanged => WidgetRecordWrite::Unchanged,
        };
        tracing::info!(instance_id = %id, widget_key = key, write = write.as_str_name(), "widget record written");
        Ok(WriteWidgetRecordResponse { sys_id: upserted.sys_id, write: write as i32 })
    }

    async fn health(&self, identity: &Identity, request: GetInstanceHealthRequest) -> Result<InstanceHealth, ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        if !(0..=500).contains(&request.history_size) {
            return Err(ApiError::invalid_field("history_size", "OUT_OF_RANGE", "history_size must be 0 to 500"));
        }
        let size = if request.history_size == 0 { 20 } else { i64::from(request.history_size) };
        let mut tx = self.database.read(tenant).await?;
        let record = self.load(&mut tx, &id).await?;
        let checks = store::recent_checks(&mut tx, &id, size).await?;
        let since = time::now_micros() - 24 * 3600 * 1_000_000;
        let (healthy, total) = store::availability(&mut tx, &id, since).await?;
        tx.commit().await?;
        Ok(InstanceHealth {
            instance_id: id,
            status: domain::health_from(&record.health_status) as i32,
            availability_percent: if total == 0 { 0.0 } else { healthy as f64 * 100.0 / total as f64 },
            last_check_time: checks.first().map(|check| time::to_timestamp(check.checked_at)),
            checks: checks
                .iter()
                .map(|check| HealthCheck {
                    status: domain::health_from(&check.status) as i32,
                    latency_ms: check.latency_ms as i32,
                    error: check.error.clone(),
                    check_time: Some(time::to_timestamp(check.checked_at)),
                })
                .collect(),
        })
    }
}

impl InstanceApi {
    async fn start_sync(&self, identity: &Identity, request: SyncInstanceRequest) -> Result<SyncRun, ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        let mut tx = self.database.write(tenant).await?;
        let instance = self.load(&mut tx, &id).await?;
        if instance.state == "disabled" {
            return Err(ApiError::FailedPrecondition {
                reason: "INSTANCE_DISABLED",
                message: "the instance is disabled; enable it (state ACTIVE) to sync".into(),
            });
        }
        if let Some(active) = store::active_run(&mut tx, &id).await? {
            return Err(ApiError::FailedPrecondition {
                reason: "SYNC_IN_PROGRESS",
                message: format!("sync run {} of this instance has not ended; wait for it or cancel it", active.id),
            });
        }
        let allowed = instance.effective_tables();
        let mut violations = complianceiq_kit::error::FieldViolations::default();
        for table in &request.tables {
            if !allowed.contains(&table.as_str()) {
                violations.add("tables", "NOT_CONFIGURED", format!("{table:?} is not among the instance's tables"));
            }
        }
        violations.check()?;
        let tables: Vec<String> = allowed
            .iter()
            .filter(|table| request.tables.is_empty() || request.tables.iter().any(|t| t == *table))
            .map(|table| table.to_string())
            .collect();
        let run = self.queue_run(&mut tx, &instance, tables, request.mode(), &identity.user_id.to_string()).await?;
        tx.commit().await?;
        Ok(run.to_proto(&tenant.to_string()))
    }

    /// Stores and queues a run. `Unspecified` is incremental once every table has a
    /// watermark and a full sync succeeded within a day (which also finds deletions), else full.
    async fn queue_run(
        &self,
        tx: &mut TenantTx,
        instance: &InstanceRecord,
        tables: Vec<String>,
        mode: SyncMode,
        triggered_by: &str,
    ) -> Result<crate::sync::RunRecord, ApiError> {
        let now = time::now_micros();
        let watermarks = store::watermarks(tx, &instance.id).await?;
        let recent_full =
            store::last_full_sync(tx, &instance.id).await?.is_some_and(|at| now - at < 24 * 3600 * 1_000_000);
        let mode = match mode {
            SyncMode::Full => "full",
            SyncMode::Incremental => "incremental",
            SyncMode::Unspecified if recent_full && tables.iter().all(|table| watermarks.contains_key(table)) => {
                "incremental"
            }
            SyncMode::Unspecified => "full",
        };
        let run = crate::sync::RunRecord {
            id: complianceiq_kit::uuid::Uuid::now_v7().to_string(),
            instance_id: instance.id.clone(),
            mode: mode.into(),
            state: "pending".into(),
            tables,
            progress: Default::default(),
            triggered_by: triggered_by.into(),
            error: String::new(),
            cancel_requested: false,
            created_at: now,
            started_at: None,
            ended_at: None,
        };
        store::insert_run(tx, &run).await?;
        tracing::info!(instance_id = %run.instance_id, sync_run_id = %run.id, mode, triggered_by, "sync requested");
        Ok(run)
    }

    /// The scheduler's sync: queued unless the instance is disabled, unscheduled or syncing.
    pub(crate) async fn scheduled_sync(
        &self,
        organization: complianceiq_kit::OrganizationId,
        id: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.database.write(organization).await?;
        let instance = self.load(&mut tx, id).await?;
        let interval = instance.sync_interval_minutes;
        let next = (interval > 0)
            .then(|| time::after(time::now_micros(), std::time::Duration::from_secs(interval as u64 * 60)));
        store::schedule_sync(&mut tx, id, next).await?;
        if instance.state != "disabled" && interval > 0 && store::active_run(&mut tx, id).await?.is_none() {
            let tables = instance.effective_tables().iter().map(|table| table.to_string()).collect();
            self.queue_run(&mut tx, &instance, tables, SyncMode::Unspecified, "schedule").await?;
        }
        tx.commit().await
    }

    async fn load_run(&self, tx: &mut TenantTx, instance: &str, run: &str) -> Result<crate::sync::RunRecord, ApiError> {
        let run_id = complianceiq_kit::ids::parse_uuid("sync_run_id", run)?.to_string();
        store::run_by_id(tx, &run_id)
            .await?
            .filter(|record| record.instance_id == instance)
            .ok_or_else(|| ApiError::not_found("SyncRun", run_id))
    }

    async fn get_run(&self, identity: &Identity, request: GetSyncRunRequest) -> Result<SyncRun, ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        let mut tx = self.database.read(tenant).await?;
        let run = self.load_run(&mut tx, &id, &request.sync_run_id).await?;
        tx.commit().await?;
        Ok(run.to_proto(&tenant.to_string()))
    }

    async fn cancel_run(&self, identity: &Identity, request: CancelSyncRunRequest) -> Result<SyncRun, ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        let mut tx = self.database.write(tenant).await?;
        let run = self.load_run(&mut tx, &id, &request.sync_run_id).await?;
        if !store::request_cancel(&mut tx, &run.id).await? {
            return Err(ApiError::FailedPrecondition {
                reason: "SYNC_ENDED",
                message: format!("sync run {} has already ended ({})", run.id, run.state),
            });
        }
        let run = self.load_run(&mut tx, &id, &run.id).await?;
        tx.commit().await?;
        Ok(run.to_proto(&tenant.to_string()))
    }

    async fn list_runs(
        &self,
        identity: &Identity,
        request: ListSyncRunsRequest,
    ) -> Result<ListSyncRunsResponse, ApiError> {
        let tenant = identity.tenant()?;
        let id = instance_id(&request.instance_id)?;
        let state = match request.state() {
            SyncState::Unspecified => None,
            SyncState::Pending => Some("pending"),
            SyncState::Running => Some("running"),
            SyncState::Succeeded => Some("succeeded"),
            SyncState::Failed => Some("failed"),
            SyncState::Cancelled => Some("cancelled"),
        };
        let page = PageRequest::parse(request.page_size, &request.page_token, state.unwrap_or(""))?;
        let mut tx = self.database.read(tenant).await?;
        self.load(&mut tx, &id).await?;
        let mut runs = store::list_runs(&mut tx, &id, state, &page).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut runs, |run| vec![run.created_at.to_string(), run.id.clone()]);
        let organization = tenant.to_string();
        Ok(ListSyncRunsResponse {
            sync_runs: runs.iter().map(|run| run.to_proto(&organization)).collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl InstanceService for InstanceApi {
    async fn write_widget_record(
        &self,
        request: Request<WriteWidgetRecordRequest>,
    ) -> Result<Response<WriteWidgetRecordResponse>, Status> {
        Ok(Response::new(InstanceApi::write_widget_record(self, request.into_inner()).await?))
    }

    async fn sync_instance(&self, request: Request<SyncInstanceRequest>) -> Result<Response<SyncRun>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.start_sync(&identity, request.into_inner()).await?))
    }

    async fn get_sync_run(&self, request: Request<GetSyncRunRequest>) -> Result<Response<SyncRun>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.get_run(&identity, request.into_inner()).await?))
    }

    async fn cancel_sync_run(&self, request: Request<CancelSyncRunRequest>) -> Result<Response<SyncRun>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.cancel_run(&identity, request.into_inner()).await?))
    }

    async fn list_sync_runs(
        &self,
        request: Request<ListSyncRunsRequest>,
    ) -> Result<Response<ListSyncRunsResponse>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.list_runs(&identity, request.into_inner()).await?))
    }

    async fn create_instance(&self, request: Request<CreateInstanceRequest>) -> Result<Response<Instance>, Status> {
        let (identity, context) = (caller(&request)?, RequestContext::of(&request));
        Ok(Response::new(self.create(&identity, &context, request.into_inner()).await?))
    }

    async fn list_instances(
        &self,
        request: Request<ListInstancesRequest>,
    ) -> Result<Response<ListInstancesResponse>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.list(&identity, request.into_inner()).await?))
    }

    async fn get_instance(&self, request: Request<GetInstanceRequest>) -> Result<Response<Instance>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.get(&identity, request.into_inner()).await?))
    }

    async fn update_instance(&self, request: Request<UpdateInstanceRequest>) -> Result<Response<Instance>, Status> {
        let (identity, context) = (caller(&request)?, RequestContext::of(&request));
        Ok(Response::new(self.update(&identity, &context, request.into_inner()).await?))
    }

    async fn delete_instance(&self, request: Request<DeleteInstanceRequest>) -> Result<Response<()>, Status> {
        let (identity, context) = (caller(&request)?, RequestContext::of(&request));
        self.delete(&identity, &context, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn test_connection(
        &self,
        request: Request<TestConnectionRequest>,
    ) -> Result<Response<TestConnectionResponse>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(InstanceApi::test_connection(self, &identity, request.into_inner()).await?))
    }

    async fn get_instance_health(
        &self,
        request: Request<GetInstanceHealthRequest>,
    ) -> Result<Response<InstanceHealth>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.health(&identity, request.into_inner()).await?))
    }
}
