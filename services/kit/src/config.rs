//! Configuration shared by every module: flags with environment variables behind them,
//! each with one documented default. Defaults are the embedded ones, so `complianceiq dev`
//! needs nothing set; `serve` is pointed at PostgreSQL, Redis and NATS through the
//! environment.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

/// The database groups of the design: services in one group share a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum DatabaseGroup {
    /// auth_db: accounts, credentials, sessions.
    Auth,
    /// core_db: users, organizations, instances, widgets, notifications, webhooks.
    Core,
    /// analysis_db: synced GRC data, analyses, insights, dashboards, ML metadata.
    Analysis,
    /// audit_db: the audit trail.
    Audit,
}

impl DatabaseGroup {
    /// Every group, in a stable order.
    pub const ALL: [DatabaseGroup; 4] = [Self::Auth, Self::Core, Self::Analysis, Self::Audit];

    /// Short name: `auth`, `core`, `analysis`, `audit`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Core => "core",
            Self::Analysis => "analysis",
            Self::Audit => "audit",
        }
    }
}

/// Where servers listen.
#[derive(Args, Clone, Debug)]
pub struct ListenConfig {
    /// Address every server binds to.
    #[arg(long = "listen-host", env = "CIQ_LISTEN_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Added to every module's design port (auth 8001 ... webhook 8012), to run two
    /// platforms side by side.
    #[arg(long = "port-offset", env = "CIQ_PORT_OFFSET", default_value_t = 0)]
    pub port_offset: u16,

    /// Plain-HTTP operations port of this process: gRPC health for probes and Prometheus
    /// `/metrics` (the port offset applies; 0 picks a free port).
    #[arg(long = "ops-port", env = "CIQ_OPS_PORT", default_value_t = 9090)]
    pub ops_port: u16,

    /// Bind every server to a free port chosen by the OS (tests).
    #[arg(skip)]
    pub ephemeral_ports: bool,
}

impl ListenConfig {
    /// The port a module listens on.
    pub fn port_for(&self, design_port: u16) -> u16 {
        if self.ephemeral_ports { 0 } else { design_port.saturating_add(self.port_offset) }
    }
}

/// Databases. Unset URLs mean SQLite files in the data directory.
#[derive(Args, Clone, Debug, Default)]
pub struct DatabaseConfig {
    /// Database for every group without its own URL (`postgres://...` or `sqlite://...`).
    /// Services connect as this user, which must not bypass row-level security.
    #[arg(long = "database-url", env = "CIQ_DATABASE_URL")]
    pub url: Option<String>,
    /// auth_db; overrides --database-url.
    #[arg(long = "auth-database-url", env = "CIQ_AUTH_DATABASE_URL")]
    pub auth_url: Option<String>,
    /// core_db; overrides --database-url.
    #[arg(long = "core-database-url", env = "CIQ_CORE_DATABASE_URL")]
    pub core_url: Option<String>,
    /// analysis_db; overrides --database-url.
    #[arg(long = "analysis-database-url", env = "CIQ_ANALYSIS_DATABASE_URL")]
    pub analysis_url: Option<String>,
    /// audit_db; overrides --database-url.
    #[arg(long = "audit-database-url", env = "CIQ_AUDIT_DATABASE_URL")]
    pub audit_url: Option<String>,

    /// PostgreSQL user that owns the schema and runs migrations; the same host and database
    /// as the service URL are used. Unset: migrations run as the service user.
    #[arg(long = "database-admin-user", env = "CIQ_DATABASE_ADMIN_USER")]
    pub admin_user: Option<String>,
    /// Password of the admin user.
    #[arg(long = "database-admin-password", env = "CIQ_DATABASE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Connections per database pool.
    #[arg(long = "database-max-connections", env = "CIQ_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub max_connections: u32,

    /// Allow services to connect as a PostgreSQL role that bypasses row-level security
    /// (a superuser or BYPASSRLS role). Off: such a connection is refused at start-up.
    #[arg(long = "database-allow-rls-bypass", env = "CIQ_DATABASE_ALLOW_RLS_BYPASS", default_value_t = false)]
    pub allow_rls_bypass: bool,
}

