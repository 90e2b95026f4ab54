//! The notification service's tables, every query scoped to the transaction's organization.

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::common::v1::Severity;
use complianceiq_proto::complianceiq::notification::v1::{
    Channel, ChannelDelivery, DeliveryState, Notification, NotificationPreferences, NotificationTemplate,
    TopicPreference,
};
use sqlx::Row;

/// A member who can be notified.
#[derive(Clone, Debug)]
pub struct Recipient {
    pub user_id: String,
    pub email: String,
    pub permissions: Vec<String>,
    /// Their profile's time zone (empty: unset).
    pub time_zone: String,
}

/// Keeps a member's entry at `version` unless a newer one is stored.
pub async fn upsert_recipient(
    tx: &mut TenantTx,
    recipient: &Recipient,
    active: bool,
    version: i64,
) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO notification_recipients (organization_id, user_id, email, permissions, active, version, \
           time_zone) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (organization_id, user_id) DO UPDATE SET \
           email = excluded.email, permissions = excluded.permissions, active = excluded.active, \
           version = excluded.version, time_zone = excluded.time_zone \
         WHERE notification_recipients.version < excluded.version",
    )
    .bind(tenant)
    .bind(&recipient.user_id)
    .bind(&recipient.email)
    .bind(recipient.permissions.join(" "))
    .bind(i64::from(active))
    .bind(version)
    .bind(&recipient.time_zone)
    .execute(tx.connection())
    .await?;
    Ok(())
}

fn recipient_of(row: &sqlx::any::AnyRow) -> Result<Recipient, sqlx::Error> {
    let permissions: String = row.try_get(2)?;
    Ok(Recipient {
        user_id: row.try_get(0)?,
        email: row.try_get(1)?,
        permissions: permissions.split(' ').filter(|p| !p.is_empty()).map(str::to_string).collect(),
        time_zone: row.try_get(3)?,
    })
}

/// Current members, all of them (an organization's members fit in memory).
pub async fn recipients(tx: &mut TenantTx) -> Result<Vec<Recipient>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT user_id, email, permissions, time_zone FROM notification_recipients \
         WHERE organization_id = $1 AND active = 1 ORDER BY user_id",
    )
    .bind(tenant)
    .fetch_all(tx.connection())
    .await?;
    Ok(rows.iter().map(recipient_of).collect::<Result<_, _>>()?)
}

const PREFERENCE_COLUMNS: &str =
    "user_id, email, phone_number, topics, quiet_hours_start, quiet_hours_end, updated_at, time_zone, digest_time";

fn preferences_of(tenant: &str, row: &sqlx::any::AnyRow) -> Result<NotificationPreferences, sqlx::Error> {
    let topics: String = row.try_get(3)?;
    Ok(NotificationPreferences {
        user_id: row.try_get(0)?,
        organization_id: tenant.to_string(),
        email: row.try_get(1)?,
        phone_number: row.try_get(2)?,
        topics: topics_from_json(&topics),
        quiet_hours_start: row.try_get(4)?,
        quiet_hours_end: row.try_get(5)?,
        update_time: Some(time::to_timestamp(row.try_get(6)?)),
        time_zone: row.try_get(7)?,
        digest_time: row.try_get(8)?,
    })
}

/// Stored preferences, if the person saved any.
pub async fn preferences(tx: &mut TenantTx, user_id: &str) -> Result<Option<NotificationPreferences>, ApiError> {
    Ok(preferences_of_people(tx, &[user_id]).await?.pop())
}

/// The stored preferences of those of `user_ids` who saved any, in one query.
pub async fn preferences_of_people(
    tx: &mut TenantTx,
    user_ids: &[&str],
) -> Result<Vec<NotificationPreferences>, ApiError> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = tx.tenant().to_string();
    let statement = format!(
        "SELECT {PREFERENCE_COLUMNS} FROM notification_preferences WHERE organization_id = $1 AND user_id IN ({})",
        complianceiq_kit::db::sql::list(2, user_ids.len())
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(&tenant);
    let rows = complianceiq_kit::db::sql::bind_ids(query, user_ids).fetch_all(tx.connection()).await?;
    Ok(rows.iter().map(|row| preferences_of(&tenant, row)).collect::<Result<_, _>>()?)
}

