//! A client of ServiceNow's Table API over reqwest: basic auth or OAuth 2.0 (client
//! credentials or password grant, renewed before expiry), a bounded request rate per
//! instance, 429 honouring Retry-After, 5xx and transport failures retried with capped
//! exponential backoff and full jitter, and errors that say which stage failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::address::{CheckingResolver, NetworkAccess};
use crate::query::{Condition, Op, Query};

/// The most a page of records may weigh: a hostile or broken "instance" must not stream
/// without end into the process, which other tenants share.
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;
/// The most read of any other answer (errors, OAuth tokens).
const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;
/// The most of ServiceNow's own error text repeated to a caller.
const MAX_MESSAGE_CHARS: usize = 200;

/// How to authenticate.
#[derive(Clone)]
pub enum Credentials {
    /// HTTP basic.
    Basic { username: String, password: String },
    /// OAuth 2.0 client credentials grant.
    ClientCredentials { client_id: String, client_secret: String },
    /// OAuth 2.0 resource owner password grant.
    Password { client_id: String, client_secret: String, username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    // Never the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username})"),
            Credentials::ClientCredentials { client_id, .. } => write!(f, "ClientCredentials({client_id})"),
            Credentials::Password { client_id, username, .. } => write!(f, "Password({client_id}, {username})"),
        }
    }
}

/// Limits and timing of one client.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Requests per second to one instance.
    pub requests_per_second: f64,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Attempts per request for 5xx and transport failures.
    pub max_attempts: u32,
    /// Attempts per request for 429s (ServiceNow's rate limits can be tight).
    pub max_throttled_attempts: u32,
    /// First backoff; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest backoff, and longest Retry-After honoured.
    pub backoff_cap: Duration,
    /// Which networks the instance may be on.
    pub network: NetworkAccess,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            requests_per_second: 20.0,
            request_timeout: Duration::from_secs(60),
            max_attempts: 5,
            max_throttled_attempts: 10,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            network: NetworkAccess::PublicOnly,
        }
    }
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    /// The record already held every value: nothing was sent.
    Unchanged,
}

/// An upserted record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upserted {
    pub sys_id: String,
    pub written: Written,
}

/// The sys_id of the record a POST or PATCH answered with.
async fn written_sys_id(response: reqwest::Response, timeout: Duration) -> Result<String, SnError> {
    let body = read_body(response, MAX_SMALL_BODY_BYTES, timeout).await?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| SnError::Protocol(format!("not JSON ({e})")))?;
    value
        .get("result")
        .and_then(|result| result.get("sys_id"))
        .map(flatten_reference)
        .and_then(|id| id.as_str().map(str::to_string))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| SnError::Protocol("the written record's answer holds no sys_id".into()))
}

/// What went wrong, by stage.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SnError {
    /// The URL is not a usable instance address.
    #[error("invalid instance URL: {0}")]
    InvalidUrl(String),
    /// The host is, or resolves to, an address the platform may not connect to.
    #[error("forbidden instance address: {0}")]
    ForbiddenAddress(String),
    /// No TCP connection (DNS, refused, unreachable).
    #[error("cannot reach the instance: {0}")]
    Unreachable(String),
    /// The TLS handshake failed (untrusted or mismatched certificate, protocol).
    #[error("TLS handshake with the instance failed: {0}")]
    Tls(String),
    /// No answer in time.
    #[error("the instance did not answer within {0:?}")]
    Timeout(Duration),
    /// Credentials refused (basic auth, OAuth token request, or token).
    #[error("ServiceNow refused the credentials: {0}")]
    Unauthorized(String),
    /// The user may not read (or, for a write, write) the table: an ACL.
    #[error("the ServiceNow user may not {access} {table}: {message}")]
    Forbidden { access: &'static str, table: String, message: String },
    /// Unknown table or record.
    #[error("not found in ServiceNow: {0}")]
    NotFound(String),
    /// Still throttled after every retry.
    #[error("ServiceNow kept throttling (429) after {attempts} attempts")]
    Throttled { attempts: u32 },
    /// A 4xx or 5xx that retries did not cure.
    #[error("ServiceNow answered {status}: {message}")]
    Status { status: u16, message: String },
    /// An answer that is not the Table API's.
    #[error("unexpected answer from ServiceNow: {0}")]
    Protocol(String),
}

