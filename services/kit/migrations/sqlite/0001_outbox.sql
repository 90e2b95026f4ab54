-- Events written in the same transaction as the change that caused them; a relay
-- publishes them to the bus and marks them. Not tenant-filtered: only the relay reads it.
CREATE TABLE ciq_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    organization_id TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    created_at      BIGINT  NOT NULL,
    published_at    BIGINT,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    claimed_until   BIGINT,
    last_error      TEXT
);
CREATE INDEX ciq_outbox_unpublished ON ciq_outbox (seq) WHERE published_at IS NULL;
CREATE INDEX ciq_outbox_published_at ON ciq_outbox (published_at) WHERE published_at IS NOT NULL;

-- Events a consumer has handled, so redelivery (at-least-once) has no second effect.
CREATE TABLE ciq_processed_events (
    consumer     TEXT   NOT NULL,
    event_id     TEXT   NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
