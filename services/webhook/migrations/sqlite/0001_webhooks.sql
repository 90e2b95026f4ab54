-- Webhooks and their deliveries (see the PostgreSQL migration for what each column means).
CREATE TABLE webhooks (
    organization_id       TEXT   NOT NULL,
    id                    TEXT   NOT NULL,
    url                   TEXT   NOT NULL,
    description           TEXT   NOT NULL,
    event_types           TEXT   NOT NULL,
    secret                TEXT   NOT NULL,
    previous_secret       TEXT   NOT NULL,
    previous_secret_until BIGINT NOT NULL,
    state                 TEXT   NOT NULL,
    consecutive_failures  BIGINT NOT NULL,
    failing_since         BIGINT NOT NULL,
    last_sequence         BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    version               BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id)
);

CREATE TABLE webhook_deliveries (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    webhook_id      TEXT   NOT NULL,
    sequence        BIGINT NOT NULL,
    message_id      TEXT   NOT NULL,
    event_type      TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    redelivery_of   TEXT   NOT NULL,
    outcome         TEXT   NOT NULL,
    attempt_count   BIGINT NOT NULL,
    response_status BIGINT NOT NULL,
    latency_ms      BIGINT NOT NULL,
    error           TEXT   NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, webhook_id, sequence)
);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (organization_id, webhook_id, message_id)
    WHERE redelivery_of = '';
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (organization_id, webhook_id, sequence)
    WHERE outcome = 'pending';
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (organization_id, updated_at);

-- Organizations that have had webhooks: work across organizations (re-sealing secrets after a
-- key rotation) starts here, outside tenant isolation; it holds ids only.
CREATE TABLE webhook_organizations (
    organization_id TEXT PRIMARY KEY
);