impl DatabaseConfig {
    /// The URL of a group: its own, the shared one, or a SQLite file under `data_dir`.
    pub fn url_for(&self, group: DatabaseGroup, data_dir: &Path) -> String {
        let own = match group {
            DatabaseGroup::Auth => &self.auth_url,
            DatabaseGroup::Core => &self.core_url,
            DatabaseGroup::Analysis => &self.analysis_url,
            DatabaseGroup::Audit => &self.audit_url,
        };
        own.clone()
            .or_else(|| self.url.clone())
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join(format!("{}.db", group.name())).display()))
    }
}

/// The cache and revocation store.
#[derive(Args, Clone, Debug)]
pub struct CacheConfig {
    /// Redis URL (`redis://host:6379/0`). Unset: an in-process cache.
    #[arg(long = "redis-url", env = "CIQ_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every key, so platforms can share a Redis.
    #[arg(long = "redis-key-prefix", env = "CIQ_REDIS_KEY_PREFIX", default_value = "ciq:")]
    pub key_prefix: String,
}

/// The event bus.
#[derive(Args, Clone, Debug)]
pub struct EventsConfig {
    /// NATS URL (`nats://host:4222`), JetStream enabled. Unset: an in-process bus.
    #[arg(long = "nats-url", env = "CIQ_NATS_URL")]
    pub nats_url: Option<String>,
    /// JetStream stream holding the events.
    #[arg(long = "nats-stream", env = "CIQ_NATS_STREAM", default_value = "COMPLIANCEIQ_EVENTS")]
    pub stream: String,
    /// First subject token; events go to `<prefix>.events.<publishing module>.<type>`.
    #[arg(long = "nats-subject-prefix", env = "CIQ_NATS_SUBJECT_PREFIX", default_value = "complianceiq")]
    pub subject_prefix: String,
    /// NATS user of this process: the module it runs, whose publish permissions the server
    /// limits to that module's subjects (see `complianceiq manifests`). Unset: no auth.
    #[arg(long = "nats-user", env = "CIQ_NATS_USER")]
    pub nats_user: Option<String>,
    /// Password of the NATS user.
    #[arg(long = "nats-password", env = "CIQ_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// PEM file of the CA that signed the NATS server's certificate: TLS is then required.
    #[arg(long = "nats-ca-file", env = "CIQ_NATS_CA_FILE")]
    pub nats_ca_file: Option<PathBuf>,
    /// Deliveries of an event a handler keeps failing on before it goes to the dead-letter
    /// stream (with a log line and a metric), so a malformed event neither loops nor vanishes.
    #[arg(long = "events-max-deliver", env = "CIQ_EVENTS_MAX_DELIVER", default_value_t = 5)]
    pub max_deliver: u32,
    /// Wait before the second delivery of a failed event, in milliseconds; doubles with each
    /// further delivery, up to five minutes.
    #[arg(long = "events-retry-backoff-ms", env = "CIQ_EVENTS_RETRY_BACKOFF_MS", default_value_t = 1000)]
    pub retry_backoff_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            nats_url: None,
            stream: "COMPLIANCEIQ_EVENTS".into(),
            subject_prefix: "complianceiq".into(),
            nats_user: None,
            nats_password: None,
            nats_ca_file: None,
            max_deliver: 5,
            retry_backoff_ms: 1000,
        }
    }
}

impl EventsConfig {
    /// How long to wait before delivery number `delivered + 1` of an event that failed
    /// `delivered` times.
    pub fn retry_backoff(&self, delivered: u32) -> std::time::Duration {
        let base = std::time::Duration::from_millis(self.retry_backoff_ms.max(1));
        base.saturating_mul(1u32 << delivered.saturating_sub(1).min(16)).min(std::time::Duration::from_secs(300))
    }
}

