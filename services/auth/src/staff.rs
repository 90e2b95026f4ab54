//! Platform staff (the design's Super Admin, ComplianceIQ internal): accounts that belong to
//! no organization, made only by an operator (`complianceiq staff add`, never through the
//! API), always with a second factor, signed in for short tokens carrying the `staff` claim.
//! Here: those operator commands, and the one staff action on accounts, resetting a member's
//! second factor on a support request.

use complianceiq_kit::auth::caller;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::crypto::{random_bytes, random_token};
use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::UserId;
use complianceiq_kit::mail::Mail;
use complianceiq_kit::secrets::SecretBox;
use complianceiq_kit::{time, validate};
use complianceiq_proto::complianceiq::auth::v1::{ResetMemberMfaRequest, ResetMemberMfaResponse};
use tonic::Request;

use crate::api::{AuthApi, new_recovery_codes, raise_alert, security_alert};
use crate::store::{self, Account, State};
use crate::{password, totp};

/// What an operator hands to a new staff member, once: nothing here is stored in the clear.
pub struct StaffCredentials {
    pub user_id: UserId,
    pub email: String,
    pub password: String,
    /// `otpauth://` URI for an authenticator app.
    pub provisioning_uri: String,
    pub recovery_codes: Vec<String>,
    /// The email already had a staff account: its credentials were replaced and its sessions ended.
    pub replaced: bool,
}

/// Creates a staff account for `email` with a random password and an enrolled second factor,
/// or, for an existing staff account, replaces both (a lost authenticator) and ends its
/// sessions. An email that belongs to a tenant account is refused: staff are nobody's member.
pub async fn add(
    database: &ModuleDatabase,
    secrets: &SecretBox,
    email: &str,
    full_name: &str,
) -> Result<StaffCredentials, ApiError> {
    let mut violations = FieldViolations::default();
    let email = validate::email("email", email, &mut violations);
    violations.text("full_name", full_name, 200);
    violations.check()?;
    let now = time::now_micros();
    let mut tx = database.global_write().await?;
    let existing = store::account_by_email(&mut tx, &email).await?;
    if existing.as_ref().is_some_and(|account| !account.staff) {
        return Err(ApiError::FailedPrecondition {
            reason: "NOT_A_STAFF_ACCOUNT",
            message: format!(
                "{email} has a tenant account; staff accounts belong to no organization, so use another address"
            ),
        });
    }
    let replaced = existing.is_some();
    let password = format!("{}-{}", random_token(), random_token());
    let secret = random_bytes(totp::SECRET_BYTES);
    let mut account = existing.unwrap_or_else(|| Account {
        id: UserId::generate(),
        email: email.clone(),
        full_name: String::new(),
        password_hash: String::new(),
        state: State::Active,
        email_verified: true,
        mfa_enabled: true,
        mfa_secret: None,
        mfa_pending_secret: None,
        mfa_pending_expires_at: None,
        mfa_last_used_step: None,
        last_organization_id: None,
        last_login_at: None,
        password_changed_at: now,
        created_at: now,
        updated_at: now,
        staff: true,
    });
    account.full_name = full_name.trim().to_string();
    account.password_hash = password::hash(password.clone()).await?;
    account.state = State::Active;
    account.mfa_enabled = true;
    account.mfa_secret = Some(secrets.seal(&secret, &format!("mfa:{}", account.id)));
    account.mfa_pending_secret = None;
    account.mfa_pending_expires_at = None;
    account.mfa_last_used_step = None;
    account.password_changed_at = now;
    account.updated_at = now;
    if replaced {
        store::update_account(&mut tx, &account).await?;
        // Refresh tokens end here; access tokens (10 minutes) run out on their own, as the
        // operator's process cannot reach a running platform's revocation set.
        store::revoke(&mut tx, store::Sessions::User(account.id), "staff_credentials_replaced", now).await?;
    } else if !store::insert_account(&mut tx, &account).await? {
        return Err(ApiError::internal("a staff account appeared concurrently; run the command again"));
    }
    let (recovery_codes, hashes) = new_recovery_codes(secrets, account.id);
    store::replace_recovery_codes(&mut tx, account.id, &hashes).await?;
    tx.commit().await?;
    Ok(StaffCredentials {
        user_id: account.id,
        provisioning_uri: totp::provisioning_uri(&secret, &account.email),
        email: account.email,
        password,
        recovery_codes,
        replaced,
    })
}

