-- Names and emails of registered people (from user.registered), to show in profiles. Per
-- person, not per tenant: it holds nothing about any organization.
CREATE TABLE people (
    user_id    TEXT   PRIMARY KEY,
    email      TEXT   NOT NULL,
    full_name  TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A person as seen inside one organization. full_name is empty until the person sets one
-- here; reads fall back to people.full_name.
CREATE TABLE user_profiles (
    organization_id       TEXT   NOT NULL,
    user_id               TEXT   NOT NULL,
    email                 TEXT   NOT NULL,
    full_name             TEXT   NOT NULL,
    job_title             TEXT   NOT NULL,
    phone_number          TEXT   NOT NULL,
    avatar_uri            TEXT   NOT NULL,
    state                 TEXT   NOT NULL CHECK (state IN ('active', 'suspended', 'removed')),
    timezone              TEXT   NOT NULL,
    locale                TEXT   NOT NULL,
    theme                 TEXT   NOT NULL,
    default_dashboard_id  TEXT   NOT NULL,
    weekly_digest         BIGINT NOT NULL CHECK (weekly_digest IN (0, 1)),
    authorization_version BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);

CREATE TABLE roles (
    id              TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    description     TEXT   NOT NULL,
    permissions     TEXT   NOT NULL,
    built_in        BIGINT NOT NULL CHECK (built_in IN (0, 1)),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE user_roles (
    organization_id TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    role_id         TEXT   NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    assigned_by     TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles (organization_id, role_id);

-- Tenant isolation: rows are visible only in a transaction scoped to their organization.
SELECT ciq_enable_tenant_isolation('user_profiles');
SELECT ciq_enable_tenant_isolation('roles');
SELECT ciq_enable_tenant_isolation('user_roles');
