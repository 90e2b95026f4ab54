//! The auth service's RPCs.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::auth::jwt::{self, Claims};
use complianceiq_kit::auth::revocations::Revocations;
use complianceiq_kit::auth::{self, caller};
use complianceiq_kit::cache::Cache;
use complianceiq_kit::context::{RequestContext, client_address};
use complianceiq_kit::crypto::{random_bytes, random_token, sha256_hex};
use complianceiq_kit::db::{GlobalTx, ModuleDatabase};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::{OrganizationId, UserId};
use complianceiq_kit::mail::{Mail, Mailer};
use complianceiq_kit::secrets::SecretBox;
use complianceiq_kit::time;
use complianceiq_kit::validate;
use complianceiq_proto::complianceiq::audit::v1::{Actor, AuditLog, Outcome};
use complianceiq_proto::complianceiq::auth::v1::auth_service_server::AuthService;
use complianceiq_proto::complianceiq::auth::v1::{
    Account as AccountMessage, AccountOrganization, ApiKey, CreateApiKeyRequest, CreateApiKeyResponse,
    EnableMfaRequest, EnableMfaResponse, ExchangeApiKeyRequest, ExchangeApiKeyResponse, ForgotPasswordRequest,
    ForgotPasswordResponse, GetJwksRequest, GetJwksResponse, ListAccountOrganizationsRequest,
    ListAccountOrganizationsResponse, ListApiKeysRequest, ListApiKeysResponse, LoginRequest, LoginResponse,
    LogoutRequest, LogoutResponse, MfaChallenge, RefreshRequest, RegisterRequest, RegisterResponse,
    ResetMemberMfaRequest, ResetMemberMfaResponse, ResetPasswordRequest, ResetPasswordResponse, RevokeApiKeyRequest,
    TokenPair, VerifyEmailRequest, VerifyMfaRequest, VerifyMfaResponse, login_response,
};
use complianceiq_proto::complianceiq::auth::v1::{
    AddSsoDomainRequest, DeleteSsoConfigRequest, ExchangeSsoTicketRequest, FinishOidcSsoRequest, FinishSamlSsoRequest,
    GetSamlMetadataRequest, GetSsoConfigRequest, RemoveSsoDomainRequest, SsoConfig, SsoDomain, StartSsoRequest,
    UpdateSsoConfigRequest, VerifySsoDomainRequest,
};
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{AuditRecorded, SecurityAlert, UserEmailVerified, UserRegistered};
use complianceiq_proto::google::api::HttpBody;
use tonic::{Request, Response, Status};

use crate::keys::KeyStore;
use crate::store::{self, Account, EmailPurpose, IssuedAccess, Membership, State};
use crate::{password, totp};

const REFRESH_TOKEN_SECONDS: i64 = 7 * 24 * 3600;
/// However often it is refreshed, a session ends this long after its login.
const SESSION_SECONDS: i64 = 30 * 24 * 3600;
/// A staff session (sign-in with password and second factor) lasts a working day.
const STAFF_SESSION_SECONDS: i64 = 8 * 3600;
/// The role name a staff token carries (the design's "Super Admin").
const STAFF_ROLE: &str = "super_admin";
const VERIFY_EMAIL_SECONDS: i64 = 24 * 3600;
const RESET_PASSWORD_SECONDS: i64 = 3600;
const MFA_ENROLLMENT_SECONDS: i64 = 600;
const MFA_CHALLENGE: Duration = Duration::from_secs(300);
const MFA_CHALLENGE_ATTEMPTS: i64 = 5;
/// Wrong second-factor codes of one account, across challenges, before its second factor
/// is locked for a window: a correct password must not buy unlimited guesses.
const MFA_ACCOUNT_FAILURE_LIMIT: i64 = 10;
const RECOVERY_CODES: usize = 10;
/// Failed logins are counted in windows of this length.
const LOGIN_WINDOW: Duration = Duration::from_secs(900);
/// Failures of one account before it is locked for a window.
const ACCOUNT_FAILURE_LIMIT: i64 = 5;
/// Failures from one address before it is refused for a window.
const ADDRESS_FAILURE_LIMIT: i64 = 50;
/// Unauthenticated requests (register, reset, verify) from one address per window.
const ADDRESS_REQUEST_LIMIT: i64 = 100;
/// Anyone may found an organization, so every token carries this.
const PERSONAL_PERMISSIONS: [&str; 1] = ["organizations:create"];

const MICROS: i64 = 1_000_000;

/// The auth service.
pub struct AuthApi {
    pub(crate) database: ModuleDatabase,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) secrets: Arc<SecretBox>,
    pub(crate) public_url: String,
    pub(crate) sso: crate::sso::SsoParts,
    /// A hash of a random password: checked when the email is unknown, so that answer takes
    /// as long as a wrong password and does not reveal which emails exist.
    pub(crate) decoy_hash: String,
}

fn seconds(micros: i64) -> i64 {
    micros.div_euclid(MICROS)
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthenticated { reason: "INVALID_CREDENTIALS", message: "the email or password is wrong".into() }
}

fn mfa_required(organization: &str) -> ApiError {
    ApiError::FailedPrecondition {
        reason: "MFA_REQUIRED",
        message: format!(
            "organization {organization} requires two-factor authentication: sign in without choosing it, \
             enroll with EnableMfa and VerifyMfa, then sign in again"
        ),
    }
}

fn suspended(organization: &str) -> ApiError {
    ApiError::PermissionDenied {
        reason: "ORGANIZATION_SUSPENDED",
        message: format!("organization {organization} is suspended; contact ComplianceIQ support"),
    }
}

fn sso_required(organization: &str) -> ApiError {
    ApiError::FailedPrecondition {
        reason: "SSO_REQUIRED",
        message: format!(
            "organization {organization} requires single sign-on: sign in through your identity provider \
             (GET /api/v1/auth/sso/start?email=...)"
        ),
    }
}

/// Refuses a membership in an organization that staff suspended, that requires single sign-on
/// of a session that did not begin with its provider (`sso_organization`), or that requires a
/// second factor the account lacks (a single sign-on leaves the factor to the provider).
fn check_organization_policy(
    account: &Account,
    membership: Option<&Membership>,
    sso_organization: Option<&str>,
) -> Result<(), ApiError> {
    let Some(membership) = membership else { return Ok(()) };
    let by_its_provider = sso_organization == Some(membership.organization_id.as_str());
    if membership.suspended {
        Err(suspended(&membership.organization_id))
    } else if membership.requires_sso && !by_its_provider {
        Err(sso_required(&membership.organization_id))
    } else if membership.requires_mfa && !account.mfa_enabled && !by_its_provider {
        Err(mfa_required(&membership.organization_id))
    } else {
        Ok(())
    }
}

/// An alert of `kind` about the account `user_id` (empty: unknown), from `address`.
pub(crate) fn security_alert(
    kind: &str,
    severity: &str,
    user_id: String,
    address: Option<IpAddr>,
    metadata: std::collections::HashMap<String, String>,
) -> SecurityAlert {
    SecurityAlert {
        kind: kind.into(),
        severity: severity.into(),
        user_id,
        ip_address: address.map(|a| a.to_string()).unwrap_or_default(),
        metadata,
    }
}