impl SnError {
    /// Worth another attempt later (the instance may recover), as opposed to a
    /// configuration problem a person must fix.
    pub fn is_transient(&self) -> bool {
        matches!(self, SnError::Unreachable(_) | SnError::Timeout(_) | SnError::Throttled { .. })
            || matches!(self, SnError::Status { status, .. } if *status >= 500)
    }
}

/// One page of a table.
#[derive(Debug, Default)]
pub struct Page {
    /// Records: field name to value (strings; references as their sys_id).
    pub records: Vec<Map<String, Value>>,
    /// `X-Total-Count`: records matching the query.
    pub total: Option<u64>,
    /// The `Date` of the answer, as ServiceNow's clock saw it (seconds since the epoch).
    pub server_time: Option<i64>,
    /// Whether a `Link: <…>; rel="next"` promised more.
    pub has_next: bool,
}

/// A page request.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    /// `sysparm_query`.
    pub query: Query,
    /// `sysparm_fields`; empty means every field.
    pub fields: String,
    /// `sysparm_limit`.
    pub limit: u32,
    /// `sysparm_offset`.
    pub offset: u64,
    /// Whether to ask for `X-Total-Count`; without it the request says
    /// `sysparm_no_count=true`, sparing the instance a count of the whole query per page.
    pub count: bool,
}

struct Token {
    access_token: String,
    renew_at: Instant,
}

struct Pacer {
    next_slot: Instant,
}

/// A client for one ServiceNow instance.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    credentials: Credentials,
    settings: ClientSettings,
    token: Arc<Mutex<Option<Token>>>,
    pacer: Arc<Mutex<Pacer>>,
}

impl Client {
    /// A client for the instance at `base_url` (`https://acme.service-now.com`).
    pub fn new(base_url: &str, credentials: Credentials, settings: ClientSettings) -> Result<Self, SnError> {
        let base = url::Url::parse(base_url).map_err(|e| SnError::InvalidUrl(format!("{base_url}: {e}")))?;
        if !matches!(base.scheme(), "https" | "http") || base.host_str().is_none() {
            return Err(SnError::InvalidUrl(format!("{base_url}: an http(s) address with a host is needed")));
        }
        if base.username() != "" || base.password().is_some() || base.query().is_some() {
            return Err(SnError::InvalidUrl("the URL must not carry credentials or a query".into()));
        }
        crate::address::check_literal(&base, settings.network)?;
        Self::with_http(base, credentials, settings, reqwest::Client::builder())
    }

    /// As [`Client::new`], trusting `root` (PEM) besides the system's roots: for instances
    /// behind a private CA, and tests.
    pub fn with_root_certificate(
        base_url: &str,
        credentials: Credentials,
        settings: ClientSettings,
        root_pem: &[u8],
    ) -> Result<Self, SnError> {
        let certificate = reqwest::Certificate::from_pem(root_pem).map_err(|e| SnError::Tls(e.to_string()))?;
        let base = url::Url::parse(base_url).map_err(|e| SnError::InvalidUrl(format!("{base_url}: {e}")))?;
        crate::address::check_literal(&base, settings.network)?;
        Self::with_http(base, credentials, settings, reqwest::Client::builder().add_root_certificate(certificate))
    }

    fn with_http(
        mut base: url::Url,
        credentials: Credentials,
        settings: ClientSettings,
        builder: reqwest::ClientBuilder,
    ) -> Result<Self, SnError> {
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        // reqwest leaves the TLS crypto to the process; the platform uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Names are checked where they are resolved for the connection; IP literals, which
        // reqwest does not resolve, were checked by the constructors.
        let http = builder
            .dns_resolver(CheckingResolver { access: settings.network })
            .timeout(settings.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SnError::Protocol(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            credentials,
            settings,
            token: Arc::new(Mutex::new(None)),
            pacer: Arc::new(Mutex::new(Pacer { next_slot: Instant::now() })),
        })
    }

