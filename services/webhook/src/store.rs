//! The webhook service's tables: `webhooks` and `webhook_deliveries`, every query scoped to
//! the transaction's organization.

use complianceiq_kit::db::{GlobalTx, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::webhook::v1::{DeliveryOutcome, Webhook, WebhookDelivery, WebhookState};
use sqlx::Row;

/// A webhook as stored.
#[derive(Clone, Debug)]
pub struct WebhookRecord {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Event type names, or `*`.
    pub event_types: Vec<String>,
    /// Sealed.
    pub secret: String,
    /// Sealed; empty when none.
    pub previous_secret: String,
    pub previous_secret_until: i64,
    pub state: WebhookState,
    pub consecutive_failures: i64,
    pub failing_since: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl WebhookRecord {
    /// Whether it takes events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|wanted| wanted == "*" || wanted == event_type)
    }

    pub fn etag(&self) -> String {
        format!("w{}", self.version)
    }

    /// As served (never with a secret).
    pub fn proto(&self, organization: &str) -> Webhook {
        Webhook {
            id: self.id.clone(),
            organization_id: organization.to_string(),
            url: self.url.clone(),
            description: self.description.clone(),
            event_types: self.event_types.clone(),
            secret: String::new(),
            state: self.state as i32,
            consecutive_failures: i32::try_from(self.consecutive_failures).unwrap_or(i32::MAX),
            create_time: Some(time::to_timestamp(self.created_at)),
            update_time: Some(time::to_timestamp(self.updated_at)),
            etag: self.etag(),
            previous_secret_expire_time: (!self.previous_secret.is_empty() && self.previous_secret_until > 0)
                .then(|| time::to_timestamp(self.previous_secret_until)),
        }
    }
}

fn state_name(state: WebhookState) -> &'static str {
    match state {
        WebhookState::Disabled => "disabled",
        WebhookState::Failing => "failing",
        WebhookState::Active | WebhookState::Unspecified => "active",
    }
}

fn state_of(name: &str) -> WebhookState {
    match name {
        "disabled" => WebhookState::Disabled,
        "failing" => WebhookState::Failing,
        _ => WebhookState::Active,
    }
}

const WEBHOOK_COLUMNS: &str = "id, url, description, event_types, secret, previous_secret, previous_secret_until, \
                               state, consecutive_failures, failing_since, created_at, updated_at, version";

fn webhook_of(row: &sqlx::any::AnyRow) -> Result<WebhookRecord, sqlx::Error> {
    let event_types: String = row.try_get(3)?;
    let state: String = row.try_get(7)?;
    Ok(WebhookRecord {
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        description: row.try_get(2)?,
        event_types: event_types.split(' ').filter(|name| !name.is_empty()).map(str::to_string).collect(),
        secret: row.try_get(4)?,
        previous_secret: row.try_get(5)?,
        previous_secret_until: row.try_get(6)?,
        state: state_of(&state),
        consecutive_failures: row.try_get(8)?,
        failing_since: row.try_get(9)?,
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
        version: row.try_get(12)?,
    })
}

/// Lists the organization among those with webhooks and locks its entry until the
/// transaction ends: creates of one organization take turns, so its count cannot be
/// overtaken between counting and inserting.
pub async fn lock_organization(tx: &mut TenantTx) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("INSERT INTO webhook_organizations (organization_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(&tenant)
        .execute(tx.connection())
        .await?;
    sqlx::query("UPDATE webhook_organizations SET organization_id = organization_id WHERE organization_id = $1")
        .bind(&tenant)
        .execute(tx.connection())
        .await?;
    Ok(())
}

pub async fn insert_webhook(tx: &mut TenantTx, record: &WebhookRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO webhooks (organization_id, id, url, description, event_types, secret, previous_secret, \
           previous_secret_until, state, consecutive_failures, failing_since, last_sequence, created_at, updated_at, \
           version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $13, $14)",
    )
    .bind(tenant)
    .bind(&record.id)
    .bind(&record.url)
    .bind(&record.description)
    .bind(record.event_types.join(" "))
    .bind(&record.secret)
    .bind(&record.previous_secret)
    .bind(record.previous_secret_until)
    .bind(state_name(record.state))
    .bind(record.consecutive_failures)
    .bind(record.failing_since)
    .bind(record.created_at)
    .bind(record.updated_at)
    .bind(record.version)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Replaces a webhook's fields if it is still at `expected_version`; whether it was.
