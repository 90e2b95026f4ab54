//! The notification service (port 8009, core_db): notifications to the organization's
//! members, in-app and by email, from platform events (what notifies whom: `routes`) and
//! from SendNotification, by each person's preferences.
//!
//! Members come from `user.authorization_changed` (email, permissions). A notification is
//! stored once per person and cause (an event id), so a redelivered event sends nothing
//! twice; in-app is delivered when stored, email by a durable job (`email`), held through the
//! person's quiet hours (`quiet`) unless it may not wait, and so is SMS (`sms`); open streams
//! get in-app ones as they arrive (`live`); email a person gathers waits for their daily
//! digest (`digest`); mail is worded by the platform's templates or the organization's own
//! (`templates`).

mod digest;
mod email;
mod live;
mod quiet;
mod routes;
mod sms;
mod store;
mod templates;

use std::sync::Arc;

use complianceiq_kit::auth::caller;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{Migration, ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::{OrganizationId, parse_uuid};
use complianceiq_kit::jobs;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::retention::Retention;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration, time, validate};
use complianceiq_proto::complianceiq::common::v1::Severity;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::notification::v1::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use complianceiq_proto::complianceiq::notification::v1::*;
use complianceiq_proto::{EventPayloadExt, EventType};
use tonic::{Request, Response, Status};

use complianceiq_kit::mail::{MailAttachment, Mailer};

use crate::email::{Emails, Templates};
use crate::live::{Live, NotificationStream};
use crate::routes::{Audience, Content};
use crate::store::Recipient;

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_notifications"),
    migration!(2, "0002_digests"),
    migration!(3, "0003_recipient_time_zone"),
    migration!(4, "0004_templates"),
];

const MAX_TITLE: usize = 200;
const MAX_BODY: usize = 5000;
const MAX_TOPIC: usize = 100;
const MAX_RECIPIENTS: usize = 500;
const MAX_TOPICS: usize = 100;
/// The largest file attached to a report's mail (a larger one goes as a link).
const MAX_ATTACHMENT: usize = 10 * 1024 * 1024;

/// Sends notifications: what the event consumer and SendNotification share.
struct Notifier {
    database: ModuleDatabase,
    templates: Arc<Templates>,
    /// Whether this platform sends texts.
    sms: bool,
}

/// One notification to send.
struct Outgoing<'a> {
    topic: &'a str,
    content: &'a Content,
    /// The route's channels, or the channels SendNotification allows.
    channels: &'a [Channel],
    /// Ignores preferences (security alerts).
    mandatory: bool,
    /// Its email goes in the daily digest unless the person chose otherwise.
    digest: bool,
    /// What caused it: an event id or a request's.
    source: &'a str,
}