pub async fn save_preferences(tx: &mut TenantTx, preferences: &NotificationPreferences) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO notification_preferences (organization_id, user_id, email, phone_number, topics, \
           quiet_hours_start, quiet_hours_end, updated_at, time_zone, digest_time) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (organization_id, user_id) DO UPDATE SET email = excluded.email, \
           phone_number = excluded.phone_number, topics = excluded.topics, \
           quiet_hours_start = excluded.quiet_hours_start, quiet_hours_end = excluded.quiet_hours_end, \
           updated_at = excluded.updated_at, time_zone = excluded.time_zone, digest_time = excluded.digest_time",
    )
    .bind(tenant)
    .bind(&preferences.user_id)
    .bind(&preferences.email)
    .bind(&preferences.phone_number)
    .bind(topics_to_json(&preferences.topics))
    .bind(&preferences.quiet_hours_start)
    .bind(&preferences.quiet_hours_end)
    .bind(preferences.update_time.as_ref().map(time::from_timestamp).unwrap_or_else(time::now_micros))
    .bind(&preferences.time_zone)
    .bind(&preferences.digest_time)
    .execute(tx.connection())
    .await?;
    Ok(())
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Webhook => "webhook",
        Channel::InApp | Channel::Unspecified => "in_app",
    }
}

fn channel_of(name: &str) -> Channel {
    match name {
        "email" => Channel::Email,
        "sms" => Channel::Sms,
        "webhook" => Channel::Webhook,
        _ => Channel::InApp,
    }
}

fn topics_to_json(topics: &[TopicPreference]) -> String {
    let topics: Vec<serde_json::Value> = topics
        .iter()
        .map(|topic| {
            serde_json::json!({
                "topic": topic.topic,
                "channels": topic.channels().map(channel_name).collect::<Vec<_>>(),
                "min_severity": topic.min_severity,
                "cadence": topic.cadence,
            })
        })
        .collect();
    serde_json::Value::Array(topics).to_string()
}

fn topics_from_json(text: &str) -> Vec<TopicPreference> {
    let parsed: Vec<serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    parsed
        .iter()
        .map(|topic| TopicPreference {
            topic: topic["topic"].as_str().unwrap_or_default().to_string(),
            channels: topic["channels"]
                .as_array()
                .map(|names| {
                    names.iter().filter_map(|name| name.as_str()).map(|name| channel_of(name) as i32).collect()
                })
                .unwrap_or_default(),
            min_severity: topic["min_severity"].as_i64().and_then(|value| i32::try_from(value).ok()).unwrap_or(0),
            cadence: topic["cadence"].as_i64().and_then(|value| i32::try_from(value).ok()).unwrap_or(0),
        })
        .collect()
}

/// Inserts a notification; `false` when this person already has one from `source`.
pub async fn insert_notification(
    tx: &mut TenantTx,
    notification: &Notification,
    source: &str,
    in_app: bool,
) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let inserted = sqlx::query(
        "INSERT INTO notifications (organization_id, id, user_id, source, topic, severity, title, body, link_uri, \
           in_app, read_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11) \
         ON CONFLICT (organization_id, user_id, source) DO NOTHING",
    )
    .bind(tenant)
    .bind(&notification.id)
    .bind(&notification.user_id)
    .bind(source)
    .bind(&notification.topic)
    .bind(i64::from(notification.severity))
    .bind(&notification.title)
    .bind(&notification.body)
    .bind(&notification.link_uri)
    .bind(i64::from(in_app))
    .bind(notification.create_time.as_ref().map(time::from_timestamp).unwrap_or_else(time::now_micros))
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A delivery as the email job sees it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub notification_id: String,
    pub channel: Channel,
    pub address: String,
    pub state: DeliveryState,
}