/// Log output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs and traces.
#[derive(Args, Clone, Debug)]
pub struct TelemetryConfig {
    /// Log filter, `tracing` EnvFilter syntax (`info,complianceiq_kit=debug`). sqlx is kept
    /// at warn: it logs every PostgreSQL NOTICE at info.
    #[arg(long = "log", env = "CIQ_LOG", default_value = "info,sqlx=warn")]
    pub filter: String,
    /// Log format; default pretty for `dev`, json for `serve`.
    #[arg(long = "log-format", env = "CIQ_LOG_FORMAT")]
    pub format: Option<LogFormat>,
    /// OTLP/gRPC collector to export spans to (`http://otel-collector:4317`); unset, spans
    /// are only propagated.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded (0 to 1); a caller's decision is always followed.
    #[arg(long = "trace-sample-ratio", env = "CIQ_TRACE_SAMPLE_RATIO", default_value_t = 1.0)]
    pub trace_sample_ratio: f64,
}

/// Keys and trust.
#[derive(Args, Clone, Debug, Default)]
pub struct SecurityConfig {
    /// Directory of the RS256 keys that sign access tokens: PKCS#8 PEM files named
    /// `<key id>.pem`. The greatest key id signs; every key in it is published in the JWKS,
    /// so a rotated-out key keeps verifying until its tokens expire. Default
    /// `<data-dir>/keys/jwt`, generated on first start in dev; required by `serve`.
    #[arg(long = "jwt-keys-dir", env = "CIQ_JWT_KEYS_DIR")]
    pub jwt_keys_dir: Option<PathBuf>,
    /// Keys that encrypt secrets at rest (MFA seeds, credentials): comma-separated
    /// `<key id>:<base64 of 32 bytes>`; the first encrypts, all decrypt, so keys rotate.
    /// Default `<data-dir>/keys/encryption-keys`, generated in dev; required by `serve`.
    #[arg(long = "encryption-keys", env = "CIQ_ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<String>,
    /// Proxies in front of the gateway that append to X-Forwarded-For (an ingress
    /// controller: 1). The client is the right-most address they did not add; with 0 the
    /// TCP peer, and the header is ignored.
    #[arg(long = "trusted-proxies", env = "CIQ_TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: u8,
}

/// Where mailed links lead unless configured: the edge's design port on this machine.
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:8080";

/// Outgoing mail.
#[derive(Args, Clone, Debug)]
pub struct MailConfig {
    /// SMTP server, `smtps://user:password@host:465` or `smtp://host:587?tls=required`.
    /// Unset: mail is written to `<data-dir>/mailbox/` as .eml files.
    #[arg(long = "smtp-url", env = "CIQ_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of every mail.
    #[arg(long = "mail-from", env = "CIQ_MAIL_FROM", default_value = "ComplianceIQ <no-reply@complianceiq.local>")]
    pub from: String,
    /// Base URL of the web application, for links in mail.
    #[arg(long = "public-url", env = "CIQ_PUBLIC_URL", default_value = DEFAULT_PUBLIC_URL)]
    pub public_url: String,
}

/// Billing. Unset Stripe key: an in-process provider that changes plans at once (dev).
#[derive(Args, Clone, Debug, Default)]
pub struct BillingConfig {
    /// Stripe secret API key.
    #[arg(long = "stripe-secret-key", env = "CIQ_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Stripe API base URL.
    #[arg(long = "stripe-api-base", env = "CIQ_STRIPE_API_BASE", default_value = "https://api.stripe.com")]
    pub stripe_api_base: String,
    /// Stripe price ids per plan: `starter=price_123,professional=price_456,enterprise=price_789`.
    #[arg(long = "stripe-prices", env = "CIQ_STRIPE_PRICES", default_value = "")]
    pub stripe_prices: String,
    /// Without Stripe, let plans change without payment (`true`: a self-hosted
    /// installation). Unset: allowed by `dev`; `serve` then refuses changes to paid plans,
    /// so a missing key never makes every plan free.
    #[arg(long = "billing-disabled", env = "CIQ_BILLING_DISABLED")]
    pub billing_disabled: Option<bool>,
}