/// Raises a security alert about an account in every organization it belongs to, so each
/// one's audit trail shows it; the person is told once (`notify` is `false` on the other
/// copies). An account in no organization: one alert with none (it joins no trail).
pub(crate) async fn raise_alert(
    tx: &mut GlobalTx,
    alert: SecurityAlert,
    context: &RequestContext,
) -> Result<(), ApiError> {
    let organizations = match UserId::from_stored(&alert.user_id) {
        Ok(user) => store::active_memberships(tx, user).await?,
        Err(_) => Vec::new(),
    };
    if organizations.is_empty() {
        return tx.emit(None, Payload::SecurityAlert(alert), context).await.map(|_| ());
    }
    for (index, membership) in organizations.iter().enumerate() {
        let mut copy = alert.clone();
        if index > 0 {
            copy.metadata.insert("notify".into(), "false".into());
        }
        let organization = OrganizationId::from_stored(&membership.organization_id).ok();
        tx.emit(organization, Payload::SecurityAlert(copy), context).await?;
    }
    Ok(())
}

fn unauthenticated(reason: &'static str, message: &str) -> ApiError {
    ApiError::Unauthenticated { reason, message: message.into() }
}

fn normalized_recovery_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase()
}

/// 16 symbols of 32 (80 bits): `XXXX-XXXX-XXXX-XXXX`, unambiguous letters and digits.
/// A fresh set of recovery codes for `user`: (the codes, to show once; their keyed hashes, to store).
pub(crate) fn new_recovery_codes(secrets: &SecretBox, user: UserId) -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes = codes
        .iter()
        .map(|code| secrets.keyed_hash(normalized_recovery_code(code).as_bytes(), &recovery_context(user)))
        .collect();
    (codes, hashes)
}

fn new_recovery_code() -> String {
    let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // 256 is a multiple of 32: no bias.
    let code: String = random_bytes(16).iter().map(|b| alphabet[(*b as usize) % alphabet.len()] as char).collect();
    format!("{}-{}-{}-{}", &code[..4], &code[4..8], &code[8..12], &code[12..])
}

fn recovery_context(user: UserId) -> String {
    format!("recovery-code:{user}")
}

impl AuthApi {
    fn link(&self, path: &str, token: &str) -> String {
        format!("{}/{path}?token={token}", self.public_url.trim_end_matches('/'))
    }

