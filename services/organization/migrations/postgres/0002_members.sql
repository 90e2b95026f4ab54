-- Memberships, including pending invitations (user_id is set when the invitation is accepted).
CREATE TABLE memberships (
    id                TEXT   PRIMARY KEY,
    organization_id   TEXT   NOT NULL,
    user_id           TEXT,
    email             TEXT   NOT NULL,
    state             TEXT   NOT NULL CHECK (state IN ('invited', 'active', 'removed')),
    role_ids          TEXT   NOT NULL,
    team_ids          TEXT   NOT NULL,
    invited_by        TEXT   NOT NULL,
    invited_at        BIGINT,
    invite_expires_at BIGINT,
    joined_at         BIGINT,
    removed_at        BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
-- One open membership per email and organization.
CREATE UNIQUE INDEX memberships_open_email ON memberships (organization_id, email) WHERE state <> 'removed';
CREATE INDEX memberships_user ON memberships (organization_id, user_id);
CREATE INDEX memberships_listing ON memberships (organization_id, created_at, id);

CREATE TABLE teams (
    id              TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    description     TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE team_members (
    organization_id TEXT   NOT NULL,
    team_id         TEXT   NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id         TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE subscriptions (
    organization_id          TEXT   PRIMARY KEY,
    plan                     TEXT   NOT NULL,
    state                    TEXT   NOT NULL CHECK (state IN ('trialing', 'active', 'past_due', 'canceled')),
    billing_provider         TEXT   NOT NULL,
    billing_email            TEXT   NOT NULL,
    external_customer_id     TEXT,
    external_subscription_id TEXT,
    current_period_start     BIGINT NOT NULL,
    current_period_end       BIGINT NOT NULL,
    cancel_at_period_end     BIGINT NOT NULL CHECK (cancel_at_period_end IN (0, 1)),
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);

-- Counts kept from other services' events: instances (period_start 0: a running total) and
-- analyses started per billing period.
CREATE TABLE usage_counters (
    organization_id TEXT   NOT NULL,
    metric          TEXT   NOT NULL,
    period_start    BIGINT NOT NULL,
    value           BIGINT NOT NULL,
    PRIMARY KEY (organization_id, metric, period_start)
);

-- Tenant isolation: rows are visible only in a transaction scoped to their organization.
SELECT ciq_enable_tenant_isolation('memberships');
SELECT ciq_enable_tenant_isolation('teams');
SELECT ciq_enable_tenant_isolation('team_members');
SELECT ciq_enable_tenant_isolation('subscriptions');
SELECT ciq_enable_tenant_isolation('usage_counters');
