//! Single sign-on through an organization's OpenID Connect or SAML 2.0 identity provider.
//!
//! An admin configures the provider and claims email domains, verified by a DNS TXT record.
//! A sign-in starts with an email (its verified domain names the organization) and goes:
//! StartSso (redirect to the provider, state bound to the browser by a cookie) → the provider
//! → FinishOidcSso (code redeemed with PKCE, ID token verified) or FinishSamlSso (signed
//! response verified) → person found or created, membership provisioned just in time, the
//! platform's own tokens issued → the console's `/sso` page with a one-time ticket →
//! ExchangeSsoTicket. Each later refresh of an OpenID Connect session asks the provider again,
//! so a person disabled there loses access at the next one; SAML has no such back channel, so
//! a SAML session must go back to its provider when the provider's session ends (at most an
//! hour unless the assertion says otherwise).

pub(crate) mod dns;
pub(crate) mod oidc;
pub(crate) mod saml;
pub(crate) mod store;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use complianceiq_kit::auth::Identity;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::crypto::{random_token, sha256_hex};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::{OrganizationId, UserId};
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::auth::v1::{
    AddSsoDomainRequest, ExchangeSsoTicketRequest, FinishOidcSsoRequest, FinishSamlSsoRequest, GroupRoleMapping,
    OidcProvider, SamlProvider, SsoConfig, SsoDomain, StartSsoRequest, TokenPair, UpdateSsoConfigRequest, sso_config,
};
use complianceiq_proto::complianceiq::events::v1::UserRegistered;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::organization::v1::ProvisionSsoMemberRequest;
use complianceiq_proto::complianceiq::user::v1::ApplyProviderRolesRequest;
use complianceiq_proto::google::api::HttpBody;
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};

use crate::api::{AuthApi, SignInOrigin};
use crate::store::{self as account_store, Account, Membership, State};
use store::{Domain, GroupRoles, SsoSession, StoredProvider};

/// A sign-in must come back from the provider within this.
const STATE_LIFETIME: Duration = Duration::from_secs(600);
/// A ticket is redeemed by the console right after the redirect.
const TICKET_LIFETIME: Duration = Duration::from_secs(60);
/// Without a provider refresh token, the provider is trusted this long after sign-in.
const DEFAULT_PROVIDER_SECONDS: u64 = 3600;
/// How long a first sign-in waits for its new membership to reach this module.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(10);
const COOKIE: &str = "ciq_sso";
const TXT_PREFIX: &str = "_complianceiq-verification";
const TXT_VALUE_PREFIX: &str = "complianceiq-verification=";
const DEFAULT_GROUPS_CLAIM: &str = "groups";
const MAX_MAPPINGS: usize = 100;
const MAX_SCOPES: usize = 20;
/// Metadata published at a URL is fetched again after this.
const METADATA_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// After a signature that does not verify, metadata is fetched again at most this often.
const METADATA_RETRY: Duration = Duration::from_secs(60);

/// What StartSso keeps until the provider sends the browser back.
#[derive(Serialize, Deserialize)]
struct PendingSignIn {
    organization: String,
    /// OpenID Connect.
    nonce: String,
    pkce_verifier: String,
    /// SAML: the AuthnRequest's id, which the response must answer.
    #[serde(default)]
    saml_request_id: String,
    /// SHA-256 of the browser cookie's value.
    browser: String,
}

/// A person the identity provider vouched for.
#[derive(Debug)]
pub struct VouchedPerson {
    pub subject: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
    /// OpenID Connect: the provider's refresh token, asked again at each refresh.
    pub refresh_token: Option<String>,
    /// How long the provider vouches without being asked again, if it said.
    pub expires_in: Option<Duration>,
}

fn sso_error(reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::FailedPrecondition { reason, message: message.into() }
}

fn refused(reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Unauthenticated { reason, message: message.into() }
}

fn not_configured(what: &str) -> ApiError {
    sso_error(
        "SSO_NOT_CONFIGURED",
        format!("no organization signs in {what} through single sign-on; sign in with your password"),
    )
}

/// A redirect for the browser (the edge answers 303 with `location`).
fn redirect(location: &str, cookie: Option<String>) -> tonic::Response<HttpBody> {
    let mut response = tonic::Response::new(HttpBody {
        content_type: "text/plain; charset=utf-8".into(),
        data: format!("Continue at {location}\n").into_bytes(),
        extensions: Vec::new(),
    });
    let metadata = response.metadata_mut();
    if let Ok(value) = location.parse() {
        metadata.insert("location", value);
    }
    if let Some(value) = cookie.and_then(|cookie| cookie.parse().ok()) {
        metadata.append("set-cookie", value);
    }
    response
}

fn cookie_value(metadata: &MetadataMap, name: &str) -> Option<String> {
    metadata.get_all("cookie").iter().filter_map(|value| value.to_str().ok()).find_map(|header| {
        header.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_string())
        })
    })
}

/// A domain name as claimed: lower-case labels of letters, digits and hyphens, at least two.
fn normalized_domain(field: &str, value: &str) -> Result<String, ApiError> {
    let domain = value.trim().trim_end_matches('.').to_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let valid = domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(domain)
    } else {
        Err(ApiError::invalid_field(
            field,
            "INVALID_FORMAT",
            format!("{field} must be a domain name such as example.com"),
        ))
    }
}

fn domain_message(domain: &Domain) -> SsoDomain {
    SsoDomain {
        domain: domain.domain.clone(),
        verified: domain.verified_at.is_some(),
        verification_record_name: format!("{TXT_PREFIX}.{}", domain.domain),
        verification_record_value: format!("{TXT_VALUE_PREFIX}{}", domain.token),
        verify_time: time::to_optional_timestamp(domain.verified_at),
    }
}

fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map(|(_, domain)| domain).unwrap_or_default()
}

/// The roles a person gets at their first sign-in: the defaults and those of their groups.
fn granted_roles(provider: &StoredProvider, groups: &[String]) -> Vec<String> {
    let roles: BTreeSet<String> =
        provider.default_role_ids.iter().cloned().chain(mapped_roles(provider, groups)).collect();
    roles.into_iter().collect()
}

/// The roles the person's groups map to.
fn mapped_roles(provider: &StoredProvider, groups: &[String]) -> Vec<String> {
    let roles: BTreeSet<String> = provider
        .group_role_mappings
        .iter()
        .filter(|mapping| groups.contains(&mapping.group))
        .flat_map(|mapping| mapping.role_ids.iter().cloned())
        .collect();
    roles.into_iter().collect()
}