    /// Mail goes out after the response, so its latency (or the lack of a message for an
    /// unknown address) never shows in response times.
    pub(crate) fn send_later(&self, mail: Mail) {
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            let to = mail.to.clone();
            if let Err(error) = mailer.send(mail).await {
                tracing::warn!(%to, %error, "sending mail");
            }
        });
    }

    /// Stores a new single-use email token for `account` and returns it (the mail carries it).
    async fn new_email_token(
        tx: &mut GlobalTx,
        account: &Account,
        purpose: EmailPurpose,
        lifetime_seconds: i64,
    ) -> Result<String, ApiError> {
        let now = time::now_micros();
        let token = random_token();
        let expires = now + lifetime_seconds * MICROS;
        if purpose == EmailPurpose::ResetPassword {
            // Only the newest reset link works. (Verification links all may: any one proves
            // the address.)
            store::retire_email_tokens(tx, account.id, purpose, now).await?;
        }
        store::insert_email_token(tx, &sha256_hex(token.as_bytes()), account.id, purpose, expires, now).await?;
        Ok(token)
    }

    fn verification_mail(&self, account: &Account, token: &str) -> Mail {
        Mail {
            html: None,
            attachments: Vec::new(),
            to: account.email.clone(),
            subject: "Verify your email for ComplianceIQ".into(),
            body: format!(
                "Hello {},\n\nconfirm your email address to start using ComplianceIQ:\n\n{}\n\n\
                 The link works once and expires in 24 hours. If you did not register, ignore this message.\n\n\
                 Token: {token}\n",
                account.full_name,
                self.link("verify-email", token)
            ),
        }
    }

    async fn throttle_address(&self, address: Option<IpAddr>, action: &str) -> Result<(), ApiError> {
        let Some(address) = address else { return Ok(()) };
        let count = self.cache.increment(&format!("auth-requests:{action}:{address}"), LOGIN_WINDOW).await?;
        if count > ADDRESS_REQUEST_LIMIT {
            return Err(ApiError::ResourceExhausted {
                reason: "TOO_MANY_REQUESTS",
                message: "too many requests from this address; wait and try again".into(),
                retry_after: Some(LOGIN_WINDOW),
            });
        }
        Ok(())
    }

    /// Refuses a login while the account or the address is locked out.
    async fn check_login_locks(&self, email_key: &str, address: Option<IpAddr>) -> Result<(), ApiError> {
        let now = auth::verifier::now_seconds();
        for key in std::iter::once(format!("login-lock:account:{email_key}"))
            .chain(address.map(|address| format!("login-lock:address:{address}")))
        {
            if let Some(value) = self.cache.get(&key).await? {
                let unlock: i64 = std::str::from_utf8(&value).ok().and_then(|v| v.parse().ok()).unwrap_or(now + 60);
                return Err(ApiError::ResourceExhausted {
                    reason: "TOO_MANY_FAILED_LOGINS",
                    message: "too many failed logins; wait before trying again".into(),
                    retry_after: Some(Duration::from_secs((unlock - now).max(1) as u64)),
                });
            }
        }
        Ok(())
    }

    /// Raises `alert` in a transaction of its own (see [`raise_alert`]).
    async fn raise(&self, alert: SecurityAlert, context: &RequestContext) -> Result<(), ApiError> {
        let mut tx = self.database.global_write().await?;
        raise_alert(&mut tx, alert, context).await?;
        tx.commit().await
    }

    /// Counts a failed login; locks the account or address when it crosses its limit.
    async fn login_failed(
        &self,
        email_key: &str,
        address: Option<IpAddr>,
        account: Option<&Account>,
        context: &RequestContext,
    ) -> Result<ApiError, ApiError> {
        let unlock = (auth::verifier::now_seconds() + LOGIN_WINDOW.as_secs() as i64).to_string();
        let failures = self.cache.increment(&format!("login-failures:account:{email_key}"), LOGIN_WINDOW).await?;
        let mut locked = false;
        if failures >= ACCOUNT_FAILURE_LIMIT {
            locked |= self
                .cache
                .set_if_absent(&format!("login-lock:account:{email_key}"), unlock.as_bytes(), LOGIN_WINDOW)
                .await?;
        }
        if let Some(address) = address {
            let failures = self.cache.increment(&format!("login-failures:address:{address}"), LOGIN_WINDOW).await?;
            if failures >= ADDRESS_FAILURE_LIMIT {
                locked |= self
                    .cache
                    .set_if_absent(&format!("login-lock:address:{address}"), unlock.as_bytes(), LOGIN_WINDOW)
                    .await?;
            }
        }
        if locked {
            tracing::warn!(
                account = account.map(|a| a.id.to_string()),
                ?address,
                "login locked after repeated failures"
            );
            let user = account.map(|a| a.id.to_string()).unwrap_or_default();
            let alert = security_alert("login.locked", "SEVERITY_HIGH", user, address, Default::default());
            self.raise(alert, context).await?;
        } else if let Some(account) = account {
            // Each failure of a known account goes into its organizations' trails (not to the
            // person: low severity).
            let counted = [("failures".to_string(), failures.to_string())].into();
            self.raise(
                security_alert("login.failed", "SEVERITY_LOW", account.id.to_string(), address, counted),
                context,
            )
            .await?;
        }
        Ok(invalid_credentials())
    }

    /// Refuses while the account's second factor is locked after too many wrong codes.
    async fn check_mfa_lock(&self, user: UserId) -> Result<(), ApiError> {
        let now = auth::verifier::now_seconds();
        let Some(value) = self.cache.get(&format!("mfa-lock:account:{user}")).await? else { return Ok(()) };
        let unlock: i64 = std::str::from_utf8(&value).ok().and_then(|v| v.parse().ok()).unwrap_or(now + 60);
        Err(ApiError::ResourceExhausted {
            reason: "TOO_MANY_MFA_FAILURES",
            message: "too many wrong two-factor codes for this account; wait before trying again".into(),
            retry_after: Some(Duration::from_secs((unlock - now).max(1) as u64)),
        })
    }

    /// Counts a wrong second-factor code against the account (whatever the challenge); at
    /// the limit, locks the second factor for a window, ends the challenge and raises an alert.
    async fn mfa_failed(
        &self,
        account: &Account,
        challenge_key: &str,
        address: Option<IpAddr>,
        context: &RequestContext,
    ) -> Result<ApiError, ApiError> {
        let failures = self.cache.increment(&format!("mfa-failures:account:{}", account.id), LOGIN_WINDOW).await?;
        if failures < MFA_ACCOUNT_FAILURE_LIMIT {
            let counted = [("failures".to_string(), failures.to_string())].into();
            self.raise(security_alert("mfa.failed", "SEVERITY_LOW", account.id.to_string(), address, counted), context)
                .await?;
            return Ok(unauthenticated("MFA_CODE_INVALID", "the code is wrong or was already used"));
        }
        let unlock = (auth::verifier::now_seconds() + LOGIN_WINDOW.as_secs() as i64).to_string();
        let locked = self
            .cache
            .set_if_absent(&format!("mfa-lock:account:{}", account.id), unlock.as_bytes(), LOGIN_WINDOW)
            .await?;
        self.cache.delete(challenge_key).await?;
        if locked {
            tracing::warn!(target: "security", user_id = %account.id, ?address, failures, "second factor locked after repeated wrong codes");
            let counted = [("failures".to_string(), failures.to_string())].into();
            self.raise(
                security_alert("mfa.locked", "SEVERITY_HIGH", account.id.to_string(), address, counted),
                context,
            )
            .await?;
        }
        self.check_mfa_lock(account.id).await?;
        Ok(unauthenticated("MFA_CODE_INVALID", "the code is wrong or was already used"))
    }

    /// Cuts off access tokens issued with revoked refresh tokens.
    pub(crate) async fn revoke_access(&self, issued: &[IssuedAccess]) -> Result<(), ApiError> {
        for access in issued {
            self.revocations.revoke(&access.token_id, access.expires_at).await?;
        }
        Ok(())
    }

    pub(crate) fn account_message(account: &Account, memberships: &[Membership]) -> AccountMessage {
        AccountMessage {
            id: account.id.to_string(),
            email: account.email.clone(),
            email_verified: account.email_verified,
            mfa_enabled: account.mfa_enabled,
            state: account.state.to_proto() as i32,
            organization_ids: memberships.iter().map(|m| m.organization_id.clone()).collect(),
            create_time: Some(time::to_timestamp(account.created_at)),
            update_time: Some(time::to_timestamp(account.updated_at)),
            last_login_time: time::to_optional_timestamp(account.last_login_at),
        }
    }

    /// The organization a new token is scoped to: the one asked for (the person must be an
    /// active member), else the session's or last used one if still a member, else the
    /// most recent membership, else none.
    fn choose<'m>(
        memberships: &'m [Membership],
        requested: Option<OrganizationId>,
        fallback: Option<&str>,
    ) -> Result<Option<&'m Membership>, ApiError> {
        if let Some(requested) = requested {
            let requested = requested.to_string();
            return memberships.iter().find(|m| m.organization_id == requested).map(Some).ok_or(
                ApiError::PermissionDenied {
                    reason: "NOT_A_MEMBER",
                    message: format!("you are not a member of organization {requested}"),
                },
            );
        }
        let open = |m: &&Membership| !m.suspended;
        Ok(fallback
            .and_then(|id| memberships.iter().filter(open).find(|m| m.organization_id == id))
            .or(memberships.iter().find(open)))
    }

    /// Signs an access token and stores a new refresh token (in `family`, or a new one).
    pub(crate) async fn issue(
        &self,
        tx: &mut GlobalTx,
        account: &mut Account,
        membership: Option<&Membership>,
        session: Option<&store::RefreshToken>,
        now: i64,
    ) -> Result<TokenPair, ApiError> {
        let (family, session_started_at) = match session {
            Some(previous) => (previous.family_id.clone(), previous.session_started_at),
            None => (uuid::Uuid::now_v7().to_string(), now),
        };
        // Staff act in no organization, with shorter tokens and sessions.
        let staff = account.staff;
        let membership = membership.filter(|_| !staff);
        let (access_seconds, session_seconds) = if staff {
            (jwt::STAFF_ACCESS_TOKEN_SECONDS, STAFF_SESSION_SECONDS)
        } else {
            (jwt::ACCESS_TOKEN_SECONDS, SESSION_SECONDS)
        };
        // A refresh token never outlives its session.
        let refresh_expires_at =
            (now + REFRESH_TOKEN_SECONDS * MICROS).min(session_started_at + session_seconds * MICROS);
        let issued_at = seconds(now);
        let mut permissions: Vec<String> = membership.map(|m| m.permissions.clone()).unwrap_or_default();
        for personal in PERSONAL_PERMISSIONS.iter().filter(|_| !staff) {
            if !permissions.iter().any(|p| p == personal) {
                permissions.push(personal.to_string());
            }
        }
        let roles =
            if staff { vec![STAFF_ROLE.to_string()] } else { membership.map(|m| m.roles.clone()).unwrap_or_default() };
        let claims = Claims {
            user_id: account.id.to_string(),
            organization_id: membership.map(|m| m.organization_id.clone()),
            email: account.email.clone(),
            roles,
            permissions,
            exp: issued_at + access_seconds,
            iat: issued_at,
            iss: jwt::ISSUER.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: None,
            staff,
        };
        let access_token = {
            let keys = self.keys.current();
            let signing = keys.signing_key(issued_at);
            jwt::sign(&claims, &signing.id, &signing.pair)
        };
        let refresh_token = random_token();
        store::insert_refresh_token(
            tx,
            &store::RefreshToken {
                id: uuid::Uuid::now_v7().to_string(),
                family_id: family,
                user_id: account.id,
                organization_id: claims.organization_id.clone(),
                token_hash: sha256_hex(refresh_token.as_bytes()),
                access_token_id: claims.jti.clone(),
                access_expires_at: claims.exp,
                expires_at: refresh_expires_at,
                created_at: now,
                rotated_at: None,
                revoked_at: None,
                session_started_at,
            },
        )
        .await?;
        account.last_login_at = Some(now);
        account.last_organization_id = claims.organization_id.clone().or(account.last_organization_id.take());
        account.updated_at = now;
        store::update_account(tx, account).await?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer".into(),
            expires_in: access_seconds as i32,
            refresh_expires_in: ((refresh_expires_at - now) / MICROS) as i32,
            organization_id: claims.organization_id.unwrap_or_default(),
        })
    }

    /// Checks a TOTP code (once per time step) or a recovery code (once ever).
    async fn second_factor_ok(
        &self,
        tx: &mut GlobalTx,
        account: &mut Account,
        code: &str,
        now: i64,
    ) -> Result<bool, ApiError> {
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            let sealed = account.mfa_secret.as_deref().ok_or_else(|| ApiError::internal("MFA on without a secret"))?;
            let secret = self
                .secrets
                .open(sealed, &format!("mfa:{}", account.id))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok(match totp::matching_step(&secret, &digits, seconds(now), account.mfa_last_used_step) {
                Some(step) => {
                    account.mfa_last_used_step = Some(step);
                    true
                }
                None => false,
            });
        }
        let normalized = normalized_recovery_code(code);
        let mut candidates = self.secrets.keyed_hashes(normalized.as_bytes(), &recovery_context(account.id));
        // Codes issued before keyed hashes were stored as plain SHA-256.
        candidates.push(sha256_hex(normalized.as_bytes()));
        store::use_recovery_code(tx, account.id, &candidates, now).await
    }

    async fn register(
        &self,
        request: RegisterRequest,
        address: Option<IpAddr>,
        context: &RequestContext,
    ) -> Result<RegisterResponse, ApiError> {
        self.throttle_address(address, "register").await?;
        let mut violations = FieldViolations::default();
        let email = validate::email("email", &request.email, &mut violations);
        password::check("password", &request.password, &email, &mut violations);
        violations.text("full_name", &request.full_name, 200);
        violations.check()?;

        let now = time::now_micros();
        let account = Account {
            id: UserId::generate(),
            email,
            full_name: request.full_name.trim().to_string(),
            password_hash: password::hash(request.password).await?,
            state: State::PendingVerification,
            email_verified: false,
            mfa_enabled: false,
            mfa_secret: None,
            mfa_pending_secret: None,
            mfa_pending_expires_at: None,
            mfa_last_used_step: None,
            last_organization_id: None,
            last_login_at: None,
            password_changed_at: now,
            created_at: now,
            updated_at: now,
            staff: false,
        };
        let mut tx = self.database.global_write().await?;
        if !store::insert_account(&mut tx, &account).await? {
            tx.commit().await?;
            // The same answer as for a new account, so registration cannot tell who has one;
            // the owner hears of it in their mailbox.
            self.send_later(Mail {
                html: None,
                attachments: Vec::new(),
                to: account.email.clone(),
                subject: "Someone tried to register with your email".into(),
                body: format!(
                    "Hello,\n\nsomeone tried to create a ComplianceIQ account with this address, which already has \
                     one. If it was you, sign in, or reset your password here:\n\n{}/forgot-password\n\nIf not, \
                     you need do nothing.\n",
                    self.public_url.trim_end_matches('/')
                ),
            });
            tracing::info!("registration for an existing email; the owner was told by mail");
            return Ok(RegisterResponse {
                account: Some(Self::account_message(&account, &[])),
                email_verification_required: true,
            });
        }
        let token = Self::new_email_token(&mut tx, &account, EmailPurpose::VerifyEmail, VERIFY_EMAIL_SECONDS).await?;
        let registered = UserRegistered {
            user_id: account.id.to_string(),
            email: account.email.clone(),
            full_name: account.full_name.clone(),
        };
        tx.emit(None, Payload::UserRegistered(registered), context).await?;
        tx.commit().await?;
        self.send_later(self.verification_mail(&account, &token));
        tracing::info!(user_id = %account.id, "account registered");
        Ok(RegisterResponse { account: Some(Self::account_message(&account, &[])), email_verification_required: true })
    }

    async fn login(&self, request: LoginRequest, origin: &SignInOrigin) -> Result<LoginResponse, ApiError> {
        let (address, context) = (origin.address, &origin.context);
        let mut violations = FieldViolations::default();
        let email = validate::email("email", &request.email, &mut violations);
        if request.password.is_empty() {
            violations.required("password");
        } else if request.password.chars().count() > password::MAX_LENGTH {
            violations.add(
                "password",
                "TOO_LONG",
                format!("password must have at most {} characters", password::MAX_LENGTH),
            );
        }
        let requested =
            violations.optional_uuid("organization_id", &request.organization_id).map(OrganizationId::from_uuid);
        violations.check()?;

        let email_key = sha256_hex(email.as_bytes());
        self.check_login_locks(&email_key, address).await?;
        let mut tx = self.database.global_read().await?;
        let found = store::account_by_email(&mut tx, &email).await?;
        tx.commit().await?;
        let stored_hash = found.as_ref().map(|a| a.password_hash.clone()).unwrap_or_else(|| self.decoy_hash.clone());
        let password_ok = password::verify(request.password, stored_hash).await?;
        let mut account = match found {
            Some(account) if password_ok => account,
            found => return Err(self.login_failed(&email_key, address, found.as_ref(), context).await?),
        };
        match account.state {
            State::Active => {}
            State::Disabled => {
                return Err(ApiError::PermissionDenied {
                    reason: "ACCOUNT_DISABLED",
                    message: "this account is disabled".into(),
                });
            }
            State::Locked => {
                return Err(ApiError::FailedPrecondition {
                    reason: "ACCOUNT_LOCKED",
                    message: "this account is locked; reset the password to unlock it".into(),
                });
            }
            State::PendingVerification => {
                self.resend_verification(&account).await?;
                return Err(ApiError::FailedPrecondition {
                    reason: "EMAIL_NOT_VERIFIED",
                    message: "verify your email address first; a new verification link was sent".into(),
                });
            }
        }
        self.cache.delete(&format!("login-failures:account:{email_key}")).await?;
        if account.staff && !account.mfa_enabled {
            // `staff add` enrols the second factor; an account without one is not signed in.
            return Err(ApiError::FailedPrecondition {
                reason: "MFA_REQUIRED",
                message:
                    "staff accounts sign in with a second factor; ask an operator to run `complianceiq staff add` again"
                        .into(),
            });
        }

        let mut tx = self.database.global_write().await?;
        let memberships = store::active_memberships(&mut tx, account.id).await?;
        if let Some(first) = memberships.first().filter(|_| memberships.iter().all(|m| m.requires_sso)) {
            // Every organization of theirs takes sign-ins through its provider only.
            return Err(sso_required(&first.organization_id));
        }
        let mut membership = Self::choose(&memberships, requested, account.last_organization_id.as_deref())?;
        if requested.is_some() {
            check_organization_policy(&account, membership, None)?;
        } else if check_organization_policy(&account, membership, None).is_err() {
            // Not asked for: sign in to an organization the person may enter as they are, or
            // to none, so they can still enroll a second factor.
            membership = memberships.iter().find(|m| check_organization_policy(&account, Some(m), None).is_ok());
        }
        if account.mfa_enabled {
            self.check_mfa_lock(account.id).await?;
            tx.commit().await?;
            let challenge = random_token();
            let scope = membership.map(|m| m.organization_id.as_str()).unwrap_or("-");
            let key = format!("mfa-challenge:{}", sha256_hex(challenge.as_bytes()));
            self.cache.set(&key, format!("{}|{scope}", account.id).as_bytes(), MFA_CHALLENGE).await?;
            let expires = time::now_micros() + MFA_CHALLENGE.as_micros() as i64;
            let challenge = MfaChallenge { challenge_token: challenge, expire_time: Some(time::to_timestamp(expires)) };
            return Ok(LoginResponse { result: Some(login_response::Result::MfaChallenge(challenge)) });
        }
        let now = time::now_micros();
        let tokens = self.issue(&mut tx, &mut account, membership, None, now).await?;
        if let Some(membership) = membership.filter(|_| !account.staff) {
            record_sign_in(&mut tx, &account, membership, "password", origin, now).await?;
        }
        tx.commit().await?;
        tracing::info!(user_id = %account.id, organization_id = %tokens.organization_id, "login");
        Ok(LoginResponse { result: Some(login_response::Result::Tokens(tokens)) })
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<Account>, ApiError> {
        let mut tx = self.database.global_read().await?;
        let found = store::account_by_email(&mut tx, email).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// A new verification link, at most one per five minutes per account.
    async fn resend_verification(&self, account: &Account) -> Result<(), ApiError> {
        if !self
            .cache
            .set_if_absent(&format!("verification-resent:{}", account.id), b"1", Duration::from_secs(300))
            .await?
        {
            return Ok(());
        }
        let mut tx = self.database.global_write().await?;
        let token = Self::new_email_token(&mut tx, account, EmailPurpose::VerifyEmail, VERIFY_EMAIL_SECONDS).await?;
        tx.commit().await?;
        self.send_later(self.verification_mail(account, &token));
        Ok(())
    }

    async fn refresh(
        &self,
        request: RefreshRequest,
        address: Option<IpAddr>,
        context: &RequestContext,
    ) -> Result<TokenPair, ApiError> {
        let mut violations = FieldViolations::default();
        if request.refresh_token.is_empty() {
            violations.required("refresh_token");
        } else if request.refresh_token.len() > 256 {
            violations.add("refresh_token", "TOO_LONG", "refresh_token is not a refresh token");
        }
        let requested =
            violations.optional_uuid("organization_id", &request.organization_id).map(OrganizationId::from_uuid);
        violations.check()?;

        let now = time::now_micros();
        let token_hash = sha256_hex(request.refresh_token.as_bytes());
        // A session that began with single sign-on asks its provider first (outside the
        // transaction: the provider may take seconds).
        let mut tx = self.database.global_read().await?;
        let live = store::refresh_token_by_hash(&mut tx, &token_hash)
            .await?
            .filter(|token| token.revoked_at.is_none() && token.rotated_at.is_none() && token.expires_at > now);
        tx.commit().await?;
        let sso = match live {
            Some(token) => self.check_sso_session(&token.family_id, now).await?,
            None => None,
        };
        let mut tx = self.database.global_write().await?;
        let stored = store::refresh_token_by_hash(&mut tx, &token_hash)
            .await?
            .ok_or_else(|| unauthenticated("REFRESH_TOKEN_INVALID", "the refresh token is not valid; log in again"))?;
        if stored.revoked_at.is_some() {
            return Err(unauthenticated("REFRESH_TOKEN_REVOKED", "the refresh token was revoked; log in again"));
        }
        if stored.rotated_at.is_some() || !store::mark_rotated(&mut tx, &stored.id, now).await? {
            // A token that was already exchanged is presented again: either it was stolen or
            // its holder raced. Either way the whole session ends.
            let issued = store::revoke(&mut tx, store::Sessions::Family(&stored.family_id), "reuse", now).await?;
            let session = [("session".to_string(), stored.family_id.clone())].into();
            let alert =
                security_alert("refresh_token.reused", "SEVERITY_HIGH", stored.user_id.to_string(), address, session);
            // In the revocation's transaction: both or neither.
            raise_alert(&mut tx, alert, context).await?;
            tx.commit().await?;
            self.revoke_access(&issued).await?;
            tracing::warn!(user_id = %stored.user_id, session = %stored.family_id, "refresh token reused; session revoked");
            return Err(unauthenticated(
                "REFRESH_TOKEN_REUSED",
                "this refresh token was already used; the session was ended for safety, log in again",
            ));
        }
        if stored.expires_at <= now {
            return Err(unauthenticated("REFRESH_TOKEN_EXPIRED", "the refresh token expired; log in again"));
        }
        if stored.session_started_at + SESSION_SECONDS * MICROS <= now {
            return Err(unauthenticated("SESSION_EXPIRED", "sessions last 30 days from login; log in again"));
        }
        let mut account = store::account_by_id(&mut tx, stored.user_id)
            .await?
            .filter(|account| account.state == State::Active)
            .ok_or_else(|| unauthenticated("ACCOUNT_INACTIVE", "the account is not active"))?;
        let memberships = store::active_memberships(&mut tx, account.id).await?;
        let membership = match requested {
            Some(_) => Self::choose(&memberships, requested, None)?,
            // Stay in the session's organization while a member; otherwise the token is unscoped.
            None => {
                stored.organization_id.as_deref().and_then(|id| memberships.iter().find(|m| m.organization_id == id))
            }
        };
        // A policy that changed since sign-in applies from the next refresh on.
        check_organization_policy(
            &account,
            membership,
            sso.as_ref().map(|(session, _)| session.organization_id.as_str()),
        )?;
        if let Some((session, Some(grant))) = &sso {
            crate::sso::store::update_grant(&mut tx, &session.family_id, grant, now).await?;
        }
        let tokens = self.issue(&mut tx, &mut account, membership, Some(&stored), now).await?;
        tx.commit().await?;
        Ok(tokens)
    }

    async fn logout(&self, request: Request<LogoutRequest>) -> Result<LogoutResponse, ApiError> {
        let identity = caller(&request)?;
        let request = request.into_inner();
        let now = time::now_micros();
        let mut tx = self.database.global_write().await?;
        let issued = if request.all_sessions {
            store::revoke(&mut tx, store::Sessions::User(identity.user_id), "logout", now).await?
        } else if !request.refresh_token.is_empty() {
            let stored = store::refresh_token_by_hash(&mut tx, &sha256_hex(request.refresh_token.as_bytes()))
                .await?
                .filter(|token| token.user_id == identity.user_id)
                .ok_or_else(|| {
                    ApiError::invalid_field("refresh_token", "INVALID", "refresh_token is not one of your sessions")
                })?;
            store::revoke(&mut tx, store::Sessions::Family(&stored.family_id), "logout", now).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        self.revoke_access(&issued).await?;
        self.revocations.revoke(&identity.token_id, identity.expires_at).await?;
        let sessions: std::collections::BTreeSet<&str> =
            issued.iter().map(|access| access.family_id.as_str()).collect();
        Ok(LogoutResponse { revoked_sessions: sessions.len() as i32 })
    }

    async fn forgot_password(&self, request: ForgotPasswordRequest, address: Option<IpAddr>) -> Result<(), ApiError> {
        self.throttle_address(address, "forgot-password").await?;
        let mut violations = FieldViolations::default();
        let email = validate::email("email", &request.email, &mut violations);
        violations.check()?;
        let Some(account) = self.find_by_email(&email).await?.filter(|account| account.state != State::Disabled) else {
            return Ok(());
        };
        if account.staff {
            // Staff credentials come from an operator only; the answer stays the same.
            self.send_later(Mail {
                html: None,
                attachments: Vec::new(),
                to: account.email.clone(),
                subject: "Your ComplianceIQ staff password".into(),
                body: "Hello,

someone asked to reset the password of this staff account. Staff passwords are                        not reset by mail: ask an operator to run `complianceiq staff add` for you again.
"
                    .into(),
            });
            tracing::warn!(target: "security", user_id = %account.id, "password reset asked for a staff account");
            return Ok(());
        }
        let mut tx = self.database.global_write().await?;
        let token =
            Self::new_email_token(&mut tx, &account, EmailPurpose::ResetPassword, RESET_PASSWORD_SECONDS).await?;
        tx.commit().await?;
        self.send_later(Mail {
            html: None,
            attachments: Vec::new(),
            to: account.email.clone(),
            subject: "Reset your ComplianceIQ password".into(),
            body: format!(
                "Hello {},\n\nset a new password here:\n\n{}\n\nThe link works once and expires in one hour. \
                 If you did not ask for it, ignore this message; your password stays as it is.\n\nToken: {token}\n",
                account.full_name,
                self.link("reset-password", &token)
            ),
        });
        Ok(())
    }

    async fn reset_password(&self, request: ResetPasswordRequest, address: Option<IpAddr>) -> Result<(), ApiError> {
        self.throttle_address(address, "reset-password").await?;
        let mut violations = FieldViolations::default();
        if request.token.is_empty() {
            violations.required("token");
        }
        password::check("new_password", &request.new_password, "", &mut violations);
        violations.check()?;
        let new_hash = password::hash(request.new_password.clone()).await?;

        let now = time::now_micros();
        let mut tx = self.database.global_write().await?;
        let user = store::consume_email_token(
            &mut tx,
            &sha256_hex(request.token.as_bytes()),
            EmailPurpose::ResetPassword,
            now,
        )
        .await?
        .ok_or_else(|| {
            ApiError::invalid_field(
                "token",
                "INVALID_OR_EXPIRED",
                "token is invalid, used or expired; ask for a new link",
            )
        })?;
        let mut account = store::account_by_id(&mut tx, user)
            .await?
            .ok_or_else(|| ApiError::internal("reset token of a missing account"))?;
        let mut violations = FieldViolations::default();
        password::check("new_password", &request.new_password, &account.email, &mut violations);
        // Rolling back keeps the token usable with a better password.
        violations.check()?;
        account.password_hash = new_hash;
        account.password_changed_at = now;
        // The link reached the mailbox, which proves the address.
        account.email_verified = true;
        if matches!(account.state, State::PendingVerification | State::Locked) {
            account.state = State::Active;
        }
        account.updated_at = now;
        store::update_account(&mut tx, &account).await?;
        store::retire_email_tokens(&mut tx, account.id, EmailPurpose::ResetPassword, now).await?;
        let issued = store::revoke(&mut tx, store::Sessions::User(account.id), "password_reset", now).await?;
        tx.commit().await?;
        self.revoke_access(&issued).await?;
        self.cache.delete(&format!("login-lock:account:{}", sha256_hex(account.email.as_bytes()))).await?;
        tracing::info!(user_id = %account.id, "password reset");
        Ok(())
    }

    async fn verify_email(
        &self,
        request: VerifyEmailRequest,
        address: Option<IpAddr>,
        context: &RequestContext,
    ) -> Result<AccountMessage, ApiError> {
        self.throttle_address(address, "verify-email").await?;
        if request.token.is_empty() {
            return Err(ApiError::invalid_field("token", "REQUIRED", "token is required"));
        }
        let now = time::now_micros();
        let mut tx = self.database.global_write().await?;
        let user =
            store::consume_email_token(&mut tx, &sha256_hex(request.token.as_bytes()), EmailPurpose::VerifyEmail, now)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "token",
                        "INVALID_OR_EXPIRED",
                        "token is invalid, used or expired; log in to get a new link",
                    )
                })?;
        let mut account = store::account_by_id(&mut tx, user)
            .await?
            .ok_or_else(|| ApiError::internal("verification of a missing account"))?;
        account.email_verified = true;
        if account.state == State::PendingVerification {
            account.state = State::Active;
        }
        account.updated_at = now;
        store::update_account(&mut tx, &account).await?;
        tx.emit(None, Payload::UserEmailVerified(UserEmailVerified { user_id: user.to_string() }), context).await?;
        let memberships = store::active_memberships(&mut tx, user).await?;
        tx.commit().await?;
        Ok(Self::account_message(&account, &memberships))
    }

    async fn enable_mfa(&self, request: Request<EnableMfaRequest>) -> Result<EnableMfaResponse, ApiError> {
        let identity = caller(&request)?;
        let request = request.into_inner();
        if request.password.is_empty() {
            return Err(ApiError::invalid_field("password", "REQUIRED", "password is required to change MFA"));
        }
        let mut tx = self.database.global_write().await?;
        let mut account = store::account_by_id(&mut tx, identity.user_id)
            .await?
            .ok_or_else(|| unauthenticated("ACCOUNT_INACTIVE", "no such account"))?;
        if !password::verify(request.password, account.password_hash.clone()).await? {
            return Err(ApiError::invalid_field("password", "INCORRECT", "password is not correct"));
        }
        if account.mfa_enabled {
            return Err(ApiError::FailedPrecondition {
                reason: "MFA_ALREADY_ENABLED",
                message: "MFA is already on for this account".into(),
            });
        }
        let secret = random_bytes(totp::SECRET_BYTES);
        let now = time::now_micros();
        account.mfa_pending_secret = Some(self.secrets.seal(&secret, &format!("mfa:{}", account.id)));
        account.mfa_pending_expires_at = Some(now + MFA_ENROLLMENT_SECONDS * MICROS);
        account.updated_at = now;
        store::update_account(&mut tx, &account).await?;
        tx.commit().await?;
        Ok(EnableMfaResponse {
            provisioning_uri: totp::provisioning_uri(&secret, &account.email),
            secret: totp::base32(&secret),
            expire_time: time::to_optional_timestamp(account.mfa_pending_expires_at),
        })
    }

    async fn verify_mfa(&self, request: Request<VerifyMfaRequest>) -> Result<VerifyMfaResponse, ApiError> {
        let identity = request.extensions().get::<auth::Identity>().cloned();
        let origin = sign_in_origin(&request, "/complianceiq.auth.v1.AuthService/VerifyMfa");
        let (context, address) = (&origin.context, origin.address);
        let request = request.into_inner();
        if request.code.trim().is_empty() {
            return Err(ApiError::invalid_field("code", "REQUIRED", "code is required"));
        }
        if request.code.len() > 64 {
            return Err(ApiError::invalid_field("code", "INVALID_FORMAT", "code is a 6-digit code or a recovery code"));
        }
        let now = time::now_micros();
        if request.challenge_token.is_empty() {
            let identity = identity.ok_or_else(|| {
                unauthenticated(
                    "TOKEN_MISSING",
                    "confirming an MFA enrollment needs an access token; completing a login needs challenge_token",
                )
            })?;
            return self.confirm_enrollment(identity.user_id, &request.code, now).await;
        }
        let challenge_key = sha256_hex(request.challenge_token.as_bytes());
        let key = format!("mfa-challenge:{challenge_key}");
        let value = self.cache.get(&key).await?.ok_or_else(|| {
            unauthenticated("MFA_CHALLENGE_INVALID", "the MFA challenge is invalid or expired; log in again")
        })?;
        let attempts = self.cache.increment(&format!("mfa-attempts:{challenge_key}"), MFA_CHALLENGE).await?;
        if attempts > MFA_CHALLENGE_ATTEMPTS {
            self.cache.delete(&key).await?;
            return Err(ApiError::ResourceExhausted {
                reason: "TOO_MANY_MFA_ATTEMPTS",
                message: "too many wrong codes; log in again".into(),
                retry_after: None,
            });
        }
        let value = String::from_utf8(value).map_err(|_| ApiError::internal("MFA challenge value"))?;
        let (user, scope) = value.split_once('|').ok_or_else(|| ApiError::internal("MFA challenge value"))?;
        let user = UserId::from_stored(user)?;
        self.check_mfa_lock(user).await?;
        let mut tx = self.database.global_write().await?;
        let mut account = store::account_by_id(&mut tx, user)
            .await?
            .filter(|account| account.state == State::Active && account.mfa_enabled)
            .ok_or_else(|| unauthenticated("ACCOUNT_INACTIVE", "the account is not active"))?;
        if !self.second_factor_ok(&mut tx, &mut account, &request.code, now).await? {
            drop(tx);
            return Err(self.mfa_failed(&account, &key, address, context).await?);
        }
        let memberships = store::active_memberships(&mut tx, user).await?;
        let membership = memberships.iter().find(|m| m.organization_id == scope);
        check_organization_policy(&account, membership, None)?;
        let tokens = self.issue(&mut tx, &mut account, membership, None, now).await?;
        if let Some(membership) = membership.filter(|_| !account.staff) {
            record_sign_in(&mut tx, &account, membership, "password+mfa", &origin, now).await?;
        }
        tx.commit().await?;
        self.cache.delete(&key).await?;
        self.cache.delete(&format!("mfa-failures:account:{user}")).await?;
        Ok(VerifyMfaResponse { mfa_enabled: true, tokens: Some(tokens), recovery_codes: Vec::new() })
    }

    async fn confirm_enrollment(&self, user: UserId, code: &str, now: i64) -> Result<VerifyMfaResponse, ApiError> {
        let mut tx = self.database.global_write().await?;
        let mut account = store::account_by_id(&mut tx, user)
            .await?
            .ok_or_else(|| unauthenticated("ACCOUNT_INACTIVE", "no such account"))?;
        let pending = account
            .mfa_pending_secret
            .clone()
            .filter(|_| account.mfa_pending_expires_at.is_some_and(|expires| expires > now))
            .ok_or_else(|| ApiError::FailedPrecondition {
                reason: "MFA_ENROLLMENT_NOT_STARTED",
                message: "start with EnableMfa; an enrollment expires after 10 minutes".into(),
            })?;
        let secret = self
            .secrets
            .open(&pending, &format!("mfa:{}", account.id))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let step = totp::matching_step(&secret, &code, seconds(now), None).ok_or_else(|| {
            ApiError::invalid_field("code", "INCORRECT", "code does not match; check the authenticator app's clock")
        })?;
        let (codes, hashes) = new_recovery_codes(&self.secrets, account.id);
        account.mfa_secret = Some(pending);
        account.mfa_enabled = true;
        account.mfa_pending_secret = None;
        account.mfa_pending_expires_at = None;
        account.mfa_last_used_step = Some(step);
        account.updated_at = now;
        store::update_account(&mut tx, &account).await?;
        store::replace_recovery_codes(&mut tx, account.id, &hashes).await?;
        tx.commit().await?;
        tracing::info!(user_id = %account.id, "MFA enabled");
        Ok(VerifyMfaResponse { mfa_enabled: true, tokens: None, recovery_codes: codes })
    }

    fn address<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        client_address(request)
    }
}

