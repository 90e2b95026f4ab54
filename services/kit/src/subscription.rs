//! Consumers: a module declares the event types it reacts to and a handler; the kit runs a
//! durable consumer per type, and for every delivery applies one rule:
//!
//! 1. an event whose publisher (as the broker vouches for it) does not own its type, or
//!    whose envelope disagrees with its route, is refused: a security log line, a metric,
//!    the dead-letter stream, never the handler;
//! 2. an event the module already handled (by event id, in its database) is acknowledged;
//! 3. the handler runs; success is recorded and acknowledged, failure is redelivered with
//!    backoff, and after `max_deliver` deliveries it goes to the dead-letter stream with a
//!    log line and a metric, so nothing loops and nothing is lost silently.

use std::sync::Arc;

use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::{EventPayloadExt, EventType};
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::async_trait;

use crate::bus::{DeadLetter, Delivery, EventBus, SubscriptionSpec};
use crate::config::EventsConfig;
use crate::db::Database;
use crate::error::{ApiError, is_unique_violation};
use crate::metrics::Metrics;
use crate::time;

/// Which module owns (alone may publish) each event type. The platform's table lives beside
/// the mesh policy; `complianceiq manifests` renders the NATS permissions from it.
pub type EventOwner = fn(EventType) -> &'static str;

/// The owner of an event type every module publishes (the consumer then checks what each
/// publisher may say in it).
pub const EVERY_MODULE: &str = "*";

/// The reason (of an `ApiError::Unavailable`) a handler gives when what an event changed is
/// not readable yet because another module has still to take it in: an expected wait, retried
/// like any failure but logged quietly for its first deliveries.
pub const NOT_YET_READABLE: &str = "NOT_YET_READABLE";
/// Deliveries of a NOT_YET_READABLE event logged at debug level before a warning.
const QUIET_WAITS: u32 = 5;

/// Reacts to events. Called at least once per event; the kit filters repeats it already
/// recorded as handled.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event; an error leaves it unacknowledged for redelivery.
    async fn handle(&self, event: &Event) -> Result<(), ApiError>;

    /// Most events the kit hands to [`handle_batch`](Self::handle_batch) at once, of those
    /// already waiting; 1 (the default): one at a time.
    fn batch_size(&self) -> usize {
        1
    }

    /// Handles several events together, e.g. in one transaction: all or none. On an error
    /// the kit handles each again alone, so one bad event fails only itself.
    async fn handle_batch(&self, events: &[&Event]) -> Result<(), ApiError> {
        for event in events {
            self.handle(event).await?;
        }
        Ok(())
    }
}

/// A module's subscription.
pub struct Subscription {
    /// Consumer name, unique per module and purpose, e.g. `audit`.
    pub consumer: &'static str,
    /// The event types it handles.
    pub events: Vec<EventType>,
    /// The handler.
    pub handler: Arc<dyn EventHandler>,
}

/// A durable consumer name for a (consumer, pattern): NATS names exclude `.`, `*` and `>`.
/// The suffix names the subject layout (`events.<publisher>.<type>`): JetStream keeps an
/// existing durable consumer's filter, so consumers made for the earlier layout
/// (`events.<type>`) must not be reused, or they would silently receive nothing.
pub fn durable_name(consumer: &str, pattern: &str) -> String {
    let pattern = pattern.replace('.', "_").replace('*', "any").replace('>', "all");
    format!("{consumer}-{pattern}-by-publisher")
}

/// What every consumer of a process shares.
#[derive(Clone)]
pub struct Consumption {
    /// The consuming module.
    pub module: &'static str,
    /// Where events come from.
    pub bus: Arc<dyn EventBus>,
    /// The module's database, recording handled event ids.
    pub database: Option<Database>,
    /// Who may publish what.
    pub owner: EventOwner,
    /// Deliveries and backoff.
    pub settings: EventsConfig,
    /// Outcomes by consumer and type.
    pub metrics: Arc<Metrics>,
}

