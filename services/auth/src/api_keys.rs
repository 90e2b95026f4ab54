//! Organization API keys: service accounts for partners and widgets. A key is `ciq_`, its
//! organization's id and its own (32 hexadecimal characters each) and a random secret (64);
//! the platform keeps the SHA-256 of the whole key (a random 256-bit secret needs no slow
//! hash). Naming the organization lets the exchange read the key in a transaction scoped to
//! it, like every other tenant read. The gateway exchanges a key for
//! a minute-long access token (ExchangeApiKey) and caches it, so everything behind the edge
//! (access rules, rate limits, audit) sees an ordinary token whose subject is the key.
//!
//! A key holds at most what its creator holds *now*: the exchange intersects the key's
//! permissions with the creator's current ones, and stops when the creator has left. Tokens
//! carry `api-key:<id>:<generation>` as their id, so revoking a key, or demoting its creator,
//! revokes that id (every process refuses it within a second) and bumps the generation, and
//! the next exchange yields a token that reflects the change.

use complianceiq_kit::auth::caller;
use complianceiq_kit::auth::jwt::{self, Claims};
use complianceiq_kit::crypto::{constant_time_eq, random_bytes, sha256_hex};
use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::parse_uuid;
use complianceiq_kit::ids::{OrganizationId, UserId};
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::time;
use complianceiq_proto::PERMISSIONS;
use complianceiq_proto::complianceiq::auth::v1::{
    ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, ExchangeApiKeyRequest, ExchangeApiKeyResponse,
    ListApiKeysRequest, ListApiKeysResponse, RevokeApiKeyRequest,
};
use sqlx::Row;
use sqlx::any::AnyRow;
use tonic::Request;

use crate::api::AuthApi;
use crate::store;

/// What every key's secret starts with (and how the gateway tells a key from a token).
pub const KEY_PREFIX: &str = "ciq_";
/// Lifetime of an exchanged token: how stale a gateway's copy of a key's permissions, and
/// its last use, can be.
pub const TOKEN_SECONDS: i64 = 60;
/// The role name exchanged tokens carry, so the audit trail and handlers can tell a key.
pub const API_KEY_ROLE: &str = "API Key";
const MAX_NAME: usize = 100;
const MICROS: i64 = 1_000_000;

/// A stored key.
pub struct StoredKey {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub secret_hash: String,
    /// The secret's last four characters, to tell keys apart.
    pub hint: String,
    pub creator: UserId,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub generation: i64,
}

impl StoredKey {
    fn read(row: &AnyRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            name: row.try_get("name")?,
            permissions: row.try_get::<String, _>("permissions")?.split_whitespace().map(str::to_string).collect(),
            secret_hash: row.try_get("secret_hash")?,
            hint: row.try_get("hint")?,
            creator: UserId::from_stored(&row.try_get::<String, _>("creator_user_id")?)?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            last_used_at: row.try_get("last_used_at")?,
            revoked_at: row.try_get("revoked_at")?,
            generation: row.try_get("generation")?,
        })
    }

    pub fn proto(&self) -> ApiKey {
        ApiKey {
            id: self.id.clone(),
            organization_id: self.organization_id.clone(),
            name: self.name.clone(),
            permissions: self.permissions.clone(),
            hint: format!("{KEY_PREFIX}{}…{}", &self.organization_id.replace('-', "")[..8], self.hint),
            creator_user_id: self.creator.to_string(),
            create_time: Some(time::to_timestamp(self.created_at)),
            expire_time: time::to_optional_timestamp(self.expires_at),
            last_use_time: time::to_optional_timestamp(self.last_used_at),
            revoke_time: time::to_optional_timestamp(self.revoked_at),
        }
    }

    /// The id of the tokens exchanged for the key in its current generation.
    pub fn token_id(&self) -> String {
        format!("api-key:{}:{}", self.id, self.generation)
    }
}

