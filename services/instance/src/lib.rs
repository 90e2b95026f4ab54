//! The instance service (port 8004, core_db): ServiceNow connections of an organization,
//! their credentials (sealed with AES-256-GCM under a key id, never returned or logged),
//! plan limits, connection checks with a report per GRC table, and scheduled health checks
//! with history, and syncs of the GRC data into the analysis store (`sync`).

mod api;
mod connect;
mod domain;
mod reseal;
mod store;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::db::{Migration, ModuleDatabase};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::module::{BuildError, Worker};
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleContext, ModuleName, ModuleParts, migration, time};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_client::AnalysisServiceClient;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::instance::v1::instance_service_server::InstanceServiceServer;
use complianceiq_servicenow::NetworkAccess;
use tokio_util::sync::CancellationToken;

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_instances"),
    migration!(2, "0002_sync"),
    migration!(3, "0003_sync_schedule"),
    migration!(4, "0004_job_queue"),
];

/// How often the scheduler looks for instances due a health check.
const SCHEDULER_TICK: Duration = Duration::from_secs(5);

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("instance"),
        port: 8004,
        database: Some(DatabaseGroup::Core),
        // Syncs hand records to the analysis store.
        calls: &["analysis"],
        migrations: MIGRATIONS,
        build: |context| Box::pin(build(context)),
        reseal: Some(|database, secrets| Box::pin(reseal::reseal(database, secrets))),
    }
}

async fn build(context: ModuleContext) -> Result<ModuleParts, BuildError> {
    let database = context.database()?;
    let network = if context.config.instance.private_networks_allowed(context.config.mode) {
        NetworkAccess::AllowPrivate
    } else {
        NetworkAccess::PublicOnly
    };
    let api = Arc::new(api::InstanceApi {
        database: database.clone(),
        secrets: context.secrets.clone(),
        network,
        check_settings: connect::check_settings(network),
        health_interval: Duration::from_secs(context.config.instance.health_interval_seconds.max(1)),
    });
    let allowances = Subscription {
        consumer: "instance-allowances",
        events: vec![EventType::SubscriptionChanged],
        handler: Arc::new(AllowanceTracker { database: database.clone() }),
    };
    let scheduler = {
        let (api, database) = (api.clone(), database.clone());
        Worker {
            name: "instance-health",
            run: Box::new(move |stop| Box::pin(check_due_instances(api, database, stop))),
        }
    };
    let syncs = {
        let settings = &context.config.instance;
        let sync_settings = sync::SyncSettings {
            client: complianceiq_servicenow::ClientSettings {
                requests_per_second: settings.requests_per_second.max(0.1),
                network,
                ..Default::default()
            },
            page_size: settings.sync_page_size.clamp(1, 10_000),
        };
        let worker_settings = complianceiq_kit::jobs::WorkerSettings {
            lease: Duration::from_secs(settings.sync_lease_seconds.max(1)),
            ..Default::default()
        };
        let analysis = AnalysisServiceClient::new(context.channel("analysis")?)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        let jobs = Arc::new(sync::SyncJobs { api: api.clone(), analysis, settings: sync_settings });
        let (database, metrics) = (database.clone(), context.metrics.clone());
        Worker {
            name: "instance-sync",
            run: Box::new(move |stop| {
                Box::pin(complianceiq_kit::jobs::work(database, jobs, worker_settings, metrics, stop))
            }),
        }
    };
    Ok(ModuleParts::new()
        .service(InstanceServiceServer::from_arc(api))
        .subscription(allowances)
        .worker(scheduler)
        .worker(syncs))
}

/// Keeps each organization's instance allowance from its subscription.
struct AllowanceTracker {
    database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for AllowanceTracker {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Some(Payload::SubscriptionChanged(changed)) = &event.payload else { return Ok(()) };
        let Some(subscription) = &changed.subscription else { return Ok(()) };
        let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else {
            tracing::warn!(event_id = %event.id, "subscription event without an organization");
            return Ok(());
        };
        let limit = subscription.limits.as_ref().map(|limits| i64::from(limits.max_instances)).unwrap_or(0);
        let plan = subscription.plan().as_str_name().trim_start_matches("PLAN_").to_ascii_lowercase();
        let as_of = subscription.update_time.as_ref().map(time::from_timestamp).unwrap_or_else(time::now_micros);
        let mut tx = self.database.write(organization).await?;
        store::set_allowance(&mut tx, &plan, limit, as_of).await?;
        tx.commit().await
    }
}

/// Queues the scheduled syncs that are due.
async fn queue_due_syncs(api: &api::InstanceApi, database: &ModuleDatabase, now: i64) {
    let due = async {
        let mut tx = database.global_write().await?;
        let due = store::claim_due_syncs(&mut tx, now, 60_000_000, 20).await?;
        tx.commit().await?;
        Ok::<_, ApiError>(due)
    };
    let due = match due.await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "cannot read the sync schedule");
            return;
        }
    };
    for (instance, organization) in due {
        let Ok(organization) = OrganizationId::from_stored(&organization) else { continue };
        match api.scheduled_sync(organization, &instance).await {
            Ok(()) | Err(ApiError::NotFound { .. }) => {}
            Err(error) => tracing::warn!(instance_id = %instance, %error, "cannot queue a scheduled sync"),
        }
    }
}

/// Checks instances whose time has come, then schedules their next check.
async fn check_due_instances(api: Arc<api::InstanceApi>, database: ModuleDatabase, stop: CancellationToken) {
    let interval = api.health_interval;
    let mut ticks = tokio::time::interval(SCHEDULER_TICK.min(interval));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = time::now_micros();
        queue_due_syncs(&api, &database, now).await;
        // A claim holds an instance for a minute: a process that dies mid-check loses it briefly.
        let due = async {
            let mut tx = database.global_write().await?;
            let due = store::claim_due(&mut tx, now, 60_000_000, 20).await?;
            tx.commit().await?;
            Ok::<_, ApiError>(due)
        };
        let due = match due.await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot read the instance schedule");
                continue;
            }
        };
        for (instance, organization) in due {
            if stop.is_cancelled() {
                return;
            }
            let Ok(organization) = OrganizationId::from_stored(&organization) else { continue };
            match api.scheduled_check(organization, &instance).await {
                Ok(()) => {}
                // Disconnected since it was claimed: nothing to schedule.
                Err(ApiError::NotFound { .. }) => continue,
                Err(error) => tracing::warn!(instance_id = %instance, %error, "scheduled health check failed to run"),
            }
            let next = time::after(time::now_micros(), interval);
            let reschedule = async {
                let mut tx = database.write(organization).await?;
                store::schedule(&mut tx, &instance, next).await?;
                tx.commit().await
            };
            if let Err(error) = reschedule.await {
                tracing::warn!(instance_id = %instance, %error, "cannot schedule the next health check");
            }
        }
    }
}