/// Why a delivery cannot be trusted, if it cannot.
pub fn refusal(delivery: &Delivery, owner: EventOwner) -> Option<String> {
    let event = &delivery.event;
    let Some(kind) = EventType::parse(&delivery.routed_type) else {
        return Some(format!("{:?} is not an event type of the contract", delivery.routed_type));
    };
    let payload = event.payload.as_ref().map(|payload| payload.kind());
    if event.r#type != kind.as_str() || payload != Some(kind) {
        return Some(format!(
            "routed as {kind} but the envelope says {:?} and carries {}",
            event.r#type,
            payload.map(EventType::as_str).unwrap_or("no payload")
        ));
    }
    let owning = owner(kind);
    if owning != EVERY_MODULE && delivery.publisher != owning {
        return Some(format!("{kind} is published by {owning} only, not by {:?}", delivery.publisher));
    }
    if event.source != delivery.publisher {
        return Some(format!("published by {} but claims to come from {:?}", delivery.publisher, event.source));
    }
    None
}

/// Runs a subscription until `shutdown`.
pub async fn run(
    subscription: Subscription,
    consumption: Consumption,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut streams = Vec::new();
    for event_type in &subscription.events {
        let spec = SubscriptionSpec {
            module: consumption.module.to_string(),
            pattern: event_type.as_str().to_string(),
            durable_name: Some(durable_name(subscription.consumer, event_type.as_str())),
        };
        streams.push(consumption.bus.subscribe(spec).await.map_err(|error| error.to_string())?);
    }
    let mut deliveries = futures::stream::select_all(streams);
    let batch_size = subscription.handler.batch_size().max(1);
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = deliveries.next() => match next {
                Some(delivery) => delivery,
                None => return Ok(()),
            },
        };
        if batch_size == 1 {
            consume(&subscription, &consumption, delivery).await;
            continue;
        }
        // What else is already waiting joins it; nothing waits for more to arrive.
        let mut batch = vec![delivery];
        while batch.len() < batch_size {
            match deliveries.next().now_or_never() {
                Some(Some(delivery)) => batch.push(delivery),
                _ => break,
            }
        }
        consume_batch(&subscription, &consumption, batch).await;
    }
}

/// Consumes deliveries together: each refused or repeated one is settled on its own, the rest
/// go to the handler in one call and are recorded as handled in one transaction. If the batch
/// fails, each is consumed alone (and retried or dead-lettered on its own).
async fn consume_batch(subscription: &Subscription, consumption: &Consumption, batch: Vec<Delivery>) {
    if batch.len() == 1 {
        return consume(subscription, consumption, batch.into_iter().next().expect("one delivery")).await;
    }
    let consumer = subscription.consumer;
    let mut pending = Vec::with_capacity(batch.len());
    for delivery in batch {
        let repeated = match &consumption.database {
            Some(database) => already_handled(database, consumer, &delivery.event.id).await.unwrap_or(false),
            None => false,
        };
        if refusal(&delivery, consumption.owner).is_some() || repeated {
            // The one-at-a-time path refuses, dead-letters or acknowledges it.
            consume(subscription, consumption, delivery).await;
        } else {
            pending.push(delivery);
        }
    }
    if pending.is_empty() {
        return;
    }
    let events: Vec<&Event> = pending.iter().map(|delivery| &delivery.event).collect();
    if let Err(error) = subscription.handler.handle_batch(&events).await {
        tracing::warn!(consumer, events = pending.len(), %error, "a batch failed; its events are handled one by one");
        for delivery in pending {
            consume(subscription, consumption, delivery).await;
        }
        return;
    }
    if let Some(database) = &consumption.database
        && let Err(error) = record_all_handled(database, consumer, &events).await
    {
        tracing::warn!(consumer, events = events.len(), %error, "recording handled events");
    }
    for delivery in pending {
        consumption.metrics.record_event(consumer, &delivery.routed_type, "handled");
        if let Err(error) = delivery.ack().await {
            tracing::warn!(consumer, event_id = %delivery.event.id, %error, "acknowledging");
        }
    }
}