/// Every staff account.
pub async fn list(database: &ModuleDatabase) -> Result<Vec<(String, String, bool)>, ApiError> {
    let mut tx = database.global_read().await?;
    let accounts = store::staff_accounts(&mut tx).await?;
    tx.commit().await?;
    Ok(accounts.into_iter().map(|account| (account.email, account.full_name, account.state == State::Active)).collect())
}

/// Disables a staff account and ends its sessions; false when `email` is no staff account.
pub async fn remove(database: &ModuleDatabase, email: &str) -> Result<bool, ApiError> {
    let mut violations = FieldViolations::default();
    let email = validate::email("email", email, &mut violations);
    violations.check()?;
    let now = time::now_micros();
    let mut tx = database.global_write().await?;
    let Some(mut account) = store::account_by_email(&mut tx, &email).await?.filter(|account| account.staff) else {
        return Ok(false);
    };
    account.state = State::Disabled;
    account.updated_at = now;
    store::update_account(&mut tx, &account).await?;
    store::revoke(&mut tx, store::Sessions::User(account.id), "staff_removed", now).await?;
    tx.commit().await?;
    Ok(true)
}

impl AuthApi {
    pub(crate) async fn reset_member_mfa(
        &self,
        request: Request<ResetMemberMfaRequest>,
    ) -> Result<ResetMemberMfaResponse, ApiError> {
        let staff = caller(&request)?;
        let context = RequestContext::of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let organization = violations.uuid("organization_id", &request.organization_id);
        let user = violations.uuid("user_id", &request.user_id);
        violations.reason("reason", &request.reason);
        violations.check()?;
        let user = UserId::from_stored(&user)?;
        let now = time::now_micros();
        let mut tx = self.database.global_write().await?;
        let memberships = store::active_memberships(&mut tx, user).await?;
        // Only through the organization that asked: a person elsewhere is not found here.
        let found = store::account_by_id(&mut tx, user)
            .await?
            .filter(|account| !account.staff && memberships.iter().any(|m| m.organization_id == organization));
        let Some(mut account) = found else {
            return Err(ApiError::not_found("Member", format!("{organization}/members/{user}")));
        };
        if !account.mfa_enabled {
            return Err(ApiError::FailedPrecondition {
                reason: "MFA_NOT_ENABLED",
                message: "this member has no second factor to reset".into(),
            });
        }
        account.mfa_enabled = false;
        account.mfa_secret = None;
        account.mfa_pending_secret = None;
        account.mfa_pending_expires_at = None;
        account.mfa_last_used_step = None;
        account.updated_at = now;
        store::update_account(&mut tx, &account).await?;
        store::replace_recovery_codes(&mut tx, account.id, &[]).await?;
        let issued = store::revoke(&mut tx, store::Sessions::User(account.id), "mfa_reset_by_staff", now).await?;
        let metadata = [
            ("reason".to_string(), request.reason.trim().to_string()),
            ("staff_user_id".to_string(), staff.user_id.to_string()),
            ("requested_by_organization".to_string(), organization.clone()),
        ]
        .into();
        let alert = security_alert("mfa.reset_by_staff", "SEVERITY_HIGH", account.id.to_string(), None, metadata);
        raise_alert(&mut tx, alert, &context).await?;
        tx.commit().await?;
        self.revoke_access(&issued).await?;
        self.send_later(Mail {
            html: None,
            attachments: Vec::new(),
            to: account.email.clone(),
            subject: "Two-factor authentication was turned off on your account".into(),
            body: format!(
                "Hello,\n\nComplianceIQ support turned off two-factor authentication on your account, on a request \
                 from your organization. Reason given: {}\n\nYou were signed out everywhere. Sign in with your \
                 password and turn two-factor authentication on again.\n\nIf you did not ask for this, tell your \
                 organization's administrator at once.\n",
                request.reason.trim()
            ),
        });
        tracing::warn!(target: "security", user_id = %account.id, staff = %staff.user_id, %organization, "MFA reset by staff");
        Ok(ResetMemberMfaResponse {
            account: Some(Self::account_message(&account, &memberships)),
            sessions_revoked: issued.len() as i32,
        })
    }
}