impl Notifier {
    /// The person's preference for `outgoing`'s topic: its own, else their `*`.
    fn topic_preference<'p>(
        preferences: Option<&'p NotificationPreferences>,
        outgoing: &Outgoing,
    ) -> Option<&'p TopicPreference> {
        let topics = preferences.map(|p| p.topics.as_slice()).unwrap_or_default();
        topics.iter().find(|t| t.topic == outgoing.topic).or_else(|| topics.iter().find(|t| t.topic == "*"))
    }

    /// The channels a person gets `outgoing` on, by their preferences.
    fn channels_for(preferences: Option<&NotificationPreferences>, outgoing: &Outgoing) -> Vec<Channel> {
        if outgoing.mandatory {
            return outgoing.channels.to_vec();
        }
        match Self::topic_preference(preferences, outgoing) {
            None => outgoing.channels.to_vec(),
            Some(topic) if (outgoing.content.severity as i32) < topic.min_severity => Vec::new(),
            Some(topic) => topic.channels().filter(|channel| outgoing.channels.contains(channel)).collect(),
        }
    }

    /// Whether a person's email of `outgoing` waits for their daily digest.
    fn digested(preferences: Option<&NotificationPreferences>, outgoing: &Outgoing) -> bool {
        if outgoing.mandatory {
            return false;
        }
        match Self::topic_preference(preferences, outgoing).map(TopicPreference::cadence) {
            Some(Cadence::DailyDigest) => true,
            Some(Cadence::Immediate) => false,
            _ => outgoing.digest,
        }
    }

    /// Stores and queues `outgoing` for each recipient; the notifications made.
    async fn send(
        &self,
        tx: &mut TenantTx,
        recipients: &[Recipient],
        outgoing: &Outgoing<'_>,
    ) -> Result<Vec<Notification>, ApiError> {
        let mut made = Vec::new();
        let people: Vec<&str> = recipients.iter().map(|recipient| recipient.user_id.as_str()).collect();
        let saved = store::preferences_of_people(tx, &people).await?;
        for recipient in recipients {
            let preferences = saved.iter().find(|saved| saved.user_id == recipient.user_id);
            let channels = Self::channels_for(preferences, outgoing);
            if channels.is_empty() {
                continue;
            }
            let now = time::now_micros();
            let mut notification = Notification {
                id: uuid::Uuid::now_v7().to_string(),
                organization_id: tx.tenant().to_string(),
                user_id: recipient.user_id.clone(),
                topic: outgoing.topic.to_string(),
                severity: outgoing.content.severity as i32,
                title: outgoing.content.title.clone(),
                body: outgoing.content.body.clone(),
                link_uri: self.templates.link(&outgoing.content.link_path),
                create_time: Some(time::to_timestamp(now)),
                ..Default::default()
            };
            let in_app = channels.contains(&Channel::InApp);
            if !store::insert_notification(tx, &notification, outgoing.source, in_app).await? {
                continue;
            }
            let email = preferences.map(|p| p.email.clone()).filter(|e| !e.is_empty());
            let phone = preferences.map(|p| p.phone_number.clone()).unwrap_or_default();
            let digested = Self::digested(preferences, outgoing);
            // The preferences' time zone, else the profile's.
            let zone = preferences
                .map(|p| p.time_zone.as_str())
                .filter(|zone| !zone.is_empty())
                .unwrap_or(&recipient.time_zone);
            for channel in channels {
                // Delivered as it is stored; the others are jobs.
                let at_once = matches!(channel, Channel::InApp | Channel::Webhook);
                let delivery = store::Delivery {
                    id: uuid::Uuid::now_v7().to_string(),
                    notification_id: notification.id.clone(),
                    channel,
                    address: match channel {
                        Channel::Email => email.clone().unwrap_or_else(|| recipient.email.clone()),
                        Channel::Sms => phone.clone(),
                        _ => recipient.user_id.clone(),
                    },
                    state: if at_once { DeliveryState::Sent } else { DeliveryState::Pending },
                };
                let in_digest = digested && channel == Channel::Email;
                store::insert_delivery(tx, &delivery, if at_once { now } else { 0 }, in_digest).await?;
                let mut state = delivery.state;
                let mut error = String::new();
                match channel {
                    Channel::InApp => email::sent(tx, &notification, "in_app").await?,
                    // Handed over: the webhook service delivers `notification.sent` to the
                    // organization's endpoints that subscribe to it.
                    Channel::Webhook => email::sent(tx, &notification, "webhook").await?,
                    Channel::Email if in_digest => {
                        let digest_time = preferences.map(|p| p.digest_time.as_str()).unwrap_or_default();
                        digest::schedule(tx, &recipient.user_id, digest_time, zone).await?;
                    }
                    Channel::Sms if delivery.address.is_empty() => {
                        (state, error) = (DeliveryState::Suppressed, "no phone number in the preferences".into());
                        store::finish_delivery(tx, &delivery.id, state, &error).await?;
                    }
                    _ => {
                        // Held until the person's quiet hours end, unless it may not wait.
                        let held = preferences
                            .filter(|_| !outgoing.mandatory)
                            .and_then(|p| quiet::quiet_until(&p.quiet_hours_start, &p.quiet_hours_end, zone, now));
                        let kind = if channel == Channel::Sms { sms::KIND } else { email::KIND };
                        jobs::enqueue_at(tx, kind, &delivery.id, held.unwrap_or(0)).await?
                    }
                }
                notification.deliveries.push(ChannelDelivery {
                    channel: channel as i32,
                    state: state as i32,
                    error,
                    send_time: at_once.then(|| time::to_timestamp(now)),
                });
            }
            made.push(notification);
        }
        Ok(made)
    }
}

