//! Credentials and the bearer token every call carries: a person's session (refreshed with
//! its single-use refresh token), an organization API key (exchanged for a short access token
//! as needed), or a fixed token.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use complianceiq_proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use complianceiq_proto::complianceiq::auth::v1::{ExchangeApiKeyRequest, RefreshRequest, TokenPair};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::Error;

/// How the client proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// No token: only public calls (sign-up, login) succeed.
    None,
    /// An access token used as it is; when it expires, calls fail UNAUTHENTICATED.
    Token(String),
    /// A person's session from Login or Refresh: refreshed shortly before it expires, and once
    /// more if the platform refuses the token (a revoked session stays refused).
    Session {
        access_token: String,
        refresh_token: String,
        /// When the access token expires, if known.
        expires_in: Option<Duration>,
        /// Keep the refreshed tokens scoped to this organization.
        organization_id: Option<String>,
    },
    /// An organization API key's secret, exchanged for an access token of at most a minute.
    ApiKey(String),
}

impl Credentials {
    /// A session from the token pair Login or Refresh answered.
    pub fn session(tokens: &TokenPair) -> Self {
        Self::Session {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_in: u64::try_from(tokens.expires_in).ok().map(Duration::from_secs),
            organization_id: (!tokens.organization_id.is_empty()).then(|| tokens.organization_id.clone()),
        }
    }
}

impl std::fmt::Debug for Credentials {
    // Secrets never reach a log through Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "Credentials::None",
            Self::Token(_) => "Credentials::Token(..)",
            Self::Session { .. } => "Credentials::Session(..)",
            Self::ApiKey(_) => "Credentials::ApiKey(..)",
        })
    }
}

/// Renew this long before the platform's expiry, so a call in flight does not carry a token
/// that expires on the way.
const RENEW_BEFORE: Duration = Duration::from_secs(10);

struct State {
    credentials: Credentials,
    /// When the current access token should be renewed.
    renew_at: Option<Instant>,
}

/// The token shared by every call of a client; renewals are one at a time.
pub(crate) struct Auth {
    state: tokio::sync::Mutex<State>,
    current: Arc<RwLock<Option<MetadataValue<tonic::metadata::Ascii>>>>,
    channel: Channel,
}

impl Auth {
    pub(crate) fn new(credentials: Credentials, channel: Channel) -> Self {
        let renew_at = match &credentials {
            Credentials::Session { expires_in: Some(lifetime), .. } => Some(renew_time(*lifetime)),
            // An API key has no token yet: the first call exchanges it.
            Credentials::ApiKey(_) => Some(Instant::now()),
            _ => None,
        };
        let token = match &credentials {
            Credentials::Token(token) | Credentials::Session { access_token: token, .. } => Some(token.clone()),
            Credentials::None | Credentials::ApiKey(_) => None,
        };
        let auth =
            Self { state: tokio::sync::Mutex::new(State { credentials, renew_at }), current: Arc::default(), channel };
        if let Some(token) = token {
            auth.set_token(&token);
        }
        auth
    }

    fn set_token(&self, token: &str) {
        let value = format!("Bearer {token}").parse().ok();
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
    }

    /// What the interceptor sends.
    pub(crate) fn header(&self) -> Arc<RwLock<Option<MetadataValue<tonic::metadata::Ascii>>>> {
        self.current.clone()
    }

    /// Renews the token if it is due (or `force`d after the platform refused it); whether a
    /// new one was obtained.
    pub(crate) async fn renew(&self, force: bool) -> Result<bool, Error> {
        let mut state = self.state.lock().await;
        let due = state.renew_at.is_some_and(|at| Instant::now() >= at);
        if !due && !force {
            return Ok(false);
        }
        let mut auth = AuthServiceClient::new(self.channel.clone());
        match &mut state.credentials {
            Credentials::Session { refresh_token, organization_id, .. } => {
                let request = RefreshRequest {
                    refresh_token: refresh_token.clone(),
                    organization_id: organization_id.clone().unwrap_or_default(),
                };
                let tokens = auth.refresh(request).await?.into_inner();
                *refresh_token = tokens.refresh_token.clone();
                self.set_token(&tokens.access_token);
                let lifetime = u64::try_from(tokens.expires_in).ok().map(Duration::from_secs);
                state.renew_at = lifetime.map(renew_time);
                Ok(true)
            }
            Credentials::ApiKey(secret) => {
                let request = ExchangeApiKeyRequest { secret: secret.clone() };
                let exchanged = auth.exchange_api_key(request).await?.into_inner();
                self.set_token(&exchanged.access_token);
                let lifetime = Duration::from_secs(u64::try_from(exchanged.expires_in).unwrap_or_default());
                state.renew_at = Some(renew_time(lifetime));
                Ok(true)
            }
            Credentials::None | Credentials::Token(_) => Ok(false),
        }
    }
}

fn renew_time(lifetime: Duration) -> Instant {
    // A short-lived token (an API key's minute) is renewed at four fifths of its life.
    Instant::now() + lifetime.saturating_sub(RENEW_BEFORE.min(lifetime / 5))
}

/// Adds the current bearer token to every request.
#[derive(Clone)]
pub struct Bearer {
    pub(crate) current: Arc<RwLock<Option<MetadataValue<tonic::metadata::Ascii>>>>,
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let current = self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(value) = current {
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}