fn role_ids(field: &str, values: &[String], violations: &mut FieldViolations) -> Vec<String> {
    let mut ids = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let id = violations.uuid(&format!("{field}[{index}]"), value);
        if !id.is_empty() && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

fn groups_name(configured: &str) -> String {
    Some(configured.trim()).filter(|name| !name.is_empty()).unwrap_or(DEFAULT_GROUPS_CLAIM).into()
}

impl AuthApi {
    fn redirect_uri(&self) -> String {
        format!("{}/api/v1/auth/sso/oidc/callback", self.public_url.trim_end_matches('/'))
    }

    fn saml_urls(&self, organization: &str) -> saml::ServiceProviderUrls {
        let base = self.public_url.trim_end_matches('/');
        saml::ServiceProviderUrls {
            entity_id: format!("{base}/api/v1/auth/sso/saml/{organization}/metadata"),
            acs_url: format!("{base}/api/v1/auth/sso/saml/acs"),
        }
    }

    fn secret_context(organization: &str) -> String {
        format!("sso:{organization}")
    }

    async fn stored_provider(&self, organization: OrganizationId) -> Result<Option<StoredProvider>, ApiError> {
        let mut tx = self.database.read(organization).await?;
        let provider = store::provider(&mut tx).await?;
        tx.commit().await?;
        Ok(provider)
    }

    async fn discovered(
        &self,
        organization: &str,
        stored: &StoredProvider,
        discovery: oidc::Discovery,
    ) -> Result<oidc::Provider, ApiError> {
        let secret = self
            .secrets
            .open(&stored.client_secret, &Self::secret_context(organization))
            .map_err(|error| ApiError::internal(error.to_string()))?;
        let secret = String::from_utf8(secret).map_err(|_| ApiError::internal("stored client secret"))?;
        oidc::Provider::discover(
            &self.sso.http,
            discovery,
            &stored.issuer,
            &stored.client_id,
            &secret,
            &self.redirect_uri(),
        )
        .await
    }

    async fn config_message(&self, organization: OrganizationId) -> Result<SsoConfig, ApiError> {
        let provider = self.stored_provider(organization).await?;
        let mut tx = self.database.global_read().await?;
        let domains = store::domains(&mut tx, &organization.to_string()).await?;
        tx.commit().await?;
        let mut config = SsoConfig {
            org_id: organization.to_string(),
            domains: domains.iter().map(domain_message).collect(),
            redirect_uri: self.redirect_uri(),
            ..Default::default()
        };
        if let Some(provider) = provider {
            let urls = self.saml_urls(&organization.to_string());
            config.provider = Some(match provider.saml_metadata {
                Some(metadata) => sso_config::Provider::Saml(SamlProvider {
                    idp_metadata_xml: metadata,
                    idp_entity_id: provider.issuer,
                    groups_attribute: provider.groups_claim,
                    sp_entity_id: urls.entity_id,
                    acs_url: urls.acs_url,
                    idp_metadata_url: provider.saml_metadata_url.unwrap_or_default(),
                    metadata_fetch_time: time::to_optional_timestamp(provider.saml_fetched_at),
                }),
                None => sso_config::Provider::Oidc(OidcProvider {
                    issuer: provider.issuer,
                    client_id: provider.client_id,
                    client_secret: String::new(),
                    client_secret_set: true,
                    extra_scopes: provider.extra_scopes,
                    groups_claim: provider.groups_claim,
                }),
            });
            config.require_sso = provider.require_sso;
            config.default_role_ids = provider.default_role_ids;
            config.group_role_mappings = provider
                .group_role_mappings
                .into_iter()
                .map(|mapping| GroupRoleMapping { group: mapping.group, role_ids: mapping.role_ids })
                .collect();
            config.update_time = Some(time::to_timestamp(provider.updated_at));
        }
        Ok(config)
    }

    pub(crate) async fn get_sso_config(&self, identity: &Identity, org_id: &str) -> Result<SsoConfig, ApiError> {
        let organization = identity.require_tenant(OrganizationId::parse_field("org_id", org_id)?)?;
        self.config_message(organization).await
    }

    pub(crate) async fn update_sso_config(
        &self,
        identity: &Identity,
        authorization: Option<MetadataValue<Ascii>>,
        request: UpdateSsoConfigRequest,
    ) -> Result<SsoConfig, ApiError> {
        let organization = identity.require_tenant(OrganizationId::parse_field("org_id", &request.org_id)?)?;
        let key = organization.to_string();
        let config = request.config.unwrap_or_default();
        let mut violations = FieldViolations::default();
        let existing = self.stored_provider(organization).await?;
        let mut stored = match config.provider {
            Some(sso_config::Provider::Oidc(oidc)) => {
                self.oidc_settings(&key, oidc, existing.as_ref(), &mut violations)
            }
            Some(sso_config::Provider::Saml(saml)) => self.saml_settings(saml, &mut violations).await,
            None => {
                violations.add(
                    "config.oidc",
                    "REQUIRED",
                    "config.oidc or config.saml is required: the OpenID Connect or SAML identity provider",
                );
                StoredProvider::default()
            }
        };
        stored.default_role_ids = role_ids("config.default_role_ids", &config.default_role_ids, &mut violations);
        if config.group_role_mappings.len() > MAX_MAPPINGS {
            violations.add("config.group_role_mappings", "TOO_MANY", format!("at most {MAX_MAPPINGS} mappings"));
        }
        for (index, mapping) in config.group_role_mappings.iter().enumerate() {
            let field = format!("config.group_role_mappings[{index}]");
            violations.text(&format!("{field}.group"), &mapping.group, 200);
            if mapping.role_ids.is_empty() {
                violations.required(&format!("{field}.role_ids"));
            }
            let roles = role_ids(&format!("{field}.role_ids"), &mapping.role_ids, &mut violations);
            stored.group_role_mappings.push(GroupRoles { group: mapping.group.trim().to_string(), role_ids: roles });
        }
        violations.check()?;
        let mut named: Vec<(String, &String)> = stored
            .default_role_ids
            .iter()
            .enumerate()
            .map(|(index, id)| (format!("config.default_role_ids[{index}]"), id))
            .collect();
        for (index, mapping) in stored.group_role_mappings.iter().enumerate() {
            for (inner, id) in mapping.role_ids.iter().enumerate() {
                named.push((format!("config.group_role_mappings[{index}].role_ids[{inner}]"), id));
            }
        }
        self.check_grantable_roles(identity, authorization, &named).await?;

        let mut global = self.database.global_read().await?;
        let domains = store::domains(&mut global, &key).await?;
        global.commit().await?;
        if config.require_sso && !domains.iter().any(|domain| domain.verified_at.is_some()) {
            return Err(sso_error(
                "NO_VERIFIED_DOMAIN",
                "verify an email domain before requiring single sign-on; otherwise nobody could sign in",
            ));
        }
        let now = time::now_micros();
        stored.require_sso = config.require_sso;
        stored.created_at = existing.as_ref().map(|provider| provider.created_at).unwrap_or(now);
        stored.updated_at = now;
        if stored.saml_metadata.is_none() {
            // A provider that cannot be discovered is refused now, not at someone's sign-in.
            self.discovered(&key, &stored, oidc::Discovery::Fresh).await?;
        }
        let mut tx = self.database.write(organization).await?;
        store::save_provider(&mut tx, &stored).await?;
        tx.commit().await?;
        let mut global = self.database.global_write().await?;
        store::set_require_sso(&mut global, &key, stored.require_sso, now).await?;
        global.commit().await?;
        let protocol = if stored.saml_metadata.is_some() { "saml" } else { "oidc" };
        tracing::info!(organization_id = %organization, protocol, require_sso = stored.require_sso, "single sign-on configured");
        self.config_message(organization).await
    }

    /// The roles a configuration grants must be the organization's, and the admin configuring
    /// it must hold every permission they give (else single sign-on would be a way to grant
    /// oneself more): asked of the user service as the caller, as invitations are.
    async fn check_grantable_roles(
        &self,
        identity: &Identity,
        authorization: Option<MetadataValue<Ascii>>,
        named: &[(String, &String)],
    ) -> Result<(), ApiError> {
        if named.is_empty() {
            return Ok(());
        }
        let known =
            complianceiq_kit::roles::as_caller(&self.sso.users, authorization, "mapping groups to roles").await?;
        let mut violations = FieldViolations::default();
        for (field, id) in named {
            match known.iter().find(|role| &&role.id == id) {
                None => violations.add(field, "NOT_FOUND", format!("{field} is not a role of this organization")),
                Some(role) if role.permissions.iter().any(|p| !identity.has_permission(p)) => {
                    return Err(ApiError::PermissionDenied {
                        reason: "CANNOT_GRANT",
                        message: format!(
                            "single sign-on cannot grant the role {:?}: it gives permissions you do not hold",
                            role.name
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        violations.check()
    }

    /// A SAML provider's settings: its metadata (given, or fetched from its URL now) must name
    /// an entity, a redirect sign-on service and a signing certificate.
    async fn saml_settings(&self, saml: SamlProvider, violations: &mut FieldViolations) -> StoredProvider {
        let url = saml.idp_metadata_url.trim().to_string();
        let (field, metadata, fetched_at) = if url.is_empty() {
            ("config.saml.idp_metadata_xml", saml.idp_metadata_xml.trim().to_string(), None)
        } else {
            let field = "config.saml.idp_metadata_url";
            violations.text(field, &url, 2000);
            match self.sso.http.get_document(&url).await {
                Ok(document) => (field, document.trim().to_string(), Some(time::now_micros())),
                Err(problem) => {
                    violations.add(field, "INVALID", format!("{field}: {problem}"));
                    (field, String::new(), None)
                }
            }
        };
        let mut issuer = String::new();
        if metadata.is_empty() && url.is_empty() {
            violations.add(
                field,
                "REQUIRED",
                "config.saml.idp_metadata_xml or config.saml.idp_metadata_url is required",
            );
        } else if metadata.len() > saml::MAX_METADATA_BYTES {
            violations.add(field, "TOO_LONG", format!("the metadata is at most {} bytes", saml::MAX_METADATA_BYTES));
        } else if !metadata.is_empty() {
            match saml::IdentityProvider::from_metadata(&metadata) {
                Ok(provider) => issuer = provider.entity_id,
                Err(problem) => violations.add(field, "INVALID", format!("{field}: {problem}")),
            }
        }
        violations.max_chars("config.saml.groups_attribute", &saml.groups_attribute, 200);
        StoredProvider {
            issuer,
            groups_claim: groups_name(&saml.groups_attribute),
            saml_metadata: Some(metadata),
            saml_metadata_url: (!url.is_empty()).then_some(url),
            saml_fetched_at: fetched_at,
            ..StoredProvider::default()
        }
    }

    /// The organization's SAML provider, from its stored metadata; metadata published at a URL
    /// is fetched again once a day, or at once when `signature_failed` (at most once a minute
    /// per organization: a forged response cannot make the platform fetch on every post). A
    /// fetch that fails, or brings metadata that does not parse, keeps the stored metadata.
    async fn saml_provider(
        &self,
        organization: OrganizationId,
        stored: &mut StoredProvider,
        signature_failed: bool,
    ) -> Result<saml::IdentityProvider, ApiError> {
        let now = time::now_micros();
        if let Some(url) = stored.saml_metadata_url.clone() {
            let stale = stored.saml_fetched_at.is_none_or(|at| now - at > METADATA_REFRESH.as_micros() as i64);
            let due = stale
                || (signature_failed
                    && self
                        .cache
                        .set_if_absent(&format!("saml-metadata-fetch:{organization}"), b"1", METADATA_RETRY)
                        .await?);
            if due {
                match self.sso.http.get_document(&url).await.and_then(|document| {
                    saml::IdentityProvider::from_metadata(&document).map(|provider| (document, provider))
                }) {
                    Ok((document, provider)) => {
                        stored.saml_metadata = Some(document);
                        stored.issuer = provider.entity_id.clone();
                        stored.saml_fetched_at = Some(now);
                        let mut tx = self.database.write(organization).await?;
                        store::save_provider(&mut tx, stored).await?;
                        tx.commit().await?;
                        tracing::info!(organization_id = %organization, "SAML metadata fetched again");
                        return Ok(provider);
                    }
                    Err(problem) => {
                        tracing::warn!(organization_id = %organization, %problem, "SAML metadata could not be fetched again; the stored metadata stays");
                    }
                }
            }
        }
        saml::IdentityProvider::from_metadata(stored.saml_metadata.as_deref().unwrap_or_default())
            .map_err(ApiError::internal)
    }

    /// An OpenID Connect provider's settings, checked; an empty secret keeps the stored one.
    fn oidc_settings(
        &self,
        organization: &str,
        oidc: OidcProvider,
        existing: Option<&StoredProvider>,
        violations: &mut FieldViolations,
    ) -> StoredProvider {
        violations.text("config.oidc.issuer", &oidc.issuer, 500);
        if !oidc.issuer.trim().is_empty()
            && let Err(problem) = self.sso.http.check_issuer(oidc.issuer.trim())
        {
            violations.add("config.oidc.issuer", "INVALID", format!("config.oidc.issuer: {problem}"));
        }
        violations.text("config.oidc.client_id", &oidc.client_id, 255);
        violations.max_chars("config.oidc.client_secret", &oidc.client_secret, 1000);
        if oidc.extra_scopes.len() > MAX_SCOPES {
            violations.add("config.oidc.extra_scopes", "TOO_MANY", format!("at most {MAX_SCOPES} extra scopes"));
        }
        for (index, scope) in oidc.extra_scopes.iter().enumerate() {
            let valid = !scope.is_empty()
                && scope.len() <= 100
                && scope.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !valid {
                violations.add(
                    &format!("config.oidc.extra_scopes[{index}]"),
                    "INVALID_FORMAT",
                    "a scope is 1 to 100 printable characters without spaces, quotes or backslashes",
                );
            }
        }
        violations.max_chars("config.oidc.groups_claim", &oidc.groups_claim, 100);
        // A switch from SAML needs a secret: there is no stored one to keep.
        let kept_secret = existing.filter(|provider| provider.saml_metadata.is_none()).map(|p| p.client_secret.clone());
        let client_secret = match (oidc.client_secret.is_empty(), kept_secret) {
            (false, _) => self.secrets.seal(oidc.client_secret.as_bytes(), &Self::secret_context(organization)),
            (true, Some(kept)) => kept,
            (true, None) => {
                violations.add(
                    "config.oidc.client_secret",
                    "REQUIRED",
                    "config.oidc.client_secret is required when the provider is first configured",
                );
                String::new()
            }
        };
        StoredProvider {
            issuer: oidc.issuer.trim().trim_end_matches('/').to_string(),
            client_id: oidc.client_id.trim().to_string(),
            client_secret,
            extra_scopes: oidc.extra_scopes,
            groups_claim: groups_name(&oidc.groups_claim),
            ..StoredProvider::default()
        }
    }

    pub(crate) async fn delete_sso_config(&self, identity: &Identity, org_id: &str) -> Result<(), ApiError> {
        let organization = identity.require_tenant(OrganizationId::parse_field("org_id", org_id)?)?;
        let mut tx = self.database.write(organization).await?;
        if !store::delete_provider(&mut tx).await? {
            return Err(ApiError::not_found("SsoConfig", format!("organizations/{organization}/sso")));
        }
        tx.commit().await?;
        let key = organization.to_string();
        let now = time::now_micros();
        let mut global = self.database.global_write().await?;
        store::set_require_sso(&mut global, &key, false, now).await?;
        let mut issued = Vec::new();
        for family in store::session_families(&mut global, &key).await? {
            issued.extend(
                account_store::revoke(&mut global, account_store::Sessions::Family(&family), "sso_removed", now)
                    .await?,
            );
        }
        global.commit().await?;
        self.revoke_access(&issued).await?;
        tracing::info!(organization_id = %organization, "single sign-on removed");
        Ok(())
    }

    pub(crate) async fn add_sso_domain(
        &self,
        identity: &Identity,
        request: AddSsoDomainRequest,
    ) -> Result<SsoDomain, ApiError> {
        let organization = identity.require_tenant(OrganizationId::parse_field("org_id", &request.org_id)?)?;
        let domain = Domain {
            organization_id: organization.to_string(),
            domain: normalized_domain("domain", &request.domain)?,
            token: random_token(),
            verified_at: None,
        };
        let mut tx = self.database.global_write().await?;
        if !store::insert_domain(&mut tx, &domain, time::now_micros()).await? {
            return Err(ApiError::AlreadyExists {
                resource_type: "SsoDomain",
                name: domain.domain,
                message: "this organization already claimed the domain".into(),
            });
        }
        tx.commit().await?;
        Ok(domain_message(&domain))
    }

    async fn claimed_domain(&self, organization: OrganizationId, domain: &str) -> Result<Domain, ApiError> {
        let domain = normalized_domain("domain", domain)?;
        let mut tx = self.database.global_read().await?;
        let found = store::domains(&mut tx, &organization.to_string()).await?.into_iter().find(|d| d.domain == domain);
        tx.commit().await?;
        found.ok_or_else(|| ApiError::not_found("SsoDomain", domain))
    }

    pub(crate) async fn verify_sso_domain(
        &self,
        identity: &Identity,
        org_id: &str,
        domain: &str,
    ) -> Result<SsoDomain, ApiError> {
        let organization = identity.require_tenant(OrganizationId::parse_field("org_id", org_id)?)?;
        let mut claimed = self.claimed_domain(organization, domain).await?;
        if claimed.verified_at.is_some() {
            return Ok(domain_message(&claimed));
        }
        let server = self.sso.dns_server.ok_or_else(|| ApiError::Unavailable {
            reason: "DNS_UNAVAILABLE",
            message: "no DNS server is configured for domain verification".into(),
            retry_after: None,
        })?;
        let name = format!("{TXT_PREFIX}.{}", claimed.domain);
        let records = dns::txt_records(server, &name).await.map_err(|error| {
            ApiError::Unavailable {
                reason: "DNS_UNAVAILABLE",
                message: "the domain's DNS could not be asked right now; try again".into(),
                retry_after: Some(Duration::from_secs(10)),
            }
            .log_cause(&error)
        })?;
        let expected = format!("{TXT_VALUE_PREFIX}{}", claimed.token);
        if !records.iter().any(|record| record.trim() == expected) {
            return Err(sso_error(
                "DOMAIN_NOT_VERIFIED",
                format!(
                    "no TXT record \"{expected}\" at {name} yet ({} other records); DNS changes can take a while",
                    records.len()
                ),
            ));
        }
        let now = time::now_micros();
        let mut tx = self.database.global_write().await?;
        if store::verified_owner(&mut tx, &claimed.domain).await?.is_some_and(|owner| owner != claimed.organization_id)
        {
            return Err(sso_error("DOMAIN_CLAIMED", "another organization verified this domain first"));
        }
        store::mark_verified(&mut tx, &claimed.organization_id, &claimed.domain, now).await?;
        tx.commit().await?;
        claimed.verified_at = Some(now);
        tracing::info!(organization_id = %organization, domain = %claimed.domain, "single sign-on domain verified");
        Ok(domain_message(&claimed))
    }

    pub(crate) async fn remove_sso_domain(
        &self,
        identity: &Identity,
        org_id: &str,
        domain: &str,
    ) -> Result<(), ApiError> {
        let organization = identity.require_tenant(OrganizationId::parse_field("org_id", org_id)?)?;
        let claimed = self.claimed_domain(organization, domain).await?;
        let key = organization.to_string();
        let mut tx = self.database.global_write().await?;
        let verified_left = store::domains(&mut tx, &key)
            .await?
            .iter()
            .filter(|d| d.domain != claimed.domain && d.verified_at.is_some())
            .count();
        let required = self.stored_provider(organization).await?.is_some_and(|provider| provider.require_sso);
        if required && claimed.verified_at.is_some() && verified_left == 0 {
            return Err(sso_error(
                "LAST_VERIFIED_DOMAIN",
                "single sign-on is required and this is the last verified domain; turn require_sso off first",
            ));
        }
        store::delete_domain(&mut tx, &key, &claimed.domain).await?;
        tx.commit().await
    }

    /// StartSso: the organization's provider, and the browser sent to it.
    pub(crate) async fn start_sso(&self, request: StartSsoRequest) -> Result<tonic::Response<HttpBody>, ApiError> {
        let mut violations = FieldViolations::default();
        let email = (!request.email.is_empty())
            .then(|| complianceiq_kit::validate::email("email", &request.email, &mut violations));
        let requested =
            violations.optional_uuid("organization_id", &request.organization_id).map(OrganizationId::from_uuid);
        if email.is_none() && request.organization_id.is_empty() {
            violations.add("email", "REQUIRED", "email (or organization_id) is required");
        }
        violations.check()?;
        let organization = match (&email, requested) {
            (_, Some(organization)) => organization,
            (Some(email), None) => {
                let mut tx = self.database.global_read().await?;
                let owner = store::verified_owner(&mut tx, email_domain(email)).await?;
                tx.commit().await?;
                let owner = owner.ok_or_else(|| not_configured(&format!("for {}", email_domain(email))))?;
                OrganizationId::from_stored(&owner)?
            }
            (None, None) => unreachable!("checked above"),
        };
        let mut stored = self.stored_provider(organization).await?.ok_or_else(|| not_configured("there"))?;
        let key = organization.to_string();
        let browser = random_token();
        let mut pending = PendingSignIn {
            organization: key.clone(),
            nonce: String::new(),
            pkce_verifier: String::new(),
            saml_request_id: String::new(),
            browser: sha256_hex(browser.as_bytes()),
        };
        let (state, location) = match stored.saml_metadata.clone() {
            None => {
                let provider = self.discovered(&key, &stored, oidc::Discovery::Reuse).await?;
                let authorization = provider.authorize(&stored.extra_scopes, email.as_deref());
                pending.nonce = authorization.nonce;
                pending.pkce_verifier = authorization.pkce_verifier;
                (authorization.state, authorization.url)
            }
            Some(_) => {
                let provider = self.saml_provider(organization, &mut stored, false).await?;
                // An XML ID (an NCName): a letter or underscore first.
                pending.saml_request_id = format!("_{}", random_token());
                let relay_state = random_token();
                let url = provider.authn_request_url(
                    &self.saml_urls(&key),
                    &pending.saml_request_id,
                    &relay_state,
                    email.as_deref(),
                )?;
                (relay_state, url)
            }
        };
        let sealed = self.secrets.seal(&serde_json::to_vec(&pending).unwrap_or_default(), "sso-state");
        let state_key = format!("sso-state:{}", sha256_hex(state.as_bytes()));
        self.cache.set(&state_key, sealed.as_bytes(), STATE_LIFETIME).await?;
        let cookie = format!(
            "{COOKIE}={browser}; Path=/api/v1/auth/sso; Max-Age={}; HttpOnly; {}",
            STATE_LIFETIME.as_secs(),
            self.cookie_site(stored.saml_metadata.is_some())
        );
        Ok(redirect(location.as_str(), Some(cookie)))
    }

    /// The cookie's SameSite and Secure attributes. An OpenID Connect provider sends the browser
    /// back with a top-level GET, which carries a Lax cookie; a SAML provider's form posts
    /// cross-site, which carries only a `SameSite=None` cookie, and browsers take those only
    /// when Secure (served over https). Over plain http (development) the cookie stays Lax, which
    /// a provider on the same site (such as localhost) still satisfies.
    fn cookie_site(&self, cross_site_post: bool) -> &'static str {
        match (self.public_url.starts_with("https://"), cross_site_post) {
            (true, true) => "SameSite=None; Secure",
            (true, false) => "SameSite=Lax; Secure",
            (false, _) => "SameSite=Lax",
        }
    }

    /// The console's `/sso` page with a ticket, or with what went wrong; the cookie cleared.
    fn finished(&self, outcome: Result<String, ApiError>) -> tonic::Response<HttpBody> {
        let console = format!("{}/sso", self.public_url.trim_end_matches('/'));
        let clear = format!("{COOKIE}=; Path=/api/v1/auth/sso; Max-Age=0; HttpOnly; SameSite=Lax");
        match outcome {
            Ok(ticket) => redirect(&format!("{console}#ticket={ticket}"), Some(clear)),
            Err(error) => {
                let reason = error.reason();
                let message = match &error {
                    ApiError::Internal(_) => "the sign-in failed on our side; try again".to_string(),
                    other => other.to_string(),
                };
                tracing::warn!(%reason, %error, "single sign-on refused");
                let message: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
                redirect(&format!("{console}#error={reason}&message={message}"), Some(clear))
            }
        }
    }

    /// FinishOidcSso: a redirect to the console with a ticket, or with what went wrong.
    pub(crate) async fn finish_oidc_sso(
        &self,
        metadata: &MetadataMap,
        request: FinishOidcSsoRequest,
        origin: &SignInOrigin,
    ) -> tonic::Response<HttpBody> {
        self.finished(self.finish_oidc(metadata, request, origin).await)
    }

    /// FinishSamlSso: as FinishOidcSso, for a SAML provider's form post.
    pub(crate) async fn finish_saml_sso(
        &self,
        metadata: &MetadataMap,
        request: FinishSamlSsoRequest,
        origin: &SignInOrigin,
    ) -> tonic::Response<HttpBody> {
        self.finished(self.finish_saml(metadata, request, origin).await)
    }

    /// The sign-in StartSso began, taken once (a replayed answer finds nothing), in the browser
    /// that began it.
    async fn take_pending(&self, metadata: &MetadataMap, state: &str) -> Result<PendingSignIn, ApiError> {
        if state.is_empty() || state.len() > 512 {
            return Err(refused("SSO_STATE_INVALID", "the sign-in has no valid state; start again"));
        }
        let state_key = format!("sso-state:{}", sha256_hex(state.as_bytes()));
        let sealed = self.cache.get(&state_key).await?;
        let taken = self.cache.delete(&state_key).await?;
        let sealed = sealed
            .filter(|_| taken)
            .ok_or_else(|| refused("SSO_STATE_INVALID", "this sign-in expired or was already used; start again"))?;
        let pending: PendingSignIn = std::str::from_utf8(&sealed)
            .ok()
            .and_then(|sealed| self.secrets.open(sealed, "sso-state").ok())
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or_else(|| ApiError::internal("stored sign-in state"))?;
        let browser = cookie_value(metadata, COOKIE).map(|value| sha256_hex(value.as_bytes()));
        if browser.as_deref() != Some(pending.browser.as_str()) {
            return Err(refused(
                "SSO_BROWSER_MISMATCH",
                "this sign-in was started in another browser (or its cookie was blocked); start again",
            ));
        }
        Ok(pending)
    }

    async fn finish_oidc(
        &self,
        metadata: &MetadataMap,
        request: FinishOidcSsoRequest,
        origin: &SignInOrigin,
    ) -> Result<String, ApiError> {
        let pending = self.take_pending(metadata, &request.state).await?;
        if !pending.saml_request_id.is_empty() {
            return Err(refused("SSO_STATE_INVALID", "this sign-in was started with a SAML provider; start again"));
        }
        if !request.error.is_empty() {
            let detail: String = request.error_description.chars().take(300).collect();
            return Err(ApiError::PermissionDenied {
                reason: "SSO_PROVIDER_DENIED",
                message: format!("the identity provider refused the sign-in ({}): {detail}", request.error),
            });
        }
        if request.code.is_empty() || request.code.len() > 2048 {
            return Err(refused("SSO_CODE_MISSING", "the identity provider sent no authorization code"));
        }
        let organization = OrganizationId::from_stored(&pending.organization)?;
        let stored = self
            .stored_provider(organization)
            .await?
            .filter(|stored| stored.saml_metadata.is_none())
            .ok_or_else(|| not_configured("in this organization with OpenID Connect any more"))?;
        let provider = self.discovered(&pending.organization, &stored, oidc::Discovery::Fresh).await?;
        let person = provider
            .finish(&self.sso.http, &request.code, &pending.pkce_verifier, &pending.nonce, &stored.groups_claim)
            .await?;
        let lifetime = person.expires_in.map(|d| d.as_secs()).unwrap_or(DEFAULT_PROVIDER_SECONDS);
        let provider_expires_at = time::now_micros() + lifetime as i64 * 1_000_000;
        self.complete_sign_in(organization, &stored, &person, provider_expires_at, origin).await
    }

    async fn finish_saml(
        &self,
        metadata: &MetadataMap,
        request: FinishSamlSsoRequest,
        origin: &SignInOrigin,
    ) -> Result<String, ApiError> {
        let form = request.form.unwrap_or_default();
        if form.data.len() > saml::MAX_RESPONSE_BYTES {
            return Err(ApiError::invalid_field(
                "form",
                "TOO_LONG",
                format!("the posted form is larger than {} bytes", saml::MAX_RESPONSE_BYTES),
            ));
        }
        let mut saml_response = None;
        let mut relay_state = None;
        for (name, value) in url::form_urlencoded::parse(&form.data) {
            match &*name {
                "SAMLResponse" => saml_response = Some(value.into_owned()),
                "RelayState" => relay_state = Some(value.into_owned()),
                _ => {}
            }
        }
        let pending = self.take_pending(metadata, relay_state.as_deref().unwrap_or_default()).await?;
        if pending.saml_request_id.is_empty() {
            return Err(refused("SSO_STATE_INVALID", "this sign-in was not started with a SAML provider; start again"));
        }
        let saml_response = saml_response
            .filter(|response| !response.is_empty())
            .ok_or_else(|| refused("SAML_RESPONSE_MISSING", "the identity provider posted no SAMLResponse"))?;
        let organization = OrganizationId::from_stored(&pending.organization)?;
        let stored = self
            .stored_provider(organization)
            .await?
            .filter(|stored| stored.saml_metadata.is_some())
            .ok_or_else(|| not_configured("in this organization with SAML any more"))?;
        // libxml2 and libxmlsec1 parse and verify: CPU work off the async workers.
        let verify = |provider: saml::IdentityProvider| {
            let urls = self.saml_urls(&pending.organization);
            let (response, request_id) = (saml_response.clone(), pending.saml_request_id.clone());
            let groups_attribute = stored.groups_claim.clone();
            async move {
                tokio::task::spawn_blocking(move || provider.verify(&urls, &response, &request_id, &groups_attribute))
                    .await
                    .map_err(|error| ApiError::internal(format!("SAML verification: {error}")))
            }
        };
        let mut current = stored.clone();
        let provider = self.saml_provider(organization, &mut current, false).await?;
        let mut outcome = verify(provider).await?;
        if outcome.as_ref().err().is_some_and(|refusal| refusal.signature) && current.saml_metadata_url.is_some() {
            // Perhaps the provider has a new certificate: its published metadata is asked.
            let fetched = current.saml_fetched_at;
            let provider = self.saml_provider(organization, &mut current, true).await?;
            if current.saml_fetched_at != fetched {
                outcome = verify(provider).await?;
            }
        }
        let verified = outcome.map_err(|refusal| refusal.error)?;
        // Replay: an assertion id is accepted once for as long as the assertion is valid.
        let replay_key = format!("saml-assertion:{}:{}", pending.organization, sha256_hex(verified.id.as_bytes()));
        if !self.cache.set_if_absent(&replay_key, b"1", saml::until(verified.not_on_or_after)).await? {
            return Err(ApiError::PermissionDenied {
                reason: "SAML_ASSERTION_REPLAYED",
                message: "this assertion was already used to sign in; start again".into(),
            });
        }
        let now = time::now_micros();
        let provider_expires_at = verified
            .session_not_on_or_after
            .map(|end| end.timestamp_micros())
            .unwrap_or(now + DEFAULT_PROVIDER_SECONDS as i64 * 1_000_000);
        self.complete_sign_in(organization, &stored, &verified.person, provider_expires_at, origin).await
    }

    /// After the provider vouched for the person: their address must be in a domain the
    /// organization verified; account and membership found or made; the platform's tokens
    /// issued and handed over as a one-time ticket.
    async fn complete_sign_in(
        &self,
        organization: OrganizationId,
        stored: &StoredProvider,
        person: &VouchedPerson,
        provider_expires_at: i64,
        origin: &SignInOrigin,
    ) -> Result<String, ApiError> {
        let context = &origin.context;
        let key = organization.to_string();
        let mut tx = self.database.global_read().await?;
        let owner = store::verified_owner(&mut tx, email_domain(&person.email)).await?;
        tx.commit().await?;
        if owner.as_deref() != Some(key.as_str()) {
            return Err(ApiError::PermissionDenied {
                reason: "SSO_EMAIL_DOMAIN",
                message: format!(
                    "{} is not in a domain this organization verified; ask its admin to verify the domain",
                    person.email
                ),
            });
        }
        let mut account = self.sso_account(person, context).await?;
        let membership = self.sso_membership(&account, organization, stored, &person.groups).await?;
        if membership.suspended {
            return Err(ApiError::PermissionDenied {
                reason: "ORGANIZATION_SUSPENDED",
                message: format!("organization {organization} is suspended; contact ComplianceIQ support"),
            });
        }
        let now = time::now_micros();
        let mut tx = self.database.global_write().await?;
        let tokens = self.issue(&mut tx, &mut account, Some(&membership), None, now).await?;
        let family = account_store::refresh_token_by_hash(&mut tx, &sha256_hex(tokens.refresh_token.as_bytes()))
            .await?
            .map(|token| token.family_id)
            .ok_or_else(|| ApiError::internal("the new session is missing"))?;
        let session = SsoSession {
            family_id: family,
            organization_id: key.clone(),
            user_id: account.id.to_string(),
            subject: person.subject.clone(),
            provider_grant: person
                .refresh_token
                .as_ref()
                .map(|grant| self.secrets.seal(grant.as_bytes(), &Self::secret_context(&key))),
            provider_expires_at,
        };
        store::insert_session(&mut tx, &session, now).await?;
        let method = if stored.saml_metadata.is_some() { "saml" } else { "oidc" };
        crate::api::record_sign_in(&mut tx, &account, &membership, method, origin, now).await?;
        tx.commit().await?;
        let ticket = random_token();
        let sealed = self.secrets.seal(&tokens.encode_to_vec(), "sso-ticket");
        self.cache
            .set(&format!("sso-ticket:{}", sha256_hex(ticket.as_bytes())), sealed.as_bytes(), TICKET_LIFETIME)
            .await?;
        tracing::info!(user_id = %account.id, organization_id = %organization, "single sign-on");
        Ok(ticket)
    }

    /// GetSamlMetadata: the organization's service provider metadata, for its SAML provider.
    pub(crate) fn saml_metadata(&self, organization_id: &str) -> Result<HttpBody, ApiError> {
        let organization = OrganizationId::parse_field("organization_id", organization_id)?;
        let xml = saml::service_provider_metadata(&self.saml_urls(&organization.to_string()))?;
        Ok(HttpBody {
            content_type: "application/samlmetadata+xml".into(),
            data: xml.into_bytes(),
            extensions: Vec::new(),
        })
    }

    /// The person's account: found by email, or made now (no password; the provider verified
    /// the address).
    async fn sso_account(&self, person: &VouchedPerson, context: &RequestContext) -> Result<Account, ApiError> {
        let mut tx = self.database.global_write().await?;
        if let Some(mut account) = account_store::account_by_email(&mut tx, &person.email).await? {
            match account.state {
                _ if account.staff => {
                    return Err(ApiError::PermissionDenied {
                        reason: "STAFF_ACCOUNT",
                        message: "staff accounts sign in with their password and second factor".into(),
                    });
                }
                State::Active => {}
                State::PendingVerification => {
                    account.state = State::Active;
                    account.email_verified = true;
                    account.updated_at = time::now_micros();
                    account_store::update_account(&mut tx, &account).await?;
                }
                State::Disabled => {
                    return Err(ApiError::PermissionDenied {
                        reason: "ACCOUNT_DISABLED",
                        message: "this account is disabled".into(),
                    });
                }
                State::Locked => {
                    return Err(sso_error("ACCOUNT_LOCKED", "this account is locked; reset the password to unlock it"));
                }
            }
            tx.commit().await?;
            return Ok(account);
        }
        let now = time::now_micros();
        let account = Account {
            id: UserId::generate(),
            email: person.email.clone(),
            full_name: person.name.chars().take(200).collect(),
            // Nobody knows this password; a password sign-in needs a reset first.
            password_hash: crate::password::hash(random_token()).await?,
            state: State::Active,
            email_verified: true,
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
        if !account_store::insert_account(&mut tx, &account).await? {
            // Made by a concurrent sign-in of the same person.
            drop(tx);
            let mut tx = self.database.global_read().await?;
            let found = account_store::account_by_email(&mut tx, &person.email).await?;
            tx.commit().await?;
            return found.ok_or_else(|| ApiError::internal("account vanished"));
        }
        let registered = UserRegistered {
            user_id: account.id.to_string(),
            email: account.email.clone(),
            full_name: account.full_name.clone(),
        };
        tx.emit(None, Payload::UserRegistered(registered), context).await?;
        tx.commit().await?;
        tracing::info!(user_id = %account.id, "account made by single sign-on");
        Ok(account)
    }

    /// The person's membership, provisioned on their first sign-in (with the roles of the
    /// configuration and their groups), once this module has recorded it. At later sign-ins
    /// the roles the group mappings name follow the person's groups.
    async fn sso_membership(
        &self,
        account: &Account,
        organization: OrganizationId,
        provider: &StoredProvider,
        groups: &[String],
    ) -> Result<Membership, ApiError> {
        let key = organization.to_string();
        if let Some(membership) = self.membership_in(account, &key).await? {
            if provider.group_role_mappings.is_empty() {
                return Ok(membership);
            }
            return self.follow_provider_groups(account, &key, provider, groups, membership).await;
        }
        let request = ProvisionSsoMemberRequest {
            organization_id: key.clone(),
            user_id: account.id.to_string(),
            email: account.email.clone(),
            role_ids: granted_roles(provider, groups),
        };
        self.sso.organizations.clone().provision_sso_member(request).await.map_err(|status| {
            ApiError::Unavailable {
                reason: "MEMBERSHIP_UNAVAILABLE",
                message: "your membership could not be set up right now; try again".into(),
                retry_after: Some(Duration::from_secs(2)),
            }
            .log_cause(&status.message().to_string())
        })?;
        // The membership reaches this module as an event (roles resolved by the user service).
        self.await_membership(account, &key, 0).await
    }

    async fn membership_in(&self, account: &Account, organization: &str) -> Result<Option<Membership>, ApiError> {
        let mut tx = self.database.global_read().await?;
        let memberships = account_store::active_memberships(&mut tx, account.id).await?;
        tx.commit().await?;
        Ok(memberships.into_iter().find(|m| m.organization_id == organization))
    }

    /// Waits (up to MEMBERSHIP_WAIT) for this module's copy of the membership, at `version` or
    /// later, to arrive from the user service.
    async fn await_membership(
        &self,
        account: &Account,
        organization: &str,
        version: i64,
    ) -> Result<Membership, ApiError> {
        let deadline = tokio::time::Instant::now() + MEMBERSHIP_WAIT;
        loop {
            if let Some(membership) = self.membership_in(account, organization).await?.filter(|m| m.version >= version)
            {
                return Ok(membership);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::Unavailable {
                    reason: "MEMBERSHIP_PENDING",
                    message: "your membership is being set up; sign in again in a moment".into(),
                    retry_after: Some(Duration::from_secs(2)),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A member's roles named by group mappings made to match their groups now (a person the
    /// provider moved out of a group loses its role at their next sign-in). Tokens wait for
    /// the change: none is issued with roles the groups no longer give.
    async fn follow_provider_groups(
        &self,
        account: &Account,
        organization: &str,
        provider: &StoredProvider,
        groups: &[String],
        membership: Membership,
    ) -> Result<Membership, ApiError> {
        let managed: BTreeSet<String> =
            provider.group_role_mappings.iter().flat_map(|mapping| mapping.role_ids.iter().cloned()).collect();
        let request = ApplyProviderRolesRequest {
            organization_id: organization.to_string(),
            user_id: account.id.to_string(),
            managed_role_ids: managed.into_iter().collect(),
            granted_role_ids: mapped_roles(provider, groups),
        };
        let applied = self.sso.users.clone().apply_provider_roles(request).await.map_err(|status| {
            ApiError::Unavailable {
                reason: "ROLES_UNAVAILABLE",
                message: "your roles could not be brought up to date right now; try again".into(),
                retry_after: Some(Duration::from_secs(2)),
            }
            .log_cause(&status.message().to_string())
        })?;
        let applied = applied.into_inner();
        if !applied.changed {
            return Ok(membership);
        }
        self.await_membership(account, organization, applied.authorization_version).await
    }

    pub(crate) async fn exchange_sso_ticket(&self, request: ExchangeSsoTicketRequest) -> Result<TokenPair, ApiError> {
        if request.ticket.is_empty() {
            return Err(ApiError::invalid_field("ticket", "REQUIRED", "ticket is required"));
        }
        let invalid = || refused("SSO_TICKET_INVALID", "the ticket is invalid, expired or already used; sign in again");
        if request.ticket.len() > 256 {
            return Err(invalid());
        }
        let key = format!("sso-ticket:{}", sha256_hex(request.ticket.as_bytes()));
        let sealed = self.cache.get(&key).await?;
        let taken = self.cache.delete(&key).await?;
        let sealed = sealed.filter(|_| taken).ok_or_else(invalid)?;
        let plain = std::str::from_utf8(&sealed)
            .ok()
            .and_then(|sealed| self.secrets.open(sealed, "sso-ticket").ok())
            .ok_or_else(|| ApiError::internal("stored ticket"))?;
        TokenPair::decode(plain.as_slice()).map_err(|_| ApiError::internal("stored ticket"))
    }

    /// At a refresh of a session that began with single sign-on: asks the provider whether
    /// the person still may sign in. Returns the session's organization and the provider's
    /// rotated grant to keep; a refusal ends the session.
    pub(crate) async fn check_sso_session(
        &self,
        family: &str,
        now: i64,
    ) -> Result<Option<(SsoSession, Option<String>)>, ApiError> {
        let mut tx = self.database.global_read().await?;
        let session = store::session(&mut tx, family).await?;
        tx.commit().await?;
        let Some(session) = session else { return Ok(None) };
        let organization = OrganizationId::from_stored(&session.organization_id)?;
        let ended = |reason: &'static str, message: &str| refused(reason, message.to_string());
        let Some(stored) = self.stored_provider(organization).await? else {
            self.end_session(family, now).await?;
            return Err(ended("SSO_REMOVED", "the organization's single sign-on was removed; sign in again"));
        };
        // A SAML provider (or one that replaced an OpenID Connect one) has no grant to ask.
        let Some(grant) = session.provider_grant.as_ref().filter(|_| stored.saml_metadata.is_none()) else {
            if session.provider_expires_at > now {
                return Ok(Some((session, None)));
            }
            self.end_session(family, now).await?;
            return Err(ended("SSO_REAUTHENTICATE", "sign in again through your identity provider"));
        };
        let context = Self::secret_context(&session.organization_id);
        let grant = self.secrets.open(grant, &context).map_err(|error| ApiError::internal(error.to_string()))?;
        let grant = String::from_utf8(grant).map_err(|_| ApiError::internal("stored provider grant"))?;
        let provider = self.discovered(&session.organization_id, &stored, oidc::Discovery::Reuse).await?;
        match provider.refresh(&self.sso.http, &grant).await? {
            oidc::RefreshOutcome::Active { refresh_token } => {
                let rotated = refresh_token.map(|token| self.secrets.seal(token.as_bytes(), &context));
                Ok(Some((session, rotated)))
            }
            oidc::RefreshOutcome::Ended(detail) => {
                tracing::info!(user_id = %session.user_id, %detail, "the identity provider ended a session");
                self.end_session(family, now).await?;
                Err(ended("SSO_ACCESS_ENDED", "your identity provider no longer lets you in; the session ended"))
            }
        }
    }

    async fn end_session(&self, family: &str, now: i64) -> Result<(), ApiError> {
        let mut tx = self.database.global_write().await?;
        let issued = account_store::revoke(&mut tx, account_store::Sessions::Family(family), "sso_ended", now).await?;
        tx.commit().await?;
        self.revoke_access(&issued).await
    }
}

/// Re-seals the providers' client secrets (organization by organization) and the sessions'
/// provider grants not under the current key; returns how many.
pub(crate) async fn reseal(
    database: &complianceiq_kit::db::ModuleDatabase,
    secrets: &complianceiq_kit::secrets::SecretBox,
) -> Result<u64, ApiError> {
    let current = format!("v1:{}:", secrets.current_key_id());
    let fresh = |sealed: &str, context: &str| {
        secrets
            .reseal(sealed, context)
            .map_err(|error| ApiError::internal(format!("{context}: {error} (is every old key still configured?)")))
    };
    let mut resealed = 0;
    let mut tx = database.global_read().await?;
    let organizations = store::organizations_with_policies(&mut tx).await?;
    tx.commit().await?;
    for organization in organizations {
        let context = AuthApi::secret_context(&organization);
        let mut tx = database.write(OrganizationId::from_stored(&organization)?).await?;
        let stale = store::provider(&mut tx)
            .await?
            .filter(|p| !p.client_secret.is_empty() && !p.client_secret.starts_with(&current));
        if let Some(mut provider) = stale
            && let Some(sealed) = fresh(&provider.client_secret, &context)?
        {
            provider.client_secret = sealed;
            store::save_provider(&mut tx, &provider).await?;
            resealed += 1;
        }
        tx.commit().await?;
    }
    let mut tx = database.global_write().await?;
    for (family, organization, grant) in store::grants_not_under(&mut tx, &current).await? {
        if let Some(sealed) = fresh(&grant, &AuthApi::secret_context(&organization))? {
            store::update_grant(&mut tx, &family, &sealed, time::now_micros()).await?;
            resealed += 1;
        }
    }
    tx.commit().await?;
    Ok(resealed)
}

/// How the auth module reaches providers, DNS and the organization service.
pub struct SsoParts {
    pub http: oidc::ProviderHttp,
    pub dns_server: Option<SocketAddr>,
    pub organizations:
        complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient<
            complianceiq_kit::mesh::MeshChannel,
        >,
    pub users: complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient<
        complianceiq_kit::mesh::MeshChannel,
    >,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_the_defaults_and_those_of_the_persons_groups() {
        let provider = StoredProvider {
            default_role_ids: vec!["b".into()],
            group_role_mappings: vec![
                GroupRoles { group: "grc-admins".into(), role_ids: vec!["a".into()] },
                GroupRoles { group: "auditors".into(), role_ids: vec!["c".into()] },
            ],
            ..StoredProvider::default()
        };
        assert_eq!(granted_roles(&provider, &["grc-admins".into()]), vec!["a", "b"]);
        assert_eq!(granted_roles(&provider, &[]), vec!["b"]);
    }

    #[test]
    fn domains_are_normalized_or_refused() {
        assert_eq!(normalized_domain("d", " Acme.COM. ").unwrap(), "acme.com");
        for bad in ["acme", "-a.com", "a..com", "a b.com", "ä.com", ""] {
            assert!(normalized_domain("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut metadata = MetadataMap::new();
        metadata.insert("cookie", "a=1; ciq_sso=xyz; b=2".parse().unwrap());
        assert_eq!(cookie_value(&metadata, COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&MetadataMap::new(), COOKIE), None);
    }
}
