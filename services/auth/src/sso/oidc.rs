//! OpenID Connect with `openidconnect`: discovery, the authorization code flow with PKCE,
//! and ID token verification (signature against the provider's JWKS, issuer, audience,
//! expiry, nonce). The provider is reached through our own HTTP client: its address is
//! checked like any tenant URL and redirects are not followed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use complianceiq_kit::address::{CheckingResolver, NetworkAccess, check_literal};
use complianceiq_kit::error::ApiError;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AsyncHttpClient, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope,
};

use super::VouchedPerson;

const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Provider answers larger than this are refused (a discovery document or JWKS is small).
const MAX_ANSWER_BYTES: usize = 1 << 20;

type DiscoveredClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// How long a provider's discovery document and keys are reused for starts and refreshes.
const DISCOVERY_LIFETIME: Duration = Duration::from_secs(300);
/// Beyond this many issuers, expired entries are dropped when one is added.
const DISCOVERY_ENTRIES: usize = 1000;

/// How the platform calls identity providers.
#[derive(Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    access: NetworkAccess,
    /// Issuer → when discovered and what (discovery document with its JWKS).
    discovered: Arc<Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl ProviderHttp {
    pub fn new(access: NetworkAccess) -> Result<Self, String> {
        complianceiq_kit::crypto::install_tls_crypto_provider();
        let client = reqwest::Client::builder()
            .dns_resolver(CheckingResolver { access })
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ComplianceIQ-SSO/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("identity provider HTTP client: {error}"))?;
        Ok(Self { client, access, discovered: Arc::default() })
    }

    /// Refuses an issuer the platform may not reach: plain http outside private networks
    /// allowed for development, or an address literal it must not connect to.
    pub fn check_issuer(&self, issuer: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(issuer).map_err(|_| "issuer must be an absolute URL".to_string())?;
        match url.scheme() {
            "https" => {}
            "http" if self.access == NetworkAccess::AllowPrivate => {}
            _ => return Err("issuer must be an https URL".into()),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("issuer must not have a query or fragment".into());
        }
        check_literal(&url, self.access).map_err(|error| error.to_string())?;
        Ok(url)
    }

    /// A document the provider publishes (SAML metadata), over https (or http where private
    /// networks are allowed), address-checked, without redirects, at most 1 MiB of UTF-8.
    pub async fn get_document(&self, url: &str) -> Result<String, String> {
        let parsed = url::Url::parse(url).map_err(|_| "must be an absolute URL".to_string())?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.access == NetworkAccess::AllowPrivate => {}
            _ => return Err("must be an https URL".into()),
        }
        check_literal(&parsed, self.access).map_err(|error| error.to_string())?;
        let request = http::Request::get(parsed.as_str()).body(Vec::new()).map_err(|error| error.to_string())?;
        let response = self.send(request).await.map_err(|error| format!("could not be fetched: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("answered HTTP {}", response.status().as_u16()));
        }
        String::from_utf8(response.into_body()).map_err(|_| "is not UTF-8 text".to_string())
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
        let mut response = self.client.execute(request).await.map_err(|e| HttpError(chain(&e)))?;
        let mut answer = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| HttpError(chain(&e)))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(HttpError("the identity provider's answer is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        answer.body(body).map_err(|e| HttpError(e.to_string()))
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// A configured provider, ready to talk to.
pub struct Provider {
    client: DiscoveredClient,
}

/// Whether discovered metadata may be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discovery {
    Reuse,
    Fresh,
}

impl ProviderHttp {
    fn kept(&self, issuer: &str) -> Option<CoreProviderMetadata> {
        let kept = self.discovered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.get(issuer).filter(|(at, _)| at.elapsed() < DISCOVERY_LIFETIME).map(|(_, metadata)| metadata.clone())
    }

    fn keep(&self, issuer: &str, metadata: &CoreProviderMetadata) {
        let mut kept = self.discovered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() >= DISCOVERY_ENTRIES {
            kept.retain(|_, (at, _)| at.elapsed() < DISCOVERY_LIFETIME);
        }
        kept.insert(issuer.to_string(), (Instant::now(), metadata.clone()));
    }
}

/// What the browser is sent to, and what must be kept to finish the sign-in.
pub struct Authorization {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Why the provider refused a refresh.
pub enum RefreshOutcome {
    /// The provider still vouches for the person: its new refresh token, if it rotated.
    Active { refresh_token: Option<String> },
    /// `invalid_grant`: the person was disabled, or their grant revoked.
    Ended(String),
}

fn provider_error(what: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError::FailedPrecondition {
        reason: "IDENTITY_PROVIDER_ERROR",
        message: format!("the identity provider {what}: {error}"),
    }
}

impl Provider {
    /// Discovers the issuer's configuration and keys.
    /// The provider's client. `Discovery::Reuse` takes metadata discovered in the last five
    /// minutes (a start or a refresh needs only the endpoints); `Discovery::Fresh` asks the
    /// provider again (a callback verifies the ID token against the keys published now, so a
    /// rotated key works at once; a new configuration must be reachable now).
    pub async fn discover(
        http: &ProviderHttp,
        discovery: Discovery,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
    ) -> Result<Self, ApiError> {
        http.check_issuer(issuer).map_err(|error| provider_error("issuer is refused", error))?;
        let kept = match discovery {
            Discovery::Reuse => http.kept(issuer),
            Discovery::Fresh => None,
        };
        let metadata = match kept {
            Some(metadata) => metadata,
            None => {
                let url =
                    IssuerUrl::new(issuer.to_string()).map_err(|error| provider_error("issuer is invalid", error))?;
                let metadata = CoreProviderMetadata::discover_async(url, http)
                    .await
                    .map_err(|error| provider_error("could not be discovered", chain(&error)))?;
                http.keep(issuer, &metadata);
                metadata
            }
        };
        let redirect =
            RedirectUrl::new(redirect_uri.to_string()).map_err(|error| ApiError::internal(error.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.to_string()),
            Some(ClientSecret::new(client_secret.to_string())),
        )
        .set_redirect_uri(redirect);
        Ok(Self { client })
    }

    /// The authorization URL for a new sign-in, with fresh state, nonce and PKCE verifier.
    pub fn authorize(&self, scopes: &[String], login_hint: Option<&str>) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        for scope in ["email", "profile", "offline_access"].iter().map(|s| s.to_string()).chain(scopes.iter().cloned())
        {
            request = request.add_scope(Scope::new(scope));
        }
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_string());
        }
        let (url, state, nonce) = request.url();
        Authorization {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Redeems a code and verifies the ID token it brings.
    pub async fn finish(
        &self,
        http: &ProviderHttp,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        groups_claim: &str,
    ) -> Result<VouchedPerson, ApiError> {
        let response: CoreTokenResponse = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|error| provider_error("has no token endpoint", error))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(http)
            .await
            .map_err(|error| provider_error("refused the code", chain(&error)))?;
        let id_token = response
            .extra_fields()
            .id_token()
            .ok_or_else(|| provider_error("sent no ID token", "the token response lacks id_token"))?;
        let claims = id_token
            .claims(&self.client.id_token_verifier(), &Nonce::new(nonce.to_string()))
            .map_err(|error| refused_token(chain(&error)))?;
        let email = claims
            .email()
            .map(|email| email.as_str().trim().to_lowercase())
            .ok_or_else(|| refused_token("the ID token carries no email"))?;
        if claims.email_verified() != Some(true) {
            return Err(refused_token("the provider does not say the email is verified"));
        }
        let name = claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_string())
            .unwrap_or_else(|| email.clone());
        // The token is verified above; the groups claim is read from its payload as sent.
        let groups = groups_of(&id_token.to_string(), groups_claim);
        Ok(VouchedPerson {
            subject: claims.subject().as_str().to_string(),
            email,
            name,
            groups,
            refresh_token: response.refresh_token().map(|token| token.secret().clone()),
            expires_in: response.expires_in(),
        })
    }

    /// Asks the provider whether the person's grant still stands.
    pub async fn refresh(&self, http: &ProviderHttp, refresh_token: &str) -> Result<RefreshOutcome, ApiError> {
        let refresh_token = RefreshToken::new(refresh_token.to_string());
        let request = self
            .client
            .exchange_refresh_token(&refresh_token)
            .map_err(|error| provider_error("has no token endpoint", error))?;
        match request.request_async(http).await {
            Ok(response) => {
                Ok(RefreshOutcome::Active { refresh_token: response.refresh_token().map(|t| t.secret().clone()) })
            }
            Err(RequestTokenError::ServerResponse(answer))
                if matches!(answer.error(), CoreErrorResponseType::InvalidGrant) =>
            {
                Ok(RefreshOutcome::Ended(answer.to_string()))
            }
            Err(error) => Err(ApiError::Unavailable {
                reason: "IDENTITY_PROVIDER_UNAVAILABLE",
                message: "your identity provider cannot confirm the session right now; try again".into(),
                retry_after: Some(Duration::from_secs(5)),
            }
            .log_cause(&chain(&error))),
        }
    }
}

fn refused_token(detail: impl std::fmt::Display) -> ApiError {
    ApiError::Unauthenticated { reason: "SSO_TOKEN_REFUSED", message: format!("the sign-in was refused: {detail}") }
}

/// The string members of `claim` in a JWT's payload (a list, or one string).
fn groups_of(jwt: &str, claim: &str) -> Vec<String> {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else { return Vec::new() };
    let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
    match claims.get(claim) {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}