/// The edge gateway.
#[derive(Args, Clone, Debug)]
pub struct GatewayConfig {
    /// Browser origins allowed to call the gateway (CORS), comma-separated. `*` is refused in
    /// production. Default: local development servers.
    #[arg(
        long = "cors-allowed-origins",
        env = "CIQ_CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:3000,http://localhost:5173,http://localhost:8080"
    )]
    pub cors_allowed_origins: Vec<String>,
    /// PEM certificate chain to terminate TLS at the gateway; unset: plain HTTP (TLS is then
    /// terminated in front of it).
    #[arg(long = "gateway-tls-cert", env = "CIQ_GATEWAY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --gateway-tls-cert.
    #[arg(long = "gateway-tls-key", env = "CIQ_GATEWAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Largest request body accepted, bytes.
    #[arg(long = "gateway-max-body-bytes", env = "CIQ_GATEWAY_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a call may take before the gateway answers 504 / DEADLINE_EXCEEDED.
    #[arg(long = "gateway-timeout-seconds", env = "CIQ_GATEWAY_TIMEOUT_SECONDS", default_value_t = 30)]
    pub timeout_seconds: u64,
    /// Requests per minute one client (user, or address when anonymous) may make.
    #[arg(long = "rate-limit-client-per-minute", env = "CIQ_RATE_LIMIT_CLIENT_PER_MINUTE", default_value_t = 600)]
    pub client_per_minute: u32,
    /// Requests per minute an organization on the free plan may make; paid plans get
    /// multiples (starter 5x, professional 25x, enterprise 100x).
    #[arg(long = "rate-limit-tenant-per-minute", env = "CIQ_RATE_LIMIT_TENANT_PER_MINUTE", default_value_t = 1200)]
    pub tenant_per_minute: u32,
    /// Length of the rate-limit window, seconds: the limits above apply per this many
    /// seconds instead of per minute (tests shorten it).
    #[arg(
        long = "rate-limit-period-seconds",
        env = "CIQ_RATE_LIMIT_PERIOD_SECONDS",
        default_value_t = 60,
        hide = true
    )]
    pub rate_period_seconds: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            cors_allowed_origins: vec![
                "http://localhost:3000".into(),
                "http://localhost:5173".into(),
                "http://localhost:8080".into(),
            ],
            tls_cert: None,
            tls_key: None,
            max_body_bytes: 4 * 1024 * 1024,
            timeout_seconds: 30,
            client_per_minute: 600,
            tenant_per_minute: 1200,
            rate_period_seconds: 60,
        }
    }
}

/// Who terminates the mutual TLS of calls between modules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum MeshMode {
    /// Each module does: servers demand a client certificate, clients present one.
    #[default]
    Mtls,
    /// A service-mesh sidecar (Istio's Envoy) does, and forwards the caller's identity in
    /// `X-Forwarded-Client-Cert`. Only for a mesh that enforces STRICT mutual TLS: the
    /// header is believed as sent.
    Sidecar,
}

/// Mutual TLS between modules.
#[derive(Args, Clone, Debug)]
pub struct MeshConfig {
    /// Who terminates mutual TLS between modules.
    #[arg(long = "mesh-mode", env = "CIQ_MESH_MODE", value_enum, default_value_t = MeshMode::Mtls)]
    pub mode: MeshMode,
    /// Certificates: `<dir>/<module>/tls.crt`, `tls.key` and `ca.crt` for each module this
    /// process runs, as cert-manager writes them; reloaded when they change. Default
    /// `<data-dir>/mesh`, where `dev` generates a CA and every module's certificate.
    #[arg(long = "mesh-cert-dir", env = "CIQ_MESH_CERT_DIR")]
    pub cert_dir: Option<PathBuf>,
    /// SPIFFE trust domain of module identities (`spiffe://<domain>/ns/<namespace>/sa/<module>-service`).
    #[arg(long = "mesh-trust-domain", env = "CIQ_MESH_TRUST_DOMAIN", default_value = "cluster.local")]
    pub trust_domain: String,
    /// Namespace part of module identities.
    #[arg(long = "mesh-namespace", env = "CIQ_MESH_NAMESPACE", default_value = "complianceiq")]
    pub namespace: String,
    /// How often certificate files are checked for changes, milliseconds.
    #[arg(long = "mesh-reload-ms", env = "CIQ_MESH_RELOAD_MS", default_value_t = 2000, hide = true)]
    pub reload_ms: u64,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            mode: MeshMode::Mtls,
            cert_dir: None,
            trust_domain: "cluster.local".into(),
            namespace: "complianceiq".into(),
            reload_ms: 2000,
        }
    }
}

