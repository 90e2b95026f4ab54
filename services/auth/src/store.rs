//! The auth service's SQL, one function per query. Its tables are per person, so queries
//! run in a [`GlobalTx`] and are keyed by user (or by a token hash that names one).

use complianceiq_kit::db::GlobalTx;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::UserId;
use complianceiq_proto::complianceiq::auth::v1::AccountState;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// Lifecycle of an account as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    PendingVerification,
    Active,
    Locked,
    Disabled,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            Self::PendingVerification => "pending_verification",
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Disabled => "disabled",
        }
    }

    fn parse(stored: &str) -> Result<Self, ApiError> {
        Ok(match stored {
            "pending_verification" => Self::PendingVerification,
            "active" => Self::Active,
            "locked" => Self::Locked,
            "disabled" => Self::Disabled,
            other => return Err(ApiError::internal(format!("unknown account state {other:?}"))),
        })
    }

    pub fn to_proto(self) -> AccountState {
        match self {
            Self::PendingVerification => AccountState::PendingVerification,
            Self::Active => AccountState::Active,
            Self::Locked => AccountState::Locked,
            Self::Disabled => AccountState::Disabled,
        }
    }
}

/// An account as stored.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: UserId,
    pub email: String,
    pub full_name: String,
    pub password_hash: String,
    pub state: State,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    /// Sealed TOTP secret.
    pub mfa_secret: Option<String>,
    /// Sealed secret of an enrollment not yet confirmed.
    pub mfa_pending_secret: Option<String>,
    pub mfa_pending_expires_at: Option<i64>,
    pub mfa_last_used_step: Option<i64>,
    pub last_organization_id: Option<String>,
    pub last_login_at: Option<i64>,
    pub password_changed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Platform staff: set only by `complianceiq staff add`.
    pub staff: bool,
}

macro_rules! account_columns {
    () => {
        "id, email, full_name, password_hash, state, email_verified, mfa_enabled, mfa_secret, \
         mfa_pending_secret, mfa_pending_expires_at, mfa_last_used_step, last_organization_id, \
         last_login_at, password_changed_at, created_at, updated_at, staff"
    };
}