/// A new key's validated fields: (name, permissions sorted and unique, expiry).
pub fn validate_new(
    name: &str,
    permissions: &[String],
    expire_time: Option<&prost_types::Timestamp>,
    held: &[String],
    now: i64,
) -> Result<(String, Vec<String>, Option<i64>), ApiError> {
    let mut violations = FieldViolations::default();
    violations.text("name", name, MAX_NAME);
    if permissions.is_empty() {
        violations.add("permissions", "REQUIRED", "name at least one permission for the key");
    }
    for (index, permission) in permissions.iter().enumerate() {
        if !PERMISSIONS.contains(&permission.as_str()) {
            violations.add(
                &format!("permissions[{index}]"),
                "UNKNOWN_PERMISSION",
                format!("{permission:?} is not a permission of the platform"),
            );
        }
    }
    let expires_at = expire_time.map(time::from_timestamp);
    if expires_at.is_some_and(|at| at <= now) {
        violations.add("expire_time", "IN_THE_PAST", "expire_time must be in the future");
    }
    violations.check()?;
    let mut permissions = permissions.to_vec();
    permissions.sort();
    permissions.dedup();
    let missing: Vec<&str> =
        permissions.iter().filter(|permission| !held.contains(permission)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(ApiError::PermissionDenied {
            reason: "CANNOT_GRANT",
            message: format!("a key gets only permissions you hold; you lack {}", missing.join(", ")),
        });
    }
    Ok((name.trim().to_string(), permissions, expires_at))
}

/// A new secret for key `id` of `organization`: `ciq_`, both ids, 64 hexadecimal characters.
pub fn new_secret(organization: OrganizationId, id: &uuid::Uuid) -> String {
    let random: String = random_bytes(32).iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{KEY_PREFIX}{}{}{random}", organization.uuid().simple(), id.simple())
}

/// The organization and key a presented secret names, if it is shaped like a key.
pub fn ids_of(secret: &str) -> Option<(OrganizationId, uuid::Uuid)> {
    let body = secret.strip_prefix(KEY_PREFIX)?;
    if body.len() != 128 || !body.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let organization = uuid::Uuid::try_parse(&body[..32]).ok()?;
    Some((OrganizationId::from_uuid(organization), uuid::Uuid::try_parse(&body[32..64]).ok()?))
}

const COLUMNS: &str = "id, organization_id, name, permissions, secret_hash, hint, creator_user_id, created_at, \
                       expires_at, last_used_at, revoked_at, generation";