/// ServiceNow instances.
#[derive(Args, Clone, Debug)]
pub struct InstanceConfig {
    /// Seconds between scheduled health checks of each instance (the first comes a minute
    /// after connecting, or sooner when this is shorter).
    #[arg(
        long = "instance-health-interval-seconds",
        env = "CIQ_INSTANCE_HEALTH_INTERVAL_SECONDS",
        default_value_t = 900
    )]
    pub health_interval_seconds: u64,
    /// Table API requests per second to one ServiceNow instance during a sync.
    #[arg(long = "servicenow-requests-per-second", env = "CIQ_SERVICENOW_REQUESTS_PER_SECOND", default_value_t = 20.0)]
    pub requests_per_second: f64,
    /// Records per Table API page during a sync.
    #[arg(long = "sync-page-size", env = "CIQ_SYNC_PAGE_SIZE", default_value_t = 500)]
    pub sync_page_size: u32,
    /// Seconds a sync worker holds a run between checkpoints; after that another process
    /// resumes it (a crashed worker's runs wait this long).
    #[arg(long = "sync-lease-seconds", env = "CIQ_SYNC_LEASE_SECONDS", default_value_t = 60)]
    pub sync_lease_seconds: u64,
    /// Whether instance URLs may point at loopback and private networks (`true` or
    /// `false`). Unset: allowed by `dev` (the simulator runs on this machine), refused by
    /// `serve`, where such a URL would let a tenant reach the platform's own network.
    #[arg(long = "instance-allow-private-networks", env = "CIQ_INSTANCE_ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: Option<bool>,
}

impl InstanceConfig {
    /// Whether private networks are allowed in `mode`.
    pub fn private_networks_allowed(&self, mode: RunMode) -> bool {
        self.allow_private_networks.unwrap_or(mode == RunMode::Development)
    }
}

impl Default for InstanceConfig {
    fn default() -> Self {
        Self {
            health_interval_seconds: 900,
            requests_per_second: 20.0,
            sync_page_size: 500,
            sync_lease_seconds: 60,
            allow_private_networks: None,
        }
    }
}

/// Single sign-on: how the platform reaches identity providers and DNS.
#[derive(Args, Clone, Debug, Default)]
pub struct SsoSettings {
    /// Whether identity provider URLs may point at loopback and private networks and use
    /// plain http (`true` or `false`). Unset: allowed by `dev`, refused by `serve`: a tenant
    /// admin types the issuer, so it is checked like any tenant URL.
    #[arg(
        id = "sso_allow_private_networks",
        long = "sso-allow-private-networks",
        env = "CIQ_SSO_ALLOW_PRIVATE_NETWORKS"
    )]
    pub allow_private_networks: Option<bool>,
    /// The DNS server (`address:port`) asked for domain verification TXT records. Unset: the
    /// first `nameserver` of /etc/resolv.conf.
    #[arg(long = "sso-dns-server", env = "CIQ_SSO_DNS_SERVER")]
    pub dns_server: Option<std::net::SocketAddr>,
}

impl SsoSettings {
    /// Whether private networks are allowed in `mode`.
    pub fn private_networks_allowed(&self, mode: RunMode) -> bool {
        self.allow_private_networks.unwrap_or(mode == RunMode::Development)
    }
}

