//! The subscription (plan, limits, billing) and usage against it. Plan changes go through
//! the billing provider before anything is stored; a downgrade below current usage is refused.

use complianceiq_kit::auth::Identity;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::subscription::EventHandler;
use complianceiq_kit::{time, validate};
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{Event, SubscriptionChanged};
use complianceiq_proto::complianceiq::organization::v1::{
    GetSubscriptionRequest, GetUsageRequest, Plan, Subscription, SubscriptionState, UpdateSubscriptionRequest, Usage,
    UsageQuota,
};

use crate::api::OrganizationApi;
use crate::billing::{self, BillingAccount, PlanChange};
use crate::domain::{parse_plan, plan_as_str};
use crate::organizations::{Authorization, path_tenant};
use crate::store;
use crate::store::members;
use crate::store::subscriptions::{self, SubscriptionRecord};

/// Counter of connected instances (a running total, period 0).
const INSTANCES: &str = "instances";
/// Counter of analyses started, per billing period.
const ANALYSES: &str = "analyses";
/// Counter of records synced, per billing period.
const SYNCED_RECORDS: &str = "synced_records";

fn state_of(stored: &str) -> SubscriptionState {
    match stored {
        "trialing" => SubscriptionState::Trialing,
        "active" => SubscriptionState::Active,
        "past_due" => SubscriptionState::PastDue,
        "canceled" => SubscriptionState::Canceled,
        _ => SubscriptionState::Unspecified,
    }
}

pub(crate) fn message(record: &SubscriptionRecord, organization: OrganizationId) -> Result<Subscription, ApiError> {
    let plan = parse_plan(&record.plan)?;
    Ok(Subscription {
        organization_id: organization.to_string(),
        plan: plan as i32,
        state: state_of(&record.state) as i32,
        limits: Some(billing::limits(plan)),
        billing_provider: record.billing_provider.clone(),
        billing_email: record.billing_email.clone(),
        current_period_start_time: Some(time::to_timestamp(record.current_period_start)),
        current_period_end_time: Some(time::to_timestamp(record.current_period_end)),
        cancel_at_period_end: record.cancel_at_period_end,
        create_time: Some(time::to_timestamp(record.created_at)),
        update_time: Some(time::to_timestamp(record.updated_at)),
    })
}

pub(crate) async fn current(tx: &mut TenantTx) -> Result<SubscriptionRecord, ApiError> {
    let id = tx.organization_id();
    store::find_live(tx).await?.ok_or_else(|| ApiError::not_found("Organization", id.to_string()))?;
    subscriptions::get(tx).await?.ok_or_else(|| ApiError::internal("organization without a subscription"))
}

impl OrganizationApi {
    pub(crate) async fn get_subscription(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: GetSubscriptionRequest,
    ) -> Result<Subscription, ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let mut tx = self.database.read(organization).await?;
        let record = current(&mut tx).await?;
        tx.commit().await?;
        message(&record, organization)
    }

    pub(crate) async fn update_subscription(
        &self,
        identity: &Identity,
        context: &RequestContext,
        _authorization: Authorization,
        request: UpdateSubscriptionRequest,
    ) -> Result<Subscription, ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let input = request
            .subscription
            .ok_or_else(|| ApiError::invalid_field("subscription", "REQUIRED", "subscription is required"))?;
        let paths: Vec<String> = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
        let implied = paths.is_empty();
        let mut violations = FieldViolations::default();
        for path in &paths {
            if !["plan", "billing_email", "cancel_at_period_end", "*"].contains(&path.as_str()) {
                violations.add(
                    "update_mask",
                    "UNKNOWN_FIELD",
                    format!("update_mask names {path:?}; updatable: plan, billing_email, cancel_at_period_end"),
                );
            }
        }
        let in_mask = |field: &str, populated: bool| {
            if implied { populated } else { paths.iter().any(|p| p == field || p == "*") }
        };
        let change_plan = in_mask("plan", input.plan() != Plan::Unspecified);
        let change_email = in_mask("billing_email", !input.billing_email.is_empty());
        let change_cancel = in_mask("cancel_at_period_end", input.cancel_at_period_end);
        if change_plan && input.plan() == Plan::Unspecified {
            violations.add("subscription.plan", "REQUIRED", "subscription.plan must name a plan");
        }
        let billing_email = if change_email {
            validate::email("subscription.billing_email", &input.billing_email, &mut violations)
        } else {
            String::new()
        };
        violations.check()?;

        let mut tx = self.database.read(organization).await?;
        let before = current(&mut tx).await?;
        let open_members = members::count_open(&mut tx).await?;
        let instances = subscriptions::usage(&mut tx, INSTANCES, 0).await?;
        tx.commit().await?;

        let previous_plan = parse_plan(&before.plan)?;
        let plan = if change_plan { input.plan() } else { previous_plan };
        let limits = billing::limits(plan);
        let over = |limit: i32, used: i64| limit > 0 && used > i64::from(limit);
        if over(limits.max_members, open_members) || over(limits.max_instances, instances) {
            return Err(ApiError::FailedPrecondition {
                reason: "USAGE_ABOVE_PLAN",
                message: format!(
                    "the {} plan allows {} members and {} instances; the organization has {open_members} and {instances}",
                    plan_as_str(plan),
                    limits.max_members,
                    limits.max_instances
                ),
            });
        }
        let mut next = before.clone();
        if change_email {
            next.billing_email = billing_email;
        }
        if change_cancel {
            next.cancel_at_period_end = input.cancel_at_period_end;
        }
        next.plan = plan_as_str(plan).to_string();
        if next.plan != before.plan || next.cancel_at_period_end != before.cancel_at_period_end {
            let outcome = self
                .billing
                .apply(PlanChange {
                    organization_id: organization,
                    billing_email: &next.billing_email,
                    plan,
                    cancel_at_period_end: next.cancel_at_period_end,
                    account: BillingAccount {
                        customer_id: before.external_customer_id.clone(),
                        subscription_id: before.external_subscription_id.clone(),
                    },
                    idempotency_key: format!("{organization}-{}-{}", next.plan, before.updated_at),
                })
                .await?;
            next.state = outcome.state.to_string();
            next.billing_provider = self.billing.name().to_string();
            next.external_customer_id = outcome.account.customer_id;
            next.external_subscription_id = outcome.account.subscription_id;
            next.current_period_start = outcome.period_start;
            next.current_period_end = outcome.period_end;
        }
        if next == before {
            return message(&before, organization);
        }
        let now = time::now_micros();
        next.updated_at = now;
        let mut tx = self.database.write(organization).await?;
        if current(&mut tx).await?.updated_at != before.updated_at {
            return Err(ApiError::Aborted {
                reason: "CONCURRENT_MODIFICATION",
                message: "the subscription changed during the update; read it again and retry".into(),
            });
        }
        subscriptions::save(&mut tx, &next).await?;
        if next.plan != before.plan {
            store::set_plan(&mut tx, &next.plan, now).await?;
        }
        let result = message(&next, organization)?;
        let changed = SubscriptionChanged { subscription: Some(result.clone()), previous_plan: previous_plan as i32 };
        tx.emit(Payload::SubscriptionChanged(changed), context).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %organization, plan = %next.plan, "subscription changed");
        Ok(result)
    }

    pub(crate) async fn get_usage(
        &self,
        identity: &Identity,
        _context: &RequestContext,
        _authorization: Authorization,
        request: GetUsageRequest,
    ) -> Result<Usage, ApiError> {
        let organization = path_tenant(identity, &request.org_id)?;
        let mut tx = self.database.read(organization).await?;
        let subscription = current(&mut tx).await?;
        let usage = usage_of(&mut tx, &subscription).await?;
        tx.commit().await?;
        Ok(usage)
    }
}