fn state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Sent => "sent",
        DeliveryState::Failed => "failed",
        DeliveryState::Suppressed => "suppressed",
        DeliveryState::Pending | DeliveryState::Unspecified => "pending",
    }
}

fn state_of(name: &str) -> DeliveryState {
    match name {
        "sent" => DeliveryState::Sent,
        "failed" => DeliveryState::Failed,
        "suppressed" => DeliveryState::Suppressed,
        _ => DeliveryState::Pending,
    }
}

/// Inserts a delivery; `digest` when it waits for its person's daily digest.
pub async fn insert_delivery(
    tx: &mut TenantTx,
    delivery: &Delivery,
    sent_at: i64,
    digest: bool,
) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO notification_deliveries (organization_id, id, notification_id, channel, address, state, error, \
           sent_at, digest) VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8)",
    )
    .bind(tenant)
    .bind(&delivery.id)
    .bind(&delivery.notification_id)
    .bind(channel_name(delivery.channel))
    .bind(&delivery.address)
    .bind(state_name(delivery.state))
    .bind(sent_at)
    .bind(i64::from(digest))
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The email deliveries waiting for `user_id`'s digest, oldest first, with their notifications.
pub async fn digest_deliveries(tx: &mut TenantTx, user_id: &str) -> Result<Vec<(Delivery, Notification)>, ApiError> {
    let tenant = tx.tenant().to_string();
    // The notification's columns first (as `notification_of` reads them), then the delivery's.
    let columns: Vec<String> = NOTIFICATION_COLUMNS.split(", ").map(|column| format!("n.{column}")).collect();
    let statement = format!(
        "SELECT {}, d.id, d.address FROM notification_deliveries d JOIN notifications n \
           ON n.organization_id = d.organization_id AND n.id = d.notification_id \
         WHERE d.organization_id = $1 AND d.digest = 1 AND d.state = 'pending' AND n.user_id = $2 \
         ORDER BY d.id LIMIT 500",
        columns.join(", ")
    );
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(statement)).bind(&tenant).bind(user_id).fetch_all(tx.connection()).await?;
    let mut waiting = Vec::with_capacity(rows.len());
    for row in &rows {
        let notification = notification_of(&tenant, row)?;
        let delivery = Delivery {
            id: row.try_get(9)?,
            notification_id: notification.id.clone(),
            channel: Channel::Email,
            address: row.try_get(10)?,
            state: DeliveryState::Pending,
        };
        waiting.push((delivery, notification));
    }
    Ok(waiting)
}

/// The time zone of `user_id`'s profile, as last heard (empty: none).
pub async fn profile_time_zone(tx: &mut TenantTx, user_id: &str) -> Result<String, ApiError> {
    let zone: Option<(String,)> =
        sqlx::query_as("SELECT time_zone FROM notification_recipients WHERE organization_id = $1 AND user_id = $2")
            .bind(tx.tenant().to_string())
            .bind(user_id)
            .fetch_optional(tx.connection())
            .await?;
    Ok(zone.map(|(zone,)| zone).unwrap_or_default())
}

pub async fn delivery(tx: &mut TenantTx, id: &str) -> Result<Option<Delivery>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT id, notification_id, channel, address, state FROM notification_deliveries \
         WHERE organization_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(tx.connection())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (channel, state): (String, String) = (row.try_get(2)?, row.try_get(4)?);
    Ok(Some(Delivery {
        id: row.try_get(0)?,
        notification_id: row.try_get(1)?,
        channel: channel_of(&channel),
        address: row.try_get(3)?,
        state: state_of(&state),
    }))
}

