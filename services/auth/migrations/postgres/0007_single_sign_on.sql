-- Single sign-on. An organization's identity provider (OpenID Connect or SAML), one row each;
-- an OpenID Connect client secret is sealed with the platform's encryption key.
CREATE TABLE identity_providers (
    organization_id     TEXT   PRIMARY KEY,
    protocol            TEXT   NOT NULL CHECK (protocol IN ('oidc', 'saml')),
    issuer              TEXT   NOT NULL,
    client_id           TEXT   NOT NULL,
    client_secret       TEXT   NOT NULL,
    extra_scopes        TEXT   NOT NULL,
    groups_claim        TEXT   NOT NULL,
    require_sso         BIGINT NOT NULL CHECK (require_sso IN (0, 1)),
    default_role_ids    TEXT   NOT NULL,
    group_role_mappings TEXT   NOT NULL,
    -- SAML: the provider's metadata as the admin gave it (issuer holds its entity id).
    saml_metadata       TEXT,
    -- SAML: where the metadata is fetched from (daily, and on a signature that fails), and when.
    saml_metadata_url   TEXT,
    saml_fetched_at     BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
SELECT ciq_enable_tenant_isolation('identity_providers');

-- Email domains claimed for single sign-on. Not one organization's rows: a sign-in is routed
-- by its email's domain before any organization is known. A domain is verified (its DNS TXT
-- record carries the token) for one organization at most.
CREATE TABLE sso_domains (
    organization_id TEXT   NOT NULL,
    domain          TEXT   NOT NULL,
    token           TEXT   NOT NULL,
    verified_at     BIGINT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, domain)
);
CREATE UNIQUE INDEX sso_domains_verified ON sso_domains (domain) WHERE verified_at IS NOT NULL;

-- A session that began with single sign-on (one per refresh token family): the provider's
-- refresh token, sealed, asked again at each refresh so that a person disabled at the
-- provider loses access at the next one.
CREATE TABLE sso_sessions (
    family_id           TEXT   PRIMARY KEY,
    organization_id     TEXT   NOT NULL,
    user_id             TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    subject             TEXT   NOT NULL,
    provider_grant      TEXT,
    provider_expires_at BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX sso_sessions_organization ON sso_sessions (organization_id);

-- Members must sign in through the organization's identity provider.
ALTER TABLE organization_policies ADD COLUMN require_sso BIGINT NOT NULL DEFAULT 0 CHECK (require_sso IN (0, 1));