pub async fn insert(tx: &mut TenantTx, key: &StoredKey) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO api_keys (id, organization_id, name, permissions, secret_hash, hint, creator_user_id, \
           created_at, expires_at, last_used_at, revoked_at, generation) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, 0)",
    )
    .bind(&key.id)
    .bind(tx.tenant().to_string())
    .bind(&key.name)
    .bind(key.permissions.join(" "))
    .bind(&key.secret_hash)
    .bind(&key.hint)
    .bind(key.creator.to_string())
    .bind(key.created_at)
    .bind(key.expires_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The organization's keys, newest first, after the key `before` (created_at, id).
pub async fn keys_page(
    tx: &mut TenantTx,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<StoredKey>, ApiError> {
    // Ids are lower-case hexadecimal with hyphens: "~" sorts after every one.
    let (created_at, id) = before.unwrap_or((i64::MAX, "~".into()));
    let statement = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE organization_id = $1 \
           AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tx.tenant().to_string())
        .bind(created_at)
        .bind(id)
        .bind(limit)
        .fetch_all(tx.connection())
        .await?;
    rows.iter().map(StoredKey::read).collect()
}

/// The organization's key `id`.
pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<StoredKey>, ApiError> {
    let statement = format!("SELECT {COLUMNS} FROM api_keys WHERE organization_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tx.tenant().to_string())
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
    row.as_ref().map(StoredKey::read).transpose()
}

/// Marks the organization's key revoked and starts a new generation; false when it already
/// was.
pub async fn revoke(tx: &mut TenantTx, id: &str, now: i64) -> Result<bool, ApiError> {
    let revoked = sqlx::query(
        "UPDATE api_keys SET revoked_at = $3, generation = generation + 1 \
         WHERE organization_id = $1 AND id = $2 AND revoked_at IS NULL",
    )
    .bind(tx.tenant().to_string())
    .bind(id)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(revoked.rows_affected() == 1)
}

/// The ids of the live tokens of the organization's keys (those `creator` made, or all), after
/// starting a new generation of each (so the next exchange reflects a change of their
/// permissions, or is refused).
pub async fn renew_keys(tx: &mut TenantTx, creator: Option<UserId>) -> Result<Vec<String>, ApiError> {
    const SCOPE: &str = "organization_id = $1 AND ($2 IS NULL OR creator_user_id = $2) AND revoked_at IS NULL";
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys WHERE {SCOPE}")))
        .bind(tx.tenant().to_string())
        .bind(creator.map(|creator| creator.to_string()))
        .fetch_all(tx.connection())
        .await?;
    let keys = rows.iter().map(StoredKey::read).collect::<Result<Vec<_>, _>>()?;
    sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE api_keys SET generation = generation + 1 WHERE {SCOPE}")))
        .bind(tx.tenant().to_string())
        .bind(creator.map(|creator| creator.to_string()))
        .execute(tx.connection())
        .await?;
    Ok(keys.iter().map(StoredKey::token_id).collect())
}

async fn record_use(tx: &mut TenantTx, id: &str, now: i64) -> Result<(), ApiError> {
    sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE organization_id = $1 AND id = $2")
        .bind(tx.tenant().to_string())
        .bind(id)
        .bind(now)
        .execute(tx.connection())
        .await?;
    Ok(())
}

fn invalid_key(reason: &'static str, message: &str) -> ApiError {
    ApiError::Unauthenticated { reason, message: message.into() }
}

/// The claims of a token for the key `secret` (already parsed as `key_id`, in the
/// organization of `tx`), after checking it, its expiry, and its creator's membership;
/// records the use.
pub async fn exchange(tx: &mut TenantTx, key_id: uuid::Uuid, secret: &str, now: i64) -> Result<Claims, ApiError> {
    let key = by_id(tx, &key_id.hyphenated().to_string()).await?;
    let presented = sha256_hex(secret.as_bytes());
    let Some(key) = key.filter(|key| constant_time_eq(key.secret_hash.as_bytes(), presented.as_bytes())) else {
        return Err(invalid_key("API_KEY_INVALID", "the API key is not valid"));
    };
    if key.revoked_at.is_some() {
        return Err(invalid_key("API_KEY_REVOKED", "the API key was revoked"));
    }
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(invalid_key("API_KEY_EXPIRED", "the API key has expired"));
    }
    if store::organization_suspended(tx.connection(), &key.organization_id).await? {
        return Err(ApiError::PermissionDenied {
            reason: "ORGANIZATION_SUSPENDED",
            message: "the API key's organization is suspended; contact ComplianceIQ support".into(),
        });
    }
    // The auth service's copy of memberships belongs to no one organization's rows.
    let Some((held, _)) = store::recorded_permissions(tx.connection(), key.creator, &key.organization_id).await? else {
        return Err(invalid_key(
            "API_KEY_CREATOR_LEFT",
            "the API key's creator is no longer a member of its organization; create a new key",
        ));
    };
    record_use(tx, &key.id, now).await?;
    let issued_at = now.div_euclid(MICROS);
    let expires = key.expires_at.map_or(i64::MAX, |at| at.div_euclid(MICROS));
    Ok(Claims {
        user_id: key.id.clone(),
        organization_id: Some(key.organization_id.clone()),
        email: String::new(),
        roles: vec![API_KEY_ROLE.to_string()],
        permissions: key.permissions.iter().filter(|permission| held.contains(permission)).cloned().collect(),
        exp: (issued_at + TOKEN_SECONDS).min(expires),
        iat: issued_at,
        iss: jwt::ISSUER.into(),
        jti: key.token_id(),
        nbf: None,
        staff: false,
    })
}

/// Until when a revoked token id must be remembered: past any token issued before now.
pub fn revocation_horizon(now: i64) -> i64 {
    now.div_euclid(MICROS) + TOKEN_SECONDS + jwt::LEEWAY_SECONDS + 1
}

impl AuthApi {
    pub(crate) async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<CreateApiKeyResponse, ApiError> {
        let identity = caller(&request)?;
        let organization = identity.tenant()?;
        if identity.roles.iter().any(|role| role == API_KEY_ROLE) {
            return Err(ApiError::PermissionDenied {
                reason: "API_KEY_CANNOT_CREATE_KEYS",
                message: "an API key cannot create API keys; a person must".into(),
            });
        }
        let request = request.into_inner();
        let now = time::now_micros();
        let (name, permissions, expires_at) = validate_new(
            &request.name,
            &request.permissions,
            request.expire_time.as_ref(),
            &identity.permissions,
            now,
        )?;
        let id = uuid::Uuid::new_v4();
        let secret = new_secret(organization, &id);
        let key = StoredKey {
            id: id.hyphenated().to_string(),
            organization_id: organization.to_string(),
            name,
            permissions,
            secret_hash: sha256_hex(secret.as_bytes()),
            hint: secret[secret.len() - 4..].to_string(),
            creator: identity.user_id,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            generation: 0,
        };
        let mut tx = self.database.write(organization).await?;
        insert(&mut tx, &key).await?;
        tx.commit().await?;
        tracing::info!(organization_id = %organization, api_key_id = %key.id, "API key created");
        Ok(CreateApiKeyResponse { api_key: Some(key.proto()), secret })
    }

    pub(crate) async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<ListApiKeysResponse, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token, "")?;
        let before = match page.after.as_deref() {
            Some([created_at, id]) => Some((page_number(created_at)?, id.clone())),
            Some(_) => return Err(ApiError::invalid_field("page_token", "INVALID", "page_token is not one of ours")),
            None => None,
        };
        let mut tx = self.database.read(organization).await?;
        let mut keys = keys_page(&mut tx, before, page.fetch_limit()).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut keys, |key| vec![key.created_at.to_string(), key.id.clone()]);
        Ok(ListApiKeysResponse { api_keys: keys.iter().map(StoredKey::proto).collect(), next_page_token })
    }

    pub(crate) async fn revoke_api_key(&self, request: Request<RevokeApiKeyRequest>) -> Result<ApiKey, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let id = parse_uuid("api_key_id", &request.get_ref().api_key_id)?.hyphenated().to_string();
        let now = time::now_micros();
        let mut tx = self.database.write(organization).await?;
        let Some(before) = by_id(&mut tx, &id).await? else {
            return Err(ApiError::not_found("api key", id));
        };
        revoke(&mut tx, &id, now).await?;
        let key = by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("api key", id.clone()))?;
        tx.commit().await?;
        // Announced after the commit: a failure to announce is retried by revoking again
        // (the key stays revoked; its tokens expire within a minute regardless).
        if before.revoked_at.is_none() {
            self.revocations.revoke(&before.token_id(), revocation_horizon(now)).await?;
            tracing::info!(organization_id = %organization, api_key_id = %id, "API key revoked");
        } else {
            self.revocations.revoke(&key.token_id(), revocation_horizon(now)).await?;
        }
        Ok(key.proto())
    }

    pub(crate) async fn exchange_api_key(
        &self,
        request: Request<ExchangeApiKeyRequest>,
    ) -> Result<ExchangeApiKeyResponse, ApiError> {
        let secret = request.into_inner().secret;
        let Some((organization, key_id)) = ids_of(&secret) else {
            return Err(invalid_key("API_KEY_MALFORMED", "an API key is ciq_ followed by 128 hexadecimal characters"));
        };
        let now = time::now_micros();
        let mut tx = self.database.write(organization).await?;
        let claims = exchange(&mut tx, key_id, &secret, now).await?;
        tx.commit().await?;
        let access_token = {
            let keys = self.keys.current();
            let signing = keys.signing_key(claims.iat);
            jwt::sign(&claims, &signing.id, &signing.pair)
        };
        Ok(ExchangeApiKeyResponse { access_token, expires_in: (claims.exp - claims.iat) as i32 })
    }
}

