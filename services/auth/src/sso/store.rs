//! Single sign-on's tables: the identity provider (one organization's row, under row-level
//! security), claimed domains and single sign-on sessions (global: a sign-in is routed before
//! any organization is known, and a refresh finds its session by family).

use complianceiq_kit::db::{GlobalTx, TenantTx};
use complianceiq_kit::error::ApiError;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A group's roles.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct GroupRoles {
    pub group: String,
    pub role_ids: Vec<String>,
}

/// An organization's identity provider as stored.
#[derive(Clone, Debug, Default)]
pub struct StoredProvider {
    /// OpenID Connect: the issuer; SAML: the provider's entity id.
    pub issuer: String,
    pub client_id: String,
    /// Sealed.
    pub client_secret: String,
    pub extra_scopes: Vec<String>,
    pub groups_claim: String,
    pub require_sso: bool,
    pub default_role_ids: Vec<String>,
    pub group_role_mappings: Vec<GroupRoles>,
    /// SAML: the provider's metadata (then client id, secret and scopes are empty, and
    /// `groups_claim` names the groups attribute). `None`: OpenID Connect.
    pub saml_metadata: Option<String>,
    /// SAML: where the metadata is fetched from, and when it last was.
    pub saml_metadata_url: Option<String>,
    pub saml_fetched_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

fn parsed<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|error| ApiError::internal(format!("stored SSO settings: {error}")))
}