fn account(row: &AnyRow) -> Result<Account, ApiError> {
    Ok(Account {
        id: UserId::from_stored(&row.try_get::<String, _>("id")?)?,
        email: row.try_get("email")?,
        full_name: row.try_get("full_name")?,
        password_hash: row.try_get("password_hash")?,
        state: State::parse(&row.try_get::<String, _>("state")?)?,
        email_verified: row.try_get::<i64, _>("email_verified")? != 0,
        mfa_enabled: row.try_get::<i64, _>("mfa_enabled")? != 0,
        mfa_secret: row.try_get("mfa_secret")?,
        mfa_pending_secret: row.try_get("mfa_pending_secret")?,
        mfa_pending_expires_at: row.try_get("mfa_pending_expires_at")?,
        mfa_last_used_step: row.try_get("mfa_last_used_step")?,
        last_organization_id: row.try_get("last_organization_id")?,
        last_login_at: row.try_get("last_login_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        staff: row.try_get::<i64, _>("staff")? != 0,
    })
}

/// Inserts a new account; false when the email is taken.
pub async fn insert_account(tx: &mut GlobalTx, account: &Account) -> Result<bool, ApiError> {
    let inserted = sqlx::query(concat!(
        "INSERT INTO accounts (",
        account_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (email) DO NOTHING"
    ))
    .bind(account.id.to_string())
    .bind(&account.email)
    .bind(&account.full_name)
    .bind(&account.password_hash)
    .bind(account.state.as_str())
    .bind(i64::from(account.email_verified))
    .bind(i64::from(account.mfa_enabled))
    .bind(&account.mfa_secret)
    .bind(&account.mfa_pending_secret)
    .bind(account.mfa_pending_expires_at)
    .bind(account.mfa_last_used_step)
    .bind(&account.last_organization_id)
    .bind(account.last_login_at)
    .bind(account.password_changed_at)
    .bind(account.created_at)
    .bind(account.updated_at)
    .bind(i64::from(account.staff))
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The account with this (normalized) email.
pub async fn account_by_email(tx: &mut GlobalTx, email: &str) -> Result<Option<Account>, ApiError> {
    let row = sqlx::query(concat!("SELECT ", account_columns!(), " FROM accounts WHERE email = $1"))
        .bind(email)
        .fetch_optional(tx.connection())
        .await?;
    row.as_ref().map(account).transpose()
}

/// The account with this id.
pub async fn account_by_id(tx: &mut GlobalTx, id: UserId) -> Result<Option<Account>, ApiError> {
    let row = sqlx::query(concat!("SELECT ", account_columns!(), " FROM accounts WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(tx.connection())
        .await?;
    row.as_ref().map(account).transpose()
}

/// Writes an account's mutable columns.
pub async fn update_account(tx: &mut GlobalTx, account: &Account) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE accounts SET full_name = $2, password_hash = $3, state = $4, email_verified = $5, \
         mfa_enabled = $6, mfa_secret = $7, mfa_pending_secret = $8, mfa_pending_expires_at = $9, \
         mfa_last_used_step = $10, last_organization_id = $11, last_login_at = $12, \
         password_changed_at = $13, updated_at = $14 WHERE id = $1",
    )
    .bind(account.id.to_string())
    .bind(&account.full_name)
    .bind(&account.password_hash)
    .bind(account.state.as_str())
    .bind(i64::from(account.email_verified))
    .bind(i64::from(account.mfa_enabled))
    .bind(&account.mfa_secret)
    .bind(&account.mfa_pending_secret)
    .bind(account.mfa_pending_expires_at)
    .bind(account.mfa_last_used_step)
    .bind(&account.last_organization_id)
    .bind(account.last_login_at)
    .bind(account.password_changed_at)
    .bind(account.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// What an email token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailPurpose {
    VerifyEmail,
    ResetPassword,
}

impl EmailPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// Stores an email token's hash.
pub async fn insert_email_token(
    tx: &mut GlobalTx,
    token_hash: &str,
    user: UserId,
    purpose: EmailPurpose,
    expires_at: i64,
    now: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user.to_string())
    .bind(purpose.as_str())
    .bind(expires_at)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Uses an unexpired, unused email token; returns its user. A token works once.
/// Retires the unused tokens of `user` for `purpose`: a newer link, or a completed reset,
/// makes older links worthless.
pub async fn retire_email_tokens(
    tx: &mut GlobalTx,
    user: UserId,
    purpose: EmailPurpose,
    now: i64,
) -> Result<(), ApiError> {
    sqlx::query("UPDATE email_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
        .bind(user.to_string())
        .bind(purpose.as_str())
        .bind(now)
        .execute(tx.connection())
        .await?;
    Ok(())
}

pub async fn consume_email_token(
    tx: &mut GlobalTx,
    token_hash: &str,
    purpose: EmailPurpose,
    now: i64,
) -> Result<Option<UserId>, ApiError> {
    let row = sqlx::query(
        "UPDATE email_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(tx.connection())
    .await?;
    row.map(|row| UserId::from_stored(&row.try_get::<String, _>(0)?)).transpose()
}

/// A refresh token as stored.
#[derive(Clone, Debug)]
pub struct RefreshToken {
    pub id: String,
    pub family_id: String,
    pub user_id: UserId,
    pub organization_id: Option<String>,
    pub token_hash: String,
    pub access_token_id: String,
    pub access_expires_at: i64,
    pub expires_at: i64,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When the session's first login happened.
    pub session_started_at: i64,
}

/// Stores a refresh token.
pub async fn insert_refresh_token(tx: &mut GlobalTx, token: &RefreshToken) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, organization_id, token_hash, access_token_id, \
         access_expires_at, expires_at, created_at, session_started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&token.id)
    .bind(&token.family_id)
    .bind(token.user_id.to_string())
    .bind(&token.organization_id)
    .bind(&token.token_hash)
    .bind(&token.access_token_id)
    .bind(token.access_expires_at)
    .bind(token.expires_at)
    .bind(token.created_at)
    .bind(token.session_started_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The refresh token with this hash.
pub async fn refresh_token_by_hash(tx: &mut GlobalTx, token_hash: &str) -> Result<Option<RefreshToken>, ApiError> {
    let row = sqlx::query(
        "SELECT id, family_id, user_id, organization_id, token_hash, access_token_id, access_expires_at, \
         expires_at, created_at, rotated_at, revoked_at, COALESCE(session_started_at, created_at) AS session_started_at \
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(tx.connection())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(RefreshToken {
        id: row.try_get("id")?,
        family_id: row.try_get("family_id")?,
        user_id: UserId::from_stored(&row.try_get::<String, _>("user_id")?)?,
        organization_id: row.try_get("organization_id")?,
        token_hash: row.try_get("token_hash")?,
        access_token_id: row.try_get("access_token_id")?,
        access_expires_at: row.try_get("access_expires_at")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        rotated_at: row.try_get("rotated_at")?,
        revoked_at: row.try_get("revoked_at")?,
        session_started_at: row.try_get("session_started_at")?,
    }))
}

/// Marks a token rotated; false if it was rotated or revoked meanwhile (a concurrent use).
pub async fn mark_rotated(tx: &mut GlobalTx, id: &str, now: i64) -> Result<bool, ApiError> {
    let updated = sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = $2 WHERE id = $1 AND rotated_at IS NULL AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// An access token that a revocation must also cut off.
pub struct IssuedAccess {
    pub family_id: String,
    pub token_id: String,
    pub expires_at: i64,
}

fn issued(rows: Vec<AnyRow>) -> Result<Vec<IssuedAccess>, ApiError> {
    rows.iter()
        .map(|row| {
            Ok(IssuedAccess { family_id: row.try_get(0)?, token_id: row.try_get(1)?, expires_at: row.try_get(2)? })
        })
        .collect()
}

/// Which sessions a revocation ends.
pub enum Sessions<'a> {
    /// One login session (a refresh token family).
    Family(&'a str),
    /// Every session of a person (logout everywhere, password reset).
    User(UserId),
    /// Sessions scoped to an organization: of one person who left it, or of everyone.
    Organization { organization: &'a str, user: Option<UserId> },
}

/// Revokes every live refresh token of `sessions`; returns the access tokens they were
/// issued with, which the caller must revoke too.
pub async fn revoke(
    tx: &mut GlobalTx,
    sessions: Sessions<'_>,
    reason: &str,
    now: i64,
) -> Result<Vec<IssuedAccess>, ApiError> {
    // $1 and $2 select the sessions; each scope uses them its own way.
    let (scope, first, second) = match sessions {
        Sessions::Family(family) => ("family_id = $1", family.to_string(), None),
        Sessions::User(user) => ("user_id = $1", user.to_string(), None),
        Sessions::Organization { organization, user } => (
            "organization_id = $1 AND ($2 IS NULL OR user_id = $2)",
            organization.to_string(),
            user.map(|u| u.to_string()),
        ),
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "UPDATE refresh_tokens SET revoked_at = $3, revoke_reason = $4 WHERE {scope} AND revoked_at IS NULL \
         RETURNING family_id, access_token_id, access_expires_at"
    )))
    .bind(first)
    .bind(second)
    .bind(now)
    .bind(reason)
    .fetch_all(tx.connection())
    .await?;
    issued(rows)
}

/// Deletes refresh and email tokens that expired before `cutoff`.
pub async fn delete_expired(tx: &mut GlobalTx, cutoff: i64) -> Result<u64, ApiError> {
    let refresh =
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1").bind(cutoff).execute(tx.connection()).await?;
    let email =
        sqlx::query("DELETE FROM email_tokens WHERE expires_at < $1").bind(cutoff).execute(tx.connection()).await?;
    Ok(refresh.rows_affected() + email.rows_affected())
}

/// Replaces a user's recovery codes.
pub async fn replace_recovery_codes(tx: &mut GlobalTx, user: UserId, code_hashes: &[String]) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.to_string())
        .execute(tx.connection())
        .await?;
    for hash in code_hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user.to_string())
            .bind(hash)
            .execute(tx.connection())
            .await?;
    }
    Ok(())
}