async fn consume(subscription: &Subscription, consumption: &Consumption, delivery: Delivery) {
    let consumer = subscription.consumer;
    let event = &delivery.event;
    let record = |outcome| consumption.metrics.record_event(consumer, &delivery.routed_type, outcome);
    if let Some(reason) = refusal(&delivery, consumption.owner) {
        tracing::error!(
            target: "security",
            consumer,
            event_id = %event.id,
            event_type = %delivery.routed_type,
            publisher = %delivery.publisher,
            %reason,
            "refused an event its publisher may not send"
        );
        record("refused");
        dead_letter(consumption, consumer, &delivery, format!("refused: {reason}")).await;
        return;
    }
    if let Some(database) = &consumption.database {
        match already_handled(database, consumer, &event.id).await {
            Ok(true) => {
                let _ = delivery.ack().await;
                return;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(consumer, event_id = %event.id, %error, "checking de-duplication");
                let _ = delivery.retry_after(consumption.settings.retry_backoff(delivery.delivered)).await;
                return;
            }
        }
    }
    match subscription.handler.handle(event).await {
        Ok(()) => {
            if let Some(database) = &consumption.database
                && let Err(error) = record_handled(database, consumer, &event.id).await
            {
                tracing::warn!(consumer, event_id = %event.id, %error, "recording a handled event");
            }
            record("handled");
            if let Err(error) = delivery.ack().await {
                tracing::warn!(consumer, event_id = %event.id, %error, "acknowledging");
            }
        }
        Err(error) if delivery.delivered >= consumption.settings.max_deliver.max(1) => {
            tracing::error!(
                consumer,
                event_id = %event.id,
                event_type = %event.r#type,
                deliveries = delivery.delivered,
                %error,
                "handler kept failing; the event goes to the dead-letter stream"
            );
            record("dead_lettered");
            let reason = format!("failed {} times, last: {error}", delivery.delivered);
            dead_letter(consumption, consumer, &delivery, reason).await;
        }
        Err(error) => {
            let wait = consumption.settings.retry_backoff(delivery.delivered);
            let waiting = matches!(&error, ApiError::Unavailable { reason, .. } if *reason == NOT_YET_READABLE);
            if waiting && delivery.delivered < QUIET_WAITS {
                tracing::debug!(
                    consumer,
                    event_id = %event.id,
                    event_type = %event.r#type,
                    deliveries = delivery.delivered,
                    retry_in_ms = wait.as_millis() as u64,
                    "what the event changed is not readable yet; it will be redelivered"
                );
            } else {
                tracing::warn!(
                    consumer,
                    event_id = %event.id,
                    event_type = %event.r#type,
                    deliveries = delivery.delivered,
                    retry_in_ms = wait.as_millis() as u64,
                    %error,
                    "handler failed; the event will be redelivered"
                );
            }
            record("retried");
            if let Err(error) = delivery.retry_after(wait).await {
                tracing::warn!(consumer, event_id = %event.id, %error, "asking for redelivery");
            }
        }
    }
}

/// Keeps the delivery as a dead letter, then settles it; if the dead letter cannot be
/// written, the delivery stays unsettled so the broker offers it again.
async fn dead_letter(consumption: &Consumption, consumer: &'static str, delivery: &Delivery, reason: String) {
    let letter = DeadLetter {
        module: consumption.module.to_string(),
        consumer: consumer.to_string(),
        event_id: delivery.event.id.clone(),
        event_type: delivery.routed_type.clone(),
        publisher: delivery.publisher.clone(),
        reason,
        payload: delivery.payload.clone(),
    };
    match consumption.bus.dead_letter(letter).await {
        Ok(()) => {
            let _ = delivery.ack().await;
        }
        Err(error) => tracing::error!(consumer, event_id = %delivery.event.id, %error, "cannot write a dead letter"),
    }
}

async fn already_handled(database: &Database, consumer: &str, event_id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 FROM ciq_processed_events WHERE consumer = $1 AND event_id = $2")
        .bind(consumer)
        .bind(event_id)
        .fetch_optional(database.pool())
        .await?;
    Ok(row.is_some())
}

/// Records a batch as handled in one transaction (one commit for all of them).
async fn record_all_handled(database: &Database, consumer: &str, events: &[&Event]) -> Result<(), sqlx::Error> {
    let mut tx = database.pool().begin().await?;
    let now = time::now_micros();
    for event in events {
        // A repeat recorded meanwhile (a redelivery handled elsewhere) is no error.
        sqlx::query(
            "INSERT INTO ciq_processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(&event.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

async fn record_handled(database: &Database, consumer: &str, event_id: &str) -> Result<(), sqlx::Error> {
    let inserted =
        sqlx::query("INSERT INTO ciq_processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3)")
            .bind(consumer)
            .bind(event_id)
            .bind(time::now_micros())
            .execute(database.pool())
            .await;
    match inserted {
        Err(error) if !is_unique_violation(&error) => Err(error),
        _ => Ok(()),
    }
}