fn page_number(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::invalid_field("page_token", "INVALID", "page_token is not one of ours"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_names_its_key_and_nothing_else_does() {
        let (organization, id) = (OrganizationId::generate(), uuid::Uuid::new_v4());
        let secret = new_secret(organization, &id);
        assert_eq!(secret.len(), KEY_PREFIX.len() + 128);
        assert_eq!(ids_of(&secret), Some((organization, id)));
        assert_eq!(ids_of(&secret[..secret.len() - 1]), None, "too short");
        assert_eq!(ids_of(&secret.replacen("ciq_", "cix_", 1)), None, "another prefix");
        assert_eq!(ids_of(&format!("{}g", &secret[..secret.len() - 1])), None, "not hexadecimal");
        assert_ne!(new_secret(organization, &id), secret, "random");
    }

    #[test]
    fn a_key_gets_known_permissions_its_creator_holds() {
        let held = vec!["insights:read".to_string(), "instances:read".to_string()];
        let now = 1_000 * MICROS;
        let (name, permissions, expiry) =
            validate_new(" Partner ", &["insights:read".into(), "insights:read".into()], None, &held, now).unwrap();
        assert_eq!((name.as_str(), permissions, expiry), ("Partner", vec!["insights:read".to_string()], None));
        let refused = validate_new("p", &["audit:read".into()], None, &held, now).unwrap_err();
        assert!(matches!(refused, ApiError::PermissionDenied { reason: "CANNOT_GRANT", .. }), "{refused:?}");
        let invalid = validate_new("", &["nope".into()], Some(&time::to_timestamp(now - 1)), &held, now).unwrap_err();
        let fields: Vec<_> = invalid.field_violations().iter().map(|v| v.field.clone()).collect();
        assert_eq!(fields, ["name", "permissions[0]", "expire_time"]);
    }
}
