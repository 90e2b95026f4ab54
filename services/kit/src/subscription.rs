//! Consumers: a module declares the event types it reacts to and a handler; the kit runs a
//! durable consumer per pattern, skips events the module already handled (by event id, in
//! its database), and acknowledges only after the handler succeeded.

use std::sync::Arc;

use complianceiq_proto::complianceiq::events::v1::Event;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::async_trait;

use crate::bus::{EventBus, SubscriptionSpec};
use crate::db::Database;
use crate::error::{ApiError, is_unique_violation};
use crate::time;

/// Reacts to events. Called at least once per event; the kit filters repeats it already
/// recorded as handled.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event; an error leaves it unacknowledged for redelivery.
    async fn handle(&self, event: &Event) -> Result<(), ApiError>;
}

/// A module's subscription.
pub struct Subscription {
    /// Consumer name, unique per module and purpose, e.g. `audit`.
    pub consumer: &'static str,
    /// Event type patterns, e.g. `organization.*`.
    pub patterns: Vec<&'static str>,
    /// The handler.
    pub handler: Arc<dyn EventHandler>,
}

/// A durable consumer name for a (consumer, pattern): NATS names exclude `.`, `*` and `>`.
pub fn durable_name(consumer: &str, pattern: &str) -> String {
    let pattern = pattern.replace('.', "_").replace('*', "any").replace('>', "all");
    format!("{consumer}-{pattern}")
}

/// Runs a subscription until `shutdown`. `database` records handled event ids.
pub async fn run(
    subscription: Subscription,
    bus: Arc<dyn EventBus>,
    database: Option<Database>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut streams = Vec::new();
    for pattern in &subscription.patterns {
        let spec = SubscriptionSpec {
            pattern: pattern.to_string(),
            durable_name: Some(durable_name(subscription.consumer, pattern)),
        };
        streams.push(bus.subscribe(spec).await.map_err(|error| error.to_string())?);
    }
    let mut deliveries = futures::stream::select_all(streams);
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = deliveries.next() => match next {
                Some(delivery) => delivery,
                None => return Ok(()),
            },
        };
        let event = &delivery.event;
        if let Some(database) = &database {
            match already_handled(database, subscription.consumer, &event.id).await {
                Ok(true) => {
                    let _ = delivery.ack().await;
                    continue;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(consumer = subscription.consumer, event_id = %event.id, %error, "checking de-duplication");
                    continue;
                }
            }
        }
        match subscription.handler.handle(event).await {
            Ok(()) => {
                if let Some(database) = &database
                    && let Err(error) = record_handled(database, subscription.consumer, &event.id).await
                {
                    tracing::warn!(consumer = subscription.consumer, event_id = %event.id, %error, "recording a handled event");
                }
                if let Err(error) = delivery.ack().await {
                    tracing::warn!(consumer = subscription.consumer, event_id = %event.id, %error, "acknowledging");
                }
            }
            Err(error) => {
                tracing::warn!(consumer = subscription.consumer, event_id = %event.id, event_type = %event.r#type, %error, "handler failed; the event will be redelivered");
            }
        }
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
