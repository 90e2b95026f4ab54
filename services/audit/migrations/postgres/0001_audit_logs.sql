-- The audit trail: one hash chain per organization. `body` is the entry as recorded (an
-- encoded AuditLog without its chain fields) and is what the hash covers, byte for byte:
-- hash = SHA-256(previous_hash || body), hex. The other columns repeat the body's fields
-- for filtering; verification checks them against the body too. event_id is the
-- `audit.recorded` event the entry came from (or the CreateAuditLog request's entry id), so
-- a redelivered event appends nothing.
CREATE TABLE audit_logs (
    organization_id TEXT   NOT NULL,
    sequence        BIGINT NOT NULL CHECK (sequence > 0),
    id              TEXT   NOT NULL,
    event_id        TEXT   NOT NULL,
    action          TEXT   NOT NULL,
    resource_type   TEXT   NOT NULL,
    resource_id     TEXT   NOT NULL,
    actor_user_id   TEXT   NOT NULL,
    outcome         BIGINT NOT NULL,
    event_time      BIGINT NOT NULL,
    body            BYTEA  NOT NULL,
    previous_hash   TEXT   NOT NULL,
    hash            TEXT   NOT NULL,
    -- The entry's words, lowercased, for full-text search (derived from the body).
    search_text     TEXT   NOT NULL,
    search          TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED,
    PRIMARY KEY (organization_id, sequence),
    UNIQUE (organization_id, id),
    UNIQUE (organization_id, event_id)
);
CREATE INDEX audit_logs_by_actor ON audit_logs (organization_id, actor_user_id, sequence);
CREATE INDEX audit_logs_by_resource ON audit_logs (organization_id, resource_type, resource_id, sequence);
CREATE INDEX audit_logs_by_time ON audit_logs (organization_id, event_time);
CREATE INDEX audit_logs_search ON audit_logs USING GIN (search);

SELECT ciq_enable_tenant_isolation('audit_logs');

-- Append-only, whoever connects: the application role also loses UPDATE, DELETE and
-- TRUNCATE on every table with an `*_append_only` trigger (kit's role grants).
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_logs_append_only_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