pub async fn update_webhook(
    tx: &mut TenantTx,
    record: &WebhookRecord,
    expected_version: i64,
) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let updated = sqlx::query(
        "UPDATE webhooks SET url = $3, description = $4, event_types = $5, secret = $6, previous_secret = $7, \
           previous_secret_until = $8, state = $9, consecutive_failures = $10, failing_since = $11, updated_at = $12, \
           version = $13 WHERE organization_id = $1 AND id = $2 AND version = $14",
    )
    .bind(tenant)
    .bind(&record.id)
    .bind(&record.url)
    .bind(&record.description)
    .bind(record.event_types.join(" "))
    .bind(&record.secret)
    .bind(&record.previous_secret)
    .bind(record.previous_secret_until)
    .bind(state_name(record.state))
    .bind(record.consecutive_failures)
    .bind(record.failing_since)
    .bind(record.updated_at)
    .bind(record.version)
    .bind(expected_version)
    .execute(tx.connection())
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub async fn webhook(tx: &mut TenantTx, id: &str) -> Result<Option<WebhookRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let statement = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE organization_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(tenant).bind(id).fetch_optional(tx.connection()).await?;
    Ok(row.as_ref().map(webhook_of).transpose()?)
}

/// Webhooks by id, after `after` (a page).
pub async fn webhooks(tx: &mut TenantTx, after: Option<&str>, limit: i64) -> Result<Vec<WebhookRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let statement =
        format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE organization_id = $1 AND id > $2 ORDER BY id LIMIT $3");
    let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tenant)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(tx.connection())
        .await?;
    Ok(rows.iter().map(webhook_of).collect::<Result<_, _>>()?)
}

/// The active webhooks: where events go.
pub async fn active_webhooks(tx: &mut TenantTx) -> Result<Vec<WebhookRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let statement =
        format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE organization_id = $1 AND state = 'active' ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(tenant).fetch_all(tx.connection()).await?;
    Ok(rows.iter().map(webhook_of).collect::<Result<_, _>>()?)
}

pub async fn count_webhooks(tx: &mut TenantTx) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT COUNT(*) FROM webhooks WHERE organization_id = $1")
        .bind(tenant)
        .fetch_one(tx.connection())
        .await?;
    Ok(row.try_get(0)?)
}