/// Uses a recovery code once, given the hashes it may be stored as (one per key); false if
/// unknown or used.
pub async fn use_recovery_code(
    tx: &mut GlobalTx,
    user: UserId,
    code_hashes: &[String],
    now: i64,
) -> Result<bool, ApiError> {
    for code_hash in code_hashes {
        let updated = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user.to_string())
        .bind(code_hash)
        .bind(now)
        .execute(tx.connection())
        .await?;
        if updated.rows_affected() == 1 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a person may do in one organization (the auth service's copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub organization_id: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub active: bool,
    pub version: i64,
    /// The organization requires a second factor of its members.
    pub requires_mfa: bool,
    /// Platform staff suspended the organization: no token is issued for it.
    pub suspended: bool,
    /// The organization requires single sign-on: only sessions that began with it get tokens.
    pub requires_sso: bool,
}

fn split_list(text: String) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

fn membership(row: &AnyRow) -> Result<Membership, ApiError> {
    Ok(Membership {
        organization_id: row.try_get("organization_id")?,
        roles: row.try_get::<String, _>("roles")?.split('\n').filter(|r| !r.is_empty()).map(str::to_string).collect(),
        permissions: split_list(row.try_get("permissions")?),
        active: row.try_get::<i64, _>("active")? != 0,
        version: row.try_get("version")?,
        requires_mfa: row.try_get::<i64, _>("require_mfa")? != 0,
        suspended: row.try_get::<i64, _>("suspended")? != 0,
        requires_sso: row.try_get::<i64, _>("require_sso")? != 0,
    })
}

/// The user's active memberships, most recently changed first.
pub async fn active_memberships(tx: &mut GlobalTx, user: UserId) -> Result<Vec<Membership>, ApiError> {
    Ok(named_memberships(tx, user).await?.into_iter().map(|(membership, _)| membership).collect())
}

/// The user's active memberships with each organization's name, most recently changed first.
pub async fn named_memberships(tx: &mut GlobalTx, user: UserId) -> Result<Vec<(Membership, String)>, ApiError> {
    let rows = sqlx::query(
        "SELECT m.organization_id, m.roles, m.permissions, m.active, m.version, \
                COALESCE(p.require_mfa, 0) AS require_mfa, COALESCE(p.display_name, '') AS display_name, \
                COALESCE(p.suspended, 0) AS suspended, COALESCE(p.require_sso, 0) AS require_sso \
         FROM account_memberships m LEFT JOIN organization_policies p ON p.organization_id = m.organization_id \
         WHERE m.user_id = $1 AND m.active = 1 ORDER BY m.updated_at DESC, m.organization_id",
    )
    .bind(user.to_string())
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(|row| Ok((membership(row)?, row.try_get("display_name")?))).collect()
}

/// What a person may currently do in an organization, as last recorded: (permissions, version).
pub async fn recorded_permissions(
    connection: &mut sqlx::AnyConnection,
    user: UserId,
    organization: &str,
) -> Result<Option<(Vec<String>, i64)>, ApiError> {
    let row = sqlx::query(
        "SELECT permissions, version FROM account_memberships WHERE user_id = $1 AND organization_id = $2 AND active = 1",
    )
    .bind(user.to_string())
    .bind(organization)
    .fetch_optional(connection)
    .await?;
    row.map(|row| Ok((split_list(row.try_get("permissions")?), row.try_get("version")?))).transpose()
}

/// Access tokens still live (by their expiry, seconds) that were issued to `user` for
/// `organization`, whatever became of their refresh tokens.
pub async fn live_access(
    tx: &mut GlobalTx,
    user: UserId,
    organization: &str,
    now_seconds: i64,
) -> Result<Vec<IssuedAccess>, ApiError> {
    let rows = sqlx::query(
        "SELECT family_id, access_token_id, access_expires_at FROM refresh_tokens \
         WHERE user_id = $1 AND organization_id = $2 AND access_expires_at > $3",
    )
    .bind(user.to_string())
    .bind(organization)
    .bind(now_seconds)
    .fetch_all(tx.connection())
    .await?;
    issued(rows)
}

/// An organization's sign-in policy, as its events last described it.
pub struct OrganizationPolicy<'a> {
    pub organization: &'a str,
    pub display_name: &'a str,
    pub require_mfa: bool,
    pub suspended: bool,
    /// Its last change, in microseconds.
    pub version: i64,
}