    /// The instance's base URL.
    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    /// One page of `table`.
    pub async fn page(&self, table: &str, request: &PageRequest) -> Result<Page, SnError> {
        let mut url =
            self.base.join(&format!("api/now/table/{table}")).map_err(|e| SnError::InvalidUrl(e.to_string()))?;
        {
            let mut query = url.query_pairs_mut();
            let encoded = request.query.to_string();
            if !encoded.is_empty() {
                query.append_pair("sysparm_query", &encoded);
            }
            if !request.fields.is_empty() {
                query.append_pair("sysparm_fields", &request.fields);
            }
            query.append_pair("sysparm_limit", &request.limit.max(1).to_string());
            query.append_pair("sysparm_offset", &request.offset.to_string());
            query.append_pair("sysparm_exclude_reference_link", "true");
            if !request.count {
                query.append_pair("sysparm_no_count", "true");
            }
        }
        let response = self.send(table, Method::GET, url, None).await?;
        let headers = response.headers().clone();
        let body = read_body(response, MAX_PAGE_BYTES, self.settings.request_timeout).await?;
        // Never the body itself in the error: it could be anything the host serves.
        let value: Value = serde_json::from_slice(&body).map_err(|e| SnError::Protocol(format!("not JSON ({e})")))?;
        let Some(Value::Array(items)) = value.get("result") else {
            return Err(SnError::Protocol("no `result` array in the answer".into()));
        };
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            let Value::Object(fields) = item else {
                return Err(SnError::Protocol("a result that is not an object".into()));
            };
            records.push(fields.iter().map(|(key, value)| (key.clone(), flatten_reference(value))).collect());
        }
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        Ok(Page {
            records,
            total: header("x-total-count").and_then(|value| value.parse().ok()),
            server_time: header("date").and_then(parse_http_date),
            has_next: header("link").is_some_and(|link| link.split(',').any(|part| part.contains("rel=\"next\""))),
        })
    }

    /// The record of `table` whose `key_field` is `key` (a stable id the platform gave it):
    /// its sys_id and the values of `fields`' columns.
    async fn find_by_key(
        &self,
        table: &str,
        key_field: &str,
        key: &str,
        fields: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, SnError> {
        let mut wanted: Vec<&str> = fields.keys().map(String::as_str).collect();
        wanted.push("sys_id");
        let request = PageRequest {
            query: Query { any_of: vec![vec![Condition::new(key_field, Op::Eq, key)]], order_by: Vec::new() },
            fields: wanted.join(","),
            limit: 2,
            ..Default::default()
        };
        let mut page = self.page(table, &request).await?;
        if page.records.len() > 1 {
            return Err(SnError::Protocol(format!("{table} holds more than one record with {key_field}={key}")));
        }
        Ok(page.records.pop())
    }

    /// Creates or updates the record of `table` whose `key_field` is `key`, so that its columns
    /// hold `fields`: a POST when there is none, a PATCH of the columns that differ, and no
    /// write at all when none does. Values compare as the Table API returns them (strings).
    pub async fn upsert(
        &self,
        table: &str,
        key_field: &str,
        key: &str,
        fields: &Map<String, Value>,
    ) -> Result<Upserted, SnError> {
        let mut record = fields.clone();
        record.insert(key_field.to_string(), Value::String(key.to_string()));
        let found = self.find_by_key(table, key_field, key, &record).await?;
        let table_url =
            self.base.join(&format!("api/now/table/{table}")).map_err(|e| SnError::InvalidUrl(e.to_string()))?;
        let Some(found) = found else {
            let response = self.send(table, Method::POST, table_url, Some(&Value::Object(record))).await?;
            let sys_id = written_sys_id(response, self.settings.request_timeout).await?;
            return Ok(Upserted { sys_id, written: Written::Created });
        };
        let sys_id = found.get("sys_id").and_then(Value::as_str).unwrap_or_default().to_string();
        if sys_id.is_empty() {
            return Err(SnError::Protocol(format!("a {table} record without a sys_id")));
        }
        let as_text = |value: &Value| match value {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        // A column the answer lacks is one the table does not have: ServiceNow ignores it on
        // write, so it can never match and is not compared.
        let changed: Map<String, Value> = record
            .into_iter()
            .filter(|(name, value)| found.get(name).is_some_and(|found| as_text(found) != as_text(value)))
            .collect();
        if changed.is_empty() {
            return Ok(Upserted { sys_id, written: Written::Unchanged });
        }
        let url = self
            .base
            .join(&format!("api/now/table/{table}/{sys_id}"))
            .map_err(|e| SnError::InvalidUrl(e.to_string()))?;
        let response = self.send(table, Method::PATCH, url, Some(&Value::Object(changed))).await?;
        written_sys_id(response, self.settings.request_timeout).await?;
        Ok(Upserted { sys_id, written: Written::Updated })
    }

    /// Deletes the record of `table` whose `key_field` is `key`; its sys_id, or `None` when
    /// there was none.
    pub async fn delete_by_key(&self, table: &str, key_field: &str, key: &str) -> Result<Option<String>, SnError> {
        let Some(found) = self.find_by_key(table, key_field, key, &Map::new()).await? else { return Ok(None) };
        let sys_id = found.get("sys_id").and_then(Value::as_str).unwrap_or_default().to_string();
        let url = self
            .base
            .join(&format!("api/now/table/{table}/{sys_id}"))
            .map_err(|e| SnError::InvalidUrl(e.to_string()))?;
        match self.send(table, Method::DELETE, url, None).await {
            Ok(_) | Err(SnError::NotFound(_)) => Ok(Some(sys_id)),
            Err(error) => Err(error),
        }
    }

    /// Sends a request with authentication, pacing and retries. A write that may have been
    /// applied (no answer, or a 5xx) is not sent again: the caller reads before it writes.
    async fn send(
        &self,
        table: &str,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, SnError> {
        let (mut attempts, mut throttled, mut reauthenticated) = (0u32, 0u32, false);
        let retried = method == Method::GET;
        loop {
            self.pace().await;
            attempts += 1;
            let mut request = self.http.request(method.clone(), url.clone()).header("accept", "application/json");
            if let Some(body) = body {
                request = request.header("content-type", "application/json").body(body.to_string());
            }
            let request = self.authorize(request).await?;
            let outcome = request.send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(error) => {
                    let error = transport_error(&error, self.settings.request_timeout);
                    if retried && error.is_transient() && attempts < self.settings.max_attempts {
                        tokio::time::sleep(self.backoff(attempts)).await;
                        continue;
                    }
                    return Err(error);
                }
            };
            let status = response.status().as_u16();
            match status {
                200..=299 => return Ok(response),
                429 => {
                    throttled += 1;
                    if throttled >= self.settings.max_throttled_attempts {
                        return Err(SnError::Throttled { attempts: throttled });
                    }
                    let wait = retry_after(response.headers()).unwrap_or_else(|| self.backoff(throttled));
                    tracing::debug!(table, wait_ms = wait.as_millis() as u64, "ServiceNow throttled; waiting");
                    tokio::time::sleep(wait.min(self.settings.backoff_cap)).await;
                    attempts -= 1; // throttling has its own budget
                    continue;
                }
                401 if !reauthenticated && !matches!(self.credentials, Credentials::Basic { .. }) => {
                    // The token may have been revoked or expired early: fetch another once.
                    reauthenticated = true;
                    *self.token.lock().await = None;
                    attempts -= 1;
                    continue;
                }
                500..=599 if retried && attempts < self.settings.max_attempts => {
                    tokio::time::sleep(self.backoff(attempts)).await;
                    continue;
                }
                _ => {}
            }
            let message = error_message(response).await;
            return Err(match status {
                401 => SnError::Unauthorized(message),
                403 => SnError::Forbidden {
                    access: if retried { "read" } else { "write" },
                    table: table.to_string(),
                    message,
                },
                404 => SnError::NotFound(message),
                _ => SnError::Status { status, message },
            });
        }
    }

    /// Capped exponential backoff with full jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self.settings.backoff_base.saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let capped = exponential.min(self.settings.backoff_cap);
        capped.mul_f64(jitter())
    }

    /// Waits for this instance's next request slot.
    async fn pace(&self) {
        let interval = Duration::from_secs_f64(1.0 / self.settings.requests_per_second.max(0.01));
        let wait_until = {
            let mut pacer = self.pacer.lock().await;
            let now = Instant::now();
            let slot = pacer.next_slot.max(now);
            pacer.next_slot = slot + interval;
            slot
        };
        tokio::time::sleep_until(wait_until.into()).await;
    }

    async fn authorize(&self, request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, SnError> {
        match &self.credentials {
            Credentials::Basic { username, password } => Ok(request.basic_auth(username, Some(password))),
            _ => Ok(request.bearer_auth(self.access_token().await?)),
        }
    }

    /// A valid OAuth access token, fetched from `/oauth_token.do` when missing or about to
    /// expire (renewed at four fifths of its lifetime).
    async fn access_token(&self) -> Result<String, SnError> {
        let mut token = self.token.lock().await;
        if let Some(current) = token.as_ref().filter(|current| Instant::now() < current.renew_at) {
            return Ok(current.access_token.clone());
        }
        let form: Vec<(&str, &str)> = match &self.credentials {
            Credentials::ClientCredentials { client_id, client_secret } => {
                vec![("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", client_secret)]
            }
            Credentials::Password { client_id, client_secret, username, password } => vec![
                ("grant_type", "password"),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("username", username),
                ("password", password),
            ],
            Credentials::Basic { .. } => return Err(SnError::Protocol("basic credentials have no token".into())),
        };
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let url = self.base.join("oauth_token.do").map_err(|e| SnError::InvalidUrl(e.to_string()))?;
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            self.pace().await;
            let sent = self
                .http
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_server_error() && attempt < self.settings.max_attempts => {}
                Ok(response) => break response,
                Err(error) => {
                    let error = transport_error(&error, self.settings.request_timeout);
                    if !error.is_transient() || attempt >= self.settings.max_attempts {
                        return Err(error);
                    }
                }
            }
            tokio::time::sleep(self.backoff(attempt)).await;
        };
        let status = response.status().as_u16();
        if status != 200 {
            let message = error_message(response).await;
            return Err(if matches!(status, 400 | 401) {
                SnError::Unauthorized(format!("the OAuth token request was refused: {message}"))
            } else {
                SnError::Status { status, message }
            });
        }
        let body = read_body(response, MAX_SMALL_BODY_BYTES, self.settings.request_timeout).await?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| SnError::Protocol(format!("OAuth answer: {e}")))?;
        let access_token = value
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| SnError::Protocol("the OAuth answer has no access_token".into()))?
            .to_string();
        let lifetime =
            value.get("expires_in").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).unwrap_or(1800);
        let renew_at = Instant::now() + Duration::from_secs(lifetime) * 4 / 5;
        *token = Some(Token { access_token: access_token.clone(), renew_at });
        Ok(access_token)
    }
}