/// Deletes a webhook and its deliveries; whether it existed.
pub async fn delete_webhook(tx: &mut TenantTx, id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("DELETE FROM webhook_deliveries WHERE organization_id = $1 AND webhook_id = $2")
        .bind(&tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    let deleted = sqlx::query("DELETE FROM webhooks WHERE organization_id = $1 AND id = $2")
        .bind(&tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Takes the webhook's next delivery sequence. The update locks the webhook's row until the
/// transaction ends: event fan-out and the delivery job's end take it in turn, so a delivery
/// is never added unseen while the job decides it has nothing left.
pub async fn next_sequence(tx: &mut TenantTx, webhook_id: &str) -> Result<Option<i64>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "UPDATE webhooks SET last_sequence = last_sequence + 1 WHERE organization_id = $1 AND id = $2 \
         RETURNING last_sequence",
    )
    .bind(tenant)
    .bind(webhook_id)
    .fetch_optional(tx.connection())
    .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Locks the webhook's row (see [`next_sequence`]) without taking a sequence.
pub async fn lock_webhook(tx: &mut TenantTx, webhook_id: &str) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("UPDATE webhooks SET last_sequence = last_sequence WHERE organization_id = $1 AND id = $2")
        .bind(tenant)
        .bind(webhook_id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// How an attempt changed a webhook's failure count.
pub async fn set_failures(
    tx: &mut TenantTx,
    webhook_id: &str,
    consecutive_failures: i64,
    failing_since: i64,
    state: Option<WebhookState>,
) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE webhooks SET consecutive_failures = $3, failing_since = $4, state = COALESCE($5, state) \
         WHERE organization_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(webhook_id)
    .bind(consecutive_failures)
    .bind(failing_since)
    .bind(state.map(state_name))
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// A delivery as stored.
#[derive(Clone, Debug)]
pub struct DeliveryRecord {
    pub id: String,
    pub webhook_id: String,
    pub sequence: i64,
    pub message_id: String,
    pub event_type: String,
    pub body: String,
    pub redelivery_of: String,
    pub outcome: DeliveryOutcome,
    pub attempt_count: i64,
    pub response_status: i64,
    pub latency_ms: i64,
    pub error: String,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

impl DeliveryRecord {
    /// A new pending delivery, due at `due`.
    pub fn pending(webhook_id: &str, message_id: &str, event_type: &str, body: String, due: i64) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            webhook_id: webhook_id.to_string(),
            sequence: 0,
            message_id: message_id.to_string(),
            event_type: event_type.to_string(),
            body,
            redelivery_of: String::new(),
            outcome: DeliveryOutcome::Pending,
            attempt_count: 0,
            response_status: 0,
            latency_ms: 0,
            error: String::new(),
            next_attempt_at: due,
            created_at: time::now_micros(),
        }
    }

    pub fn proto(&self) -> WebhookDelivery {
        WebhookDelivery {
            id: self.id.clone(),
            webhook_id: self.webhook_id.clone(),
            event_id: self.message_id.clone(),
            event_type: self.event_type.clone(),
            outcome: self.outcome as i32,
            attempt_count: i32::try_from(self.attempt_count).unwrap_or(i32::MAX),
            response_status: i32::try_from(self.response_status).unwrap_or(0),
            latency_ms: i32::try_from(self.latency_ms).unwrap_or(i32::MAX),
            error: self.error.clone(),
            next_attempt_time: (self.outcome == DeliveryOutcome::Pending)
                .then(|| time::to_timestamp(self.next_attempt_at)),
            create_time: Some(time::to_timestamp(self.created_at)),
            sequence: self.sequence,
            redelivery_of: self.redelivery_of.clone(),
        }
    }
}

pub fn outcome_name(outcome: DeliveryOutcome) -> &'static str {
    match outcome {
        DeliveryOutcome::Succeeded => "succeeded",
        DeliveryOutcome::Failed => "failed",
        DeliveryOutcome::Pending | DeliveryOutcome::Unspecified => "pending",
    }
}

fn outcome_of(name: &str) -> DeliveryOutcome {
    match name {
        "succeeded" => DeliveryOutcome::Succeeded,
        "failed" => DeliveryOutcome::Failed,
        _ => DeliveryOutcome::Pending,
    }
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, sequence, message_id, event_type, body, redelivery_of, outcome, \
                                attempt_count, response_status, latency_ms, error, next_attempt_at, created_at";

fn delivery_of(row: &sqlx::any::AnyRow) -> Result<DeliveryRecord, sqlx::Error> {
    let outcome: String = row.try_get(7)?;
    Ok(DeliveryRecord {
        id: row.try_get(0)?,
        webhook_id: row.try_get(1)?,
        sequence: row.try_get(2)?,
        message_id: row.try_get(3)?,
        event_type: row.try_get(4)?,
        body: row.try_get(5)?,
        redelivery_of: row.try_get(6)?,
        outcome: outcome_of(&outcome),
        attempt_count: row.try_get(8)?,
        response_status: row.try_get(9)?,
        latency_ms: row.try_get(10)?,
        error: row.try_get(11)?,
        next_attempt_at: row.try_get(12)?,
        created_at: row.try_get(13)?,
    })
}

/// Adds a delivery at the webhook's next sequence (filled in); `false` when the webhook is
/// gone or already has this message (a first delivery of an event is made once).
pub async fn insert_delivery(tx: &mut TenantTx, delivery: &mut DeliveryRecord) -> Result<bool, ApiError> {
    let Some(sequence) = next_sequence(tx, &delivery.webhook_id).await? else { return Ok(false) };
    delivery.sequence = sequence;
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(
        "INSERT INTO webhook_deliveries (organization_id, id, webhook_id, sequence, message_id, event_type, body, \
           redelivery_of, outcome, attempt_count, response_status, latency_ms, error, next_attempt_at, created_at, \
           updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
         ON CONFLICT (organization_id, webhook_id, message_id) WHERE redelivery_of = '' DO NOTHING",
    )
    .bind(tenant)
    .bind(&delivery.id)
    .bind(&delivery.webhook_id)
    .bind(delivery.sequence)
    .bind(&delivery.message_id)
    .bind(&delivery.event_type)
    .bind(&delivery.body)
    .bind(&delivery.redelivery_of)
    .bind(outcome_name(delivery.outcome))
    .bind(delivery.attempt_count)
    .bind(delivery.response_status)
    .bind(delivery.latency_ms)
    .bind(&delivery.error)
    .bind(delivery.next_attempt_at)
    .bind(delivery.created_at)
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Writes how a delivery's latest attempt went.
pub async fn record_attempt(tx: &mut TenantTx, delivery: &DeliveryRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE webhook_deliveries SET outcome = $3, attempt_count = $4, response_status = $5, latency_ms = $6, \
           error = $7, next_attempt_at = $8, updated_at = $9 WHERE organization_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&delivery.id)
    .bind(outcome_name(delivery.outcome))
    .bind(delivery.attempt_count)
    .bind(delivery.response_status)
    .bind(delivery.latency_ms)
    .bind(&delivery.error)
    .bind(delivery.next_attempt_at)
    .bind(time::now_micros())
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The webhook's first pending delivery: the one its endpoint gets next.
pub async fn next_pending(tx: &mut TenantTx, webhook_id: &str) -> Result<Option<DeliveryRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let statement = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE organization_id = $1 AND webhook_id = $2 \
           AND outcome = 'pending' ORDER BY sequence LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tenant)
        .bind(webhook_id)
        .fetch_optional(tx.connection())
        .await?;
    Ok(row.as_ref().map(delivery_of).transpose()?)
}

pub async fn delivery(tx: &mut TenantTx, webhook_id: &str, id: &str) -> Result<Option<DeliveryRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let statement = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE organization_id = $1 AND webhook_id = $2 AND id = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tenant)
        .bind(webhook_id)
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
    Ok(row.as_ref().map(delivery_of).transpose()?)
}