/// Records an organization's sign-in policy; an older version than the stored one changes
/// nothing. Returns whether it was recorded.
pub async fn upsert_organization_policy(
    tx: &mut GlobalTx,
    policy: &OrganizationPolicy<'_>,
    now: i64,
) -> Result<bool, ApiError> {
    let recorded = sqlx::query(
        "INSERT INTO organization_policies (organization_id, display_name, require_mfa, suspended, version, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (organization_id) DO UPDATE SET display_name = excluded.display_name, \
           require_mfa = excluded.require_mfa, suspended = excluded.suspended, version = excluded.version, \
           updated_at = excluded.updated_at \
         WHERE organization_policies.version < excluded.version",
    )
    .bind(policy.organization)
    .bind(policy.display_name)
    .bind(i64::from(policy.require_mfa))
    .bind(i64::from(policy.suspended))
    .bind(policy.version)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(recorded.rows_affected() == 1)
}

/// Whether staff suspended the organization.
pub async fn organization_suspended(
    connection: &mut sqlx::AnyConnection,
    organization: &str,
) -> Result<bool, ApiError> {
    let suspended: Option<i64> =
        sqlx::query_scalar("SELECT suspended FROM organization_policies WHERE organization_id = $1")
            .bind(organization)
            .fetch_optional(connection)
            .await?;
    Ok(suspended.unwrap_or(0) != 0)
}