/// Where a sign-in came from: request id, client address and user agent as the gateway vouches
/// for them, and the RPC.
pub(crate) struct SignInOrigin {
    pub context: RequestContext,
    pub address: Option<IpAddr>,
    pub user_agent: String,
    pub rpc: &'static str,
}

/// A sign-in into an organization (a new session scoped to it) as an entry of that
/// organization's audit trail, written with the session: who, from where, how (`method`:
/// password, password+mfa, oidc, saml) and with which roles.
pub(crate) async fn record_sign_in(
    tx: &mut GlobalTx,
    account: &Account,
    membership: &Membership,
    method: &str,
    origin: &SignInOrigin,
    now: i64,
) -> Result<(), ApiError> {
    let organization = OrganizationId::from_stored(&membership.organization_id)?;
    let entry = AuditLog {
        actor: Some(Actor {
            user_id: account.id.to_string(),
            email: account.email.clone(),
            service: String::new(),
            ip_address: origin.address.map(|address| address.to_string()).unwrap_or_default(),
            user_agent: origin.user_agent.clone(),
        }),
        action: "session.sign_in".into(),
        resource_type: "session".into(),
        resource_id: account.id.to_string(),
        outcome: Outcome::Success as i32,
        request_id: origin.context.request_id.clone(),
        event_time: Some(time::to_timestamp(now)),
        rpc: origin.rpc.into(),
        metadata: [("method".to_string(), method.to_string()), ("roles".to_string(), membership.roles.join(", "))]
            .into(),
        ..Default::default()
    };
    tx.emit(Some(organization), Payload::AuditRecorded(AuditRecorded { entry: Some(entry) }), &origin.context).await?;
    Ok(())
}

