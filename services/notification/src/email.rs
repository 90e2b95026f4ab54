//! Email: each notification as a multipart message (plain text and HTML from templates,
//! `minijinja`, HTML escaped), sent by a durable job per delivery (kind `notification-email`,
//! id the delivery's) through the kit's mailer (SMTP, or the dev mailbox). A failed send is
//! retried with the kit's backoff; after the last attempt the delivery is FAILED.

use std::sync::Arc;

use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::jobs::{Ending, Job, JobHandler, Stop};
use complianceiq_kit::mail::{Mail, Mailer};
use complianceiq_proto::complianceiq::events::v1::NotificationSent;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::notification::v1::{DeliveryState, Notification};
use tokio_util::sync::CancellationToken;

use crate::store;

pub const KIND: &str = "notification-email";

const TEXT: &str = "{{ title }}

{{ body }}
{% if link %}
Open it: {{ link }}
{% endif %}
--
ComplianceIQ. You receive this because of your notification preferences: {{ preferences }}
";

const HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; max-width: 40em">
<h2>{{ title }}</h2>
<p>{{ body }}</p>
{% if link %}<p><a href="{{ link }}">Open it in ComplianceIQ</a></p>{% endif %}
<hr><p style="color: #666; font-size: small">You receive this because of your
<a href="{{ preferences }}">notification preferences</a>.</p>
</body></html>
"#;

const DIGEST_TEXT: &str = "Your ComplianceIQ digest: {{ items|length }} notification{{ 's' if items|length != 1 }}
{% for item in items %}
- {{ item.title }}{% if item.body %}
  {{ item.body }}{% endif %}{% if item.link %}
  {{ item.link }}{% endif %}
{% endfor %}
--
ComplianceIQ. You receive this digest because of your notification preferences: {{ preferences }}
";

const DIGEST_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; max-width: 40em">
<h2>Your ComplianceIQ digest</h2>
<ul>
{% for item in items %}<li><p><strong>{% if item.link %}<a href="{{ item.link }}">{{ item.title }}</a>{% else %}{{ item.title }}{% endif %}</strong>{% if item.body %}<br>{{ item.body }}{% endif %}</p></li>
{% endfor %}</ul>
<hr><p style="color: #666; font-size: small">You receive this digest because of your
<a href="{{ preferences }}">notification preferences</a>.</p>
</body></html>
"#;

/// The templates, parsed once.
pub struct Templates {
    environment: minijinja::Environment<'static>,
    public_url: String,
}

impl Templates {
    pub fn new(public_url: &str) -> Self {
        let mut environment = minijinja::Environment::new();
        environment.add_template("notification.txt", TEXT).expect("the text template parses");
        environment.add_template("notification.html", HTML).expect("the HTML template parses");
        environment.add_template("digest.txt", DIGEST_TEXT).expect("the digest text template parses");
        environment.add_template("digest.html", DIGEST_HTML).expect("the digest HTML template parses");
        Self { environment, public_url: public_url.trim_end_matches('/').to_string() }
    }

    /// A notification's link: its path under the platform's public URL.
    pub fn link(&self, path: &str) -> String {
        if path.is_empty() { String::new() } else { format!("{}{path}", self.public_url) }
    }

    /// The mail of a notification to `to`.
    pub fn mail(&self, to: &str, notification: &Notification) -> Result<Mail, ApiError> {
        let context = minijinja::context! {
            title => notification.title,
            body => notification.body,
            link => notification.link_uri,
            preferences => self.link("/api/v1/notifications/preferences"),
        };
        self.render(to, &notification.title, "notification", context)
    }

    /// One mail to `to` gathering `notifications`, oldest first.
    pub fn digest(&self, to: &str, notifications: &[Notification]) -> Result<Mail, ApiError> {
        let items: Vec<minijinja::Value> = notifications
            .iter()
            .map(|n| minijinja::context! { title => n.title, body => n.body, link => n.link_uri })
            .collect();
        let subject = match notifications.len() {
            1 => "Your ComplianceIQ digest: 1 notification".to_string(),
            count => format!("Your ComplianceIQ digest: {count} notifications"),
        };
        let context = minijinja::context! {
            items => items,
            preferences => self.link("/api/v1/notifications/preferences"),
        };
        self.render(to, &subject, "digest", context)
    }

    /// `<name>.txt` and `<name>.html` rendered with `context`, as a mail.
    fn render(&self, to: &str, subject: &str, name: &str, context: minijinja::Value) -> Result<Mail, ApiError> {
        let render = |file: String| {
            self.environment
                .get_template(&file)
                .and_then(|template| template.render(&context))
                .map_err(|error| ApiError::internal(format!("rendering {file}: {error}")))
        };
        Ok(Mail {
            to: to.to_string(),
            subject: subject.to_string(),
            body: render(format!("{name}.txt"))?,
            html: Some(render(format!("{name}.html"))?),
        })
    }
}