/// Object storage for rendered files (exports, reports, model artifacts).
#[derive(Args, Clone, Debug, Default)]
pub struct StorageConfig {
    /// Where files go: `s3://bucket/prefix` (credentials, region and endpoint from the standard
    /// AWS_* variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT for
    /// S3-compatible stores) or `file:///absolute/dir`. Unset: `<data dir>/objects`.
    #[arg(long = "object-store-url", env = "CIQ_OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,
    /// Seconds a download link stays valid.
    #[arg(long = "download-link-seconds", env = "CIQ_DOWNLOAD_LINK_SECONDS", default_value_t = 900)]
    pub download_link_seconds: u64,
}

/// Webhook deliveries.
#[derive(Args, Clone, Debug)]
pub struct WebhookConfig {
    /// Whether webhook URLs may point at loopback and private networks, and use plain http
    /// there (`true` or `false`). Unset: allowed by `dev` (receivers on this machine),
    /// refused by `serve`.
    #[arg(
        id = "webhook_allow_private_networks",
        long = "webhook-allow-private-networks",
        env = "CIQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS"
    )]
    pub allow_private_networks: Option<bool>,
    /// Seconds before each attempt of a delivery, the first counted from the event; after
    /// the last, the delivery fails. The Standard Webhooks schedule by default.
    #[arg(
        long = "webhook-retry-schedule-seconds",
        env = "CIQ_WEBHOOK_RETRY_SCHEDULE_SECONDS",
        value_delimiter = ',',
        default_value = "0,5,300,1800,7200,18000,36000,36000"
    )]
    pub retry_schedule_seconds: Vec<u64>,
    /// Hours an endpoint may fail every attempt before a delivery that finally fails pauses
    /// it (state FAILING).
    #[arg(long = "webhook-disable-after-hours", env = "CIQ_WEBHOOK_DISABLE_AFTER_HOURS", default_value_t = 120)]
    pub disable_after_hours: u64,
    /// Hours the previous secret still signs after a webhook's secret changes.
    #[arg(long = "webhook-secret-grace-hours", env = "CIQ_WEBHOOK_SECRET_GRACE_HOURS", default_value_t = 24)]
    pub secret_grace_hours: u64,
    /// Seconds an endpoint has to answer an attempt.
    #[arg(long = "webhook-timeout-seconds", env = "CIQ_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10)]
    pub attempt_timeout_seconds: u64,
}

impl WebhookConfig {
    /// Whether private networks (and plain http there) are allowed in `mode`.
    pub fn private_networks_allowed(&self, mode: RunMode) -> bool {
        self.allow_private_networks.unwrap_or(mode == RunMode::Development)
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private_networks: None,
            retry_schedule_seconds: vec![0, 5, 300, 1800, 7200, 18000, 36000, 36000],
            disable_after_hours: 120,
            secret_grace_hours: 24,
            attempt_timeout_seconds: 10,
        }
    }
}

/// Text messages, through a provider with Twilio's Messages API.
#[derive(Args, Clone, Default)]
pub struct SmsConfig {
    /// The provider's API base URL (Twilio's, or a compatible one).
    #[arg(id = "sms_api_url", long = "sms-api-url", env = "CIQ_SMS_API_URL", default_value = "https://api.twilio.com")]
    pub api_url: String,
    /// Account SID (the API user). Unset: `dev` writes messages to `<data-dir>/sms/`, `serve`
    /// offers no SMS channel.
    #[arg(id = "sms_account_sid", long = "sms-account-sid", env = "CIQ_SMS_ACCOUNT_SID")]
    pub account_sid: Option<String>,
    /// Auth token (the API password).
    #[arg(id = "sms_auth_token", long = "sms-auth-token", env = "CIQ_SMS_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Sender: an E.164 number or a messaging service SID (`MG…`).
    #[arg(id = "sms_from", long = "sms-from", env = "CIQ_SMS_FROM")]
    pub from: Option<String>,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("api_url", &self.api_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .finish()
    }
}