/// The usage of the transaction's organization in `subscription`'s current period.
pub(crate) async fn usage_of(tx: &mut TenantTx, subscription: &SubscriptionRecord) -> Result<Usage, ApiError> {
    let limits = billing::limits(parse_plan(&subscription.plan)?);
    let period = subscription.current_period_start;
    Ok(Usage {
        organization_id: tx.organization_id().to_string(),
        period_start_time: Some(time::to_timestamp(period)),
        period_end_time: Some(time::to_timestamp(subscription.current_period_end)),
        instances: Some(UsageQuota {
            used: subscriptions::usage(tx, INSTANCES, 0).await?,
            limit: limits.max_instances.into(),
        }),
        members: Some(UsageQuota { used: members::count_open(tx).await?, limit: limits.max_members.into() }),
        analyses: Some(UsageQuota {
            used: subscriptions::usage(tx, ANALYSES, period).await?,
            limit: limits.max_analyses_per_month.into(),
        }),
        synced_records: subscriptions::usage(tx, SYNCED_RECORDS, period).await?,
        // Nothing is kept in object storage yet (exports and models arrive with their services).
        storage_bytes: 0,
    })
}

/// Counts usage from other services' events.
pub struct UsageCounter {
    pub database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for UsageCounter {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let (metric, per_period, delta) = match &event.payload {
            Some(Payload::InstanceCreated(_)) => (INSTANCES, false, 1),
            Some(Payload::InstanceDeleted(_)) => (INSTANCES, false, -1),
            Some(Payload::AnalysisStarted(_)) => (ANALYSES, true, 1),
            Some(Payload::SyncCompleted(completed)) => {
                let fetched: i64 =
                    completed.sync_run.iter().flat_map(|run| &run.tables).map(|table| table.fetched).sum();
                (SYNCED_RECORDS, true, fetched)
            }
            _ => return Ok(()),
        };
        let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else {
            tracing::warn!(event_id = %event.id, "usage event without an organization");
            return Ok(());
        };
        let mut tx = self.database.write(organization).await?;
        let Some(subscription) = subscriptions::get(&mut tx).await? else {
            return tx.commit().await;
        };
        let period = if per_period { subscription.current_period_start } else { 0 };
        subscriptions::add_usage(&mut tx, metric, period, delta).await?;
        if let Some(Payload::SyncCompleted(completed)) = &event.payload {
            let ended = completed.sync_run.as_ref().and_then(|run| run.end_time.as_ref());
            let at = ended.or(event.occur_time.as_ref()).map(time::from_timestamp).unwrap_or_else(time::now_micros);
            store::directory::note_sync(&mut tx, at).await?;
        }
        tx.commit().await
    }
}