/// The email jobs.
pub struct Emails {
    pub database: ModuleDatabase,
    pub mailer: Arc<dyn Mailer>,
    pub templates: Arc<Templates>,
}

impl JobHandler for Emails {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, _stop: &CancellationToken) -> Result<(), Stop> {
        deliver(&self.database, job, "email", async |delivery, notification| {
            let mail = self.templates.mail(&delivery.address, notification)?;
            self.mailer.send(mail).await.map_err(|error| Stop::Retry(error.to_string()))
        })
        .await
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        failed(tx, job, ending, "email").await
    }
}

/// One delivery job of a channel: the delivery and its notification read, `send` run if both
/// are still there and it is pending, then the delivery marked SENT and `notification.sent`
/// emitted together.
pub async fn deliver(
    database: &ModuleDatabase,
    job: &Job,
    channel: &str,
    send: impl AsyncFnOnce(&store::Delivery, &Notification) -> Result<(), Stop>,
) -> Result<(), Stop> {
    let mut tx = database.read(job.organization).await?;
    let Some(delivery) = store::delivery(&mut tx, &job.id).await? else { return Ok(()) };
    let notification = store::notification(&mut tx, None, &delivery.notification_id).await?;
    tx.commit().await?;
    // Deleted by its reader, or already sent (a resumed job): nothing to send.
    let Some(notification) = notification else { return Ok(()) };
    if delivery.state != DeliveryState::Pending {
        return Ok(());
    }
    send(&delivery, &notification).await?;
    let mut tx = database.write(job.organization).await?;
    store::finish_delivery(&mut tx, &delivery.id, DeliveryState::Sent, "").await?;
    sent(&mut tx, &notification, channel).await?;
    tx.commit().await?;
    Ok(())
}

/// A delivery job's end: FAILED with the reason after its last attempt.
pub async fn failed(tx: &mut TenantTx, job: &Job, ending: &Ending, channel: &str) -> Result<(), ApiError> {
    if let Ending::Failed(error) = ending {
        tracing::warn!(delivery_id = %job.id, channel, %error, "a notification could not be delivered");
        store::finish_delivery(tx, &job.id, DeliveryState::Failed, error).await?;
    }
    Ok(())
}

/// Emits `notification.sent` for a notification delivered on `channel`.
pub async fn sent(tx: &mut TenantTx, notification: &Notification, channel: &str) -> Result<(), ApiError> {
    let payload = Payload::NotificationSent(NotificationSent {
        notification_id: notification.id.clone(),
        user_id: notification.user_id.clone(),
        topic: notification.topic.clone(),
        channels: vec![channel.to_string()],
    });
    let context = RequestContext { request_id: notification.id.clone(), ..Default::default() };
    tx.emit(payload, &context).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_lists_every_notification_in_both_parts() {
        let templates = Templates::new("https://ciq.example.com");
        let notifications = [
            Notification {
                title: "Analysis done".into(),
                link_uri: "https://ciq.example.com/a".into(),
                ..Default::default()
            },
            Notification { title: "Risks <reviewed>".into(), body: "3 understated".into(), ..Default::default() },
        ];
        let mail = templates.digest("ada@example.com", &notifications).unwrap();
        assert_eq!(mail.subject, "Your ComplianceIQ digest: 2 notifications");
        assert!(mail.body.contains("- Analysis done\n  https://ciq.example.com/a"), "{}", mail.body);
        assert!(mail.body.contains("- Risks <reviewed>\n  3 understated"), "{}", mail.body);
        let html = mail.html.unwrap();
        assert!(html.contains(r#"<a href="https:&#x2f;&#x2f;ciq.example.com&#x2f;a">Analysis done</a>"#), "{html}");
        assert!(html.contains("Risks &lt;reviewed&gt;"), "{html}");
    }

    #[test]
    fn mails_have_both_parts_and_escape_html() {
        let templates = Templates::new("https://ciq.example.com/");
        let notification = Notification {
            title: "Sync failed".into(),
            body: "<script>alert(1)</script> & more".into(),
            link_uri: templates.link("/api/v1/instances/i1"),
            ..Default::default()
        };
        let mail = templates.mail("a@example.com", &notification).unwrap();
        assert_eq!(mail.subject, "Sync failed");
        assert!(mail.body.contains("<script>alert(1)</script> & more"), "{}", mail.body);
        assert!(mail.body.contains("Open it: https://ciq.example.com/api/v1/instances/i1"));
        let html = mail.html.unwrap();
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; more"), "{html}");
        assert!(
            html.contains(r#"<a href="https:&#x2f;&#x2f;ciq.example.com&#x2f;api&#x2f;v1&#x2f;instances&#x2f;i1">"#),
            "{html}"
        );
    }
}