/// Ends a pending delivery as sent or failed.
pub async fn finish_delivery(tx: &mut TenantTx, id: &str, state: DeliveryState, error: &str) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE notification_deliveries SET state = $3, error = $4, sent_at = $5 \
         WHERE organization_id = $1 AND id = $2 AND state = 'pending'",
    )
    .bind(tenant)
    .bind(id)
    .bind(state_name(state))
    .bind(error)
    .bind(if state == DeliveryState::Sent { time::now_micros() } else { 0 })
    .execute(tx.connection())
    .await?;
    Ok(())
}

const NOTIFICATION_COLUMNS: &str = "id, user_id, topic, severity, title, body, link_uri, read_at, created_at";

fn notification_of(tenant: &str, row: &sqlx::any::AnyRow) -> Result<Notification, sqlx::Error> {
    let read_at: i64 = row.try_get(7)?;
    let severity: i64 = row.try_get(3)?;
    Ok(Notification {
        id: row.try_get(0)?,
        organization_id: tenant.to_string(),
        user_id: row.try_get(1)?,
        topic: row.try_get(2)?,
        severity: i32::try_from(severity).unwrap_or(Severity::Unspecified as i32),
        title: row.try_get(4)?,
        body: row.try_get(5)?,
        link_uri: row.try_get(6)?,
        deliveries: Vec::new(),
        read: read_at > 0,
        read_time: (read_at > 0).then(|| time::to_timestamp(read_at)),
        create_time: Some(time::to_timestamp(row.try_get(8)?)),
    })
}