/// Every staff account, by email.
pub async fn staff_accounts(tx: &mut GlobalTx) -> Result<Vec<Account>, ApiError> {
    let rows = sqlx::query(concat!("SELECT ", account_columns!(), " FROM accounts WHERE staff = 1 ORDER BY email"))
        .fetch_all(tx.connection())
        .await?;
    rows.iter().map(account).collect()
}

/// Records a newer version of a membership; older or equal versions are ignored (events
/// may arrive twice or out of order).
pub async fn upsert_membership(
    tx: &mut GlobalTx,
    user: UserId,
    membership: &Membership,
    now: i64,
) -> Result<(), ApiError> {
    // Role names may contain spaces ("Organization Admin"), so they are newline-separated.
    sqlx::query(
        "INSERT INTO account_memberships (user_id, organization_id, roles, permissions, active, version, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (user_id, organization_id) DO UPDATE SET roles = excluded.roles, \
           permissions = excluded.permissions, active = excluded.active, version = excluded.version, \
           updated_at = excluded.updated_at \
         WHERE account_memberships.version < excluded.version",
    )
    .bind(user.to_string())
    .bind(&membership.organization_id)
    .bind(membership.roles.join("\n"))
    .bind(membership.permissions.join(" "))
    .bind(i64::from(membership.active))
    .bind(membership.version)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Ends every membership of a deleted organization.
pub async fn deactivate_organization(tx: &mut GlobalTx, organization_id: &str, now: i64) -> Result<(), ApiError> {
    sqlx::query("UPDATE account_memberships SET active = 0, updated_at = $2 WHERE organization_id = $1")
        .bind(organization_id)
        .bind(now)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// An account's sealed MFA seeds, as read for re-sealing.
pub struct MfaSeeds {
    pub user_id: String,
    pub secret: Option<String>,
    pub pending: Option<String>,
}

/// Up to `limit` accounts with an MFA seed not sealed under a key matching `current` (a LIKE
/// pattern).
pub async fn mfa_seeds_not_under(tx: &mut GlobalTx, current: &str, limit: i64) -> Result<Vec<MfaSeeds>, ApiError> {
    let rows = sqlx::query(
        "SELECT id, mfa_secret, mfa_pending_secret FROM accounts \
         WHERE (mfa_secret IS NOT NULL AND mfa_secret NOT LIKE $1) \
            OR (mfa_pending_secret IS NOT NULL AND mfa_pending_secret NOT LIKE $1) \
         ORDER BY id LIMIT $2",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(tx.connection())
    .await?;
    rows.iter()
        .map(|row| Ok(MfaSeeds { user_id: row.try_get(0)?, secret: row.try_get(1)?, pending: row.try_get(2)? }))
        .collect()
}

/// Replaces an account's sealed seeds if they are still as read (a concurrent change wins,
/// and is sealed under the current key anyway).
pub async fn replace_mfa_seeds(
    tx: &mut GlobalTx,
    read: &MfaSeeds,
    secret: Option<&str>,
    pending: Option<&str>,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE accounts SET mfa_secret = $2, mfa_pending_secret = $3 WHERE id = $1 \
         AND mfa_secret IS NOT DISTINCT FROM $4 AND mfa_pending_secret IS NOT DISTINCT FROM $5",
    )
    .bind(&read.user_id)
    .bind(secret)
    .bind(pending)
    .bind(&read.secret)
    .bind(&read.pending)
    .execute(tx.connection())
    .await?;
    Ok(())
}