/// Notifies whom the routes say, for each event that has a route.
struct EventNotifier {
    notifier: Arc<Notifier>,
}

#[tonic::async_trait]
impl EventHandler for EventNotifier {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Some(payload) = &event.payload else { return Ok(()) };
        let (Some(route), Some(content)) = (routes::route_of(payload.kind()), routes::content(event)) else {
            return Ok(());
        };
        let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else { return Ok(()) };
        let mut tx = self.notifier.database.write(organization).await?;
        let members = store::recipients(&mut tx).await?;
        let audience: Vec<Recipient> = members
            .into_iter()
            .filter(|member| match route.audience {
                Audience::Holders(permission) => member.permissions.iter().any(|held| held == permission),
                Audience::Actor => member.user_id == event.actor_user_id,
                Audience::Subject => member.user_id == content.subject_user_id,
            })
            .collect();
        let outgoing = Outgoing {
            topic: route.topic,
            content: &content,
            channels: route.channels,
            mandatory: route.mandatory,
            digest: route.digest,
            source: &event.id,
        };
        self.notifier.send(&mut tx, &audience, &outgoing).await?;
        tx.commit().await
    }
}

/// Keeps the members who can be notified, from `user.authorization_changed`.
struct Members {
    database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for Members {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Some(Payload::UserAuthorizationChanged(changed)) = &event.payload else { return Ok(()) };
        let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else { return Ok(()) };
        let recipient = Recipient {
            user_id: changed.user_id.clone(),
            email: changed.email.clone(),
            permissions: changed.permissions.clone(),
            time_zone: changed.time_zone.clone(),
        };
        let mut tx = self.database.write(organization).await?;
        store::upsert_recipient(&mut tx, &recipient, changed.active, changed.version).await?;
        tx.commit().await
    }
}

struct NotificationApi {
    notifier: Arc<Notifier>,
    live: Arc<Live>,
    mailer: Arc<dyn Mailer>,
}

/// `name` if it names a template there is.
fn known_template(name: &str) -> Result<&'static str, ApiError> {
    templates::NAMES.into_iter().find(|known| *known == name).ok_or_else(|| {
        ApiError::invalid_field(
            "name",
            "UNKNOWN_TEMPLATE",
            format!("name must be one of {}", templates::NAMES.join(", ")),
        )
    })
}

fn sms_refused() -> ApiError {
    ApiError::FailedPrecondition {
        reason: "SMS_NOT_CONFIGURED",
        message: "this platform has no SMS provider configured; use EMAIL or IN_APP".into(),
    }
}

/// Checks requested channels: known, and SMS only where a provider is configured.
fn check_channels(
    violations: &mut FieldViolations,
    field: &str,
    channels: &[i32],
    sms: bool,
) -> Result<Vec<Channel>, ApiError> {
    let mut checked = Vec::new();
    for value in channels {
        match Channel::try_from(*value) {
            Ok(Channel::Sms) if !sms => return Err(sms_refused()),
            Ok(channel @ (Channel::Email | Channel::InApp | Channel::Sms | Channel::Webhook)) => {
                if !checked.contains(&channel) {
                    checked.push(channel);
                }
            }
            _ => violations.add(field, "INVALID", format!("{field} holds {value}, which is not a channel")),
        }
    }
    Ok(checked)
}

