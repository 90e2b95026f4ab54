//! Outgoing mail: SMTP when configured, otherwise a mailbox folder in the data directory
//! where every message lands as an .eml file a person (or a test) can open.

use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tonic::async_trait;

use crate::config::PlatformConfig;
use crate::error::ApiError;

/// A message to one recipient.
#[derive(Clone, Debug)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The same as HTML, sent beside the text (multipart/alternative) when given.
    pub html: Option<String>,
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
    match &mail.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.body.clone(), html.clone())),
        None => builder.header(ContentType::TEXT_PLAIN).body(mail.body.clone()),
    }
    .map_err(|e| MailError(e.to_string()))
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