pub async fn provider(tx: &mut TenantTx) -> Result<Option<StoredProvider>, ApiError> {
    let row = sqlx::query(
        "SELECT issuer, client_id, client_secret, extra_scopes, groups_claim, require_sso, default_role_ids, \
                group_role_mappings, saml_metadata, saml_metadata_url, saml_fetched_at, created_at, updated_at \
         FROM identity_providers WHERE organization_id = $1",
    )
    .bind(tx.tenant().to_string())
    .fetch_optional(tx.connection())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(StoredProvider {
        issuer: row.try_get("issuer")?,
        client_id: row.try_get("client_id")?,
        client_secret: row.try_get("client_secret")?,
        extra_scopes: parsed(&row.try_get::<String, _>("extra_scopes")?)?,
        groups_claim: row.try_get("groups_claim")?,
        require_sso: row.try_get::<i64, _>("require_sso")? == 1,
        default_role_ids: parsed(&row.try_get::<String, _>("default_role_ids")?)?,
        group_role_mappings: parsed(&row.try_get::<String, _>("group_role_mappings")?)?,
        saml_metadata: row.try_get("saml_metadata")?,
        saml_metadata_url: row.try_get("saml_metadata_url")?,
        saml_fetched_at: row.try_get("saml_fetched_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    }))
}

pub async fn save_provider(tx: &mut TenantTx, provider: &StoredProvider) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO identity_providers (organization_id, protocol, issuer, client_id, client_secret, extra_scopes, \
           groups_claim, require_sso, default_role_ids, group_role_mappings, saml_metadata, saml_metadata_url, \
           saml_fetched_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (organization_id) DO UPDATE SET protocol = excluded.protocol, issuer = excluded.issuer, \
           client_id = excluded.client_id, client_secret = excluded.client_secret, \
           extra_scopes = excluded.extra_scopes, groups_claim = excluded.groups_claim, \
           require_sso = excluded.require_sso, default_role_ids = excluded.default_role_ids, \
           group_role_mappings = excluded.group_role_mappings, saml_metadata = excluded.saml_metadata, \
           saml_metadata_url = excluded.saml_metadata_url, saml_fetched_at = excluded.saml_fetched_at, \
           updated_at = excluded.updated_at",
    )
    .bind(tx.tenant().to_string())
    .bind(if provider.saml_metadata.is_some() { "saml" } else { "oidc" })
    .bind(&provider.issuer)
    .bind(&provider.client_id)
    .bind(&provider.client_secret)
    .bind(json(&provider.extra_scopes))
    .bind(&provider.groups_claim)
    .bind(i64::from(provider.require_sso))
    .bind(json(&provider.default_role_ids))
    .bind(json(&provider.group_role_mappings))
    .bind(provider.saml_metadata.clone())
    .bind(provider.saml_metadata_url.clone())
    .bind(provider.saml_fetched_at)
    .bind(provider.created_at)
    .bind(provider.updated_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

pub async fn delete_provider(tx: &mut TenantTx) -> Result<bool, ApiError> {
    let deleted = sqlx::query("DELETE FROM identity_providers WHERE organization_id = $1")
        .bind(tx.tenant().to_string())
        .execute(tx.connection())
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Records whether the organization requires single sign-on, for token issuance (a row is
/// made if the organization's policy was not projected yet; its projection fills the rest).
pub async fn set_require_sso(tx: &mut GlobalTx, organization: &str, required: bool, now: i64) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO organization_policies (organization_id, display_name, require_mfa, suspended, version, \
           updated_at, require_sso) VALUES ($1, '', 0, 0, 0, $2, $3) \
         ON CONFLICT (organization_id) DO UPDATE SET require_sso = excluded.require_sso",
    )
    .bind(organization)
    .bind(now)
    .bind(i64::from(required))
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// A claimed domain.
#[derive(Clone, Debug)]
pub struct Domain {
    pub organization_id: String,
    pub domain: String,
    pub token: String,
    pub verified_at: Option<i64>,
}

fn domain_of(row: &sqlx::any::AnyRow) -> Result<Domain, ApiError> {
    Ok(Domain {
        organization_id: row.try_get("organization_id")?,
        domain: row.try_get("domain")?,
        token: row.try_get("token")?,
        verified_at: row.try_get("verified_at")?,
    })
}

/// The organization's claimed domains, by name.
pub async fn domains(tx: &mut GlobalTx, organization: &str) -> Result<Vec<Domain>, ApiError> {
    let rows = sqlx::query(
        "SELECT organization_id, domain, token, verified_at FROM sso_domains WHERE organization_id = $1 ORDER BY domain",
    )
    .bind(organization)
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(domain_of).collect()
}

/// Claims a domain; false when the organization already claimed it.
pub async fn insert_domain(tx: &mut GlobalTx, domain: &Domain, now: i64) -> Result<bool, ApiError> {
    let inserted = sqlx::query(
        "INSERT INTO sso_domains (organization_id, domain, token, verified_at, created_at) \
         VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (organization_id, domain) DO NOTHING",
    )
    .bind(&domain.organization_id)
    .bind(&domain.domain)
    .bind(&domain.token)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The organization that verified `domain`, if one did.
pub async fn verified_owner(tx: &mut GlobalTx, domain: &str) -> Result<Option<String>, ApiError> {
    Ok(sqlx::query_scalar("SELECT organization_id FROM sso_domains WHERE domain = $1 AND verified_at IS NOT NULL")
        .bind(domain)
        .fetch_optional(tx.connection())
        .await?)
}

pub async fn mark_verified(tx: &mut GlobalTx, organization: &str, domain: &str, now: i64) -> Result<(), ApiError> {
    sqlx::query("UPDATE sso_domains SET verified_at = $3 WHERE organization_id = $1 AND domain = $2")
        .bind(organization)
        .bind(domain)
        .bind(now)
        .execute(tx.connection())
        .await?;
    Ok(())
}

pub async fn delete_domain(tx: &mut GlobalTx, organization: &str, domain: &str) -> Result<bool, ApiError> {
    let deleted = sqlx::query("DELETE FROM sso_domains WHERE organization_id = $1 AND domain = $2")
        .bind(organization)
        .bind(domain)
        .execute(tx.connection())
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// A session that began with single sign-on.
#[derive(Clone, Debug)]
pub struct SsoSession {
    pub family_id: String,
    pub organization_id: String,
    pub user_id: String,
    pub subject: String,
    /// The provider's refresh token, sealed.
    pub provider_grant: Option<String>,
    pub provider_expires_at: i64,
}

pub async fn insert_session(tx: &mut GlobalTx, session: &SsoSession, now: i64) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO sso_sessions (family_id, organization_id, user_id, subject, provider_grant, provider_expires_at, \
           created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&session.family_id)
    .bind(&session.organization_id)
    .bind(&session.user_id)
    .bind(&session.subject)
    .bind(&session.provider_grant)
    .bind(session.provider_expires_at)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

pub async fn session(tx: &mut GlobalTx, family: &str) -> Result<Option<SsoSession>, ApiError> {
    let row = sqlx::query(
        "SELECT family_id, organization_id, user_id, subject, provider_grant, provider_expires_at \
         FROM sso_sessions WHERE family_id = $1",
    )
    .bind(family)
    .fetch_optional(tx.connection())
    .await?;
    row.map(|row| {
        Ok(SsoSession {
            family_id: row.try_get("family_id")?,
            organization_id: row.try_get("organization_id")?,
            user_id: row.try_get("user_id")?,
            subject: row.try_get("subject")?,
            provider_grant: row.try_get("provider_grant")?,
            provider_expires_at: row.try_get("provider_expires_at")?,
        })
    })
    .transpose()
}

/// Keeps the provider's rotated refresh token.
pub async fn update_grant(tx: &mut GlobalTx, family: &str, grant: &str, now: i64) -> Result<(), ApiError> {
    sqlx::query("UPDATE sso_sessions SET provider_grant = $2, updated_at = $3 WHERE family_id = $1")
        .bind(family)
        .bind(grant)
        .bind(now)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// The families of the organization's single sign-on sessions (ended when its provider goes).
pub async fn session_families(tx: &mut GlobalTx, organization: &str) -> Result<Vec<String>, ApiError> {
    Ok(sqlx::query_scalar("SELECT family_id FROM sso_sessions WHERE organization_id = $1")
        .bind(organization)
        .fetch_all(tx.connection())
        .await?)
}

/// Every organization the module knows (single sign-on secrets are re-sealed one at a time).
pub async fn organizations_with_policies(tx: &mut GlobalTx) -> Result<Vec<String>, ApiError> {
    Ok(sqlx::query_scalar("SELECT organization_id FROM organization_policies ORDER BY organization_id")
        .fetch_all(tx.connection())
        .await?)
}

/// (family, organization, sealed grant) of sessions whose provider grant is not sealed under
/// the key prefix `current`.
pub async fn grants_not_under(tx: &mut GlobalTx, current: &str) -> Result<Vec<(String, String, String)>, ApiError> {
    let rows = sqlx::query(
        "SELECT family_id, organization_id, provider_grant FROM sso_sessions \
         WHERE provider_grant IS NOT NULL AND provider_grant NOT LIKE $1",
    )
    .bind(format!("{current}%"))
    .fetch_all(tx.connection())
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("family_id")?, row.try_get("organization_id")?, row.try_get("provider_grant")?)))
        .collect()
}