/// References arrive as `{"link": …, "value": sys_id}` unless excluded; keep the sys_id.
fn flatten_reference(value: &Value) -> Value {
    match value {
        Value::Object(reference) => reference.get("value").cloned().unwrap_or(Value::String(String::new())),
        other => other.clone(),
    }
}

/// Reads a body of at most `limit` bytes; a longer one is refused without reading the rest.
async fn read_body(mut response: reqwest::Response, limit: usize, timeout: Duration) -> Result<Vec<u8>, SnError> {
    let too_large = || SnError::Protocol(format!("the answer is larger than {} KiB", limit / 1024));
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e, timeout))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport_error(error: &reqwest::Error, timeout: Duration) -> SnError {
    if error.is_timeout() {
        return SnError::Timeout(timeout);
    }
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut tls = false;
    while let Some(cause) = source {
        if let Some(refused @ crate::address::AddressError::Forbidden(_)) =
            cause.downcast_ref::<crate::address::AddressError>()
        {
            return refused.clone().into();
        }
        tls |= cause.downcast_ref::<rustls::Error>().is_some();
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.dedup();
    let detail = chain.join(": ");
    let lowered = detail.to_ascii_lowercase();
    if tls || lowered.contains("certificate") || lowered.contains("tls") || lowered.contains("handshake") {
        SnError::Tls(detail)
    } else if error.is_connect() || error.is_request() {
        SnError::Unreachable(detail)
    } else {
        SnError::Protocol(detail)
    }
}

/// `{"error": {"message": …, "detail": …}}`, ServiceNow's failure body, in words: only
/// ServiceNow's (or OAuth's) structured error text, shortened; any other body is not
/// repeated, so a check cannot be used to read what some host serves.
async fn error_message(response: reqwest::Response) -> String {
    let status = response.status();
    let body = read_body(response, MAX_SMALL_BODY_BYTES, Duration::from_secs(10)).await.unwrap_or_default();
    let message = structured_error(&body).unwrap_or_default();
    if message.is_empty() {
        return status.to_string();
    }
    let shortened: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    shortened.replace(['\n', '\r'], " ")
}

fn structured_error(body: &[u8]) -> Option<String> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|value| value.get("error"));
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or_default();
    let detail = error.and_then(|e| e.get("detail")).and_then(Value::as_str).unwrap_or_default();
    // OAuth errors are RFC 6749's `{"error": "invalid_client", "error_description": …}`.
    let oauth = parsed.as_ref().and_then(|value| value.get("error_description")).and_then(Value::as_str);
    match (message, detail, oauth) {
        ("", "", Some(description)) => description.to_string(),
        ("", "", None) if parsed.as_ref().and_then(|v| v.get("error")).and_then(Value::as_str).is_some() => {
            parsed.as_ref().and_then(|v| v.get("error")).and_then(Value::as_str).unwrap_or_default().to_string()
        }
        ("", "", None) => String::new(),
        (message, "", _) => message.to_string(),
        ("", detail, _) => detail.to_string(),
        (message, detail, _) => format!("{message} ({detail})"),
    }
    .into()
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs(at.saturating_sub(now).max(0) as u64))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as seconds since the epoch.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace().skip(1);
    let (day, month, year, time) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|name| *name == month)?
        + 1;
    crate::datetime::parse(&format!("{year}-{month:02}-{day} {time}"))
}

/// An IMF-fixdate for seconds since the epoch.
pub fn format_http_date(seconds: i64) -> String {
    let text = crate::datetime::format(seconds);
    let (year, month, day) = (&text[0..4], text[5..7].parse::<usize>().unwrap_or(1), &text[8..10]);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][seconds.div_euclid(86_400).rem_euclid(7) as usize];
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][month - 1];
    format!("{weekday}, {day} {month} {year} {} GMT", &text[11..])
}

/// A factor in [0.5, 1): jitter without a random number crate, from the clock's nanoseconds.
fn jitter() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mixed = (u64::from(nanos)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    0.5 + (mixed as f64 / (1u64 << 53) as f64) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(format_http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn references_keep_their_sys_id_and_secrets_stay_out_of_debug() {
        let reference = serde_json::json!({"link": "https://x/api/now/table/sys_user/abc", "value": "abc"});
        assert_eq!(flatten_reference(&reference), Value::String("abc".into()));
        let credentials = Credentials::Password {
            client_id: "id".into(),
            client_secret: "s3cret".into(),
            username: "u".into(),
            password: "hunter2".into(),
        };
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("hunter2"), "{shown}");
        assert!((0.5..1.0).contains(&jitter()));
    }
}