/// The audit trail's retention.
#[derive(Args, Clone, Debug)]
pub struct AuditConfig {
    /// Days each plan keeps audit entries, `plan=days` for free, starter, professional and
    /// enterprise. Older entries are removed from the start of the organization's chain
    /// behind a signed checkpoint. An organization's own data retention setting does not
    /// shorten this: evidence is kept by contract, not by a tenant admin's choice.
    #[arg(
        id = "audit_retention_days",
        long = "audit-retention-days",
        env = "CIQ_AUDIT_RETENTION_DAYS",
        value_delimiter = ',',
        default_value = "free=90,starter=365,professional=1095,enterprise=2555"
    )]
    pub retention_days: Vec<String>,
    /// Seconds between retention sweeps.
    #[arg(
        id = "audit_retention_sweep_seconds",
        long = "audit-retention-sweep-seconds",
        env = "CIQ_AUDIT_RETENTION_SWEEP_SECONDS",
        default_value_t = 3600
    )]
    pub retention_sweep_seconds: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: ["free=90", "starter=365", "professional=1095", "enterprise=2555"]
                .map(String::from)
                .to_vec(),
            retention_sweep_seconds: 3600,
        }
    }
}

impl AuditConfig {
    /// Days per plan (`free`, ...), or what is wrong with the setting.
    pub fn retention_by_plan(&self) -> Result<Vec<(String, i64)>, String> {
        const PLANS: [&str; 4] = ["free", "starter", "professional", "enterprise"];
        let mut days = Vec::new();
        for item in &self.retention_days {
            let parsed = item.split_once('=').and_then(|(plan, value)| {
                let plan = plan.trim().to_ascii_lowercase();
                let value = value.trim().parse::<i64>().ok().filter(|days| *days > 0)?;
                PLANS.contains(&plan.as_str()).then_some((plan, value))
            });
            match parsed {
                Some(entry) => days.push(entry),
                None => {
                    return Err(format!(
                        "CIQ_AUDIT_RETENTION_DAYS: {item:?} is not plan=days with a plan of {} and days above 0",
                        PLANS.join(", ")
                    ));
                }
            }
        }
        Ok(days)
    }
}

/// Durable jobs other than syncs (analyses, exports).
#[derive(Args, Clone, Debug)]
pub struct JobsConfig {
    /// Seconds a job worker holds a job between checkpoints; after that another process
    /// resumes it (a crashed worker's jobs wait this long).
    #[arg(long = "job-lease-seconds", env = "CIQ_JOB_LEASE_SECONDS", default_value_t = 60)]
    pub job_lease_seconds: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { job_lease_seconds: 60 }
    }
}

impl JobsConfig {
    /// A worker's settings: the kit's defaults with this lease.
    pub fn worker_settings(&self) -> crate::jobs::WorkerSettings {
        crate::jobs::WorkerSettings {
            lease: std::time::Duration::from_secs(self.job_lease_seconds.max(1)),
            ..Default::default()
        }
    }
}

/// How the platform was started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunMode {
    /// `dev` and tests: missing development keys are generated into the data directory.
    #[default]
    Development,
    /// `serve`: keys must be configured.
    Production,
}

/// Everything the kit needs to run modules.
#[derive(Args, Clone, Debug)]
pub struct PlatformConfig {
    /// Directory for SQLite files, development keys and certificates, the dev mailbox and
    /// object storage.
    #[arg(long = "data-dir", env = "CIQ_DATA_DIR", default_value = ".complianceiq")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub listen: ListenConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub cache: CacheConfig,
    #[command(flatten)]
    pub events: EventsConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    #[command(flatten)]
    pub security: SecurityConfig,
    #[command(flatten)]
    pub mail: MailConfig,
    #[command(flatten)]
    pub billing: BillingConfig,
    #[command(flatten)]
    pub gateway: GatewayConfig,
    #[command(flatten)]
    pub mesh: MeshConfig,
    #[command(flatten)]
    pub instance: InstanceConfig,
    #[command(flatten)]
    pub storage: StorageConfig,
    #[command(flatten)]
    pub jobs: JobsConfig,
    #[command(flatten)]
    pub webhook: WebhookConfig,
    #[command(flatten)]
    pub audit: AuditConfig,
    #[command(flatten)]
    pub sms: SmsConfig,
    #[command(flatten)]
    pub sso: SsoSettings,
    /// Set by the command, not by a flag.
    #[arg(skip)]
    pub mode: RunMode,
}

