-- auth_db holds per-person identity data: a person spans organizations, so these tables are
-- keyed by user, not tenant, and only the auth service reads them.
CREATE TABLE accounts (
    id                     TEXT    PRIMARY KEY,
    email                  TEXT    NOT NULL UNIQUE,
    full_name              TEXT    NOT NULL,
    password_hash          TEXT    NOT NULL,
    state                  TEXT    NOT NULL CHECK (state IN ('pending_verification', 'active', 'locked', 'disabled')),
    email_verified         BIGINT  NOT NULL CHECK (email_verified IN (0, 1)),
    mfa_enabled            BIGINT  NOT NULL CHECK (mfa_enabled IN (0, 1)),
    mfa_secret             TEXT,
    mfa_pending_secret     TEXT,
    mfa_pending_expires_at BIGINT,
    mfa_last_used_step     BIGINT,
    last_organization_id   TEXT,
    last_login_at          BIGINT,
    password_changed_at    BIGINT  NOT NULL,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL
);

-- One-time MFA recovery codes, stored as SHA-256 (they are random, so unsalted is enough).
CREATE TABLE recovery_codes (
    user_id   TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash TEXT   NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Refresh tokens, stored hashed. A family is one login session: every rotation adds a row
-- with the same family; presenting a rotated token again revokes the family.
CREATE TABLE refresh_tokens (
    id                TEXT   PRIMARY KEY,
    family_id         TEXT   NOT NULL,
    user_id           TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    organization_id   TEXT,
    token_hash        TEXT   NOT NULL UNIQUE,
    access_token_id   TEXT   NOT NULL,
    access_expires_at BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    rotated_at        BIGINT,
    revoked_at        BIGINT,
    revoke_reason     TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Single-use email verification and password reset tokens, stored hashed.
CREATE TABLE email_tokens (
    token_hash TEXT   PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    purpose    TEXT   NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);

-- The auth service's copy of what each person may do in each organization, kept from
-- user.authorization_changed events, so tokens are issued without calling other services.
CREATE TABLE account_memberships (
    user_id         TEXT   NOT NULL,
    organization_id TEXT   NOT NULL,
    roles           TEXT   NOT NULL,
    permissions     TEXT   NOT NULL,
    active          BIGINT NOT NULL CHECK (active IN (0, 1)),
    version         BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, organization_id)
);