impl NotificationApi {
    fn database(&self) -> &ModuleDatabase {
        &self.notifier.database
    }

    /// Mails one report rendering to one recipient, in the organization's report template.
    async fn deliver_report(&self, request: DeliverReportRequest) -> Result<(), ApiError> {
        let mut violations = FieldViolations::default();
        let organization = violations.uuid("organization_id", &request.organization_id);
        violations.uuid("report_run_id", &request.report_run_id);
        if request.report_name.trim().is_empty() {
            violations.required("report_name");
        }
        let recipient = validate::email("recipient", &request.recipient, &mut violations);
        let (link, file) = match &request.content {
            Some(deliver_report_request::Content::LinkUri(link)) if !link.is_empty() => (link.as_str(), None),
            Some(deliver_report_request::Content::Attachment(file)) => {
                if file.file_name.is_empty() || file.content_type.is_empty() {
                    violations.required("attachment.file_name");
                }
                if file.data.len() > MAX_ATTACHMENT {
                    violations.add(
                        "attachment.data",
                        "TOO_LARGE",
                        format!("at most {MAX_ATTACHMENT} bytes; send a link"),
                    );
                }
                ("", Some(file))
            }
            _ => {
                violations.required("content");
                ("", None)
            }
        };
        violations.check()?;
        let organization = OrganizationId::from_stored(&organization)?;
        let custom = store::custom_template(self.database(), organization, "report").await?;
        let stamp =
            |time: &Option<_>| time.as_ref().map(|time: &prost_types::Timestamp| time.to_string()).unwrap_or_default();
        let (rendered, expires) = (stamp(&request.render_time), stamp(&request.link_expire_time));
        let content = templates::ReportMail {
            name: request.report_name.trim(),
            rendered: &rendered,
            link,
            expires: &expires,
            file: file.map(|file| file.file_name.as_str()).unwrap_or_default(),
        };
        let mut mail = self.notifier.templates.report(&recipient, &content, custom.as_ref())?;
        if let Some(file) = file {
            mail.attachments.push(MailAttachment {
                file_name: file.file_name.clone(),
                content_type: file.content_type.clone(),
                data: file.data.clone(),
            });
        }
        self.mailer.send(mail).await?;
        tracing::info!(report_run_id = %request.report_run_id, attached = file.is_some(), "report mailed");
        Ok(())
    }