/// Where a request came from, for [`record_sign_in`].
fn sign_in_origin<T>(request: &Request<T>, rpc: &'static str) -> SignInOrigin {
    let user_agent = request
        .metadata()
        .get(complianceiq_kit::audit::CLIENT_USER_AGENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(256).collect())
        .unwrap_or_default();
    SignInOrigin { context: RequestContext::of(request), address: client_address(request), user_agent, rpc }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn get_sso_config(&self, request: Request<GetSsoConfigRequest>) -> Result<Response<SsoConfig>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.get_sso_config(&identity, &request.get_ref().org_id).await?))
    }

    async fn update_sso_config(&self, request: Request<UpdateSsoConfigRequest>) -> Result<Response<SsoConfig>, Status> {
        let identity = caller(&request)?;
        let authorization = request.metadata().get("authorization").cloned();
        Ok(Response::new(AuthApi::update_sso_config(self, &identity, authorization, request.into_inner()).await?))
    }

    async fn delete_sso_config(&self, request: Request<DeleteSsoConfigRequest>) -> Result<Response<()>, Status> {
        let identity = caller(&request)?;
        AuthApi::delete_sso_config(self, &identity, &request.get_ref().org_id).await?;
        Ok(Response::new(()))
    }

    async fn add_sso_domain(&self, request: Request<AddSsoDomainRequest>) -> Result<Response<SsoDomain>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(AuthApi::add_sso_domain(self, &identity, request.into_inner()).await?))
    }

    async fn verify_sso_domain(&self, request: Request<VerifySsoDomainRequest>) -> Result<Response<SsoDomain>, Status> {
        let identity = caller(&request)?;
        let request = request.get_ref();
        Ok(Response::new(AuthApi::verify_sso_domain(self, &identity, &request.org_id, &request.domain).await?))
    }

    async fn remove_sso_domain(&self, request: Request<RemoveSsoDomainRequest>) -> Result<Response<()>, Status> {
        let identity = caller(&request)?;
        let request = request.get_ref();
        AuthApi::remove_sso_domain(self, &identity, &request.org_id, &request.domain).await?;
        Ok(Response::new(()))
    }

    async fn start_sso(&self, request: Request<StartSsoRequest>) -> Result<Response<HttpBody>, Status> {
        self.throttle_address(self.address(&request), "sso").await?;
        Ok(AuthApi::start_sso(self, request.into_inner()).await?)
    }

    async fn finish_oidc_sso(&self, request: Request<FinishOidcSsoRequest>) -> Result<Response<HttpBody>, Status> {
        let origin = sign_in_origin(&request, "/complianceiq.auth.v1.AuthService/FinishOidcSso");
        self.throttle_address(origin.address, "sso").await?;
        let (metadata, _, request) = request.into_parts();
        Ok(AuthApi::finish_oidc_sso(self, &metadata, request, &origin).await)
    }

    async fn finish_saml_sso(&self, request: Request<FinishSamlSsoRequest>) -> Result<Response<HttpBody>, Status> {
        let origin = sign_in_origin(&request, "/complianceiq.auth.v1.AuthService/FinishSamlSso");
        self.throttle_address(origin.address, "sso").await?;
        let (metadata, _, request) = request.into_parts();
        Ok(AuthApi::finish_saml_sso(self, &metadata, request, &origin).await)
    }

    async fn get_saml_metadata(&self, request: Request<GetSamlMetadataRequest>) -> Result<Response<HttpBody>, Status> {
        Ok(Response::new(self.saml_metadata(&request.get_ref().organization_id)?))
    }

    async fn exchange_sso_ticket(
        &self,
        request: Request<ExchangeSsoTicketRequest>,
    ) -> Result<Response<TokenPair>, Status> {
        self.throttle_address(self.address(&request), "sso").await?;
        Ok(Response::new(AuthApi::exchange_sso_ticket(self, request.into_inner()).await?))
    }

    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<RegisterResponse>, Status> {
        let (context, address) = (RequestContext::of(&request), self.address(&request));
        Ok(Response::new(AuthApi::register(self, request.into_inner(), address, &context).await?))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        let origin = sign_in_origin(&request, "/complianceiq.auth.v1.AuthService/Login");
        Ok(Response::new(AuthApi::login(self, request.into_inner(), &origin).await?))
    }

    async fn logout(&self, request: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        Ok(Response::new(AuthApi::logout(self, request).await?))
    }

    async fn refresh(&self, request: Request<RefreshRequest>) -> Result<Response<TokenPair>, Status> {
        let (context, address) = (RequestContext::of(&request), self.address(&request));
        Ok(Response::new(AuthApi::refresh(self, request.into_inner(), address, &context).await?))
    }

    async fn forgot_password(
        &self,
        request: Request<ForgotPasswordRequest>,
    ) -> Result<Response<ForgotPasswordResponse>, Status> {
        let address = self.address(&request);
        AuthApi::forgot_password(self, request.into_inner(), address).await?;
        Ok(Response::new(ForgotPasswordResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<ResetPasswordRequest>,
    ) -> Result<Response<ResetPasswordResponse>, Status> {
        let address = self.address(&request);
        AuthApi::reset_password(self, request.into_inner(), address).await?;
        Ok(Response::new(ResetPasswordResponse {}))
    }

    async fn verify_email(&self, request: Request<VerifyEmailRequest>) -> Result<Response<AccountMessage>, Status> {
        let (context, address) = (RequestContext::of(&request), self.address(&request));
        Ok(Response::new(AuthApi::verify_email(self, request.into_inner(), address, &context).await?))
    }

    async fn enable_mfa(&self, request: Request<EnableMfaRequest>) -> Result<Response<EnableMfaResponse>, Status> {
        Ok(Response::new(AuthApi::enable_mfa(self, request).await?))
    }

    async fn list_account_organizations(
        &self,
        request: Request<ListAccountOrganizationsRequest>,
    ) -> Result<Response<ListAccountOrganizationsResponse>, Status> {
        // The caller's own memberships only: the token's subject is the key (an API key's
        // token names the key, which belongs to no organization as a member).
        let identity = caller(&request)?;
        let mut tx = self.database.global_read().await?;
        let memberships = store::named_memberships(&mut tx, identity.user_id).await?;
        tx.commit().await?;
        let organizations = memberships
            .into_iter()
            .map(|(membership, display_name)| AccountOrganization {
                organization_id: membership.organization_id,
                display_name,
                roles: membership.roles,
                require_mfa: membership.requires_mfa,
            })
            .collect();
        Ok(Response::new(ListAccountOrganizationsResponse { organizations }))
    }

    async fn verify_mfa(&self, request: Request<VerifyMfaRequest>) -> Result<Response<VerifyMfaResponse>, Status> {
        Ok(Response::new(AuthApi::verify_mfa(self, request).await?))
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        Ok(Response::new(AuthApi::create_api_key(self, request).await?))
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        Ok(Response::new(AuthApi::list_api_keys(self, request).await?))
    }

    async fn revoke_api_key(&self, request: Request<RevokeApiKeyRequest>) -> Result<Response<ApiKey>, Status> {
        Ok(Response::new(AuthApi::revoke_api_key(self, request).await?))
    }

    async fn exchange_api_key(
        &self,
        request: Request<ExchangeApiKeyRequest>,
    ) -> Result<Response<ExchangeApiKeyResponse>, Status> {
        Ok(Response::new(AuthApi::exchange_api_key(self, request).await?))
    }

    async fn reset_member_mfa(
        &self,
        request: Request<ResetMemberMfaRequest>,
    ) -> Result<Response<ResetMemberMfaResponse>, Status> {
        Ok(Response::new(AuthApi::reset_member_mfa(self, request).await?))
    }

    async fn get_jwks(&self, _request: Request<GetJwksRequest>) -> Result<Response<GetJwksResponse>, Status> {
        Ok(Response::new(GetJwksResponse { keys: self.keys.current().jwks(auth::verifier::now_seconds()) }))
    }
}
