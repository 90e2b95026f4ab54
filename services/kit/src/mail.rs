//! Outgoing mail: SMTP when configured, otherwise a mailbox folder in the data directory
//! where every message lands as an .eml file a person (or a test) can open.

use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tonic::async_trait;

use crate::config::PlatformConfig;
use crate::error::ApiError;

/// A message to one recipient.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The same as HTML, sent beside the text (multipart/alternative) when given.
    pub html: Option<String>,
    /// Files sent with it (multipart/mixed).
    pub attachments: Vec<MailAttachment>,
}

/// A file attached to a mail.
#[derive(Clone, Default)]
pub struct MailAttachment {
    pub file_name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for MailAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {} bytes)", self.file_name, self.content_type, self.data.len())
    }
}

/// Mail failures.
#[derive(Debug, thiserror::Error)]
#[error("mail: {0}")]
pub struct MailError(pub String);

impl From<MailError> for ApiError {
    fn from(error: MailError) -> Self {
        ApiError::Unavailable {
            reason: "MAIL_UNAVAILABLE",
            message: "mail could not be sent; try again".into(),
            retry_after: Some(std::time::Duration::from_secs(5)),
        }
        .log_cause(&error)
    }
}

/// Sends mail.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one message.
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}

fn build(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail.to.parse().map_err(|e| MailError(format!("recipient {:?}: {e}", mail.to)))?;
    let builder = Message::builder().from(from.clone()).to(to).subject(mail.subject.clone());
    let alternative = || mail.html.clone().map(|html| MultiPart::alternative_plain_html(mail.body.clone(), html));
    let mut parts = match (alternative(), mail.attachments.is_empty()) {
        (None, true) => {
            return builder
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body.clone())
                .map_err(|e| MailError(e.to_string()));
        }
        (Some(alternative), true) => return builder.multipart(alternative).map_err(|e| MailError(e.to_string())),
        (Some(alternative), false) => MultiPart::mixed().multipart(alternative),
        (None, false) => MultiPart::mixed().singlepart(SinglePart::plain(mail.body.clone())),
    };
    for attachment in &mail.attachments {
        let content_type = ContentType::parse(&attachment.content_type)
            .map_err(|e| MailError(format!("attachment {:?}: {e}", attachment.file_name)))?;
        parts =
            parts.singlepart(Attachment::new(attachment.file_name.clone()).body(attachment.data.clone(), content_type));
    }
    builder.multipart(parts).map_err(|e| MailError(e.to_string()))
}

/// Writes each message to `<dir>/<time>-<recipient>.eml`.
pub struct MailboxDirectory {
    dir: PathBuf,
    from: Mailbox,
}

#[async_trait]
impl Mailer for MailboxDirectory {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build(&self.from, &mail)?;
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| MailError(format!("{}: {e}", self.dir.display())))?;
        let safe_recipient: String =
            mail.to.chars().map(|c| if c.is_ascii_alphanumeric() || "@.-_".contains(c) { c } else { '_' }).collect();
        let name = format!("{}-{safe_recipient}.eml", uuid::Uuid::now_v7().simple());
        let path = self.dir.join(name);
        tokio::fs::write(&path, message.formatted())
            .await
            .map_err(|e| MailError(format!("{}: {e}", path.display())))?;
        tracing::info!(to = %mail.to, subject = %mail.subject, path = %path.display(), "mail written to the dev mailbox");
        Ok(())
    }
}

/// SMTP through lettre (rustls on ring).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build(&self.from, &mail)?;
        self.transport.send(message).await.map_err(|e| MailError(format!("SMTP: {e}")))?;
        Ok(())
    }
}

/// The mailer the configuration asks for.
pub fn from_config(config: &PlatformConfig) -> Result<Arc<dyn Mailer>, MailError> {
    let from: Mailbox = config.mail.from.parse().map_err(|e| MailError(format!("CIQ_MAIL_FROM: {e}")))?;
    Ok(match &config.mail.smtp_url {
        Some(url) => {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| MailError(format!("CIQ_SMTP_URL: {e}")))?
                .build();
            Arc::new(SmtpMailer { transport, from })
        }
        None => Arc::new(MailboxDirectory { dir: config.data_dir.join("mailbox"), from }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_ride_beside_the_text_and_html() {
        let from: Mailbox = "ComplianceIQ <noreply@example.com>".parse().unwrap();
        let mail = Mail {
            to: "ciso@example.com".into(),
            subject: "Weekly posture".into(),
            body: "It is attached.".into(),
            html: Some("<p>It is attached.</p>".into()),
            attachments: vec![MailAttachment {
                file_name: "report-weekly.pdf".into(),
                content_type: "application/pdf".into(),
                data: b"%PDF-1.7".to_vec(),
            }],
        };
        let text = String::from_utf8(build(&from, &mail).unwrap().formatted()).unwrap();
        for part in ["multipart/mixed", "multipart/alternative", "text/html", "application/pdf", "report-weekly.pdf"] {
            assert!(text.contains(part), "{part} in {text}");
        }
        let plain = Mail { html: None, ..mail.clone() };
        let text = String::from_utf8(build(&from, &plain).unwrap().formatted()).unwrap();
        assert!(text.contains("multipart/mixed") && !text.contains("multipart/alternative"), "{text}");
        let bad = Mail {
            attachments: vec![MailAttachment { content_type: "not a type".into(), ..Default::default() }],
            ..mail
        };
        assert!(build(&from, &bad).is_err());
    }
}