    async fn send(&self, request: Request<SendNotificationRequest>) -> Result<SendNotificationResponse, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request_id = RequestContext::of(&request).request_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        if request.user_ids.is_empty() {
            violations.required("user_ids");
        }
        if request.user_ids.len() > MAX_RECIPIENTS {
            violations.add("user_ids", "TOO_MANY", format!("at most {MAX_RECIPIENTS} recipients per call"));
        }
        for user_id in &request.user_ids {
            violations.uuid("user_ids", user_id);
        }
        violations.text("topic", &request.topic, MAX_TOPIC);
        violations.text("title", &request.title, MAX_TITLE);
        violations.max_chars("body", &request.body, MAX_BODY);
        // Links lead into the platform only: a path under its public URL.
        if !request.link_uri.is_empty() && (!request.link_uri.starts_with('/') || request.link_uri.starts_with("//")) {
            violations.add(
                "link_uri",
                "INVALID_FORMAT",
                "link_uri must be a path in the application, like /api/v1/...",
            );
        }
        let severity = Severity::try_from(request.severity).unwrap_or_else(|_| {
            violations.add("severity", "INVALID", "not a severity");
            Severity::Unspecified
        });
        let mut channels = check_channels(&mut violations, "channels", &request.channels, self.notifier.sms)?;
        violations.check()?;
        if channels.is_empty() {
            channels = vec![Channel::InApp, Channel::Email];
        }
        let content = Content {
            severity,
            title: request.title.trim().to_string(),
            body: request.body,
            link_path: request.link_uri,
            subject_user_id: String::new(),
        };
        let mut tx = self.database().write(organization).await?;
        let members = store::recipients(&mut tx).await?;
        let mut recipients = Vec::new();
        for user_id in &request.user_ids {
            let member = members.iter().find(|member| &member.user_id == user_id).ok_or_else(|| {
                ApiError::invalid_field(
                    "user_ids",
                    "NOT_A_MEMBER",
                    format!("{user_id} is not a member of the organization"),
                )
            })?;
            if !recipients.iter().any(|known: &Recipient| known.user_id == member.user_id) {
                recipients.push(member.clone());
            }
        }
        let source = format!("request:{request_id}:{}", uuid::Uuid::now_v7());
        let outgoing = Outgoing {
            topic: request.topic.trim(),
            content: &content,
            channels: &channels,
            mandatory: false,
            digest: false,
            source: &source,
        };
        let notifications = self.notifier.send(&mut tx, &recipients, &outgoing).await?;
        tx.commit().await?;
        Ok(SendNotificationResponse { notifications })
    }

    async fn list(&self, request: Request<ListNotificationsRequest>) -> Result<ListNotificationsResponse, ApiError> {
        let identity = caller(&request)?;
        let organization = identity.tenant()?;
        let user_id = identity.user_id.to_string();
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token, &format!("{}", request.unread_only))?;
        let before = page.after.as_ref().and_then(|key| key.first().cloned());
        let mut tx = self.database().read(organization).await?;
        let mut notifications =
            store::notifications(&mut tx, &user_id, request.unread_only, before.as_deref(), page.fetch_limit()).await?;
        let unread = store::unread_count(&mut tx, &user_id).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut notifications, |notification| vec![notification.id.clone()]);
        Ok(ListNotificationsResponse {
            notifications,
            next_page_token,
            unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
        })
    }

    /// The caller's notification `id`, marked read first when `mark_read`.
    async fn own(
        &self,
        identity: &complianceiq_kit::auth::Identity,
        id: &str,
        mark_read: bool,
    ) -> Result<Notification, ApiError> {
        let organization = identity.tenant()?;
        let user_id = identity.user_id.to_string();
        let id = parse_uuid("notification_id", id)?.to_string();
        let mut tx = if mark_read {
            self.database().write(organization).await?
        } else {
            self.database().read(organization).await?
        };
        if mark_read {
            store::mark_read(&mut tx, &user_id, &id).await?;
        }
        let found = store::notification(&mut tx, Some(&user_id), &id)
            .await?
            .ok_or_else(|| ApiError::not_found("Notification", &id))?;
        tx.commit().await?;
        Ok(found)
    }

    async fn preferences_of(&self, tx: &mut TenantTx, user_id: &str) -> Result<NotificationPreferences, ApiError> {
        Ok(store::preferences(tx, user_id).await?.unwrap_or_else(|| NotificationPreferences {
            user_id: user_id.to_string(),
            organization_id: tx.tenant().to_string(),
            ..Default::default()
        }))
    }

    async fn update_preferences(
        &self,
        request: Request<UpdateNotificationPreferencesRequest>,
    ) -> Result<NotificationPreferences, ApiError> {
        let identity = caller(&request)?;
        let organization = identity.tenant()?;
        let user_id = identity.user_id.to_string();
        let request = request.into_inner();
        let input = request.preferences.unwrap_or_default();
        let paths: Vec<String> = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
        let set = |path: &str, populated: bool| {
            if paths.is_empty() { populated } else { paths.iter().any(|p| p == path || p == "*") }
        };
        let mut violations = FieldViolations::default();
        for path in &paths {
            if ![
                "*",
                "email",
                "phone_number",
                "topics",
                "quiet_hours_start",
                "quiet_hours_end",
                "time_zone",
                "digest_time",
            ]
            .contains(&path.as_str())
            {
                violations.add(
                    "update_mask",
                    "UNKNOWN_FIELD",
                    format!("update_mask names {path:?}, which is not an updatable field"),
                );
            }
        }
        let mut tx = self.database().write(organization).await?;
        let mut next = self.preferences_of(&mut tx, &user_id).await?;
        if set("email", !input.email.is_empty()) {
            next.email = if input.email.is_empty() {
                String::new()
            } else {
                validate::email("preferences.email", &input.email, &mut violations)
            };
        }
        if set("phone_number", !input.phone_number.is_empty()) {
            let phone = input.phone_number.trim();
            let e164 = phone
                .strip_prefix('+')
                .is_some_and(|digits| (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()));
            if !phone.is_empty() && !e164 {
                violations.add(
                    "preferences.phone_number",
                    "INVALID_FORMAT",
                    "preferences.phone_number must be E.164, like +14155550100",
                );
            }
            next.phone_number = phone.to_string();
        }
        if set("topics", !input.topics.is_empty()) {
            if input.topics.len() > MAX_TOPICS {
                violations.add("preferences.topics", "TOO_MANY", format!("at most {MAX_TOPICS} topics"));
            }
            let mut topics: Vec<TopicPreference> = Vec::new();
            for topic in &input.topics {
                violations.text("preferences.topics.topic", &topic.topic, MAX_TOPIC);
                let channels =
                    check_channels(&mut violations, "preferences.topics.channels", &topic.channels, self.notifier.sms)?;
                if Severity::try_from(topic.min_severity).is_err() {
                    violations.add("preferences.topics.min_severity", "INVALID", "not a severity");
                }
                if Cadence::try_from(topic.cadence).is_err() {
                    violations.add("preferences.topics.cadence", "INVALID", "not a cadence");
                }
                if topics.iter().any(|known| known.topic == topic.topic) {
                    violations.add("preferences.topics", "DUPLICATE", format!("topic {:?} appears twice", topic.topic));
                }
                topics.push(TopicPreference {
                    topic: topic.topic.trim().to_string(),
                    channels: channels.into_iter().map(|c| c as i32).collect(),
                    min_severity: topic.min_severity,
                    cadence: topic.cadence,
                });
            }
            next.topics = topics;
        }
        for (path, value, target) in [
            ("quiet_hours_start", &input.quiet_hours_start, &mut next.quiet_hours_start),
            ("quiet_hours_end", &input.quiet_hours_end, &mut next.quiet_hours_end),
            ("digest_time", &input.digest_time, &mut next.digest_time),
        ] {
            if set(path, !value.is_empty()) {
                if !value.is_empty() && quiet::parse_clock(value).is_none() {
                    violations.add(
                        &format!("preferences.{path}"),
                        "INVALID_FORMAT",
                        format!("preferences.{path} must be HH:MM"),
                    );
                }
                *target = value.clone();
            }
        }
        if next.quiet_hours_start.is_empty() != next.quiet_hours_end.is_empty() {
            violations.add("preferences.quiet_hours_end", "INCOMPLETE", "quiet hours need both a start and an end");
        }
        if set("time_zone", !input.time_zone.is_empty()) {
            if quiet::zone(&input.time_zone).is_none() {
                violations.add(
                    "preferences.time_zone",
                    "UNKNOWN_TIME_ZONE",
                    "preferences.time_zone must be an IANA time zone like Europe/Berlin",
                );
            }
            next.time_zone = input.time_zone.clone();
        }
        violations.check()?;
        next.update_time = Some(time::to_timestamp(time::now_micros()));
        store::save_preferences(&mut tx, &next).await?;
        tx.commit().await?;
        Ok(next)
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn send_notification(
        &self,
        request: Request<SendNotificationRequest>,
    ) -> Result<Response<SendNotificationResponse>, Status> {
        Ok(Response::new(self.send(request).await?))
    }

    async fn deliver_report(
        &self,
        request: Request<DeliverReportRequest>,
    ) -> Result<Response<DeliverReportResponse>, Status> {
        self.deliver_report(request.into_inner()).await?;
        Ok(Response::new(DeliverReportResponse {}))
    }

    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        Ok(Response::new(self.list(request).await?))
    }

    async fn get_notification(
        &self,
        request: Request<GetNotificationRequest>,
    ) -> Result<Response<Notification>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.own(&identity, &request.get_ref().notification_id, false).await?))
    }

    async fn mark_notification_read(
        &self,
        request: Request<MarkNotificationReadRequest>,
    ) -> Result<Response<Notification>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.own(&identity, &request.get_ref().notification_id, true).await?))
    }

    async fn delete_notification(&self, request: Request<DeleteNotificationRequest>) -> Result<Response<()>, Status> {
        let identity = caller(&request)?;
        let organization = identity.tenant()?;
        let id = parse_uuid("notification_id", &request.get_ref().notification_id)?.to_string();
        let mut tx = self.database().write(organization).await?;
        if !store::delete(&mut tx, &identity.user_id.to_string(), &id).await? {
            return Err(ApiError::not_found("Notification", &id).into());
        }
        tx.commit().await?;
        Ok(Response::new(()))
    }

    async fn stream_notifications(
        &self,
        request: Request<StreamNotificationsRequest>,
    ) -> Result<Response<NotificationStream>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.live.stream(self.database().clone(), &identity).await?))
    }

    async fn get_notification_template(
        &self,
        request: Request<GetNotificationTemplateRequest>,
    ) -> Result<Response<NotificationTemplate>, Status> {
        let organization = caller(&request)?.tenant()?;
        let name = known_template(&request.get_ref().name)?;
        let mut tx = self.database().read(organization).await?;
        let custom = store::template(&mut tx, name).await?;
        tx.commit().await?;
        Ok(Response::new(custom.or_else(|| templates::platform(name)).unwrap_or_default()))
    }

    async fn update_notification_template(
        &self,
        request: Request<UpdateNotificationTemplateRequest>,
    ) -> Result<Response<NotificationTemplate>, Status> {
        let identity = caller(&request)?;
        let organization = identity.tenant()?;
        let request = request.into_inner();
        let name = known_template(&request.name)?;
        let mut violations = FieldViolations::default();
        let Some(mut template) = request.template else {
            violations.required("template");
            return Err(violations.check().expect_err("a violation").into());
        };
        template.name = name.to_string();
        self.notifier.templates.check(&template, &mut violations);
        violations.check()?;
        let now = time::now_micros();
        template.customized = true;
        template.updated_by = identity.user_id.to_string();
        template.update_time = Some(time::to_timestamp(now));
        let mut tx = self.database().write(organization).await?;
        store::save_template(&mut tx, &template, now).await?;
        tx.commit().await?;
        Ok(Response::new(template))
    }

    async fn delete_notification_template(
        &self,
        request: Request<DeleteNotificationTemplateRequest>,
    ) -> Result<Response<()>, Status> {
        let organization = caller(&request)?.tenant()?;
        let name = known_template(&request.get_ref().name)?;
        let mut tx = self.database().write(organization).await?;
        if !store::delete_template(&mut tx, name).await? {
            return Err(ApiError::not_found("NotificationTemplate", name).into());
        }
        tx.commit().await?;
        Ok(Response::new(()))
    }

    async fn get_notification_preferences(
        &self,
        request: Request<GetNotificationPreferencesRequest>,
    ) -> Result<Response<NotificationPreferences>, Status> {
        let identity = caller(&request)?;
        let mut tx = self.database().read(identity.tenant()?).await?;
        let preferences = self.preferences_of(&mut tx, &identity.user_id.to_string()).await?;
        tx.commit().await?;
        Ok(Response::new(preferences))
    }

    async fn update_notification_preferences(
        &self,
        request: Request<UpdateNotificationPreferencesRequest>,
    ) -> Result<Response<NotificationPreferences>, Status> {
        Ok(Response::new(self.update_preferences(request).await?))
    }
}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("notification"),
        port: 8009,
        database: Some(DatabaseGroup::Core),
        calls: &[],
        migrations: MIGRATIONS,
        reseal: None,
        build: |context| {
            Box::pin(async move {
                let database = context.database()?;
                let templates = Arc::new(Templates::new(&context.config.mail.public_url));
                let sms = Arc::new(sms::Sms::from_config(&context.config)?);
                let notifier = Arc::new(Notifier {
                    database: database.clone(),
                    templates: templates.clone(),
                    sms: sms.available(),
                });
                let texts = Arc::new(sms::Texts { database: database.clone(), sms });
                let members = Subscription {
                    consumer: "notification-members",
                    events: vec![EventType::UserAuthorizationChanged],
                    handler: Arc::new(Members { database: database.clone() }),
                };
                let events = Subscription {
                    consumer: "notification-events",
                    events: routes::ROUTES.iter().map(|route| route.event).collect(),
                    handler: Arc::new(EventNotifier { notifier: notifier.clone() }),
                };
                let retention = Retention { module: "notification", database: database.clone(), purge: store::PURGE };
                let (settings, metrics) = (context.config.jobs.worker_settings(), context.metrics.clone());
                let digests = Arc::new(digest::Digests {
                    database: database.clone(),
                    mailer: context.mailer.clone(),
                    templates: templates.clone(),
                });
                let emails = Arc::new(Emails { database: database.clone(), mailer: context.mailer.clone(), templates });
                let sending =
                    jobs::worker("notification-email", database.clone(), emails, settings.clone(), metrics.clone());
                let texting =
                    jobs::worker("notification-sms", database.clone(), texts, settings.clone(), metrics.clone());
                let digesting = jobs::worker("notification-digest", database.clone(), digests, settings, metrics);
                let live = Live::new();
                Ok(ModuleParts::new()
                    .service(
                        // A report's attachment may reach MAX_ATTACHMENT.
                        NotificationServiceServer::new(NotificationApi {
                            notifier,
                            live: live.clone(),
                            mailer: context.mailer.clone(),
                        })
                        .max_decoding_message_size(2 * MAX_ATTACHMENT),
                    )
                    .worker(live.follower(context.bus.clone()))
                    .subscription(members)
                    .subscription(events)
                    .subscription(retention.subscription("notification-retention"))
                    .worker(retention.worker())
                    .worker(sending)
                    .worker(texting)
                    .worker(digesting))
            })
        },
    }
}

#[cfg(test)]
mod tests {
    use complianceiq_kit::config::{PlatformConfig, RunMode};

    use super::*;

    #[test]
    fn sms_is_offered_only_where_something_sends_it() {
        let mut config = PlatformConfig::embedded(std::env::temp_dir());
        assert!(matches!(sms::Sms::from_config(&config), Ok(sms::Sms::Sink(_))), "dev files texts");
        config.mode = RunMode::Production;
        let unavailable = sms::Sms::from_config(&config).unwrap();
        assert!(!unavailable.available());
        let refused = check_channels(&mut FieldViolations::default(), "channels", &[Channel::Sms as i32], false);
        assert!(matches!(refused, Err(ApiError::FailedPrecondition { reason: "SMS_NOT_CONFIGURED", .. })));
        config.sms.account_sid = Some("AC123".into());
        assert!(sms::Sms::from_config(&config).is_err(), "a half-configured provider is refused at start");
        config.sms.auth_token = Some("token".into());
        config.sms.from = Some("+14155550100".into());
        assert!(sms::Sms::from_config(&config).unwrap().available());
    }
}
