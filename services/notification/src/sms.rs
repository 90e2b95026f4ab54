//! SMS: each notification as a short text, sent by a durable job per delivery (kind
//! `notification-sms`) through a provider with Twilio's Messages API (`POST
//! /2010-04-01/Accounts/{sid}/Messages.json`, form fields `To`, `From`, `Body`, basic auth
//! with the account SID and auth token). Without a provider, `dev` files each message in
//! `<data-dir>/sms/` beside the mailbox, and `serve` offers no SMS channel. A provider's
//! refusal of a message (4xx but 429) fails the delivery at once; throttling, server errors and
//! network failures are retried with the kit's backoff.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::config::{PlatformConfig, RunMode};
use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::jobs::{Ending, Job, JobHandler, Stop};
use complianceiq_proto::complianceiq::notification::v1::Notification;
use tokio_util::sync::CancellationToken;

use crate::email::{deliver, failed};

pub const KIND: &str = "notification-sms";

/// Longest text sent: three concatenated SMS segments of GSM-7.
const MAX_TEXT: usize = 459;
/// Longest provider answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Where texts go.
pub enum Sms {
    Provider {
        client: reqwest::Client,
        messages_url: String,
        account_sid: String,
        auth_token: String,
        from: String,
    },
    /// Files in a directory (development).
    Sink(PathBuf),
    /// No SMS on this platform.
    Unavailable,
}

impl Sms {
    pub fn from_config(config: &PlatformConfig) -> Result<Self, String> {
        let sms = &config.sms;
        match (&sms.account_sid, &sms.auth_token, &sms.from) {
            (Some(account_sid), Some(auth_token), Some(from)) => {
                complianceiq_kit::crypto::install_tls_crypto_provider();
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("SMS client: {e}"))?;
                let messages_url = format!(
                    "{}/2010-04-01/Accounts/{}/Messages.json",
                    sms.api_url.trim_end_matches('/'),
                    url::form_urlencoded::byte_serialize(account_sid.as_bytes()).collect::<String>()
                );
                Ok(Self::Provider {
                    client,
                    messages_url,
                    account_sid: account_sid.clone(),
                    auth_token: auth_token.clone(),
                    from: from.clone(),
                })
            }
            (None, None, None) if config.mode == RunMode::Development => Ok(Self::Sink(config.data_dir.join("sms"))),
            (None, None, None) => Ok(Self::Unavailable),
            _ => Err("SMS needs CIQ_SMS_ACCOUNT_SID, CIQ_SMS_AUTH_TOKEN and CIQ_SMS_FROM together".into()),
        }
    }

    pub fn available(&self) -> bool {
        !matches!(self, Self::Unavailable)
    }

    /// Sends `text` to `to` (E.164).
    async fn send(&self, to: &str, text: &str) -> Result<(), Stop> {
        match self {
            Self::Provider { client, messages_url, account_sid, auth_token, from } => {
                let form: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("To", to)
                    .append_pair("From", from)
                    .append_pair("Body", text)
                    .finish();
                let mut response = client
                    .post(messages_url)
                    .basic_auth(account_sid, Some(auth_token))
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .map_err(|error| Stop::Retry(format!("SMS provider unreachable: {error}")))?;
                let status = response.status();
                let mut answer = Vec::new();
                while answer.len() < MAX_ANSWER {
                    match response.chunk().await {
                        Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                if status.is_success() {
                    return Ok(());
                }
                // Twilio's error body: {"code": 21211, "message": "The 'To' number ... is not valid."}.
                let detail = serde_json::from_slice::<serde_json::Value>(&answer)
                    .ok()
                    .map(|error| format!("{} (code {})", error["message"].as_str().unwrap_or_default(), error["code"]))
                    .unwrap_or_default();
                let error = format!("SMS provider answered {status}: {detail}");
                if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                    Err(Stop::Failed(error))
                } else {
                    Err(Stop::Retry(error))
                }
            }
            Self::Sink(dir) => {
                let name = format!("{}-{}.txt", uuid::Uuid::now_v7(), to.trim_start_matches('+'));
                let write = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::write(dir.join(name), format!("To: {to}\n\n{text}\n")).await
                };
                write.await.map_err(|error| Stop::Retry(format!("writing the SMS sink: {error}")))
            }
            Self::Unavailable => Err(Stop::Failed("SMS is not configured on this platform".into())),
        }
    }
}

/// A notification as a text: its title, the body as far as it fits, and the link.
pub fn text(notification: &Notification) -> String {
    let link = &notification.link_uri;
    let room = MAX_TEXT.saturating_sub(link.chars().count() + 1);
    let mut text = notification.title.clone();
    if !notification.body.is_empty() {
        text.push_str(": ");
        text.push_str(&notification.body);
    }
    if text.chars().count() > room {
        text = text.chars().take(room.saturating_sub(1)).collect::<String>() + "…";
    }
    if !link.is_empty() {
        text.push('\n');
        text.push_str(link);
    }
    text
}

/// The SMS jobs.
pub struct Texts {
    pub database: complianceiq_kit::db::ModuleDatabase,
    pub sms: Arc<Sms>,
}

impl JobHandler for Texts {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, _stop: &CancellationToken) -> Result<(), Stop> {
        deliver(&self.database, job, "sms", async |delivery, notification| {
            self.sms.send(&delivery.address, &text(notification)).await
        })
        .await
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        failed(tx, job, ending, "sms").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_fit_three_segments_and_keep_the_link_whole() {
        let notification = Notification {
            title: "Sync failed".into(),
            body: "word ".repeat(200),
            link_uri: "https://ciq.example.com/api/v1/instances/1".into(),
            ..Default::default()
        };
        let text = text(&notification);
        assert!(text.chars().count() <= MAX_TEXT, "{}", text.chars().count());
        assert!(
            text.starts_with("Sync failed: word") && text.ends_with("\nhttps://ciq.example.com/api/v1/instances/1")
        );
        assert!(text.contains('…'));
        let short = Notification { title: "Hello".into(), ..Default::default() };
        assert_eq!(super::text(&short), "Hello");
    }

    #[tokio::test]
    async fn the_development_sink_files_each_message() {
        let dir = std::env::temp_dir().join(format!("ciq-sms-{}", uuid::Uuid::new_v4()));
        Sms::Sink(dir.clone()).send("+14155550100", "Hello").await.map_err(|_| "send").unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "To: +14155550100\n\nHello\n");
        std::fs::remove_dir_all(dir).ok();
    }
}
