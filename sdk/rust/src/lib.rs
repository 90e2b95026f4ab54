//! The ComplianceIQ client SDK for Rust.
//!
//! The generated tonic clients of every service (re-exported as [`proto`]) over one
//! connection, with what each caller would otherwise write by hand:
//! - [`Credentials`]: a person's session refreshed before it expires (and once more when the
//!   platform refuses the token), or an organization API key exchanged for short tokens;
//! - [`Client::call`]: retries with exponential backoff and jitter on UNAVAILABLE and
//!   RESOURCE_EXHAUSTED, waiting as long as the platform's `google.rpc.RetryInfo` asks;
//! - [`Client::pages`] and [`Client::items`]: a list RPC as a `Stream` of pages or of items;
//! - [`Error`]: the gRPC status with its `google.rpc` details decoded;
//! - TLS with the web PKI's roots for `https://` endpoints.
//!
//! ```no_run
//! # async fn example() -> Result<(), complianceiq_sdk::Error> {
//! use complianceiq_sdk::proto::complianceiq::user::v1::GetCurrentUserRequest;
//! use complianceiq_sdk::proto::complianceiq::user::v1::user_service_client::UserServiceClient;
//! use complianceiq_sdk::{Client, Credentials};
//!
//! let client = Client::builder("https://api.complianceiq.example")
//!     .credentials(Credentials::ApiKey(std::env::var("CIQ_API_KEY").unwrap_or_default()))
//!     .connect()
//!     .await?;
//! let me = client
//!     .call(async |channel| UserServiceClient::new(channel).get_current_user(GetCurrentUserRequest {}).await)
//!     .await?;
//! println!("{}", me.email);
//! # Ok(()) }
//! ```

mod auth;
mod error;
mod paging;

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

pub use complianceiq_proto as proto;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

pub use auth::{Bearer, Credentials};
pub use error::{Error, FieldViolation};
pub use paging::{Page, PageRequest};

/// The channel every service client of a [`Client`] is built on: it carries the token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// When and how often a call is tried again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retry).
    pub max_attempts: u32,
    /// The first backoff; each next one is `multiplier` times longer, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    /// The longest wait a platform's RetryInfo is honoured for; past it the error is returned.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` after `error`; `None` when no retry is due.
    fn delay(&self, attempt: u32, error: &Error) -> Option<Duration> {
        if !error.is_retryable() || attempt >= self.max_attempts {
            return None;
        }
        if let Some(asked) = error.retry_after {
            return (asked <= self.max_retry_after).then_some(asked);
        }
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let backoff = self.initial_backoff.mul_f64(self.multiplier.powi(exponent)).min(self.max_backoff);
        // "Equal jitter": half fixed, half random, so callers throttled together spread out.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Some(backoff / 2 + backoff.mul_f64((random % 1024) as f64 / 2048.0))
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    endpoint: String,
    credentials: Credentials,
    retry: RetryPolicy,
    tls: Option<ClientTlsConfig>,
    timeout: Option<Duration>,
}

impl ClientBuilder {
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// TLS settings for an `https://` endpoint (the web PKI's roots by default).
    pub fn tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// A deadline for each attempt of a call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Connects (lazily: the first call opens the connection, and a lost one reconnects).
    pub async fn connect(self) -> Result<Client, Error> {
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| Error::local(Code::InvalidArgument, format!("endpoint {:?}: {e}", self.endpoint)))?
            .tcp_nodelay(true);
        if let Some(timeout) = self.timeout {
            endpoint = endpoint.timeout(timeout);
        }
        if self.endpoint.starts_with("https://") {
            let tls = self.tls.unwrap_or_else(|| ClientTlsConfig::new().with_webpki_roots());
            endpoint = endpoint.tls_config(tls)?;
        }
        let channel = endpoint.connect_lazy();
        let auth = Arc::new(auth::Auth::new(self.credentials, channel.clone()));
        Ok(Client { channel, auth, retry: self.retry })
    }
}

/// A connection to the platform's gRPC edge with its credentials; cheap to clone.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    auth: Arc<auth::Auth>,
    retry: RetryPolicy,
}

impl Client {
    /// A builder for `endpoint`, e.g. `http://127.0.0.1:8080` for `complianceiq dev`.
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
            credentials: Credentials::None,
            retry: RetryPolicy::default(),
            tls: None,
            timeout: None,
        }
    }

    /// The same connection with other credentials (after a login, or as an API key).
    pub fn with_credentials(&self, credentials: Credentials) -> Client {
        let auth = Arc::new(auth::Auth::new(credentials, self.channel.clone()));
        Client { channel: self.channel.clone(), auth, retry: self.retry.clone() }
    }

    /// The channel with the current token, for any generated client:
    /// `UserServiceClient::new(client.channel())`. Calls made on it directly are not retried.
    pub fn channel(&self) -> Authed {
        InterceptedService::new(self.channel.clone(), Bearer { current: self.auth.header() })
    }

    /// Runs `attempt` (a call on the channel it is given) until it succeeds, fails for good, or
    /// runs out of attempts: UNAVAILABLE and RESOURCE_EXHAUSTED are retried after a backoff or
    /// the platform's RetryInfo; UNAUTHENTICATED renews the credentials once and tries again.
    /// A call that changes state is retried too: the platform answers these codes before it
    /// acts (a rate limit, an unreachable module) or after rolling back; only a connection lost
    /// after the platform committed can make a create happen twice.
    pub async fn call<T, F>(&self, mut attempt: F) -> Result<T, Error>
    where
        F: AsyncFnMut(Authed) -> Result<tonic::Response<T>, tonic::Status>,
    {
        let mut renewed = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.auth.renew(false).await?;
            let error = match attempt(self.channel()).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => Error::from(status),
            };
            if error.code == Code::Unauthenticated && !renewed {
                renewed = true;
                if self.auth.renew(true).await? {
                    attempts -= 1;
                    continue;
                }
            }
            match self.retry.delay(attempts, &error) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests;