/// A webhook's deliveries, newest (highest sequence) first, below `before`, of `outcome`
/// unless unspecified.
pub async fn deliveries(
    tx: &mut TenantTx,
    webhook_id: &str,
    outcome: DeliveryOutcome,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let statement = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE organization_id = $1 AND webhook_id = $2 \
           AND sequence < $3 AND ($4 = '' OR outcome = $4) ORDER BY sequence DESC LIMIT $5"
    );
    let outcome = if outcome == DeliveryOutcome::Unspecified { "" } else { outcome_name(outcome) };
    let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tenant)
        .bind(webhook_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(outcome)
        .bind(limit)
        .fetch_all(tx.connection())
        .await?;
    Ok(rows.iter().map(delivery_of).collect::<Result<_, _>>()?)
}

/// Finished deliveries last touched before the cutoff go (the delivery log's retention);
/// pending ones stay whatever their age.
pub const PURGE: &[(&str, &str)] = &[(
    "webhook_deliveries",
    "DELETE FROM webhook_deliveries WHERE organization_id = $1 AND updated_at < $2 AND outcome <> 'pending'",
)];

/// Organizations that have had webhooks (for re-sealing their secrets).
pub async fn organizations_with_webhooks(tx: &mut GlobalTx) -> Result<Vec<String>, ApiError> {
    let rows = sqlx::query("SELECT organization_id FROM webhook_organizations ORDER BY organization_id")
        .fetch_all(tx.connection())
        .await?;
    Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
}

/// Replaces a webhook's sealed secrets, if they are still `old` (a concurrent update wins).
pub async fn replace_secrets(
    tx: &mut TenantTx,
    id: &str,
    old: (&str, &str),
    fresh: (&str, &str),
) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE webhooks SET secret = $5, previous_secret = $6 \
         WHERE organization_id = $1 AND id = $2 AND secret = $3 AND previous_secret = $4",
    )
    .bind(tenant)
    .bind(id)
    .bind(old.0)
    .bind(old.1)
    .bind(fresh.0)
    .bind(fresh.1)
    .execute(tx.connection())
    .await?;
    Ok(())
}
