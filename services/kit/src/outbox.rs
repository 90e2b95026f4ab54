//! The outbox relay: moves committed events from a database's `ciq_outbox` to the bus.
//! Rows are claimed with a lease (a single UPDATE works on both backends and keeps two
//! relays from publishing the same row in the same window); they are marked published
//! only after the bus stored them, so a broker outage delays events and loses none. A
//! relay publishes the events of its own process's modules only: the bus credentials of a
//! process allow it to publish as those modules and no other.

use std::sync::Arc;
use std::time::Duration;

use complianceiq_proto::complianceiq::events::v1::Event;
use prost::Message;
use sqlx::{AssertSqlSafe, Row};
use tokio_util::sync::CancellationToken;

use crate::bus::{BusMessage, EventBus};
use crate::db::Database;
use crate::time;

const BATCH: i64 = 100;
/// A claim older than this is assumed abandoned (relay crashed) and taken over.
const LEASE: Duration = Duration::from_secs(30);
/// Polling interval for events written by other processes sharing the database.
const POLL: Duration = Duration::from_millis(500);
/// Published rows are kept this long for inspection, then deleted.
const RETENTION: Duration = Duration::from_secs(24 * 3600);
const CLEANUP_EVERY: Duration = Duration::from_secs(600);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Relays one database's outbox to the bus.
pub struct OutboxRelay {
    database: Database,
    bus: Arc<dyn EventBus>,
    /// Claims a batch of the events of this process's modules.
    claim: String,
}

impl OutboxRelay {
    /// A relay for the events `sources` (module names) wrote to `database`.
    pub fn new(database: Database, bus: Arc<dyn EventBus>, sources: Vec<&'static str>) -> Self {
        // Module names are the kit's own identifiers, never user input: safe to inline.
        let sources: Vec<String> = sources.iter().map(|source| format!("'{source}'")).collect();
        let claim = format!(
            "UPDATE ciq_outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE seq IN (SELECT seq FROM ciq_outbox \
                           WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2) \
                             AND source IN ('', {sources}) \
                           ORDER BY seq LIMIT $3) \
               AND published_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2) \
             RETURNING seq, event_id, event_type, payload, source",
            sources = sources.join(", ")
        );
        Self { database, bus, claim }
    }

    /// Runs until `shutdown`, publishing promptly after local commits and polling for
    /// others', with exponential backoff while the bus or database fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let group = self.database.group().name();
        let mut backoff = Duration::from_millis(100);
        let mut last_cleanup = tokio::time::Instant::now();
        loop {
            let wait = match self.publish_pending().await {
                Ok(published) if published as i64 == BATCH => Duration::ZERO,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    POLL
                }
                Err(error) => {
                    tracing::warn!(database = group, %error, retry_in_ms = backoff.as_millis() as u64, "outbox relay");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            if last_cleanup.elapsed() >= CLEANUP_EVERY {
                last_cleanup = tokio::time::Instant::now();
                if let Err(error) = self.delete_old().await {
                    tracing::warn!(database = group, %error, "outbox cleanup");
                }
            }
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.database.outbox_written().notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // One last pass so events committed just before shutdown go out now, not at next start.
        let _ = self.publish_pending().await;
    }

    /// Publishes one batch; returns how many events went out.
    pub async fn publish_pending(&self) -> Result<usize, String> {
        let now = time::now_micros();
        let rows = sqlx::query(AssertSqlSafe(self.claim.clone()))
            .bind(time::after(now, LEASE))
            .bind(now)
            .bind(BATCH)
            .fetch_all(self.database.pool())
            .await
            .map_err(|error| format!("claiming events: {error}"))?;
        let mut claimed: Vec<(i64, String, String, Vec<u8>, String)> =
            rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))).collect();
        claimed.sort_by_key(|(seq, ..)| *seq);

        for (index, (seq, event_id, event_type, payload, source)) in claimed.iter().enumerate() {
            let source = if source.is_empty() {
                Event::decode(payload.as_slice()).map(|event| event.source).unwrap_or_default()
            } else {
                source.clone()
            };
            let message = BusMessage {
                event_id: event_id.clone(),
                event_type: event_type.clone(),
                source,
                payload: payload.clone().into(),
            };
            if let Err(error) = self.bus.publish(message).await {
                // Release this and the remaining claims so the next attempt keeps the order.
                let error = error.to_string();
                for (seq, ..) in &claimed[index..] {
                    let _ = sqlx::query("UPDATE ciq_outbox SET claimed_until = NULL, last_error = $1 WHERE seq = $2")
                        .bind(&error)
                        .bind(seq)
                        .execute(self.database.pool())
                        .await;
                }
                return Err(error);
            }
            sqlx::query(
                "UPDATE ciq_outbox SET published_at = $1, claimed_until = NULL, last_error = NULL WHERE seq = $2",
            )
            .bind(time::now_micros())
            .bind(seq)
            .execute(self.database.pool())
            .await
            .map_err(|error| format!("marking event {event_id} published: {error}"))?;
        }
        Ok(claimed.len())
    }

    async fn delete_old(&self) -> Result<(), sqlx::Error> {
        let cutoff = time::now_micros() - RETENTION.as_micros() as i64;
        sqlx::query("DELETE FROM ciq_outbox WHERE published_at IS NOT NULL AND published_at < $1")
            .bind(cutoff)
            .execute(self.database.pool())
            .await?;
        // The stream keeps events 7 days; de-duplication records need to outlive that only.
        let cutoff = time::now_micros() - 8 * 24 * 3600 * 1_000_000;
        sqlx::query("DELETE FROM ciq_processed_events WHERE processed_at < $1")
            .bind(cutoff)
            .execute(self.database.pool())
            .await?;
        Ok(())
    }
}

/// Number of events not yet published (for readiness and tests).
pub async fn pending_count(database: &Database) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) FROM ciq_outbox WHERE published_at IS NULL")
        .fetch_one(database.pool())
        .await
        .map(|row| row.get(0))
}
