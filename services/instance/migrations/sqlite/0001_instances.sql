-- ServiceNow instances of an organization. Credentials are sealed (AES-256-GCM under a key
-- id, bound to the instance) and never leave the service.
CREATE TABLE instances (
    id                    TEXT   PRIMARY KEY,
    organization_id       TEXT   NOT NULL,
    name                  TEXT   NOT NULL,
    url                   TEXT   NOT NULL,
    auth_type             TEXT   NOT NULL CHECK (auth_type IN ('basic', 'oauth2_client_credentials', 'oauth2_password')),
    credentials_sealed    TEXT,
    state                 TEXT   NOT NULL CHECK (state IN ('active', 'disabled', 'error')),
    health_status         TEXT   NOT NULL CHECK (health_status IN ('unknown', 'healthy', 'degraded', 'unhealthy')),
    sync_interval_minutes BIGINT NOT NULL,
    tables                TEXT   NOT NULL,
    last_sync_at          BIGINT,
    revision              BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE INDEX instances_listing ON instances (organization_id, created_at, id);

-- Each connection check (test-connection or scheduled), with its per-table report as JSON.
CREATE TABLE instance_health_checks (
    id              TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL,
    instance_id     TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    status          TEXT   NOT NULL CHECK (status IN ('healthy', 'degraded', 'unhealthy')),
    latency_ms      BIGINT NOT NULL,
    error           TEXT   NOT NULL,
    report          TEXT   NOT NULL,
    checked_at      BIGINT NOT NULL
);
CREATE INDEX instance_health_checks_recent ON instance_health_checks (organization_id, instance_id, checked_at);

-- The organization's instance allowance, from subscription.changed events, and the count
-- held against it (updated in the same transaction as the instances).
CREATE TABLE instance_allowances (
    organization_id TEXT   PRIMARY KEY,
    plan            TEXT   NOT NULL,
    max_instances   BIGINT NOT NULL,
    instance_count  BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- When each instance is next due for a health check: ids and times only, read across
-- tenants by the scheduler (like the outbox, no tenant data and no row-level security).
CREATE TABLE instance_schedule (
    instance_id     TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL,
    next_check_at   BIGINT NOT NULL
);
CREATE INDEX instance_schedule_due ON instance_schedule (next_check_at);