impl PlatformConfig {
    /// The JWT signing keys directory.
    pub fn jwt_keys_dir(&self) -> PathBuf {
        self.security.jwt_keys_dir.clone().unwrap_or_else(|| self.data_dir.join("keys").join("jwt"))
    }

    /// Where object storage is: the configured URL, else a directory under `data_dir`.
    pub fn object_store_url(&self) -> String {
        self.storage.object_store_url.clone().unwrap_or_else(|| {
            let dir =
                std::path::absolute(self.data_dir.join("objects")).unwrap_or_else(|_| self.data_dir.join("objects"));
            format!("file://{}", dir.display())
        })
    }

    /// The mesh certificates directory.
    pub fn mesh_cert_dir(&self) -> PathBuf {
        self.mesh.cert_dir.clone().unwrap_or_else(|| self.data_dir.join("mesh"))
    }

    /// Embedded defaults rooted at `data_dir`, as `dev` uses them.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: ListenConfig {
                host: IpAddr::from([127, 0, 0, 1]),
                port_offset: 0,
                ops_port: 9090,
                ephemeral_ports: false,
            },
            database: DatabaseConfig { max_connections: 10, ..Default::default() },
            cache: CacheConfig { redis_url: None, key_prefix: "ciq:".into() },
            events: EventsConfig::default(),
            telemetry: TelemetryConfig {
                filter: "info,sqlx=warn".into(),
                format: None,
                otlp_endpoint: None,
                trace_sample_ratio: 1.0,
            },
            security: SecurityConfig::default(),
            mail: MailConfig {
                smtp_url: None,
                from: "ComplianceIQ <no-reply@complianceiq.local>".into(),
                public_url: "http://localhost:8080".into(),
            },
            billing: BillingConfig { stripe_api_base: "https://api.stripe.com".into(), ..Default::default() },
            gateway: GatewayConfig::default(),
            mesh: MeshConfig::default(),
            instance: InstanceConfig::default(),
            storage: StorageConfig { object_store_url: None, download_link_seconds: 900 },
            jobs: JobsConfig::default(),
            webhook: WebhookConfig::default(),
            audit: AuditConfig::default(),
            sms: SmsConfig { api_url: "https://api.twilio.com".into(), ..Default::default() },
            sso: SsoSettings::default(),
            mode: RunMode::Development,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_retention_is_read_per_plan_and_a_wrong_setting_is_named() {
        let days = AuditConfig::default().retention_by_plan().unwrap();
        assert_eq!(days.iter().find(|(plan, _)| plan == "enterprise").map(|(_, d)| *d), Some(2555));
        for bad in ["gold=10", "free=0", "free", "free=ten"] {
            let config = AuditConfig { retention_days: vec![bad.into()], ..Default::default() };
            let error = config.retention_by_plan().unwrap_err();
            assert!(error.contains(bad) && error.contains("CIQ_AUDIT_RETENTION_DAYS"), "{error}");
        }
    }

    #[test]
    fn group_urls_fall_back_to_the_shared_url_then_to_sqlite_files() {
        let mut config = DatabaseConfig::default();
        let dir = Path::new("/data");
        assert_eq!(config.url_for(DatabaseGroup::Core, dir), "sqlite:///data/core.db?mode=rwc");
        config.url = Some("postgres://app@db/ciq".into());
        config.audit_url = Some("postgres://app@audit-db/audit".into());
        assert_eq!(config.url_for(DatabaseGroup::Core, dir), "postgres://app@db/ciq");
        assert_eq!(config.url_for(DatabaseGroup::Audit, dir), "postgres://app@audit-db/audit");
    }

    #[test]
    fn ports_follow_the_design_with_an_offset_or_are_ephemeral() {
        let mut listen = PlatformConfig::embedded("/tmp").listen;
        assert_eq!(listen.port_for(8003), 8003);
        listen.port_offset = 100;
        assert_eq!(listen.port_for(8003), 8103);
        listen.ephemeral_ports = true;
        assert_eq!(listen.port_for(8003), 0);
    }
}