/// The deliveries of `notifications`, filled in.
async fn with_deliveries(tx: &mut TenantTx, notifications: &mut [Notification]) -> Result<(), ApiError> {
    if notifications.is_empty() {
        return Ok(());
    }
    let tenant = tx.tenant().to_string();
    let ids: Vec<String> = notifications.iter().map(|n| n.id.clone()).collect();
    let statement = format!(
        "SELECT notification_id, channel, state, error, sent_at FROM notification_deliveries \
         WHERE organization_id = $1 AND notification_id IN ({}) ORDER BY channel",
        complianceiq_kit::db::sql::list(2, ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(tenant);
    for id in &ids {
        query = query.bind(id);
    }
    for row in query.fetch_all(tx.connection()).await? {
        let (notification_id, channel, state): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let sent_at: i64 = row.try_get(4)?;
        if let Some(notification) = notifications.iter_mut().find(|n| n.id == notification_id) {
            notification.deliveries.push(ChannelDelivery {
                channel: channel_of(&channel) as i32,
                state: state_of(&state) as i32,
                error: row.try_get(3)?,
                send_time: (sent_at > 0).then(|| time::to_timestamp(sent_at)),
            });
        }
    }
    Ok(())
}

/// A notification: the person's own when `user_id` is given.
pub async fn notification(
    tx: &mut TenantTx,
    user_id: Option<&str>,
    id: &str,
) -> Result<Option<Notification>, ApiError> {
    let tenant = tx.tenant().to_string();
    let statement = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE organization_id = $1 AND ($2 = '' OR user_id = $2) \
           AND id = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(&tenant)
        .bind(user_id.unwrap_or(""))
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut found = [notification_of(&tenant, &row)?];
    with_deliveries(tx, &mut found).await?;
    let [found] = found;
    Ok(Some(found))
}

/// A person's in-app notifications, newest first, below `before` (an id), unread only if asked.
pub async fn notifications(
    tx: &mut TenantTx,
    user_id: &str,
    unread_only: bool,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Notification>, ApiError> {
    let tenant = tx.tenant().to_string();
    let statement = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE organization_id = $1 AND user_id = $2 \
           AND in_app = 1 AND id < $3 AND ($4 = 0 OR read_at = 0) ORDER BY id DESC LIMIT $5"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(&tenant)
        .bind(user_id)
        .bind(before.unwrap_or("~"))
        .bind(i64::from(unread_only))
        .bind(limit)
        .fetch_all(tx.connection())
        .await?;
    let mut found: Vec<Notification> =
        rows.iter().map(|row| notification_of(&tenant, row)).collect::<Result<_, _>>()?;
    with_deliveries(tx, &mut found).await?;
    Ok(found)
}

pub async fn unread_count(tx: &mut TenantTx, user_id: &str) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT COUNT(*) FROM notifications WHERE organization_id = $1 AND user_id = $2 AND in_app = 1 AND read_at = 0",
    )
    .bind(tenant)
    .bind(user_id)
    .fetch_one(tx.connection())
    .await?;
    Ok(row.try_get(0)?)
}

/// Marks a person's notification read (the first time only).
pub async fn mark_read(tx: &mut TenantTx, user_id: &str, id: &str) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE notifications SET read_at = $4 WHERE organization_id = $1 AND user_id = $2 AND id = $3 AND read_at = 0",
    )
    .bind(&tenant)
    .bind(user_id)
    .bind(id)
    .bind(time::now_micros())
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Deletes a person's notification and its deliveries; whether it existed.
pub async fn delete(tx: &mut TenantTx, user_id: &str, id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let deleted = sqlx::query("DELETE FROM notifications WHERE organization_id = $1 AND user_id = $2 AND id = $3")
        .bind(&tenant)
        .bind(user_id)
        .bind(id)
        .execute(tx.connection())
        .await?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM notification_deliveries WHERE organization_id = $1 AND notification_id = $2")
        .bind(&tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(true)
}

/// Read notifications older than the cutoff go (retention); unread ones stay.
pub const PURGE: &[(&str, &str)] = &[
    (
        "notification_deliveries",
        "DELETE FROM notification_deliveries WHERE organization_id = $1 AND notification_id IN ( \
           SELECT id FROM notifications WHERE organization_id = $1 AND read_at > 0 AND created_at < $2)",
    ),
    ("notifications", "DELETE FROM notifications WHERE organization_id = $1 AND read_at > 0 AND created_at < $2"),
];

/// The organization's own template `name`, if it keeps one.
pub async fn template(tx: &mut TenantTx, name: &str) -> Result<Option<NotificationTemplate>, ApiError> {
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT subject, text, html, updated_by, updated_at FROM notification_templates \
         WHERE organization_id = $1 AND name = $2",
    )
    .bind(tx.tenant().to_string())
    .bind(name)
    .fetch_optional(tx.connection())
    .await?;
    Ok(row.map(|(subject, text, html, updated_by, updated_at)| NotificationTemplate {
        name: name.to_string(),
        subject,
        text,
        html,
        customized: true,
        updated_by,
        update_time: Some(time::to_timestamp(updated_at)),
    }))
}

/// The organization's own template `name` read in its own transaction (for a job).
pub async fn custom_template(
    database: &complianceiq_kit::db::ModuleDatabase,
    organization: complianceiq_kit::ids::OrganizationId,
    name: &str,
) -> Result<Option<NotificationTemplate>, ApiError> {
    let mut tx = database.read(organization).await?;
    let found = template(&mut tx, name).await?;
    tx.commit().await?;
    Ok(found)
}

pub async fn save_template(tx: &mut TenantTx, template: &NotificationTemplate, at: i64) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO notification_templates (organization_id, name, subject, text, html, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (organization_id, name) DO UPDATE SET \
           subject = excluded.subject, text = excluded.text, html = excluded.html, \
           updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(tx.tenant().to_string())
    .bind(&template.name)
    .bind(&template.subject)
    .bind(&template.text)
    .bind(&template.html)
    .bind(&template.updated_by)
    .bind(at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Forgets the organization's template `name`; whether it had one.
pub async fn delete_template(tx: &mut TenantTx, name: &str) -> Result<bool, ApiError> {
    let done = sqlx::query("DELETE FROM notification_templates WHERE organization_id = $1 AND name = $2")
        .bind(tx.tenant().to_string())
        .bind(name)
        .execute(tx.connection())
        .await?;
    Ok(done.rows_affected() > 0)
}
